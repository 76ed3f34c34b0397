// Connections to dockerd: a keep-alive pool per loop (LIFO, bounded, idle timeout below dockerd's
// 300 s). A connection that carried a tunnel or an unfinished exchange is never returned to it.
#pragma once

#include <uv.h>

#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/result.hpp"
#include "core/uv.hpp"
#include "net/stream.hpp"
#include "tls/tls.hpp"

namespace dg::net {

class UpstreamPool final : public StreamHandler {
 public:
  // Resolves the address once (blocking getaddrinfo is fine at start and reload).
  static Result<std::unique_ptr<UpstreamPool>> create(uv_loop_t* loop, const config::Upstream& cfg);
  ~UpstreamPool() override;

  // An idle connection (reused = true, ready) or a new one still connecting (handler hears
  // on_stream_ready or on_stream_error). Never null; a connection that could not even start is
  // returned closed().
  std::unique_ptr<Stream> acquire(StreamHandler* handler, bool* reused);
  // Back to the pool after a complete exchange on a keep-alive connection.
  void release(std::unique_ptr<Stream> s);
  void clear();
  size_t idle() const { return idle_.size(); }
  const std::string& address() const { return text_; }

  void on_stream_data(Stream& s, const char*, size_t) override { drop(s); }
  void on_stream_eof(Stream& s) override { drop(s); }
  void on_stream_error(Stream& s, const std::string&) override { drop(s); }

 private:
  UpstreamPool() = default;
  void drop(Stream& s);
  void arm_timer();
  struct Idle {
    std::unique_ptr<Stream> stream;
    uint64_t since;
  };
  uv_loop_t* loop_ = nullptr;
  sockaddr_storage addr_{};
  bool unix_ = true;
  std::string path_;
  std::string text_;
  std::string server_name_;
  std::shared_ptr<tls::Context> tls_;
  uint32_t connect_timeout_ms_ = 5000;
  uint32_t idle_timeout_ms_ = 60000;
  size_t max_idle_ = 32;
  std::vector<Idle> idle_;
  uvx::Handle<uv_timer_t> timer_;
};

}  // namespace dg::net
