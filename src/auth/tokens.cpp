#include "auth/tokens.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

namespace dg::auth {

Digest sha256(std::string_view data) {
  Digest d{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), d.data(), &len, EVP_sha256(), nullptr) != 1 || len != d.size())
    throw std::runtime_error("SHA-256 unavailable");  // OpenSSL without SHA-256: nothing sane to do
  return d;
}

std::string to_hex(const Digest& d) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  s.reserve(64);
  for (unsigned char c : d) {
    s.push_back(hex[c >> 4]);
    s.push_back(hex[c & 15]);
  }
  return s;
}

std::optional<Digest> digest_from_hex(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Digest d{};
  for (size_t i = 0; i < 32; ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    d[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  return d;
}

std::string generate_token() {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw std::runtime_error("RAND_bytes failed");
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out = "dgt_";
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : raw) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 63]);
  return out;
}

std::optional<TokenInfo> MemoryTokenStore::lookup(const Digest& digest) const {
  std::lock_guard<std::mutex> lock(mu_);
  const TokenInfo* found = nullptr;
  for (const auto& [d, info] : entries_)
    if (CRYPTO_memcmp(d.data(), digest.data(), d.size()) == 0) found = &info;
  if (!found) return std::nullopt;
  return *found;
}

void MemoryTokenStore::add(const Digest& digest, TokenInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [d, existing] : entries_)
    if (d == digest) {
      existing = std::move(info);
      return;
    }
  entries_.emplace_back(digest, std::move(info));
}

bool MemoryTokenStore::revoke(const Digest& digest) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->first == digest) {
      entries_.erase(it);
      return true;
    }
  return false;
}

size_t MemoryTokenStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

std::shared_ptr<MemoryTokenStore> MemoryTokenStore::from_entries(const std::vector<config::TokenEntry>& entries) {
  auto store = std::make_shared<MemoryTokenStore>();
  for (const auto& e : entries) {
    auto d = digest_from_hex(e.sha256);
    if (!d) continue;  // tokens_file already refused malformed digests
    store->add(*d, TokenInfo{e.name, e.groups, e.expires});
  }
  return store;
}

Result<std::shared_ptr<MemoryTokenStore>> MemoryTokenStore::from_file(const std::string& path) {
  auto entries = config::load_tokens_file(path);
  if (!entries) {
    std::string msg = entries.error().str();
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return fail(msg);
  }
  return from_entries(*entries);
}

}  // namespace dg::auth
