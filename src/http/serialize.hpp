// Serialising heads dockgate forwards, chunked framing, and dockgate's own responses.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/errors.hpp"
#include "http/message.hpp"

namespace dg::http {

struct ForwardRequestOptions {
  // How the body will be framed upstream (may differ from the client's when dockgate replaced
  // the body): None -> no framing headers; Length -> Content-Length: content_length;
  // Chunked -> Transfer-Encoding: chunked.
  BodyKind body = BodyKind::None;
  uint64_t content_length = 0;
  bool upgrade = false;              // tunnel route: send "Connection: Upgrade" + the client's Upgrade value
  std::string_view request_id;       // sent as X-Request-Id (replacing any from the client)
  bool drop_authorization = true;    // dockerd never sees the client's credentials
  std::vector<Header> extra;         // added at the end
};

// Request line (HTTP/1.1 always; target as given) + end-to-end headers of `head` (hop-by-hop,
// framing, Authorization (if asked), X-Request-Id and Expect dropped: dockgate answers
// 100-continue itself) + options; "Host: docker" when the client sent none. Always keeps the upstream
// connection alive unless upgrade.
std::string serialize_request(const RequestHead& head, std::string_view target, const ForwardRequestOptions& opt);

struct ForwardResponseOptions {
  BodyKind body = BodyKind::None;  // framing towards the client
  uint64_t content_length = 0;
  bool keep_alive = true;          // false -> "Connection: close"
  bool upgrade = false;            // 101 / hijack: keep Connection/Upgrade headers as dockerd sent them
  std::string_view request_id;
  int client_version_minor = 1;    // HTTP/1.0 clients get no chunked encoding (caller chooses UntilClose)
};

// Status line + end-to-end headers of the upstream response + framing per options.
std::string serialize_response(const ResponseHead& head, const ForwardResponseOptions& opt);

// Chunked framing.
void append_chunk_header(std::string& out, size_t len);  // "<hex>\r\n"
inline constexpr std::string_view kChunkEnd = "\r\n";
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// A complete dockgate response with a Docker-style JSON body {"message":"dockgate: <text>"}.
// extra headers (e.g. WWW-Authenticate) are added; close adds "Connection: close".
std::string error_response(int status, std::string_view text, bool close, std::string_view request_id = {},
                           const std::vector<Header>& extra = {});
std::string error_response(Errc code, std::string_view detail, bool close, std::string_view request_id = {});

}  // namespace dg::http
