// The policy file (docs/policy.md) as typed structs. Read here (the only yaml-cpp user), compiled by
// src/policy/policy.cpp. Every value keeps its file position so compile-time problems (unknown
// operation names, rules that can never match) are reported as file:line:col too.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace dg::config {

struct Mark {
  int line = 0;  // 1-based; 0 = unknown
  int col = 0;
};

struct MarkedString {
  std::string value;
  Mark mark;
};

// A resource limit: the largest value a client may ask for, and the value injected when it asked
// for none. Both in the unit of the Docker field (bytes, nano-CPUs, shares, microseconds, pids).
struct PolicyLimit {
  std::optional<int64_t> max;
  std::optional<int64_t> def;
  Mark mark;
};

struct PolicyHostPath {
  std::string path;  // absolute, lexically normal
  bool read_only = false;
  Mark mark;
};

struct PolicyImages {
  std::vector<MarkedString> allow;  // reference globs; empty = any image
  std::vector<MarkedString> deny;
  bool require_digest = false;
  bool import = false;  // ImageCreate fromSrc (upload or URL), ImageLoad
};

struct PolicyMounts {
  std::vector<PolicyHostPath> host_paths;  // empty = no host bind at all
  bool named_volumes = true;
  std::vector<std::string> volume_drivers = {"local"};
  bool tmpfs = true;
  bool volumes_from = false;
  bool network_volumes = false;  // local driver type=nfs|cifs|... (host-side network mounts)
};

struct PolicyCapabilities {
  std::vector<MarkedString> add;   // CapAdd allowlist (any spelling; ALL = every capability)
  std::vector<MarkedString> drop;  // required in CapDrop (injected when missing)
};

struct PolicyDevices {
  std::vector<MarkedString> allow;  // PathOnHost allowlist (exact paths)
  bool cgroup_rules = false;
  bool gpus = false;  // DeviceRequests
};

struct PolicyNamespaces {
  std::vector<MarkedString> host;  // network pid ipc uts userns cgroupns
  bool container = false;          // <ns>: container:<id>
};

struct PolicySecurity {
  bool unconfined = false;      // seccomp/apparmor/systempaths=unconfined, label=disable|type:..., unmasked paths
  bool custom_seccomp = false;  // seccomp=<inline profile>
  bool no_new_privileges = false;  // required; injected when missing
};

struct PolicyPorts {
  std::vector<MarkedString> host_ips;  // empty = any; "" in a request means every address
  int64_t min = 1;
  int64_t max = 65535;
  bool publish_all = true;
};

struct PolicyResources {
  PolicyLimit memory, memory_swap, memory_reservation, cpus /* NanoCpus */, cpu_quota, cpu_period, cpu_shares,
      pids_limit, shm_size, blkio_weight;
  std::optional<std::string> cpuset_cpus;  // allowed CPUs, e.g. "0-3"
  std::map<std::string, int64_t> ulimits;  // name -> max soft/hard
  Mark ulimits_mark;
  bool ulimits_set = false;
};

struct PolicyUser {
  bool non_root = false;
  std::string def;  // injected as Config.User on ContainerCreate when the client sent none
};

struct PolicyLabels {
  std::vector<std::pair<std::string, std::string>> required;  // key -> value glob
  std::vector<MarkedString> forbidden;                         // key globs
  std::vector<std::pair<std::string, std::string>> inject;     // key -> template ({{identity}}...)
};

struct PolicyBuild {
  std::vector<MarkedString> network_modes = {};  // allowed networkmode values (default, none, bridge...)
  bool network_modes_set = false;
  bool build_args = true;
  bool remote = false;
  std::vector<MarkedString> platforms;  // globs; empty = any
  bool extra_hosts = true;
};

struct PolicyNetworks {
  std::vector<std::string> drivers = {"bridge", "overlay"};
  bool host_interfaces = false;  // macvlan/ipvlan parent=, bridge.name, ingress
};

struct PolicyPlugins {
  bool privileges = false;  // PluginPull/Upgrade may grant privileges
};

struct PolicyMatch {
  std::vector<MarkedString> identities;  // empty = any
  std::vector<MarkedString> groups;
  std::vector<MarkedString> methods;
  std::vector<MarkedString> listeners;
};

struct PolicyRule {
  std::string name;
  Mark mark;
  PolicyMatch match;
  std::vector<MarkedString> allow;
  std::vector<MarkedString> deny;
  std::optional<bool> audit;
  bool unrestricted = false;

  PolicyImages images;
  PolicyMounts mounts;
  bool privileged = false;
  PolicyCapabilities capabilities;
  PolicyDevices devices;
  PolicyNamespaces namespaces;
  PolicySecurity security;
  std::vector<MarkedString> sysctls;  // name globs
  std::vector<std::string> runtimes = {"runc"};
  bool cgroup_parent = false;
  PolicyPorts ports;
  PolicyResources resources;
  PolicyUser user;
  PolicyLabels labels;
  PolicyBuild build;
  PolicyNetworks networks;
  PolicyPlugins plugins;
  std::vector<std::string> constraint_keys;  // constraint sections present (for lint)
};

struct PolicyFile {
  std::string path;
  int version = 1;
  bool audit = false;  // mode: audit
  uint64_t max_body = 1 << 20;
  bool max_body_set = false;
  std::vector<PolicyRule> rules;
};

tl::expected<PolicyFile, Diagnostics> load_policy_file(const std::string& path);
tl::expected<PolicyFile, Diagnostics> load_policy_text(const std::string& text, const std::string& path);

}  // namespace dg::config
