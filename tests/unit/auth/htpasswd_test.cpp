#include <doctest/doctest.h>

#include "auth/htpasswd.hpp"
#include "test_util.hpp"

using namespace dg::auth;
using dg_test::make_hash;
using dg_test::run;

TEST_CASE("hash kinds") {
  CHECK(hash_kind("$2y$05$abc") == HashKind::Bcrypt);
  CHECK(hash_kind("$2b$05$abc") == HashKind::Bcrypt);
  CHECK(hash_kind("$2a$05$abc") == HashKind::Bcrypt);
  CHECK(hash_kind("$6$salt$x") == HashKind::Sha512);
  CHECK(hash_kind("$5$salt$x") == HashKind::Sha256);
  CHECK(hash_kind("$y$j9T$salt$x") == HashKind::Yescrypt);
  CHECK(hash_kind("$1$salt$x") == HashKind::Md5);
  CHECK(hash_kind("$apr1$salt$x") == HashKind::Apr1);
  CHECK(hash_kind("{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=") == HashKind::Sha1);
  CHECK(hash_kind("abJnggxhB/yWI") == HashKind::Other);
  CHECK(hash_kind("password") == HashKind::Other);
  CHECK_FALSE(hash_kind_accepted(HashKind::Md5));
  CHECK(hash_kind_accepted(HashKind::Yescrypt));
}

TEST_CASE("every accepted hash kind verifies with crypt_r") {
  for (const char* prefix : {"$2b$", "$2y$", "$2a$", "$6$", "$5$", "$y$"}) {
    CAPTURE(prefix);
    const std::string h = make_hash(prefix, "s3cret pass");
    auto f = Htpasswd::parse("alice:" + h + "\n", "users");
    REQUIRE_MESSAGE(f, (f ? "" : f.error().message));
    CHECK(f->size() == 1);
    CHECK(f->verify("alice", "s3cret pass"));
    CHECK_FALSE(f->verify("alice", "s3cret pasS"));
    CHECK_FALSE(f->verify("alice", ""));
    CHECK_FALSE(f->verify("bob", "s3cret pass"));
    CHECK_FALSE(f->verify("alice", std::string("s3cret pass\0x", 13)));
  }
}

TEST_CASE("hash_to_check: the user's hash, a stand-in for an unknown user, nothing for an empty file") {
  const std::string a = make_hash("$2b$", "pw-a"), b = make_hash("$2b$", "pw-b");
  auto f = Htpasswd::parse("bob:" + b + "\nalice:" + a + "\n", "users");
  REQUIRE(f);
  bool known = false;
  const std::string* h = f->hash_to_check("alice", &known);
  REQUIRE(h);
  CHECK(known);
  CHECK(*h == a);
  h = f->hash_to_check("mallory", &known);
  REQUIRE(h);  // still one hash computation of the same scheme and cost
  CHECK_FALSE(known);
  CHECK(hash_kind(*h) == HashKind::Bcrypt);
  CHECK(crypt_matches("pw-a", *f->hash_to_check("alice", &known)));
  auto empty = Htpasswd::parse("# none\n", "users");
  REQUIRE(empty);
  CHECK(empty->hash_to_check("alice", &known) == nullptr);
  CHECK_FALSE(known);
}

TEST_CASE("a file written by htpasswd -B (bcrypt)") {
  dg_test::TempDir t;
  const std::string path = (t.dir / "users").string();
  run("htpasswd -cbB " + path + " alice 'correct horse' 2>/dev/null");
  run("htpasswd -bB " + path + " bob 'battery staple' 2>/dev/null");
  auto f = Htpasswd::load(path);
  REQUIRE_MESSAGE(f, (f ? "" : f.error().message));
  CHECK(f->size() == 2);
  CHECK(f->verify("alice", "correct horse"));
  CHECK(f->verify("bob", "battery staple"));
  CHECK_FALSE(f->verify("alice", "battery staple"));
  CHECK(f->contains("bob"));
  CHECK_FALSE(f->contains("carol"));
}

TEST_CASE("weak hashes are refused at load, naming file, line and user") {
  const std::string md5 = run("htpasswd -nbm m5 pw 2>/dev/null");
  const std::string sha = run("htpasswd -nbs sh pw 2>/dev/null");
  const std::string plain = "pl:pw";
  REQUIRE(md5.find("$apr1$") != std::string::npos);
  REQUIRE(sha.find("{SHA}") != std::string::npos);
  const std::string text = "# users\n"
                           "\n"
                           "good:" + make_hash("$6$", "x") + "\n" +
                           md5 + "\n" +
                           "md:$1$abcdefgh$2dPz8dzNHyNs6Y.sJ3Bw/0\n" +
                           sha + "\n" +
                           "des:abJnggxhB/yWI\n" +
                           plain + "\r\n" +
                           "broken line\n"
                           "bad:$2y$05$tooshort\n"
                           "good:" + make_hash("$2b$", "y") + "\n";
  auto f = Htpasswd::parse(text, "/etc/dockgate/users.htpasswd");
  REQUIRE_FALSE(f);
  const std::string& e = f.error().message;
  CHECK(e.find("/etc/dockgate/users.htpasswd:4: user m5: MD5/apr1 hashes are not accepted; re-create with htpasswd -B") != std::string::npos);
  CHECK(e.find("/etc/dockgate/users.htpasswd:5: user md: MD5/apr1 hashes are not accepted; re-create with htpasswd -B") != std::string::npos);
  CHECK(e.find(":6: user sh: SHA-1 ({SHA}) hashes are not accepted") != std::string::npos);
  CHECK(e.find(":7: user des: plain-text, DES or unknown hashes are not accepted") != std::string::npos);
  CHECK(e.find(":8: user pl: plain-text") != std::string::npos);
  CHECK(e.find(":9: expected user:hash") != std::string::npos);
  CHECK(e.find(":10: user bad: malformed hash") != std::string::npos);
  CHECK(e.find(":11: user good: listed twice (first on line 3)") != std::string::npos);
  // The stored hashes and passwords are never echoed.
  CHECK(e.find("abJnggxhB") == std::string::npos);
  CHECK(e.find("pw") == std::string::npos);
}

TEST_CASE("comments, blank lines and CRLF") {
  auto f = Htpasswd::parse("# comment\r\n\r\n  # indented comment\nalice:" + make_hash("$5$", "pw") + "\r\n", "u");
  REQUIRE_MESSAGE(f, (f ? "" : f.error().message));
  CHECK(f->verify("alice", "pw"));
  CHECK(Htpasswd::parse("", "u")->size() == 0);
}

TEST_CASE("unreadable htpasswd file") {
  auto f = Htpasswd::load("/nonexistent/users");
  REQUIRE_FALSE(f);
  CHECK(f.error().message.find("/nonexistent/users: cannot read htpasswd file") != std::string::npos);
}
