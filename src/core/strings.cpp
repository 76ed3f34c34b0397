#include "core/strings.hpp"

#include <array>
#include <vector>

namespace dg {

namespace {
// Bytes a JSON string cannot hold as they are: '"', '\\', controls and DEL.
constexpr std::array<bool, 256> kJsonEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = true;
  t['"'] = t['\\'] = t[0x7f] = true;
  return t;
}();
}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  const char* p = s.data();
  const char* end = p + s.size();
  while (p < end) {
    const char* run = p;  // the common case: long runs that need no escaping, appended at once
    // 8 bytes at a time while none needs escaping (a control, '"', '\\' or DEL), then byte by byte.
    while (end - p >= 8) {
      uint64_t w = swar::load8(p);
      if (swar::has_less(w, 0x20) | swar::has_byte(w, '"') | swar::has_byte(w, '\\') | swar::has_byte(w, 0x7f)) break;
      p += 8;
    }
    while (p < end && !kJsonEscape[static_cast<unsigned char>(*p)]) ++p;
    out.append(run, static_cast<size_t>(p - run));
    if (p == end) break;
    unsigned char c = static_cast<unsigned char>(*p++);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default: {
        const char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        out.append(esc, sizeof esc);
      }
    }
  }
  out.push_back('"');
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i <= s.size();) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string clean_path(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view seg = p.substr(i, j - i);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto s : parts) {
    out += '/';
    out += s;
  }
  return out.empty() ? "/" : out;
}

std::string docker_error_body(std::string_view text) {
  std::string body = "{\"message\":";
  std::string msg = "dockgate: ";
  msg += text;
  append_json_string(body, msg);
  body += "}\n";
  return body;
}

}  // namespace dg
