// Who a request comes from. Built once per request by the Authenticator (phase 4) and handed to
// the policy engine (phase 6) and the log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/tokens.hpp"
#include "config/config.hpp"
#include "core/result.hpp"
#include "http/message.hpp"
#include "tls/tls.hpp"

namespace dg::auth {

using config::AuthMethod;

struct Identity {
  std::string name;                 // "alice", "CN of the cert", "uid:1000", "anonymous"
  std::vector<std::string> groups;
  AuthMethod method = AuthMethod::Anonymous;
  std::string listener;             // listener name
  bool in_group(std::string_view g) const;
};

// What the connection tells about its client; gathered once per connection.
struct ConnectionFacts {
  std::string listener;              // listener name
  std::string remote;                // "127.0.0.1:53122", "unix"
  bool tls = false;
  const tls::PeerCertificate* cert = nullptr;  // verified client certificate, if any
  bool has_peer_cred = false;        // unix listener: SO_PEERCRED was read
  uint32_t uid = 0, gid = 0, pid = 0;
};

struct Outcome;
class FailureTracker;

// A password check taken off the event loop. authenticate() returns one (Outcome::check) instead
// of an answer when basic credentials are not in its cache of recently verified ones: the hash
// (bcrypt, yescrypt, sha512crypt: 10-300 ms) must not run on the loop thread.
//   run()     the slow part: crypt_r and a constant-time compare over the job's own copies (hash
//             setting, password); it touches nothing else, so it may run on any thread (libuv's
//             thread pool). It cleanses the password bytes when done.
//   finish()  the answer, as authenticate() would have given it: on success the credentials are
//             cached and the client's failures forgotten; on failure the same reason, detail and
//             back-off delay (FailureTracker). Call it once, after run(), on any one thread.
// A check that is dropped without finish() (connection gone) changes nothing; its destructor
// cleanses the password. It keeps the Authenticator it came from alive.
class PasswordCheck {
 public:
  virtual ~PasswordCheck() = default;
  virtual void run() noexcept = 0;
  virtual Outcome finish(FailureTracker& failures) = 0;
};

struct Outcome {
  std::unique_ptr<PasswordCheck> check;   // set: no answer yet (ok is false): run the check, then
                                          // take check->finish()'s Outcome instead of this one
  bool ok = false;
  Identity identity;                      // when ok
  std::string reason;                     // when !ok: logged, and (generic) shown to the client
  std::string detail;                     // when !ok: for the log only (e.g. unknown user vs wrong
                                          // password); never shown to the client. Never a secret.
  std::string user;                       // when !ok: the user name or token name tried, if any
  std::vector<http::Header> challenge;    // e.g. WWW-Authenticate: Basic realm="dockgate"
  uint32_t delay_ms = 0;                  // back-off: answer the 401 only after this delay
};

// One immutable snapshot of every identity source (htpasswd, tokens, peer and certificate
// mappings), built from the configuration at start and on SIGHUP. Failure tracking for back-off
// lives in a separate object that survives reloads.

// The key FailureTracker counts a client under: "uid:N" on unix listeners with peer credentials,
// else the remote address without its (ephemeral) port.
std::string client_key(const ConnectionFacts& conn);

class Authenticator {
 public:
  // Loads the htpasswd and token files named by cfg.identities. `issued`: tokens issued at run time
  // (session layer); it outlives reloads and is consulted after the token file.
  static Result<std::shared_ptr<const Authenticator>> create(const config::Config& cfg,
                                                              std::shared_ptr<const TokenStore> issued = nullptr);
  virtual ~Authenticator() = default;

  // methods: the listener's ordered list. The first method whose credentials are present and
  // valid wins; credentials present but wrong = denied (no fall-through to anonymous).
  // Never blocks: basic credentials that need a hash computation come back as Outcome::check.
  virtual Outcome authenticate(const ConnectionFacts& conn, const std::vector<AuthMethod>& methods,
                               const http::RequestHead& head, FailureTracker& failures) const = 0;

  // authenticate() and, when it returns a check, the check run on the calling thread (blocks for
  // the hash). For tests and tools; the proxy runs checks on libuv's thread pool.
  Outcome authenticate_blocking(const ConnectionFacts& conn, const std::vector<AuthMethod>& methods,
                                const http::RequestHead& head, FailureTracker& failures) const;
};

// Per-process counters of recent failures per client address and per user name (exponential
// back-off with a cap). Kept across reloads.
// delay = min(kMaxDelayMs, kBaseDelayMs * 2^(failures-1)), failures = the larger of the client's
// and the user's count; an entry is forgotten kForgetAfter after its last failure; each table holds
// at most kMaxEntries (oldest evicted), so a flood of fake clients cannot exhaust memory.
// Thread-safe. `user` may be empty (failure not tied to a user name).
class FailureTracker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr uint32_t kBaseDelayMs = 100;
  static constexpr uint32_t kMaxDelayMs = 5000;
  static constexpr std::chrono::minutes kForgetAfter{15};
  static constexpr size_t kMaxEntries = 10000;

  FailureTracker();
  ~FailureTracker();
  // Records a failure; returns the delay to apply before answering.
  uint32_t failed(const std::string& client, const std::string& user);
  void succeeded(const std::string& client, const std::string& user);
  uint32_t current_delay(const std::string& client, const std::string& user) const;
  // Same with an explicit clock reading (tests).
  uint32_t failed(const std::string& client, const std::string& user, Clock::time_point now);
  uint32_t current_delay(const std::string& client, const std::string& user, Clock::time_point now) const;
  size_t size() const;  // entries in both tables (tests)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dg::auth
