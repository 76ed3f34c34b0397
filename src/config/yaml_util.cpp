#include "config/yaml_util.hpp"

#include <arpa/inet.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace dg::config {

std::string Diag::str() const {
  std::string s = file;
  if (line > 0) {
    s += ':' + std::to_string(line);
    if (col > 0) s += ':' + std::to_string(col);
  }
  s += ": " + message;
  return s;
}

std::string Diagnostics::str() const {
  std::string s;
  for (const auto& d : items) s += d.str() + "\n";
  return s;
}

std::optional<YAML::Node> Reader::load_file() {
  std::error_code ec;
  if (std::filesystem::is_directory(file_, ec)) {
    diags_.items.push_back({file_, 0, 0, "cannot read file: it is a directory"});
    return std::nullopt;
  }
  std::ifstream in(file_);
  if (!in) {
    diags_.items.push_back({file_, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    diags_.items.push_back({file_, 0, 0, std::string("cannot read file: ") + std::strerror(errno)});
    return std::nullopt;
  }
  return load_text(ss.str());
}

std::optional<YAML::Node> Reader::load_text(const std::string& text) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    diags_.items.push_back({file_, e.mark.line + 1, e.mark.column + 1, "YAML syntax error: " + e.msg});
    return std::nullopt;
  }
}

void Reader::error(const YAML::Node& at, std::string message) {
  int line = 0, col = 0;
  if (at.IsDefined()) {
    auto m = at.Mark();
    if (m.line >= 0) {
      line = m.line + 1;
      col = m.column + 1;
    }
  }
  diags_.items.push_back({file_, line, col, std::move(message)});
}

void Reader::error_at(int line, int col, std::string message) {
  diags_.items.push_back({file_, line, col, std::move(message)});
}

bool Reader::is_map(const YAML::Node& node, std::string_view what) {
  if (!node.IsMap()) {
    error(node, std::string(what) + " must be a mapping");
    return false;
  }
  return true;
}

bool Reader::is_seq(const YAML::Node& node, std::string_view what) {
  if (!node.IsSequence()) {
    error(node, std::string(what) + " must be a list");
    return false;
  }
  return true;
}

bool Reader::map(const YAML::Node& node, std::string_view what, const std::vector<std::string>& keys) {
  if (!is_map(node, what)) return false;
  bool ok = true;
  std::vector<std::string> seen;
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      error(kv.first, std::string(what) + ": keys must be strings");
      ok = false;
      continue;
    }
    const std::string k = kv.first.Scalar();
    // yaml-cpp keeps both entries of a repeated key and node[k] silently returns the first one,
    // so a later override the user meant would be ignored: refuse it instead.
    bool dup = false;
    for (const auto& s : seen)
      if (s == k) dup = true;
    if (dup) {
      error(kv.first, "duplicate key \"" + k + "\" in " + std::string(what));
      ok = false;
      continue;
    }
    seen.push_back(k);
    bool known = false;
    for (const auto& allowed : keys)
      if (k == allowed) known = true;
    if (!known) {
      std::string list;
      for (const auto& allowed : keys) list += (list.empty() ? "" : ", ") + allowed;
      error(kv.first, "unknown key \"" + k + "\" in " + std::string(what) + " (known: " + list + ")");
      ok = false;
    }
  }
  return ok;
}

bool Reader::map(const YAML::Node& node, std::string_view what, std::initializer_list<std::string_view> keys) {
  std::vector<std::string> v;
  for (auto k : keys) v.emplace_back(k);
  return map(node, what, v);
}

std::optional<std::string> Reader::str(const YAML::Node& node, std::string_view key) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (!node.IsScalar()) {
    error(node, std::string(key) + " must be a string");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool> Reader::boolean(const YAML::Node& node, std::string_view key) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  error(node, std::string(key) + " must be true or false");
  return std::nullopt;
}

std::optional<int64_t> Reader::integer(const YAML::Node& node, std::string_view key, int64_t min, int64_t max) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  if (node.IsScalar()) {
    const std::string& s = node.Scalar();
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && end && *end == '\0' && errno == 0) {
      if (v < min || v > max) {
        error(node, std::string(key) + " must be between " + std::to_string(min) + " and " + std::to_string(max));
        return std::nullopt;
      }
      return v;
    }
  }
  error(node, std::string(key) + " must be an integer");
  return std::nullopt;
}

namespace {

bool parse_number_suffix(const std::string& s, double& num, std::string& suffix) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) return false;
  try {
    num = std::stod(s.substr(0, i));
  } catch (...) {
    return false;
  }
  suffix = s.substr(i);
  while (!suffix.empty() && suffix.front() == ' ') suffix.erase(0, 1);
  return num >= 0;
}

}  // namespace

std::optional<uint64_t> Reader::duration_ms(const YAML::Node& node, std::string_view key) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  double n = 0;
  std::string suf;
  if (node.IsScalar() && parse_number_suffix(node.Scalar(), n, suf)) {
    double mult = -1;
    if (suf.empty() || suf == "s") mult = 1000;
    else if (suf == "ms") mult = 1;
    else if (suf == "m") mult = 60e3;
    else if (suf == "h") mult = 3600e3;
    else if (suf == "d") mult = 86400e3;
    if (mult > 0) return static_cast<uint64_t>(n * mult);
  }
  error(node, std::string(key) + " must be a duration such as 500ms, 30s, 5m, 24h, 7d");
  return std::nullopt;
}

std::optional<uint64_t> Reader::size_bytes(const YAML::Node& node, std::string_view key) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  double n = 0;
  std::string suf;
  if (node.IsScalar() && parse_number_suffix(node.Scalar(), n, suf)) {
    double mult = -1;
    std::string s;
    for (char c : suf) s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s.empty() || s == "b") mult = 1;
    else if (s == "k" || s == "kib") mult = 1024.0;
    else if (s == "m" || s == "mib") mult = 1024.0 * 1024;
    else if (s == "g" || s == "gib") mult = 1024.0 * 1024 * 1024;
    else if (s == "kb") mult = 1e3;
    else if (s == "mb") mult = 1e6;
    else if (s == "gb") mult = 1e9;
    if (mult > 0) return static_cast<uint64_t>(n * mult);
  }
  error(node, std::string(key) + " must be a size such as 4096, 64KiB, 1MiB, 2GiB");
  return std::nullopt;
}

std::optional<std::vector<std::string>> Reader::str_list(const YAML::Node& node, std::string_view key) {
  if (!node.IsDefined() || node.IsNull()) return std::nullopt;
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return out;
  }
  if (node.IsSequence()) {
    bool ok = true;
    for (const auto& item : node) {
      if (!item.IsScalar()) {
        error(item, std::string(key) + " entries must be strings");
        ok = false;
        continue;
      }
      out.push_back(item.Scalar());
    }
    if (ok) return out;
    return std::nullopt;
  }
  error(node, std::string(key) + " must be a string or a list of strings");
  return std::nullopt;
}

bool Reader::is_quoted(const YAML::Node& node) {
  if (!node.IsDefined() || !node.IsScalar()) return false;
  const std::string& tag = node.Tag();
  return tag == "!" || tag == "tag:yaml.org,2002:str";
}

YAML::Node Reader::required(const YAML::Node& parent, std::string_view key, std::string_view what) {
  YAML::Node n = parent[std::string(key)];
  if (!n.IsDefined() || n.IsNull()) error(parent, "missing required key \"" + std::string(key) + "\" in " + std::string(what));
  return n;
}

std::string resolve_path(const std::string& relative_to_file, const std::string& p) {
  namespace fs = std::filesystem;
  fs::path path(p);
  if (path.is_relative()) {
    fs::path base = fs::path(relative_to_file).parent_path();
    if (base.is_relative()) base = fs::current_path() / base;
    path = base / path;
  }
  return path.lexically_normal().string();
}

tl::expected<Address, std::string> parse_address(const std::string& text) {
  Address a;
  a.text = text;
  if (text.rfind("unix://", 0) == 0) {
    a.kind = Address::Kind::Unix;
    a.path = text.substr(7);
    if (a.path.empty() || a.path[0] != '/') return tl::unexpected<std::string>("unix address needs an absolute path: unix:///path/to.sock");
    if (a.path.size() >= sizeof(((struct sockaddr_un*)nullptr)->sun_path))
      return tl::unexpected<std::string>("unix socket path too long (max 107 bytes)");
    return a;
  }
  if (text.rfind("tcp://", 0) == 0) {
    a.kind = Address::Kind::Tcp;
    std::string rest = text.substr(6);
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    std::string port;
    if (!rest.empty() && rest[0] == '[') {
      auto close = rest.find(']');
      if (close == std::string::npos) return tl::unexpected<std::string>("bad IPv6 address: missing ']'");
      a.host = rest.substr(1, close - 1);
      if (close + 1 < rest.size()) {
        if (rest[close + 1] != ':') return tl::unexpected<std::string>("expected ':port' after ']'");
        port = rest.substr(close + 2);
      }
    } else {
      auto colon = rest.rfind(':');
      if (colon == std::string::npos) return tl::unexpected<std::string>("tcp address needs a port: tcp://host:port");
      a.host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    if (a.host.empty()) return tl::unexpected<std::string>("tcp address needs a host");
    if (port.empty()) return tl::unexpected<std::string>("tcp address needs a port: tcp://host:port");
    char* end = nullptr;
    long p = std::strtol(port.c_str(), &end, 10);
    if (!end || *end || p < 0 || p > 65535) return tl::unexpected<std::string>("bad port \"" + port + "\"");
    a.port = static_cast<uint16_t>(p);
    return a;
  }
  return tl::unexpected<std::string>("address must start with tcp:// or unix://");
}

bool Address::is_loopback() const {
  if (kind != Kind::Tcp) return false;
  if (host == "localhost" || host == "::1") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

const char* auth_method_name(AuthMethod m) {
  switch (m) {
    case AuthMethod::Mtls: return "mtls";
    case AuthMethod::Basic: return "basic";
    case AuthMethod::Bearer: return "bearer";
    case AuthMethod::Peer: return "peer";
    case AuthMethod::Anonymous: return "anonymous";
  }
  return "?";
}

}  // namespace dg::config
