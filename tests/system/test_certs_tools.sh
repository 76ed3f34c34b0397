#!/usr/bin/env bash
# System test for certs-tools/dockgate-certs: every command, checked with the openssl CLI.
# Self-contained (a temporary directory, removed afterwards). Output: one "ok - NAME" /
# "not ok - NAME" line per check, then "N passed, M failed"; exit status 1 on any failure.
#
#   bash tests/system/test_certs_tools.sh [-v]     (-v: show command output of failed checks)
# "[[ cond ]] && ok … || notok …" is intended: ok and notok always return 0.
# shellcheck disable=SC2015
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOOL=${DOCKGATE_CERTS:-$HERE/../../certs-tools/dockgate-certs}
VERBOSE=0
[[ ${1:-} == -v ]] && VERBOSE=1

T=$(mktemp -d "${TMPDIR:-/tmp}/test-certs-tools.XXXXXX")
trap 'rm -rf -- "$T"' EXIT
D=$T/pki
PASS=0 FAIL=0
OUT=$T/out ERR=$T/err

# dg ARGS...: runs the tool with --dir $D; stdout in $OUT, stderr in $ERR; returns its status.
dg() { "$TOOL" --dir "$D" "$@" >"$OUT" 2>"$ERR"; }

ok() { PASS=$((PASS + 1)); printf 'ok - %s\n' "$1"; }
notok() {
  FAIL=$((FAIL + 1)); printf 'not ok - %s\n' "$1"
  if [[ $VERBOSE -eq 1 || -n ${2:-} ]]; then
    [[ -n ${2:-} ]] && printf '%s\n' "$2" | sed 's/^/    /'
    [[ -s $OUT ]] && sed 's/^/    stdout: /' "$OUT" | head -20
    [[ -s $ERR ]] && sed 's/^/    stderr: /' "$ERR" | head -20
  fi
  return 0
}
# check NAME COMMAND...: ok when the command succeeds.
check() { local n=$1; shift; if "$@" >/dev/null 2>&1; then ok "$n"; else notok "$n" "failed: $*"; fi; }
# check_not NAME COMMAND...: ok when the command fails.
check_not() { local n=$1; shift; if "$@" >/dev/null 2>&1; then notok "$n" "unexpectedly succeeded: $*"; else ok "$n"; fi; }

mode() { stat -c %a "$1" 2>/dev/null; }
ext() { openssl x509 -in "$1" -noout -ext "$2" 2>/dev/null; }
subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253 2>/dev/null | sed 's/^subject=//'; }
serial() { openssl x509 -in "$1" -noout -serial 2>/dev/null | sed 's/^serial=//'; }
verify() { openssl verify -CAfile "$D/ca.pem" "$@"; }
verify_crl() { openssl verify -CAfile "$D/ca.pem" -crl_check -CRLfile "$D/crl.pem" "$@"; }
contains() { grep -qF -- "$2" "$1"; }
# status_of NAME KIND -> the STATUS column of NAME's row in "list"
status_of() { "$TOOL" --dir "$D" list 2>/dev/null | awk -v n="$1" -v k="$2" '$1 == n && $2 == k { print $NF }'; }

command -v openssl >/dev/null || { echo "not ok - openssl available"; echo "0 passed, 1 failed"; exit 1; }

# --- usage / errors before init --------------------------------------------------------------
if dg client admin; then notok "client before init fails"; else
  if contains "$ERR" "run 'dockgate-certs --dir $D init' first" || contains "$ERR" "init first"; then
    ok "client before init: 'run dockgate-certs init first'"
  else notok "client before init: 'run dockgate-certs init first'"; fi
fi
if dg list; then notok "list before init fails"; else ok "list before init fails"; fi
"$TOOL" --dir "$D" frobnicate >"$OUT" 2>"$ERR"; rc=$?
if [[ $rc -eq 2 ]] && contains "$ERR" "unknown command"; then ok "unknown command: usage error (exit 2)"; else notok "unknown command: usage error (exit 2)"; fi
"$TOOL" --dir "$D" init --bogus >"$OUT" 2>"$ERR"; rc=$?
if [[ $rc -eq 2 ]] && contains "$ERR" "unknown option '--bogus'" && [[ ! -e $D/ca.pem ]]; then ok "unknown option: usage error, nothing created"; else notok "unknown option: usage error, nothing created"; fi
check "help prints usage" bash -c "'$TOOL' help | grep -q 'usage: dockgate-certs'"

# --- init (ECDSA) ----------------------------------------------------------------------------
if dg init; then ok "init"; else notok "init"; fi
check "init: CA key is ECDSA P-256" bash -c "openssl pkey -in '$D/private/ca-key.pem' -noout -text | grep -q 'NIST CURVE: P-256'"
check "init: CA cert key is EC" bash -c "openssl x509 -in '$D/ca.pem' -noout -text | grep -q 'id-ecPublicKey'"
[[ $(mode "$D/private/ca-key.pem") == 400 ]] && ok "init: CA key mode 0400" || notok "init: CA key mode 0400" "mode $(mode "$D/private/ca-key.pem")"
[[ $(mode "$D/ca.pem") == 444 ]] && ok "init: CA cert mode 0444" || notok "init: CA cert mode 0444" "mode $(mode "$D/ca.pem")"
check "init: CA subject CN=dockgate CA" bash -c "openssl x509 -in '$D/ca.pem' -noout -subject | grep -q 'CN = dockgate CA'"
check "init: CA basicConstraints CA:TRUE critical" bash -c "openssl x509 -in '$D/ca.pem' -noout -ext basicConstraints | grep -q critical && openssl x509 -in '$D/ca.pem' -noout -ext basicConstraints | grep -q 'CA:TRUE'"
check "init: CA keyUsage keyCertSign,cRLSign" bash -c "openssl x509 -in '$D/ca.pem' -noout -ext keyUsage | grep -q 'Certificate Sign, CRL Sign'"
# default lifetime 5 years: expires after 4.9 years, not after 5.1
check "init: CA lifetime about 5 years" bash -c "openssl x509 -in '$D/ca.pem' -noout -checkend $((1785*86400)) && ! openssl x509 -in '$D/ca.pem' -noout -checkend $((1866*86400))"
check "init: empty CRL exists and verifies" bash -c "openssl crl -in '$D/crl.pem' -CAfile '$D/ca.pem' -noout 2>&1 | grep -q 'verify OK' && openssl crl -in '$D/crl.pem' -noout -text | grep -q 'No Revoked Certificates'"
check "init: CRL next update about 30 days" bash -c "nu=\$(openssl crl -in '$D/crl.pem' -noout -nextupdate | sed 's/nextUpdate=//'); d=\$(( (\$(date -d \"\$nu\" +%s) - \$(date +%s)) / 86400 )); [ \$d -ge 29 ] && [ \$d -le 30 ]"
if dg init; then notok "init again refuses without --force"; else
  if contains "$ERR" "--force"; then ok "init again refuses without --force"; else notok "init again refuses without --force"; fi
fi
oldca=$(serial "$D/ca.pem")
check "init refusal keeps the CA" test "$(serial "$D/ca.pem")" = "$oldca"

# --- server (quick-start form) ---------------------------------------------------------------
S=$D/servers/dockgate
if dg server dockgate --dns localhost --ip 127.0.0.1; then ok "server dockgate --dns localhost --ip 127.0.0.1"; else notok "server dockgate --dns localhost --ip 127.0.0.1"; fi
check "server: files cert.pem key.pem ca.pem" test -f "$S/cert.pem" -a -f "$S/key.pem" -a -f "$S/ca.pem"
check "server: SAN DNS:localhost" bash -c "openssl x509 -in '$S/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:localhost'"
check "server: SAN IP 127.0.0.1" bash -c "openssl x509 -in '$S/cert.pem' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1'"
check "server: EKU serverAuth only" bash -c "e=\$(openssl x509 -in '$S/cert.pem' -noout -ext extendedKeyUsage); echo \"\$e\" | grep -q 'TLS Web Server Authentication' && ! echo \"\$e\" | grep -q 'Client'"
check "server: CA:FALSE" bash -c "openssl x509 -in '$S/cert.pem' -noout -ext basicConstraints | grep -q 'CA:FALSE'"
check "server: verify OK (purpose sslserver)" verify -purpose sslserver "$S/cert.pem"
check "server: verify with CRL OK" verify_crl "$S/cert.pem"
check "server: key matches cert" bash -c "[ \"\$(openssl x509 -in '$S/cert.pem' -noout -pubkey)\" = \"\$(openssl pkey -in '$S/key.pem' -pubout)\" ]"
[[ $(mode "$S/key.pem") == 400 ]] && ok "server: key mode 0400" || notok "server: key mode 0400" "mode $(mode "$S/key.pem")"
[[ $(mode "$S/cert.pem") == 444 ]] && ok "server: cert mode 0444" || notok "server: cert mode 0444"
check "server: lifetime 397 days" bash -c "openssl x509 -in '$S/cert.pem' -noout -checkend $((396*86400)) && ! openssl x509 -in '$S/cert.pem' -noout -checkend $((398*86400))"
check "server: prints dockgate tls snippet" bash -c "grep -q 'client_ca: $D/ca.pem' '$OUT' && grep -q 'crl: $D/crl.pem' '$OUT'"
check_not "server: private key never printed" grep -q 'PRIVATE KEY' "$OUT" "$ERR"
if dg server dockgate --dns localhost; then notok "server: existing NAME refused"; else
  if contains "$ERR" "renew"; then ok "server: existing NAME refused, says renew"; else notok "server: existing NAME refused, says renew"; fi
fi

# --- server for dockerd ----------------------------------------------------------------------
if dg server dockerd --dns docker.example --ip 10.0.0.5 --ip ::1 --for dockerd --days 30; then ok "server --for dockerd"; else notok "server --for dockerd"; fi
if python3 -c 'import sys' 2>/dev/null; then
  check "server --for dockerd: daemon.json snippet is JSON with tls keys" python3 -c "
import json,sys
t=open('$OUT').read(); j=json.loads(t[t.index('{'):t.rindex('}')+1])
assert j['tlsverify'] is True
for k in ('tlscacert','tlscert','tlskey'): assert j[k].startswith('$D/servers/dockerd/'), k
assert any(h.startswith('tcp://') and h.endswith(':2376') for h in j['hosts'])"
else
  check "server --for dockerd: daemon.json snippet" bash -c "grep -q '\"tlsverify\": true' '$OUT' && grep -q '\"tlscacert\"' '$OUT' && grep -q '\"hosts\"' '$OUT'"
fi
check "server --for dockerd: IPv6 SAN" bash -c "openssl x509 -in '$D/servers/dockerd/cert.pem' -noout -ext subjectAltName | grep -q 'IP Address:0:0:0:0:0:0:0:1'"
check "server --days 30" bash -c "c='$D/servers/dockerd/cert.pem'; openssl x509 -in \$c -noout -checkend $((29*86400)) && ! openssl x509 -in \$c -noout -checkend $((31*86400))"
if dg server bad --ip 300.1.1.1; then notok "server: invalid --ip refused"; else ok "server: invalid --ip refused"; fi
if dg server bad --group x; then notok "server: --group refused"; else ok "server: --group refused"; fi

# --- client (quick-start form) ---------------------------------------------------------------
A=$D/clients/admin
if dg client admin --group admins; then ok "client admin --group admins"; else notok "client admin --group admins"; fi
check "client: DOCKER_CERT_PATH layout ca.pem cert.pem key.pem" test -f "$A/ca.pem" -a -f "$A/cert.pem" -a -f "$A/key.pem"
check "client: ca.pem is the CA" cmp -s "$A/ca.pem" "$D/ca.pem"
check "client: subject CN=admin, OU=admins" test "$(subject "$A/cert.pem")" = "CN=admin,OU=admins"
check "client: EKU clientAuth only" bash -c "e=\$(openssl x509 -in '$A/cert.pem' -noout -ext extendedKeyUsage); echo \"\$e\" | grep -q 'TLS Web Client Authentication' && ! echo \"\$e\" | grep -q 'Server'"
check "client: key is EC P-256" bash -c "openssl pkey -in '$A/key.pem' -noout -text | grep -q 'P-256'"
check "client: verify OK (purpose sslclient)" verify -purpose sslclient "$A/cert.pem"
check_not "client: not usable as server (purpose sslserver)" verify -purpose sslserver "$A/cert.pem"
check_not "server cert: not usable as client (purpose sslclient)" verify -purpose sslclient "$S/cert.pem"
check "client: verify with CRL OK" verify_crl "$A/cert.pem"
[[ $(mode "$A/key.pem") == 400 ]] && ok "client: key mode 0400" || notok "client: key mode 0400" "mode $(mode "$A/key.pem")"
[[ $(mode "$A/cert.pem") == 444 && $(mode "$A/ca.pem") == 444 ]] && ok "client: certs mode 0444" || notok "client: certs mode 0444"
check "client: lifetime 90 days" bash -c "openssl x509 -in '$A/cert.pem' -noout -checkend $((89*86400)) && ! openssl x509 -in '$A/cert.pem' -noout -checkend $((91*86400))"
check "client: prints export line" grep -qxF "export DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$A" "$OUT"
check "client: prints docker context create" grep -qxF "docker context create admin --docker \"host=tcp://127.0.0.1:2376,ca=$A/ca.pem,cert=$A/cert.pem,key=$A/key.pem\"" "$OUT"
check_not "client: private key never printed" grep -q 'PRIVATE KEY' "$OUT" "$ERR"
check "client: export line works in a shell" bash -c "eval \"\$(head -1 '$OUT')\"; [ \"\$DOCKER_CERT_PATH\" = '$A' ] && [ -f \"\$DOCKER_CERT_PATH/key.pem\" ] && [ \"\$DOCKER_TLS_VERIFY\" = 1 ]"
if dg client admin --group admins; then notok "client: existing NAME refused"; else
  if contains "$ERR" "renew admin"; then ok "client: existing NAME refused, says renew"; else notok "client: existing NAME refused, says renew"; fi
fi

# several groups, --out, --host, --days
O=$T/alice-certs
if dg client alice --group devs --group ops --out "$O" --host tcp://docker.example:2376 --days 7; then ok "client alice: 2 groups, --out, --host, --days"; else notok "client alice: 2 groups, --out, --host, --days"; fi
check "client --out: files in --out" test -f "$O/ca.pem" -a -f "$O/cert.pem" -a -f "$O/key.pem"
check "client: two OUs" test "$(subject "$O/cert.pem")" = "CN=alice,OU=ops,OU=devs"
check "client --host in export and context" bash -c "grep -q 'DOCKER_HOST=tcp://docker.example:2376' '$OUT' && grep -q 'host=tcp://docker.example:2376,ca=$O/ca.pem' '$OUT'"
check "client --days 7" bash -c "openssl x509 -in '$O/cert.pem' -noout -checkend $((6*86400)) && ! openssl x509 -in '$O/cert.pem' -noout -checkend $((8*86400))"
check "env alice prints the export line" bash -c "'$TOOL' --dir '$D' env alice | grep -qxF 'export DOCKER_HOST=tcp://docker.example:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$O'"
if dg client 'bad/name'; then notok "client: invalid NAME refused"; else ok "client: invalid NAME refused"; fi
if dg client bob --group 'a,b'; then notok "client: invalid group refused"; else ok "client: invalid group refused"; fi
if dg client bob --dns x; then notok "client: --dns refused"; else ok "client: --dns refused"; fi
"$TOOL" --dir "$D" client bob --frob >"$OUT" 2>"$ERR"; rc=$?
[[ $rc -eq 2 ]] && contains "$ERR" "unknown option" && ok "client: unknown option → usage (exit 2)" || notok "client: unknown option → usage (exit 2)"

# --- list ------------------------------------------------------------------------------------
if dg list; then ok "list"; else notok "list"; fi
check "list: header" bash -c "head -1 '$OUT' | grep -q 'NAME.*KIND.*GROUPS.*SERIAL.*NOT-AFTER.*STATUS'"
check "list: admin client admins valid" bash -c "awk '\$1==\"admin\" && \$2==\"client\" && \$3==\"admins\" && \$NF==\"valid\"' '$OUT' | grep -q ."
check "list: alice groups devs,ops" bash -c "awk '\$1==\"alice\" && \$3==\"devs,ops\"' '$OUT' | grep -q ."
check "list: server dockgate with SANs" bash -c "awk '\$1==\"dockgate\" && \$2==\"server\" && \$3 ~ /DNS:localhost/' '$OUT' | grep -q ."
check "list: admin serial shown" bash -c "grep -q '$(serial "$A/cert.pem")' '$OUT'"

# --- revoke ----------------------------------------------------------------------------------
adm_serial=$(serial "$A/cert.pem")
if dg revoke admin; then ok "revoke admin"; else notok "revoke admin"; fi
check "revoke: mentions SIGHUP" grep -q SIGHUP "$ERR"
check "revoke: CRL lists the serial" bash -c "openssl crl -in '$D/crl.pem' -noout -text | grep -q 'Serial Number: $adm_serial'"
check "revoke: verify without CRL still OK (signature)" verify "$A/cert.pem"
if out=$(verify_crl "$A/cert.pem" 2>&1); then notok "revoke: verify -crl_check fails"; else
  if grep -q 'certificate revoked' <<<"$out"; then ok "revoke: verify -crl_check fails: certificate revoked"; else notok "revoke: verify -crl_check fails: certificate revoked" "$out"; fi
fi
check "revoke: alice still verifies with CRL" verify_crl "$O/cert.pem"
check "list: admin revoked" test "$(status_of admin client)" = revoked
if dg revoke admin; then notok "revoke again: error"; else ok "revoke again: error (nothing left to revoke)"; fi
if dg revoke nobody; then notok "revoke unknown NAME: error"; else ok "revoke unknown NAME: error"; fi

# --- renew -----------------------------------------------------------------------------------
al_serial=$(serial "$O/cert.pem")
al_key=$(openssl pkey -in "$O/key.pem" -pubout)
cp "$O/cert.pem" "$T/alice-old.pem"
if dg renew alice; then ok "renew alice"; else notok "renew alice"; fi
al_new=$(serial "$O/cert.pem")
[[ $al_new != "$al_serial" ]] && ok "renew: new serial" || notok "renew: new serial"
[[ $(openssl pkey -in "$O/key.pem" -pubout) != "$al_key" ]] && ok "renew: new key" || notok "renew: new key"
check "renew: same subject" test "$(subject "$O/cert.pem")" = "CN=alice,OU=ops,OU=devs"
check "renew: same lifetime (--days 7 kept)" bash -c "! openssl x509 -in '$O/cert.pem' -noout -checkend $((8*86400))"
check "renew: new cert verifies with CRL" verify_crl -purpose sslclient "$O/cert.pem"
check "renew: old cert stays valid (no --revoke-old)" verify_crl "$T/alice-old.pem"
[[ $(mode "$O/key.pem") == 400 ]] && ok "renew: key mode 0400" || notok "renew: key mode 0400"
check "list: alice shows the new serial" bash -c "'$TOOL' --dir '$D' list | grep -q '$al_new'"
check "list --all: old alice serial superseded" bash -c "'$TOOL' --dir '$D' list --all | grep '$al_serial' | grep -q superseded"
cp "$O/cert.pem" "$T/alice-2.pem"
if dg renew alice --revoke-old --days 14; then ok "renew --revoke-old --days 14"; else notok "renew --revoke-old --days 14"; fi
check_not "renew --revoke-old: previous cert revoked" verify_crl "$T/alice-2.pem"
check "renew --revoke-old: new cert verifies" verify_crl "$O/cert.pem"
check "renew --days 14" bash -c "openssl x509 -in '$O/cert.pem' -noout -checkend $((13*86400)) && ! openssl x509 -in '$O/cert.pem' -noout -checkend $((15*86400))"
srv_old=$(serial "$S/cert.pem")
if dg renew dockgate; then ok "renew server"; else notok "renew server"; fi
check "renew server: same SANs" bash -c "openssl x509 -in '$S/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:localhost, IP Address:127.0.0.1'"
check "renew server: new serial, verifies" bash -c "[ '$(serial "$S/cert.pem")' != '$srv_old' ] && openssl verify -CAfile '$D/ca.pem' -purpose sslserver '$S/cert.pem'"
# revoke a renewed (revoked) client again by renewing: admin
if dg renew admin; then ok "renew a revoked client"; else notok "renew a revoked client"; fi
check "renewed admin verifies with CRL" verify_crl "$A/cert.pem"
check "list: admin valid again" test "$(status_of admin client)" = valid
# revoke without --revoke-old revokes every unrevoked certificate of the name
cp "$O/cert.pem" "$T/alice-3.pem"
dg renew alice >/dev/null 2>&1
if dg revoke alice --reason keyCompromise; then ok "revoke alice (all certificates)"; else notok "revoke alice (all certificates)"; fi
check_not "revoke: older still-valid alice cert revoked too" verify_crl "$T/alice-3.pem"
check_not "revoke: current alice cert revoked" verify_crl "$O/cert.pem"
check "revoke --reason in CRL" bash -c "openssl crl -in '$D/crl.pem' -noout -text | grep -q 'Key Compromise'"

# --- expired / not yet valid (testing options) ----------------------------------------------
if dg client old --group admins --not-before 20200101000000Z --not-after 20200201000000Z; then ok "client --not-before/--not-after in the past"; else notok "client --not-before/--not-after in the past"; fi
if out=$(verify "$D/clients/old/cert.pem" 2>&1); then notok "expired cert fails verify"; else
  if grep -q 'expired' <<<"$out"; then ok "expired cert fails verify: certificate has expired"; else notok "expired cert fails verify: certificate has expired" "$out"; fi
fi
check "list: old expired" test "$(status_of old client)" = expired
if dg client future --not-before 20991231000000Z --not-after 21000101000000Z; then ok "client with a future --not-before"; else notok "client with a future --not-before"; fi
if out=$(verify "$D/clients/future/cert.pem" 2>&1); then notok "not-yet-valid cert fails verify"; else
  if grep -q 'not yet valid' <<<"$out"; then ok "not-yet-valid cert fails verify"; else notok "not-yet-valid cert fails verify" "$out"; fi
fi
check "list: future not-yet-valid" test "$(status_of future client)" = not-yet-valid
if dg client later --not-before 20991231000000Z --days 10; then ok "client --not-before with --days"; else notok "client --not-before with --days"; fi
check "--not-before + --days: notAfter = notBefore + 10 days" bash -c "openssl x509 -in '$D/clients/later/cert.pem' -noout -enddate | grep -q 'Jan 10 00:00:00 2100 GMT'"
if dg client past2 --not-after 20210101000000Z; then ok "client --not-after alone (past)"; else notok "client --not-after alone (past)"; fi
check_not "--not-after alone: expired" verify "$D/clients/past2/cert.pem"
if dg client bad --not-after 2020-01-01; then notok "bad --not-after format refused"; else ok "bad --not-after format refused"; fi

# --- crl -------------------------------------------------------------------------------------
n1=$(openssl crl -in "$D/crl.pem" -noout -crlnumber)
if dg crl --days 7; then ok "crl --days 7"; else notok "crl --days 7"; fi
n2=$(openssl crl -in "$D/crl.pem" -noout -crlnumber)
[[ $n1 != "$n2" ]] && ok "crl: new CRL number" || notok "crl: new CRL number"
check "crl: next update in 7 days" bash -c "nu=\$(openssl crl -in '$D/crl.pem' -noout -nextupdate | sed 's/nextUpdate=//'); d=\$(( (\$(date -d \"\$nu\" +%s) - \$(date +%s)) / 86400 )); [ \$d -ge 6 ] && [ \$d -le 7 ]"
check "crl: still lists revoked admin serial" bash -c "openssl crl -in '$D/crl.pem' -noout -text | grep -q 'Serial Number: $adm_serial'"
check "crl: mode 0444" test "$(mode "$D/crl.pem")" = 444

# --- server --owner (root only) ----------------------------------------------------------------
if [[ $(id -u) -eq 0 ]] && id nobody >/dev/null 2>&1; then
  chmod 0711 "$T"   # let nobody traverse the test directory
  if dg server owned --dns localhost --owner nobody; then ok "server --owner nobody"; else notok "server --owner nobody"; fi
  check "server --owner: key owned by nobody, mode 0400" test "$(stat -c '%U %a' "$D/servers/owned/key.pem")" = "nobody 400"
  check "server --owner: nobody can read the key" runuser -u nobody -- test -r "$D/servers/owned/key.pem"
  check "server --owner: renew keeps the owner" bash -c "'$TOOL' --dir '$D' renew owned >/dev/null 2>&1 && [ \"\$(stat -c %U '$D/servers/owned/key.pem')\" = nobody ]"
fi

# --- name both client and server -------------------------------------------------------------
dg client dockgate >/dev/null 2>&1
if dg revoke dockgate; then notok "ambiguous NAME needs --client/--server"; else
  if contains "$ERR" "--client or --server"; then ok "ambiguous NAME needs --client/--server"; else notok "ambiguous NAME needs --client/--server"; fi
fi
if dg revoke dockgate --client; then ok "revoke dockgate --client"; else notok "revoke dockgate --client"; fi
check "revoke --client left the server cert valid" verify_crl "$S/cert.pem"
check "list: dockgate server valid, client revoked" bash -c "[ \"\$('$TOOL' --dir '$D' list dockgate | awk '\$2==\"server\"{print \$NF}')\" = valid ] && [ \"\$('$TOOL' --dir '$D' list dockgate | awk '\$2==\"client\"{print \$NF}')\" = revoked ]"

# --- init --force, default dir via DOCKGATE_PKI, RSA --------------------------------------------
if dg init --force --name "second CA"; then ok "init --force replaces the CA"; else notok "init --force replaces the CA"; fi
check "init --force: new CA" bash -c "[ '$(serial "$D/ca.pem")' != '$oldca' ] && openssl x509 -in '$D/ca.pem' -noout -subject | grep -q 'second CA'"
check "init --force: old CA kept in replaced-*" bash -c "ls -d '$D'/replaced-*/ca.pem"
check "init --force: list is empty" bash -c "[ \$('$TOOL' --dir '$D' list | awk '\$2==\"client\" || \$2==\"server\"' | wc -l) -eq 0 ]"

R=$T/rsa
if DOCKGATE_PKI=$R "$TOOL" init --rsa --days 365 >"$OUT" 2>"$ERR"; then ok "init --rsa (dir from DOCKGATE_PKI)"; else notok "init --rsa (dir from DOCKGATE_PKI)"; fi
check "rsa: CA key RSA 3072" bash -c "openssl pkey -in '$R/private/ca-key.pem' -noout -text | grep -q 'Private-Key: (3072 bit'"
check "rsa: CA --days 365" bash -c "! openssl x509 -in '$R/ca.pem' -noout -checkend $((366*86400))"
if DOCKGATE_PKI=$R "$TOOL" client admin --group admins >"$OUT" 2>"$ERR"; then ok "rsa: client"; else notok "rsa: client"; fi
check "rsa: client key RSA" bash -c "openssl pkey -in '$R/clients/admin/key.pem' -noout -text | grep -q 'Private-Key: (3072 bit'"
check "rsa: client keyUsage has keyEncipherment" bash -c "openssl x509 -in '$R/clients/admin/cert.pem' -noout -ext keyUsage | grep -q 'Key Encipherment'"
DOCKGATE_PKI=$R "$TOOL" client old --not-after 20200101000000Z >/dev/null 2>&1
check "rsa: client verifies" openssl verify -CAfile "$R/ca.pem" -crl_check -CRLfile "$R/crl.pem" -purpose sslclient "$R/clients/admin/cert.pem"
if DOCKGATE_PKI=$R "$TOOL" server dockgate --dns localhost --ip 127.0.0.1 >"$OUT" 2>"$ERR"; then ok "rsa: server"; else notok "rsa: server"; fi
check "rsa: server verifies" openssl verify -CAfile "$R/ca.pem" -purpose sslserver "$R/servers/dockgate/cert.pem"

# --- a real TLS handshake with the issued certificates (openssl s_server / s_client) --------------
# The server requires a client certificate and checks the CRL, as dockgate does.
handshake() {  # handshake CLIENT_DIR -> 0 when the handshake and one HTTP request succeed
  local port log=$T/s_server.log pid="" rc=1
  for _ in 1 2 3 4 5; do
    port=$(( 20000 + RANDOM % 20000 ))
    openssl s_server -www -accept "127.0.0.1:$port" -cert "$R/servers/dockgate/cert.pem" \
      -key "$R/servers/dockgate/key.pem" -CAfile "$R/ca.pem" -Verify 1 -verify_return_error \
      -crl_check -CRL "$R/crl.pem" -naccept 1 </dev/null >"$log" 2>&1 &
    pid=$!
    for _ in $(seq 50); do
      grep -q '^ACCEPT' "$log" && break
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    grep -q '^ACCEPT' "$log" && break
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""
  done
  [[ -n $pid ]] || { echo "s_server did not start" >"$log"; return 1; }
  printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$port" \
    -verify_hostname localhost -verify_return_error -CAfile "$1/ca.pem" -cert "$1/cert.pem" \
    -key "$1/key.pem" -ign_eof >"$T/s_client.log" 2>&1
  grep -q '^HTTP/1.0 200' "$T/s_client.log" && rc=0
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return $rc
}
check "handshake: s_server (client cert + CRL required) accepts the RSA client" handshake "$R/clients/admin"
DOCKGATE_PKI=$R "$TOOL" revoke admin >/dev/null 2>&1
if handshake "$R/clients/admin"; then notok "handshake: revoked client refused"; else
  if grep -q 'certificate revoked' "$T/s_server.log"; then ok "handshake: revoked client refused (certificate revoked)"
  else notok "handshake: revoked client refused (certificate revoked)" "$(cat "$T/s_server.log")"; fi
fi
if handshake "$R/clients/old"; then notok "handshake: expired client refused"; else
  if grep -q 'certificate has expired' "$T/s_server.log"; then ok "handshake: expired client refused (certificate has expired)"
  else notok "handshake: expired client refused (certificate has expired)" "$(cat "$T/s_server.log")"; fi
fi

# --- the real docker CLI with the issued files (skipped without docker) --------------------------
if command -v docker >/dev/null 2>&1; then
  E=$T/ecdsa-docker
  "$TOOL" --dir "$E" init >/dev/null 2>&1
  "$TOOL" --dir "$E" server dockgate --dns localhost --ip 127.0.0.1 >/dev/null 2>&1
  "$TOOL" --dir "$E" client carol --group devs >"$T/carol.out" 2>/dev/null
  mkdir -p "$T/docker-config"
  check "docker context create (as printed) works" bash -c "export DOCKER_CONFIG='$T/docker-config'; eval \"\$(grep '^docker context create' '$T/carol.out')\" && docker context inspect carol --format '{{.Endpoints.docker.Host}} {{.TLSMaterial.docker}}' | grep -q 'tcp://127.0.0.1:2376 \[ca.pem cert.pem key.pem\]'"
  # docker CLI → s_server (client certificate + CRL required); the CLI has to complete the TLS
  # handshake with ca.pem/cert.pem/key.pem from DOCKER_CERT_PATH (the HTTP answer is not Docker's).
  port=$(( 20000 + RANDOM % 20000 ))
  openssl s_server -www -accept "127.0.0.1:$port" -cert "$E/servers/dockgate/cert.pem" -key "$E/servers/dockgate/key.pem" \
    -CAfile "$E/ca.pem" -Verify 1 -verify_return_error -crl_check -CRL "$E/crl.pem" -naccept 1 </dev/null >"$T/s_server.log" 2>&1 &
  spid=$!
  for _ in $(seq 50); do grep -q '^ACCEPT' "$T/s_server.log" && break; sleep 0.1; done
  ( eval "$(head -1 "$T/carol.out")"; export DOCKER_HOST=tcp://127.0.0.1:$port DOCKER_CONFIG=$T/docker-config
    unset DOCKER_CONTEXT; timeout 20 docker version ) >"$T/docker.log" 2>&1
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  if grep -q 'CN = carol' "$T/s_server.log" && ! grep -q 'verify error' "$T/s_server.log" && ! grep -qiE 'x509|tls:' "$T/docker.log"; then
    ok "docker CLI: TLS handshake with DOCKER_CERT_PATH files (client cert CN=carol verified)"
  else
    notok "docker CLI: TLS handshake with DOCKER_CERT_PATH files (client cert CN=carol verified)" "$(cat "$T/s_server.log" "$T/docker.log")"
  fi
else
  echo "# skip: docker CLI not installed (docker context / DOCKER_CERT_PATH checks)"
fi

printf '%d passed, %d failed\n' "$PASS" "$FAIL"
[[ $FAIL -eq 0 ]]
