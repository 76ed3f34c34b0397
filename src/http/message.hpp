// HTTP/1.1 message heads as dockgate hands them between phases (never raw bytes).
// The only module that includes llhttp.h is src/http/ (in parser.cpp). No libuv here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/errors.hpp"

namespace dg::http {

struct Header {
  std::string name;   // as received (case preserved)
  std::string value;  // leading/trailing whitespace trimmed
};

enum class BodyKind {
  None,        // no body (Content-Length: 0 or absent on a request; 1xx/204/304/HEAD responses)
  Length,      // Content-Length: N
  Chunked,     // Transfer-Encoding: chunked
  UntilClose,  // responses only: read until the upstream closes
};

struct RequestHead {
  std::string method;  // "GET", "POST", ... (upper case, validated by llhttp)
  std::string target;  // origin-form request target as received: path[?query]
  std::string path;    // target before '?', still percent-encoded
  std::string query;   // after '?', without it (may be empty)
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;  // every header in order, as received
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;  // when body == Length
  bool keep_alive = true;       // HTTP/1.1 default, "Connection: close", HTTP/1.0 + keep-alive
  bool has_upgrade = false;     // an Upgrade header is present (dockerd upgrades on any value)
  bool expect_continue = false; // "Expect: 100-continue"

  // First header with this name (case-insensitive), or nullptr.
  const std::string* find(std::string_view name) const;
};

struct ResponseHead {
  int status = 0;
  std::string reason;
  int version_major = 1;
  int version_minor = 1;
  std::vector<Header> headers;
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;  // when body == Length; also the announced length of a HEAD answer (body None)
  bool keep_alive = true;  // the upstream connection may be reused afterwards

  const std::string* find(std::string_view name) const;
};

// True for headers that are hop-by-hop (RFC 9110 7.6.1) and never forwarded as received:
// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade,
// Proxy-Authorization, Proxy-Authenticate, plus any header named in a Connection header.
bool is_hop_by_hop(std::string_view name);

}  // namespace dg::http
