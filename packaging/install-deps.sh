#!/usr/bin/env bash
# Installs the Debian packages dockgate needs to build (and, with --test, to run its tests).
# Idempotent: only missing packages are installed. Needs root (or sudo).
set -euo pipefail
build_pkgs=(build-essential pkg-config meson ninja-build libuv1-dev libssl-dev libyaml-cpp-dev
  libsimdjson-dev doctest-dev node-llhttp libexpected-dev libcrypt-dev libsqlite3-dev libpq-dev openssl)
test_pkgs=(docker.io busybox-static python3 socat curl apache2-utils util-linux procps iproute2)
bench_pkgs=(nginx haproxy gnuplot-nox hyperfine linux-perf)
want=("${build_pkgs[@]}")
for a in "$@"; do
  case "$a" in
    --test) want+=("${test_pkgs[@]}") ;;
    --bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "usage: $0 [--test] [--bench]" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing: ${missing[*]}" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
