// Drivers that feed parsers the way the proxy does: keep unconsumed bytes, feed again after
// Head, reset after Done. Shared by the unit tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/parser.hpp"

namespace dg::http::test {

struct Collect : BodySink {
  std::string data;
  void on_body(const char* d, size_t n) override { data.append(d, n); }
};

struct ParsedRequest {
  RequestHead head;
  std::string body;
};

struct RequestRun {
  std::vector<ParsedRequest> messages;
  bool error = false;
  Errc errc = Errc::Internal;
  std::string detail;
  std::string leftover;  // bytes never consumed (after the last Done when stop_after_done)
};

// Feeds `pieces` in order. stop_after is the number of complete messages after which feeding
// stops (as a proxy does for a tunnel); 0 = never.
inline RequestRun run_requests(const std::vector<std::string_view>& pieces, size_t stop_after = 0,
                               ParserLimits limits = {}) {
  RequestRun run;
  RequestParser p(limits);
  Collect body;
  std::string pending;
  bool head_seen = false;
  bool stopped = false;
  for (auto piece : pieces) {
    pending.append(piece);
    if (stopped) continue;
    for (;;) {
      const FeedResult r = p.feed(pending.data(), pending.size(), &body);
      pending.erase(0, r.consumed);
      if (r.status == Status::More) break;
      if (r.status == Status::Error) {
        run.error = true;
        run.errc = p.error();
        run.detail = p.error_detail();
        run.leftover = pending;
        return run;
      }
      if (r.status == Status::Head) {
        head_seen = true;
        continue;
      }
      // Done
      run.messages.push_back({p.head(), body.data});
      body.data.clear();
      head_seen = false;
      if (stop_after != 0 && run.messages.size() == stop_after) {
        stopped = true;
        break;
      }
      p.reset_for_next();
    }
  }
  (void)head_seen;
  run.leftover = pending;
  return run;
}

inline RequestRun run_requests(std::string_view all, size_t stop_after = 0, ParserLimits limits = {}) {
  return run_requests(std::vector<std::string_view>{all}, stop_after, limits);
}

// Splits `s` into pieces of at most n bytes.
inline std::vector<std::string_view> pieces_of(std::string_view s, size_t n) {
  std::vector<std::string_view> v;
  for (size_t i = 0; i < s.size(); i += n) v.push_back(s.substr(i, n));
  return v;
}

inline std::vector<std::string_view> split_at(std::string_view s, size_t i) { return {s.substr(0, i), s.substr(i)}; }

}  // namespace dg::http::test

namespace dg::http::test {

struct ParsedResponse {
  ResponseHead head;
  std::string body;
};

struct ResponseRun {
  std::vector<ParsedResponse> messages;
  bool error = false;
  Errc errc = Errc::Internal;
  std::string detail;
  std::string leftover;
};

// methods[i] is the request method the i-th final response answers (1xx responses do not count).
// eof: call finish() after the last piece. stop_after: stop feeding after that many messages
// (1xx included), as the proxy does after a 101.
inline ResponseRun run_responses(const std::vector<std::string_view>& pieces, std::vector<std::string> methods,
                                 bool eof, size_t stop_after = 0, ParserLimits limits = {}) {
  ResponseRun run;
  ResponseParser p(limits);
  Collect body;
  std::string pending;
  size_t next_method = 0;
  auto expect = [&] { p.expect_response_to(next_method < methods.size() ? methods[next_method] : "GET"); };
  expect();
  bool stopped = false;
  auto on_status = [&](FeedResult r) {
    pending.erase(0, r.consumed);
    if (r.status == Status::Error) {
      run.error = true;
      run.errc = p.error();
      run.detail = p.error_detail();
      return false;
    }
    if (r.status == Status::Done) {
      const bool interim = p.head().status >= 100 && p.head().status < 200;
      run.messages.push_back({p.head(), body.data});
      body.data.clear();
      if (stop_after != 0 && run.messages.size() == stop_after) {
        stopped = true;
        return false;
      }
      p.reset_for_next();
      if (!interim) {
        ++next_method;
        expect();
      }
    }
    return r.status != Status::More;
  };
  for (auto piece : pieces) {
    pending.append(piece);
    if (stopped || run.error) continue;
    while (on_status(p.feed(pending.data(), pending.size(), &body))) {
    }
  }
  if (eof && !stopped && !run.error) {
    on_status(p.finish(&body));
  }
  run.leftover = pending;
  return run;
}

inline ResponseRun run_responses(std::string_view all, std::vector<std::string> methods, bool eof,
                                 size_t stop_after = 0) {
  return run_responses(std::vector<std::string_view>{all}, std::move(methods), eof, stop_after);
}

}  // namespace dg::http::test
