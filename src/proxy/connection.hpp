// One client connection and the exchanges on it: the request pipeline of design.md, phases 3–10,
// as one state machine. Requests on a connection are handled one at a time (pipelined requests
// wait, parsed, in the stash); each exchange gets an upstream connection from the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "auth/identity.hpp"
#include "core/uv.hpp"
#include "http/parser.hpp"
#include "net/stream.hpp"
#include "policy/policy.hpp"
#include "proxy/snapshot.hpp"

namespace dg::proxy {

class Server;

class Connection final : public net::StreamHandler {
 public:
  Connection(Server& server, size_t listener_index, std::unique_ptr<net::Stream> client);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // Graceful shutdown: close now if idle, else after the current exchange.
  void drain();
  // Hard stop (grace period over).
  void abort();
  // For the shutdown log: what the connection is doing.
  std::string describe() const;

  void on_stream_data(net::Stream& s, const char* data, size_t len) override;
  void on_stream_eof(net::Stream& s) override;
  void on_stream_error(net::Stream& s, const std::string& why) override;
  void on_stream_ready(net::Stream& s) override;
  void on_stream_drained(net::Stream& s) override;

 private:
  enum class State {
    ReadHead,    // waiting for (the rest of) a request head
    AuthVerify,  // a password is being checked on libuv's thread pool; the client is not read
    AuthDelay,   // failed authentication: answering 401 after the back-off delay
    ReadBody,    // reading a body the policy must see (bounded)
    Connecting,  // allowed; waiting for an upstream connection
    Forwarding,  // request sent (body may still stream); relaying the response
    Tunnel,      // hijacked: raw bytes both ways
    Closed,
  };

  // Sinks for de-chunked body bytes from the two parsers.
  struct RequestSink final : http::BodySink {
    Connection* c;
    void on_body(const char* d, size_t n) override { c->on_request_body(d, n); }
  };
  struct ResponseSink final : http::BodySink {
    Connection* c;
    void on_body(const char* d, size_t n) override { c->on_response_body(d, n); }
  };

  // A password check (auth::PasswordCheck) as a uvx::Work job.
  struct VerifyJob {
    std::unique_ptr<auth::PasswordCheck> check;
    void run() { check->run(); }
  };

  void set_state(State s) { state_ = s; }

  // client side
  void on_client_data(const char* data, size_t len);
  void pump();
  size_t feed_request(const char* data, size_t len);
  void on_request_head();
  void on_verified(VerifyJob& job, int status);
  void identified(auth::Outcome&& outcome);  // phase 4 done: 401, or on with phases 5 and 6
  void on_request_body(const char* data, size_t len);
  void on_request_done();
  void judge(std::optional<std::string_view> body);
  void forward();
  void send_request_head();
  void resume_request();

  // upstream side
  void on_upstream_data(const char* data, size_t len);
  void on_response_head(const char* rest, size_t rest_len, size_t* used);
  void on_response_body(const char* data, size_t len);
  void on_response_done();
  void start_tunnel();
  void upstream_failed(const std::string& why);

  // endings
  void reply_error(int status, std::string_view text, const std::vector<http::Header>& extra = {});
  void finish_exchange();
  void next_request();
  void close_all();
  void update_reading();
  void arm_timer(uint32_t ms);
  void on_timer();
  void log_exchange();
  auth::ConnectionFacts facts() const;
  const config::Listener* listener_config() const;

  Server& server_;
  size_t listener_index_;
  std::unique_ptr<net::Stream> client_;
  std::unique_ptr<net::Stream> upstream_;
  std::shared_ptr<const Snapshot> snap_;  // of the current exchange
  http::RequestParser req_parser_;
  http::ResponseParser resp_parser_;
  RequestSink req_sink_;
  ResponseSink resp_sink_;
  uvx::Handle<uv_timer_t> timer_;
  uvx::Work<VerifyJob> verify_;  // State::AuthVerify; detached (cancelled) when the connection closes
  State state_ = State::ReadHead;
  std::string stash_;     // client bytes received but not yet parsed (pipelining, tunnel prefix)
  bool consuming_ = true; // the request parser may take client bytes now
  bool in_feed_ = false;
  bool head_started_ = false;  // bytes of the current head have arrived
  bool draining_ = false;      // server shutting down: no keep-alive
  bool client_eof_ = false;
  bool upstream_eof_ = false;

  // The current exchange.
  struct Exchange {
    std::string id;
    uint64_t start_ms = 0;
    auth::Identity identity;
    bool identified = false;
    policy::Operation op;
    bool routed = false;
    policy::Decision decision;
    bool judged = false;
    std::string body;          // collected for judgement
    bool body_collected = false;
    bool body_too_large = false;
    bool sent_continue = false;
    http::BodyKind upstream_body = http::BodyKind::None;
    http::BodyKind client_body = http::BodyKind::None;
    bool request_done = false;   // the whole request went upstream
    bool response_started = false;
    bool response_done = false;
    bool client_keep_alive = true;
    bool upgraded = false;
    bool upstream_dirty = false;  // dockerd sent more than the response: never reuse
    int status = 0;
    uint64_t bytes_in = 0;   // request body bytes from the client (tunnel: client->daemon)
    uint64_t bytes_out = 0;  // response body bytes to the client (tunnel: daemon->client)
    std::string error;       // why it ended abnormally
  };
  Exchange x_;
  uint32_t pending_delay_status_ = 0;
  std::string pending_reason_;
  std::vector<http::Header> pending_extra_;
};

}  // namespace dg::proxy
