// Phase 4 (identify): credentials -> Identity, per listener method order.
#include "auth/identity.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <ctime>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

#include "auth/htpasswd.hpp"
#include "core/strings.hpp"

namespace dg::auth {

bool Identity::in_group(std::string_view g) const {
  return std::find(groups.begin(), groups.end(), g) != groups.end();
}

std::string client_key(const ConnectionFacts& conn) {
  if (conn.has_peer_cred) return "uid:" + std::to_string(conn.uid);
  const std::string& r = conn.remote;
  if (!r.empty() && r[0] == '[') {  // "[::1]:5000"
    auto close = r.find(']');
    return close == std::string::npos ? r : r.substr(1, close - 1);
  }
  auto colon = r.find(':');
  if (colon != std::string::npos && r.find(':', colon + 1) == std::string::npos) return r.substr(0, colon);
  return r;  // bare IPv6, "unix", or empty
}

namespace {

// ---------------------------------------------------------------- failure table

uint32_t delay_for(uint32_t failures) {
  if (failures == 0) return 0;
  uint64_t d = static_cast<uint64_t>(FailureTracker::kBaseDelayMs) << std::min<uint32_t>(failures - 1, 20);
  return static_cast<uint32_t>(std::min<uint64_t>(d, FailureTracker::kMaxDelayMs));
}

// Bounded LRU of failure counters: `order_` is oldest-failure first, so expiry and eviction both
// pop from the front.
class FailureTable {
 public:
  using Clock = FailureTracker::Clock;

  uint32_t bump(const std::string& key, Clock::time_point now) {
    purge(now);
    auto it = map_.find(key);
    if (it != map_.end()) {
      it->second.count++;
      it->second.last = now;
      order_.splice(order_.end(), order_, it->second.pos);
      return it->second.count;
    }
    if (map_.size() >= FailureTracker::kMaxEntries) {
      map_.erase(order_.front());
      order_.pop_front();
    }
    order_.push_back(key);
    map_.emplace(key, Entry{1, now, std::prev(order_.end())});
    return 1;
  }

  uint32_t count(const std::string& key, Clock::time_point now) const {
    auto it = map_.find(key);
    if (it == map_.end() || now - it->second.last >= FailureTracker::kForgetAfter) return 0;
    return it->second.count;
  }

  void erase(const std::string& key) {
    auto it = map_.find(key);
    if (it == map_.end()) return;
    order_.erase(it->second.pos);
    map_.erase(it);
  }

  size_t size() const { return map_.size(); }

 private:
  void purge(Clock::time_point now) {
    while (!order_.empty()) {
      auto it = map_.find(order_.front());
      if (now - it->second.last < FailureTracker::kForgetAfter) break;
      map_.erase(it);
      order_.pop_front();
    }
  }

  struct Entry {
    uint32_t count;
    Clock::time_point last;
    std::list<std::string>::iterator pos;
  };
  std::unordered_map<std::string, Entry> map_;
  std::list<std::string> order_;
};

}  // namespace

struct FailureTracker::Impl {
  mutable std::mutex mu;
  FailureTable clients;
  FailureTable users;
};

FailureTracker::FailureTracker() : impl_(std::make_unique<Impl>()) {}
FailureTracker::~FailureTracker() = default;

uint32_t FailureTracker::failed(const std::string& client, const std::string& user) { return failed(client, user, Clock::now()); }

uint32_t FailureTracker::failed(const std::string& client, const std::string& user, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint32_t n = impl_->clients.bump(client, now);
  if (!user.empty()) n = std::max(n, impl_->users.bump(user, now));
  return delay_for(n);
}

void FailureTracker::succeeded(const std::string& client, const std::string& user) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->clients.erase(client);
  if (!user.empty()) impl_->users.erase(user);
}

uint32_t FailureTracker::current_delay(const std::string& client, const std::string& user) const {
  return current_delay(client, user, Clock::now());
}

uint32_t FailureTracker::current_delay(const std::string& client, const std::string& user, Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  uint32_t n = impl_->clients.count(client, now);
  if (!user.empty()) n = std::max(n, impl_->users.count(user, now));
  return delay_for(n);
}

size_t FailureTracker::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->clients.size() + impl_->users.size();
}

namespace {

// ---------------------------------------------------------------- helpers

// Strict RFC 4648 base64 (padding optional); nullopt on any stray character.
std::optional<std::string> base64_decode(std::string_view in) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone trailing character cannot encode a byte
  return out;
}

// A client-chosen user name made safe to log: printable, bounded.
std::string loggable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
  if (s.size() > 64) out += "...";
  return out;
}

void add_groups(std::vector<std::string>& into, const std::vector<std::string>& more) {
  for (const auto& g : more)
    if (std::find(into.begin(), into.end(), g) == into.end()) into.push_back(g);
}

std::string iso_time(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// ---------------------------------------------------------------- authenticator

// How long a verified user:password stays cached. The docker CLI sends the Authorization header on
// every request (HEAD /_ping first), so without a cache every request would cost one bcrypt (on
// the thread pool: a PasswordCheck) and a thread hop; a cached one is answered on the loop. Trade-off: a password removed from the htpasswd file keeps working until the
// next reload (a reload builds a new Authenticator, so a new, empty cache) and at most this long.
constexpr auto kCacheTtl = std::chrono::minutes(5);
constexpr size_t kCacheMax = 4096;

class AuthenticatorImpl;

// Basic credentials not in the cache: the hash runs wherever run() is called (the proxy: libuv's
// thread pool), the rest of the decision in finish() (the loop thread).
class BasicCheck final : public PasswordCheck {
 public:
  BasicCheck(std::shared_ptr<const AuthenticatorImpl> auth, std::string decoded, size_t colon, std::string hash, bool known,
             const Digest& key, std::string client, std::string listener, bool basic_listed)
      : auth_(std::move(auth)),
        decoded_(std::move(decoded)),
        colon_(colon),
        hash_(std::move(hash)),
        known_(known),
        key_(key),
        client_(std::move(client)),
        listener_(std::move(listener)),
        basic_listed_(basic_listed) {}
  ~BasicCheck() override { OPENSSL_cleanse(decoded_.data(), decoded_.size()); }

  void run() noexcept override {
    const bool match = crypt_matches(std::string_view(decoded_).substr(colon_ + 1), hash_);
    matched_ = known_ && match;
    // Only the user name is needed from here on.
    OPENSSL_cleanse(decoded_.data() + colon_, decoded_.size() - colon_);
    decoded_.resize(colon_);
  }
  Outcome finish(FailureTracker& failures) override;

 private:
  std::shared_ptr<const AuthenticatorImpl> auth_;
  std::string decoded_;  // user:password as the client sent it; the password is cleansed after run()
  size_t colon_;
  std::string hash_;     // the user's hash, or the stand-in for an unknown user
  bool known_;
  Digest key_;           // cache key
  std::string client_;   // client_key()
  std::string listener_;
  bool basic_listed_;
  bool matched_ = false;
};

class AuthenticatorImpl final : public Authenticator, public std::enable_shared_from_this<AuthenticatorImpl> {
 public:
  AuthenticatorImpl(const config::Identities& ids, std::optional<Htpasswd> htpasswd, std::shared_ptr<const TokenStore> file_tokens,
                    std::shared_ptr<const TokenStore> issued)
      : ids_(ids), htpasswd_(std::move(htpasswd)), file_tokens_(std::move(file_tokens)), issued_(std::move(issued)) {
    // Salting the cache key keeps a memory dump from being matched against precomputed tables.
    if (RAND_bytes(salt_, sizeof salt_) != 1) std::fill(std::begin(salt_), std::end(salt_), 0);
  }

  Outcome authenticate(const ConnectionFacts& conn, const std::vector<AuthMethod>& methods, const http::RequestHead& head,
                       FailureTracker& failures) const override;

  // guess: the client presented a credential that did not verify; it counts towards back-off.
  Outcome deny(std::string reason, std::string detail, std::string user, bool guess, bool basic_listed, const std::string& client,
               FailureTracker& failures) const;
  void remember(const Digest& key) const { basic_remember(key); }
  static Outcome allow(AuthMethod m, std::string name, std::vector<std::string> groups, const std::string& listener);
  // The end of a basic check, from the cache or after the hash (BasicCheck::finish).
  Outcome basic_result(bool matched, const std::string& user, bool known, const std::string& client, const std::string& listener,
                       bool basic_listed, FailureTracker& failures) const;

 private:
  bool basic_cached(const Digest& key) const;
  void basic_remember(const Digest& key) const;

  config::Identities ids_;
  std::optional<Htpasswd> htpasswd_;
  std::shared_ptr<const TokenStore> file_tokens_;
  std::shared_ptr<const TokenStore> issued_;
  unsigned char salt_[16];

  mutable std::mutex cache_mu_;
  mutable std::map<Digest, std::chrono::steady_clock::time_point> cache_;  // key -> expiry
};

bool AuthenticatorImpl::basic_cached(const Digest& key) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return false;
  if (std::chrono::steady_clock::now() >= it->second) {
    cache_.erase(it);
    return false;
  }
  return true;
}

void AuthenticatorImpl::basic_remember(const Digest& key) const {
  std::lock_guard<std::mutex> lock(cache_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (cache_.size() >= kCacheMax) {
    for (auto it = cache_.begin(); it != cache_.end();) it = now >= it->second ? cache_.erase(it) : std::next(it);
    if (cache_.size() >= kCacheMax) {
      auto oldest = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
      cache_.erase(oldest);
    }
  }
  cache_[key] = now + kCacheTtl;
}

Outcome AuthenticatorImpl::deny(std::string reason, std::string detail, std::string user, bool guess, bool basic_listed,
                                const std::string& client, FailureTracker& failures) const {
  Outcome o;
  o.reason = std::move(reason);
  o.detail = std::move(detail);
  o.user = std::move(user);
  if (basic_listed) o.challenge.push_back({"WWW-Authenticate", "Basic realm=\"" + ids_.basic.realm + "\""});
  if (guess) o.delay_ms = failures.failed(client, o.user);
  return o;
}

Outcome AuthenticatorImpl::allow(AuthMethod m, std::string name, std::vector<std::string> groups, const std::string& listener) {
  Outcome o;
  o.ok = true;
  o.identity.name = std::move(name);
  o.identity.groups = std::move(groups);
  o.identity.method = m;
  o.identity.listener = listener;
  return o;
}

Outcome AuthenticatorImpl::basic_result(bool matched, const std::string& user, bool known, const std::string& client,
                                        const std::string& listener, bool basic_listed, FailureTracker& failures) const {
  if (!matched) {
    return deny("basic: wrong user name or password",
                known ? "basic: wrong password for user \"" + loggable(user) + "\"" : "basic: unknown user \"" + loggable(user) + "\"",
                loggable(user), true, basic_listed, client, failures);
  }
  failures.succeeded(client, user);
  std::vector<std::string> groups;
  if (auto it = ids_.basic.groups.find(user); it != ids_.basic.groups.end()) groups = it->second;
  return allow(AuthMethod::Basic, user, groups, listener);
}

Outcome BasicCheck::finish(FailureTracker& failures) {
  const std::string user = decoded_.substr(0, colon_);
  if (matched_) auth_->remember(key_);
  return auth_->basic_result(matched_, user, known_, client_, listener_, basic_listed_, failures);
}

Outcome AuthenticatorImpl::authenticate(const ConnectionFacts& conn, const std::vector<AuthMethod>& methods,
                                        const http::RequestHead& head, FailureTracker& failures) const {
  const bool basic_listed = std::find(methods.begin(), methods.end(), AuthMethod::Basic) != methods.end();
  const std::string client = client_key(conn);

  auto deny = [&](std::string reason, std::string detail, std::string user, bool guess) {
    return this->deny(std::move(reason), std::move(detail), std::move(user), guess, basic_listed, client, failures);
  };
  auto allow = [&](AuthMethod m, std::string name, std::vector<std::string> groups) {
    return AuthenticatorImpl::allow(m, std::move(name), std::move(groups), conn.listener);
  };

  const http::Header* authz = nullptr;
  int authz_count = 0;
  for (const auto& h : head.headers)
    if (iequals(h.name, "Authorization")) {
      ++authz_count;
      authz = &h;
    }
  // Two Authorization headers could be read differently by dockgate and dockerd: refuse.
  if (authz_count > 1) return deny("multiple Authorization headers", "", "", false);
  std::string_view scheme, credentials;
  if (authz) {
    std::string_view v = trim(authz->value);
    size_t sp = v.find_first_of(" \t");
    scheme = v.substr(0, sp);
    credentials = sp == std::string_view::npos ? std::string_view() : trim(v.substr(sp + 1));
  }

  for (AuthMethod m : methods) {
    switch (m) {
      case AuthMethod::Mtls: {
        if (!conn.cert || !conn.cert->present) break;
        const tls::PeerCertificate& c = *conn.cert;
        if (!c.verified) return deny("mtls: client certificate not verified", "subject " + c.subject, "", false);
        std::string name;
        const char* field = "subject CN";
        auto first = [](const std::vector<std::string>& v) { return v.empty() ? std::string() : v.front(); };
        switch (ids_.mtls.from) {
          case config::MtlsIdentity::From::Cn: name = c.common_name; break;
          case config::MtlsIdentity::From::SanDns: name = first(c.san_dns), field = "DNS subject alternative name"; break;
          case config::MtlsIdentity::From::SanEmail: name = first(c.san_email), field = "email subject alternative name"; break;
          case config::MtlsIdentity::From::SanUri: name = first(c.san_uri), field = "URI subject alternative name"; break;
        }
        if (name.empty())
          return deny(std::string("mtls: client certificate has no ") + field, "subject " + c.subject, "", false);
        std::vector<std::string> groups;
        if (ids_.mtls.groups_from_ou) add_groups(groups, c.organizational_units);
        if (auto it = ids_.mtls.groups.find(name); it != ids_.mtls.groups.end()) add_groups(groups, it->second);
        return allow(m, name, groups);
      }
      case AuthMethod::Basic: {
        if (!authz || !iequals(scheme, "Basic")) break;
        auto decoded = base64_decode(credentials);
        size_t colon = decoded ? decoded->find(':') : std::string::npos;
        if (!decoded || colon == std::string::npos || colon == 0)
          return deny("basic: malformed credentials", "expected base64(user:password)", "", true);
        const std::string user = decoded->substr(0, colon);
        if (!htpasswd_) return deny("basic: not configured", "", loggable(user), false);
        std::string keyed(reinterpret_cast<const char*>(salt_), sizeof salt_);
        keyed += *decoded;
        const Digest key = sha256(keyed);
        OPENSSL_cleanse(keyed.data(), keyed.size());
        if (basic_cached(key)) {
          OPENSSL_cleanse(decoded->data(), decoded->size());
          return basic_result(true, user, true, client, conn.listener, basic_listed, failures);
        }
        bool known = false;
        const std::string* hash = htpasswd_->hash_to_check(user, &known);
        if (!hash) {  // an empty file: no user to spend the work on
          OPENSSL_cleanse(decoded->data(), decoded->size());
          return basic_result(false, user, false, client, conn.listener, basic_listed, failures);
        }
        // Not cached: the hash is computed off the loop (PasswordCheck); the check takes the
        // decoded credentials (and cleanses them).
        Outcome o;
        o.check = std::make_unique<BasicCheck>(shared_from_this(), std::move(*decoded), colon, *hash, known, key, client,
                                               conn.listener, basic_listed);
        OPENSSL_cleanse(decoded->data(), decoded->capacity());  // what a short (in-place) string left behind
        return o;
      }
      case AuthMethod::Bearer: {
        if (!authz || !iequals(scheme, "Bearer")) break;
        if (credentials.empty()) return deny("bearer: malformed credentials", "empty token", "", true);
        const Digest d = sha256(credentials);
        std::optional<TokenInfo> info;
        if (file_tokens_) info = file_tokens_->lookup(d);
        if (!info && issued_) info = issued_->lookup(d);
        if (!info) return deny("bearer: invalid token", "", "", true);
        if (info->expired_at(static_cast<int64_t>(std::time(nullptr))))
          return deny("token expired", "bearer: token \"" + info->name + "\" expired at " + iso_time(*info->expires), info->name, false);
        failures.succeeded(client, info->name);
        return allow(m, info->name, info->groups);
      }
      case AuthMethod::Peer: {
        if (!conn.has_peer_cred) break;
        if (auto it = ids_.peer.uids.find(conn.uid); it != ids_.peer.uids.end()) return allow(m, it->second.name, it->second.groups);
        if (auto it = ids_.peer.gids.find(conn.gid); it != ids_.peer.gids.end()) return allow(m, it->second.name, it->second.groups);
        return allow(m, "uid:" + std::to_string(conn.uid), {});
      }
      case AuthMethod::Anonymous: {
        // Credentials nobody here can check: granting "anonymous" instead would let the client
        // believe it is someone it is not.
        if (authz) return deny("Authorization header with a scheme this listener does not accept", "", "", false);
        return allow(m, "anonymous", {});
      }
    }
  }
  if (authz) return deny("Authorization header with a scheme this listener does not accept", "", "", false);
  return deny("authentication required", "", "", false);
}

}  // namespace

Outcome Authenticator::authenticate_blocking(const ConnectionFacts& conn, const std::vector<AuthMethod>& methods,
                                             const http::RequestHead& head, FailureTracker& failures) const {
  Outcome o = authenticate(conn, methods, head, failures);
  if (!o.check) return o;
  std::unique_ptr<PasswordCheck> check = std::move(o.check);
  check->run();
  return check->finish(failures);
}

Result<std::shared_ptr<const Authenticator>> Authenticator::create(const config::Config& cfg, std::shared_ptr<const TokenStore> issued) {
  std::string errors;
  std::optional<Htpasswd> htpasswd;
  std::shared_ptr<const TokenStore> tokens;
  if (!cfg.identities.basic.htpasswd.empty()) {
    auto h = Htpasswd::load(cfg.identities.basic.htpasswd);
    if (h) htpasswd = std::move(*h);
    else errors += h.error().message;
  }
  if (!cfg.identities.bearer.tokens.empty()) {
    auto t = MemoryTokenStore::from_file(cfg.identities.bearer.tokens);
    if (t) {
      tokens = *t;
    } else {
      if (!errors.empty()) errors += '\n';
      errors += t.error().message;
    }
  }
  if (!errors.empty()) return fail(errors);
  return std::shared_ptr<const Authenticator>(
      std::make_shared<AuthenticatorImpl>(cfg.identities, std::move(htpasswd), std::move(tokens), std::move(issued)));
}

}  // namespace dg::auth
