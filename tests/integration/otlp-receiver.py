#!/usr/bin/env python3
"""A local OTLP/HTTP receiver for the tracing tests (JSON encoding).

    python3 otlp-receiver.py OUT_FILE

Listens on a kernel-chosen loopback port and prints "LISTENING <port>". Every
POST /v1/traces with Content-Type application/json is appended to OUT_FILE as one line
(the request body, re-serialised compactly) and answered 200 "{}" (an
ExportTraceServiceResponse without rejected spans). Anything else is 404 or 415.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OUT = sys.argv[1]
MAX_BODY = 16 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path != "/v1/traces":
            return self._answer(404, '{"error":"not found"}')
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            return self._answer(415, '{"error":"JSON encoding only"}')
        n = int(self.headers.get("Content-Length", "0"))
        if n <= 0 or n > MAX_BODY:
            return self._answer(400, '{"error":"bad length"}')
        try:
            doc = json.loads(self.rfile.read(n))
        except ValueError:
            return self._answer(400, '{"error":"not JSON"}')
        with open(OUT, "a", encoding="utf-8") as f:
            f.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return self._answer(200, "{}")

    def log_message(self, fmt, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"LISTENING {server.server_address[1]}", flush=True)
server.serve_forever()
