#include "policy/canonical.hpp"

#include <charconv>

#include "core/strings.hpp"

namespace dg::policy {

namespace {

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

CanonicalPath fail(int status, std::string reason) {
  CanonicalPath c;
  c.status = status;
  c.reason = std::move(reason);
  return c;
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
  out.clear();
  // The usual path or value has nothing to decode: copy it at once.
  if (in.find('%') == std::string_view::npos && (!plus_is_space || in.find('+') == std::string_view::npos)) {
    out.assign(in);
    return true;
  }
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return true;
}

CanonicalPath canonicalise_path(std::string_view p) {
  // Absolute form (GET http://host/v1.41/version): dockerd routes by the path alone.
  if (p.size() >= 7 && (iequals(p.substr(0, 7), "http://") || (p.size() >= 8 && iequals(p.substr(0, 8), "https://")))) {
    size_t start = iequals(p.substr(0, 7), "http://") ? 7 : 8;
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) return fail(400, "request target has no path");
    p = p.substr(slash);
  }
  if (p.empty() || p[0] != '/') return fail(400, "request target must be an absolute path");
  // An encoded '/' routes as '/' in dockerd (so "NAME%2Fjson" reaches another operation than it
  // looks like); the docker CLI never sends one in a path.
  for (size_t i = 0; i + 2 < p.size(); ++i)
    if (p[i] == '%' && p[i + 1] == '2' && (p[i + 2] == 'F' || p[i + 2] == 'f'))
      return fail(400, "an encoded '/' (%2F) in the request path is not accepted");
  CanonicalPath c;
  if (!percent_decode(p, c.path, false)) return fail(400, "invalid URL escape in the request path");
  for (unsigned char ch : c.path)
    if (ch < 0x20 || ch == 0x7f) return fail(400, "control characters in the request path are not accepted");
  // dockerd answers these with a 301 to the cleaned path: never let them through.
  const std::string& d = c.path;
  if (d.find("//") != std::string::npos) return fail(400, "non-canonical request path (empty segment)");
  size_t i = 0;
  while (i < d.size()) {
    size_t j = d.find('/', i + 1);
    if (j == std::string::npos) j = d.size();
    std::string_view seg(d.data() + i + 1, j - i - 1);
    if (seg == "." || seg == "..") return fail(400, "non-canonical request path (dot segment)");
    i = j;
  }
  // Version prefix: /v{version:[0-9.]+}/...
  if (d.size() > 2 && d[1] == 'v' && d[2] >= '0' && d[2] <= '9') {
    size_t end = d.find('/', 2);
    std::string_view ver(d.data() + 2, (end == std::string::npos ? d.size() : end) - 2);
    bool numeric = true;
    for (char ch : ver) numeric = numeric && ((ch >= '0' && ch <= '9') || ch == '.');
    if (numeric) {
      size_t dot = ver.find('.');
      if (dot == std::string_view::npos || !all_digits(ver.substr(0, dot)) || !all_digits(ver.substr(dot + 1)))
        return fail(400, "malformed API version \"" + std::string(ver) + "\" (expected /vMAJOR.MINOR)");
      int major = 0, minor = 0;  // all_digits: at most 6 digits, no overflow
      std::from_chars(ver.data(), ver.data() + dot, major);
      std::from_chars(ver.data() + dot + 1, ver.data() + ver.size(), minor);
      if (major < kMinApiMajor || (major == kMinApiMajor && minor < kMinApiMinor))
        return fail(400, "client version " + std::string(ver) + " is too old: dockgate requires API version 1.24 or later");
      if (end == std::string::npos) return fail(403, "no operation matches " + d);
      c.api_version = std::string(ver);
      c.path.erase(0, end);  // d is c.path
    }
  }
  c.ok = true;
  return c;
}

std::optional<std::string> query_error(std::string_view q) {
  for (size_t i = 0; i < q.size(); ++i) {
    char ch = q[i];
    if (ch == ';') return std::string("invalid semicolon separator in query");
    if (ch == '%') {
      if (i + 2 >= q.size() || hexval(q[i + 1]) < 0 || hexval(q[i + 2]) < 0) return std::string("invalid URL escape in query");
    }
  }
  return std::nullopt;
}

QueryParams parse_query(std::string_view q) {
  QueryParams out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string k, v;
    percent_decode(part.substr(0, eq), k, true);
    if (eq != std::string_view::npos) percent_decode(part.substr(eq + 1), v, true);
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}

const std::string* query_first(const QueryParams& q, std::string_view key) {
  for (const auto& kv : q)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

std::vector<std::string_view> query_all(const QueryParams& q, std::string_view key) {
  std::vector<std::string_view> out;
  for (const auto& kv : q)
    if (kv.first == key) out.emplace_back(kv.second);
  return out;
}

bool query_bool(const QueryParams& q, std::string_view key) {
  const std::string* v = query_first(q, key);
  if (!v) return false;
  std::string s = to_lower(trim(*v));
  return !(s.empty() || s == "0" || s == "no" || s == "false" || s == "none");
}

bool path_within(std::string_view p, std::string_view prefix) {
  if (prefix == "/") return true;
  if (p.size() < prefix.size() || p.substr(0, prefix.size()) != prefix) return false;
  return p.size() == prefix.size() || p[prefix.size()] == '/';
}

bool media_type_is(std::string_view ct, std::string_view type) {
  return iequals(trim(ct.substr(0, ct.find(';'))), type);
}

}  // namespace dg::policy
