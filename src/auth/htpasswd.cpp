#include "auth/htpasswd.hpp"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

namespace dg::auth {

namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

const char* refusal(HashKind k) {
  switch (k) {
    case HashKind::Md5:
    case HashKind::Apr1: return "MD5/apr1 hashes are not accepted; re-create with htpasswd -B";
    case HashKind::Sha1: return "SHA-1 ({SHA}) hashes are not accepted; re-create with htpasswd -B";
    default: return "plain-text, DES or unknown hashes are not accepted; re-create with htpasswd -B";
  }
}

bool b64_chars(std::string_view s) {
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '/')) return false;
  return !s.empty();
}

// Shape of a modular-crypt string, checked without hashing: verifying each entry with crypt_r at
// load would cost one bcrypt per user.
bool well_formed(HashKind k, std::string_view h) {
  std::vector<std::string_view> parts;  // fields between '$' (h starts with '$')
  size_t p = 1;
  while (p <= h.size()) {
    size_t d = h.find('$', p);
    if (d == std::string_view::npos) d = h.size();
    parts.push_back(h.substr(p, d - p));
    p = d + 1;
  }
  switch (k) {
    case HashKind::Bcrypt:
      return h.size() == 60 && parts.size() == 3 && parts[1].size() == 2 && parts[1] >= "04" && parts[1] <= "31" &&
             b64_chars(parts[2]);
    case HashKind::Sha256:
    case HashKind::Sha512: {
      size_t len = k == HashKind::Sha256 ? 43 : 86;
      if (parts.size() == 4 && parts[1].substr(0, 7) == "rounds=") parts.erase(parts.begin() + 1);
      return parts.size() == 3 && !parts[1].empty() && parts[1].size() <= 16 && parts[2].size() == len && b64_chars(parts[2]);
    }
    case HashKind::Yescrypt:
      return parts.size() == 4 && b64_chars(parts[1]) && b64_chars(parts[2]) && parts[3].size() == 43 && b64_chars(parts[3]);
    default: return false;
  }
}

// Whether this libcrypt build implements the scheme (asked once per scheme, cheaply).
bool scheme_supported(HashKind k) {
  const char* prefix = k == HashKind::Bcrypt ? "$2b$" : k == HashKind::Sha512 ? "$6$" : k == HashKind::Sha256 ? "$5$" : "$y$";
  char buf[CRYPT_GENSALT_OUTPUT_SIZE];
  return crypt_gensalt_rn(prefix, 0, nullptr, 0, buf, sizeof buf) != nullptr;
}

}  // namespace

HashKind hash_kind(std::string_view h) {
  if (starts_with(h, "$2y$") || starts_with(h, "$2b$") || starts_with(h, "$2a$")) return HashKind::Bcrypt;
  if (starts_with(h, "$6$")) return HashKind::Sha512;
  if (starts_with(h, "$5$")) return HashKind::Sha256;
  if (starts_with(h, "$y$")) return HashKind::Yescrypt;
  if (starts_with(h, "$1$")) return HashKind::Md5;
  if (starts_with(h, "$apr1$")) return HashKind::Apr1;
  if (starts_with(h, "{SHA}")) return HashKind::Sha1;
  return HashKind::Other;
}

bool hash_kind_accepted(HashKind k) {
  return k == HashKind::Bcrypt || k == HashKind::Sha512 || k == HashKind::Sha256 || k == HashKind::Yescrypt;
}

bool crypt_matches(std::string_view password, const std::string& hash) {
  // crypt_r needs a NUL-terminated password; a NUL inside would silently truncate it.
  if (password.find('\0') != std::string_view::npos) return false;
  std::string pw(password);
  // crypt_data is ~32 KiB: heap, zero-initialised as libcrypt asks before first use.
  auto data = std::make_unique<crypt_data>();
  const char* out = crypt_r(pw.c_str(), hash.c_str(), data.get());
  // libcrypt signals failure with NULL or a string starting with '*' (never a valid hash).
  bool match = false;
  if (out && out[0] != '*') {
    const size_t n = std::strlen(out);
    match = n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
  }
  // The copy of the password and libcrypt's scratch state (which held it) are not left behind in
  // freed memory.
  OPENSSL_cleanse(pw.data(), pw.size());
  OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  return match;
}

Result<Htpasswd> Htpasswd::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(path + ": cannot read htpasswd file: " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

Result<Htpasswd> Htpasswd::parse(std::string_view text, const std::string& file_name) {
  Htpasswd h;
  std::string errors;
  auto err = [&](int line, const std::string& msg) {
    if (!errors.empty()) errors += '\n';
    errors += file_name + ":" + std::to_string(line) + ": " + msg;
  };
  std::map<std::string, int, std::less<>> first_line;
  int line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      err(line_no, "expected user:hash");
      continue;
    }
    std::string user(line.substr(0, colon));
    std::string hash(line.substr(colon + 1));
    // Apache's htpasswd never writes trailing fields, but some tools append ":comment"; a hash
    // never contains ':', so cut there.
    if (auto c = hash.find(':'); c != std::string::npos) hash.resize(c);
    while (!hash.empty() && (hash.back() == ' ' || hash.back() == '\t')) hash.pop_back();
    HashKind k = hash_kind(hash);
    if (!hash_kind_accepted(k)) {
      err(line_no, "user " + user + ": " + refusal(k));
      continue;
    }
    if (!well_formed(k, hash)) {
      err(line_no, "user " + user + ": malformed hash");
      continue;
    }
    if (!scheme_supported(k)) {
      err(line_no, "user " + user + ": this libcrypt does not support the hash scheme");
      continue;
    }
    if (auto it = first_line.find(user); it != first_line.end()) {
      err(line_no, "user " + user + ": listed twice (first on line " + std::to_string(it->second) + ")");
      continue;
    }
    first_line[user] = line_no;
    h.users_[user] = hash;
  }
  if (!errors.empty()) return fail(errors);
  return h;
}

bool Htpasswd::contains(std::string_view user) const { return users_.find(user) != users_.end(); }

const std::string* Htpasswd::hash_to_check(std::string_view user, bool* known) const {
  auto it = users_.find(user);
  *known = it != users_.end();
  if (*known) return &it->second;
  // Spend the same work as a real check (same scheme and cost as the first entry).
  return users_.empty() ? nullptr : &users_.begin()->second;
}

bool Htpasswd::verify(std::string_view user, std::string_view password) const {
  bool known = false;
  const std::string* hash = hash_to_check(user, &known);
  if (!hash) return false;
  const bool match = crypt_matches(password, *hash);
  return known && match;
}

}  // namespace dg::auth
