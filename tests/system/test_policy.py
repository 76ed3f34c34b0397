"""Issue 5: the policy engine in front of a real dockerd, driven by the real docker CLI and raw sockets.

  * CLI behaviour under the shipped policies (ci-sandbox, per-user, read-only) with client
    certificates whose CN/OU are the policies' identities/groups: allowed runs unchanged, denials
    print `dockgate: rule "…": <field> …`, injected defaults visible in inspect, audit mode, a denied
    20 MB `docker cp` shows the message.
  * The adversarial suite (adversarial_cases.json): every case sent byte for byte to dockgate (unix
    listener, peer auth mapped to the case's identity/groups) and to dockerd directly, to record
    what dockerd would have done with it.
"""

import json
import os
import re
import secrets
import socket
import stat
import sys
import time
import urllib.parse
from pathlib import Path

import harness
from harness import IMAGE, REPO, chunk, http_request, parse_responses, timeout, unique, unix_http

POLICIES = REPO / "policies"
CASES_FILE = Path(__file__).resolve().with_name("adversarial_cases.json")


def _show(lines):
    """Prints lines to this test's output and, since run.py shows a passing test's output nowhere,
    also to the run's own stdout (our parent, run.py, waits for us meanwhile) so they are in the log."""
    text = "".join(f"# {l}\n" for l in lines)
    sys.stdout.write(text)
    sys.stdout.flush()
    try:
        ppid = os.getppid()
        with open(f"/proc/{ppid}/cmdline", "rb") as f:
            parent_is_runner = b"run.py" in f.read()
        # a regular file not opened O_APPEND: run.py's own offset would overwrite what we add
        st = os.stat(f"/proc/{ppid}/fd/1")
        with open(f"/proc/{ppid}/fdinfo/1") as f:
            flags = int(next(l.split()[1] for l in f if l.startswith("flags:")), 8)
        safe = not stat.S_ISREG(st.st_mode) or flags & os.O_APPEND
        if parent_is_runner and safe and os.environ.get("DG_POLICY_TABLE", "1") != "0":
            with open(f"/proc/{ppid}/fd/1", "a") as out:
                out.write(text)
    except (OSError, StopIteration, ValueError):
        pass


def _gate(dockerd, certs, policy, peer=None, listeners=("tls",), extra=""):
    """A started dockgate with `policy`; peer=(name, groups) maps uid 0 on its unix listener."""
    unix_auth = ("anonymous",)
    if peer is not None:
        name, groups = peer
        extra = ("identities:\n  peer:\n    uids:\n"
                 f"      0: {{name: {json.dumps(name)}, groups: {json.dumps(list(groups))}}}\n") + extra
        unix_auth = ("peer",)
        if "unix" not in listeners:
            listeners = tuple(listeners) + ("unix",)
    g = harness.Dockgate(dockerd, certs, listeners=listeners, policy=policy, extra_yaml=extra,
                         unix_auth=unix_auth)
    return g.start()


def _clients(certs):
    certs.add_client("runner-1", ["ci"])
    certs.add_client("bob")


def _denied(r, rule, field=None):
    """The CLI failed and printed dockgate's reason for rule (and field)."""
    assert r.rc != 0, f"expected a denial, command succeeded: {r!r}"
    want = f'Error response from daemon: dockgate: rule "{rule}": '
    assert want in r.err, f"expected {want!r} in stderr: {r!r}"
    if field:
        line = r.err[r.err.index(want):].splitlines()[0]
        assert field in line, f"expected {field!r} in the reason: {line!r}"


def _names(dockerd):
    return {c["Names"][0].lstrip("/") for c in
            unix_http(dockerd.sock, "GET", "/v1.41/containers/json?all=1").json()}


def _inspect(dockerd, name):
    return json.loads(dockerd.cli("inspect", name).out)[0]


def _rm(dockerd, *names):
    if names:
        dockerd.cli("rm", "-f", *names, check=False, timeout=30)


# ---------------------------------------------------------------------------------------------
# CLI under ci-sandbox.yaml

def test_ci_sandbox_allowed_runs_and_injected_defaults(dockerd, certs):
    _clients(certs)
    g = _gate(dockerd, certs, POLICIES / "ci-sandbox.yaml")
    name = unique("dg-pol")
    try:
        d = lambda *a, **k: g.docker(*a, client="runner-1", **k)  # noqa: E731
        r = d("run", "--rm", IMAGE, "echo", "hi", timeout=30)
        assert r.out == "hi\n", r
        r = d("run", "-i", "--rm", IMAGE, "cat", input=b"x\n", timeout=30)
        assert r.out == "x\n", r
        d("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo started; exec sleep 300", timeout=30)
        assert d("exec", name, "echo", "in-exec").out == "in-exec\n"
        assert d("exec", "-i", name, "cat", input=b"piped\n").out == "piped\n"
        harness.wait_until(lambda: "started" in d("logs", name).out, timeout=10, what="docker logs")
        # no-new-privileges really applies inside (NoNewPrivs: 1)
        assert re.search(r"NoNewPrivs:\s*1", d("exec", name, "cat", "/proc/self/status").out)

        # injected values, as dockerd stored them (inspect directly and through dockgate)
        for c in (_inspect(dockerd, name), json.loads(d("inspect", name).out)[0]):
            hc = c["HostConfig"]
            assert hc["Memory"] == 1 << 30, hc["Memory"]
            assert hc["MemorySwap"] == 1 << 30, hc["MemorySwap"]
            assert hc["NanoCpus"] == 1_000_000_000, hc["NanoCpus"]
            assert hc["PidsLimit"] == 1024, hc["PidsLimit"]
            assert "no-new-privileges" in (hc["SecurityOpt"] or []), hc["SecurityOpt"]
            assert c["Config"]["Labels"].get("dockgate.owner") == "runner-1", c["Config"]["Labels"]

        # ContainerUpdate: within the max allowed, above it denied
        d("update", "--memory", "512m", "--memory-swap", "1g", name)
        assert _inspect(dockerd, name)["HostConfig"]["Memory"] == 512 << 20
        r = d("update", "--memory", "8g", "--memory-swap", "8g", name, check=False)
        _denied(r, "ci-sandbox", "Memory")
        assert _inspect(dockerd, name)["HostConfig"]["Memory"] == 512 << 20
        r = d("update", "--pids-limit", "-1", name, check=False)
        _denied(r, "ci-sandbox", "PidsLimit")

        # exec --privileged / -u 0 is fine here (non_root: false) but privileged is not
        r = d("exec", "--privileged", name, "true", check=False)
        _denied(r, "ci-sandbox", "Privileged")
        d("rm", "-f", name)
        assert name not in _names(dockerd)
    finally:
        _rm(dockerd, name)
        g.stop()


def test_ci_sandbox_denials_show_reason(dockerd, certs):
    _clients(certs)
    g = _gate(dockerd, certs, POLICIES / "ci-sandbox.yaml")
    before = _names(dockerd)
    cases = [
        (["--privileged"], IMAGE, "HostConfig.Privileged is not allowed"),
        (["-v", "/:/host"], IMAGE, "HostConfig.Binds"),
        (["--mount", "type=bind,src=/etc,dst=/e"], IMAGE, "HostConfig.Mounts"),
        (["-v", "/var/run/docker.sock:/s"], IMAGE, "HostConfig.Binds"),
        (["--cap-add", "SYS_ADMIN"], IMAGE, "HostConfig.CapAdd"),
        (["--cap-add", "ALL"], IMAGE, "HostConfig.CapAdd"),
        (["--pid", "host"], IMAGE, "HostConfig.PidMode"),
        (["--network", "host"], IMAGE, "HostConfig.NetworkMode"),
        (["--ipc", "host"], IMAGE, "HostConfig.IpcMode"),
        (["--userns", "host"], IMAGE, "HostConfig.UsernsMode"),
        (["--security-opt", "seccomp=unconfined"], IMAGE, "HostConfig.SecurityOpt"),
        (["--device", "/dev/mem"], IMAGE, "HostConfig.Devices"),
        (["--sysctl", "net.ipv4.ip_forward=1"], IMAGE, "HostConfig.Sysctls"),
        (["--memory", "8g"], IMAGE, "HostConfig.Memory"),
        (["-p", "80:80"], IMAGE, "HostConfig.PortBindings"),
        (["--label", "dockgate.team=x"], IMAGE, 'Labels: label "dockgate.team" is not allowed'),
        ([], "quay.io/evil/tool:1", "Image"),
    ]
    fails = []
    try:
        for opts, image, field in cases:
            r = g.docker("run", "--rm", *opts, image, "true", client="runner-1", check=False, timeout=30)
            try:
                _denied(r, "ci-sandbox", field)
                assert "Unable to find image" not in r.err, f"the CLI tried to pull: {r!r}"
                print(f"# denied {' '.join(opts + [image])}: {r.err.strip().splitlines()[-1]}")
            except AssertionError as e:
                fails.append(f"docker run {' '.join(opts + [image])}: {e}")
        assert _names(dockerd) == before, "a denied run created a container"
        assert not fails, "\n".join(fails)
        # the injected owner label overrides a spoofed one (Go's decoder: the last member wins)
        name = unique("dg-pol")
        g.docker("create", "--name", name, "--label", "dockgate.owner=someone-else", IMAGE, "true",
                 client="runner-1")
        assert _inspect(dockerd, name)["Config"]["Labels"]["dockgate.owner"] == "runner-1"
    finally:
        _rm(dockerd, *(_names(dockerd) - before))
        g.stop()


# ---------------------------------------------------------------------------------------------
# per-user.yaml: alice admin, group ci sandboxed and non-root, bob read-only, others nothing

def test_per_user_policy(dockerd, certs):
    _clients(certs)
    g = _gate(dockerd, certs, POLICIES / "per-user.yaml")
    before = _names(dockerd)
    try:
        # ci: non-root required, default user injected
        r = g.docker("run", "--rm", "-u", "0", IMAGE, "true", client="runner-1", check=False, timeout=30)
        _denied(r, "ci-sandbox", "User")
        r = g.docker("run", "--rm", "-u", "root", IMAGE, "true", client="runner-1", check=False, timeout=30)
        _denied(r, "ci-sandbox", "User")
        # "+0" is uid 0 for dockerd (libcontainer parses users with strconv.Atoi)
        assert dockerd.cli("run", "--rm", "-u", "+0", IMAGE, "id", "-u", timeout=30).out == "0\n"
        r = g.docker("run", "--rm", "-u", "+0", IMAGE, "true", client="runner-1", check=False, timeout=30)
        _denied(r, "ci-sandbox", "User")
        r = g.docker("run", "--rm", IMAGE, "id", "-u", client="runner-1", timeout=30)
        assert r.out == "1000\n", r
        r = g.docker("run", "--rm", "-u", "1234", IMAGE, "id", "-u", client="runner-1", timeout=30)
        assert r.out == "1234\n", r
        # exec: an explicit non-root user works; without -u dockgate cannot see the container's
        # user, so the rule's default (1000:1000) is injected, as on create
        name = unique("dg-pol")
        g.docker("run", "-d", "--name", name, IMAGE, "sleep", "300", client="runner-1", timeout=30)
        assert g.docker("exec", "-u", "1000", name, "id", "-u", client="runner-1").out == "1000\n"
        r = g.docker("exec", "-u", "+0", name, "id", "-u", client="runner-1", check=False)
        _denied(r, "ci-sandbox", "root")
        assert g.docker("exec", name, "id", "-u", client="runner-1").out == "1000\n"
        assert g.docker("exec", "-i", name, "sh", "-c", "cat; id -g", client="runner-1",
                        input=b"in\n").out == "in\n1000\n"
        g.docker("rm", "-f", name, client="runner-1")
        r = g.docker("run", "--rm", "--privileged", IMAGE, "true", client="runner-1", check=False, timeout=30)
        _denied(r, "ci-sandbox", "HostConfig.Privileged is not allowed")
        # alice is the unrestricted admin (create only: privileged containers cannot start in every
        # test environment)
        name = unique("dg-pol")
        g.docker("create", "--name", name, "--privileged", "-v", "/:/host", IMAGE, "true", client="alice")
        c = _inspect(dockerd, name)
        hc = c["HostConfig"]
        assert hc["Privileged"] is True and hc["Binds"] == ["/:/host"], hc
        # unrestricted: the body is forwarded untouched (nothing injected)
        assert "no-new-privileges" not in (hc["SecurityOpt"] or []) and hc["Memory"] == 0, hc
        assert "dockgate.owner" not in (c["Config"]["Labels"] or {}), c["Config"]
        g.docker("rm", name, client="alice")
        r = g.docker("run", "--rm", "-u", "0", IMAGE, "id", "-u", client="alice", timeout=30)
        assert r.out == "0\n", r
        # bob may look
        g.docker("ps", "-a", client="bob")
        g.docker("images", client="bob")
        r = g.docker("run", "--rm", IMAGE, "true", client="bob", check=False, timeout=30)
        assert r.rc != 0 and "Error response from daemon: dockgate: " in r.err, r
        # admin (CN=admin, OU=admins) matches no rule: nothing allowed
        r = g.docker("ps", client="admin", check=False)
        assert r.rc != 0 and "Error response from daemon: dockgate: " in r.err, r
        g.docker("version", client="admin", check=False)  # _ping is always allowed; version is not
        assert _names(dockerd) == before
    finally:
        _rm(dockerd, *(_names(dockerd) - before))
        g.stop()


# ---------------------------------------------------------------------------------------------
# audit mode

def _audit_lines(g):
    return [l for l in g.log_lines() if "audit" in (l.get("event"), l.get("msg"), l.get("message"))]


def test_audit_mode(dockerd, certs, tmp):
    _clients(certs)
    base = (POLICIES / "ci-sandbox.yaml").read_text()
    rule_audit = base.replace("  - name: ci-sandbox\n", "  - name: ci-sandbox\n    audit: true\n", 1)
    assert rule_audit != base
    whole_audit = base.replace("version: 1\n", "version: 1\nmode: audit\n", 1)
    assert whole_audit != base
    for label, text in (("rule audit: true", rule_audit), ("mode: audit", whole_audit)):
        p = tmp / f"audit-{len(text)}.yaml"
        p.write_text(text)
        g = _gate(dockerd, certs, p)
        name = unique("dg-pol")
        try:
            # create, not run: privileged containers cannot start in every test environment
            g.docker("create", "--name", name, "--privileged", IMAGE, "true", client="runner-1")
            assert _inspect(dockerd, name)["HostConfig"]["Privileged"] is True
            r = g.docker("run", "--rm", IMAGE, "echo", "through", client="runner-1", timeout=30)
            assert r.out == "through\n", (label, r)
            line = g.wait_log(lambda l: l in _audit_lines(g) and "Privileged" in str(l.get("reason", "")),
                              what=f"audit line ({label})")
            assert line.get("rule") == "ci-sandbox" and line.get("identity") == "runner-1", line
            assert line.get("operation") == "ContainerCreate", line
            print(f"# {label}: {json.dumps(line)}")
        finally:
            _rm(dockerd, name)
            g.stop()


# ---------------------------------------------------------------------------------------------
# read-only.yaml

def test_read_only_policy(dockerd, certs, tmp):
    name = unique("dg-pol-ro")
    dockerd.cli("run", "-d", "--name", name, IMAGE, "sh", "-c", "echo hello-log; exec sleep 300")
    g = _gate(dockerd, certs, POLICIES / "read-only.yaml")
    try:
        assert name in g.docker("ps", "--format", "{{.Names}}").out
        assert json.loads(g.docker("inspect", name).out)[0]["Name"] == "/" + name
        g.docker("version")
        g.docker("info")
        g.docker("images")
        g.docker("volume", "ls")
        g.docker("network", "ls")
        r = g.docker("events", "--since", "0", "--until", str(int(time.time()) + 1), "--filter",
                     f"container={name}", timeout=20)
        assert "start" in r.out, r
        g.docker("top", name)
        r = g.docker("run", "--rm", IMAGE, "true", check=False, timeout=30)
        assert r.rc != 0 and "Error response from daemon: dockgate: " in r.err, r
        assert "no rule allows ContainerCreate" in r.err, r
        for args in (("logs", name), ("exec", name, "true"), ("stop", name), ("export", name),
                     ("cp", f"{name}:/etc/passwd", str(tmp / "x")), ("rm", "-f", name)):
            r = g.docker(*args, check=False, timeout=20)
            assert r.rc != 0 and "dockgate: " in r.err, (args, r)
        assert _inspect(dockerd, name)["State"]["Running"]
        g.stop()
        # logs once enabled (the comment in read-only.yaml)
        p = tmp / "read-only-logs.yaml"
        p.write_text((POLICIES / "read-only.yaml").read_text().replace("# - containers:logs", "- containers:logs"))
        g = _gate(dockerd, certs, p)
        harness.wait_until(lambda: "hello-log" in g.docker("logs", name).out, timeout=10, what="logs")
    finally:
        _rm(dockerd, name)
        g.stop()


def test_cp_20mb_denied_shows_message(dockerd, certs, tmp):
    name = unique("dg-pol-cp")
    dockerd.cli("run", "-d", "--name", name, IMAGE, "sleep", "300")
    big = tmp / "big.bin"
    big.write_bytes(os.urandom(20 << 20))
    # read-only + ContainerArchiveInfo: the CLI's stat of the destination (HEAD) works, the 20 MB
    # PutContainerArchive upload is denied before dockgate reads its body.
    p = tmp / "ro-stat.yaml"
    p.write_text((POLICIES / "read-only.yaml").read_text().replace("      - networks:read\n",
                                                                  "      - networks:read\n      - ContainerArchiveInfo\n"))
    g = _gate(dockerd, certs, p)
    try:
        t0 = time.monotonic()
        r = g.docker("cp", str(big), f"{name}:/tmp/", check=False, timeout=60)
        dt = time.monotonic() - t0
        assert r.rc != 0, r
        assert "broken pipe" not in r.err and "connection reset" not in r.err, r
        assert "Error response from daemon: dockgate: " in r.err, r
        assert "PutContainerArchive" in r.err, r
        assert "big.bin" not in dockerd.cli("exec", name, "ls", "/tmp").out
        print(f"# cp denied in {dt:.1f}s: {r.err.strip()}")
    finally:
        _rm(dockerd, name)
        g.stop()


# ---------------------------------------------------------------------------------------------
# services: defaults injected into ServiceCreate/ServiceUpdate (the private dockerd in swarm mode)

SERVICE_POLICY = """version: 1
rules:
  - name: svc
    match: {groups: [ci]}
    allow: [system:read, swarm:read, services:*]
    capabilities: {drop: [NET_RAW]}
    resources:
      memory: {max: 1GiB, default: 256MiB}
      cpus: {max: 2}
      pids_limit: {max: 512, default: 128}
    user: {non_root: true, default: "1000:1000"}
    labels:
      inject: {dockgate.owner: "{{identity}}"}
"""


def _service_spec(dockerd, name):
    return json.loads(dockerd.cli("service", "inspect", name).out)[0]["Spec"]


@timeout(170)
def test_service_create_gets_injected_defaults(dockerd, certs, tmp):
    """docker service create/update through a rule with resources, user, capabilities and labels:
    what the CLI leaves out is injected into TaskTemplate (docs/policy.md), as for docker run."""
    _clients(certs)
    p = tmp / "services.yaml"
    p.write_text(SERVICE_POLICY)
    g = _gate(dockerd, certs, p)
    name, big = unique("dg-svc"), unique("dg-svc")
    # Swarm mode makes dockerd create a bridge for its tasks, an interface in the host's namespace
    # named docker_gwbridge unless that network exists: create it first under a name of our own,
    # so that a host daemon's docker_gwbridge is never touched, and remove it afterwards.
    gw = "dggw" + secrets.token_hex(4)
    dockerd.cli("network", "create", "--driver", "bridge", "--opt", f"com.docker.network.bridge.name={gw}",
                "--opt", "com.docker.network.bridge.enable_icc=false",
                "--opt", "com.docker.network.bridge.enable_ip_masquerade=false", "docker_gwbridge")
    try:
        dockerd.cli("swarm", "init", "--advertise-addr", "127.0.0.1", timeout=60)
        d = lambda *a, **k: g.docker(*a, client="runner-1", **k)  # noqa: E731
        d("service", "create", "--detach", "--no-resolve-image", "--name", name, IMAGE, "sleep", "300", timeout=60)
        for spec in (_service_spec(dockerd, name), json.loads(d("service", "inspect", name).out)[0]["Spec"]):
            tt = spec["TaskTemplate"]
            assert tt["Resources"]["Limits"] == {"MemoryBytes": 256 << 20, "NanoCPUs": 2_000_000_000, "Pids": 128}, tt
            cs = tt["ContainerSpec"]
            assert cs["Image"] == IMAGE and cs["Args"] == ["sleep", "300"], cs
            assert cs["User"] == "1000:1000", cs
            assert cs["CapabilityDrop"] == ["NET_RAW"], cs
            assert spec["Labels"] == {"dockgate.owner": "runner-1"}, spec["Labels"]
        _show([f"service spec as stored: {json.dumps(_service_spec(dockerd, name)['TaskTemplate'])}"])
        # and the task's container really runs with them
        def task():
            for cid in dockerd.cli("ps", "-q", "--filter", f"label=com.docker.swarm.service.name={name}").out.split():
                c = _inspect(dockerd, cid)
                if c["State"]["Running"]:
                    return c
            return None
        c = harness.wait_until(task, timeout=60, interval=0.5, what="the service's task container to run")
        hc = c["HostConfig"]
        assert (hc["Memory"], hc["NanoCpus"], hc["PidsLimit"]) == (256 << 20, 2_000_000_000, 128), hc
        assert hc["CapDrop"] == ["NET_RAW"], hc
        assert dockerd.cli("exec", c["Id"], "id", "-u").out == "1000\n"

        # above the maximum: denied with the reason, nothing created
        r = d("service", "create", "--detach", "--no-resolve-image", "--name", big, "--limit-memory", "2g",
              IMAGE, "true", check=False, timeout=60)
        _denied(r, "svc", "TaskTemplate.Resources.Limits.MemoryBytes 2147483648 exceeds the maximum")
        r = d("service", "create", "--detach", "--no-resolve-image", "--name", big, "--user", "0", IMAGE, "true",
              check=False, timeout=60)
        _denied(r, "svc", "running as root")
        assert dockerd.cli("service", "ls", "-q", "--filter", f"name={big}").out.strip() == ""

        # ServiceUpdate sends the whole spec back: the client's change applies, the rest stays
        d("service", "update", "--detach", "--limit-cpu", "0.5", name, timeout=60)
        lim = _service_spec(dockerd, name)["TaskTemplate"]["Resources"]["Limits"]
        assert lim == {"MemoryBytes": 256 << 20, "NanoCPUs": 500_000_000, "Pids": 128}, lim
        # 0 = unlimited (the CLI omits it): the default comes back
        d("service", "update", "--detach", "--limit-pids", "0", name, timeout=60)
        assert _service_spec(dockerd, name)["TaskTemplate"]["Resources"]["Limits"]["Pids"] == 128
        r = d("service", "update", "--detach", "--limit-pids", "4096", name, check=False, timeout=60)
        _denied(r, "svc", "TaskTemplate.Resources.Limits.Pids 4096 exceeds the maximum 512")
        d("service", "rm", name, timeout=60)
    finally:
        # leave swarm mode whatever happened, so that the other tests see a plain dockerd
        dockerd.cli("service", "rm", name, big, check=False, timeout=60)
        try:
            harness.wait_until(lambda: not dockerd.cli("ps", "-aq", "--filter", "label=com.docker.swarm.service.name",
                                                       check=False).out.strip(),
                               timeout=30, what="the service's task containers to go")
        finally:
            dockerd.cli("swarm", "leave", "--force", check=False, timeout=60)
            dockerd.cli("network", "rm", "docker_gwbridge", check=False, timeout=60)
            g.stop()
        assert not os.path.exists(f"/sys/class/net/{gw}"), f"bridge {gw} left behind"


# ---------------------------------------------------------------------------------------------
# the adversarial suite

TARGET = "dg-adv-target"
SMALL_TAG = "busybox:1.36"


def _send(sock_path, data, method, read_timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(read_timeout)
    try:
        s.connect(str(sock_path))
        s.sendall(data)
        raw = harness.recv_all(s, read_timeout=read_timeout, total_timeout=20.0,
                               until=harness.has_responses(1, [method]))
    finally:
        s.close()
    rs = [r for r in parse_responses(raw, methods=[method]) if r.status is None or r.status >= 200]
    return rs[0] if rs and rs[0].status is not None else None


def _msg(resp):
    if resp is None:
        return "(no response)"
    try:
        j = json.loads(resp.body)
        m = j.get("message") if isinstance(j, dict) else None
        if m is not None:
            return m
    except ValueError:
        pass
    return resp.body[:80].decode("utf-8", "replace").strip()


def _is_dockgate_denial(resp):
    if resp is None or not 400 <= resp.status < 500:
        return False
    try:
        return json.loads(resp.body)["message"].startswith("dockgate:")
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _request_bytes(case):
    headers = [(k, v) for k, v in case["headers"].items()] + [("Connection", "close")]
    body = case["body"].encode()
    if any(k.lower() == "transfer-encoding" for k, _ in headers):
        body = (chunk(body[:20]) + chunk(body[20:]) if body else b"") + b"0\r\n\r\n"
    return http_request(case["method"], case["path"], headers, body)


def _api(dockerd, method, path, body=None):
    hs = {"Content-Type": "application/json"} if body is not None else None
    return unix_http(dockerd.sock, method, "/v1.41" + path,
                     body=json.dumps(body).encode() if body is not None else b"", headers=hs, timeout=30)


def _make_target(dockerd, running=True):
    _api(dockerd, "DELETE", f"/containers/{TARGET}?force=1&v=1")
    r = _api(dockerd, "POST", f"/containers/create?name={TARGET}", {"Image": IMAGE, "Cmd": ["sleep", "300"]})
    assert r.status == 201, r.body
    if running:
        r = _api(dockerd, "POST", f"/containers/{TARGET}/start")
        assert r.status == 204, r.body


HC_KEYS = ("Privileged", "Binds", "Mounts", "VolumesFrom", "VolumeDriver", "CapAdd", "Devices", "DeviceCgroupRules",
           "PidMode", "NetworkMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "CgroupParent", "SecurityOpt",
           "MaskedPaths", "Sysctls", "Memory", "MemorySwap", "NanoCpus", "CpuQuota", "PidsLimit")


def _evidence(dockerd, case, resp):
    """What dockerd did with a request it accepted; removes what it created. Returns a dict."""
    ev = {}
    path, method = urllib.parse.unquote(case["path"]), case["method"]
    if resp is not None and path.split("?")[0].endswith("/start"):
        hc = _api(dockerd, "GET", f"/containers/{TARGET}/json").json()["HostConfig"]
        return {k: hc.get(k) for k in ("Binds", "CapAdd") if hc.get(k)}
    if resp is None or resp.status >= 300:
        return ev
    try:
        body = json.loads(resp.body) if resp.body.strip().startswith(b"{") else {}
    except ValueError:
        body = {}
    if method == "POST" and path.endswith("/containers/create") and "Id" in body:
        c = _api(dockerd, "GET", f"/containers/{body['Id']}/json").json()
        hc = c["HostConfig"]
        ev = {k: hc.get(k) for k in HC_KEYS if hc.get(k) not in (None, "", False, 0, "default", "private")
              and k != "MaskedPaths" or (k == "MaskedPaths" and hc.get(k) == [])}
        if "cgroupns" not in case["body"].lower():
            ev.pop("CgroupnsMode", None)  # the daemon's default may be "host" (cgroup v1)
        if ev.get("SecurityOpt") == ["label=disable"] and hc.get("Privileged"):
            del ev["SecurityOpt"]  # dockerd adds it to privileged containers
        if (c.get("NetworkSettings") or {}).get("Networks", {}).get("host"):
            ev["Networks"] = list(c["NetworkSettings"]["Networks"])
        ev["Image"] = c["Config"]["Image"]
        if c["Config"].get("User"):
            ev["User"] = c["Config"]["User"]
        _api(dockerd, "DELETE", f"/containers/{body['Id']}?force=1&v=1")
        for m in c.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Name"):
                v = _api(dockerd, "GET", f"/volumes/{m['Name']}")
                if v.status == 200:
                    ev.setdefault("VolumeOptions", {})[m["Name"]] = v.json().get("Options")
                _api(dockerd, "DELETE", f"/volumes/{m['Name']}?force=1")
    elif path.endswith("/volumes/create") and "Name" in body:
        ev = {"Volume": body["Name"], "Options": body.get("Options")}
        _api(dockerd, "DELETE", f"/volumes/{body['Name']}?force=1")
    elif path.endswith("/exec") and "Id" in body:
        e = _api(dockerd, "GET", f"/exec/{body['Id']}/json").json()
        ev = {"exec.Privileged": (e.get("ProcessConfig") or {}).get("privileged"),
              "exec.User": (e.get("ProcessConfig") or {}).get("user")}
    elif path.endswith("/update"):
        hc = _api(dockerd, "GET", f"/containers/{TARGET}/json").json()["HostConfig"]
        ev = {k: hc.get(k) for k in ("Memory", "MemorySwap", "PidsLimit") if hc.get(k)}
    elif "/tag?" in path:
        ev = {"tagged": _api(dockerd, "GET", "/images/json").json()[0]["RepoTags"]}
    elif path.endswith("/copy"):
        ev = {"tar_bytes": len(resp.body)}
    elif "/containers/" in path and path.split("?")[0].endswith("json"):
        ev = {"answered": (body.get("Name") if isinstance(body, dict) else None) or "list"}
    return ev


# What dockerd 20.10 does when these bytes reach it directly (docker-api-notes.md §5-§8): the proof
# that dockgate's denial matters. name -> (what, predicate(status, evidence)). Other denied cases are
# recorded only.
_created = lambda st, ev, msg: st == 201  # noqa: E731
DIRECT = {
    "hostconfig lower-case privileged": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "all-caps keys privileged": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "unicode escape in key": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "duplicate key false then true (different spelling)": ("privileged container",
                                                           lambda st, ev, msg: ev.get("Privileged") is True),
    "null after true keeps privileged": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "HostConfig given twice merges": ("privileged + memory", lambda st, ev, msg: ev.get("Privileged") is True
                                      and ev.get("Memory") == 104857600),
    "top-level Privileged without HostConfig": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "top-level Binds without HostConfig": ("bind of /", lambda st, ev, msg: ev.get("Binds") == ["/:/host"]),
    "long-s Binds key": ("bind of /", lambda st, ev, msg: ev.get("Binds") == ["/:/host"]),
    "kelvin sign KernelMemory + binds": ("K (U+212A) matched KernelMemory", lambda st, ev, msg: "kernel memory" in msg),
    "bind dot-dot escape": ("bind of /etc", lambda st, ev, msg: ev.get("Binds") == ["/tmp/../etc:/e"]),
    "bind double slashes root": ("bind of /", lambda st, ev, msg: ev.get("Binds") == ["//:/h"]),
    "docker.sock bind": ("docker.sock bind", lambda st, ev, msg: ev.get("Binds") == ["/var/run/docker.sock:/s"]),
    "/run bind exposes docker.sock": ("bind of /run", lambda st, ev, msg: ev.get("Binds") == ["/run:/r"]),
    "Mounts bind lower-case members": ("bind mount /etc", lambda st, ev, msg: (ev.get("Mounts") or [{}])[0].get("Source") == "/etc"),
    "Mounts given twice (Go merges elements)": ("bind mount /etc", lambda st, ev, msg: (ev.get("Mounts") or [{}])[0].get("Source") == "/etc"),
    "volume mount with local bind driver options": ("volume bound to /", lambda st, ev, msg: any(
        (o or {}).get("device") == "/" for o in (ev.get("VolumeOptions") or {}).values())),
    "VolumeCreate local bind to /": ("volume bound to /", lambda st, ev, msg: (ev.get("Options") or {}).get("device") == "/"),
    "CapAdd lower-case sys_admin": ("CAP_SYS_ADMIN", lambda st, ev, msg: ev.get("CapAdd") == ["sys_admin"]),
    "CapAdd Cap_Sys_Admin": ("CAP_SYS_ADMIN", lambda st, ev, msg: ev.get("CapAdd") == ["Cap_Sys_Admin"]),
    "CapAdd ALL as a string": ("all capabilities", lambda st, ev, msg: ev.get("CapAdd") == ["all"]),
    "Devices /dev/mem": ("/dev/mem", lambda st, ev, msg: bool(ev.get("Devices"))),
    "DeviceCgroupRules a *:* rwm": ("any device", lambda st, ev, msg: ev.get("DeviceCgroupRules") == ["a *:* rwm"]),
    "PidMode host": ("host pid ns", lambda st, ev, msg: ev.get("PidMode") == "host"),
    "NetworkMode host": ("host network", lambda st, ev, msg: ev.get("NetworkMode") == "host"),
    "PidMode container:<id>": ("joins the target's pid ns", lambda st, ev, msg: str(ev.get("PidMode", "")).startswith("container:")),
    "IpcMode container:<id>": ("joins the target's ipc ns", lambda st, ev, msg: str(ev.get("IpcMode", "")).startswith("container:")),
    "UsernsMode host": ("host userns", lambda st, ev, msg: ev.get("UsernsMode") == "host"),
    "seccomp unconfined": ("unconfined", lambda st, ev, msg: ev.get("SecurityOpt") == ["seccomp=unconfined"]),
    "apparmor unconfined colon form": ("unconfined", lambda st, ev, msg: ev.get("SecurityOpt") == ["apparmor:unconfined"]),
    "label disable": ("label disabled", lambda st, ev, msg: ev.get("SecurityOpt") == ["label=disable"]),
    "systempaths via MaskedPaths empty": ("unmasked /proc", lambda st, ev, msg: ev.get("MaskedPaths") == []),
    "sysctl kernel.core_pattern": ("stored", lambda st, ev, msg: "kernel.core_pattern" in (ev.get("Sysctls") or {})),
    "trailing second object": ("created (trailing value ignored)", _created),
    "trailing garbage": ("created (trailing garbage ignored)", _created),
    "exec privileged": ("privileged exec", lambda st, ev, msg: ev.get("exec.Privileged") is True),
    "exec privileged lower-case key": ("privileged exec", lambda st, ev, msg: ev.get("exec.Privileged") is True),
    "API 1.23 start with body": ("HostConfig replaced at start", lambda st, ev, msg: ev.get("Binds") == ["/:/h"]),
    "API 1.19 copy": ("file contents", lambda st, ev, msg: st == 200 and ev.get("tar_bytes", 0) > 0),
    "dot-dot in path (dockerd 301)": ("redirect", lambda st, ev, msg: st == 301),
    "double slash in path": ("redirect", lambda st, ev, msg: st == 301),
    "encoded slash routes elsewhere": ("inspect of the target", lambda st, ev, msg: st == 200),
    "form body overriding tag query": ("tag from the form body", lambda st, ev, msg: st == 201
                                       and "evil:x" in (ev.get("tagged") or [])),
    "extra: form body under a Unicode-folded Content-Type": ("tag from the form body (Go folds U+0130 to i)",
                                                             lambda st, ev, msg: st == 201
                                                             and "evil:x" in (ev.get("tagged") or [])),
    "create with chunked privileged body": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "HostConfig reset by null, top-level privileged": ("privileged container",
                                                       lambda st, ev, msg: ev.get("Privileged") is True),
    "update unlimited pids": ("unlimited pids", lambda st, ev, msg: st == 200),
    "extra: percent-encoded create route, privileged": ("privileged container",
                                                        lambda st, ev, msg: ev.get("Privileged") is True),
    "extra: absolute-form target, privileged": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "extra: unversioned path, privileged": ("privileged container", lambda st, ev, msg: ev.get("Privileged") is True),
    "extra: top-level Memory with empty HostConfig": ("16 GiB", lambda st, ev, msg: ev.get("Memory") == 17179869184),
    "extra: NetworkingConfig endpoint host": ("host network", lambda st, ev, msg: ev.get("Networks") == ["host"]),
    "extra: NetworkMode container:<id>": ("joins the target's netns",
                                          lambda st, ev, msg: str(ev.get("NetworkMode", "")).startswith("container:")),
    "extra: UTSMode host": ("host uts ns", lambda st, ev, msg: ev.get("UTSMode") == "host"),
    "extra: CgroupnsMode host": ("host cgroupns", lambda st, ev, msg: ev.get("CgroupnsMode") == "host"),
    "extra: CgroupParent /": ("cgroup parent /", lambda st, ev, msg: ev.get("CgroupParent") == "/"),
    "extra: Binds in lower-case key via top level": ("bind of /", lambda st, ev, msg: ev.get("Binds") == ["/:/h"]),
    "extra: VolumeCreate o=ro,bind": ("volume bound to /", lambda st, ev, msg: (ev.get("Options") or {}).get("device") == "/"),
    "extra: VolumeCreate lower-case driveropts": ("volume bound to /",
                                                  lambda st, ev, msg: (ev.get("Options") or {}).get("device") == "/"),
    "extra: update lower-case memory": ("16 GiB", lambda st, ev, msg: ev.get("Memory") == 17179869184),
    "extra: update unlimited swap": ("unlimited swap", lambda st, ev, msg: ev.get("MemorySwap") == -1),
    "extra: create CpuQuota -1 unlimited": ("created", _created),
    "extra: create Content-Type with charset, privileged": ("privileged container",
                                                            lambda st, ev, msg: ev.get("Privileged") is True),
    "extra: ImageTag not allowed for ci": ("tagged", lambda st, ev, msg: "evil:y" in (ev.get("tagged") or [])),
    "extra: non-root: User +0": ("created with User +0 (= uid 0)", lambda st, ev, msg: ev.get("User") == "+0"),
    "extra: non-root: User -0": ("created with User -0 (= uid 0)", lambda st, ev, msg: ev.get("User") == "-0"),
    "extra: non-root: exec User +0": ("exec created", _created),
}


def _xc(name, body, path="/v1.41/containers/create", policy="policies/ci-sandbox.yaml", expect="deny",
        method="POST", headers=None, want=None):
    """want: evidence dockerd must show after an allowed request went through dockgate."""
    return {"name": "extra: " + name, "method": method, "path": path,
            "headers": {"Content-Type": "application/json"} if headers is None else headers,
            "body": body if isinstance(body, str) else json.dumps(body), "identity": "runner-1", "groups": ["ci"],
            "policy": policy, "expect": expect, "want": want}


_B = "busybox:1.36"
# More probes, written while testing (not from the policy engineer's list).
EXTRA_CASES = [
    _xc("percent-encoded create route, privileged", {"Image": _B, "HostConfig": {"Privileged": True}},
        path="/v1.41/containers/%63reate"),
    _xc("absolute-form target, privileged", {"Image": _B, "HostConfig": {"Privileged": True}},
        path="http://evil.example/v1.41/containers/create"),
    _xc("unversioned path, privileged", {"Image": _B, "HostConfig": {"Privileged": True}},
        path="/containers/create"),
    _xc("top-level Memory with empty HostConfig", {"Image": _B, "Memory": 17179869184, "HostConfig": {}}),
    _xc("NetworkingConfig endpoint host", {"Image": _B, "NetworkingConfig": {"EndpointsConfig": {"host": {}}}}),
    _xc("NetworkMode container:<id>", {"Image": _B, "HostConfig": {"NetworkMode": "container:dg-adv-target"}}),
    _xc("UTSMode host", {"Image": _B, "HostConfig": {"UTSMode": "host"}}),
    _xc("CgroupnsMode host", {"Image": _B, "HostConfig": {"CgroupnsMode": "host"}}),
    _xc("CgroupParent /", {"Image": _B, "HostConfig": {"CgroupParent": "/"}}),
    _xc("VolumeDriver plugin", {"Image": _B, "HostConfig": {"VolumeDriver": "evil"}}),
    _xc("duplicate Image in two spellings", '{"Image":"busybox:1.36","image":"quay.io/evil/x:1"}'),
    _xc("image key lower-case outside allowlist", '{"image":"quay.io/evil/x:1"}'),
    _xc("Binds in lower-case key via top level", '{"Image":"busybox:1.36","binds":["/:/h"]}'),
    _xc("VolumeCreate o=ro,bind", {"Name": "dg-adv-v3", "DriverOpts": {"type": "none", "o": "ro,bind", "device": "/"}},
        path="/v1.41/volumes/create"),
    _xc("VolumeCreate lower-case driveropts", '{"Name":"dg-adv-v4","driveropts":{"type":"none","o":"bind","device":"/"}}',
        path="/v1.41/volumes/create"),
    _xc("VolumeCreate block device", {"Name": "dg-adv-v5", "DriverOpts": {"type": "ext4", "device": "/dev/sda1"}},
        path="/v1.41/volumes/create"),
    _xc("update lower-case memory", '{"memory":17179869184,"memoryswap":17179869184}',
        path="/v1.41/containers/dg-adv-target/update"),
    _xc("update unlimited swap", {"MemorySwap": -1}, path="/v1.41/containers/dg-adv-target/update"),
    _xc("update CpuQuota 8 CPUs", {"CpuQuota": 800000, "CpuPeriod": 100000},
        path="/v1.41/containers/dg-adv-target/update"),
    _xc("update NanoCpus 8", {"NanoCpus": 8000000000}, path="/v1.41/containers/dg-adv-target/update"),
    _xc("create CpuQuota -1 unlimited", {"Image": _B, "HostConfig": {"CpuQuota": -1}}),
    _xc("exec without Content-Type", '{"Cmd":["id"],"Privileged":true}', path="/v1.41/containers/dg-adv-target/exec",
        headers={}),
    _xc("create Content-Type with charset, privileged", {"Image": _B, "HostConfig": {"Privileged": True}},
        headers={"Content-Type": "application/json; charset=utf-8"}),
    _xc("ImageTag not allowed for ci", "", path="/v1.41/images/busybox:1.36/tag?repo=evil&tag=y", headers={}),
    _xc("non-root: User +0", {"Image": _B, "User": "+0"}, policy="policies/per-user.yaml"),
    _xc("non-root: User -0", {"Image": _B, "User": "-0"}, policy="policies/per-user.yaml"),
    _xc("non-root: User 0:1000", {"Image": _B, "User": "0:1000"}, policy="policies/per-user.yaml"),
    _xc("non-root: lower-case user key root", '{"Image":"busybox:1.36","user":"root"}', policy="policies/per-user.yaml"),
    _xc("non-root: exec User +0", {"Cmd": ["id"], "User": "+0"}, path="/v1.41/containers/dg-adv-target/exec",
        policy="policies/per-user.yaml"),
    _xc("non-root: exec without User runs as user.default", {"Cmd": ["id"]},
        path="/v1.41/containers/dg-adv-target/exec", policy="policies/per-user.yaml", expect="allow",
        want={"exec.User": "1000:1000"}),
    _xc("Expect: 100-continue, privileged", {"Image": _B, "HostConfig": {"Privileged": True}},
        headers={"Content-Type": "application/json", "Expect": "100-continue"}),
    _xc("per-user: bind escaping an allowed prefix", {"Image": _B, "HostConfig": {"Binds": ["/srv/ci-cache/../../etc:/e"]}},
        policy="policies/per-user.yaml"),
    _xc("per-user: read-only path mounted rw", {"Image": _B, "HostConfig": {"Binds": ["/srv/ci-data:/d"]}},
        policy="policies/per-user.yaml"),
    _xc("per-user: Mounts read-only path, ReadOnly false", {"Image": _B, "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": "/srv/ci-data", "Target": "/d", "ReadOnly": False}]}}, policy="policies/per-user.yaml"),
    _xc("per-user: Mounts source escaping prefix", {"Image": _B, "HostConfig": {"Mounts": [
        {"Type": "bind", "Source": "/srv/ci-cache/../../etc", "Target": "/d"}]}}, policy="policies/per-user.yaml"),
    _xc("per-user: prefix look-alike /srv/ci-cache2", {"Image": _B, "HostConfig": {"Binds": ["/srv/ci-cache2:/c"]}},
        policy="policies/per-user.yaml"),
    _xc("per-user: allowed read-only bind", {"Image": _B, "HostConfig": {"Binds": ["/srv/ci-data:/d:ro"]}},
        policy="policies/per-user.yaml", expect="allow"),
    _xc("per-user: allowed rw bind under prefix", {"Image": _B, "HostConfig": {"Binds": ["/srv/ci-cache/x:/c"]}},
        policy="policies/per-user.yaml", expect="allow"),
    _xc("form body under a Unicode-folded Content-Type", "repo=evil&tag=x",
        path="/v1.41/images/busybox:1.36/tag?repo=allowed&tag=1", policy="policies/allow-all.yaml",
        headers={"Content-Type": "appl\u0130cation/x-www-form-urlencoded"}),
    _xc("allowed: plain create with defaults", {"Image": _B, "Cmd": ["true"]}, expect="allow"),
    _xc("allowed: exec as non-root", {"Cmd": ["id"], "User": "1000"}, path="/v1.41/containers/dg-adv-target/exec",
        policy="policies/per-user.yaml", expect="allow"),
]


@timeout(170)
def test_adversarial_cases(dockerd, certs):
    cases = json.loads(CASES_FILE.read_text())
    assert len(cases) >= 40, len(cases)
    cases += EXTRA_CASES
    names = [c["name"] for c in cases]
    assert len(set(names)) == len(names), "duplicate case names"
    # busybox:1.36 = busybox with a default command (the cases' bodies mostly carry no Cmd)
    tmpc = unique("dg-adv-base")
    dockerd.cli("create", "--name", tmpc, IMAGE, "true")
    dockerd.cli("commit", "--change", 'CMD ["true"]', tmpc, SMALL_TAG)
    _rm(dockerd, tmpc)
    images_before = {i["Id"]: set(i.get("RepoTags") or []) for i in _api(dockerd, "GET", "/images/json").json()}
    volumes_before = {v["Name"] for v in (_api(dockerd, "GET", "/volumes").json().get("Volumes") or [])}
    containers_before = set(harness.Dockerd.containers(dockerd))
    gates = {}
    rows, failures = [], []
    try:
        _make_target(dockerd)
        for case in cases:
            key = (case["policy"], case["identity"], tuple(case["groups"]))
            if key not in gates:
                gates[key] = _gate(dockerd, certs, REPO / case["policy"], peer=(case["identity"], case["groups"]),
                                   listeners=())
            g = gates[key]
            data = _request_bytes(case)
            errs = []
            dg_col = dd_col = "?"
            is_start = case["path"].split("?")[0].endswith("/start")
            try:
                if is_start:
                    _make_target(dockerd, running=False)
                # 1. through dockgate
                resp = _send(g.sock, data, case["method"])
                got = "deny" if _is_dockgate_denial(resp) else ("allow" if resp is not None else "no-response")
                dg_col = f"{got} {resp.status if resp else '-'}"
                if got == "deny":
                    dg_col += f" {_msg(resp)[9:]}"
                else:
                    ev = _evidence(dockerd, case, resp)
                    dg_col += f" {_msg(resp)[:40] if resp and resp.status >= 300 else ''}{ev or ''}"
                    for k, v in (case.get("want") or {}).items():
                        if (ev or {}).get(k) != v:
                            errs.append(f"after dockgate, dockerd shows {k}={(ev or {}).get(k)!r}, expected {v!r}")
                if got != case["expect"]:
                    errs.append(f"dockgate: expected {case['expect']}, got {got}: "
                                f"{resp.status if resp else None} {_msg(resp)!r}")
                if got == "deny" and resp.header("Content-Type", "").split(";")[0] != "application/json":
                    errs.append(f"denial is not application/json: {resp.headers}")
                if is_start:
                    _make_target(dockerd, running=False)
                # 2. the same bytes straight to dockerd
                dresp = _send(dockerd.sock, data, case["method"])
                ev = _evidence(dockerd, case, dresp)
                st = dresp.status if dresp else None
                dd_col = f"{st} " + (json.dumps(ev, separators=(",", ":")) if ev else _msg(dresp)[:70])
                if case["name"] in DIRECT and case["expect"] == "deny":
                    what, pred = DIRECT[case["name"]]
                    ok = pred(st, ev, _msg(dresp))
                    dd_col = ("PROVEN " if ok else "NOT-AS-NOTED ") + dd_col
                    if not ok:
                        errs.append(f"dockerd directly did not show '{what}': {st} {ev or _msg(dresp)!r}")
            except Exception as e:  # keep going: every case reports
                errs.append(f"error: {e!r}")
            finally:
                if is_start or case["path"].endswith("/update"):
                    _make_target(dockerd)
            rows.append((case["name"], case["expect"], dg_col, dd_col, bool(errs)))
            if errs:
                print(f"# not ok - case: {case['name']}\n#     " + "\n#     ".join(errs))
            if errs:
                failures.append(f"{case['name']}: " + "; ".join(errs))
        w = max(len(r[0]) for r in rows)
        table = [f"adversarial suite ({CASES_FILE.name}): case | expected | dockgate | dockerd directly",
                 f"{'case':<{w}}  exp   {'dockgate':<58}  dockerd-direct"]
        table += [f"{n:<{w}}  {exp:<5} {str(a)[:58]:<58}  {str(b)[:100]}" + ("  <-- FAILED" if bad else "")
                  for n, exp, a, b, bad in rows]
        table.append(f"{len(rows) - len(failures)}/{len(rows)} cases ok")
        _show(table)
        assert not failures, f"{len(failures)} of {len(rows)} cases failed:\n" + "\n".join(failures)
    finally:
        for g in gates.values():
            try:
                g.stop()
            except AssertionError as e:
                print(f"# {e}")
        for cid in set(harness.Dockerd.containers(dockerd)) - containers_before:
            _api(dockerd, "DELETE", f"/containers/{cid}?force=1&v=1")
        for v in {v["Name"] for v in (_api(dockerd, "GET", "/volumes").json().get("Volumes") or [])} - volumes_before:
            _api(dockerd, "DELETE", f"/volumes/{v}?force=1")
        for i in _api(dockerd, "GET", "/images/json").json():
            for t in set(i.get("RepoTags") or []) - images_before.get(i["Id"], set()):
                _api(dockerd, "DELETE", f"/images/{t}?noprune=1")
        dockerd.cli("rmi", SMALL_TAG, check=False)
