#include "policy/routes.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "core/strings.hpp"

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
constexpr Route kRoutes[] = {
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

// Methods the table names; anything else only matches "*" routes.
enum MethodCode : uint8_t { kGet, kHead, kPost, kPut, kDelete, kOther, kMethodCodes };

constexpr MethodCode method_code(std::string_view m) {
  switch (m.size()) {
    case 3:
      if (m == "GET") return kGet;
      if (m == "PUT") return kPut;
      break;
    case 4:
      if (m == "POST") return kPost;
      if (m == "HEAD") return kHead;
      break;
    case 6:
      if (m == "DELETE") return kDelete;
      break;
    default: break;
  }
  return kOther;
}

// The route table prepared for matching, at compile time: each pattern split once, and per
// (literal first path segment, method, versioned or not) the candidate routes in table order (a
// path can only match patterns with its first segment and its method). A candidate is first
// tested on the last bytes of the path, which tells most of them apart at once.
struct PreparedRoute {
  int op = -1;
  bool versioned = true;
  bool param = false;
  bool one_segment = false;  // {id}: the value holds no '/'
  bool skip_prefix = false;  // prefix is "/<first segment>/": implied by the bucket when the path is longer
  std::string_view prefix, pname, suffix;  // pattern = prefix {pname} suffix, when param; else prefix = pattern
};
struct Candidate {
  uint32_t tail = 0, tail_mask = 0;  // the pattern's last (up to 4) bytes, as the top bytes of a 4-byte load
  uint16_t route = 0;
  uint16_t min_len = 0;              // param: shortest matching path; literal: its length
};
struct CandList {
  uint16_t begin = 0, count = 0;  // into RouteIndex::cands
};
struct Bucket {
  std::string_view seg;
  CandList lists[kMethodCodes][2];  // [method][versioned], in table order (wild routes merged in)
};

constexpr size_t kNumRoutes = std::size(kRoutes);

constexpr std::string_view first_segment(std::string_view p) {
  if (p.empty() || p[0] != '/') return p;
  size_t end = 1;
  while (end < p.size() && p[end] != '/') ++end;
  return p.substr(1, end - 1);
}

constexpr uint32_t seg_hash(std::string_view s) {
  if (s.empty()) return 0;
  return (static_cast<uint32_t>(s.size()) * 7u + static_cast<unsigned char>(s[0]) * 3u +
          static_cast<unsigned char>(s[s.size() - 1])) & 63u;
}

constexpr bool is_wild(const Route& r) { return first_segment(r.pattern).find('{') != std::string_view::npos; }

constexpr bool code_matches(const Route& r, int code) {
  if (r.method == "*") return true;
  return code != kOther && method_code(r.method) == code;
}

// Candidates a route adds to one bucket (every method code it answers, versioned or not).
constexpr size_t route_candidates(const Route& r) {
  size_t n = 0;
  for (int m = 0; m < kMethodCodes; ++m)
    if (code_matches(r, m)) n += r.versioned ? 2 : 1;
  return n;
}

constexpr size_t count_buckets() {
  std::string_view segs[kNumRoutes] = {};
  size_t n = 0;
  for (const auto& r : kRoutes) {
    if (is_wild(r)) continue;
    std::string_view seg = first_segment(r.pattern);
    bool seen = false;
    for (size_t i = 0; i < n; ++i) seen = seen || segs[i] == seg;
    if (!seen) segs[n++] = seg;
  }
  return n;
}
constexpr size_t kNumBuckets = count_buckets();

constexpr size_t count_candidates() {
  size_t n = 0;
  for (const auto& r : kRoutes) n += route_candidates(r) * (is_wild(r) ? kNumBuckets + 1 : 1);
  return n;
}
constexpr size_t kNumCandidates = count_candidates();

struct RouteIndex {
  PreparedRoute routes[kNumRoutes];
  Bucket buckets[kNumBuckets];
  Bucket wild;                   // routes whose first segment holds a parameter (candidates for every path)
  Candidate cands[kNumCandidates];
  uint8_t slot[64] = {};         // bucket index + 1 by seg_hash(first segment), open addressing
};

constexpr PreparedRoute prepare(const Route& r) {
  PreparedRoute pr;
  pr.op = r.op;
  pr.versioned = r.versioned;
  pr.prefix = r.pattern;
  size_t open = r.pattern.find('{');
  if (open != std::string_view::npos) {
    size_t close = r.pattern.find('}', open);
    pr.param = true;
    pr.prefix = r.pattern.substr(0, open);
    pr.pname = r.pattern.substr(open + 1, close - open - 1);
    pr.suffix = r.pattern.substr(close + 1);
    pr.one_segment = pr.pname == "id";
  }
  std::string_view seg = first_segment(r.pattern);
  pr.skip_prefix = !is_wild(r) && pr.param && pr.prefix.size() == seg.size() + 2 && pr.prefix.back() == '/';
  return pr;
}

constexpr Candidate make_candidate(const PreparedRoute& pr, uint16_t route) {
  Candidate c;
  c.route = route;
  std::string_view end = pr.param ? pr.suffix : pr.prefix;  // what the path must end with
  size_t t = end.size() < 4 ? end.size() : 4;
  for (size_t i = 0; i < t; ++i) {
    unsigned shift = static_cast<unsigned>(8 * (4 - t + i));
    c.tail |= static_cast<uint32_t>(static_cast<unsigned char>(end[end.size() - t + i])) << shift;
    c.tail_mask |= 0xFFu << shift;
  }
  c.min_len = static_cast<uint16_t>(pr.param ? pr.prefix.size() + pr.suffix.size() + 1 : pr.prefix.size());
  return c;
}

constexpr RouteIndex build_route_index() {
  RouteIndex x{};
  for (size_t i = 0; i < kNumRoutes; ++i) x.routes[i] = prepare(kRoutes[i]);
  size_t nb = 0;
  for (const auto& r : kRoutes) {
    if (is_wild(r)) continue;
    std::string_view seg = first_segment(r.pattern);
    bool seen = false;
    for (size_t i = 0; i < nb; ++i) seen = seen || x.buckets[i].seg == seg;
    if (!seen) x.buckets[nb++].seg = seg;
  }
  // Each list in table order: a bucket's own routes with the wild ones merged in.
  size_t nc = 0;
  auto fill = [&](Bucket& b, bool wild_only) {
    for (int m = 0; m < kMethodCodes; ++m)
      for (int v = 0; v < 2; ++v) {
        b.lists[m][v].begin = static_cast<uint16_t>(nc);
        for (size_t i = 0; i < kNumRoutes; ++i) {
          const Route& r = kRoutes[i];
          bool mine = is_wild(r) || (!wild_only && first_segment(r.pattern) == b.seg);
          if (!mine || !code_matches(r, m) || (v == 1 && !r.versioned)) continue;
          x.cands[nc++] = make_candidate(x.routes[i], static_cast<uint16_t>(i));
        }
        b.lists[m][v].count = static_cast<uint16_t>(nc - b.lists[m][v].begin);
      }
  };
  for (size_t i = 0; i < nb; ++i) fill(x.buckets[i], false);
  fill(x.wild, true);
  for (size_t i = 0; i < nb; ++i) {
    uint32_t s = seg_hash(x.buckets[i].seg);
    while (x.slot[s]) s = (s + 1) & 63u;
    x.slot[s] = static_cast<uint8_t>(i + 1);
  }
  return x;
}

constexpr RouteIndex kIndex = build_route_index();
static_assert(kNumBuckets < 64 && kNumCandidates < 65536);

bool same_bytes(const char* a, const char* b, size_t n) {
  if (n >= 8) {  // words, the last one overlapping
    for (size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;
      if (swar::load8(a + i) != swar::load8(b + i)) return false;
      if (i + 8 == n) return true;
    }
  }
  if (n >= 4) {
    uint32_t x0, y0, x1, y1;
    std::memcpy(&x0, a, 4);
    std::memcpy(&y0, b, 4);
    std::memcpy(&x1, a + n - 4, 4);
    std::memcpy(&y1, b + n - 4, 4);
    return x0 == y0 && x1 == y1;
  }
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// Matches one prepared pattern; at most one parameter per pattern ({id}: one segment).
bool match_prepared(const PreparedRoute& pr, std::string_view path, std::string_view& pval) {
  const size_t n = path.size(), np = pr.prefix.size();
  if (!pr.param) return n == np && same_bytes(path.data(), pr.prefix.data(), n);
  const size_t ns = pr.suffix.size();
  if (n < np + ns + 1) return false;  // parameters are never empty
  if (!pr.skip_prefix && !same_bytes(path.data(), pr.prefix.data(), np)) return false;
  if (!same_bytes(path.data() + n - ns, pr.suffix.data(), ns)) return false;
  std::string_view val = path.substr(np, n - np - ns);
  if (pr.one_segment && val.find('/') != std::string_view::npos) return false;
  pval = val;
  return true;
}

}  // namespace

RouteMatch match_route(std::string_view method, std::string_view path, bool versioned) {
  RouteMatch m;
  const RouteIndex& idx = kIndex;
  const Bucket* bucket = &idx.wild;
  std::string_view seg = first_segment(path);
  for (uint32_t s = seg_hash(seg), v; (v = idx.slot[s]) != 0; s = (s + 1) & 63u) {
    const Bucket& b = idx.buckets[v - 1];
    if (b.seg.size() == seg.size() && same_bytes(b.seg.data(), seg.data(), seg.size())) {
      bucket = &b;
      break;
    }
  }
  // skip_prefix relies on the path starting with "/<first segment>".
  const bool slash = !path.empty() && path[0] == '/';
  const size_t n = path.size();
  uint32_t tail = 0;
  if (n >= 4) std::memcpy(&tail, path.data() + n - 4, 4);
  const bool le = std::endian::native == std::endian::little;
  const CandList list = bucket->lists[method_code(method)][versioned ? 1 : 0];
  for (const Candidate *c = idx.cands + list.begin, *end = c + list.count; c != end; ++c) {
    if (n < c->min_len) continue;
    if (le && n >= 4 && (tail & c->tail_mask) != c->tail) continue;  // cannot end like the pattern
    const PreparedRoute& pr = idx.routes[c->route];
    if (pr.skip_prefix && !slash) continue;  // cannot match: the pattern starts with '/'
    std::string_view pval;
    if (!match_prepared(pr, path, pval)) continue;
    if (m.op >= 0) {
      if (m.op != pr.op || m.param != pval) m.ambiguous = true;
      continue;
    }
    m.op = pr.op;
    m.param_name = pr.pname;
    m.param = pval;
  }
  return m;
}

}  // namespace dg::policy
