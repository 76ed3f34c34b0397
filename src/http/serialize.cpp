#include "http/serialize.hpp"

#include <charconv>

#include "core/strings.hpp"

namespace dg::http {
namespace {

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

void append_uint(std::string& out, uint64_t n) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

void append_length_header(std::string& out, uint64_t n) {
  out.append("Content-Length: ");
  append_uint(out, n);
  out.append("\r\n", 2);
}

// Headers we write ourselves come from code and plugins, not the parser: refuse anything that
// could split the head (CR, LF, NUL) rather than trusting every caller.
bool safe_field(std::string_view s) {
  for (char c : s)
    if (c == '\r' || c == '\n' || c == '\0') return false;
  return true;
}

void append_extra(std::string& out, const std::vector<Header>& extra) {
  for (const auto& h : extra)
    if (!h.name.empty() && safe_field(h.name) && safe_field(h.value)) append_header(out, h.name, h.value);
}

// Tokens of every Connection header: those names are hop-by-hop for this message (RFC 9110 7.6.1).
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const std::vector<Header>& headers) {
    for (const auto& h : headers) {
      if (!iequals(h.name, "Connection")) continue;
      std::string_view v = h.value;
      while (!v.empty()) {
        const size_t comma = v.find(',');
        const std::string_view tok = trim(v.substr(0, comma));
        if (!tok.empty()) tokens_.push_back(tok);
        if (comma == std::string_view::npos) break;
        v.remove_prefix(comma + 1);
      }
    }
  }
  bool named(std::string_view name) const {
    for (auto t : tokens_)
      if (iequals(t, name)) return true;
    return false;
  }

 private:
  std::vector<std::string_view> tokens_;
};

size_t headers_size(const std::vector<Header>& headers) {
  size_t n = 0;
  for (const auto& h : headers) n += h.name.size() + h.value.size() + 4;
  return n;
}

}  // namespace

std::string serialize_request(const RequestHead& head, std::string_view target, const ForwardRequestOptions& opt) {
  std::string out;
  out.reserve(head.method.size() + target.size() + headers_size(head.headers) + headers_size(opt.extra) + 128);
  out.append(head.method);
  out.push_back(' ');
  out.append(target);
  out.append(" HTTP/1.1\r\n");

  const ConnectionTokens conn(head.headers);
  const std::string* upgrade_value = nullptr;
  bool host_written = false;
  for (const auto& h : head.headers) {
    const std::string_view n = h.name;
    if (is_hop_by_hop(n)) {
      if (upgrade_value == nullptr && iequals(n, "Upgrade")) upgrade_value = &h.value;
      continue;
    }
    if (iequals(n, "Content-Length") || iequals(n, "X-Request-Id")) continue;
    // dockgate answers Expect itself (100 only after the policy allowed the request) and sends
    // the body right away, so dockerd must not produce a second interim response.
    if (iequals(n, "Expect")) continue;
    if (opt.drop_authorization && iequals(n, "Authorization")) continue;
    if (conn.named(n)) continue;
    if (iequals(n, "Host")) {
      if (host_written) continue;  // the parser refuses duplicates; never forward two anyway
      host_written = true;
    }
    append_header(out, n, h.value);
  }
  // HTTP/1.1 requires Host; dockerd ignores its value.
  if (!host_written) out.append("Host: docker\r\n");

  switch (opt.body) {
    case BodyKind::Length: append_length_header(out, opt.content_length); break;
    case BodyKind::Chunked: out.append("Transfer-Encoding: chunked\r\n"); break;
    case BodyKind::None:
    case BodyKind::UntilClose: break;  // a request cannot be close-delimited: no framing = no body
  }
  if (opt.upgrade) {
    out.append("Connection: Upgrade\r\n");
    if (upgrade_value != nullptr) append_header(out, "Upgrade", *upgrade_value);
  }
  if (!opt.request_id.empty() && safe_field(opt.request_id)) append_header(out, "X-Request-Id", opt.request_id);
  append_extra(out, opt.extra);
  out.append("\r\n", 2);
  return out;
}

std::string serialize_response(const ResponseHead& head, const ForwardResponseOptions& opt) {
  std::string out;
  out.reserve(head.reason.size() + headers_size(head.headers) + 128);
  // Go answers HTTP/1.0 clients with an HTTP/1.1 status line too.
  out.append("HTTP/1.1 ");
  append_uint(out, static_cast<uint64_t>(head.status));
  out.push_back(' ');
  out.append(head.reason);
  out.append("\r\n", 2);

  const ConnectionTokens conn(head.headers);
  for (const auto& h : head.headers) {
    const std::string_view n = h.name;
    const bool tunnel_header = opt.upgrade && (iequals(n, "Connection") || iequals(n, "Upgrade"));
    if (!tunnel_header) {
      if (is_hop_by_hop(n) || iequals(n, "Content-Length") || conn.named(n)) continue;
    }
    if (!opt.request_id.empty() && iequals(n, "X-Request-Id")) continue;
    append_header(out, n, h.value);
  }

  switch (opt.body) {
    case BodyKind::Length: append_length_header(out, opt.content_length); break;
    case BodyKind::Chunked: out.append("Transfer-Encoding: chunked\r\n"); break;
    case BodyKind::None:
    case BodyKind::UntilClose: break;
  }
  if (!opt.upgrade) {
    if (!opt.keep_alive) {
      out.append("Connection: close\r\n");
    } else if (opt.client_version_minor == 0) {
      // An HTTP/1.0 client closes by default; tell it the connection stays open (as Go does).
      out.append("Connection: keep-alive\r\n");
    }
  }
  if (!opt.request_id.empty() && safe_field(opt.request_id)) append_header(out, "X-Request-Id", opt.request_id);
  out.append("\r\n", 2);
  return out;
}

void append_chunk_header(std::string& out, size_t len) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, len, 16);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
  out.append("\r\n", 2);
}

std::string error_response(int status, std::string_view text, bool close, std::string_view request_id,
                           const std::vector<Header>& extra) {
  const std::string body = docker_error_body(text);
  std::string out;
  out.reserve(body.size() + headers_size(extra) + 160);
  out.append("HTTP/1.1 ");
  append_uint(out, static_cast<uint64_t>(status));
  out.push_back(' ');
  out.append(status_reason(status));
  out.append("\r\nContent-Type: application/json\r\n");
  append_length_header(out, body.size());
  if (!request_id.empty() && safe_field(request_id)) append_header(out, "X-Request-Id", request_id);
  append_extra(out, extra);
  if (close) out.append("Connection: close\r\n");
  out.append("\r\n", 2);
  out.append(body);
  return out;
}

std::string error_response(Errc code, std::string_view detail, bool close, std::string_view request_id) {
  std::string text(errc_message(code));
  if (!detail.empty()) {
    text += ": ";
    text += detail;
  }
  return error_response(errc_status(code), text, close, request_id);
}

}  // namespace dg::http
