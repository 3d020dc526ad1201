#!/usr/bin/env bash
# Runs `tdb bench forward` and the same GPT-2-shaped forward pass in PyTorch
# (scripts/bench-torch.py; Debian's python3-torch, whose BLAS is whatever
# libblas.so.3 points to: install libopenblas0-pthread for OpenBLAS, or it
# runs on the reference BLAS) side by side, on the same shapes and the same
# number of threads, alternating ROUNDS times so that load from other
# processes hits both alike. Prints every round (tokens/s of both, their
# ratio, tdb's share of its GEMM-bound limit, tokens per CPU-second of
# both and their ratio, the load average before the round) and the medians.
# On a machine shared with other jobs, wall-clock rates swing with their
# load (and OpenMP's spinning threads suffer more from it than Go's); at
# THREADS=1 tokens per CPU-second (and tdb's share of the limit in CPU
# time) is the comparison to trust. Not a test dependency: without torch it
# says so and exits 0.
#
#   scripts/bench-torch.sh [BATCH] [SEQ] [SECONDS] [ROUNDS]   (default 8 64 10 3)
#   THREADS (default: the number of CPUs) sets GOMAXPROCS, torch's threads
#   and OpenBLAS's/OpenMP's. PYTHON picks the interpreter. MAX_LOAD, on a
#   shared machine, makes each round first wait (up to MAX_WAIT seconds,
#   default 600) until the 1-minute load average is below it. KEEP=<dir>
#   keeps every round's JSON (tdb.N, torch.N, load.N) there.
set -euo pipefail
batch=${1:-8}
seq=${2:-64}
secs=${3:-10}
rounds=${4:-3}
threads=${THREADS:-$(nproc)}
cd "$(dirname "$0")/.."
# Debian's python3-torch lives in the system python, which a pyenv or venv
# python3 on PATH may hide: take the first that imports torch.
py=""
for p in ${PYTHON:-} python3 /usr/bin/python3; do
  if "$p" -c 'import torch' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then
  echo "bench-torch: python3-torch is not installed (apt-get install python3-torch); nothing to compare" >&2
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/tdb" ./cmd/tdb
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
for r in $(seq 1 "$rounds"); do
  if [ -n "${MAX_LOAD:-}" ] && [ -r /proc/loadavg ]; then
    waited=0
    while awk -v max="$MAX_LOAD" '{exit !($1 >= max)}' /proc/loadavg && [ "$waited" -lt "${MAX_WAIT:-600}" ]; do
      sleep 5; waited=$((waited + 5))
    done
  fi
  { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a; } >"$work/load.$r" # Linux only
  # Alternate which side goes first, so neither always runs after the other.
  if [ $((r % 2)) -eq 1 ]; then order="tdb torch"; else order="torch tdb"; fi
  for side in $order; do
    if [ "$side" = tdb ]; then
      GOMAXPROCS=$threads "$work/tdb" bench forward --model random:gpt2 --batch "$batch" --seq "$seq" --time "${secs}s" --json >"$work/tdb.$r" 2>"$work/tdb.err" ||
        { cat "$work/tdb.err" >&2; exit 1; }
    else
      "$py" scripts/bench-torch.py --preset gpt2 --batch "$batch" --seq "$seq" --threads "$threads" --time "$secs" >"$work/torch.$r"
    fi
  done
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP" && cp "$work"/tdb.[0-9]* "$work"/torch.[0-9]* "$work"/load.[0-9]* "$KEEP"/; fi
"$py" - "$work" "$rounds" <<'PY'
import json, statistics, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rows = {False: [], True: []}
for r in range(1, rounds + 1):
    tdb = json.load(open(f"{work}/tdb.{r}"))
    torch = json.load(open(f"{work}/torch.{r}"))
    load = open(f"{work}/load.{r}").read().strip()
    for a, b in zip(tdb, torch):
        rows[a["logits"]].append((r, a["tokens_per_s"], b["tokens_per_s"], a["fraction_of_limit"],
                                  a["tokens_per_cpu_s"], b["tokens_per_cpu_s"], a["fraction_of_limit_cpu"], load))
print(f"{'round':>6} {'logits':<7} {'tdb tokens/s':>13} {'torch tokens/s':>15} {'tdb/torch':>10} {'tdb of limit':>13}"
      f" {'tdb tok/cpu-s':>14} {'torch tok/cpu-s':>16} {'tdb/torch':>10} {'of limit (cpu)':>15}  load average")
for logits, rs in rows.items():
    for r, a, b, f, ac, bc, fc, load in rs:
        print(f"{r:>6} {str(logits):<7} {a:>13.1f} {b:>15.1f} {a/b:>10.2f} {100*f:>12.0f}% {ac:>14.1f} {bc:>16.1f} {ac/bc:>10.2f} {100*fc:>14.0f}%  {load}")
for logits, rs in rows.items():
    med = lambda xs: statistics.median(xs)
    print(f"{'median':>6} {str(logits):<7} {med([x[1] for x in rs]):>13.1f} {med([x[2] for x in rs]):>15.1f} "
          f"{med([x[1]/x[2] for x in rs]):>10.2f} {100*med([x[3] for x in rs]):>12.0f}% "
          f"{med([x[4] for x in rs]):>14.1f} {med([x[5] for x in rs]):>16.1f} {med([x[4]/x[5] for x in rs]):>10.2f} "
          f"{100*med([x[6] for x in rs]):>14.0f}%")
print(f"(batch {tdb[0]['batch']} x seq {tdb[0]['seq']}, {tdb[0]['threads']} threads, {rounds} alternating rounds; "
      f"tdb kernels {tdb[0]['gemm']}, torch {torch[0]['torch']}; a median ratio is the median of each round's ratio; "
      f"tok/cpu-s: tokens per CPU-second of the process, all threads, which other jobs' load disturbs least at one thread)")
PY
