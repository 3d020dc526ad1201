#!/usr/bin/env bash
# The cost model's figures on this machine (README, "Cost model"):
#  1. per core (go test -cpu 1, rates per CPU second): the tiny model's bare
#     forward, a worker's task end to end, and collation alone;
#  2. a distributed job of TOKENS tokens on the tiny model (all 512 neurons)
#     with real processes: one NATS server (tdb nats-server), one coordinator
#     and WORKERS worker processes, SHARDS_PER_PARTIAL shards of 131,072
#     tokens per task: wall time, tokens/s, partial bytes per token, merge
#     seconds per partial, workers' peak RSS and RSS per component, the CPU
#     seconds of all its processes and their overhead over the bare forward
#     (1.), per CPU second.
# Usage: scripts/bench-pipeline.sh [TOKENS] [WORKERS] [SHARDS_PER_PARTIAL]
set -euo pipefail
tokens=${1:-10000000}
workers=${2:-3}
group=${3:-4}
cd "$(dirname "$0")/.."
. scripts/lib/pipeline.sh
pipeline_init
cpu_line

# 1. Per-core rates (a task of 4 shards of 16,384 tokens).
TDB_BENCH_SHARD_TOKENS=16384 TDB_BENCH_SHARDS_PER_PARTIAL=4 \
  go test ./worker -run '^$' -bench '^BenchmarkTaskTiny$' -benchtime 1x -cpu 1 >"$work/bench.txt"
python3 - "$work/bench.txt" "$work/forward.rate" <<'PY'
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
fwd, task = m[('forward','tokens/cpu-s')], m[('end-to-end','tokens/cpu-s')]
print(f"task overhead over the bare forward: {100 * (fwd / task - 1):.1f}% (CPU seconds per token)")
open(sys.argv[2], "w").write(f"{fwd}\n")
PY
forward_rate=$(cat "$work/forward.rate")

# 2. The distributed job.
pipeline_start "$work/job" "$workers"
pipeline_collate "$tokens" "$group"
pipeline_wait
[ "$job_rc" = 0 ] || exit 1
pipeline_report "$workers"
pipeline_stop
