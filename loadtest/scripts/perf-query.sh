#!/usr/bin/env bash
# Where the proxy's CPU goes on the query path, by component, from `perf record` (self
# time of the innermost frame, grouped by symbol). Prints CPU µs per request from the
# load generator's process watch and the share of each component.
#
#   loadtest/scripts/perf-query.sh [PROXY_BINARY] [DURATION]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
proxy=${1:-$root/target/release/sigv4-proxy}
duration=${2:-10s}
loadtest=$root/target/release/loadtest
out=${OUT:-$root/target/perf}
mkdir -p "$out"
up_port=19192; proxy_port=19105

"$loadtest" serve --listen 127.0.0.1:$up_port >"$out/upstream.log" 2>&1 &
up=$!
AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_EC2_METADATA_DISABLED=true \
  "$proxy" --upstream-url-scheme http --name aps --region us-east-1 \
  --host 127.0.0.1:$up_port --port 127.0.0.1:$proxy_port >"$out/proxy.log" 2>&1 &
px=$!
trap 'kill $up $px 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  curl -fs -o /dev/null "http://127.0.0.1:$proxy_port/workspaces/ws-1/api/v1/query?query=up" && break
  sleep 0.2
done
perf record -F 1999 -g -p $px -o "$out/perf.data" -- sleep 8 >/dev/null 2>&1 &
rec=$!
"$loadtest" run --url "http://127.0.0.1:$proxy_port/workspaces/ws-0a1b2c3d" --workload query \
  -c 32 -d "$duration" --warmup 1s --progress never --watch-pid $px | grep -A2 '^target'
wait $rec || true
perf report -i "$out/perf.data" --no-children --sort sym --stdio -g none 2>/dev/null \
  | awk '/^ +[0-9.]+%/ {gsub("%","",$1); print}' | python3 -c '
import sys, re, collections
groups = [
    ("kernel", r"^\[k\]"),
    ("signing (sha2, hmac, canonical request)", r"sha2|hmac|aws_sigv4|signing|Sha256|digest"),
    ("malloc/free", r"malloc|free|realloc|_int_|cfree|memalign|consolidate|unlink_chunk"),
    ("memcpy/memmove/memset", r"mem(cpy|move|set|cmp)"),
    ("tokio", r"tokio"),
    ("hyper-util client", r"hyper_util::client|hyper::client|pool"),
    ("hyper (server + h1 codec)", r"hyper"),
    ("http types (headers, uri)", r"http::|HeaderMap|header::"),
    ("tracing", r"tracing"),
    ("metrics", r"prometheus|metric"),
    ("proxy (forward, target, headers)", r"sigv4_proxy"),
]
totals = collections.Counter()
for line in sys.stdin:
    parts = line.split(None, 1)
    if len(parts) < 2: continue
    share, sym = float(parts[0]), parts[1]
    for name, pattern in groups:
        if re.search(pattern, sym):
            totals[name] += share; break
    else:
        totals["other"] += share
for name, share in totals.most_common():
    print(f"{share:6.1f} %  {name}")
'
