"""Issue 3: the real docker CLI through dockgate, over the mTLS listener and the unix listener."""

import concurrent.futures
import json
import os
import tarfile
import time

import harness
from harness import IMAGE, LineReader, params, timeout, unique, wait_until

BOTH = ("tls", "unix")


def _rm(dockerd, *names):
    """Force-removes containers directly on dockerd (cleanup never goes through dockgate)."""
    if names:
        dockerd.cli("rm", "-f", *names, check=False, timeout=30)


def _start_sleeper(dg, dockerd, tls, cmd=("sleep", "300")):
    name = unique("dg-sys")
    dg.docker("run", "-d", "--name", name, IMAGE, *cmd, tls=tls)
    return name


@params(*BOTH)
def test_version(dg, transport):
    r = dg.docker("version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}", tls=transport == "tls")
    assert r.out.split() == ["1.41", "linux"], r


@params(*BOTH)
def test_run_echo(dg, transport):
    r = dg.docker("run", "--rm", IMAGE, "echo", "hi", tls=transport == "tls", timeout=30)
    assert r.out == "hi\n", r


@params(*BOTH)
def test_run_stdin_eof(dg, transport):
    # Tunnel half-close: stdin EOF must reach the container (else `cat` never exits and this hangs).
    t0 = time.monotonic()
    r = dg.docker("run", "-i", "--rm", IMAGE, "cat", input=b"data\n", tls=transport == "tls", timeout=15)
    dt = time.monotonic() - t0
    assert r.out == "data\n", r
    assert dt < 10, f"docker run -i took {dt:.1f}s"


@params(*BOTH)
def test_run_stdin_large(dg, transport):
    data = os.urandom(1 << 20).hex().encode()  # 2 MB of text through the tunnel both ways
    r = dg.docker("run", "-i", "--rm", IMAGE, "sh", "-c", "cat | sha256sum", input=data, tls=transport == "tls",
                  timeout=30)
    import hashlib
    assert r.out.split()[0] == hashlib.sha256(data).hexdigest(), r


@params(*BOTH)
def test_run_tty(dg, transport):
    cmd = f"{harness.docker_cli()} run -t --rm {IMAGE} sh -c 'tty; echo done'"
    r = harness.run(["script", "-qec", cmd, "/dev/null"], env=dg.env(transport == "tls"), timeout=30)
    assert "/dev/pts/" in r.out and "done" in r.out, r


@params(*BOTH)
def test_run_exit_code(dg, transport):
    r = dg.docker("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3", tls=transport == "tls",
                  check=False, timeout=30)
    assert r.rc == 3 and r.out == "out\n" and "err" in r.err, r


@params(*BOTH)
def test_exec_stdin(dg, dockerd, transport):
    tls = transport == "tls"
    name = _start_sleeper(dg, dockerd, tls)
    try:
        r = dg.docker("exec", "-i", name, "sh", "-c", "read a; echo got:$a; cat", input=b"hello\nworld\n",
                      tls=tls, timeout=15)
        assert r.out == "got:hello\nworld\n", r
        r = dg.docker("exec", name, "sh", "-c", "exit 7", tls=tls, check=False, timeout=15)
        assert r.rc == 7, r
    finally:
        _rm(dockerd, name)


@params(*BOTH)
def test_logs_follow(dg, dockerd, transport):
    tls = transport == "tls"
    name = _start_sleeper(dg, dockerd, tls,
                          cmd=("sh", "-c", "i=0; while :; do echo line$i; i=$((i+1)); sleep 0.2; done"))
    try:
        p = dg.docker_popen("logs", "-f", name, tls=tls)
        lr = LineReader(p.stdout)
        got = [lr.wait_for(lambda l: l.startswith("line"), timeout=10, what=f"log line {i}") for i in range(3)]
        assert got[0] == "line0", got
        # more lines keep arriving one by one (flushed, not buffered)
        lr.wait_for(lambda l: l.startswith("line"), timeout=5, what="a 4th line")
        p.kill()
        p.wait(timeout=5)
        harness.untrack(p)
        dg.healthy()
        r = dg.docker("version", "--format", "{{.Server.APIVersion}}", tls=tls)
        assert r.out.strip() == "1.41", r
    finally:
        _rm(dockerd, name)


@params(*BOTH)
@timeout(180)
def test_cp_both_ways(dg, dockerd, tmp, transport):
    tls = transport == "tls"
    src = tmp / "f.bin"
    src.write_bytes(os.urandom(5 * 1024 * 1024))
    want = harness.sha256_file(src)
    name = _start_sleeper(dg, dockerd, tls)
    try:
        dg.docker("cp", str(src), f"{name}:/tmp/f.bin", tls=tls, timeout=60)
        r = dg.docker("exec", name, "sha256sum", "/tmp/f.bin", tls=tls)
        assert r.out.split()[0] == want, r
        out = tmp / "back"
        out.mkdir()
        dg.docker("cp", f"{name}:/tmp/f.bin", str(out), tls=tls, timeout=60)
        assert harness.sha256_file(out / "f.bin") == want
    finally:
        _rm(dockerd, name)


@params(*BOTH)
@timeout(240)
def test_build_20mb_context(dg, dockerd, tmp, transport):
    ctx = tmp / "ctx"
    ctx.mkdir()
    size = 20 * 1024 * 1024
    (ctx / "big").write_bytes(os.urandom(size))
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\nCOPY big /big\nRUN wc -c /big\n")
    tag = unique("dg-build") + ":1"
    try:
        r = dg.docker("build", "-t", tag, str(ctx), tls=transport == "tls", timeout=180)
        assert f"{size} /big" in r.out and "Successfully tagged" in r.out, r
    finally:
        dockerd.cli("rmi", "-f", tag, check=False)


@params(*BOTH)
@timeout(180)
def test_save_load(dg, dockerd, tmp, transport):
    tls = transport == "tls"
    tag = unique("dg-save") + ":1"
    dockerd.cli("tag", IMAGE, tag)
    cli = harness.docker_cli()
    try:
        # the literal pipe through dockgate
        r = harness.run(["bash", "-c", f"set -o pipefail; {cli} save {tag} | {cli} load"], env=dg.env(tls),
                        timeout=120)
        assert f"Loaded image: {tag}" in r.out, r
        # save to a file, remove the image, load it back
        tarp = tmp / "img.tar"
        dg.docker("save", "-o", str(tarp), tag, tls=tls, timeout=120)
        with tarfile.open(tarp) as t:
            assert "manifest.json" in t.getnames()
        dockerd.cli("rmi", tag)
        r = dg.docker("load", "-i", str(tarp), tls=tls, timeout=120)
        assert f"Loaded image: {tag}" in r.out, r
        r = dockerd.cli("image", "inspect", "--format", "{{.Id}}", tag)
        assert r.out.startswith("sha256:"), r
    finally:
        dockerd.cli("rmi", "-f", tag, check=False)


@params(*BOTH)
def test_stats_no_stream(dg, dockerd, transport):
    tls = transport == "tls"
    name = _start_sleeper(dg, dockerd, tls)
    try:
        r = dg.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", name, tls=tls, timeout=30)
        assert r.out.startswith(name + " "), r
    finally:
        _rm(dockerd, name)


@params(*BOTH)
def test_events(dg, dockerd, transport):
    tls = transport == "tls"
    name = _start_sleeper(dg, dockerd, tls)
    p = None
    try:
        p = dg.docker_popen("events", "--filter", f"container={name}", "--format", "{{.Action}}", tls=tls)
        lr = LineReader(p.stdout)
        time.sleep(0.5)  # let the CLI subscribe; retried below if the first pause came too early
        for attempt in range(4):
            dg.docker("pause", name, tls=tls)
            t0 = time.monotonic()
            line = None
            while time.monotonic() - t0 < 3:
                line = lr.readline(0.1)
                if line == "pause":
                    break
            if line == "pause":
                latency = time.monotonic() - t0
                break
            dg.docker("unpause", name, tls=tls)
        else:
            raise AssertionError(f"no pause event received; events stderr: {p.stderr and _nb_read(p)}")
        assert latency < 2.5, f"pause event took {latency:.2f}s"
        dg.docker("unpause", name, tls=tls)
        lr.wait_for(lambda l: l == "unpause", timeout=5, what="unpause event")
        dg.docker("kill", name, tls=tls)
        lr.wait_for(lambda l: l == "die", timeout=5, what="die event")
        assert p.poll() is None, "docker events exited"
    finally:
        if p:
            harness.end_process(p)
        _rm(dockerd, name)


def _nb_read(p):
    try:
        os.set_blocking(p.stderr.fileno(), False)
        return (p.stderr.read() or b"").decode(errors="replace")
    except Exception:
        return ""


@params(*BOTH)
@timeout(180)
def test_parallel_runs(dg, transport):
    tls = transport == "tls"
    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as ex:
        futs = [ex.submit(dg.docker, "run", "--rm", IMAGE, "sh", "-c", f"echo run{i}", tls=tls, check=False,
                          timeout=120) for i in range(10)]
        rs = [f.result() for f in futs]
    bad = [r for r in rs if r.rc != 0]
    assert not bad, f"{len(bad)} of 10 parallel runs failed: {bad[:3]!r}"
    assert sorted(r.out for r in rs) == sorted(f"run{i}\n" for i in range(10)), [r.out for r in rs]


def _tls_failure_logged(dg, skip):
    def pred(l):
        s = json.dumps(l).lower()
        return any(w in s for w in ("tls", "ssl", "handshake", "certificate"))
    harness.wait_until(lambda: any(pred(l) for l in dg.log_lines()[skip:]), timeout=5,
                       what="a log line about the TLS failure")


def test_foreign_ca_client_refused(dg):
    skip = len(dg.log_lines())
    r = dg.docker("version", "--format", "{{.Server.APIVersion}}", client="foreign", check=False, timeout=20)
    assert r.rc != 0 and "1.41" not in r.out, r
    assert any(w in r.err.lower() for w in ("certificate", "tls", "connection reset", "eof")), r
    _tls_failure_logged(dg, skip)
    dg.docker("version", client="admin")  # still serving


def test_no_client_cert_refused(dg):
    skip = len(dg.log_lines())
    r = dg.docker("version", "--format", "{{.Server.APIVersion}}", client="nocert", check=False, timeout=20)
    assert r.rc != 0 and "1.41" not in r.out, r
    assert any(w in r.err.lower() for w in ("certificate", "tls", "connection reset", "eof")), r
    _tls_failure_logged(dg, skip)
    dg.docker("version", client="admin")


def test_plain_http_on_tls_listener_refused(dg):
    import socket
    s = socket.create_connection(("127.0.0.1", dg.port), timeout=5)
    try:
        s.sendall(harness.http_request("GET", "/v1.41/version", [("Connection", "close")]))
        data = harness.recv_all(s, read_timeout=3, total_timeout=5)
    finally:
        s.close()
    assert b"ApiVersion" not in data, data[:300]
    dg.healthy(tls=True)


def test_access_log(dg):
    dg.docker("version", tls=True)
    dg.docker("version", tls=False)

    def pred(l):
        s = json.dumps(l)
        return "/version" in s and "200" in s
    dg.wait_log(pred, timeout=5, what="an access-log line for GET /version with status 200")
    text = dg.log_text()
    assert "admin" in text, "mTLS client identity (CN=admin) not logged"


def test_reload_keeps_serving(dg):
    dg.docker("version", tls=True)
    dg.reload()
    time.sleep(0.3)
    assert dg.alive(), dg.output_tail()
    dg.docker("version", tls=True)
    dg.docker("version", tls=False)


@timeout(180)
def test_upstream_down_then_back(certs, tmp):
    """dockerd stopped while dockgate runs: 502 with a JSON message; works again once dockerd is back.
    Uses a second private dockerd so the shared one is not disturbed."""
    d2 = harness.Dockerd.create(prefix="dg-sys2-")
    d2.start()
    g = harness.Dockgate(d2, certs, workdir=tmp / "gate", listeners=("unix",))
    g.start()
    r = g.request("GET", "/v1.41/version")
    assert r.status == 200 and r.json().get("ApiVersion") == "1.41", r
    d2.stop()
    t0 = time.monotonic()
    r = g.request("GET", "/v1.41/version", timeout=15)
    dt = time.monotonic() - t0
    assert r.status == 502, r
    assert "json" in (r.header("Content-Type") or ""), r
    msg = r.json().get("message", "")
    assert msg, r
    assert dt < 10, f"502 took {dt:.1f}s"
    r = g.docker("version", tls=False, check=False, timeout=20)
    assert r.rc != 0, r
    d2.start()
    r = g.request("GET", "/v1.41/version")
    assert r.status == 200 and r.json().get("ApiVersion") == "1.41", r
    g.docker("version", tls=False, timeout=20)
    g.stop()
