// Policy::load, the compiled policy, route() and the rule loop of judge().
#include "policy/policy.hpp"

#include <algorithm>

#include "core/strings.hpp"
#include "policy/canonical.hpp"
#include "policy/capabilities.hpp"
#include "policy/compiled.hpp"
#include "policy/judge.hpp"
#include "policy/routes.hpp"

namespace dg::policy {

const std::string* Operation::param(std::string_view key) const {
  for (const auto& kv : params)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

std::string Decision::message() const {
  if (rule.empty()) return reason;
  return "rule \"" + rule + "\": " + reason;
}

bool CompiledRule::matches(const auth::Identity& who) const {
  if (!identities.empty()) {
    bool ok = false;
    for (const auto& n : identities) ok = ok || n == "*" || n == who.name;
    if (!ok) return false;
  }
  if (!groups.empty()) {
    bool ok = false;
    for (const auto& g : groups)
      for (const auto& wg : who.groups) ok = ok || g == wg;
    if (!ok) return false;
  }
  if (!methods.empty() && std::find(methods.begin(), methods.end(), who.method) == methods.end()) return false;
  if (!listeners.empty() && std::find(listeners.begin(), listeners.end(), who.listener) == listeners.end()) return false;
  return true;
}

bool body_operation(std::string_view op) {
  static constexpr std::string_view kOps[] = {"ContainerCreate", "ContainerUpdate", "ContainerExec",  "ImageCommit",
                                              "VolumeCreate",    "NetworkCreate",   "ServiceCreate", "ServiceUpdate",
                                              "PluginPull",      "PluginUpgrade",   "PluginSet"};
  for (auto o : kOps)
    if (o == op) return true;
  return false;
}

std::shared_ptr<CompiledPolicy> compile(const config::PolicyFile& f, config::Diagnostics& diags) {
  auto p = std::make_shared<CompiledPolicy>();
  p->path = f.path;
  p->audit = f.audit;
  p->max_body = f.max_body;
  auto err = [&](const config::Mark& m, std::string msg) { diags.items.push_back({f.path, m.line, m.col, std::move(msg)}); };
  for (const auto& r : f.rules) {
    CompiledRule c;
    c.name = r.name;
    c.mark = r.mark;
    c.audit = r.audit.value_or(false);
    c.unrestricted = r.unrestricted;
    for (const auto& m : r.match.identities) c.identities.push_back(m.value);
    for (const auto& m : r.match.groups) c.groups.push_back(m.value);
    for (const auto& m : r.match.listeners) c.listeners.push_back(m.value);
    for (const auto& m : r.match.methods) {
      static const std::pair<const char*, config::AuthMethod> kMethods[] = {
          {"mtls", config::AuthMethod::Mtls}, {"basic", config::AuthMethod::Basic}, {"bearer", config::AuthMethod::Bearer},
          {"peer", config::AuthMethod::Peer}, {"anonymous", config::AuthMethod::Anonymous}};
      bool found = false;
      for (const auto& [n, v] : kMethods)
        if (m.value == n) {
          c.methods.push_back(v);
          found = true;
        }
      if (!found) err(m.mark, "rule \"" + r.name + "\": unknown auth method \"" + m.value + "\" (known: mtls, basic, bearer, peer, anonymous)");
    }
    auto ops = [&](const std::vector<config::MarkedString>& names, OpSet& set, const char* key) {
      for (const auto& m : names) {
        auto e = expand_operations(m.value);
        if (!e) {
          err(m.mark, "rule \"" + r.name + "\": " + key + ": unknown operation or group \"" + m.value + "\"");
          continue;
        }
        for (int i : *e) set.set(static_cast<size_t>(i));
      }
    };
    ops(r.allow, c.allow, "allow");
    ops(r.deny, c.deny, "deny");
    for (const auto& m : r.capabilities.add) {
      auto b = capability_bits(m.value);
      if (!b) err(m.mark, "rule \"" + r.name + "\": capabilities.add: unknown capability \"" + m.value + "\"");
      else c.cap_add |= *b;
    }
    for (const auto& m : r.capabilities.drop) {
      auto b = capability_bits(m.value);
      if (!b) err(m.mark, "rule \"" + r.name + "\": capabilities.drop: unknown capability \"" + m.value + "\"");
      else {
        c.cap_drop |= *b;
        if (*b == kAllCapabilities) c.cap_drop_all = true;
      }
    }
    c.src = r;
    for (const auto& m : r.images.allow) c.image_allow.push_back(parse_image_pattern(m.value));
    for (const auto& m : r.images.deny) c.image_deny.push_back(parse_image_pattern(m.value));
    p->rules.push_back(std::move(c));
  }
  return p;
}

namespace {

class PolicyImpl final : public Policy {
 public:
  explicit PolicyImpl(std::shared_ptr<CompiledPolicy> p) : p_(std::move(p)) {}

  Routed route(const http::RequestHead& head) const override;
  bool needs_body(const auth::Identity& who, const Operation& op, const http::RequestHead& head) const override;
  uint64_t max_body() const override { return p_->max_body; }
  Decision judge(const auth::Identity& who, const Operation& op, const http::RequestHead& head,
                 std::optional<std::string_view> body) const override;

 private:
  std::shared_ptr<CompiledPolicy> p_;
};

bool has_body(const http::RequestHead& head) {
  return head.body == http::BodyKind::Chunked || (head.body == http::BodyKind::Length && head.content_length > 0);
}

const int kOptionsOp = find_operation("Options");
const int kContainerStartOp = find_operation("ContainerStart");

// The media type of a Content-Type value: before any ';', blanks trimmed (media_type_is()).
std::string_view media_type(std::string_view ct) { return trim(ct.substr(0, ct.find(';'))); }

// True when a Content-Type value holds a byte Go's mime parsing could read differently: non-ASCII
// or a control character other than tab.
bool unusual_content_type(std::string_view ct) {
  size_t i = 0;
  if (ct.size() >= 8) {  // words first; anything suspicious is looked at byte by byte below
    uint64_t bad = 0;
    for (;; i += 8) {
      if (i + 8 > ct.size()) i = ct.size() - 8;
      uint64_t w = swar::load8(ct.data() + i);
      bad |= (w & swar::k80) | swar::has_less(w, 0x20) | swar::has_byte(w, 0x7f);
      if (i + 8 == ct.size()) break;
    }
    if (!bad) return false;
  }
  for (unsigned char c : ct)
    if (c >= 0x80 || (c < 0x20 && c != '\t') || c == 0x7f) return true;
  return false;
}

}  // namespace

Routed route_request(const http::RequestHead& head) {
  Routed r;  // every return is this object (no copy)
  auto refuse = [&r](int status, std::string reason) {
    r.status = status;
    r.reason = std::move(reason);
  };
  std::string_view path = head.path;
  if (path.empty()) {
    path = head.target;
    size_t q = path.find('?');
    if (q != std::string_view::npos) path = path.substr(0, q);
  }
  std::string scratch;  // the decoded path, when it had escapes
  auto c = canonicalise_path_view(path, scratch);
  if (!c.ok) {
    refuse(c.status, std::move(c.reason));
    return r;
  }
  if (auto e = query_error(head.query)) {
    refuse(400, std::move(*e));
    return r;
  }
  const std::string* ct = head.find("Content-Type");
  std::string_view mt;
  if (ct) {
    // Go's mime.ParseMediaType folds Unicode (U+0130 'İ' lower-cases to 'i') and trims Unicode
    // spaces (U+00A0): "applİcation/x-www-form-urlencoded" would be a form to dockerd.
    if (unusual_content_type(*ct)) {
      refuse(400, "Content-Type must be plain ASCII");
      return r;
    }
    // Form bodies override query parameters in dockerd (ImageTag repo/tag, ContainerRename name).
    mt = media_type(*ct);
    if (iequals(mt, "application/x-www-form-urlencoded") || iequals(mt, "multipart/form-data")) {
      refuse(400, "form and multipart request bodies are not accepted");
      return r;
    }
  }
  if (head.method == "OPTIONS") {
    r.op.id = kOptionsOp;
  } else {
    auto m = match_route(head.method, c.path, !c.api_version.empty());
    if (m.ambiguous) {
      refuse(403, "ambiguous route " + head.method + " " + std::string(c.path));
      return r;
    }
    if (m.op < 0) {
      refuse(403, "no Docker API operation matches " + head.method + " " + std::string(c.path));
      return r;
    }
    r.op.id = m.op;
    if (!m.param_name.empty()) r.op.params.emplace_back(m.param_name, m.param);
  }
  const OpInfo& info = operations()[static_cast<size_t>(r.op.id)];
  r.op.name = info.name;
  r.op.flags = info.flags;
  // Before 1.24 a start body replaced the HostConfig; dockerd refuses one since, so none is forwarded.
  if (r.op.id == kContainerStartOp && has_body(head)) {
    r.op = Operation();
    refuse(400, "ContainerStart does not take a request body");
    return r;
  }
  if ((r.op.flags & kJsonBody) && has_body(head)) {
    if (!ct || !iequals(mt, "application/json")) {
      r.op = Operation();
      refuse(400, "Content-Type specified (" + (ct ? *ct : std::string()) + ") must be 'application/json'");
      return r;
    }
  }
  r.op.api_version.assign(c.api_version);
  r.op.path.assign(c.path);
  r.ok = true;
  return r;
}

Routed PolicyImpl::route(const http::RequestHead& head) const { return route_request(head); }

bool PolicyImpl::needs_body(const auth::Identity& who, const Operation& op, const http::RequestHead&) const {
  static const OpSet kBodyOps = [] {
    OpSet s;
    for (size_t i = 0; i < operations().size(); ++i)
      if (body_operation(operations()[i].name)) s.set(i);
    return s;
  }();
  if (op.id < 0 || !(op.flags & kJsonBody)) return false;
  size_t id = static_cast<size_t>(op.id);
  // route() names operations with the table's own string: then the id says it all.
  bool table_name = id < operations().size() && operations()[id].name.data() == op.name.data() &&
                    operations()[id].name.size() == op.name.size();
  if (table_name ? !kBodyOps.test(id) : !body_operation(op.name)) return false;
  for (const auto& r : p_->rules) {
    if (r.unrestricted || !r.allow.test(id) || r.deny.test(id)) continue;
    if (r.matches(who)) return true;
  }
  return false;
}

Decision PolicyImpl::judge(const auth::Identity& who, const Operation& op, const http::RequestHead& head,
                           std::optional<std::string_view> body) const {
  Decision d;
  if (op.flags & kAlwaysAllow) {
    d.allow = true;
    d.reason = "always allowed";
    return d;
  }
  if (op.id < 0) {
    d.reason = "unknown operation";
    return d;
  }
  size_t id = static_cast<size_t>(op.id);
  const CompiledRule* allowed_by = nullptr;
  const CompiledRule* audit_by = nullptr;
  std::string audit_reason;
  int audit_status = 403;
  std::optional<Mutation> mut;  // the first allowing rule's changes (only constrained rules make any)
  std::optional<RequestView> view;
  for (const auto& r : p_->rules) {
    if (!r.matches(who)) continue;
    std::optional<Violation> v;
    if (r.deny.test(id)) {
      v = Violation{403, std::string(op.name) + " is denied"};
    } else if (r.allow.test(id)) {
      if (!r.unrestricted) {
        if (!view) view.emplace(who, op, head, body);
        Mutation m;
        v = check_rule(r, *view, m);
        if (!v && !allowed_by) {
          mut.emplace(std::move(m));
        } else if (!v && !m.empty()) {
          // Only the first allowing rule changes the request. A later one whose constraints hold
          // only with its own injections (a default user, CapDrop, limits, labels) would be
          // satisfied by a body that is never forwarded: it denies instead.
          v = Violation{403, "this rule allows the request only with changes (" + mutation_summary(m) +
                                 ") but rule \"" + allowed_by->name +
                                 "\" allowed it first; only the first allowing rule's changes are applied"};
        }
      }
      if (!v && !allowed_by) allowed_by = &r;
    }
    if (!v) continue;
    if (r.audit || p_->audit) {
      if (!audit_by) {
        audit_by = &r;
        audit_reason = std::move(v->reason);
        audit_status = v->status;
      }
      continue;
    }
    d.allow = false;
    d.status = v->status;
    d.rule = r.name;
    d.reason = std::move(v->reason);
    return d;
  }
  if (audit_by) {
    d.allow = true;
    d.audit = true;
    d.status = audit_status;
    d.rule = audit_by->name;
    d.reason = std::move(audit_reason);
  } else if (allowed_by) {
    d.allow = true;
    d.rule = allowed_by->name;
  } else {
    d.allow = p_->audit;
    d.audit = p_->audit;
    d.status = 403;
    d.reason = "no rule allows " + std::string(op.name) + " for " + who.name;
    return d;
  }
  if (allowed_by && mut && !mut->empty() && body) {
    bool empty_obj = false;
    if (view) {
      if (const gojson::Doc* doc = view->doc()) empty_obj = doc->empty_object();
    }
    if (!body->empty()) d.body = apply_mutation(*body, *mut, empty_obj);
  }
  return d;
}

tl::expected<std::shared_ptr<const Policy>, config::Diagnostics> Policy::load(const std::string& path) {
  auto f = config::load_policy_file(path);
  if (!f) return tl::unexpected(f.error());
  config::Diagnostics d;
  auto c = compile(*f, d);
  if (!d.ok()) return tl::unexpected(d);
  return std::shared_ptr<const Policy>(std::make_shared<PolicyImpl>(std::move(c)));
}

tl::expected<std::shared_ptr<const Policy>, config::Diagnostics> Policy::load_text(const std::string& text,
                                                                                  const std::string& path) {
  auto f = config::load_policy_text(text, path);
  if (!f) return tl::unexpected(f.error());
  config::Diagnostics d;
  auto c = compile(*f, d);
  if (!d.ok()) return tl::unexpected(d);
  return std::shared_ptr<const Policy>(std::make_shared<PolicyImpl>(std::move(c)));
}

}  // namespace dg::policy
