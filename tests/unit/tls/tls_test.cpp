#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls.hpp"

using namespace dg::tls;
namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Test PKI, generated once per run into a temp dir with the OpenSSL C API.

struct KeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct CertFree { void operator()(X509* p) const { X509_free(p); } };
struct CrlFree { void operator()(X509_CRL* p) const { X509_CRL_free(p); } };
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;
using Cert = std::unique_ptr<X509, CertFree>;

constexpr long kDay = 24 * 3600;

enum class Eku { None, Client, Server };

struct CertSpec {
  std::string cn;
  std::vector<std::string> ous;
  long serial = 1;
  long not_before = -kDay;  // seconds from now
  long not_after = 30 * kDay;
  bool ca = false;
  Eku eku = Eku::None;
  std::string san;  // "DNS:localhost,IP:127.0.0.1"
};

CertSpec spec(std::string cn, long serial, Eku eku = Eku::None, std::string san = {}) {
  CertSpec s;
  s.cn = std::move(cn);
  s.serial = serial;
  s.eku = eku;
  s.san = std::move(san);
  return s;
}

CertSpec ca_spec(std::string cn) {
  CertSpec s = spec(std::move(cn), 1);
  s.ca = true;
  return s;
}

CertSpec validity(CertSpec s, long not_before, long not_after) {
  s.not_before = not_before;
  s.not_after = not_after;
  return s;
}

Key ec_key() { return Key(EVP_EC_gen("P-256")); }

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str());
  REQUIRE(ext != nullptr);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed with `key`.
Cert make_cert(const CertSpec& s, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  Cert c(X509_new());
  X509_set_version(c.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.get()), s.serial);
  X509_gmtime_adj(X509_getm_notBefore(c.get()), s.not_before);
  X509_gmtime_adj(X509_getm_notAfter(c.get()), s.not_after);
  X509_NAME* name = X509_get_subject_name(c.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("dockgate test"), -1, -1, 0);
  for (const auto& ou : s.ous)
    X509_NAME_add_entry_by_txt(name, "OU", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(ou.c_str()), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(s.cn.c_str()), -1, -1, 0);
  X509* iss = issuer ? issuer : c.get();
  X509_set_issuer_name(c.get(), X509_get_subject_name(iss));
  X509_set_pubkey(c.get(), key);
  add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(c.get(), iss, NID_authority_key_identifier, "keyid:always");
  if (s.ca) {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  }
  if (s.eku == Eku::Client) add_ext(c.get(), iss, NID_ext_key_usage, "clientAuth");
  if (s.eku == Eku::Server) add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth");
  if (!s.san.empty()) add_ext(c.get(), iss, NID_subject_alt_name, s.san);
  REQUIRE(X509_sign(c.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return c;
}

void write_file(const fs::path& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary);
  f << data;
}

std::string pem_cert(X509* c) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, c);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);
  std::string s(d, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string pem_key(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);
  std::string s(d, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string pem_crl(X509* ca, EVP_PKEY* ca_key, const std::vector<long>& revoked) {
  std::unique_ptr<X509_CRL, CrlFree> crl(X509_CRL_new());
  X509_CRL_set_version(crl.get(), 1);
  X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca));
  ASN1_TIME* now = X509_gmtime_adj(nullptr, -3600);
  ASN1_TIME* next = X509_gmtime_adj(nullptr, 7 * kDay);
  X509_CRL_set1_lastUpdate(crl.get(), now);
  X509_CRL_set1_nextUpdate(crl.get(), next);
  for (long serial : revoked) {
    X509_REVOKED* r = X509_REVOKED_new();
    ASN1_INTEGER* sn = ASN1_INTEGER_new();
    ASN1_INTEGER_set(sn, serial);
    X509_REVOKED_set_serialNumber(r, sn);
    X509_REVOKED_set_revocationDate(r, now);
    X509_CRL_add0_revoked(crl.get(), r);
    ASN1_INTEGER_free(sn);
  }
  ASN1_TIME_free(now);
  ASN1_TIME_free(next);
  X509_CRL_sort(crl.get());
  REQUIRE(X509_CRL_sign(crl.get(), ca_key, EVP_sha256()) > 0);
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509_CRL(b, crl.get());
  char* d = nullptr;
  long n = BIO_get_mem_data(b, &d);
  std::string s(d, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

struct Pki {
  fs::path dir;
  Key ca_key, foreign_key;
  Cert ca, foreign;

  Pki() {
    char tmpl[] = "/tmp/dg-tls-test-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    ca_key = ec_key();
    ca = make_cert(ca_spec("dockgate test CA"), ca_key.get(), nullptr, nullptr);
    foreign_key = ec_key();
    foreign = make_cert(ca_spec("foreign CA"), foreign_key.get(), nullptr, nullptr);
    write_file(dir / "ca.pem", pem_cert(ca.get()));
    write_file(dir / "foreign-ca.pem", pem_cert(foreign.get()));

    leaf("server", spec("gw.test", 10, Eku::Server, "DNS:localhost,DNS:gw.test,IP:127.0.0.1"));
    CertSpec alice = spec("alice", 0x1234ABCD, Eku::Client, "DNS:alice.test,email:alice@example.com,URI:spiffe://test/alice");
    alice.ous = {"devs", "ops"};
    leaf("client", alice);
    leaf("noeku", spec("bob", 12));  // no EKU at all: acceptable as a client
    leaf("expired", validity(spec("old", 13, Eku::Client), -30 * kDay, -kDay));
    leaf("future", validity(spec("new", 14, Eku::Client), 10 * kDay, 30 * kDay));
    leaf("serveronly", spec("srv", 15, Eku::Server));
    leaf("revoked", spec("mallory", 16, Eku::Client));
    leaf("foreign", spec("eve", 17, Eku::Client), true);
    write_file(dir / "crl.pem", pem_crl(ca.get(), ca_key.get(), {16, 99}));

    // RSA server certificate: both key types must load.
    Key rsa(EVP_RSA_gen(2048));
    Cert rc = make_cert(spec("rsa.test", 20, Eku::Server, "DNS:localhost"), rsa.get(), ca.get(), ca_key.get());
    write_file(dir / "rsa.pem", pem_cert(rc.get()));
    write_file(dir / "rsa-key.pem", pem_key(rsa.get()));

    // Passphrase-protected key: must fail cleanly, never prompt on a terminal.
    {
      Key k = ec_key();
      BIO* b = BIO_new(BIO_s_mem());
      static const char pw[] = "secret";
      PEM_write_bio_PrivateKey(b, k.get(), EVP_aes_256_cbc(), reinterpret_cast<const unsigned char*>(pw), sizeof pw - 1,
                               nullptr, nullptr);
      char* d = nullptr;
      long n = BIO_get_mem_data(b, &d);
      write_file(dir / "encrypted-key.pem", std::string(d, static_cast<size_t>(n)));
      BIO_free(b);
    }

    // Intermediate CA: the server sends leaf + intermediate from one chain file.
    {
      Key ik = ec_key();
      CertSpec is = ca_spec("dockgate intermediate");
      is.serial = 30;
      Cert ic = make_cert(is, ik.get(), ca.get(), ca_key.get());
      Key lk = ec_key();
      Cert lc = make_cert(spec("chained.test", 31, Eku::Server, "DNS:localhost"), lk.get(), ic.get(), ik.get());
      write_file(dir / "chained.pem", pem_cert(lc.get()) + pem_cert(ic.get()));
      write_file(dir / "chained-key.pem", pem_key(lk.get()));
    }

    write_file(dir / "garbage.pem", "this is not PEM\n");
    write_file(dir / "unreadable.pem", pem_cert(ca.get()));
    ::chmod((dir / "unreadable.pem").c_str(), 0);
  }
  ~Pki() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  void leaf(const std::string& name, const CertSpec& spec, bool foreign_issuer = false) {
    Key k = ec_key();
    Cert c = foreign_issuer ? make_cert(spec, k.get(), foreign.get(), foreign_key.get())
                            : make_cert(spec, k.get(), ca.get(), ca_key.get());
    write_file(dir / (name + ".pem"), pem_cert(c.get()));
    write_file(dir / (name + "-key.pem"), pem_key(k.get()));
  }

  std::string path(const std::string& f) const { return (dir / f).string(); }
  std::string cert(const std::string& n) const { return path(n + ".pem"); }
  std::string key(const std::string& n) const { return path(n + "-key.pem"); }
};

Pki& pki() {
  static Pki p;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Two engines talking through strings.

std::shared_ptr<Context> server_ctx(bool mtls = true, bool crl = false, const std::string& name = "server") {
  ServerOptions o;
  o.certificate = pki().cert(name);
  o.key = pki().key(name);
  if (mtls) o.client_ca = pki().path("ca.pem");
  if (crl) o.crl = pki().path("crl.pem");
  auto r = Context::server(o);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  return *r;
}

std::shared_ptr<Context> client_ctx(const std::string& client = "client", bool tls12_only = false) {
  ClientOptions o;
  o.ca = pki().path("ca.pem");
  if (!client.empty()) {
    o.certificate = pki().cert(client);
    o.key = pki().key(client);
  }
  auto r = Context::client(o);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().message));
  if (tls12_only) SSL_CTX_set_max_proto_version(static_cast<SSL_CTX*>((*r)->native()), TLS1_2_VERSION);
  return *r;
}

struct Pair {
  Engine client;
  Engine server;
  std::string client_plain, server_plain;  // what each side decrypted
  Engine::Status client_status = Engine::Status::Ok, server_status = Engine::Status::Ok;

  Pair(std::shared_ptr<Context> c, std::shared_ptr<Context> s, std::string name = "localhost")
      : client(std::move(c), std::move(name)), server(std::move(s)) {}

  // Moves ciphertext both ways until neither side has anything to say. `chunk` splits every
  // flight into pieces to exercise partial records.
  void pump(size_t chunk = 0) {
    std::string wire;
    for (int i = 0; i < 100000; ++i) {
      bool moved = false;
      if (client.has_output()) {
        wire.clear();
        client.take_output(wire);
        deliver(server, wire, chunk);
        moved = true;
      }
      if (server_status == Engine::Status::Ok || moved) server_status = step(server, server_plain, server_status);
      bool moved2 = false;
      if (server.has_output()) {
        wire.clear();
        server.take_output(wire);
        deliver(client, wire, chunk);
        moved2 = true;
      }
      if (client_status == Engine::Status::Ok || moved2) client_status = step(client, client_plain, client_status);
      if (!moved && !moved2 && !client.has_output() && !server.has_output()) return;
    }
    FAIL("pump did not settle");
  }

  static void deliver(Engine& e, const std::string& wire, size_t chunk) {
    if (chunk == 0) {
      e.feed(wire.data(), wire.size());
      return;
    }
    for (size_t off = 0; off < wire.size(); off += chunk) e.feed(wire.data() + off, std::min(chunk, wire.size() - off));
  }

  static Engine::Status step(Engine& e, std::string& plain, Engine::Status prev) {
    if (prev == Engine::Status::Error) return prev;
    return e.read(plain);
  }

  bool established() const { return client.handshake_done() && server.handshake_done(); }
};

std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, std::min<size_t>(8, n - i));
  }
  return s;
}

std::string refused_reason(const std::string& client, bool crl = false, bool tls12 = false) {
  Pair p(client_ctx(client, tls12), server_ctx(true, crl));
  p.pump();
  CHECK(p.server_status == Engine::Status::Error);
  CHECK(!p.server.handshake_done());
  // The client learns through the alert the server sent.
  CHECK(p.client_status == Engine::Status::Error);
  CHECK(!p.client.error().empty());
  CHECK(ERR_peek_error() == 0);
  return p.server.error();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

TEST_CASE("mTLS handshake negotiates TLS 1.3 and exchanges data") {
  Pair p(client_ctx(), server_ctx());
  CHECK(p.client.has_output());  // ClientHello ready right after construction
  p.pump();
  REQUIRE(p.established());
  CHECK(p.client_status == Engine::Status::Ok);
  CHECK(p.server_status == Engine::Status::Ok);
  CHECK(p.client.version() == "TLSv1.3");
  CHECK(p.server.version() == "TLSv1.3");

  const char req[] = "HEAD /_ping HTTP/1.1\r\nHost: gw\r\n\r\n";
  CHECK(p.client.write(req, sizeof req - 1) == Engine::Status::Ok);
  p.pump();
  CHECK(p.server_plain == req);
  CHECK(p.server.write("HTTP/1.1 200 OK\r\n\r\n", 19) == Engine::Status::Ok);
  p.pump(7);
  CHECK(p.client_plain == "HTTP/1.1 200 OK\r\n\r\n");
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("TLS 1.2-only client still gets mTLS") {
  Pair p(client_ctx("client", true), server_ctx());
  p.pump(100);
  REQUIRE(p.established());
  CHECK(p.server.version() == "TLSv1.2");
  CHECK(p.server.peer().common_name == "alice");
  CHECK(p.server.peer().verified);
}

TEST_CASE("writes before the handshake are queued and sent after it") {
  Pair p(client_ctx(), server_ctx());
  CHECK(p.client.write("early", 5) == Engine::Status::Ok);
  CHECK(p.server.write("hello", 5) == Engine::Status::Ok);  // server side too
  p.pump();
  REQUIRE(p.established());
  CHECK(p.server_plain == "early");
  CHECK(p.client_plain == "hello");
}

TEST_CASE("peer certificate fields") {
  Pair p(client_ctx(), server_ctx());
  p.pump();
  REQUIRE(p.established());
  const PeerCertificate& c = p.server.peer();
  CHECK(c.present);
  CHECK(c.verified);
  CHECK(c.common_name == "alice");
  CHECK(c.subject == "CN=alice,OU=ops,OU=devs,O=dockgate test");
  CHECK(c.organizational_units == std::vector<std::string>{"devs", "ops"});
  CHECK(c.san_dns == std::vector<std::string>{"alice.test"});
  CHECK(c.san_email == std::vector<std::string>{"alice@example.com"});
  CHECK(c.san_uri == std::vector<std::string>{"spiffe://test/alice"});
  CHECK(c.serial_hex == "1234ABCD");
  REQUIRE(c.not_after.size() == 20);
  CHECK(c.not_after[4] == '-');
  CHECK(c.not_after[10] == 'T');
  CHECK(c.not_after.back() == 'Z');

  const PeerCertificate& s = p.client.peer();
  CHECK(s.present);
  CHECK(s.verified);
  CHECK(s.common_name == "gw.test");
  CHECK(s.san_dns == std::vector<std::string>{"localhost", "gw.test"});
}

TEST_CASE("server without client_ca asks for no certificate") {
  Pair p(client_ctx(""), server_ctx(false));
  p.pump();
  REQUIRE(p.established());
  CHECK(!p.server.peer().present);
  CHECK(!p.server.peer().verified);
}

TEST_CASE("RSA server key works") {
  Pair p(client_ctx(), server_ctx(true, false, "rsa"));
  p.pump();
  REQUIRE(p.established());
  CHECK(p.client.peer().common_name == "rsa.test");
}

TEST_CASE("certificate chain file with an intermediate") {
  Pair p(client_ctx(), server_ctx(true, false, "chained"));
  p.pump();
  REQUIRE(p.established());
  CHECK(p.client.peer().common_name == "chained.test");
  CHECK(p.client.peer().verified);
}

TEST_CASE("the server's own chain is built once, not on every handshake") {
  // A leaf-only certificate file: the chain (the CA from client_ca, as OpenSSL's per-handshake
  // auto-chaining would send it) is built when the context is made; auto-chaining is off.
  auto leaf_only = server_ctx();
  auto* ctx = static_cast<SSL_CTX*>(leaf_only->native());
  STACK_OF(X509)* chain = nullptr;
  REQUIRE(SSL_CTX_get0_chain_certs(ctx, &chain) == 1);
  REQUIRE(sk_X509_num(chain) == 1);
  char cn[128] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "dockgate test CA");
  CHECK((SSL_CTX_get_mode(ctx) & SSL_MODE_NO_AUTO_CHAIN) != 0);
  // A chain file keeps exactly what it lists.
  auto chained = server_ctx(true, false, "chained");
  chain = nullptr;
  REQUIRE(SSL_CTX_get0_chain_certs(static_cast<SSL_CTX*>(chained->native()), &chain) == 1);
  REQUIRE(sk_X509_num(chain) == 1);
  X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(chain, 0)), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "dockgate intermediate");
  Pair p(client_ctx(), leaf_only);
  p.pump();
  REQUIRE(p.established());
  CHECK(p.client.peer().verified);
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("a client certificate without any EKU is accepted") {
  Pair p(client_ctx("noeku"), server_ctx());
  p.pump();
  REQUIRE(p.established());
  CHECK(p.server.peer().common_name == "bob");
}

TEST_CASE("client certificate is required") {
  SUBCASE("TLS 1.3") { CHECK(refused_reason("").find("peer did not return a certificate") != std::string::npos); }
  SUBCASE("TLS 1.2") { CHECK(refused_reason("", false, true).find("peer did not return a certificate") != std::string::npos); }
}

TEST_CASE("bad client certificates are refused with the reason") {
  CHECK(refused_reason("expired") == "certificate verify failed: certificate has expired");
  CHECK(refused_reason("future") == "certificate verify failed: certificate is not yet valid");
  CHECK(refused_reason("foreign") == "certificate verify failed: unable to get local issuer certificate");
  CHECK(refused_reason("serveronly") == "certificate verify failed: unsuitable certificate purpose");
  CHECK(refused_reason("expired", false, true) == "certificate verify failed: certificate has expired");
}

TEST_CASE("CRL revokes a client certificate and lets the others in") {
  CHECK(refused_reason("revoked", true) == "certificate verify failed: certificate revoked");
  CHECK(refused_reason("revoked", true, true) == "certificate verify failed: certificate revoked");
  Pair good(client_ctx(), server_ctx(true, true));
  good.pump();
  CHECK(good.established());
  Pair before(client_ctx("revoked"), server_ctx(true, false));  // no CRL configured: accepted
  before.pump();
  CHECK(before.established());
}

TEST_CASE("server name verification on the client side") {
  SUBCASE("IP literal matches the IP SAN") {
    Pair p(client_ctx(), server_ctx(), "127.0.0.1");
    p.pump();
    CHECK(p.established());
  }
  SUBCASE("wrong host name") {
    Pair p(client_ctx(), server_ctx(), "evil.test");
    p.pump();
    CHECK(p.client_status == Engine::Status::Error);
    CHECK(p.client.error() == "certificate verify failed: hostname mismatch");
  }
  SUBCASE("IP not in the certificate") {
    Pair p(client_ctx(), server_ctx(), "10.1.2.3");
    p.pump();
    CHECK(p.client_status == Engine::Status::Error);
    CHECK(p.client.error() == "certificate verify failed: IP address mismatch");
  }
  SUBCASE("server from a foreign CA") {
    ClientOptions o;
    o.ca = pki().path("foreign-ca.pem");
    auto c = Context::client(o);
    REQUIRE(c);
    Pair p(*c, server_ctx(false));
    p.pump();
    CHECK(p.client_status == Engine::Status::Error);
    CHECK(p.client.error() == "certificate verify failed: unable to get local issuer certificate");
  }
  SUBCASE("verify off accepts anything but does not claim verified") {
    ClientOptions o;
    o.verify = false;
    auto c = Context::client(o);
    REQUIRE(c);
    Pair p(*c, server_ctx(false), "evil.test");
    p.pump();
    CHECK(p.established());
    CHECK(p.client.peer().present);
    CHECK(!p.client.peer().verified);
    // A later protocol error is reported as such, not as the ignored verification result.
    const char bad_record[] = "\x17\x03\x03\x00\x05hello";
    p.client.feed(bad_record, sizeof bad_record - 1);
    std::string out;
    CHECK(p.client.read(out) == Engine::Status::Error);
    CHECK(p.client.error().find("certificate verify failed") == std::string::npos);
    CHECK(!p.client.error().empty());
  }
}

TEST_CASE("close_notify half-close: the server keeps writing after the client shut down") {
  for (bool tls12 : {false, true}) {
    CAPTURE(tls12);
    Pair p(client_ctx("client", tls12), server_ctx());
    p.pump();
    REQUIRE(p.established());
    CHECK(p.client.write("hello-stdin\n", 12) == Engine::Status::Ok);
    p.client.shutdown();
    CHECK(p.client.write("late", 4) == Engine::Status::Closed);
    p.pump();
    CHECK(p.server_plain == "hello-stdin\n");
    CHECK(p.server_status == Engine::Status::Closed);
    CHECK(p.server.peer_closed());
    CHECK(p.server.read(p.server_plain) == Engine::Status::Closed);  // stays closed

    std::string out = random_bytes(100000, 3);
    CHECK(p.server.write(out.data(), out.size()) == Engine::Status::Ok);
    p.pump();
    CHECK(p.client_status == Engine::Status::Ok);
    CHECK(p.client_plain == out);
    CHECK(!p.client.peer_closed());

    // Then dockerd's side finishes: the server closes too and the client sees it.
    p.server.shutdown();
    p.pump();
    CHECK(p.client_status == Engine::Status::Closed);
    CHECK(p.client.peer_closed());
    CHECK(ERR_peek_error() == 0);
  }
}

TEST_CASE("shutdown before the handshake flushes queued data first") {
  Pair p(client_ctx(), server_ctx());
  CHECK(p.client.write("stdin", 5) == Engine::Status::Ok);
  p.client.shutdown();
  p.pump();
  REQUIRE(p.established());
  CHECK(p.server_plain == "stdin");
  CHECK(p.server_status == Engine::Status::Closed);
}

TEST_CASE("10 MB both ways, byte-exact") {
  const std::string up = random_bytes(10 * 1024 * 1024, 1);
  const std::string down = random_bytes(10 * 1024 * 1024, 2);
  Pair p(client_ctx(), server_ctx());
  p.pump();
  REQUIRE(p.established());
  SUBCASE("one write each") {
    CHECK(p.client.write(up.data(), up.size()) == Engine::Status::Ok);
    CHECK(p.server.write(down.data(), down.size()) == Engine::Status::Ok);
    p.pump();
  }
  SUBCASE("interleaved odd-sized writes, odd-sized network chunks") {
    size_t off = 0;
    while (off < up.size()) {
      size_t n = std::min<size_t>(12345, up.size() - off);
      CHECK(p.client.write(up.data() + off, n) == Engine::Status::Ok);
      CHECK(p.server.write(down.data() + off, n) == Engine::Status::Ok);
      off += n;
      p.pump(4099);
    }
  }
  CHECK(p.server_status == Engine::Status::Ok);
  CHECK(p.client_status == Engine::Status::Ok);
  CHECK(p.server_plain.size() == up.size());
  CHECK(p.client_plain.size() == down.size());
  CHECK(p.server_plain == up);
  CHECK(p.client_plain == down);
}

TEST_CASE("read with a limit leaves the rest for later") {
  Pair p(client_ctx(), server_ctx());
  p.pump();
  REQUIRE(p.established());
  const std::string data = random_bytes(200000, 5);
  CHECK(p.client.write(data.data(), data.size()) == Engine::Status::Ok);
  std::string wire;
  p.client.take_output(wire);
  p.server.feed(wire.data(), wire.size());
  std::string got;
  CHECK(p.server.read(got, 50000) == Engine::Status::Ok);
  CHECK(got.size() >= 50000);
  CHECK(got.size() < 50000 + 16384 + 1);
  while (got.size() < data.size()) {
    size_t before = got.size();
    REQUIRE(p.server.read(got, 50000) == Engine::Status::Ok);
    REQUIRE(got.size() > before);
  }
  CHECK(got == data);
  p.server.release_buffers();
  CHECK(p.server.write("x", 1) == Engine::Status::Ok);
  p.pump();
  CHECK(p.client_plain == "x");
}

TEST_CASE("garbage from the network is an error, not a crash") {
  auto s = server_ctx(false);
  Engine e(s);
  const char http[] = "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n";
  e.feed(http, sizeof http - 1);
  std::string out;
  CHECK(e.read(out) == Engine::Status::Error);
  CHECK(e.error() == "http request");
  CHECK(e.read(out) == Engine::Status::Error);
  CHECK(ERR_peek_error() == 0);

  Engine e2(s);
  std::string junk = random_bytes(1000, 9);
  junk[0] = 0x16;  // handshake record type, nonsense afterwards
  e2.feed(junk.data(), junk.size());
  CHECK(e2.read(out) == Engine::Status::Error);
  CHECK(!e2.error().empty());
  CHECK(out.empty());
  CHECK(ERR_peek_error() == 0);
}

TEST_CASE("bad files give clear errors") {
  auto server = [](ServerOptions o) {
    auto r = Context::server(o);
    CHECK(!r);
    CHECK(ERR_peek_error() == 0);
    return r ? std::string() : r.error().message;
  };
  ServerOptions good;
  good.certificate = pki().cert("server");
  good.key = pki().key("server");

  auto o = good;
  o.certificate = pki().path("missing.pem");
  CHECK(server(o) == "cannot load certificate " + o.certificate + ": No such file or directory");

  o = good;
  o.certificate = pki().path("garbage.pem");
  CHECK(server(o) == "cannot load certificate " + o.certificate + ": no PEM certificate found");

  o = good;
  o.key = pki().path("garbage.pem");
  CHECK(server(o) == "cannot load key " + o.key + ": no PEM private key found");

  o = good;
  o.key = pki().path("encrypted-key.pem");
  CHECK(server(o) == "cannot load key " + o.key + ": key is passphrase-protected (not supported)");

  o = good;
  o.key = pki().key("client");
  CHECK(server(o) == "key " + o.key + " does not match certificate " + o.certificate);

  o = good;
  o.client_ca = pki().path("missing-ca.pem");
  CHECK(server(o) == "cannot load client CA " + o.client_ca + ": No such file or directory");

  o = good;
  o.client_ca = pki().path("garbage.pem");
  CHECK(server(o).find("cannot load client CA " + o.client_ca + ": ") == 0);

  o = good;
  o.client_ca = pki().path("ca.pem");
  o.crl = pki().path("missing-crl.pem");
  CHECK(server(o) == "cannot load CRL " + o.crl + ": No such file or directory");
  o.crl = pki().path("garbage.pem");
  CHECK(server(o) == "cannot load CRL " + o.crl + ": no PEM CRL found");
  if (::geteuid() != 0) {  // root reads mode-000 files
    o.crl = pki().path("unreadable.pem");
    CHECK(server(o) == "cannot load CRL " + o.crl + ": Permission denied");
  }

  o = good;
  o.crl = pki().path("crl.pem");
  CHECK(server(o).find("needs client_ca") != std::string::npos);

  ClientOptions c;
  c.ca = pki().path("missing.pem");
  auto r = Context::client(c);
  REQUIRE(!r);
  CHECK(r.error().message == "cannot load CA " + c.ca + ": No such file or directory");
  c.ca = pki().path("ca.pem");
  c.certificate = pki().cert("client");
  r = Context::client(c);
  REQUIRE(!r);
  CHECK(r.error().message == "certificate and key must be given together");
  CHECK(ERR_peek_error() == 0);

  // A failed load leaves nothing behind for the next connection's error report.
  Pair p(client_ctx("expired"), server_ctx());
  p.pump();
  CHECK(p.server.error() == "certificate verify failed: certificate has expired");
}
