#include "app/app.hpp"

#include <uv.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "core/log.hpp"
#include "core/uv.hpp"
#include "proxy/server.hpp"
#include "proxy/snapshot.hpp"

#ifndef DG_VERSION
#define DG_VERSION "dev"
#endif

namespace dg::app {
namespace {

constexpr const char* kUsage =
    "usage: dockgate --config FILE          run in the foreground\n"
    "       dockgate -t --config FILE       check the configuration and its policy, then exit\n"
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
  for (size_t i = 0; i < a.listeners.size(); ++i)
    if (a.listeners[i].address.text != b.listeners[i].address.text) return false;
  return a.upstream.address.text == b.upstream.address.text;
}

int serve(const Options& opt) {
  auto snap = proxy::build_snapshot(opt.config);
  if (!snap) {
    std::fprintf(stderr, "%s\ndockgate: configuration %s has errors; not starting\n", snap.error().message.c_str(),
                 opt.config.c_str());
    return 1;
  }
  if (!configure_log(*(*snap)->config, true)) return 1;
  std::signal(SIGPIPE, SIG_IGN);

  uvx::Loop loop;
  int exit_code = 0;
  {
    auto server = std::make_unique<proxy::Server>(loop.get(), *snap, false);
    if (auto r = server->start(); !r) {
      std::fprintf(stderr, "dockgate: %s\n", r.error().message.c_str());
      log::flush();
      return 1;
    }
    {
      log::Line line(log::Level::Info, "started");
      line.str("version", DG_VERSION).str("config", opt.config).str("upstream", (*snap)->config->upstream.address.text);
      line.str("policy", (*snap)->config->policy);
      std::string bound;
      for (const auto& b : server->bound_addresses()) bound += (bound.empty() ? "" : " ") + b;
      line.str("listeners", bound);
      line.num("pid", static_cast<int64_t>(uv_os_getpid()));
      line.emit();
      log::flush();
    }

    uvx::Handle<uv_signal_t> sigterm, sigint, sighup;
    struct Ctx {
      proxy::Server* server;
      std::string config;
      uv_loop_t* loop;
      std::vector<uv_signal_t*> signals;
      bool stopping = false;
    } ctx{server.get(), opt.config, loop.get(), {}, false};

    auto stop = [](uv_signal_t* h, int signum) {
      auto* c = static_cast<Ctx*>(h->data);
      if (!c) return;
      if (c->stopping) {
        log::warn("shutdown", "second signal: stopping now");
        uv_stop(c->loop);
        return;
      }
      c->stopping = true;
      uint32_t grace = c->server->snapshot()->config->limits.shutdown_grace_ms;
      log::Line(log::Level::Info, "shutdown").str("signal", strsignal(signum)).num("grace_ms", grace).emit();
      log::flush();
      c->server->shutdown(grace, [c] {
        log::info("stopped", "all connections closed");
        log::flush();
        for (auto* s : c->signals) uv_signal_stop(s);
        uv_stop(c->loop);
      });
    };
    auto hup = [](uv_signal_t* h, int) {
      auto* c = static_cast<Ctx*>(h->data);
      if (!c) return;
      auto next = proxy::build_snapshot(c->config);
      if (!next) {
        log::Line(log::Level::Error, "reload").str("result", "kept the running configuration").str("error", next.error().message).emit();
        return;
      }
      const auto& cur = *c->server->snapshot()->config;
      if (!same_listeners(cur, *(*next)->config))
        log::warn("reload", "listener and upstream address changes take effect only after a restart");
      configure_log(*(*next)->config, false);
      c->server->reload(*next);
      log::Line(log::Level::Info, "reload").str("result", "ok").str("policy", (*next)->config->policy).emit();
    };
    for (auto [h, signum, cb] : {std::tuple{&sigterm, SIGTERM, +stop}, std::tuple{&sigint, SIGINT, +stop},
                                 std::tuple{&sighup, SIGHUP, +hup}}) {
      if (uv_signal_init(loop.get(), h->get()) == 0) h->initialized();
      h->set_owner(&ctx);
      uv_signal_start(h->get(), cb, signum);
      ctx.signals.push_back(h->get());
    }
    uv_run(loop.get(), UV_RUN_DEFAULT);
    server.reset();
  }
  // Close whatever is left (handles closed above run their close callbacks here).
  if (loop.close() != 0) {
    log::warn("stopped", "event loop still had open handles at exit");
    exit_code = 0;
  }
  log::flush();
  return exit_code;
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

int run(int argc, char** argv) {
  Options opt;
  std::vector<std::string> args(argv + 1, argv + argc);
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
