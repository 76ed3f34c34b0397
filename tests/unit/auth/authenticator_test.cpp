#include <doctest/doctest.h>

#include <thread>

#include "auth/identity.hpp"
#include "auth/tokens.hpp"
#include "test_util.hpp"

using namespace dg;
using namespace dg::auth;
using dg_test::base64;
using dg_test::make_hash;
using M = config::AuthMethod;

namespace {

struct Fixture {
  dg_test::TempDir t;
  config::Config cfg;
  std::shared_ptr<const Authenticator> auth;
  FailureTracker failures;
  std::string ci_token = "ci-secret-token-0123456789";
  std::string old_token = "expired-token-abcdef";

  Fixture() {
    cfg.identities.basic.htpasswd =
        t.write("users", "alice:" + make_hash("$2b$", "wonderland") + "\nbob:" + make_hash("$6$", "builder") + "\n");
    cfg.identities.basic.groups["alice"] = {"admins", "dev"};
    cfg.identities.bearer.tokens = t.write("tokens.yaml", "tokens:\n"
                                                          "  - name: ci-runner\n"
                                                          "    sha256: " + to_hex(sha256(ci_token)) + "\n"
                                                          "    groups: [ci]\n"
                                                          "    expires: 2999-12-31T00:00:00Z\n"
                                                          "  - name: old\n"
                                                          "    sha256: " + to_hex(sha256(old_token)) + "\n"
                                                          "    expires: 2020-01-01T00:00:00Z\n");
    cfg.identities.peer.uids[1000] = {"alice", {"dev"}};
    cfg.identities.peer.gids[998] = {"ci", {"ci"}};
    cfg.identities.mtls.groups["carol"] = {"ops"};
    auto a = Authenticator::create(cfg);
    REQUIRE_MESSAGE(a, (a ? "" : a.error().message));
    auth = *a;
  }

  static http::RequestHead head(const std::string& authz = {}) {
    http::RequestHead h;
    h.method = "GET";
    h.target = h.path = "/_ping";
    h.headers.push_back({"Host", "api.moby.localhost"});
    if (!authz.empty()) h.headers.push_back({"authorization", authz});
    return h;
  }
  static ConnectionFacts tcp(std::string remote = "192.0.2.7:40000") {
    ConnectionFacts c;
    c.listener = "tls";
    c.remote = std::move(remote);
    c.tls = true;
    return c;
  }
  // The password check (if any) run here, as the proxy runs it on the thread pool.
  Outcome run(const ConnectionFacts& c, std::vector<M> methods, const http::RequestHead& h) {
    return auth->authenticate_blocking(c, methods, h, failures);
  }
};

std::string basic(const std::string& user, const std::string& pw) { return "Basic " + base64(user + ":" + pw); }

bool has_challenge(const Outcome& o) {
  for (const auto& h : o.challenge)
    if (h.name == "WWW-Authenticate" && h.value == "Basic realm=\"dockgate\"") return true;
  return false;
}

}  // namespace

TEST_CASE("basic: right password, groups from the configuration, cached second time") {
  Fixture f;
  auto o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head(basic("alice", "wonderland")));
  REQUIRE_MESSAGE(o.ok, o.reason);
  CHECK(o.identity.name == "alice");
  CHECK(o.identity.groups == std::vector<std::string>{"admins", "dev"});
  CHECK(o.identity.method == M::Basic);
  CHECK(o.identity.listener == "tls");
  CHECK(o.identity.in_group("dev"));
  CHECK_FALSE(o.identity.in_group("ci"));
  o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head(basic("alice", "wonderland")));
  CHECK(o.ok);
  o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head("bAsIc " + base64("bob:builder")));
  REQUIRE(o.ok);
  CHECK(o.identity.name == "bob");
  CHECK(o.identity.groups.empty());
}

TEST_CASE("basic: wrong password is denied with a growing delay, no fall-through, no secrets") {
  Fixture f;
  uint32_t last = 0;
  for (int i = 0; i < 4; ++i) {
    auto o = f.run(Fixture::tcp(), {M::Basic, M::Anonymous}, Fixture::head(basic("alice", "guess" + std::to_string(i))));
    REQUIRE_FALSE(o.ok);
    CHECK(o.reason == "basic: wrong user name or password");
    CHECK(o.detail == "basic: wrong password for user \"alice\"");
    CHECK(o.user == "alice");
    CHECK(o.reason.find("guess") == std::string::npos);
    CHECK(o.detail.find("guess") == std::string::npos);
    CHECK(has_challenge(o));
    CHECK(o.delay_ms > last);
    last = o.delay_ms;
  }
  CHECK(last == 800);
  // Same user from another client: the per-user counter keeps growing.
  auto o = f.run(Fixture::tcp("198.51.100.1:1"), {M::Basic}, Fixture::head(basic("alice", "nope")));
  CHECK(o.delay_ms == 1600);
  // Success resets both counters.
  o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head(basic("alice", "wonderland")));
  REQUIRE(o.ok);
  CHECK(f.failures.current_delay("192.0.2.7", "alice") == 0);
  o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head(basic("nobody", "x")));
  REQUIRE_FALSE(o.ok);
  CHECK(o.detail == "basic: unknown user \"nobody\"");
  CHECK(o.delay_ms == 100);
}

TEST_CASE("basic: a password not in the cache comes back as a check; cached ones are answered at once") {
  Fixture f;
  const auto head = Fixture::head(basic("alice", "wonderland"));
  auto o = f.auth->authenticate(Fixture::tcp(), {M::Basic}, head, f.failures);
  REQUIRE(o.check);
  CHECK_FALSE(o.ok);
  CHECK(o.reason.empty());
  CHECK(o.delay_ms == 0);
  // Not finished yet: nothing cached, so the same credentials need a check again.
  auto again = f.auth->authenticate(Fixture::tcp(), {M::Basic}, head, f.failures);
  REQUIRE(again.check);
  again.check.reset();  // dropped without finish(): no effect
  // The check runs on another thread and is finished here.
  std::unique_ptr<PasswordCheck> check = std::move(o.check);
  std::thread([&] { check->run(); }).join();
  auto done = check->finish(f.failures);
  REQUIRE(done.ok);
  CHECK_FALSE(done.check);
  CHECK(done.identity.name == "alice");
  CHECK(done.identity.groups == std::vector<std::string>{"admins", "dev"});
  CHECK(done.identity.method == M::Basic);
  CHECK(done.identity.listener == "tls");
  // Now cached: answered without a check.
  o = f.auth->authenticate(Fixture::tcp(), {M::Basic}, head, f.failures);
  CHECK_FALSE(o.check);
  CHECK(o.ok);
  CHECK(o.identity.name == "alice");
  // The check kept its Authenticator alive: a check outliving the snapshot (reload) is safe.
  auto late = f.auth->authenticate(Fixture::tcp(), {M::Basic}, Fixture::head(basic("bob", "wrong")), f.failures);
  REQUIRE(late.check);
  f.auth.reset();
  late.check->run();
  auto denied = late.check->finish(f.failures);
  CHECK_FALSE(denied.ok);
  CHECK(denied.detail == "basic: wrong password for user \"bob\"");
  CHECK(denied.delay_ms == 100);
}

TEST_CASE("basic: unknown users and wrong passwords are checked (one hash) too, never answered at once") {
  Fixture f;
  for (const auto& [user, pw] : {std::pair{"nobody", "x"}, std::pair{"alice", "bad"}}) {
    auto o = f.auth->authenticate(Fixture::tcp(), {M::Basic}, Fixture::head(basic(user, pw)), f.failures);
    REQUIRE(o.check);
    CHECK(f.failures.current_delay("192.0.2.7", user) == 0);  // counted only when finished
  }
  // Bearer, mTLS, peer and anonymous never need a check.
  auto o = f.auth->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer " + f.ci_token), f.failures);
  CHECK_FALSE(o.check);
  CHECK(o.ok);
  o = f.auth->authenticate(Fixture::tcp(), {M::Basic, M::Anonymous}, Fixture::head(), f.failures);
  CHECK_FALSE(o.check);
  CHECK(o.ok);
}

TEST_CASE("basic: an empty htpasswd file denies without a check") {
  dg_test::TempDir t;
  config::Config cfg;
  cfg.identities.basic.htpasswd = t.write("empty", "# nobody\n");
  auto a = Authenticator::create(cfg);
  REQUIRE_MESSAGE(a, (a ? "" : a.error().message));
  FailureTracker failures;
  auto o = (*a)->authenticate(Fixture::tcp(), {M::Basic}, Fixture::head(basic("alice", "x")), failures);
  CHECK_FALSE(o.check);
  CHECK_FALSE(o.ok);
  CHECK(o.detail == "basic: unknown user \"alice\"");
  CHECK(o.delay_ms == 100);
}

TEST_CASE("basic: malformed credentials") {
  Fixture f;
  for (const std::string& h : {std::string("Basic !!!"), "Basic " + base64("no-colon"), "Basic " + base64(":pw"), std::string("Basic")}) {
    auto o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head(h));
    CHECK_FALSE(o.ok);
    CHECK(o.reason == "basic: malformed credentials");
  }
}

TEST_CASE("bearer: valid, unknown, expired; issued tokens") {
  auto issued = std::make_shared<MemoryTokenStore>();
  Fixture f;
  auto a = Authenticator::create(f.cfg, issued);
  REQUIRE(a);
  FailureTracker failures;
  auto o = (*a)->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer " + f.ci_token), failures);
  REQUIRE_MESSAGE(o.ok, o.reason);
  CHECK(o.identity.name == "ci-runner");
  CHECK(o.identity.groups == std::vector<std::string>{"ci"});
  CHECK(o.identity.method == M::Bearer);

  o = (*a)->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer wrong-token"), failures);
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "bearer: invalid token");
  CHECK(o.delay_ms == 100);
  CHECK(o.challenge.empty());  // basic is not among the methods

  o = (*a)->authenticate(Fixture::tcp(), {M::Bearer, M::Anonymous}, Fixture::head("Bearer " + f.old_token), failures);
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "token expired");
  CHECK(o.detail == "bearer: token \"old\" expired at 2020-01-01T00:00:00Z");
  CHECK(o.detail.find(f.old_token) == std::string::npos);

  const std::string t = generate_token();
  CHECK(t.size() == 47);
  o = (*a)->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer " + t), failures);
  CHECK_FALSE(o.ok);
  issued->add(sha256(t), TokenInfo{"session-42", {"sessions"}, std::nullopt});
  o = (*a)->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer " + t), failures);
  REQUIRE(o.ok);
  CHECK(o.identity.name == "session-42");
  CHECK(issued->revoke(sha256(t)));
  CHECK_FALSE(issued->revoke(sha256(t)));
  o = (*a)->authenticate(Fixture::tcp(), {M::Bearer}, Fixture::head("Bearer " + t), failures);
  CHECK_FALSE(o.ok);
}

TEST_CASE("peer: uid mapping, then gid mapping, else uid:N") {
  Fixture f;
  ConnectionFacts c;
  c.listener = "local";
  c.remote = "unix";
  c.has_peer_cred = true;
  c.uid = 1000;
  c.gid = 998;
  auto o = f.run(c, {M::Peer}, Fixture::head());
  REQUIRE(o.ok);
  CHECK(o.identity.name == "alice");
  CHECK(o.identity.groups == std::vector<std::string>{"dev"});
  CHECK(o.identity.method == M::Peer);
  c.uid = 1001;
  o = f.run(c, {M::Peer}, Fixture::head());
  REQUIRE(o.ok);
  CHECK(o.identity.name == "ci");
  CHECK(o.identity.groups == std::vector<std::string>{"ci"});
  c.gid = 100;
  o = f.run(c, {M::Peer}, Fixture::head());
  REQUIRE(o.ok);
  CHECK(o.identity.name == "uid:1001");
  CHECK(o.identity.groups.empty());
  // Basic first on a unix listener: a client sending credentials is checked by them.
  o = f.run(c, {M::Basic, M::Peer}, Fixture::head(basic("bob", "builder")));
  REQUIRE(o.ok);
  CHECK(o.identity.name == "bob");
  o = f.run(c, {M::Basic, M::Peer}, Fixture::head(basic("bob", "wrong")));
  CHECK_FALSE(o.ok);
  o = f.run(c, {M::Basic, M::Peer}, Fixture::head());
  REQUIRE(o.ok);
  CHECK(o.identity.name == "uid:1001");
  // Without SO_PEERCRED peer cannot apply.
  c.has_peer_cred = false;
  o = f.run(c, {M::Peer}, Fixture::head());
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "authentication required");
}

TEST_CASE("mtls: CN or SAN, OU groups plus mapped groups") {
  tls::PeerCertificate cert;
  cert.present = cert.verified = true;
  cert.subject = "CN=carol,OU=dev,OU=dev,OU=qa";
  cert.common_name = "carol";
  cert.organizational_units = {"dev", "dev", "qa"};
  cert.san_email = {"carol@example.com"};
  Fixture f;
  ConnectionFacts c = Fixture::tcp();
  c.cert = &cert;
  auto o = f.run(c, {M::Mtls, M::Basic}, Fixture::head(basic("alice", "bad")));
  REQUIRE(o.ok);  // the certificate comes first in this listener's order
  CHECK(o.identity.name == "carol");
  CHECK(o.identity.groups == std::vector<std::string>{"dev", "qa", "ops"});
  CHECK(o.identity.method == M::Mtls);

  f.cfg.identities.mtls.from = config::MtlsIdentity::From::SanEmail;
  f.cfg.identities.mtls.groups_from_ou = false;
  auto a = Authenticator::create(f.cfg);
  REQUIRE(a);
  o = (*a)->authenticate(c, {M::Mtls}, Fixture::head(), f.failures);
  REQUIRE(o.ok);
  CHECK(o.identity.name == "carol@example.com");
  CHECK(o.identity.groups.empty());

  f.cfg.identities.mtls.from = config::MtlsIdentity::From::SanDns;
  a = Authenticator::create(f.cfg);
  o = (*a)->authenticate(c, {M::Mtls}, Fixture::head(), f.failures);
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "mtls: client certificate has no DNS subject alternative name");

  cert.verified = false;
  o = f.run(c, {M::Mtls}, Fixture::head());
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "mtls: client certificate not verified");

  // No certificate: mtls does not apply; the next method may.
  c.cert = nullptr;
  o = f.run(c, {M::Mtls, M::Basic}, Fixture::head(basic("alice", "wonderland")));
  REQUIRE(o.ok);
  CHECK(o.identity.name == "alice");
}

TEST_CASE("anonymous only where listed; challenge only with basic") {
  Fixture f;
  auto o = f.run(Fixture::tcp(), {M::Bearer}, Fixture::head());
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "authentication required");
  CHECK(o.challenge.empty());
  CHECK(o.delay_ms == 0);
  o = f.run(Fixture::tcp(), {M::Bearer, M::Basic}, Fixture::head());
  CHECK_FALSE(o.ok);
  CHECK(has_challenge(o));
  o = f.run(Fixture::tcp(), {M::Basic, M::Anonymous}, Fixture::head());
  REQUIRE(o.ok);
  CHECK(o.identity.name == "anonymous");
  CHECK(o.identity.method == M::Anonymous);
  CHECK(o.identity.groups.empty());
  // Credentials nobody on this listener can check are not silently downgraded to anonymous.
  o = f.run(Fixture::tcp(), {M::Anonymous}, Fixture::head("Bearer " + f.ci_token));
  CHECK_FALSE(o.ok);
  o = f.run(Fixture::tcp(), {M::Basic}, Fixture::head("Negotiate abc"));
  CHECK_FALSE(o.ok);
  CHECK(o.reason.find("abc") == std::string::npos);
  // Two Authorization headers are ambiguous.
  auto h = Fixture::head(basic("alice", "wonderland"));
  h.headers.push_back({"Authorization", "Bearer " + f.ci_token});
  o = f.run(Fixture::tcp(), {M::Basic, M::Bearer}, h);
  CHECK_FALSE(o.ok);
  CHECK(o.reason == "multiple Authorization headers");
}

TEST_CASE("create refuses weak htpasswd entries and broken token files") {
  dg_test::TempDir t;
  config::Config cfg;
  cfg.identities.basic.htpasswd = t.write("users", "a:" + make_hash("$6$", "x") + "\nm:$apr1$abcdefgh$0123456789012345678901\n");
  cfg.identities.bearer.tokens = t.write("tokens.yaml", "tokens:\n  - name: x\n    sha256: 123\n");
  auto a = Authenticator::create(cfg);
  REQUIRE_FALSE(a);
  CHECK(a.error().message.find(cfg.identities.basic.htpasswd + ":2: user m: MD5/apr1 hashes are not accepted") != std::string::npos);
  CHECK(a.error().message.find(cfg.identities.bearer.tokens + ":3:13: tokens[0].sha256 must be 64 hex digits") != std::string::npos);
}

TEST_CASE("failure tracker: exponential back-off, cap, reset, expiry, bounded") {
  using C = FailureTracker::Clock;
  FailureTracker ft;
  const auto t0 = C::now();
  CHECK(ft.failed("1.2.3.4", "", t0) == 100);
  CHECK(ft.failed("1.2.3.4", "", t0) == 200);
  CHECK(ft.failed("1.2.3.4", "", t0) == 400);
  for (int i = 0; i < 10; ++i) ft.failed("1.2.3.4", "", t0);
  CHECK(ft.current_delay("1.2.3.4", "", t0) == FailureTracker::kMaxDelayMs);
  CHECK(ft.current_delay("1.2.3.4", "", t0 + std::chrono::minutes(14)) == FailureTracker::kMaxDelayMs);
  CHECK(ft.current_delay("1.2.3.4", "", t0 + std::chrono::minutes(15)) == 0);
  CHECK(ft.failed("1.2.3.4", "", t0 + std::chrono::minutes(16)) == 100);  // forgotten, starts over
  ft.failed("5.6.7.8", "eve", t0);
  CHECK(ft.current_delay("9.9.9.9", "eve", t0) == 100);  // per user, whatever the client
  ft.succeeded("5.6.7.8", "eve");
  CHECK(ft.current_delay("9.9.9.9", "eve", t0) == 0);

  FailureTracker big;
  for (size_t i = 0; i < FailureTracker::kMaxEntries + 500; ++i) big.failed("10.0." + std::to_string(i), "", t0);
  CHECK(big.size() == FailureTracker::kMaxEntries);
  CHECK(big.current_delay("10.0.0", "", t0) == 0);  // the oldest were evicted
  CHECK(big.current_delay("10.0." + std::to_string(FailureTracker::kMaxEntries + 499), "", t0) == 100);
}

TEST_CASE("client key drops the ephemeral port") {
  ConnectionFacts c;
  c.remote = "192.0.2.1:5555";
  CHECK(client_key(c) == "192.0.2.1");
  c.remote = "[2001:db8::1]:5555";
  CHECK(client_key(c) == "2001:db8::1");
  c.remote = "unix";
  CHECK(client_key(c) == "unix");
  c.has_peer_cred = true;
  c.uid = 1000;
  CHECK(client_key(c) == "uid:1000");
}

TEST_CASE("token digests") {
  CHECK(to_hex(sha256("test")) == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  auto d = digest_from_hex("9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08");
  REQUIRE(d);
  CHECK(*d == sha256("test"));
  CHECK_FALSE(digest_from_hex("xyz"));
  CHECK(generate_token() != generate_token());
}
