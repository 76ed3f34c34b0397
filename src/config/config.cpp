// The configuration loader: YAML -> typed Config, every problem collected before failing
// (HAProxy style), each reported as file:line:col naming the key.
#include "config/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "config/yaml_util.hpp"

namespace dg::config {

namespace {

// The schema table (nginx ngx_command_t style). Section entries ("listeners[].tls") are listed too:
// the loader asks the table which keys a section accepts, so adding a key here is the only way to
// make the loader accept it, and the docs test then insists on its documentation.
const std::vector<KeyInfo> kSchema = {
    {"listeners", "list of mappings", "(required)", "Where dockgate accepts clients. At least one."},
    {"listeners[].address", "address", "(required)",
     "tcp://IPv4:PORT, tcp://[IPv6]:PORT, tcp://localhost:PORT or unix:///absolute/path.sock"},
    {"listeners[].name", "string", "the address as written", "Listener name used in logs and in policy rules."},
    {"listeners[].tls", "mapping", "none (plain)", "Serve TLS. Required on TCP listeners that are not loopback."},
    {"listeners[].tls.certificate", "path", "(required with tls)", "Server certificate chain (PEM)."},
    {"listeners[].tls.key", "path", "(required with tls)", "Private key of the certificate (PEM)."},
    {"listeners[].tls.client_ca", "path", "none",
     "CA bundle (PEM). Present: client certificates are verified against it during the handshake; required when auth is [mtls], optional when auth also lists basic or bearer."},
    {"listeners[].tls.crl", "path", "none", "Certificate revocation list (PEM) for client certificates; needs client_ca; re-read on SIGHUP."},
    {"listeners[].auth", "list of mtls|basic|bearer|peer|anonymous", "see Authentication defaults",
     "Accepted authentication methods, tried in this order."},
    {"listeners[].mode", "quoted octal string", "umask default", "Unix listeners only: socket file mode, e.g. \"0660\"."},
    {"listeners[].owner", "string", "unchanged", "Unix listeners only: socket file owner (user name or uid)."},
    {"listeners[].group", "string", "unchanged", "Unix listeners only: socket file group (group name or gid)."},
    {"upstream", "mapping", "(required)", "The Docker daemon dockgate forwards to."},
    {"upstream.address", "address", "(required)", "unix:///var/run/docker.sock or tcp://host:2376 (tls required unless loopback)."},
    {"upstream.tls", "mapping", "none", "TCP upstream only: TLS client settings (mTLS to dockerd --tlsverify)."},
    {"upstream.tls.ca", "path", "system trust store", "CA that signed dockerd's certificate."},
    {"upstream.tls.certificate", "path", "none", "Client certificate dockgate presents to dockerd (with key)."},
    {"upstream.tls.key", "path", "none", "Private key of upstream.tls.certificate."},
    {"upstream.tls.server_name", "string", "the upstream host", "SNI and the name checked in dockerd's certificate."},
    {"upstream.connect_timeout", "duration", "5s", "Give up connecting to dockerd after this (502)."},
    {"upstream.max_idle", "integer", "32", "Idle keep-alive upstream connections kept in the pool."},
    {"upstream.idle_timeout", "duration", "60s", "Close pooled idle upstream connections after this."},
    {"policy", "path", "(required)", "The policy file."},
    {"identities", "mapping", "empty", "How each authentication method turns credentials into an identity."},
    {"identities.mtls", "mapping", "defaults", "Identity from the client certificate."},
    {"identities.mtls.identity", "cn|san-dns|san-email|san-uri", "cn",
     "Certificate field that names the identity (first SAN of that kind)."},
    {"identities.mtls.groups_from_ou", "boolean", "true", "Each subject OU value becomes a group."},
    {"identities.mtls.groups", "mapping name -> list of strings", "empty", "Extra groups per certificate identity."},
    {"identities.mtls.groups.<name>", "list of strings", "", "Groups of identity <name>."},
    {"identities.basic", "mapping", "none", "HTTP Basic authentication against an htpasswd file."},
    {"identities.basic.htpasswd", "path", "none", "htpasswd file (bcrypt, SHA-512/SHA-256 crypt or yescrypt entries)."},
    {"identities.basic.realm", "string", "dockgate", "Realm sent in WWW-Authenticate."},
    {"identities.basic.groups", "mapping user -> list of strings", "empty", "Groups per basic user."},
    {"identities.basic.groups.<user>", "list of strings", "", "Groups of user <user>."},
    {"identities.bearer", "mapping", "none", "Bearer tokens."},
    {"identities.bearer.tokens", "path", "none", "Token file (SHA-256 hashes, names, groups, expiry)."},
    {"identities.peer", "mapping", "empty", "Unix peer credentials (SO_PEERCRED) mapped to identities."},
    {"identities.peer.uids", "mapping uid -> identity", "empty", "Identity per client uid (checked first)."},
    {"identities.peer.uids.<uid>.name", "string", "(required)", "Identity name for this uid."},
    {"identities.peer.uids.<uid>.groups", "list of strings", "empty", "Groups for this uid."},
    {"identities.peer.gids", "mapping gid -> identity", "empty", "Identity per client primary gid (when no uid entry matches)."},
    {"identities.peer.gids.<gid>.name", "string", "(required)", "Identity name for this gid."},
    {"identities.peer.gids.<gid>.groups", "list of strings", "empty", "Groups for this gid."},
    {"limits", "mapping", "defaults", "Resource limits."},
    {"limits.max_header_size", "size", "64KiB", "Largest request head accepted (431 beyond)."},
    {"limits.header_timeout", "duration", "60s", "Time allowed to receive a complete request head (408)."},
    {"limits.idle_timeout", "duration", "300s", "Keep-alive idle time between requests (never applies to streams or tunnels)."},
    {"limits.max_inspect_body", "size", "1MiB", "Largest request body the policy reads (413 beyond)."},
    {"limits.shutdown_grace", "duration", "10s", "On SIGTERM/SIGINT, time in-flight requests get to finish."},
    {"limits.buffer_high", "size", "1MiB", "Per-direction write-queue high watermark (reading pauses above it)."},
    {"limits.buffer_low", "size", "256KiB", "Reading resumes below this; must be lower than buffer_high."},
    {"limits.max_connections", "integer", "10000", "Client connections accepted at once."},
    {"log", "mapping", "defaults", "Request and event log."},
    {"log.format", "json|text", "json", "One JSON object per line, or a human-readable line."},
    {"log.file", "path", "stderr", "Log file (re-opened on SIGHUP)."},
    {"log.level", "debug|info|warn|error", "info", "Lowest level written."},
    {"workers", "integer | auto", "1", "Event-loop threads; auto = one per CPU."},
};

// Immediate child keys of a section in the schema table.
std::vector<std::string> keys_of(std::string_view section) {
  std::vector<std::string> out;
  for (const auto& k : kSchema) {
    std::string_view key = k.key;
    std::string_view rest;
    if (section.empty()) {
      rest = key;
    } else {
      if (key.size() <= section.size() + 1 || key.substr(0, section.size()) != section || key[section.size()] != '.')
        continue;
      rest = key.substr(section.size() + 1);
    }
    if (rest.find('.') == std::string_view::npos && rest.find('<') == std::string_view::npos) out.emplace_back(rest);
  }
  return out;
}

bool valid_identity_name(const std::string& s) {
  if (s.empty() || s.size() > 256) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

class Loader {
 public:
  Loader(const std::string& path, const LoadOptions& opt, Diagnostics& diags)
      : r_(path, diags), opt_(opt) {
    cfg_.path = resolve_path(path, std::filesystem::path(path).filename().string());
  }

  void run(const YAML::Node& root) {
    if (root.IsNull()) {
      r_.error_at(0, 0, "the configuration is empty: it needs at least listeners, upstream and policy");
      return;
    }
    if (!r_.is_map(root, "the configuration")) return;
    r_.map(root, "the configuration", keys_of(""));

    identities(root["identities"]);  // before listeners: their auth lists refer to it
    listeners(r_.required(root, "listeners", "the configuration"));
    upstream(r_.required(root, "upstream", "the configuration"));
    if (auto p = r_.str(r_.required(root, "policy", "the configuration"), "policy"))
      cfg_.policy = file(root["policy"], "policy", *p);
    limits(root["limits"]);
    log(root["log"]);
    workers(root["workers"]);
  }

  Config take() { return std::move(cfg_); }

 private:
  // A path resolved against the config file's directory, checked readable when asked to.
  std::string file(const YAML::Node& at, const std::string& key, const std::string& value) {
    if (value.empty()) {
      r_.error(at, key + " must not be empty");
      return {};
    }
    std::string abs = resolve_path(r_.file(), value);
    if (opt_.check_files) {
      int fd = ::open(abs.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        r_.error(at, key + ": cannot read \"" + abs + "\": " + std::strerror(errno));
      } else {
        struct stat st {};
        if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) r_.error(at, key + ": \"" + abs + "\" is not a regular file");
        ::close(fd);
      }
    }
    return abs;
  }

  // A path-valued key: optional, so absent returns "".
  std::string opt_file(const YAML::Node& parent, const std::string& prefix, const char* key) {
    const YAML::Node n = parent[key];
    auto v = r_.str(n, prefix + key);
    if (!v) return {};
    return file(n, prefix + key, *v);
  }

  std::string req_file(const YAML::Node& parent, const std::string& prefix, const char* key, const std::string& what) {
    const YAML::Node n = r_.required(parent, key, what);
    auto v = r_.str(n, prefix + key);
    if (!v) return {};
    return file(n, prefix + key, *v);
  }

  std::optional<uint32_t> ms32(const YAML::Node& n, const std::string& key) {
    auto v = r_.duration_ms(n, key);
    if (!v) return std::nullopt;
    if (*v > UINT32_MAX) {
      r_.error(n, key + " is too long (at most 49 days)");
      return std::nullopt;
    }
    return static_cast<uint32_t>(*v);
  }

  std::optional<uint64_t> size_in(const YAML::Node& n, const std::string& key, uint64_t min, uint64_t max) {
    auto v = r_.size_bytes(n, key);
    if (!v) return std::nullopt;
    if (*v < min || *v > max) {
      r_.error(n, key + " must be between " + std::to_string(min) + " and " + std::to_string(max) + " bytes");
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::vector<std::string>> names(const YAML::Node& n, const std::string& key) {
    auto v = r_.str_list(n, key);
    if (!v) return v;
    for (const auto& s : *v)
      if (!valid_identity_name(s)) {
        r_.error(n, key + ": group names must be non-empty printable strings");
        return std::nullopt;
      }
    return v;
  }

  // ---- listeners ----
  struct Pending {
    YAML::Node node;
    YAML::Node auth_node;
    bool auth_given = false;
  };

  void listeners(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;  // already reported as missing
    if (!r_.is_seq(n, "listeners")) return;
    if (n.size() == 0) {
      r_.error(n, "listeners must name at least one listener");
      return;
    }
    for (size_t i = 0; i < n.size(); ++i) listener(n[i], i);
  }

  void listener(const YAML::Node& n, size_t idx) {
    const std::string where = "listeners[" + std::to_string(idx) + "]";
    if (!r_.is_map(n, where)) return;
    r_.map(n, where, keys_of("listeners[]"));
    Listener l;
    const YAML::Node addr_node = r_.required(n, "address", where);
    auto addr_text = r_.str(addr_node, where + ".address");
    if (!addr_text) return;  // nothing else can be judged without the address
    auto addr = parse_address(*addr_text);
    if (!addr) {
      r_.error(addr_node, where + ".address: " + addr.error());
      return;
    }
    l.address = *addr;
    l.name = l.address.text;
    if (auto nm = r_.str(n["name"], where + ".name")) {
      if (!valid_identity_name(*nm)) r_.error(n["name"], where + ".name must be a non-empty printable string");
      l.name = *nm;
    }
    const std::string who = "listener \"" + l.name + "\"";

    for (const auto& other : cfg_.listeners) {
      if (other.name == l.name) r_.error(n, who + ": another listener has the same name (set name: to tell them apart)");
      bool same = other.address.kind == l.address.kind &&
                  (l.address.kind == Address::Kind::Unix
                       ? other.address.path == l.address.path
                       : (other.address.host == l.address.host && other.address.port == l.address.port && l.address.port != 0));
      if (same) r_.error(addr_node, who + ": address " + l.address.text + " is already used by listener \"" + other.name + "\"");
    }

    const YAML::Node tls = n["tls"];
    if (tls.IsDefined() && !tls.IsNull() && r_.is_map(tls, where + ".tls")) {
      const std::string p = where + ".tls.";
      r_.map(tls, where + ".tls", keys_of("listeners[].tls"));
      ServerTls t;
      t.certificate = req_file(tls, p, "certificate", where + ".tls");
      t.key = req_file(tls, p, "key", where + ".tls");
      t.client_ca = opt_file(tls, p, "client_ca");
      t.crl = opt_file(tls, p, "crl");
      if (!t.crl.empty() && t.client_ca.empty())
        r_.error(tls["crl"], who + ": tls.crl needs tls.client_ca (a CRL only applies to client certificates)");
      l.tls = t;
    }

    const bool is_unix = l.address.kind == Address::Kind::Unix;
    if (const YAML::Node m = n["mode"]; m.IsDefined() && !m.IsNull()) {
      if (!is_unix) r_.error(m, who + ": mode applies to unix listeners only");
      if (!Reader::is_quoted(m)) {
        r_.error(m, where + ".mode must be a quoted octal string such as \"0660\" (YAML tools disagree on what an unquoted 0660 means)");
      } else {
        const std::string& s = m.Scalar();
        char* end = nullptr;
        errno = 0;
        unsigned long v = std::strtoul(s.c_str(), &end, 8);
        if (s.empty() || *end != '\0' || errno != 0 || v > 0777 || s.find_first_not_of("01234567") != std::string::npos)
          r_.error(m, where + ".mode must be an octal file mode between \"0000\" and \"0777\"");
        else
          l.mode = static_cast<uint32_t>(v);
      }
    }
    for (const char* k : {"owner", "group"}) {
      const YAML::Node v = n[k];
      auto s = r_.str(v, where + "." + k);
      if (!s) continue;
      if (!is_unix) r_.error(v, who + ": " + k + " applies to unix listeners only");
      if (s->empty()) r_.error(v, where + "." + k + " must not be empty");
      (std::string(k) == "owner" ? l.owner : l.group) = *s;
    }

    if (l.address.kind == Address::Kind::Tcp && !l.address.is_loopback() && !l.tls)
      r_.error(addr_node, who + ": plain TCP is allowed on loopback addresses only; add tls: {certificate, key, client_ca} to listen on " +
                              l.address.text);

    Pending p{n, n["auth"], false};
    p.auth_given = p.auth_node.IsDefined() && !p.auth_node.IsNull();
    auth_list(l, p, who, where);
    cfg_.listeners.push_back(std::move(l));
  }

  void auth_list(Listener& l, const Pending& p, const std::string& who, const std::string& where) {
    const bool is_unix = l.address.kind == Address::Kind::Unix;
    const bool has_client_ca = l.tls && !l.tls->client_ca.empty();
    const bool plain_tcp = !is_unix && !l.tls;
    if (!p.auth_given) {
      // Defaults: only methods whose credentials every client of this listener necessarily brings.
      if (has_client_ca) l.auth.push_back(AuthMethod::Mtls);
      if (is_unix) l.auth.push_back(AuthMethod::Peer);
      // A non-loopback plain TCP listener is already refused; one error for it is enough.
      if (l.auth.empty() && !(plain_tcp && !l.address.is_loopback()))
        r_.error(p.node, who + " accepts no authentication method; add auth: [anonymous] explicitly to allow unauthenticated access" +
                             (l.tls ? std::string(" (or set tls.client_ca, or auth: [basic] / [bearer])") : std::string()));
      return;
    }
    const YAML::Node& at = p.auth_node;
    std::vector<YAML::Node> items;
    if (at.IsScalar()) {
      items.push_back(at);
    } else if (at.IsSequence()) {
      for (size_t i = 0; i < at.size(); ++i) items.push_back(at[i]);
    } else {
      r_.error(at, where + ".auth must be a list of methods: mtls, basic, bearer, peer, anonymous");
      return;
    }
    if (items.empty()) {
      r_.error(at, who + ": auth must name at least one method (use [anonymous] for unauthenticated access)");
      return;
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const YAML::Node& it = items[i];
      if (!it.IsScalar()) {
        r_.error(it, where + ".auth entries must be method names");
        continue;
      }
      const std::string& s = it.Scalar();
      std::optional<AuthMethod> m;
      for (AuthMethod c : {AuthMethod::Mtls, AuthMethod::Basic, AuthMethod::Bearer, AuthMethod::Peer, AuthMethod::Anonymous})
        if (s == auth_method_name(c)) m = c;
      if (!m) {
        r_.error(it, who + ": unknown auth method \"" + s + "\" (known: mtls, basic, bearer, peer, anonymous)");
        continue;
      }
      if (std::find(l.auth.begin(), l.auth.end(), *m) != l.auth.end()) {
        r_.error(it, who + ": auth method " + s + " is listed twice");
        continue;
      }
      switch (*m) {
        case AuthMethod::Mtls:
          if (!has_client_ca) r_.error(it, who + ": auth method mtls needs tls.client_ca on this listener");
          break;
        case AuthMethod::Basic:
          if (plain_tcp)
            r_.error(it, who + ": basic auth is refused on a plain TCP listener (passwords would cross the network in clear); use a TLS or unix listener");
          if (cfg_.identities.basic.htpasswd.empty())
            r_.error(it, who + ": auth method basic needs identities.basic.htpasswd");
          break;
        case AuthMethod::Bearer:
          if (plain_tcp)
            r_.error(it, who + ": bearer auth is refused on a plain TCP listener (tokens would cross the network in clear); use a TLS or unix listener");
          if (cfg_.identities.bearer.tokens.empty())
            r_.error(it, who + ": auth method bearer needs identities.bearer.tokens");
          break;
        case AuthMethod::Peer:
          if (!is_unix) r_.error(it, who + ": auth method peer needs a unix listener (peer credentials come from SO_PEERCRED)");
          break;
        case AuthMethod::Anonymous:
          // Anonymous accepts everyone, so any method after it could never be reached.
          if (i + 1 != items.size()) r_.error(it, who + ": anonymous must be the last auth method");
          break;
      }
      l.auth.push_back(*m);
    }
  }

  // ---- upstream ----
  void upstream(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, "upstream")) return;
    r_.map(n, "upstream", keys_of("upstream"));
    Upstream& u = cfg_.upstream;
    const YAML::Node addr_node = r_.required(n, "address", "upstream");
    bool have_addr = false;
    if (auto s = r_.str(addr_node, "upstream.address")) {
      auto a = parse_address(*s);
      if (!a) {
        r_.error(addr_node, "upstream.address: " + a.error());
      } else {
        u.address = *a;
        have_addr = true;
      }
    }
    const YAML::Node tls = n["tls"];
    if (tls.IsDefined() && !tls.IsNull() && r_.is_map(tls, "upstream.tls")) {
      r_.map(tls, "upstream.tls", keys_of("upstream.tls"));
      ClientTls t;
      t.ca = opt_file(tls, "upstream.tls.", "ca");
      t.certificate = opt_file(tls, "upstream.tls.", "certificate");
      t.key = opt_file(tls, "upstream.tls.", "key");
      if (t.certificate.empty() != t.key.empty())
        r_.error(tls, "upstream.tls: certificate and key go together (give both or neither)");
      if (auto sn = r_.str(tls["server_name"], "upstream.tls.server_name")) t.server_name = *sn;
      if (have_addr && u.address.kind == Address::Kind::Unix)
        r_.error(tls, "upstream.tls applies to a tcp:// upstream only");
      if (t.server_name.empty() && have_addr) t.server_name = u.address.host;
      u.tls = t;
    }
    if (have_addr && u.address.kind == Address::Kind::Tcp) {
      if (u.address.port == 0) r_.error(addr_node, "upstream.address needs a port other than 0");
      if (!u.tls && !u.address.is_loopback())
        r_.error(addr_node, "upstream " + u.address.text +
                                ": a plain TCP Docker daemon off this host is root for anyone on the network; add upstream.tls (dockerd --tlsverify)");
    }
    if (auto v = ms32(n["connect_timeout"], "upstream.connect_timeout")) u.connect_timeout_ms = *v;
    if (auto v = r_.integer(n["max_idle"], "upstream.max_idle", 0, 100000)) u.max_idle = static_cast<uint32_t>(*v);
    if (auto v = ms32(n["idle_timeout"], "upstream.idle_timeout")) u.idle_timeout_ms = *v;
  }

  // ---- identities ----
  void group_map(const YAML::Node& n, const std::string& key, std::map<std::string, std::vector<std::string>>& out) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, key)) return;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar() || !valid_identity_name(kv.first.Scalar())) {
        r_.error(kv.first, key + ": keys must be identity names");
        continue;
      }
      const std::string name = kv.first.Scalar();
      if (out.count(name)) {
        r_.error(kv.first, key + ": \"" + name + "\" is listed twice");
        continue;
      }
      if (auto g = names(kv.second, key + "." + name)) out[name] = *g;
      else if (kv.second.IsNull()) out[name] = {};
    }
  }

  void id_map(const YAML::Node& n, const std::string& key, const char* section, std::map<uint32_t, PeerMapping>& out) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, key)) return;
    const std::string what = std::string(section) == "uids" ? "uid" : "gid";
    for (const auto& kv : n) {
      auto id = r_.integer(kv.first, key + " key (a numeric " + what + ")", 0, 4294967294LL);
      if (!id) continue;
      const std::string entry = key + "." + kv.first.Scalar();
      if (out.count(static_cast<uint32_t>(*id))) {
        r_.error(kv.first, key + ": " + what + " " + std::to_string(*id) + " is listed twice");
        continue;
      }
      const YAML::Node v = kv.second;
      if (!r_.is_map(v, entry)) continue;
      r_.map(v, entry, keys_of(std::string("identities.peer.") + section + ".<" + what + ">"));
      PeerMapping pm;
      if (auto nm = r_.str(r_.required(v, "name", entry), entry + ".name")) {
        if (!valid_identity_name(*nm)) r_.error(v["name"], entry + ".name must be a non-empty printable string");
        pm.name = *nm;
      }
      if (auto g = names(v["groups"], entry + ".groups")) pm.groups = *g;
      out[static_cast<uint32_t>(*id)] = pm;
    }
  }

  void identities(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, "identities")) return;
    r_.map(n, "identities", keys_of("identities"));
    Identities& id = cfg_.identities;

    if (const YAML::Node m = n["mtls"]; m.IsDefined() && !m.IsNull() && r_.is_map(m, "identities.mtls")) {
      r_.map(m, "identities.mtls", keys_of("identities.mtls"));
      if (auto s = r_.str(m["identity"], "identities.mtls.identity")) {
        if (*s == "cn") id.mtls.from = MtlsIdentity::From::Cn;
        else if (*s == "san-dns") id.mtls.from = MtlsIdentity::From::SanDns;
        else if (*s == "san-email") id.mtls.from = MtlsIdentity::From::SanEmail;
        else if (*s == "san-uri") id.mtls.from = MtlsIdentity::From::SanUri;
        else r_.error(m["identity"], "identities.mtls.identity must be cn, san-dns, san-email or san-uri (got \"" + *s + "\")");
      }
      if (auto b = r_.boolean(m["groups_from_ou"], "identities.mtls.groups_from_ou")) id.mtls.groups_from_ou = *b;
      group_map(m["groups"], "identities.mtls.groups", id.mtls.groups);
    }
    if (const YAML::Node b = n["basic"]; b.IsDefined() && !b.IsNull() && r_.is_map(b, "identities.basic")) {
      r_.map(b, "identities.basic", keys_of("identities.basic"));
      id.basic.htpasswd = opt_file(b, "identities.basic.", "htpasswd");
      if (auto realm = r_.str(b["realm"], "identities.basic.realm")) {
        // The realm goes into a quoted-string header parameter; keep it trivially safe there.
        bool ok = !realm->empty() && realm->size() <= 128;
        for (unsigned char c : *realm)
          if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ok = false;
        if (!ok) r_.error(b["realm"], "identities.basic.realm must be 1-128 printable ASCII characters without quotes or backslashes");
        else id.basic.realm = *realm;
      }
      group_map(b["groups"], "identities.basic.groups", id.basic.groups);
    }
    if (const YAML::Node t = n["bearer"]; t.IsDefined() && !t.IsNull() && r_.is_map(t, "identities.bearer")) {
      r_.map(t, "identities.bearer", keys_of("identities.bearer"));
      id.bearer.tokens = opt_file(t, "identities.bearer.", "tokens");
    }
    if (const YAML::Node p = n["peer"]; p.IsDefined() && !p.IsNull() && r_.is_map(p, "identities.peer")) {
      r_.map(p, "identities.peer", keys_of("identities.peer"));
      id_map(p["uids"], "identities.peer.uids", "uids", id.peer.uids);
      id_map(p["gids"], "identities.peer.gids", "gids", id.peer.gids);
    }
  }

  // ---- limits, log, workers ----
  void limits(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, "limits")) return;
    r_.map(n, "limits", keys_of("limits"));
    Limits& l = cfg_.limits;
    if (auto v = size_in(n["max_header_size"], "limits.max_header_size", 1024, 16u << 20)) l.max_header_bytes = static_cast<uint32_t>(*v);
    if (auto v = ms32(n["header_timeout"], "limits.header_timeout")) l.header_timeout_ms = *v;
    if (auto v = ms32(n["idle_timeout"], "limits.idle_timeout")) l.idle_timeout_ms = *v;
    if (auto v = size_in(n["max_inspect_body"], "limits.max_inspect_body", 0, 1ull << 30)) l.max_inspect_body = *v;
    if (auto v = ms32(n["shutdown_grace"], "limits.shutdown_grace")) l.shutdown_grace_ms = *v;
    if (auto v = size_in(n["buffer_high"], "limits.buffer_high", 4096, 1ull << 30)) l.buffer_high = static_cast<uint32_t>(*v);
    if (auto v = size_in(n["buffer_low"], "limits.buffer_low", 0, 1ull << 30)) l.buffer_low = static_cast<uint32_t>(*v);
    if (l.buffer_low >= l.buffer_high)
      r_.error(n, "limits.buffer_low (" + std::to_string(l.buffer_low) + ") must be lower than limits.buffer_high (" +
                      std::to_string(l.buffer_high) + ")");
    if (auto v = r_.integer(n["max_connections"], "limits.max_connections", 1, 1000000)) l.max_connections = static_cast<uint32_t>(*v);
  }

  void log(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (!r_.is_map(n, "log")) return;
    r_.map(n, "log", keys_of("log"));
    if (auto s = r_.str(n["format"], "log.format")) {
      if (*s == "json") cfg_.log.format = log::Format::Json;
      else if (*s == "text") cfg_.log.format = log::Format::Text;
      else r_.error(n["format"], "log.format must be json or text (got \"" + *s + "\")");
    }
    if (auto s = r_.str(n["file"], "log.file")) {
      // Written, not read: only resolved; the log module reports when it cannot open it.
      if (s->empty()) r_.error(n["file"], "log.file must not be empty (omit it to log to stderr)");
      else cfg_.log.file = resolve_path(r_.file(), *s);
    }
    if (auto s = r_.str(n["level"], "log.level")) {
      if (*s == "debug") cfg_.log.level = log::Level::Debug;
      else if (*s == "info") cfg_.log.level = log::Level::Info;
      else if (*s == "warn") cfg_.log.level = log::Level::Warn;
      else if (*s == "error") cfg_.log.level = log::Level::Error;
      else r_.error(n["level"], "log.level must be debug, info, warn or error (got \"" + *s + "\")");
    }
  }

  void workers(const YAML::Node& n) {
    if (!n.IsDefined() || n.IsNull()) return;
    if (n.IsScalar() && n.Scalar() == "auto") {
      cfg_.workers = 0;
      return;
    }
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
        if (auto v = r_.integer(n, "workers", 1, 1024)) cfg_.workers = static_cast<unsigned>(*v);
        return;
      }
    }
    r_.error(n, "workers must be a number from 1 to 1024, or auto");
  }

  Reader r_;
  LoadOptions opt_;
  Config cfg_;
};

tl::expected<Config, Diagnostics> finish(Loader& loader, Diagnostics& diags, const std::optional<YAML::Node>& root,
                                         const std::string& path) {
  if (!root) return tl::unexpected(diags);
  try {
    loader.run(*root);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on shapes our checks did not anticipate; report instead of crashing.
    diags.items.push_back({path, e.mark.line + 1, e.mark.column + 1, std::string("malformed configuration: ") + e.msg});
  }
  if (!diags.ok()) {
    // Sections are read in dependency order (identities before listeners); report in file order.
    std::stable_sort(diags.items.begin(), diags.items.end(),
                     [](const Diag& a, const Diag& b) { return a.line != b.line ? a.line < b.line : a.col < b.col; });
    return tl::unexpected(diags);
  }
  return loader.take();
}

}  // namespace

tl::expected<Config, Diagnostics> load(const std::string& path, const LoadOptions& options) {
  Diagnostics diags;
  Loader loader(path, options, diags);
  Reader reader(path, diags);
  auto root = reader.load_file();
  return finish(loader, diags, root, path);
}

tl::expected<Config, Diagnostics> load_text(const std::string& text, const std::string& path, const LoadOptions& options) {
  Diagnostics diags;
  Loader loader(path, options, diags);
  Reader reader(path, diags);
  auto root = reader.load_text(text);
  return finish(loader, diags, root, path);
}

const std::vector<KeyInfo>& schema() { return kSchema; }

const std::vector<std::string>& documented_keys() {
  static const std::vector<std::string> keys = [] {
    std::vector<std::string> v;
    for (const auto& k : kSchema) v.emplace_back(k.key);
    return v;
  }();
  return keys;
}

}  // namespace dg::config
