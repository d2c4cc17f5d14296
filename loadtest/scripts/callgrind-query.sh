#!/usr/bin/env bash
# Instructions per proxied request, from callgrind: repeatable where wall-clock timings on a
# shared machine are not. Runs the loadtest upstream, the proxy under callgrind, and a fixed
# number of query-mix (or remote-write) requests through it; prints Ir per request.
#
#   loadtest/scripts/callgrind-query.sh [PROXY_BINARY] [REQUESTS] [WORKLOAD]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
proxy=${1:-$root/target/release/sigv4-proxy}
requests=${2:-4000}
workload=${3:-query}
loadtest=$root/target/release/loadtest
out=${OUT:-$root/target/callgrind}
mkdir -p "$out"
up_port=19092; proxy_port=19005

"$loadtest" serve --listen 127.0.0.1:$up_port --threads 1 >"$out/upstream.log" 2>&1 &
up=$!
trap 'kill $up 2>/dev/null || true' EXIT
AWS_ACCESS_KEY_ID=AKIDEXAMPLE AWS_SECRET_ACCESS_KEY=secret AWS_EC2_METADATA_DISABLED=true \
  valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out.%p" \
  "$proxy" --upstream-url-scheme http --name aps --region us-east-1 \
  --host 127.0.0.1:$up_port --port 127.0.0.1:$proxy_port >"$out/proxy.log" 2>&1 &
px=$!
trap 'kill $up 2>/dev/null || true; kill $px 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$proxy_port/workspaces/ws-1/api/v1/query?query=up" && break
  sleep 0.5
done
run() {
  "$loadtest" run --url "http://127.0.0.1:$proxy_port/workspaces/ws-0a1b2c3d" --workload "$workload" \
    -c 4 -n "$1" --warmup 0s --progress never --body-bytes 1MiB >"$out/run.txt" 2>&1 || cat "$out/run.txt"
}
# Warm up (connection pools, lazily built state), then count only the measured requests.
run $((requests / 4))
rm -f "$out"/callgrind.out.*
callgrind_control -z $px >/dev/null
run "$requests"
callgrind_control -d $px >/dev/null
kill -TERM $px; wait $px || true
file=$(ls "$out"/callgrind.out.*.1 | head -1)
ls -l "$out"/callgrind.out.* >&2
total=$(callgrind_annotate "$file" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}')
echo "file=$file total_Ir=$total requests=$requests Ir_per_request=$((total / requests))"
