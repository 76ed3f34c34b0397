#include "net/stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace dg::net {

// A handler may destroy the Stream from inside a callback; the guard tells the caller not to touch
// `this` afterwards. Guards nest (a callback that triggers another one).
// GCC cannot see that ~Guard restores the pointer before `destroyed` goes out of scope.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
struct Stream::Guard {
  explicit Guard(Stream* s) : stream(s), prev(s->destroyed_) { s->destroyed_ = &destroyed; }
  ~Guard() {
    if (!destroyed)
      stream->destroyed_ = prev;
    else if (prev)
      *prev = true;
  }
  Stream* stream;
  bool* prev;
  bool destroyed = false;
};
#pragma GCC diagnostic pop

struct Stream::WriteReq {
  uv_write_t req;
  std::string data;
};

namespace {

constexpr size_t kReadBuffer = 64 * 1024;
// How long a gracefully closing stream may take to hand its last bytes to a slow reader.
constexpr uint32_t kFlushTimeoutMs = 300000;

// One read buffer per loop thread: data is handled synchronously in the read callback and copied
// only where it must wait, so an idle connection holds no read buffer (nginx-style).
thread_local char t_read_buf[kReadBuffer];
thread_local std::string t_plain;
thread_local std::string t_cipher;
constexpr size_t kKeepCipherBytes = 256 * 1024;

struct ShutdownReq {
  uv_shutdown_t req;
};
struct ConnectReq {
  uv_connect_t req;
};

std::string sockaddr_text(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = {0};
  uint16_t port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
    std::string out = "[";  // not "[" + std::string(...): GCC 12 -O3 warns falsely (-Wrestrict)
    out += host;
    out += "]:";
    out += std::to_string(port);
    return out;
  }
  return "?";
}

}  // namespace

Stream::~Stream() {
  if (destroyed_) *destroyed_ = true;
  close();
}

uv_loop_t* Stream::loop() const { return sock_.get() ? sock_.base()->loop : nullptr; }

void Stream::alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = t_read_buf;
  buf->len = kReadBuffer;
}

void Stream::read_cb(uv_stream_t* h, ssize_t nread, const uv_buf_t* buf) {
  auto* self = uvx::owner<Stream>(h);
  if (!self || self->closed_) return;
  self->on_read(nread, buf);
}

std::unique_ptr<Stream> Stream::accept(uv_stream_t* server, bool unix_socket, std::shared_ptr<tls::Context> tls,
                                       int* err) {
  std::unique_ptr<Stream> s(new Stream());
  s->unix_ = unix_socket;
  s->sock_.set_owner(s.get());
  int rc = unix_socket ? uv_pipe_init(server->loop, &s->sock_->pipe, 0) : uv_tcp_init(server->loop, &s->sock_->tcp);
  if (rc != 0) {
    *err = rc;
    return nullptr;
  }
  s->sock_.initialized();
  rc = uv_accept(server, s->sock_.stream());
  if (rc != 0) {
    *err = rc;
    return nullptr;
  }
  if (unix_socket) {
    uv_os_fd_t fd = -1;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (uv_fileno(s->sock_.base(), &fd) == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
      s->cred_ = PeerCred{true, static_cast<uint32_t>(cred.uid), static_cast<uint32_t>(cred.gid),
                          static_cast<uint32_t>(cred.pid)};
    }
    s->remote_ = "unix";
  } else {
    uv_tcp_nodelay(&s->sock_->tcp, 1);
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (uv_tcp_getpeername(&s->sock_->tcp, reinterpret_cast<sockaddr*>(&ss), &len) == 0) s->remote_ = sockaddr_text(ss);
  }
  if (tls) {
    s->tls_ = std::make_unique<tls::Engine>(std::move(tls));
  } else {
    s->ready_ = true;
  }
  return s;
}

std::unique_ptr<Stream> Stream::connect(uv_loop_t* loop, const sockaddr* addr, const std::string& unix_path,
                                        std::shared_ptr<tls::Context> tls, const std::string& server_name,
                                        uint32_t timeout_ms, StreamHandler* handler) {
  std::unique_ptr<Stream> s(new Stream());
  s->handler_ = handler;
  s->unix_ = addr == nullptr;
  s->sock_.set_owner(s.get());
  int rc = s->unix_ ? uv_pipe_init(loop, &s->sock_->pipe, 0) : uv_tcp_init(loop, &s->sock_->tcp);
  if (rc == 0) s->sock_.initialized();
  if (tls) {
    s->tls_ = std::make_unique<tls::Engine>(std::move(tls), server_name);
    s->client_side_tls_ = true;
  }
  s->remote_ = s->unix_ ? unix_path : "upstream";
  auto* req = new ConnectReq{};
  auto cb = [](uv_connect_t* r, int status) {
    auto* self = uvx::owner<Stream>(r->handle);
    delete reinterpret_cast<ConnectReq*>(r);
    if (!self || self->closed_) return;
    self->on_connected(status);
  };
  if (rc == 0) {
    if (s->unix_) {
      uv_pipe_connect(&req->req, &s->sock_->pipe, unix_path.c_str(), cb);
    } else {
      rc = uv_tcp_connect(&req->req, &s->sock_->tcp, addr, cb);
    }
  }
  if (rc != 0) {
    delete req;
    // Report asynchronously-equivalent: the caller checks ready()/closed() after a failed start.
    s->closed_ = true;
    return s;
  }
  if (timeout_ms > 0) {
    s->start_timer(timeout_ms, [](uv_timer_t* t) {
      auto* self = uvx::owner<Stream>(t);
      if (!self || self->ready_ || self->closed_) return;
      self->fail("timed out connecting to the upstream");
    });
  }
  return s;
}

void Stream::start_timer(uint32_t ms, void (*cb)(uv_timer_t*)) {
  if (!timer_) {
    timer_ = uvx::Handle<uv_timer_t>(this);
    if (uv_timer_init(sock_.base()->loop, timer_.get()) != 0) return;
    timer_.initialized();
  }
  uv_timer_start(timer_.get(), cb, ms, 0);
}

void Stream::on_connected(int status) {
  if (status < 0) {
    fail(std::string("cannot connect: ") + uv_strerror(status));
    return;
  }
  if (!unix_) uv_tcp_nodelay(&sock_->tcp, 1);
  read_start();
  if (tls_) {
    // Produce the ClientHello; on_ciphertext completes the handshake.
    t_plain.clear();
    auto st = tls_->read(t_plain);
    flush_tls();
    if (st == tls::Engine::Status::Error) fail("TLS: " + tls_->error());
    return;
  }
  became_ready();
}

void Stream::became_ready() {
  ready_ = true;
  if (timer_) uv_timer_stop(timer_.get());
  if (handler_) handler_->on_stream_ready(*this);
}

void Stream::read_start() {
  if (closed_ || failing_ || reading_ || eof_) return;
  if (uv_read_start(sock_.stream(), alloc_cb, read_cb) == 0) reading_ = true;
}

void Stream::read_stop() {
  if (!reading_ || closed_) return;
  uv_read_stop(sock_.stream());
  reading_ = false;
}

void Stream::on_read(ssize_t nread, const uv_buf_t* buf) {
  if (nread > 0) {
    if (!handler_) return;  // lingering: discard
    if (tls_)
      on_ciphertext(buf->base, static_cast<size_t>(nread));
    else
      on_plain(buf->base, static_cast<size_t>(nread));
    return;
  }
  if (nread == 0) return;
  if (nread == UV_EOF) {
    read_stop();
    eof_ = true;
    if (!handler_) {
      if (close_when_shut_ && shut_done_) close();
      return;
    }
    if (tls_ && !tls_->handshake_done()) {
      fail("connection closed during the TLS handshake");
      return;
    }
    handler_->on_stream_eof(*this);
    return;
  }
  fail(uv_strerror(static_cast<int>(nread)));
}

void Stream::on_plain(const char* data, size_t len) { handler_->on_stream_data(*this, data, len); }

void Stream::on_ciphertext(const char* data, size_t len) {
  Guard g(this);
  tls_->feed(data, len);
  t_plain.clear();
  auto st = tls_->read(t_plain);
  flush_tls();
  if (g.destroyed || closed_) return;
  if (st == tls::Engine::Status::Error) {
    fail("TLS: " + tls_->error());
    return;
  }
  if (!ready_ && tls_->handshake_done()) {
    became_ready();
    if (g.destroyed || closed_) return;
  }
  if (!t_plain.empty() && handler_) {
    // The handler may write to other TLS streams; hand it a stable copy only if it re-enters.
    std::string plain;
    plain.swap(t_plain);
    handler_->on_stream_data(*this, plain.data(), plain.size());
    if (g.destroyed) return;
    plain.clear();
    if (t_plain.empty()) t_plain.swap(plain);  // keep the capacity
    if (closed_) return;
  }
  if (st == tls::Engine::Status::Closed && !eof_) {
    eof_ = true;
    read_stop();
    if (handler_) handler_->on_stream_eof(*this);
  }
}

void Stream::write(std::string_view data) {
  if (closed_ || failing_ || shut_ || data.empty()) return;
  if (cork_ > 0) {
    corked_.append(data);
    return;
  }
  if (tls_) {
    if (tls_->write(data.data(), data.size()) == tls::Engine::Status::Error) {
      fail_soon("TLS: " + tls_->error());
      return;
    }
    flush_tls();
    return;
  }
  send_raw(data);
}

void Stream::uncork() {
  if (cork_ == 0 || --cork_ > 0 || corked_.empty()) return;
  std::string data;
  data.swap(corked_);
  write(data);
  if (corked_.empty()) {
    data.clear();
    corked_.swap(data);  // keep the capacity for the next cork
  }
}

void Stream::flush_tls() {
  if (!tls_ || !tls_->has_output()) return;
  if (queued_ != 0) {
    std::string out;
    tls_->take_output(out);
    send_owned(std::move(out));
    return;
  }
  // The common case: the socket takes it all at once, from a buffer the thread reuses.
  t_cipher.clear();
  tls_->take_output(t_cipher);
  send_raw(t_cipher);
  if (t_cipher.capacity() > kKeepCipherBytes) std::string().swap(t_cipher);  // after an unusually big flush
}

void Stream::send_raw(std::string_view data) {
  if (closed_ || failing_) return;
  if (queued_ == 0) {
    uv_buf_t b = uv_buf_init(const_cast<char*>(data.data()), static_cast<unsigned>(data.size()));
    int n = uv_try_write(sock_.stream(), &b, 1);
    if (n == static_cast<int>(data.size())) return;
    if (n >= 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n != UV_EAGAIN) {
      fail_soon(uv_strerror(n));
      return;
    }
  }
  send_owned(std::string(data));
}

void Stream::send_owned(std::string&& data) {
  if (closed_ || failing_ || data.empty()) return;
  auto* w = new WriteReq{};
  w->data = std::move(data);
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  size_t n = w->data.size();
  int rc = uv_write(&w->req, sock_.stream(), &b, 1, [](uv_write_t* r, int status) {
    auto* req = reinterpret_cast<WriteReq*>(r);
    size_t bytes = req->data.size();
    auto* self = uvx::owner<Stream>(r->handle);
    delete req;
    if (self) self->write_done(bytes, status);
  });
  if (rc != 0) {
    delete w;
    fail_soon(uv_strerror(rc));
    return;
  }
  queued_ += n;
  if (queued_ > high_) was_high_ = true;
}

void Stream::write_done(size_t bytes, int status) {
  queued_ -= bytes;
  if (closed_) return;
  if (status < 0) {
    if (status != UV_ECANCELED) fail(uv_strerror(status));
    return;
  }
  if (was_high_ && queued() <= low_) {
    was_high_ = false;
    if (handler_) handler_->on_stream_drained(*this);
  }
}

void Stream::shutdown_write() {
  if (closed_ || failing_ || shut_) return;
  if (cork_ > 0) {
    cork_ = 1;
    uncork();  // what was gathered goes out before the FIN
  }
  if (tls_ && !closed_) {
    tls_->shutdown();  // close_notify
    flush_tls();
  }
  if (closed_ || failing_) return;  // a write above failed
  shut_ = true;
  auto* req = new ShutdownReq{};
  int rc = uv_shutdown(&req->req, sock_.stream(), [](uv_shutdown_t* r, int) {
    auto* self = uvx::owner<Stream>(r->handle);
    delete reinterpret_cast<ShutdownReq*>(r);
    if (!self || self->closed_) return;
    self->shut_done_ = true;
    if (!self->close_when_shut_) return;
    if (self->eof_ || !self->reading_) {
      self->close();
      return;
    }
    // Everything is written: give the peer linger_ms to read it and close.
    self->start_timer(self->linger_ms_, [](uv_timer_t* t) {
      if (auto* st = uvx::owner<Stream>(t)) st->close();
    });
  });
  if (rc != 0) {
    delete req;
    shut_done_ = true;
    if (close_when_shut_) close();
  }
  shut_sent_ = true;
}

void Stream::close_after_flush(uint32_t linger_ms) {
  if (closed_ || close_when_shut_) return;
  if (failing_) {
    close();
    return;
  }
  handler_ = nullptr;
  close_when_shut_ = true;
  linger_ms_ = linger_ms;
  if (!eof_) read_start();  // keep reading to discard (lingering close)
  // A peer that never reads cannot hold the connection forever.
  start_timer(kFlushTimeoutMs, [](uv_timer_t* t) {
    auto* self = uvx::owner<Stream>(t);
    if (self) self->close();
  });
  if (!shut_) {
    shutdown_write();
  } else if (shut_done_ && (eof_ || !reading_)) {
    close();
  }
}

void Stream::close() {
  if (closed_) return;
  closed_ = true;
  reading_ = false;
  handler_ = nullptr;
  timer_.close();
  sock_.close();
}

void Stream::fail_soon(const std::string& why) {
  if (closed_ || failing_) return;
  failing_ = true;
  fail_reason_ = why;
  read_stop();
  start_timer(0, [](uv_timer_t* t) {
    auto* self = uvx::owner<Stream>(t);
    if (self) self->fail(self->fail_reason_);
  });
}

void Stream::fail(const std::string& why) {
  if (closed_) return;
  StreamHandler* h = handler_;
  close();
  if (h) h->on_stream_error(*this, why);
}

const tls::PeerCertificate* Stream::peer_certificate() const { return tls_ ? &tls_->peer() : nullptr; }

std::string Stream::tls_version() const { return tls_ ? tls_->version() : std::string(); }

}  // namespace dg::net
