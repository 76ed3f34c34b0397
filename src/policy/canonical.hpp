// Canonicalising a request target the way dockerd's router sees it (docs: docker-api-notes §5):
// percent-decoding like Go's url.PathUnescape, the /vX.Y prefix, and query strings like
// url.ParseQuery. Anything dockerd would redirect, route differently or reject is refused here.
#pragma once

#include "core/strings.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dg::policy {

inline constexpr int kMinApiMajor = 1;
inline constexpr int kMinApiMinor = 24;

// target_path: the request target before '?', still percent-encoded (origin or absolute form).
// path and api_version view `target_path`, or `scratch` (which then holds the decoded path) when
// something in it is percent-encoded.
struct CanonicalView {
  bool ok = false;
  int status = 400;
  std::string reason;            // when !ok
  std::string_view path;         // decoded, without the version prefix
  std::string_view api_version;  // "1.41"; "" when unversioned
};
CanonicalView canonicalise_path_view(std::string_view target_path, std::string& scratch);

// Go-style unescape. plus_is_space: query mode. Returns false on a bad escape.
bool percent_decode(std::string_view in, std::string& out, bool plus_is_space);

// Checks a raw query like dockerd's r.ParseForm() would: any ';' or bad escape -> error message.
std::optional<std::string> query_error(std::string_view raw_query);

using QueryParams = std::vector<std::pair<std::string, std::string>>;
// url.ParseQuery; call only after query_error() said the query is fine.
QueryParams parse_query(std::string_view raw_query);
// First value of key (scalars), nullptr when absent.
const std::string* query_first(const QueryParams& q, std::string_view key);
std::vector<std::string_view> query_all(const QueryParams& q, std::string_view key);
// dockerd's httputils.BoolValue: "", 0, no, false, none (trimmed, any case) are false.
bool query_bool(const QueryParams& q, std::string_view key);

// Lexical clean of an absolute path like Go's path.Clean ("/a/../b" -> "/b", "//a//b/" -> "/a/b").
using dg::clean_path;  // core/strings.hpp
// True when `p` (clean) is `prefix` (clean) or below it.
bool path_within(std::string_view p, std::string_view prefix);

// Media type of a Content-Type value, lower-cased, without parameters.
// True when the media type of a Content-Type value (parameters ignored, case-insensitive) is `type`.
bool media_type_is(std::string_view content_type, std::string_view type);

}  // namespace dg::policy
