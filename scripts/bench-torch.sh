#!/usr/bin/env bash
# Runs `tdb bench forward` and the same GPT-2-shaped forward pass in PyTorch
# (scripts/bench-torch.py; Debian's python3-torch, which uses OpenBLAS) side
# by side, on the same shapes and the same number of threads, one after the
# other, and prints tokens/s of both and their ratio. Not a test dependency:
# without torch it says so and exits 0.
#
#   scripts/bench-torch.sh [BATCH] [SEQ] [SECONDS]   (default 8 64 10)
#   THREADS (default: the number of CPUs) sets GOMAXPROCS and torch's threads.
set -euo pipefail
batch=${1:-8}
seq=${2:-64}
secs=${3:-10}
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
GOMAXPROCS=$threads "$work/tdb" bench forward --model random:gpt2 --batch "$batch" --seq "$seq" --time "${secs}s" --json >"$work/tdb.json" 2>/dev/null
"$py" scripts/bench-torch.py --preset gpt2 --batch "$batch" --seq "$seq" --threads "$threads" --time "$secs" >"$work/torch.json"
"$py" - "$work/tdb.json" "$work/torch.json" <<'PY'
import json, sys
tdb, torch = (json.load(open(f)) for f in sys.argv[1:3])
print(f"{'logits':<7} {'tdb tokens/s':>13} {'torch tokens/s':>15} {'tdb/torch':>10} {'tdb of limit':>13}")
for a, b in zip(tdb, torch):
    print(f"{str(a['logits']):<7} {a['tokens_per_s']:>13.1f} {b['tokens_per_s']:>15.1f} {a['tokens_per_s']/b['tokens_per_s']:>10.2f} {100*a['fraction_of_limit']:>12.0f}%")
print(f"(batch {tdb[0]['batch']} x seq {tdb[0]['seq']}, {tdb[0]['threads']} threads; tdb kernels {tdb[0]['gemm']}, torch {torch[0]['torch']})")
PY
