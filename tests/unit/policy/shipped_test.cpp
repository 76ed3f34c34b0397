#include "helpers.hpp"

using namespace dg::policy;
using namespace dg::policy::test;

TEST_CASE("allow-all: loads, allows everything, never needs a body") {
  auto p = load_file("policies/allow-all.yaml");
  auto w = who("anyone");
  CHECK(p->max_body() == 1024 * 1024);
  for (auto [m, t] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1.41/containers/json"}, {"POST", "/v1.41/containers/create"}, {"POST", "/v1.41/containers/x/attach"},
           {"POST", "/v1.41/exec/x/start"}, {"POST", "/v1.41/plugins/pull"}, {"GET", "/v1.41/swarm"},
           {"POST", "/build"}, {"HEAD", "/_ping"}, {"GET", "/debug/vars"}}) {
    auto h = head(m, t);
    auto r = p->route(h);
    REQUIRE_MESSAGE(r.ok, t);
    CHECK(!p->needs_body(w, r.op, h));
    auto d = p->judge(w, r.op, h, std::nullopt);
    CHECK_MESSAGE(d.allow, t);
    CHECK(!d.audit);
    CHECK(!d.body);
  }
  auto d = decide(*p, w, "POST", "/v1.41/containers/create", R"({"Image":"x","HostConfig":{"Privileged":true}})");
  CHECK(d.allow);
}

#include <fstream>
#include <sstream>

#include <simdjson.h>

TEST_CASE("tests/system/adversarial_cases.json: dockgate's own decision matches `expect`") {
  std::ifstream in(std::string(DG_SOURCE_ROOT) + "/tests/system/adversarial_cases.json");
  std::stringstream ss;
  ss << in.rdbuf();
  simdjson::dom::parser parser;
  simdjson::padded_string text(ss.str());
  simdjson::dom::element doc;
  REQUIRE(parser.parse(text).get(doc) == simdjson::SUCCESS);
  simdjson::dom::array cases;
  REQUIRE(doc.get(cases) == simdjson::SUCCESS);
  size_t n = 0;
  for (simdjson::dom::element c : cases) {
    ++n;
    std::string_view name, method, path, body, identity, policy, expect;
    REQUIRE(c["name"].get(name) == simdjson::SUCCESS);
    REQUIRE(c["method"].get(method) == simdjson::SUCCESS);
    REQUIRE(c["path"].get(path) == simdjson::SUCCESS);
    REQUIRE(c["body"].get(body) == simdjson::SUCCESS);
    REQUIRE(c["identity"].get(identity) == simdjson::SUCCESS);
    REQUIRE(c["policy"].get(policy) == simdjson::SUCCESS);
    REQUIRE(c["expect"].get(expect) == simdjson::SUCCESS);
    auto p = load_file(std::string(policy));
    std::vector<std::string> groups;
    simdjson::dom::array ga;
    if (c["groups"].get(ga) == simdjson::SUCCESS)
      for (auto g : ga) groups.emplace_back(std::string_view(g.get_string().value()));
    auto w = who(std::string(identity), groups);
    auto h = head(std::string(method), std::string(path), std::string(body), "");
    simdjson::dom::object headers;
    REQUIRE(c["headers"].get(headers) == simdjson::SUCCESS);
    for (auto f : headers) {
      std::string k(f.key), v(std::string_view(f.value.get_string().value()));
      if (k == "Transfer-Encoding") h.body = dg::http::BodyKind::Chunked;
      if (k == "Content-Length") continue;
      h.headers.push_back({k, v});
    }
    Decision d;
    auto r = p->route(h);
    if (!r.ok) {
      d.reason = r.reason;
    } else {
      std::optional<std::string_view> b;
      if (p->needs_body(w, r.op, h)) b = body;
      d = p->judge(w, r.op, h, b);
    }
    std::string msg = std::string(name) + ": " + d.message();
    CHECK_MESSAGE(std::string_view(d.allow ? "allow" : "deny") == expect, msg);
  }
  CHECK(n >= 40);
}
