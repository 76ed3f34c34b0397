// llhttp wrapper. llhttp does the byte-level state machine; on top of it we enforce what a
// security boundary in front of dockerd needs and llhttp 8.1 (built without LLHTTP_STRICT_MODE)
// lets through: bare LF / bare CR / obs-fold (a byte scan of the head), TE + CL, TE on HTTP/1.0,
// non-"chunked" transfer codings, duplicate framing headers, absolute/asterisk/authority-form
// targets, versions other than 1.0/1.1, and HTTP/1.1 without exactly one valid Host.
#include "http/parser.hpp"

#include <llhttp.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/strings.hpp"

namespace dg::http {
namespace {

enum class Phase { Head, Body, Done, Error };

// Go's httpguts.ValidHostHeader byte set: dockerd answers 400 for anything else.
bool valid_host_byte(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!': case '$': case '%': case '&': case '\'': case '(': case ')': case '*': case '+':
    case ',': case '-': case '.': case ':': case ';': case '=': case '[': case ']': case '_':
    case '~':
      return true;
    default:
      return false;
  }
}

// Strict decimal: digits only, no sign, no overflow. llhttp checks too; we keep our own value so
// framing never depends on llhttp's field, which chunk sizes later overwrite.
bool parse_length(std::string_view v, uint64_t& out) {
  if (v.empty()) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - d) / 10) return false;
    n = n * 10 + d;
  }
  out = n;
  return true;
}

// Calls f(token) for each comma-separated, trimmed, non-empty token of a list header value.
template <class F>
void for_each_token(std::string_view v, F&& f) {
  while (!v.empty()) {
    const size_t comma = v.find(',');
    const std::string_view tok = trim(v.substr(0, comma));
    if (!tok.empty()) f(tok);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// RFC 9110 tchar, as a table: this runs over every header name.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!kTokenChars[c]) return false;
  return true;
}

bool method_allowed(std::string_view m) {
  switch (m.size()) {
    case 3: return m == "GET" || m == "PUT";
    case 4: return m == "HEAD" || m == "POST";
    case 5: return m == "PATCH";
    case 6: return m == "DELETE";
    case 7: return m == "OPTIONS";
    default: return false;
  }
}

// What the head says about framing and connection handling, collected in one pass.
struct HeadFacts {
  int host_count = 0;
  const std::string* host = nullptr;
  int cl_count = 0;
  uint64_t cl = 0;
  bool cl_valid = true;
  int te_count = 0;
  bool te_chunked = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool has_upgrade = false;
  bool expect_continue = false;
  bool expect_other = false;
};

HeadFacts collect_facts(const std::vector<Header>& headers) {
  HeadFacts f;
  for (const auto& h : headers) {
    const std::string_view n = h.name;
    switch (n.size()) {
      case 4:
        if (iequals(n, "Host")) {
          ++f.host_count;
          f.host = &h.value;
        }
        break;
      case 6:
        if (iequals(n, "Expect")) {
          if (iequals(h.value, "100-continue"))
            f.expect_continue = true;
          else
            f.expect_other = true;
        }
        break;
      case 7:
        if (iequals(n, "Upgrade")) f.has_upgrade = true;
        break;
      case 10:
        if (iequals(n, "Connection")) {
          for_each_token(h.value, [&](std::string_view t) {
            if (iequals(t, "close")) f.conn_close = true;
            else if (iequals(t, "keep-alive")) f.conn_keep_alive = true;
          });
        }
        break;
      case 14:
        if (iequals(n, "Content-Length")) {
          ++f.cl_count;
          if (!parse_length(h.value, f.cl)) f.cl_valid = false;
        }
        break;
      case 17:
        if (iequals(n, "Transfer-Encoding")) {
          ++f.te_count;
          f.te_chunked = iequals(h.value, "chunked");
        }
        break;
      default:
        break;
    }
  }
  return f;
}

template <class HeadT>
class Engine {
 public:
  static constexpr bool kRequest = std::is_same_v<HeadT, RequestHead>;

  explicit Engine(ParserLimits limits) : limits_(limits) {
    llhttp_init(&parser_, kRequest ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
    parser_.data = this;  // headers are reserved at the first one: an idle connection holds none
    if constexpr (kRequest) errc_ = Errc::BadRequest;
    else errc_ = Errc::UpstreamBadResponse;
  }
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  FeedResult feed(const char* data, size_t len, BodySink* sink) {
    if (phase_ == Phase::Error) return {Status::Error, 0};
    if (phase_ == Phase::Done) return {Status::Done, 0};
    // llhttp computes data + len; keep that defined for an empty feed.
    static const char kEmpty[1] = {0};
    if (data == nullptr) {
      data = kEmpty;
      len = 0;
    }
    sink_ = sink;
    if (llhttp_get_errno(&parser_) == HPE_PAUSED) llhttp_resume(&parser_);

    if (phase_ == Phase::Head) return feed_head(data, len);

    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    sink_ = nullptr;
    if (err == HPE_OK) return {Status::More, len};
    if ((err == HPE_PAUSED && msg_done_) || err == HPE_PAUSED_UPGRADE) {
      phase_ = Phase::Done;
      return {Status::Done, static_cast<size_t>(llhttp_get_error_pos(&parser_) - data)};
    }
    return fail_from_llhttp(err);
  }

  // Responses only: the upstream closed.
  FeedResult finish(BodySink* sink) {
    if (phase_ == Phase::Error) return {Status::Error, 0};
    if (phase_ == Phase::Done) return {Status::Done, 0};
    if (phase_ == Phase::Head)
      return fail(Errc::UpstreamFailed, head_bytes_ == 0 ? "connection closed before a response"
                                                         : "connection closed inside the response head");
    // Still paused right after the head: let llhttp choose the body state first (a body-less
    // message completes here).
    if (llhttp_get_errno(&parser_) == HPE_PAUSED) {
      const FeedResult r = feed(nullptr, 0, sink);
      if (r.status != Status::More) return r;
    }
    sink_ = sink;
    const llhttp_errno_t err = llhttp_finish(&parser_);
    sink_ = nullptr;
    if (err == HPE_PAUSED && msg_done_) {
      phase_ = Phase::Done;
      return {Status::Done, 0};
    }
    return fail(Errc::UpstreamFailed, "connection closed before the response body was complete");
  }

  void reset_for_next() {
    llhttp_reset(&parser_);  // keeps settings and data; drops any pause
    // Only a 1xx answers no request: the final response still answers the same method.
    if constexpr (!kRequest) {
      if (!(head_.status >= 100 && head_.status < 200)) expect_method_.clear();
    }
    recycle_headers();
    if constexpr (kRequest) {
      head_.method.clear();
      head_.target.clear();
      head_.path.clear();
      head_.query.clear();
      head_.has_upgrade = false;
      head_.expect_continue = false;
    } else {
      head_.status = 0;
      head_.reason.clear();
    }
    head_.version_major = 1;
    head_.version_minor = 1;
    head_.body = BodyKind::None;
    head_.content_length = 0;
    head_.keep_alive = true;
    phase_ = Phase::Head;
    head_bytes_ = 0;
    cr_count_ = lf_count_ = 0;
    last_byte_ = 0;
    head_complete_ = msg_done_ = in_field_ = own_error_ = skip_body_ = start_line_done_ = false;
    start_line_.clear();
    detail_.clear();
  }

  void expect_response_to(std::string_view method) { expect_method_.assign(method); }

  HeadT& head() { return head_; }
  Errc error() const { return errc_; }
  const std::string& error_detail() const { return detail_; }

 private:
  FeedResult feed_head(const char* data, size_t len) {
    // Never hand llhttp more head bytes than the limit: bounds work and memory per connection.
    const size_t room = limits_.max_header_bytes - head_bytes_;
    const size_t n = std::min(len, room);
    const llhttp_errno_t err = llhttp_execute(&parser_, data, n);
    if (err != HPE_OK && !(err == HPE_PAUSED && head_complete_)) return fail_from_llhttp(err);
    const size_t used = err == HPE_OK ? n : static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
    if (!scan_head_bytes(data, used)) return {Status::Error, 0};
    head_bytes_ += used;
    if (head_complete_) {
      if (!finish_head()) return {Status::Error, 0};
      phase_ = Phase::Body;
      return {Status::Head, used};
    }
    if (head_bytes_ >= limits_.max_header_bytes)
      return fail(kRequest ? Errc::HeaderTooLarge : Errc::UpstreamBadResponse, "message head too large");
    return {Status::More, used};
  }

  // llhttp (non-strict build) tolerates bare LF and similar; dockerd's Go parser differs in
  // other ways. Require CRLF everywhere, no obs-fold, no NUL, no leading empty lines.
  bool scan_head_bytes(const char* d, size_t n) {
    if (n == 0) return true;
    if (head_bytes_ == 0 && (d[0] == '\r' || d[0] == '\n')) return fail_b("empty line before the start line");
    if (last_byte_ == '\r' && d[0] != '\n') return fail_b("bare CR in message head");
    if (last_byte_ == '\n' && (d[0] == ' ' || d[0] == '\t')) return fail_b("obsolete line folding");
    if (std::memchr(d, 0, n) != nullptr) return fail_b("NUL in message head");
    const char* end = d + n;
    if (!start_line_done_) {
      const char* lf = static_cast<const char*>(std::memchr(d, '\n', n));
      start_line_.append(d, lf != nullptr ? static_cast<size_t>(lf - d + 1) : n);
      start_line_done_ = lf != nullptr;
    }
    for (const char* p = d; (p = static_cast<const char*>(std::memchr(p, '\n', end - p))) != nullptr; ++p) {
      const char prev = p == d ? last_byte_ : p[-1];
      if (prev != '\r') return fail_b("bare LF in message head");
      if (p + 1 < end && (p[1] == ' ' || p[1] == '\t')) return fail_b("obsolete line folding");
      ++lf_count_;
    }
    // Every LF has a CR right before it, so equal counts at the end of the head mean no CR
    // stands alone (checked in finish_head). memchr: a head has few lines and libc's is SIMD.
    for (const char* p = d; (p = static_cast<const char*>(std::memchr(p, '\r', end - p))) != nullptr; ++p)
      ++cr_count_;
    last_byte_ = end[-1];
    return true;
  }

  bool finish_head() {
    head_.version_major = parser_.http_major;
    head_.version_minor = parser_.http_minor;
    if (!version_ok()) return false;
    if constexpr (!kRequest) head_.status = parser_.status_code;
    if (cr_count_ != lf_count_) return fail_b("bare CR in message head");
    if (!start_line_exact()) return fail_b(kRequest ? "malformed request line" : "malformed status line");
    for (auto& h : head_.headers)
      if (!is_token(h.name)) return fail_b("invalid header name");
    const HeadFacts f = collect_facts(head_.headers);
    if constexpr (kRequest) return finish_request(f);
    else return finish_response(f);
  }

  // llhttp accepts runs of spaces and RTSP/ as the protocol; Go splits on single spaces and
  // wants HTTP/. Rebuild the canonical start line from the parse and require the exact bytes.
  bool start_line_exact() const {
    const std::string_view line = start_line_;
    const char minor = static_cast<char>('0' + head_.version_minor);
    if constexpr (kRequest) {
      const std::string_view m = head_.method, t = head_.target;
      if (line.size() != m.size() + t.size() + 12) return false;
      size_t i = 0;
      if (line.substr(i, m.size()) != m || line[i + m.size()] != ' ') return false;
      i += m.size() + 1;
      if (line.substr(i, t.size()) != t) return false;
      i += t.size();
      return line.substr(i, 8) == " HTTP/1." && line[i + 8] == minor && line.substr(i + 9) == "\r\n";
    } else {
      if (line.size() < 14 || line.substr(0, 7) != "HTTP/1." || line[7] != minor || line[8] != ' ') return false;
      const int s = head_.status;
      if (line[9] != '0' + s / 100 || line[10] != '0' + s / 10 % 10 || line[11] != '0' + s % 10) return false;
      const std::string_view rest = line.substr(12);
      if (rest == "\r\n") return head_.reason.empty();
      return rest.size() == head_.reason.size() + 3 && rest[0] == ' ' && rest.substr(1, head_.reason.size()) == head_.reason;
    }
  }

  bool version_ok() {
    if (parser_.http_major == 1 && (parser_.http_minor == 0 || parser_.http_minor == 1)) return true;
    return fail_b(kRequest ? Errc::BadVersion : Errc::UpstreamBadResponse, "unsupported HTTP version");
  }

  bool finish_request(const HeadFacts& f) {
    RequestHead& h = head_;
    if (!method_allowed(h.method)) return fail_b(Errc::BadMethod, "method not accepted");
    if (h.target.empty()) return fail_b("empty request target");  // checked in full by on_url_complete
    const bool http11 = h.version_minor == 1;
    if (f.host_count > 1) return fail_b("too many Host headers");
    if (http11 && f.host_count == 0) return fail_b("missing required Host header");
    if (f.host != nullptr) {
      for (unsigned char c : *f.host)
        if (!valid_host_byte(c)) return fail_b("malformed Host header");
    }
    if (f.expect_other) return fail_b("unsupported Expect header");
    if (f.te_count > 0) {
      if (f.cl_count > 0) return fail_b(Errc::Smuggling, "Transfer-Encoding with Content-Length");
      // Go ignores Transfer-Encoding on HTTP/1.0 and would frame by length: refuse the ambiguity.
      if (!http11) return fail_b(Errc::Smuggling, "Transfer-Encoding on HTTP/1.0");
      if (f.te_count > 1 || !f.te_chunked) return fail_b("unsupported Transfer-Encoding");
      h.body = BodyKind::Chunked;
    } else if (f.cl_count > 1) {
      return fail_b(Errc::Smuggling, "multiple Content-Length headers");
    } else if (f.cl_count == 1) {
      if (!f.cl_valid) return fail_b("invalid Content-Length");
      h.content_length = f.cl;
      h.body = f.cl == 0 ? BodyKind::None : BodyKind::Length;
    } else {
      h.body = BodyKind::None;
    }
    if (!framing_agrees(h.body, h.content_length)) return false;
    h.keep_alive = http11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
    h.has_upgrade = f.has_upgrade;
    h.expect_continue = f.expect_continue;
    const size_t q = h.target.find('?');
    if (q == std::string::npos) {
      h.path = h.target;
      h.query.clear();
    } else {
      h.path.assign(h.target, 0, q);
      h.query.assign(h.target, q + 1);
    }
    return true;
  }

  bool finish_response(const HeadFacts& f) {
    ResponseHead& h = head_;
    if (h.status < 100 || h.status > 599) return fail_b("invalid status code");
    const bool http11 = h.version_minor == 1;
    if (f.cl_count > 1) return fail_b("multiple Content-Length headers");
    if (f.cl_count == 1 && !f.cl_valid) return fail_b("invalid Content-Length");
    if (f.te_count > 0 && f.cl_count > 0) return fail_b("Transfer-Encoding with Content-Length");
    if (f.te_count > 0 && (!http11 || f.te_count > 1 || !f.te_chunked)) return fail_b("unsupported Transfer-Encoding");
    if (f.cl_count == 1) h.content_length = f.cl;  // kept for HEAD answers too
    if (skip_body_) {
      h.body = BodyKind::None;
    } else if (f.te_count > 0) {
      h.body = BodyKind::Chunked;
    } else if (f.cl_count == 1) {
      h.body = BodyKind::Length;
    } else {
      h.body = BodyKind::UntilClose;
    }
    if (!skip_body_ && !framing_agrees(h.body, h.content_length)) return false;
    h.keep_alive = (http11 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close)) &&
                   h.body != BodyKind::UntilClose && h.status != 101;
    return true;
  }

  // Defence in depth: our reading of the framing headers must match llhttp's, which frames the body.
  bool framing_agrees(BodyKind body, uint64_t cl) {
    const bool ll_chunked = (parser_.flags & F_CHUNKED) != 0;
    const bool ll_cl = (parser_.flags & F_CONTENT_LENGTH) != 0;
    bool ok = ll_chunked == (body == BodyKind::Chunked);
    if (body == BodyKind::Length) ok = ok && ll_cl && parser_.content_length == cl;
    if (body == BodyKind::None && ll_cl) ok = ok && parser_.content_length == 0;
    if (ok) return true;
    return fail_b(kRequest ? Errc::Smuggling : Errc::UpstreamBadResponse, "ambiguous message framing");
  }

  bool check_target() {
    const std::string& t = head_.target;
    if (t.empty()) return fail_b("empty request target");
    if (t[0] != '/') {
      if (t.find("://") != std::string::npos) return fail_b(Errc::AbsoluteTarget, "absolute-form request target");
      if (t == "*") return fail_b("asterisk-form request target");
      return fail_b("request target must start with '/'");
    }
    for (unsigned char c : t) {
      if (c <= 0x20 || c == 0x7f) return fail_b("control character in request target");
      if (c == '#') return fail_b("fragment in request target");
    }
    return true;
  }

  // Header strings keep their capacity across keep-alive requests: parsing a head then costs
  // no allocation once a connection has seen one like it.
  void recycle_headers() {
    auto& hs = head_.headers;
    while (!hs.empty()) {
      spare_.push_back(std::move(hs.back()));
      hs.pop_back();
    }
  }
  void new_header() {
    auto& hs = head_.headers;
    if (hs.capacity() == 0) hs.reserve(16);
    if (spare_.empty()) {
      hs.emplace_back();
      return;
    }
    hs.push_back(std::move(spare_.back()));
    spare_.pop_back();
    hs.back().name.clear();
    hs.back().value.clear();
  }

  // ---- failure helpers ----
  FeedResult fail(Errc code, std::string_view why) {
    fail_b(code, why);
    return {Status::Error, 0};
  }
  bool fail_b(std::string_view why) { return fail_b(kRequest ? Errc::BadRequest : Errc::UpstreamBadResponse, why); }
  bool fail_b(Errc code, std::string_view why) {
    if (!kRequest && code != Errc::UpstreamFailed) code = Errc::UpstreamBadResponse;
    phase_ = Phase::Error;
    errc_ = code;
    detail_.assign(why);
    own_error_ = true;
    return false;
  }
  FeedResult fail_from_llhttp(llhttp_errno_t err) {
    sink_ = nullptr;
    if (own_error_) {  // a callback of ours refused and already said why
      phase_ = Phase::Error;
      return {Status::Error, 0};
    }
    Errc code = kRequest ? Errc::BadRequest : Errc::UpstreamBadResponse;
    if constexpr (kRequest) {
      switch (err) {
        case HPE_INVALID_METHOD: code = Errc::BadMethod; break;
        case HPE_INVALID_VERSION: code = Errc::BadVersion; break;
        case HPE_UNEXPECTED_CONTENT_LENGTH: code = Errc::Smuggling; break;
        default: break;
      }
    }
    const char* reason = llhttp_get_error_reason(&parser_);
    std::string why = llhttp_errno_name(err);
    if (reason != nullptr && *reason != '\0') {
      why += ": ";
      why += reason;
    }
    fail_b(code, why);
    return {Status::Error, 0};
  }

  // ---- llhttp callbacks ----
  static Engine& self(llhttp_t* p) { return *static_cast<Engine*>(p->data); }

  static int on_method(llhttp_t* p, const char* at, size_t n) {
    if constexpr (kRequest) self(p).head_.method.append(at, n);
    return 0;
  }
  static int on_method_complete(llhttp_t* p) {
    if constexpr (kRequest) {
      Engine& e = self(p);
      // Refuse before llhttp parses an authority-form CONNECT target.
      if (e.head_.method == "CONNECT") return e.fail_b("CONNECT is not supported") ? 0 : -1;
      if (!method_allowed(e.head_.method)) return e.fail_b(Errc::BadMethod, "method not accepted") ? 0 : -1;
    }
    return 0;
  }
  static int on_url(llhttp_t* p, const char* at, size_t n) {
    if constexpr (kRequest) self(p).head_.target.append(at, n);
    return 0;
  }
  static int on_url_complete(llhttp_t* p) {
    if constexpr (kRequest) return self(p).check_target() ? 0 : -1;
    return 0;
  }
  static int on_version_complete(llhttp_t* p) { return self(p).version_ok() ? 0 : -1; }
  static int on_status(llhttp_t* p, const char* at, size_t n) {
    if constexpr (!kRequest) self(p).head_.reason.append(at, n);
    return 0;
  }
  static int on_header_field(llhttp_t* p, const char* at, size_t n) {
    Engine& e = self(p);
    if (e.head_complete_) return 0;  // trailer fields: dropped
    if (!e.in_field_) {
      if (e.head_.headers.size() >= e.limits_.max_headers)
        return e.fail_b(kRequest ? Errc::HeaderTooLarge : Errc::UpstreamBadResponse, "too many header fields") ? 0 : -1;
      e.new_header();
      e.in_field_ = true;
    }
    e.head_.headers.back().name.append(at, n);
    return 0;
  }
  static int on_header_field_complete(llhttp_t* p) {
    self(p).in_field_ = false;
    return 0;
  }
  static int on_header_value(llhttp_t* p, const char* at, size_t n) {
    Engine& e = self(p);
    if (e.head_complete_ || e.head_.headers.empty()) return 0;
    e.head_.headers.back().value.append(at, n);
    return 0;
  }
  static int on_header_value_complete(llhttp_t* p) {
    Engine& e = self(p);
    if (e.head_complete_ || e.head_.headers.empty()) return 0;
    std::string& v = e.head_.headers.back().value;
    const std::string_view t = trim(v);
    if (t.size() != v.size()) {
      const size_t start = static_cast<size_t>(t.data() - v.data());
      const size_t len = t.size();
      v.erase(0, start);
      v.resize(len);
    }
    return 0;
  }
  static int on_headers_complete(llhttp_t* p) {
    Engine& e = self(p);
    e.head_complete_ = true;
    if constexpr (!kRequest) {
      // llhttp skips the body of 1xx/204/304 only when no length is given, and cannot know the
      // request was HEAD: mark them body-less ourselves (resuming continues at that check).
      const int s = p->status_code;
      e.skip_body_ = (s >= 100 && s < 200) || s == 204 || s == 304 || e.expect_method_ == "HEAD";
      if (e.skip_body_) p->flags |= F_SKIPBODY;
    }
    return HPE_PAUSED;
  }
  static int on_body(llhttp_t* p, const char* at, size_t n) {
    Engine& e = self(p);
    if (e.sink_ != nullptr) e.sink_->on_body(at, n);
    return 0;
  }
  static int on_message_complete(llhttp_t* p) {
    self(p).msg_done_ = true;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t st;
      llhttp_settings_init(&st);
      st.on_method = on_method;
      st.on_method_complete = on_method_complete;
      st.on_url = on_url;
      st.on_url_complete = on_url_complete;
      st.on_version_complete = on_version_complete;
      st.on_status = on_status;
      st.on_header_field = on_header_field;
      st.on_header_field_complete = on_header_field_complete;
      st.on_header_value = on_header_value;
      st.on_header_value_complete = on_header_value_complete;
      st.on_headers_complete = on_headers_complete;
      st.on_body = on_body;
      st.on_message_complete = on_message_complete;
      return st;
    }();
    return s;
  }

  ParserLimits limits_;
  llhttp_t parser_;
  HeadT head_;
  Phase phase_ = Phase::Head;
  Errc errc_;
  std::string detail_;
  std::string expect_method_;  // responses: the method of the request being answered
  BodySink* sink_ = nullptr;
  size_t head_bytes_ = 0;
  size_t cr_count_ = 0;  // in the head so far
  size_t lf_count_ = 0;
  char last_byte_ = 0;
  bool head_complete_ = false;
  bool msg_done_ = false;
  bool in_field_ = false;
  bool own_error_ = false;
  bool skip_body_ = false;
  bool start_line_done_ = false;
  std::string start_line_;  // raw start line incl. CRLF, checked against the parse
  std::vector<Header> spare_;  // recycled headers (see recycle_headers)
};

}  // namespace

struct RequestParser::Impl : Engine<RequestHead> {
  using Engine::Engine;
};
struct ResponseParser::Impl : Engine<ResponseHead> {
  using Engine::Engine;
};

RequestParser::RequestParser(ParserLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
RequestParser::~RequestParser() = default;
FeedResult RequestParser::feed(const char* data, size_t len, BodySink* sink) { return impl_->feed(data, len, sink); }
void RequestParser::reset_for_next() { impl_->reset_for_next(); }
const RequestHead& RequestParser::head() const { return impl_->head(); }
RequestHead& RequestParser::head() { return impl_->head(); }
Errc RequestParser::error() const { return impl_->error(); }
const std::string& RequestParser::error_detail() const { return impl_->error_detail(); }

ResponseParser::ResponseParser(ParserLimits limits) : impl_(std::make_unique<Impl>(limits)) {}
ResponseParser::~ResponseParser() = default;
void ResponseParser::expect_response_to(std::string_view method) { impl_->expect_response_to(method); }
FeedResult ResponseParser::feed(const char* data, size_t len, BodySink* sink) { return impl_->feed(data, len, sink); }
FeedResult ResponseParser::finish(BodySink* sink) { return impl_->finish(sink); }
void ResponseParser::reset_for_next() { impl_->reset_for_next(); }
const ResponseHead& ResponseParser::head() const { return impl_->head(); }
ResponseHead& ResponseParser::head() { return impl_->head(); }
Errc ResponseParser::error() const { return impl_->error(); }
const std::string& ResponseParser::error_detail() const { return impl_->error_detail(); }

}  // namespace dg::http
