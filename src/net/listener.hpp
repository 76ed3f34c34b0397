// Listening sockets: TCP (with SO_REUSEPORT when several worker loops share a port) and unix
// (stale socket files replaced only when nothing answers on them; mode/owner/group applied).
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "core/result.hpp"
#include "core/uv.hpp"

namespace dg::net {

class Listener {
 public:
  // Called for each pending connection; the callee accepts it with Stream::accept(server(), ...).
  using OnConnection = std::function<void(Listener&)>;

  static Result<std::unique_ptr<Listener>> open(uv_loop_t* loop, const config::Listener& cfg, bool reuse_port,
                                                OnConnection on_conn);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  uv_stream_t* server() const { return sock_.stream(); }
  bool is_unix() const { return unix_; }
  const std::string& name() const { return name_; }
  // The bound address (tcp://127.0.0.1:PORT with the real port when 0 was asked).
  const std::string& bound() const { return bound_; }
  // Stops accepting (graceful shutdown) and removes the unix socket file.
  void close();

 private:
  Listener() = default;
  uvx::Handle<uvx::Socket> sock_;
  OnConnection on_conn_;
  bool unix_ = false;
  std::string name_;
  std::string path_;
  std::string bound_;
};

}  // namespace dg::net
