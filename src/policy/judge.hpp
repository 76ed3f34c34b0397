// Phase 6 internals: constraint checks of one rule against one request.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/canonical.hpp"
#include "policy/compiled.hpp"
#include "policy/gojson.hpp"

namespace dg::policy {

// One request as the constraint checks see it; query and body are parsed on first use.
class RequestView {
 public:
  RequestView(const auth::Identity& who, const Operation& op, const http::RequestHead& head,
              std::optional<std::string_view> body)
      : who_(who), op_(op), head_(head), body_(body) {}

  const auth::Identity& who() const { return who_; }
  const Operation& op() const { return op_; }
  const http::RequestHead& head() const { return head_; }
  std::optional<std::string_view> raw_body() const { return body_; }
  const QueryParams& query();
  // The parsed body; nullptr with error() set when it is missing or refused.
  const gojson::Doc* doc();
  const std::string& body_error() const { return body_error_; }

 private:
  const auth::Identity& who_;
  const Operation& op_;
  const http::RequestHead& head_;
  std::optional<std::string_view> body_;
  bool query_done_ = false;
  QueryParams query_;
  bool doc_done_ = false;
  bool doc_ok_ = false;
  gojson::Doc doc_;
  std::string body_error_;
};

// Values injected into the body: JSON members appended to the top-level object (Go: last wins,
// structs, non-nil struct pointers and maps merge), HostConfig members appended as one more
// "HostConfig" object, labels as one more labels map, and one more object for another top-level
// struct member (ServiceSpec "TaskTemplate"). Member names the client already used are appended in
// the client's spelling (labels_key, nested_key and the names inside `nested`), so that the body
// has one spelling per field, which both Go and gojson merge.
struct Mutation {
  std::string top;  // `"User":"1000"` ... comma-separated
  std::string hc;   // `"Memory":536870912` ...
  std::string labels;  // `"k":"v"` ... for the top-level labels map
  std::string labels_key;  // its member name; empty = "Labels"
  std::string nested_key;  // e.g. "TaskTemplate"
  std::string nested;      // its members: `"Resources":{"Limits":{"MemoryBytes":536870912}}` ...
  bool empty() const { return top.empty() && hc.empty() && labels.empty() && nested.empty(); }
};

// The injected members, for a message (`"User":"1000", HostConfig "Memory":536870912`,
// `TaskTemplate "Resources":{...}`), shortened.
std::string mutation_summary(const Mutation& m);

// Checks a constrained rule that allows the operation. nullopt = fine (mutation may be filled).
std::optional<Violation> check_rule(const CompiledRule& rule, RequestView& req, Mutation& mut);

// Applies a mutation to a JSON object body (already validated). Returns the new body.
std::string apply_mutation(std::string_view body, const Mutation& mut, bool body_is_empty_object);

}  // namespace dg::policy
