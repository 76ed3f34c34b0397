#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.hpp"

namespace fs = std::filesystem;
using namespace dg::config;

namespace {

// A temp directory with the files a full configuration refers to.
struct TempDir {
  fs::path dir;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "dg-config-XXXXXX").string();
    REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    dir = tmpl;
    for (const char* f : {"server-cert.pem", "server-key.pem", "ca.pem", "crl.pem", "users.htpasswd", "tokens.yaml", "cert.pem",
                          "key.pem", "dockerd-ca.pem"})
      write(f, "x\n");
    fs::create_directories(dir / "policies");
    write("policies/allow-all.yaml", "rules: []\n");
  }
  ~TempDir() { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

const char* kUpstreamPolicy =
    "upstream:\n"
    "  address: unix:///var/run/docker.sock\n"
    "policy: policies/allow-all.yaml\n";

tl::expected<Config, Diagnostics> load_in(const TempDir& t, const std::string& text, LoadOptions opt = {}) {
  return load(t.write("dockgate.yaml", text), opt);
}

// True when some diagnostic is on `line` and contains `needle`.
bool has(const Diagnostics& d, int line, const std::string& needle) {
  for (const auto& i : d.items)
    if ((line < 0 || i.line == line) && i.message.find(needle) != std::string::npos) return true;
  return false;
}

std::string all(const tl::expected<Config, Diagnostics>& r) { return r ? std::string("(ok)") : r.error().str(); }

}  // namespace

TEST_CASE("minimal unix configuration gets safe defaults") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: unix:///run/dockgate/docker.sock\n" +
                       std::string(kUpstreamPolicy));
  REQUIRE_MESSAGE(r, all(r));
  const Config& c = *r;
  REQUIRE(c.listeners.size() == 1);
  CHECK(c.listeners[0].name == "unix:///run/dockgate/docker.sock");
  CHECK(c.listeners[0].address.kind == Address::Kind::Unix);
  CHECK(c.listeners[0].address.path == "/run/dockgate/docker.sock");
  REQUIRE(c.listeners[0].auth.size() == 1);
  CHECK(c.listeners[0].auth[0] == AuthMethod::Peer);
  CHECK_FALSE(c.listeners[0].tls);
  CHECK_FALSE(c.listeners[0].mode);
  CHECK(c.upstream.address.path == "/var/run/docker.sock");
  CHECK(c.upstream.connect_timeout_ms == 5000);
  CHECK(c.policy == t.path("policies/allow-all.yaml"));
  CHECK(c.path == t.path("dockgate.yaml"));
  CHECK(c.workers == 1);
  CHECK(c.limits.max_header_bytes == 64 * 1024);
  CHECK(c.log.format == dg::log::Format::Json);
  CHECK(c.identities.basic.realm == "dockgate");
}

TEST_CASE("full configuration") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: tcp://0.0.0.0:2376
    name: tls
    tls: {certificate: server-cert.pem, key: server-key.pem, client_ca: ca.pem, crl: crl.pem}
    auth: [mtls, basic, bearer]
  - address: tcp://[::1]:2377
    tls: {certificate: server-cert.pem, key: server-key.pem}
    auth: basic
  - address: tcp://127.0.0.1:2375
    auth: [anonymous]
  - address: unix:///run/dockgate/docker.sock
    mode: "0660"
    owner: root
    group: docker
    auth: [basic, peer]
upstream:
  address: tcp://dockerd.example:2376
  tls: {ca: dockerd-ca.pem, certificate: cert.pem, key: key.pem, server_name: dockerd.local}
  connect_timeout: 2s
  max_idle: 8
  idle_timeout: 90s
policy: policies/allow-all.yaml
identities:
  mtls: {identity: san-email, groups_from_ou: false, groups: {alice: [admins, dev]}}
  basic: {htpasswd: users.htpasswd, realm: "docker gate", groups: {bob: [ci]}}
  bearer: {tokens: tokens.yaml}
  peer:
    uids: {1000: {name: alice, groups: [dev]}}
    gids: {998: {name: ci, groups: [ci]}}
limits: {max_header_size: 32KiB, header_timeout: 30s, idle_timeout: 5m, max_inspect_body: 2MiB, shutdown_grace: 20s,
         buffer_high: 2MiB, buffer_low: 512KiB, max_connections: 500}
log: {format: text, file: logs/dockgate.log, level: debug}
workers: auto
)");
  REQUIRE_MESSAGE(r, all(r));
  const Config& c = *r;
  REQUIRE(c.listeners.size() == 4);
  const Listener& tls = c.listeners[0];
  CHECK(tls.name == "tls");
  REQUIRE(tls.tls);
  CHECK(tls.tls->certificate == t.path("server-cert.pem"));
  CHECK(tls.tls->client_ca == t.path("ca.pem"));
  CHECK(tls.tls->crl == t.path("crl.pem"));
  CHECK(tls.auth == std::vector<AuthMethod>{AuthMethod::Mtls, AuthMethod::Basic, AuthMethod::Bearer});
  CHECK(c.listeners[1].address.host == "::1");
  CHECK(c.listeners[1].address.port == 2377);
  CHECK(c.listeners[1].auth == std::vector<AuthMethod>{AuthMethod::Basic});
  CHECK(c.listeners[2].auth == std::vector<AuthMethod>{AuthMethod::Anonymous});
  const Listener& u = c.listeners[3];
  REQUIRE(u.mode);
  CHECK(*u.mode == 0660);
  CHECK(u.owner == "root");
  CHECK(u.group == "docker");
  CHECK(u.auth == std::vector<AuthMethod>{AuthMethod::Basic, AuthMethod::Peer});
  CHECK(c.upstream.address.host == "dockerd.example");
  REQUIRE(c.upstream.tls);
  CHECK(c.upstream.tls->ca == t.path("dockerd-ca.pem"));
  CHECK(c.upstream.tls->server_name == "dockerd.local");
  CHECK(c.upstream.connect_timeout_ms == 2000);
  CHECK(c.upstream.max_idle == 8);
  CHECK(c.upstream.idle_timeout_ms == 90000);
  CHECK(c.identities.mtls.from == MtlsIdentity::From::SanEmail);
  CHECK_FALSE(c.identities.mtls.groups_from_ou);
  CHECK(c.identities.mtls.groups.at("alice") == std::vector<std::string>{"admins", "dev"});
  CHECK(c.identities.basic.htpasswd == t.path("users.htpasswd"));
  CHECK(c.identities.basic.realm == "docker gate");
  CHECK(c.identities.basic.groups.at("bob") == std::vector<std::string>{"ci"});
  CHECK(c.identities.bearer.tokens == t.path("tokens.yaml"));
  CHECK(c.identities.peer.uids.at(1000).name == "alice");
  CHECK(c.identities.peer.uids.at(1000).groups == std::vector<std::string>{"dev"});
  CHECK(c.identities.peer.gids.at(998).name == "ci");
  CHECK(c.limits.max_header_bytes == 32 * 1024);
  CHECK(c.limits.header_timeout_ms == 30000);
  CHECK(c.limits.idle_timeout_ms == 300000);
  CHECK(c.limits.max_inspect_body == 2u << 20);
  CHECK(c.limits.shutdown_grace_ms == 20000);
  CHECK(c.limits.buffer_high == 2u << 20);
  CHECK(c.limits.buffer_low == 512u * 1024);
  CHECK(c.limits.max_connections == 500);
  CHECK(c.log.format == dg::log::Format::Text);
  CHECK(c.log.file == t.path("logs/dockgate.log"));
  CHECK(c.log.level == dg::log::Level::Debug);
  CHECK(c.workers == 0);
}

TEST_CASE("TLS listener with client_ca defaults to mtls; workers as a number") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: tcp://10.0.0.1:2376\n"
                   "    tls: {certificate: server-cert.pem, key: server-key.pem, client_ca: ca.pem}\n" +
                       std::string(kUpstreamPolicy) + "workers: 4\n");
  REQUIRE_MESSAGE(r, all(r));
  CHECK(r->listeners[0].auth == std::vector<AuthMethod>{AuthMethod::Mtls});
  CHECK(r->workers == 4);
}

TEST_CASE("unknown keys are reported with file:line:col and the key") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: unix:///run/d.sock\n"
                   "    tls: {certificate: server-cert.pem, key: server-key.pem, certfile: x}\n" +
                       std::string(kUpstreamPolicy) + "polcy: x\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 3, "unknown key \"certfile\" in listeners[0].tls"));
  CHECK(has(r.error(), 7, "unknown key \"polcy\""));
  const std::string s = r.error().str();
  CHECK(s.find(t.path("dockgate.yaml") + ":7:1: unknown key \"polcy\"") != std::string::npos);
  CHECK(s.find(":3:62: unknown key \"certfile\"") != std::string::npos);
}

TEST_CASE("unknown keys in every section") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: unix:///run/d.sock
    color: red
upstream:
  address: unix:///var/run/docker.sock
  tls_verify: true
policy: policies/allow-all.yaml
identities:
  ldap: {}
  peer: {uids: {1000: {name: a, shell: sh}}}
limits: {max_body: 1}
log: {colour: true}
)");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 3, "\"color\""));
  CHECK(has(r.error(), 6, "\"tls_verify\""));
  CHECK(has(r.error(), 9, "\"ldap\""));
  CHECK(has(r.error(), 10, "\"shell\""));
  CHECK(has(r.error(), 11, "\"max_body\""));
  CHECK(has(r.error(), 12, "\"colour\""));
  CHECK(r.error().items.size() == 6);  // all collected, nothing else
}

TEST_CASE("wrong types") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: [unix:///run/d.sock]\n" +
                       std::string(kUpstreamPolicy) +
                       "limits:\n"
                       "  max_connections: lots\n"
                       "  header_timeout: soon\n"
                       "  max_header_size: big\n"
                       "identities:\n"
                       "  mtls: {groups_from_ou: maybe}\n"
                       "workers: many\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 2, "listeners[0].address must be a string"));
  CHECK(has(r.error(), 7, "limits.max_connections must be an integer"));
  CHECK(has(r.error(), 8, "limits.header_timeout must be a duration"));
  CHECK(has(r.error(), 9, "limits.max_header_size must be a size"));
  CHECK(has(r.error(), 11, "identities.mtls.groups_from_ou must be true or false"));
  CHECK(has(r.error(), 12, "workers must be a number"));
}

TEST_CASE("listeners are required") {
  TempDir t;
  auto r = load_in(t, kUpstreamPolicy);
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), -1, "missing required key \"listeners\""));
  r = load_in(t, "listeners: []\n" + std::string(kUpstreamPolicy));
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 1, "at least one listener"));
  r = load_in(t, "listeners:\n  - address: unix:///run/d.sock\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), -1, "missing required key \"upstream\""));
  CHECK(has(r.error(), -1, "missing required key \"policy\""));
}

TEST_CASE("plain TCP only on loopback") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: tcp://0.0.0.0:2375\n"
                   "    name: open\n"
                   "    auth: [anonymous]\n" +
                       std::string(kUpstreamPolicy));
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 2, "listener \"open\": plain TCP is allowed on loopback addresses only"));
}

TEST_CASE("plain loopback TCP without auth must say anonymous explicitly") {
  TempDir t;
  auto r = load_in(t,
                   "listeners:\n"
                   "  - address: tcp://127.0.0.1:2375\n" +
                       std::string(kUpstreamPolicy));
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 2,
            "listener \"tcp://127.0.0.1:2375\" accepts no authentication method; add auth: [anonymous] explicitly to allow "
            "unauthenticated access"));
  r = load_in(t,
              "listeners:\n"
              "  - address: tcp://localhost:2375\n"
              "    auth: [anonymous]\n" +
                  std::string(kUpstreamPolicy));
  CHECK_MESSAGE(r, all(r));
}

TEST_CASE("auth method rules") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: tcp://127.0.0.1:2375
    name: plain
    auth: [basic, bearer]
  - address: tcp://127.0.0.1:2376
    name: tls-no-ca
    tls: {certificate: server-cert.pem, key: server-key.pem}
    auth: [mtls]
  - address: unix:///run/a.sock
    auth: [basic, bearer]
  - address: tcp://127.0.0.1:2377
    name: p
    auth: [peer, kerberos, anonymous, anonymous]
  - address: tcp://127.0.0.1:2378
    name: anon-first
    auth: [anonymous, peer]
  - address: tcp://127.0.0.1:2379
    name: none
    auth: []
upstream:
  address: unix:///var/run/docker.sock
policy: policies/allow-all.yaml
)");
  REQUIRE_FALSE(r);
  const auto& d = r.error();
  CHECK(has(d, 4, "listener \"plain\": basic auth is refused on a plain TCP listener"));
  CHECK(has(d, 4, "listener \"plain\": bearer auth is refused on a plain TCP listener"));
  CHECK(has(d, 4, "auth method basic needs identities.basic.htpasswd"));
  CHECK(has(d, 4, "auth method bearer needs identities.bearer.tokens"));
  CHECK(has(d, 8, "listener \"tls-no-ca\": auth method mtls needs tls.client_ca"));
  CHECK(has(d, 10, "listener \"unix:///run/a.sock\": auth method basic needs identities.basic.htpasswd"));
  CHECK(has(d, 10, "auth method bearer needs identities.bearer.tokens"));
  CHECK(has(d, 13, "listener \"p\": auth method peer needs a unix listener"));
  CHECK(has(d, 13, "unknown auth method \"kerberos\""));
  CHECK(has(d, 13, "auth method anonymous is listed twice"));
  CHECK(has(d, 16, "listener \"anon-first\": anonymous must be the last auth method"));
  CHECK(has(d, 19, "listener \"none\": auth must name at least one method"));
}

TEST_CASE("basic and bearer with their files are accepted on TLS and unix listeners") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: unix:///run/a.sock
    auth: [bearer, basic, peer]
  - address: tcp://[::]:2376
    tls: {certificate: server-cert.pem, key: server-key.pem}
    auth: [basic, bearer]
upstream: {address: "unix:///var/run/docker.sock"}
policy: policies/allow-all.yaml
identities:
  basic: {htpasswd: users.htpasswd}
  bearer: {tokens: tokens.yaml}
)");
  CHECK_MESSAGE(r, all(r));
}

TEST_CASE("socket mode must be a quoted octal string") {
  TempDir t;
  auto cfg = [&](const std::string& mode) {
    return load_in(t, "listeners:\n  - address: unix:///run/d.sock\n    mode: " + mode + "\n" + kUpstreamPolicy);
  };
  auto r = cfg("\"0660\"");
  REQUIRE_MESSAGE(r, all(r));
  CHECK(*r->listeners[0].mode == 0660);
  r = cfg("'0600'");
  REQUIRE_MESSAGE(r, all(r));
  CHECK(*r->listeners[0].mode == 0600);
  r = cfg("0660");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 3, "listeners[0].mode must be a quoted octal string"));
  r = cfg("\"0986\"");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 3, "octal file mode"));
  r = cfg("\"01777\"");
  REQUIRE_FALSE(r);
  r = load_in(t, "listeners:\n  - address: tcp://127.0.0.1:1\n    auth: [anonymous]\n    mode: \"0660\"\n    owner: root\n" +
                     std::string(kUpstreamPolicy));
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 4, "mode applies to unix listeners only"));
  CHECK(has(r.error(), 5, "owner applies to unix listeners only"));
}

TEST_CASE("duplicate listener addresses and names") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: unix:///run/d.sock
  - address: unix:///run/d.sock
  - address: tcp://127.0.0.1:2375
    name: x
    auth: [anonymous]
  - address: tcp://127.0.0.1:2375
    auth: [anonymous]
  - address: tcp://127.0.0.1:0
    name: x
    auth: [anonymous]
upstream: {address: "unix:///var/run/docker.sock"}
policy: policies/allow-all.yaml
)");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 3, "is already used by listener \"unix:///run/d.sock\""));
  CHECK(has(r.error(), 3, "another listener has the same name"));
  CHECK(has(r.error(), 7, "address tcp://127.0.0.1:2375 is already used by listener \"x\""));
  CHECK(has(r.error(), 9, "listener \"x\": another listener has the same name"));
}

TEST_CASE("bad addresses") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: http://127.0.0.1:80
  - address: unix://relative.sock
  - address: tcp://127.0.0.1
upstream: {address: "tcp://10.1.2.3:2375"}
policy: policies/allow-all.yaml
)");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 2, "address must start with tcp:// or unix://"));
  CHECK(has(r.error(), 3, "absolute path"));
  CHECK(has(r.error(), 4, "needs a port"));
  CHECK(has(r.error(), 5, "add upstream.tls"));
}

TEST_CASE("referenced files must be readable, relative to the config file") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: tcp://127.0.0.1:2376
    tls: {certificate: missing-cert.pem, key: server-key.pem, client_ca: ca.pem, crl: nocrl.pem}
upstream:
  address: tcp://127.0.0.1:2377
  tls: {ca: nothere.pem}
policy: policies/none.yaml
identities:
  basic: {htpasswd: policies}
  bearer: {tokens: /nonexistent/tokens.yaml}
)");
  REQUIRE_FALSE(r);
  const auto& d = r.error();
  CHECK(has(d, 3, "listeners[0].tls.certificate: cannot read \"" + t.path("missing-cert.pem") + "\": No such file"));
  CHECK(has(d, 3, "listeners[0].tls.crl: cannot read"));
  CHECK(has(d, 6, "upstream.tls.ca: cannot read"));
  CHECK(has(d, 7, "policy: cannot read \"" + t.path("policies/none.yaml") + "\""));
  CHECK(has(d, 9, "is not a regular file"));
  CHECK(has(d, 10, "identities.bearer.tokens: cannot read \"/nonexistent/tokens.yaml\""));
  CHECK(d.items.size() == 6);

  // The same text passes a schema-only check.
  r = load_in(t, R"(listeners:
  - address: tcp://127.0.0.1:2376
    tls: {certificate: missing-cert.pem, key: server-key.pem, client_ca: ca.pem}
upstream: {address: "unix:///var/run/docker.sock"}
policy: policies/none.yaml
)",
              LoadOptions{false});
  REQUIRE_MESSAGE(r, all(r));
  CHECK(r->listeners[0].tls->certificate == t.path("missing-cert.pem"));
}

TEST_CASE("unreadable or broken config file") {
  TempDir t;
  auto r = load(t.path("nope.yaml"));
  REQUIRE_FALSE(r);
  REQUIRE(r.error().items.size() == 1);
  CHECK(r.error().items[0].line == 0);
  CHECK(r.error().items[0].file == t.path("nope.yaml"));
  CHECK(r.error().str().find("cannot read file") != std::string::npos);

  r = load(t.path("policies"));
  REQUIRE_FALSE(r);
  CHECK(r.error().str().find("directory") != std::string::npos);

  r = load_in(t, "listeners:\n  - address: [unclosed\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), -1, "YAML syntax error"));
  CHECK(r.error().items[0].line >= 2);

  r = load_in(t, "");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 0, "empty"));

  r = load_in(t, "- just\n- a list\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 1, "must be a mapping"));
}

TEST_CASE("duplicate keys are refused") {
  TempDir t;
  auto r = load_in(t, "listeners:\n  - address: unix:///run/d.sock\n" + std::string(kUpstreamPolicy) + "policy: other.yaml\n");
  REQUIRE_FALSE(r);
  CHECK(has(r.error(), 6, "duplicate key \"policy\""));
}

TEST_CASE("cross-field rules") {
  TempDir t;
  auto r = load_in(t, R"(listeners:
  - address: tcp://127.0.0.1:2376
    tls: {certificate: server-cert.pem, key: server-key.pem, crl: crl.pem}
    auth: [anonymous]
upstream:
  address: unix:///var/run/docker.sock
  tls: {certificate: cert.pem}
policy: policies/allow-all.yaml
limits: {buffer_high: 64KiB, buffer_low: 64KiB}
identities:
  mtls: {identity: serial}
  basic: {htpasswd: users.htpasswd, realm: 'say "hi"'}
  peer: {uids: {alice: {name: alice}, 1000: {groups: [x]}}}
log: {format: xml, level: loud}
)");
  REQUIRE_FALSE(r);
  const auto& d = r.error();
  CHECK(has(d, 3, "tls.crl needs tls.client_ca"));
  CHECK(has(d, 7, "certificate and key go together"));
  CHECK(has(d, 7, "upstream.tls applies to a tcp:// upstream only"));
  CHECK(has(d, 9, "limits.buffer_low (65536) must be lower than limits.buffer_high (65536)"));
  CHECK(has(d, 11, "identities.mtls.identity must be cn, san-dns, san-email or san-uri"));
  CHECK(has(d, 12, "identities.basic.realm must be"));
  CHECK(has(d, 13, "must be an integer"));
  CHECK(has(d, 13, "missing required key \"name\" in identities.peer.uids.1000"));
  CHECK(has(d, 14, "log.format must be json or text"));
  CHECK(has(d, 14, "log.level must be debug, info, warn or error"));
}

TEST_CASE("load_text names the given path and resolves against it") {
  auto r = load_text("listeners:\n  - address: unix:///run/d.sock\n" + std::string(kUpstreamPolicy), "/etc/dockgate/dockgate.yaml",
                     LoadOptions{false});
  REQUIRE_MESSAGE(r, all(r));
  CHECK(r->policy == "/etc/dockgate/policies/allow-all.yaml");
  CHECK(r->path == "/etc/dockgate/dockgate.yaml");
  auto bad = load_text("listeners: 3\n", "/etc/dockgate/x.yaml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().str().find("/etc/dockgate/x.yaml:1:12: listeners must be a list") != std::string::npos);
}

// ---- documentation ----

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ```yaml blocks of a markdown file, with the line each starts on.
std::vector<std::pair<int, std::string>> yaml_blocks(const std::string& md) {
  std::vector<std::pair<int, std::string>> out;
  std::istringstream in(md);
  std::string line, block;
  int no = 0, start = 0;
  bool inside = false;
  while (std::getline(in, line)) {
    ++no;
    if (!inside && line.rfind("```yaml", 0) == 0) {
      inside = true;
      block.clear();
      start = no + 1;
    } else if (inside && line.rfind("```", 0) == 0) {
      inside = false;
      out.emplace_back(start, block);
    } else if (inside) {
      block += line + "\n";
    }
  }
  return out;
}

bool starts_config(const std::string& block) {
  std::istringstream in(block);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    return line.rfind("listeners:", 0) == 0;
  }
  return false;
}

}  // namespace

TEST_CASE("every YAML configuration example in docs/ is valid") {
  const fs::path docs = fs::path(DG_SOURCE_ROOT) / "docs";
  REQUIRE(fs::exists(docs / "configuration.md"));
  int checked = 0;
  for (const auto& entry : fs::recursive_directory_iterator(docs)) {
    if (entry.path().extension() != ".md") continue;
    for (const auto& [line, block] : yaml_blocks(read_file(entry.path()))) {
      if (!starts_config(block)) continue;
      ++checked;
      // Paths in examples are illustrative: check the schema, not the files.
      auto r = load_text(block, (docs / "example.yaml").string(), LoadOptions{false});
      CHECK_MESSAGE(r, entry.path().string() << ":" << line << ": example does not load:\n" << all(r));
    }
  }
  CHECK(checked >= 3);
}

TEST_CASE("every schema key is documented in docs/configuration.md") {
  const std::string doc = read_file(fs::path(DG_SOURCE_ROOT) / "docs" / "configuration.md");
  REQUIRE_FALSE(doc.empty());
  REQUIRE(documented_keys().size() == schema().size());
  for (const auto& k : documented_keys()) CHECK_MESSAGE(doc.find("`" + k + "`") != std::string::npos, "undocumented key: " << k);
  // The table itself is well formed: no key declared twice, every entry has a type and a meaning.
  for (size_t i = 0; i < schema().size(); ++i) {
    CHECK_FALSE(schema()[i].type.empty());
    CHECK_FALSE(schema()[i].doc.empty());
    for (size_t j = i + 1; j < schema().size(); ++j) CHECK(schema()[i].key != schema()[j].key);
  }
}
