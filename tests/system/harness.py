"""System-test harness for dockgate (Python 3 stdlib only).

Pieces:
  * process tracking: every process a test starts goes through spawn(); cleanup() ends them by PID
    (atexit and SIGTERM/SIGINT/SIGHUP handlers call it).
  * Dockerd: a private dockerd (own socket, data-root, exec-root; no bridge, no iptables) with a
    busybox:latest image imported from busybox-static.
  * Certs: a CA, a server certificate (localhost, 127.0.0.1) and client certificate directories
    (ca.pem/cert.pem/key.pem) for the docker CLI: admin (CN=admin, OU=admins), foreign (signed by
    another CA), nocert (ca.pem only).
  * Dockgate: writes a config, runs build/src/dockgate (or $DOCKGATE_BIN), drives the real docker
    CLI and raw sockets through it.
  * small helpers: raw HTTP building/parsing, line readers with deadlines, wait_until.

Every subprocess and socket operation has a timeout.
"""

import atexit
import hashlib
import io
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKGATE_BIN = Path(os.environ.get("DOCKGATE_BIN", str(REPO / "build" / "src" / "dockgate")))
POLICY_ALLOW_ALL = REPO / "policies" / "allow-all.yaml"
CERTS_TOOL = REPO / "certs-tools" / "dockgate-certs"
BUSYBOX = "/bin/busybox"
IMAGE = "busybox:latest"


def docker_cli():
    for c in ("/usr/local/bin/docker",):
        if os.access(c, os.X_OK):
            return c
    c = shutil.which("docker")
    if not c:
        raise RuntimeError("docker CLI not found (apt-get install docker.io)")
    return c


def dockerd_bin():
    c = shutil.which("dockerd") or ("/usr/sbin/dockerd" if os.access("/usr/sbin/dockerd", os.X_OK) else None)
    if not c:
        raise RuntimeError("dockerd not found (apt-get install docker.io)")
    return c


# ---------------------------------------------------------------------------------------------
# Process tracking and cleanup

_lock = threading.RLock()
_procs = {}        # pid -> (Popen, name)
_cleanups = []     # callables, run last-in first-out
_cleaning = False


def spawn(argv, name=None, **kw):
    """Popen + tracking. The process is ended by PID in cleanup() if still running."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen([str(a) for a in argv], **kw)
    with _lock:
        _procs[p.pid] = (p, name or os.path.basename(str(argv[0])))
    return p


def untrack(p):
    with _lock:
        _procs.pop(p.pid, None)


def end_process(p, grace=3.0):
    """SIGTERM, wait up to grace, then SIGKILL. Only for processes we started."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    for f in (p.stdin, p.stdout, p.stderr):
        try:
            if f:
                f.close()
        except Exception:
            pass
    untrack(p)


def on_cleanup(fn):
    with _lock:
        _cleanups.append(fn)
    return fn


def cleanup():
    global _cleaning
    with _lock:
        if _cleaning:
            return
        _cleaning = True
        procs = list(_procs.values())
        fns = list(reversed(_cleanups))
        _cleanups.clear()
    for p, _ in procs:
        try:
            end_process(p, grace=2.0)
        except Exception:
            pass
    for fn in fns:
        try:
            fn()
        except Exception as e:  # keep cleaning
            print(f"# cleanup error: {e!r}", file=sys.stderr)
    with _lock:
        _cleaning = False


def _on_signal(signum, frame):
    cleanup()
    os._exit(128 + signum)


def install_signal_handlers():
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _on_signal)


def descendants(pid):
    """PIDs of all descendants of pid (snapshot from /proc)."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pids_mentioning(text, programs=None):
    """PIDs whose command line contains text (used with our unique temp dirs only), optionally only
    those whose program name (argv[0] basename) starts with one of programs."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmd:
            prog = os.path.basename(cmd.split(b" ", 1)[0].decode(errors="replace"))
            if programs is None or prog.startswith(tuple(programs)):
                out.append(int(d))
    return out


def kill_pids(pids, grace=3.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            st = f.read()
        return st[st.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return False


# ---------------------------------------------------------------------------------------------
# Small helpers

class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out_bytes, self.err_bytes = argv, rc, out, err

    @property
    def out(self):
        return self.out_bytes.decode("utf-8", "replace")

    @property
    def err(self):
        return self.err_bytes.decode("utf-8", "replace")

    def __repr__(self):
        return (f"Result(rc={self.rc}, argv={' '.join(map(str, self.argv))!r},\n  stdout={_clip(self.out)!r},\n"
                f"  stderr={_clip(self.err)!r})")


def _clip(s, n=1500):
    return s if len(s) <= n else s[:n // 2] + " … " + s[-n // 2:]


def run(argv, input=None, timeout=60, env=None, check=True, cwd=None):
    """Run a command to completion with a timeout; returns Result. check=True asserts rc == 0."""
    p = spawn(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
    if isinstance(input, str):
        input = input.encode()
    try:
        out, err = p.communicate(input=input, timeout=timeout)
    except subprocess.TimeoutExpired:
        kids = descendants(p.pid)
        p.kill()
        kill_pids([k for k in kids if _alive(k)], grace=1)
        out, err = p.communicate(timeout=10)
        untrack(p)
        raise AssertionError(f"timed out after {timeout}s: {' '.join(map(str, argv))}\n"
                             f"  stdout={_clip(out.decode('utf-8', 'replace'))!r}\n"
                             f"  stderr={_clip(err.decode('utf-8', 'replace'))!r}") from None
    untrack(p)
    r = Result(argv, p.returncode, out, err)
    if check and r.rc != 0:
        raise AssertionError(f"command failed: {r!r}")
    return r


def wait_until(pred, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # retry until the deadline
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def unique(prefix="dg"):
    return f"{prefix}-{secrets.token_hex(4)}"


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class LineReader:
    """Reads lines from a pipe in a thread; readline(timeout) returns a line or None on timeout/EOF."""

    def __init__(self, f):
        self.q = queue.Queue()
        self.eof = False
        self.t = threading.Thread(target=self._run, args=(f,), daemon=True)
        self.t.start()

    def _run(self, f):
        try:
            for line in iter(f.readline, b""):
                self.q.put(line.decode("utf-8", "replace").rstrip("\r\n"))
        except (ValueError, OSError):
            pass
        self.eof = True
        self.q.put(None)

    def readline(self, timeout):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_for(self, pred, timeout, what="line"):
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}; saw {seen[-20:]!r}")
            line = self.readline(left)
            if line is None:
                if self.eof:
                    raise AssertionError(f"EOF while waiting for {what}; saw {seen[-20:]!r}")
                continue
            seen.append(line)
            if pred(line):
                return line


# ---------------------------------------------------------------------------------------------
# Raw HTTP

def http_request(method, path, headers=None, body=b"", host="dockgate.test", version="HTTP/1.1"):
    """Builds a request. headers: list of (name, value) or dict; Host added unless host is None."""
    if isinstance(headers, dict):
        headers = list(headers.items())
    headers = list(headers or [])
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}"]
    if host is not None and not any(k.lower() == "host" for k, _ in headers):
        lines.append(f"Host: {host}")
    for k, v in headers:
        lines.append(f"{k}: {v}")
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data):
    if isinstance(data, str):
        data = data.encode()
    return b"%x\r\n" % len(data) + data + b"\r\n"


class Response:
    def __init__(self, version, status, reason, headers, body, complete=True):
        self.version, self.status, self.reason = version, status, reason
        self.headers = headers  # list of (name, value)
        self.body = body
        self.complete = complete

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return (f"Response({self.status} {self.reason!r}, headers={self.headers!r}, "
                f"body={_clip(self.body.decode('utf-8', 'replace'), 600)!r}, complete={self.complete})")


def parse_responses(data, methods=None):
    """Parses all HTTP/1.x responses in data (1xx included). methods[i] = request method of the i-th
    final response ("HEAD" => no body). A truncated last response is returned with complete=False."""
    out = []
    pos = 0
    final_idx = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append(Response(None, None, None, [], data[pos:], complete=False))
            break
        head = data[pos:end].decode("latin-1").split("\r\n")
        m = re.match(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?$", head[0])
        if not m:
            out.append(Response(None, None, head[0], [], data[pos:], complete=False))
            break
        version, status, reason = m.group(1), int(m.group(2)), m.group(3) or ""
        headers = []
        for h in head[1:]:
            k, _, v = h.partition(":")
            headers.append((k.strip(), v.strip()))
        pos = end + 4
        r = Response(version, status, reason, headers, b"")
        out.append(r)
        if 100 <= status < 200 and status != 101:
            continue
        method = (methods[final_idx] if methods and final_idx < len(methods) else "GET")
        final_idx += 1
        if status == 101:
            r.body = data[pos:]
            break
        if method == "HEAD" or status in (204, 304):
            continue
        te = (r.header("Transfer-Encoding") or "").lower()
        cl = r.header("Content-Length")
        if "chunked" in te:
            body = b""
            while True:
                le = data.find(b"\r\n", pos)
                if le < 0:
                    r.complete = False
                    pos = len(data)
                    break
                size = int(data[pos:le].split(b";")[0].strip() or b"0", 16)
                pos = le + 2
                if size == 0:
                    te_end = data.find(b"\r\n\r\n", pos - 2)
                    if data[pos:pos + 2] == b"\r\n":
                        pos += 2
                    elif te_end >= 0:
                        pos = te_end + 4
                    else:
                        pos = len(data)
                    break
                body += data[pos:pos + size]
                if len(data) < pos + size + 2:
                    r.complete = False
                pos += size + 2
            r.body = body
        elif cl is not None:
            n = int(cl)
            r.body = data[pos:pos + n]
            r.complete = len(r.body) == n
            pos += n
        else:  # close-delimited: complete only at EOF, which the caller knows, not us
            r.body = data[pos:]
            r.complete = False
            pos = len(data)
    return out


def has_responses(n, methods=None):
    """An until= predicate for recv_all/raw: true once n complete final responses were received."""
    def pred(data):
        rs = [r for r in parse_responses(data, methods)
              if r.status is None or not (100 <= r.status < 200 and r.status != 101)]
        return len(rs) >= n and all(r.complete and r.status is not None for r in rs[:n])
    return pred


def recv_all(sock, read_timeout=2.0, total_timeout=30.0, until=None):
    """Reads until EOF, read_timeout of silence, total_timeout, or until(data) is true."""
    data = b""
    deadline = time.monotonic() + total_timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, min(read_timeout, deadline - time.monotonic())))
        try:
            b = sock.recv(65536)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            break
        if not b:
            break
        data += b
        if until and until(data):
            break
    return data


def is_closed(sock, timeout=2.0):
    """True if the peer closes (EOF or reset) within timeout without sending more data."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
        return True


def unix_http(sock_path, method, path, body=b"", headers=None, timeout=10.0):
    """One request over a fresh unix-socket connection with Connection: close; returns Response."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(sock_path))
        hs = list((headers or {}).items()) + [("Connection", "close")]
        s.sendall(http_request(method, path, hs, body))
        data = recv_all(s, read_timeout=timeout, total_timeout=timeout)
    finally:
        s.close()
    rs = parse_responses(data, methods=[method])
    if not rs or rs[-1].status is None:
        raise AssertionError(f"no HTTP response to {method} {path}: {data[:300]!r}")
    return rs[-1]


# ---------------------------------------------------------------------------------------------
# Certificates

class Certs:
    """CA + server + client certificates, made with certs-tools/dockgate-certs when it is there and
    works (DG_CERTS_OPENSSL=1: don't try it), else with the openssl CLI.

    Files: ca.pem, server-cert.pem, server-key.pem; clients/<name>/{ca,cert,key}.pem for admin
    (CN=admin, OU=admins), alice (CN=alice, OU=devs), foreign (CN=admin from an untrusted CA),
    nocert (ca.pem only)."""

    def __init__(self, dir):
        self.dir = Path(dir)
        self.ca = self.dir / "ca.pem"
        self.ca_key = self.dir / "ca-key.pem"
        self.server_cert = self.dir / "server-cert.pem"
        self.server_key = self.dir / "server-key.pem"
        self.tool = None

    def client_dir(self, name):
        return self.dir / "clients" / name

    def add_client(self, name, groups=()):
        """Makes (once) client directory `name` with CN=name and one OU per group, signed by the test
        CA (certs-tools when the CA was made with it, else openssl). Returns the directory."""
        cd = self.client_dir(name)
        if (cd / "cert.pem").exists():
            return cd
        pki = self.dir / "pki"
        if (pki / "ca.pem").exists() and os.access(CERTS_TOOL, os.X_OK):
            args = [a for g in groups for a in ("--group", g)]
            run([CERTS_TOOL, "--dir", pki, "client", name, *args, "--out", cd], timeout=60)
        else:
            cd.mkdir(parents=True, exist_ok=True)
            subj = "".join(f"/OU={g}" for g in groups) + f"/CN={name}"
            self._leaf(self.ca, self.ca_key, cd / "key.pem", cd / "cert.pem", subj,
                       "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                       "extendedKeyUsage=clientAuth\n")
            shutil.copy(self.ca, cd / "ca.pem")
        return cd

    @classmethod
    def generate(cls, dir):
        c = cls(dir)
        c.dir.mkdir(parents=True, exist_ok=True)
        if not c.ca.exists():
            c.tool = None
            if os.access(CERTS_TOOL, os.X_OK) and not os.environ.get("DG_CERTS_OPENSSL"):
                try:
                    c._generate_with_tool()
                    c.tool = str(CERTS_TOOL)
                except Exception as e:  # fall back to the openssl CLI
                    print(f"# {CERTS_TOOL} failed, using openssl: {e}", file=sys.stderr)
                    for x in c.dir.iterdir():
                        shutil.rmtree(x) if x.is_dir() else x.unlink()
            if c.tool is None:
                c._generate()
            c.check()
        return c

    def check(self):
        for f in (self.ca, self.server_cert, self.server_key):
            assert f.is_file(), f"missing {f}"
        for name in ("admin", "alice", "foreign"):
            for f in ("ca.pem", "cert.pem", "key.pem"):
                assert (self.client_dir(name) / f).is_file(), f"missing {self.client_dir(name) / f}"
        assert (self.client_dir("nocert") / "ca.pem").is_file()

    def _generate_with_tool(self):
        def tool(pki, *args):
            run([CERTS_TOOL, "--dir", pki, *args], timeout=60)
        pki, fpki = self.dir / "pki", self.dir / "foreign-pki"
        tool(pki, "init", "--name", "dockgate test CA")
        tool(pki, "server", "localhost", "--dns", "localhost", "--ip", "127.0.0.1", "--ip", "::1")
        srv = pki / "servers" / "localhost"
        shutil.copy(pki / "ca.pem", self.ca)
        shutil.copy(srv / "cert.pem", self.server_cert)
        shutil.copy(srv / "key.pem", self.server_key)
        tool(pki, "client", "admin", "--group", "admins", "--out", self.client_dir("admin"))
        tool(pki, "client", "alice", "--group", "devs", "--out", self.client_dir("alice"))
        tool(fpki, "init", "--name", "foreign CA")
        tool(fpki, "client", "admin", "--group", "admins", "--out", self.client_dir("foreign"))
        shutil.copy(self.ca, self.client_dir("foreign") / "ca.pem")  # trusts our server
        self.client_dir("nocert").mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, self.client_dir("nocert") / "ca.pem")

    def _ossl(self, *args):
        run(["openssl", *args], timeout=60, cwd=self.dir)

    def _key(self, path):
        self._ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path)
        os.chmod(path, 0o600)

    def _ca(self, key, cert, cn):
        self._key(key)
        self._ossl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "3650", "-subj", f"/CN={cn}",
                   "-addext", "basicConstraints=critical,CA:TRUE",
                   "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, ca, ca_key, key, cert, subj, ext):
        self._key(key)
        csr = str(cert) + ".csr"
        extf = str(cert) + ".ext"
        Path(extf).write_text(ext)
        self._ossl("req", "-new", "-key", key, "-out", csr, "-subj", subj)
        self._ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                   "-out", cert, "-days", "825", "-extfile", extf)
        os.unlink(csr)
        os.unlink(extf)

    def _generate(self):
        d = self.dir
        self._ca(self.ca_key, self.ca, "dockgate test CA")
        self._leaf(self.ca, self.ca_key, self.server_key, self.server_cert, "/CN=localhost",
                   "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n")
        client_ext = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                      "extendedKeyUsage=clientAuth\n")
        for name, subj in (("admin", "/OU=admins/CN=admin"), ("alice", "/OU=devs/CN=alice")):
            cd = self.client_dir(name)
            cd.mkdir(parents=True, exist_ok=True)
            self._leaf(self.ca, self.ca_key, cd / "key.pem", cd / "cert.pem", subj, client_ext)
            shutil.copy(self.ca, cd / "ca.pem")
        # A client certificate from a CA dockgate does not trust (the client trusts our server CA).
        fca, fkey = d / "foreign-ca.pem", d / "foreign-ca-key.pem"
        self._ca(fkey, fca, "foreign CA")
        cd = self.client_dir("foreign")
        cd.mkdir(parents=True, exist_ok=True)
        self._leaf(fca, fkey, cd / "key.pem", cd / "cert.pem", "/OU=admins/CN=admin", client_ext)
        shutil.copy(self.ca, cd / "ca.pem")
        # Trusts the server but has no client certificate.
        cd = self.client_dir("nocert")
        cd.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.ca, cd / "ca.pem")

    def ssl_context(self, client="admin"):
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.check_hostname = False
        cd = self.client_dir(client)
        if (cd / "cert.pem").exists():
            ctx.load_cert_chain(str(cd / "cert.pem"), str(cd / "key.pem"))
        return ctx


# ---------------------------------------------------------------------------------------------
# dockerd

class Dockerd:
    """A private dockerd. Use Dockerd.create() (new dir) or Dockerd(dir) to attach to a running one."""

    def __init__(self, dir):
        self.dir = Path(dir)
        self.sock = self.dir / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.log = self.dir / "dockerd.log"
        self.proc = None
        self.extra_args = []  # e.g. a --tlsverify TCP endpoint (test_upstream_tls.py)

    @classmethod
    def create(cls, prefix="dg-sys-"):
        d = cls(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        on_cleanup(d.destroy)
        return d

    def pid(self):
        try:
            return int((self.dir / "dockerd.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def ping(self, timeout=2.0):
        try:
            return unix_http(self.sock, "GET", "/_ping", timeout=timeout).status == 200
        except (OSError, AssertionError):
            return False

    def start(self, timeout=60):
        argv = [dockerd_bin(), "--host", self.host, "--data-root", self.dir / "data",
                "--exec-root", self.dir / "exec", "--pidfile", self.dir / "dockerd.pid",
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--userland-proxy=false", "--shutdown-timeout=5", *self.extra_args]
        logf = open(self.log, "ab")
        self.proc = spawn(argv, name="dockerd", stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.monotonic() + timeout
        while not self.ping(timeout=1.0):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer /_ping within {timeout}s:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, n=30):
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=30):
        pid = self.proc.pid if self.proc else self.pid()
        if self.proc:
            end_process(self.proc, grace=timeout)
            self.proc = None
        elif pid and _alive(pid):
            kill_pids([pid], grace=timeout)
        # containerd and shims it started (their command lines name our private exec-root)
        leftovers = pids_mentioning(str(self.dir) + "/", programs=("containerd", "runc", "dockerd", "docker-"))
        if leftovers:
            kill_pids(leftovers, grace=3)
        self._unmount()

    def _unmount(self):
        mps = []
        try:
            with open("/proc/self/mountinfo") as f:
                for line in f:
                    mp = line.split()[4].encode().decode("unicode_escape")
                    if mp.startswith(str(self.dir) + "/"):
                        mps.append(mp)
        except OSError:
            return
        for mp in sorted(mps, key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=10)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def env(self):
        e = dict(os.environ)
        for k in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_CONTEXT"):
            e.pop(k, None)
        e["DOCKER_HOST"] = self.host
        e["DOCKER_CONFIG"] = str(self.dir / "cli-config")
        e["DOCKER_BUILDKIT"] = "0"
        return e

    def cli(self, *args, input=None, timeout=60, check=True):
        """The docker CLI talking to dockerd directly (setup and checks, never the thing under test)."""
        return run([docker_cli(), *args], input=input, timeout=timeout, env=self.env(), check=check)

    def import_busybox(self, tag=IMAGE):
        if not os.access(BUSYBOX, os.X_OK):
            raise RuntimeError(f"{BUSYBOX} not found (apt-get install busybox-static)")
        applets = run([BUSYBOX, "--list"], timeout=10).out.split()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "root"):
                ti = tarfile.TarInfo(d)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o1777 if d == "tmp" else 0o755
                tar.addfile(ti)
            tar.add(BUSYBOX, arcname="bin/busybox")
            for a in applets:
                if a == "busybox" or "/" in a:
                    continue
                ti = tarfile.TarInfo(f"bin/{a}")
                ti.type = tarfile.SYMTYPE
                ti.linkname = "busybox"
                tar.addfile(ti)
            for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"),
                               ("etc/group", "root:x:0:\nnogroup:x:65534:\n")):
                data = text.encode()
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                ti.mode = 0o644
                tar.addfile(ti, io.BytesIO(data))
        self.cli("import", "-c", "ENV PATH=/bin", "-", tag, input=buf.getvalue(), timeout=120)
        return self

    def containers(self):
        r = unix_http(self.sock, "GET", "/v1.41/containers/json?all=1")
        return [c["Id"] for c in r.json()]

    def sweep(self, keep_images=(IMAGE,)):
        """Removes every container and every image except keep_images (shared dockerd hygiene)."""
        removed = []
        for cid in self.containers():
            unix_http(self.sock, "DELETE", f"/v1.41/containers/{cid}?force=1&v=1", timeout=30)
            removed.append(cid[:12])
        for img in unix_http(self.sock, "GET", "/v1.41/images/json?all=0").json():
            tags = img.get("RepoTags") or []
            if any(t in keep_images for t in tags):
                for t in tags:
                    if t not in keep_images:
                        unix_http(self.sock, "DELETE", f"/v1.41/images/{t}?noprune=1")
                        removed.append(t)
                continue
            unix_http(self.sock, "DELETE", f"/v1.41/images/{img['Id']}?force=1", timeout=30)
            removed.append(",".join(tags) or img["Id"][:19])
        return removed


# ---------------------------------------------------------------------------------------------
# dockgate

_dockgates = []  # started in this process, for failure reports


def _yq(s):
    return json.dumps(str(s))  # a JSON string is a valid YAML double-quoted scalar


class Dockgate:
    """One dockgate process with its own config, listeners and log.

    listeners: any of "tls" (tcp 127.0.0.1:<free port>, mTLS) and "unix" (socket in workdir, anonymous).
    """

    def __init__(self, dockerd, certs, workdir=None, listeners=("tls", "unix"), upstream=None,
                 policy=None, extra_yaml="", config_text=None, unix_auth=("anonymous",)):
        self.dockerd = dockerd
        self.certs = certs
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="dg-gate-", dir="/tmp"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port() if "tls" in listeners else None
        self.sock = self.dir / "dockgate.sock" if "unix" in listeners else None
        self.listeners = listeners
        self.upstream = upstream or (dockerd.host if dockerd else None)
        self.policy = Path(policy or POLICY_ALLOW_ALL)
        self.unix_auth = unix_auth
        self.log_file = self.dir / "dockgate.log"
        self.stderr_file = self.dir / "dockgate.stderr"
        self.config = self.dir / "dockgate.yaml"
        self.proc = None
        self.exit_code = None
        self.term_sent = None
        self.cli_config = self.dir / "cli-config"
        self.cli_config.mkdir(exist_ok=True)
        self.config.write_text(config_text if config_text is not None else self.config_yaml(extra_yaml))
        _dockgates.append(self)
        on_cleanup(self._cleanup)

    def config_yaml(self, extra_yaml=""):
        y = ["listeners:"]
        if "tls" in self.listeners:
            y += [f"  - address: {_yq(f'tcp://127.0.0.1:{self.port}')}",
                  f"    tls: {{certificate: {_yq(self.certs.server_cert)}, key: {_yq(self.certs.server_key)}, "
                  f"client_ca: {_yq(self.certs.ca)}}}"]
        if "unix" in self.listeners:
            y += [f"  - address: {_yq(f'unix://{self.sock}')}",
                  f"    auth: [{', '.join(self.unix_auth)}]"]
        y += ["upstream:", f"  address: {_yq(self.upstream)}",
              f"policy: {_yq(self.policy)}",
              f"log: {{format: json, file: {_yq(self.log_file)}}}"]
        return "\n".join(y) + "\n" + extra_yaml

    # -- lifecycle

    def start(self, timeout=15):
        if not os.access(DOCKGATE_BIN, os.X_OK):
            raise AssertionError(f"dockgate binary not found at {DOCKGATE_BIN} "
                                 f"(build it: meson setup build && ninja -C build)")
        errf = open(self.stderr_file, "ab")
        self.term_sent = None
        self.proc = spawn([DOCKGATE_BIN, "--config", self.config], name="dockgate",
                          stdout=errf, stderr=subprocess.STDOUT, cwd=self.dir)
        errf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.exit_code = self.proc.returncode
                raise AssertionError(f"dockgate exited at start with status {self.proc.returncode}:\n"
                                     f"{self.output_tail()}")
            if self._listening():
                return self
            if time.monotonic() > deadline:
                raise AssertionError(f"dockgate did not accept connections within {timeout}s:\n"
                                     f"{self.output_tail()}")
            time.sleep(0.05)

    def _listening(self):
        ok = True
        if self.port:
            try:  # a full handshake, so the probe does not look like a TLS failure in the log
                self.connect(tls=True, timeout=2).close()
            except (OSError, ssl.SSLError):
                ok = False
        if self.sock:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(0.5)
            try:
                s.connect(str(self.sock))
            except OSError:
                ok = False
            finally:
                s.close()
        return ok

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def terminate(self):
        """Sends SIGTERM once (a second SIGTERM may mean "stop now" to dockgate)."""
        if self.proc is not None and self.proc.poll() is None and not self.term_sent:
            self.proc.send_signal(signal.SIGTERM)
            self.term_sent = time.monotonic()

    def stop(self, grace=None, expect_code=0):
        """SIGTERM (unless terminate() sent it already); asserts the exit status within grace seconds
        of the SIGTERM (default $DG_STOP_GRACE or 15)."""
        grace = grace or float(os.environ.get("DG_STOP_GRACE", "15"))
        if self.proc is None:
            return self.exit_code
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout=max(0.1, grace - (time.monotonic() - self.term_sent)))
            except subprocess.TimeoutExpired:
                end_process(self.proc, grace=1)
                self.proc = None
                raise AssertionError(f"dockgate did not exit within {grace:.0f}s of SIGTERM:\n"
                                     f"{self.output_tail()}") from None
        self.exit_code = self.proc.returncode
        untrack(self.proc)
        self.proc = None
        if expect_code is not None and self.exit_code != expect_code:
            raise AssertionError(f"dockgate exited with {self.exit_code} (expected {expect_code}):\n"
                                 f"{self.output_tail()}")
        return self.exit_code

    def _cleanup(self):
        if self.proc is not None:
            end_process(self.proc, grace=3)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs

    def log_text(self):
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def output_tail(self, n=25):
        parts = []
        for label, f in (("log", self.log_file), ("stderr", self.stderr_file)):
            try:
                lines = f.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                continue
            if lines:
                parts.append(f"--- dockgate {label} ({f}) last {len(lines)} lines:\n" + "\n".join(lines))
        if self.proc is not None and self.proc.poll() is not None:
            rc = self.proc.returncode
            why = f"killed by signal {-rc} ({signal.Signals(-rc).name})" if rc < 0 else f"exit status {rc}"
            parts.insert(0, f"--- dockgate (pid {self.proc.pid}) is NOT RUNNING: {why}")
        return "\n".join(parts) or "(dockgate wrote no output)"

    def wait_log(self, pred, timeout=5.0, what="log line"):
        return wait_until(lambda: next((l for l in self.log_lines() if pred(l)), None), timeout=timeout,
                          what=what)

    # -- docker CLI

    def env(self, tls=True, client="admin"):
        e = dict(os.environ)
        for k in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_TLS", "DOCKER_CONTEXT", "DOCKER_API_VERSION"):
            e.pop(k, None)
        e["DOCKER_CONFIG"] = str(self.cli_config)
        e["DOCKER_BUILDKIT"] = "0"
        if tls:
            assert self.port, "this dockgate has no TLS listener"
            e["DOCKER_HOST"] = f"tcp://127.0.0.1:{self.port}"
            e["DOCKER_TLS_VERIFY"] = "1"
            e["DOCKER_CERT_PATH"] = str(self.certs.client_dir(client))
        else:
            assert self.sock, "this dockgate has no unix listener"
            e["DOCKER_HOST"] = f"unix://{self.sock}"
        return e

    def docker(self, *args, input=None, tls=True, client="admin", timeout=60, check=True):
        return run([docker_cli(), *args], input=input, timeout=timeout, env=self.env(tls, client), check=check)

    def docker_popen(self, *args, tls=True, client="admin", stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE):
        return spawn([docker_cli(), *args], name="docker", env=self.env(tls, client), stdin=stdin,
                     stdout=stdout, stderr=stderr)

    # -- raw sockets

    def connect(self, tls=False, client="admin", timeout=5.0):
        if tls:
            raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            s = self.certs.ssl_context(client).wrap_socket(raw, server_hostname="localhost")
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(timeout)
            s.connect(str(self.sock))
        s.settimeout(timeout)
        return s

    def raw(self, data, tls=False, read_timeout=2.0, client="admin", total_timeout=30.0, until=None):
        """Sends data on a new connection, returns everything read until EOF / silence / timeout."""
        s = self.connect(tls=tls, client=client)
        try:
            s.sendall(data)
            return recv_all(s, read_timeout=read_timeout, total_timeout=total_timeout, until=until)
        finally:
            s.close()

    def request(self, method, path, body=b"", headers=None, tls=False, timeout=10.0):
        """One request with Connection: close; returns the final Response."""
        hs = list((headers or {}).items()) + [("Connection", "close")]
        data = self.raw(http_request(method, path, hs, body), tls=tls, read_timeout=timeout,
                        total_timeout=timeout)
        rs = [r for r in parse_responses(data, methods=[method]) if r.status is None or r.status >= 200]
        if not rs or rs[-1].status is None:
            raise AssertionError(f"no HTTP response to {method} {path}: {data[:300]!r}")
        return rs[-1]

    def healthy(self, tls=False):
        r = self.request("GET", "/_ping", tls=tls)
        assert r.status == 200 and r.body == b"OK", f"/_ping through dockgate: {r!r}"
        return True


def failure_report():
    """Last log lines of every dockgate started by this process."""
    return "\n".join(g.output_tail() for g in _dockgates)


# ---------------------------------------------------------------------------------------------
# Test decorators (read by run.py)

def timeout(seconds):
    def deco(fn):
        fn.timeout = seconds
        return fn
    return deco


def params(*values):
    """Runs the test once per value, passed as argument `transport` (e.g. @params("tls", "unix"))."""
    def deco(fn):
        fn.params = values
        return fn
    return deco
