// Bearer tokens. Only SHA-256 digests of tokens are ever stored (file, memory, later the store),
// so a leaked token file or database does not hand out access. The token file is one TokenStore;
// the session layer will issue tokens at run time into another one that outlives reloads.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/tokens_file.hpp"
#include "core/result.hpp"

namespace dg::auth {

using Digest = std::array<unsigned char, 32>;

Digest sha256(std::string_view data);
std::string to_hex(const Digest& d);
std::optional<Digest> digest_from_hex(std::string_view hex);  // 64 hex digits, any case

// A fresh random token ("dgt_" + 43 base64url characters, 256 bits) for the session layer or an
// admin tool; store only sha256(token).
std::string generate_token();

struct TokenInfo {
  std::string name;                 // identity name
  std::vector<std::string> groups;
  std::optional<int64_t> expires;   // Unix seconds (UTC); nullopt = never
  bool expired_at(int64_t now_unix) const { return expires && now_unix >= *expires; }
};

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // The token whose SHA-256 is `digest`. Implementations compare digests in constant time.
  // Expiry is the caller's business (it reports "token expired" rather than "unknown token").
  virtual std::optional<TokenInfo> lookup(const Digest& digest) const = 0;
  // Adds or replaces. Thread-safe.
  virtual void add(const Digest& digest, TokenInfo info) = 0;
  // Removes; false if it was not there. Thread-safe.
  virtual bool revoke(const Digest& digest) = 0;
  virtual size_t size() const = 0;
};

// In-memory store. lookup scans every entry with CRYPTO_memcmp (no early exit), so timing says
// nothing about which digest matched; fine for thousands of tokens.
class MemoryTokenStore final : public TokenStore {
 public:
  std::optional<TokenInfo> lookup(const Digest& digest) const override;
  void add(const Digest& digest, TokenInfo info) override;
  bool revoke(const Digest& digest) override;
  size_t size() const override;

  // Builds a store from the token file (see config/tokens_file.hpp); errors are "file:line: ...".
  static Result<std::shared_ptr<MemoryTokenStore>> from_file(const std::string& path);
  static std::shared_ptr<MemoryTokenStore> from_entries(const std::vector<config::TokenEntry>& entries);

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<Digest, TokenInfo>> entries_;
};

}  // namespace dg::auth
