#include <doctest/doctest.h>

#include <string>

#include "core/errors.hpp"
#include "http/message.hpp"
#include "http/serialize.hpp"
#include "http_test_util.hpp"

using namespace dg;
using namespace dg::http;
using namespace dg::http::test;

namespace {

RequestHead parse_head(std::string_view raw) {
  const RequestRun r = run_requests(raw);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  return r.messages[0].head;
}

ResponseHead parse_response(std::string_view raw, const char* method = "GET") {
  const ResponseRun r = run_responses(raw, {method}, true, 1);
  REQUIRE_FALSE(r.error);
  REQUIRE(r.messages.size() == 1);
  return r.messages[0].head;
}

}  // namespace

TEST_CASE("is_hop_by_hop") {
  for (const char* n : {"Connection", "keep-alive", "PROXY-CONNECTION", "te", "Trailer", "Transfer-Encoding",
                        "upgrade", "Proxy-Authorization", "Proxy-Authenticate"})
    CHECK(is_hop_by_hop(n));
  for (const char* n : {"Host", "Content-Length", "Authorization", "X-Registry-Auth", "Trailers", "T"})
    CHECK_FALSE(is_hop_by_hop(n));
}

TEST_CASE("serialize_request: drops hop-by-hop, Connection-named, credentials and request ids") {
  const RequestHead h = parse_head(
      "POST /v1.41/containers/create?name=x HTTP/1.1\r\n"
      "Host: gw:2376\r\n"
      "Connection: keep-alive, X-Secret-Hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Secret-Hop: 1\r\n"
      "TE: trailers\r\n"
      "Proxy-Authorization: Basic Zm9v\r\n"
      "Authorization: Bearer tok\r\n"
      "X-Request-Id: client-chosen\r\n"
      "Content-Type: application/json\r\n"
      "Content-Length: 2\r\n"
      "X-Registry-Auth: e30=\r\n"
      "\r\n{}");
  ForwardRequestOptions o;
  o.body = BodyKind::Length;
  o.content_length = 2;
  o.request_id = "dg-1";
  o.extra.push_back({"X-Dockgate-User", "alice"});
  const std::string out = serialize_request(h, "/v1.41/containers/create?name=x", o);
  CHECK(out ==
        "POST /v1.41/containers/create?name=x HTTP/1.1\r\n"
        "Host: gw:2376\r\n"
        "Content-Type: application/json\r\n"
        "X-Registry-Auth: e30=\r\n"
        "Content-Length: 2\r\n"
        "X-Request-Id: dg-1\r\n"
        "X-Dockgate-User: alice\r\n"
        "\r\n");
  o.drop_authorization = false;
  const std::string keep = serialize_request(h, "/x", o);
  CHECK(keep.find("Authorization: Bearer tok\r\n") != std::string::npos);
  CHECK(keep.find("Proxy-Authorization") == std::string::npos);
}

TEST_CASE("serialize_request: framing options") {
  const RequestHead h = parse_head("PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n0\r\n\r\n");
  ForwardRequestOptions o;
  o.body = BodyKind::Chunked;
  CHECK(serialize_request(h, "/a", o) == "PUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  o.body = BodyKind::Length;
  o.content_length = 0;
  CHECK(serialize_request(h, "/a", o) == "PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
  o.body = BodyKind::None;
  CHECK(serialize_request(h, "/b", o) == "PUT /b HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST_CASE("serialize_request: upgrade for attach / exec start") {
  const RequestHead h = parse_head(
      "POST /v1.41/exec/e/start HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Length: 28\r\n"
      "Connection: Upgrade\r\nContent-Type: application/json\r\nUpgrade: tcp\r\n\r\n"
      "{\"Detach\":false,\"Tty\":true}\n");
  ForwardRequestOptions o;
  o.body = BodyKind::Length;
  o.content_length = 28;
  o.upgrade = true;
  CHECK(serialize_request(h, h.target, o) ==
        "POST /v1.41/exec/e/start HTTP/1.1\r\nHost: api.moby.localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: 28\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n");
  // Not a tunnel route: Connection/Upgrade never forwarded.
  o.upgrade = false;
  const std::string plain = serialize_request(h, h.target, o);
  CHECK(plain.find("Upgrade") == std::string::npos);
}

TEST_CASE("serialize_request: HTTP/1.0 without Host gets one; hostile extras dropped") {
  const RequestHead h = parse_head("GET /_ping HTTP/1.0\r\nUser-Agent: x\r\n\r\n");
  ForwardRequestOptions o;
  o.extra.push_back({"X-Bad", "a\r\nInjected: 1"});
  o.request_id = "id\r\nX: y";
  CHECK(serialize_request(h, "/_ping", o) == "GET /_ping HTTP/1.1\r\nUser-Agent: x\r\nHost: docker\r\n\r\n");
}

TEST_CASE("serialize_response: normal, chunked, close, HTTP/1.0 client") {
  const ResponseHead h = parse_response(
      "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
      "Transfer-Encoding: chunked\r\nX-Request-Id: up\r\nDocker-Experimental: false\r\n\r\n0\r\n\r\n");
  ForwardResponseOptions o;
  o.body = BodyKind::Chunked;
  o.request_id = "dg-7";
  CHECK(serialize_response(h, o) ==
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\nTransfer-Encoding: chunked\r\n"
        "X-Request-Id: dg-7\r\n\r\n");
  o.body = BodyKind::UntilClose;
  o.keep_alive = false;
  o.request_id = {};
  CHECK(serialize_response(h, o) ==
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nX-Request-Id: up\r\nDocker-Experimental: false\r\n"
        "Connection: close\r\n\r\n");
  o.body = BodyKind::Length;
  o.content_length = 42;
  o.keep_alive = true;
  o.client_version_minor = 0;
  CHECK(serialize_response(h, o) ==
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nX-Request-Id: up\r\nDocker-Experimental: false\r\n"
        "Content-Length: 42\r\nConnection: keep-alive\r\n\r\n");
}

TEST_CASE("serialize_response: HEAD answer keeps its length via options") {
  const ResponseHead h = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n", "HEAD");
  ForwardResponseOptions o;
  o.body = BodyKind::Length;
  o.content_length = h.content_length;
  CHECK(serialize_response(h, o) == "HTTP/1.1 200 OK\r\nContent-Length: 123\r\n\r\n");
}

TEST_CASE("serialize_response: 101 keeps Connection and Upgrade as sent") {
  const ResponseHead h = parse_response(
      "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\n"
      "Upgrade: tcp\r\nKeep-Alive: x\r\n\r\n",
      "POST");
  ForwardResponseOptions o;
  o.upgrade = true;
  o.keep_alive = false;
  CHECK(serialize_response(h, o) ==
        "HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\n"
        "Upgrade: tcp\r\n\r\n");
}

TEST_CASE("chunk framing") {
  std::string s;
  append_chunk_header(s, 0x8000);
  CHECK(s == "8000\r\n");
  s.clear();
  append_chunk_header(s, 1);
  CHECK(s == "1\r\n");
  CHECK(kLastChunk == "0\r\n\r\n");
}

TEST_CASE("error_response") {
  const std::string body = "{\"message\":\"dockgate: denied by rule \\\"ro\\\"\"}\n";
  CHECK(error_response(403, "denied by rule \"ro\"", false, "r1", {{"X-Extra", "1"}}) ==
        "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: " +
            std::to_string(body.size()) + "\r\nX-Request-Id: r1\r\nX-Extra: 1\r\n\r\n" + body);
  const std::string e = error_response(Errc::HeaderTooLarge, "", true);
  CHECK(e.rfind("HTTP/1.1 431 Request Header Fields Too Large\r\n", 0) == 0);
  CHECK(e.find("Connection: close\r\n") != std::string::npos);
  CHECK(e.find("X-Request-Id") == std::string::npos);
  CHECK(e.find("{\"message\":\"dockgate: request header fields too large\"}\n") != std::string::npos);
  const std::string d = error_response(Errc::AbsoluteTarget, "GET http://x/", false, "id");
  CHECK(d.find("absolute-form request targets are not accepted: GET http://x/") != std::string::npos);
  // The whole thing parses as a response with exactly the body it announces.
  const ResponseRun r = run_responses(d, {"GET"}, false);
  REQUIRE(r.messages.size() == 1);
  CHECK(r.messages[0].head.status == 400);
  CHECK(r.messages[0].body == "{\"message\":\"dockgate: absolute-form request targets are not accepted: GET http://x/\"}\n");
}
