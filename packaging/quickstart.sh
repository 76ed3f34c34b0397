#!/usr/bin/env bash
# README command 1: install what is missing, build, create development certificates and start
# dockgate in front of the local Docker daemon with a safe default, then print how to use it.
#
#   sudo packaging/quickstart.sh            # start (or restart) dockgate
#   sudo packaging/quickstart.sh --stop     # stop the dockgate this script started
#
# Settings (environment): DOCKGATE_HOME (default /etc/dockgate), DOCKGATE_PORT (2376),
# DOCKER_SOCK (/var/run/docker.sock), DOCKGATE_RUN (/run/dockgate).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HOME_DIR=${DOCKGATE_HOME:-/etc/dockgate}
PORT=${DOCKGATE_PORT:-2376}
DOCKER_SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
RUN_DIR=${DOCKGATE_RUN:-/run/dockgate}
PIDFILE=$RUN_DIR/dockgate.pid
LOG=/var/log/dockgate.log
say() { printf 'dockgate quickstart: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E "$0" "$@"
fi

stop_running() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    say "stopping dockgate (pid $(cat "$PIDFILE"))"
    kill -TERM "$(cat "$PIDFILE")"
    for _ in $(seq 50); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$PIDFILE"
}

if [ "${1:-}" = "--stop" ]; then
  stop_running
  exit 0
fi

# 1. Packages and build.
bash packaging/install-deps.sh
if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release >/dev/null
fi
ninja -C build src/dockgate >/dev/null
say "built $ROOT/build/src/dockgate"

# 2. A Docker daemon to guard.
ping_docker() { curl -sf --max-time 2 --unix-socket "$DOCKER_SOCK" http://docker/_ping >/dev/null 2>&1; }
if ! ping_docker; then
  if command -v dockerd >/dev/null 2>&1; then
    say "no Docker daemon answers on $DOCKER_SOCK; starting one (log: /var/log/dockerd-quickstart.log)"
    nohup dockerd --host "unix://$DOCKER_SOCK" >/var/log/dockerd-quickstart.log 2>&1 &
    for _ in $(seq 60); do ping_docker && break; sleep 0.5; done
  fi
  if ! ping_docker; then
    say "ERROR: no Docker daemon answers on $DOCKER_SOCK (install it with: apt-get install docker.io, or set DOCKER_SOCK)"
    exit 1
  fi
fi

# 3. Development PKI: a CA, a server certificate for localhost, an admin client certificate.
PKI=$HOME_DIR/pki
certs() {
  local out
  if ! out=$(bash "$ROOT/certs-tools/dockgate-certs" --dir "$PKI" "$@" 2>&1); then
    printf '%s\n' "$out" >&2
    say "ERROR: dockgate-certs $* failed"
    exit 1
  fi
}
mkdir -p "$HOME_DIR"
[ -f "$PKI/ca.pem" ] || certs init
[ -f "$PKI/servers/dockgate/cert.pem" ] || certs server dockgate --dns localhost --ip 127.0.0.1
[ -f "$PKI/clients/admin/cert.pem" ] || certs client admin --group admins

# 4. Configuration: mTLS on loopback, and a local socket for uids mapped in the config.
#    The policy gives the "admins" group everything and every other identity read-only access.
CONFIG=$HOME_DIR/dockgate.yaml
if [ ! -f "$CONFIG" ]; then
  cp "$ROOT/policies/quickstart.yaml" "$HOME_DIR/policy.yaml"
  cat >"$CONFIG" <<EOF
# Written by packaging/quickstart.sh. Reference: docs/configuration.md
listeners:
  - name: tls
    address: tcp://127.0.0.1:$PORT
    tls:
      certificate: $PKI/servers/dockgate/cert.pem
      key: $PKI/servers/dockgate/key.pem
      client_ca: $PKI/ca.pem
      crl: $PKI/crl.pem
    auth: [mtls]
  - name: local
    address: unix://$RUN_DIR/docker.sock
    mode: "0660"
    auth: [peer]
identities:
  peer:
    uids:
      0: {name: root, groups: [admins]}
upstream:
  address: unix://$DOCKER_SOCK
policy: policy.yaml
log:
  format: json
  file: $LOG
EOF
fi
mkdir -p "$RUN_DIR"
build/src/dockgate -t --config "$CONFIG" >/dev/null

# 5. Start (replacing a previous quickstart instance).
stop_running
nohup build/src/dockgate --config "$CONFIG" >>"$LOG" 2>&1 &
echo $! >"$PIDFILE"
for _ in $(seq 50); do
  if (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null; then break; fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { say "ERROR: dockgate exited; see $LOG"; tail -5 "$LOG" >&2; exit 1; }
  sleep 0.1
done
say "dockgate is running (pid $(cat "$PIDFILE"), log $LOG, config $CONFIG)"
say "stop it with: packaging/quickstart.sh --stop"
cat <<EOF
export DOCKER_HOST=tcp://localhost:$PORT
export DOCKER_TLS_VERIFY=1
export DOCKER_CERT_PATH=$PKI/clients/admin
EOF
