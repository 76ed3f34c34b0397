"""Raw-socket tests of request parsing and connection handling (unix listener, anonymous auth).

Where docker-api-notes.md says what dockerd does with the same bytes, the test sends them to the
private dockerd too, to show the difference dockgate makes (or the behaviour it must keep).
"""

import io
import socket
import tarfile
import time

import harness
from harness import chunk, has_responses, http_request, is_closed, parse_responses, recv_all, timeout


def _dockerd_raw(dockerd, data, read_timeout=2.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(dockerd.sock))
    try:
        s.sendall(data)
        return recv_all(s, read_timeout=read_timeout, total_timeout=10, until=has_responses(1))
    finally:
        s.close()


def _first_response(data):
    rs = [r for r in parse_responses(data) if r.status is not None]
    assert rs, f"no HTTP response: {data[:300]!r}"
    return rs[0]


def _expect_error(dg, data, statuses, closed=True):
    """Sends data, expects one error response with a status in statuses, a JSON body whose message
    starts with "dockgate:", and (closed=True) the connection closed afterwards."""
    s = dg.connect()
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # dockgate may answer and close before reading everything
        got = recv_all(s, read_timeout=3, total_timeout=10, until=has_responses(1))
        r = _first_response(got)
        assert r.status in statuses, f"expected {statuses}, got {r!r}"
        ctype = (r.header("Content-Type") or "").lower()
        assert ctype.startswith("application/json"), f"error not JSON: {r!r}"
        msg = r.json().get("message")
        assert isinstance(msg, str) and msg.startswith("dockgate:"), f"message must start with 'dockgate:': {r!r}"
        if closed:
            assert is_closed(s, timeout=3), f"connection not closed after {r.status}"
    finally:
        s.close()
    dg.healthy()
    return r


def test_te_and_cl_together(dg, dockerd):
    req = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    _expect_error(dg, req, {400})


def test_two_content_lengths(dg, dockerd):
    req = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x")
    # dockerd (Go net/http) refuses this too
    assert _first_response(_dockerd_raw(dockerd, req)).status == 400
    _expect_error(dg, req, {400})


def test_obs_fold(dg):
    req = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n"
    _expect_error(dg, req, {400})


def test_bare_lf(dg):
    _expect_error(dg, b"GET /_ping HTTP/1.1\nHost: x\n\n", {400})
    _expect_error(dg, b"GET /_ping HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", {400})


def test_oversized_head(dg):
    req = b"GET /_ping HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
    _expect_error(dg, req, {431})
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(800))
    _expect_error(dg, b"GET /_ping HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n", {431})


def test_bad_method(dg):
    _expect_error(dg, b"FOO /v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n", {400, 405, 501})


def test_absolute_form_target(dg, dockerd):
    req = b"GET http://evil/v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n"
    # dockerd would route it by path and answer 200
    assert _first_response(_dockerd_raw(dockerd, req)).status == 200
    _expect_error(dg, req, {400})


def test_http11_without_host(dg):
    _expect_error(dg, b"GET /v1.41/version HTTP/1.1\r\nUser-Agent: x\r\n\r\n", {400})


def test_http10_without_host_ok(dg):
    data = dg.raw(b"GET /_ping HTTP/1.0\r\n\r\n", read_timeout=3, until=has_responses(1))
    r = _first_response(data)
    assert r.status == 200 and r.body == b"OK", r


def test_http2_request_line(dg):
    _expect_error(dg, b"GET /_ping HTTP/2.0\r\nHost: x\r\n\r\n", {400, 505})
    _expect_error(dg, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", {400, 405, 505})  # the h2 preface


def test_relative_target_without_slash(dg):
    _expect_error(dg, b"GET v1.41/version HTTP/1.1\r\nHost: x\r\n\r\n", {400})


def test_pipelined(dg, dockerd):
    req = http_request("GET", "/_ping") * 3
    rs = parse_responses(dg.raw(req, read_timeout=3, until=has_responses(3)), methods=["GET"] * 3)
    assert [(r.status, r.body) for r in rs] == [(200, b"OK")] * 3, rs
    # different requests come back in order
    req = (http_request("GET", "/_ping") + http_request("GET", "/v1.41/version") + http_request("HEAD", "/_ping")
           + http_request("GET", "/v1.41/containers/doesnotexist-dg/json") + http_request("GET", "/_ping"))
    methods = ["GET", "GET", "HEAD", "GET", "GET"]
    rs = parse_responses(dg.raw(req, read_timeout=3, until=has_responses(5, methods)), methods=methods)
    assert [r.status for r in rs] == [200, 200, 200, 404, 200], rs
    assert rs[0].body == b"OK" and b"ApiVersion" in rs[1].body and rs[2].body == b"" and rs[4].body == b"OK", rs
    assert all(r.complete for r in rs), rs


def test_keep_alive_reuse(dg):
    s = dg.connect()
    try:
        for i in range(5):
            s.sendall(http_request("GET", "/v1.41/version" if i % 2 else "/_ping"))
            data = recv_all(s, read_timeout=3, total_timeout=10, until=has_responses(1))
            r = _first_response(data)
            assert r.status == 200 and r.complete, r
        assert not is_closed(s, timeout=0.3), "keep-alive connection closed"
    finally:
        s.close()


def test_connection_close_honoured(dg):
    s = dg.connect()
    try:
        s.sendall(http_request("GET", "/_ping", [("Connection", "close")]))
        data = recv_all(s, read_timeout=3, total_timeout=10)
        r = _first_response(data)
        assert r.status == 200, r
        assert is_closed(s, timeout=3)
    finally:
        s.close()


def test_chunked_request_body(dg, dockerd):
    name = harness.unique("dg-raw")
    body = b'{"Image": "%s", "Cmd": ["true"]}' % harness.IMAGE.encode()
    req = http_request("POST", f"/v1.41/containers/create?name={name}",
                       [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")],
                       body=chunk(body[:10]) + chunk(body[10:]) + b"0\r\n\r\n")
    try:
        r = _first_response(dg.raw(req, read_timeout=5, until=has_responses(1)))
        assert r.status == 201 and "Id" in r.json(), r
    finally:
        dockerd.cli("rm", "-f", name, check=False)


@timeout(120)
def test_client_disconnect_mid_upload(dg):
    dg.healthy()
    dg.healthy()
    before = harness.fd_count(dg.pid)
    head = http_request("POST", "/v1.41/images/load?quiet=1",
                        [("Content-Type", "application/x-tar"), ("Transfer-Encoding", "chunked")])
    piece = chunk(b"\0" * 32768)
    for _ in range(5):
        s = dg.connect()
        try:
            s.sendall(head)
            for _ in range(32):  # 1 MB, then vanish
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            s.close()
    dg.healthy()
    r = dg.request("GET", "/v1.41/version")
    assert r.status == 200, r

    def settled():
        dg.healthy()
        return harness.fd_count(dg.pid) <= before + 2
    try:
        wait_ok = harness.wait_until(settled, timeout=10, interval=0.2, what="dockgate fd count to settle")
    except AssertionError:
        raise AssertionError(f"fd count grew: before {before}, now {harness.fd_count(dg.pid)}: "
                             f"{sorted(os_readlinks(dg.pid))}")
    assert wait_ok and dg.alive()


def os_readlinks(pid):
    import os
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            pass
    return out


def _image_tar(dockerd):
    r = harness.run([harness.docker_cli(), "save", harness.IMAGE], env=dockerd.env(), timeout=60)
    return r.out_bytes


@timeout(120)
def test_expect_100_continue(dg, dockerd):
    body = _image_tar(dockerd)
    head = http_request("POST", "/v1.41/images/load?quiet=1",
                        [("Content-Type", "application/x-tar"), ("Content-Length", str(len(body))),
                         ("Expect", "100-continue"), ("Connection", "close")])
    s = dg.connect(timeout=10)
    try:
        s.sendall(head)
        interim = recv_all(s, read_timeout=5, total_timeout=5, until=lambda d: b"\r\n\r\n" in d)
        rs = parse_responses(interim)
        assert rs and rs[0].status == 100, f"expected 100 Continue before the body, got {interim[:300]!r}"
        s.sendall(body)
        data = recv_all(s, read_timeout=10, total_timeout=60)
    finally:
        s.close()
    rs = [r for r in parse_responses(data) if r.status and r.status >= 200]
    assert rs and rs[0].status == 200 and b"Loaded image" in rs[0].body, rs
    dg.healthy()


def test_error_for_unknown_version_passthrough(dg):
    # dockerd's own errors pass through untouched (not rewritten into dockgate: messages)
    r = dg.request("GET", "/v9.99/version")
    assert r.status == 400 and "too new" in r.body.decode(errors="replace"), r
