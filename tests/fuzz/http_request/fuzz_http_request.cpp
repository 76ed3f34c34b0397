// libFuzzer target: feeds the input to RequestParser and ResponseParser in pseudo-random split
// sizes (derived from the input, so runs are reproducible) and checks the invariants the proxy
// relies on. Build for fuzzing with clang: -fsanitize=fuzzer,address,undefined and this file +
// src/http + src/core/{errors,strings}.cpp + llhttp. replay_main.cpp runs the corpus as a test.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/parser.hpp"
#include "http/serialize.hpp"

using namespace dg::http;

namespace {

#define FUZZ_CHECK(cond)  \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

struct CountSink : BodySink {
  size_t bytes = 0;
  void on_body(const char* d, size_t n) override {
    FUZZ_CHECK(n == 0 || d != nullptr);
    bytes += n;
  }
};

// xorshift: cheap, deterministic split sizes.
struct Splitter {
  uint32_t s;
  size_t next(size_t left) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    const size_t pick = s % 4 == 0 ? 1 : (s >> 8) % 64 + 1;
    return pick < left ? pick : left;
  }
};

// Every head we accept must re-serialise into something we accept again, with the same meaning:
// the forwarded request is what dockerd sees, so this is the property that matters.
void check_round_trip(const RequestHead& h) {
  ForwardRequestOptions o;
  o.body = h.body;
  o.content_length = h.content_length;
  o.upgrade = h.has_upgrade;
  o.request_id = "fuzz";
  const std::string out = serialize_request(h, h.target, o);
  RequestParser p;
  const FeedResult r = p.feed(out.data(), out.size(), nullptr);
  FUZZ_CHECK(r.status == Status::Head);
  FUZZ_CHECK(r.consumed == out.size());
  FUZZ_CHECK(p.head().method == h.method);
  FUZZ_CHECK(p.head().target == h.target);
  FUZZ_CHECK(p.head().body == h.body);
  FUZZ_CHECK(p.head().content_length == h.content_length);
  FUZZ_CHECK(p.head().has_upgrade == h.has_upgrade);
}

void fuzz_requests(std::string_view in, uint32_t seed) {
  RequestParser p(ParserLimits{4096, 32});
  CountSink sink;
  Splitter split{seed | 1};
  std::string pending;
  size_t off = 0;
  int messages = 0;
  while (off < in.size()) {
    const size_t n = split.next(in.size() - off);
    pending.append(in.substr(off, n));
    off += n;
    for (;;) {
      const FeedResult r = p.feed(pending.data(), pending.size(), &sink);
      FUZZ_CHECK(r.consumed <= pending.size());
      pending.erase(0, r.consumed);
      if (r.status == Status::More) {
        FUZZ_CHECK(pending.empty());
        break;
      }
      if (r.status == Status::Error) {
        FUZZ_CHECK(!p.error_detail().empty());
        return;
      }
      if (r.status == Status::Head) {
        const RequestHead& h = p.head();
        FUZZ_CHECK(!h.target.empty() && h.target[0] == '/');
        FUZZ_CHECK(h.version_major == 1 && h.version_minor <= 1);
        FUZZ_CHECK(h.body != BodyKind::UntilClose);
        check_round_trip(h);
        continue;
      }
      // Done
      if (p.head().body == BodyKind::Length) FUZZ_CHECK(sink.bytes == p.head().content_length);
      if (p.head().body == BodyKind::None) FUZZ_CHECK(sink.bytes == 0);
      sink.bytes = 0;
      if (++messages > 64) return;
      p.reset_for_next();
    }
  }
}

void fuzz_responses(std::string_view in, uint32_t seed) {
  ResponseParser p(ParserLimits{4096, 32});
  CountSink sink;
  Splitter split{seed | 1};
  std::string pending;
  size_t off = 0;
  int messages = 0;
  auto expect = [&] { p.expect_response_to((seed >> messages) & 1 ? "HEAD" : "GET"); };
  expect();
  auto handle = [&](FeedResult r) -> int {  // 0 more, 1 continue, -1 stop
    FUZZ_CHECK(r.consumed <= pending.size());
    pending.erase(0, r.consumed);
    if (r.status == Status::More) return 0;
    if (r.status == Status::Error) return -1;
    if (r.status == Status::Head) {
      FUZZ_CHECK(p.head().status >= 100 && p.head().status <= 599);
      ForwardResponseOptions o;
      o.body = p.head().body;
      o.content_length = p.head().content_length;
      const std::string s = serialize_response(p.head(), o);
      FUZZ_CHECK(s.size() >= 17);
      return 1;
    }
    if (p.head().body == BodyKind::Length) FUZZ_CHECK(sink.bytes == p.head().content_length);
    if (p.head().body == BodyKind::None) FUZZ_CHECK(sink.bytes == 0);
    sink.bytes = 0;
    if (p.head().status == 101 || ++messages > 64) return -1;  // the rest would be tunnel bytes
    const bool interim = p.head().status < 200;
    p.reset_for_next();
    if (!interim) expect();
    return 1;
  };
  while (off < in.size()) {
    const size_t n = split.next(in.size() - off);
    pending.append(in.substr(off, n));
    off += n;
    for (;;) {
      const int h = handle(p.feed(pending.data(), pending.size(), &sink));
      if (h < 0) return;
      if (h == 0) break;
    }
  }
  handle(p.finish(&sink));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t seed = data[0] * 2654435761u;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  fuzz_requests(in, seed);
  fuzz_responses(in, seed);
  return 0;
}
