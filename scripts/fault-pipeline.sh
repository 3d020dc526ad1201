#!/usr/bin/env bash
# A job's dataset does not depend on the number of workers or on faults
# (issue 17's target): the same job of TOKENS tokens on the tiny model (all
# 512 neurons, SHARDS_PER_PARTIAL shards of 131,072 tokens per task) runs
# twice with real processes (one NATS server, one coordinator, tdb workers):
#  1. with 1 worker and no fault;
#  2. with WORKERS workers; once the first partial is in the store, a worker
#     that is computing a task is killed with SIGKILL (no ack, no cleanup:
#     its task is redelivered after the ack wait, 30 s) and, RESTART seconds
#     later, a replacement worker starts, as a deployment would restart it.
# Then the sha256 of every file under the two datasets (manifest included)
# is compared: PASS if all are equal, FAIL (with the files that differ) if
# not, or if the faulty run does not finish within 3× the first run + 300 s.
# Each run also prints the figures of scripts/bench-pipeline.sh.
# Usage: scripts/fault-pipeline.sh [TOKENS] [WORKERS] [SHARDS_PER_PARTIAL] [RESTART]
set -euo pipefail
tokens=${1:-10000000}
workers=${2:-3}
group=${3:-4}
restart=${4:-5}
cd "$(dirname "$0")/.."
. scripts/lib/pipeline.sh
pipeline_init
cpu_line

# dataset_sums STORE: "sha256  ./path" of every file of the dataset, sorted.
dataset_sums() {
  (cd "$1/datasets/bench" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
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

echo "== run 2: $workers workers, kill -9 of a worker computing a task, a replacement $restart s later"
pipeline_start "$work/fault" "$workers"
pipeline_collate "$tokens" "$group"
limit=$((3 * one_wall + 300))
elapsed() { python3 -c "print(int($(date +%s.%N) - $job_start))"; }
victim=
while kill -0 "$collate_pid" 2>/dev/null; do
  if compgen -G "$store/jobs/bench/partials/*/*/shard-*.bin" >/dev/null; then
    for i in "${!worker_pids[@]}"; do
      task=$(in_flight "$dir/${worker_names[$i]}.log")
      if [ -n "$task" ]; then
        victim=$i
        break 2
      fi
    done
  fi
  sleep 1
done
[ -n "$victim" ] || { echo "FAIL: the job ended before a worker could be killed mid-task"; exit 1; }
vpid=${worker_pids[$victim]}
vname=${worker_names[$victim]}
dead_cpu=$(proc_cpu "$vpid")
kill -9 "$vpid"
wait "$vpid" 2>/dev/null || true
echo "fault: kill -9 $vname (pid $vpid) at $(elapsed) s, while it computed task $task ($(grep -c 'msg="shard done"' "$dir/$vname.log" || true) tasks done before)"
unset "worker_pids[$victim]" "worker_names[$victim]"
sleep "$restart"
pipeline_worker "w$((workers + 1))"
echo "fault: replacement worker w$((workers + 1)) started at $(elapsed) s"
while kill -0 "$collate_pid" 2>/dev/null; do
  if [ "$(elapsed)" -gt "$limit" ]; then
    echo "FAIL: the faulty run is still going after $limit s (hang?); logs in $dir"
    tail -3 "$dir"/*.log
    trap - EXIT
    pipeline_stop
    exit 1
  fi
  sleep 1
done
pipeline_wait
[ "$job_rc" = 0 ] || { echo "FAIL: the faulty run failed"; exit 1; }
# A shard task's "shard done" line has tokens > 0 (merge tasks, numbered
# from 0 too, report none).
redone=$(grep -lE "msg=\"shard done\".* shard=$task delivery=[2-9] tokens=[1-9]" "$dir"/w*.log | xargs -r -n1 basename | sed 's/\.log$//' | paste -sd, -)
echo "fault: task $task recomputed by ${redone:-nobody (FAIL: it was not redelivered)}; redelivered task starts:"
grep -h 'msg="shard started".* delivery=[2-9]' "$dir"/w*.log | sed 's/^time=[^ ]* level=[A-Z]* /  /' || echo "  none"
[ -n "$redone" ] || exit 1
orphans=$(find "$store/jobs" -name '.tdb-put-*' | wc -l)
[ "$orphans" = 0 ] || echo "fault: $orphans temporary files of the killed worker's interrupted store writes remain under jobs/"
pipeline_report "$workers"
pipeline_stop

echo "== compare"
dataset_sums "$one_store" >"$work/one.sums"
dataset_sums "$store" >"$work/fault.sums"
files=$(wc -l <"$work/one.sums")
bytes=$(find "$one_store/datasets/bench" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
echo "dataset with 1 worker: $files files, $bytes bytes; manifest $(grep manifest.json "$work/one.sums" | cut -c1-16)"
if diff -u "$work/one.sums" "$work/fault.sums" >"$work/diff"; then
  echo "PASS: all $files files of the dataset (manifest included) are byte-identical with 1 worker and with $workers workers and a kill -9"
else
  echo "FAIL: the datasets differ:"
  cat "$work/diff"
  exit 1
fi
