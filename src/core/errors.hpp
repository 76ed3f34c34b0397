// The one error table: every error dockgate answers a client with, its HTTP status and the
// Docker-style message. Generated from one list (proxygen-style X-macro) so code, status and text
// cannot drift apart.
#pragma once

#include <string>
#include <string_view>

namespace dg {

// X(code, status, message)
#define DG_ERRORS(X)                                                                               \
  X(BadRequest, 400, "malformed HTTP request")                                                   \
  X(BadVersion, 505, "HTTP version not supported")                                                \
  X(BadMethod, 405, "method not allowed")                                                         \
  X(AbsoluteTarget, 400, "absolute-form request targets are not accepted")                        \
  X(Smuggling, 400, "conflicting Content-Length / Transfer-Encoding")                             \
  X(HeaderTooLarge, 431, "request header fields too large")                                       \
  X(HeaderTimeout, 408, "timed out reading the request header")                                   \
  X(Unauthorized, 401, "authentication required")                                                 \
  X(Forbidden, 403, "request denied by policy")                                                   \
  X(NotRouted, 403, "request does not match any Docker API operation")                            \
  X(BodyTooLarge, 413, "request body too large to inspect")                                       \
  X(BadBody, 400, "request body rejected")                                                        \
  X(UpstreamDown, 502, "cannot connect to the Docker daemon")                                     \
  X(UpstreamFailed, 502, "the Docker daemon closed the connection unexpectedly")                  \
  X(UpstreamBadResponse, 502, "the Docker daemon sent a malformed response")                      \
  X(ShuttingDown, 503, "dockgate is shutting down")                                               \
  X(Internal, 500, "internal error")

enum class Errc {
#define DG_ERR_ENUM(code, status, msg) code,
  DG_ERRORS(DG_ERR_ENUM)
#undef DG_ERR_ENUM
};

int errc_status(Errc e);
std::string_view errc_message(Errc e);
std::string_view errc_name(Errc e);
std::string_view status_reason(int status);

}  // namespace dg
