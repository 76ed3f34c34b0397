#include "app/app.hpp"

#include <uv.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/uv.hpp"
#include "proxy/server.hpp"
#include "policy/tools.hpp"
#include "proxy/snapshot.hpp"

#ifndef DG_VERSION
#define DG_VERSION "dev"
#endif

namespace dg::app {
namespace {

constexpr const char* kUsage =
    "usage: dockgate --config FILE          run in the foreground\n"
    "       dockgate -t --config FILE       check the configuration and its policy, then exit\n"
    "       dockgate policy check FILE      lint a policy (file:line errors, rules that never match)\n"
    "       dockgate policy explain --policy FILE --identity NAME [--group G]... [--auth METHOD]\n"
    "                               [--listener NAME] < request.http\n"
    "                                       decide a captured raw HTTP request offline\n"
    "       dockgate policy test DIR|FILE   run *.cases fixtures (exit 1 on any failure)\n"
    "       dockgate --version | --help\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully (in-flight requests get limits.shutdown_grace),\n"
    "         SIGHUP re-reads the configuration, policy, identities, certificates and CRLs.\n";

struct Options {
  std::string config;
  bool test = false;
};

bool configure_log(const config::Config& c, bool first) {
  std::string err;
  if (!log::configure(c.log.format, c.log.file, c.log.level, &err)) {
    if (first) std::fprintf(stderr, "dockgate: %s\n", err.c_str());
    else log::error("reload", err);
    return false;
  }
  return true;
}

bool same_listeners(const config::Config& a, const config::Config& b) {
  if (a.listeners.size() != b.listeners.size()) return false;
  for (size_t i = 0; i < a.listeners.size(); ++i) {
    const auto& x = a.listeners[i];
    const auto& y = b.listeners[i];
    if (x.address.text != y.address.text || x.name != y.name || x.tls.has_value() != y.tls.has_value()) return false;
  }
  return a.upstream.address.text == b.upstream.address.text;
}

// libuv's thread pool is one per process, shared by every worker loop, and sized once (from
// UV_THREADPOOL_SIZE) when first used. dockgate queues only basic-auth password checks there (see
// docs/architecture.md). libuv's default of 4 threads would let fewer hashes run at once than the
// workers could when each hashed on its own loop, so unless the environment says otherwise the
// pool gets one thread per worker, at least 4. Returns the size in effect. Call before any thread
// starts and before the first uv_queue_work.
unsigned size_threadpool(unsigned workers) {
  if (const char* env = std::getenv("UV_THREADPOOL_SIZE"); env && *env) {
    unsigned long v = std::strtoul(env, nullptr, 10);
    return static_cast<unsigned>(std::clamp<unsigned long>(v, 1, 1024));  // as libuv reads it
  }
  const unsigned n = std::clamp(workers, 4u, 1024u);
  setenv("UV_THREADPOOL_SIZE", std::to_string(n).c_str(), 0);
  return n;
}

// One event loop with its Server. Worker 0 runs on the main thread (which also owns the
// signals); the others run on their own threads and hear reload/stop through a uv_async.
class Worker {
 public:
  Worker(std::shared_ptr<const proxy::Snapshot> snap, std::shared_ptr<auth::FailureTracker> failures,
         bool reuse_port, bool tcp_only)
      : server_(std::make_unique<proxy::Server>(loop_.get(), std::move(snap), std::move(failures), reuse_port,
                                                tcp_only)),
        async_(this) {}

  Result<void> start() {
    if (auto r = server_->start(); !r) return r;
    if (uv_async_init(loop_.get(), async_.get(), [](uv_async_t* h) {
          if (auto* self = uvx::owner<Worker>(h)) self->on_async();
        }) == 0)
      async_.initialized();
    return {};
  }
  void run_thread() {
    thread_ = std::thread([this] { run(); });
  }
  void run() {
    uv_run(loop_.get(), UV_RUN_DEFAULT);
    server_.reset();
    async_.close();
    log::flush();
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }
  // Thread-safe: handled on the worker's loop.
  void post_reload(std::shared_ptr<const proxy::Snapshot> snap) {
    {
      std::lock_guard<std::mutex> g(mu_);
      pending_snap_ = std::move(snap);
    }
    uv_async_send(async_.get());
  }
  void post_stop(uint32_t grace_ms, std::function<void()> done) {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
      grace_ms_ = grace_ms;
      on_stopped_ = std::move(done);
    }
    uv_async_send(async_.get());
  }
  proxy::Server& server() { return *server_; }
  // After the server stopped: nothing may keep the loop alive any more.
  void close_async() { async_.close(); }
  // Start-up failed: close whatever was opened without serving.
  void discard() {
    server_.reset();
    async_.close();
    loop_.close();
  }
  uv_loop_t* loop() { return loop_.get(); }
  int close_loop() { return loop_.close(); }

 private:
  void on_async() {
    std::shared_ptr<const proxy::Snapshot> snap;
    bool stop = false;
    uint32_t grace = 0;
    std::function<void()> done;
    {
      std::lock_guard<std::mutex> g(mu_);
      snap = std::move(pending_snap_);
      pending_snap_.reset();
      stop = stop_;
      grace = grace_ms_;
      done = on_stopped_;
    }
    if (snap && server_) server_->reload(std::move(snap));
    if (stop && server_ && !stopping_) {
      stopping_ = true;
      server_->shutdown(grace, [this, done] {
        async_.close();
        log::flush();
        if (done) done();
      });
    }
  }

  uvx::Loop loop_;
  std::unique_ptr<proxy::Server> server_;
  uvx::Handle<uv_async_t> async_;
  std::thread thread_;
  std::mutex mu_;
  std::shared_ptr<const proxy::Snapshot> pending_snap_;
  bool stop_ = false;
  bool stopping_ = false;
  uint32_t grace_ms_ = 0;
  std::function<void()> on_stopped_;
};

struct SignalCtx {
  std::string config;
  uv_loop_t* loop = nullptr;
  std::vector<std::unique_ptr<Worker>>* workers = nullptr;
  std::vector<uv_signal_t*> signals;
  std::atomic<size_t> running{0};
  bool stopping = false;
};

void on_stop_signal(uv_signal_t* h, int signum) {
  auto* c = static_cast<SignalCtx*>(h->data);
  if (!c) return;
  if (c->stopping) {
    log::warn("shutdown", "second signal: stopping now");
    log::flush();
    std::_Exit(0);
  }
  c->stopping = true;
  auto& workers = *c->workers;
  uint32_t grace = workers[0]->server().snapshot()->config->limits.shutdown_grace_ms;
  log::Line(log::Level::Info, "shutdown").str("signal", strsignal(signum)).num("grace_ms", grace).emit();
  log::flush();
  for (auto* s : c->signals) uv_signal_stop(s);
  c->running = workers.size();
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->post_stop(grace, [c] { --c->running; });
  Worker* first = workers[0].get();
  workers[0]->server().shutdown(grace, [c, first] {
    --c->running;
    first->close_async();
    for (auto* s : c->signals) uv_close(reinterpret_cast<uv_handle_t*>(s), nullptr);
    c->signals.clear();
  });
}

void on_hup_signal(uv_signal_t* h, int) {
  auto* c = static_cast<SignalCtx*>(h->data);
  if (!c || c->stopping) return;
  auto next = proxy::build_snapshot(c->config);
  if (!next) {
    log::Line(log::Level::Error, "reload").str("result", "kept the running configuration").str("error", next.error().message).emit();
    return;
  }
  auto& workers = *c->workers;
  const auto& cur = *workers[0]->server().snapshot()->config;
  if (!same_listeners(cur, *(*next)->config)) {
    // The sockets stay bound as started: a new listener list would pair a socket with another
    // listener's TLS and authentication. Refuse it whole.
    log::Line(log::Level::Error, "reload")
        .str("result", "kept the running configuration")
        .str("error", "listeners or the upstream changed (address, name or order): restart dockgate to apply")
        .emit();
    return;
  }
  configure_log(*(*next)->config, false);
  workers[0]->server().reload(*next);
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->post_reload(*next);
  log::Line(log::Level::Info, "reload").str("result", "ok").str("policy", (*next)->config->policy).emit();
}

int serve(const Options& opt) {
  auto snap = proxy::build_snapshot(opt.config);
  if (!snap) {
    std::fprintf(stderr, "%s\ndockgate: configuration %s has errors; not starting\n", snap.error().message.c_str(),
                 opt.config.c_str());
    return 1;
  }
  const config::Config& cfg = *(*snap)->config;
  if (!configure_log(cfg, true)) return 1;
  std::signal(SIGPIPE, SIG_IGN);

  unsigned n = cfg.workers == 0 ? std::max(1u, std::thread::hardware_concurrency()) : cfg.workers;
  const unsigned pool_threads = size_threadpool(n);
  std::vector<std::unique_ptr<Worker>> workers;
  auto failures = std::make_shared<auth::FailureTracker>();
  for (unsigned i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<Worker>(*snap, failures, n > 1, i > 0));
    if (auto r = workers.back()->start(); !r) {
      std::fprintf(stderr, "dockgate: %s\n", r.error().message.c_str());
      log::flush();
      for (auto& w : workers) w->discard();
      return 1;
    }
  }
  {
    log::Line line(log::Level::Info, "started");
    line.str("version", DG_VERSION).str("config", opt.config).str("upstream", cfg.upstream.address.text);
    line.str("policy", cfg.policy);
    std::string bound;
    for (const auto& b : workers[0]->server().bound_addresses()) bound += (bound.empty() ? "" : " ") + b;
    line.str("listeners", bound);
    line.num("workers", n);
    line.num("threadpool", pool_threads);
    line.num("pid", static_cast<int64_t>(uv_os_getpid()));
    line.emit();
    log::flush();
  }
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->run_thread();

  SignalCtx ctx;
  ctx.config = opt.config;
  ctx.loop = workers[0]->loop();
  ctx.workers = &workers;
  std::vector<uv_signal_t*> handles;
  for (auto [signum, cb] : {std::pair{SIGTERM, &on_stop_signal}, std::pair{SIGINT, &on_stop_signal},
                            std::pair{SIGHUP, &on_hup_signal}}) {
    auto* h = new uv_signal_t{};
    uv_signal_init(ctx.loop, h);
    h->data = &ctx;
    uv_signal_start(h, cb, signum);
    ctx.signals.push_back(h);
    handles.push_back(h);
  }
  workers[0]->run();
  for (size_t i = 1; i < workers.size(); ++i) workers[i]->join();
  int leaked = 0;
  for (auto& w : workers) leaked += w->close_loop() != 0;
  for (auto* h : handles) delete h;  // closed before the loop ended
  log::info("stopped", leaked ? "stopped (some handles were still open)" : "all connections closed");
  log::flush();
  return 0;
}

int check(const Options& opt) {
  auto snap = proxy::build_snapshot(opt.config);
  if (!snap) {
    std::fprintf(stderr, "%s\ndockgate: configuration %s test failed\n", snap.error().message.c_str(), opt.config.c_str());
    return 1;
  }
  std::printf("dockgate: configuration %s is valid (policy %s)\n", opt.config.c_str(), (*snap)->config->policy.c_str());
  return 0;
}

}  // namespace

int policy_command(const std::vector<std::string>& args) {
  auto usage = [] {
    std::fputs(kUsage, stderr);
    return 2;
  };
  if (args.size() < 2) return usage();
  const std::string& sub = args[1];
  if (sub == "check" && args.size() == 3) return policy::policy_check(args[2], std::cout);
  if (sub == "test" && args.size() == 3) return policy::policy_test(args[2], std::cout);
  if (sub != "explain") return usage();
  std::string path, identity, method = "mtls", listener = "explain";
  std::vector<std::string> groups;
  for (size_t i = 2; i < args.size(); ++i) {
    auto value = [&](std::string& into) {
      if (i + 1 >= args.size()) return false;
      into = args[++i];
      return true;
    };
    std::string g;
    bool ok = false;
    if (args[i] == "--policy") ok = value(path);
    else if (args[i] == "--identity") ok = value(identity);
    else if (args[i] == "--auth") ok = value(method);
    else if (args[i] == "--listener") ok = value(listener);
    else if (args[i] == "--group" && value(g)) {
      groups.push_back(g);
      ok = true;
    } else if (path.empty() && args[i].rfind("--", 0) != 0) {
      path = args[i];
      ok = true;
    }
    if (!ok) return usage();
  }
  if (path.empty() || identity.empty()) return usage();
  std::string raw((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  return policy::policy_explain(path, identity, groups, method, listener, raw, std::cout);
}

int run(int argc, char** argv) {
  Options opt;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "policy") return policy_command(args);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version" || a == "-v") {
      std::printf("dockgate %s\n", DG_VERSION);
      return 0;
    }
    if (a == "-t" || a == "--test") {
      opt.test = true;
    } else if (a == "--config" || a == "-c") {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "dockgate: %s needs a file\n%s", a.c_str(), kUsage);
        return 2;
      }
      opt.config = args[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      opt.config = a.substr(9);
    } else {
      std::fprintf(stderr, "dockgate: unknown argument \"%s\"\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  if (opt.config.empty()) {
    std::fprintf(stderr, "dockgate: --config FILE is required\n%s", kUsage);
    return 2;
  }
  return opt.test ? check(opt) : serve(opt);
}

}  // namespace dg::app
