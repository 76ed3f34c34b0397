#include <doctest/doctest.h>

#include "config/tokens_file.hpp"

using namespace dg::config;

namespace {
const std::string kHash = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08";
}

TEST_CASE("token file: entries with groups and expiry") {
  auto r = parse_tokens("tokens:\n"
                        "  - name: ci-runner\n"
                        "    sha256: " + kHash + "\n"
                        "    groups: [ci, builders]\n"
                        "    expires: 2026-12-31T00:00:00Z\n"
                        "  - name: forever\n"
                        "    sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n",
                        "tokens.yaml");
  REQUIRE_MESSAGE(r, (r ? "" : r.error().str()));
  REQUIRE(r->size() == 2);
  CHECK((*r)[0].name == "ci-runner");
  CHECK((*r)[0].sha256 == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  CHECK((*r)[0].groups == std::vector<std::string>{"ci", "builders"});
  REQUIRE((*r)[0].expires);
  CHECK(*(*r)[0].expires == 1798675200);
  CHECK((*r)[0].line == 2);
  CHECK_FALSE((*r)[1].expires);
  CHECK((*r)[1].groups.empty());
}

TEST_CASE("token file: empty file and empty list are fine") {
  CHECK(parse_tokens("", "t.yaml")->empty());
  CHECK(parse_tokens("tokens: []\n", "t.yaml")->empty());
}

TEST_CASE("token file: errors name file and line, never echo the value") {
  auto r = parse_tokens("tokens:\n"
                        "  - name: a\n"
                        "    sha256: my-secret-token\n"
                        "  - sha256: " + kHash + "\n"
                        "  - name: b\n"
                        "    sha256: " + kHash + "\n"
                        "    expires: next tuesday\n"
                        "  - name: c\n"
                        "    sha256: " + kHash + "\n"
                        "    owner: x\n"
                        "  - name: d\n"
                        "    sha256: " + kHash + "\n"
                        "  - name: d\n"
                        "    sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n"
                        "extra: 1\n",
                        "tokens.yaml");
  REQUIRE_FALSE(r);
  const std::string s = r.error().str();
  CHECK(s.find("tokens.yaml:3:13: tokens[0].sha256 must be 64 hex digits") != std::string::npos);
  CHECK(s.find("my-secret-token") == std::string::npos);
  CHECK(s.find("tokens.yaml:4:5: missing required key \"name\" in tokens[1]") != std::string::npos);
  CHECK(s.find("tokens.yaml:7:14: tokens[2].expires must be a UTC time") != std::string::npos);
  CHECK(s.find("tokens.yaml:10:5: unknown key \"owner\"") != std::string::npos);
  CHECK(s.find("tokens.yaml:11:5: tokens[4]: same sha256 as token \"c\" (line 8)") != std::string::npos);
  CHECK(s.find("tokens.yaml:13:11: tokens[5]: token name \"d\" is used twice (line 11)") != std::string::npos);
  CHECK(s.find("tokens.yaml:15:1: unknown key \"extra\"") != std::string::npos);
}

TEST_CASE("timestamps") {
  CHECK(parse_timestamp("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_timestamp("2026-12-31") == 1798675200);
  CHECK(parse_timestamp("2026-12-31T02:00:00+02:00") == 1798675200);
  CHECK(parse_timestamp("2026-12-30T22:00:00.123-02:00") == 1798675200);
  CHECK_FALSE(parse_timestamp("2026-12-31T00:00:00"));  // no zone
  CHECK_FALSE(parse_timestamp("2026-02-30"));
  CHECK_FALSE(parse_timestamp("2026-13-01"));
  CHECK_FALSE(parse_timestamp("tomorrow"));
  CHECK_FALSE(parse_timestamp("2026-12-31Z"));
}

TEST_CASE("load_tokens_file reports an unreadable file") {
  auto r = load_tokens_file("/nonexistent/tokens.yaml");
  REQUIRE_FALSE(r);
  CHECK(r.error().str().find("/nonexistent/tokens.yaml: cannot read file") != std::string::npos);
}
