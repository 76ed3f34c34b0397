#include <doctest/doctest.h>

#include <string>

#include "http/parser.hpp"
#include "http_test_util.hpp"

using namespace dg;
using namespace dg::http;
using namespace dg::http::test;
using namespace std::string_literals;

namespace {

const std::string kPing =
    "HTTP/1.1 200 OK\r\n"
    "Api-Version: 1.41\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Length: 2\r\n"
    "Server: Docker/20.10.24 (linux)\r\n"
    "\r\n"
    "OK";

const std::string kLogs =
    "HTTP/1.1 200 OK\r\n"
    "Api-Version: 1.41\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "10\r\n\x01\0\0\0\0\0\0\x08hello!!\n\r\n"
    "3;name=val\r\nabc\r\n"
    "0\r\n\r\n"s;

}  // namespace

TEST_CASE("response: Content-Length body") {
  const ResponseRun r = run_responses(kPing, {"GET"}, false);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  const ResponseHead& h = r.messages[0].head;
  CHECK(h.status == 200);
  CHECK(h.reason == "OK");
  CHECK(h.body == BodyKind::Length);
  CHECK(h.content_length == 2);
  CHECK(h.keep_alive);
  CHECK(r.messages[0].body == "OK");
  REQUIRE(h.find("api-version") != nullptr);
  CHECK(*h.find("api-version") == "1.41");
}

TEST_CASE("response: Content-Length: 0 stays Length so it is forwarded") {
  const ResponseRun r = run_responses("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {"HEAD"}, false);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.body == BodyKind::None);  // HEAD
  const ResponseRun g = run_responses("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", {"GET"}, false);
  REQUIRE(g.messages.size() == 1);
  CHECK(g.messages[0].head.body == BodyKind::Length);
  CHECK(g.messages[0].head.content_length == 0);
}

TEST_CASE("response: 200 chunked, split at every byte") {
  const std::string payload = std::string("\x01\0\0\0\0\0\0\x08hello!!\n", 16) + "abc";
  for (size_t i = 0; i <= kLogs.size(); ++i) {
    CAPTURE(i);
    const ResponseRun r = run_responses(split_at(kLogs, i), {"GET"}, false);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.body == BodyKind::Chunked);
    CHECK(r.messages[0].head.keep_alive);
    CHECK(r.messages[0].body == payload);
  }
  const ResponseRun b = run_responses(pieces_of(kLogs, 1), {"GET"}, false);
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].body == payload);
}

TEST_CASE("response: HEAD answer with Content-Length: 123 and no body") {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 123\r\nX-Docker-Container-Path-Stat: e30=\r\n\r\n";
  const ResponseRun r = run_responses(raw + kPing, {"HEAD", "GET"}, false);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[0].head.body == BodyKind::None);
  CHECK(r.messages[0].head.content_length == 123);  // kept for the proxy to forward to the client
  CHECK(r.messages[0].body.empty());
  CHECK(r.messages[1].body == "OK");
}

TEST_CASE("response: 204 and 304 have no body even with a length") {
  const ResponseRun r = run_responses("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n" + kPing, {"POST", "GET"}, false);
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[0].head.body == BodyKind::None);
  CHECK(r.messages[1].body == "OK");
  const ResponseRun n = run_responses("HTTP/1.1 304 Not Modified\r\n\r\n" + kPing, {"GET", "GET"}, false);
  REQUIRE(n.messages.size() == 2);
  CHECK(n.messages[0].head.body == BodyKind::None);
}

TEST_CASE("response: 100 Continue is Head then Done, then the final response") {
  const std::string raw = "HTTP/1.1 100 Continue\r\n\r\n" + kPing;
  ResponseParser p;
  p.expect_response_to("POST");
  FeedResult f = p.feed(raw.data(), raw.size(), nullptr);
  REQUIRE(f.status == Status::Head);
  CHECK(p.head().status == 100);
  size_t off = f.consumed;
  f = p.feed(raw.data() + off, raw.size() - off, nullptr);
  REQUIRE(f.status == Status::Done);
  CHECK(f.consumed == 0);
  p.reset_for_next();
  const ResponseRun r = run_responses(raw, {"HEAD"}, false);
  REQUIRE(r.messages.size() == 2);
  CHECK(r.messages[0].head.status == 100);
  // The method survives the 1xx: the 200 answers HEAD, so no body is read.
  CHECK(r.messages[1].head.body == BodyKind::None);
  CHECK(r.leftover == "OK");
}

TEST_CASE("response: 101 followed by stream bytes in the same buffer") {
  const std::string head =
      "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\n"
      "Upgrade: tcp\r\n\r\n";
  const std::string stream = std::string("\x01\0\0\0\0\0\0\x0chello-stdin\n", 20);
  const std::string raw = head + stream;
  for (size_t i = 0; i <= raw.size(); ++i) {
    CAPTURE(i);
    const ResponseRun r = run_responses(split_at(raw, i), {"POST"}, false, 1);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.status == 101);
    CHECK(r.messages[0].head.reason == "UPGRADED");
    CHECK(r.messages[0].head.body == BodyKind::None);
    CHECK_FALSE(r.messages[0].head.keep_alive);
    CHECK(r.leftover == stream);
  }
  ResponseParser p;
  p.expect_response_to("POST");
  FeedResult f = p.feed(raw.data(), raw.size(), nullptr);
  REQUIRE(f.status == Status::Head);
  CHECK(f.consumed == head.size());
  f = p.feed(raw.data() + head.size(), raw.size() - head.size(), nullptr);
  CHECK(f.status == Status::Done);
  CHECK(f.consumed == 0);
}

TEST_CASE("response: pre-upgrade 200 raw stream is UntilClose") {
  const ResponseRun r = run_responses(
      "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\nraw bytes", {"POST"}, true);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.body == BodyKind::UntilClose);
  CHECK_FALSE(r.messages[0].head.keep_alive);
  CHECK(r.messages[0].body == "raw bytes");
}

TEST_CASE("response: UntilClose + finish() completes, even right after Head") {
  ResponseParser p;
  p.expect_response_to("GET");
  Collect sink;
  const std::string raw = "HTTP/1.0 200 OK\r\n\r\n";
  FeedResult f = p.feed(raw.data(), raw.size(), &sink);
  REQUIRE(f.status == Status::Head);
  CHECK(p.head().body == BodyKind::UntilClose);
  CHECK_FALSE(p.head().keep_alive);
  f = p.finish(&sink);
  CHECK(f.status == Status::Done);
  CHECK(sink.data.empty());
}

TEST_CASE("response: finish() on a body-less message right after Head is Done") {
  ResponseParser p;
  p.expect_response_to("DELETE");
  const std::string raw = "HTTP/1.1 204 No Content\r\n\r\n";
  REQUIRE(p.feed(raw.data(), raw.size(), nullptr).status == Status::Head);
  CHECK(p.finish(nullptr).status == Status::Done);
}

TEST_CASE("response: truncated bodies and heads + finish() are errors") {
  const std::string chunked_trunc = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab";
  for (size_t i = 0; i <= chunked_trunc.size(); ++i) {
    CAPTURE(i);
    const ResponseRun r = run_responses(split_at(chunked_trunc, i), {"GET"}, true);
    CHECK(r.error);
    CHECK(r.errc == Errc::UpstreamFailed);
  }
  const ResponseRun r = run_responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", {"GET"}, true);
  CHECK(r.errc == Errc::UpstreamFailed);
  const ResponseRun l = run_responses("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", {"GET"}, true);
  CHECK(l.errc == Errc::UpstreamFailed);
  const ResponseRun h = run_responses("HTTP/1.1 200 OK\r\nContent-Le", {"GET"}, true);
  CHECK(h.errc == Errc::UpstreamFailed);
  const ResponseRun e = run_responses("", {"GET"}, true);
  CHECK(e.errc == Errc::UpstreamFailed);
}

TEST_CASE("response: keep-alive") {
  auto ka = [](std::string_view raw) {
    const ResponseRun r = run_responses(raw, {"GET"}, true);
    REQUIRE(r.messages.size() == 1);
    return r.messages[0].head.keep_alive;
  };
  CHECK(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
  CHECK_FALSE(ka("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
  CHECK_FALSE(ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
  CHECK(ka("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"));
}

TEST_CASE("response: pipelined responses and an empty reason") {
  const ResponseRun r =
      run_responses(kPing + "HTTP/1.1 404 \r\nContent-Length: 2\r\n\r\n{}" + kLogs + "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
                    {"GET", "GET", "GET", "GET"}, false);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 4);
  CHECK(r.messages[1].head.status == 404);
  CHECK(r.messages[1].head.reason.empty());
  CHECK(r.messages[1].body == "{}");
  CHECK(r.messages[2].body.size() == 19);
  CHECK(r.messages[3].head.reason.empty());
}

TEST_CASE("response: malformed upstream answers") {
  auto err = [](std::string_view raw) {
    const ResponseRun r = run_responses(raw, {"GET"}, false);
    return r.error ? r.errc : Errc::Internal;
  };
  CHECK(err("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/2.0 200 OK\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1  200 OK\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 20 OK\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 099 OK\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("ICY 200 OK\r\n\r\n") == Errc::UpstreamBadResponse);
  CHECK(err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n") == Errc::UpstreamBadResponse);
}
