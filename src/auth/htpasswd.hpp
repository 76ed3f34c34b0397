// htpasswd files (identities.basic.htpasswd) verified with libcrypt's crypt_r. Only slow,
// salted schemes are accepted; weak ones are refused at load so an admin learns about them at
// `dockgate -t` time, not when a password leaks.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace dg::auth {

enum class HashKind {
  Bcrypt,    // $2y$ $2b$ $2a$ (htpasswd -B)
  Sha512,    // $6$
  Sha256,    // $5$
  Yescrypt,  // $y$ (Debian's default for /etc/shadow)
  Md5,       // $1$                      refused
  Apr1,      // $apr1$ (htpasswd -m)     refused
  Sha1,      // {SHA} (htpasswd -s)      refused
  Other,     // DES crypt, plain text or an unknown scheme: refused
};

HashKind hash_kind(std::string_view hash);
bool hash_kind_accepted(HashKind k);

class Htpasswd {
 public:
  // Errors name "file:line: user X: ..." for every bad line (all of them, not just the first).
  static Result<Htpasswd> load(const std::string& path);
  static Result<Htpasswd> parse(std::string_view text, const std::string& file_name);

  bool contains(std::string_view user) const;
  size_t size() const { return users_.size(); }

  // crypt_r + constant-time compare. An unknown user still costs one hash computation so the
  // response time does not tell which user names exist.
  bool verify(std::string_view user, std::string_view password) const;

  // The hash a password for `user` is checked against, for doing verify() elsewhere (another
  // thread): the user's own, or for an unknown user (*known = false) a stand-in of the same scheme
  // and cost (the first entry's), which must be computed and then ignored. nullptr when the file
  // has no users (nothing to spend the work on).
  const std::string* hash_to_check(std::string_view user, bool* known) const;

 private:
  std::map<std::string, std::string, std::less<>> users_;  // user -> hash
};

// crypt_r(password, setting) compared to `hash` in constant time; false on any libcrypt failure.
bool crypt_matches(std::string_view password, const std::string& hash);

}  // namespace dg::auth
