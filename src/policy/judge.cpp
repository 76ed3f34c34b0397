// Constraint checks (docs/policy.md) applied wherever the same power can enter dockerd.
#include "policy/judge.hpp"

#include <algorithm>
#include <charconv>
#include <unordered_set>

#include "core/strings.hpp"
#include "policy/capabilities.hpp"
#include "policy/images.hpp"
#include "policy/routes.hpp"

namespace dg::policy {

using gojson::Errors;
using gojson::Struct;

const QueryParams& RequestView::query() {
  if (!query_done_) {
    query_ = parse_query(head_.query);
    query_done_ = true;
  }
  return query_;
}

const gojson::Doc* RequestView::doc() {
  if (!doc_done_) {
    doc_done_ = true;
    if (!body_) {
      body_error_ = "the request body was not read";
    } else {
      body_error_ = doc_.parse(*body_);
      doc_ok_ = body_error_.empty();
    }
  }
  return doc_ok_ ? &doc_ : nullptr;
}

namespace {

std::optional<Violation> deny(std::string reason, int status = 403) { return Violation{status, std::move(reason)}; }

bool in_list(const std::vector<std::string>& l, std::string_view v) {
  return std::find(l.begin(), l.end(), v) != l.end();
}
bool in_marked(const std::vector<config::MarkedString>& l, std::string_view v) {
  for (const auto& m : l)
    if (m.value == v) return true;
  return false;
}
bool glob_marked(const std::vector<config::MarkedString>& l, std::string_view v) {
  for (const auto& m : l)
    if (glob_match(m.value, v)) return true;
  return false;
}

}  // namespace

std::string mutation_summary(const Mutation& m) {
  std::string out;
  auto part = [&](std::string_view label, const std::string& members) {
    if (members.empty()) return;
    if (!out.empty()) out += ", ";
    out += label;
    out += members;
  };
  part("", m.top);
  part("HostConfig ", m.hc);
  part(m.labels_key.empty() ? "Labels " : m.labels_key + " ", m.labels);
  part(m.nested_key + " ", m.nested);
  if (out.size() > 160) out = out.substr(0, 157) + "...";
  return out;
}

namespace {

void add_member(std::string& out, std::string_view key) {
  if (out.empty()) out.reserve(160);  // one allocation for the usual few injected members
  else out += ',';
  append_json_string(out, key);
  out += ':';
}

// HostConfig fields (container.HostConfig + embedded Resources): a top-level member with one of
// these names makes the top-level object a HostConfig (runconfig ContainerConfigWrapper).
constexpr std::string_view kHostConfigFields[] = {
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode",
    "Privileged", "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode",
    "ShmSize", "Sysctls", "Runtime", "Isolation", "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight",
    "BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
    "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices",
    "DeviceCgroupRules", "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap",
    "MemorySwappiness", "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps",
    "IOMaximumBandwidth", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init"};

// The HostConfig dockerd will use for a ContainerCreate body (docker-api-notes §6 item 6).
struct HostConfigView {
  Struct inner;     // "HostConfig" members
  Struct top;       // the top-level object, when it acts as (or adds to) the HostConfig
  bool from_top = false;   // no inner HostConfig: the top-level fields are the HostConfig
  bool top_fields = false; // top-level HostConfig field names present
  const Struct& hc() const { return from_top ? top : inner; }
  bool present() const { return from_top || inner.present(); }
};

HostConfigView host_config(const Struct& root, Errors& err) {
  HostConfigView v;
  v.inner = root.sub("HostConfig", err, "");
  static const gojson::FieldSet kFields(kHostConfigFields);
  v.top_fields = root.has_any(kFields);
  v.top = root;
  v.from_top = !v.inner.present() && v.top_fields;
  return v;
}

// Scalar integer of the effective HostConfig, with the wrapper's fallbacks for Memory, MemorySwap
// and CpuShares (top-level value when the inner one is zero).
int64_t hc_int(const HostConfigView& v, std::string_view field, Errors& err, int64_t min = INT64_MIN,
               int64_t max = INT64_MAX) {
  if (!v.present()) return 0;
  int64_t x = v.hc().integer(field, err, "HostConfig", min, max).value_or(0);
  if (!v.from_top && v.top_fields && x == 0 && (field == "Memory" || field == "MemorySwap" || field == "CpuShares"))
    x = v.top.integer(field, err, "", min, max).value_or(0);
  return x;
}

std::string_view hc_str(const HostConfigView& v, std::string_view field, Errors& err) {
  if (!v.present()) return {};
  std::string_view s = v.hc().string(field, err, "HostConfig").value_or("");
  if (!v.from_top && s.empty() && (field == "CpusetCpus" || field == "VolumeDriver") && v.top_fields)
    s = v.top.string(field, err, "").value_or("");
  if (field == "CpusetCpus" && s.empty()) s = v.top.string("Cpuset", err, "").value_or("");
  return s;
}

bool is_root_user(std::string_view u) {
  std::string_view user = u.substr(0, u.find(':'));
  user = trim(user);
  if (user.empty() || user == "root") return true;
  // dockerd resolves the user with libcontainer's GetExecUser, which tries strconv.Atoi first: a
  // sign is accepted there, so "+0" and "-0" are uid 0 too.
  if (user[0] == '+' || user[0] == '-') user.remove_prefix(1);
  if (!user.empty() && user.find_first_not_of('0') == std::string_view::npos) return true;  // "0", "00", "+0"
  return false;
}

// True when the request names an API version below major.minor ("" = unversioned: the daemon's own).
bool api_before(std::string_view v, int major, int minor) {
  if (v.empty()) return false;
  size_t dot = v.find('.');
  int ma = 0, mi = 0;
  std::from_chars(v.data(), v.data() + std::min(dot, v.size()), ma);
  if (dot != std::string_view::npos) std::from_chars(v.data() + dot + 1, v.data() + v.size(), mi);
  return ma < major || (ma == major && mi < minor);
}

std::string expand_template(std::string_view t, const auth::Identity& who) {
  std::string out;
  while (!t.empty()) {
    size_t open = t.find("{{");
    if (open == std::string_view::npos) {
      out += t;
      break;
    }
    out += t.substr(0, open);
    size_t close = t.find("}}", open);
    if (close == std::string_view::npos) {
      out += t.substr(open);
      break;
    }
    std::string_view var = trim(t.substr(open + 2, close - open - 2));
    if (var == "identity")
      out += who.name;
    else if (var == "listener")
      out += who.listener;
    else if (var == "method")
      out += config::auth_method_name(who.method);
    else
      out += t.substr(open, close + 2 - open);
    t = t.substr(close + 2);
  }
  return out;
}

class Checker {
 public:
  Checker(const CompiledRule& rule, RequestView& req, Mutation& mut) : r_(rule), c_(rule.src), req_(req), mut_(mut) {}

  std::optional<Violation> run();

 private:
  std::optional<Violation> dispatch();
  std::optional<Violation> body_root(Struct& root);
  std::optional<Violation> errors() {
    if (err_.failed()) return deny(err_.first, 400);
    return std::nullopt;
  }

  std::optional<Violation> image(std::string_view ref_text, std::string_view what, bool all_tags_ok = false);
  bool images_constrained() const {
    return !c_.images.allow.empty() || !c_.images.deny.empty() || c_.images.require_digest;
  }
  std::optional<Violation> image_ref(const ImageRef& ref, std::string_view what);
  std::optional<Violation> host_path(std::string_view src, bool read_only, std::string_view what);
  std::optional<Violation> local_volume_opts(const std::vector<std::pair<std::string_view, std::string_view>>& opts,
                                             std::string_view what);
  std::optional<Violation> volume_driver(std::string_view driver, std::string_view what);
  std::optional<Violation> mounts(const std::vector<Struct>& ms, std::string_view what);
  std::optional<Violation> labels(const Struct& s, std::string_view what, bool inject);
  // Where a check may inject a member: appended to `out`, named as the client named that field of
  // `in` (see spelled()), or by its Go name when `in` is null.
  struct Inject {
    Inject(std::string* o, const Struct* i = nullptr, std::string_view p = {}) : out(o), in(i), path(p) {}  // NOLINT: implicit
    std::string* out;  // null: nothing may be injected
    const Struct* in;
    std::string_view path;  // of `in`, for messages
  };
  std::string_view spelled(const Struct& s, std::string_view field, std::string_view path);
  std::string_view inject_key(const Inject& to, std::string_view field) {
    return to.in ? spelled(*to.in, field, to.path) : field;
  }
  std::optional<Violation> user(std::string_view u, std::string_view what, Inject to);
  std::optional<Violation> caps(const std::optional<std::vector<std::string_view>>& add,
                                const std::optional<std::vector<std::string_view>>& drop, std::string_view prefix,
                                std::string_view add_field, std::string_view drop_field, Inject to, bool from_top);
  std::optional<Violation> sysctls(const std::optional<std::vector<std::pair<std::string_view, std::string_view>>>& s,
                                   std::string_view what);
  std::optional<Violation> port(std::string_view host_ip, std::string_view host_port, std::string_view what);
  std::optional<Violation> limit(const config::PolicyLimit& l, std::string_view field, int64_t v,
                                 bool explicit_unlimited, bool unset_unlimited, bool may_inject, bool from_top);
  std::optional<Violation> namespace_mode(std::string_view field, std::string_view v,
                                          std::initializer_list<std::string_view> plain, std::string_view ns,
                                          bool container_ok);

  std::optional<Violation> container_create();
  std::optional<Violation> container_update();
  std::optional<Violation> container_exec();
  std::optional<Violation> image_create();
  std::optional<Violation> image_build();
  std::optional<Violation> volume_create();
  std::optional<Violation> network_create();
  std::optional<Violation> service();
  std::optional<Violation> plugin_privileges();

  bool host_ns(std::string_view ns) const { return in_marked(c_.namespaces.host, ns); }

  const CompiledRule& r_;
  const config::PolicyRule& c_;
  RequestView& req_;
  Mutation& mut_;
  Errors err_;
  std::string spelling_error_;  // set by spelled(): an injection would make the body ambiguous
};

std::optional<Violation> Checker::body_root(Struct& root) {
  const gojson::Doc* doc = req_.doc();
  if (!doc) return deny(req_.body_error(), 400);
  if (!doc->is_object()) return deny("the request body must be a JSON object", 400);
  root = Struct(gojson::obj_of(doc->root()));
  return std::nullopt;
}

std::optional<Violation> Checker::image_ref(const ImageRef& ref, std::string_view what) {
  if (!images_constrained()) return std::nullopt;
  if (ref.id) return deny(std::string(what) + ": image IDs are not accepted by this rule; name the image");
  if (ref.maybe_id_prefix && !c_.images.allow.empty())
    return deny(std::string(what) + ": \"" + ref.name + "\" could be an image ID prefix; name it with a tag or registry");
  if (c_.images.require_digest && ref.digest.empty())
    return deny(std::string(what) + ": image " + ref.str() + " must be pinned by digest");
  for (const auto& p : r_.image_deny)
    if (image_matches(p, ref)) return deny(std::string(what) + ": image " + ref.str() + " is denied");
  if (!c_.images.allow.empty()) {
    for (const auto& p : r_.image_allow)
      if (image_matches(p, ref)) return std::nullopt;
    return deny(std::string(what) + ": image " + ref.str() + " is not in the allowed images");
  }
  return std::nullopt;
}

std::optional<Violation> Checker::image(std::string_view text, std::string_view what, bool all_tags_ok) {
  if (!images_constrained()) return std::nullopt;
  std::string e;
  auto ref = parse_image_ref(text, &e);
  if (!ref) return deny(std::string(what) + ": " + e, 400);
  if (!ref->id && ref->tag.empty() && ref->digest.empty() && !all_tags_ok) ref->tag = "latest";
  return image_ref(*ref, what);
}

std::optional<Violation> Checker::host_path(std::string_view src, bool read_only, std::string_view what) {
  if (src.empty() || src[0] != '/') return deny(std::string(what) + ": host path \"" + std::string(src) + "\" must be absolute");
  std::string p = clean_path(src);
  std::string_view base = std::string_view(p).substr(p.rfind('/') + 1);
  bool socket = path_within("/var/run/docker.sock", p) || path_within("/run/docker.sock", p) || base == "docker.sock";
  for (const auto& hp : c_.mounts.host_paths) {
    bool ok = socket ? hp.path == p : path_within(p, hp.path);
    if (!ok) continue;
    if (hp.read_only && !read_only) return deny(std::string(what) + ": host path " + p + " must be mounted read-only");
    return std::nullopt;
  }
  if (socket) return deny(std::string(what) + ": host path " + p + " exposes the Docker socket");
  return deny(std::string(what) + ": host path " + p + " is not allowed");
}

std::optional<Violation> Checker::local_volume_opts(const std::vector<std::pair<std::string_view, std::string_view>>& opts,
                                                    std::string_view what) {
  std::string_view type, o, device;
  for (auto& [k, v] : opts) {
    if (k == "type") type = v;
    else if (k == "o") o = v;
    else if (k == "device") device = v;
  }
  if (type.empty() && o.empty() && device.empty()) return std::nullopt;
  bool bind = type == "none";
  bool ro = false;
  for (size_t i = 0; i <= o.size();) {
    size_t j = o.find(',', i);
    if (j == std::string_view::npos) j = o.size();
    std::string_view opt = o.substr(i, j - i);
    if (opt == "bind" || opt == "rbind") bind = true;
    if (opt == "ro") ro = true;
    i = j + 1;
  }
  if (bind) return host_path(device, ro, std::string(what) + " (local volume bound to a host path)");
  if (type == "tmpfs") {
    if (!c_.mounts.tmpfs) return deny(std::string(what) + ": tmpfs mounts are not allowed");
    return std::nullopt;
  }
  if (!c_.mounts.network_volumes)
    return deny(std::string(what) + ": local volumes of type \"" + std::string(type) + "\" (host-side mounts) are not allowed");
  return std::nullopt;
}

std::optional<Violation> Checker::volume_driver(std::string_view driver, std::string_view what) {
  if (driver.empty()) driver = "local";
  if (!in_list(c_.mounts.volume_drivers, driver))
    return deny(std::string(what) + ": volume driver \"" + std::string(driver) + "\" is not allowed");
  return std::nullopt;
}

std::optional<Violation> Checker::mounts(const std::vector<Struct>& ms, std::string_view what) {
  for (const auto& m : ms) {
    std::string_view type = m.string("Type", err_, what).value_or("");
    std::string_view src = m.string("Source", err_, what).value_or("");
    bool ro = m.boolean("ReadOnly", err_, what).value_or(false);
    if (auto e = errors()) return e;
    if (type == "bind") {
      if (auto v = host_path(src, ro, std::string(what) + " bind")) return v;
    } else if (type == "volume") {
      if (!src.empty() && !c_.mounts.named_volumes) return deny(std::string(what) + ": named volumes are not allowed");
      Struct vo = m.sub("VolumeOptions", err_, what);
      Struct dc = vo.sub("DriverConfig", err_, "VolumeOptions");
      std::string_view driver = dc.string("Name", err_, "DriverConfig").value_or("");
      auto opts = dc.string_map("Options", err_, "DriverConfig");
      if (auto e = errors()) return e;
      if (auto v = volume_driver(driver, what)) return v;
      if ((driver.empty() || driver == "local") && opts)
        if (auto v = local_volume_opts(*opts, std::string(what) + " volume")) return v;
    } else if (type == "tmpfs") {
      if (!c_.mounts.tmpfs) return deny(std::string(what) + ": tmpfs mounts are not allowed");
    } else {
      return deny(std::string(what) + ": mount type \"" + std::string(type) + "\" is not allowed");
    }
  }
  return std::nullopt;
}

std::optional<Violation> Checker::labels(const Struct& s, std::string_view what, bool inject) {
  const auto& L = c_.labels;
  if (L.required.empty() && L.forbidden.empty() && L.inject.empty()) return std::nullopt;
  auto m = s.string_map("Labels", err_, what);
  if (auto e = errors()) return e;
  auto injected = [&](std::string_view k) {
    for (const auto& kv : L.inject)
      if (kv.first == k) return true;
    return false;
  };
  if (m) {
    for (auto& [k, v] : *m) {
      (void)v;
      if (injected(k)) continue;
      if (glob_marked(L.forbidden, k)) return deny(std::string(what) + ".Labels: label \"" + std::string(k) + "\" is not allowed");
    }
  }
  for (const auto& [key, glob] : L.required) {
    if (injected(key)) continue;
    bool ok = false;
    if (m)
      for (auto& [k, v] : *m)
        if (k == key && glob_match(glob, v)) ok = true;
    if (!ok) return deny(std::string(what) + ".Labels: label \"" + key + "\" is required" + (glob == "*" || glob.empty() ? "" : " (" + glob + ")"));
  }
  if (inject && !L.inject.empty()) {
    std::string_view key = spelled(s, "Labels", what);
    if (key != "Labels") mut_.labels_key = key;
    for (const auto& [k, t] : L.inject) {
      add_member(mut_.labels, k);
      append_json_string(mut_.labels, expand_template(t, req_.who()));
    }
  }
  return std::nullopt;
}

// The member name under which a value for `field` is appended in one more object merged into `s`:
// the client's own spelling when it sent the field (Go's decoder maps it to the same field, and the
// body keeps a single spelling per field, which gojson requires of clients), else the Go name. A
// client that used two spellings (with the same value, or gojson would have refused the body) leaves
// no unambiguous choice: spelling_error_ is set and the request is refused.
std::string_view Checker::spelled(const Struct& s, std::string_view field, std::string_view path) {
  std::optional<std::string_view> found;
  for (size_t i = 0; i < s.object_count(); ++i) {
    for (auto kv : s.object_at(i)) {
      if (!gojson::key_matches(kv.key, field)) continue;
      if (found && *found != kv.key) {
        if (spelling_error_.empty())
          spelling_error_ = "ambiguous JSON: " + (path.empty() ? std::string() : std::string(path) + ".") + std::string(field) +
                            " is given as \"" + std::string(*found) + "\" and \"" + std::string(kv.key) +
                            "\" and this rule must add a value to it; use one spelling";
        return field;
      }
      found = kv.key;
    }
  }
  return found.value_or(field);
}

std::optional<Violation> Checker::user(std::string_view u, std::string_view what, Inject to) {
  if (!c_.user.non_root) return std::nullopt;
  if (!is_root_user(u)) return std::nullopt;
  if (to.out && trim(u).empty() && !c_.user.def.empty()) {
    add_member(*to.out, inject_key(to, "User"));
    append_json_string(*to.out, c_.user.def);
    return std::nullopt;
  }
  return deny(std::string(what) + ": running as root (User \"" + std::string(u) + "\") is not allowed; set a non-root user");
}

std::optional<Violation> Checker::caps(const std::optional<std::vector<std::string_view>>& add,
                                       const std::optional<std::vector<std::string_view>>& drop, std::string_view prefix,
                                       std::string_view add_field, std::string_view drop_field, Inject to, bool from_top) {
  auto name = [&](std::string_view field) { return std::string(prefix) + std::string(field); };
  if (add) {
    for (auto c : *add) {
      auto b = capability_bits(c);
      if (!b) return deny(name(add_field) + ": unknown capability \"" + std::string(c) + "\"", 400);
      if ((*b & r_.cap_add) != *b) return deny(name(add_field) + ": capability " + capability_name(*b) + " is not allowed");
    }
  }
  if (r_.cap_drop == 0) return std::nullopt;
  uint64_t dropped = 0;
  if (drop)
    for (auto c : *drop) {
      auto b = capability_bits(c);
      if (!b) return deny(name(drop_field) + ": unknown capability \"" + std::string(c) + "\"", 400);
      dropped |= *b;
    }
  uint64_t missing = r_.cap_drop & ~dropped;
  if (missing == 0) return std::nullopt;
  if (!to.out) return deny(name(drop_field) + " must include " + capability_name(r_.cap_drop_all ? kAllCapabilities : missing));
  if (from_top) return deny("top-level HostConfig fields cannot be combined with required values; send them inside HostConfig");
  // A list replaces the client's (Go: arrays replace): its drops plus the missing ones.
  std::string& out = *to.out;
  add_member(out, inject_key(to, drop_field));
  out += '[';
  bool first = true;
  if (drop)
    for (auto c : *drop) {
      if (!first) out += ',';
      append_json_string(out, c);
      first = false;
    }
  if (r_.cap_drop_all) {
    if (!first) out += ',';
    out += "\"ALL\"";
  } else {
    for (int i = 0; i < 64; ++i) {
      uint64_t b = uint64_t{1} << i;
      if (!(missing & b)) continue;
      if (!first) out += ',';
      append_json_string(out, capability_name(b));
      first = false;
    }
  }
  out += ']';
  return std::nullopt;
}

std::optional<Violation> Checker::sysctls(const std::optional<std::vector<std::pair<std::string_view, std::string_view>>>& s,
                                          std::string_view what) {
  if (!s) return std::nullopt;
  for (auto& [k, v] : *s) {
    (void)v;
    if (!glob_marked(c_.sysctls, k)) return deny(std::string(what) + ": sysctl " + std::string(k) + " is not allowed");
  }
  return std::nullopt;
}

std::optional<Violation> Checker::port(std::string_view ip, std::string_view hp, std::string_view what) {
  const auto& P = c_.ports;
  if (!P.host_ips.empty()) {
    std::string_view n = ip.empty() ? std::string_view("0.0.0.0") : ip;
    bool ok = false;
    for (const auto& m : P.host_ips) ok = ok || m.value == n || m.value == "*";
    if (!ok) return deny(std::string(what) + ": publishing on host address \"" + std::string(n) + "\" is not allowed");
  }
  if (hp.empty()) return std::nullopt;
  auto parse = [](std::string_view s, int64_t& out) {
    auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
  };
  int64_t lo = 0, hi = 0;
  size_t dash = hp.find('-');
  if (!parse(hp.substr(0, dash), lo) || (dash != std::string_view::npos ? !parse(hp.substr(dash + 1), hi) : (hi = lo, false)))
    return deny(std::string(what) + ": invalid host port \"" + std::string(hp) + "\"", 400);
  if (lo < P.min || hi > P.max || lo > hi)
    return deny(std::string(what) + ": host port " + std::string(hp) + " is outside " + std::to_string(P.min) + "-" +
                std::to_string(P.max));
  return std::nullopt;
}

std::optional<Violation> Checker::limit(const config::PolicyLimit& l, std::string_view field, int64_t v,
                                        bool explicit_unlimited, bool unset_unlimited, bool may_inject, bool from_top) {
  if (!l.max && !l.def) return std::nullopt;
  if (v == 0) {
    if (!may_inject) return std::nullopt;  // ContainerUpdate: 0 = unchanged
    std::optional<int64_t> value = l.def;
    if (!value && l.max && unset_unlimited) value = l.max;  // unset = unlimited: apply the maximum
    if (!value) return std::nullopt;
    if (from_top)
      return deny("top-level HostConfig fields cannot be combined with injected defaults; send them inside HostConfig");
    add_member(mut_.hc, field);
    mut_.hc += std::to_string(*value);
    return std::nullopt;
  }
  if (l.max && explicit_unlimited)
    return deny("HostConfig." + std::string(field) + " must not be unlimited (maximum " + std::to_string(*l.max) + ")");
  if (l.max && v > *l.max)
    return deny("HostConfig." + std::string(field) + " " + std::to_string(v) + " exceeds the maximum " + std::to_string(*l.max));
  return std::nullopt;
}

std::optional<Violation> Checker::namespace_mode(std::string_view field, std::string_view v,
                                                 std::initializer_list<std::string_view> plain, std::string_view ns,
                                                 bool container_ok) {
  if (v.empty()) return std::nullopt;
  for (auto p : plain)
    if (v == p) return std::nullopt;
  if (v == "host") {
    if (host_ns(ns)) return std::nullopt;
    return deny("HostConfig." + std::string(field) + ": the host " + std::string(ns) + " namespace is not allowed");
  }
  if (container_ok && v.substr(0, 10) == "container:") {
    if (c_.namespaces.container) return std::nullopt;
    return deny("HostConfig." + std::string(field) + ": joining another container's namespace (" + std::string(v) + ") is not allowed");
  }
  return deny("HostConfig." + std::string(field) + ": value \"" + std::string(v) + "\" is not allowed");
}

std::optional<Violation> Checker::container_create() {
  Struct root;
  if (auto v = body_root(root)) return v;
  if (auto img = root.string("Image", err_, "")) {
    if (auto v = image(*img, "Image")) return v;
  } else if (images_constrained()) {
    if (auto e = errors()) return e;
    return deny("Image: an image is required");
  }
  if (auto e = errors()) return e;
  std::optional<std::string_view> u = root.string("User", err_, "");
  if (auto e = errors()) return e;
  if (auto v = user(u.value_or(""), "User", {&mut_.top})) return v;
  if (auto v = labels(root, "Config", true)) return v;

  HostConfigView hv = host_config(root, err_);
  if (auto e = errors()) return e;
  const Struct& hc = hv.hc();
  bool top = hv.from_top;
  const char* H = "HostConfig";
  if (hv.present()) {
    if (hc.boolean("Privileged", err_, H).value_or(false) && !c_.privileged) return deny("HostConfig.Privileged is not allowed");
    if (auto binds = hc.strings("Binds", err_, H)) {
      for (auto b : *binds) {
        std::vector<std::string_view> parts = split(b, ':');
        if (parts.size() > 3 || parts[0].empty()) return deny("HostConfig.Binds: invalid bind \"" + std::string(b) + "\"", 400);
        if (parts.size() == 1) continue;  // anonymous volume
        bool ro = false, rw = false;
        if (parts.size() == 3) {
          std::string_view mode = parts[2];
          for (size_t i = 0; i <= mode.size();) {
            size_t j = mode.find(',', i);
            if (j == std::string_view::npos) j = mode.size();
            std::string_view m = mode.substr(i, j - i);
            ro = ro || m == "ro";
            rw = rw || m == "rw";
            i = j + 1;
          }
        }
        if (parts[0][0] == '/') {
          if (auto v = host_path(parts[0], ro && !rw, "HostConfig.Binds")) return v;
        } else if (!c_.mounts.named_volumes) {
          return deny("HostConfig.Binds: named volumes are not allowed");
        }
      }
    }
    if (auto e = errors()) return e;
    if (auto ms = hc.structs("Mounts", err_, H))
      if (auto v = mounts(*ms, "HostConfig.Mounts")) return v;
    if (auto e = errors()) return e;
    if (auto vf = hc.strings("VolumesFrom", err_, H); vf && !vf->empty() && !c_.mounts.volumes_from)
      return deny("HostConfig.VolumesFrom is not allowed");
    std::string_view vd = hc_str(hv, "VolumeDriver", err_);
    if (!vd.empty())
      if (auto v = volume_driver(vd, "HostConfig.VolumeDriver")) return v;
    if (auto t = hc.map("Tmpfs", err_, H); t && !t->empty() && !c_.mounts.tmpfs) return deny("HostConfig.Tmpfs is not allowed");
    if (auto e = errors()) return e;

    auto add = hc.strings("CapAdd", err_, H, true);
    auto drop = hc.strings("CapDrop", err_, H, true);
    if (auto e = errors()) return e;
    if (auto v = caps(add, drop, "HostConfig.", "CapAdd", "CapDrop", {&mut_.hc}, top)) return v;

    if (auto ds = hc.structs("Devices", err_, H)) {
      for (const auto& d : *ds) {
        std::string_view p = d.string("PathOnHost", err_, "Devices").value_or("");
        if (auto e = errors()) return e;
        std::string cp = clean_path(p);
        if (!in_marked(c_.devices.allow, cp)) return deny("HostConfig.Devices: device " + cp + " is not allowed");
      }
    }
    if (auto r = hc.strings("DeviceCgroupRules", err_, H); r && !r->empty() && !c_.devices.cgroup_rules)
      return deny("HostConfig.DeviceCgroupRules is not allowed");
    if (auto r = hc.structs("DeviceRequests", err_, H); r && !r->empty() && !c_.devices.gpus)
      return deny("HostConfig.DeviceRequests (GPUs) is not allowed");
    if (auto e = errors()) return e;

    std::string_view nm = hc.string("NetworkMode", err_, H).value_or("");
    if (auto e = errors()) return e;
    if (nm == "host" || nm.substr(0, 10) == "container:") {
      if (auto v = namespace_mode("NetworkMode", nm, {}, "network", true)) return v;
    } else if (nm.find(':') != std::string_view::npos) {
      return deny("HostConfig.NetworkMode: value \"" + std::string(nm) + "\" is not allowed");
    }
    if (auto v = namespace_mode("PidMode", hc.string("PidMode", err_, H).value_or(""), {}, "pid", true)) return v;
    if (auto v = namespace_mode("IpcMode", hc.string("IpcMode", err_, H).value_or(""), {"private", "shareable", "none"}, "ipc", true)) return v;
    if (auto v = namespace_mode("UTSMode", hc.string("UTSMode", err_, H).value_or(""), {}, "uts", false)) return v;
    if (auto v = namespace_mode("UsernsMode", hc.string("UsernsMode", err_, H).value_or(""), {}, "userns", false)) return v;
    if (auto v = namespace_mode("CgroupnsMode", hc.string("CgroupnsMode", err_, H).value_or(""), {"private"}, "cgroupns", false)) return v;
    if (auto v = namespace_mode("Cgroup", hc.string("Cgroup", err_, H).value_or(""), {}, "cgroupns", true)) return v;
    if (auto e = errors()) return e;

    // SecurityOpt
    bool nnp = false, nnp_false = false;
    auto so = hc.strings("SecurityOpt", err_, H);
    if (auto e = errors()) return e;
    if (so) {
      for (auto opt : *so) {
        if (opt == "no-new-privileges") {
          nnp = true;
          continue;
        }
        size_t eq = opt.find('=');
        if (eq == std::string_view::npos) eq = opt.find(':');
        if (eq == std::string_view::npos) return deny("HostConfig.SecurityOpt: invalid option \"" + std::string(opt) + "\"", 400);
        std::string_view k = opt.substr(0, eq), v = opt.substr(eq + 1);
        if (k == "no-new-privileges") {
          std::string lv = to_lower(v);
          if (lv == "true" || lv == "1") nnp = true;
          else if (lv == "false" || lv == "0") nnp_false = true;
          else return deny("HostConfig.SecurityOpt: invalid no-new-privileges value", 400);
        } else if (k == "seccomp") {
          if (v == "unconfined") {
            if (!c_.security.unconfined) return deny("HostConfig.SecurityOpt: seccomp=unconfined is not allowed");
          } else if (v != "builtin" && !c_.security.custom_seccomp && !c_.security.unconfined) {
            return deny("HostConfig.SecurityOpt: custom seccomp profiles are not allowed");
          }
        } else if (k == "apparmor") {
          if (v == "unconfined" && !c_.security.unconfined) return deny("HostConfig.SecurityOpt: apparmor=unconfined is not allowed");
        } else if (k == "label") {
          if (v.substr(0, 6) != "level:" && !c_.security.unconfined)
            return deny("HostConfig.SecurityOpt: label=" + std::string(v) + " is not allowed");
        } else if (k == "systempaths" || k == "writable-cgroups") {
          if (!c_.security.unconfined) return deny("HostConfig.SecurityOpt: " + std::string(opt) + " is not allowed");
        } else {
          return deny("HostConfig.SecurityOpt: unknown option \"" + std::string(opt) + "\"", 400);
        }
      }
    }
    if (c_.security.no_new_privileges) {
      if (nnp_false) return deny("HostConfig.SecurityOpt: no-new-privileges is required");
      if (!nnp) {
        if (top) return deny("top-level HostConfig fields cannot be combined with required values; send them inside HostConfig");
        add_member(mut_.hc, "SecurityOpt");
        mut_.hc += '[';
        if (so)
          for (auto opt : *so) {
            append_json_string(mut_.hc, opt);
            mut_.hc += ',';
          }
        mut_.hc += "\"no-new-privileges\"]";
      }
    }
    if (!c_.security.unconfined) {
      if (auto m = hc.strings("MaskedPaths", err_, H)) return deny("HostConfig.MaskedPaths is not allowed");
      if (auto m = hc.strings("ReadonlyPaths", err_, H)) return deny("HostConfig.ReadonlyPaths is not allowed");
    }
    if (auto v = sysctls(hc.string_map("Sysctls", err_, H), "HostConfig.Sysctls")) return v;
    std::string_view rt = hc.string("Runtime", err_, H).value_or("");
    if (!rt.empty() && !in_list(c_.runtimes, rt)) return deny("HostConfig.Runtime \"" + std::string(rt) + "\" is not allowed");
    std::string_view cp = hc.string("CgroupParent", err_, H).value_or("");
    if (!cp.empty() && !c_.cgroup_parent) return deny("HostConfig.CgroupParent is not allowed");
    if (auto e = errors()) return e;

    if (auto pb = hc.map("PortBindings", err_, H)) {
      for (auto& [port_name, bindings] : *pb) {
        Struct holder;
        (void)holder;
        if (bindings.type() == simdjson::dom::element_type::NULL_VALUE) continue;
        if (bindings.type() != simdjson::dom::element_type::ARRAY)
          return deny("json: cannot unmarshal PortBindings[" + std::string(port_name) + "]", 400);
        for (auto b : gojson::arr_of(bindings)) {
          if (b.type() == simdjson::dom::element_type::NULL_VALUE) continue;
          if (b.type() != simdjson::dom::element_type::OBJECT) return deny("json: cannot unmarshal PortBinding", 400);
          Struct bs(gojson::obj_of(b));
          std::string_view ip = bs.string("HostIp", err_, "PortBindings").value_or("");
          std::string_view hp = bs.string("HostPort", err_, "PortBindings").value_or("");
          if (auto e = errors()) return e;
          if (auto v = port(ip, hp, "HostConfig.PortBindings")) return v;
        }
      }
    }
    if (hc.boolean("PublishAllPorts", err_, H).value_or(false) && !c_.ports.publish_all)
      return deny("HostConfig.PublishAllPorts is not allowed");
    if (auto e = errors()) return e;
  }

  // Resources (with defaults injected when absent).
  const auto& R = c_.resources;
  // Only the fields a limit is configured for are read (dockerd rejects mistyped others itself).
  auto want = [](const config::PolicyLimit& l) { return l.max.has_value() || l.def.has_value(); };
  auto get = [&](const config::PolicyLimit& l, std::string_view f, int64_t min = INT64_MIN, int64_t max = INT64_MAX) {
    return want(l) ? hc_int(hv, f, err_, min, max) : 0;
  };
  int64_t mem = get(R.memory, "Memory"), swap = get(R.memory_swap, "MemorySwap");
  int64_t quota = (want(R.cpus) || want(R.cpu_quota)) ? hc_int(hv, "CpuQuota", err_) : 0;
  int64_t period = (want(R.cpus) || want(R.cpu_period)) ? hc_int(hv, "CpuPeriod", err_) : 0;
  int64_t nano = get(R.cpus, "NanoCpus"), pids = get(R.pids_limit, "PidsLimit");
  if (auto e = errors()) return e;
  if (auto v = limit(R.memory, "Memory", mem, mem < 0, true, true, top)) return v;
  if (auto v = limit(R.memory_swap, "MemorySwap", swap, swap < 0, true, true, top)) return v;
  if (auto v = limit(R.memory_reservation, "MemoryReservation", get(R.memory_reservation, "MemoryReservation"), false, false, true, top)) return v;
  if (R.cpus.max && quota != 0) {
    // CPU limited by quota/period instead of NanoCpus: compare the equivalent.
    int64_t p = period > 0 ? period : 100000;
    if (quota < 0) return deny("HostConfig.CpuQuota must not be unlimited");
    if (static_cast<double>(quota) / static_cast<double>(p) * 1e9 > static_cast<double>(*R.cpus.max))
      return deny("HostConfig.CpuQuota/CpuPeriod exceed the maximum of " + std::to_string(static_cast<double>(*R.cpus.max) / 1e9) + " CPUs");
  } else if (auto v = limit(R.cpus, "NanoCpus", nano, nano < 0, true, true, top)) {
    return v;
  }
  if (auto v = limit(R.cpu_quota, "CpuQuota", quota, quota < 0, false, true, top)) return v;
  if (auto v = limit(R.cpu_period, "CpuPeriod", period, false, false, true, top)) return v;
  if (auto v = limit(R.cpu_shares, "CpuShares", get(R.cpu_shares, "CpuShares"), false, false, true, top)) return v;
  if (auto v = limit(R.pids_limit, "PidsLimit", pids, pids < 0, true, true, top)) return v;
  if (auto v = limit(R.shm_size, "ShmSize", get(R.shm_size, "ShmSize"), false, false, true, top)) return v;
  if (auto v = limit(R.blkio_weight, "BlkioWeight", get(R.blkio_weight, "BlkioWeight", 0, 65535), false, false, true, top)) return v;
  if (auto e = errors()) return e;
  if (R.cpuset_cpus) {
    std::string_view cs = hc_str(hv, "CpusetCpus", err_);
    if (cs.empty()) {
      if (top) return deny("top-level HostConfig fields cannot be combined with injected defaults; send them inside HostConfig");
      add_member(mut_.hc, "CpusetCpus");
      append_json_string(mut_.hc, *R.cpuset_cpus);
    } else if (cs != *R.cpuset_cpus) {
      return deny("HostConfig.CpusetCpus must be \"" + *R.cpuset_cpus + "\"");
    }
  }
  if (R.ulimits_set && hv.present()) {
    if (auto us = hv.hc().structs("Ulimits", err_, H)) {
      for (const auto& u : *us) {
        std::string_view name = u.string("Name", err_, "Ulimits").value_or("");
        int64_t soft = u.integer("Soft", err_, "Ulimits").value_or(0), hard = u.integer("Hard", err_, "Ulimits").value_or(0);
        if (auto e = errors()) return e;
        auto it = R.ulimits.find(std::string(name));
        if (it == R.ulimits.end()) return deny("HostConfig.Ulimits: ulimit " + std::string(name) + " is not allowed");
        if (it->second >= 0 && (soft > it->second || hard > it->second || soft < 0 || hard < 0))
          return deny("HostConfig.Ulimits: " + std::string(name) + " exceeds the maximum " + std::to_string(it->second));
      }
    }
  }
  if (auto e = errors()) return e;

  // NetworkingConfig: joining the host network by name.
  Struct nc = root.sub("NetworkingConfig", err_, "");
  if (auto ec = nc.map("EndpointsConfig", err_, "NetworkingConfig")) {
    for (auto& [net, cfg] : *ec) {
      (void)cfg;
      if (net == "host" && !host_ns("network")) return deny("NetworkingConfig: the host network is not allowed");
    }
  }
  if (auto e = errors()) return e;
  return std::nullopt;
}

std::optional<Violation> Checker::container_update() {
  Struct root;
  if (auto v = body_root(root)) return v;
  const auto& R = c_.resources;
  auto get = [&](std::string_view f) { return root.integer(f, err_, "", INT64_MIN, INT64_MAX).value_or(0); };
  int64_t mem = get("Memory"), swap = get("MemorySwap"), quota = get("CpuQuota"), nano = get("NanoCpus");
  if (auto e = errors()) return e;
  if (auto v = limit(R.memory, "Memory", mem, mem < 0, true, false, false)) return v;
  if (auto v = limit(R.memory_swap, "MemorySwap", swap, swap < 0, true, false, false)) return v;
  if (auto v = limit(R.memory_reservation, "MemoryReservation", get("MemoryReservation"), false, false, false, false)) return v;
  if (auto v = limit(R.cpus, "NanoCpus", nano, nano < 0, true, false, false)) return v;
  if (R.cpus.max && quota != 0) {
    int64_t period = get("CpuPeriod");
    int64_t p = period > 0 ? period : 100000;
    if (quota < 0) return deny("HostConfig.CpuQuota must not be unlimited");
    if (static_cast<double>(quota) / static_cast<double>(p) * 1e9 > static_cast<double>(*R.cpus.max))
      return deny("HostConfig.CpuQuota/CpuPeriod exceed the maximum CPUs");
  }
  if (auto v = limit(R.cpu_quota, "CpuQuota", quota, quota < 0, false, false, false)) return v;
  if (auto v = limit(R.cpu_period, "CpuPeriod", get("CpuPeriod"), false, false, false, false)) return v;
  if (auto v = limit(R.cpu_shares, "CpuShares", get("CpuShares"), false, false, false, false)) return v;
  if (auto v = limit(R.blkio_weight, "BlkioWeight", root.integer("BlkioWeight", err_, "", 0, 65535).value_or(0), false, false, false, false)) return v;
  // PidsLimit is a pointer in UpdateConfig: 0 and -1 set "unlimited".
  if (R.pids_limit.max) {
    if (auto p = root.integer("PidsLimit", err_, "")) {
      if (*p <= 0) return deny("HostConfig.PidsLimit must not be unlimited (maximum " + std::to_string(*R.pids_limit.max) + ")");
      if (*p > *R.pids_limit.max)
        return deny("HostConfig.PidsLimit " + std::to_string(*p) + " exceeds the maximum " + std::to_string(*R.pids_limit.max));
    }
  }
  if (R.cpuset_cpus) {
    std::string_view cs = root.string("CpusetCpus", err_, "").value_or("");
    if (!cs.empty() && cs != *R.cpuset_cpus) return deny("HostConfig.CpusetCpus must be \"" + *R.cpuset_cpus + "\"");
  }
  if (auto e = errors()) return e;
  return std::nullopt;
}

std::optional<Violation> Checker::container_exec() {
  Struct root;
  if (auto v = body_root(root)) return v;
  if (root.boolean("Privileged", err_, "").value_or(false) && !c_.privileged)
    return deny("ContainerExec: Privileged is not allowed");
  std::optional<std::string_view> u = root.string("User", err_, "");
  if (auto e = errors()) return e;
  // No user = the container's user, which dockgate cannot see: the rule's default is injected
  // (as on create), so `docker exec` without -u works under a non-root policy.
  if (auto v = user(u.value_or(""), "ContainerExec", {&mut_.top})) return v;
  return std::nullopt;
}

std::optional<Violation> Checker::image_create() {
  const auto& q = req_.query();
  const std::string* from_src = query_first(q, "fromSrc");
  if (from_src && !from_src->empty()) {
    if (!c_.images.import) return deny("ImageCreate: importing images (fromSrc) is not allowed");
    const std::string* repo = query_first(q, "repo");
    if (repo && !repo->empty()) {
      std::string ref = *repo;
      if (const std::string* tag = query_first(q, "tag"); tag && !tag->empty()) ref += ":" + *tag;
      return image(ref, "ImageCreate repo");
    }
    return std::nullopt;
  }
  const std::string* from = query_first(q, "fromImage");
  if (!from || from->empty()) return std::nullopt;  // dockerd refuses it
  std::string ref = *from;
  if (!ref.empty() && ref.back() == ':') ref.pop_back();
  const std::string* tag = query_first(q, "tag");
  if (tag && !tag->empty()) {
    std::string err;
    auto base = parse_image_ref(ref, &err);
    if (!base) return deny("ImageCreate: " + err, 400);
    if (tag->find(':') != std::string::npos)
      ref = base->name + "@" + *tag;
    else
      ref = base->name + ":" + *tag;
  }
  if (!images_constrained()) return std::nullopt;
  std::string err;
  auto r = parse_image_ref(ref, &err);
  if (!r) return deny("ImageCreate: " + err, 400);
  if (!r->id && r->tag.empty() && r->digest.empty() && !c_.images.allow.empty())
    return deny("ImageCreate: pulling every tag of " + r->name + " is not allowed; name a tag or digest");
  return image_ref(*r, "ImageCreate");
}

std::optional<Violation> Checker::image_build() {
  const auto& q = req_.query();
  const auto& B = c_.build;
  if (const std::string* remote = query_first(q, "remote"); remote && !remote->empty() && !B.remote)
    return deny("ImageBuild: remote build contexts are not allowed");
  std::string nm = query_first(q, "networkmode") ? *query_first(q, "networkmode") : "";
  if (B.network_modes_set) {
    std::string n = nm.empty() ? "default" : nm;
    if (!in_marked(B.network_modes, n)) return deny("ImageBuild: networkmode \"" + n + "\" is not allowed");
  } else if (!(nm.empty() || nm == "default" || nm == "bridge" || nm == "none")) {
    if (nm == "host") {
      if (!host_ns("network")) return deny("ImageBuild: networkmode \"host\" is not allowed");
    } else if (nm.substr(0, 10) == "container:") {
      if (!c_.namespaces.container) return deny("ImageBuild: networkmode \"" + nm + "\" is not allowed");
    } else if (nm.find(':') != std::string::npos) {
      return deny("ImageBuild: networkmode \"" + nm + "\" is not allowed");
    }
  }
  if (!B.build_args)
    if (const std::string* a = query_first(q, "buildargs"); a && !a->empty() && trim(*a) != "{}" && trim(*a) != "null")
      return deny("ImageBuild: build arguments are not allowed");
  if (!B.extra_hosts)
    if (const std::string* a = query_first(q, "extrahosts"); a && !a->empty())
      return deny("ImageBuild: extra hosts are not allowed");
  if (!B.platforms.empty()) {
    const std::string* p = query_first(q, "platform");
    if (p && !p->empty() && !glob_marked(B.platforms, *p)) return deny("ImageBuild: platform \"" + *p + "\" is not allowed");
  }
  if (const std::string* cp = query_first(q, "cgroupparent"); cp && !cp->empty() && !c_.cgroup_parent)
    return deny("ImageBuild: cgroupparent is not allowed");
  if (const std::string* so = query_first(q, "securityopt"); so && !so->empty() && trim(*so) != "[]" && !c_.security.unconfined)
    return deny("ImageBuild: securityopt is not allowed");
  // Resource limits of the build containers (dockerd: Int64ValueOrZero of the first value; an
  // unparsable value becomes 0 = unlimited there, so it is refused here). Bounded when given.
  const auto& R = c_.resources;
  auto qint = [&](const char* name, std::optional<int64_t>& out) -> std::optional<Violation> {
    out.reset();
    const std::string* s = query_first(q, name);
    if (!s || s->empty()) return std::nullopt;
    int64_t v = 0;
    auto r = std::from_chars(s->data(), s->data() + s->size(), v);
    if (r.ec != std::errc() || r.ptr != s->data() + s->size())
      return deny("ImageBuild: " + std::string(name) + " \"" + *s + "\" is not an integer", 400);
    out = v;
    return std::nullopt;
  };
  auto bounded = [&](const config::PolicyLimit& l, const char* name, bool minus_one_unlimited) -> std::optional<Violation> {
    if (!l.max) return std::nullopt;
    std::optional<int64_t> v;
    if (auto e = qint(name, v)) return e;
    if (!v) return std::nullopt;
    if (*v < 0 && !(minus_one_unlimited && *v == -1)) return deny("ImageBuild: " + std::string(name) + " must not be negative");
    if (*v == -1 || *v > *l.max) return deny("ImageBuild: " + std::string(name) + " exceeds the maximum " + std::to_string(*l.max));
    return std::nullopt;
  };
  if (auto v = bounded(R.memory, "memory", false)) return v;
  if (auto v = bounded(R.memory_swap, "memswap", true)) return v;
  if (auto v = bounded(R.cpu_shares, "cpushares", false)) return v;
  if (auto v = bounded(R.cpu_quota, "cpuquota", true)) return v;
  if (auto v = bounded(R.cpu_period, "cpuperiod", false)) return v;
  if (auto v = bounded(R.shm_size, "shmsize", false)) return v;
  if (R.cpus.max) {
    std::optional<int64_t> quota, period;
    if (auto e = qint("cpuquota", quota)) return e;
    if (auto e = qint("cpuperiod", period)) return e;
    if (quota && *quota != 0) {
      if (*quota < 0) return deny("ImageBuild: cpuquota must not be unlimited");
      int64_t p = period && *period > 0 ? *period : 100000;
      if (static_cast<double>(*quota) / static_cast<double>(p) * 1e9 > static_cast<double>(*R.cpus.max))
        return deny("ImageBuild: cpuquota/cpuperiod exceed the maximum of " + std::to_string(static_cast<double>(*R.cpus.max) / 1e9) + " CPUs");
    }
  }
  if (R.cpuset_cpus)
    if (const std::string* cs = query_first(q, "cpusetcpus"); cs && !cs->empty() && *cs != *R.cpuset_cpus)
      return deny("ImageBuild: cpusetcpus must be \"" + *R.cpuset_cpus + "\"");
  if (R.ulimits_set)
    if (const std::string* u = query_first(q, "ulimits"); u && !u->empty() && trim(*u) != "[]" && trim(*u) != "null")
      return deny("ImageBuild: ulimits are not allowed (this rule constrains ulimits)");
  for (auto t : query_all(q, "t"))
    if (auto v = image(t, "ImageBuild tag")) return v;
  return std::nullopt;
}

std::optional<Violation> Checker::volume_create() {
  Struct root;
  if (auto v = body_root(root)) return v;
  std::string_view driver = root.string("Driver", err_, "").value_or("");
  auto opts = root.string_map("DriverOpts", err_, "");
  if (auto e = errors()) return e;
  if (auto v = volume_driver(driver, "VolumeCreate")) return v;
  if ((driver.empty() || driver == "local") && opts)
    if (auto v = local_volume_opts(*opts, "VolumeCreate")) return v;
  if (auto v = labels(root, "VolumeCreate", true)) return v;
  return std::nullopt;
}

std::optional<Violation> Checker::network_create() {
  Struct root;
  if (auto v = body_root(root)) return v;
  std::string_view driver = root.string("Driver", err_, "").value_or("");
  if (driver.empty()) driver = "bridge";
  auto opts = root.string_map("Options", err_, "");
  bool ingress = root.boolean("Ingress", err_, "").value_or(false);
  if (auto e = errors()) return e;
  if (!in_list(c_.networks.drivers, driver)) return deny("NetworkCreate: network driver \"" + std::string(driver) + "\" is not allowed");
  if (!c_.networks.host_interfaces) {
    if (ingress) return deny("NetworkCreate: ingress networks are not allowed");
    if (opts)
      for (auto& [k, v] : *opts) {
        (void)v;
        if (k == "parent" || k == "com.docker.network.bridge.name" || k == "macvlan_mode" || k == "ipvlan_mode")
          return deny("NetworkCreate: option " + std::string(k) + " (host interfaces) is not allowed");
      }
  }
  if (auto v = labels(root, "NetworkCreate", true)) return v;
  return std::nullopt;
}

std::optional<Violation> Checker::service() {
  Struct root;
  if (auto v = body_root(root)) return v;
  const char* S = "TaskTemplate.ContainerSpec";
  Struct tt = root.sub("TaskTemplate", err_, "", false);
  Struct cs = tt.sub("ContainerSpec", err_, "TaskTemplate");
  if (auto e = errors()) return e;
  if (tt.sub("PluginSpec", err_, "TaskTemplate").present() || tt.string("Runtime", err_, "TaskTemplate").value_or("") == "plugin")
    return deny("plugin services are not allowed");
  if (auto img = cs.string("Image", err_, S)) {
    if (auto v = image(*img, "ContainerSpec.Image")) return v;
  } else if (images_constrained()) {
    return deny("ContainerSpec.Image: an image is required");
  }
  // Injected values go into one more TaskTemplate object appended to the spec (a value struct whose
  // ContainerSpec, Resources and Limits are pointers: Go merges into them, or allocates them when
  // absent or reset by null). ServiceUpdate replaces the whole spec, so it is treated like create.
  std::string cs_add, lim_add;  // members for "ContainerSpec":{...} and "Resources":{"Limits":{...}}
  // Below API 1.41 dockerd drops ContainerSpec.CapabilityAdd/Drop and Limits.Pids (adjustForAPIVersion).
  const std::string& ver = req_.op().api_version;
  const bool before_1_41 = api_before(ver, 1, 41);
  std::optional<std::string_view> u = cs.string("User", err_, S);
  if (auto e = errors()) return e;
  if (auto v = user(u.value_or(""), "ContainerSpec", {&cs_add, &cs, S})) return v;
  if (auto ms = cs.structs("Mounts", err_, S))
    if (auto v = mounts(*ms, "ContainerSpec.Mounts")) return v;
  if (auto e = errors()) return e;
  auto add = cs.strings("CapabilityAdd", err_, S);
  auto drop = cs.strings("CapabilityDrop", err_, S);
  if (auto e = errors()) return e;
  if (r_.cap_drop != 0 && before_1_41)
    return deny("ContainerSpec.CapabilityDrop: this rule requires dropped capabilities, which dockerd ignores below API "
                "version 1.41 (request: " + ver + ")");
  if (auto v = caps(add, drop, "ContainerSpec.", "CapabilityAdd", "CapabilityDrop", {&cs_add, &cs, S}, false)) return v;
  if (auto v = sysctls(cs.string_map("Sysctls", err_, S), "ContainerSpec.Sysctls")) return v;
  Struct pv = cs.sub("Privileges", err_, S);
  if (pv.present() && !c_.security.unconfined) {
    std::string_view sm = pv.sub("Seccomp", err_, "Privileges").string("Mode", err_, "Seccomp").value_or("");
    std::string_view am = pv.sub("AppArmor", err_, "Privileges").string("Mode", err_, "AppArmor").value_or("");
    bool sd = pv.sub("SELinuxContext", err_, "Privileges").boolean("Disable", err_, "SELinuxContext").value_or(false);
    if (sm == "unconfined") return deny("ContainerSpec.Privileges: seccomp unconfined is not allowed");
    if (sm == "custom" && !c_.security.custom_seccomp) return deny("ContainerSpec.Privileges: custom seccomp profiles are not allowed");
    if (am == "disabled") return deny("ContainerSpec.Privileges: AppArmor disabled is not allowed");
    if (sd) return deny("ContainerSpec.Privileges: SELinux disabled is not allowed");
  }
  if (auto e = errors()) return e;
  auto check_nets = [&](const Struct& s, std::string_view what) -> std::optional<Violation> {
    if (auto nets = s.structs("Networks", err_, what))
      for (const auto& n : *nets) {
        std::string_view t = n.string("Target", err_, "Networks").value_or("");
        if (t == "host" && !host_ns("network")) return deny(std::string(what) + ".Networks: the host network is not allowed");
      }
    return errors();
  };
  if (auto v = check_nets(tt, "TaskTemplate")) return v;
  if (auto v = check_nets(root, "Spec")) return v;
  Struct ep = root.sub("EndpointSpec", err_, "");
  if (auto ports = ep.structs("Ports", err_, "EndpointSpec")) {
    for (const auto& p : *ports) {
      int64_t pub = p.integer("PublishedPort", err_, "Ports", 0, 65535).value_or(0);
      if (auto e = errors()) return e;
      if (pub != 0)
        if (auto v = port("", std::to_string(pub), "EndpointSpec.Ports")) return v;
    }
  }
  Struct res = tt.sub("Resources", err_, "TaskTemplate");
  Struct lim = res.sub("Limits", err_, "Resources");
  if (auto e = errors()) return e;
  const auto& R = c_.resources;
  const char* L = "TaskTemplate.Resources.Limits";
  // As on ContainerCreate: above the maximum or explicitly unlimited (negative) is denied; missing
  // (0, which means unlimited for all three) gets the rule's default, else its maximum.
  auto svc_limit = [&](const config::PolicyLimit& l, std::string_view f) -> std::optional<Violation> {
    if (!l.max && !l.def) return std::nullopt;
    int64_t v = lim.integer(f, err_, "Limits").value_or(0);
    if (auto e = errors()) return e;
    if (v == 0) {
      add_member(lim_add, spelled(lim, f, L));
      lim_add += std::to_string(l.def ? *l.def : *l.max);
      return std::nullopt;
    }
    if (l.max && v < 0)
      return deny(std::string(L) + "." + std::string(f) + " must not be unlimited (maximum " + std::to_string(*l.max) + ")");
    if (l.max && v > *l.max)
      return deny(std::string(L) + "." + std::string(f) + " " + std::to_string(v) + " exceeds the maximum " + std::to_string(*l.max));
    return std::nullopt;
  };
  if (auto v = svc_limit(R.memory, "MemoryBytes")) return v;
  if (auto v = svc_limit(R.cpus, "NanoCPUs")) return v;
  if ((R.pids_limit.max || R.pids_limit.def) && before_1_41)
    return deny(std::string(L) + ".Pids: this rule limits processes, which dockerd ignores for services below API version 1.41 "
                "(request: " + ver + ")");
  if (auto v = svc_limit(R.pids_limit, "Pids")) return v;
  if (auto v = labels(root, "Spec", true)) return v;
  if (!cs_add.empty() || !lim_add.empty()) {
    std::string& n = mut_.nested;
    if (!cs_add.empty()) {
      add_member(n, spelled(tt, "ContainerSpec", "TaskTemplate"));
      n += '{';
      n += cs_add;
      n += '}';
    }
    if (!lim_add.empty()) {
      add_member(n, spelled(tt, "Resources", "TaskTemplate"));
      n += '{';
      append_json_string(n, spelled(res, "Limits", "TaskTemplate.Resources"));
      n += ":{";
      n += lim_add;
      n += "}}";
    }
    mut_.nested_key = spelled(root, "TaskTemplate", "");
  }
  return std::nullopt;
}

std::optional<Violation> Checker::plugin_privileges() {
  if (c_.plugins.privileges) return std::nullopt;
  const gojson::Doc* doc = req_.doc();
  if (!doc) return deny(req_.body_error(), 400);
  auto root = doc->root();
  if (root.type() == simdjson::dom::element_type::NULL_VALUE) return std::nullopt;
  if (root.type() == simdjson::dom::element_type::OBJECT && doc->empty_object()) return std::nullopt;
  if (root.type() != simdjson::dom::element_type::ARRAY) return deny("the request body must be a JSON array", 400);
  if (gojson::arr_of(root).size() == 0) return std::nullopt;
  if (req_.op().name == "PluginSet") return deny("PluginSet: changing plugin settings is not allowed");
  return deny(std::string(req_.op().name) + ": granting plugin privileges is not allowed");
}

std::optional<Violation> Checker::run() {
  auto v = dispatch();
  if (!v && !spelling_error_.empty()) return deny(spelling_error_, 400);
  return v;
}

std::optional<Violation> Checker::dispatch() {
  std::string_view op = req_.op().name;
  if (op == "ContainerCreate") return container_create();
  if (op == "ContainerUpdate") return container_update();
  if (op == "ContainerExec") return container_exec();
  if (op == "ImageCreate") return image_create();
  if (op == "ImageBuild") return image_build();
  if (op == "ImageLoad") {
    if (!c_.images.import && images_constrained()) return deny("ImageLoad can name any image; it is not allowed with an image allowlist");
    return std::nullopt;
  }
  if (op == "ImageCommit" || op == "ImageTag") {
    const auto& q = req_.query();
    const std::string* repo = query_first(q, "repo");
    if (!repo || repo->empty()) return std::nullopt;
    std::string ref = *repo;
    if (const std::string* tag = query_first(q, "tag"); tag && !tag->empty()) ref += ":" + *tag;
    return image(ref, std::string(op) + " repo");
  }
  if (op == "ImagePush") {
    const std::string* name = req_.op().param("name");
    if (!name) return std::nullopt;
    std::string ref = *name;
    if (const std::string* tag = query_first(req_.query(), "tag"); tag && !tag->empty()) ref += ":" + *tag;
    return image(ref, "ImagePush", true);
  }
  if (op == "VolumeCreate") return volume_create();
  if (op == "NetworkCreate") return network_create();
  if (op == "NetworkConnect") {
    const std::string* net = req_.op().param("name");
    if (net && *net == "host" && !host_ns("network")) return deny("NetworkConnect: the host network is not allowed");
    return std::nullopt;
  }
  if (op == "ServiceCreate" || op == "ServiceUpdate") return service();
  if (op == "PluginPull" || op == "PluginUpgrade" || op == "PluginSet") return plugin_privileges();
  return std::nullopt;
}

}  // namespace

std::optional<Violation> check_rule(const CompiledRule& rule, RequestView& req, Mutation& mut) {
  Checker c(rule, req, mut);
  return c.run();
}

std::string apply_mutation(std::string_view body, const Mutation& mut, bool empty_object) {
  // The members to add, written straight into the result (one allocation).
  auto add_members = [&](std::string& out) {
    bool first = true;
    auto sep = [&] {
      if (!first) out += ',';
      first = false;
    };
    if (!mut.top.empty()) {
      sep();
      out += mut.top;
    }
    if (!mut.hc.empty()) {
      sep();
      out += "\"HostConfig\":{";
      out += mut.hc;
      out += '}';
    }
    if (!mut.labels.empty()) {
      sep();
      append_json_string(out, mut.labels_key.empty() ? std::string_view("Labels") : std::string_view(mut.labels_key));
      out += ":{";
      out += mut.labels;
      out += '}';
    }
    if (!mut.nested.empty()) {
      sep();
      append_json_string(out, mut.nested_key);
      out += ":{";
      out += mut.nested;
      out += '}';
    }
  };
  const size_t add_size = mut.top.size() + mut.hc.size() + mut.labels.size() + mut.labels_key.size() +
                          mut.nested_key.size() + mut.nested.size() + 64;
  std::string out;
  size_t end = body.find_last_not_of(" \t\r\n");
  if (end == std::string_view::npos || body[end] != '}') {
    out.reserve(add_size + 2);
    out += '{';
    add_members(out);
    out += '}';
    return out;
  }
  out.reserve(body.size() + add_size + 2);
  out.append(body.substr(0, end));
  if (!empty_object) out += ',';
  add_members(out);
  out += '}';
  return out;
}

}  // namespace dg::policy
