// Everything a request is judged with, built as one immutable value at start and on SIGHUP and
// swapped atomically: an exchange keeps the snapshot it started with.
#pragma once

#include <memory>
#include <vector>

#include "auth/identity.hpp"
#include "config/config.hpp"
#include "core/result.hpp"
#include "policy/policy.hpp"
#include "tls/tls.hpp"

namespace dg::proxy {

struct Snapshot {
  std::shared_ptr<const config::Config> config;
  std::shared_ptr<const policy::Policy> policy;
  std::shared_ptr<const auth::Authenticator> auth;
  std::vector<std::shared_ptr<tls::Context>> listener_tls;  // per listener; null = plain
};

// Loads config, policy, identity sources and TLS contexts; every problem in one message.
Result<std::shared_ptr<const Snapshot>> build_snapshot(const std::string& config_path);

}  // namespace dg::proxy
