# Sourced by scripts/bench-pipeline.sh and scripts/fault-pipeline.sh: run a
# real collation job on this machine (a NATS server, a coordinator and worker
# processes of one freshly built tdb binary) and report what it cost.
#
# pipeline_init                 work folder ($work, removed at exit unless TDB_KEEP_WORK
#                               is set), tdb binary ($tdb)
# pipeline_start DIR WORKERS    a cluster in DIR: $url, $store, $worker_pids, $worker_names
# pipeline_worker NAME          one more worker process in the cluster
# pipeline_collate TOKENS GROUP submit the job (dataset and job "bench") in the
#                               background: $collate_pid; its CPU time goes to DIR/collate.time
# pipeline_wait                 wait for it; $job_start, $job_end, sets $job_rc
# pipeline_report WORKERS       the job's figures (wall, tokens/s, CPU, partials, merge, RSS);
#                               with $forward_rate (the bare forward's tokens per CPU second),
#                               the job's overhead over it
# pipeline_stop                 stop the cluster, keeping its folder
# proc_cpu PID                  CPU seconds (user + system) of a live process
# Needs bash, python3 and GNU time (/usr/bin/time).

pipeline_init() {
  work=$(mktemp -d)
  # TDB_KEEP_WORK=1 keeps the folder (logs, stores) for a post-mortem.
  if [ -n "${TDB_KEEP_WORK:-}" ]; then
    trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; echo "kept $work" >&2' EXIT
  else
    trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
  fi
  tdb="$work/tdb"
  go build -o "$tdb" ./cmd/tdb
  clk=$(getconf CLK_TCK)
}

cpu_line() {
  echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

proc_cpu() {
  # Fields 14 and 15 of /proc/PID/stat (the command name "tdb" has no spaces).
  awk -v clk="$clk" '{printf "%.2f\n", ($14 + $15) / clk}' "/proc/$1/stat" 2>/dev/null || echo 0
}

pipeline_start() {
  dir=$1
  mkdir -p "$dir"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  url="nats://127.0.0.1:$port"
  store="$dir/store"
  "$tdb" nats-server --listen "127.0.0.1:$port" --dir "$dir/nats" >"$dir/nats.log" 2>&1 &
  nats_pid=$!
  sleep 1
  "$tdb" coordinator --nats "$url" --store "$store" --metrics-addr "" --keep-partials >"$dir/coordinator.log" 2>&1 &
  coordinator_pid=$!
  worker_pids=()
  worker_names=()
  # CPU seconds of processes that died before the report (killed workers).
  dead_cpu=0
  local i
  for i in $(seq "$2"); do
    pipeline_worker "w$i"
  done
}

pipeline_worker() {
  "$tdb" worker --nats "$url" --store "$store" --metrics-addr "" --name "$1" >"$dir/$1.log" 2>&1 &
  worker_pids+=($!)
  worker_names+=("$1")
}

pipeline_collate() {
  # synthetic:ioi documents are about 20 tokens.
  local docs=$(($1 / 19))
  job_start=$(date +%s.%N)
  /usr/bin/time -f '%U %S' -o "$dir/collate.time" \
    "$tdb" collate --nats "$url" --store "$store" --model random:tiny \
    --corpus "synthetic:ioi?docs=$docs" --shards-per-partial "$2" --dataset bench --job bench \
    >"$dir/collate.out" 2>"$dir/collate.log" &
  collate_pid=$!
}

pipeline_wait() {
  job_rc=0
  wait "$collate_pid" || job_rc=$?
  job_end=$(date +%s.%N)
  cat "$dir/collate.out"
  if [ "$job_rc" != 0 ]; then
    echo "tdb collate failed (exit $job_rc):" >&2
    tail -5 "$dir/collate.log" >&2
  fi
}

pipeline_report() {
  local rss=0 wcpu=$dead_cpu ccpu ncpu lcpu p r
  for p in "${worker_pids[@]}"; do
    wcpu=$(python3 -c "print($wcpu + $(proc_cpu "$p"))")
    r=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    rss=$((rss > r ? rss : r))
  done
  ccpu=$(proc_cpu "$coordinator_pid")
  ncpu=$(proc_cpu "$nats_pid")
  lcpu=$(python3 -c "print(sum(map(float, open('$dir/collate.time').read().split()[-2:])))")
  local partials pbytes
  # Partials only: a worker killed while writing one leaves the store's
  # temporary file (.tdb-put-*) next to it.
  partials=$(find "$store/jobs/bench/partials" -type f -name 'shard-*' | wc -l)
  pbytes=$(find "$store/jobs/bench/partials" -type f -name 'shard-*' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
  python3 - "$job_start" "$job_end" "$store/datasets/bench/manifest.json" "$dir/coordinator.log" "$partials" "$pbytes" "$rss" "$1" "$(nproc)" "$wcpu" "$ccpu" "$ncpu" "$lcpu" "${forward_rate:-0}" <<'PY'
import json, re, sys
start, end, manifest, clog, partials, pbytes, rss_kb, workers, cores, wcpu, ccpu, ncpu, lcpu, fwd = sys.argv[1:]
wall = float(end) - float(start)
wcpu, ccpu, ncpu, lcpu = float(wcpu), float(ccpu), float(ncpu), float(lcpu)
cpu = wcpu + ccpu + ncpu + lcpu
m = json.load(open(manifest))
tokens = m["tokens"]
comps = sum(l["components"] * len(l["layers"]) for l in m["locations"])
merge = [float(x) for x in re.findall(r"merge_seconds=([0-9.e+-]+)", open(clog).read())]
partials, pbytes, rss = int(partials), int(pbytes), int(rss_kb) * 1024
print(f"job: {tokens} tokens, {comps} components, {workers} worker processes on {cores} cores: "
      f"{wall:.1f} s wall, {tokens/wall:.0f} tokens/s ({tokens/wall/int(cores):.0f} per core)")
print(f"job CPU: {cpu:.1f} s (workers {wcpu:.1f}, coordinator {ccpu:.1f}, NATS server {ncpu:.1f}, tdb collate {lcpu:.1f}), "
      f"{tokens/cpu:.0f} tokens per CPU second, {cpu/wall:.2f} cores busy on average")
if float(fwd) > 0:
    print(f"job overhead over the bare forward: {100 * (float(fwd) * cpu / tokens - 1):.1f}% (CPU seconds per token)")
layers = sum(len(l["layers"]) for l in m["locations"])
print(f"partials: {partials} ({partials // layers} tasks × {layers} layers), "
      f"{pbytes/tokens:.1f} partial bytes per token")
if merge:
    print(f"merge: {merge[-1]:.1f} s for {partials} partials, {merge[-1]/partials:.3f} s per partial")
print(f"worker peak RSS {rss/1e6:.0f} MB, {rss/comps/1e3:.0f} KB per component (model and runtime included)")
PY
}

pipeline_stop() {
  local p
  for p in "${worker_pids[@]}" "$coordinator_pid" "$nats_pid"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${worker_pids[@]}" "$coordinator_pid" "$nats_pid"; do
    wait "$p" 2>/dev/null || true
  done
}
