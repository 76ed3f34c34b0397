#include <doctest/doctest.h>

#include <string>

#include "http/message.hpp"
#include "http/parser.hpp"
#include "http/serialize.hpp"
#include "http_test_util.hpp"

using namespace dg;
using namespace dg::http;
using namespace dg::http::test;

namespace {

const std::string kGet =
    "GET /v1.41/containers/json?all=1 HTTP/1.1\r\n"
    "Host: api.moby.localhost\r\n"
    "User-Agent: Docker-Client/28.2.2 (linux)\r\n"
    "\r\n";

const std::string kPostChunked =
    "POST /v1.41/build?t=img%3A1 HTTP/1.1\r\n"
    "Host: h\r\n"
    "Content-Type: application/x-tar\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "5;ext=1\r\nhello\r\n"
    "7\r\n world!\r\n"
    "0\r\n"
    "X-Trailer: dropped\r\n"
    "\r\n";

// A literal with embedded NULs, whole.
template <size_t N>
std::string lit(const char (&s)[N]) {
  return std::string(s, N - 1);
}

Errc request_error(std::string_view raw) {
  const RequestRun r = run_requests(raw);
  if (!r.error) return Errc::Internal;  // "no error" marker for CHECKs
  return r.errc;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests: accepted shapes

TEST_CASE("request: simple GET head fields") {
  const RequestRun r = run_requests(kGet);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  const RequestHead& h = r.messages[0].head;
  CHECK(h.method == "GET");
  CHECK(h.target == "/v1.41/containers/json?all=1");
  CHECK(h.path == "/v1.41/containers/json");
  CHECK(h.query == "all=1");
  CHECK(h.version_major == 1);
  CHECK(h.version_minor == 1);
  REQUIRE(h.headers.size() == 2);
  CHECK(h.headers[0].name == "Host");
  CHECK(h.headers[0].value == "api.moby.localhost");
  CHECK(h.headers[1].value == "Docker-Client/28.2.2 (linux)");
  CHECK(h.body == BodyKind::None);
  CHECK(h.keep_alive);
  CHECK_FALSE(h.has_upgrade);
  CHECK_FALSE(h.expect_continue);
  REQUIRE(h.find("user-agent") != nullptr);
  CHECK(*h.find("USER-AGENT") == "Docker-Client/28.2.2 (linux)");
  CHECK(h.find("X-Nope") == nullptr);
}

TEST_CASE("request: Head pauses right after the head, then Done") {
  const std::string raw = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET";
  RequestParser p;
  Collect sink;
  FeedResult r = p.feed(raw.data(), raw.size(), &sink);
  CHECK(r.status == Status::Head);
  CHECK(r.consumed == raw.find("abc"));
  CHECK(p.head().body == BodyKind::Length);
  CHECK(p.head().content_length == 3);
  CHECK(sink.data.empty());
  const size_t off = r.consumed;
  r = p.feed(raw.data() + off, raw.size() - off, &sink);
  CHECK(r.status == Status::Done);
  CHECK(r.consumed == 3);
  CHECK(sink.data == "abc");
  // Feeding again without reset stays Done and consumes nothing.
  r = p.feed(raw.data() + off + 3, 3, &sink);
  CHECK(r.status == Status::Done);
  CHECK(r.consumed == 0);
}

TEST_CASE("request: body-less request completes on an empty feed after Head") {
  RequestParser p;
  FeedResult r = p.feed(kGet.data(), kGet.size(), nullptr);
  CHECK(r.status == Status::Head);
  CHECK(r.consumed == kGet.size());
  r = p.feed(nullptr, 0, nullptr);
  CHECK(r.status == Status::Done);
  CHECK(r.consumed == 0);
}

TEST_CASE("request: header values trimmed, names case kept, order and duplicates kept") {
  const RequestRun r = run_requests(
      "GET / HTTP/1.1\r\nhOsT:   h  \r\nX-A: 1\r\nx-a:2\t\r\nX-Empty:\r\nX-A: 3\r\n\r\n");
  REQUIRE_FALSE(r.error);
  const auto& hs = r.messages.at(0).head.headers;
  REQUIRE(hs.size() == 5);
  CHECK(hs[0].name == "hOsT");
  CHECK(hs[0].value == "h");
  CHECK(hs[1].value == "1");
  CHECK(hs[2].name == "x-a");
  CHECK(hs[2].value == "2");
  CHECK(hs[3].name == "X-Empty");
  CHECK(hs[3].value.empty());
  CHECK(hs[4].value == "3");
}

TEST_CASE("request: framing kinds") {
  SUBCASE("Content-Length: 0 is None") {
    const RequestRun r = run_requests("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.body == BodyKind::None);
    CHECK(r.messages[0].head.content_length == 0);
  }
  SUBCASE("Content-Length") {
    const RequestRun r = run_requests("POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.body == BodyKind::Length);
    CHECK(r.messages[0].head.content_length == 5);
    CHECK(r.messages[0].body == "hello");
  }
  SUBCASE("chunked with extensions and trailers") {
    const RequestRun r = run_requests(kPostChunked);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.body == BodyKind::Chunked);
    CHECK(r.messages[0].body == "hello world!");
    CHECK(r.messages[0].head.find("X-Trailer") == nullptr);  // trailers dropped
    CHECK(r.leftover.empty());
  }
  SUBCASE("chunked, zero-length body") {
    const RequestRun r =
        run_requests("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body.empty());
  }
  SUBCASE("Transfer-Encoding value is case-insensitive") {
    const RequestRun r =
        run_requests("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n");
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].body == "x");
  }
}

TEST_CASE("request: keep-alive semantics") {
  auto ka = [](std::string_view raw) {
    const RequestRun r = run_requests(raw);
    REQUIRE(r.messages.size() == 1);
    return r.messages[0].head.keep_alive;
  };
  CHECK(ka("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n"));
  CHECK_FALSE(ka("GET / HTTP/1.0\r\n\r\n"));
  CHECK(ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
  CHECK(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
}

TEST_CASE("request: HTTP/1.0 without Host is fine") {
  const RequestRun r = run_requests("GET /_ping HTTP/1.0\r\n\r\n");
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.version_minor == 0);
}

TEST_CASE("request: Expect: 100-continue") {
  const RequestRun r =
      run_requests("POST /a HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok");
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.expect_continue);
  CHECK(r.messages[0].body == "ok");
  CHECK(request_error("POST /a HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n") == Errc::BadRequest);
}

TEST_CASE("request: all accepted methods") {
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}) {
    CAPTURE(m);
    const RequestRun r = run_requests(std::string(m) + " /x HTTP/1.1\r\nHost: h\r\n\r\n");
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.method == m);
  }
}

TEST_CASE("request: pipelined requests in one buffer") {
  const std::string raw = kGet + "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody" + kPostChunked +
                          "HEAD /_ping HTTP/1.1\r\nHost: h\r\n\r\n";
  const RequestRun r = run_requests(raw);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 4);
  CHECK(r.messages[0].head.method == "GET");
  CHECK(r.messages[1].body == "body");
  CHECK(r.messages[2].body == "hello world!");
  CHECK(r.messages[3].head.method == "HEAD");
  CHECK(r.messages[3].head.target == "/_ping");
  CHECK(r.leftover.empty());
}

TEST_CASE("request: heads and chunked bodies split at every byte boundary") {
  const std::string raw = kGet + kPostChunked + "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
  const RequestRun whole = run_requests(raw);
  REQUIRE(whole.messages.size() == 3);
  for (size_t i = 0; i <= raw.size(); ++i) {
    CAPTURE(i);
    const RequestRun r = run_requests(split_at(raw, i));
    REQUIRE_FALSE(r.error);
    REQUIRE(r.messages.size() == 3);
    for (size_t m = 0; m < 3; ++m) {
      CHECK(r.messages[m].head.target == whole.messages[m].head.target);
      CHECK(r.messages[m].head.headers.size() == whole.messages[m].head.headers.size());
      CHECK(r.messages[m].body == whole.messages[m].body);
    }
    CHECK(r.messages[1].head.headers[2].value == "chunked");
  }
  // And one byte at a time.
  const RequestRun bytes = run_requests(pieces_of(raw, 1));
  REQUIRE(bytes.messages.size() == 3);
  CHECK(bytes.messages[1].body == "hello world!");
  CHECK(bytes.messages[0].head.headers[1].value == "Docker-Client/28.2.2 (linux)");
}

TEST_CASE("request: attach upgrade with Content-Length: 0, stdin right behind it") {
  const std::string head =
      "POST /v1.41/containers/abc/attach?stderr=1&stdin=1&stdout=1&stream=1 HTTP/1.1\r\n"
      "Host: api.moby.localhost\r\n"
      "Content-Length: 0\r\n"
      "Connection: Upgrade\r\n"
      "Content-Type: text/plain\r\n"
      "Upgrade: tcp\r\n"
      "\r\n";
  const std::string raw = head + "hello-stdin\n";
  const RequestRun r = run_requests(raw, 1);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.has_upgrade);
  CHECK(r.messages[0].head.body == BodyKind::None);
  CHECK(r.leftover == "hello-stdin\n");
  // Without the stop the proxy would not feed those bytes; a direct feed shows the boundary.
  RequestParser p;
  FeedResult f = p.feed(raw.data(), raw.size(), nullptr);
  CHECK(f.status == Status::Head);
  CHECK(f.consumed == head.size());
  f = p.feed(raw.data() + head.size(), raw.size() - head.size(), nullptr);
  CHECK(f.status == Status::Done);
  CHECK(f.consumed == 0);
}

TEST_CASE("request: exec start with a 28-byte body then raw bytes") {
  const std::string body = "{\"Detach\":false,\"Tty\":true}\n";
  REQUIRE(body.size() == 28);
  const std::string raw =
      "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: h\r\nContent-Length: 28\r\nContent-Type: application/json\r\n"
      "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n" +
      body + "ls -l\r\n\x03\x04";
  for (size_t i = 0; i <= raw.size(); ++i) {
    CAPTURE(i);
    const RequestRun r = run_requests(split_at(raw, i), 1);
    REQUIRE_FALSE(r.error);
    REQUIRE(r.messages.size() == 1);
    CHECK(r.messages[0].head.has_upgrade);
    CHECK(r.messages[0].body == body);
    CHECK(r.leftover == "ls -l\r\n\x03\x04");
  }
}

TEST_CASE("request: Upgrade without Connection: Upgrade still marks has_upgrade") {
  const RequestRun r = run_requests("POST /a HTTP/1.1\r\nHost: h\r\nUpgrade: banana\r\n\r\nRAW", 1);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.has_upgrade);
  CHECK(r.leftover == "RAW");
}

// ---------------------------------------------------------------------------------------------
// Requests: rejections

TEST_CASE("reject: malformed request lines") {
  CHECK(request_error("GET\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET /  HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / RTSP/1.0\r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET / ICE/1.0\r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET / http/1.1\r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET /\r\nHost: h\r\n\r\n") != Errc::Internal);  // HTTP/0.9 style
  CHECK(request_error("GET  / HTTP/1.1\r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET / HTTP/1.1 \r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("GET / FTP/1.1\r\nHost: h\r\n\r\n") != Errc::Internal);
  CHECK(request_error("\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
}

TEST_CASE("reject: methods") {
  CHECK(request_error("get / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadMethod);
  CHECK(request_error("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadMethod);
  CHECK(request_error("PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadMethod);
  CHECK(request_error("FOO / HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadMethod);
  CHECK(request_error("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == Errc::BadMethod);
  CHECK(request_error("CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n") == Errc::BadRequest);
}

TEST_CASE("reject: request target forms") {
  CHECK(request_error("GET http://evil/v1.41/version HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::AbsoluteTarget);
  CHECK(request_error("GET https://evil:1/x HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::AbsoluteTarget);
  CHECK(request_error("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET v1.41/version HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET evil:80 HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error(lit("GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n")) == Errc::BadRequest);
  CHECK(request_error("GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n") == Errc::BadRequest);
}

TEST_CASE("reject: HTTP versions") {
  CHECK(request_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == Errc::BadVersion);
  CHECK(request_error("GET / HTTP/0.9\r\nHost: h\r\n\r\n") == Errc::BadVersion);
  CHECK(request_error("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == Errc::BadVersion);
  CHECK(request_error("GET / HTTP/3.0\r\nHost: h\r\n\r\n") == Errc::BadVersion);
  CHECK(request_error("GET / HTTP/1.x\r\nHost: h\r\n\r\n") == Errc::BadVersion);
}

TEST_CASE("reject: Host rules mirror Go") {
  CHECK(request_error("GET / HTTP/1.1\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a b\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost:\r\n\r\n") == Errc::Internal);  // empty Host is accepted
  CHECK(request_error("GET / HTTP/1.1\r\nHost: [::1]:2376\r\n\r\n") == Errc::Internal);
}

TEST_CASE("reject: header syntax") {
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n b\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-Fold: a\r\n\tb\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\n Host: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\nHost: h\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\n\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\rX-B: 2\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01" "b\r\n\r\n") == Errc::BadRequest);
  CHECK(request_error(lit("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n")) == Errc::BadRequest);
  CHECK(request_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f" "b\r\n\r\n") == Errc::BadRequest);
}

TEST_CASE("reject: request smuggling framings") {
  SUBCASE("TE + CL, both orders") {
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
                        "0\r\n\r\n") == Errc::Smuggling);
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "0\r\n\r\n") == Errc::Smuggling);
  }
  SUBCASE("duplicate Content-Length") {
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello") ==
          Errc::Smuggling);
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!") ==
          Errc::Smuggling);
  }
  SUBCASE("malformed Content-Length") {
    for (const char* v : {"-1", "+5", "5 5", "0x10", "5,5", "abc", "99999999999999999999999", ""}) {
      CAPTURE(v);
      CHECK(request_error(std::string("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: ") + v + "\r\n\r\n") !=
            Errc::Internal);
    }
  }
  SUBCASE("transfer codings other than exactly chunked") {
    for (const char* v : {"gzip", "gzip, chunked", "chunked, chunked", "chunked;q=1", "identity", "xchunked",
                          "chunked, gzip", ""}) {
      CAPTURE(v);
      CHECK(request_error(std::string("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ") + v +
                          "\r\n\r\n0\r\n\r\n") != Errc::Internal);
    }
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                        "\r\n0\r\n\r\n") != Errc::Internal);
  }
  SUBCASE("Transfer-Encoding on HTTP/1.0") {
    CHECK(request_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == Errc::Smuggling);
  }
  SUBCASE("bad chunk framing") {
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") != Errc::Internal);
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n") !=
          Errc::Internal);
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n") != Errc::Internal);
    CHECK(request_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                        "fffffffffffffffffff\r\n") != Errc::Internal);
  }
}

TEST_CASE("reject: head size and header count limits") {
  ParserLimits lim;
  lim.max_header_bytes = 256;
  lim.max_headers = 4;
  std::string ok = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
  CHECK_FALSE(run_requests(ok, 0, lim).error);
  const RequestRun many = run_requests("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 0, lim);
  CHECK(many.error);
  CHECK(many.errc == Errc::HeaderTooLarge);
  // Exactly at the byte limit is fine; one byte over is not, whole or byte by byte.
  std::string exact = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  exact += std::string(256 - exact.size() - 4, 'a') + "\r\n\r\n";
  REQUIRE(exact.size() == 256);
  CHECK_FALSE(run_requests(exact, 0, lim).error);
  std::string over = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  over += std::string(256 - over.size() - 3, 'a') + "\r\n\r\n";
  const RequestRun big = run_requests(over, 0, lim);
  CHECK(big.error);
  CHECK(big.errc == Errc::HeaderTooLarge);
  const RequestRun big1 = run_requests(pieces_of(over, 1), 0, lim);
  CHECK(big1.errc == Errc::HeaderTooLarge);
  // A body does not count towards the head limit.
  std::string body_ok = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'b');
  const RequestRun b = run_requests(body_ok, 0, lim);
  REQUIRE(b.messages.size() == 1);
  CHECK(b.messages[0].body.size() == 1000);
}

TEST_CASE("reject: errors are sticky and report a detail") {
  RequestParser p;
  const std::string raw = "GET http://evil/ HTTP/1.1\r\nHost: h\r\n\r\n";
  FeedResult r = p.feed(raw.data(), raw.size(), nullptr);
  CHECK(r.status == Status::Error);
  CHECK(p.error() == Errc::AbsoluteTarget);
  CHECK_FALSE(p.error_detail().empty());
  r = p.feed(kGet.data(), kGet.size(), nullptr);
  CHECK(r.status == Status::Error);
}

TEST_CASE("reset_for_next reuses the parser cleanly") {
  RequestParser p;
  Collect sink;
  const std::string a = "POST /a?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nUpgrade: tcp\r\nExpect: 100-continue\r\n\r\nZ";
  FeedResult r = p.feed(a.data(), a.size(), &sink);
  REQUIRE(r.status == Status::Head);
  r = p.feed(a.data() + r.consumed, a.size() - r.consumed, &sink);
  REQUIRE(r.status == Status::Done);
  p.reset_for_next();
  r = p.feed(kGet.data(), kGet.size(), &sink);
  REQUIRE(r.status == Status::Head);
  CHECK(p.head().method == "GET");
  CHECK(p.head().query == "all=1");
  CHECK(p.head().headers.size() == 2);
  CHECK_FALSE(p.head().has_upgrade);
  CHECK_FALSE(p.head().expect_continue);
  CHECK(p.head().body == BodyKind::None);
}
