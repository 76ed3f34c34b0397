#include "policy/tools.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/policy_file.hpp"
#include "core/strings.hpp"
#include "http/parser.hpp"
#include "policy/compiled.hpp"
#include "policy/policy.hpp"
#include "policy/routes.hpp"

namespace dg::policy {

namespace {

bool parse_method(std::string_view s, config::AuthMethod& m) {
  static const std::pair<const char*, config::AuthMethod> kMethods[] = {
      {"mtls", config::AuthMethod::Mtls}, {"basic", config::AuthMethod::Basic}, {"bearer", config::AuthMethod::Bearer},
      {"peer", config::AuthMethod::Peer}, {"anonymous", config::AuthMethod::Anonymous}};
  for (const auto& [n, v] : kMethods)
    if (s == n) {
      m = v;
      return true;
    }
  return false;
}

struct Sink : http::BodySink {
  std::string body;
  void on_body(const char* d, size_t n) override { body.append(d, n); }
};

struct Outcome {
  bool ok = false;          // the request could be parsed
  std::string error;
  bool routed = false;
  std::string op;
  Decision d;
};

Outcome decide_raw(const Policy& p, const auth::Identity& who, std::string_view raw) {
  Outcome o;
  http::RequestParser parser;
  Sink sink;
  size_t off = 0;
  bool head_done = false, done = false;
  while (off <= raw.size() && !done) {
    auto r = parser.feed(raw.data() + off, raw.size() - off, &sink);
    off += r.consumed;
    if (r.status == http::Status::Error) {
      o.error = "malformed request: " + parser.error_detail();
      return o;
    }
    if (r.status == http::Status::Head) {
      head_done = true;
      continue;
    }
    if (r.status == http::Status::Done) {
      done = true;
      break;
    }
    if (r.status == http::Status::More) break;
  }
  if (!head_done && !done) {
    o.error = "incomplete request head";
    return o;
  }
  const http::RequestHead& head = parser.head();
  o.ok = true;
  auto routed = p.route(head);
  if (!routed.ok) {
    o.d.allow = false;
    o.d.status = routed.status;
    o.d.reason = routed.reason;
    return o;
  }
  o.routed = true;
  o.op = std::string(routed.op.name);
  std::optional<std::string_view> body;
  if (p.needs_body(who, routed.op, head)) {
    if (head.body == http::BodyKind::Length && head.content_length > p.max_body()) {
      o.d.status = 413;
      o.d.reason = "request body larger than " + std::to_string(p.max_body()) + " bytes cannot be inspected";
      return o;
    }
    body = std::string_view(sink.body);
  }
  o.d = p.judge(who, routed.op, head, body);
  return o;
}

std::string read_file(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int policy_check(const std::string& path, std::ostream& out) {
  auto f = config::load_policy_file(path);
  if (!f) {
    out << f.error().str();
    return 1;
  }
  config::Diagnostics d;
  auto c = compile(*f, d);
  if (!d.ok()) {
    out << d.str();
    return 1;
  }
  int warnings = 0;
  auto warn = [&](const config::Mark& m, const std::string& msg) {
    out << path << ":" << m.line << ":" << m.col << ": warning: " << msg << "\n";
    ++warnings;
  };
  for (size_t i = 0; i < f->rules.size(); ++i) {
    const auto& r = f->rules[i];
    const auto& cr = c->rules[i];
    std::string name = "rule \"" + r.name + "\"";
    if (r.allow.empty() && r.deny.empty()) warn(r.mark, name + " allows and denies nothing: it can never match a decision");
    if (r.unrestricted && !r.constraint_keys.empty())
      warn(r.mark, name + " is unrestricted: its constraint keys (" + r.constraint_keys.front() + "...) are ignored");
    if (!r.unrestricted && !r.constraint_keys.empty()) {
      bool any = false;
      for (size_t op = 0; op < operations().size(); ++op)
        if (cr.allow.test(op) && !cr.deny.test(op) && (operations()[op].flags & (kJsonBody | kUpload | kStreamResponse))) any = true;
      if (!any) warn(r.mark, name + " has constraints but allows no operation they apply to");
    }
    if ((cr.allow & ~cr.deny).none() && !r.allow.empty()) warn(r.mark, name + " denies every operation it allows");
    // Shadowed: an earlier rule with the same match denies everything this one allows.
    for (size_t j = 0; j < i; ++j) {
      const auto& e = c->rules[j];
      if (e.identities == cr.identities && e.groups == cr.groups && e.methods == cr.methods && e.listeners == cr.listeners &&
          !e.audit && (cr.allow & ~e.deny).none() && cr.allow.any()) {
        warn(r.mark, name + " can never allow anything: rule \"" + e.name + "\" denies all of it first");
        break;
      }
    }
    for (const auto& m : r.match.identities)
      if (m.value.empty()) warn(m.mark, name + ": empty identity name never matches");
  }
  out << path << ": " << f->rules.size() << " rule(s), " << warnings << " warning(s): OK\n";
  return 0;
}

int policy_explain(const std::string& path, const std::string& identity, const std::vector<std::string>& groups,
                   const std::string& method, const std::string& listener, std::string_view raw, std::ostream& out) {
  auto p = Policy::load(path);
  if (!p) {
    out << p.error().str();
    return 2;
  }
  auth::Identity who;
  who.name = identity;
  who.groups = groups;
  who.listener = listener;
  if (!parse_method(method.empty() ? "mtls" : method, who.method)) {
    out << "unknown auth method \"" << method << "\" (mtls, basic, bearer, peer, anonymous)\n";
    return 2;
  }
  Outcome o = decide_raw(**p, who, raw);
  if (!o.ok) {
    out << o.error << "\n";
    return 2;
  }
  out << "identity:  " << who.name;
  for (const auto& g : groups) out << " [" << g << "]";
  out << " via " << config::auth_method_name(who.method) << " on " << (listener.empty() ? "-" : listener) << "\n";
  out << "operation: " << (o.routed ? o.op : "(none)") << "\n";
  out << "decision:  " << (o.d.allow ? (o.d.audit ? "allow (audit: would be denied)" : "allow") : "deny " + std::to_string(o.d.status)) << "\n";
  out << "rule:      " << (o.d.rule.empty() ? "(none)" : o.d.rule) << "\n";
  if (!o.d.reason.empty()) out << "reason:    " << o.d.reason << "\n";
  if (!o.d.allow) out << "client sees: Error response from daemon: dockgate: " << o.d.message() << "\n";
  if (o.d.body) out << "forwarded body: " << *o.d.body << "\n";
  return o.d.allow ? 0 : 1;
}

namespace {

struct Case {
  std::string name;
  int line = 0;
  std::map<std::string, std::string> keys;
  std::string raw;
};

// A fixture file: "policy: FILE" then cases separated by "---" lines (docs/policy.md).
bool parse_cases(const std::string& text, std::string& policy, std::vector<Case>& cases, std::string& err) {
  std::istringstream in(text);
  std::string line;
  int n = 0;
  Case cur;
  bool in_request = false, in_body = false, have = false;
  std::string head, body;
  auto finish = [&]() {
    if (!have) return;
    if (in_request || in_body) {
      // Head lines end with CRLF; the body is sent as written (final newline dropped).
      if (!body.empty() && body.back() == '\n') body.pop_back();
      std::string h = head;
      if (!body.empty() && to_lower(h).find("content-length:") == std::string::npos &&
          to_lower(h).find("transfer-encoding:") == std::string::npos)
        h += "Content-Length: " + std::to_string(body.size()) + "\r\n";
      cur.raw = h + "\r\n" + body;
    }
    cases.push_back(cur);
    cur = Case();
    head.clear();
    body.clear();
    in_request = in_body = have = false;
  };
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "---") {
      finish();
      continue;
    }
    if (in_body) {
      body += line + "\n";
      continue;
    }
    if (in_request) {
      if (line.empty())
        in_body = true;
      else
        head += line + "\r\n";
      continue;
    }
    std::string_view t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t colon = t.find(':');
    if (colon == std::string_view::npos) {
      err = "line " + std::to_string(n) + ": expected \"key: value\"";
      return false;
    }
    std::string k(trim(t.substr(0, colon))), v(trim(t.substr(colon + 1)));
    if (k == "policy" && cases.empty() && !have) {
      policy = v;
      continue;
    }
    if (!have) {
      have = true;
      cur.line = n;
    }
    if (k == "request") {
      in_request = true;
      continue;
    }
    static const char* kKeys[] = {"name", "identity", "groups", "method", "listener", "expect", "status", "rule", "reason", "body_contains"};
    if (std::none_of(std::begin(kKeys), std::end(kKeys), [&](const char* x) { return k == x; })) {
      err = "line " + std::to_string(n) + ": unknown key \"" + k + "\"";
      return false;
    }
    if (k == "name") cur.name = v;
    cur.keys[k] = v;
  }
  finish();
  return true;
}

}  // namespace

int policy_test(const std::string& dir, std::ostream& out) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_regular_file(dir, ec)) {
    files.push_back(dir);
  } else {
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->path().extension() == ".cases") files.push_back(it->path());
  }
  if (ec || files.empty()) {
    out << dir << ": no *.cases fixture files\n";
    return 2;
  }
  std::sort(files.begin(), files.end());
  int passed = 0, failed = 0;
  for (const auto& f : files) {
    bool ok = false;
    std::string text = read_file(f.string(), ok);
    std::string policy, err;
    std::vector<Case> cases;
    if (!ok || !parse_cases(text, policy, cases, err)) {
      out << f.string() << ": " << (ok ? err : "cannot read") << "\n";
      ++failed;
      continue;
    }
    fs::path pp = fs::path(policy).is_absolute() ? fs::path(policy) : f.parent_path() / policy;
    auto p = Policy::load(pp.lexically_normal().string());
    if (!p) {
      out << f.string() << ": policy " << pp.string() << ":\n" << p.error().str();
      ++failed;
      continue;
    }
    for (const auto& c : cases) {
      auth::Identity who;
      who.name = c.keys.count("identity") ? c.keys.at("identity") : "test";
      if (c.keys.count("groups")) {
        std::string g = c.keys.at("groups");
        for (size_t i = 0; i <= g.size();) {
          size_t j = g.find(',', i);
          if (j == std::string::npos) j = g.size();
          std::string one(trim(std::string_view(g).substr(i, j - i)));
          if (!one.empty()) who.groups.push_back(one);
          i = j + 1;
        }
      }
      who.listener = c.keys.count("listener") ? c.keys.at("listener") : "main";
      std::string where = f.string() + ":" + std::to_string(c.line) + ": " + (c.name.empty() ? "case" : c.name);
      if (!parse_method(c.keys.count("method") ? c.keys.at("method") : "mtls", who.method)) {
        out << "FAIL " << where << ": unknown method\n";
        ++failed;
        continue;
      }
      Outcome o = decide_raw(**p, who, c.raw);
      std::string expect = c.keys.count("expect") ? c.keys.at("expect") : "";
      std::string got = !o.ok ? "error" : !o.d.allow ? "deny" : o.d.audit ? "audit" : "allow";
      std::string why;
      if (expect != "allow" && expect != "deny" && expect != "audit") why = "expect must be allow, deny or audit";
      else if (got != expect) why = "expected " + expect + ", got " + got + (o.ok ? " (" + o.d.message() + ")" : " (" + o.error + ")");
      else if (c.keys.count("status") && std::to_string(o.d.status) != c.keys.at("status"))
        why = "expected status " + c.keys.at("status") + ", got " + std::to_string(o.d.status);
      else if (c.keys.count("rule") && o.d.rule != c.keys.at("rule"))
        why = "expected rule " + c.keys.at("rule") + ", got \"" + o.d.rule + "\"";
      else if (c.keys.count("reason") && o.d.reason.find(c.keys.at("reason")) == std::string::npos)
        why = "reason \"" + o.d.reason + "\" does not contain \"" + c.keys.at("reason") + "\"";
      else if (c.keys.count("body_contains") && (!o.d.body || o.d.body->find(c.keys.at("body_contains")) == std::string::npos))
        why = "forwarded body does not contain " + c.keys.at("body_contains");
      if (why.empty()) {
        ++passed;
      } else {
        ++failed;
        out << "FAIL " << where << ": " << why << "\n";
      }
    }
  }
  out << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace dg::policy
