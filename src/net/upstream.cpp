#include "net/upstream.hpp"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace dg::net {

Result<std::unique_ptr<UpstreamPool>> UpstreamPool::create(uv_loop_t* loop, const config::Upstream& cfg) {
  std::unique_ptr<UpstreamPool> p(new UpstreamPool());
  p->loop_ = loop;
  p->text_ = cfg.address.text;
  p->connect_timeout_ms_ = cfg.connect_timeout_ms;
  p->idle_timeout_ms_ = cfg.idle_timeout_ms;
  p->max_idle_ = cfg.max_idle;
  if (cfg.address.kind == config::Address::Kind::Unix) {
    p->unix_ = true;
    p->path_ = cfg.address.path;
  } else {
    p->unix_ = false;
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(cfg.address.port);
    int rc = getaddrinfo(cfg.address.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0 || !res) return fail("upstream " + cfg.address.text + ": cannot resolve host: " + gai_strerror(rc));
    std::memcpy(&p->addr_, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
  }
  if (cfg.tls) {
    tls::ClientOptions o;
    o.ca = cfg.tls->ca;
    o.certificate = cfg.tls->certificate;
    o.key = cfg.tls->key;
    auto ctx = tls::Context::client(o);
    if (!ctx) return fail("upstream TLS: " + ctx.error().message);
    p->tls_ = *ctx;
    p->server_name_ = cfg.tls->server_name.empty() ? cfg.address.host : cfg.tls->server_name;
  }
  p->timer_ = uvx::Handle<uv_timer_t>(p.get());
  if (uv_timer_init(loop, p->timer_.get()) == 0) p->timer_.initialized();
  return p;
}

UpstreamPool::~UpstreamPool() { clear(); }

std::unique_ptr<Stream> UpstreamPool::acquire(StreamHandler* handler, bool* reused) {
  while (!idle_.empty()) {
    std::unique_ptr<Stream> s = std::move(idle_.back().stream);
    idle_.pop_back();
    if (s->closed() || s->eof_seen()) continue;
    s->set_handler(handler);
    *reused = true;
    return s;
  }
  *reused = false;
  return Stream::connect(loop_, unix_ ? nullptr : reinterpret_cast<const sockaddr*>(&addr_), path_, tls_,
                         server_name_, connect_timeout_ms_, handler);
}

void UpstreamPool::release(std::unique_ptr<Stream> s) {
  if (!s || s->closed() || s->eof_seen() || s->queued() > 0 || idle_.size() >= max_idle_) return;
  s->set_handler(this);
  s->read_start();  // notice dockerd closing it while idle
  idle_.push_back(Idle{std::move(s), uv_now(loop_)});
  arm_timer();
}

void UpstreamPool::drop(Stream& s) {
  auto it = std::find_if(idle_.begin(), idle_.end(), [&](const Idle& i) { return i.stream.get() == &s; });
  if (it == idle_.end()) return;
  std::unique_ptr<Stream> gone = std::move(it->stream);
  idle_.erase(it);
  gone->close();
  // `gone` is destroyed here, inside its own callback: Stream returns right after its handler.
}

void UpstreamPool::arm_timer() {
  if (!timer_ || uv_is_active(timer_.base())) return;
  uint64_t every = std::max<uint64_t>(1000, idle_timeout_ms_ / 4);
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        auto* self = uvx::owner<UpstreamPool>(t);
        if (!self) return;
        uint64_t now = uv_now(self->loop_);
        std::erase_if(self->idle_, [&](const Idle& i) { return now - i.since >= self->idle_timeout_ms_; });
        if (self->idle_.empty()) uv_timer_stop(t);
      },
      every, every);
}

void UpstreamPool::clear() {
  idle_.clear();
  if (timer_) uv_timer_stop(timer_.get());
}

}  // namespace dg::net
