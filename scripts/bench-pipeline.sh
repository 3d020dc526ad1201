#!/usr/bin/env bash
# Measures a distributed collation job with real processes: one NATS server
# (tdb nats-server), one coordinator and WORKERS worker processes, and a
# SHARDS-shard job on a tiny random model submitted with tdb collate --nats.
# Prints wall time and shards/s. Usage: scripts/bench-pipeline.sh [SHARDS] [WORKERS]
set -euo pipefail
shards=${1:-100}
workers=${2:-3}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tdb" ./cmd/tdb
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="nats://127.0.0.1:$port"
store="$work/store"
"$work/tdb" nats-server --listen "127.0.0.1:$port" --dir "$work/nats" >"$work/nats.log" 2>&1 &
sleep 1
"$work/tdb" coordinator --nats "$url" --store "$store" --metrics-addr "" >"$work/coordinator.log" 2>&1 &
for i in $(seq "$workers"); do
  "$work/tdb" worker --nats "$url" --store "$store" --metrics-addr "" --name "w$i" >"$work/worker$i.log" 2>&1 &
done
# synthetic:ioi documents are about 20 tokens; 64 KiB blocks hold about 16k tokens,
# so a block per shard: docs = shards × 16384 / 20, cut by --tokens-per-shard.
docs=$((shards * 830))
start=$(date +%s.%N)
"$work/tdb" collate --nats "$url" --store "$store" --model random:tiny \
  --corpus "synthetic:ioi?docs=$docs" --tokens-per-shard 16384 --dataset bench --job bench 2>"$work/collate.log"
end=$(date +%s.%N)
done_shards=$(grep -o 'shards [0-9]*/[0-9]*' "$work/collate.log" | tail -1)
python3 - "$start" "$end" "$done_shards" "$workers" <<'PY'
import sys
start, end, shards, workers = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
n = int(shards.split()[1].split("/")[1])
print(f"{n} shards, {workers} worker processes: {end-start:.1f} s wall, {n/(end-start):.1f} shards/s")
PY
