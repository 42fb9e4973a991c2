#!/usr/bin/env bash
# Standalone throughput, side by side in one run: Warren, Apache ZooKeeper 3.8 and the loopback
# ceiling (loadgen's echo server), all driven by the same pipelined client (loadgen run).
#
# Both Warren and ZooKeeper run twice: with forceSync=yes (the default: fsync the transaction
# log before acknowledging a write) and with forceSync=no. All five servers are started once and
# stay up; every read ratio is measured on each of them back to back, and the whole set is
# repeated REPS times, interleaved, so that drift and noise show.
#
# Usage: bash ci/bench-standalone.sh
# Knobs (environment): DURATION=10 WARMUP=2 REPS=2 CLIENTS=8 OUTSTANDING=100 KEYS=1000
#   VALUE_SIZE=1024 RATIOS="1.0 0.9 0.5 0.0" OUT=results/standalone
#   BENCH_TARGET_DIR=/work/target-lg (cargo target dir used for the release binaries)
# Needs Apache ZooKeeper 3.8 from Debian (/usr/share/java/zookeeper.jar; see ci/install-deps.sh),
# java, python3. Writes $OUT/README.md, $OUT/raw/*.json (one loadgen record per run),
# $OUT/loadgen.log (every run's summary), $OUT/servers/ (config, mntr, log tail of each server).
# About 8.5 minutes with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPS=${REPS:-2}
CLIENTS=${CLIENTS:-8}
OUTSTANDING=${OUTSTANDING:-100}
KEYS=${KEYS:-1000}
VALUE_SIZE=${VALUE_SIZE:-1024}
RATIOS=${RATIOS:-"1.0 0.9 0.5 0.0"}
OUT=${OUT:-results/standalone}
export CARGO_TARGET_DIR=${BENCH_TARGET_DIR:-/work/target-lg}
BIN=$CARGO_TARGET_DIR/release
ZK_JAR=/usr/share/java/zookeeper.jar
# The nosync variants are skipped at read ratio 1.0, where no write is measured.
SYSTEMS="warren zookeeper warren-nosync zookeeper-nosync echo"

COMMAND="bash ci/bench-standalone.sh"
ENVLINE="DURATION=$DURATION WARMUP=$WARMUP REPS=$REPS CLIENTS=$CLIENTS OUTSTANDING=$OUTSTANDING KEYS=$KEYS VALUE_SIZE=$VALUE_SIZE RATIOS=\"$RATIOS\""

[ -f "$ZK_JAR" ] || { echo "Apache ZooKeeper is not installed ($ZK_JAR): run ci/install-deps.sh" >&2; exit 1; }
command -v java >/dev/null || { echo "java not found" >&2; exit 1; }

echo "== building release binaries into $CARGO_TARGET_DIR"
cargo build --release -q -p warren
cargo build --release -q -p loadgen

BASE=$(mktemp -d /tmp/bench-standalone.XXXXXX)
declare -A PID PORT DIR
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
  for s in "${!PID[@]}"; do
    for _ in $(seq 50); do kill -0 "${PID[$s]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${PID[$s]}" 2>/dev/null || true
    wait "${PID[$s]}" 2>/dev/null || true
  done
  rm -rf "$BASE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
srvr() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf '%s' '$2' >&3; cat <&3" 2>/dev/null || true; }

write_cfg() { # name forceSync
  cat > "${DIR[$1]}/zoo.cfg" <<EOF
tickTime=2000
dataDir=${DIR[$1]}/data
clientPort=${PORT[$1]}
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=*
forceSync=$2
EOF
}

start() { # name
  local s=$1 d
  d="$BASE/$s"; mkdir -p "$d/data"; DIR[$s]=$d; PORT[$s]=$(free_port)
  case $s in
    warren|warren-nosync)
      write_cfg "$s" "$([ "$s" = warren ] && echo yes || echo no)"
      "$BIN/warren" start-foreground "$d/zoo.cfg" > "$d/server.log" 2>&1 &
      PID[$s]=$! ;;
    zookeeper|zookeeper-nosync)
      write_cfg "$s" "$([ "$s" = zookeeper ] && echo yes || echo no)"
      printf '%s\n' 'log4j.rootLogger=INFO, F' 'log4j.appender.F=org.apache.log4j.FileAppender' \
        "log4j.appender.F.File=$d/server.log" 'log4j.appender.F.layout=org.apache.log4j.PatternLayout' \
        'log4j.appender.F.layout.ConversionPattern=%d{ISO8601} %-5p [%t] %c{1}: %m%n' > "$d/log4j.properties"
      java -Xmx1g -XX:-UsePerfData "-Dlog4j.configuration=file:$d/log4j.properties" \
        -cp "$d:$ZK_JAR:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" > "$d/stdout.log" 2>&1 &
      PID[$s]=$! ;;
    echo)
      "$BIN/loadgen" echo-server --listen "127.0.0.1:${PORT[$s]}" --value-size "$VALUE_SIZE" > "$d/server.log" 2>&1 &
      PID[$s]=$! ;;
  esac
  for _ in $(seq 300); do
    if [ "$s" = echo ]; then
      timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/${PORT[$s]}" 2>/dev/null && return 0
    else
      srvr "${PORT[$s]}" srvr | grep -q '^Mode:' && return 0
    fi
    kill -0 "${PID[$s]}" 2>/dev/null || { echo "$s exited at start; log:" >&2; tail -20 "$d/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$s did not start within 30 s" >&2; tail -20 "$d/server.log" >&2; exit 1
}

rm -rf "$OUT/raw" "$OUT/servers" "$OUT/loadgen.log" "$OUT/failures.txt"
mkdir -p "$OUT/raw" "$OUT/servers"
LOG="$OUT/loadgen.log"
: > "$LOG"
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

echo "== starting servers in $BASE"
for s in $SYSTEMS; do start "$s"; echo "   $s: 127.0.0.1:${PORT[$s]} pid ${PID[$s]}"; done

loadgen() { # system ratio json duration warmup
  local s=$1
  timeout $(( ${4%.*} + ${5%.*} + 90 )) "$BIN/loadgen" run --connect "127.0.0.1:${PORT[$s]}" \
    --read-ratio "$2" --clients "$CLIENTS" --outstanding "$OUTSTANDING" --keys "$KEYS" \
    --value-size "$VALUE_SIZE" --duration "$4" --warmup "$5" --seed 1 \
    --server-pid "${PID[$s]}" --label "$s" --json "$3"
}

failed=0
run_one() { # system ratio rep
  local s=$1 r=$2 rep=$3 json="$OUT/raw/rep$3-$1-r$2.json" rc=0
  echo "--- rep $rep  $s  read-ratio $r  $(date -u +%H:%M:%S)" | tee -a "$LOG"
  if ! kill -0 "${PID[$s]}" 2>/dev/null; then
    echo "SKIPPED: $s is not running" | tee -a "$LOG" "$OUT/failures.txt"; failed=1; return
  fi
  loadgen "$s" "$r" "$json" "$DURATION" "$WARMUP" > "$BASE/run.out" 2>&1 || rc=$?
  cat "$BASE/run.out" >> "$LOG"
  grep -E '^(all|errors|cpu|FAILED)' "$BASE/run.out" | sed 's/^/   /' || true
  if [ "$rc" != 0 ]; then
    failed=1
    { echo "FAILED: rep $rep $s read-ratio $r: loadgen exit $rc"; echo "server log tail:"; tail -30 "${DIR[$s]}/server.log"; echo; } \
      | tee -a "$OUT/failures.txt" >&2
  fi
}

echo "== priming each server (untimed in the tables): 1 s + 2 s at read ratio 0.5" | tee -a "$LOG"
for s in $SYSTEMS; do
  loadgen "$s" 0.5 "$OUT/raw/prime-$s.json" 2 1 >> "$LOG" 2>&1 || { echo "priming $s failed" | tee -a "$OUT/failures.txt"; failed=1; }
done

for rep in $(seq "$REPS"); do
  for r in $RATIOS; do
    for s in $SYSTEMS; do
      if [[ $s == *-nosync ]] && python3 -c "import sys; sys.exit(float('$r') != 1.0)"; then continue; fi
      run_one "$s" "$r" "$rep"
    done
  done
done

echo "== collecting server state"
for s in $SYSTEMS; do
  d="$OUT/servers/$s"; mkdir -p "$d"
  cp "${DIR[$s]}/zoo.cfg" "$d/" 2>/dev/null || true
  if [ "$s" != echo ]; then
    srvr "${PORT[$s]}" mntr > "$d/mntr.txt"
    du -sh "${DIR[$s]}/data" | cut -f1 > "$d/data-size.txt"
  fi
  kill -0 "${PID[$s]}" 2>/dev/null && echo running > "$d/status.txt" || echo "NOT RUNNING at the end" > "$d/status.txt"
  grep -E -o 'VmHWM:.*|VmRSS:.*' "/proc/${PID[$s]}/status" > "$d/memory.txt" 2>/dev/null || true
  tail -50 "${DIR[$s]}/server.log" > "$d/server.log.tail" 2>/dev/null || true
done
ENDED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

export OUT STARTED ENDED LOAD_BEFORE LOAD_AFTER COMMAND ENVLINE SYSTEMS RATIOS REPS
export WARREN_REV="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
export ENGINE_DIRTY="$(git status --porcelain -- engine 2>/dev/null | wc -l)"
export JAVA_VERSION="$(java -version 2>&1 | head -1)"
export ZK_VERSION="$(readlink -f "$ZK_JAR" | sed 's/.*zookeeper-//; s/\.jar$//')"
export CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
export MEM_TOTAL="$(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
python3 - <<'PY'
import glob, json, os, statistics
out = os.environ["OUT"]
systems = os.environ["SYSTEMS"].split()
ratios = [float(r) for r in os.environ["RATIOS"].split()]
runs = {}
for p in sorted(glob.glob(f"{out}/raw/rep*.json")):
    r = json.load(open(p))
    rep = int(os.path.basename(p).split("-")[0][3:])
    runs.setdefault((r["label"], float(r["settings"]["read_ratio"])), []).append((rep, r, os.path.basename(p)))
first = next(iter(runs.values()))[0][1] if runs else None
names = {"warren": "Warren (forceSync=yes)", "zookeeper": "ZooKeeper (forceSync=yes)",
         "warren-nosync": "Warren (forceSync=no)", "zookeeper-nosync": "ZooKeeper (forceSync=no)",
         "echo": "echo ceiling"}

def mean_ops(s, ratio):
    xs = [r["results"]["ops_per_s"] for _, r, _ in runs.get((s, ratio), []) if r["results"]["clean"]]
    return statistics.mean(xs) if xs else None

def fmt(x): return "-" if x is None else f"{x:,.0f}"
def ms(us): return "-" if us is None else (f"{us/1000:.2f}" if us < 10000 else f"{us/1000:.0f}")
def ratio(a, b): return "-" if not a or not b else f"{a/b:.2f}"

L = []
m = first["machine"] if first else {"nproc": os.cpu_count(), "kernel": os.uname().release}
s0 = first["settings"] if first else {}
L += ["# Standalone throughput: Warren vs Apache ZooKeeper 3.8 vs the loopback ceiling", "",
      f"- Command: `{os.environ['COMMAND']}` with {os.environ['ENVLINE']} (the defaults), "
      f"run {os.environ['STARTED']} to {os.environ['ENDED']}.",
      f"- Machine: {m['nproc']} CPUs (`nproc`), {os.environ['CPU_MODEL']}, {os.environ['MEM_TOTAL']} RAM, Linux "
      f"{m['kernel']} (`uname -r`); ext4 on a virtual disk. Client and all servers share the machine, "
      f"which is shared with other work too: load average {os.environ['LOAD_BEFORE']} before, "
      f"{os.environ['LOAD_AFTER']} after (1/5/15 min); the `other` CPU column below shows what was not ours.",
      f"- Warren: commit {os.environ['WARREN_REV']}"
      + (f" plus uncommitted changes in {os.environ['ENGINE_DIRTY']} file(s) under engine/ (built from the working tree)"
         if os.environ['ENGINE_DIRTY'] != '0' else "") + ", release build, default config (`warren.cores=1`: one executor).",
      f"- ZooKeeper {os.environ['ZK_VERSION']} (Debian), {os.environ['JAVA_VERSION']}, `java -Xmx1g`, default GC, "
      "standalone (QuorumPeerMain with no server lines).",
      "- Both servers: tickTime 2000, fresh dataDir under /tmp (same ext4), maxClientCnxns=0, "
      "admin server off; `forceSync=yes` (default: fsync the log before acknowledging a write) and, "
      "as a second server each, `forceSync=no`.",
      "- echo ceiling: `loadgen echo-server`, thread per connection, canned replies of the right shape "
      "(1 KiB getData body + Stat): what this client and loopback TCP can do at all on this machine.",
      f"- Workload: `loadgen run`: {s0.get('clients')} sessions × {s0.get('outstanding')} requests in flight, "
      f"getData / setData(version -1) of {s0.get('value_size')} B values on {s0.get('keys')} keys chosen uniformly, "
      f"{s0.get('warmup'):g} s warm-up + {s0.get('duration'):g} s measured per run. Servers started once; "
      f"each primed with one untimed 3 s run; then {os.environ['REPS']} repetitions, each measuring every read "
      "ratio on every server back to back (the forceSync=no servers only where writes are measured).",
      "", "## Throughput (ops/s, mean of repetitions; each repetition in brackets) and latency of all ops", "",
      "| read ratio | system | ops/s | per repetition | p50 ms | p99 ms | p99.9 ms |",
      "| --- | --- | ---: | --- | --- | --- | --- |"]
for ratio in ratios:
    for s in systems:
        xs = runs.get((s, ratio))
        if not xs:
            continue
        lat = lambda k: " / ".join(ms((r["results"]["all"]["latency_us"] or {}).get(k)) for _, r, _ in xs)
        reps = ", ".join(fmt(r["results"]["ops_per_s"]) + ("" if r["results"]["clean"] else " FAILED") for _, r, _ in xs)
        L.append(f"| {ratio:g} | {names.get(s, s)} | {fmt(mean_ops(s, ratio))} | {reps} | {lat('p50')} | {lat('p99')} | {lat('p999')} |")
L += ["", "Latency is per request, from the client's write to its read of the reply, with "
      f"{s0.get('clients', 0) * s0.get('outstanding', 0)} requests always in flight: at a fixed concurrency "
      "latency is essentially in-flight count / throughput (Little's law), so it mostly restates throughput.",
      "", "## Ratios (mean ops/s)", "",
      "| read ratio | Warren / ZooKeeper (fsync) | Warren / ZooKeeper (no fsync) | Warren / ceiling | ZooKeeper / ceiling | Warren no-fsync / ceiling | ZooKeeper no-fsync / ceiling |",
      "| --- | --- | --- | --- | --- | --- | --- |"]
for ratio in ratios:
    w, z, wn, zn, e = (mean_ops(s, ratio) for s in ["warren", "zookeeper", "warren-nosync", "zookeeper-nosync", "echo"])
    L.append(f"| {ratio:g} | {ratio(w, z)} | {ratio(wn, zn)} | {ratio(w, e)} | {ratio(z, e)} | {ratio(wn, e)} | {ratio(zn, e)} |")
L += ["", "## Where the CPU went (cores busy over the measured window, mean of repetitions)", "",
      f"The machine has {m['nproc']} CPUs. `server` is the server process (all threads), `loadgen` the client, "
      "`other` everything else on the machine (/proc/stat busy minus the two). µs/op = server CPU time per operation.", "",
      "| read ratio | system | server | loadgen | other | server µs/op | loadgen µs/op |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
for ratio in ratios:
    for s in systems:
        xs = [r for _, r, _ in runs.get((s, ratio), [])]
        if not xs:
            continue
        def avg(f):
            v = [f(r) for r in xs]
            v = [x for x in v if x is not None]
            return statistics.mean(v) if v else None
        srv = avg(lambda r: (r["results"]["cpu"]["servers"] or [{}])[0].get("cores"))
        lg = avg(lambda r: r["results"]["cpu"]["loadgen_cores"])
        mach = avg(lambda r: r["results"]["cpu"]["machine_busy_cores"])
        ops = avg(lambda r: r["results"]["ops_per_s"])
        other = None if mach is None or srv is None or lg is None else max(0.0, mach - srv - lg)
        f2 = lambda x: "-" if x is None else f"{x:.2f}"
        per = lambda c: "-" if not c or not ops else f"{c / ops * 1e6:.2f}"
        L.append(f"| {ratio:g} | {names.get(s, s)} | {f2(srv)} | {f2(lg)} | {f2(other)} | {per(srv)} | {per(lg)} |")
L += ["", "## Errors and failures", ""]
problems = []
for (s, ratio), xs in sorted(runs.items()):
    for rep, r, f in xs:
        res = r["results"]
        if res["errors_total"] or res["client_failures"] or res["unanswered"] or res["malformed_replies"] or r["setup"]["errors"]:
            problems.append(f"- `{f}`: errors {res['errors'] or 'none'}, setup errors {r['setup']['errors'] or 'none'}, "
                            f"unanswered {res['unanswered']}, malformed {res['malformed_replies']}, "
                            f"failures {res['client_failures'] or 'none'}")
stalls = sorted(((r["results"]["max_stall_ms"], f) for xs in runs.values() for _, r, f in xs), reverse=True)[:3]
fails = open(f"{out}/failures.txt").read().strip() if os.path.exists(f"{out}/failures.txt") else ""
L += problems or ["No error replies, lost or malformed replies, or client failures in any run."]
if fails:
    L += ["", "Script-level failures (see failures.txt):", "", "```", fails[:4000], "```"]
L += ["", "Longest wait for any reply with requests in flight: " + ", ".join(f"{ms_:.1f} ms (`{f}`)" for ms_, f in stalls) + "."]
L += ["", "## Files", "",
      "- `raw/rep<N>-<system>-r<ratio>.json`: loadgen's record of each run (command, settings, machine, "
      "throughput per op, latency percentiles p50/p90/p99/p99.9/max per op, errors by code, CPU); "
      "`raw/prime-*.json`: the untimed priming runs.",
      "- `loadgen.log`: every run's printed summary, in order.",
      "- `servers/<system>/`: zoo.cfg, `mntr` at the end (Warren's includes its log fsync counts), "
      "data size, memory, log tail.", ""]
if os.path.exists(f"{out}/NOTES.md"):
    L += ["See `NOTES.md` for an analysis of a run of this script (it names the run it is about).", ""]
open(f"{out}/README.md", "w").write("\n".join(L))
print("\n".join(L))
PY
echo "== done: $OUT/README.md"
exit "$failed"
