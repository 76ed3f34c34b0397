// The configuration file as typed structs. The only module that includes yaml-cpp.
// Public contract (see docs/configuration.md): extend, never rename.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/log.hpp"
#include "core/result.hpp"

namespace dg::config {

// One problem found in a config or policy file, reported as "file:line:col: message".
struct Diag {
  std::string file;
  int line = 0;  // 1-based; 0 = whole file
  int col = 0;
  std::string message;
  std::string str() const;
};

struct Diagnostics {
  std::vector<Diag> items;
  bool ok() const { return items.empty(); }
  std::string str() const;  // one diag per line
};

struct Address {
  enum class Kind { Tcp, Unix };
  Kind kind = Kind::Unix;
  std::string host;  // tcp: literal IP or name, without brackets
  uint16_t port = 0;
  std::string path;  // unix
  std::string text;  // as written, e.g. "tcp://127.0.0.1:2376"
  bool is_loopback() const;  // tcp host is 127.0.0.0/8, ::1 or "localhost"
};

struct ServerTls {
  std::string certificate;  // absolute paths after loading
  std::string key;
  std::string client_ca;  // empty = no client certificate requested
  std::string crl;        // optional CRL file (PEM), re-read on SIGHUP
};

struct ClientTls {
  std::string ca;
  std::string certificate;
  std::string key;
  std::string server_name;  // SNI and name check; default: upstream host
};

enum class AuthMethod { Mtls, Basic, Bearer, Peer, Anonymous };

struct Listener {
  std::string name;  // "name:" or derived from the address
  Address address;
  std::optional<ServerTls> tls;
  std::vector<AuthMethod> auth;  // in order; see docs/configuration.md for defaults
  std::optional<uint32_t> mode;   // unix socket file mode
  std::string owner;              // unix socket owner (user name or uid)
  std::string group;              // unix socket group (group name or gid)
};

struct Upstream {
  Address address;
  std::optional<ClientTls> tls;
  uint32_t connect_timeout_ms = 5000;
  uint32_t max_idle = 32;             // idle keep-alive connections kept
  uint32_t idle_timeout_ms = 60000;   // close pooled idle connections after this
};

struct Limits {
  uint32_t max_header_bytes = 64 * 1024;
  uint32_t header_timeout_ms = 60000;   // time to receive a complete request head
  uint32_t idle_timeout_ms = 300000;    // keep-alive idle between requests (not streams/tunnels)
  uint64_t max_inspect_body = 1 << 20;  // bodies the policy reads (413 beyond)
  uint32_t shutdown_grace_ms = 10000;
  uint32_t buffer_high = 1 << 20;       // write-queue high watermark per direction
  uint32_t buffer_low = 256 * 1024;     // ... low watermark
  uint32_t max_connections = 10000;
};

struct LogConfig {
  log::Format format = log::Format::Json;
  std::string file;  // empty = stderr
  log::Level level = log::Level::Info;
};

// Identity sources (issue 4): how each auth method turns credentials into an identity.
struct MtlsIdentity {
  enum class From { Cn, SanDns, SanEmail, SanUri };
  From from = From::Cn;
  bool groups_from_ou = true;
  std::map<std::string, std::vector<std::string>> groups;  // identity name -> extra groups
};
struct BasicIdentity {
  std::string htpasswd;  // file path (absolute after loading); empty = basic not configured
  std::string realm = "dockgate";
  std::map<std::string, std::vector<std::string>> groups;  // user -> groups
};
struct BearerIdentity {
  std::string tokens;  // token file path; empty = bearer not configured
};
struct PeerMapping {
  std::string name;
  std::vector<std::string> groups;
};
struct PeerIdentity {
  std::map<uint32_t, PeerMapping> uids;
  std::map<uint32_t, PeerMapping> gids;
};
struct Identities {
  MtlsIdentity mtls;
  BasicIdentity basic;
  BearerIdentity bearer;
  PeerIdentity peer;
};

struct Config {
  std::string path;  // absolute path of the config file
  std::vector<Listener> listeners;
  Upstream upstream;
  std::string policy;  // absolute path of the policy file
  Identities identities;
  Limits limits;
  LogConfig log;
  unsigned workers = 1;  // 0 = auto (one per CPU)
};

struct LoadOptions {
  // Check that every referenced file (certificates, keys, CAs, CRL, htpasswd, tokens, policy) is
  // readable. Off only for schema-only checks such as the docs examples test.
  bool check_files = true;
};

// Loads and validates; collects every problem before failing.
tl::expected<Config, Diagnostics> load(const std::string& path, const LoadOptions& options = {});
// Same from text in memory; `path` names the file in diagnostics and anchors relative paths.
tl::expected<Config, Diagnostics> load_text(const std::string& text, const std::string& path,
                                            const LoadOptions& options = {});

// The schema table: every key declared once with its type, default and meaning. The loader
// derives each section's allowed keys from it, and tests check docs/configuration.md names them all.
// Keys are paths: "listeners[].tls.client_ca"; "<name>" stands for a user-chosen map key.
struct KeyInfo {
  std::string_view key;
  std::string_view type;
  std::string_view default_value;
  std::string_view doc;
};
const std::vector<KeyInfo>& schema();
const std::vector<std::string>& documented_keys();  // schema()[i].key, in table order

const char* auth_method_name(AuthMethod m);

}  // namespace dg::config
