// Micro-benchmark (not a test): ns per route+judge decision, median of many runs.
//   build-policy/tests/bench/policy_bench [source root] [body size]
// DG_BENCH_RUNS / DG_BENCH_ITERS shrink the loops, e.g. for valgrind --tool=callgrind
// (instruction counts are repeatable where the wall clock is not).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/policy.hpp"

using namespace dg;
using Clock = std::chrono::steady_clock;

namespace {

std::string create_body(size_t target) {
  std::string env;
  std::string b = R"({"Hostname":"","Domainname":"","User":"1000","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,)"
                  R"("Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")";
  while (b.size() + 1400 < target) b += R"(,"VAR_)" + std::to_string(b.size()) + R"(=some-value-for-the-environment-of-this-job")";
  b += R"(],"Cmd":["sh","-c","echo hello && sleep 1"],"Image":"busybox:1.36","Volumes":{},"WorkingDir":"","Entrypoint":null,)"
       R"("OnBuild":null,"Labels":{"com.example.job":"1234","com.example.pipeline":"build"},)"
       R"("HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default",)"
       R"("PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"",)"
       R"("VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],)"
       R"("DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",)"
       R"("Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"",)"
       R"("ShmSize":0,"Isolation":"","CpuShares":0,"Memory":536870912,"NanoCpus":1000000000,"CgroupParent":"","BlkioWeight":0,)"
       R"("BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],)"
       R"("BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"",)"
       R"("CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":536870912,)"
       R"("MemorySwappiness":null,"OomKillDisable":false,"PidsLimit":512,"Ulimits":null,"CpuCount":0,"CpuPercent":0,)"
       R"("IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},)"
       R"("NetworkingConfig":{"EndpointsConfig":{}}})";
  return b;
}

double median_ns(const policy::Policy& p, const auth::Identity& who, const http::RequestHead& h, const std::string& body) {
  auto env_int = [](const char* name, int def) {
    const char* v = std::getenv(name);
    return v && *v ? std::max(1, std::atoi(v)) : def;
  };
  static const int kRuns = env_int("DG_BENCH_RUNS", 31), kIters = env_int("DG_BENCH_ITERS", 2000);
  std::vector<double> runs;
  size_t sink = 0;
  for (int r = 0; r < kRuns; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < kIters; ++i) {
      auto routed = p.route(h);
      std::optional<std::string_view> b;
      if (p.needs_body(who, routed.op, h)) b = std::string_view(body);
      auto d = p.judge(who, routed.op, h, b);
      sink += d.allow + (d.body ? d.body->size() : 0);
    }
    auto t1 = Clock::now();
    runs.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / kIters);
  }
  if (sink == 1) std::puts("");
  std::sort(runs.begin(), runs.end());
  return runs[runs.size() / 2];
}

http::RequestHead head(const std::string& body) {
  http::RequestHead h;
  h.method = "POST";
  h.target = "/v1.41/containers/create?name=job";
  h.path = "/v1.41/containers/create";
  h.query = "name=job";
  h.body = http::BodyKind::Length;
  h.content_length = body.size();
  h.headers = {{"Host", "api.moby.localhost"}, {"User-Agent", "Docker-Client/28.2.2 (linux)"},
               {"Content-Type", "application/json"}, {"Content-Length", std::to_string(body.size())}};
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  std::string root = argc > 1 ? argv[1] : DG_SOURCE_ROOT;
  auto sandbox = policy::Policy::load(root + "/policies/ci-sandbox.yaml");
  auto allow = policy::Policy::load(root + "/policies/allow-all.yaml");
  if (!sandbox || !allow) {
    std::fprintf(stderr, "cannot load policies under %s\n", root.c_str());
    return 2;
  }
  auth::Identity who;
  who.name = "runner-7";
  who.groups = {"ci"};
  // DG_BENCH_CASE=small|2048|65536|allow runs one case only (for callgrind).
  const char* only = std::getenv("DG_BENCH_CASE");
  auto run = [&](std::string_view name) { return !only || !*only || name == only; };
  std::vector<std::pair<std::string, std::string>> bodies;  // case name, body
  if (argc > 2) {
    bodies.emplace_back(argv[2], create_body(static_cast<size_t>(std::stoul(argv[2]))));
  } else {
    // A minimal API client's body (what an SDK sends), the docker CLI's ~2 KB one, a 64 KB one.
    bodies.emplace_back("small", R"({"Image":"busybox:1.36","Cmd":["true"],"HostConfig":{"Memory":536870912,"NanoCpus":1000000000}})");
    bodies.emplace_back("2048", create_body(2048));
    bodies.emplace_back("65536", create_body(65536));
  }
  for (const auto& [name, body] : bodies) {
    if (!run(name)) continue;
    auto h = head(body);
    auto d = (*sandbox)->judge(who, (*sandbox)->route(h).op, h, std::string_view(body));
    std::printf("ci-sandbox ContainerCreate %6zu B: %8.0f ns/decision (%s%s)\n", body.size(),
                median_ns(**sandbox, who, h, body), d.allow ? "allow" : "deny", d.body ? ", mutated" : "");
  }
  if (run("allow")) {
    std::string body = create_body(2048);
    auto h = head(body);
    std::printf("allow-all  ContainerCreate %6zu B: %8.0f ns/decision\n", body.size(), median_ns(**allow, who, h, body));
  }
  return 0;
}
