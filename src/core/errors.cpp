#include "core/errors.hpp"

namespace dg {

int errc_status(Errc e) {
  switch (e) {
#define DG_ERR_CASE(code, status, msg) \
  case Errc::code:                     \
    return status;
    DG_ERRORS(DG_ERR_CASE)
#undef DG_ERR_CASE
  }
  return 500;
}

std::string_view errc_message(Errc e) {
  switch (e) {
#define DG_ERR_CASE(code, status, msg) \
  case Errc::code:                     \
    return msg;
    DG_ERRORS(DG_ERR_CASE)
#undef DG_ERR_CASE
  }
  return "internal error";
}

std::string_view errc_name(Errc e) {
  switch (e) {
#define DG_ERR_CASE(code, status, msg) \
  case Errc::code:                     \
    return #code;
    DG_ERRORS(DG_ERR_CASE)
#undef DG_ERR_CASE
  }
  return "Internal";
}

std::string_view status_reason(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace dg
