// Small string helpers shared by every layer.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace dg {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Byte tests on 8 bytes at a time (each exact: "is there such a byte", not which).
namespace swar {
inline constexpr uint64_t k01 = 0x0101010101010101ull, k80 = 0x8080808080808080ull;
inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
// Nonzero when some byte of w is below n (n <= 128).
inline uint64_t has_less(uint64_t w, unsigned n) { return (w - k01 * n) & ~w & k80; }
// Nonzero when some byte of w equals b.
inline uint64_t has_byte(uint64_t w, unsigned char b) { return has_less(w ^ (k01 * b), 1); }
// 0x80 in exactly the bytes of w that equal b, 0 elsewhere.
inline uint64_t eq_mask(uint64_t w, unsigned char b) {
  constexpr uint64_t k7f = 0x7f7f7f7f7f7f7f7full;
  uint64_t t = w ^ (k01 * b);
  return ~(((t & k7f) + k7f) | t | k7f);
}
// ASCII lower case of every byte ('A'..'Z' + 32; others, non-ASCII bytes included, unchanged).
inline uint64_t lower8(uint64_t w) {
  uint64_t h = w & 0x7f7f7f7f7f7f7f7full;
  uint64_t ge_a = h + k01 * (0x80 - 'A');      // bit 7 set: byte >= 'A'
  uint64_t gt_z = h + k01 * (0x80 - 'Z' - 1);  // bit 7 set: byte > 'Z'
  return w | (((ge_a & ~gt_z & ~w) & k80) >> 2);
}
}  // namespace swar

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  const size_t n = a.size();
  if (n >= 8) {  // words, the last one overlapping
    for (size_t i = 0;; i += 8) {
      if (i + 8 > n) i = n - 8;
      uint64_t x = swar::load8(a.data() + i), y = swar::load8(b.data() + i);
      if (x != y && swar::lower8(x) != swar::lower8(y)) return false;
      if (i + 8 == n) return true;
    }
  }
  for (size_t i = 0; i < n; ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = ascii_lower(c);
  return out;
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Every piece between separators, empty ones included ("a::b" -> a, "", b; "" -> one empty piece).
std::vector<std::string_view> split(std::string_view s, char sep);

// Lexical clean of an absolute path like Go's path.Clean: repeated slashes, "." and ".." segments
// resolved, no trailing slash; "" and "/" give "/". Used wherever host paths are compared.
std::string clean_path(std::string_view p);

// Appends s as a JSON string literal (with quotes), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view s);

// {"message":"dockgate: <text>"} plus newline, the body dockerd uses for errors.
std::string docker_error_body(std::string_view text);

}  // namespace dg
