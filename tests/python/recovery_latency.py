#!/usr/bin/env python3
"""Recovery latency of a 3-server ensemble after a leader crash (kill -9).

    python3 tests/python/recovery_latency.py --system warren|zookeeper --trials 5 --json out.json

Per trial: a raw-socket client connected to a surviving follower creates a sequential node
every ~5 ms (one request in flight; on any failure it reconnects at once, resuming its
session, and tries again); the leader is killed with SIGKILL; measured with
time.monotonic():

* ``write_recovery_s``: from just before the kill to the reply of the first successful
  write *sent after* the kill;
* ``leader_elected_s``: from the kill until a survivor's ``srvr`` says ``Mode: leader``
  (both survivors are polled every ~5 ms).

The killed server is restarted and the ensemble is back to 3 (one leader, two followers)
before the next trial. Prints a summary (median / max) and writes every trial to --json.
Exit status 1 if a trial did not recover within --deadline seconds. Uses ensemble.py: ports
127.0.0.1:23000-23999, ZooKeeper with -Xmx128m, Warren from $WARREN_BIN.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ensemble import Ensemble, EnsembleError, parse_mode  # noqa: E402
from servers import LOCALHOST, four_letter  # noqa: E402

WRITE_INTERVAL = 0.005
REQUEST_TIMEOUT = 2.0
SESSION_TIMEOUT_MS = 10000
OPEN_ACL = struct.pack(">i", 1) + struct.pack(">i", 31)  # one ACL, perms ALL, then the id


# ---------------------------------------------------------------------------------------
# a minimal ZooKeeper client: connect / resume a session, create
# ---------------------------------------------------------------------------------------
def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _buffer(b: bytes) -> bytes:
    return struct.pack(">i", len(b)) + b


class RawClient:
    def __init__(self, port: int, timeout_ms: int = SESSION_TIMEOUT_MS):
        self.port = port
        self.timeout_ms = timeout_ms
        self.negotiated_ms = 0
        self.sock: socket.socket | None = None
        self.session_id = 0
        self.passwd = b"\x00" * 16
        self.last_zxid = 0
        self.xid = 0
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _recv_frame(self, deadline: float) -> bytes:
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">i", self.buf[:4])
                if n < 0 or n > 1 << 20:
                    raise OSError(f"bad frame length {n}")
                if len(self.buf) >= 4 + n:
                    frame, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no reply")
            self.sock.settimeout(left)
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("closed by server")
            self.buf += data

    def connect(self, timeout: float = REQUEST_TIMEOUT) -> None:
        self.close()
        deadline = time.monotonic() + timeout
        s = socket.create_connection((LOCALHOST, self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        body = (struct.pack(">iqiq", 0, self.last_zxid, self.timeout_ms, self.session_id)
                + _buffer(self.passwd) + b"\x00")
        s.sendall(struct.pack(">i", len(body)) + body)
        frame = self._recv_frame(deadline)
        _proto, negotiated, session_id = struct.unpack(">iiq", frame[:16])
        (plen,) = struct.unpack(">i", frame[16:20])
        passwd = frame[20:20 + plen]
        if negotiated <= 0:  # session expired: start a new one next time
            self.session_id, self.passwd = 0, b"\x00" * 16
            self.close()
            raise ConnectionError("session expired")
        self.session_id, self.passwd = session_id, passwd
        self.negotiated_ms = negotiated

    def create(self, path: str, data: bytes, flags: int,
               timeout: float = REQUEST_TIMEOUT) -> int:
        """Returns the error code (0 = ok)."""
        deadline = time.monotonic() + timeout
        self.xid += 1
        xid = self.xid
        body = (struct.pack(">ii", xid, 1) + _string(path) + _buffer(data) + OPEN_ACL
                + _string("world") + _string("anyone") + struct.pack(">i", flags))
        self.sock.sendall(struct.pack(">i", len(body)) + body)
        while True:
            frame = self._recv_frame(deadline)
            rxid, zxid, err = struct.unpack(">iqi", frame[:16])
            if zxid > 0:
                self.last_zxid = max(self.last_zxid, zxid)
            if rxid == xid:
                return err


class Writer(threading.Thread):
    """Writes /latency/w-<seq> every ~5 ms through one server; records (sent, replied) of
    every success."""

    def __init__(self, port: int, root: str):
        super().__init__(daemon=True, name="latency-writer")
        self.client = RawClient(port)
        self.root = root
        self.stop_event = threading.Event()
        self.successes: list[tuple[float, float]] = []
        self.failures = 0
        self.lock = threading.Lock()

    def run(self):
        connected = False
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now < next_at:
                time.sleep(next_at - now)
            next_at = max(next_at + WRITE_INTERVAL, time.monotonic())
            try:
                if not connected:
                    self.client.connect()
                    connected = True
                sent = time.monotonic()
                err = self.client.create(f"{self.root}/w-", b"x", flags=2)
                replied = time.monotonic()
                if err == 0:
                    with self.lock:
                        self.successes.append((sent, replied))
                else:
                    self.failures += 1
                    if err in (-4, -112, -118):  # connection loss, expired, moved
                        self.client.close()
                        connected = False
            except (OSError, ConnectionError, struct.error):
                self.failures += 1
                self.client.close()
                connected = False
        self.client.close()

    def first_success_after(self, t: float):
        with self.lock:
            for sent, replied in self.successes:
                if sent > t:
                    return replied
        return None


class LeaderPoller(threading.Thread):
    """Polls srvr on one server every ~5 ms after `start_after` is set; records the first
    time it says Mode: leader."""

    def __init__(self, port: int):
        super().__init__(daemon=True, name=f"poller-{port}")
        self.port = port
        self.t0: float | None = None
        self.armed = threading.Event()
        self.stop_event = threading.Event()
        self.seen_leader: float | None = None

    def run(self):
        self.armed.wait()
        while not self.stop_event.is_set() and self.seen_leader is None:
            try:
                text = four_letter(LOCALHOST, self.port, "srvr", timeout=1.0)
                if parse_mode(text) == "leader":
                    self.seen_leader = time.monotonic()
                    return
            except OSError:
                pass
            time.sleep(0.005)


# ---------------------------------------------------------------------------------------
def create_root(ens: Ensemble, root: str) -> None:
    c = ens.client()
    try:
        c.ensure_path(root)
    finally:
        ens.discard_client(c)


def run_trial(ens: Ensemble, n: int, deadline: float) -> dict:
    leader = ens.wait_stable(timeout=60)
    followers = ens.followers(leader)
    via = followers[0]
    root = f"/latency/t{n}"
    create_root(ens, root)
    writer = Writer(ens[via].port, root)
    writer.start()
    try:
        t_end = time.monotonic() + 30
        while len(writer.successes) < 50:
            if time.monotonic() > t_end:
                raise EnsembleError("writer could not write before the kill")
            time.sleep(0.01)
        pollers = [LeaderPoller(ens[s].port) for s in followers]
        for p in pollers:
            p.start()
        time.sleep(0.05)
        before = len(writer.successes)
        t_kill = time.monotonic()
        for p in pollers:
            p.armed.set()
        ens.kill(leader)
        limit = t_kill + deadline
        first_write = None
        while time.monotonic() < limit:
            first_write = writer.first_success_after(t_kill)
            if first_write is not None and any(p.seen_leader for p in pollers):
                break
            time.sleep(0.005)
        for p in pollers:
            p.stop_event.set()
    finally:
        writer.stop_event.set()
        writer.join(5)
    elected = [p.seen_leader for p in pollers if p.seen_leader is not None]
    new_leader = ens.leader(followers)
    result = {
        "trial": n,
        "killed": leader,
        "writer_via": via,
        "new_leader": new_leader,
        "writes_before_kill": before,
        "failed_attempts": writer.failures,
        "write_recovery_s": None if first_write is None else round(first_write - t_kill, 4),
        "leader_elected_s": round(min(elected) - t_kill, 4) if elected else None,
    }
    ens.restart(leader)
    ens.wait_stable(timeout=90)
    return result


def summarize(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": round(statistics.median(values), 4), "max": round(max(values), 4),
            "min": round(min(values), 4), "n": len(values)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", choices=["warren", "zookeeper"], default="warren")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--tick-time", type=int, default=2000,
                    help="tickTime in ms (default 2000, as in ZOOKEEPER_FACTS.md)")
    ap.add_argument("--deadline", type=float, default=30.0,
                    help="seconds a trial may take to recover (default 30)")
    ap.add_argument("--keep", action="store_true", help="keep the ensemble's directory")
    args = ap.parse_args(argv)

    base = tempfile.mkdtemp(prefix=f"recovery-latency-{args.system}-")
    trials, ok, error = [], True, None
    ens = None
    try:
        ens = Ensemble(args.system, base, participants=3, tick_time=args.tick_time,
                       sync_limit=5, init_limit=10, name="latency")
        ens.start(timeout=90)
        create_root(ens, "/latency")
        for n in range(1, args.trials + 1):
            r = run_trial(ens, n, args.deadline)
            trials.append(r)
            print(f"trial {n}: killed leader server.{r['killed']}, writes via "
                  f"server.{r['writer_via']}: first write after "
                  f"{r['write_recovery_s']} s, Mode: leader after {r['leader_elected_s']} s "
                  f"(server.{r['new_leader']})", flush=True)
            if r["write_recovery_s"] is None or r["leader_elected_s"] is None:
                ok = False
    except Exception as e:  # noqa: BLE001 - reported in the JSON and the exit status
        ok, error = False, f"{type(e).__name__}: {e}"
        print(f"error: {error}", file=sys.stderr)
        if ens is not None:
            print(ens.describe(), file=sys.stderr)
    finally:
        if ens is not None:
            ens.close()
    result = {
        "system": args.system,
        "servers": 3,
        "tickTime": args.tick_time,
        "write_interval_s": WRITE_INTERVAL,
        "trials": trials,
        "write_recovery_s": summarize(t["write_recovery_s"] for t in trials),
        "leader_elected_s": summarize(t["leader_elected_s"] for t in trials),
        "ok": ok,
        "error": error,
    }
    print(f"{args.system}: write recovery {result['write_recovery_s']}, "
          f"leader elected {result['leader_elected_s']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    if args.keep or not ok:
        print(f"ensemble directory kept: {base}", file=sys.stderr)
    else:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
