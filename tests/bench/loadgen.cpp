// dockgate benchmark load generator: epoll + OpenSSL 3, closed loop, one epoll loop per thread.
//
//   loadgen --target tcp://127.0.0.1:P | unix:///path [--tls --ca ca.pem --cert c.pem --key k.pem]
//           --mode keepalive|handshake|download|upload|idle
//           [--conns N] [--threads T] [--duration S] [--warmup S] [--requests N]
//           [--method GET] [--path /_ping] [--expect-bytes N] [--expect-status 200]
//           [--size BYTES] [--chunked] [--hold S] [--concurrency N] [--timeout S] [--tls-version 1.2|1.3]
//           [--max-errors N (default 1000; 0 = unlimited)]
//
// keepalive  N keep-alive connections, one request in flight on each (closed loop)
// handshake  a new connection (full TLS handshake, no resumption) for every request, then close
// download   GET /v1.41/containers/bulk-SIZE/export (or --path), counts body bytes: MB/s
// upload     POST /v1.41/images/load (or --path, --method) with a SIZE-byte body, Content-Length or --chunked; the origin answers the length
// idle       opens N connections (TLS handshake done), prints a "ready" line, holds them for --hold S
//
// Every response is validated: status (200 unless --expect-status), complete framing
// (Content-Length or chunked), and the body length when known (--expect-bytes; download: SIZE;
// upload: the body must be the decimal SIZE). Anything else counts as an error, never a success.
// Output: one JSON line on stdout (idle: a "ready" line first). MB = 10^6 bytes. Latencies in µs.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using bench::now_ns;
using bench::UniqueFd;

// ---- options --------------------------------------------------------------------------------

enum class Mode { Keepalive, Handshake, Download, Upload, Idle };

struct Options {
  std::string target;
  Mode mode = Mode::Keepalive;
  std::string mode_name = "keepalive";
  bool tls = false;
  std::string ca, cert, key;
  std::string tls_version;  // "", "1.2", "1.3"
  int conns = 16;
  int threads = 1;
  double duration = 5;
  double warmup = 0;
  uint64_t requests = 0;  // 0 = until duration
  std::string method = "GET";
  std::string path;  // default per mode
  long long expect_bytes = -1;
  int expect_status = 200;
  uint64_t size = 1 << 20;
  bool chunked = false;
  double hold = 0;
  int concurrency = 64;
  double timeout = 10;
  uint64_t max_errors = 1000;  // stop early: a dead target must not turn a run into a spin
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "loadgen: %s (see the header of tests/bench/loadgen.cpp)\n", msg);
  std::exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + std::string(a)).c_str());
      return argv[++i];
    };
    if (a == "--target") o.target = val();
    else if (a == "--mode") o.mode_name = val();
    else if (a == "--tls") o.tls = true;
    else if (a == "--ca") o.ca = val();
    else if (a == "--cert") o.cert = val();
    else if (a == "--key") o.key = val();
    else if (a == "--tls-version") o.tls_version = val();
    else if (a == "--conns") o.conns = std::atoi(val().c_str());
    else if (a == "--threads") o.threads = std::atoi(val().c_str());
    else if (a == "--duration") o.duration = std::atof(val().c_str());
    else if (a == "--warmup") o.warmup = std::atof(val().c_str());
    else if (a == "--requests") o.requests = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--method") o.method = val();
    else if (a == "--path") o.path = val();
    else if (a == "--expect-bytes") o.expect_bytes = std::atoll(val().c_str());
    else if (a == "--expect-status") o.expect_status = std::atoi(val().c_str());
    else if (a == "--size") o.size = std::strtoull(val().c_str(), nullptr, 10);
    else if (a == "--chunked") o.chunked = true;
    else if (a == "--hold") o.hold = std::atof(val().c_str());
    else if (a == "--concurrency") o.concurrency = std::atoi(val().c_str());
    else if (a == "--timeout") o.timeout = std::atof(val().c_str());
    else if (a == "--max-errors") o.max_errors = std::strtoull(val().c_str(), nullptr, 10);
    else usage(("unknown option " + std::string(a)).c_str());
  }
  if (o.target.empty()) usage("--target is required");
  if (o.mode_name == "keepalive") o.mode = Mode::Keepalive;
  else if (o.mode_name == "handshake") o.mode = Mode::Handshake;
  else if (o.mode_name == "download") o.mode = Mode::Download;
  else if (o.mode_name == "upload") o.mode = Mode::Upload;
  else if (o.mode_name == "idle") o.mode = Mode::Idle;
  else usage("unknown --mode");
  if (o.conns < 1 || o.threads < 1 || o.concurrency < 1) usage("--conns/--threads/--concurrency must be >= 1");
  if (o.mode == Mode::Idle) o.threads = 1;
  if (o.threads > o.conns) o.threads = o.conns;
  if (o.tls && (o.ca.empty() || o.cert.empty() || o.key.empty())) usage("--tls needs --ca, --cert and --key");
  if (o.path.empty()) {
    if (o.mode == Mode::Download) o.path = "/v1.41/containers/bulk-" + std::to_string(o.size) + "/export";
    else if (o.mode == Mode::Upload) o.path = "/v1.41/images/load?quiet=1";
    else o.path = "/_ping";
  }
  if (o.mode == Mode::Download && o.expect_bytes < 0) o.expect_bytes = static_cast<long long>(o.size);
  if (o.mode == Mode::Upload && o.method == "GET") o.method = "POST";
  return o;
}

// ---- target ---------------------------------------------------------------------------------

struct Target {
  int family = AF_UNIX;
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string ip;         // tcp: for the certificate IP check
  std::string host_hdr;   // Host header value
};

Target parse_target(const std::string& t) {
  Target r;
  if (t.rfind("unix://", 0) == 0) {
    std::string path = t.substr(7);
    auto* a = reinterpret_cast<sockaddr_un*>(&r.addr);
    a->sun_family = AF_UNIX;
    if (path.size() >= sizeof a->sun_path) usage("unix path too long");
    std::memcpy(a->sun_path, path.c_str(), path.size() + 1);
    r.len = sizeof(sockaddr_un);
    r.family = AF_UNIX;
    r.host_hdr = "api.moby.localhost";
    return r;
  }
  if (t.rfind("tcp://", 0) == 0) {
    std::string hp = t.substr(6);
    size_t colon = hp.rfind(':');
    if (colon == std::string::npos) usage("tcp target needs host:port");
    r.ip = hp.substr(0, colon);
    int port = std::atoi(hp.c_str() + colon + 1);
    auto* a = reinterpret_cast<sockaddr_in*>(&r.addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(uint16_t(port));
    if (inet_pton(AF_INET, r.ip.c_str(), &a->sin_addr) != 1) usage("tcp target needs a literal IPv4 address");
    r.len = sizeof(sockaddr_in);
    r.family = AF_INET;
    r.host_hdr = hp;
    return r;
  }
  usage("target must be tcp://IP:PORT or unix:///path");
}

// ---- histogram: log buckets, 64 sub-buckets per power of two (<= 1.6% error) -------------------

class Histogram {
 public:
  static constexpr int kSub = 64;
  static constexpr int kBuckets = 64 * 40;
  void record(uint64_t v) {
    ++counts_[size_t(index(v))];
    ++total_;
    max_ = std::max(max_, v);
  }
  void merge(const Histogram& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }
  // Value at quantile q (midpoint of the bucket holding the ceil(q*total)-th sample).
  double quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t want = uint64_t(std::ceil(q * double(total_)));
    if (want == 0) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[size_t(i)];
      if (seen >= want) return std::min(double(max_), midpoint(i));
    }
    return double(max_);
  }

 private:
  static int index(uint64_t v) {
    if (v < 2 * kSub) return int(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 6;
    int idx = (shift + 1) * kSub + int((v >> shift) - kSub);
    return std::min(idx, kBuckets - 1);
  }
  static double midpoint(int idx) {
    if (idx < 2 * kSub) return idx;
    int shift = idx / kSub - 1;
    uint64_t lo = uint64_t(idx % kSub + kSub) << shift;
    return double(lo) + double(uint64_t(1) << shift) / 2.0;
  }
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

// ---- OpenSSL RAII ---------------------------------------------------------------------------

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

std::string ssl_errors() {
  std::string s;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!s.empty()) s += "; ";
    s += buf;
  }
  return s;
}

SslCtxPtr make_ctx(const Options& o) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) usage("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  if (o.tls_version == "1.2") SSL_CTX_set_max_proto_version(ctx.get(), TLS1_2_VERSION);
  if (o.tls_version == "1.3") SSL_CTX_set_min_proto_version(ctx.get(), TLS1_3_VERSION);
  if (SSL_CTX_load_verify_locations(ctx.get(), o.ca.c_str(), nullptr) != 1 ||
      SSL_CTX_use_certificate_chain_file(ctx.get(), o.cert.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), o.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    std::fprintf(stderr, "loadgen: loading TLS files: %s\n", ssl_errors().c_str());
    std::exit(2);
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  // Every handshake is a full one, like a fresh docker CLI process: no session cache, no tickets.
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                  SSL_MODE_RELEASE_BUFFERS);
  return ctx;
}

// ---- connections ----------------------------------------------------------------------------

constexpr size_t kPiece = 64 * 1024;

const std::string& upload_block() {
  static const std::string s(kPiece, 'u');
  return s;
}
const std::string& upload_frame() {
  static const std::string s = "10000\r\n" + std::string(kPiece, 'u') + "\r\n";
  return s;
}

struct Stats {
  uint64_t requests = 0;
  uint64_t all_requests = 0;  // warm-up included: the denominator for the target's CPU counters
  uint64_t errors = 0;
  uint64_t body_bytes = 0;  // payload bytes in the measured direction, after warm-up
  uint64_t connects = 0;
  uint64_t last_done_ns = 0;
  Histogram hist;
  std::string first_error;
};

enum class St { Waiting, Connecting, Handshaking, Sending, Receiving, Established };

struct Conn {
  UniqueFd fd;
  SslPtr ssl;
  St st = St::Waiting;
  uint64_t t_start = 0;   // request (or connection, in handshake mode) start
  uint64_t retry_at = 0;  // Waiting: when to connect again
  uint64_t deadline = 0;  // timeout for the current operation
  // sending
  const char* out_p = nullptr;
  size_t out_n = 0;
  int phase = 0;  // 0 head, 1 body, 2 last chunk, 3 done
  uint64_t body_left = 0;
  std::string tail;  // a short final chunk frame
  // receiving
  std::string head;
  bool head_done = false;
  int status = 0;
  bool chunked = false;
  bool has_cl = false;
  uint64_t cl = 0;
  bool close_hdr = false;
  uint64_t body_got = 0;
  std::string body_prefix;
  bench::ChunkedDecoder dec;
};

class Worker {
 public:
  Worker(const Options& o, SSL_CTX* ctx, const Target& t, int nconns, uint64_t t0)
      : o_(o), ctx_(ctx), t_(t), conns_(size_t(nconns)), t0_(t0) {
    req_head_ = o.method + " " + o.path + " HTTP/1.1\r\nHost: " + t.host_hdr +
                "\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n";
    if (o.mode == Mode::Upload) {
      req_head_ += "Content-Type: application/octet-stream\r\n";
      req_head_ += o.chunked ? "Transfer-Encoding: chunked\r\n"
                             : "Content-Length: " + std::to_string(o.size) + "\r\n";
    }
    req_head_ += "\r\n";
    upload_answer_ = std::to_string(o.size);
    warm_ns_ = t0 + uint64_t(o.warmup * 1e9);
    end_ns_ = warm_ns_ + uint64_t(o.duration * 1e9);
  }

  void run_load(uint64_t request_budget) {
    budget_ = request_budget;
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    for (auto& c : conns_) start_connect(c);
    epoll_event evs[512];
    uint64_t next_scan = now_ns() + 50'000'000;
    while (true) {
      uint64_t now = now_ns();
      if (now >= end_ns_) break;
      if (budget_ != 0 && issued_ >= budget_ && in_flight() == 0) break;
      if (o_.max_errors != 0 && stats_.errors >= o_.max_errors) break;
      int n = epoll_wait(ep_.get(), evs, 512, 20);
      for (int i = 0; i < n; ++i) drive(conns_[evs[i].data.u32]);
      now = now_ns();
      if (now >= next_scan) {
        scan(now);
        next_scan = now + 20'000'000;
      }
    }
    stop_ns_ = std::min(now_ns(), end_ns_);
    if (budget_ != 0 && stats_.last_done_ns != 0 && issued_ >= budget_) stop_ns_ = stats_.last_done_ns;
  }

  // Idle mode: bring all connections up (at most --concurrency handshakes at once), then hold.
  bool run_idle(double* setup_s) {
    ep_.reset(epoll_create1(EPOLL_CLOEXEC));
    size_t next = 0;
    uint64_t t_begin = now_ns();
    uint64_t give_up = t_begin + uint64_t(std::max(o_.timeout, 1.0) * 1e9) + uint64_t(o_.conns) * 20'000'000ull;
    epoll_event evs[512];
    while (true) {
      size_t pending = 0, up = 0;
      for (size_t i = 0; i < next; ++i) {
        if (conns_[i].st == St::Established) ++up;
        else if (conns_[i].st != St::Waiting) ++pending;
      }
      if (up == conns_.size()) break;
      while (next < conns_.size() && pending < size_t(o_.concurrency)) {
        start_connect(conns_[next++]);
        ++pending;
      }
      uint64_t now = now_ns();
      if (now > give_up) break;
      int n = epoll_wait(ep_.get(), evs, 512, 20);
      for (int i = 0; i < n; ++i) drive(conns_[evs[i].data.u32]);
      scan(now_ns());
    }
    *setup_s = double(now_ns() - t_begin) / 1e9;
    return established() == conns_.size();
  }

  void hold(double seconds) {
    uint64_t until = now_ns() + uint64_t(seconds * 1e9);
    epoll_event evs[512];
    while (now_ns() < until) {
      int n = epoll_wait(ep_.get(), evs, 512, 50);
      for (int i = 0; i < n; ++i) drive(conns_[evs[i].data.u32]);
    }
  }

  size_t established() const {
    size_t up = 0;
    for (auto& c : conns_)
      if (c.st == St::Established) ++up;
    return up;
  }

  Stats& stats() { return stats_; }
  uint64_t stop_ns() const { return stop_ns_; }

 private:
  size_t in_flight() const {
    size_t n = 0;
    for (auto& c : conns_)
      if (c.st == St::Sending || c.st == St::Receiving || c.st == St::Connecting || c.st == St::Handshaking) ++n;
    return n;
  }

  uint32_t id_of(const Conn& c) const { return uint32_t(&c - conns_.data()); }

  void fail(Conn& c, const std::string& why) {
    if (c.st == St::Established || now_ns() >= warm_ns_) {
      ++stats_.errors;
      if (stats_.first_error.empty()) stats_.first_error = why;
    }
    close_conn(c);
    c.st = St::Waiting;
    c.retry_at = now_ns() + 10'000'000;  // back off 10 ms so a dead target cannot spin the loop
  }

  void close_conn(Conn& c) {
    if (c.fd) epoll_ctl(ep_.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
    c.ssl.reset();
    c.fd.reset();
  }

  bool may_issue() const {
    return now_ns() < end_ns_ && (budget_ == 0 || issued_ < budget_);
  }

  void start_connect(Conn& c) {
    if (o_.mode != Mode::Idle && !may_issue()) {
      c.st = St::Waiting;
      c.retry_at = UINT64_MAX;
      return;
    }
    c.t_start = now_ns();
    c.deadline = c.t_start + uint64_t(o_.timeout * 1e9);
    int fd = socket(t_.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(c, std::string("socket: ") + strerror(errno));
    c.fd.reset(fd);
    if (t_.family == AF_INET) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.u32 = id_of(c);
    epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev);
    ++stats_.connects;
    if (o_.mode == Mode::Handshake) ++issued_;  // a handshake-mode request starts with its connect
    int r = connect(fd, reinterpret_cast<const sockaddr*>(&t_.addr), t_.len);
    if (r != 0 && errno != EINPROGRESS) return fail(c, std::string("connect: ") + strerror(errno));
    c.st = St::Connecting;
    if (r == 0) drive(c);
  }

  void after_connect(Conn& c) {
    if (o_.tls) {
      c.ssl.reset(SSL_new(ctx_));
      SSL_set_fd(c.ssl.get(), c.fd.get());
      if (!t_.ip.empty()) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c.ssl.get()), t_.ip.c_str());
      SSL_set_connect_state(c.ssl.get());
      c.st = St::Handshaking;
    } else if (o_.mode == Mode::Idle) {
      c.st = St::Established;
    } else {
      begin_request(c, false);
    }
  }

  void begin_request(Conn& c, bool count_issue) {
    if (count_issue) {
      if (!may_issue()) {
        c.st = St::Waiting;
        c.retry_at = UINT64_MAX;
        return;
      }
      ++issued_;
      c.t_start = now_ns();
    } else if (o_.mode != Mode::Handshake) {
      ++issued_;
      c.t_start = now_ns();
    }
    c.deadline = now_ns() + uint64_t(o_.timeout * 1e9);
    c.out_p = req_head_.data();
    c.out_n = req_head_.size();
    c.phase = 0;
    c.body_left = o_.mode == Mode::Upload ? o_.size : 0;
    c.head.clear();
    c.head_done = false;
    c.status = 0;
    c.chunked = c.has_cl = c.close_hdr = false;
    c.cl = c.body_got = 0;
    c.body_prefix.clear();
    c.dec.reset();
    c.st = St::Sending;
  }

  // Sets out_p/out_n to the next piece of the request; false when the request is fully sent.
  bool next_piece(Conn& c) {
    if (c.phase == 0) c.phase = o_.mode == Mode::Upload ? 1 : 3;
    if (c.phase == 1) {
      if (c.body_left == 0) {
        c.phase = o_.chunked ? 2 : 3;
      } else if (!o_.chunked) {
        size_t n = size_t(std::min<uint64_t>(c.body_left, kPiece));
        c.out_p = upload_block().data();
        c.out_n = n;
        c.body_left -= n;
        count_out(n);
        return true;
      } else if (c.body_left >= kPiece) {
        c.out_p = upload_frame().data();
        c.out_n = upload_frame().size();
        c.body_left -= kPiece;
        count_out(kPiece);
        return true;
      } else {
        char h[32];
        int hl = std::snprintf(h, sizeof h, "%llx\r\n", static_cast<unsigned long long>(c.body_left));
        c.tail.assign(h, size_t(hl));
        c.tail.append(size_t(c.body_left), 'u');
        c.tail += "\r\n";
        count_out(c.body_left);
        c.body_left = 0;
        c.out_p = c.tail.data();
        c.out_n = c.tail.size();
        c.phase = 2;
        return true;
      }
    }
    if (c.phase == 2) {
      static const char kLast[] = "0\r\n\r\n";
      c.out_p = kLast;
      c.out_n = sizeof kLast - 1;
      c.phase = 3;
      return true;
    }
    return false;
  }

  void count_out(uint64_t n) {
    if (o_.mode == Mode::Upload && now_ns() >= warm_ns_) stats_.body_bytes += n;
  }

  // I/O wrappers: >0 bytes, 0 = would block, -1 = error/EOF (with reason).
  long io_write(Conn& c, const char* p, size_t n, std::string& why) {
    if (c.ssl) {
      int r = SSL_write(c.ssl.get(), p, int(std::min<size_t>(n, 1 << 30)));
      if (r > 0) return r;
      int e = SSL_get_error(c.ssl.get(), r);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
      why = "SSL_write: " + std::to_string(e) + " " + ssl_errors() + " " + strerror(errno);
      return -1;
    }
    ssize_t r = ::send(c.fd.get(), p, n, MSG_NOSIGNAL);
    if (r >= 0) return long(r);
    if (errno == EAGAIN || errno == EINTR) return 0;
    why = std::string("write: ") + strerror(errno);
    return -1;
  }
  long io_read(Conn& c, char* p, size_t n, std::string& why) {
    if (c.ssl) {
      int r = SSL_read(c.ssl.get(), p, int(n));
      if (r > 0) return r;
      int e = SSL_get_error(c.ssl.get(), r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
      why = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SSL || e == SSL_ERROR_SYSCALL
                ? "connection closed by server (" + std::to_string(e) + " " + ssl_errors() + ")"
                : "SSL_read: " + std::to_string(e);
      return -1;
    }
    ssize_t r = ::read(c.fd.get(), p, n);
    if (r > 0) return long(r);
    if (r == 0) {
      why = "connection closed by server";
      return -1;
    }
    if (errno == EAGAIN || errno == EINTR) return 0;
    why = std::string("read: ") + strerror(errno);
    return -1;
  }

  void drive(Conn& c) {
    std::string why;
    for (int guard = 0; guard < 1000; ++guard) {
      switch (c.st) {
        case St::Waiting:
          return;
        case St::Connecting: {
          int err = 0;
          socklen_t len = sizeof err;
          getsockopt(c.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
          if (err != 0) return fail(c, std::string("connect: ") + strerror(err));
          after_connect(c);
          break;
        }
        case St::Handshaking: {
          int r = SSL_do_handshake(c.ssl.get());
          if (r == 1) {
            if (o_.mode == Mode::Idle) {
              c.st = St::Established;
            } else {
              begin_request(c, false);
            }
            break;
          }
          int e = SSL_get_error(c.ssl.get(), r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
          return fail(c, "TLS handshake: " + ssl_errors() + (errno ? std::string(" ") + strerror(errno) : ""));
        }
        case St::Sending: {
          while (true) {
            if (c.out_n == 0 && !next_piece(c)) break;
            long n = io_write(c, c.out_p, c.out_n, why);
            if (n < 0) return fail(c, why);
            if (n == 0) return;
            c.out_p += n;
            c.out_n -= size_t(n);
          }
          c.st = St::Receiving;
          break;
        }
        case St::Receiving: {
          long n = io_read(c, rbuf_, sizeof rbuf_, why);
          if (n < 0) return fail(c, why);
          if (n == 0) return;
          int r = feed(c, rbuf_, size_t(n), why);
          if (r < 0) return fail(c, why);
          if (r > 0) on_response(c);
          break;
        }
        case St::Established: {  // idle: drain (TLS 1.3 tickets), notice a close
          long n = io_read(c, rbuf_, sizeof rbuf_, why);
          if (n < 0) return fail(c, "idle connection: " + why);
          if (n == 0) return;
          break;
        }
      }
    }
  }

  // 1 = response complete, 0 = need more, -1 = invalid.
  int feed(Conn& c, const char* p, size_t n, std::string& why) {
    if (!c.head_done) {
      size_t old = c.head.size();
      c.head.append(p, n);
      size_t from = old >= 3 ? old - 3 : 0;
      size_t end = c.head.find("\r\n\r\n", from);
      if (end == std::string::npos) {
        if (c.head.size() > 65536) {
          why = "response head too large";
          return -1;
        }
        return 0;
      }
      size_t body_start = end + 4;
      if (!parse_head(c, std::string_view(c.head).substr(0, end + 2), why)) return -1;
      c.head_done = true;
      std::string rest = c.head.substr(body_start);
      c.head.resize(body_start);
      return body(c, rest.data(), rest.size(), why);
    }
    return body(c, p, n, why);
  }

  void keep_prefix(Conn& c, const char* p, size_t n) {
    if (c.body_prefix.size() < 64) c.body_prefix.append(p, std::min(n, 64 - c.body_prefix.size()));
    if (o_.mode != Mode::Upload && now_ns() >= warm_ns_) stats_.body_bytes += n;
  }

  int body(Conn& c, const char* p, size_t n, std::string& why) {
    bool no_body = o_.method == "HEAD" || c.status == 204 || c.status == 304 || (c.status >= 100 && c.status < 200);
    if (no_body) {
      if (n != 0) {
        why = "bytes after a bodiless response";
        return -1;
      }
      return 1;
    }
    if (c.chunked) {
      long used = c.dec.feed(p, n, [&](const char* d, size_t k) {
        keep_prefix(c, d, k);
        c.body_got += k;
      });
      if (used < 0) {
        why = "bad chunked framing";
        return -1;
      }
      if (c.dec.done()) {
        if (size_t(used) != n) {
          why = "unexpected bytes after the response";
          return -1;
        }
        return 1;
      }
      return 0;
    }
    if (c.has_cl) {
      uint64_t want = c.cl - c.body_got;
      if (n > want) {
        why = "unexpected bytes after the response";
        return -1;
      }
      keep_prefix(c, p, n);
      c.body_got += n;
      return c.body_got == c.cl ? 1 : 0;
    }
    why = "response without Content-Length or chunked framing";
    return -1;
  }

  bool parse_head(Conn& c, std::string_view head, std::string& why) {
    if (head.rfind("HTTP/1.1 ", 0) != 0 && head.rfind("HTTP/1.0 ", 0) != 0) {
      why = "not an HTTP/1.x response";
      return false;
    }
    c.close_hdr = head.rfind("HTTP/1.0 ", 0) == 0;
    std::from_chars(head.data() + 9, head.data() + std::min<size_t>(head.size(), 12), c.status);
    size_t pos = head.find("\r\n");
    while (pos != std::string_view::npos && pos + 2 < head.size()) {
      size_t e = head.find("\r\n", pos + 2);
      std::string_view h = head.substr(pos + 2, e == std::string_view::npos ? std::string_view::npos : e - pos - 2);
      pos = e;
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view name = h.substr(0, colon);
      std::string_view value = bench::trim(h.substr(colon + 1));
      if (bench::iequals(name, "content-length")) {
        c.has_cl = true;
        auto r = std::from_chars(value.data(), value.data() + value.size(), c.cl);
        if (r.ec != std::errc()) {
          why = "bad Content-Length";
          return false;
        }
      } else if (bench::iequals(name, "transfer-encoding")) {
        c.chunked = value.find("chunked") != std::string_view::npos;
      } else if (bench::iequals(name, "connection")) {
        if (bench::iequals(value, "close")) c.close_hdr = true;
      }
    }
    return true;
  }

  void on_response(Conn& c) {
    uint64_t now = now_ns();
    std::string err;
    if (c.status != o_.expect_status) {
      err = "status " + std::to_string(c.status) + ": " + c.body_prefix;
    } else if (o_.expect_bytes >= 0 && c.body_got != uint64_t(o_.expect_bytes)) {
      err = "body " + std::to_string(c.body_got) + " bytes, expected " + std::to_string(o_.expect_bytes);
    } else if (o_.mode == Mode::Upload && c.body_prefix != upload_answer_) {
      err = "upload answer '" + c.body_prefix + "', expected " + upload_answer_;
    }
    if (!err.empty()) return fail(c, err);
    ++stats_.all_requests;
    if (now >= warm_ns_ && now <= end_ns_) {
      ++stats_.requests;
      stats_.hist.record(now - c.t_start);
      stats_.last_done_ns = now;
    }
    if (o_.mode == Mode::Handshake || c.close_hdr) {
      close_conn(c);
      start_connect(c);
    } else {
      begin_request(c, true);
    }
  }

  void scan(uint64_t now) {
    for (auto& c : conns_) {
      if (c.st == St::Waiting) {
        if (now >= c.retry_at) start_connect(c);
      } else if (c.st != St::Established && now > c.deadline) {
        fail(c, "timeout");
      }
    }
  }

  const Options& o_;
  SSL_CTX* ctx_;
  const Target& t_;
  std::vector<Conn> conns_;
  UniqueFd ep_;
  std::string req_head_;
  std::string upload_answer_;
  uint64_t t0_;
  uint64_t warm_ns_ = 0;
  uint64_t end_ns_ = 0;
  uint64_t stop_ns_ = 0;
  uint64_t budget_ = 0;
  uint64_t issued_ = 0;
  Stats stats_;
  char rbuf_[256 * 1024];
};

std::string json_escape(const std::string& s) {
  std::string r;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      r += '\\';
      r += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      r += ' ';
    } else {
      r += ch;
    }
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse_args(argc, argv);
  signal(SIGPIPE, SIG_IGN);
  bench::raise_nofile();
  Target t = parse_target(o.target);
  SslCtxPtr ctx;
  if (o.tls) ctx = make_ctx(o);

  if (o.mode == Mode::Idle) {
    auto w = std::make_unique<Worker>(o, ctx.get(), t, o.conns, now_ns());
    double setup = 0;
    bool ok = w->run_idle(&setup);
    std::printf("{\"event\":\"ready\",\"mode\":\"idle\",\"up\":%zu,\"conns\":%d,\"setup_s\":%.3f,\"errors\":%llu}\n",
                w->established(), o.conns, setup, static_cast<unsigned long long>(w->stats().errors));
    std::fflush(stdout);
    if (ok) w->hold(o.hold);
    Stats& s = w->stats();
    std::printf("{\"mode\":\"idle\",\"target\":\"%s\",\"tls\":%s,\"conns\":%d,\"up\":%zu,\"setup_s\":%.3f,"
                "\"hold_s\":%.1f,\"errors\":%llu,\"first_error\":\"%s\"}\n",
                json_escape(o.target).c_str(), o.tls ? "true" : "false", o.conns, w->established(), setup, o.hold,
                static_cast<unsigned long long>(s.errors), json_escape(s.first_error).c_str());
    return ok ? 0 : 1;
  }

  uint64_t t0 = now_ns();
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.threads; ++i) {
    int n = o.conns / o.threads + (i < o.conns % o.threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(o, ctx.get(), t, n, t0));
  }
  uint64_t budget_each = o.requests == 0 ? 0 : std::max<uint64_t>(1, o.requests / uint64_t(o.threads));
  for (auto& w : workers) threads.emplace_back([&w, budget_each] { w->run_load(budget_each); });
  for (auto& th : threads) th.join();

  Stats total;
  uint64_t stop = 0;
  for (auto& w : workers) {
    Stats& s = w->stats();
    total.requests += s.requests;
    total.all_requests += s.all_requests;
    total.errors += s.errors;
    total.body_bytes += s.body_bytes;
    total.connects += s.connects;
    total.hist.merge(s.hist);
    if (total.first_error.empty()) total.first_error = s.first_error;
    stop = std::max(stop, w->stop_ns());
  }
  uint64_t warm = t0 + uint64_t(o.warmup * 1e9);
  double secs = stop > warm ? double(stop - warm) / 1e9 : 1e-9;
  std::printf("{\"mode\":\"%s\",\"target\":\"%s\",\"tls\":%s,\"method\":\"%s\",\"path\":\"%s\",\"conns\":%d,"
              "\"threads\":%d,\"seconds\":%.3f,\"requests\":%llu,\"all_requests\":%llu,\"errors\":%llu,\"connects\":%llu,"
              "\"req_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
              "\"bytes\":%llu,\"mb_s\":%.2f,\"first_error\":\"%s\"}\n",
              o.mode_name.c_str(), json_escape(o.target).c_str(), o.tls ? "true" : "false", o.method.c_str(),
              json_escape(o.path).c_str(), o.conns, o.threads, secs,
              static_cast<unsigned long long>(total.requests), static_cast<unsigned long long>(total.all_requests),
              static_cast<unsigned long long>(total.errors),
              static_cast<unsigned long long>(total.connects), double(total.requests) / secs,
              total.hist.quantile(0.50) / 1e3, total.hist.quantile(0.99) / 1e3, total.hist.quantile(0.999) / 1e3,
              double(total.hist.max()) / 1e3, static_cast<unsigned long long>(total.body_bytes),
              double(total.body_bytes) / secs / 1e6, json_escape(total.first_error).c_str());
  return total.requests > 0 && total.errors == 0 ? 0 : 1;
}
