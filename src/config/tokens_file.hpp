// The bearer token file (identities.bearer.tokens): YAML parsed here because only src/config/
// includes yaml-cpp; src/auth/ turns the typed entries into a TokenStore.
//
//   tokens:
//     - name: ci-runner
//       sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//       groups: [ci]
//       expires: 2026-12-31T00:00:00Z      # optional
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace dg::config {

struct TokenEntry {
  std::string name;
  std::string sha256;  // 64 lower-case hex digits
  std::vector<std::string> groups;
  std::optional<int64_t> expires;  // Unix seconds (UTC); nullopt = never
  int line = 0;                    // 1-based line of the entry, for messages
};

tl::expected<std::vector<TokenEntry>, Diagnostics> load_tokens_file(const std::string& path);
// Same from text; `file_name` names the file in diagnostics.
tl::expected<std::vector<TokenEntry>, Diagnostics> parse_tokens(const std::string& text, const std::string& file_name);

// RFC 3339 "2026-12-31T00:00:00Z", "2026-12-31T02:00:00+02:00" (fractions ignored) or a date
// "2026-12-31" (midnight UTC) -> Unix seconds.
std::optional<int64_t> parse_timestamp(std::string_view s);

}  // namespace dg::config
