// Test helpers: request heads, identities and policies from text.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "policy/policy.hpp"

namespace dg::policy::test {

inline http::RequestHead head(std::string method, std::string target, std::string body = "",
                              std::string content_type = "application/json") {
  http::RequestHead h;
  h.method = std::move(method);
  h.target = target;
  size_t q = target.find('?');
  h.path = target.substr(0, q);
  h.query = q == std::string::npos ? "" : target.substr(q + 1);
  if (!body.empty()) {
    h.body = http::BodyKind::Length;
    h.content_length = body.size();
    if (!content_type.empty()) h.headers.push_back({"Content-Type", content_type});
  }
  return h;
}

inline auth::Identity who(std::string name, std::vector<std::string> groups = {},
                          config::AuthMethod m = config::AuthMethod::Mtls, std::string listener = "main") {
  auth::Identity i;
  i.name = std::move(name);
  i.groups = std::move(groups);
  i.method = m;
  i.listener = std::move(listener);
  return i;
}

inline std::shared_ptr<const Policy> load(const std::string& yaml) {
  auto p = Policy::load_text(yaml, "test.yaml");
  if (!p) FAIL(p.error().str());
  return *p;
}

inline std::shared_ptr<const Policy> load_file(const std::string& rel) {
  auto p = Policy::load(std::string(DG_SOURCE_ROOT) + "/" + rel);
  if (!p) FAIL(p.error().str());
  return *p;
}

// Routes and judges one request (reading the body when the policy asks for it).
inline Decision decide(const Policy& p, const auth::Identity& w, const std::string& method, const std::string& target,
                       const std::string& body = "", const std::string& ct = "application/json") {
  auto h = head(method, target, body, ct);
  auto r = p.route(h);
  if (!r.ok) {
    Decision d;
    d.status = r.status;
    d.reason = r.reason;
    return d;
  }
  std::optional<std::string_view> b;
  if (p.needs_body(w, r.op, h)) b = std::string_view(body);
  return p.judge(w, r.op, h, b);
}

}  // namespace dg::policy::test
