"""Issue 4: authentication with the real docker CLI and a real dockerd — mTLS identities (certs-tools
certificates), revocation after SIGHUP, expired / not-yet-valid / wrong-purpose certificates, htpasswd
basic auth via DOCKER_CONFIG HttpHeaders (hash kinds, reload, back-off, no password in the log),
mTLS-or-password on one listener, bearer tokens, unix peer credentials for several local uids, and
anonymous access only where a listener allows it.

Each test starts its own dockgate with its own configuration. Certificates come from the run's
shared certs-tools PKI (certs.dir/pki), under unique names."""

import base64
import hashlib
import json
import os
import pwd
import grp
import re
import secrets
import socket
import ssl
import struct
import time
from pathlib import Path

import harness
from harness import IMAGE, POLICY_ALLOW_ALL, timeout, unique, wait_until

_yq = harness._yq
DAEMON_ERR = re.compile(r"Error response from daemon: dockgate: \S")


# ---------------------------------------------------------------------------------------------
# helpers

def _pki(certs):
    pki = certs.dir / "pki"
    # certs.tool is only known in the parent (run.py); the PKI directory says certs-tools made the certificates
    assert (pki / "ca.pem").is_file() and (pki / "db").is_dir(), \
        "these tests need certs-tools/dockgate-certs (the run fell back to the openssl CLI; see its output)"
    return pki


def _tool(certs, *args, timeout=60):
    return harness.run([harness.CERTS_TOOL, "--dir", _pki(certs), *args], timeout=timeout)


def _client_cert(certs, tmp, name, *extra):
    """A certs-tools client certificate in tmp/<name> (ca.pem, cert.pem, key.pem)."""
    out = tmp / name
    _tool(certs, "client", name, *extra, "--out", out)
    for f in ("ca.pem", "cert.pem", "key.pem"):
        assert (out / f).is_file(), f"certs-tools wrote no {out / f}"
    return out


def _tls_block(certs, client_ca=True, crl=False):
    parts = [f"certificate: {_yq(certs.server_cert)}", f"key: {_yq(certs.server_key)}"]
    if client_ca:
        parts.append(f"client_ca: {_yq(certs.ca)}")
    if crl:
        parts.append(f"crl: {_yq(_pki(certs) / 'crl.pem')}")
    return "{" + ", ".join(parts) + "}"


def _gate(dockerd, certs, tls_auth=None, tls_client_ca=True, tls_crl=False, unix_auth=None, unix_mode=None,
          identities="", start=True):
    """A Dockgate with a custom listener section: a TLS listener on 127.0.0.1 (when tls_auth is given)
    and/or a unix listener (when unix_auth is given), allow-all policy, JSON log."""
    listeners = tuple(x for x, a in (("tls", tls_auth), ("unix", unix_auth)) if a is not None)
    g = harness.Dockgate(dockerd, certs, listeners=listeners)
    y = ["listeners:"]
    if tls_auth is not None:
        y += [f"  - address: {_yq(f'tcp://127.0.0.1:{g.port}')}",
              "    name: tls",
              f"    tls: {_tls_block(certs, tls_client_ca, tls_crl)}",
              f"    auth: [{', '.join(tls_auth)}]"]
    if unix_auth is not None:
        y += [f"  - address: {_yq(f'unix://{g.sock}')}",
              "    name: local",
              f"    auth: [{', '.join(unix_auth)}]"]
        if unix_mode:
            y.append(f"    mode: \"{unix_mode}\"")
    y += ["upstream:", f"  address: {_yq(g.upstream)}",
          f"policy: {_yq(POLICY_ALLOW_ALL)}",
          f"log: {{format: json, file: {_yq(g.log_file)}}}"]
    if identities:
        y.append("identities:")
        y += ["  " + line for line in identities.strip("\n").splitlines()]
    g.config.write_text("\n".join(y) + "\n")
    if start:
        g.start()
    return g


def _env(g, tls, cert_path=None, docker_config=None):
    e = g.env(tls=tls)
    if tls and cert_path is not None:
        e["DOCKER_CERT_PATH"] = str(cert_path)
    if docker_config is not None:
        e["DOCKER_CONFIG"] = str(docker_config)
    return e


def _docker(env, *args, timeout=30, check=True, input=None):
    return harness.run([harness.docker_cli(), *args], env=env, timeout=timeout, check=check, input=input)


def _docker_config(tmp, name, authorization):
    """A DOCKER_CONFIG directory whose config.json sends `Authorization: <authorization>`."""
    d = tmp / name
    d.mkdir(mode=0o700)
    (d / "config.json").write_text(json.dumps({"HttpHeaders": {"Authorization": authorization}}) + "\n")
    os.chmod(d / "config.json", 0o600)
    return d


def _basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _requests(g, skip=0, **match):
    """Request log lines (after the first `skip` log lines) whose fields equal `match`."""
    return [l for l in g.log_lines()[skip:] if l.get("event") == "request"
            and all(l.get(k) == v for k, v in match.items())]


def _wait_request(g, skip=0, what=None, **match):
    return wait_until(lambda: _requests(g, skip, **match), timeout=5,
                      what=what or f"a request log line with {match}")[0]


def _wait_handshake_refusal(g, skip, words):
    def pred():
        for l in g.log_lines()[skip:]:
            if l.get("event") == "tls_handshake" and l.get("level") == "warn":
                err = str(l.get("error", "")).lower()
                if any(w in err for w in words):
                    return l
        return None
    return wait_until(pred, timeout=5, what=f"a tls_handshake warning mentioning one of {words}")


def _refused_at_handshake(r):
    assert r.rc != 0, r
    assert "Server:" not in r.out and "1.41" not in r.out, r
    err = r.err.lower()
    assert any(w in err for w in ("tls", "certificate", "connection reset", "eof", "broken pipe")), r


def _htpasswd(path, user, password, create=False, kind="-B"):
    """htpasswd -b with kind -B (bcrypt), -5 (SHA-512 crypt), -2 (SHA-256 crypt), -m (MD5/apr1), -D (delete)."""
    if kind == "-D":
        harness.run(["htpasswd", "-D", path, user], timeout=30)
        return
    harness.run(["htpasswd", *(["-c"] if create else []), kind, "-b", path, user, password], timeout=30)
    prefix = {"-B": "$2", "-5": "$6$", "-2": "$5$", "-m": "$apr1$"}[kind]
    assert any(l.startswith(f"{user}:{prefix}") for l in path.read_text().splitlines()), path.read_text()


def _wait_reload(g, skip):
    def pred():
        return next((l for l in g.log_lines()[skip:] if l.get("event") == "reload"), None)
    line = wait_until(pred, timeout=5, what="a reload log line after SIGHUP")
    assert line.get("result") == "ok", line
    return line


# ---------------------------------------------------------------------------------------------
# 1. mTLS: identity (CN) and groups (OUs + identities.mtls.groups) in the request log line

def test_mtls_identity_and_groups(dockerd, certs, tmp):
    name = unique("carol")
    cd = _client_cert(certs, tmp, name, "--group", "devs", "--group", "ops")
    g = _gate(dockerd, certs, tls_auth=["mtls"], tls_crl=True,
              identities=f"mtls:\n  groups:\n    {_yq(name)}: [oncall, devs]\n    admin: [root-ish]\n")
    skip = len(g.log_lines())
    r = _docker(_env(g, True, cd), "run", "--rm", IMAGE, "echo", "hi")
    assert r.out == "hi\n", r
    line = _wait_request(g, skip, identity=name, path="/v1.41/containers/create")
    assert line["auth"] == "mtls" and line["listener"] == "tls" and line["status"] == 201, line
    # OUs first, then the configured groups, duplicates removed
    assert line["groups"].split(",") == ["devs", "ops", "oncall"], line
    # every request of that CLI run carries the identity (ping, create, attach, start, wait, delete)
    mine = [l for l in g.log_lines()[skip:] if l.get("event") == "request"]
    assert len(mine) >= 4 and all(l.get("identity") == name and l.get("auth") == "mtls" for l in mine), mine
    # the shared admin certificate: CN=admin, OU=admins, plus the mapping
    skip = len(g.log_lines())
    _docker(_env(g, True, certs.client_dir("admin")), "version")
    line = _wait_request(g, skip, identity="admin", path="/v1.41/version")
    assert line["auth"] == "mtls" and line["groups"].split(",") == ["admins", "root-ish"], line
    g.stop()


# ---------------------------------------------------------------------------------------------
# 2. revocation: accepted, revoked with certs-tools, SIGHUP, refused at the handshake

def test_revoked_certificate_refused_after_sighup(dockerd, certs, tmp):
    name = unique("rev")
    cd = _client_cert(certs, tmp, name, "--group", "devs")
    g = _gate(dockerd, certs, tls_auth=["mtls"], tls_crl=True)
    env = _env(g, True, cd)
    r = _docker(env, "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r
    _wait_request(g, 0, identity=name, auth="mtls")

    _tool(certs, "revoke", name, "--reason", "keyCompromise")
    # the CRL is only re-read on SIGHUP: until then the certificate still works
    r = _docker(env, "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r

    skip = len(g.log_lines())
    g.reload()
    _wait_reload(g, skip)
    skip = len(g.log_lines())
    r = _docker(env, "version", "--format", "{{.Server.APIVersion}}", check=False, timeout=20)
    _refused_at_handshake(r)
    line = _wait_handshake_refusal(g, skip, ("revoked",))
    assert line.get("listener") == "tls", line
    assert not _requests(g, skip, identity=name), "a request from the revoked certificate got through"
    # other certificates of the same CA keep working
    r = _docker(_env(g, True, certs.client_dir("admin")), "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r
    g.stop()


# ---------------------------------------------------------------------------------------------
# 3. expired, not-yet-valid and wrong-purpose (no clientAuth) certificates refused at the handshake

def test_expired_not_yet_valid_and_wrong_purpose_certificates_refused(dockerd, certs, tmp):
    old = _client_cert(certs, tmp, unique("expired"), "--not-before", "20200101000000Z",
                       "--not-after", "20200201000000Z")
    future = _client_cert(certs, tmp, unique("future"), "--not-before", "20991231000000Z")
    # wrong purpose: the server certificate (EKU serverAuth only) presented as a client certificate
    server_as_client = tmp / "server-as-client"
    server_as_client.mkdir()
    for src, dst in ((certs.ca, "ca.pem"), (certs.server_cert, "cert.pem"), (certs.server_key, "key.pem")):
        (server_as_client / dst).write_bytes(Path(src).read_bytes())
    g = _gate(dockerd, certs, tls_auth=["mtls"], tls_crl=True)
    for cd, words in ((old, ("expired",)), (future, ("not yet valid", "not-yet-valid", "not valid yet")),
                      (server_as_client, ("purpose",))):
        skip = len(g.log_lines())
        r = _docker(_env(g, True, cd), "version", "--format", "{{.Server.APIVersion}}", check=False, timeout=20)
        _refused_at_handshake(r)
        _wait_handshake_refusal(g, skip, words)
        assert not _requests(g, skip, identity=cd.name), f"a request from {cd.name} got through"
    r = _docker(_env(g, True, certs.client_dir("admin")), "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r
    g.stop()


# ---------------------------------------------------------------------------------------------
# 4. basic auth (htpasswd -B) through DOCKER_CONFIG HttpHeaders on a TLS listener

def _basic_gate(dockerd, certs, tmp, users, realm="dg-test", groups="", **kw):
    ht = tmp / "users.htpasswd"
    for i, (u, p) in enumerate(users):
        _htpasswd(ht, u, p, create=i == 0)
    ids = f"basic:\n  htpasswd: {_yq(ht)}\n  realm: {realm}\n" + groups
    return _gate(dockerd, certs, identities=ids, **kw)


def test_basic_auth_docker_config(dockerd, certs, tmp):
    user, password, wrong = unique("bob"), "pw-" + secrets.token_hex(8), "bad-" + secrets.token_hex(8)
    g = _basic_gate(dockerd, certs, tmp, [(user, password)], tls_auth=["basic"], tls_client_ca=False,
                    groups=f"  groups:\n    {_yq(user)}: [ci, builders]\n")
    nocert = certs.client_dir("nocert")  # ca.pem only: the CLI verifies the gateway, sends no certificate
    good = _docker_config(tmp, "cfg-good", _basic(user, password))
    bad = _docker_config(tmp, "cfg-bad", _basic(user, wrong))

    skip = len(g.log_lines())
    r = _docker(_env(g, True, nocert, good), "run", "--rm", IMAGE, "echo", "hi")
    assert r.out == "hi\n", r
    line = _wait_request(g, skip, identity=user, path="/v1.41/containers/create")
    assert line["auth"] == "basic" and line["groups"] == "ci,builders" and line["status"] == 201, line

    # wrong password: 401, the CLI prints dockgate's JSON message
    skip = len(g.log_lines())
    r = _docker(_env(g, True, nocert, bad), "ps", check=False, timeout=30)
    assert r.rc != 0 and DAEMON_ERR.search(r.err), r
    line = _wait_request(g, skip, status=401)
    assert line.get("identity") == user and "auth" not in line, line
    assert not _requests(g, skip, status=200), "a request with a wrong password got through"

    # the same over a raw connection: status, challenge and Docker-style JSON body
    resp = g.request("GET", "/v1.41/version", headers={"Authorization": _basic(user, wrong)}, tls=True)
    assert resp.status == 401, resp
    assert resp.header("WWW-Authenticate") == 'Basic realm="dg-test"', resp
    assert resp.json()["message"].startswith("dockgate: "), resp
    # no credentials at all
    resp = g.request("GET", "/v1.41/version", tls=True)
    assert resp.status == 401 and resp.header("WWW-Authenticate") == 'Basic realm="dg-test"', resp
    # after the failures the right password still works
    r = _docker(_env(g, True, nocert, good), "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r

    g.stop()
    text = g.log_text() + g.stderr_file.read_text(errors="replace")
    for secret in (password, wrong, base64.b64encode(f"{user}:{password}".encode()).decode(),
                   base64.b64encode(f"{user}:{wrong}".encode()).decode()):
        assert secret not in text, f"the log contains a password (or its base64): {secret!r}"


def test_basic_auth_on_unix_listener_hash_kinds_and_reload(dockerd, certs, tmp):
    """bcrypt, SHA-512 and SHA-256 crypt entries on a unix listener; the htpasswd file is re-read on
    SIGHUP (a removed user is refused at once: the verification cache starts empty)."""
    pw = {u: "pw-" + secrets.token_hex(8) for u in ("dave", "erin", "fred", "gina")}
    g = _basic_gate(dockerd, certs, tmp, [("dave", pw["dave"])], unix_auth=["basic"],
                    groups="  groups:\n    erin: [sha512]\n")
    ht = tmp / "users.htpasswd"
    _htpasswd(ht, "erin", pw["erin"], kind="-5")
    _htpasswd(ht, "fred", pw["fred"], kind="-2")
    skip = len(g.log_lines())
    g.reload()
    _wait_reload(g, skip)

    def cli(user, password, check=True):
        d = tmp / f"cfg-{user}-{secrets.token_hex(3)}"
        return _docker(_env(g, False, docker_config=_docker_config(tmp, d.name, _basic(user, password))),
                       "version", "--format", "{{.Server.APIVersion}}", check=check, timeout=40)

    for user in ("dave", "erin", "fred"):
        skip = len(g.log_lines())
        r = cli(user, pw[user])
        assert r.out.strip() == "1.41", r
        line = _wait_request(g, skip, identity=user, path="/v1.41/version")
        assert line["auth"] == "basic" and line["listener"] == "local", line
        assert line.get("groups") == ("sha512" if user == "erin" else None), line

    # remove dave, add gina, SIGHUP
    _htpasswd(ht, "dave", None, kind="-D")
    _htpasswd(ht, "gina", pw["gina"])
    skip = len(g.log_lines())
    g.reload()
    _wait_reload(g, skip)
    r = cli("dave", pw["dave"], check=False)
    assert r.rc != 0 and DAEMON_ERR.search(r.err), r
    r = cli("gina", pw["gina"])
    assert r.out.strip() == "1.41", r
    g.stop()


def test_mtls_or_basic_on_one_listener(dockerd, certs, tmp):
    """The configuration.md example listener: client_ca and `auth: [mtls, basic]` — "mutual TLS, or a
    password over TLS". A CLI with a certificate is identified by it; one without a certificate but
    with a password must get through the handshake and be identified by the password."""
    user, password = unique("hank"), "pw-" + secrets.token_hex(8)
    g = _basic_gate(dockerd, certs, tmp, [(user, password)], tls_auth=["mtls", "basic"], tls_crl=True)
    skip = len(g.log_lines())
    _docker(_env(g, True, certs.client_dir("admin")), "version")
    line = _wait_request(g, skip, path="/v1.41/version")
    assert line["identity"] == "admin" and line["auth"] == "mtls", line
    skip = len(g.log_lines())
    r = _docker(_env(g, True, certs.client_dir("nocert"), _docker_config(tmp, "cfg", _basic(user, password))),
                "version", "--format", "{{.Server.APIVersion}}", check=False)
    assert r.rc == 0 and r.out.strip() == "1.41", \
        f"no client certificate + basic credentials refused on an [mtls, basic] listener: {r!r}"
    line = _wait_request(g, skip, path="/v1.41/version")
    assert line["identity"] == user and line["auth"] == "basic", line
    # a bad certificate is still refused at the handshake, even though a certificate is optional here
    old = _client_cert(certs, tmp, unique("expired"), "--not-before", "20200101000000Z",
                       "--not-after", "20200201000000Z")
    skip = len(g.log_lines())
    r = _docker(_env(g, True, old, _docker_config(tmp, "cfg2", _basic(user, password))), "version",
                check=False, timeout=20)
    _refused_at_handshake(r)
    _wait_handshake_refusal(g, skip, ("expired",))
    g.stop()


@timeout(90)
def test_basic_failures_back_off(dockerd, certs, tmp):
    user, password = unique("erin"), "pw-" + secrets.token_hex(8)
    g = _basic_gate(dockerd, certs, tmp, [(user, password)], tls_auth=["basic"], tls_client_ca=False)
    bad = {"Authorization": _basic(user, "nope-" + secrets.token_hex(4))}

    def timed(headers):
        t0 = time.monotonic()
        resp = g.request("GET", "/v1.41/version", headers=headers, tls=True, timeout=15)
        return resp, time.monotonic() - t0

    times = []
    for _ in range(4):
        resp, dt = timed(bad)
        assert resp.status == 401, resp
        times.append(dt)
    # 100 ms x 2^(n-1): about 0.1, 0.2, 0.4, 0.8 s. Loose bounds only.
    assert times[3] > times[0] + 0.3 and times[2] > times[0] + 0.1, f"no back-off: {times}"
    assert times[3] < 4.5, f"4th failure took {times[3]:.2f}s"
    # the right password is answered at once and resets the counters
    resp, dt = timed({"Authorization": _basic(user, password)})
    assert resp.status == 200 and dt < times[3], (resp, dt, times)
    resp, dt = timed(bad)
    assert resp.status == 401 and dt < times[3] - 0.2, f"back-off not reset by a success: {dt:.2f}s after {times}"
    # the docker CLI with a wrong password gets slower too, but still ends with the readable error
    d = _docker_config(tmp, "cfg-bad", bad["Authorization"])
    t0 = time.monotonic()
    r = _docker(_env(g, True, certs.client_dir("nocert"), d), "ps", check=False, timeout=40)
    assert r.rc != 0 and DAEMON_ERR.search(r.err), r
    assert time.monotonic() - t0 > times[0], r
    g.stop()


def _check_config(cfg):
    return harness.run([harness.DOCKGATE_BIN, "-t", "--config", cfg], timeout=20, check=False)


def test_basic_and_bearer_refused_on_plain_tcp_and_weak_hashes_at_load(certs, tmp):
    ht = tmp / "users.htpasswd"
    _htpasswd(ht, "u", "p", create=True)
    tok = tmp / "tokens.yaml"
    tok.write_text("tokens:\n  - name: t\n    sha256: " + hashlib.sha256(b"x").hexdigest() + "\n")
    ids = f"identities:\n  basic: {{htpasswd: {_yq(ht)}}}\n  bearer: {{tokens: {_yq(tok)}}}\n"
    for auth in ("basic", "bearer"):
        cfg = tmp / f"{auth}.yaml"
        cfg.write_text(f"listeners:\n  - address: tcp://127.0.0.1:{harness.free_port()}\n    auth: [{auth}]\n"
                       f"upstream:\n  address: unix:///var/run/docker.sock\npolicy: {_yq(POLICY_ALLOW_ALL)}\n" + ids)
        r = _check_config(cfg)
        assert r.rc == 1 and auth in (r.out + r.err), r
    # an MD5/apr1 entry (htpasswd -m) is refused when the file is loaded, naming file, line and user
    _htpasswd(ht, "carol", "p", kind="-m")
    cfg = tmp / "md5.yaml"
    cfg.write_text(f"listeners:\n  - address: unix://{tmp}/x.sock\n    auth: [basic]\n"
                   f"upstream:\n  address: unix:///var/run/docker.sock\npolicy: {_yq(POLICY_ALLOW_ALL)}\n" + ids)
    r = _check_config(cfg)
    assert r.rc == 1, r
    assert f"{ht}:2:" in r.out + r.err and "carol" in r.out + r.err and "htpasswd -B" in r.out + r.err, r
    _htpasswd(ht, "carol", None, kind="-D")
    assert _check_config(cfg).rc == 0


# ---------------------------------------------------------------------------------------------
# 5. bearer tokens

def _token():
    return "dgt_" + secrets.token_urlsafe(32)


def test_bearer_token(dockerd, certs, tmp):
    good, expired, unknown = _token(), _token(), _token()
    tokens = tmp / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - name: ci-runner\n    sha256: {hashlib.sha256(good.encode()).hexdigest()}\n"
        "    groups: [ci, deploy]\n    expires: 2099-12-31T00:00:00Z\n"
        f"  - name: old-runner\n    sha256: {hashlib.sha256(expired.encode()).hexdigest()}\n"
        "    groups: [ci]\n    expires: 2020-01-01T00:00:00Z\n")
    # bearer first, then peer: a client without a token is identified by its uid, but a bad token is
    # never downgraded to the peer identity.
    g = _gate(dockerd, certs, tls_auth=["bearer"], tls_client_ca=False, unix_auth=["bearer", "peer"],
              identities=f"bearer:\n  tokens: {_yq(tokens)}\n")
    nocert = certs.client_dir("nocert")
    cfg_good = _docker_config(tmp, "cfg-good", f"Bearer {good}")
    cfg_expired = _docker_config(tmp, "cfg-expired", f"Bearer {expired}")
    cfg_unknown = _docker_config(tmp, "cfg-unknown", f"Bearer {unknown}")

    for tls in (True, False):
        skip = len(g.log_lines())
        r = _docker(_env(g, tls, nocert, cfg_good), "run", "--rm", IMAGE, "echo", "hi")
        assert r.out == "hi\n", r
        line = _wait_request(g, skip, identity="ci-runner", path="/v1.41/containers/create")
        assert line["auth"] == "bearer" and line["groups"] == "ci,deploy", line
        assert line["listener"] == ("tls" if tls else "local"), line

        skip = len(g.log_lines())
        r = _docker(_env(g, tls, nocert, cfg_expired), "ps", check=False)
        assert r.rc != 0 and DAEMON_ERR.search(r.err), r
        line = _wait_request(g, skip, status=401)
        assert "expired" in line.get("error", ""), line
        assert not _requests(g, skip, status=200), "an expired token got through"

    # unknown token: refused; no token on the unix listener: the peer identity (uid of this process)
    skip = len(g.log_lines())
    r = _docker(_env(g, False, docker_config=cfg_unknown), "ps", check=False)
    assert r.rc != 0 and DAEMON_ERR.search(r.err), r
    _wait_request(g, skip, status=401)
    skip = len(g.log_lines())
    _docker(_env(g, False), "version")
    line = _wait_request(g, skip, path="/v1.41/version")
    assert line["identity"] == f"uid:{os.getuid()}" and line["auth"] == "peer", line

    # CLI 28+: DOCKER_CUSTOM_HEADERS instead of config.json
    skip = len(g.log_lines())
    e = _env(g, True, nocert)
    e["DOCKER_CUSTOM_HEADERS"] = f"Authorization=Bearer {good}"
    r = _docker(e, "version", "--format", "{{.Server.APIVersion}}", check=False)
    if r.rc == 0:
        _wait_request(g, skip, identity="ci-runner", path="/v1.41/version")
    else:  # an older CLI ignores the variable: then the request must have been refused, not let through
        assert DAEMON_ERR.search(r.err), r

    # the token file is re-read on SIGHUP: a token added to it works after the reload
    added = _token()
    with open(tokens, "a") as f:
        f.write(f"  - name: added\n    sha256: {hashlib.sha256(added.encode()).hexdigest()}\n")
    skip = len(g.log_lines())
    g.reload()
    _wait_reload(g, skip)
    r = _docker(_env(g, True, nocert, _docker_config(tmp, "cfg-added", f"Bearer {added}")), "version")
    line = _wait_request(g, skip, identity="added", path="/v1.41/version")
    assert line["auth"] == "bearer" and "groups" not in line, line

    g.stop()
    text = g.log_text() + g.stderr_file.read_text(errors="replace")
    for t in (good, expired, unknown, added):
        assert t not in text, "a token appears in the log"


# ---------------------------------------------------------------------------------------------
# 6. unix peer credentials: several local uids on one socket, each with its own identity

def _free_ids(n, start=47100):
    """n numbers usable both as a uid and a gid that no user or group has (no accounts are created:
    SO_PEERCRED reports the process's uid whether or not /etc/passwd knows it)."""
    out, i = [], start
    while len(out) < n:
        try:
            pwd.getpwuid(i)
        except KeyError:
            try:
                grp.getgrgid(i)
            except KeyError:
                out.append(i)
        i += 1
    return out


def _docker_as(g, uid, gid, home, *args, check=True):
    e = g.env(tls=False)
    e.update(HOME=str(home), DOCKER_CONFIG=str(home / ".docker"), USER=f"u{uid}", LOGNAME=f"u{uid}")
    return harness.run(["setpriv", "--reuid", str(uid), "--regid", str(gid), "--clear-groups",
                        harness.docker_cli(), *args], env=e, timeout=30, check=check)


def test_peer_uids_get_own_identities(dockerd, certs, tmp):
    alice, bob, by_gid, stranger, ci_gid = _free_ids(5)
    ids = (f"peer:\n  uids:\n    {alice}: {{name: dg-alice, groups: [dev]}}\n"
           f"    {bob}: {{name: dg-bob, groups: [ops, dev]}}\n"
           f"  gids:\n    {ci_gid}: {{name: ci, groups: [ci]}}\n")
    g = _gate(dockerd, certs, unix_auth=["peer"], unix_mode="0666", identities=ids)
    assert (os.stat(g.sock).st_mode & 0o777) == 0o666, oct(os.stat(g.sock).st_mode)
    os.chmod(g.dir, 0o711)  # mkdtemp made it 0700: the other uids must reach the socket
    os.chmod(tmp, 0o711)
    users = ((alice, alice, "dg-alice", "dev"), (bob, bob, "dg-bob", "ops,dev"),
             (by_gid, ci_gid, "ci", "ci"), (stranger, stranger, f"uid:{stranger}", None))
    for uid, gid, ident, groups in users:
        home = tmp / f"home-{uid}"
        home.mkdir()
        os.chown(home, uid, gid)
        skip = len(g.log_lines())
        if uid == alice:  # one full container run (hijacked attach) as another user
            r = _docker_as(g, uid, gid, home, "run", "--rm", IMAGE, "id", "-u")
            assert r.out == "0\n", r
        r = _docker_as(g, uid, gid, home, "version", "--format", "{{.Server.APIVersion}}")
        assert r.out.strip() == "1.41", r
        line = _wait_request(g, skip, path="/v1.41/version")
        assert line["identity"] == ident and line["auth"] == "peer" and line["listener"] == "local", line
        assert line.get("groups") == groups, line
        mine = [l for l in g.log_lines()[skip:] if l.get("event") == "request"]
        assert all(l.get("identity") == ident for l in mine), mine
    # and this process (root) is not mapped: uid:0
    skip = len(g.log_lines())
    _docker(_env(g, False), "version")
    line = _wait_request(g, skip, path="/v1.41/version")
    assert line["identity"] == f"uid:{os.getuid()}", line
    g.stop()


# ---------------------------------------------------------------------------------------------
# 7. anonymous only where a listener says so

def test_anonymous_refused_unless_listed(dockerd, certs, tmp):
    ht = tmp / "users.htpasswd"
    _htpasswd(ht, "frank", "pw-" + secrets.token_hex(6), create=True)
    anon_sock = None
    g = _gate(dockerd, certs, unix_auth=["basic"], start=False,
              identities=f"basic:\n  htpasswd: {_yq(ht)}\n  realm: dg-anon\n")
    anon_sock = g.dir / "anon.sock"
    text = g.config.read_text().replace(
        "upstream:", f"  - address: {_yq(f'unix://{anon_sock}')}\n    name: anon\n    auth: [anonymous]\nupstream:", 1)
    g.config.write_text(text)
    g.start()

    # the basic-only listener: no credentials -> 401 with the challenge and a JSON message
    resp = g.request("GET", "/v1.41/containers/json")
    assert resp.status == 401, resp
    assert resp.header("WWW-Authenticate") == 'Basic realm="dg-anon"', resp
    assert "json" in (resp.header("Content-Type") or ""), resp
    assert resp.json()["message"].startswith("dockgate: "), resp
    skip = len(g.log_lines())
    r = _docker(_env(g, False), "ps", check=False)
    assert r.rc != 0 and DAEMON_ERR.search(r.err), r
    line = _wait_request(g, skip, status=401)
    assert line["listener"] == "local" and "auth" not in line, line
    assert not _requests(g, skip, status=200), "an anonymous request got through"

    # the listener that lists anonymous: accepted, identity "anonymous"
    e = _env(g, False)
    e["DOCKER_HOST"] = f"unix://{anon_sock}"
    skip = len(g.log_lines())
    r = _docker(e, "version", "--format", "{{.Server.APIVersion}}")
    assert r.out.strip() == "1.41", r
    line = _wait_request(g, skip, path="/v1.41/version")
    assert line["identity"] == "anonymous" and line["auth"] == "anonymous" and line["listener"] == "anon", line
    # ... but credentials it cannot check are refused, not downgraded to anonymous
    resp = harness.unix_http(anon_sock, "GET", "/v1.41/version", headers={"Authorization": _basic("frank", "x")})
    assert resp.status == 401, resp
    # on the basic listener: a scheme no listed method accepts, and two Authorization headers, are refused
    resp = g.request("GET", "/v1.41/version", headers={"Authorization": "Bearer dgt_whatever"})
    assert resp.status == 401, resp
    data = g.raw(harness.http_request("GET", "/v1.41/version", [("Authorization", _basic("frank", "x")),
                                                                ("Authorization", _basic("frank", "y")),
                                                                ("Connection", "close")]), read_timeout=5)
    rs = harness.parse_responses(data)
    assert rs and rs[-1].status in (400, 401), data[:300]
    assert not _requests(g, 0, status=200, listener="local"), "a request without valid credentials got through"
    g.stop()


def test_no_implicit_anonymous_in_config(certs, tmp):
    """A plain loopback TCP listener or a TLS listener without client_ca and without `auth` is a
    configuration error: anonymous access must be asked for."""
    tls = f"    tls: {_tls_block(certs, client_ca=False)}\n"
    for extra in ("", tls):
        cfg = tmp / "c.yaml"
        cfg.write_text(f"listeners:\n  - address: tcp://127.0.0.1:{harness.free_port()}\n{extra}"
                       f"upstream:\n  address: unix:///var/run/docker.sock\npolicy: {_yq(POLICY_ALLOW_ALL)}\n")
        r = _check_config(cfg)
        assert r.rc == 1 and "anonymous" in (r.out + r.err), r
        cfg.write_text(cfg.read_text().replace("upstream:", "    auth: [anonymous]\nupstream:", 1))
        r = _check_config(cfg)
        assert r.rc == 0, r
    # anonymous accepts everyone, so it must be the last method
    cfg.write_text(cfg.read_text().replace("auth: [anonymous]", "auth: [anonymous, basic]"))
    r = _check_config(cfg)
    assert r.rc == 1 and "anonymous" in (r.out + r.err) and "last" in (r.out + r.err), r


# ---------------------------------------------------------------------------------------------
# password checks run on libuv's thread pool, never on the event loop

def _slow_basic_gate(dockerd, certs, tmp, users):
    """An [mtls, basic] TLS listener (one worker) whose htpasswd entries are bcrypt cost 14 (about a
    second per check): clients with a certificate need no hash, clients without one use a password."""
    ht = tmp / "slow.htpasswd"
    for i, (u, p) in enumerate(users):
        harness.run(["htpasswd", *(["-c"] if i == 0 else []), "-B", "-C", "14", "-b", ht, u, p], timeout=60)
    assert all(l.split(":", 1)[1].startswith("$2y$14$") for l in ht.read_text().splitlines()), ht.read_text()
    ids = f"basic:\n  htpasswd: {_yq(ht)}\n  realm: dg-slow\n"
    g = _gate(dockerd, certs, tls_auth=["mtls", "basic"], identities=ids, start=False)
    g.config.write_text(g.config.read_text() + "workers: 1\n")
    return g.start()


def _send(g, headers, client="nocert", path="/_ping"):
    s = g.connect(tls=True, client=client, timeout=30)
    s.sendall(harness.http_request("GET", path, headers))
    return s


def _has_data(s):
    """Whether the peer sent anything (or closed) yet, without waiting. Reads what is there (TLS 1.3
    session tickets are not application data): use only when nothing is expected."""
    s.setblocking(False)
    try:
        return s.recv(65536) is not None
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        s.settimeout(30)


def _response(s, timeout=30):
    data = harness.recv_all(s, read_timeout=timeout, total_timeout=timeout, until=harness.has_responses(1))
    rs = harness.parse_responses(data)
    assert rs and rs[0].status is not None, data[:300]
    return rs[0]


def _seq(line):
    return int(line["request_id"][8:], 16)  # prefix (8 hex digits) + per-worker counter


@timeout(120)
def test_password_checks_do_not_block_the_loop(dockerd, certs, tmp):
    """While two passwords (one right, one wrong) are being checked (bcrypt cost 14), a client with a
    certificate on another connection of the same listener and worker gets three /_ping answers, one
    after the other, before either password client hears anything. Ordering, not durations: with the
    hash on the loop, the right password's answer (one round trip to dockerd, no back-off) would come
    before the third ping, which could only start after the hashes."""
    user, password = unique("ivy"), "pw-" + secrets.token_hex(8)
    g = _slow_basic_gate(dockerd, certs, tmp, [(user, password)])
    skip = len(g.log_lines())
    good = _send(g, {"Authorization": _basic(user, password)})
    bad = _send(g, {"Authorization": _basic(user, "wrong-" + secrets.token_hex(4))})
    # the two heads are read (request ids taken) before the pings below: shown from the log after
    b = g.connect(tls=True, client="admin", timeout=30)
    for _ in range(3):
        b.sendall(harness.http_request("GET", "/_ping"))
        r = _response(b)
        assert r.status == 200 and r.body == b"OK", r
    assert not _has_data(good), "the right password was answered before the pings: the hash ran on the loop?"
    assert not _has_data(bad), "the wrong password was answered before the pings: the hash ran on the loop?"
    b.close()
    r = _response(good)
    assert r.status == 200 and r.body == b"OK", r
    r = _response(bad)
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Basic realm="dg-slow"', r
    good.close()
    bad.close()
    # the log: the password requests were taken (lower request ids) before the pings, answered after
    pings = wait_until(lambda: (lambda l: l if len(l) == 3 else None)(_requests(g, skip, identity="admin")),
                       timeout=5, what="three ping log lines")
    pw_lines = [_wait_request(g, skip, identity=user, status=200), _wait_request(g, skip, status=401)]
    assert pw_lines[0]["auth"] == "basic", pw_lines
    assert "wrong password" in pw_lines[1]["error"], pw_lines
    assert all(_seq(p) > _seq(l) for p in pings for l in pw_lines), (pings, pw_lines)
    lines = g.log_lines()[skip:]
    order = [l.get("request_id") for l in lines if l.get("event") == "request"]
    assert max(order.index(p["request_id"]) for p in pings) < min(order.index(l["request_id"]) for l in pw_lines), order
    # the right password is cached now: answered without a check
    r = g.request("GET", "/_ping", headers={"Authorization": _basic(user, password)}, tls=True)
    assert r.status == 200, r
    g.stop()


@timeout(120)
def test_client_gone_during_password_check(dockerd, certs, tmp):
    """Clients that close (FIN, or RST) while their password is being checked, a SIGHUP reload while
    a check runs, and SIGTERM while one runs: dockgate stays up and answers, and stops cleanly."""
    user, password = unique("jay"), "pw-" + secrets.token_hex(8)
    g = _slow_basic_gate(dockerd, certs, tmp, [(user, password)])
    wrong = {"Authorization": _basic(user, "wrong-" + secrets.token_hex(4))}
    # closed politely, and reset, mid-check; several at once (more than the pool's 4 threads)
    gone = [_send(g, wrong if i % 2 else {"Authorization": _basic(unique("nobody"), "x")}) for i in range(6)]
    for i, s in enumerate(gone):
        if i % 3 == 0:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        s.close()
    g.healthy(tls=True)  # a certificate client, answered meanwhile
    # a reload while a check is running: the check finishes against the snapshot it came from
    skip = len(g.log_lines())
    s = _send(g, {"Authorization": _basic(user, password)})
    g.reload()
    _wait_reload(g, skip)
    r = _response(s)
    assert r.status == 200, r
    s.close()
    g.healthy(tls=True)
    r = g.request("GET", "/_ping", headers={"Authorization": _basic(user, password)}, tls=True, timeout=30)
    assert r.status == 200, r  # a new snapshot: a new (empty) cache, checked again
    assert g.alive(), g.output_tail()
    # SIGTERM while checks are queued and running: the connections end with their answers, and
    # dockgate exits 0 (nothing left keeps the loop alive)
    pending = [_send(g, wrong) for _ in range(2)]
    time.sleep(0.2)
    g.terminate()
    for s in pending:
        r = _response(s)
        assert r.status == 401, r
        s.close()
    g.stop()
    text = g.log_text()
    assert "ERROR" not in g.stderr_file.read_text(errors="replace"), g.output_tail()
    assert password not in text
