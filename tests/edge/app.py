"""The app behind nginx in tests/edge/run.sh: it records every request it receives and trusts
the identity headers, as a legacy app would.

    python3 app.py PORT RECORDS

Every request is appended to RECORDS (JSON lines) before it is answered, so a check that reads
the file after its response sees it: {"method", "target" (the request target exactly as
received), "headers" ([[name, value], ...] as received, in order, duplicates kept), "body"}.
The answer: for a request accepting text/html, a page that shows user_id and group_id (#user,
#group), the request (#request: method and target) and its form body (#body), has a form that
POSTs a note to /app/note, and sets a cookie of the app's own (app_theme); otherwise the record
as JSON.
`GET /ready` answers 200 without being recorded.
"""

import html
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
RECORDS = sys.argv[2]
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with nginx's upstream pool
    # The head and the body go out in two writes: without this, Nagle's algorithm holds the
    # body until nginx's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True
    server_version = "edge-app"

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass

    def handle_one(self):
        if self.path == "/ready":
            self.answer(200, "text/plain", b"ready\n")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        record = {
            "method": self.command,
            "target": self.path,
            "headers": [[name, value] for name, value in self.headers.items()],
            "body": body.decode("utf-8", "replace"),
        }
        with LOCK, open(RECORDS, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        lower = {name.lower(): value for name, value in self.headers.items()}
        if "text/html" in lower.get("accept", ""):
            page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>The app</title></head><body><h1>The app</h1>
<p>Signed in as user <strong id="user">{html.escape(lower.get("user_id", ""))}</strong>
in group <strong id="group">{html.escape(lower.get("group_id", ""))}</strong>.</p>
<p id="request">{html.escape(self.command)} {html.escape(self.path)}</p>
<p id="body">{html.escape(record["body"])}</p>
<form method="post" action="/app/note"><label for="note">Note</label> <input id="note"
name="note"> <button type="submit">Save</button></form>
<p><a href="/open/logout">Sign out</a></p></body></html>
"""
            self.answer(200, "text/html; charset=utf-8", page.encode(),
                        [("Set-Cookie", "app_theme=dark; Path=/; HttpOnly; SameSite=Lax")])
        else:
            self.answer(200, "application/json", json.dumps(record).encode())

    def answer(self, status, content_type, body, extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_one


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # nginx closing a kept-alive upstream connection (at its exit) is no error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


if __name__ == "__main__":
    server = Server(("127.0.0.1", PORT), Handler)
    server.serve_forever()
