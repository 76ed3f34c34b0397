"""dockgate as a process: -t config checks, bad configs, SIGHUP reload, SIGTERM graceful stop."""

import re
import socket
import time

import harness
from harness import IMAGE, run


def _check(config, timeout=15):
    return harness.run([harness.DOCKGATE_BIN, "-t", "--config", config], timeout=timeout, check=False)


def test_config_check_ok(dockerd, certs, tmp):
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g")
    r = _check(g.config)
    assert r.rc == 0, r


def test_config_check_reports_file_line(dockerd, certs, tmp):
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g", extra_yaml="bogus_key: 1\n")
    r = _check(g.config)
    assert r.rc == 1, r
    text = r.out + r.err
    assert re.search(r"dockgate\.yaml:\d+", text) and "bogus_key" in text, r


def test_bad_config_does_not_start(dockerd, certs, tmp):
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g", listeners=("unix",),
                         extra_yaml="limits: {max_header_size: lots}\n")
    try:
        g.start(timeout=10)
    except AssertionError as e:
        assert "exited at start" in str(e), e
    else:
        raise AssertionError("dockgate started with an invalid config")
    assert g.exit_code not in (0, None), g.exit_code


def test_plain_tcp_on_public_address_refused(dockerd, certs, tmp):
    port = harness.free_port()
    text = (f'listeners:\n  - address: "tcp://0.0.0.0:{port}"\n'
            f'upstream:\n  address: "{dockerd.host}"\npolicy: "{harness.POLICY_ALLOW_ALL}"\n')
    (tmp / "c.yaml").write_text(text)
    r = _check(tmp / "c.yaml")
    assert r.rc == 1 and "c.yaml:" in (r.out + r.err), r


def test_sighup_with_broken_config_keeps_running(dg):
    good = dg.config.read_text()
    dg.docker("version", tls=True)
    dg.config.write_text(good + "listeners: [oops\n")
    dg.reload()
    time.sleep(0.5)
    assert dg.alive(), dg.output_tail()
    dg.docker("version", tls=True)
    dg.docker("version", tls=False)
    dg.config.write_text(good)
    dg.reload()
    time.sleep(0.3)
    dg.docker("version", tls=True)


def test_sigterm_lets_inflight_request_finish(dockerd, certs, tmp):
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g")
    g.start()
    p = g.docker_popen("run", "--rm", IMAGE, "sh", "-c", "sleep 2; echo finished", tls=True)
    try:
        # once the container runs, its attach tunnel and wait request are in flight through dockgate
        harness.wait_until(lambda: dockerd.cli("ps", "-q").out.strip(), timeout=10, what="the container to run")
        g.terminate()
        out, err = p.communicate(timeout=15)
        assert p.returncode == 0 and b"finished" in out, (p.returncode, out, err)
    finally:
        harness.end_process(p)
    g.stop(grace=15)


def test_sigterm_ends_streams_after_grace(dockerd, certs, tmp):
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g", extra_yaml="limits: {shutdown_grace: 2s}\n")
    g.start()
    p = g.docker_popen("events", tls=False)
    try:
        time.sleep(0.5)
        t0 = time.monotonic()
        g.terminate()
        # no new connections once stopping
        def refused():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(1)
            try:
                s.connect(str(g.sock))
                return False
            except OSError:
                return True
            finally:
                s.close()
        harness.wait_until(refused, timeout=2, what="the unix listener to close")
        g.stop(grace=12)
        dt = time.monotonic() - t0
        assert dt < 10, f"stop took {dt:.1f}s with shutdown_grace 2s"
        p.wait(timeout=10)  # the events stream was closed
    finally:
        harness.end_process(p)


def test_sighup_refuses_reordered_listeners(dockerd, certs, tmp):
    """A reload must never pair a bound socket with another listener's TLS/auth settings."""
    g = harness.Dockgate(dockerd, certs, workdir=tmp / "g")
    g.start()
    text = g.config.read_text()
    head, rest = text.split("listeners:\n", 1)
    tls_part, rest2 = rest.split("  - address: \"unix://", 1)
    unix_part, tail = ("  - address: \"unix://" + rest2).split("upstream:", 1)
    g.config.write_text(head + "listeners:\n" + unix_part + tls_part + "upstream:" + tail)
    g.reload()
    g.wait_log(lambda l: l.get("event") == "reload" and "kept" in l.get("result", ""), timeout=5)
    # Still mTLS on the TCP port: a client without a certificate is refused, with one it works.
    r = g.docker("version", tls=True, client="nocert", check=False, timeout=20)
    assert r.rc != 0, r
    g.docker("version", tls=True)
    g.docker("version", tls=False)
    g.stop()


def test_startup_failure_exits_promptly(dockerd, certs, tmp):
    """The second listener cannot bind: dockgate exits 1 at once instead of serving the first."""
    import socket
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    free = harness.free_port()
    text = (f'listeners:\n  - address: "tcp://127.0.0.1:{free}"\n    auth: [anonymous]\n'
            f'  - address: "tcp://127.0.0.1:{port}"\n    auth: [anonymous]\n'
            f'upstream:\n  address: "{dockerd.host}"\npolicy: "{harness.POLICY_ALLOW_ALL}"\n')
    (tmp / "c.yaml").write_text(text)
    try:
        r = run([harness.DOCKGATE_BIN, "--config", str(tmp / "c.yaml")], timeout=10, check=False)
        assert r.rc == 1 and "already in use" in r.err, r
    finally:
        busy.close()
