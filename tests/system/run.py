#!/usr/bin/env python3
"""Runs dockgate's system tests: tests/system/test_*.py, functions named test_*.

  python3 tests/system/run.py [-k SUBSTRING]... [--list] [FILE...]

One private dockerd (with a busybox:latest image) and one set of certificates serve the whole run.
Each test runs in its own child process with a timeout (default 120 s, @harness.timeout(N)), so a
hung test is killed together with the processes it started. Test functions receive fixtures by
argument name:
  dockerd    the shared harness.Dockerd (don't stop it)
  certs      harness.Certs
  dg         a started harness.Dockgate (mTLS + unix listeners, allow-all policy); stopped after the
             test, which fails unless it exits 0 on SIGTERM
  tmp        a fresh temporary directory (pathlib.Path), removed afterwards
  transport  the parameter of @harness.params(...) tests ("tls" or "unix")
Output: "ok - name" / "not ok - name" (+ failure details), finally "N passed, M failed".
"""

import argparse
import importlib.util
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402

DEFAULT_TIMEOUT = 120


def load_module(path):
    name = "systest_" + Path(path).stem
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def discover(files, filters):
    tests = []  # (id, file, funcname, param, timeout)
    for f in files:
        mod = load_module(f)
        fns = [(n, fn) for n, fn in vars(mod).items() if n.startswith("test_") and inspect.isfunction(fn)
               and fn.__module__ == mod.__name__]
        fns.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
        for n, fn in fns:
            for p in getattr(fn, "params", (None,)):
                tid = f"{Path(f).stem}::{n}" + (f"[{p}]" if p is not None else "")
                if filters and not any(k in tid for k in filters):
                    continue
                tests.append((tid, str(f), n, p, getattr(fn, "timeout", DEFAULT_TIMEOUT)))
    return tests


# ---------------------------------------------------------------------------------------------
# child: runs one test

def _child_on_timeout(signum, frame):
    # the parent's timeout: show where the test was stuck, then end what it started
    print(f"killed by signal {signum} (test timeout) at:")
    print("".join(traceback.format_stack(frame, limit=8)).rstrip())
    rep = harness.failure_report()
    if rep:
        print(rep)
    sys.stdout.flush()
    harness.cleanup()
    os._exit(1)


def _report(tb):
    print(tb)
    rep = harness.failure_report()
    if rep and rep not in tb:
        print(rep)


def child(state_file, file, name, param):
    harness.install_signal_handlers()
    signal.signal(signal.SIGTERM, _child_on_timeout)
    state = json.loads(Path(state_file).read_text())
    mod = load_module(file)
    fn = getattr(mod, name)
    sig = inspect.signature(fn)
    kwargs = {}
    teardown = []
    ok = True
    try:
        dockerd = harness.Dockerd(state["dockerd"])
        certs = harness.Certs(state["certs"])
        for a in sig.parameters:
            if a == "dockerd":
                kwargs[a] = dockerd
            elif a == "certs":
                kwargs[a] = certs
            elif a == "tmp":
                t = Path(tempfile.mkdtemp(prefix="dg-t-", dir="/tmp"))
                teardown.append(lambda t=t: shutil.rmtree(t, ignore_errors=True))
                kwargs[a] = t
            elif a == "transport":
                kwargs[a] = param
            elif a == "dg":
                g = harness.Dockgate(dockerd, certs)
                kwargs[a] = g
                teardown.append(lambda g=g: g.stop())
                g.start()
            else:
                raise RuntimeError(f"unknown fixture {a!r}")
        fn(**kwargs)
    except BaseException:
        ok = False
        _report(traceback.format_exc(limit=-6).rstrip())
    for t in reversed(teardown):
        try:
            t()
        except BaseException:
            if ok:
                _report("teardown failed:\n" + traceback.format_exc(limit=-3).rstrip())
            ok = False
    sys.stdout.flush()
    harness.cleanup()
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------
# parent

def run_one(state_file, tid, file, name, param, timeout, out_dir):
    outp = Path(out_dir) / "out.txt"
    with open(outp, "wb") as out:
        argv = [sys.executable, __file__, "--child", state_file, file, name]
        if param is not None:
            argv.append(str(param))
        p = harness.spawn(argv, name="test", stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                          env=dict(os.environ, PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1"))
        timed_out = False
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            kids = harness.descendants(p.pid)
            p.send_signal(signal.SIGTERM)  # the child ends what it started
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            harness.kill_pids([p.pid] + [k for k in kids if harness._alive(k)], grace=2)
            rc = -1
        harness.untrack(p)
    text = outp.read_text(errors="replace")
    if timed_out:
        text += f"\ntest timed out after {timeout}s"
    return rc == 0, text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-k", action="append", default=[], help="run tests whose id contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--budget", type=float, default=float(os.environ.get("DG_SYSTEM_BUDGET", "1200")),
                    help="seconds for the whole run; tests not started by then count as failed")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    if a.child:
        state, file, name = a.child[:3]
        return child(state, file, name, a.child[3] if len(a.child) > 3 else None)

    files = [str(Path(f).resolve()) for f in a.files] or sorted(str(p) for p in HERE.glob("test_*.py"))
    tests = discover(files, a.k)
    if a.list:
        for t in tests:
            print(t[0])
        return 0
    harness.install_signal_handlers()
    passed = failed = 0
    print(f"# {len(tests)} system tests; dockgate = {harness.DOCKGATE_BIN}"
          + ("" if os.access(harness.DOCKGATE_BIN, os.X_OK) else " (MISSING)"), flush=True)
    try:
        t0 = time.monotonic()
        dockerd = harness.Dockerd.create()
        dockerd.start()
        dockerd.import_busybox()
        certs = harness.Certs.generate(dockerd.dir / "certs")
        state_file = dockerd.dir / "state.json"
        state_file.write_text(json.dumps({"dockerd": str(dockerd.dir), "certs": str(certs.dir)}))
        print(f"# dockerd {dockerd.host} ready with {harness.IMAGE} in {time.monotonic() - t0:.1f}s", flush=True)
    except Exception as e:
        print(f"not ok - setup (private dockerd / image / certificates)\n    {e}".replace("\n", "\n    "))
        harness.cleanup()
        print(f"0 passed, {max(1, len(tests))} failed")
        return 1
    scratch = tempfile.mkdtemp(prefix="dg-run-", dir="/tmp")
    harness.on_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
    run_deadline = time.monotonic() + a.budget
    for tid, file, name, param, timeout in tests:
        t0 = time.monotonic()
        if t0 > run_deadline:
            failed += 1
            print(f"not ok - {tid} (not run: the {a.budget:.0f}s time budget of this run is used up)", flush=True)
            continue
        ok, text = run_one(str(state_file), tid, file, name, param, timeout, scratch)
        dt = time.monotonic() - t0
        try:
            left = dockerd.sweep()
        except Exception as e:
            left = [f"(sweep failed: {e})"]
        if ok:
            passed += 1
            print(f"ok - {tid} ({dt:.1f}s)", flush=True)
        else:
            failed += 1
            print(f"not ok - {tid} ({dt:.1f}s)", flush=True)
            for line in text.rstrip().splitlines()[-80:]:
                print("    " + line)
        if left:
            print(f"# {tid} left behind (removed): {', '.join(left)[:300]}", flush=True)
        sys.stdout.flush()
    harness.cleanup()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
