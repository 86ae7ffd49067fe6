#!/usr/bin/env bash
# Regenerates the captures in this folder: real clients on this machine against a local
# `openssl s_server` on loopback, captured with tcpdump (and tshark for the pcapng one), then
# writes expected.jsonl with `helloguard replay --all-hellos` and tshark-ja3.tsv with tshark's
# own JA3 for the cross-check in tests/integration/replay_pcaps.rs. Needs: openssl, curl, python3, tcpdump,
# tshark (Debian: apt-get install -y tcpdump tshark) and root (packet capture).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=48443
host=helloguard.test

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=$host" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

server() { # extra s_server flags...
    openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$work/cert.pem" -key "$work/key.pem" -www "$@" \
        >/dev/null 2>&1 &
    server_pid=$!
    sleep 0.5
}
tshark_lo() { # tshark with tcpdump's argument order: [options] -w FILE FILTER
    exec tshark -q -i lo "$1" "$2" -f "$3"
}
capture_start() { # file, capture tool args...
    local file=$1; shift
    "$@" -w "$work/$file" "tcp port $port" >/dev/null 2>&1 &
    capture_pid=$!
    sleep 1.5
    mv_to=$file
}
capture_stop() {
    sleep 1
    kill -INT "$capture_pid"; wait "$capture_pid" || true
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
    cp "$work/$mv_to" "$mv_to"
}
request() { printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.3; }

# curl (TLS 1.3, ALPN h2/http1.1), Ethernet on lo, nanosecond pcap.
server
capture_start curl.pcap tcpdump -i lo -U --time-stamp-precision=nano
curl -sk --resolve "$host:$port:127.0.0.1" "https://$host:$port/" >/dev/null
capture_stop

# openssl s_client forced to TLS 1.2.
server
capture_start openssl-tls12.pcap tcpdump -i lo -U
request | openssl s_client -quiet -connect "127.0.0.1:$port" -servername "$host" -tls1_2 >/dev/null 2>&1
capture_stop

# openssl s_client TLS 1.3, then resumed from the saved session (pre_shared_key).
server
capture_start openssl-tls13-resumed.pcap tcpdump -i lo -U
request | openssl s_client -connect "127.0.0.1:$port" -servername "$host" -tls1_3 -sess_out "$work/sess.pem" >/dev/null 2>&1
request | openssl s_client -connect "127.0.0.1:$port" -servername "$host" -tls1_3 -sess_in "$work/sess.pem" >/dev/null 2>&1
capture_stop

# HelloRetryRequest: the server accepts only P-256, the client's key share is X25519; pcapng by tshark.
server -groups P-256
capture_start openssl-hrr.pcapng tshark_lo
request | openssl s_client -quiet -connect "127.0.0.1:$port" -servername "$host" -tls1_3 -groups X25519:P-256 >/dev/null 2>&1
capture_stop

# Python's ssl module with ALPN, captured on the "any" device (Linux SLL2 link type).
server
capture_start python-ssl.pcap tcpdump -i any -U
python3 - "$host" "$port" <<'PY'
import socket, ssl, sys
host, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", port)) as raw, ctx.wrap_socket(raw, server_hostname=host) as tls:
    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
    tls.recv(100)
PY
capture_stop

files=(curl.pcap openssl-tls12.pcap openssl-tls13-resumed.pcap openssl-hrr.pcapng python-ssl.pcap)
cargo run -q --release -- replay --all-hellos "${files[@]}" > expected.jsonl
for f in "${files[@]}"; do
    tshark -r "$f" -Y 'tls.handshake.type == 1' -T fields -E separator=/t \
        -e tcp.srcport -e tls.handshake.ja3_full -e tls.handshake.ja3 | sed "s|^|$f\t|"
done > tshark-ja3.tsv
