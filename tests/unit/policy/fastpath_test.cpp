// The fast paths of the decision (route table, canonical path checks a word at a time, the member
// index of gojson::Struct, SWAR string helpers) against the straightforward algorithms they
// replaced, on edge cases and on many generated inputs.
#include <algorithm>
#include <cstring>
#include <random>

#include "core/strings.hpp"
#include "helpers.hpp"
#include "policy/canonical.hpp"
#include "policy/gojson.hpp"
#include "policy/images.hpp"
#include "policy/routes.hpp"

using namespace dg;
using namespace dg::policy;
using namespace dg::policy::test;

namespace ref {

// --- the original algorithms, kept here as references ---

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

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

// The owning result the original algorithm returned.
struct CanonicalPath {
  bool ok = false;
  int status = 400;
  std::string reason;
  std::string path;
  std::string api_version;
};

CanonicalPath fail(int status, std::string reason) {
  CanonicalPath c;
  c.status = status;
  c.reason = std::move(reason);
  return c;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
      if (h < 0 || l < 0) return false;
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

CanonicalPath canonicalise_path(std::string_view p) {
  if (p.size() >= 7 && (iequals(p.substr(0, 7), "http://") || (p.size() >= 8 && iequals(p.substr(0, 8), "https://")))) {
    size_t start = iequals(p.substr(0, 7), "http://") ? 7 : 8;
    size_t slash = p.find('/', start);
    if (slash == std::string_view::npos) return fail(400, "request target has no path");
    p = p.substr(slash);
  }
  if (p.empty() || p[0] != '/') return fail(400, "request target must be an absolute path");
  for (size_t i = 0; i + 2 < p.size(); ++i)
    if (p[i] == '%' && p[i + 1] == '2' && (p[i + 2] == 'F' || p[i + 2] == 'f'))
      return fail(400, "an encoded '/' (%2F) in the request path is not accepted");
  CanonicalPath c;
  if (!percent_decode(p, c.path)) return fail(400, "invalid URL escape in the request path");
  for (unsigned char ch : c.path)
    if (ch < 0x20 || ch == 0x7f) return fail(400, "control characters in the request path are not accepted");
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
  if (d.size() > 2 && d[1] == 'v' && d[2] >= '0' && d[2] <= '9') {
    size_t end = d.find('/', 2);
    std::string_view ver(d.data() + 2, (end == std::string::npos ? d.size() : end) - 2);
    bool numeric = true;
    for (char ch : ver) numeric = numeric && ((ch >= '0' && ch <= '9') || ch == '.');
    if (numeric) {
      size_t dot = ver.find('.');
      if (dot == std::string_view::npos || !all_digits(ver.substr(0, dot)) || !all_digits(ver.substr(dot + 1)))
        return fail(400, std::string("malformed API version \"") + std::string(ver) + "\" (expected /vMAJOR.MINOR)");
      int major = std::stoi(std::string(ver.substr(0, dot))), minor = std::stoi(std::string(ver.substr(dot + 1)));
      if (major < kMinApiMajor || (major == kMinApiMajor && minor < kMinApiMinor))
        return fail(400, std::string("client version ") + std::string(ver) + " is too old: dockgate requires API version 1.24 or later");
      if (end == std::string::npos) return fail(403, "no operation matches " + d);
      c.api_version = std::string(ver);
      c.path.erase(0, end);
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

struct Match {
  int op = -1;
  std::string param_name, param;
  bool ambiguous = false;
};

// Every route in table order, each pattern matched on its own.
Match match_route(std::string_view method, std::string_view path, bool versioned) {
  Match m;
  for (const auto& r : routes()) {
    if (r.method != "*" && r.method != method) continue;
    if (versioned && !r.versioned) continue;
    std::string_view pat = r.pattern, pname, pval;
    size_t open = pat.find('{');
    if (open == std::string_view::npos) {
      if (pat != path) continue;
    } else {
      size_t close = pat.find('}', open);
      std::string_view prefix = pat.substr(0, open), suffix = pat.substr(close + 1);
      pname = pat.substr(open + 1, close - open - 1);
      if (path.size() < prefix.size() + suffix.size() + 1) continue;
      if (path.substr(0, prefix.size()) != prefix) continue;
      if (path.substr(path.size() - suffix.size()) != suffix) continue;
      pval = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
      if (pname == "id" && pval.find('/') != std::string_view::npos) continue;
    }
    if (m.op >= 0) {
      if (m.op != r.op || m.param != pval) m.ambiguous = true;
      continue;
    }
    m.op = r.op;
    m.param_name = pname;
    m.param = pval;
  }
  return m;
}

bool key_matches(std::string_view key, std::string_view field) {
  if (key.size() < field.size()) return false;
  if (key.size() == field.size()) {
    for (size_t k = 0; k < key.size(); ++k) {
      char a = key[k], b = field[k];
      if (a == b) continue;
      char la = static_cast<char>(a | 0x20);
      if (la != static_cast<char>(b | 0x20) || la < 'a' || la > 'z') return false;
    }
    return true;
  }
  bool ascii = true;
  for (char c : key) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii) return false;
  size_t i = 0, j = 0;
  while (i < key.size() && j < field.size()) {
    unsigned char k = static_cast<unsigned char>(key[i]);
    char f = field[j];
    char fu = (f >= 'a' && f <= 'z') ? static_cast<char>(f - 32) : f;
    if (k < 0x80) {
      char ku = (k >= 'a' && k <= 'z') ? static_cast<char>(k - 32) : static_cast<char>(k);
      if (ku != fu) return false;
      ++i;
      ++j;
      continue;
    }
    if (fu == 'K' && i + 2 < key.size() && k == 0xE2 && static_cast<unsigned char>(key[i + 1]) == 0x84 &&
        static_cast<unsigned char>(key[i + 2]) == 0xAA) {
      i += 3;
      ++j;
      continue;
    }
    if (fu == 'S' && i + 1 < key.size() && k == 0xC5 && static_cast<unsigned char>(key[i + 1]) == 0xBF) {
      i += 2;
      ++j;
      continue;
    }
    return false;
  }
  return i == key.size() && j == field.size();
}

bool glob_match(std::string_view p, std::string_view t) {
  while (!p.empty() && p[0] != '*') {
    if (t.empty() || p[0] != t[0]) return false;
    p.remove_prefix(1);
    t.remove_prefix(1);
  }
  if (p.empty()) return t.empty();
  bool any = p.size() > 1 && p[1] == '*';
  std::string_view rest = p.substr(any ? 2 : 1);
  for (size_t i = 0; i <= t.size(); ++i) {
    if (glob_match(rest, t.substr(i))) return true;
    if (i < t.size() && !any && t[i] == '/') return false;
  }
  return false;
}

void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
          out.append(esc, sizeof esc);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace ref

namespace {

std::mt19937_64& rng() {
  static std::mt19937_64 r(20261123);
  return r;
}
size_t pick(size_t n) { return n ? static_cast<size_t>(rng()() % n) : 0; }

std::string random_bytes(size_t n, std::string_view alphabet) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[pick(alphabet.size())];
  return s;
}

void check_canonical(const std::string& p) {
  auto want = ref::canonicalise_path(p);
  INFO("path: ", p);
  std::string scratch;
  auto view = canonicalise_path_view(p, scratch);
  CHECK(view.ok == want.ok);
  CHECK(view.status == want.status);
  CHECK(view.reason == want.reason);
  if (view.ok) {
    CHECK(view.path == want.path);
    CHECK(view.api_version == want.api_version);
  }
}

std::string fill(std::string_view pattern, std::string_view value) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      out += value;
      i = pattern.find('}', i);
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

TEST_CASE("iequals and the SWAR byte tests agree with byte-by-byte code") {
  for (int a = 0; a < 256; ++a)
    for (int b = 0; b < 256; ++b) {
      char x = static_cast<char>(a), y = static_cast<char>(b);
      std::string s1(9, 'q'), s2(9, 'q');  // one odd byte in a word-compared string
      s1[4] = x;
      s2[4] = y;
      REQUIRE(iequals(s1, s2) == ref::iequals(s1, s2));
      REQUIRE(iequals(std::string_view(&x, 1), std::string_view(&y, 1)) == ref::iequals(std::string_view(&x, 1), std::string_view(&y, 1)));
    }
  for (int n = 0; n < 3000; ++n) {
    std::string a = random_bytes(pick(40), "aAzZ09-_@[`{\x7f\xc3\xa9/"), b = a;
    for (size_t k = pick(3); k-- > 0 && !b.empty();) b[pick(b.size())] ^= static_cast<char>(pick(2) ? 0x20 : 0x01);
    REQUIRE(iequals(a, b) == ref::iequals(a, b));
    REQUIRE(iequals(a, a));
  }
  for (int n = 0; n < 20000; ++n) {
    uint64_t w = rng()();
    if (pick(2)) {  // plant interesting bytes
      unsigned char planted[] = {0x00, 0x1f, 0x20, 0x7f, 0x80, '%', '/', '.', '"', '\\', 'A', 'Z', '@', '[', 0xff};
      reinterpret_cast<unsigned char*>(&w)[pick(8)] = planted[pick(sizeof planted)];
    }
    unsigned char bytes[8];
    std::memcpy(bytes, &w, 8);
    bool less20 = false, del = false, pct = false;
    uint64_t eq_slash = 0, lower = 0;
    for (int i = 0; i < 8; ++i) {
      less20 = less20 || bytes[i] < 0x20;
      del = del || bytes[i] == 0x7f;
      pct = pct || bytes[i] == '%';
      if (bytes[i] == '/') eq_slash |= uint64_t{0x80} << (8 * i);
      lower |= static_cast<uint64_t>(static_cast<unsigned char>(ascii_lower(static_cast<char>(bytes[i])))) << (8 * i);
    }
    uint64_t le = 0;
    for (int i = 7; i >= 0; --i) le = (le << 8) | bytes[i];
    REQUIRE((swar::has_less(le, 0x20) != 0) == less20);
    REQUIRE((swar::has_byte(le, 0x7f) != 0) == del);
    REQUIRE((swar::has_byte(le, '%') != 0) == pct);
    REQUIRE(swar::eq_mask(le, '/') == eq_slash);
    REQUIRE(swar::lower8(le) == lower);
  }
}

TEST_CASE("append_json_string escapes like the byte-by-byte version") {
  for (int n = 0; n < 5000; ++n) {
    std::string s = random_bytes(pick(50), "abcdefgh12345678\"\\\n\r\t\x01\x1f\x7f\xc3\xa9 /");
    std::string got = "x", want = "x";
    append_json_string(got, s);
    ref::append_json_string(want, s);
    REQUIRE(got == want);
  }
}

TEST_CASE("canonical paths: version prefixes, escapes, segments at every word position") {
  for (const char* p : {"/", "/_ping", "/v1.41", "/v1.41/", "/v1.24/info", "/v1.23/info", "/v1/info", "/v1./info", "/v.1/info",
                        "/v01.041/info", "/v1.041/x", "/v1234567.1/x", "/v1.1234567/x", "/v123456.123456/x", "/v1..41/x",
                        "/v1.41.0/x", "/v1.4a/info", "/va.b/info", "/V1.41/info", "/v9.99/info", "/v0.99/info", "/v2/x",
                        "/v1.24", "/v1.23", "/%76%31.41/info", "/v1%2e41/info", "/containers/json/", "/containers//json",
                        "//", "/./", "/.", "/..", "/a/.", "/a/..", "/a/.b", "/a/..b", "/a/b.", "/.a", "/containers/%2e/json",
                        "/%2E%2E/x", "/a%2Fb", "/a%2fb", "/a%2", "/a%", "/a%zz", "/a%41b", "/a%00b", "/a\x01", "/a\x7f",
                        "/\x1f", "http://h/v1.41/version", "HTTPS://h:1/x", "http://h", "http://", "https:/x", "ftp://x/y",
                        "x/y", "", "v1.41/version", "/containers/abc/json", "/images/docker.io/library/busybox/json"})
    check_canonical(p);
  // Every special character at every position around the 7/8-byte windows of the word scan.
  const std::string base = "/containers/abcdefghijklmnopq/json";
  for (const char* special : {"/", "//", "/.", "/..", "/./", "/../", "%", "%41", "%2F", "\x01", "\x7f", "\t", ".", "%2e"}) {
    for (size_t at = 0; at <= base.size(); ++at) {
      std::string p = base;
      p.insert(at, special);
      check_canonical(p);
      check_canonical("/v1.41" + p);
      check_canonical(p.substr(0, std::min<size_t>(p.size(), 1 + at % 9)));  // short paths
    }
  }
  for (int n = 0; n < 20000; ++n) {
    std::string p = std::string("/") + random_bytes(pick(30), "ab/.%2Ff0v1.4\x01\x7f");
    if (pick(3) == 0) p = "/v1.41" + p;
    check_canonical(p);
  }
}

TEST_CASE("query checks at every position") {
  for (size_t len = 0; len < 24; ++len)
    for (size_t at = 0; at < len; ++at)
      for (const char* special : {";", "%", "%4", "%41", "%zz", "+"}) {
        std::string q(len, 'a');
        q.replace(at, std::min(std::strlen(special), len - at), special);
        INFO("query: ", q);
        CHECK(query_error(q) == ref::query_error(q));
      }
}

TEST_CASE("the route table gives what matching every pattern in order gives") {
  const std::vector<std::string> methods = {"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "get", "", "GETX", "*"};
  const std::vector<std::string> values = {"x", "abc", "a/b", "json", "a/json", "x/attach", "start", "docker.io/library/busybox",
                                           "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "."};
  std::vector<std::string> paths = {"", "/", "x", "//", "/containers", "/containers/", "/networks/", "/networks", "/volumes/",
                                    "/debug/pprof/", "/debug/pprof", "/info/", "/_ping/", "/containers/json/x", "json",
                                    "containers/json", "/CONTAINERS/json", "/containers/json/"};
  for (const auto& r : routes()) {
    for (const auto& v : values) {
      std::string p = fill(r.pattern, v);
      paths.push_back(p);
      paths.push_back(p + "/");
      paths.push_back(p.substr(0, p.size() - 1));
      paths.push_back(p + "x");
      paths.push_back("/x" + p);
    }
  }
  for (const auto& p : paths)
    for (const auto& m : methods)
      for (bool versioned : {false, true}) {
        auto want = ref::match_route(m, p, versioned);
        auto got = match_route(m, p, versioned);
        INFO(m, " ", p, " versioned=", versioned);
        REQUIRE(got.op == want.op);
        REQUIRE(got.ambiguous == want.ambiguous);
        REQUIRE(std::string(got.param_name) == want.param_name);
        REQUIRE(std::string(got.param) == want.param);
      }
}

TEST_CASE("route edge cases: versions, escapes, trailing slashes, long paths") {
  auto op = [](const std::string& method, const std::string& target) {
    auto r = route_request(head(method, target));
    return r.ok ? std::string(r.op.name) : std::string("DENY ") + std::to_string(r.status);
  };
  CHECK(op("GET", "/v1.41/containers/json") == "ContainerList");
  CHECK(op("GET", "/v1.24/containers/json") == "ContainerList");
  CHECK(op("GET", "/v1.23/containers/json") == "DENY 400");
  CHECK(op("GET", "/v1.4a/containers/json") == "DENY 403");  // not a version: no such route
  CHECK(op("GET", "/%76%31.41/containers/json") == "ContainerList");
  CHECK(op("GET", "/v1.41/%63ontainers/json") == "ContainerList");
  CHECK(op("GET", "/v1.41/containers/json/") == "DENY 403");
  CHECK(op("GET", "/v1.41/containers/json//") == "DENY 400");
  CHECK(op("GET", "/v1.41/networks/") == "NetworkList");
  CHECK(op("GET", "/networks/") == "NetworkList");
  CHECK(op("GET", "/v1.41/debug/pprof/") == "DENY 403");  // unversioned only
  CHECK(op("GET", "/debug/pprof/") == "DebugPprof");
  CHECK(op("PATCH", "/debug/vars") == "DebugVars");
  CHECK(op("PATCH", "/v1.41/containers/json") == "DENY 403");
  CHECK(op("get", "/_ping") == "DENY 403");
  CHECK(op("HEAD", "/v1.41/containers/x/archive") == "ContainerArchiveInfo");
  CHECK(op("GET", "/v1.41/services/a/b") == "DENY 403");
  CHECK(op("GET", "/v1.41/nodes/a") == "NodeInspect");
  // Parameters and paths beyond the inline buffer of Operation::path.
  std::string id(200, 'a');
  auto r = route_request(head("GET", "/v1.41/containers/" + id + "/json"));
  REQUIRE(r.ok);
  CHECK(r.op.path == "/containers/" + id + "/json");
  CHECK(*r.op.param("name") == id);
  Routed copy = r;  // copies and moves keep the path, short or long
  Routed moved = std::move(r);
  CHECK(copy.op.path == "/containers/" + id + "/json");
  CHECK(moved.op.path == "/containers/" + id + "/json");
  CHECK(r.op.path.size() == std::string_view(r.op.path).size());  // moved from: valid (and empty)
  auto s = route_request(head("POST", "/v1.41/containers/abc/start"));
  Routed s2 = s;
  s2.op.path = copy.op.path;
  s2 = s;
  CHECK(s2.op.path == "/containers/abc/start");
  CHECK(std::string_view(s2.op.path).size() == s2.op.path.size());
  CHECK(s2.op.api_version == "1.41");
}

TEST_CASE("Content-Type: plain ASCII checked at every position") {
  for (size_t at = 0; at < 24; ++at)
    for (const char* bad : {"\x01", "\x7f", "\xc2\xa0", "\x1f"}) {
      std::string ct = "application/json; charset=utf-8";
      ct.insert(std::min(at, ct.size()), bad);
      auto r = route_request(head("POST", "/v1.41/containers/create", "{}", ct));
      INFO("content type: ", ct);
      CHECK(!r.ok);
      CHECK(r.status == 400);
    }
  auto r = route_request(head("POST", "/v1.41/containers/create", "{}", "application/json;\tcharset=utf-8"));
  CHECK(r.ok);
}

TEST_CASE("key_matches: the inline fast paths agree with the byte-by-byte rules") {
  const std::vector<std::string> fields = {"Privileged", "KernelMemory", "SecurityOpt", "Binds", "MaskedPaths", "Sysctls",
                                           "CpusetCpus", "BlkioDeviceWriteIOps", "Dns", "K", "S", "Ks", "Memory", "A_b-c"};
  const std::string kelvin = "\xE2\x84\xAA", long_s = "\xC5\xBF";
  for (const auto& f : fields) {
    std::vector<std::string> keys = {f, "", f + "x", f.substr(1)};
    std::string lower, upper, folded;
    for (char c : f) {
      lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (c == 'k' || c == 'K') folded += kelvin;
      else if (c == 's' || c == 'S') folded += long_s;
      else folded += c;
    }
    keys.insert(keys.end(), {lower, upper, folded, folded + "x", "\xE2\x84" + f, f + "\xC5", f.substr(0, f.size() - 1) + "\xC4\xB1"});
    for (int n = 0; n < 300; ++n) {
      std::string k = f;
      for (size_t m = pick(3); m-- > 0 && !k.empty();) {
        size_t at = pick(k.size());
        switch (pick(5)) {
          case 0: k[at] ^= 0x20; break;
          case 1: k.insert(at, kelvin); break;
          case 2: k.insert(at, long_s); break;
          case 3: k.erase(at, 1); break;
          default: k[at] = static_cast<char>(pick(256));
        }
      }
      keys.push_back(k);
    }
    for (const auto& k : keys) {
      INFO("key ", k, " field ", f);
      REQUIRE(gojson::key_matches(k, f) == ref::key_matches(k, f));
    }
  }
}

TEST_CASE("Struct lookups through the member index: every spelling, duplicates, merged objects") {
  using namespace gojson;
  // Enough members for the chained index, and the same tests with few members (scanned).
  std::string filler;
  for (int i = 0; i < 40; ++i) filler += std::string(",\"Filler") + std::to_string(i) + std::string("\":") + std::to_string(i);
  for (const std::string& extra : {filler, std::string()}) {
    Doc d;
    std::string body = R"({"Privileged":true,"bind)" "\xC5\xBF" R"(":["/x"],")" "\xE2\x84\xAA" R"(ernelMemory":5,"MEMORY":7)" +
                       extra + R"(,"cpusetcpus":"0","CpusetCpus":"0","Dns":null,"Dns":["1.1.1.1"],"Ulimits":1,"ulimits":2})";
    REQUIRE(d.parse(body).empty());
    Struct s(obj_of(d.root()));
    Errors e;
    CHECK(s.boolean("Privileged", e, "HostConfig") == true);
    CHECK(s.strings("Binds", e, "HostConfig")->at(0) == "/x");
    CHECK(s.integer("KernelMemory", e, "HostConfig") == 5);
    CHECK(s.integer("Memory", e, "HostConfig") == 7);
    CHECK(s.string("CpusetCpus", e, "HostConfig") == "0");  // two spellings, same value
    CHECK(s.strings("Dns", e, "HostConfig")->size() == 1);  // null, then a value
    CHECK(s.has("Filler3") == !extra.empty());
    CHECK(!s.has("Filler"));
    CHECK(!s.has("Privilege"));
    CHECK(!e.failed());
    CHECK(!s.integer("Ulimits", e, "HostConfig"));
    CHECK(e.first == "ambiguous JSON: HostConfig.Ulimits is given as \"Ulimits\" and \"ulimits\" with different values");
  }
  // Objects merged into one struct: document order across them, the last value wins.
  Doc d;
  std::string members;
  for (int i = 0; i < 12; ++i) members += std::string("\"M") + std::to_string(i) + std::string("\":") + std::to_string(i) + ",";
  REQUIRE(d.parse("{\"HostConfig\":{" + members + "\"Memory\":1,\"memory\":1},\"HostConfig\":{\"Memory\":2},"
                  "\"HostConfig\":{" + members + "\"Memory\":2}}").empty());
  Struct root(obj_of(d.root()));
  Errors e;
  Struct hc = root.sub("HostConfig", e, "");
  CHECK(hc.object_count() == 3);
  CHECK(hc.integer("Memory", e, "HostConfig") == 2);
  CHECK(hc.values("Memory", e, "HostConfig").size() == 4);
  CHECK(hc.integer("M11", e, "HostConfig") == 11);
  CHECK(!e.failed());
  // A spelling that differs from the first one with another value is refused.
  Doc d2;
  REQUIRE(d2.parse("{\"HostConfig\":{" + members + "\"Memory\":1},\"HostConfig\":{\"MEMORY\":2}}").empty());
  Struct hc2 = Struct(obj_of(d2.root())).sub("HostConfig", e, "");
  CHECK(!hc2.integer("Memory", e, "HostConfig"));
  CHECK(e.first == "ambiguous JSON: HostConfig.Memory is given as \"Memory\" and \"MEMORY\" with different values");
}

TEST_CASE("has_any: field sets with every spelling") {
  using namespace gojson;
  static constexpr std::string_view kFields[] = {"Binds", "KernelMemory", "SecurityOpt", "Memory", "Privileged"};
  FieldSet set(kFields);
  for (const char* k : {"Binds", "binds", "BINDS", "Bind\xC5\xBF", "\xE2\x84\xAA" "ernelMemory", "\xC5\xBF" "ecurityOpt", "memory"})
    CHECK_MESSAGE(set.contains(k), k);
  for (const char* k : {"Bind", "Bindss", "Pr\xC4\xB1vileged", "", "Memor", "Memoryx", "\xE2\x84\xAA"})
    CHECK_MESSAGE(!set.contains(k), k);
  for (const char* body : {R"({"Image":"x","a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"privileged":true})",
                           "{\"Image\":\"x\",\"\xE2\x84\xAA" "ernelMemory\":1}", R"({"Image":"x","Privileg":1})"}) {
    Doc d;
    REQUIRE(d.parse(body).empty());
    Struct s(obj_of(d.root()));
    CHECK(s.has_any(set) == (std::string_view(body).find("Privileg\"") == std::string_view::npos));
  }
}

TEST_CASE("maps: first-seen key order, last value, also beyond the pairwise size") {
  using namespace gojson;
  std::string a, b;
  for (int i = 0; i < 40; ++i) a += (i ? "," : "") + (std::string("\"k") + std::to_string(i) + "\":\"a\"");
  for (int i = 39; i >= 0; i -= 3) b += (b.empty() ? "" : ",") + (std::string("\"k") + std::to_string(i) + "\":\"b\"");
  b += ",\"new\":\"b\"";
  Doc d;
  REQUIRE(d.parse("{\"L\":{" + a + ",\"k5\":\"c\"},\"L\":{" + b + "},\"N\":{\"x\":\"1\"},\"N\":null,\"N\":{\"y\":\"2\"}}").empty());
  Struct s(obj_of(d.root()));
  Errors e;
  auto m = s.string_map("L", e, "");
  REQUIRE(m);
  REQUIRE(m->size() == 41);
  for (int i = 0; i < 40; ++i) {
    CHECK((*m)[static_cast<size_t>(i)].first == std::string("k") + std::to_string(i));
    bool in_b = (39 - i) % 3 == 0;
    CHECK((*m)[static_cast<size_t>(i)].second == (in_b ? "b" : i == 5 ? "c" : "a"));
  }
  CHECK(m->back().first == "new");
  auto n = s.string_map("N", e, "");
  REQUIRE(n);
  REQUIRE(n->size() == 1);
  CHECK(n->at(0).first == "y");
  CHECK(!e.failed());
}

TEST_CASE("globs and image references on generated input") {
  for (int n = 0; n < 20000; ++n) {
    std::string p = random_bytes(pick(12), "ab/*.:"), t = random_bytes(pick(12), "ab/.:");
    INFO(p, " ~ ", t);
    REQUIRE(glob_match(p, t) == ref::glob_match(p, t));
  }
  std::string e;
  CHECK(parse_image_ref("a/b/c/d:1", &e)->str() == "docker.io/a/b/c/d:1");
  CHECK(parse_image_ref("alpine", &e)->name == "docker.io/library/alpine");
  CHECK(parse_image_ref("docker.io/alpine", &e)->name == "docker.io/library/alpine");
  CHECK(!parse_image_ref("a//b", &e));
  CHECK(e == "invalid reference format");
  CHECK(!parse_image_ref("a/b/", &e));
  CHECK(!parse_image_ref("a/B", &e));
  CHECK(e == "invalid reference format: repository name must be lowercase");
  CHECK(!parse_image_ref(std::string("ghcr.io/") + std::string(250, 'a'), &e));
  CHECK(e == "repository name must not be more than 255 characters");
}

TEST_CASE("Doc::parse in place when the buffer has simdjson's padding") {
  using namespace gojson;
  const std::string json = R"({"Image":"x","HostConfig":{"Memory":5}})";
  std::string padded = json + std::string(simdjson::SIMDJSON_PADDING, '\0');
  for (size_t readable : {json.size(), padded.size() - 1, padded.size()}) {
    Doc d;
    REQUIRE(d.parse(std::string_view(padded.data(), json.size()), readable).empty());
    Errors e;
    Struct root(obj_of(d.root()));
    CHECK(root.sub("HostConfig", e, "").integer("Memory", e, "HostConfig") == 5);
  }
  Doc d;
  CHECK(d.parse(std::string_view(padded.data(), 0), padded.size()).empty());  // blank: the empty object
  CHECK(d.empty_object());
  CHECK(!d.parse(std::string_view(padded.data(), json.size() - 1), padded.size()).empty());  // cut short
}
