#!/usr/bin/env bash
# Starts or stops a local Warren ensemble from conf/ensemble-N/zoo*.cfg (N = 3 or 5).
#
#   ci/ensemble.sh start N   create each member's dataDir and myid, start N servers in the
#                            background (logs and pids in /tmp/warren-ensemble-N/<id>/)
#   ci/ensemble.sh stop N    stop the servers this script started (by their pid files)
#   ci/ensemble.sh status N  ask each member `srvr` on its client port
#
# WARREN=path/to/warren picks the binary (default target/release/warren; build it with
# `cargo build --release -p warren`). The client ports are 2181..218N, quorum 2888..,
# election 3888..; all on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: $0 start|stop|status N   (N = 3 or 5)" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1 n=$2
conf_dir=conf/ensemble-$n
[ -d "$conf_dir" ] || { echo "$0: no $conf_dir: only 3 and 5 are provided" >&2; exit 2; }
warren=${WARREN:-target/release/warren}

# alive PID: the process exists and is not a zombie (a killed member whose parent has not
# reaped it yet still answers kill -0).
alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $st != Z* ]]; }
data_dir_of() { sed -n 's/^dataDir=//p' "$conf_dir/zoo$1.cfg"; }
client_port_of() { sed -n "s/^server\.$1=.*;.*:\([0-9]*\)$/\1/p" "$conf_dir/zoo$1.cfg"; }

case $cmd in
start)
  if [ ! -x "$warren" ]; then
    echo "$0: no Warren binary at $warren; build it with: cargo build --release -p warren (or set WARREN=...)" >&2
    exit 1
  fi
  for id in $(seq 1 "$n"); do
    dir=$(data_dir_of "$id")
    mkdir -p "$dir"
    printf '%s\n' "$id" > "$dir/myid"
    if [ -f "$dir/warren.pid" ] && alive "$(cat "$dir/warren.pid")"; then
      echo "member $id already running (pid $(cat "$dir/warren.pid"))"
      continue
    fi
    nohup "$warren" start-foreground "$conf_dir/zoo$id.cfg" > "$dir/warren.log" 2>&1 &
    echo $! > "$dir/warren.pid"
    echo "member $id: pid $!, client port $(client_port_of "$id"), log $dir/warren.log"
  done
  sleep 1
  failed=0
  for id in $(seq 1 "$n"); do
    dir=$(data_dir_of "$id")
    if ! alive "$(cat "$dir/warren.pid")"; then
      echo "member $id exited at once; the end of $dir/warren.log:" >&2
      tail -n 5 "$dir/warren.log" >&2
      rm -f "$dir/warren.pid"
      failed=1
    fi
  done
  exit $failed
  ;;
stop)
  for id in $(seq 1 "$n"); do
    dir=$(data_dir_of "$id")
    pid_file=$dir/warren.pid
    [ -f "$pid_file" ] || continue
    pid=$(cat "$pid_file")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -9 "$pid" 2>/dev/null || true
      echo "member $id (pid $pid) stopped"
    fi
    rm -f "$pid_file"
  done
  ;;
status)
  for id in $(seq 1 "$n"); do
    port=$(client_port_of "$id")
    printf 'member %s (port %s): ' "$id" "$port"
    (echo srvr | nc -N 127.0.0.1 "$port" 2>/dev/null | grep '^Mode:') || echo "not answering"
  done
  ;;
*) usage ;;
esac
