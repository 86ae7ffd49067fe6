#!/usr/bin/env python3
"""Capture a fresh and a resumed ClientHello from headless Firefox, as TLS record streams.

Firefox offers a TLS 1.3 session ticket (pre_shared_key, 0x0029) on a new connection to a server
that gave it one earlier in the same process, so its second hello differs from its first. This
script records both from one browser:

- an HTTPS server (Python `ssl`, TLS 1.3 only, self-signed P-256 certificate for localhost made
  with openssl), which answers every request with `Connection: close`: Firefox would otherwise send
  the second request on the first, kept-alive connection;
- a relay in front of it that keeps, for every client connection, the TLS records holding the first
  handshake message (the bytes capture_hello.py would write) and passes everything through, so the
  handshakes complete and the server's tickets reach the browser;
- Firefox ESR driven over Marionette (its built-in remote protocol; no geckodriver), with a fresh
  profile: it loads https://localhost:PORT/ (a fresh hello; the name, not 127.0.0.1, so that the
  hello carries server_name), then the page fetches /second from the same origin on a new
  connection (a resumed hello; Firefox keeps tickets per host and port, so it must be the same).
  /second echoes the Cookie header, which shows that the fetch carried the page's cookie.

Each hello is tied to the request it carried through the relay's upstream port, so a stray extra
connection cannot swap the two; the script fails unless the first has session_ticket (0x0023) and
no pre_shared_key and the second the reverse. Usage, from the repository root (writes
firefox-fresh.bin and firefox-resumed.bin into the folder given, by default pcaps/hellos):

    python3 pcaps/capture_firefox.py

Needs python3, openssl and firefox-esr (runs as root as is). Firefox makes no outside connection or
DNS query: user.js turns off the services that call home and MOZ_DISABLE_NONLOCAL_CONNECTIONS=1
makes any other connection fail.
"""
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from capture_hello import read_exact  # noqa: E402

FIREFOX = "firefox-esr"

# A fresh profile's background services (updates, remote settings, safe browsing, add-on and media
# plugin updates, telemetry, connectivity checks) would otherwise look up or contact Mozilla and
# Google hosts in the first seconds. Marionette applies similar "recommended" prefs itself, but only
# once it is listening, too late for the start-up requests.
PREFS = {
    "app.normandy.enabled": False,
    "app.update.disabledForTesting": True,
    "browser.newtabpage.enabled": False,
    "browser.region.network.url": "",
    "browser.safebrowsing.blockedURIs.enabled": False,
    "browser.safebrowsing.downloads.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage": "about:blank",
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False,
    "extensions.update.enabled": False,
    "media.gmp-manager.updateEnabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "network.dns.disablePrefetch": True,
    "network.http.speculative-parallel-limit": 0,
    "services.settings.server": "data:,#remote-settings-dummy/v1",
    "startup.homepage_welcome_url": "about:blank",
    "toolkit.telemetry.enabled": False,
    "marionette.port": 0,  # any free port; Firefox writes it to <profile>/MarionetteActivePort
}

PAGE = (
    b"<!doctype html><title>fresh</title>"
    b'<link rel="icon" href="data:,">'  # no /favicon.ico request on a connection of its own
    b"<p>fresh"
)

FETCH_SECOND = """
const done = arguments[arguments.length - 1];
fetch("/second").then(r => r.json()).then(done, e => done({error: String(e)}));
"""


def read_hello_records(conn):
    """The records holding the first handshake message, as capture_hello.py delimits them."""
    stream, message = b"", b""
    while len(message) < 4 or len(message) < 4 + int.from_bytes(message[1:4], "big"):
        header = read_exact(conn, 5)
        if header[0] != 22:
            raise ValueError(f"not a handshake record: {header.hex()}")
        payload = read_exact(conn, int.from_bytes(header[3:5], "big"))
        stream += header + payload
        message += payload
    return stream


def extension_types(stream):
    """The extension types of the ClientHello in a record stream, in order."""
    payload, i = b"", 0
    while i < len(stream):
        length = int.from_bytes(stream[i + 3:i + 5], "big")
        payload += stream[i + 5:i + 5 + length]
        i += 5 + length
    if payload[0] != 1:
        raise ValueError("not a ClientHello")
    body = payload[4:4 + int.from_bytes(payload[1:4], "big")]
    i = 2 + 32  # legacy_version, random
    i += 1 + body[i]  # legacy_session_id
    i += 2 + int.from_bytes(body[i:i + 2], "big")  # cipher_suites
    i += 1 + body[i]  # legacy_compression_methods
    end = i + 2 + int.from_bytes(body[i:i + 2], "big")
    i += 2
    types = []
    while i < end:
        types.append(int.from_bytes(body[i:i + 2], "big"))
        i += 4 + int.from_bytes(body[i + 2:i + 4], "big")
    return types


def self_signed(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def listen():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


def serve_forever(sock, handle):
    def loop():
        while True:
            conn, peer = sock.accept()
            threading.Thread(target=handle, args=(conn, peer), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()


class Server:
    """TLS 1.3 HTTP/1.1 server; `requests` maps the client's port to the paths it asked for."""

    def __init__(self, cert, key):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["http/1.1"])
        self.requests = {}
        self.sock = listen()
        self.port = self.sock.getsockname()[1]
        serve_forever(self.sock, self.handle)

    def handle(self, conn, peer):
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = tls.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                self.requests.setdefault(peer[1], []).append(path)
                if path == "/second":
                    kind = "application/json"
                    body = json.dumps({"cookie": headers.get("Cookie")}).encode()
                    extra = b""
                else:
                    kind, body = "text/html", PAGE
                    extra = b"Set-Cookie: helloguard=1; Path=/; Secure; SameSite=Lax\r\n"
                tls.sendall(
                    f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n".encode() + extra + b"\r\n" + body
                )
        except (OSError, ssl.SSLError):
            pass  # a client that gave up; the relay keeps its hello anyway


class Relay:
    """TCP relay to `upstream` that keeps each client connection's ClientHello records.

    `hellos` is a list of (upstream local port, record stream), in the order clients connected.
    """

    def __init__(self, upstream):
        self.upstream = upstream
        self.hellos = []
        self.sock = listen()
        self.port = self.sock.getsockname()[1]
        serve_forever(self.sock, self.handle)

    def handle(self, client, _peer):
        with client, socket.create_connection(("127.0.0.1", self.upstream)) as server:
            try:
                hello = read_hello_records(client)
            except (EOFError, ValueError, OSError):
                return
            self.hellos.append((server.getsockname()[1], hello))
            server.sendall(hello)
            back = threading.Thread(target=pipe, args=(server, client), daemon=True)
            back.start()
            pipe(client, server)
            back.join()


def pipe(source, sink):
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class Firefox:
    """Headless Firefox with a fresh profile and a Marionette session (acceptInsecureCerts)."""

    def __init__(self, profile, timeout=60):
        with open(os.path.join(profile, "user.js"), "w") as f:
            f.writelines(f"user_pref({json.dumps(k)}, {json.dumps(v)});\n" for k, v in PREFS.items())
        home = os.path.join(os.path.dirname(profile), "home")
        os.mkdir(home)
        # MOZ_DISABLE_NONLOCAL_CONNECTIONS: necko refuses every non-loopback connection, and release
        # builds honour the services.settings.server override only with it set. No crash helper,
        # no crash pings. HOME: Firefox writes ~/.config/mozilla and ~/Downloads even with --profile.
        env = dict(os.environ, HOME=home, MOZ_DISABLE_NONLOCAL_CONNECTIONS="1",
                   MOZ_CRASHREPORTER_DISABLE="1")
        self.log = open(os.path.join(profile, "firefox.log"), "wb")
        self.proc = subprocess.Popen(
            [FIREFOX, "--headless", "--marionette", "--no-remote", "--profile", profile],
            env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
        )
        self.sock, self.buffer, self.last_id = None, b"", 0
        port_file, deadline = os.path.join(profile, "MarionetteActivePort"), time.monotonic() + timeout
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Firefox did not start Marionette (exit status {self.proc.poll()})")
            time.sleep(0.05)
        self.sock = socket.create_connection(("127.0.0.1", int(open(port_file).read())), timeout=timeout)
        greeting = self.receive()
        if greeting.get("marionetteProtocol") != 3:
            raise RuntimeError(f"unexpected Marionette greeting {greeting}")
        self.command("WebDriver:NewSession", {"acceptInsecureCerts": True})

    def receive(self):
        while b":" not in self.buffer:
            self.fill()
        length, _, self.buffer = self.buffer.partition(b":")
        while len(self.buffer) < int(length):
            self.fill()
        message, self.buffer = self.buffer[:int(length)], self.buffer[int(length):]
        return json.loads(message)

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise RuntimeError("Marionette closed the connection")
        self.buffer += chunk

    def command(self, name, params=None):
        self.last_id += 1
        body = json.dumps([0, self.last_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(body), body))
        while True:
            kind, reply_id, error, result = self.receive()
            if kind == 1 and reply_id == self.last_id:
                break
        if error:
            raise RuntimeError(f"{name}: {error.get('error')}: {error.get('message')}")
        return result

    def close(self):
        if self.sock:
            try:
                self.command("Marionette:Quit")  # needs, and ends, the session
            except (OSError, RuntimeError):
                pass
            self.sock.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "hellos")
    work = tempfile.mkdtemp(prefix="capture-firefox-")
    try:
        server = Server(*self_signed(work))
        relay = Relay(server.port)
        profile = os.path.join(work, "profile")
        os.mkdir(profile)
        firefox = Firefox(profile)
        try:
            firefox.command("WebDriver:Navigate", {"url": f"https://localhost:{relay.port}/"})
            second = firefox.command("WebDriver:ExecuteAsyncScript", {"script": FETCH_SECOND, "args": []})
        finally:
            firefox.close()
        print(f"fetch('/second') answered {second['value']}")
        found = {}
        for number, (port, hello) in enumerate(relay.hellos, 1):
            paths = server.requests.get(port, [])
            types = extension_types(hello)
            print(f"connection {number}: {paths} {len(hello)} bytes, extensions "
                  + " ".join(f"{t:04x}" for t in types))
            for path, name in (("/", "firefox-fresh.bin"), ("/second", "firefox-resumed.bin")):
                if path in paths:
                    found[name] = (hello, types)
        assert set(found) == {"firefox-fresh.bin", "firefox-resumed.bin"}, "missing a connection"
        fresh, resumed = found["firefox-fresh.bin"][1], found["firefox-resumed.bin"][1]
        assert 0x0023 in fresh and 0x0029 not in fresh, "the first hello should be fresh"
        assert 0x0029 in resumed and 0x0023 not in resumed, "the second hello should offer a PSK"
        for name, (hello, _) in found.items():
            with open(os.path.join(out, name), "wb") as f:
                f.write(hello)
            print(f"{os.path.join(out, name)}: {len(hello)} bytes")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
