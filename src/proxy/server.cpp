#include "proxy/server.hpp"

#include <cstdio>
#include <random>

#include "core/log.hpp"
#include "proxy/connection.hpp"

namespace dg::proxy {

Server::Server(uv_loop_t* loop, std::shared_ptr<const Snapshot> snap, std::shared_ptr<auth::FailureTracker> failures,
               bool reuse_port, bool tcp_only)
    : loop_(loop),
      snap_(std::move(snap)),
      reuse_port_(reuse_port),
      tcp_only_(tcp_only),
      failures_(std::move(failures)),
      check_(this),
      grace_timer_(this) {
  std::random_device rd;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", rd());
  id_prefix_ = buf;
}

Server::~Server() {
  for (auto& l : listeners_) l->close();
  std::vector<Connection*> live;
  for (auto& [p, c] : connections_) live.push_back(p);
  for (auto* c : live) c->abort();  // abort() retires: never while iterating the map
  connections_.clear();
  graveyard_.clear();
  closing_.clear();
}

Result<void> Server::start() {
  auto pool = net::UpstreamPool::create(loop_, snap_->config->upstream);
  if (!pool) return tl::unexpected(pool.error());
  pool_ = std::move(*pool);
  const auto& ls = snap_->config->listeners;
  for (size_t i = 0; i < ls.size(); ++i) {
    if (tcp_only_ && ls[i].address.kind == config::Address::Kind::Unix) continue;
    auto l = net::Listener::open(loop_, ls[i], reuse_port_, [this, i](net::Listener& lst) { on_accept(i, lst); });
    if (!l) return tl::unexpected(l.error());
    listeners_.push_back(std::move(*l));
  }
  if (uv_check_init(loop_, check_.get()) == 0) check_.initialized();
  uv_check_start(check_.get(), [](uv_check_t* h) {
    if (auto* self = uvx::owner<Server>(h)) self->sweep();
  });
  if (uv_timer_init(loop_, grace_timer_.get()) == 0) grace_timer_.initialized();
  return {};
}

std::vector<std::string> Server::bound_addresses() const {
  std::vector<std::string> out;
  for (const auto& l : listeners_) out.push_back(l->bound());
  return out;
}

void Server::reload(std::shared_ptr<const Snapshot> snap) { snap_ = std::move(snap); }

std::string Server::next_request_id() {
  // prefix + at least 8 lower-case hex digits of the counter (snprintf cost ~1k instructions a request)
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t n = ++id_counter_;
  char digits[16];
  size_t len = 0;
  do {
    digits[len++] = kHex[n & 15];
    n >>= 4;
  } while (n != 0 || len < 8);
  std::string id;
  id.reserve(id_prefix_.size() + len);
  id += id_prefix_;
  while (len > 0) id.push_back(digits[--len]);
  return id;
}

void Server::on_accept(size_t index, net::Listener& l) {
  int err = 0;
  auto tls = index < snap_->listener_tls.size() ? snap_->listener_tls[index] : nullptr;
  auto stream = net::Stream::accept(l.server(), l.is_unix(), tls, &err);
  if (!stream) {
    log::Line(log::Level::Warn, "accept").str("listener", l.name()).str("error", uv_strerror(err)).emit();
    return;
  }
  // Lingering closes hold a descriptor too: they count against the limit.
  if (shutting_down_ || connections_.size() + closing_.size() >= snap_->config->limits.max_connections) {
    log::Line(log::Level::Warn, "accept")
        .str("listener", l.name())
        .str("remote", stream->remote())
        .str("error", shutting_down_ ? "shutting down" : "too many connections")
        .emit();
    stream->close();
    return;
  }
  auto c = std::make_unique<Connection>(*this, index, std::move(stream));
  Connection* raw = c.get();
  connections_.emplace(raw, std::move(c));
  raw->start();
}

void Server::retire(Connection* c) {
  auto it = connections_.find(c);
  if (it == connections_.end()) return;
  graveyard_.push_back(std::move(it->second));
  connections_.erase(it);
}

void Server::adopt(std::unique_ptr<net::Stream> s) { closing_.push_back(std::move(s)); }

void Server::sweep() {
  graveyard_.clear();
  if (!closing_.empty()) std::erase_if(closing_, [](const std::unique_ptr<net::Stream>& s) { return s->closed(); });
  log::flush();
  if (shutting_down_) maybe_done();
}

void Server::shutdown(uint32_t grace_ms, std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  on_done_ = std::move(done);
  for (auto& l : listeners_) l->close();
  std::vector<Connection*> all;
  for (auto& [p, c] : connections_) all.push_back(p);
  for (auto* c : all) c->drain();
  if (!connections_.empty()) {
    std::string busy;
    for (auto& [p, c] : connections_) busy += (busy.empty() ? "" : "; ") + c->describe();
    log::Line(log::Level::Info, "shutdown").num("busy_connections", static_cast<int64_t>(connections_.size())).str("busy", busy).emit();
  }
  if (grace_timer_) {
    uv_timer_start(
        grace_timer_.get(),
        [](uv_timer_t* t) {
          auto* self = uvx::owner<Server>(t);
          if (!self) return;
          std::vector<Connection*> left;
          for (auto& [p, c] : self->connections_) left.push_back(p);
          if (!left.empty())
            log::Line(log::Level::Warn, "shutdown").num("aborted_connections", static_cast<int64_t>(left.size())).emit();
          for (auto* c : left) c->abort();
          self->grace_over_ = true;
          for (auto& s : self->closing_) s->close();
          self->maybe_done();
        },
        grace_ms, 0);
  }
  maybe_done();
}

void Server::maybe_done() {
  if (!shutting_down_ || !connections_.empty() || !on_done_) return;
  // Streams still flushing their last bytes (error bodies, tunnel output) finish first, within
  // the grace period.
  if (!grace_over_ && !closing_.empty()) return;
  for (auto& s : closing_) s->close();
  closing_.clear();
  graveyard_.clear();
  if (pool_) pool_->clear();
  check_.close();
  grace_timer_.close();
  auto done = std::move(on_done_);
  on_done_ = nullptr;
  done();
}

}  // namespace dg::proxy
