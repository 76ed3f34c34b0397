#include "config/tokens_file.hpp"

#include <ctime>

#include "config/yaml_util.hpp"

namespace dg::config {

namespace {

bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

std::vector<TokenEntry> read_entries(Reader& r, const YAML::Node& root) {
  std::vector<TokenEntry> out;
  if (root.IsNull()) return out;  // an empty file: no tokens
  if (!r.map(root, "the token file", {"tokens"}) && !root.IsMap()) return out;
  const YAML::Node list = root["tokens"];
  if (!list.IsDefined() || list.IsNull()) return out;
  if (!r.is_seq(list, "tokens")) return out;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    const std::string where = "tokens[" + std::to_string(i) + "]";
    if (!r.is_map(e, where)) continue;
    r.map(e, where, {"name", "sha256", "groups", "expires"});
    TokenEntry t;
    t.line = e.Mark().line + 1;
    bool ok = true;
    if (auto n = r.str(r.required(e, "name", where), where + ".name")) {
      t.name = *n;
      for (unsigned char c : t.name)
        if (c < 0x20 || c == 0x7f) ok = false;
      if (t.name.empty() || !ok) {
        r.error(e["name"], where + ".name must be a non-empty printable string");
        ok = false;
      }
    } else {
      ok = false;
    }
    if (auto h = r.str(r.required(e, "sha256", where), where + ".sha256")) {
      std::string lower;
      for (char c : *h) lower += (c >= 'A' && c <= 'F') ? static_cast<char>(c + 32) : c;
      if (lower.size() != 64 || lower.find_first_not_of("0123456789abcdef") != std::string::npos) {
        // Never echo the value: someone may have pasted the token itself instead of its hash.
        r.error(e["sha256"], where + ".sha256 must be 64 hex digits (the SHA-256 of the token, e.g. printf %s TOKEN | sha256sum)");
        ok = false;
      }
      t.sha256 = lower;
    } else {
      ok = false;
    }
    if (auto g = r.str_list(e["groups"], where + ".groups")) t.groups = *g;
    if (auto x = r.str(e["expires"], where + ".expires")) {
      t.expires = parse_timestamp(*x);
      if (!t.expires) {
        r.error(e["expires"], where + ".expires must be a UTC time such as 2026-12-31T00:00:00Z");
        ok = false;
      }
    }
    if (!ok) continue;
    for (const auto& prev : out) {
      if (prev.sha256 == t.sha256)
        r.error(e, where + ": same sha256 as token \"" + prev.name + "\" (line " + std::to_string(prev.line) + ")");
      if (prev.name == t.name)
        r.error(e["name"], where + ": token name \"" + t.name + "\" is used twice (line " + std::to_string(prev.line) + ")");
    }
    out.push_back(std::move(t));
  }
  return out;
}

tl::expected<std::vector<TokenEntry>, Diagnostics> finish(Reader& r, Diagnostics& diags, const std::optional<YAML::Node>& root) {
  if (!root) return tl::unexpected(diags);
  std::vector<TokenEntry> out;
  try {
    out = read_entries(r, *root);
  } catch (const YAML::Exception& e) {
    r.error_at(e.mark.line + 1, e.mark.column + 1, "malformed token file: " + e.msg);
  }
  if (!diags.ok()) return tl::unexpected(diags);
  return out;
}

}  // namespace

std::optional<int64_t> parse_timestamp(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (!digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !digits(s, 5, 2, mo) || s[7] != '-' || !digits(s, 8, 2, d))
    return std::nullopt;
  int64_t offset = 0;
  if (s.size() > 10) {
    if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) || s.size() < 19 || s[13] != ':' ||
        !digits(s, 14, 2, mi) || s[16] != ':' || !digits(s, 17, 2, sec))
      return std::nullopt;
    size_t p = 19;
    if (p < s.size() && s[p] == '.') {
      ++p;
      while (p < s.size() && s[p] >= '0' && s[p] <= '9') ++p;
    }
    if (p >= s.size()) return std::nullopt;  // a time needs a zone: local time would be ambiguous
    if (s[p] == 'Z' || s[p] == 'z') {
      if (p + 1 != s.size()) return std::nullopt;
    } else if (s[p] == '+' || s[p] == '-') {
      int oh, om;
      if (p + 6 != s.size() || !digits(s, p + 1, 2, oh) || s[p + 3] != ':' || !digits(s, p + 4, 2, om) || oh > 23 || om > 59)
        return std::nullopt;
      offset = (oh * 3600 + om * 60) * (s[p] == '+' ? 1 : -1);
    } else {
      return std::nullopt;
    }
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (tm.tm_mday != d) return std::nullopt;  // timegm normalised an impossible date (Feb 30)
  return static_cast<int64_t>(t) - offset;
}

tl::expected<std::vector<TokenEntry>, Diagnostics> load_tokens_file(const std::string& path) {
  Diagnostics diags;
  Reader r(path, diags);
  auto root = r.load_file();
  return finish(r, diags, root);
}

tl::expected<std::vector<TokenEntry>, Diagnostics> parse_tokens(const std::string& text, const std::string& file_name) {
  Diagnostics diags;
  Reader r(file_name, diags);
  auto root = r.load_text(text);
  return finish(r, diags, root);
}

}  // namespace dg::config
