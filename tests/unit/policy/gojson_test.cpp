// The §6 corpus: for each body, what dockgate decides must be at least as strict as dockerd.
#include "helpers.hpp"
#include "policy/gojson.hpp"

using namespace dg::policy;
using namespace dg::policy::test;
using namespace dg::policy::gojson;

namespace {

const char* kSandbox = R"(
version: 1
rules:
  - name: sb
    allow: [all]
    mounts: {host_paths: [{path: /srv, read_only: false}]}
    resources: {memory: {max: 1GiB}, blkio_weight: {max: 1000}}
)";

Decision create(const std::string& body) {
  static auto p = load(kSandbox);
  return decide(*p, who("u"), "POST", "/v1.41/containers/create", body);
}

}  // namespace

TEST_CASE("key folding like Go") {
  CHECK(key_matches("Privileged", "Privileged"));
  CHECK(key_matches("privileged", "Privileged"));
  CHECK(key_matches("PRIVILEGED", "Privileged"));
  CHECK(key_matches("Bind\xC5\xBF", "Binds"));          // ſ
  CHECK(key_matches("\xE2\x84\xAA" "ernelMemory", "KernelMemory"));  // K
  CHECK(key_matches("\xC5\xBF" "ecurityOpt", "SecurityOpt"));
  CHECK(!key_matches("Pr\xC4\xB1vileged", "Privileged"));  // ı
  CHECK(!key_matches("PR\xC4\xB0VILEGED", "Privileged"));  // İ
  CHECK(!key_matches("Privilege", "Privileged"));
  CHECK(!key_matches("Privilegeds", "Privileged"));
}

TEST_CASE("Doc parse strictness") {
  Doc d;
  CHECK(d.parse(R"({"a":1})").empty());
  CHECK(d.parse("").empty());
  CHECK(d.empty_object());
  CHECK(!d.parse("\xEF\xBB\xBF{}").empty());               // BOM
  CHECK(!d.parse(R"({"a":1} xyz)").empty());                // trailing garbage
  CHECK(!d.parse(R"({"a":1}{"HostConfig":{}})").empty());   // trailing value
  CHECK(!d.parse("{\"a\":\"\xff\"}").empty());              // invalid UTF-8
  CHECK(!d.parse(std::string(2000, '[') + std::string(2000, ']')).empty());  // depth
  CHECK(!d.parse(R"({"a":18446744073709551616000})").empty());
}

TEST_CASE("§6 corpus: privileged spellings and duplicates") {
  CHECK(!create(R"({"Image":"x","hostconfig":{"privileged":true}})").allow);
  CHECK(!create(R"({"Image":"x","HOSTCONFIG":{"PRIVILEGED":true}})").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Privileged":true,"Privileged":false}})").allow);
  CHECK(!create(R"({"Image":"x","HostConfig":{"Privileged":false,"privileged":true}})").allow);  // ambiguous
  CHECK(!create(R"({"Image":"x","HostConfig":{"Privileged":true,"Privileged":null}})").allow);   // null no-op
  CHECK(!create(R"({"Image":"x","HostConfig":{"Privileged":true},"HostConfig":{"Memory":104857600}})").allow);  // merged
  CHECK(create(R"({"Image":"x","HostConfig":{"Privileged":true},"HostConfig":null})").allow);  // reset
  CHECK(!create(R"({"Image":"x","HostConfig":{"\u0050rivileged":true}})").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Pr\u0131vileged":true}})").allow);   // ignored by Go too
  CHECK(create(R"({"Image":"x","HostConfig":{"PR\u0130VILEGED":true}})").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Bogus":true}})").allow);
}

TEST_CASE("§6 corpus: binds and folding") {
  CHECK(!create(R"({"Image":"x","HostConfig":{"Bind\u017f":["/:/host"]}})").allow);
  CHECK(!create("{\"Image\":\"x\",\"HostConfig\":{\"Bind\xC5\xBF\":[\"/etc:/host\"]}}").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Binds":["/etc:/h"],"Binds":["/srv/a:/h"]}})").allow);  // replace
  CHECK(!create(R"({"Image":"x","HostConfig":{"Binds":["/srv/a:/h"],"Binds":["/etc:/h"]}})").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Binds":["/etc:/h"],"Binds":null}})").allow);
  CHECK(!create(R"({"Image":"x","HostConfig":{"\u212aernelMemory":1,"Binds":["/:/h"]}})").allow);
}

TEST_CASE("§6 corpus: top-level HostConfig fields (wrapper rule)") {
  CHECK(!create(R"({"Image":"x","Privileged":true})").allow);
  CHECK(!create(R"({"Image":"x","Binds":["/:/host"]})").allow);
  CHECK(create(R"({"Image":"x","Privileged":true,"HostConfig":{}})").allow);  // ignored by dockerd
  // Memory is still copied from the top level when the inner one is zero
  CHECK(!create(R"({"Image":"x","Memory":4294967296,"HostConfig":{}})").allow);
  CHECK(create(R"({"Image":"x","Memory":4294967296,"HostConfig":{"Memory":1048576}})").allow);
  // HostConfig null resets the inner one: the top-level fields count again
  CHECK(!create(R"({"Image":"x","Privileged":true,"HostConfig":{},"HostConfig":null})").allow);
}

TEST_CASE("§6 corpus: types Go rejects are denied") {
  for (const char* b : {R"({"Image":"x","HostConfig":{"Memory":1e8}})", R"({"Image":"x","HostConfig":{"Memory":104857600.0}})",
                        R"({"Image":"x","HostConfig":{"Memory":"104857600"}})",
                        R"({"Image":"x","HostConfig":{"Memory":9223372036854775808}})",
                        R"({"Image":"x","HostConfig":{"Privileged":"true"}})", R"({"Image":"x","HostConfig":{"Privileged":1}})",
                        R"({"Image":"x","HostConfig":{"BlkioWeight":70000}})", R"({"Image":"x","HostConfig":[]})",
                        R"({"Image":"x","HostConfig":{"Binds":"/:/h"}})", R"([])", R"(null)", "{\"Image\":\"x\"} xyz"}) {
    auto d = create(b);
    CHECK_MESSAGE(!d.allow, b);
  }
}

TEST_CASE("§6 corpus: StrSlice and CapAdd") {
  auto p = load(R"(
version: 1
rules:
  - name: caps
    allow: [all]
    capabilities: {add: [NET_BIND_SERVICE]}
)");
  auto c = [&](const std::string& b) { return decide(*p, who("u"), "POST", "/v1.41/containers/create", b); };
  CHECK(!c(R"({"Image":"x","HostConfig":{"CapAdd":"NET_ADMIN"}})").allow);
  CHECK(c(R"({"Image":"x","HostConfig":{"CapAdd":"NET_BIND_SERVICE"}})").allow);
  for (const char* cap : {"sys_admin", "cap_sys_admin", "Cap_Sys_Admin", "CAP_SYS_ADMIN", "ALL", "all"}) {
    auto d = c(std::string(R"({"Image":"x","HostConfig":{"CapAdd":[")") + cap + "\"]}}");
    CHECK_MESSAGE(!d.allow, cap);
  }
  for (const char* cap : {"CAP_ALL", " SYS_ADMIN", "BOGUS"}) {
    auto d = c(std::string(R"({"Image":"x","HostConfig":{"CapAdd":[")") + cap + "\"]}}");
    CHECK(!d.allow);
    CHECK(d.status == 400);
  }
  CHECK(c(R"({"Image":"x","HostConfig":{"CapAdd":["net_bind_service","CAP_NET_BIND_SERVICE"]}})").allow);
}

TEST_CASE("§6 corpus: arrays of objects given twice are refused (Go merges elements)") {
  CHECK(!create(R"({"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}],"Mounts":[{"Target":"/y"}]}})").allow);
  CHECK(create(R"({"Image":"x","HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/x","Target":"/x"}]}})").allow);
}

TEST_CASE("Struct lookups") {
  Doc d;
  REQUIRE(d.parse(R"({"A":{"x":1},"a":{"x":1},"L":{"k":"1"},"L":{"j":"2"},"S":"one","N":null})").empty());
  Struct root(obj_of(d.root()));
  Errors e;
  auto m = root.string_map("L", e, "");
  REQUIRE(m);
  CHECK(m->size() == 2);
  auto s = root.strings("S", e, "", true);
  REQUIRE(s);
  CHECK((*s)[0] == "one");
  CHECK(!root.strings("N", e, "", true));
  CHECK(root.sub("A", e, "").present());
  CHECK(!e.failed());
}
