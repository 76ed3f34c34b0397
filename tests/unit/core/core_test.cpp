#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
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
