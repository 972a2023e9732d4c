#!/usr/bin/env bash
# Side-by-side HTTP load: real etcd 3.4 and cairn on this machine, same wrk
# load (one wrk thread): durable puts from 64 connections and from 1, then
# single-key reads from 64.
# Prints a table and rewrites the "HTTP load" section of bench/README.md.
# Usage: bench/load.sh [seconds per run, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=64
command -v etcd >/dev/null || { echo "etcd not installed (apt-get install etcd-server)"; exit 1; }
command -v wrk >/dev/null || { echo "wrk not installed (apt-get install wrk)"; exit 1; }
DENO=$(command -v deno || echo "npx -y deno@2.9.6")
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_health() {
  for _ in $(seq 1 300); do
    curl -sf "$1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no health on $1"; exit 1
}

rate() { # url put|get [connections] -> requests/sec
  wrk -t1 -c"${3:-$CONNS}" -d"${DURATION}s" -s bench/wrk.lua "$1" -- "$2" | awk '/Requests\/sec/ {print $2}'
}

run_pair() { # name url
  local url=$2
  wrk -t1 -c8 -d2s -s bench/wrk.lua "$url" -- put >/dev/null # create the 1000 keys
  local put put1 get
  put=$(rate "$url" put)
  put1=$(rate "$url" put 1)
  get=$(rate "$url" get)
  echo "$1 $put $put1 $get"
}

etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls http://127.0.0.1:23791 --advertise-client-urls http://127.0.0.1:23791 \
  --listen-peer-urls http://127.0.0.1:23801 --initial-advertise-peer-urls http://127.0.0.1:23801 \
  --initial-cluster bench=http://127.0.0.1:23801 >"$work/etcd.log" 2>&1 &
pids+=($!)
wait_health http://127.0.0.1:23791
read -r _ etcd_put etcd_put1 etcd_get < <(run_pair etcd http://127.0.0.1:23791)
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true

$DENO run --allow-all main.ts --data-dir "$work/cairn" \
  --listen-client-urls http://127.0.0.1:23792 --advertise-client-urls http://127.0.0.1:23792 \
  >"$work/cairn.log" 2>&1 &
pids+=($!)
wait_health http://127.0.0.1:23792
read -r _ cairn_put cairn_put1 cairn_get < <(run_pair cairn http://127.0.0.1:23792)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
put_ratio=$(ratio "$cairn_put" "$etcd_put")
put1_ratio=$(ratio "$cairn_put1" "$etcd_put1")
get_ratio=$(ratio "$cairn_get" "$etcd_get")
etcd_version=$(etcd --version | head -1 | awk '{print $3}')
table=$(cat <<TABLE
| workload (${DURATION} s, wrk -t1) | etcd ${etcd_version} req/s | cairn req/s | cairn / etcd |
|---|---|---|---|
| durable put, 256 B value, 1000 keys, ${CONNS} connections | ${etcd_put} | ${cairn_put} | ${put_ratio} |
| durable put, 256 B value, 1000 keys, 1 connection | ${etcd_put1} | ${cairn_put1} | ${put1_ratio} |
| single-key range (linearizable), ${CONNS} connections | ${etcd_get} | ${cairn_get} | ${get_ratio} |
TABLE
)
echo "$table"

readme=bench/README.md
start='<!-- load.sh:begin -->'
end='<!-- load.sh:end -->'
if grep -q "$start" "$readme" 2>/dev/null; then
  awk -v s="$start" -v e="$end" -v t="$table" -v d="$(date -u +%Y-%m-%d)" -v dur="$DURATION" '
    $0 == s { print; print "Measured " d " by `bench/load.sh " dur "` on this machine (2 cores):"; print ""; print t; skip = 1; next }
    $0 == e { skip = 0 }
    !skip { print }' "$readme" >"$readme.tmp" && mv "$readme.tmp" "$readme"
fi
$DENO fmt "$readme" >/dev/null 2>&1 || true
