#include <doctest/doctest.h>

#include "core/errors.hpp"
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
