#include "config/policy_file.hpp"
#include "core/strings.hpp"

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "config/yaml_util.hpp"

namespace dg::config {

namespace {

Mark mark_of(const YAML::Node& n) {
  Mark m;
  if (n.IsDefined()) {
    auto ym = n.Mark();
    if (ym.line >= 0) {
      m.line = ym.line + 1;
      m.col = ym.column + 1;
    }
  }
  return m;
}


class PolicyReader {
 public:
  PolicyReader(const std::string& path, Diagnostics& d) : r_(path, d) {}

  std::optional<PolicyFile> run(std::optional<YAML::Node> root) {
    if (!root) return std::nullopt;
    PolicyFile f;
    f.path = r_.file();
    const YAML::Node& n = *root;
    if (!n.IsDefined() || n.IsNull()) {
      r_.error_at(0, 0, "the policy is empty: it needs at least \"version: 1\" and \"rules\"");
      return std::nullopt;
    }
    if (!r_.map(n, "the policy", {"version", "mode", "max_body", "rules"})) {
      if (!n.IsMap()) return std::nullopt;
    }
    if (auto v = r_.integer(r_.required(n, "version", "the policy"), "version", 1, 1)) f.version = static_cast<int>(*v);
    if (auto m = r_.str(n["mode"], "mode")) {
      if (*m == "audit")
        f.audit = true;
      else if (*m != "enforce")
        r_.error(n["mode"], "mode must be \"enforce\" or \"audit\"");
    }
    if (n["max_body"].IsDefined() && !n["max_body"].IsNull()) {
      if (auto s = r_.size_bytes(n["max_body"], "max_body")) {
        if (*s < 1024)
          r_.error(n["max_body"], "max_body must be at least 1KiB");
        else {
          f.max_body = *s;
          f.max_body_set = true;
        }
      }
    }
    const YAML::Node rules = r_.required(n, "rules", "the policy");
    if (rules.IsDefined() && !rules.IsNull() && r_.is_seq(rules, "rules")) {
      for (const auto& rn : rules) {
        PolicyRule rule;
        if (read_rule(rn, rule)) {
          for (const auto& other : f.rules)
            if (other.name == rule.name) r_.error(rn["name"], "duplicate rule name \"" + rule.name + "\"");
          f.rules.push_back(std::move(rule));
        }
      }
    }
    if (!r_.diags().ok()) return std::nullopt;
    return f;
  }

 private:
  std::vector<MarkedString> marked_list(const YAML::Node& n, std::string_view key) {
    std::vector<MarkedString> out;
    if (!n.IsDefined() || n.IsNull()) return out;
    if (n.IsScalar()) {
      out.push_back({n.Scalar(), mark_of(n)});
      return out;
    }
    if (!n.IsSequence()) {
      r_.error(n, std::string(key) + " must be a string or a list of strings");
      return out;
    }
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        r_.error(item, std::string(key) + " entries must be strings");
        continue;
      }
      out.push_back({item.Scalar(), mark_of(item)});
    }
    return out;
  }

  std::vector<std::string> plain_list(const YAML::Node& n, std::string_view key) {
    std::vector<std::string> out;
    for (auto& m : marked_list(n, key)) out.push_back(m.value);
    return out;
  }

  void flag(const YAML::Node& n, std::string_view key, bool& out) {
    if (auto b = r_.boolean(n, key)) out = *b;
  }

  std::vector<std::pair<std::string, std::string>> str_map(const YAML::Node& n, std::string_view key) {
    std::vector<std::pair<std::string, std::string>> out;
    if (!n.IsDefined() || n.IsNull()) return out;
    if (!r_.is_map(n, key)) return out;
    for (const auto& kv : n) {
      if (!kv.first.IsScalar() || !(kv.second.IsScalar() || kv.second.IsNull())) {
        r_.error(kv.first, std::string(key) + " must map strings to strings");
        continue;
      }
      out.emplace_back(kv.first.Scalar(), kv.second.IsNull() ? "" : kv.second.Scalar());
    }
    return out;
  }

  // "1.5" CPUs -> nano-CPUs.
  std::optional<int64_t> cpus(const YAML::Node& n, std::string_view key) {
    if (!n.IsDefined() || n.IsNull()) return std::nullopt;
    if (!n.IsScalar()) {
      r_.error(n, std::string(key) + " must be a number of CPUs (e.g. 1.5)");
      return std::nullopt;
    }
    const std::string& s = n.Scalar();
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || !(d > 0) || d > 4096) {
      r_.error(n, std::string(key) + " must be a number of CPUs between 0 and 4096 (e.g. 1.5)");
      return std::nullopt;
    }
    return static_cast<int64_t>(std::llround(d * 1e9));
  }

  enum class Unit { Count, Bytes, Cpus };

  void limit(const YAML::Node& n, std::string_view key, Unit unit, PolicyLimit& out) {
    if (!n.IsDefined() || n.IsNull()) return;
    out.mark = mark_of(n);
    std::string what = "resources." + std::string(key);
    auto value = [&](const YAML::Node& v, const std::string& k) -> std::optional<int64_t> {
      switch (unit) {
        case Unit::Bytes: {
          auto b = r_.size_bytes(v, k);
          if (b && *b > static_cast<uint64_t>(INT64_MAX)) {
            r_.error(v, k + " is too large");
            return std::nullopt;
          }
          if (b) return static_cast<int64_t>(*b);
          return std::nullopt;
        }
        case Unit::Cpus:
          return cpus(v, k);
        case Unit::Count:
          return r_.integer(v, k, -1, INT64_MAX);
      }
      return std::nullopt;
    };
    if (n.IsScalar()) {  // shorthand: a bare value is the maximum
      out.max = value(n, what);
      return;
    }
    if (!r_.map(n, what, {"max", "default"})) return;
    out.max = value(n["max"], what + ".max");
    out.def = value(n["default"], what + ".default");
    if (out.max && out.def && *out.def > *out.max) r_.error(n["default"], what + ".default is larger than its max");
  }

  bool read_rule(const YAML::Node& n, PolicyRule& rule) {
    static const std::vector<std::string> kKeys = {
        "name", "match", "allow", "deny", "audit", "unrestricted", "images", "mounts", "privileged",
        "capabilities", "devices", "namespaces", "security", "sysctls", "runtimes", "cgroup_parent",
        "ports", "resources", "user", "labels", "build", "networks", "plugins"};
    static const std::vector<std::string> kConstraintKeys = {
        "images", "mounts", "privileged", "capabilities", "devices", "namespaces", "security", "sysctls",
        "runtimes", "cgroup_parent", "ports", "resources", "user", "labels", "build", "networks", "plugins"};
    if (!r_.is_map(n, "a rule")) return false;
    rule.mark = mark_of(n);
    r_.map(n, "a rule", kKeys);
    if (auto s = r_.str(r_.required(n, "name", "a rule"), "name")) rule.name = *s;
    if (rule.name.empty()) return false;
    std::string what = "rule \"" + rule.name + "\"";
    for (const auto& k : kConstraintKeys)
      if (n[k].IsDefined()) rule.constraint_keys.push_back(k);

    if (const YAML::Node m = n["match"]; m.IsDefined() && !m.IsNull()) {
      if (r_.map(m, what + ".match", {"identities", "groups", "methods", "listeners"})) {
        rule.match.identities = marked_list(m["identities"], "match.identities");
        rule.match.groups = marked_list(m["groups"], "match.groups");
        rule.match.methods = marked_list(m["methods"], "match.methods");
        rule.match.listeners = marked_list(m["listeners"], "match.listeners");
      }
    }
    rule.allow = marked_list(n["allow"], "allow");
    rule.deny = marked_list(n["deny"], "deny");
    if (auto b = r_.boolean(n["audit"], "audit")) rule.audit = *b;
    flag(n["unrestricted"], "unrestricted", rule.unrestricted);

    if (const YAML::Node x = n["images"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".images", {"allow", "deny", "require_digest", "import"})) {
        rule.images.allow = marked_list(x["allow"], "images.allow");
        rule.images.deny = marked_list(x["deny"], "images.deny");
        flag(x["require_digest"], "images.require_digest", rule.images.require_digest);
        flag(x["import"], "images.import", rule.images.import);
      }
    }
    if (const YAML::Node x = n["mounts"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".mounts",
                 {"host_paths", "named_volumes", "volume_drivers", "tmpfs", "volumes_from", "network_volumes"})) {
        const YAML::Node hp = x["host_paths"];
        if (hp.IsDefined() && !hp.IsNull() && r_.is_seq(hp, "mounts.host_paths")) {
          for (const auto& e : hp) {
            PolicyHostPath p;
            p.mark = mark_of(e);
            if (e.IsScalar()) {
              p.path = e.Scalar();
            } else if (r_.map(e, "mounts.host_paths entry", {"path", "read_only"})) {
              if (auto s = r_.str(r_.required(e, "path", "mounts.host_paths entry"), "path")) p.path = *s;
              flag(e["read_only"], "read_only", p.read_only);
            } else {
              continue;
            }
            if (p.path.empty() || p.path[0] != '/') {
              r_.error(e, "mounts.host_paths: \"" + p.path + "\" must be an absolute path");
              continue;
            }
            p.path = clean_path(p.path);
            rule.mounts.host_paths.push_back(std::move(p));
          }
        }
        flag(x["named_volumes"], "mounts.named_volumes", rule.mounts.named_volumes);
        if (x["volume_drivers"].IsDefined()) rule.mounts.volume_drivers = plain_list(x["volume_drivers"], "mounts.volume_drivers");
        flag(x["tmpfs"], "mounts.tmpfs", rule.mounts.tmpfs);
        flag(x["volumes_from"], "mounts.volumes_from", rule.mounts.volumes_from);
        flag(x["network_volumes"], "mounts.network_volumes", rule.mounts.network_volumes);
      }
    }
    flag(n["privileged"], "privileged", rule.privileged);
    if (const YAML::Node x = n["capabilities"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".capabilities", {"add", "drop"})) {
        rule.capabilities.add = marked_list(x["add"], "capabilities.add");
        rule.capabilities.drop = marked_list(x["drop"], "capabilities.drop");
      }
    }
    if (const YAML::Node x = n["devices"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".devices", {"allow", "cgroup_rules", "gpus"})) {
        rule.devices.allow = marked_list(x["allow"], "devices.allow");
        flag(x["cgroup_rules"], "devices.cgroup_rules", rule.devices.cgroup_rules);
        flag(x["gpus"], "devices.gpus", rule.devices.gpus);
      }
    }
    if (const YAML::Node x = n["namespaces"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".namespaces", {"host", "container"})) {
        rule.namespaces.host = marked_list(x["host"], "namespaces.host");
        for (const auto& h : rule.namespaces.host) {
          static const char* kNs[] = {"network", "pid", "ipc", "uts", "userns", "cgroupns"};
          bool ok = false;
          for (auto k : kNs) ok = ok || h.value == k;
          if (!ok)
            r_.error_at(h.mark.line, h.mark.col,
                        "namespaces.host: unknown namespace \"" + h.value + "\" (known: network, pid, ipc, uts, userns, cgroupns)");
        }
        flag(x["container"], "namespaces.container", rule.namespaces.container);
      }
    }
    if (const YAML::Node x = n["security"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".security", {"unconfined", "custom_seccomp", "no_new_privileges"})) {
        flag(x["unconfined"], "security.unconfined", rule.security.unconfined);
        flag(x["custom_seccomp"], "security.custom_seccomp", rule.security.custom_seccomp);
        flag(x["no_new_privileges"], "security.no_new_privileges", rule.security.no_new_privileges);
      }
    }
    rule.sysctls = marked_list(n["sysctls"], "sysctls");
    if (n["runtimes"].IsDefined()) rule.runtimes = plain_list(n["runtimes"], "runtimes");
    flag(n["cgroup_parent"], "cgroup_parent", rule.cgroup_parent);
    if (const YAML::Node x = n["ports"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".ports", {"host_ips", "min", "max", "publish_all"})) {
        rule.ports.host_ips = marked_list(x["host_ips"], "ports.host_ips");
        if (auto v = r_.integer(x["min"], "ports.min", 1, 65535)) rule.ports.min = *v;
        if (auto v = r_.integer(x["max"], "ports.max", 1, 65535)) rule.ports.max = *v;
        if (rule.ports.min > rule.ports.max) r_.error(x, "ports.min is larger than ports.max");
        flag(x["publish_all"], "ports.publish_all", rule.ports.publish_all);
      }
    }
    if (const YAML::Node x = n["resources"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".resources",
                 {"memory", "memory_swap", "memory_reservation", "cpus", "cpu_quota", "cpu_period", "cpu_shares",
                  "pids_limit", "shm_size", "blkio_weight", "cpuset_cpus", "ulimits"})) {
        auto& rs = rule.resources;
        limit(x["memory"], "memory", Unit::Bytes, rs.memory);
        limit(x["memory_swap"], "memory_swap", Unit::Bytes, rs.memory_swap);
        limit(x["memory_reservation"], "memory_reservation", Unit::Bytes, rs.memory_reservation);
        limit(x["cpus"], "cpus", Unit::Cpus, rs.cpus);
        limit(x["cpu_quota"], "cpu_quota", Unit::Count, rs.cpu_quota);
        limit(x["cpu_period"], "cpu_period", Unit::Count, rs.cpu_period);
        limit(x["cpu_shares"], "cpu_shares", Unit::Count, rs.cpu_shares);
        limit(x["pids_limit"], "pids_limit", Unit::Count, rs.pids_limit);
        limit(x["shm_size"], "shm_size", Unit::Bytes, rs.shm_size);
        limit(x["blkio_weight"], "blkio_weight", Unit::Count, rs.blkio_weight);
        if (auto s = r_.str(x["cpuset_cpus"], "resources.cpuset_cpus")) rs.cpuset_cpus = *s;
        if (const YAML::Node u = x["ulimits"]; u.IsDefined() && !u.IsNull() && r_.is_map(u, "resources.ulimits")) {
          rs.ulimits_set = true;
          rs.ulimits_mark = mark_of(u);
          for (const auto& kv : u) {
            std::string name = kv.first.Scalar();
            if (auto v = r_.integer(kv.second, "resources.ulimits." + name, -1, INT64_MAX)) rs.ulimits[name] = *v;
          }
        }
      }
    }
    if (const YAML::Node x = n["user"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".user", {"non_root", "default"})) {
        flag(x["non_root"], "user.non_root", rule.user.non_root);
        if (auto s = r_.str(x["default"], "user.default")) rule.user.def = *s;
      }
    }
    if (const YAML::Node x = n["labels"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".labels", {"required", "forbidden", "inject"})) {
        rule.labels.required = str_map(x["required"], "labels.required");
        rule.labels.forbidden = marked_list(x["forbidden"], "labels.forbidden");
        rule.labels.inject = str_map(x["inject"], "labels.inject");
      }
    }
    if (const YAML::Node x = n["build"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".build", {"network_modes", "build_args", "remote", "platforms", "extra_hosts"})) {
        if (x["network_modes"].IsDefined()) {
          rule.build.network_modes = marked_list(x["network_modes"], "build.network_modes");
          rule.build.network_modes_set = true;
        }
        flag(x["build_args"], "build.build_args", rule.build.build_args);
        flag(x["remote"], "build.remote", rule.build.remote);
        rule.build.platforms = marked_list(x["platforms"], "build.platforms");
        flag(x["extra_hosts"], "build.extra_hosts", rule.build.extra_hosts);
      }
    }
    if (const YAML::Node x = n["networks"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".networks", {"drivers", "host_interfaces"})) {
        if (x["drivers"].IsDefined()) rule.networks.drivers = plain_list(x["drivers"], "networks.drivers");
        flag(x["host_interfaces"], "networks.host_interfaces", rule.networks.host_interfaces);
      }
    }
    if (const YAML::Node x = n["plugins"]; x.IsDefined() && !x.IsNull()) {
      if (r_.map(x, what + ".plugins", {"privileges"})) flag(x["privileges"], "plugins.privileges", rule.plugins.privileges);
    }
    return true;
  }

  Reader r_;
};

}  // namespace

tl::expected<PolicyFile, Diagnostics> load_policy_file(const std::string& path) {
  Diagnostics d;
  PolicyReader pr(path, d);
  Reader loader(path, d);
  auto f = pr.run(loader.load_file());
  if (!f || !d.ok()) {
    if (d.ok()) d.items.push_back({path, 0, 0, "invalid policy"});
    return tl::unexpected(d);
  }
  return *f;
}

tl::expected<PolicyFile, Diagnostics> load_policy_text(const std::string& text, const std::string& path) {
  Diagnostics d;
  PolicyReader pr(path, d);
  Reader loader(path, d);
  auto f = pr.run(loader.load_text(text));
  if (!f || !d.ok()) {
    if (d.ok()) d.items.push_back({path, 0, 0, "invalid policy"});
    return tl::unexpected(d);
  }
  return *f;
}

}  // namespace dg::config
