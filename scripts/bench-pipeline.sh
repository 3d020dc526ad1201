#!/usr/bin/env bash
# The cost model's figures on this machine (README, "Cost model"):
#  1. per core (go test -cpu 1, rates per CPU second): the tiny model's bare
#     forward, a worker's task end to end, and collation alone;
#  2. a distributed job of TOKENS tokens on the tiny model (all 512 neurons)
#     with real processes: one NATS server (tdb nats-server), one coordinator
#     and WORKERS worker processes, SHARDS_PER_PARTIAL shards of 131,072
#     tokens per task: wall time, tokens/s, partial bytes per token, merge
#     seconds per partial, workers' peak RSS and RSS per component.
# Usage: scripts/bench-pipeline.sh [TOKENS] [WORKERS] [SHARDS_PER_PARTIAL]
set -euo pipefail
tokens=${1:-10000000}
workers=${2:-3}
group=${3:-4}
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"

# 1. Per-core rates (a task of 4 shards of 16,384 tokens).
TDB_BENCH_SHARD_TOKENS=16384 TDB_BENCH_SHARDS_PER_PARTIAL=4 \
  go test ./worker -run '^$' -bench '^BenchmarkTaskTiny$' -benchtime 1x -cpu 1 >"$work/bench.txt"
python3 - "$work/bench.txt" <<'PY'
import re, sys
m = {}
for line in open(sys.argv[1]):
    f = line.split()
    if not f or not f[0].startswith("BenchmarkTaskTiny/"):
        continue
    sub = f[0].split("/")[1]
    for v, unit in zip(f[2::2], f[3::2]):
        m[(sub, unit)] = float(v)
print(f"per core: forward {m[('forward','tokens/cpu-s')]:.0f} tokens/s, "
      f"task end to end {m[('end-to-end','tokens/cpu-s')]:.0f} tokens/s, "
      f"collation alone {m[('partial','collate-tokens/cpu-s')]:.0f} tokens/s (tiny model, 512 neurons)")
PY

# 2. The distributed job.
go build -o "$work/tdb" ./cmd/tdb
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="nats://127.0.0.1:$port"
store="$work/store"
"$work/tdb" nats-server --listen "127.0.0.1:$port" --dir "$work/nats" >"$work/nats.log" 2>&1 &
sleep 1
"$work/tdb" coordinator --nats "$url" --store "$store" --metrics-addr "" --keep-partials >"$work/coordinator.log" 2>&1 &
pids=()
for i in $(seq "$workers"); do
  "$work/tdb" worker --nats "$url" --store "$store" --metrics-addr "" --name "w$i" >"$work/worker$i.log" 2>&1 &
  pids+=($!)
done
# synthetic:ioi documents are about 20 tokens.
docs=$((tokens / 19))
start=$(date +%s.%N)
"$work/tdb" collate --nats "$url" --store "$store" --model random:tiny \
  --corpus "synthetic:ioi?docs=$docs" --shards-per-partial "$group" --dataset bench --job bench 2>"$work/collate.log"
end=$(date +%s.%N)
rss=0
for p in "${pids[@]}"; do
  r=$(awk '/VmHWM/ {print $2}' "/proc/$p/status")
  rss=$((rss > r ? rss : r))
done
partials=$(find "$store/jobs/bench/partials" -type f | wc -l)
pbytes=$(find "$store/jobs/bench/partials" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
python3 - "$start" "$end" "$store/datasets/bench/manifest.json" "$work/coordinator.log" "$partials" "$pbytes" "$rss" "$workers" "$(nproc)" <<'PY'
import json, re, sys
start, end, manifest, clog, partials, pbytes, rss_kb, workers, cores = sys.argv[1:]
wall = float(end) - float(start)
m = json.load(open(manifest))
tokens = m["tokens"]
comps = sum(l["components"] * len(l["layers"]) for l in m["locations"])
merge = [float(x) for x in re.findall(r"merge_seconds=([0-9.e+-]+)", open(clog).read())]
partials, pbytes, rss = int(partials), int(pbytes), int(rss_kb) * 1024
print(f"job: {tokens} tokens, {comps} components, {workers} worker processes on {cores} cores: "
      f"{wall:.1f} s wall, {tokens/wall:.0f} tokens/s ({tokens/wall/int(cores):.0f} per core)")
layers = sum(len(l["layers"]) for l in m["locations"])
print(f"partials: {partials} ({partials // layers} tasks × {layers} layers), "
      f"{pbytes/tokens:.1f} partial bytes per token")
if merge:
    print(f"merge: {merge[-1]:.1f} s for {partials} partials, {merge[-1]/partials:.3f} s per partial")
print(f"worker peak RSS {rss/1e6:.0f} MB, {rss/comps/1e3:.0f} KB per component (model and runtime included)")
PY
