#!/usr/bin/env bash
# CRL and OCSP checks of `tlsmint-operator dev` with openssl as the client:
#   openssl crl (signature), openssl verify -crl_check (good, then revoked),
#   openssl ocsp over POST (good, then revoked) and a GET request (RFC 6960 A.1).
# Usage: openssl-checks.sh <tlsmint-operator binary>
# Prints one "ok: ..." line per check and "N passed, M failed" at the end.
set -uo pipefail
bin=${1:?usage: openssl-checks.sh <tlsmint-operator binary>}
work=$(mktemp -d)
pid=
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
fail() { echo "FAILED: $*"; failed=$((failed + 1)); }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

http=$(free_port)
grpc=$(free_port)
token=openssl-root-token
"$bin" dev --dev-root-token-id "$token" --http-addr "127.0.0.1:$http" --grpc-addr "127.0.0.1:$grpc" \
  --crl-batch-window 100ms --log-level warn >"$work/dev.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$http"
for _ in $(seq 1 100); do
  curl -sf "$url/v1/sys/health" >/dev/null && break
  sleep 0.1
done

issue() { # name -> writes $work/$1.{crt,key,serial}
  curl -sf -H "X-Vault-Token: $token" -d "{\"common_name\":\"$1\",\"ttl\":\"1h\"}" \
    "$url/v1/pki_int/issue/web-server" >"$work/$1.json" || return 1
  python3 - "$work" "$1" <<'PY'
import json, sys
work, name = sys.argv[1], sys.argv[2]
d = json.load(open(f"{work}/{name}.json"))["data"]
open(f"{work}/{name}.crt", "w").write(d["certificate"] + "\n")
open(f"{work}/{name}.serial", "w").write(d["serial_number"])
PY
}

curl -sf "$url/v1/pki/ca/pem" >"$work/root.pem" && curl -sf "$url/v1/pki_int/ca/pem" >"$work/int.pem" \
  && ok "fetched the root and intermediate CA" || fail "fetching the CA certificates"
issue good.example.com && issue bad.example.com && ok "issued two certificates" || fail "issuing certificates"

if openssl verify -CAfile "$work/root.pem" -untrusted "$work/int.pem" "$work/good.example.com.crt" >/dev/null; then
  ok "openssl verify: chain of an issued certificate"
else fail "openssl verify: chain"; fi

ocsp() { # cert -> prints the status line
  openssl ocsp -issuer "$work/int.pem" -cert "$1" -url "$url/v1/pki_int/ocsp" \
    -CAfile "$work/root.pem" -VAfile "$work/int.pem" -resp_text 2>&1
}
out=$(ocsp "$work/bad.example.com.crt")
if grep -q "bad.example.com.crt: good" <<<"$out" && grep -q "Response verify OK" <<<"$out"; then
  ok "openssl ocsp (POST): good before revocation, response signature verified"
else fail "openssl ocsp good: $out"; fi

serial=$(cat "$work/bad.example.com.serial")
curl -sf -H "X-Vault-Token: $token" -d "{\"serial_number\":\"$serial\"}" "$url/v1/pki_int/revoke" >/dev/null \
  && ok "revoked $serial" || fail "revoking $serial"

out=$(ocsp "$work/bad.example.com.crt")
if grep -q "bad.example.com.crt: revoked" <<<"$out"; then
  ok "openssl ocsp (POST): revoked after revocation"
else fail "openssl ocsp revoked: $out"; fi
out=$(ocsp "$work/good.example.com.crt")
if grep -q "good.example.com.crt: good" <<<"$out"; then ok "openssl ocsp: the other certificate stays good"
else fail "openssl ocsp other: $out"; fi

# GET form: base64 of the DER request, URL-encoded.
openssl ocsp -issuer "$work/int.pem" -cert "$work/bad.example.com.crt" -no_nonce -reqout "$work/req.der" >/dev/null 2>&1
b64=$(base64 -w0 "$work/req.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -sf "$url/v1/pki_int/ocsp/$b64" -o "$work/resp.der"
out=$(openssl ocsp -respin "$work/resp.der" -issuer "$work/int.pem" -cert "$work/bad.example.com.crt" \
  -CAfile "$work/root.pem" -VAfile "$work/int.pem" 2>&1)
if grep -q "revoked" <<<"$out" && grep -q "Response verify OK" <<<"$out"; then
  ok "OCSP over GET: revoked, signature verified"
else fail "OCSP GET: $out"; fi

sleep 0.5
curl -sf "$url/v1/pki_int/crl/pem" >"$work/crl.pem"
cat "$work/int.pem" "$work/root.pem" >"$work/chain.pem"
if openssl crl -in "$work/crl.pem" -noout -CAfile "$work/chain.pem" 2>&1 | grep -q "verify OK"; then
  ok "openssl crl: CRL signature verified"
else fail "openssl crl"; fi
if openssl crl -in "$work/crl.pem" -noout -text | grep -qi "$(tr -d ':' <<<"$serial")"; then
  ok "openssl crl: lists the revoked serial"
else fail "CRL does not list $serial"; fi
curl -sf "$url/v1/pki_int/crl" -o "$work/crl.der"
if openssl crl -inform DER -in "$work/crl.der" -noout 2>/dev/null; then ok "DER CRL parses"; else fail "DER CRL"; fi

out=$(openssl verify -crl_check -CRLfile "$work/crl.pem" -CAfile "$work/root.pem" -untrusted "$work/int.pem" \
  "$work/bad.example.com.crt" 2>&1)
if grep -q "certificate revoked" <<<"$out"; then ok "openssl verify -crl_check: revoked certificate refused"
else fail "verify -crl_check revoked: $out"; fi
if openssl verify -crl_check -CRLfile "$work/crl.pem" -CAfile "$work/root.pem" -untrusted "$work/int.pem" \
  "$work/good.example.com.crt" >/dev/null 2>&1; then
  ok "openssl verify -crl_check: good certificate accepted"
else fail "verify -crl_check good"; fi

if grep -q "PRIVATE KEY" "$work/dev.log"; then fail "a private key reached the log"; else ok "no private key in the log"; fi

echo
echo "openssl: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
