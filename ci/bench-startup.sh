#!/usr/bin/env bash
# Time from process start to serving (first `ruok` answered) with N znodes on disk.
# Usage: bash ci/bench-startup.sh [N=1000000] [RUNS=5]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
runs=${2:-5}
cargo build --release -q -p warren -p warren-bench
dir=$(mktemp -d)
trap 'pkill -f "$dir/zoo.cfg" 2>/dev/null || true; rm -rf "$dir"' EXIT
./target/release/mkdata "$dir/data" "$n"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'tickTime=2000\ndataDir=%s/data\nclientPort=%s\nclientPortAddress=127.0.0.1\n' "$dir" "$port" > "$dir/zoo.cfg"
for i in $(seq "$runs"); do
  python3 - "$dir" "$port" <<'PY'
import socket, subprocess, sys, time
d, port = sys.argv[1], int(sys.argv[2])
t0 = time.monotonic()
p = subprocess.Popen(["./target/release/warren", "start-foreground", f"{d}/zoo.cfg"], stderr=open(f"{d}/log", "w"))
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1)
        s.sendall(b"ruok")
        if s.recv(4) == b"imok":
            break
    except OSError:
        pass
    time.sleep(0.005)
ms = (time.monotonic() - t0) * 1000
rss = int(open(f"/proc/{p.pid}/status").read().split("VmRSS:")[1].split()[0]) // 1024
p.kill(); p.wait()
loaded = [l.strip() for l in open(f"{d}/log") if "data loaded" in l]
print(f"start to serving: {ms:.0f} ms   RSS {rss} MiB   ({loaded[0].split('INFO ')[-1] if loaded else ''})")
PY
done
