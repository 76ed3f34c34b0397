// The compiled form of a policy file (internal to src/policy/).
#pragma once

#include <bitset>
#include <memory>
#include <string>
#include <vector>

#include "config/policy_file.hpp"
#include "policy/images.hpp"
#include "policy/policy.hpp"

namespace dg::policy {

inline constexpr size_t kMaxOps = 160;
using OpSet = std::bitset<kMaxOps>;

struct CompiledRule {
  std::string name;
  config::Mark mark;
  std::vector<std::string> identities;  // empty = any; "*" = any
  std::vector<std::string> groups;
  std::vector<config::AuthMethod> methods;
  std::vector<std::string> listeners;
  OpSet allow, deny;
  bool audit = false;
  bool unrestricted = false;
  uint64_t cap_add = 0;   // bit per capability; ~0 = ALL
  uint64_t cap_drop = 0;  // required drops; ~0 = ALL
  bool cap_drop_all = false;
  config::PolicyRule src;  // constraint values
  // src.images.allow / deny, parsed once.
  std::vector<ImagePattern> image_allow, image_deny;

  bool matches(const auth::Identity& who) const;
};

struct CompiledPolicy {
  std::string path;
  bool audit = false;
  uint64_t max_body = 1 << 20;
  std::vector<CompiledRule> rules;
};

// Compiles typed policy structs; problems (unknown operation names...) go to diags.
std::shared_ptr<CompiledPolicy> compile(const config::PolicyFile& f, config::Diagnostics& diags);

// True when the operation's constraints read the JSON body.
bool body_operation(std::string_view op);

// Constraint checks for one allowing, constrained rule. Fills `reason`/`status` on violation and
// returns false; may add text to `inject` (JSON members appended to the top-level object).
struct JudgeInput;
struct Violation {
  int status = 403;
  std::string reason;
};

}  // namespace dg::policy
