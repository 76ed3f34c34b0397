// `dockgate policy check|explain|test`: offline tools over a policy file. Each returns the process
// exit code (0 = fine / allowed / all passed, 1 = problems / denied / failures, 2 = usage or I/O).
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace dg::policy {

// Lints a policy: file:line:col errors (unknown keys, operation names...), then warnings for rules
// that can never matter.
int policy_check(const std::string& path, std::ostream& out);

// Decides one captured raw HTTP request (head + body as sent on the wire) for an identity and
// prints the operation, the decision, the rule, the reason and any mutated body.
// method: mtls | basic | bearer | peer | anonymous.
int policy_explain(const std::string& path, const std::string& identity, const std::vector<std::string>& groups,
                   const std::string& method, const std::string& listener, std::string_view raw_request,
                   std::ostream& out);

// Runs every *.cases fixture file under dir (format: docs/policy.md "Testing policies").
int policy_test(const std::string& dir, std::ostream& out);

}  // namespace dg::policy
