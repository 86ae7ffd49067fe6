#!/usr/bin/env bash
# End-to-end: the official Auth0 SDKs (auth0-python and npm `auth0`), unchanged, against `helloguard serve`.
#
#   HELLOGUARD_SDK_PYTHON=/venv/bin/python HELLOGUARD_SDK_NODE_MODULES=/sdk/node_modules tests/sdk/run.sh
#
# HELLOGUARD_BIN         helloguard binary (default: target/release/helloguard)
# HELLOGUARD_SDK_PYTHON  a python that has auth0-python installed
# HELLOGUARD_SDK_NODE_MODULES  a node_modules folder that has `auth0` installed
#
# Installs nothing. Starts helloguard on a free loopback port (admin listener off) with the built-in demo
# upstream and a fresh data directory, seeds one demo user per SDK variant through the proxy with curl
# (logins make sessions, /oauth/token makes refresh tokens), reads their ids back through the Management API,
# mints two bearer tokens with `helloguard token`, runs python_sdk.py and node_sdk.mjs, stops the proxy.
# Exit status: 0 when every call passed, 1 when any failed, 2 on a setup error.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${HELLOGUARD_BIN:-$ROOT/target/release/helloguard}
PY=${HELLOGUARD_SDK_PYTHON:-}
NODE_MODULES=${HELLOGUARD_SDK_NODE_MODULES:-}

die() { echo "run.sh: $*" >&2; exit 2; }
[ -x "$BIN" ] || die "no helloguard binary at $BIN (set HELLOGUARD_BIN)"
[ -n "$PY" ] && "$PY" -c 'import auth0.management' 2>/dev/null \
    || die "HELLOGUARD_SDK_PYTHON must name a python with auth0-python (got '${PY}')"
[ -n "$NODE_MODULES" ] && [ -f "$NODE_MODULES/auth0/package.json" ] \
    || die "HELLOGUARD_SDK_NODE_MODULES must name a node_modules folder with auth0 (got '${NODE_MODULES}')"
command -v node >/dev/null || die "node not found"
command -v curl >/dev/null || die "curl not found"

START=$(date +%s.%N)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hg-sdk.XXXXXX")
DATA=$WORK/data
PID=
serve_log() {
    echo "--- helloguard stderr (last 20 lines)" >&2
    tail -n 20 "$WORK/serve.err" >&2 || true
}
cleanup() {
    local rc=$?
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
# Until the SDK tests start, any failing command is a setup error (exit 2), with the proxy's log.
trap 'echo "run.sh: setup failed at line $LINENO" >&2; serve_log; exit 2' ERR

# No admin listener (so runs never clash on 9090); a rate limit no run reaches (the SDKs retry 429s slowly);
# a short drain so the stop at the end never waits on an idle keep-alive connection.
cat > "$WORK/helloguard.toml" <<EOF
[server]
drain_timeout = "1s"

[admin]
listen = "off"

[api]
rate_limit_burst = 100000
rate_limit_per_second = 100000
EOF
"$BIN" check-config "$WORK/helloguard.toml" >/dev/null

# Port 0: the kernel picks a free port and serve prints the one it got.
"$BIN" serve --config "$WORK/helloguard.toml" --data-dir "$DATA" --listen 127.0.0.1:0 \
    >"$WORK/serve.out" 2>"$WORK/serve.err" &
PID=$!
PORT=
for _ in $(seq 1 100); do
    PORT=$(sed -n 's|^helloguard listening on https://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$WORK/serve.err")
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || { serve_log; die "helloguard serve exited at start"; }
    sleep 0.1
done
[ -n "$PORT" ] || die "helloguard serve did not listen within 10 s"
DOMAIN=127.0.0.1:$PORT
U=https://$DOMAIN
CA=$DATA/tls/self-signed.crt
[ -s "$CA" ] || die "no certificate at $CA"
echo "helloguard $("$BIN" --version | awk '{print $2}') on $U (data $DATA)"

TOKEN=$("$BIN" token --config "$WORK/helloguard.toml" --data-dir "$DATA" --ttl 900 --sub sdk-e2e \
    --scopes read:sessions,update:sessions,delete:sessions,read:refresh_tokens,update:refresh_tokens,delete:refresh_tokens)
READONLY_TOKEN=$("$BIN" token --config "$WORK/helloguard.toml" --data-dir "$DATA" --ttl 900 --sub sdk-e2e-ro \
    --scopes read:sessions,read:refresh_tokens)

# --- Seeding, through the proxy as a browser and an app would: per variant, a demo user with 3 sessions
# (3 logins, 3 cookie jars) and 6 refresh tokens (one requested with the first session's cookie, so linked to it).
hgcurl() { curl -sS --fail --cacert "$CA" "$@"; }
VARIANTS="python-sync python-async node node-legacy"
for v in $VARIANTS; do
    for s in 1 2 3; do
        hgcurl -o /dev/null -c "$WORK/$v.jar$s" -d "username=sdk-$v" "$U/login"
    done
    hgcurl -o /dev/null -b "$WORK/$v.jar1" -d grant_type=password -d "username=sdk-$v" "$U/oauth/token"
    for _ in 1 2 3 4 5; do
        hgcurl -o /dev/null -d grant_type=password -d "username=sdk-$v" "$U/oauth/token"
    done
    hgcurl -H "Authorization: Bearer $TOKEN" "$U/api/v2/users/demo%7Csdk-$v/sessions?take=100" >"$WORK/$v.sessions.json"
    hgcurl -H "Authorization: Bearer $TOKEN" "$U/api/v2/users/demo%7Csdk-$v/refresh-tokens?take=100" >"$WORK/$v.tokens.json"
done
# The ids, sorted out by what the API says: the main session is the one the linked token names.
"$PY" - "$WORK" $VARIANTS >"$WORK/seed.json" <<'EOF'
import json, sys
work, variants = sys.argv[1], sys.argv[2:]
seed = {}
for v in variants:
    sessions = json.load(open(f"{work}/{v}.sessions.json"))["sessions"]
    tokens = json.load(open(f"{work}/{v}.tokens.json"))["tokens"]
    assert len(sessions) == 3 and len(tokens) == 6, (v, len(sessions), len(tokens))
    linked = [t for t in tokens if t["session_id"]]
    assert len(linked) == 1, (v, linked)
    main = linked[0]["session_id"]
    seed[v] = {
        "user_id": f"demo|sdk-{v}",
        "sessions": {"main": main, "others": [s["id"] for s in sessions if s["id"] != main]},
        "tokens": {"linked": linked[0]["id"], "free": [t["id"] for t in tokens if not t["session_id"]]},
    }
    assert sessions[0]["id"] == main, "the main session was created first"
json.dump(seed, sys.stdout, indent=1)
EOF
SEEDED=$(date +%s.%N)
trap - ERR

# --- The SDKs. Each trusts only helloguard's certificate: httpx reads SSL_CERT_FILE, node NODE_EXTRA_CA_CERTS.
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
ARGS=(--domain "$DOMAIN" --token "$TOKEN" --readonly-token "$READONLY_TOKEN" --ca "$CA" --seed "$WORK/seed.json")
status=0
SSL_CERT_FILE=$CA "$PY" "$HERE/python_sdk.py" "${ARGS[@]}" || status=1
NODE_EXTRA_CA_CERTS=$CA node "$HERE/node_sdk.mjs" --node-modules "$NODE_MODULES" "${ARGS[@]}" || status=1

kill -0 "$PID" 2>/dev/null || { echo "run.sh: helloguard serve died during the run" >&2; serve_log; status=1; }
END=$(date +%s.%N)
awk -v a="$START" -v b="$SEEDED" -v c="$END" \
    'BEGIN { printf "run.sh: %.1f s (start and seed %.1f s, SDK calls %.1f s)\n", c - a, b - a, c - b }'
exit $status
