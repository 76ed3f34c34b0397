#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.hpp"
#include "policy/tools.hpp"

using namespace dg::policy;

TEST_CASE("policy test: shipped fixtures pass") {
  std::ostringstream out;
  int rc = policy_test(std::string(DG_SOURCE_ROOT) + "/policies/tests", out);
  INFO(out.str());
  CHECK(rc == 0);
  CHECK(out.str().find(" 0 failed") != std::string::npos);
}

TEST_CASE("policy check: shipped policies are clean") {
  for (const char* f : {"allow-all.yaml", "read-only.yaml", "ci-sandbox.yaml", "per-user.yaml", "quickstart.yaml"}) {
    std::ostringstream out;
    int rc = policy_check(std::string(DG_SOURCE_ROOT) + "/policies/" + f, out);
    INFO(out.str());
    CHECK(rc == 0);
    CHECK(out.str().find("0 warning(s)") != std::string::npos);
  }
}

TEST_CASE("policy check: errors and warnings") {
  std::string dir = std::string(DG_SOURCE_ROOT) + "/build-policy-test-tmp";
  std::filesystem::create_directories(dir);
  std::string f = dir + "/p.yaml";
  {
    std::ofstream o(f);
    o << "version: 1\nrules:\n  - name: a\n    allow: [ContainerFoo]\n";
  }
  std::ostringstream out;
  CHECK(policy_check(f, out) == 1);
  CHECK(out.str().find("p.yaml:4:13: rule \"a\": allow: unknown operation or group \"ContainerFoo\"") != std::string::npos);
  {
    std::ofstream o(f);
    o << "version: 1\nrules:\n  - name: a\n    deny: [all]\n  - name: b\n    allow: [exec]\n  - name: c\n    allow: [all]\n    unrestricted: true\n    privileged: true\n  - name: d\n";
  }
  std::ostringstream out2;
  CHECK(policy_check(f, out2) == 0);
  CHECK(out2.str().find("rule \"b\" can never allow anything") != std::string::npos);
  CHECK(out2.str().find("rule \"c\" is unrestricted") != std::string::npos);
  CHECK(out2.str().find("rule \"d\" allows and denies nothing") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("policy explain: a captured request") {
  std::string raw =
      "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 48\r\n\r\n"
      "{\"Image\":\"busybox\",\"HostConfig\":{\"Privileged\":1}}";
  raw = raw.substr(0, raw.find("\r\n\r\n") + 4) + "{\"Image\":\"busybox\",\"HostConfig\":{\"Privileged\":true}}";
  // fix Content-Length
  std::string body = "{\"Image\":\"busybox\",\"HostConfig\":{\"Privileged\":true}}";
  raw = "POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
  std::ostringstream out;
  int rc = policy_explain(std::string(DG_SOURCE_ROOT) + "/policies/ci-sandbox.yaml", "runner", {"ci"}, "mtls", "main", raw, out);
  INFO(out.str());
  CHECK(rc == 1);
  CHECK(out.str().find("operation: ContainerCreate") != std::string::npos);
  CHECK(out.str().find("Error response from daemon: dockgate: rule \"ci-sandbox\": HostConfig.Privileged is not allowed") !=
        std::string::npos);
  std::ostringstream out2;
  CHECK(policy_explain(std::string(DG_SOURCE_ROOT) + "/policies/allow-all.yaml", "x", {}, "basic", "", "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n", out2) == 0);
  std::ostringstream out3;
  CHECK(policy_explain(std::string(DG_SOURCE_ROOT) + "/policies/allow-all.yaml", "x", {}, "basic", "", "garbage\r\n\r\n", out3) == 2);
}
