// net::Stream and net::Listener on a real loop: plain unix and mTLS over TCP, half-close in both
// directions, watermarks. Every test ends with uv_loop_close() == 0 (the leak oracle).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "core/uv.hpp"
#include "net/listener.hpp"
#include "net/stream.hpp"
#include "tls/tls.hpp"

using namespace dg;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/dg-net-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A CA, a server certificate for 127.0.0.1 and a client certificate, made with the openssl CLI.
struct Pki {
  TempDir dir;
  bool ok = false;
  Pki() {
    std::string d = dir.path.string();
    std::string cmd =
        "cd " + d + " && "
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem "
        "-days 2 -subj /CN=test-ca >/dev/null 2>&1 && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-key.pem -out server.csr "
        "-subj /CN=localhost >/dev/null 2>&1 && "
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > server.ext && "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem "
        "-days 2 -extfile server.ext >/dev/null 2>&1 && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client-key.pem -out client.csr "
        "-subj /CN=alice/OU=admins >/dev/null 2>&1 && "
        "printf 'extendedKeyUsage=clientAuth\\n' > client.ext && "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out client-cert.pem "
        "-days 2 -extfile client.ext >/dev/null 2>&1";
    ok = std::system(cmd.c_str()) == 0;
  }
  std::string f(const char* name) const { return (dir.path / name).string(); }
};

Pki& pki() {
  static Pki p;
  return p;
}

// Echo server side: everything received is written back; EOF is answered with a half-close.
struct Echo final : net::StreamHandler {
  std::unique_ptr<net::Stream> s;
  std::string got;
  bool eof = false;
  std::string error;
  std::string peer_cn;
  void on_stream_data(net::Stream& st, const char* d, size_t n) override {
    got.append(d, n);
    st.write(std::string_view(d, n));
  }
  void on_stream_eof(net::Stream& st) override {
    eof = true;
    st.shutdown_write();
  }
  void on_stream_error(net::Stream&, const std::string& why) override { error = why; }
  void on_stream_ready(net::Stream& st) override {
    if (auto* c = st.peer_certificate()) peer_cn = c->common_name;
  }
};

// Client side: writes a payload once connected, half-closes, collects the echo until EOF.
struct Client final : net::StreamHandler {
  std::unique_ptr<net::Stream> s;
  std::string payload;
  std::string got;
  bool ready = false, eof = false;
  std::string error;
  std::function<void()> on_done;
  void on_stream_ready(net::Stream& st) override {
    ready = true;
    st.read_start();
    st.write(payload);
    st.shutdown_write();
  }
  void on_stream_data(net::Stream&, const char* d, size_t n) override { got.append(d, n); }
  void on_stream_eof(net::Stream&) override {
    eof = true;
    if (on_done) on_done();
  }
  void on_stream_error(net::Stream&, const std::string& why) override {
    error = why;
    if (on_done) on_done();
  }
};

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  return s;
}

void run_echo(bool tls, size_t size) {
  REQUIRE(pki().ok);
  TempDir dir;
  uvx::Loop loop;
  config::Listener lc;
  lc.name = "test";
  if (tls) {
    lc.address.kind = config::Address::Kind::Tcp;
    lc.address.host = "127.0.0.1";
    lc.address.port = 0;
  } else {
    lc.address.kind = config::Address::Kind::Unix;
    lc.address.path = (dir.path / "s.sock").string();
  }
  std::shared_ptr<tls::Context> server_ctx, client_ctx;
  if (tls) {
    auto s = tls::Context::server({pki().f("server-cert.pem"), pki().f("server-key.pem"), pki().f("ca.pem"), ""});
    REQUIRE(s);
    server_ctx = *s;
    auto c = tls::Context::client({pki().f("ca.pem"), pki().f("client-cert.pem"), pki().f("client-key.pem"), true});
    REQUIRE(c);
    client_ctx = *c;
  }
  Echo echo;
  Client client;
  client.payload = pattern(size);
  std::unique_ptr<net::Listener> listener;
  auto l = net::Listener::open(loop.get(), lc, false, [&](net::Listener& lst) {
    int err = 0;
    echo.s = net::Stream::accept(lst.server(), lst.is_unix(), server_ctx, &err);
    REQUIRE(echo.s);
    echo.s->set_handler(&echo);
    echo.s->read_start();
  });
  REQUIRE(l);
  listener = std::move(*l);
  sockaddr_storage ss{};
  if (tls) {
    std::string b = listener->bound();
    int port = std::atoi(b.substr(b.rfind(':') + 1).c_str());
    uv_ip4_addr("127.0.0.1", port, reinterpret_cast<sockaddr_in*>(&ss));
  }
  client.on_done = [&] {
    client.s->close();
    if (echo.s) echo.s->close();
    listener->close();
  };
  client.s = net::Stream::connect(loop.get(), tls ? reinterpret_cast<sockaddr*>(&ss) : nullptr, lc.address.path,
                                  client_ctx, "127.0.0.1", 5000, &client);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  CHECK(client.error.empty());
  CHECK(echo.error.empty());
  CHECK(client.ready);
  CHECK(echo.eof);   // the client's half-close reached the server (FIN or close_notify)
  CHECK(client.eof);  // and the server's came back after its writes
  CHECK(echo.got.size() == size);
  CHECK(client.got == client.payload);
  if (tls) CHECK(echo.peer_cn == "alice");
  client.s.reset();
  echo.s.reset();
  listener.reset();
  CHECK(loop.close() == 0);
}

}  // namespace

TEST_CASE("unix stream: echo with half-close, 3 MB") { run_echo(false, 3 << 20); }

TEST_CASE("mTLS stream over TCP: echo with close_notify half-close, 3 MB") { run_echo(true, 3 << 20); }

TEST_CASE("connect to a missing unix socket reports an error, no leak") {
  uvx::Loop loop;
  Client c;
  c.on_done = [&] {};
  c.s = net::Stream::connect(loop.get(), nullptr, "/tmp/dg-no-such-socket.sock", nullptr, "", 1000, &c);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  CHECK(!c.ready);
  CHECK(c.error.find("cannot connect") != std::string::npos);
  c.s.reset();
  CHECK(loop.close() == 0);
}

TEST_CASE("watermarks: a writer to a peer that does not read passes high, drains below low") {
  TempDir dir;
  uvx::Loop loop;
  config::Listener lc;
  lc.name = "wm";
  lc.address.kind = config::Address::Kind::Unix;
  lc.address.path = (dir.path / "wm.sock").string();

  struct Writer final : net::StreamHandler {
    std::unique_ptr<net::Stream> s;
    bool drained = false;
    size_t peak = 0;
    void on_stream_data(net::Stream&, const char*, size_t) override {}
    void on_stream_eof(net::Stream&) override {}
    void on_stream_error(net::Stream&, const std::string&) override {}
    void on_stream_drained(net::Stream& st) override {
      drained = true;
      st.close_after_flush(1000);
    }
  } writer;
  struct Reader final : net::StreamHandler {
    std::unique_ptr<net::Stream> s;
    size_t got = 0;
    bool eof = false;
    void on_stream_data(net::Stream&, const char*, size_t n) override { got += n; }
    void on_stream_eof(net::Stream& st) override {
      eof = true;
      st.close();
    }
    void on_stream_error(net::Stream&, const std::string&) override {}
  } reader;

  std::unique_ptr<net::Listener> listener;
  auto l = net::Listener::open(loop.get(), lc, false, [&](net::Listener& lst) {
    int err = 0;
    writer.s = net::Stream::accept(lst.server(), true, nullptr, &err);
    writer.s->set_handler(&writer);
    writer.s->set_watermarks(1 << 20, 64 << 10);
    std::string chunk(256 << 10, 'x');
    for (int i = 0; i < 32; ++i) writer.s->write(chunk);  // 8 MiB, far more than the socket buffers
    writer.peak = writer.s->queued();
    lst.close();
  });
  REQUIRE(l);
  listener = std::move(*l);
  reader.s = net::Stream::connect(loop.get(), nullptr, lc.address.path, nullptr, "", 1000, &reader);
  // The reader starts reading only after a while: meanwhile the writer's queue is above high.
  uvx::Handle<uv_timer_t> t(&reader);
  uv_timer_init(loop.get(), t.get());
  t.initialized();
  uv_timer_start(t.get(), [](uv_timer_t* h) { uvx::owner<Reader>(h)->s->read_start(); }, 100, 0);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  CHECK(writer.peak > (1u << 20));
  CHECK(writer.drained);
  CHECK(reader.got == 8u << 20);
  CHECK(reader.eof);
  t.close();
  writer.s.reset();
  reader.s.reset();
  listener.reset();
  CHECK(loop.close() == 0);
}
