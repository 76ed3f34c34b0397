#include "net/listener.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dg::net {
namespace {

// A unix socket file left by a dead process is replaced; one that a live process answers on is not.
Result<void> clear_stale_socket(const std::string& path) {
  struct stat st{};
  if (lstat(path.c_str(), &st) != 0) return {};
  if (!S_ISSOCK(st.st_mode)) return fail(path + " exists and is not a socket; refusing to replace it");
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strncpy(sa.sun_path, path.c_str(), sizeof sa.sun_path - 1);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  ::close(fd);
  if (rc == 0) return fail(path + " is in use by another process");
  ::unlink(path.c_str());
  return {};
}

// A numeric id, or a name looked up with `lookup` (-1 when unknown).
long resolve_id(const std::string& text, long (*lookup)(const char*)) {
  char* end = nullptr;
  unsigned long n = std::strtoul(text.c_str(), &end, 10);
  if (!text.empty() && end && *end == '\0') return static_cast<long>(n);
  return lookup(text.c_str());
}

Result<void> apply_owner_mode(const config::Listener& cfg, const std::string& path) {
  if (cfg.mode && ::chmod(path.c_str(), *cfg.mode) != 0)
    return fail("chmod " + path + ": " + std::strerror(errno));
  if (cfg.owner.empty() && cfg.group.empty()) return {};
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!cfg.owner.empty()) {
    auto id = resolve_id(cfg.owner, [](const char* n) -> long { passwd* pw = getpwnam(n); return pw ? pw->pw_uid : -1; });
    if (id < 0) return fail("listener " + cfg.name + ": unknown user \"" + cfg.owner + "\"");
    uid = static_cast<uid_t>(id);
  }
  if (!cfg.group.empty()) {
    auto id = resolve_id(cfg.group, [](const char* n) -> long { group* gr = getgrnam(n); return gr ? gr->gr_gid : -1; });
    if (id < 0) return fail("listener " + cfg.name + ": unknown group \"" + cfg.group + "\"");
    gid = static_cast<gid_t>(id);
  }
  if (::chown(path.c_str(), uid, gid) != 0) return fail("chown " + path + ": " + std::strerror(errno));
  return {};
}

}  // namespace

Result<std::unique_ptr<Listener>> Listener::open(uv_loop_t* loop, const config::Listener& cfg, bool reuse_port,
                                                 OnConnection on_conn) {
  std::unique_ptr<Listener> l(new Listener());
  l->on_conn_ = std::move(on_conn);
  l->name_ = cfg.name;
  l->sock_.set_owner(l.get());
  const auto& a = cfg.address;
  int rc = 0;
  if (a.kind == config::Address::Kind::Unix) {
    l->unix_ = true;
    if (auto r = clear_stale_socket(a.path); !r) return tl::unexpected(r.error());
    if ((rc = uv_pipe_init(loop, &l->sock_->pipe, 0)) != 0) return fail(std::string("uv_pipe_init: ") + uv_strerror(rc));
    l->sock_.initialized();
    // Create the socket file with no access for others, then widen to the configured mode.
    mode_t old = ::umask(0177);
    rc = uv_pipe_bind(&l->sock_->pipe, a.path.c_str());
    ::umask(old);
    if (rc != 0) return fail("listener " + cfg.name + ": cannot bind " + a.path + ": " + uv_strerror(rc));
    l->path_ = a.path;
    if (auto r = apply_owner_mode(cfg, a.path); !r) return tl::unexpected(r.error());
    l->bound_ = a.text;
  } else {
    sockaddr_storage ss{};
    if (uv_ip4_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
        uv_ip6_addr(a.host.c_str(), a.port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
      if (a.host == "localhost") {
        uv_ip4_addr("127.0.0.1", a.port, reinterpret_cast<sockaddr_in*>(&ss));
      } else {
        return fail("listener " + cfg.name + ": listen address must be an IP literal: " + a.host);
      }
    }
    if ((rc = uv_tcp_init_ex(loop, &l->sock_->tcp, ss.ss_family)) != 0)
      return fail(std::string("uv_tcp_init: ") + uv_strerror(rc));
    l->sock_.initialized();
    if (reuse_port) {
      uv_os_fd_t fd = -1;
      int one = 1;
      if (uv_fileno(l->sock_.base(), &fd) == 0) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    rc = uv_tcp_bind(&l->sock_->tcp, reinterpret_cast<sockaddr*>(&ss), 0);
    if (rc != 0) return fail("listener " + cfg.name + ": cannot bind " + a.text + ": " + uv_strerror(rc));
    sockaddr_storage got{};
    int len = sizeof got;
    uv_tcp_getsockname(&l->sock_->tcp, reinterpret_cast<sockaddr*>(&got), &len);
    char host[INET6_ADDRSTRLEN] = {0};
    uint16_t port = 0;
    if (got.ss_family == AF_INET6) {
      auto* s6 = reinterpret_cast<sockaddr_in6*>(&got);
      inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
      port = ntohs(s6->sin6_port);
      l->bound_ = "tcp://[" + std::string(host) + "]:" + std::to_string(port);
    } else {
      auto* s4 = reinterpret_cast<sockaddr_in*>(&got);
      inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
      port = ntohs(s4->sin_port);
      l->bound_ = "tcp://" + std::string(host) + ":" + std::to_string(port);
    }
  }
  rc = uv_listen(l->sock_.stream(), 511, [](uv_stream_t* server, int status) {
    auto* self = uvx::owner<Listener>(server);
    if (!self || status < 0) return;
    self->on_conn_(*self);
  });
  if (rc != 0) return fail("listener " + cfg.name + ": cannot listen on " + a.text + ": " + uv_strerror(rc));
  return l;
}

Listener::~Listener() { close(); }

void Listener::close() {
  sock_.close();
  if (!path_.empty()) {
    ::unlink(path_.c_str());
    path_.clear();
  }
}

}  // namespace dg::net
