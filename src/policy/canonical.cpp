#include "policy/canonical.hpp"

#include <bit>
#include <cstring>

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

namespace {

CanonicalView fail_view(int status, std::string reason) {
  CanonicalView c;
  c.status = status;
  c.reason = std::move(reason);
  return c;
}

// "1.41" of at most 6+6 digits (all_digits checked).
int small_int(std::string_view s) {
  int v = 0;
  for (char ch : s) v = v * 10 + (ch - '0');
  return v;
}

}  // namespace

CanonicalView canonicalise_path_view(std::string_view p, std::string& scratch) {
  // Absolute form (GET http://host/v1.41/version): dockerd routes by the path alone.
  if (!p.empty() && p[0] != '/' && p.size() >= 7 &&
      (iequals(p.substr(0, 7), "http://") || (p.size() >= 8 && iequals(p.substr(0, 8), "https://")))) {
    size_t start = iequals(p.substr(0, 7), "http://") ? 7 : 8;
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) return fail_view(400, "request target has no path");
    p = p.substr(slash);
  }
  if (p.empty() || p[0] != '/') return fail_view(400, "request target must be an absolute path");
  // The path as received, a word at a time: control characters, '%' (then the checks run again
  // on the decoded path below), "//" (an empty segment) and "/." (maybe a dot segment).
  bool ctl = false, empty_seg = false, dot_seg = false, encoded = false;
  {
    const char* s = p.data();
    const size_t n = p.size();
    bool maybe_dot = true;
    if (n >= 8 && std::endian::native == std::endian::little) {
      uint64_t c = 0, pct = 0, ss = 0, sd = 0;
      // Windows 7 bytes apart (the last one overlapping): every two neighbouring bytes lie in one.
      for (size_t i = 0;; i += 7) {
        if (i + 8 > n) i = n - 8;
        uint64_t w = swar::load8(s + i);
        c |= swar::has_less(w, 0x20) | swar::has_byte(w, 0x7f);
        pct |= swar::has_byte(w, '%');
        uint64_t sl = swar::eq_mask(w, '/'), dt = swar::eq_mask(w, '.');
        ss |= sl & (sl >> 8);  // byte k and byte k+1 both '/'
        sd |= sl & (dt >> 8);  // byte k '/', byte k+1 '.'
        if (i + 8 == n) break;
      }
      ctl = c != 0;
      encoded = pct != 0;
      empty_seg = ss != 0;
      maybe_dot = sd != 0;
    } else {
      for (size_t i = 0; i < n; ++i) {
        unsigned char ch = static_cast<unsigned char>(s[i]);
        ctl = ctl || ch < 0x20 || ch == 0x7f;
        encoded = encoded || ch == '%';
        empty_seg = empty_seg || (ch == '/' && i + 1 < n && s[i + 1] == '/');
      }
    }
    if (maybe_dot) {
      const char* end = s + n;
      for (const char* seg = s + 1;;) {  // p[0] is '/'
        const char* slash = static_cast<const char*>(std::memchr(seg, '/', static_cast<size_t>(end - seg)));
        size_t len = static_cast<size_t>((slash ? slash : end) - seg);
        if (len && len <= 2 && seg[0] == '.' && (len == 1 || seg[1] == '.')) dot_seg = true;
        if (!slash) break;
        seg = slash + 1;
      }
    }
  }
  std::string_view d = p;  // the decoded path
  if (encoded) {
    // An encoded '/' routes as '/' in dockerd (so "NAME%2Fjson" reaches another operation than it
    // looks like); the docker CLI never sends one in a path.
    for (size_t i = 0; i + 2 < p.size(); ++i)
      if (p[i] == '%' && p[i + 1] == '2' && (p[i + 2] == 'F' || p[i + 2] == 'f'))
        return fail_view(400, "an encoded '/' (%2F) in the request path is not accepted");
    if (!percent_decode(p, scratch, false)) return fail_view(400, "invalid URL escape in the request path");
    d = scratch;
    ctl = false;
    for (unsigned char ch : d)
      if (ch < 0x20 || ch == 0x7f) ctl = true;
    empty_seg = d.find("//") != std::string_view::npos;
    dot_seg = false;
    for (size_t i = 0; i < d.size();) {
      size_t j = d.find('/', i + 1);
      if (j == std::string_view::npos) j = d.size();
      std::string_view seg = d.substr(i + 1, j - i - 1);
      if (seg == "." || seg == "..") dot_seg = true;
      i = j;
    }
  }
  if (ctl) return fail_view(400, "control characters in the request path are not accepted");
  // dockerd answers these with a 301 to the cleaned path: never let them through.
  if (empty_seg) return fail_view(400, "non-canonical request path (empty segment)");
  if (dot_seg) return fail_view(400, "non-canonical request path (dot segment)");
  CanonicalView c;
  c.path = d;
  // Version prefix: /v{version:[0-9.]+}/...
  if (d.size() > 2 && d[1] == 'v' && d[2] >= '0' && d[2] <= '9') {
    size_t end = 2, dot = std::string_view::npos;  // dot: the first '.', in ver
    bool numeric = true;
    for (; end < d.size() && d[end] != '/'; ++end) {
      char ch = d[end];
      if (ch == '.') {
        if (dot == std::string_view::npos) dot = end - 2;
      } else if (ch < '0' || ch > '9') {
        numeric = false;
      }
    }
    std::string_view ver(d.data() + 2, end - 2);
    if (numeric) {
      std::string_view major_s = dot == std::string_view::npos ? ver : std::string_view(ver.data(), dot);
      std::string_view minor_s = dot == std::string_view::npos ? std::string_view()
                                                               : std::string_view(ver.data() + dot + 1, ver.size() - dot - 1);
      if (dot == std::string_view::npos || !all_digits(major_s) || !all_digits(minor_s))
        return fail_view(400, "malformed API version \"" + std::string(ver) + "\" (expected /vMAJOR.MINOR)");
      int major = small_int(major_s), minor = small_int(minor_s);  // at most 6 digits each
      if (major < kMinApiMajor || (major == kMinApiMajor && minor < kMinApiMinor))
        return fail_view(400, "client version " + std::string(ver) + " is too old: dockgate requires API version 1.24 or later");
      if (end == d.size()) return fail_view(403, "no operation matches " + std::string(d));
      c.api_version = ver;
      c.path = std::string_view(d.data() + end, d.size() - end);
    }
  }
  c.ok = true;
  return c;
}

std::optional<std::string> query_error(std::string_view q) {
  if (q.size() >= 8) {  // the usual query has neither ';' nor '%': one test per word
    uint64_t any = 0;
    for (size_t i = 0;; i += 8) {
      if (i + 8 > q.size()) i = q.size() - 8;
      uint64_t w = swar::load8(q.data() + i);
      any |= swar::has_byte(w, ';') | swar::has_byte(w, '%');
      if (i + 8 == q.size()) break;
    }
    if (!any) return std::nullopt;
  }
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
