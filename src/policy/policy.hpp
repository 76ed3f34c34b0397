// The policy engine: route (phase 5) and judge (phase 6). No libuv; unit-tested on plain values.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/identity.hpp"
#include "config/config.hpp"
#include "http/message.hpp"

namespace dg::policy {

enum OpFlag : uint32_t {
  kReadOnly = 1u << 0,        // GET/HEAD that changes nothing (plus ContainerWait)
  kStreamResponse = 1u << 1,  // long-lived streamed response (logs -f, events, stats, wait, pull...)
  kUpload = 1u << 2,          // streamed upload (build context, load, import, put archive)
  kTunnel = 1u << 3,          // hijacked: after the request, raw bytes both ways
  kJsonBody = 1u << 4,        // takes a JSON body the policy may inspect
  kAlwaysAllow = 1u << 5,     // _ping
};

// A string kept in place up to kInline bytes (a request path with a full container ID fits) and
// on the heap beyond: routing a request allocates nothing for it.
class InlineString {
 public:
  static constexpr size_t kInline = 88;
  InlineString() = default;
  InlineString(std::string_view s) { assign(s); }  // NOLINT: implicit, like std::string
  InlineString(const InlineString& o) { assign(o.view()); }
  InlineString(InlineString&& o) noexcept : size_(o.size_), heap_(std::move(o.heap_)) {
    if (size_ <= kInline && size_) std::memcpy(buf_, o.buf_, size_);
    o.size_ = 0;
    o.heap_.clear();
  }
  InlineString& operator=(const InlineString& o) {
    if (this != &o) assign(o.view());
    return *this;
  }
  InlineString& operator=(InlineString&& o) noexcept {
    if (this != &o) {
      size_ = o.size_;
      heap_ = std::move(o.heap_);
      if (size_ <= kInline && size_) std::memcpy(buf_, o.buf_, size_);
      o.size_ = 0;
      o.heap_.clear();
    }
    return *this;
  }
  void assign(std::string_view s) {
    if (s.size() <= kInline) {
      if (!s.empty()) std::memmove(buf_, s.data(), s.size());  // s may view this string
      heap_.clear();
    } else {
      heap_.assign(s);
    }
    size_ = s.size();
  }
  InlineString& operator=(std::string_view s) {
    assign(s);
    return *this;
  }
  std::string_view view() const { return size_ <= kInline ? std::string_view(buf_, size_) : std::string_view(heap_); }
  operator std::string_view() const { return view(); }  // NOLINT: implicit
  std::string str() const { return std::string(view()); }
  const char* data() const { return view().data(); }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  friend bool operator==(const InlineString& a, std::string_view b) { return a.view() == b; }

 private:
  size_t size_ = 0;
  char buf_[kInline];
  std::string heap_;  // when size_ > kInline
};

struct Operation {
  std::string_view name;         // Engine API operation id, e.g. "ContainerCreate"
  uint32_t flags = 0;
  std::string api_version;       // "1.41", or "" when unversioned
  std::vector<std::pair<std::string, std::string>> params;  // decoded path params ("id" -> "abc")
  InlineString path;             // decoded canonical path without the version prefix
  int id = -1;                   // index in the route table's operation list (routes.hpp operations())
  bool tunnel() const { return flags & kTunnel; }
  const std::string* param(std::string_view key) const;
};

struct Routed {
  bool ok = false;
  Operation op;       // when ok
  int status = 403;   // when !ok (403 for unknown/ambiguous routes; 400 for malformed targets)
  std::string reason; // when !ok
};

struct Decision {
  bool allow = false;
  bool audit = false;                 // would have been denied, let through by audit mode
  int status = 403;                   // when !allow
  std::string rule;                   // the rule that decided ("" = default deny)
  std::string reason;                 // e.g. "HostConfig.Privileged is not allowed"
  std::optional<std::string> body;    // mutated body to forward instead of the client's
  // Message for the client: `rule "ci": HostConfig.Privileged is not allowed`.
  std::string message() const;
};

class Policy {
 public:
  // Loads and compiles a policy file; every problem reported as file:line:col.
  static tl::expected<std::shared_ptr<const Policy>, config::Diagnostics> load(const std::string& path);
  // Same from text in memory; `path` names the file in diagnostics.
  static tl::expected<std::shared_ptr<const Policy>, config::Diagnostics> load_text(const std::string& text,
                                                                                   const std::string& path);
  virtual ~Policy() = default;

  // Phase 5: canonicalise the target as dockerd's router would and map it to an operation.
  virtual Routed route(const http::RequestHead& head) const = 0;

  // Does judging this operation for this identity need the request body? (Only then is the
  // body read, up to max_body(); the rest is streamed unread.)
  virtual bool needs_body(const auth::Identity& who, const Operation& op, const http::RequestHead& head) const = 0;
  virtual uint64_t max_body() const = 0;

  // Phase 6. body: the complete request body when needs_body() said so (empty string for an
  // empty body), otherwise std::nullopt.
  virtual Decision judge(const auth::Identity& who, const Operation& op, const http::RequestHead& head,
                         std::optional<std::string_view> body) const = 0;
};

// Phase 5 without a policy: what every Policy::route() does (the route does not depend on the
// rules). Usable by tools and tests.
Routed route_request(const http::RequestHead& head);

}  // namespace dg::policy
