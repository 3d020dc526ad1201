#!/usr/bin/env bash
# A job's dataset does not depend on the number of workers or on faults
# (issue 17's target): the same job of TOKENS tokens on the tiny model (all
# 512 neurons, SHARDS_PER_PARTIAL shards of 131,072 tokens per task) runs
# twice with real processes (one NATS server, one coordinator, tdb workers):
#  1. with 1 worker and no fault;
#  2. with WORKERS workers and faults: for each phase of PHASES (default
#     "shard merge"), a worker that is computing a task is killed with
#     SIGKILL (no ack, no cleanup: its task is redelivered after the ack
#     wait, 30 s) and, RESTART seconds later, a replacement worker starts, as
#     a deployment would restart it. "shard": once the first partial is in
#     the store, a worker computing a shard task; "merge": once every shard
#     is done, a worker computing a merge task (merge tasks take seconds: if
#     none is caught in flight, the script says so and goes on).
# Then the sha256 of every file under the two datasets (manifest included;
# not the store's temporary files, which the faulty run's killed writers may
# leave, and which the script lists) is compared: PASS if all are equal, FAIL (with the files that differ) if
# not, or if the faulty run does not finish within 3× the first run + 300 s.
# Each run also prints the figures of scripts/bench-pipeline.sh.
# Usage: scripts/fault-pipeline.sh [TOKENS] [WORKERS] [SHARDS_PER_PARTIAL] [RESTART] [PHASES]
set -euo pipefail
tokens=${1:-10000000}
workers=${2:-3}
group=${3:-4}
restart=${4:-5}
phases=${5:-shard merge}
cd "$(dirname "$0")/.."
. scripts/lib/pipeline.sh
pipeline_init
cpu_line

# dataset_sums STORE: "sha256  ./path" of every file of the dataset, sorted.
# The store's temporary files (.tdb-put-*, a write in progress or one whose
# process died) are not part of it: the store never lists them.
dataset_sums() {
  (cd "$1/datasets/bench" && find . -type f ! -name '.tdb-put-*' -print0 | sort -z | xargs -0 sha256sum)
}

# in_flight LOG: the task a worker is computing now ("shard started" is its
# last task line), or nothing.
in_flight() {
  grep -E 'msg="shard (started|done)' "$1" | tail -1 | sed -n 's/.*msg="shard started".* shard=\([0-9]*\).*/\1/p' || true
}

echo "== run 1: 1 worker, no fault"
pipeline_start "$work/one" 1
pipeline_collate "$tokens" "$group"
pipeline_wait
[ "$job_rc" = 0 ] || { echo "FAIL: the run with 1 worker failed"; exit 1; }
pipeline_report 1
pipeline_stop
one_store=$store
one_wall=$(python3 -c "print(int($job_end - $job_start))")

echo "== run 2: $workers workers; kill -9 of a worker computing a task ($phases), a replacement $restart s later"
pipeline_start "$work/fault" "$workers"
pipeline_collate "$tokens" "$group"
limit=$((3 * one_wall + 300))
elapsed() { python3 -c "print(int($(date +%s.%N) - $job_start))"; }
check_limit() {
  if [ "$(elapsed)" -gt "$limit" ]; then
    echo "FAIL: the faulty run is still going after $limit s (hang?); logs in $dir"
    tail -n 3 "$dir"/*.log
    trap - EXIT
    kill "$collate_pid" 2>/dev/null || true
    pipeline_stop
    exit 1
  fi
}

# wait_in_flight READY POLL: once the command READY succeeds, the first
# worker that is computing a task: $victim (its index in worker_pids) and
# $task. Fails if the job ends first.
wait_in_flight() {
  local i
  victim=
  while kill -0 "$collate_pid" 2>/dev/null; do
    check_limit
    if eval "$1"; then
      for i in "${!worker_pids[@]}"; do
        task=$(in_flight "$dir/${worker_names[$i]}.log")
        if [ -n "$task" ]; then
          victim=$i
          return 0
        fi
      done
    fi
    sleep "$2"
  done
  return 1
}

# kill_victim KIND: kill -9 the victim, then start a replacement.
next=$workers
killed=()
kill_victim() {
  local vpid=${worker_pids[$victim]} vname=${worker_names[$victim]}
  dead_cpu=$(python3 -c "print($dead_cpu + $(proc_cpu "$vpid"))")
  kill -9 "$vpid"
  wait "$vpid" 2>/dev/null || true
  echo "fault: kill -9 $vname (pid $vpid) at $(elapsed) s, while it computed $1 task $task"
  killed+=("$1:$task")
  unset "worker_pids[$victim]" "worker_names[$victim]"
  sleep "$restart"
  next=$((next + 1))
  pipeline_worker "w$next"
  echo "fault: replacement worker w$next started at $(elapsed) s"
}

for phase in $phases; do
  case $phase in
  shard) # once the first partial is stored, other tasks are in flight
    wait_in_flight 'compgen -G "$store/jobs/bench/partials/*/*/shard-*.bin" >/dev/null' 1 ||
      { echo "FAIL: the job ended before a worker could be killed mid-task"; exit 1; }
    kill_victim shard ;;
  merge) # merge tasks take seconds: poll faster
    if wait_in_flight 'grep -q "every shard is done; merging" "$dir/coordinator.log"' 0.1; then
      kill_victim merge
    else
      echo "fault: no merge task was caught in flight before the job ended (they are short); no kill during the merge"
    fi ;;
  *) echo "unknown phase $phase (want shard, merge)" >&2; exit 2 ;;
  esac
done
while kill -0 "$collate_pid" 2>/dev/null; do
  check_limit
  sleep 1
done
pipeline_wait
[ "$job_rc" = 0 ] || { echo "FAIL: the faulty run failed"; exit 1; }
# Was each killed task computed again? A shard task's "shard done" line has
# tokens > 0, a merge task's (numbered from 0 too) tokens=0.
for k in "${killed[@]}"; do
  kind=${k%%:*} task=${k#*:}
  [ "$kind" = shard ] && toks='[1-9]' || toks='0 '
  redone=$(grep -lE "msg=\"shard done\".* shard=$task delivery=[2-9] tokens=$toks" "$dir"/w*.log | xargs -r -n1 basename | sed 's/\.log$//' | paste -sd, -)
  if [ -n "$redone" ]; then
    echo "fault: $kind task $task was redelivered and computed again by $redone"
  else
    echo "fault: $kind task $task was not computed again: it was done before the kill landed"
  fi
done
echo "fault: redelivered task starts:"
grep -h 'msg="shard started".* delivery=[2-9]' "$dir"/w*.log | sed 's/^time=[^ ]* level=[A-Z]* /  /' || echo "  none"
orphans=$(cd "$store" && find . -name '.tdb-put-*' -printf '%h/%f (%s bytes)\n')
if [ -n "$orphans" ]; then
  echo "fault: temporary files of the killed workers' interrupted store writes remain (the store does not list them; a List or Delete removes them once an hour old):"
  echo "$orphans" | sed 's/^/  /'
fi
pipeline_report "$workers"
pipeline_stop

echo "== compare"
dataset_sums "$one_store" >"$work/one.sums"
dataset_sums "$store" >"$work/fault.sums"
files=$(wc -l <"$work/one.sums")
bytes=$(find "$one_store/datasets/bench" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "dataset with 1 worker: $files files, $bytes bytes; manifest $(grep manifest.json "$work/one.sums" | cut -c1-16)"
if diff -u "$work/one.sums" "$work/fault.sums" >"$work/diff"; then
  echo "PASS: all $files files of the dataset (manifest included) are byte-identical with 1 worker and with $workers workers and ${#killed[@]} kill -9"
else
  echo "FAIL: the datasets differ:"
  cat "$work/diff"
  exit 1
fi
