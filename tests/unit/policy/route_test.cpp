#include "helpers.hpp"
#include "policy/canonical.hpp"
#include "policy/routes.hpp"

using namespace dg::policy;
using namespace dg::policy::test;

namespace {
Routed rt(const std::string& method, const std::string& target, const std::string& body = "",
          const std::string& ct = "application/json") {
  return route_request(head(method, target, body, ct));
}
std::string op(const std::string& method, const std::string& target) {
  auto r = rt(method, target);
  return r.ok ? std::string(r.op.name) : "DENY " + std::to_string(r.status) + " " + r.reason;
}
}  // namespace

TEST_CASE("route table: every operation has a route and unique names") {
  for (size_t i = 0; i < operations().size(); ++i) {
    CHECK(find_operation(operations()[i].name) == static_cast<int>(i));
    bool routed = operations()[i].name == "Options";
    for (const auto& r : routes()) routed = routed || r.op == static_cast<int>(i);
    CHECK_MESSAGE(routed, operations()[i].name);
  }
  CHECK(operations().size() < 160);
}

TEST_CASE("basic routes, versioned and not") {
  CHECK(op("GET", "/_ping") == "SystemPing");
  CHECK(op("HEAD", "/_ping") == "SystemPingHead");
  CHECK(op("GET", "/v1.41/_ping") == "SystemPing");
  CHECK(op("GET", "/v1.41/containers/json?all=1") == "ContainerList");
  CHECK(op("POST", "/v1.50/containers/create?name=x") == "ContainerCreate");
  CHECK(op("GET", "/containers/abc/json") == "ContainerInspect");
  CHECK(op("POST", "/v1.41/containers/abc/attach?stream=1") == "ContainerAttach");
  CHECK(op("GET", "/v1.41/containers/abc/attach/ws") == "ContainerAttachWebsocket");
  CHECK(op("POST", "/v1.41/exec/e1/start") == "ExecStart");
  CHECK(op("POST", "/v1.41/containers/c/exec") == "ContainerExec");
  CHECK(op("GET", "/v1.41/networks/") == "NetworkList");
  CHECK(op("GET", "/v1.41/networks") == "NetworkList");
  CHECK(op("PUT", "/v1.50/volumes/v1") == "VolumeUpdate");
  CHECK(op("POST", "/v1.41/images/localhost:5999/x/push?tag=1") == "ImagePush");
  CHECK(op("GET", "/v1.41/images/docker.io/library/busybox/json") == "ImageInspect");
  CHECK(op("POST", "/session") == "Session");
  CHECK(op("GET", "/debug/pprof/heap") == "DebugPprof");
  CHECK(op("POST", "/debug/vars") == "DebugVars");
  CHECK(op("OPTIONS", "/v1.41/containers/json") == "Options");
  CHECK(op("GET", "/v1.41/debug/vars").rfind("DENY 403", 0) == 0);
}

TEST_CASE("route flags") {
  auto r = rt("POST", "/v1.41/containers/x/attach");
  REQUIRE(r.ok);
  CHECK(r.op.tunnel());
  CHECK(*r.op.param("name") == "x");
  CHECK(r.op.api_version == "1.41");
  CHECK(r.op.path == "/containers/x/attach");
  r = rt("POST", "/exec/x/start");
  CHECK(r.op.tunnel());
  r = rt("POST", "/v1.41/containers/x/wait");
  CHECK((r.op.flags & kReadOnly));
  CHECK(!rt("POST", "/v1.41/containers/create").op.tunnel());
}

TEST_CASE("greedy names anchored at the operation suffix (notes §5)") {
  auto r = rt("POST", "/v1.41/images/a/push/tag?repo=x");
  REQUIRE(r.ok);
  CHECK(r.op.name == "ImageTag");
  CHECK(*r.op.param("name") == "a/push");
  r = rt("GET", "/v1.41/images/a/json/history");
  CHECK(r.op.name == "ImageHistory");
  CHECK(*r.op.param("name") == "a/json");
  r = rt("POST", "/v1.41/containers/a/kill/stop");
  CHECK(r.op.name == "ContainerStop");
  // swarm ids are one segment
  CHECK(op("GET", "/v1.41/services/a/logs") == "ServiceLogs");
  CHECK(op("GET", "/v1.41/services/a/b").rfind("DENY 403", 0) == 0);
}

TEST_CASE("canonicalisation rows of notes §5") {
  // 301 in dockerd: never executed -> refused
  for (const char* t : {"//containers/json", "/v1.41//info", "/v1.41/./containers/json", "/v1.41/../containers/json",
                        "/v1.41/containers/json/.", "/v1.41/containers/json/..", "/v1.41/%2E%2E/containers/json",
                        "/v1.41/containers/x/%2e/json"}) {
    auto r = rt("GET", t);
    CHECK_MESSAGE(!r.ok, t);
    CHECK(r.status == 400);
  }
  CHECK(rt("POST", "//containers/create").ok == false);
  // percent-decoded before matching
  CHECK(op("GET", "/containers/%6Ason") == "ContainerList");
  CHECK(op("GET", "/%63ontainers/json") == "ContainerList");
  // %2F routes as / in dockerd: refused
  CHECK(rt("GET", "/containers%2Fjson").status == 400);
  CHECK(rt("GET", "/containers/NAME%2Fjson").status == 400);
  CHECK(rt("GET", "/containers/NAME%2fjson").status == 400);
  // json%3Fall=1 -> 404 in dockerd; no operation here
  CHECK(rt("GET", "/containers/json%3Fall=1").status == 403);
  CHECK(rt("GET", "/containers/json?%zz=1").status == 400);
  CHECK(rt("GET", "/containers/%zzjson").status == 400);
  CHECK(rt("GET", "/containers/json%").status == 400);
  // case-sensitive
  CHECK(rt("GET", "/CONTAINERS/json").status == 403);
  CHECK(rt("GET", "/V1.41/info").status == 403);
  CHECK(rt("get", "/info").status == 403);
  // no slash redirect
  CHECK(rt("GET", "/containers/json/").status == 403);
  CHECK(rt("GET", "/volumes/").status == 403);
  // versions
  CHECK(rt("GET", "/v1.41.0/info").status == 400);
  CHECK(rt("GET", "/v1/info").status == 400);
  CHECK(rt("GET", "/v1.23/info").status == 400);
  CHECK(rt("GET", "/v1.12/containers/json").status == 400);
  CHECK(rt("GET", "/v1.24/info").ok);
  CHECK(rt("GET", "/v9.99/info").ok);  // dockerd answers "too new"
  CHECK(rt("GET", "/va.b/info").status == 403);
  CHECK(rt("GET", "/v1.41/").status == 403);
  CHECK(rt("GET", "/v1.41").status == 403);
  CHECK(rt("DELETE", "/v1.41/info").status == 403);
  // absolute form: routed by path
  CHECK(op("GET", "http://evil/v1.41/version") == "SystemVersion");
  CHECK(rt("GET", "v1.41/version").status == 400);
  // NUL and control characters
  CHECK(rt("GET", "/containers/x%00/json").status == 400);
  CHECK(rt("GET", "/containers/x%0a/json").status == 400);
  CHECK(rt("POST", "/v1.23/containers/x/start").status == 400);
  CHECK(rt("POST", "/v1.19/containers/x/copy").status == 400);
}

TEST_CASE("query rules") {
  CHECK(rt("GET", "/containers/json?all=1;limit=2").status == 400);
  CHECK(rt("GET", "/containers/json?a%3Bb=1").ok);  // encoded ; is data
  CHECK(rt("GET", "/containers/json?%zz=1").status == 400);
  auto q = parse_query("limit=1&limit=5&name=a+b&t=x&t=y&bare&all=xyz&e=%2F");
  CHECK(*query_first(q, "limit") == "1");
  CHECK(*query_first(q, "name") == "a b");
  CHECK(query_all(q, "t").size() == 2);
  CHECK(*query_first(q, "e") == "/");
  CHECK(query_bool(q, "all"));
  CHECK(!query_bool(q, "bare"));
  CHECK(!query_bool(q, "missing"));
  CHECK(!query_bool(parse_query("x=%20No%20"), "x"));
  CHECK(!query_bool(parse_query("x=NONE"), "x"));
  CHECK(query_bool(parse_query("x=1"), "x"));
  CHECK(query_first(q, "ALL") == nullptr);
}

TEST_CASE("bodies: forms, start bodies, JSON content type") {
  CHECK(rt("POST", "/v1.41/images/x/tag?repo=a", "repo=evil", "application/x-www-form-urlencoded").status == 400);
  CHECK(rt("POST", "/v1.41/containers/x/rename?name=a", "name=b", "multipart/form-data; boundary=x").status == 400);
  CHECK(rt("POST", "/v1.41/containers/x/start", "{\"Binds\":[\"/:/h\"]}").status == 400);
  CHECK(rt("POST", "/v1.41/containers/x/start").ok);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "text/plain").status == 400);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "").status == 400);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "application/vnd.docker+json").status == 400);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "application/json; charset=utf-8").ok);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "APPLICATION/JSON").ok);
  CHECK(rt("PUT", "/v1.41/containers/x/archive?path=/", "tar", "text/plain").ok);
  // Go's mime.ParseMediaType folds U+0130 to 'i' and trims U+00A0: a form to dockerd
  CHECK(rt("POST", "/v1.41/images/x/tag?repo=a", "repo=evil", "appl\xC4\xB0" "cation/x-www-form-urlencoded").status == 400);
  CHECK(rt("POST", "/v1.41/images/x/tag?repo=a", "repo=evil", "\xC2\xA0multipart/form-data; boundary=x").status == 400);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "application/json\x01").status == 400);
  CHECK(rt("POST", "/v1.41/containers/create", "{}", "application/json;\tcharset=utf-8").ok);
}

TEST_CASE("groups expand") {
  auto all = expand_operations("all");
  REQUIRE(all);
  CHECK(all->size() == operations().size());
  auto cr = expand_operations("containers:read");
  REQUIRE(cr);
  auto has = [](const std::vector<int>& v, const char* n) { return std::find(v.begin(), v.end(), find_operation(n)) != v.end(); };
  CHECK(has(*cr, "ContainerList"));
  CHECK(has(*cr, "ContainerInspect"));
  CHECK(!has(*cr, "ContainerLogs"));
  CHECK(!has(*cr, "ContainerArchive"));
  CHECK(!has(*cr, "ContainerAttachWebsocket"));
  CHECK(has(*expand_operations("containers:logs"), "ContainerLogs"));
  CHECK(has(*expand_operations("exec"), "ExecStart"));
  CHECK(has(*expand_operations("volumes:*"), "VolumeCreate"));
  CHECK(has(*expand_operations("images:pull"), "ImageCreate"));
  CHECK(has(*expand_operations("swarm:read"), "ServiceList"));
  CHECK(!has(*expand_operations("swarm:read"), "SwarmInspect"));
  CHECK(!expand_operations("containers:bogus"));
  CHECK(!expand_operations("ContainerFoo"));
  CHECK(!expand_operations(".*"));
}
