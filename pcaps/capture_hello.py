#!/usr/bin/env python3
"""Capture the raw ClientHello bytes a real TLS client sends, as the TLS record stream.

Listens on 127.0.0.1:PORT, accepts one connection, reads TLS records until the first handshake
message is complete, writes exactly those record bytes to OUT and closes the connection (the client
sees a failed handshake, which is expected). Usage:

    python3 pcaps/capture_hello.py PORT OUT &
    curl -sk https://127.0.0.1:PORT/ ; wait
"""
import socket
import sys


def read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def main():
    port, out = int(sys.argv[1]), sys.argv[2]
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    conn, _ = server.accept()
    stream, message = b"", b""
    while len(message) < 4 or len(message) < 4 + int.from_bytes(message[1:4], "big"):
        header = read_exact(conn, 5)
        if header[0] != 22:
            raise SystemExit(f"not a handshake record: {header.hex()}")
        payload = read_exact(conn, int.from_bytes(header[3:5], "big"))
        stream += header + payload
        message += payload
    with open(out, "wb") as f:
        f.write(stream)
    conn.close()
    print(f"{out}: {len(stream)} bytes of records, handshake message {len(message)} bytes")


if __name__ == "__main__":
    main()
