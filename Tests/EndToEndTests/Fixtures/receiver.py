#!/usr/bin/env python3
"""A webhook receiver for the end-to-end tests: real HTTP/1.1 on loopback, an independent
signature check with Python's hmac module, and a JSON line per request in a log file.

usage: receiver.py DIR [HOST] [CERT KEY [CLIENT_CA]]
  writes DIR/port once listening, appends DIR/requests.jsonl, reads DIR/secrets.json
  {"/path": "secret"} on each request; listens on HOST (default 127.0.0.1), with TLS when a
  certificate and key are given, demanding a client certificate CLIENT_CA signed when given.

Paths choose the answer:
  /status/NNN[/...]   answer NNN with a short body
  /hang[/...]         accept, read the request, never answer
  /big/NNN            answer NNN with a 1 MiB body
  /cut/NNN            send the status line and headers of NNN, then close mid-body
  /redirect           302 to /redirect-target (must never be followed)
  /slow/MS/NNN        wait MS milliseconds, then answer NNN
  /garbage            answer with bytes that are not HTTP
  /reset              close the connection with a TCP reset instead of answering
  /huge/NNN           answer NNN with a body of 2 GiB (streamed until the client stops reading)
  /retryafter/V/NNN   answer NNN with "Retry-After: V" (underscores stand for spaces)

Ordering keys (issue 23): a request whose event data has a "key" member is counted in flight
per path and key ("active_same_key" in its line: more than 1 means two of one key overlapped);
DIR/failing_keys.json, a list of "KEY" or "KEY/SEQUENCE" (X-Keysat-Sequence), makes the
requests it names answer 500 whatever the path says.
"""
import base64, hashlib, hmac, json, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
LOCK = threading.Lock()
STATE = {"open": 0, "max_open": 0, "active": 0}
ACTIVE_BY_KEY = {}


def data_key(body):
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    return data.get("key") if isinstance(data, dict) else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATE["open"] += 1
            STATE["max_open"] = max(STATE["max_open"], STATE["open"])

    def finish(self):
        try:
            super().finish()
        finally:
            with LOCK:
                STATE["open"] -= 1

    def log_message(self, *args):
        pass

    def send_response(self, *args, **kwargs):
        release = getattr(self, "release_key", None)
        if release is not None:
            release()
        super().send_response(*args, **kwargs)

    def do_POST(self):
        with LOCK:
            STATE["active"] += 1
            active = STATE["active"]
        try:
            self.handle_post(active)
        finally:
            with LOCK:
                STATE["active"] -= 1

    def handle_post(self, active):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        key = data_key(body)
        group = (self.path, key)
        with LOCK:
            ACTIVE_BY_KEY[group] = ACTIVE_BY_KEY.get(group, 0) + 1
            active_same_key = ACTIVE_BY_KEY[group]
        released = []

        # A request stops counting as active as its answer starts (send_response): once the
        # answer is out the sender may start the next of the key, possibly before this thread
        # runs again; a slow answer's wait still counts.
        def release():
            if not released:
                released.append(True)
                with LOCK:
                    ACTIVE_BY_KEY[group] -= 1
        self.release_key = release
        try:
            self.handle_keyed(body, key, active, active_same_key)
        finally:
            release()

    def handle_keyed(self, body, key, active, active_same_key):
        try:
            with open(os.path.join(DIR, "secrets.json")) as f:
                secrets = json.load(f)
        except FileNotFoundError:
            secrets = {}
        prefix = next((p for p in sorted(secrets, key=len, reverse=True) if self.path.startswith(p)), None)
        signature_ok = None
        if prefix is not None:
            expected = "sha256=" + hmac.new(secrets[prefix].encode(), body, hashlib.sha256).hexdigest()
            signature_ok = hmac.compare_digest(expected, self.headers.get("X-Keysat-Signature", ""))
        record = {
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_b64": base64.b64encode(body).decode(),
            "signature_ok": signature_ok,
            "received_at": time.time(),
            "open_connections": STATE["open"],
            "active_requests": active,
            "active_same_key": active_same_key,
        }
        with LOCK:
            with open(os.path.join(DIR, "requests.jsonl"), "a") as f:
                f.write(json.dumps(record) + "\n")
        if key is not None and self.key_fails(key):
            if self.path.startswith("/slow/"):
                time.sleep(int(self.path.split("/")[2]) / 1000)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.answer()

    def key_fails(self, key):
        try:
            with open(os.path.join(DIR, "failing_keys.json")) as f:
                failing = json.load(f)
        except FileNotFoundError:
            return False
        return str(key) in failing or "%s/%s" % (key, self.headers.get("X-Keysat-Sequence")) in failing

    def answer(self):
        parts = self.path.strip("/").split("/")
        kind = parts[0]
        if kind == "hang":
            time.sleep(3600)
            return
        if kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/redirect-target")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "garbage":
            self.wfile.write(b"\x00\xffTHIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
            return
        if kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if kind == "huge":
            self.send_response(int(parts[1]))
            self.send_header("Content-Length", str(2 << 30))
            self.end_headers()
            chunk = b"h" * 65536
            try:
                for _ in range((2 << 30) // len(chunk)):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True
            return
        if kind == "retryafter":
            self.send_response(int(parts[2]))
            self.send_header("Retry-After", parts[1].replace("_", " "))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if kind == "slow":
            time.sleep(int(parts[1]) / 1000)
            parts = parts[1:]
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 204
        if kind == "big":
            body = (b"x" * 1023 + b"\n") * 1024
        elif kind == "cut":
            self.send_response(status)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"partial")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        else:
            body = ("receiver says %d: " % status + "e" * 300).encode() if status >= 300 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


host = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
server = Server((host, 0), Handler)
if len(sys.argv) > 4:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[3], sys.argv[4])
    if len(sys.argv) > 5:
        # Mutual TLS: only clients with a certificate this CA signed get in.
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(sys.argv[5])
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(os.path.join(DIR, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
server.serve_forever()
