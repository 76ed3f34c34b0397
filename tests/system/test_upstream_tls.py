"""dockgate in front of dockerd's own --tlsverify TCP endpoint (the seed setup): dockgate is the
only mTLS client dockerd trusts; users reach it through dockgate."""
import json
import os

import harness
from harness import IMAGE, run


def _pki(tmp, name):
    """A separate CA for dockerd (its every client is root): a server cert for 127.0.0.1 and one
    client certificate, dockgate's."""
    d = tmp / name
    tool = [str(harness.CERTS_TOOL), "--dir", str(d)]
    run([*tool, "init"], timeout=60)
    run([*tool, "server", "dockerd", "--ip", "127.0.0.1", "--dns", "localhost", "--for", "dockerd"], timeout=60)
    run([*tool, "client", "dockgate-upstream"], timeout=60)
    return d


def _tls_dockerd(tmp):
    pki = _pki(tmp, "dockerd-pki")
    port = harness.free_port()
    d = harness.Dockerd.create(prefix="dg-systls-")
    srv = pki / "servers" / "dockerd"
    d.extra_args = ["--tlsverify", f"--tlscacert={pki / 'ca.pem'}", f"--tlscert={srv / 'cert.pem'}",
                    f"--tlskey={srv / 'key.pem'}", f"--host=tcp://127.0.0.1:{port}"]
    d.start()
    d.import_busybox()
    return d, pki, port


def _gate(d, certs, tmp, pki, port, ca=None):
    cli = pki / "clients" / "dockgate-upstream"
    upstream_tls = (f"  tls: {{ca: {json.dumps(str(ca or pki / 'ca.pem'))}, certificate: {json.dumps(str(cli / 'cert.pem'))}, "
                    f"key: {json.dumps(str(cli / 'key.pem'))}, server_name: \"127.0.0.1\"}}\n")
    g = harness.Dockgate(d, certs, workdir=tmp / "gate", listeners=("tls", "unix"),
                         upstream=f"tcp://127.0.0.1:{port}")
    text = g.config_yaml().replace(f"  address: \"tcp://127.0.0.1:{port}\"\n",
                                   f"  address: \"tcp://127.0.0.1:{port}\"\n" + upstream_tls)
    g.config.write_text(text)
    return g


def test_upstream_mtls_to_tlsverify_dockerd(certs, tmp):
    d, pki, port = _tls_dockerd(tmp)
    g = _gate(d, certs, tmp, pki, port)
    g.start()
    r = g.docker("version", "--format", "{{.Server.APIVersion}}", tls=True)
    assert r.out.strip() == "1.41", r
    # A tunnel through both TLS hops, with half-close: client close_notify -> dockgate -> dockerd.
    r = g.docker("run", "-i", "--rm", IMAGE, "cat", input=b"through-two-tls-hops\n", tls=True, timeout=30)
    assert r.out == "through-two-tls-hops\n", r
    r = g.docker("run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3", tls=False, check=False,
                 timeout=30)
    assert r.rc == 3 and "out" in r.out, r
    lines = [l for l in g.log_lines() if l.get("event") == "request" and l.get("operation") == "ContainerAttach"]
    assert lines and all(l.get("upgraded") for l in lines), lines
    g.stop()


def test_upstream_tls_wrong_ca_is_502(certs, tmp):
    d, pki, port = _tls_dockerd(tmp)
    other = _pki(tmp, "other-pki")
    g = _gate(d, certs, tmp, pki, port, ca=other / "ca.pem")
    g.start()
    r = g.request("GET", "/v1.41/version", timeout=15)
    assert r.status == 502, r
    msg = r.json().get("message", "")
    assert msg.startswith("dockgate:") and "certificate" in msg, msg
    g.stop()
