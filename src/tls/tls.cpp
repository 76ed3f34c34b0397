#include "tls/tls.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <new>
#include <string>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

namespace dg::tls {

namespace {

// One record's worth of plaintext: SSL_read never returns more than that per call.
constexpr int kReadChunk = 16 * 1024;
// A drained ciphertext buffer holding at most this much is kept across keep-alive requests.
constexpr size_t kKeepBufferBytes = 2048;
// SSL_read's landing buffer (shared by the loop thread's engines): a string resized to 16 KiB
// per call would zero-fill 16 KiB for every small record.
thread_local char t_record[kReadChunk];
// Chains are CA -> (a few intermediates) -> leaf; a longer one is a misconfiguration or an attack
// that costs verification time on the loop thread.
constexpr int kServerVerifyDepth = 4;
constexpr int kClientVerifyDepth = 8;
// Mozilla "intermediate" TLS 1.2 list (forward secret AEAD only); TLS 1.3 suites keep OpenSSL's
// defaults, which are already all AEAD.
constexpr const char* kCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
// Bigger than any sane PEM key (an RSA-16384 key is ~13 KiB); stops a misconfigured path to a
// huge file from being read whole.
constexpr size_t kMaxKeyFile = 1024 * 1024;

struct CtxFree { void operator()(SSL_CTX* p) const { SSL_CTX_free(p); } };
struct SslFree { void operator()(SSL* p) const { SSL_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free_all(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct CrlFree { void operator()(X509_CRL* p) const { X509_CRL_free(p); } };
struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct NameStackFree { void operator()(STACK_OF(X509_NAME)* p) const { sk_X509_NAME_pop_free(p, X509_NAME_free); } };
struct GenNamesFree { void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); } };
struct BnFree { void operator()(BIGNUM* p) const { BN_free(p); } };
struct OsslStrFree { void operator()(char* p) const { OPENSSL_free(p); } };

// Ciphertext queues between the network and OpenSSL. A BIO_s_mem() would do, but it zero-fills
// every byte it grows by and cleanses its whole buffer when freed (OPENSSL_clear_free), which
// for a 4 KB response over keep-alive cost ~11k instructions per request in memset alone. The
// bytes are ciphertext: there is nothing to cleanse. This BIO reads from and appends to a
// ByteQueue owned by the Engine.
class ByteQueue {
 public:
  size_t size() const { return buf_.size() - off_; }
  const char* data() const { return buf_.data() + off_; }
  size_t capacity() const { return buf_.capacity(); }
  void append(const char* p, size_t n) {
    if (off_ > 0 && off_ >= buf_.size() / 2) {  // reclaim the consumed front before growing
      buf_.erase(0, off_);
      off_ = 0;
    }
    buf_.append(p, n);
  }
  void consume(size_t n) {
    off_ += n;
    if (off_ >= buf_.size()) {
      buf_.clear();
      off_ = 0;
    }
  }
  // Gives the memory back when drained and bigger than `keep` bytes.
  void trim(size_t keep) {
    if (size() == 0 && buf_.capacity() > keep) {
      std::string().swap(buf_);
      off_ = 0;
    }
  }

 private:
  std::string buf_;
  size_t off_ = 0;
};

int queue_bio_write(BIO* b, const char* in, int len) {
  BIO_clear_retry_flags(b);
  if (len <= 0) return 0;
  try {
    static_cast<ByteQueue*>(BIO_get_data(b))->append(in, static_cast<size_t>(len));
  } catch (const std::bad_alloc&) {
    return -1;
  }
  return len;
}

int queue_bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  auto* q = static_cast<ByteQueue*>(BIO_get_data(b));
  if (len <= 0) return 0;
  if (q->size() == 0) {
    // Empty means "no data yet" (retry), never EOF: the network layer owns EOF.
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = std::min(q->size(), static_cast<size_t>(len));
  std::memcpy(out, q->data(), n);
  q->consume(n);
  return static_cast<int>(n);
}

long queue_bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_PENDING: return static_cast<long>(static_cast<ByteQueue*>(BIO_get_data(b))->size());
    case BIO_CTRL_FLUSH: return 1;
    default: return 0;  // WPENDING, EOF, KTLS queries...: nothing
  }
}

int queue_bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

const BIO_METHOD* queue_bio_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "dockgate ciphertext queue");
    if (m != nullptr) {
      BIO_meth_set_write(m, queue_bio_write);
      BIO_meth_set_read(m, queue_bio_read);
      BIO_meth_set_ctrl(m, queue_bio_ctrl);
      BIO_meth_set_create(m, queue_bio_create);
    }
    return m;
  }();
  return method;
}

BIO* new_queue_bio(ByteQueue* q) {
  const BIO_METHOD* m = queue_bio_method();
  BIO* b = m != nullptr ? BIO_new(m) : nullptr;
  if (b != nullptr) BIO_set_data(b, q);
  return b;
}
struct Utf8Free { void operator()(unsigned char* p) const { OPENSSL_free(p); } };

using CtxPtr = std::unique_ptr<SSL_CTX, CtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using NameStackPtr = std::unique_ptr<STACK_OF(X509_NAME), NameStackFree>;
using GenNamesPtr = std::unique_ptr<GENERAL_NAMES, GenNamesFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using OsslStr = std::unique_ptr<char, OsslStrFree>;
using Utf8Ptr = std::unique_ptr<unsigned char, Utf8Free>;

// Empties the thread's OpenSSL error queue into one line, so nothing leaks into the next
// connection's error report. Reasons are de-duplicated: OpenSSL often pushes the same reason from
// several layers ("PEM lib" after "no start line").
std::string drain_errors() {
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    std::string reason;
    if (const char* r = ERR_reason_error_string(e)) {
      reason = r;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      reason = buf;
    }
    // Generic wrapper reasons say nothing the specific one before them did not.
    if (reason == "PEM lib" || reason == "system lib" || reason == "BIO lib" || reason == "X509 lib" ||
        reason == "EVP lib" || reason == "ASN1 lib")
      continue;
    if (out.find(reason) != std::string::npos) continue;
    if (!out.empty()) out += ": ";
    out += reason;
  }
  return out.empty() ? std::string("unknown OpenSSL error") : out;
}

// fopen() before OpenSSL does, so a missing or unreadable file reads "No such file or directory" /
// "Permission denied" instead of OpenSSL's library-dependent wording.
std::string unreadable_reason(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return std::strerror(errno);
  std::fclose(f);
  return {};
}

Error file_error(const char* what, const std::string& path, const std::string& reason) {
  return Error{std::string("cannot load ") + what + " " + path + ": " + reason};
}

// Refuses to prompt on the terminal for a passphrase (OpenSSL's default callback would).
int no_passphrase(char*, int, int, void* flag) {
  *static_cast<bool*>(flag) = true;
  return -1;
}

Result<PkeyPtr> load_key(const std::string& path) {
  // Read here (keys are small) so that a file with no key block is reported as such rather than
  // as the OpenSSL 3 decoder's bare "unsupported".
  std::string pem;
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return tl::unexpected(file_error("key", path, std::strerror(errno)));
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && pem.size() < kMaxKeyFile) pem.append(buf, n);
    OPENSSL_cleanse(buf, sizeof buf);
    std::fclose(f);
  }
  auto wipe = [&pem] { OPENSSL_cleanse(pem.data(), pem.size()); };
  if (pem.find("-----BEGIN") == std::string::npos || pem.find("PRIVATE KEY-----") == std::string::npos) {
    wipe();
    return tl::unexpected(file_error("key", path, "no PEM private key found"));
  }
  ERR_clear_error();
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  bool encrypted = false;
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, no_passphrase, &encrypted) : nullptr);
  bio.reset();
  wipe();
  if (!key) {
    auto reason = drain_errors();
    if (encrypted) reason = "key is passphrase-protected (not supported)";
    return tl::unexpected(file_error("key", path, reason));
  }
  return key;
}

// Certificate chain + key for either side; ECDSA and RSA keys alike (OpenSSL picks the slot by
// key type).
Result<void> use_certificate(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  if (cert.empty() || key.empty())
    return tl::unexpected(Error{"certificate and key must be given together"});
  if (auto r = unreadable_reason(cert); !r.empty())
    return tl::unexpected(file_error("certificate", cert, r));
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    auto reason = drain_errors();
    if (reason.find("no start line") != std::string::npos) reason = "no PEM certificate found";
    return tl::unexpected(file_error("certificate", cert, reason));
  }
  auto pkey = load_key(key);
  if (!pkey) return tl::unexpected(pkey.error());
  // Checked here, before SSL_CTX_use_PrivateKey, to say which files disagree.
  X509* leaf = SSL_CTX_get0_certificate(ctx);
  if (leaf == nullptr || X509_check_private_key(leaf, pkey->get()) != 1) {
    ERR_clear_error();
    return tl::unexpected(Error{"key " + key + " does not match certificate " + cert});
  }
  if (SSL_CTX_use_PrivateKey(ctx, pkey->get()) != 1 || SSL_CTX_check_private_key(ctx) != 1)
    return tl::unexpected(Error{"key " + key + " does not match certificate " + cert + ": " + drain_errors()});
  return {};
}

Result<void> load_verify_file(SSL_CTX* ctx, const char* what, const std::string& path) {
  if (auto r = unreadable_reason(path); !r.empty()) return tl::unexpected(file_error(what, path, r));
  ERR_clear_error();
  if (SSL_CTX_load_verify_file(ctx, path.c_str()) != 1) {
    auto reason = drain_errors();
    if (reason.find("no certificate or crl found") != std::string::npos) reason = "no PEM certificate found";
    return tl::unexpected(file_error(what, path, reason));
  }
  return {};
}

// Every CRL in the PEM file goes into the verify store; the leaf is checked against its issuer's
// CRL (X509_V_FLAG_CRL_CHECK), so a CRL missing for that issuer refuses the client, fail-closed.
Result<void> load_crls(SSL_CTX* ctx, const std::string& path) {
  if (auto r = unreadable_reason(path); !r.empty()) return tl::unexpected(file_error("CRL", path, r));
  ERR_clear_error();
  BioPtr bio(BIO_new_file(path.c_str(), "rb"));
  if (!bio) return tl::unexpected(file_error("CRL", path, drain_errors()));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  for (;;) {
    CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) break;
    if (X509_STORE_add_crl(store, crl.get()) != 1) return tl::unexpected(file_error("CRL", path, drain_errors()));
    ++count;
  }
  // The loop ends on "no start line" at end of file; anything else is a damaged CRL.
  unsigned long last = ERR_peek_last_error();
  bool clean_end = last == 0 || (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE);
  if (!clean_end) return tl::unexpected(file_error("CRL", path, drain_errors()));
  ERR_clear_error();
  if (count == 0) return tl::unexpected(file_error("CRL", path, "no PEM CRL found"));
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return {};
}

void apply_common(SSL_CTX* ctx) {
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The docker CLI closes without close_notify; OpenSSL 3 would otherwise call that an error.
  // Truncation is still caught by HTTP framing (Content-Length / chunked) above us.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Idle connections dominate memory (5,000 idle mTLS clients): drop the 16 KiB+ record
  // buffers whenever nothing is buffered.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_cipher_list(ctx, kCiphers12);
  SSL_CTX_set1_groups_list(ctx, kGroups);
}

// Without extra certificates in the certificate file, OpenSSL rebuilds our own chain from the
// verify store on every handshake (a whole X509_verify_cert, about 1M instructions: an eighth of
// an mTLS handshake). Build it once here, from the same store and with the same leniency (a chain
// that does not verify is sent as far as it goes), and turn the per-handshake building off: the
// peer receives the same certificates.
void freeze_own_chain(SSL_CTX* ctx) {
  if (SSL_CTX_get0_certificate(ctx) == nullptr) return;
  STACK_OF(X509)* extra = nullptr;
  SSL_CTX_get0_chain_certs(ctx, &extra);
  if (sk_X509_num(extra) <= 0 &&
      SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR | SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) <= 0)
    ERR_clear_error();
  SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
}

std::string name_entry_utf8(const X509_NAME_ENTRY* entry) {
  unsigned char* raw = nullptr;
  int n = ASN1_STRING_to_UTF8(&raw, X509_NAME_ENTRY_get_data(entry));
  if (n < 0) return {};
  Utf8Ptr owned(raw);
  return std::string(reinterpret_cast<const char*>(raw), static_cast<size_t>(n));
}

std::string asn1_string(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)), static_cast<size_t>(ASN1_STRING_length(s)));
}

void describe(X509* cert, PeerCertificate& p) {
  X509_NAME* subject = X509_get_subject_name(cert);
  if (BioPtr bio(BIO_new(BIO_s_mem())); bio) {
    X509_NAME_print_ex(bio.get(), subject, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    if (n > 0) p.subject.assign(data, static_cast<size_t>(n));
  }
  if (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0)
    p.common_name = name_entry_utf8(X509_NAME_get_entry(subject, i));
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, i)) >= 0;)
    p.organizational_units.push_back(name_entry_utf8(X509_NAME_get_entry(subject, i)));

  GenNamesPtr sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    switch (gn->type) {
      case GEN_DNS: p.san_dns.push_back(asn1_string(gn->d.dNSName)); break;
      case GEN_EMAIL: p.san_email.push_back(asn1_string(gn->d.rfc822Name)); break;
      case GEN_URI: p.san_uri.push_back(asn1_string(gn->d.uniformResourceIdentifier)); break;
      default: break;
    }
  }

  if (BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)); bn) {
    if (OsslStr hex(BN_bn2hex(bn.get())); hex) p.serial_hex = hex.get();
  }
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1) {
    char buf[32];
    if (std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0) p.not_after = buf;
  }
  ERR_clear_error();  // a malformed optional field must not leave errors for the next operation
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Context

Context::~Context() { SSL_CTX_free(static_cast<SSL_CTX*>(ctx_)); }

void* Context::native() const { return ctx_; }

Result<std::shared_ptr<Context>> Context::server(const ServerOptions& opt) {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) return fail("cannot create TLS server context: " + drain_errors());
  apply_common(ctx.get());
  // No session tickets and no session cache: the Go docker CLI does not resume sessions (no
  // ClientSessionCache), so tickets would be bytes and CPU spent per connection for nothing, and a
  // resumed session would skip re-checking the client certificate against a reloaded CRL.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);

  if (opt.certificate.empty()) return fail("TLS server needs a certificate");
  if (opt.key.empty()) return fail("TLS server needs a key");
  if (auto r = use_certificate(ctx.get(), opt.certificate, opt.key); !r) return tl::unexpected(r.error());

  if (!opt.client_ca.empty()) {
    if (auto r = load_verify_file(ctx.get(), "client CA", opt.client_ca); !r) return tl::unexpected(r.error());
    ERR_clear_error();
    NameStackPtr names(SSL_load_client_CA_file(opt.client_ca.c_str()));
    if (!names || sk_X509_NAME_num(names.get()) == 0)
      return tl::unexpected(file_error("client CA", opt.client_ca, "no PEM certificate found"));
    SSL_CTX_set_client_CA_list(ctx.get(), names.release());  // takes ownership
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | (opt.require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nullptr);
    SSL_CTX_set_verify_depth(ctx.get(), kServerVerifyDepth);
    // A certificate with an extended key usage must list clientAuth: a server certificate from
    // the same CA is not a login.
    SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
    static const unsigned char kSidCtx[] = "dockgate";
    SSL_CTX_set_session_id_context(ctx.get(), kSidCtx, sizeof kSidCtx - 1);
    if (!opt.crl.empty()) {
      if (auto r = load_crls(ctx.get(), opt.crl); !r) return tl::unexpected(r.error());
    }
  } else if (!opt.crl.empty()) {
    return fail("a CRL (" + opt.crl + ") needs client_ca: without client certificates there is nothing to revoke");
  }
  freeze_own_chain(ctx.get());
  ERR_clear_error();
  return std::shared_ptr<Context>(new Context(ctx.release(), true));
}

Result<std::shared_ptr<Context>> Context::client(const ClientOptions& opt) {
  ERR_clear_error();
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return fail("cannot create TLS client context: " + drain_errors());
  apply_common(ctx.get());
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  if (opt.verify) {
    if (!opt.ca.empty()) {
      if (auto r = load_verify_file(ctx.get(), "CA", opt.ca); !r) return tl::unexpected(r.error());
    } else if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return fail("cannot load the system CA store: " + drain_errors());
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx.get(), kClientVerifyDepth);
    SSL_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_SERVER);
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (!opt.certificate.empty() || !opt.key.empty()) {
    if (auto r = use_certificate(ctx.get(), opt.certificate, opt.key); !r) return tl::unexpected(r.error());
    freeze_own_chain(ctx.get());
  }
  ERR_clear_error();
  return std::shared_ptr<Context>(new Context(ctx.release(), false));
}

// ---------------------------------------------------------------------------------------------
// Engine

struct Engine::Impl {
  std::shared_ptr<Context> ctx;
  // Declared before ssl: the BIOs (owned by ssl) point at them until SSL_free.
  ByteQueue in;   // ciphertext from the network, not yet read by OpenSSL
  ByteQueue out;  // ciphertext OpenSSL produced, not yet taken
  SslPtr ssl;
  std::string pending;  // plaintext written before the handshake finished
  std::string error;
  PeerCertificate peer;
  bool server = false;
  bool handshake_done = false;
  bool peer_closed = false;
  bool shutdown_wanted = false;
  bool shutdown_sent = false;
  bool failed = false;
  bool trim_out = false;  // drop the handshake-sized output buffer once it has been taken

  Status set_failed(int ret) {
    failed = true;
    int err = SSL_get_error(ssl.get(), ret);
    std::string queue = ERR_peek_error() != 0 ? drain_errors() : std::string();
    // The verify result only explains a handshake failure, and only when verification was on
    // (verify=false still records a result that must not be blamed for a later bad record).
    long verify = !handshake_done && (SSL_get_verify_mode(ssl.get()) & SSL_VERIFY_PEER) != 0
                      ? SSL_get_verify_result(ssl.get())
                      : X509_V_OK;
    if (verify != X509_V_OK) {
      error = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    } else if (!queue.empty()) {
      error = queue;
    } else if (err == SSL_ERROR_SYSCALL) {
      error = "unexpected end of TLS stream";
    } else {
      error = "TLS error " + std::to_string(err);
    }
    ERR_clear_error();
    return Status::Error;
  }

  Status fail_with(std::string why) {
    failed = true;
    error = std::move(why);
    ERR_clear_error();
    return Status::Error;
  }

  Status write_all(const char* data, size_t len) {
    while (len > 0) {
      int n = static_cast<int>(len > INT_MAX ? INT_MAX : len);
      ERR_clear_error();
      int r = SSL_write(ssl.get(), data, n);
      // The output queue grows as needed, so anything short of all bytes is a real error.
      if (r <= 0) return set_failed(r);
      data += r;
      len -= static_cast<size_t>(r);
    }
    return Status::Ok;
  }

  void send_close_notify() {
    if (shutdown_sent || failed) return;
    shutdown_sent = true;
    ERR_clear_error();
    // 0 = sent, the peer's not seen yet: that is the half-close we want; reading goes on.
    SSL_shutdown(ssl.get());
    ERR_clear_error();
  }

  Status on_handshake_done() {
    handshake_done = true;
    if (X509* cert = SSL_get0_peer_certificate(ssl.get())) {
      peer.present = true;
      peer.verified = (SSL_get_verify_mode(ssl.get()) & SSL_VERIFY_PEER) != 0 &&
                      SSL_get_verify_result(ssl.get()) == X509_V_OK;
      describe(cert, peer);
    }
    // The handshake flights (certificate chains) sized both buffers; without this they would stay
    // allocated for the life of an idle connection. The output is trimmed once it is taken: the
    // server's flight usually has been already (nothing more to send without tickets).
    in.trim(0);
    out.trim(0);
    trim_out = out.size() != 0;
    if (!pending.empty()) {
      std::string queued;
      queued.swap(pending);
      if (write_all(queued.data(), queued.size()) == Status::Error) return Status::Error;
    }
    if (shutdown_wanted) send_close_notify();
    return Status::Ok;
  }

  Status drive_handshake() {
    if (handshake_done) return Status::Ok;
    ERR_clear_error();
    int r = SSL_do_handshake(ssl.get());
    if (r == 1) return on_handshake_done();
    int err = SSL_get_error(ssl.get(), r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok;
    return set_failed(r);
  }
};

Engine::Engine(std::shared_ptr<Context> ctx, std::string server_name) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.ctx = std::move(ctx);
  m.server = m.ctx->is_server();
  ERR_clear_error();
  m.ssl.reset(SSL_new(static_cast<SSL_CTX*>(m.ctx->native())));
  if (!m.ssl) {
    m.fail_with("cannot create TLS session: " + drain_errors());
    return;
  }
  BIO* rbio = new_queue_bio(&m.in);
  BIO* wbio = new_queue_bio(&m.out);
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    m.ssl.reset();
    m.fail_with("cannot create TLS buffers: " + drain_errors());
    return;
  }
  SSL_set_bio(m.ssl.get(), rbio, wbio);
  if (m.server) {
    SSL_set_accept_state(m.ssl.get());
    return;
  }
  SSL_set_connect_state(m.ssl.get());
  if (!server_name.empty()) {
    // "[::1]" is how a URL spells an IPv6 host; the certificate has the bare address.
    if (server_name.size() > 2 && server_name.front() == '[' && server_name.back() == ']')
      server_name = server_name.substr(1, server_name.size() - 2);
    X509_VERIFY_PARAM* param = SSL_get0_param(m.ssl.get());
    ASN1_OCTET_STRING* ip = a2i_IPADDRESS(server_name.c_str());
    if (ip != nullptr) {
      ASN1_OCTET_STRING_free(ip);
      // RFC 6066: no SNI for IP literals; the certificate must carry a matching IP SAN.
      X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
    } else {
      SSL_set_tlsext_host_name(m.ssl.get(), server_name.c_str());
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), server_name.size());
    }
    ERR_clear_error();
  }
  // The client speaks first: have the ClientHello ready for take_output() right after connect.
  m.drive_handshake();
}

Engine::~Engine() = default;

void Engine::feed(const char* data, size_t len) {
  Impl& m = *impl_;
  if (m.failed || !m.ssl) return;
  try {
    m.in.append(data, len);
  } catch (const std::bad_alloc&) {
    m.fail_with("out of memory buffering TLS input");
  }
}

Engine::Status Engine::read(std::string& out) { return read(out, SIZE_MAX); }

Engine::Status Engine::read(std::string& out, size_t max_bytes) {
  Impl& m = *impl_;
  if (m.failed) return Status::Error;
  if (!m.handshake_done) {
    if (m.drive_handshake() == Status::Error) return Status::Error;
    if (!m.handshake_done) return Status::Ok;
  }
  if (m.peer_closed) return Status::Closed;
  SSL* ssl = m.ssl.get();
  size_t appended = 0;
  while (appended < max_bytes) {
    // Nothing buffered anywhere: SSL_read would only say WANT_READ, so skip the zero-filled
    // 16 KiB resize it would cost.
    if (m.in.size() == 0 && SSL_has_pending(ssl) == 0) return Status::Ok;
    ERR_clear_error();
    int r = SSL_read(ssl, t_record, kReadChunk);
    if (r > 0) {
      out.append(t_record, static_cast<size_t>(r));
      appended += static_cast<size_t>(r);
      continue;
    }
    int err = SSL_get_error(ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Status::Ok;
    if (err == SSL_ERROR_ZERO_RETURN) {
      m.peer_closed = true;
      ERR_clear_error();
      return Status::Closed;
    }
    return m.set_failed(r);
  }
  return Status::Ok;
}

Engine::Status Engine::write(const char* data, size_t len) {
  Impl& m = *impl_;
  if (m.failed) return Status::Error;
  if (m.shutdown_sent || m.shutdown_wanted) return Status::Closed;
  if (len == 0) return Status::Ok;
  if (!m.handshake_done) {
    m.pending.append(data, len);
    return m.drive_handshake();
  }
  return m.write_all(data, len);
}

void Engine::shutdown() {
  Impl& m = *impl_;
  if (m.failed || m.shutdown_wanted) return;
  m.shutdown_wanted = true;
  // Before the handshake completes there is no session to close yet; queued plaintext and then
  // the close_notify go out as soon as it does.
  if (m.handshake_done) m.send_close_notify();
}

bool Engine::has_output() const { return impl_->out.size() > 0; }

void Engine::take_output(std::string& out) {
  Impl& m = *impl_;
  if (m.out.size() > 0) {
    out.append(m.out.data(), m.out.size());
    m.out.consume(m.out.size());
  }
  if (m.trim_out) {
    m.trim_out = false;
    m.out.trim(0);
  }
}

void Engine::release_buffers() {
  Impl& m = *impl_;
  m.in.trim(kKeepBufferBytes);
  m.out.trim(kKeepBufferBytes);
}

bool Engine::handshake_done() const { return impl_->handshake_done; }
bool Engine::peer_closed() const { return impl_->peer_closed; }
std::string Engine::error() const { return impl_->error; }

std::string Engine::version() const {
  if (!impl_->ssl) return {};
  return SSL_get_version(impl_->ssl.get());
}

const PeerCertificate& Engine::peer() const { return impl_->peer; }

}  // namespace dg::tls
