// OpenSSL 3 RAII and a TLS engine over two memory BIOs: no sockets, no libuv. The network layer
// feeds ciphertext in and writes out whatever ciphertext the engine produces, so the engine is
// unit-tested on plain bytes (two engines talking to each other through strings).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"

namespace dg::tls {

struct ServerOptions {
  std::string certificate;  // PEM chain file
  std::string key;          // PEM key file
  std::string client_ca;    // non-empty: client certificate required and verified against it
  std::string crl;          // non-empty: CRL (PEM) checked for the client certificate chain leaf
  bool require_client_cert = true;  // with client_ca: false = a certificate is optional (verified when sent)
};

struct ClientOptions {
  std::string ca;           // verify the server against it (empty: system default store)
  std::string certificate;  // client certificate (optional)
  std::string key;
  bool verify = true;
};

// Immutable after creation; shared by every connection of a listener (or the upstream pool).
// A reload builds a new Context; live connections keep the one they started with.
class Context {
 public:
  static Result<std::shared_ptr<Context>> server(const ServerOptions& opt);
  static Result<std::shared_ptr<Context>> client(const ClientOptions& opt);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  void* native() const;  // SSL_CTX*
  bool is_server() const { return server_; }

 private:
  Context(void* ctx, bool server) : ctx_(ctx), server_(server) {}
  void* ctx_;
  bool server_;
};

// What the peer certificate said (server side with client_ca, or the upstream's certificate).
struct PeerCertificate {
  bool present = false;
  bool verified = false;
  std::string subject;  // one-line RFC 2253
  std::string common_name;
  std::vector<std::string> organizational_units;
  std::vector<std::string> san_dns;
  std::vector<std::string> san_email;
  std::vector<std::string> san_uri;
  std::string serial_hex;
  std::string not_after;  // ISO 8601
};

class Engine {
 public:
  enum class Status {
    Ok,       // progress made (or nothing to do)
    Closed,   // the peer sent close_notify (or the session is shut down): no more plaintext will come
    Error,    // fatal: handshake failure, bad record, verification failure; error() says why
  };

  // server_name: client side SNI + host name check (IP literals: IP SAN check, no SNI).
  Engine(std::shared_ptr<Context> ctx, std::string server_name = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Ciphertext from the network.
  void feed(const char* data, size_t len);
  // Drives the handshake and decrypts what it can into `out` (appended). Call after feed().
  Status read(std::string& out);
  // Same, but stops once at least max_bytes were appended (watermarks: decryption pauses above the
  // high mark). Undecrypted input stays buffered: call read() again later even without feed().
  Status read(std::string& out, size_t max_bytes);
  // Encrypts plaintext (only after handshake_done(); before that it is queued and sent once the
  // handshake completes).
  Status write(const char* data, size_t len);
  // Sends close_notify (half-close of the write side in TLS 1.3 terms); reading may go on.
  void shutdown();

  // Ciphertext produced so far, to be written to the network; clears it.
  bool has_output() const;
  void take_output(std::string& out);  // appends
  // Frees the ciphertext buffers if both are drained (they keep their high-water size otherwise).
  // Call when a connection goes idle; done automatically once after the handshake.
  void release_buffers();

  bool handshake_done() const;
  bool peer_closed() const;   // close_notify received
  std::string error() const;  // human-readable reason for Status::Error (verify error included)
  std::string version() const;  // "TLSv1.3"
  const PeerCertificate& peer() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dg::tls
