#include "policy/routes.hpp"

#include <algorithm>
#include <array>

#include "policy/policy.hpp"

namespace dg::policy {

namespace {

constexpr uint32_t R = kReadOnly, S = kStreamResponse, U = kUpload, H = kTunnel, J = kJsonBody, A = kAlwaysAllow;
using C = OpClass;

// Order matters only for the index; names are unique.
constexpr OpInfo kOps[] = {
    // system
    {"SystemPing", R | A, "system", C::Read, ""},
    {"SystemPingHead", R | A, "system", C::Read, ""},
    {"SystemVersion", R, "system", C::Read, ""},
    {"SystemInfo", R, "system", C::Read, ""},
    {"SystemEvents", R | S, "system", C::Read, ""},
    {"SystemDataUsage", R, "system", C::Read, ""},
    {"SystemAuth", J, "auth", C::Write, ""},
    {"Options", R, "system", C::Read, ""},
    {"DebugVars", R, "debug", C::Sensitive, ""},
    {"DebugPprof", R | S, "debug", C::Sensitive, ""},
    // containers
    {"ContainerList", R, "containers", C::Read, ""},
    {"ContainerCreate", J, "containers", C::Write, ""},
    {"ContainerInspect", R, "containers", C::Read, ""},
    {"ContainerTop", R, "containers", C::Read, ""},
    {"ContainerLogs", R | S, "containers", C::Sensitive, "containers:logs"},
    {"ContainerChanges", R, "containers", C::Read, ""},
    {"ContainerExport", R | S, "containers", C::Sensitive, "containers:archive"},
    {"ContainerStats", R | S, "containers", C::Read, ""},
    {"ContainerResize", 0, "containers", C::Write, ""},
    {"ContainerStart", 0, "containers", C::Write, ""},
    {"ContainerStop", 0, "containers", C::Write, ""},
    {"ContainerRestart", 0, "containers", C::Write, ""},
    {"ContainerKill", 0, "containers", C::Write, ""},
    {"ContainerPause", 0, "containers", C::Write, ""},
    {"ContainerUnpause", 0, "containers", C::Write, ""},
    {"ContainerRename", 0, "containers", C::Write, ""},
    {"ContainerUpdate", J, "containers", C::Write, ""},
    {"ContainerAttach", H, "containers", C::Sensitive, "containers:attach"},
    {"ContainerAttachWebsocket", H, "containers", C::Sensitive, "containers:attach"},
    {"ContainerWait", R | S, "containers", C::Read, ""},
    {"ContainerDelete", 0, "containers", C::Write, ""},
    {"ContainerArchiveInfo", R, "containers", C::Sensitive, "containers:archive"},
    {"ContainerArchive", R | S, "containers", C::Sensitive, "containers:archive"},
    {"PutContainerArchive", U, "containers", C::Sensitive, "containers:archive"},
    {"ContainerPrune", 0, "containers", C::Write, ""},
    {"ContainerCopy", J, "containers", C::Sensitive, "containers:archive"},
    // exec
    {"ContainerExec", J, "exec", C::Write, ""},
    {"ExecStart", H | J, "exec", C::Write, ""},
    {"ExecResize", 0, "exec", C::Write, ""},
    {"ExecInspect", R, "exec", C::Read, ""},
    // images
    {"ImageList", R, "images", C::Read, ""},
    {"ImageCreate", S | U, "images", C::Write, "images:pull"},
    {"ImageInspect", R, "images", C::Read, ""},
    {"ImageHistory", R, "images", C::Read, ""},
    {"ImagePush", S, "images", C::Write, "images:push"},
    {"ImageTag", 0, "images", C::Write, ""},
    {"ImageDelete", 0, "images", C::Write, ""},
    {"ImageSearch", R, "images", C::Read, ""},
    {"ImagePrune", 0, "images", C::Write, ""},
    {"ImageGet", R | S, "images", C::Sensitive, "images:export"},
    {"ImageGetAll", R | S, "images", C::Sensitive, "images:export"},
    {"ImageLoad", U | S, "images", C::Write, "images:import"},
    {"ImageCommit", J, "images", C::Write, "images:commit"},
    {"DistributionInspect", R, "distribution", C::Read, "images:pull"},
    // build
    {"ImageBuild", U | S, "build", C::Write, ""},
    {"BuildPrune", 0, "build", C::Write, ""},
    {"BuildCancel", 0, "build", C::Write, ""},
    {"Session", H, "session", C::Write, "build:write"},
    {"Grpc", H, "session", C::Write, "build:write"},
    // volumes
    {"VolumeList", R, "volumes", C::Read, ""},
    {"VolumeCreate", J, "volumes", C::Write, ""},
    {"VolumeInspect", R, "volumes", C::Read, ""},
    {"VolumeUpdate", J, "volumes", C::Write, ""},
    {"VolumeDelete", 0, "volumes", C::Write, ""},
    {"VolumePrune", 0, "volumes", C::Write, ""},
    // networks
    {"NetworkList", R, "networks", C::Read, ""},
    {"NetworkInspect", R, "networks", C::Read, ""},
    {"NetworkDelete", 0, "networks", C::Write, ""},
    {"NetworkCreate", J, "networks", C::Write, ""},
    {"NetworkConnect", J, "networks", C::Write, ""},
    {"NetworkDisconnect", J, "networks", C::Write, ""},
    {"NetworkPrune", 0, "networks", C::Write, ""},
    // plugins
    {"PluginList", R, "plugins", C::Read, ""},
    {"GetPluginPrivileges", R, "plugins", C::Read, ""},
    {"PluginPull", J | S, "plugins", C::Write, ""},
    {"PluginInspect", R, "plugins", C::Read, ""},
    {"PluginDelete", 0, "plugins", C::Write, ""},
    {"PluginEnable", 0, "plugins", C::Write, ""},
    {"PluginDisable", 0, "plugins", C::Write, ""},
    {"PluginUpgrade", J | S, "plugins", C::Write, ""},
    {"PluginPush", S, "plugins", C::Write, ""},
    {"PluginSet", J, "plugins", C::Write, ""},
    {"PluginCreate", U, "plugins", C::Write, ""},
    // swarm
    {"SwarmInspect", R, "swarm", C::Sensitive, ""},
    {"SwarmInit", J, "swarm", C::Write, ""},
    {"SwarmJoin", J, "swarm", C::Write, ""},
    {"SwarmLeave", 0, "swarm", C::Write, ""},
    {"SwarmUpdate", J, "swarm", C::Write, ""},
    {"SwarmUnlockkey", R, "swarm", C::Sensitive, ""},
    {"SwarmUnlock", J, "swarm", C::Write, ""},
    {"NodeList", R, "nodes", C::Read, "swarm:read"},
    {"NodeInspect", R, "nodes", C::Read, "swarm:read"},
    {"NodeDelete", 0, "nodes", C::Write, ""},
    {"NodeUpdate", J, "nodes", C::Write, ""},
    {"ServiceList", R, "services", C::Read, "swarm:read"},
    {"ServiceCreate", J, "services", C::Write, ""},
    {"ServiceInspect", R, "services", C::Read, "swarm:read"},
    {"ServiceDelete", 0, "services", C::Write, ""},
    {"ServiceUpdate", J, "services", C::Write, ""},
    {"ServiceLogs", R | S, "services", C::Sensitive, ""},
    {"TaskList", R, "tasks", C::Read, "swarm:read"},
    {"TaskInspect", R, "tasks", C::Read, "swarm:read"},
    {"TaskLogs", R | S, "tasks", C::Sensitive, ""},
    {"SecretList", R, "secrets", C::Read, "swarm:read"},
    {"SecretCreate", J, "secrets", C::Write, ""},
    {"SecretInspect", R, "secrets", C::Read, "swarm:read"},
    {"SecretDelete", 0, "secrets", C::Write, ""},
    {"SecretUpdate", J, "secrets", C::Write, ""},
    {"ConfigList", R, "configs", C::Read, "swarm:read"},
    {"ConfigCreate", J, "configs", C::Write, ""},
    {"ConfigInspect", R, "configs", C::Sensitive, ""},
    {"ConfigDelete", 0, "configs", C::Write, ""},
    {"ConfigUpdate", J, "configs", C::Write, ""},
};

constexpr int op_index(std::string_view name) {
  for (size_t i = 0; i < std::size(kOps); ++i)
    if (kOps[i].name == name) return static_cast<int>(i);
  return -1;
}

#define OP(n) op_index(n)

// Literal routes first within a method (dockerd never has a literal and a parameter route matching
// the same path; match_route() refuses such a request as ambiguous anyway).
const Route kRoutes[] = {
    {"GET", "/_ping", OP("SystemPing")},
    {"HEAD", "/_ping", OP("SystemPingHead")},
    {"GET", "/version", OP("SystemVersion")},
    {"GET", "/info", OP("SystemInfo")},
    {"GET", "/events", OP("SystemEvents")},
    {"GET", "/system/df", OP("SystemDataUsage")},
    {"POST", "/auth", OP("SystemAuth")},
    {"*", "/debug/vars", OP("DebugVars"), false},
    {"*", "/debug/pprof/{name}", OP("DebugPprof"), false},
    {"*", "/debug/pprof/", OP("DebugPprof"), false},

    {"GET", "/containers/json", OP("ContainerList")},
    {"POST", "/containers/create", OP("ContainerCreate")},
    {"POST", "/containers/prune", OP("ContainerPrune")},
    {"GET", "/containers/{name}/json", OP("ContainerInspect")},
    {"GET", "/containers/{name}/top", OP("ContainerTop")},
    {"GET", "/containers/{name}/logs", OP("ContainerLogs")},
    {"GET", "/containers/{name}/changes", OP("ContainerChanges")},
    {"GET", "/containers/{name}/export", OP("ContainerExport")},
    {"GET", "/containers/{name}/stats", OP("ContainerStats")},
    {"POST", "/containers/{name}/resize", OP("ContainerResize")},
    {"POST", "/containers/{name}/start", OP("ContainerStart")},
    {"POST", "/containers/{name}/stop", OP("ContainerStop")},
    {"POST", "/containers/{name}/restart", OP("ContainerRestart")},
    {"POST", "/containers/{name}/kill", OP("ContainerKill")},
    {"POST", "/containers/{name}/pause", OP("ContainerPause")},
    {"POST", "/containers/{name}/unpause", OP("ContainerUnpause")},
    {"POST", "/containers/{name}/rename", OP("ContainerRename")},
    {"POST", "/containers/{name}/update", OP("ContainerUpdate")},
    {"POST", "/containers/{name}/attach", OP("ContainerAttach")},
    {"GET", "/containers/{name}/attach/ws", OP("ContainerAttachWebsocket")},
    {"POST", "/containers/{name}/wait", OP("ContainerWait")},
    {"DELETE", "/containers/{name}", OP("ContainerDelete")},
    {"HEAD", "/containers/{name}/archive", OP("ContainerArchiveInfo")},
    {"GET", "/containers/{name}/archive", OP("ContainerArchive")},
    {"PUT", "/containers/{name}/archive", OP("PutContainerArchive")},
    {"POST", "/containers/{name}/copy", OP("ContainerCopy")},
    {"POST", "/containers/{name}/exec", OP("ContainerExec")},
    {"POST", "/commit", OP("ImageCommit")},

    {"POST", "/exec/{name}/start", OP("ExecStart")},
    {"POST", "/exec/{name}/resize", OP("ExecResize")},
    {"GET", "/exec/{name}/json", OP("ExecInspect")},

    {"GET", "/images/json", OP("ImageList")},
    {"POST", "/images/create", OP("ImageCreate")},
    {"GET", "/images/search", OP("ImageSearch")},
    {"POST", "/images/prune", OP("ImagePrune")},
    {"GET", "/images/get", OP("ImageGetAll")},
    {"POST", "/images/load", OP("ImageLoad")},
    {"GET", "/images/{name}/json", OP("ImageInspect")},
    {"GET", "/images/{name}/history", OP("ImageHistory")},
    {"POST", "/images/{name}/push", OP("ImagePush")},
    {"POST", "/images/{name}/tag", OP("ImageTag")},
    {"DELETE", "/images/{name}", OP("ImageDelete")},
    {"GET", "/images/{name}/get", OP("ImageGet")},
    {"GET", "/distribution/{name}/json", OP("DistributionInspect")},

    {"POST", "/build", OP("ImageBuild")},
    {"POST", "/build/prune", OP("BuildPrune")},
    {"POST", "/build/cancel", OP("BuildCancel")},
    {"POST", "/session", OP("Session")},
    {"POST", "/grpc", OP("Grpc")},

    {"GET", "/volumes", OP("VolumeList")},
    {"POST", "/volumes/create", OP("VolumeCreate")},
    {"POST", "/volumes/prune", OP("VolumePrune")},
    {"GET", "/volumes/{name}", OP("VolumeInspect")},
    {"PUT", "/volumes/{name}", OP("VolumeUpdate")},
    {"DELETE", "/volumes/{name}", OP("VolumeDelete")},

    {"GET", "/networks", OP("NetworkList")},
    {"GET", "/networks/", OP("NetworkList")},
    {"POST", "/networks/create", OP("NetworkCreate")},
    {"POST", "/networks/prune", OP("NetworkPrune")},
    {"GET", "/networks/{name}", OP("NetworkInspect")},
    {"DELETE", "/networks/{name}", OP("NetworkDelete")},
    {"POST", "/networks/{name}/connect", OP("NetworkConnect")},
    {"POST", "/networks/{name}/disconnect", OP("NetworkDisconnect")},

    {"GET", "/plugins", OP("PluginList")},
    {"GET", "/plugins/privileges", OP("GetPluginPrivileges")},
    {"POST", "/plugins/pull", OP("PluginPull")},
    {"POST", "/plugins/create", OP("PluginCreate")},
    {"GET", "/plugins/{name}/json", OP("PluginInspect")},
    {"DELETE", "/plugins/{name}", OP("PluginDelete")},
    {"POST", "/plugins/{name}/enable", OP("PluginEnable")},
    {"POST", "/plugins/{name}/disable", OP("PluginDisable")},
    {"POST", "/plugins/{name}/upgrade", OP("PluginUpgrade")},
    {"POST", "/plugins/{name}/push", OP("PluginPush")},
    {"POST", "/plugins/{name}/set", OP("PluginSet")},

    {"GET", "/swarm", OP("SwarmInspect")},
    {"POST", "/swarm/init", OP("SwarmInit")},
    {"POST", "/swarm/join", OP("SwarmJoin")},
    {"POST", "/swarm/leave", OP("SwarmLeave")},
    {"POST", "/swarm/update", OP("SwarmUpdate")},
    {"GET", "/swarm/unlockkey", OP("SwarmUnlockkey")},
    {"POST", "/swarm/unlock", OP("SwarmUnlock")},
    {"GET", "/nodes", OP("NodeList")},
    {"GET", "/nodes/{id}", OP("NodeInspect")},
    {"DELETE", "/nodes/{id}", OP("NodeDelete")},
    {"POST", "/nodes/{id}/update", OP("NodeUpdate")},
    {"GET", "/services", OP("ServiceList")},
    {"POST", "/services/create", OP("ServiceCreate")},
    {"GET", "/services/{id}", OP("ServiceInspect")},
    {"DELETE", "/services/{id}", OP("ServiceDelete")},
    {"POST", "/services/{id}/update", OP("ServiceUpdate")},
    {"GET", "/services/{id}/logs", OP("ServiceLogs")},
    {"GET", "/tasks", OP("TaskList")},
    {"GET", "/tasks/{id}", OP("TaskInspect")},
    {"GET", "/tasks/{id}/logs", OP("TaskLogs")},
    {"GET", "/secrets", OP("SecretList")},
    {"POST", "/secrets/create", OP("SecretCreate")},
    {"GET", "/secrets/{id}", OP("SecretInspect")},
    {"DELETE", "/secrets/{id}", OP("SecretDelete")},
    {"POST", "/secrets/{id}/update", OP("SecretUpdate")},
    {"GET", "/configs", OP("ConfigList")},
    {"POST", "/configs/create", OP("ConfigCreate")},
    {"GET", "/configs/{id}", OP("ConfigInspect")},
    {"DELETE", "/configs/{id}", OP("ConfigDelete")},
    {"POST", "/configs/{id}/update", OP("ConfigUpdate")},
};

#undef OP

}  // namespace

std::span<const OpInfo> operations() { return kOps; }
std::span<const Route> routes() { return kRoutes; }

int find_operation(std::string_view name) { return op_index(name); }

std::vector<std::string> group_names() {
  std::vector<std::string> out = {"all", "all:read", "exec"};
  for (const auto& o : kOps) {
    for (std::string g : {std::string(o.area) + ":read", std::string(o.area) + ":write", std::string(o.area) + ":*",
                          std::string(o.extra)}) {
      if (!g.empty() && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
    }
  }
  return out;
}

std::optional<std::vector<int>> expand_operations(std::string_view n) {
  std::vector<int> out;
  if (int i = op_index(n); i >= 0) {
    out.push_back(i);
    return out;
  }
  auto add_if = [&](auto pred) {
    for (size_t i = 0; i < std::size(kOps); ++i)
      if (pred(kOps[i])) out.push_back(static_cast<int>(i));
  };
  if (n == "all" || n == "*") {
    add_if([](const OpInfo&) { return true; });
    return out;
  }
  if (n == "all:read") {
    add_if([](const OpInfo& o) { return o.cls == OpClass::Read; });
    return out;
  }
  if (n == "exec") n = "exec:*";
  size_t colon = n.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view area = n.substr(0, colon), kind = n.substr(colon + 1);
  add_if([&](const OpInfo& o) {
    if (o.extra == n) return true;
    if (o.area != area) return false;
    if (kind == "*") return true;
    if (kind == "read") return o.cls == OpClass::Read;
    if (kind == "write") return o.cls == OpClass::Write;
    return false;
  });
  if (out.empty()) return std::nullopt;
  return out;
}

namespace {

// The route table prepared for matching: each pattern split once, and routes grouped by the
// literal first path segment (a path can only match patterns with the same first segment).
struct PreparedRoute {
  const Route* r;
  bool any_method, param;
  std::string_view prefix, pname, suffix;  // pattern = prefix {pname} suffix, when param
};
struct RouteIndex {
  std::vector<PreparedRoute> routes;
  std::vector<std::pair<std::string_view, std::vector<uint16_t>>> buckets;  // first segment -> routes, in order
  std::vector<uint16_t> wild;  // routes whose first segment holds a parameter (checked for every path)
};

std::string_view first_segment(std::string_view p) {
  if (p.empty() || p[0] != '/') return p;
  size_t end = p.find('/', 1);
  return p.substr(1, (end == std::string_view::npos ? p.size() : end) - 1);
}

const RouteIndex& route_index() {
  static const RouteIndex idx = [] {
    RouteIndex x;
    for (const auto& r : kRoutes) {
      PreparedRoute pr{&r, r.method == "*", false, r.pattern, {}, {}};
      size_t open = r.pattern.find('{');
      if (open != std::string_view::npos) {
        size_t close = r.pattern.find('}', open);
        pr.param = true;
        pr.prefix = r.pattern.substr(0, open);
        pr.pname = r.pattern.substr(open + 1, close - open - 1);
        pr.suffix = r.pattern.substr(close + 1);
      }
      auto i = static_cast<uint16_t>(x.routes.size());
      x.routes.push_back(pr);
      std::string_view seg = first_segment(r.pattern);
      if (seg.find('{') != std::string_view::npos) {
        x.wild.push_back(i);
        continue;
      }
      auto b = std::find_if(x.buckets.begin(), x.buckets.end(), [&](const auto& kv) { return kv.first == seg; });
      if (b == x.buckets.end()) {
        x.buckets.emplace_back(seg, std::vector<uint16_t>());
        b = x.buckets.end() - 1;
      }
      b->second.push_back(i);
    }
    return x;
  }();
  return idx;
}

// Matches one prepared pattern; at most one parameter per pattern ({id}: one segment).
bool match_prepared(const PreparedRoute& pr, std::string_view path, std::string_view& pname, std::string_view& pval) {
  if (!pr.param) return pr.prefix == path;
  if (path.size() < pr.prefix.size() + pr.suffix.size() + 1) return false;  // parameters are never empty
  if (path.substr(0, pr.prefix.size()) != pr.prefix) return false;
  if (path.substr(path.size() - pr.suffix.size()) != pr.suffix) return false;
  std::string_view val = path.substr(pr.prefix.size(), path.size() - pr.prefix.size() - pr.suffix.size());
  if (pr.pname == "id" && val.find('/') != std::string_view::npos) return false;
  pname = pr.pname;
  pval = val;
  return true;
}

}  // namespace

RouteMatch match_route(std::string_view method, std::string_view path, bool versioned) {
  RouteMatch m;
  const RouteIndex& idx = route_index();
  const std::vector<uint16_t>* bucket = nullptr;
  std::string_view seg = first_segment(path);
  for (const auto& [s, b] : idx.buckets)
    if (s == seg) {
      bucket = &b;
      break;
    }
  // Candidates in table order: the path's bucket merged with the parameterised first segments.
  size_t bi = 0, wi = 0, bn = bucket ? bucket->size() : 0, wn = idx.wild.size();
  while (bi < bn || wi < wn) {
    uint16_t i;
    if (wi == wn || (bi < bn && (*bucket)[bi] < idx.wild[wi]))
      i = (*bucket)[bi++];
    else
      i = idx.wild[wi++];
    const PreparedRoute& pr = idx.routes[i];
    const Route& r = *pr.r;
    if (!pr.any_method && r.method != method) continue;
    if (versioned && !r.versioned) continue;
    std::string_view pname, pval;
    if (!match_prepared(pr, path, pname, pval)) continue;
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

}  // namespace dg::policy
