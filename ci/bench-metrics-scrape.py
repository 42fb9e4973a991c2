#!/usr/bin/env python3
"""What scraping /metrics costs: throughput with a scrape every 100 ms against none.

One standalone Warren with the Prometheus endpoint on, loaded by `loadgen run --connect`;
rounds alternate scrape / no scrape (interleaved, so machine noise hits both alike), each a
fresh loadgen run of --duration seconds after --warmup. Prints a Markdown table and the cost
as the ratio of the medians. Usage:

    python3 ci/bench-metrics-scrape.py [--rounds 6] [--duration 8] [--read-ratio 0.5] > results/metrics/scrape-cost.md
"""

from __future__ import annotations

import argparse
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scraper(url: str, stop: threading.Event, counts: list[int]) -> None:
    while not stop.is_set():
        started = time.monotonic()
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
        counts[0] += 1
        stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6, help="rounds of each mode")
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--read-ratio", default="0.5")
    ap.add_argument("--clients", default="8")
    args = ap.parse_args()
    warren = ROOT / "target/release/warren"
    loadgen = ROOT / "target/release/loadgen"
    with tempfile.TemporaryDirectory() as d:
        port, mport, aport = free_port(), free_port(), free_port()
        cfg = Path(d) / "zoo.cfg"
        cfg.write_text(f"tickTime=2000\ndataDir={d}/data\nclientPort={port}\nclientPortAddress=127.0.0.1\n"
                       f"admin.serverPort={aport}\nmetricsProvider.className={PROVIDER}\n"
                       f"metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort={mport}\n")
        server = subprocess.Popen([str(warren), "start-foreground", str(cfg)], stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            cmd = [str(loadgen), "run", "--connect", f"127.0.0.1:{port}", "--read-ratio", args.read_ratio,
                   "--clients", args.clients, "--duration", str(args.duration), "--warmup", str(args.warmup),
                   "--quiet", "--no-record"]
            rows = []
            for r in range(args.rounds * 2):
                scrape = r % 2 == 0
                stop, counts = threading.Event(), [0]
                t = threading.Thread(target=scraper, args=(f"http://127.0.0.1:{mport}/metrics", stop, counts))
                if scrape:
                    t.start()
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                stop.set()
                if scrape:
                    t.join()
                m = re.search(r"^total\s+(\d+)", out, re.M)
                if not m:
                    print(out, file=sys.stderr)
                    return 1
                rows.append((scrape, float(m.group(1)), counts[0]))
                print(f"round {r}: scrape={scrape} {m.group(1)} ops/s ({counts[0]} scrapes)", file=sys.stderr)
        finally:
            server.kill()
            server.wait()
    on = [x for s, x, _ in rows if s]
    off = [x for s, x, _ in rows if not s]
    cost = 1 - statistics.median(on) / statistics.median(off)
    print("# Cost of scraping /metrics every 100 ms\n")
    print(f"Command: `python3 ci/bench-metrics-scrape.py {' '.join(shlex.quote(a) for a in sys.argv[1:])}`  ")
    print(f"loadgen: `{' '.join(shlex.quote(c) for c in cmd[1:])}` (port elided)  ")
    print(f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; one standalone Warren, rounds interleaved.\n")
    print("| round | scraping | ops/s | scrapes |\n| --- | --- | --- | --- |")
    for i, (s, x, n) in enumerate(rows):
        print(f"| {i} | {'yes' if s else 'no'} | {x:.0f} | {n} |")
    print(f"\nMedian with scraping {statistics.median(on):.0f} ops/s, without {statistics.median(off):.0f} ops/s: "
          f"cost {cost * 100:+.2f}% (the issue's bound: under 2%).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
