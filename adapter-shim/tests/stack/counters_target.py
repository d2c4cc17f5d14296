#!/usr/bin/env python3
"""A scrape target whose counters grow at fixed rates, so rate() answers are known.

Usage: counters_target.py SERIES=RATE ...   e.g. 'http_requests_total{namespace="prod",pod="web-1"}=12'
Prints {"port": N} on stdout once listening on 127.0.0.1:0; exits when stdin closes.
Rates can be changed at runtime: POST /rates with lines SERIES=RATE.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.time()
LOCK = threading.Lock()
# series -> (value at last change, time of last change, rate per second)
SERIES = {}


def set_rate(series, rate, now):
    value = 0.0
    if series in SERIES:
        v0, t0, r0 = SERIES[series]
        value = v0 + (now - t0) * r0
    SERIES[series] = (value, now, rate)


def parse(line):
    series, _, rate = line.rpartition("=")
    return series.strip(), float(rate)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        now = time.time()
        with LOCK:
            lines = []
            current = None
            for series, (v0, t0, rate) in sorted(SERIES.items()):
                name = series.split("{")[0]
                if name != current:
                    lines.append(f"# TYPE {name} counter")
                    current = name
                lines.append(f"{series} {v0 + (now - t0) * rate:.6f}")
        body = ("\n".join(lines) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        text = self.rfile.read(length).decode()
        now = time.time()
        with LOCK:
            for line in text.splitlines():
                if line.strip():
                    set_rate(*parse(line), now)
        self.send_response(204)
        self.end_headers()


def main():
    now = time.time()
    for arg in sys.argv[1:]:
        set_rate(*parse(arg), now)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    sys.stdin.read()  # exit with the test process


if __name__ == "__main__":
    main()
