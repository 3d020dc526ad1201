#!/usr/bin/env bash
# A tdb cluster on one machine, on loopback: a 3-node NATS JetStream cluster
# (real nats-server processes), Azurite as the blob store, two coordinators
# (stream and KV buckets with 3 replicas), workers, and the query service and
# viewer when the built tdb has them.
#
#   deploy/local/cluster.sh up       build what is missing, start everything, wait until healthy
#   deploy/local/cluster.sh status   processes, health, NATS leaders, endpoints
#   deploy/local/cluster.sh down     stop everything (data stays in the cluster folder)
#
# Environment (all optional):
#   TDB_CLUSTER_DIR       state, logs, pid files, NATS and Azurite data (default <repo>/.cluster)
#   TDB_CLUSTER_PORT      first port of the block it uses (default 14000; see ports below)
#   TDB_CLUSTER_WORKERS   worker processes (default 3)
#   TDB_CLUSTER_COORDINATORS  coordinator processes (default 2: one leads, one stands by)
#   TDB_CLUSTER_ACK_WAIT  shard ack wait of the coordinators (default 10s)
#   TDB_CLUSTER_RESTART_DELAY  wait before a tdb service that exited is restarted (default 2s)
#   TDB_CLUSTER_MODEL     the viewer's model (default random:tiny: no download)
#   TDB_CLUSTER_CACHE     where nats-server is built (default ~/.cache/tdb/cluster)
#   TDB_BIN               a tdb binary to use (default: go build into the cluster folder)
#   NATS_SERVER           a nats-server binary to use (default: go install, version from go.mod)
#   TDB_AZURITE           azurite-blob (default: .ci/node/node_modules/.bin, then $PATH)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${TDB_CLUSTER_DIR:-$root/.cluster}
base=${TDB_CLUSTER_PORT:-14000}
nworkers=${TDB_CLUSTER_WORKERS:-3}
ncoords=${TDB_CLUSTER_COORDINATORS:-2}
ackwait=${TDB_CLUSTER_ACK_WAIT:-10s}
model=${TDB_CLUSTER_MODEL:-random:tiny}
restart_delay=${TDB_CLUSTER_RESTART_DELAY:-2s}

# Ports: base+10+i NATS clients, base+20+i routes, base+30+i monitoring
# (i = 1..3), base+40 Azurite, base+50+i coordinator metrics (i < 10), base+60+i
# worker metrics (i < 20), base+80 viewer, base+81 query.
nats_port() { echo $((base + 10 + $1)); }
route_port() { echo $((base + 20 + $1)); }
mon_port() { echo $((base + 30 + $1)); }
azurite_port=$((base + 40))
coord_port() { echo $((base + 50 + $1)); }
worker_port() { echo $((base + 60 + $1)); }
viewer_port=$((base + 80))
query_port=$((base + 81))

nats_urls="nats://127.0.0.1:$(nats_port 1),nats://127.0.0.1:$(nats_port 2),nats://127.0.0.1:$(nats_port 3)"
account=devstoreaccount1
# Azurite's well-known development key (public, documented by Microsoft).
account_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
blob_endpoint="http://127.0.0.1:$azurite_port/$account"
store_url="$blob_endpoint/tdb"
conn_string="DefaultEndpointsProtocol=http;AccountName=$account;AccountKey=$account_key;BlobEndpoint=$blob_endpoint;"

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*" >&2; }

[[ $nworkers =~ ^[0-9]+$ && $nworkers -ge 1 && $nworkers -lt 20 ]] || die "TDB_CLUSTER_WORKERS=$nworkers: want 1 to 19"
[[ $ncoords =~ ^[0-9]+$ && $ncoords -ge 1 && $ncoords -lt 10 ]] || die "TDB_CLUSTER_COORDINATORS=$ncoords: want 1 to 9"
[[ $base =~ ^[0-9]+$ && $base -ge 1024 && $base -le 65450 ]] || die "TDB_CLUSTER_PORT=$base: want 1024 to 65450"

# --- binaries ---------------------------------------------------------------

find_nats_server() {
  if [ -n "${NATS_SERVER:-}" ]; then
    [ -x "$NATS_SERVER" ] || die "NATS_SERVER=$NATS_SERVER is not an executable"
    echo "$NATS_SERVER"; return
  fi
  local ver cache
  ver=$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2 }' "$root/go.mod")
  [ -n "$ver" ] || die "no github.com/nats-io/nats-server/v2 version in $root/go.mod"
  cache=${TDB_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tdb/cluster}/nats-server-$ver
  if [ ! -x "$cache/nats-server" ]; then
    say "building nats-server $ver into $cache"
    mkdir -p "$cache"
    (cd "$cache" && GOBIN="$cache" go install "github.com/nats-io/nats-server/v2@$ver") \
      || die "go install github.com/nats-io/nats-server/v2@$ver failed (offline? set NATS_SERVER=/path/to/nats-server)"
  fi
  echo "$cache/nats-server"
}

find_tdb() {
  if [ -n "${TDB_BIN:-}" ]; then
    [ -x "$TDB_BIN" ] || die "TDB_BIN=$TDB_BIN is not an executable"
    echo "$TDB_BIN"; return
  fi
  mkdir -p "$dir/bin"
  say "building tdb into $dir/bin"
  (cd "$root" && go build -o "$dir/bin/tdb" ./cmd/tdb) || die "go build ./cmd/tdb failed"
  echo "$dir/bin/tdb"
}

find_azurite() {
  if [ -n "${TDB_AZURITE:-}" ]; then
    [ -x "$TDB_AZURITE" ] || die "TDB_AZURITE=$TDB_AZURITE is not an executable"
    echo "$TDB_AZURITE"; return
  fi
  for p in "$root/.ci/node/node_modules/.bin/azurite-blob" "$root/node_modules/.bin/azurite-blob"; do
    [ -x "$p" ] && { echo "$p"; return; }
  done
  command -v azurite-blob && return
  die "azurite-blob not found: npm install --no-audit --no-fund --prefix $root/.ci/node azurite@3.37.0 (or set TDB_AZURITE)"
}

# --- processes --------------------------------------------------------------

pidfile() { echo "$dir/run/$1.pid"; }
alive() { local f; f=$(pidfile "$1"); [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; }

port_free() {
  # A port is taken when something accepts a connection on it.
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# start NAME CMD...: runs CMD in the background, logging to logs/NAME.log.
start() {
  local name=$1; shift
  if alive "$name"; then say "$name already running (pid $(cat "$(pidfile "$name")"))"; return; fi
  nohup "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}

# supervise NAME CMD...: like start, but a supervisor restarts CMD after
# $restart_delay when it exits, as Compose (restart: unless-stopped) and
# Kubernetes do. NAME.pid holds the service's pid (kill -9 it to test a
# crash), NAME.sup the supervisor's.
supervise() {
  local name=$1; shift
  local sup="$dir/run/$name.sup"
  if [ -f "$sup" ] && kill -0 "$(cat "$sup")" 2>/dev/null; then
    say "$name already running (pid $(cat "$(pidfile "$name")"))"; return
  fi
  (
    trap '' HUP
    trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM
    while :; do
      "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
      child=$!
      echo "$child" >"$dir/run/$name.pid"
      code=0; wait "$child" || code=$?
      echo "cluster.sh: $name (pid $child) exited with status $code; restarting in $restart_delay" >>"$dir/logs/$name.log"
      echo "$(date -u +%FT%TZ) $name pid $child status $code" >>"$dir/run/restarts"
      sleep "$restart_delay"
    done
  ) </dev/null >/dev/null 2>&1 &
  echo $! >"$sup"
  # The supervisor writes NAME.pid as it starts the service.
  for _ in $(seq 1 50); do [ -f "$(pidfile "$name")" ] && [ "$(cat "$(pidfile "$name")")" != "" ] && break; sleep 0.1; done
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true; }

# wait_for WHAT SECONDS CHECK...: polls CHECK until it succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "$what not ready after ${secs}s (logs in $dir/logs)"
    sleep 0.3
  done
}

healthy() { [ "$(http_code "$1")" = 200 ]; }
answers() { [ "$(http_code "$1")" != 000 ]; }
stream_ready() { curl -s -m 2 "http://127.0.0.1:$(mon_port 1)/jsz?streams=true&accounts=true" | grep -qE '"name": *"TDB_SHARDS"'; }

# has_command NAME: the built tdb has "tdb NAME" (read whole: grep -q would
# close the pipe early and fail the pipeline under pipefail).
coordinator_ready() { cat "$dir"/logs/coordinator-*.log 2>/dev/null | grep -q 'msg="coordinator ready"'; }

has_command() { local h; h=$("$tdb" help 2>/dev/null || true); grep -qE "^  $1 " <<<"$h"; }

up() {
  command -v curl >/dev/null || die "curl is needed (health checks)"
  local nats azurite i
  nats=$(find_nats_server)
  tdb=$(find_tdb)
  azurite=$(find_azurite)
  mkdir -p "$dir/run" "$dir/logs" "$dir/azurite" "$dir/cache"

  local ports=("$azurite_port")
  for i in 1 2 3; do ports+=("$(nats_port $i)" "$(route_port $i)" "$(mon_port $i)"); done
  for i in $(seq 1 "$ncoords"); do ports+=("$(coord_port "$i")"); done
  for i in $(seq 1 "$nworkers"); do ports+=("$(worker_port "$i")"); done
  ports+=("$viewer_port" "$query_port")
  if ! alive nats-1; then
    for p in "${ports[@]}"; do
      port_free "$p" || die "port $p is in use (pick another block with TDB_CLUSTER_PORT=...)"
    done
  fi

  for i in 1 2 3; do
    mkdir -p "$dir/nats-$i"
    cat >"$dir/nats-$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$(nats_port "$i")
http: 127.0.0.1:$(mon_port "$i")
jetstream {
  store_dir: "$dir/nats-$i"
  max_memory_store: 256MB
  max_file_store: 4GB
}
cluster {
  name: tdb-local
  listen: 127.0.0.1:$(route_port "$i")
  routes: [
    nats-route://127.0.0.1:$(route_port 1)
    nats-route://127.0.0.1:$(route_port 2)
    nats-route://127.0.0.1:$(route_port 3)
  ]
}
EOF
    start "nats-$i" "$nats" --config "$dir/nats-$i.conf"
  done
  start azurite "$azurite" --skipApiVersionCheck --disableTelemetry --silent --loose \
    --blobHost 127.0.0.1 --blobPort "$azurite_port" --location "$dir/azurite"
  for i in 1 2 3; do
    wait_for "nats-$i (JetStream)" 60 healthy "http://127.0.0.1:$(mon_port "$i")/healthz"
  done
  wait_for azurite 60 answers "$blob_endpoint?comp=list"

  export TDB_NATS=$nats_urls TDB_STORE=$store_url AZURE_STORAGE_CONNECTION_STRING=$conn_string
  export TDB_CACHE_DIR=$dir/cache
  for i in $(seq 1 "$ncoords"); do
    supervise "coordinator-$i" "$tdb" coordinator --replicas 3 --ack-wait "$ackwait" --sweep 2s \
      --metrics-addr "127.0.0.1:$(coord_port "$i")"
  done
  for i in $(seq 1 "$nworkers"); do
    supervise "worker-$i" "$tdb" worker --name "worker-$i" --metrics-addr "127.0.0.1:$(worker_port "$i")"
  done
  if has_command query; then
    supervise query "$tdb" query --store "$store_url" --addr "127.0.0.1:$query_port"
  else
    say "this tdb has no query command: query service not started"
  fi
  if has_command serve; then
    supervise viewer "$tdb" serve --model "$model" --store "$store_url" --addr "127.0.0.1:$viewer_port"
  else
    say "this tdb has no serve command: viewer not started"
  fi

  for i in $(seq 1 "$ncoords"); do wait_for "coordinator-$i" 60 healthy "http://127.0.0.1:$(coord_port "$i")/healthz"; done
  for i in $(seq 1 "$nworkers"); do wait_for "worker-$i" 60 healthy "http://127.0.0.1:$(worker_port "$i")/healthz"; done
  wait_for "stream TDB_SHARDS" 60 stream_ready
  wait_for "a coordinator to lead" 90 coordinator_ready
  if alive query; then wait_for query 60 healthy "http://127.0.0.1:$query_port/healthz"; fi
  if alive viewer; then wait_for viewer 120 healthy "http://127.0.0.1:$viewer_port/healthz"; fi
  env_file
  status
}

# env_file writes cluster.env: source it to point tdb commands at the cluster.
env_file() {
  cat >"$dir/cluster.env" <<EOF
export TDB_NATS='$nats_urls'
export TDB_STORE='$store_url'
export AZURE_STORAGE_CONNECTION_STRING='$conn_string'
EOF
}

# stop PIDFILE: TERM, then KILL after 10 s.
stop() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    case $f in
      *.sup) say "stopped the supervisor of $(basename "$f" .sup) (pid $pid)" ;;
      *) say "stopped $(basename "$f" .pid) (pid $pid)" ;;
    esac
  fi
  rm -f "$f"
}

down() {
  local name
  [ -d "$dir/run" ] || { say "nothing runs (no $dir/run)"; return; }
  # Services first (supervisor, then service), NATS last, so nothing logs a
  # lost connection on the way down.
  local services
  services="viewer query $(cd "$dir/run" && ls worker-*.pid coordinator-*.pid 2>/dev/null | sed 's/\.pid$//' | tr '\n' ' ')"
  # Signal every supervisor at once (a supervisor sleeping before a restart
  # acts on it when it wakes), then stop each service.
  for name in $services; do
    [ -f "$dir/run/$name.sup" ] && kill -TERM "$(cat "$dir/run/$name.sup")" 2>/dev/null || true
  done
  for name in $services; do
    stop "$dir/run/$name.sup"
    stop "$dir/run/$name.pid"
  done
  for name in azurite nats-3 nats-2 nats-1; do stop "$dir/run/$name.pid"; done
}

# leader_of LOG: the coordinator's last leadership event in its log.
leader_of() {
  grep -hoE 'elected coordinator leader|lost coordinator leadership|standing by' "$1" 2>/dev/null | tail -1 || true
}

status() {
  local f name pid state extra
  [ -d "$dir/run" ] || { say "nothing runs (no $dir/run)"; return 1; }
  printf '%-14s %-8s %-8s %s\n' PROCESS PID STATE DETAIL
  for f in "$dir"/run/*.pid; do
    [ -f "$f" ] || continue
    name=$(basename "$f" .pid); pid=$(cat "$f"); extra=""
    if kill -0 "$pid" 2>/dev/null; then state=up; else state=dead; fi
    case $name in
      nats-*) i=${name#nats-}; extra="nats://127.0.0.1:$(nats_port "$i") monitor http://127.0.0.1:$(mon_port "$i")" ;;
      azurite) extra="$store_url" ;;
      coordinator-*) i=${name#coordinator-}; extra="http://127.0.0.1:$(coord_port "$i")/metrics"
        case $(leader_of "$dir/logs/$name.log") in
          "elected coordinator leader") extra="$extra (leader)" ;;
          "standing by"|"lost coordinator leadership") extra="$extra (standby)" ;;
        esac ;;
      worker-*) i=${name#worker-}; extra="http://127.0.0.1:$(worker_port "$i")/metrics" ;;
      query) extra="http://127.0.0.1:$query_port/api/v1" ;;
      viewer) extra="http://127.0.0.1:$viewer_port/" ;;
    esac
    n=$(grep -c " $name pid " "$dir/run/restarts" 2>/dev/null || true)
    [ "${n:-0}" -gt 0 ] && extra="$extra, restarted $n times"
    printf '%-14s %-8s %-8s %s\n' "$name" "$pid" "$state" "$extra"
  done
  for i in 1 2 3; do
    jsz=$(curl -s -m 2 "http://127.0.0.1:$(mon_port "$i")/jsz?streams=true&accounts=true" || true)
    [ -n "$jsz" ] || continue
    echo "JetStream meta leader: $(echo "$jsz" | grep -A3 '"meta_cluster"' | grep -oE '"leader": *"[^"]*"' | cut -d'"' -f4)"
    break
  done
  echo "env: source $dir/cluster.env   (TDB_NATS, TDB_STORE, AZURE_STORAGE_CONNECTION_STRING)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) tdb=${TDB_BIN:-$dir/bin/tdb}; status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
