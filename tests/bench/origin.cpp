// A fast fake dockerd for benchmarks: one thread, epoll, HTTP/1.1 keep-alive on a unix socket
// (and optionally 127.0.0.1:PORT).
//
//   HEAD|GET /_ping            answers with dockerd 20.10's headers (body "OK" for GET)
//   GET /v1.41/containers/json a fixed 4096-byte JSON array with Content-Length
//   GET /bulk?size=N           N bytes, chunked, generated while the socket is writable
//   GET /v1.41/containers/bulk-N/export   the same, on a Docker API route (what the driver uses)
//   POST /upload               consumes a Content-Length or chunked body, answers its length
//   POST /v1.41/images/load, PUT /v1.41/containers/ID/archive   the same, on Docker API routes
//
// Usage: origin --unix PATH [--tcp PORT] [--quiet]
// Prints "ready" on stdout once listening; exits on SIGTERM/SIGINT.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "bench_common.hpp"

namespace {

using bench::UniqueFd;

volatile sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

constexpr size_t kOutHigh = 256 * 1024;  // stop generating/processing above this much pending output
constexpr size_t kMaxHead = 64 * 1024;
constexpr size_t kBulkChunk = 64 * 1024;

const std::string& bulk_frame() {  // one full chunk: "10000\r\n" + 64 KiB + "\r\n"
  static const std::string f = [] {
    std::string s = "10000\r\n";
    s.append(kBulkChunk, 'b');
    s += "\r\n";
    return s;
  }();
  return f;
}

std::string make_containers_json() {
  // A plausible `docker ps` answer padded to exactly 4096 bytes.
  std::string s = "[";
  for (int i = 0; i < 3; ++i) {
    if (i) s += ",";
    char id[65];
    for (int k = 0; k < 64; ++k) id[k] = "0123456789abcdef"[(k * 7 + i * 13) % 16];
    id[64] = 0;
    s += "{\"Id\":\"";
    s += id;
    s += "\",\"Names\":[\"/bench-" + std::to_string(i) +
         "\"],\"Image\":\"busybox:latest\",\"ImageID\":\"sha256:";
    s += id;
    s += "\",\"Command\":\"sleep 3600\",\"Created\":1700000000,\"Ports\":[],"
         "\"Labels\":{\"com.example.owner\":\"ci\",\"com.example.job\":\"bench\"},"
         "\"State\":\"running\",\"Status\":\"Up 2 hours\",\"HostConfig\":{\"NetworkMode\":\"none\"},"
         "\"NetworkSettings\":{\"Networks\":{\"none\":{\"IPAMConfig\":null,\"Links\":null,"
         "\"Aliases\":null,\"NetworkID\":\"";
    s += id;
    s += "\",\"EndpointID\":\"\",\"Gateway\":\"\",\"IPAddress\":\"\",\"IPPrefixLen\":0,"
         "\"IPv6Gateway\":\"\",\"GlobalIPv6Address\":\"\",\"GlobalIPv6PrefixLen\":0,"
         "\"MacAddress\":\"\",\"DriverOpts\":null}}},\"Mounts\":[],\"Pad\":\"";
    if (i < 2) s += "\"}";
  }
  const std::string tail = "\"}]";
  // pad the last object's "Pad" field
  size_t need = 4096 - s.size() - tail.size();
  s.append(need, 'p');
  s += tail;
  return s;
}

class DateCache {
 public:
  const std::string& get() {
    time_t t = time(nullptr);
    if (t != last_) {
      last_ = t;
      tm g{};
      gmtime_r(&t, &g);
      char b[64];
      strftime(b, sizeof b, "%a, %d %b %Y %H:%M:%S GMT", &g);
      value_ = b;
    }
    return value_;
  }

 private:
  time_t last_ = 0;
  std::string value_;
};

DateCache g_date;
const std::string g_containers = make_containers_json();

// Go's net/http writes header keys sorted; dockerd adds these four to every response.
void common_tail(std::string& out) {
  out += "Date: ";
  out += g_date.get();
  out += "\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: Docker/20.10.24 (linux)\r\n";
}

struct Conn {
  UniqueFd fd;
  std::string in;
  size_t in_off = 0;
  std::string out;
  size_t out_off = 0;
  enum class Body { None, Length, Chunked } body = Body::None;
  uint64_t body_left = 0;
  bench::ChunkedDecoder dec;
  uint64_t body_count = 0;
  bool body_is_upload = false;
  bool body_is_bad_target = false;
  uint64_t bulk_left = 0;
  bool bulk_active = false;
  bool close_after = false;
  bool blocked_on_output = false;  // process() stopped because of pending output, not lack of input
  uint32_t events = 0;
};

class Origin {
 public:
  bool listen_unix(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return perror_false("socket");
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.size() >= sizeof a.sun_path) return perror_false("unix path too long");
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return perror_false("bind");
    if (::listen(fd.get(), 4096) != 0) return perror_false("listen");
    return add_listener(std::move(fd));
  }
  bool listen_tcp(int port) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) return perror_false("socket");
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return perror_false("bind");
    if (::listen(fd.get(), 4096) != 0) return perror_false("listen");
    tcp_listener_ = fd.get();
    return add_listener(std::move(fd));
  }

  bool init() {
    ep_.reset(::epoll_create1(EPOLL_CLOEXEC));
    return bool(ep_);
  }

  void run() {
    epoll_event evs[256];
    while (!g_stop) {
      int n = ::epoll_wait(ep_.get(), evs, 256, 500);
      if (n < 0) {
        if (errno == EINTR) continue;
        perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (listeners_.count(fd)) {
          accept_all(fd);
          continue;
        }
        auto it = conns_.find(fd);
        if (it == conns_.end()) continue;
        Conn& c = *it->second;
        bool ok = true;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) ok = on_readable(c);
        if (ok && (evs[i].events & EPOLLOUT)) ok = flush_and_process(c);
        if (!ok) close_conn(fd);
      }
    }
  }

 private:
  static bool perror_false(const char* what) {
    perror(what);
    return false;
  }

  bool add_listener(UniqueFd fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd.get();
    if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0) return perror_false("epoll_ctl");
    int raw = fd.get();
    listeners_.emplace(raw, std::move(fd));
    return true;
  }

  void accept_all(int lfd) {
    for (int k = 0; k < 256; ++k) {
      int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      if (lfd == tcp_listener_) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      auto c = std::make_unique<Conn>();
      c->fd.reset(fd);
      c->events = EPOLLIN;
      epoll_event ev{};
      ev.events = c->events;
      ev.data.fd = fd;
      if (::epoll_ctl(ep_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) continue;
      conns_.emplace(fd, std::move(c));
    }
  }

  void close_conn(int fd) {
    ::epoll_ctl(ep_.get(), EPOLL_CTL_DEL, fd, nullptr);
    conns_.erase(fd);
  }

  void set_events(Conn& c, uint32_t ev) {
    if (ev == c.events) return;
    c.events = ev;
    epoll_event e{};
    e.events = ev;
    e.data.fd = c.fd.get();
    ::epoll_ctl(ep_.get(), EPOLL_CTL_MOD, c.fd.get(), &e);
  }

  bool on_readable(Conn& c) {
    char buf[65536];
    for (int k = 0; k < 16; ++k) {
      ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
      if (n > 0) {
        c.in.append(buf, size_t(n));
        if (size_t(n) < sizeof buf) break;
        if (pending(c) > kOutHigh) break;
        continue;
      }
      if (n == 0) return false;  // peer closed: we never half-close mid-response in a bench
      if (errno == EAGAIN || errno == EINTR) break;
      return false;
    }
    return flush_and_process(c);
  }

  static size_t pending(const Conn& c) { return c.out.size() - c.out_off; }

  bool flush_and_process(Conn& c) {
    for (int round = 0; round < 64; ++round) {
      c.blocked_on_output = false;
      if (!process(c)) return false;
      if (!flush(c)) return false;
      if (pending(c) > 0 || !c.blocked_on_output) break;
    }
    if (c.close_after && pending(c) == 0 && !c.bulk_active) return false;
    uint32_t ev = 0;
    if (pending(c) > 0 || c.bulk_active) ev |= EPOLLOUT;
    if (pending(c) <= kOutHigh && !c.bulk_active) ev |= EPOLLIN;
    set_events(c, ev);
    return true;
  }

  bool flush(Conn& c) {
    while (pending(c) > 0) {
      ssize_t n = ::write(c.fd.get(), c.out.data() + c.out_off, pending(c));
      if (n > 0) {
        c.out_off += size_t(n);
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
      return false;
    }
    if (c.out_off == c.out.size()) {
      c.out.clear();
      c.out_off = 0;
    } else if (c.out_off > (1u << 20)) {
      c.out.erase(0, c.out_off);
      c.out_off = 0;
    }
    return true;
  }

  // Parses and answers as many requests as the pending output allows.
  bool process(Conn& c) {
    while (true) {
      if (c.bulk_active) {
        while (pending(c) < kOutHigh && c.bulk_left > 0) {
          if (c.bulk_left >= kBulkChunk) {
            c.out += bulk_frame();
            c.bulk_left -= kBulkChunk;
          } else {
            char h[32];
            int hl = std::snprintf(h, sizeof h, "%llx\r\n", static_cast<unsigned long long>(c.bulk_left));
            c.out.append(h, size_t(hl));
            c.out.append(size_t(c.bulk_left), 'b');
            c.out += "\r\n";
            c.bulk_left = 0;
          }
        }
        if (c.bulk_left > 0) {
          c.blocked_on_output = true;
          return true;
        }
        c.out += "0\r\n\r\n";
        c.bulk_active = false;
      }
      if (c.close_after) return true;
      if (pending(c) > kOutHigh) {
        c.blocked_on_output = true;
        return true;
      }
      if (c.body != Conn::Body::None) {
        if (!consume_body(c)) return false;
        if (c.body != Conn::Body::None) return true;  // need more bytes
        finish_body_request(c);
        continue;
      }
      std::string_view avail(c.in.data() + c.in_off, c.in.size() - c.in_off);
      size_t end = avail.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (avail.size() > kMaxHead) return false;
        compact(c);
        return true;
      }
      std::string_view head = avail.substr(0, end + 2);
      c.in_off += end + 4;
      if (!handle_head(c, head)) return false;
    }
  }

  static void compact(Conn& c) {
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 0) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
  }

  bool consume_body(Conn& c) {
    const char* p = c.in.data() + c.in_off;
    size_t n = c.in.size() - c.in_off;
    if (c.body == Conn::Body::Length) {
      size_t take = n < c.body_left ? n : size_t(c.body_left);
      c.body_left -= take;
      c.body_count += take;
      c.in_off += take;
      if (c.body_left == 0) c.body = Conn::Body::None;
    } else {
      long used = c.dec.feed(p, n, [](const char*, size_t) {});
      if (used < 0) return false;
      c.in_off += size_t(used);
      if (c.dec.done()) {
        c.body_count = c.dec.total();
        c.body = Conn::Body::None;
      }
    }
    compact(c);
    return true;
  }

  void finish_body_request(Conn& c) {
    if (c.body_is_upload) {
      std::string n = std::to_string(c.body_count);
      c.out += "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: " + std::to_string(n.size()) +
               "\r\nContent-Type: text/plain; charset=utf-8\r\n";
      common_tail(c.out);
      c.out += "\r\n";
      c.out += n;
    } else {
      not_found(c);
    }
  }

  void not_found(Conn& c) {
    static const std::string body = "{\"message\":\"page not found\"}\n";
    c.out += "HTTP/1.1 404 Not Found\r\nApi-Version: 1.41\r\nContent-Length: " + std::to_string(body.size()) +
             "\r\nContent-Type: application/json\r\n";
    common_tail(c.out);
    c.out += "\r\n";
    c.out += body;
  }

  // Docker-shaped bulk endpoints, so a policy-enforcing proxy routes them like real API calls:
  // GET /v1.41/containers/bulk-N/export streams N bytes; POST /v1.41/images/load and
  // PUT /v1.41/containers/ID/archive consume a body and answer its length (like /upload).
  static bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
  }
  static bool is_export(std::string_view path) { return ends_with(path, "/export"); }
  static bool is_upload(std::string_view method, std::string_view path) {
    return (method == "POST" && (path == "/upload" || ends_with(path, "/images/load"))) ||
           (method == "PUT" && ends_with(path, "/archive"));
  }

  bool handle_head(Conn& c, std::string_view head) {
    size_t eol = head.find("\r\n");
    std::string_view line = head.substr(0, eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    bool http10 = version == "HTTP/1.0";
    uint64_t content_length = 0;
    bool chunked = false;
    bool conn_close = http10;
    std::string_view rest = head.substr(eol + 2);
    while (!rest.empty()) {
      size_t e = rest.find("\r\n");
      std::string_view h = rest.substr(0, e);
      rest = e == std::string_view::npos ? std::string_view{} : rest.substr(e + 2);
      size_t colon = h.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view name = h.substr(0, colon);
      std::string_view value = bench::trim(h.substr(colon + 1));
      if (bench::iequals(name, "content-length")) {
        std::from_chars(value.data(), value.data() + value.size(), content_length);
      } else if (bench::iequals(name, "transfer-encoding")) {
        chunked = value.find("chunked") != std::string_view::npos;
      } else if (bench::iequals(name, "connection")) {
        if (bench::iequals(value, "close")) conn_close = true;
        if (bench::iequals(value, "keep-alive")) conn_close = false;
      }
    }
    c.close_after = conn_close;
    std::string_view path = target.substr(0, target.find('?'));
    std::string_view query = target.find('?') == std::string_view::npos ? std::string_view{}
                                                                          : target.substr(target.find('?') + 1);

    if (chunked || content_length > 0) {
      c.body = chunked ? Conn::Body::Chunked : Conn::Body::Length;
      c.body_left = content_length;
      c.body_count = 0;
      c.dec.reset();
      c.body_is_upload = is_upload(method, path);
      if (!consume_body(c)) return false;
      if (c.body == Conn::Body::None) finish_body_request(c);
      return true;
    }
    bool is_head = method == "HEAD";
    if ((method == "GET" || is_head) && path == "/_ping") {
      c.out += "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n"
               "Cache-Control: no-cache, no-store, must-revalidate\r\n";
      c.out += is_head ? "Content-Length: 0\r\n" : "Content-Length: 2\r\n";
      c.out += "Content-Type: text/plain; charset=utf-8\r\n";
      c.out += "Date: ";
      c.out += g_date.get();
      c.out += "\r\nDocker-Experimental: false\r\nOstype: linux\r\nPragma: no-cache\r\n"
               "Server: Docker/20.10.24 (linux)\r\n\r\n";
      if (!is_head) c.out += "OK";
    } else if (method == "GET" && (path == "/v1.41/containers/json" || path == "/containers/json")) {
      c.out += "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Length: 4096\r\nContent-Type: application/json\r\n";
      common_tail(c.out);
      c.out += "\r\n";
      c.out += g_containers;
    } else if (method == "GET" && (path == "/bulk" || is_export(path))) {
      uint64_t size = 0;
      size_t pos = query.find("size=");
      if (pos != std::string_view::npos) {
        std::string_view v = query.substr(pos + 5);
        std::from_chars(v.data(), v.data() + v.size(), size);
      } else if ((pos = path.find("/bulk-")) != std::string_view::npos) {
        std::string_view v = path.substr(pos + 6);
        std::from_chars(v.data(), v.data() + v.size(), size);
      }
      c.out += "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/octet-stream\r\n";
      common_tail(c.out);
      c.out += "Transfer-Encoding: chunked\r\n\r\n";
      c.bulk_left = size;
      c.bulk_active = true;
    } else if (is_upload(method, path)) {
      finish_body_request(c);  // empty body
    } else {
      not_found(c);
    }
    return true;
  }

  UniqueFd ep_;
  std::unordered_map<int, UniqueFd> listeners_;
  int tcp_listener_ = -1;
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string unix_path;
  int tcp_port = -1;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--unix" && i + 1 < argc) {
      unix_path = argv[++i];
    } else if (a == "--tcp" && i + 1 < argc) {
      tcp_port = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s --unix PATH [--tcp PORT]\n", argv[0]);
      return 2;
    }
  }
  if (unix_path.empty() && tcp_port < 0) {
    std::fprintf(stderr, "usage: %s --unix PATH [--tcp PORT]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  bench::raise_nofile();
  Origin o;
  if (!o.init()) return 1;
  if (!unix_path.empty() && !o.listen_unix(unix_path)) return 1;
  if (tcp_port >= 0 && !o.listen_tcp(tcp_port)) return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  o.run();
  if (!unix_path.empty()) ::unlink(unix_path.c_str());
  return 0;
}
