#!/usr/bin/env python3
"""One "pod" of the demo's sample workload: an HTTP service instrumented with the official
Prometheus client, counting its requests in http_requests_total.

    workload.py --port N [--pod NAME]

GET /            does a little work and answers 200 (counted)
GET /metrics     Prometheus text exposition (http_requests_total{method,code}, ...)
GET /healthz     200, not counted

Prometheus adds the namespace and pod labels when it scrapes (as Kubernetes service
discovery does in a cluster), so the adapter rules see
http_requests_total{namespace="demo",pod="<NAME>",...}.
"""

from __future__ import annotations

import argparse
import hashlib
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

REQUESTS = Counter("http_requests", "HTTP requests served.", ["method", "code"])
LATENCY = Histogram("http_request_duration_seconds", "Time to serve a request.", ["method"])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as behind a Service
    pod = "pod"

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/metrics":
            self.reply(200, generate_latest(), CONTENT_TYPE_LATEST)
        elif self.path == "/healthz":
            self.reply(200, b"ok\n")
        else:
            with LATENCY.labels("GET").time():
                digest = hashlib.sha256(self.path.encode() * 64).hexdigest()[:16]
                self.reply(200, f"hello from {self.pod} ({digest})\n".encode())
            REQUESTS.labels("GET", "200").inc()

    def reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # quiet: the load generator sends many requests
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pod", default="pod")
    args = parser.parse_args()
    Handler.pod = args.pod
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
