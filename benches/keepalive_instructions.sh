#!/usr/bin/env bash
# Instructions per keep-alive request through `helloguard serve`, counted with callgrind (the
# README's "Per keep-alive request" paragraph): an nginx origin answering `GET /hello` on core 0,
# helloguard under callgrind on core 1, h2load --h1 on 16 connections; instrumentation starts after
# a warm-up and is zeroed before the measured requests, so startup and the pool's first connections
# are left out (the 16 handshakes of the measured run are in, about 1k instructions per request).
#
# Needs valgrind, nginx, h2load (apt-get install valgrind nginx nghttp2-client) and a release build.
# Usage: bash benches/keepalive_instructions.sh [REQUESTS]     (default 20000; HELLOGUARD_BIN=path measures
# another build; HELLOGUARD_BENCH_LOG=helloguard=info measures with serve's default log filter, spans on)
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-20000}"
binary="${HELLOGUARD_BIN:-target/release/helloguard}"
[ -x "$binary" ] || cargo build --release
for tool in valgrind callgrind_control nginx h2load taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
work="$(mktemp -d)"
origin_port=18480 proxy_port=18481
cleanup() {
  [ -f "$work/origin/nginx.pid" ] && kill "$(cat "$work/origin/nginx.pid")" 2>/dev/null || true
  pkill -f "callgrind.*$work" 2>/dev/null || true
  sleep 1
  [ -n "${KEEP_CALLGRIND:-}" ] && cp "$work"/callgrind.out.* "$KEEP_CALLGRIND"; rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/origin" "$work/proxy"
cat > "$work/origin/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $work/origin/nginx.pid;
error_log $work/origin/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/origin/b; proxy_temp_path $work/origin/p; fastcgi_temp_path $work/origin/f;
  uwsgi_temp_path $work/origin/u; scgi_temp_path $work/origin/s;
  server { listen 127.0.0.1:$origin_port; location / { default_type application/json; return 200 '{"ok":true}'; } }
}
EOF
taskset -c 0 nginx -p "$work/origin" -c "$work/origin/nginx.conf"

cat > "$work/proxy/helloguard.toml" <<EOF
[server]
listen = "127.0.0.1:$proxy_port"
upstream = "http://127.0.0.1:$origin_port"
[admin]
listen = "off"
[audit]
path = "$work/proxy/audit.jsonl"
[store]
path = "$work/proxy"
EOF
RUST_LOG="${HELLOGUARD_BENCH_LOG:-warn}" taskset -c 1 valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" "$binary" serve --config "$work/proxy/helloguard.toml" \
  > "$work/proxy/log" 2>&1 &
url="https://127.0.0.1:$proxy_port/hello"
for _ in $(seq 120); do curl -sk "$url" >/dev/null && break; sleep 0.5; done
pid=$(pgrep -f "callgrind.*$work" | head -1)
load() { taskset -c 0 h2load --h1 -c 16 -t 1 -n "$1" "$url" | grep -q "$1 succeeded" || { echo "h2load failed" >&2; exit 1; }; }
callgrind_control -i on "$pid" >/dev/null 2>&1
load 2000
callgrind_control -z "$pid" >/dev/null 2>&1
load "$requests"
callgrind_control -d "$pid" >/dev/null 2>&1
total=$(callgrind_annotate "$work/callgrind.out".* 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "keep-alive: $total instructions for $requests requests: $((total / requests)) per request"
