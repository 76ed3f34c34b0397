// A byte stream over a libuv TCP or unix socket, optionally TLS (tls::Engine over memory BIOs).
//
// The owner (a client Connection, the upstream pool) implements StreamHandler. Writes are copied
// into the stream's queue unless the socket takes them at once (uv_try_write); queued() counts
// bytes not yet handed to the kernel, and the handler hears on_stream_drained() when the queue
// falls to the low watermark after having passed the high one (Envoy-style watermarks: the owner
// stops reading the other side at the high mark and resumes it on drain).
//
// Closing: close() stops at once (pending writes are dropped); close_after_flush() half-closes
// after the queue is written and closes when the kernel took it. Neither calls the handler again.
#pragma once

#include <sys/socket.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/uv.hpp"
#include "tls/tls.hpp"

namespace dg::net {

class Stream;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  virtual void on_stream_data(Stream& s, const char* data, size_t len) = 0;
  // The peer will send nothing more (FIN, or TLS close_notify). Writing may go on.
  virtual void on_stream_eof(Stream& s) = 0;
  virtual void on_stream_error(Stream& s, const std::string& why) = 0;
  // Outgoing stream: connected (and TLS handshake done). Accepted TLS stream: handshake done.
  virtual void on_stream_ready(Stream&) {}
  virtual void on_stream_drained(Stream&) {}
};

struct PeerCred {
  bool valid = false;
  uint32_t uid = 0, gid = 0, pid = 0;
};

class Stream {
 public:
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Accepts a pending connection on a listening handle. tls may be null (plain).
  static std::unique_ptr<Stream> accept(uv_stream_t* server, bool unix_socket, std::shared_ptr<tls::Context> tls,
                                        int* err);
  // Starts connecting to a resolved TCP address (addr) or a unix path; the handler hears
  // on_stream_ready or on_stream_error (also after timeout_ms).
  static std::unique_ptr<Stream> connect(uv_loop_t* loop, const sockaddr* addr, const std::string& unix_path,
                                         std::shared_ptr<tls::Context> tls, const std::string& server_name,
                                         uint32_t timeout_ms, StreamHandler* handler);

  void set_handler(StreamHandler* h) { handler_ = h; }
  void set_watermarks(size_t high, size_t low) {
    high_ = high;
    low_ = low;
  }

  void read_start();
  void read_stop();
  bool reading() const { return reading_; }

  void write(std::string_view data);
  // Between cork() and uncork() writes are gathered and sent as one (one syscall, one TLS record).
  void cork() { ++cork_; }
  void uncork();
  size_t queued() const { return queued_ + corked_.size(); }
  bool above_high() const { return queued() > high_; }

  void shutdown_write();     // half-close once everything queued is written
  void close();              // immediately; pending writes dropped
  // Graceful close: half-close after the queue is written, then discard what the peer still
  // sends (lingering close, so it reads our answer instead of a reset) until it closes too or
  // linger_ms pass. The handler is not called again.
  void close_after_flush(uint32_t linger_ms = 5000);
  bool closed() const { return closed_; }
  bool eof_seen() const { return eof_; }
  bool write_shut() const { return shut_; }

  bool is_tls() const { return tls_ != nullptr; }
  // Idle: let TLS free its record buffers.
  void release_buffers() {
    if (tls_) tls_->release_buffers();
  }
  bool is_unix() const { return unix_; }
  bool ready() const { return ready_; }
  const tls::PeerCertificate* peer_certificate() const;
  std::string tls_version() const;
  const PeerCred& peer_cred() const { return cred_; }
  const std::string& remote() const { return remote_; }
  uv_loop_t* loop() const;

 private:
  struct WriteReq;
  Stream() = default;
  void init_common();
  void on_read(ssize_t nread, const uv_buf_t* buf);
  void on_plain(const char* data, size_t len);
  void on_ciphertext(const char* data, size_t len);
  void send_raw(std::string_view data);
  void send_owned(std::string&& data);
  void flush_tls();
  void fail(const std::string& why);
  // A failure found inside a call the owner made (write, uncork, shutdown_write): the owner hears
  // about it from a timer callback, never from inside its own call.
  void fail_soon(const std::string& why);
  void write_done(size_t bytes, int status);
  void became_ready();
  void on_connected(int status);
  void start_timer(uint32_t ms, void (*cb)(uv_timer_t*));
  struct Guard;

  static void alloc_cb(uv_handle_t*, size_t, uv_buf_t* buf);
  static void read_cb(uv_stream_t*, ssize_t, const uv_buf_t*);

  uvx::Handle<uvx::Socket> sock_;
  std::unique_ptr<tls::Engine> tls_;
  StreamHandler* handler_ = nullptr;
  std::string corked_;
  std::string tls_out_;
  size_t queued_ = 0;
  size_t high_ = 1 << 20;
  size_t low_ = 256 << 10;
  int cork_ = 0;
  bool unix_ = false;
  bool reading_ = false;
  bool ready_ = false;
  bool eof_ = false;
  bool shut_ = false;           // shutdown_write requested
  bool shut_sent_ = false;      // uv_shutdown issued
  bool close_when_shut_ = false;
  bool closed_ = false;
  bool was_high_ = false;
  bool client_side_tls_ = false;
  PeerCred cred_;
  std::string remote_;
  bool shut_done_ = false;
  bool failing_ = false;
  std::string fail_reason_;
  uint32_t linger_ms_ = 5000;
  uvx::Handle<uv_timer_t> timer_;  // connect timeout or linger timeout
  bool* destroyed_ = nullptr;      // set by Guard while a handler callback runs
};

}  // namespace dg::net
