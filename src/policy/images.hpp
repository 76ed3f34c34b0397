// Image references normalised like the daemon (distribution/reference ParseNormalizedNamed,
// docker-api-notes §8), and the allowlist globs of the policy's `images` key.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace dg::policy {

struct ImageRef {
  std::string name;    // "docker.io/library/busybox"
  std::string tag;     // "" when none was given
  std::string digest;  // "sha256:..." or ""
  bool id = false;     // a full image ID ("sha256:<64 hex>" or 64 hex): no name at all
  bool maybe_id_prefix = false;  // short hex without tag or registry: dockerd may resolve it as an ID prefix
  std::string str() const;       // name[:tag][@digest]
};

// nullopt (with *error) for what the daemon refuses ("repository name must be lowercase"...).
std::optional<ImageRef> parse_image_ref(std::string_view s, std::string* error);

// Glob match: '*' = any run of characters except '/', '**' = any run.
bool glob_match(std::string_view pattern, std::string_view text);

// An allowlist entry: "alpine", "docker.io/library/alpine:3.*", "ghcr.io/acme/**@sha256:*", "**".
struct ImagePattern {
  std::string name, tag, digest;  // globs; tag/digest empty = any
  bool has_tag = false, has_digest = false;
};
ImagePattern parse_image_pattern(std::string_view p);
bool image_matches(const ImagePattern& p, const ImageRef& r);

}  // namespace dg::policy
