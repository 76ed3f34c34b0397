#include "helpers.hpp"
#include "policy/gojson.hpp"

using namespace dg::policy;
using namespace dg::policy::test;

namespace {

const char* kRules = R"(
version: 1
rules:
  - name: sb
    match: {groups: [dev]}
    allow: [all]
    deny: [ContainerExport]
    mounts:
      host_paths:
        - /srv/data
        - {path: /srv/ro, read_only: true}
        - /var/run/docker.sock
    capabilities: {add: [NET_BIND_SERVICE], drop: [NET_RAW]}
    devices: {allow: [/dev/fuse]}
    namespaces: {host: [uts]}
    security: {no_new_privileges: true}
    sysctls: ["net.ipv4.ip_unprivileged_*"]
    ports: {host_ips: ["127.0.0.1"], min: 1024, max: 9000, publish_all: false}
    resources:
      memory: {max: 1GiB, default: 256MiB}
      cpus: {max: 2}
      pids_limit: {max: 100}
    user: {non_root: true, default: "1000"}
    labels:
      required: {team: "*"}
      forbidden: ["com.evil.*"]
      inject: {dockgate.owner: "{{identity}}"}
)";

std::shared_ptr<const Policy> pol() {
  static auto p = load(kRules);
  return p;
}

// A body that passes every constraint of kRules: tests change one thing at a time.
std::string ok_body(const std::string& hc_extra = "", const std::string& top_extra = "") {
  return R"({"Image":"busybox","User":"1000","Labels":{"team":"a"})" + top_extra +
         R"(,"HostConfig":{"Memory":1048576,"NanoCpus":1000000000,"PidsLimit":50,"CapDrop":["NET_RAW"],"SecurityOpt":["no-new-privileges"])" +
         hc_extra + "}}";
}

Decision c(const std::string& body) { return decide(*pol(), who("dev1", {"dev"}), "POST", "/v1.41/containers/create", body); }

}  // namespace

TEST_CASE("default deny and op-level rules") {
  auto p = pol();
  auto d = decide(*p, who("stranger"), "GET", "/v1.41/containers/json");
  CHECK(!d.allow);
  CHECK(d.rule.empty());
  CHECK(d.message().find("no rule allows ContainerList") != std::string::npos);
  d = decide(*p, who("dev1", {"dev"}), "GET", "/v1.41/containers/x/export");
  CHECK(!d.allow);
  CHECK(d.rule == "sb");
  CHECK(decide(*p, who("stranger"), "HEAD", "/_ping").allow);
  CHECK(decide(*p, who("dev1", {"dev"}), "GET", "/v1.41/containers/json").allow);
}

TEST_CASE("the reference body is allowed; labels injected; re-parsed output") {
  auto d = c(ok_body());
  REQUIRE_MESSAGE(d.allow, d.message());
  REQUIRE(d.body);
  gojson::Doc doc;
  REQUIRE(doc.parse(*d.body).empty());
  gojson::Struct root(gojson::obj_of(doc.root()));
  gojson::Errors e;
  auto labels = root.string_map("Labels", e, "");
  REQUIRE(labels);
  bool owner = false, team = false;
  for (auto& [k, v] : *labels) {
    owner = owner || (k == "dockgate.owner" && v == "dev1");
    team = team || (k == "team" && v == "a");
  }
  CHECK(owner);
  CHECK(team);
  CHECK(!e.failed());
}

TEST_CASE("message format") {
  auto d = c(ok_body(R"(,"Privileged":true)"));
  CHECK(!d.allow);
  CHECK(d.message() == "rule \"sb\": HostConfig.Privileged is not allowed");
}

TEST_CASE("binds: path tricks and docker.sock") {
  CHECK(c(ok_body(R"(,"Binds":["/srv/data:/d"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/srv/data/sub/:/d:rw"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["//srv//data//x/:/d"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/data/../../etc:/d"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/a/../../:/d"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/database:/d"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/:/host"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/ro:/d"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/ro:/d:rw"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/srv/ro/x:/d:ro"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/srv/ro/x:/d:ro,z"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/ro/x:/d:ro,rw"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/var/run/docker.sock:/s"])")).allow);   // named exactly
  CHECK(!c(ok_body(R"(,"Binds":["/var/run:/s"])")).allow);              // contains it
  CHECK(!c(ok_body(R"(,"Binds":["/run/docker.sock:/s"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["/srv/data/docker.sock:/s"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/var/run/./docker.sock:/s"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["myvol:/v"])")).allow);
  CHECK(c(ok_body(R"(,"Binds":["/anon"])")).allow);
  CHECK(!c(ok_body(R"(,"Binds":["a:b:c:d"])")).allow);
}

TEST_CASE("mounts and volume driver binds") {
  CHECK(c(ok_body(R"(,"Mounts":[{"Type":"bind","Source":"/srv/data","Target":"/d"}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/d"}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"type":"bind","source":"/etc","target":"/d"}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"BIND","Source":"/etc","Target":"/d"}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"npipe","Source":"x","Target":"/d"}])")).allow);
  CHECK(c(ok_body(R"(,"Mounts":[{"Type":"tmpfs","Target":"/t"}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind","device":"/etc"}}}}])")).allow);
  CHECK(c(ok_body(R"(,"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"type":"none","o":"bind","device":"/srv/data/v"}}}}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"type":"nfs","o":"addr=1.2.3.4","device":":/x"}}}}])")).allow);
  CHECK(!c(ok_body(R"(,"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"rexray"}}}])")).allow);
  CHECK(!c(ok_body(R"(,"VolumeDriver":"rexray")")).allow);
  CHECK(!c(ok_body(R"(,"VolumesFrom":["other"])")).allow);
  auto p = pol();
  auto w = who("dev1", {"dev"});
  CHECK(!decide(*p, w, "POST", "/v1.41/volumes/create", R"({"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/"},"Labels":{"team":"a"}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/volumes/create", R"({"Name":"v","Driver":"local","DriverOpts":{"o":"rbind","device":"/etc"},"Labels":{"team":"a"}})").allow);
  CHECK(decide(*p, w, "POST", "/v1.41/volumes/create", R"({"Name":"v","Labels":{"team":"a"}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/volumes/create", R"({"Name":"v","Driver":"evil","Labels":{"team":"a"}})").allow);
}

TEST_CASE("capabilities: allowlist and required drops") {
  CHECK(!c(ok_body(R"(,"CapAdd":["SYS_ADMIN"])")).allow);
  CHECK(c(ok_body(R"(,"CapAdd":["cap_net_bind_service"])")).allow);
  // CapDrop missing NET_RAW -> injected
  auto d = c(R"({"Image":"busybox","User":"1000","Labels":{"team":"a"},"HostConfig":{"Memory":1048576,"NanoCpus":1,"PidsLimit":5,"SecurityOpt":["no-new-privileges"],"CapDrop":["MKNOD"]}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  REQUIRE(d.body);
  CHECK(d.body->find(R"("CapDrop":["MKNOD","NET_RAW"])") != std::string::npos);
}

TEST_CASE("devices, namespaces, security options, sysctls, ports") {
  CHECK(c(ok_body(R"(,"Devices":[{"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"}])")).allow);
  CHECK(!c(ok_body(R"(,"Devices":[{"PathOnHost":"/dev/mem"}])")).allow);
  CHECK(!c(ok_body(R"(,"DeviceCgroupRules":["a *:* rwm"])")).allow);
  CHECK(!c(ok_body(R"(,"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}])")).allow);
  CHECK(!c(ok_body(R"(,"NetworkMode":"host")")).allow);
  CHECK(c(ok_body(R"(,"NetworkMode":"HOST")")).allow);  // a network named HOST
  CHECK(!c(ok_body(R"(,"NetworkMode":"container:abc")")).allow);
  CHECK(!c(ok_body(R"(,"NetworkMode":"Container:abc")")).allow);
  CHECK(!c(ok_body(R"(,"PidMode":"host")")).allow);
  CHECK(!c(ok_body(R"(,"PidMode":"container:abc")")).allow);
  CHECK(!c(ok_body(R"(,"PidMode":"HOST")")).allow);
  CHECK(!c(ok_body(R"(,"IpcMode":"host")")).allow);
  CHECK(c(ok_body(R"(,"IpcMode":"shareable")")).allow);
  CHECK(c(ok_body(R"(,"UTSMode":"host")")).allow);  // allowed by namespaces.host
  CHECK(!c(ok_body(R"(,"UsernsMode":"host")")).allow);
  CHECK(!c(ok_body(R"(,"CgroupnsMode":"host")")).allow);
  CHECK(!c(ok_body(R"(,"Cgroup":"container:x")")).allow);
  CHECK(!c(ok_body("", R"(,"NetworkingConfig":{"EndpointsConfig":{"host":{}}})")).allow);
  for (const char* so : {"seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "label=disable", "label:disable",
                         "label=type:spc_t", "systempaths=unconfined", "SECCOMP=unconfined", "seccomp={}"}) {
    auto d = c(ok_body(std::string(R"(,"SecurityOpt":["no-new-privileges",")") + so + "\"]"));
    CHECK_MESSAGE(!d.allow, so);
  }
  CHECK(!c(ok_body(R"(,"SecurityOpt":["no-new-privileges=false"])")).allow);
  CHECK(c(ok_body(R"(,"SecurityOpt":["no-new-privileges:true"])")).allow);
  CHECK(!c(ok_body(R"(,"MaskedPaths":[])")).allow);
  CHECK(c(ok_body(R"(,"Sysctls":{"net.ipv4.ip_unprivileged_port_start":"0"})")).allow);
  CHECK(!c(ok_body(R"(,"Sysctls":{"kernel.core_pattern":"|/x"})")).allow);
  CHECK(!c(ok_body(R"(,"Runtime":"evil")")).allow);
  CHECK(!c(ok_body(R"(,"CgroupParent":"/")")).allow);
  CHECK(c(ok_body(R"(,"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]})")).allow);
  CHECK(!c(ok_body(R"(,"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}]})")).allow);
  CHECK(!c(ok_body(R"(,"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"80"}]})")).allow);
  CHECK(!c(ok_body(R"(,"PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8000-9999"}]})")).allow);
  CHECK(!c(ok_body(R"(,"PublishAllPorts":true)")).allow);
  CHECK(!c(ok_body(R"(,"Privileged":true)")).allow);
}

TEST_CASE("security options: no-new-privileges injected") {
  auto d = c(R"({"Image":"busybox","User":"1000","Labels":{"team":"a"},"HostConfig":{"Memory":1,"NanoCpus":1,"PidsLimit":5,"CapDrop":["NET_RAW"]}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  REQUIRE(d.body);
  CHECK(d.body->find(R"("SecurityOpt":["no-new-privileges"])") != std::string::npos);
}

TEST_CASE("resources: max, defaults injected, update cannot raise") {
  CHECK(!c(ok_body(R"(,"Memory":2147483648)")).allow);
  CHECK(!c(ok_body(R"(,"NanoCpus":3000000000)")).allow);
  CHECK(!c(ok_body(R"(,"PidsLimit":-1)")).allow);
  CHECK(!c(ok_body(R"(,"PidsLimit":1000)")).allow);
  CHECK(!c(ok_body(R"(,"CpuQuota":400000,"CpuPeriod":100000)")).allow);
  auto d = c(R"({"Image":"busybox","User":"1000","Labels":{"team":"a"},"HostConfig":{"CapDrop":["NET_RAW"],"SecurityOpt":["no-new-privileges"]}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  REQUIRE(d.body);
  gojson::Doc doc;
  REQUIRE(doc.parse(*d.body).empty());
  gojson::Struct root(gojson::obj_of(doc.root()));
  gojson::Errors e;
  auto hc = root.sub("HostConfig", e, "");
  CHECK(hc.integer("Memory", e, "") == 256 * 1024 * 1024);
  CHECK(hc.integer("NanoCpus", e, "") == 2000000000);  // no default: the maximum
  CHECK(hc.integer("PidsLimit", e, "") == 100);
  CHECK(hc.strings("CapDrop", e, "")->size() == 1);  // merged struct keeps the client's CapDrop
  CHECK(!e.failed());
  // top-level HostConfig fields cannot take injected values
  CHECK(!c(R"({"Image":"busybox","User":"1000","Labels":{"team":"a"},"CapDrop":["NET_RAW"]})").allow);

  auto p = pol();
  auto w = who("dev1", {"dev"});
  auto u = [&](const std::string& b) { return decide(*p, w, "POST", "/v1.41/containers/x/update", b); };
  CHECK(u(R"({"Memory":1048576})").allow);
  CHECK(u(R"({"CpuShares":512})").allow);
  CHECK(!u(R"({"Memory":4294967296})").allow);
  CHECK(!u(R"({"memory":4294967296})").allow);
  CHECK(!u(R"({"PidsLimit":0})").allow);
  CHECK(!u(R"({"PidsLimit":-1})").allow);
  CHECK(!u(R"({"NanoCpus":4000000000})").allow);
  CHECK(!u(R"({"Memory":"1"})").allow);
  CHECK(u(R"({"RestartPolicy":{"Name":"always"}})").allow);
}

TEST_CASE("user: non-root on create and exec") {
  for (const char* user : {"", "0", "root", "0:0", "root:root", "00"}) {
    auto d = c(R"({"Image":"busybox","User":")" + std::string(user) +
               R"(","Labels":{"team":"a"},"HostConfig":{"Memory":1,"NanoCpus":1,"PidsLimit":5,"CapDrop":["NET_RAW"],"SecurityOpt":["no-new-privileges"]}})");
    if (std::string(user).empty()) {
      REQUIRE(d.allow);  // default user injected
      CHECK(d.body->find(R"("User":"1000")") != std::string::npos);
    } else {
      CHECK_MESSAGE(!d.allow, user);
    }
  }
  auto p = pol();
  auto w = who("dev1", {"dev"});
  auto e = [&](const std::string& b) { return decide(*p, w, "POST", "/v1.41/containers/x/exec", b); };
  CHECK(e(R"({"User":"1000","Cmd":["sh"]})").allow);
  for (const char* b : {R"({"Cmd":["sh"]})", R"({"User":"","Cmd":["sh"]})", R"({"user":" ","Cmd":["sh"]})"}) {
    auto d = e(b);  // no user: the rule's default is injected, last, so it wins in Go's decoder
    REQUIRE_MESSAGE(d.allow, b);
    REQUIRE(d.body);
    CHECK(d.body->size() > 20);
    CHECK(d.body->ends_with(R"(,"User":"1000"})"));
  }
  CHECK(!e(R"({"User":"root","Cmd":["sh"]})").allow);
  CHECK(!e(R"({"User":"1000","Privileged":true})").allow);
  CHECK(!e(R"({"User":"1000","privileged":true})").allow);
  CHECK(!e(R"({"User":"1000","user":"0"})").allow);  // ambiguous spellings
}

TEST_CASE("labels") {
  CHECK(!c(ok_body("", R"(,"Labels":{"com.evil.x":"1"})")).allow);
  CHECK(!c(R"({"Image":"busybox","User":"1000","HostConfig":{"Memory":1,"NanoCpus":1,"PidsLimit":5,"CapDrop":["NET_RAW"],"SecurityOpt":["no-new-privileges"]}})").allow);
  // the caller cannot spoof the owner: the injected value is appended last
  auto d = c(ok_body("", R"(,"Labels":{"dockgate.owner":"root"})"));
  REQUIRE(d.allow);
  gojson::Doc doc;
  REQUIRE(doc.parse(*d.body).empty());
  gojson::Struct root(gojson::obj_of(doc.root()));
  gojson::Errors e;
  auto labels = root.string_map("Labels", e, "");
  REQUIRE(labels);
  for (auto& [k, v] : *labels)
    if (k == "dockgate.owner") CHECK(v == "dev1");
}

TEST_CASE("audit mode") {
  auto p = load(R"(
version: 1
rules:
  - name: watch
    audit: true
    allow: [all]
  - name: later
    allow: [containers:read]
)");
  auto d = decide(*p, who("u"), "POST", "/v1.41/containers/create", R"({"Image":"x","HostConfig":{"Privileged":true}})");
  CHECK(d.allow);
  CHECK(d.audit);
  CHECK(d.rule == "watch");
  CHECK(d.reason == "HostConfig.Privileged is not allowed");
  auto q = load(R"(
version: 1
mode: audit
rules:
  - name: r
    allow: [containers:read]
)");
  d = decide(*q, who("u"), "DELETE", "/v1.41/containers/x");
  CHECK(d.allow);
  CHECK(d.audit);
  d = decide(*q, who("u"), "GET", "/v1.41/containers/json");
  CHECK(d.allow);
  CHECK(!d.audit);
}

TEST_CASE("first denial wins over any allow") {
  auto p = load(R"(
version: 1
rules:
  - name: all
    allow: [all]
    unrestricted: true
  - name: no-exec
    match: {groups: [x]}
    deny: [exec]
)");
  CHECK(decide(*p, who("u"), "POST", "/v1.41/containers/c/exec", R"({"Cmd":["sh"]})").allow);
  auto d = decide(*p, who("u", {"x"}), "POST", "/v1.41/containers/c/exec", R"({"Cmd":["sh"]})");
  CHECK(!d.allow);
  CHECK(d.rule == "no-exec");
}

TEST_CASE("match by method and listener") {
  auto p = load(R"(
version: 1
rules:
  - name: local
    match: {methods: [peer], listeners: [sock]}
    allow: [all:read]
)");
  CHECK(decide(*p, who("u", {}, dg::config::AuthMethod::Peer, "sock"), "GET", "/v1.41/info").allow);
  CHECK(!decide(*p, who("u", {}, dg::config::AuthMethod::Basic, "sock"), "GET", "/v1.41/info").allow);
  CHECK(!decide(*p, who("u", {}, dg::config::AuthMethod::Peer, "tcp"), "GET", "/v1.41/info").allow);
}

TEST_CASE("images: create, pull, build, tag, load") {
  auto p = load(R"(
version: 1
rules:
  - name: img
    allow: [all]
    images: {allow: ["busybox:1.*", "docker.io/library/alpine", "ghcr.io/acme/**"]}
    build: {network_modes: [default]}
)");
  auto w = who("u");
  auto cr = [&](const std::string& image) {
    return decide(*p, w, "POST", "/v1.41/containers/create", R"({"Image":")" + image + R"("})");
  };
  CHECK(cr("busybox:1.36").allow);
  CHECK(cr("docker.io/library/busybox:1.36").allow);
  CHECK(cr("index.docker.io/library/busybox:1.36").allow);
  CHECK(cr("library/busybox:1.36").allow);
  CHECK(!cr("busybox").allow);  // :latest
  CHECK(!cr("registry-1.docker.io/library/busybox:1.36").allow);
  CHECK(!cr("BUSYBOX:1.36").allow);
  CHECK(cr("alpine").allow);
  CHECK(cr("alpine@sha256:" + std::string(64, 'a')).allow);
  CHECK(!cr("sha256:" + std::string(64, 'a')).allow);
  CHECK(!cr(std::string(64, 'a')).allow);
  CHECK(!cr("abcd").allow);
  CHECK(cr("ghcr.io/acme/x/y:1").allow);
  CHECK(!cr("ghcr.io/evil/x:1").allow);
  CHECK(!cr("evil.io/busybox:1.36").allow);
  auto q = [&](const std::string& m, const std::string& t) { return decide(*p, w, m, t); };
  CHECK(q("POST", "/v1.41/images/create?fromImage=docker.io%2Flibrary%2Fbusybox&tag=1.36").allow);
  CHECK(!q("POST", "/v1.41/images/create?fromImage=busybox&tag=latest").allow);
  CHECK(!q("POST", "/v1.41/images/create?fromImage=busybox%3A1.36&tag=latest").allow);  // tag replaces
  CHECK(!q("POST", "/v1.41/images/create?fromImage=alpine").allow);                      // every tag
  CHECK(q("POST", "/v1.41/images/create?fromImage=alpine&tag=sha256%3A" + std::string(64, 'b')).allow);
  CHECK(!q("POST", "/v1.41/images/create?fromSrc=-&repo=busybox%3A1.0").allow);
  CHECK(!q("POST", "/v1.41/images/create?fromSrc=http%3A%2F%2Fevil%2Fx.tar").allow);
  CHECK(q("POST", "/v1.41/images/create?fromImage=busybox&tag=1.36&fromImage=evil").allow);  // first value
  CHECK(!q("POST", "/v1.41/images/create?fromImage=evil&fromImage=busybox&tag=1.36").allow);
  CHECK(!q("POST", "/v1.41/images/x/tag?repo=busybox&tag=latest").allow);
  CHECK(q("POST", "/v1.41/images/x/tag?repo=busybox&tag=1.0").allow);
  CHECK(!q("POST", "/v1.41/images/load").allow);
  CHECK(!q("POST", "/v1.41/build?t=evil%3A1").allow);
  CHECK(q("POST", "/v1.41/build?t=busybox%3A1.2").allow);
  CHECK(!q("POST", "/v1.41/build?networkmode=host&t=busybox%3A1.2").allow);
  CHECK(!q("POST", "/v1.41/build?remote=http%3A%2F%2Fx&t=busybox%3A1.2").allow);
  CHECK(!q("POST", "/v1.41/commit?container=c&repo=evil").allow);
}

TEST_CASE("networks, services, plugins") {
  auto p = load(R"(
version: 1
rules:
  - name: r
    allow: [all]
    images: {allow: ["nginx:*"]}
    mounts: {host_paths: []}
)");
  auto w = who("u");
  CHECK(decide(*p, w, "POST", "/v1.41/networks/create", R"({"Name":"n"})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/networks/create", R"({"Name":"n","Driver":"macvlan","Options":{"parent":"eth0"}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/networks/create", R"({"Name":"n","Options":{"com.docker.network.bridge.name":"docker0"}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/networks/host/connect", R"({"Container":"c"})").allow);
  CHECK(decide(*p, w, "POST", "/v1.41/services/create", R"({"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1"}}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/services/create", R"({"TaskTemplate":{"ContainerSpec":{"Image":"evil:1"}}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/services/create",
                R"({"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1","Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/services/create",
                R"({"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1","CapabilityAdd":["CAP_SYS_ADMIN"]}}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/services/create",
                R"({"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1"},"Networks":[{"Target":"host"}]}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/services/x/update?version=1",
                R"({"TaskTemplate":{"ContainerSpec":{"Image":"nginx:1","Privileges":{"Seccomp":{"Mode":"unconfined"}}}}})").allow);
  CHECK(!decide(*p, w, "POST", "/v1.41/plugins/pull?remote=x", R"([{"Name":"network","Value":["host"]}])").allow);
  CHECK(decide(*p, w, "POST", "/v1.41/plugins/pull?remote=x", R"([])").allow);
}

TEST_CASE("needs_body only when a constrained rule allows a body operation") {
  auto p = pol();
  auto h = head("POST", "/v1.41/containers/create", "{}");
  auto r = p->route(h);
  CHECK(p->needs_body(who("dev1", {"dev"}), r.op, h));
  CHECK(!p->needs_body(who("stranger"), r.op, h));
  auto h2 = head("GET", "/v1.41/containers/json");
  CHECK(!p->needs_body(who("dev1", {"dev"}), p->route(h2).op, h2));
}

TEST_CASE("policy file errors carry file:line:col") {
  auto bad = Policy::load_text("version: 1\nrules:\n  - name: a\n    allow: [containers:reed]\n    bogus: 1\n", "p.yaml");
  REQUIRE(!bad);
  auto s = bad.error().str();
  CHECK(s.find("p.yaml:5:5: unknown key \"bogus\"") != std::string::npos);
  auto bad2 = Policy::load_text("version: 1\nrules:\n  - name: a\n    allow: [containers:reed]\n", "p.yaml");
  REQUIRE(!bad2);
  CHECK(bad2.error().str().find("p.yaml:4:13") != std::string::npos);
}

TEST_CASE("a later rule's injections are never assumed: it denies when it needs them") {
  auto p = load(R"(
version: 1
rules:
  - name: dev-exec
    match: {groups: [dev]}
    allow: [exec]
  - name: non-root
    match: {groups: [dev]}
    allow: [exec, containers:write]
    user: {non_root: true, default: "1000"}
)");
  auto w = who("u", {"dev"});
  // dev-exec allows first and changes nothing; non-root holds only with its default injected,
  // which would never be forwarded: denied (before, dockerd ran the exec as the container's user)
  auto d = decide(*p, w, "POST", "/v1.41/containers/c/exec", R"({"Cmd":["sh"]})");
  CHECK(!d.allow);
  CHECK(d.rule == "non-root");
  CHECK(d.reason.find(R"(changes ("User":"1000"))") != std::string::npos);
  CHECK(d.reason.find(R"(rule "dev-exec" allowed it first)") != std::string::npos);
  // what satisfies both as sent is allowed, unchanged
  d = decide(*p, w, "POST", "/v1.41/containers/c/exec", R"({"Cmd":["sh"],"User":"1000"})");
  CHECK(d.allow);
  CHECK(!d.body);
  // where non-root is the first allowing rule its default is injected
  d = decide(*p, w, "POST", "/v1.41/containers/create", R"({"Image":"busybox"})");
  REQUIRE(d.allow);
  REQUIRE(d.body);
  CHECK(d.body->find(R"("User":"1000")") != std::string::npos);
}

TEST_CASE("build: resource limits of the build containers") {
  auto p = load(R"(
version: 1
rules:
  - name: b
    allow: [build:*]
    resources:
      memory: {max: 1GiB}
      memory_swap: {max: 2GiB}
      cpus: {max: 2}
      cpu_shares: {max: 1024}
      shm_size: {max: 64MiB}
      cpuset_cpus: "0-1"
      ulimits: {nofile: 1024}
)");
  auto w = who("u");
  auto b = [&](const std::string& qs) { return decide(*p, w, "POST", "/v1.41/build?" + qs); };
  CHECK(b("t=x").allow);  // bounded when given
  CHECK(b("memory=1073741824&memswap=2147483648&cpushares=512&cpuquota=200000&cpuperiod=100000&shmsize=1024&cpusetcpus=0-1").allow);
  CHECK(!b("memory=1073741825").allow);
  CHECK(!b("memory=-1").allow);
  CHECK(!b("memory=1g").allow);  // dockerd would read 0 = unlimited
  CHECK(!b("memory=%2B1073741825").allow);
  CHECK(b("memory=1024&memory=99999999999").allow);  // dockerd reads the first value
  CHECK(!b("memory=99999999999&memory=1024").allow);
  CHECK(!b("memswap=-1").allow);
  CHECK(!b("memswap=3221225472").allow);
  CHECK(!b("cpushares=2048").allow);
  CHECK(!b("cpuquota=300000").allow);  // 3 CPUs at the default period
  CHECK(!b("cpuquota=300000&cpuperiod=100000").allow);
  CHECK(b("cpuquota=100000&cpuperiod=50000").allow);
  CHECK(!b("cpuquota=-1").allow);
  CHECK(!b("shmsize=134217728").allow);
  CHECK(!b("cpusetcpus=0-7").allow);
  CHECK(!b("ulimits=%5B%7B%22Name%22%3A%22nofile%22%2C%22Soft%22%3A1%2C%22Hard%22%3A99999999%7D%5D").allow);
  CHECK(b("ulimits=%5B%5D").allow);
  auto d = b("memory=1073741825");
  CHECK(d.reason.find("memory exceeds the maximum 1073741824") != std::string::npos);
}

namespace {

const char* kServiceRules = R"(
version: 1
rules:
  - name: svc
    match: {groups: [dev]}
    allow: [services:*]
    capabilities: {drop: [NET_RAW]}
    resources:
      memory: {max: 1GiB, default: 256MiB}
      cpus: {max: 2}
      pids_limit: {max: 100, default: 50}
    user: {non_root: true, default: "1000"}
    labels:
      inject: {dockgate.owner: "{{identity}}"}
)";

Decision svc(const std::string& body, const std::string& target = "/v1.41/services/create") {
  static auto p = load(kServiceRules);
  return decide(*p, who("dev1", {"dev"}), "POST", target, body);
}

// What dockerd's decoder makes of a forwarded spec, read back with gojson (Go's rules: the
// TaskTemplate objects merge, the ContainerSpec/Resources/Limits pointers are reused, last scalar wins).
struct SpecView {
  std::string image, user;
  std::vector<std::string> cap_drop;
  int64_t memory = 0, cpus = 0, pids = 0, reservation = 0;
  std::string owner, team;
  std::string error;
};

SpecView read_spec(const std::string& body) {
  SpecView out;
  gojson::Doc doc;
  out.error = doc.parse(body);
  if (!out.error.empty()) return out;
  gojson::Struct root(gojson::obj_of(doc.root()));
  gojson::Errors e;
  auto tt = root.sub("TaskTemplate", e, "", false);
  auto cs = tt.sub("ContainerSpec", e, "TaskTemplate");
  out.image = std::string(cs.string("Image", e, "").value_or(""));
  out.user = std::string(cs.string("User", e, "").value_or(""));
  if (auto d = cs.strings("CapabilityDrop", e, ""))
    for (auto c : *d) out.cap_drop.emplace_back(c);
  auto res = tt.sub("Resources", e, "TaskTemplate");
  auto lim = res.sub("Limits", e, "Resources");
  out.memory = lim.integer("MemoryBytes", e, "").value_or(0);
  out.cpus = lim.integer("NanoCPUs", e, "").value_or(0);
  out.pids = lim.integer("Pids", e, "").value_or(0);
  out.reservation = res.sub("Reservations", e, "Resources").integer("MemoryBytes", e, "").value_or(0);
  if (auto l = root.string_map("Labels", e, ""))
    for (auto& [k, v] : *l) {
      if (k == "dockgate.owner") out.owner = std::string(v);
      if (k == "team") out.team = std::string(v);
    }
  out.error = e.first;
  return out;
}

}  // namespace

TEST_CASE("services: limits, user, CapabilityDrop and labels injected like on ContainerCreate") {
  auto d = svc(R"({"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  REQUIRE(d.body);
  CHECK(d.body->ends_with(
      R"(,"Labels":{"dockgate.owner":"dev1"},"TaskTemplate":{"ContainerSpec":{"User":"1000","CapabilityDrop":["NET_RAW"]},)"
      R"("Resources":{"Limits":{"MemoryBytes":268435456,"NanoCPUs":2000000000,"Pids":50}}}})"));
  auto s = read_spec(*d.body);
  CHECK(s.error == "");
  CHECK(s.image == "busybox");  // the client's ContainerSpec is merged into, not replaced
  CHECK(s.user == "1000");
  CHECK(s.cap_drop == std::vector<std::string>{"NET_RAW"});
  CHECK(s.memory == 256 << 20);          // default
  CHECK(s.cpus == 2000000000);           // no default: the maximum
  CHECK(s.pids == 50);
  CHECK(s.owner == "dev1");

  // what the client set within the maximum is kept; the rest is added into its Resources/Limits
  d = svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","User":"1234","CapabilityDrop":["MKNOD"]},)"
          R"("Resources":{"Limits":{"MemoryBytes":1048576},"Reservations":{"MemoryBytes":4096}}},)"
          R"("Labels":{"team":"a","dockgate.owner":"root"}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  s = read_spec(*d.body);
  CHECK(s.error == "");
  CHECK(s.user == "1234");
  CHECK(s.cap_drop == std::vector<std::string>{"MKNOD", "NET_RAW"});  // arrays replace: the whole list
  CHECK(s.memory == 1048576);
  CHECK(s.cpus == 2000000000);
  CHECK(s.pids == 50);
  CHECK(s.reservation == 4096);
  CHECK(s.team == "a");
  CHECK(s.owner == "dev1");  // the injected owner wins over a spoofed one
  CHECK(d.body->find(R"("MemoryBytes":268435456)") == std::string::npos);

  // nothing to add: forwarded unchanged except for the labels
  d = svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","User":"1000","CapabilityDrop":["ALL"]},)"
          R"("Resources":{"Limits":{"MemoryBytes":1,"NanoCPUs":1,"Pids":1}}}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  CHECK(d.body->find("TaskTemplate", 3) == std::string::npos);
  CHECK(d.body->ends_with(R"(}}},"Labels":{"dockgate.owner":"dev1"}})"));

  // "Resources":null (Go: nil pointer) and a Limits reset by null: everything injected, new objects
  for (const char* b : {R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":null}})",
                        R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{"MemoryBytes":5}}},)"
                        R"("TaskTemplate":{"Resources":{"Limits":null}}})",
                        R"({"TaskTemplate":null,"Labels":null})"}) {
    d = svc(b);
    REQUIRE_MESSAGE(d.allow, b, d.message());
    s = read_spec(*d.body);
    CHECK_MESSAGE(s.error == "", b);
    CHECK_MESSAGE(s.memory == 256 << 20, b);
    CHECK(s.cpus == 2000000000);
    CHECK(s.pids == 50);
    CHECK(s.user == "1000");
    CHECK(s.owner == "dev1");
  }
}

TEST_CASE("services: above the maximum, unlimited, root and old API versions are denied") {
  auto lim = [](const std::string& limits) {
    return svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{)" + limits + "}}}}");
  };
  auto d = lim(R"("MemoryBytes":2147483648)");
  CHECK(!d.allow);
  CHECK(d.reason == "TaskTemplate.Resources.Limits.MemoryBytes 2147483648 exceeds the maximum 1073741824");
  d = lim(R"("NanoCPUs":-1)");
  CHECK(!d.allow);
  CHECK(d.reason == "TaskTemplate.Resources.Limits.NanoCPUs must not be unlimited (maximum 2000000000)");
  CHECK(!lim(R"("Pids":-1)").allow);
  CHECK(!lim(R"("Pids":101)").allow);
  CHECK(!lim(R"("MemoryBytes":"1")").allow);
  CHECK(lim(R"("MemoryBytes":2147483648,"MemoryBytes":1073741824)").allow);  // last wins
  CHECK(!lim(R"("MemoryBytes":1073741824,"memoryBytes":2147483648)").allow);  // ambiguous
  d = svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","User":"0"}}})");
  CHECK(!d.allow);
  CHECK(d.reason.find("running as root") != std::string::npos);
  d = svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","CapabilityAdd":["NET_ADMIN"]}}})");
  CHECK(!d.allow);
  CHECK(d.reason == "ContainerSpec.CapabilityAdd: capability NET_ADMIN is not allowed");
  // below 1.41 dockerd drops CapabilityDrop and Limits.Pids: what the rule requires cannot be enforced
  const std::string ok = R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","CapabilityDrop":["NET_RAW"]},)"
                         R"("Resources":{"Limits":{"Pids":10}}}})";
  CHECK(svc(ok, "/v1.41/services/create").allow);
  CHECK(svc(ok, "/services/create").allow);  // unversioned: the daemon's own version
  d = svc(ok, "/v1.40/services/create");
  CHECK(!d.allow);
  CHECK(d.reason.find("ContainerSpec.CapabilityDrop: this rule requires dropped capabilities, which dockerd ignores below API "
                      "version 1.41 (request: 1.40)") == 0);
  auto p = load(R"(
version: 1
rules:
  - name: svc
    allow: [services:*]
    resources: {memory: {max: 1GiB}, pids_limit: {max: 100}}
)");
  d = decide(*p, who("u"), "POST", "/v1.40/services/create", ok);
  CHECK(!d.allow);
  CHECK(d.reason.find("TaskTemplate.Resources.Limits.Pids: this rule limits processes") == 0);
  auto q = load(R"(
version: 1
rules:
  - name: svc
    allow: [services:*]
    resources: {memory: {max: 1GiB}}
)");
  d = decide(*q, who("u"), "POST", "/v1.40/services/create", ok);
  REQUIRE_MESSAGE(d.allow, d.message());
  CHECK(read_spec(*d.body).memory == 1 << 30);
}

TEST_CASE("services: ServiceUpdate replaces the spec, so it gets the same defaults") {
  auto d = svc(R"({"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{},"Reservations":{}}},)"
               R"("Mode":{"Replicated":{"Replicas":1}}})",
               "/v1.41/services/x/update?version=3");
  REQUIRE_MESSAGE(d.allow, d.message());
  auto s = read_spec(*d.body);
  CHECK(s.error == "");
  CHECK(s.memory == 256 << 20);
  CHECK(s.cpus == 2000000000);
  CHECK(s.pids == 50);
  CHECK(s.user == "1000");
  CHECK(!svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{"MemoryBytes":4294967296}}}})",
             "/v1.41/services/x/update?version=3").allow);
}

TEST_CASE("services: injected members use the client's spelling of each field") {
  // Go matches names case-insensitively: "taskTemplate" and an appended "TaskTemplate" would both
  // land in TaskTemplate and merge, but the body would name one field two ways (which gojson refuses
  // from clients). The injection is appended under the client's own names instead: one spelling,
  // the same merge, and gojson reads it back without an error.
  auto d = svc(R"({"taskTemplate":{"containerSpec":{"image":"busybox","user":""},"resources":{"limits":{"memoryBytes":0,"pids":7}}},)"
               R"("labels":{"team":"b"}})");
  REQUIRE_MESSAGE(d.allow, d.message());
  CHECK(d.body->ends_with(
      R"(,"labels":{"dockgate.owner":"dev1"},"taskTemplate":{"containerSpec":{"user":"1000","CapabilityDrop":["NET_RAW"]},)"
      R"("resources":{"limits":{"memoryBytes":268435456,"NanoCPUs":2000000000}}}})"));
  auto s = read_spec(*d.body);
  CHECK(s.error == "");
  CHECK(s.image == "busybox");
  CHECK(s.user == "1000");
  CHECK(s.cap_drop == std::vector<std::string>{"NET_RAW"});
  CHECK(s.memory == 256 << 20);
  CHECK(s.cpus == 2000000000);
  CHECK(s.pids == 7);
  CHECK(s.team == "b");
  CHECK(s.owner == "dev1");
  // the Unicode folds Go accepts (K U+212A, ſ U+017F) are kept as sent
  d = svc("{\"Tas\xE2\x84\xAATemplate\":{\"ContainerSpec\":{\"Image\":\"busybox\"},\"Re\xC5\xBFources\":{\"Limits\":{}}}}");
  REQUIRE_MESSAGE(d.allow, d.message());
  CHECK(d.body->find(",\"Tas\xE2\x84\xAATemplate\":{\"ContainerSpec\":{\"User\":\"1000\"") != std::string::npos);
  CHECK(d.body->find("\"Re\xC5\xBFources\":{\"Limits\":{\"MemoryBytes\"") != std::string::npos);
  s = read_spec(*d.body);
  CHECK(s.error == "");
  CHECK(s.memory == 256 << 20);
  // two spellings of a field the rule must add to (same value, so gojson let them through): no
  // name for the injected member is unambiguous -> 400
  for (const char* b : {R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"taskTemplate":{"ContainerSpec":{"Image":"busybox"}}})",
                        R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox","User":"","user":""}}})",
                        R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"Labels":{},"labels":{}})"}) {
    d = svc(b);
    CHECK_MESSAGE(!d.allow, b);
    CHECK(d.status == 400);
    CHECK_MESSAGE(d.reason.find("ambiguous JSON: ") == 0, d.reason);
  }
  CHECK(svc(R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}},"taskTemplate":{"ContainerSpec":{"Image":"other"}}})").status == 400);
}

TEST_CASE("services: only the first allowing rule injects; a later rule needing its defaults denies") {
  auto p = load(R"(
version: 1
rules:
  - name: images
    allow: [services:*]
    images: {allow: ["busybox"]}
  - name: limits
    allow: [ServiceCreate]
    resources: {memory: {max: 1GiB, default: 256MiB}}
)");
  auto d = decide(*p, who("u"), "POST", "/v1.41/services/create", R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}})");
  CHECK(!d.allow);
  CHECK(d.rule == "limits");
  CHECK(d.reason.find(R"(changes (TaskTemplate "Resources":{"Limits":{"MemoryBytes":268435456}}))") != std::string::npos);
  CHECK(d.reason.find(R"(rule "images" allowed it first)") != std::string::npos);
  d = decide(*p, who("u"), "POST", "/v1.41/services/create",
             R"({"TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Resources":{"Limits":{"MemoryBytes":1024}}}})");
  CHECK(d.allow);
  CHECK(!d.body);
}
