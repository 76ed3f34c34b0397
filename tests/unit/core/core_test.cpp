#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "core/errors.hpp"
#include "core/log.hpp"
#include "core/strings.hpp"
#include "core/uv.hpp"

using namespace dg;

TEST_CASE("error table maps codes to status and message") {
  CHECK(errc_status(Errc::HeaderTooLarge) == 431);
  CHECK(errc_status(Errc::UpstreamDown) == 502);
  CHECK(errc_name(Errc::Smuggling) == "Smuggling");
  CHECK(!errc_message(Errc::BadRequest).empty());
}

TEST_CASE("docker error body is JSON with the dockgate prefix") {
  CHECK(docker_error_body("no \"way\"\n") == "{\"message\":\"dockgate: no \\\"way\\\"\\n\"}\n");
  std::string s;
  append_json_string(s, std::string("\x01", 1));
  CHECK(s == "\"\\u0001\"");
}

TEST_CASE("iequals and trim") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK(!iequals("Content-Length", "content-lengt"));
  CHECK(trim("  a b \t") == "a b");
}

TEST_CASE("uv handle closes and the loop closes clean") {
  uvx::Loop loop;
  {
    uvx::Handle<uv_timer_t> t;
    REQUIRE(uv_timer_init(loop.get(), t.get()) == 0);
    t.initialized();
    uv_timer_start(t.get(), [](uv_timer_t*) {}, 1000, 0);
  }  // destroyed while active: uv_close frees the memory
  CHECK(loop.close() == 0);
}

namespace {
// A uvx::Work job that counts what happened to it; it may wait for a gate before finishing.
struct Counters {
  std::atomic<int> ran{0}, destroyed{0}, done{0};
  std::atomic<bool> gate{true};
  std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<bool> ran_elsewhere{false};
};
struct CountingJob {
  Counters* c;
  bool live = true;
  explicit CountingJob(Counters* cc) : c(cc) {}
  CountingJob(CountingJob&& o) noexcept : c(o.c), live(std::exchange(o.live, false)) {}
  ~CountingJob() {
    if (live) ++c->destroyed;
  }
  void run() {
    while (!c->gate.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (std::this_thread::get_id() != c->loop_thread) c->ran_elsewhere = true;
    ++c->ran;
  }
};
}  // namespace

TEST_CASE("uv work: runs on the pool, done on the loop, freed after") {
  uvx::Loop loop;
  Counters c;
  auto work = std::make_unique<uvx::Work<CountingJob>>();
  REQUIRE(work->start(loop.get(), CountingJob(&c), &work, [](void* owner, CountingJob& job, int status) {
    CHECK(status == 0);
    CHECK(job.c->ran == 1);
    CHECK(std::this_thread::get_id() == job.c->loop_thread);
    ++job.c->done;
    static_cast<std::unique_ptr<uvx::Work<CountingJob>>*>(owner)->reset();  // the owner may go away in done
  }) == 0);
  CHECK(work->busy());
  CHECK(loop.close() == 0);
  CHECK(c.ran == 1);
  CHECK(c.ran_elsewhere);
  CHECK(c.done == 1);
  CHECK(c.destroyed == 1);
  CHECK(work == nullptr);
}

TEST_CASE("uv work: a detached job is cancelled or dropped, never reported, always freed") {
  uvx::Loop loop;
  Counters c;
  c.gate = false;  // jobs taken by a pool thread wait: the rest stay queued
  constexpr int kJobs = 64;
  {
    std::vector<std::unique_ptr<uvx::Work<CountingJob>>> works;
    for (int i = 0; i < kJobs; ++i) {
      works.push_back(std::make_unique<uvx::Work<CountingJob>>());
      REQUIRE(works.back()->start(loop.get(), CountingJob(&c), nullptr, [](void*, CountingJob& job, int) { ++job.c->done; }) == 0);
    }
    works[0]->detach();
    CHECK_FALSE(works[0]->busy());
  }  // the owners are gone
  c.gate = true;
  CHECK(loop.close() == 0);  // the running ones end; the loop does not wait for anything else
  CHECK(c.done == 0);
  CHECK(c.destroyed == kJobs);
  if (!std::getenv("UV_THREADPOOL_SIZE")) CHECK(c.ran < kJobs);  // queued ones were cancelled
}

TEST_CASE("json strings: runs copied, every special byte escaped") {
  std::string s;
  append_json_string(s, std::string("plain text/\x7f\"\\\r\n\tend\x1f", 21));
  CHECK(s == "\"plain text/\\u007f\\\"\\\\\\r\\n\\tend\\u001f\"");
  s.clear();
  append_json_string(s, "");
  CHECK(s == "\"\"");
}

namespace {
std::string read_all(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
}  // namespace

TEST_CASE("log lines: direct, nested, dropped, filtered, flushed around an open line") {
  char tmpl[] = "/tmp/dg-log-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  std::string err;
  REQUIRE(log::configure(log::Format::Json, tmpl, log::Level::Info, &err));
  {
    log::Line outer(log::Level::Info, "outer");
    outer.str("k", "v\"1");
    // A second line built while the first is open goes in whole, before it.
    log::Line(log::Level::Info, "inner").num("n", -42).emit();
    log::flush();  // writes "inner" only: "outer" is still being written
    CHECK(read_all(tmpl).find("\"event\":\"inner\",\"n\":-42}\n") != std::string::npos);
    CHECK(read_all(tmpl).find("outer") == std::string::npos);
    outer.boolean("b", true).emit();
  }
  { log::Line(log::Level::Info, "never-emitted").str("x", "y"); }
  log::Line(log::Level::Debug, "filtered").str("x", "y").emit();
  log::Line(log::Level::Warn, "warned").str("x", "y").emit();  // Warn flushes at once
  std::string text = read_all(tmpl);
  CHECK(text.find("\"event\":\"outer\",\"k\":\"v\\\"1\",\"b\":true}\n") != std::string::npos);
  CHECK(text.find("never-emitted") == std::string::npos);
  CHECK(text.find("filtered") == std::string::npos);
  CHECK(text.find("warned") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 3);
  CHECK(text.substr(0, 9) == "{\"time\":\"");
  CHECK(text.find("Z\",\"level\":\"info\"") != std::string::npos);
  REQUIRE(log::configure(log::Format::Json, "", log::Level::Info, &err));
  unlink(tmpl);
}
