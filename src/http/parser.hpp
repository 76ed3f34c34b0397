// Streaming HTTP/1.1 parser over llhttp, strict (no lenient flags).
//
// feed() consumes bytes and stops at the events the proxy acts on. Body bytes are delivered
// de-chunked to the BodySink as they are parsed (never buffered here). After Status::Head the
// parser is paused: the caller looks at head(), decides, then calls feed() again with the rest.
// After Status::Done the parser is paused at the message boundary; the caller either calls
// reset_for_next() (keep-alive / pipelining) or stops feeding (a tunnel: the remaining bytes are
// raw tunnel bytes, not HTTP).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/errors.hpp"
#include "http/message.hpp"

namespace dg::http {

class BodySink {
 public:
  virtual ~BodySink() = default;
  virtual void on_body(const char* data, size_t len) = 0;
};

enum class Status {
  More,   // all bytes consumed, need more input
  Head,   // a message head is complete (paused; consumed = bytes up to the end of the head)
  Done,   // a message is complete (paused; consumed = bytes up to the end of the message)
  Error,  // malformed; error() / error_detail() say why; the connection must be closed
};

struct FeedResult {
  Status status;
  size_t consumed;  // bytes of the input used; the rest must be fed again later
};

struct ParserLimits {
  uint32_t max_header_bytes = 64 * 1024;  // request line/status line + all headers
  uint32_t max_headers = 128;
};

class RequestParser {
 public:
  explicit RequestParser(ParserLimits limits = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  FeedResult feed(const char* data, size_t len, BodySink* sink);
  // After Status::Done: ready for the next pipelined request.
  void reset_for_next();

  const RequestHead& head() const;
  RequestHead& head();
  Errc error() const;                  // after Status::Error
  const std::string& error_detail() const;  // e.g. "invalid header value char"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class ResponseParser {
 public:
  explicit ResponseParser(ParserLimits limits = {});
  ~ResponseParser();
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Must be called before feeding each response: the method of the request it answers
  // (HEAD responses have no body whatever their headers say).
  void expect_response_to(std::string_view method);
  FeedResult feed(const char* data, size_t len, BodySink* sink);
  // The upstream closed: completes an UntilClose body (Status::Done) or reports a truncated
  // message (Status::Error).
  FeedResult finish(BodySink* sink);
  void reset_for_next();

  const ResponseHead& head() const;
  ResponseHead& head();
  Errc error() const;
  const std::string& error_detail() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace dg::http
