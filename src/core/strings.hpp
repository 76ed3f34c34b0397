// Small string helpers shared by every layer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dg {

inline char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
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
