#include "policy/images.hpp"
#include "core/strings.hpp"

#include <vector>

namespace dg::policy {

namespace {

bool is_hex(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool valid_component(std::string_view c) {
  if (c.empty() || !lower_alnum(c.front()) || !lower_alnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" || sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

bool valid_domain(std::string_view d) {
  if (d.empty()) return false;
  if (d.front() == '[') return d.find(']') != std::string_view::npos;
  size_t colon = d.find(':');
  std::string_view host = d.substr(0, colon);
  if (host.empty()) return false;
  for (char c : host)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) return false;
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port)
      if (c < '0' || c > '9') return false;
  }
  return true;
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

bool domain_like(std::string_view first) {
  if (first.find_first_of(".:") != std::string_view::npos || first == "localhost") return true;
  for (char c : first)
    if (c >= 'A' && c <= 'Z') return true;
  return false;
}

}  // namespace

std::string ImageRef::str() const {
  std::string s = name;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::optional<ImageRef> parse_image_ref(std::string_view s, std::string* error) {
  auto fail = [&](std::string m) -> std::optional<ImageRef> {
    if (error) *error = std::move(m);
    return std::nullopt;
  };
  ImageRef r;
  if (s.substr(0, 7) == "sha256:" && s.size() == 71 && is_hex(s.substr(7))) {
    r.id = true;
    r.digest = std::string(s);
    return r;
  }
  if (s.size() == 64 && is_hex(s)) {
    r.id = true;
    r.digest = "sha256:" + std::string(s);
    return r;
  }
  if (s.empty()) return fail("empty image reference");
  std::string_view rest = s;
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view dg = rest.substr(at + 1);
    size_t colon = dg.find(':');
    if (colon == std::string_view::npos || colon == 0 || dg.size() - colon - 1 < 32 || !is_hex(dg.substr(colon + 1)))
      return fail("invalid reference format: bad digest");
    if (dg.substr(0, colon) == "sha256" && dg.size() - colon - 1 != 64) return fail("invalid reference format: bad digest");
    r.digest = std::string(dg);
    rest = rest.substr(0, at);
  }
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    r.tag = std::string(rest.substr(colon + 1));
    if (!valid_tag(r.tag)) return fail("invalid reference format: bad tag");
    rest = rest.substr(0, colon);
  }
  std::string_view domain = "docker.io", path = rest;
  size_t first = rest.find('/');
  if (first != std::string_view::npos && domain_like(rest.substr(0, first))) {
    domain = rest.substr(0, first);
    path = rest.substr(first + 1);
    if (!valid_domain(domain)) return fail("invalid reference format: bad registry");
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (path.empty()) return fail("invalid reference format");
  size_t ncomps = 0;
  for (size_t i = 0; i <= path.size(); ++ncomps) {  // every '/'-separated component, empty ones included
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view c = path.substr(i, j - i);
    for (char ch : c)
      if (ch >= 'A' && ch <= 'Z') return fail("invalid reference format: repository name must be lowercase");
    if (!valid_component(c)) return fail("invalid reference format");
    i = j + 1;
  }
  const bool library = domain == "docker.io" && ncomps == 1;
  r.name.reserve(domain.size() + 1 + (library ? 8 : 0) + path.size());
  r.name.append(domain);
  r.name += '/';
  if (library) r.name += "library/";
  r.name.append(path);
  if (r.name.size() > 255) return fail("repository name must not be more than 255 characters");
  r.maybe_id_prefix = r.tag.empty() && r.digest.empty() && first == std::string_view::npos && is_hex(rest);
  return r;
}

bool glob_match(std::string_view p, std::string_view t) {
  size_t star = p.find('*');
  if (star == std::string_view::npos) return p == t;
  // The literal part before the first '*'.
  if (t.size() < star || p.substr(0, star) != t.substr(0, star)) return false;
  p.remove_prefix(star);
  t.remove_prefix(star);
  bool any = p.size() > 1 && p[1] == '*';
  std::string_view rest = p.substr(any ? 2 : 1);
  if (rest.empty()) return any || t.find('/') == std::string_view::npos;  // a trailing * or **
  for (size_t i = 0; i <= t.size(); ++i) {
    if (glob_match(rest, t.substr(i))) return true;
    if (i < t.size() && !any && t[i] == '/') return false;
  }
  return false;
}

ImagePattern parse_image_pattern(std::string_view s) {
  ImagePattern p;
  size_t at = s.find('@');
  if (at != std::string_view::npos) {
    p.has_digest = true;
    p.digest = std::string(s.substr(at + 1));
    s = s.substr(0, at);
  }
  size_t slash = s.rfind('/');
  size_t colon = s.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    p.has_tag = true;
    p.tag = std::string(s.substr(colon + 1));
    s = s.substr(0, colon);
  }
  size_t first = s.find('/');
  std::string_view head = s.substr(0, first);
  if (first == std::string_view::npos) {
    p.name = (s.find('*') == 0) ? std::string(s) : "docker.io/library/" + std::string(s);
  } else if (domain_like(head) || head.find('*') != std::string_view::npos) {
    p.name = std::string(head == "index.docker.io" ? std::string_view("docker.io") : head) + std::string(s.substr(first));
  } else {
    p.name = "docker.io/" + std::string(s);
  }
  return p;
}

bool image_matches(const ImagePattern& p, const ImageRef& r) {
  if (r.id) return false;
  if (!glob_match(p.name, r.name)) return false;
  if (p.has_tag && !glob_match(p.tag, r.tag)) return false;
  if (p.has_digest && !glob_match(p.digest, r.digest)) return false;
  return true;
}

}  // namespace dg::policy
