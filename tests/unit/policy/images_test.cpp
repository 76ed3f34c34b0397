#include "helpers.hpp"
#include "policy/capabilities.hpp"
#include "policy/canonical.hpp"
#include "policy/images.hpp"

using namespace dg::policy;

TEST_CASE("image reference normalisation (notes §8)") {
  std::string e;
  auto n = [&](const char* s) {
    auto r = parse_image_ref(s, &e);
    return r ? r->str() : "ERR " + e;
  };
  CHECK(n("busybox:local") == "docker.io/library/busybox:local");
  CHECK(n("docker.io/library/busybox:local") == "docker.io/library/busybox:local");
  CHECK(n("docker.io/busybox:local") == "docker.io/library/busybox:local");
  CHECK(n("library/busybox:local") == "docker.io/library/busybox:local");
  CHECK(n("index.docker.io/library/busybox:local") == "docker.io/library/busybox:local");
  CHECK(n("registry-1.docker.io/library/busybox:local") == "registry-1.docker.io/library/busybox:local");
  CHECK(n("BUSYBOX:local").rfind("ERR", 0) == 0);
  CHECK(n("busybox:LOCAL") == "docker.io/library/busybox:LOCAL");
  CHECK(n("busybox") == "docker.io/library/busybox");
  CHECK(n("localhost:5999/x:1") == "localhost:5999/x:1");
  CHECK(n("localhost/x") == "localhost/x");
  CHECK(n("acme/app") == "docker.io/acme/app");
  CHECK(n("a..b").rfind("ERR", 0) == 0);
  CHECK(n("busybox:-x").rfind("ERR", 0) == 0);
  auto id = parse_image_ref("sha256:" + std::string(64, 'a'), &e);
  CHECK(id->id);
  CHECK(parse_image_ref(std::string(64, 'f'), &e)->id);
  CHECK(parse_image_ref("abcd", &e)->maybe_id_prefix);
  CHECK(!parse_image_ref("abcd:1", &e)->maybe_id_prefix);
  CHECK(!parse_image_ref("busybox", &e)->maybe_id_prefix);
  auto d = parse_image_ref("busybox:local@sha256:" + std::string(64, 'c'), &e);
  CHECK(d->tag == "local");
  CHECK(d->digest == "sha256:" + std::string(64, 'c'));
}

TEST_CASE("globs") {
  CHECK(glob_match("docker.io/library/*", "docker.io/library/busybox"));
  CHECK(!glob_match("docker.io/library/*", "docker.io/library/a/b"));
  CHECK(glob_match("ghcr.io/**", "ghcr.io/a/b/c"));
  CHECK(glob_match("**", "x/y"));
  CHECK(glob_match("1.*", "1.36"));
  CHECK(!glob_match("1.*", "2.0"));
  CHECK(glob_match("net.ipv4.*", "net.ipv4.x"));
  auto p = parse_image_pattern("busybox");
  CHECK(p.name == "docker.io/library/busybox");
  CHECK(parse_image_pattern("acme/*").name == "docker.io/acme/*");
  CHECK(parse_image_pattern("**").name == "**");
  CHECK(parse_image_pattern("localhost:5000/x:1").tag == "1");
}

TEST_CASE("capability spellings") {
  CHECK(capability_bits("SYS_ADMIN") == capability_bits("sys_admin"));
  CHECK(capability_bits("CAP_SYS_ADMIN") == capability_bits("Cap_Sys_Admin"));
  CHECK(capability_bits("ALL") == kAllCapabilities);
  CHECK(capability_bits("all") == kAllCapabilities);
  CHECK(!capability_bits("CAP_ALL"));
  CHECK(!capability_bits(" SYS_ADMIN"));
  CHECK(!capability_bits("BOGUS"));
  CHECK(capability_name(*capability_bits("net_raw")) == "NET_RAW");
}

TEST_CASE("clean paths") {
  CHECK(clean_path("/a/../b") == "/b");
  CHECK(clean_path("//a//b/") == "/a/b");
  CHECK(clean_path("/../..") == "/");
  CHECK(clean_path("/a/./b/.") == "/a/b");
  CHECK(path_within("/srv/data/x", "/srv/data"));
  CHECK(!path_within("/srv/database", "/srv/data"));
  CHECK(path_within("/x", "/"));
}
