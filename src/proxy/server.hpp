// One event loop's worth of dockgate: its listeners, client connections, upstream pool and the
// deferred-destruction lists. One Server per worker loop.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/identity.hpp"
#include "core/result.hpp"
#include "core/uv.hpp"
#include "net/listener.hpp"
#include "net/stream.hpp"
#include "net/upstream.hpp"
#include "proxy/snapshot.hpp"

namespace dg::proxy {

class Connection;

class Server {
 public:
  // reuse_port: several worker loops bind the same TCP ports; tcp_only: skip unix listeners
  // (one worker serves those).
  // failures: shared by every worker, so back-off counts a client's failures on any loop.
  Server(uv_loop_t* loop, std::shared_ptr<const Snapshot> snap, std::shared_ptr<auth::FailureTracker> failures,
         bool reuse_port, bool tcp_only = false);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Result<void> start();
  // New exchanges use the new snapshot; new connections the new TLS contexts.
  void reload(std::shared_ptr<const Snapshot> snap);
  // Stops accepting; idle connections close now, busy ones after their exchange or after grace_ms.
  void shutdown(uint32_t grace_ms, std::function<void()> done);

  uv_loop_t* loop() const { return loop_; }
  const std::shared_ptr<const Snapshot>& snapshot() const { return snap_; }
  net::UpstreamPool& upstream() { return *pool_; }
  auth::FailureTracker& failures() { return *failures_; }
  bool shutting_down() const { return shutting_down_; }
  std::vector<std::string> bound_addresses() const;
  std::string next_request_id();

  // A finished connection: destroyed after the current callback returns.
  void retire(Connection* c);
  // A stream closing gracefully (flushing its last bytes) that outlives its connection.
  void adopt(std::unique_ptr<net::Stream> s);

 private:
  void on_accept(size_t listener_index, net::Listener& l);
  void sweep();
  void maybe_done();

  uv_loop_t* loop_;
  std::shared_ptr<const Snapshot> snap_;
  bool reuse_port_;
  bool tcp_only_;
  std::vector<std::unique_ptr<net::Listener>> listeners_;
  std::unique_ptr<net::UpstreamPool> pool_;
  std::shared_ptr<auth::FailureTracker> failures_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  std::vector<std::unique_ptr<net::Stream>> closing_;
  uvx::Handle<uv_check_t> check_;
  uvx::Handle<uv_timer_t> grace_timer_;
  bool shutting_down_ = false;
  bool grace_over_ = false;
  std::function<void()> on_done_;
  uint64_t id_counter_ = 0;
  std::string id_prefix_;
};

}  // namespace dg::proxy
