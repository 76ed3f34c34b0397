#include "proxy/connection.hpp"

#include "core/log.hpp"
#include "core/strings.hpp"
#include "http/serialize.hpp"
#include "proxy/server.hpp"

namespace dg::proxy {
namespace {

// Client bytes held while an exchange is in progress (pipelined requests, stdin typed ahead of a
// hijack). Beyond this the client is not read until the exchange ends.
constexpr size_t kMaxStash = 64 * 1024;

bool body_less_status(int status) { return (status >= 100 && status < 200) || status == 204 || status == 304; }

}  // namespace

Connection::Connection(Server& server, size_t listener_index, std::unique_ptr<net::Stream> client)
    : server_(server),
      listener_index_(listener_index),
      client_(std::move(client)),
      req_parser_(http::ParserLimits{server.snapshot()->config->limits.max_header_bytes, 128}),
      timer_(this) {
  req_sink_.c = this;
  resp_sink_.c = this;
}

Connection::~Connection() {
  if (client_ && !client_->closed()) server_.adopt(std::move(client_));
}

const config::Listener* Connection::listener_config() const {
  const auto& ls = (snap_ ? snap_ : server_.snapshot())->config->listeners;
  return listener_index_ < ls.size() ? &ls[listener_index_] : nullptr;
}

void Connection::start() {
  const auto& limits = server_.snapshot()->config->limits;
  client_->set_handler(this);
  client_->set_watermarks(limits.buffer_high, limits.buffer_low);
  if (uv_timer_init(server_.loop(), timer_.get()) == 0) timer_.initialized();
  // The first head (and the TLS handshake before it) must arrive within the header timeout.
  arm_timer(limits.header_timeout_ms);
  client_->read_start();
}

void Connection::arm_timer(uint32_t ms) {
  if (!timer_) return;
  uv_timer_start(
      timer_.get(),
      [](uv_timer_t* t) {
        if (auto* self = uvx::owner<Connection>(t)) self->on_timer();
      },
      ms, 0);
}

void Connection::on_timer() {
  switch (state_) {
    case State::ReadHead:
      if (head_started_) {
        reply_error(errc_status(Errc::HeaderTimeout), errc_message(Errc::HeaderTimeout));
      } else {
        close_all();  // idle keep-alive connection (or a silent TLS client): just close
      }
      return;
    case State::AuthDelay:
      reply_error(static_cast<int>(pending_delay_status_), pending_reason_, pending_extra_);
      return;
    case State::ReadBody:
      reply_error(errc_status(Errc::HeaderTimeout), "timed out reading the request body");
      return;
    default:
      return;
  }
}

auth::ConnectionFacts Connection::facts() const {
  auth::ConnectionFacts f;
  const config::Listener* l = listener_config();
  f.listener = l ? l->name : std::string();
  f.remote = client_->remote();
  f.tls = client_->is_tls();
  const tls::PeerCertificate* cert = client_->peer_certificate();
  if (cert && cert->present && cert->verified) f.cert = cert;
  const auto& cred = client_->peer_cred();
  if (cred.valid) {
    f.has_peer_cred = true;
    f.uid = cred.uid;
    f.gid = cred.gid;
    f.pid = cred.pid;
  }
  return f;
}

// ---------------------------------------------------------------------------------------------
// Stream events

void Connection::on_stream_data(net::Stream& s, const char* data, size_t len) {
  if (&s == client_.get())
    on_client_data(data, len);
  else if (&s == upstream_.get())
    on_upstream_data(data, len);
}

void Connection::on_stream_ready(net::Stream& s) {
  if (&s == upstream_.get() && state_ == State::Connecting) send_request_head();
  // Client TLS handshake done: nothing to do; facts() reads the certificate when a head arrives.
}

void Connection::on_stream_drained(net::Stream&) { update_reading(); }

void Connection::on_stream_eof(net::Stream& s) {
  if (&s == client_.get()) {
    client_eof_ = true;
    switch (state_) {
      case State::Tunnel:
        // stdin ended: half-close towards dockerd, keep relaying its output (notes §3).
        if (upstream_) upstream_->shutdown_write();
        update_reading();
        return;
      case State::AuthVerify:
        // The head is complete: a half-close after a body-less request still gets its answer
        // (mirrored upstream once forwarded, as in Connecting); a request with a body is abandoned.
        if (req_parser_.head().body != http::BodyKind::None) {
          x_.error = "client closed mid-request";
          close_all();
        }
        return;
      case State::ReadHead:
        if (!head_started_ && stash_.empty()) {
          close_all();
        } else {
          x_.error = "client closed mid-request";
          close_all();
        }
        return;
      case State::Connecting:
      case State::Forwarding:
        if (x_.routed && x_.op.tunnel()) {
          return;  // stdin ended before the 101: the half-close is forwarded once the tunnel is up
        }
        if (!x_.request_done && !(state_ == State::Connecting && req_parser_.head().body == http::BodyKind::None)) {
          x_.error = "client closed mid-request";
          log_exchange();
          close_all();
          return;
        }
        // The client half-closed after its request: mirror it, so dockerd does what it does for
        // a direct client (simple calls answer, streams such as logs -f end), then close.
        if (state_ == State::Forwarding && upstream_) upstream_->shutdown_write();
        return;
      default:
        close_all();
        return;
    }
  }
  if (&s == upstream_.get()) {
    upstream_eof_ = true;
    if (state_ == State::Tunnel) {
      // dockerd is done: flush what it sent, then close the client gracefully.
      log_exchange();
      upstream_->close();
      client_->close_after_flush(30000);
      close_all();
      return;
    }
    if (state_ == State::Forwarding) {
      client_->cork();
      auto r = resp_parser_.finish(&resp_sink_);
      if (r.status == http::Status::Done && x_.response_started) {
        on_response_done();
        if (client_) client_->uncork();
        return;
      }
      if (client_) client_->uncork();
      upstream_failed("the Docker daemon closed the connection");
    }
  }
}

void Connection::on_stream_error(net::Stream& s, const std::string& why) {
  if (&s == client_.get()) {
    if (client_->is_tls() && !client_->ready()) {
      // Refused during the handshake (foreign CA, expired, revoked, no certificate...).
      const config::Listener* l = listener_config();
      log::Line(log::Level::Warn, "tls_handshake")
          .str("listener", l ? l->name : "")
          .str("remote", client_->remote())
          .str("error", why)
          .emit();
      close_all();
      return;
    }
    x_.error = "client: " + why;
    if (x_.routed) log_exchange();
    close_all();
    return;
  }
  if (&s == upstream_.get()) {
    if (state_ == State::Tunnel) {
      x_.error = "upstream: " + why;
      log_exchange();
      close_all();
      return;
    }
    upstream_failed(why);
  }
}

// ---------------------------------------------------------------------------------------------
// Request side

void Connection::on_client_data(const char* data, size_t len) {
  switch (state_) {
    case State::Tunnel:
      x_.bytes_in += len;
      if (upstream_) upstream_->write(std::string_view(data, len));
      update_reading();
      return;
    case State::Closed:
      return;
    default:
      break;
  }
  if (!head_started_ && state_ == State::ReadHead) {
    head_started_ = true;
    arm_timer(server_.snapshot()->config->limits.header_timeout_ms);
  }
  if (consuming_ && stash_.empty()) {
    size_t used = feed_request(data, len);
    if (state_ == State::Closed) return;
    if (used < len) stash_.append(data + used, len - used);
  } else {
    stash_.append(data, len);
  }
  update_reading();
}

void Connection::pump() {
  if (in_feed_ || !consuming_ || stash_.empty() || state_ == State::Closed) return;
  std::string pending;
  pending.swap(stash_);
  size_t used = feed_request(pending.data(), pending.size());
  if (state_ == State::Closed) return;
  // Anything appended to stash_ meanwhile came after `pending`.
  pending.erase(0, used);
  pending += stash_;
  stash_.swap(pending);
  update_reading();
}

size_t Connection::feed_request(const char* data, size_t len) {
  in_feed_ = true;
  size_t off = 0;
  while (consuming_ && state_ != State::Closed) {
    auto r = req_parser_.feed(data + off, len - off, &req_sink_);
    off += r.consumed;
    if (x_.body_too_large) {
      in_feed_ = false;
      reply_error(413, "request body larger than " + std::to_string(snap_->policy->max_body()) +
                           " bytes cannot be inspected");
      return off;
    }
    if (r.status == http::Status::More) break;
    if (r.status == http::Status::Error) {
      in_feed_ = false;
      Errc e = req_parser_.error();
      std::string detail = req_parser_.error_detail();
      x_.error = std::string(errc_name(e)) + ": " + detail;
      reply_error(errc_status(e), std::string(errc_message(e)) + (detail.empty() ? "" : " (" + detail + ")"));
      return off;
    }
    consuming_ = false;
    if (r.status == http::Status::Head)
      on_request_head();
    else
      on_request_done();
    if (off >= len && !consuming_) break;
    if (off >= len) {
      // A Head with a zero-length body completes with no more input: let the parser say Done.
      continue;
    }
  }
  in_feed_ = false;
  return off;
}

void Connection::on_request_head() {
  if (timer_) uv_timer_stop(timer_.get());
  snap_ = server_.snapshot();
  x_ = Exchange{};
  x_.id = server_.next_request_id();
  x_.start_ms = uv_now(server_.loop());
  const http::RequestHead& head = req_parser_.head();
  x_.client_keep_alive = head.keep_alive && !draining_ && !server_.shutting_down();

  // Phase 4: identify.
  const config::Listener* l = listener_config();
  static const std::vector<config::AuthMethod> kNone;
  auto outcome = snap_->auth->authenticate(facts(), l ? l->auth : kNone, head, server_.failures());
  if (outcome.check) {
    // A password hash to compute (not in the cache): on libuv's thread pool, never on this loop.
    // The client is not read meanwhile; on_verified() goes on from here.
    set_state(State::AuthVerify);
    client_->read_stop();
    int rc = verify_.start(server_.loop(), VerifyJob{std::move(outcome.check)}, this, [](void* self, VerifyJob& job, int status) {
      static_cast<Connection*>(self)->on_verified(job, status);
    });
    if (rc != 0) {
      x_.error = "cannot queue the password check: " + uvx::err_name(rc);
      reply_error(errc_status(Errc::Internal), errc_message(Errc::Internal));
    }
    return;
  }
  identified(std::move(outcome));
}

void Connection::on_verified(VerifyJob& job, int status) {
  if (state_ != State::AuthVerify) return;
  if (status != 0) {
    x_.error = "password check did not run: " + uvx::err_name(status);
    reply_error(errc_status(Errc::Internal), errc_message(Errc::Internal));
    return;
  }
  auth::Outcome outcome = job.check->finish(server_.failures());
  job.check.reset();
  identified(std::move(outcome));
  if (state_ == State::Closed) return;
  // identified() ran outside the feed loop: go on with what the client already sent (a body the
  // policy reads) and let the client be read again.
  if (state_ == State::ReadBody && consuming_ && !in_feed_) {
    if (!stash_.empty())
      pump();
    else
      feed_request("", 0);
    if (state_ == State::Closed) return;
  }
  update_reading();
}

void Connection::identified(auth::Outcome&& outcome) {
  const http::RequestHead& head = req_parser_.head();
  if (!outcome.ok) {
    x_.identity.name = outcome.user.empty() ? "-" : outcome.user;
    x_.error = outcome.detail.empty() ? outcome.reason : outcome.reason + " (" + outcome.detail + ")";
    if (outcome.delay_ms > 0) {
      set_state(State::AuthDelay);
      pending_delay_status_ = 401;
      pending_reason_ = errc_message(Errc::Unauthorized);
      pending_extra_ = outcome.challenge;
      client_->read_stop();
      arm_timer(outcome.delay_ms);
      return;
    }
    reply_error(401, errc_message(Errc::Unauthorized), outcome.challenge);
    return;
  }
  x_.identity = std::move(outcome.identity);
  x_.identified = true;

  // Phase 5: route.
  auto routed = snap_->policy->route(head);
  if (!routed.ok) {
    x_.error = routed.reason;
    reply_error(routed.status, routed.reason);
    return;
  }
  x_.op = std::move(routed.op);
  x_.routed = true;

  // Phase 6: judge, reading the body first only when the rules need it.
  if (snap_->policy->needs_body(x_.identity, x_.op, head)) {
    x_.body_collected = true;
    if (head.body == http::BodyKind::None) {
      judge(std::string_view());
      return;
    }
    if (head.body == http::BodyKind::Length && head.content_length > snap_->policy->max_body()) {
      reply_error(413, "request body larger than " + std::to_string(snap_->policy->max_body()) +
                           " bytes cannot be inspected");
      return;
    }
    if (head.expect_continue && head.version_minor >= 1) {
      client_->write("HTTP/1.1 100 Continue\r\n\r\n");
      x_.sent_continue = true;
    }
    set_state(State::ReadBody);
    consuming_ = true;
    arm_timer(snap_->config->limits.header_timeout_ms);  // the body the policy reads is bounded in time too
    return;
  }
  judge(std::nullopt);
}

void Connection::on_request_body(const char* data, size_t len) {
  x_.bytes_in += len;
  if (state_ == State::ReadBody) {
    if (x_.body.size() + len > snap_->policy->max_body()) {
      x_.body_too_large = true;
      return;
    }
    x_.body.append(data, len);
    return;
  }
  if (!upstream_) return;
  if (x_.upstream_body == http::BodyKind::Chunked) {
    std::string frame;
    frame.reserve(16);
    http::append_chunk_header(frame, len);
    upstream_->cork();
    upstream_->write(frame);
    upstream_->write(std::string_view(data, len));
    upstream_->write(http::kChunkEnd);
    upstream_->uncork();
  } else {
    upstream_->write(std::string_view(data, len));
  }
}

void Connection::on_request_done() {
  if (state_ == State::ReadBody) {
    if (timer_) uv_timer_stop(timer_.get());
    judge(std::string_view(x_.body));
    return;
  }
  x_.request_done = true;
  if (upstream_ && x_.upstream_body == http::BodyKind::Chunked) upstream_->write(http::kLastChunk);
  // consuming_ stays false: pipelined requests wait in the stash; tunnel bytes stay raw.
}

void Connection::judge(std::optional<std::string_view> body) {
  x_.decision = snap_->policy->judge(x_.identity, x_.op, req_parser_.head(), body);
  x_.judged = true;
  if (!x_.decision.allow) {
    x_.error = x_.decision.reason;
    reply_error(x_.decision.status, x_.decision.message());
    return;
  }
  if (x_.decision.audit) {
    log::Line(log::Level::Warn, "audit")
        .str("request_id", x_.id)
        .str("identity", x_.identity.name)
        .str("operation", x_.op.name)
        .str("rule", x_.decision.rule)
        .str("reason", x_.decision.reason)
        .emit();
  }
  forward();
}

void Connection::forward() {
  bool reused = false;
  upstream_ = server_.upstream().acquire(this, &reused);
  const auto& limits = snap_->config->limits;
  upstream_->set_watermarks(limits.buffer_high, limits.buffer_low);
  if (upstream_->closed()) {
    upstream_failed("cannot start a connection");
    return;
  }
  upstream_eof_ = false;
  if (reused) {
    send_request_head();
    return;
  }
  set_state(State::Connecting);
}

void Connection::send_request_head() {
  http::RequestHead& head = req_parser_.head();
  http::ForwardRequestOptions opt;
  opt.request_id = x_.id;
  opt.upgrade = x_.op.tunnel() && head.has_upgrade;
  std::string_view body;
  if (x_.body_collected) {
    body = x_.decision.body ? std::string_view(*x_.decision.body) : std::string_view(x_.body);
    if (head.body == http::BodyKind::None && !x_.decision.body) {
      opt.body = http::BodyKind::None;
    } else {
      opt.body = http::BodyKind::Length;
      opt.content_length = body.size();
    }
  } else {
    opt.body = head.body;
    opt.content_length = head.content_length;
  }
  x_.upstream_body = opt.body;
  // Allowed: now the client may send its body (serialize_request never forwards Expect).
  if (head.expect_continue && !x_.sent_continue && head.body != http::BodyKind::None && head.version_minor >= 1) {
    client_->write("HTTP/1.1 100 Continue\r\n\r\n");
    x_.sent_continue = true;
  }
  std::string out = http::serialize_request(head, head.target, opt);
  upstream_->cork();
  upstream_->write(out);
  upstream_->write(body);
  upstream_->uncork();
  set_state(State::Forwarding);
  resp_parser_.reset_for_next();
  resp_parser_.expect_response_to(head.method);
  upstream_->read_start();
  if (x_.body_collected && head.body != http::BodyKind::None) {
    x_.request_done = true;  // the parser already reported the end of this body
  } else {
    resume_request();        // stream the rest of the body, or let the parser report an empty one
  }
  if (client_eof_ && x_.request_done && upstream_ && state_ == State::Forwarding) upstream_->shutdown_write();
  update_reading();
}

void Connection::resume_request() {
  consuming_ = true;
  if (in_feed_) return;  // the feed loop on the stack goes on with the new state
  if (!stash_.empty()) {
    pump();
  } else {
    feed_request("", 0);
  }
}

// ---------------------------------------------------------------------------------------------
// Response side

void Connection::on_upstream_data(const char* data, size_t len) {
  if (state_ == State::Tunnel) {
    x_.bytes_out += len;
    client_->write(std::string_view(data, len));
    update_reading();
    return;
  }
  if (state_ != State::Forwarding) {
    // Bytes from dockerd before we asked anything: not HTTP we can trust.
    upstream_failed("unexpected data from the Docker daemon");
    return;
  }
  client_->cork();
  size_t off = 0;
  // Loop even with no bytes left: a head without a body completes without more input.
  while (state_ == State::Forwarding) {
    auto r = resp_parser_.feed(data + off, len - off, &resp_sink_);
    off += r.consumed;
    if (r.status == http::Status::More) break;
    if (r.status == http::Status::Error) {
      if (client_) client_->uncork();
      upstream_failed("malformed response from the Docker daemon: " + resp_parser_.error_detail());
      return;
    }
    if (r.status == http::Status::Head) {
      size_t used = 0;
      on_response_head(data + off, len - off, &used);
      off += used;
      continue;
    }
    // Done
    int st = resp_parser_.head().status;
    if (st >= 100 && st < 200 && st != 101) {
      resp_parser_.reset_for_next();
      resp_parser_.expect_response_to(req_parser_.head().method);
      continue;
    }
    // dockerd never sends more than it was asked for; such a connection is not reused.
    if (off < len) x_.upstream_dirty = true;
    on_response_done();
    break;
  }
  if (client_) client_->uncork();
  update_reading();
}

void Connection::on_response_head(const char* rest, size_t rest_len, size_t* used) {
  http::ResponseHead& h = resp_parser_.head();
  const http::RequestHead& req = req_parser_.head();
  if (h.status >= 100 && h.status < 200 && h.status != 101) {
    // Interim responses are dockgate's to send (it answered Expect itself): drop dockerd's.
    return;
  }
  x_.status = h.status;
  x_.response_started = true;
  // Tunnel by route, not by 101 (notes §3): dockerd hijacks with 200 when no Upgrade was asked.
  bool hijack = x_.op.tunnel() &&
                (h.status == 101 || (h.status == 200 && h.body == http::BodyKind::UntilClose));
  http::ForwardResponseOptions opt;
  opt.request_id = x_.id;
  opt.client_version_minor = req.version_minor;
  if (hijack) {
    opt.upgrade = h.status == 101;
    opt.body = http::BodyKind::None;
    opt.keep_alive = true;
    client_->write(http::serialize_response(h, opt));
    x_.upgraded = true;
    start_tunnel();
    if (state_ == State::Tunnel && rest_len > 0) {
      x_.bytes_out += rest_len;
      client_->write(std::string_view(rest, rest_len));
    }
    *used = rest_len;
    return;
  }
  bool http11 = req.version_minor >= 1;
  if (req.method == "HEAD" || body_less_status(h.status)) {
    opt.body = h.body == http::BodyKind::Length ? http::BodyKind::Length : http::BodyKind::None;
    opt.content_length = h.content_length;
    x_.client_body = http::BodyKind::None;
  } else {
    switch (h.body) {
      case http::BodyKind::Length:
        opt.body = http::BodyKind::Length;
        opt.content_length = h.content_length;
        break;
      case http::BodyKind::None:
        opt.body = http::BodyKind::Length;
        opt.content_length = 0;
        break;
      case http::BodyKind::Chunked:
      case http::BodyKind::UntilClose:
        opt.body = http11 ? http::BodyKind::Chunked : http::BodyKind::UntilClose;
        break;
    }
    x_.client_body = opt.body;
  }
  if (opt.body == http::BodyKind::UntilClose || draining_ || server_.shutting_down()) x_.client_keep_alive = false;
  if (!x_.request_done) x_.client_keep_alive = false;  // answered before the body ended
  opt.keep_alive = x_.client_keep_alive;
  client_->write(http::serialize_response(h, opt));
}

void Connection::on_response_body(const char* data, size_t len) {
  x_.bytes_out += len;
  if (x_.client_body == http::BodyKind::Chunked) {
    std::string frame;
    http::append_chunk_header(frame, len);
    client_->write(frame);
    client_->write(std::string_view(data, len));
    client_->write(http::kChunkEnd);
  } else if (x_.client_body != http::BodyKind::None) {
    client_->write(std::string_view(data, len));
  }
}

void Connection::on_response_done() {
  x_.response_done = true;
  if (x_.client_body == http::BodyKind::Chunked) client_->write(http::kLastChunk);
  finish_exchange();
}

void Connection::start_tunnel() {
  set_state(State::Tunnel);
  consuming_ = false;
  // Bytes the client sent behind the request (stdin typed ahead) go first.
  if (!stash_.empty()) {
    x_.bytes_in += stash_.size();
    upstream_->write(stash_);
    stash_.clear();
    stash_.shrink_to_fit();
  }
  if (client_eof_) upstream_->shutdown_write();
  client_->read_start();
  upstream_->read_start();
}

void Connection::upstream_failed(const std::string& why) {
  if (upstream_) upstream_->close();
  if (!x_.response_started && state_ != State::Closed) {
    x_.error = why;
    Errc e = state_ == State::Connecting ? Errc::UpstreamDown : Errc::UpstreamFailed;
    reply_error(errc_status(e), std::string(errc_message(e)) + " at " + server_.upstream().address() + ": " + why);
    return;
  }
  // Mid-response: the client can only learn it from the connection closing.
  x_.error = "upstream: " + why;
  log_exchange();
  close_all();
}

// ---------------------------------------------------------------------------------------------
// Endings

void Connection::reply_error(int status, std::string_view text, const std::vector<http::Header>& extra) {
  if (state_ == State::Closed) return;
  x_.status = status;
  if (x_.id.empty()) x_.id = server_.next_request_id();
  if (x_.start_ms == 0) x_.start_ms = uv_now(server_.loop());
  if (upstream_) upstream_->close();
  // dockgate's own answers close the connection: the rest of the request (a body the client is
  // still sending) is read and discarded by the lingering close, so the client sees the message.
  client_->write(http::error_response(status, text, /*close=*/true, x_.id, extra));
  log_exchange();
  close_all();
}

void Connection::finish_exchange() {
  log_exchange();
  bool reusable = upstream_ && x_.request_done && resp_parser_.head().keep_alive && !upstream_->closed() &&
                  !upstream_->write_shut() && !x_.upstream_dirty;
  if (reusable) {
    server_.upstream().release(std::move(upstream_));
  } else if (upstream_) {
    upstream_->close();
  }
  upstream_.reset();
  if (!x_.client_keep_alive || draining_ || server_.shutting_down() || (client_eof_ && stash_.empty())) {
    close_all();
    return;
  }
  next_request();
}

void Connection::next_request() {
  req_parser_.reset_for_next();
  x_ = Exchange{};
  snap_.reset();
  set_state(State::ReadHead);
  head_started_ = !stash_.empty();
  if (!head_started_) client_->release_buffers();  // idle keep-alive: hold as little as possible
  consuming_ = true;
  const auto& limits = server_.snapshot()->config->limits;
  arm_timer(head_started_ ? limits.header_timeout_ms : limits.idle_timeout_ms);
  pump();
  // The client has closed: what it pipelined is served, a partial head can never complete.
  if (client_eof_ && state_ == State::ReadHead) {
    close_all();
    return;
  }
  update_reading();
}

void Connection::close_all() {
  if (state_ == State::Closed) return;
  set_state(State::Closed);
  consuming_ = false;
  timer_.close();
  verify_.detach();  // a password check still queued is cancelled; one running is dropped when it ends
  if (upstream_) {
    upstream_->close();
    upstream_.reset();
  }
  if (client_ && !client_->closed()) client_->close_after_flush();
  server_.retire(this);
}

void Connection::drain() {
  draining_ = true;
  if (state_ == State::ReadHead && !head_started_) close_all();
}

std::string Connection::describe() const {
  static const char* names[] = {"read-head", "auth-verify", "auth-delay", "read-body", "connecting", "forwarding", "tunnel", "closed"};
  std::string d = names[static_cast<int>(state_)];
  if (x_.routed) (d += ' ') += x_.op.name;  // appends: "a" + std::string trips GCC 12's -Wrestrict at -O3
  if (client_) (d += " from ") += client_->remote();
  return d;
}

void Connection::abort() {
  if (client_) client_->close();
  close_all();
}

void Connection::update_reading() {
  if (state_ == State::Closed || !client_) return;
  bool client_blocked = client_eof_ || state_ == State::AuthDelay || state_ == State::AuthVerify ||
                        (upstream_ && upstream_->above_high()) ||
                        (state_ != State::Tunnel && !consuming_ && stash_.size() >= kMaxStash);
  if (client_blocked)
    client_->read_stop();
  else
    client_->read_start();
  if (upstream_) {
    if (client_->above_high())
      upstream_->read_stop();
    else if (state_ == State::Forwarding || state_ == State::Tunnel)
      upstream_->read_start();
  }
}

void Connection::log_exchange() {
  if (!x_.routed && !x_.identified && x_.status == 0) return;
  const http::RequestHead& h = req_parser_.head();
  uint64_t now = uv_now(server_.loop());
  log::Line line(log::Level::Info, "request");
  line.str("request_id", x_.id);
  const config::Listener* l = listener_config();
  line.str("listener", l ? l->name : "");
  line.str("remote", client_ ? client_->remote() : "");
  line.str("identity", x_.identity.name.empty() ? "-" : x_.identity.name);
  if (x_.identified) {
    line.str("auth", config::auth_method_name(x_.identity.method));
    if (!x_.identity.groups.empty()) {
      std::string g;
      for (const auto& s : x_.identity.groups) g += (g.empty() ? "" : ",") + s;
      line.str("groups", g);
    }
  }
  line.str("method", h.method).str("path", h.path);
  if (x_.routed) line.str("operation", x_.op.name);
  if (x_.judged) {
    line.str("decision", !x_.decision.allow ? "deny" : (x_.decision.audit ? "audit" : "allow"));
    if (!x_.decision.rule.empty()) line.str("rule", x_.decision.rule);
    if (!x_.decision.reason.empty()) line.str("reason", x_.decision.reason);
  }
  line.num("status", x_.status);
  line.num("bytes_in", static_cast<int64_t>(x_.bytes_in));
  line.num("bytes_out", static_cast<int64_t>(x_.bytes_out));
  line.num("duration_ms", static_cast<int64_t>(now - x_.start_ms));
  line.boolean("upgraded", x_.upgraded);
  if (!x_.error.empty()) line.str("error", x_.error);
  line.emit();
  x_.status = 0;
  x_.routed = x_.identified = false;
}

}  // namespace dg::proxy
