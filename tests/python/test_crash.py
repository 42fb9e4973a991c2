"""Crash consistency: SIGKILL the real server at random moments under a pipelined writer, restart
it on the same data directory, and check that the recovered state is exactly a prefix of what
was issued that covers every acknowledged write.

The argument
------------
One session issues a known sequence of writes: creates of ``/crash/k%08d`` (key index i =
0, 1, 2, ..., never reused), conditional ``set_data`` (mostly on a few hot keys), conditional
deletes, and a few two-op ``multi`` (create a new key + set a hot key). Every write has a
global sequence number ``seq`` in issue order, never reused either: writes lost in a crash
burn their numbers and key indices, so a lost write that reappears later is caught. Data
written by write ``seq`` to key i is ``encode(kind, i, seq)``: self-describing, of varying
length, ending in a CRC, so a torn or mixed value cannot decode.

ZooKeeper applies one session's writes in issue order and answers them in that order, so
after a crash the tree must equal ``state(P)``, the state after exactly the first P writes of
the cycle, for some P with

    A <= P <= D

where A is the number of acknowledged writes (they must form a prefix of the cycle: FIFO) and
D the number of writes queued before the killed process was reaped (a write queued after
that can never reach any server: the old client is stopped before the restart). Every state
is compared as key -> (seq of the last write, dataVersion), which is exact; the check walks
P from A to D incrementally. On top of that:

* data must decode and match its key, and a version-0 node must hold create data, a node
  with version > 0 set data (a half-applied write would break one of these);
* zxids must be consistent with the issue order across all restarts: ordering keys by the
  seq of their last write orders their mzxid strictly (equal inside one multi), ordering by
  key index orders czxid strictly, ``version == 0 <=> czxid == mzxid``, and no node's mzxid
  exceeds the zxid the server's log says it recovered to;
* every write is conditional on the version the model expects, so a divergence also shows
  up at once as an unexpected BadVersion / NoNode / NodeExists (any error other than
  connection loss fails the test);
* the server must not have died before the kill, must restart within RESTART_LIMIT seconds,
  and (Warren) its log for that start must say ``recovered to zxid``; a torn-tail warning is
  allowed and counted.

Each cycle continues from the recovered state on the same data directory. The server runs
with a small ``snapCount`` and 1 MiB log segments so that snapshots and segment rolls happen
(and get killed) during the run.

What SIGKILL cannot show: the page cache survives the kill, so a server that acknowledged
after ``write`` but before ``fdatasync`` would pass; that needs power-loss simulation. This
test catches acknowledgements before the write, reordering, lost or resurrected writes, half
writes, and recovery / torn-tail / snapshot / segment-roll bugs under crashes.

Knobs (environment): CRASH_SEED (printed at the start and on failure; it fixes each cycle's
kill delay, in-flight window and write choices, but not the timing, so a rerun reproduces the
schedule, not necessarily the exact kill point), CRASH_CYCLES (default
8; the long run in results/crash used 200), CRASH_SNAP_COUNT (1000), CRASH_PREALLOC_KB (1024),
CRASH_SUMMARY (write a JSON summary of the run to this path). WARREN_TEST_TARGET=zookeeper
runs the same test against real ZooKeeper 3.8 to validate the test itself.

On failure the data directory, the server log, a copy of the newest log segments taken before
the last restart, and the cycle's history are kept under /tmp/warren-crash-evidence-*.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import zlib
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, SessionExpiredError

from servers import WarrenServer, make_server, target_kind

ROOT = "/crash"
CYCLES = int(os.environ.get("CRASH_CYCLES", "8"))
SEED = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
SERVER_CFG = {
    "snapCount": os.environ.get("CRASH_SNAP_COUNT", "1000"),
    "preAllocSize": os.environ.get("CRASH_PREALLOC_KB", "1024"),
}
IN_FLIGHT = (50, 200)        # writes in flight, drawn per cycle
KILL_AFTER = (0.05, 0.8)     # seconds of load before the SIGKILL, drawn per cycle
LIVE_MAX = 1500              # past this many keys deletes get likely (reads stay cheap)
HOT_KEYS = 6                 # keys that take most of the set_data
RESTART_LIMIT = 20.0         # seconds from spawn to answering srvr, Warren
WRITER_STALL = 30.0          # no reply for this long while writing = failure
# Outcomes that leave a write's fate unknown (it may or may not have been applied).
UNKNOWN = (ConnectionLoss, SessionExpiredError)  # ConnectionClosedError is a SessionExpiredError
KIND = target_kind()
PER_CYCLE_BUDGET = 6 if KIND == "warren" else 25


def path(key: int) -> str:
    return f"{ROOT}/k{key:08d}"


def encode(kind: str, key: int, seq: int) -> bytes:
    """The data write `seq` puts in key `key` ("c" create, "s" set): self-describing, 30-330
    bytes, CRC-terminated."""
    head = f"{kind}:{key}:{seq}:"
    n = zlib.crc32(head.encode()) % 300
    body = head + (f"{seq:x}." * (n // 2 + 1))[:n]
    return f"{body}#{zlib.crc32(body.encode()):08x}".encode()


def decode(key: int, data: bytes) -> tuple[str, int]:
    """(kind, seq) of a value, or ValueError if it is not exactly what some write put there."""
    try:
        kind, k, seq, _ = data.decode("ascii").split(":", 3)
        if int(k) != key or kind not in ("c", "s") or encode(kind, key, int(seq)) != data:
            raise ValueError
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"k{key:08d}: data is not a complete value of this key: {data[:100]!r} "
                         f"({len(data)} bytes)") from None
    return kind, int(seq)


# --- the model ------------------------------------------------------------------------------
# A state is {key index: (seq of the last write to it, dataVersion)}.
# Ops: ("create", seq, key) ("set", seq, key, expected_version) ("delete", seq, key, expected_version)
#      ("multi", seq, new_key, hot_key, expected_version_of_hot_key)


def apply(state: dict, op: tuple) -> None:
    kind, seq = op[0], op[1]
    if kind == "create":
        state[op[2]] = (seq, 0)
    elif kind == "set":
        state[op[2]] = (seq, state[op[2]][1] + 1)
    elif kind == "delete":
        del state[op[2]]
    else:
        state[op[2]] = (seq, 0)
        state[op[3]] = (seq, state[op[3]][1] + 1)


class History:
    """The verified state so far (`base`), the writes issued in the current cycle, and the
    state the writer assumes after all of them (`issued`, used to choose valid writes)."""

    def __init__(self):
        self.base: dict = {}
        self.issued: dict = {}
        self.cycle_ops: list = []
        self.live: list = []
        self.pos: dict = {}
        self.hot: list = []
        self.next_seq = 0
        self.next_key = 0
        self.total_issued = 0

    def reset_to(self, state: dict) -> None:
        """Continue from a verified recovered state; writes not in it are forgotten (their seq
        numbers and keys are not reused)."""
        self.base = dict(state)
        self.issued = dict(state)
        self.cycle_ops = []
        self.live = sorted(state)
        self.pos = {k: i for i, k in enumerate(self.live)}
        self.hot = [k for k in self.hot if k in state]

    def _add_live(self, k):
        self.pos[k] = len(self.live)
        self.live.append(k)

    def _remove_live(self, k):
        i = self.pos.pop(k)
        last = self.live.pop()
        if last != k:
            self.live[i] = last
            self.pos[last] = i
        if k in self.hot:
            self.hot.remove(k)

    def _hot_key(self, rng):
        while len(self.hot) < HOT_KEYS and len(self.hot) < len(self.live):
            k = rng.choice(self.live)
            if k not in self.hot:
                self.hot.append(k)
        return rng.choice(self.hot)

    def next_op(self, rng) -> tuple:
        seq = self.next_seq
        self.next_seq += 1
        n = len(self.live)
        p_delete = 0.08 if n < LIVE_MAX else 0.45
        r = rng.random()
        if n and r < 0.17:
            k = self._hot_key(rng) if rng.random() < 0.75 else rng.choice(self.live)
            op = ("set", seq, k, self.issued[k][1])
        elif n and r < 0.17 + p_delete:
            k = rng.choice(self.live)
            op = ("delete", seq, k, self.issued[k][1])
            self._remove_live(k)
        elif n and r < 0.20 + p_delete:
            h = self._hot_key(rng)
            op = ("multi", seq, self.next_key, h, self.issued[h][1])
            self.next_key += 1
            self._add_live(op[2])
        else:
            op = ("create", seq, self.next_key)
            self.next_key += 1
            self._add_live(op[2])
        apply(self.issued, op)
        self.cycle_ops.append(op)
        self.total_issued += 1
        return op


def find_prefix(base: dict, ops: list, lo: int, hi: int, observed: dict):
    """The smallest P in [lo, hi] with state(P) == observed, or None."""
    s = dict(base)
    for op in ops[:lo]:
        apply(s, op)
    if s == observed:
        return lo
    for j in range(lo, min(hi, len(ops))):
        apply(s, ops[j])
        if s == observed:
            return j + 1
    return None


def state_after(base: dict, ops: list, p: int) -> dict:
    s = dict(base)
    for op in ops[:p]:
        apply(s, op)
    return s


def describe_diff(expected: dict, observed: dict, limit: int = 8) -> str:
    missing = sorted(set(expected) - set(observed))
    extra = sorted(set(observed) - set(expected))
    wrong = sorted(k for k in set(expected) & set(observed) if expected[k] != observed[k])
    parts = [f"{len(missing)} missing {[f'k{k:08d}={expected[k]}' for k in missing[:limit]]}",
             f"{len(extra)} unexpected {[f'k{k:08d}={observed[k]}' for k in extra[:limit]]}",
             f"{len(wrong)} different "
             f"{[f'k{k:08d}: want {expected[k]} got {observed[k]}' for k in wrong[:limit]]}"]
    return "; ".join(parts) + "  (values are (seq of last write, dataVersion))"


# --- client side ----------------------------------------------------------------------------
def connect(server) -> KazooClient:
    # Fast reconnect attempts so that stop() returns promptly after the server died.
    c = KazooClient(hosts=server.host_port, timeout=10,
                    connection_retry={"max_tries": -1, "delay": 0.05, "max_delay": 0.25})
    bounded("start", c, lambda: c.start(timeout=15))
    return c


CLIENT_LIMIT = 40.0  # seconds for kazoo's start() or stop() before the test fails with stacks


def bounded(what: str, client: KazooClient, fn) -> None:
    """Runs fn() (a kazoo start or stop) or fails with every thread's stack if it does not
    return within CLIENT_LIMIT: kazoo's stop() joins its connection thread without a timeout,
    and start() calls stop() when it times out. A CI run once hung there for half an hour."""
    done = threading.Event()
    failure: list = []

    def run():
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            failure.append(e)
        finally:
            done.set()

    threading.Thread(target=run, name=f"kazoo-{what}", daemon=True).start()
    if not done.wait(CLIENT_LIMIT):
        frames = sys._current_frames()
        stacks = "\n".join(f"--- {t.name}\n" + "".join(traceback.format_stack(frames[t.ident]))
                           for t in threading.enumerate() if t.ident in frames)
        raise AssertionError(f"kazoo client {what} did not return within {CLIENT_LIMIT:.0f} s "
                             f"(state {client.state}); threads:\n{stacks}")
    if failure:
        raise failure[0]


def close(client: KazooClient) -> None:
    def stop_and_close():
        client.stop()
        client.close()
    bounded("stop", client, stop_and_close)


def issue(client: KazooClient, op: tuple):
    kind, seq = op[0], op[1]
    if kind == "create":
        return client.create_async(path(op[2]), encode("c", op[2], seq))
    if kind == "set":
        return client.set_async(path(op[2]), encode("s", op[2], seq), version=op[3])
    if kind == "delete":
        return client.delete_async(path(op[2]), version=op[3])
    t = client.transaction()
    t.create(path(op[2]), encode("c", op[2], seq))
    t.set_data(path(op[3]), encode("s", op[3], seq), version=op[4])
    return t.commit_async()


def outcome(a) -> tuple[str, object]:
    """("ack", None) | ("unknown", exc or None) | ("error", exc)."""
    if not a.ready():
        return "unknown", None
    if a.successful():
        bad = [r for r in a.value if isinstance(r, Exception)] if isinstance(a.value, list) else []
        return ("error", bad) if bad else ("ack", None)
    exc = a.exception
    return ("unknown", exc) if isinstance(exc, UNKNOWN) else ("error", exc)


def write(client, hist: History, rng, cap: int, lock: threading.Lock, stop) -> list:
    """Issues hist.next_op() with up to `cap` in flight until stop() is true; returns the async
    results, one per op of hist.cycle_ops issued here. The op is appended to the history
    (under `lock`) BEFORE it is handed to kazoo, so a count of ops taken under the lock bounds
    what can have been queued by then."""
    sem = threading.Semaphore(cap)
    results = []
    last_progress = time.monotonic()
    while not stop():
        if not sem.acquire(timeout=0.1):
            if time.monotonic() - last_progress > WRITER_STALL:
                raise AssertionError(f"writer stalled: no reply for {WRITER_STALL}s with {cap} "
                                     f"writes in flight")
            continue
        last_progress = time.monotonic()
        with lock:
            op = hist.next_op(rng)
        a = issue(client, op)
        results.append(a)
        a.rawlink(lambda _a: sem.release())
    return results


# --- server side ----------------------------------------------------------------------------
def new_server(base: Path):
    return make_server(KIND, base_dir=base / KIND, extra_cfg=dict(SERVER_CFG), name=f"crash-{KIND}")


def log_size(server) -> int:
    p = getattr(server, "out_path", None)
    try:
        return p.stat().st_size if p else 0
    except FileNotFoundError:
        return 0


def start_and_check_log(server) -> dict:
    """Starts the server on its existing data directory; checks the time it took and (Warren)
    what this start logged."""
    offset = log_size(server)
    t0 = time.monotonic()
    server.start()
    took = time.monotonic() - t0
    info = {"restart_s": round(took, 3), "recovered_zxid": None, "torn_tail": False}
    if isinstance(server, WarrenServer):
        assert took < RESTART_LIMIT, f"restart took {took:.1f}s (limit {RESTART_LIMIT}s)"
        with open(server.out_path, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", errors="replace")
        m = re.search(r"recovered to zxid (0x[0-9a-f]+)", text)
        assert m, f"this start did not log 'recovered to zxid':\n{text[-3000:]}"
        assert "panicked" not in text, f"the server panicked:\n{text[-3000:]}"
        info["recovered_zxid"] = int(m.group(1), 16)
        info["torn_tail"] = "torn tail" in text
    return info


def keep_log_tail_copy(server) -> None:
    """Before a restart: copy the newest log segments (the only files recovery rewrites) and
    list the data directory, so that evidence shows the disk as the crash left it."""
    if not isinstance(server, WarrenServer):
        return
    dest = server.base_dir / "pre-restart"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir()
    files = sorted(p for p in server.data_dir.rglob("*") if p.is_file())
    (dest / "listing.txt").write_text(
        "".join(f"{p.stat().st_size:>12} {p.relative_to(server.data_dir)}\n" for p in files))
    segs = sorted((int(p.name[4:], 16), p) for p in files if re.fullmatch(r"log\.[0-9a-f]+", p.name))
    for _, p in segs[-2:]:
        shutil.copy2(p, dest / p.name)


def data_files(server) -> dict:
    """How many log segments and snapshots the run left (shows that rolls and snapshots
    happened under the kills)."""
    names = [p.name for p in server.data_dir.rglob("*") if p.is_file()]
    return {"log_segments": sum(bool(re.fullmatch(r"log\.[0-9a-f]+", n)) for n in names),
            "snapshots": sum(n.startswith("snapshot.") for n in names)}


def terminate(server, timeout: float = 10.0) -> int:
    """SIGTERM and wait; the process must exit by itself (no SIGKILL fallback)."""
    server.proc.terminate()
    rc = server.proc.wait(timeout=timeout)
    server.kill()  # process already gone: only closes the log file
    return rc


# --- reading and checking the recovered tree -----------------------------------------------
def read_tree(client) -> tuple[dict, dict, list]:
    """({key: (seq, version)}, {key: (czxid, mzxid)}, problems) for the whole /crash subtree."""
    names, root_stat = client.get_children(ROOT, include_data=True)
    observed, zx, problems = {}, {}, []
    if root_stat.numChildren != len(names):
        problems.append(f"{ROOT}: numChildren {root_stat.numChildren} but {len(names)} children")
    for i in range(0, len(names), 500):
        pending = [(name, client.get_async(f"{ROOT}/{name}")) for name in names[i:i + 500]]
        for name, a in pending:
            m = re.fullmatch(r"k(\d{8})", name)
            if not m:
                problems.append(f"unexpected child {name!r}")
                continue
            key = int(m.group(1))
            try:
                data, st = a.get(timeout=30)
            except Exception as e:  # nothing else writes: a listed child must be readable
                problems.append(f"{name}: listed but get failed: {e!r}")
                continue
            try:
                kind, seq = decode(key, data)
            except ValueError as e:
                problems.append(f"half/garbled write: {e}")
                continue
            if (kind == "c") != (st.version == 0):
                problems.append(f"half-applied write: {name} version {st.version} holds "
                                f"{'create' if kind == 'c' else 'set'} data of seq {seq}")
            observed[key] = (seq, st.version)
            zx[key] = (st.czxid, st.mzxid)
    return observed, zx, problems


def zxid_problems(observed: dict, zx: dict, recovered_zxid) -> list:
    out = []
    by_seq = sorted(observed, key=lambda k: (observed[k][0], k))
    for a, b in zip(by_seq, by_seq[1:]):
        (sa, _), (sb, _) = observed[a], observed[b]
        ma, mb = zx[a][1], zx[b][1]
        if (sa == sb and ma != mb) or (sa < sb and not ma < mb):
            out.append(f"mzxid order breaks issue order: k{a:08d} seq {sa} mzxid {ma:#x}, "
                       f"k{b:08d} seq {sb} mzxid {mb:#x}")
    keys = sorted(observed)
    for a, b in zip(keys, keys[1:]):
        if not zx[a][0] < zx[b][0]:
            out.append(f"czxid order breaks create order: k{a:08d} {zx[a][0]:#x}, "
                       f"k{b:08d} {zx[b][0]:#x}")
    for k in keys:
        if (observed[k][1] == 0) != (zx[k][0] == zx[k][1]):
            out.append(f"k{k:08d}: version {observed[k][1]} but czxid {zx[k][0]:#x} mzxid {zx[k][1]:#x}")
        if recovered_zxid is not None and zx[k][1] > recovered_zxid:
            out.append(f"k{k:08d}: mzxid {zx[k][1]:#x} beyond the recovered zxid {recovered_zxid:#x}")
    return out[:10]


# --- evidence -------------------------------------------------------------------------------
def keep_evidence(server, hist: History, ctx: dict) -> str:
    dest = Path(tempfile.mkdtemp(prefix=f"warren-crash-evidence-seed{SEED}-", dir="/tmp"))
    try:
        if server.is_running():
            server.kill()  # stop changes to the data directory; SIGKILL writes nothing
        shutil.copytree(server.base_dir, dest / "server", dirs_exist_ok=True)
    except Exception as e:  # pragma: no cover - best effort
        (dest / "copy-error.txt").write_text(repr(e))
    record = {
        "seed": SEED, "cycles": CYCLES, "kind": KIND, "cfg": SERVER_CFG,
        "cycle": ctx.get("cycle"), "done_cycles": ctx.get("records", []),
        "base_state": {f"k{k:08d}": v for k, v in sorted(hist.base.items())},
        "cycle_ops": hist.cycle_ops,
        "cycle_outcomes": ctx.get("outcomes"),
        "acked": ctx.get("acked"), "issued_at_death": ctx.get("issued_at_death"),
        "observed": ({f"k{k:08d}": v for k, v in sorted(ctx["observed"].items())}
                     if ctx.get("observed") is not None else None),
    }
    (dest / "history.json").write_text(json.dumps(record, indent=1, default=repr))
    return str(dest)


# --- the crash test -------------------------------------------------------------------------
def load_and_kill(server, client, hist: History, rng, ctx: dict) -> dict:
    """Writes under load, SIGKILLs the server after a random delay while writes are in
    flight, stops the client. Returns the cycle's counters."""
    delay = rng.uniform(*KILL_AFTER)
    cap = rng.randint(*IN_FLIGHT)
    lock = threading.Lock()
    dead = threading.Event()
    k = {}

    def killer():
        try:
            time.sleep(delay)
            with lock:
                k["queued_before_kill"] = len(hist.cycle_ops)
            k["rc_before_kill"] = server.proc.poll()
            server.kill()
        finally:
            with lock:
                k["issued_at_death"] = len(hist.cycle_ops)
            dead.set()

    started = []

    def stop():
        if not started:
            started.append(1)
            threading.Thread(target=killer, name="crash-killer", daemon=True).start()
        return dead.is_set()

    try:
        results = write(client, hist, rng, cap, lock, stop)
    finally:
        dead.wait(timeout=delay + 30)
        close(client)  # never reaches the restarted server: its queued writes fail here
    assert k.get("rc_before_kill") is None, \
        f"the server exited by itself (code {k.get('rc_before_kill')}) before the kill"
    d = k["issued_at_death"]
    outcomes = [outcome(a) for a in results]
    ctx["outcomes"] = [o if o == "ack" else f"{o}:{e!r}" for o, e in outcomes]
    ctx["issued_at_death"] = d
    errors = [(j, hist.cycle_ops[j], e) for j, (o, e) in enumerate(outcomes) if o == "error"]
    assert not errors, (f"{len(errors)} writes failed with an error other than connection loss "
                        f"(the server diverged from the issue order), first: {errors[:3]}")
    acked = [j for j, (o, _) in enumerate(outcomes) if o == "ack"]
    a = len(acked)
    ctx["acked"] = a
    assert acked == list(range(a)), f"acknowledgements out of issue order: {acked[:20]}..."
    assert a <= d, f"{a} acks but only {d} writes were queued before the server died"
    # Writes queued before SIGKILL was sent and never acknowledged: outstanding at the kill
    # (a lower bound: it leaves out writes queued while the signal was on its way).
    in_flight = max(0, k["queued_before_kill"] - a)
    return {"delay_ms": round(delay * 1000), "cap": cap, "issued": len(results),
            "queued_before_kill": k["queued_before_kill"], "issued_at_death": d, "acked": a,
            "in_flight_at_kill": in_flight}


def check_recovered(client, hist: History, lo: int, hi: int, recovered_zxid, ctx) -> int:
    observed, zx, problems = read_tree(client)
    ctx["observed"] = observed
    assert not problems, "recovered tree is damaged:\n  " + "\n  ".join(problems[:10])
    p = find_prefix(hist.base, hist.cycle_ops, lo, hi, observed)
    if p is None:
        lo_state = state_after(hist.base, hist.cycle_ops, lo)
        hi_state = state_after(hist.base, hist.cycle_ops, hi)
        raise AssertionError(
            f"recovered state is not the state after any prefix P of the cycle's writes with "
            f"{lo} (acknowledged) <= P <= {hi} (queued before death), "
            f"{len(hist.cycle_ops)} issued\n"
            f"  vs P={lo} (every acknowledged write): {describe_diff(lo_state, observed)}\n"
            f"  vs P={hi}: {describe_diff(hi_state, observed)}")
    zp = zxid_problems(observed, zx, recovered_zxid)
    assert not zp, "zxids inconsistent with the issue order:\n  " + "\n  ".join(zp)
    hist.reset_to(observed)
    return p


@pytest.mark.slow
@pytest.mark.timeout(60 + PER_CYCLE_BUDGET * CYCLES)
def test_sigkill_keeps_every_acknowledged_write(tmp_path):
    print(f"\ncrash test: CRASH_SEED={SEED} CRASH_CYCLES={CYCLES} target={KIND} cfg={SERVER_CFG}")
    server = new_server(tmp_path)
    hist = History()
    ctx: dict = {"records": []}
    records = ctx["records"]
    t_start = time.monotonic()
    try:
        server.start()
        client = connect(server)
        client.ensure_path(ROOT)
        for cycle in range(CYCLES):
            ctx.update(cycle=cycle, outcomes=None, acked=None, issued_at_death=None, observed=None)
            # One generator per cycle: a cycle's kill delay, window and write choices depend
            # only on the seed, the cycle number and the state it starts from.
            rng = random.Random(f"{SEED}/{cycle}")
            rec = {"cycle": cycle, **load_and_kill(server, client, hist, rng, ctx)}
            keep_log_tail_copy(server)
            rec.update(start_and_check_log(server))
            client = connect(server)  # a NEW session reads the recovered tree
            p = check_recovered(client, hist, rec["acked"], rec["issued_at_death"],
                                rec["recovered_zxid"], ctx)
            rec.update(applied=p, unacked_but_applied=p - rec["acked"], keys=len(hist.base))
            records.append(rec)
        close(client)
        kills_in_flight = sum(r["in_flight_at_kill"] > 0 for r in records)
        summary = {
            "seed": SEED, "cycles": CYCLES, "target": KIND, "cfg": SERVER_CFG,
            "seconds": round(time.monotonic() - t_start, 1),
            "kills_with_writes_in_flight": kills_in_flight,
            "writes_issued": hist.total_issued,
            "writes_acknowledged": sum(r["acked"] for r in records),
            "writes_in_flight_at_kills": sum(r["in_flight_at_kill"] for r in records),
            "unacknowledged_writes_found_applied": sum(r["unacked_but_applied"] for r in records),
            "writes_applied": sum(r["applied"] for r in records),
            "torn_tails": sum(bool(r["torn_tail"]) for r in records),
            "max_restart_s": max(r["restart_s"] for r in records),
            "keys_at_end": len(hist.base),
            "data_files_at_end": data_files(server),
            "cycle_records": records,
        }
        print(json.dumps({k: v for k, v in summary.items() if k != "cycle_records"}))
        if os.environ.get("CRASH_SUMMARY"):
            Path(os.environ["CRASH_SUMMARY"]).write_text(json.dumps(summary, indent=1) + "\n")
        # The test proves something only if kills land while writes are outstanding.
        assert kills_in_flight >= max(1, CYCLES // 2), \
            f"only {kills_in_flight} of {CYCLES} kills hit writes in flight"
    except BaseException as e:
        where = keep_evidence(server, hist, ctx)
        note = (f"crash test failed: CRASH_SEED={SEED} cycle {ctx.get('cycle')}; evidence "
                f"(data dir, server log, pre-restart log segments, history.json) kept in {where}")
        print(note)
        e.add_note(note)
        raise
    finally:
        server.cleanup()


# --- clean stop -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(120 if KIND == "warren" else 240)
def test_sigterm_restart_keeps_everything_acknowledged(tmp_path):
    """Deterministic: pipelined writes, all acknowledged; SIGTERM; restart; the tree equals
    the state after every write, twice in a row."""
    rng = random.Random(20261125)
    server = new_server(tmp_path)
    hist = History()
    try:
        server.start()
        for rnd in range(2):
            client = connect(server)
            client.ensure_path(ROOT)
            lock = threading.Lock()
            target = hist.total_issued + 3000
            results = write(client, hist, rng, 100, lock, lambda: hist.total_issued >= target)
            deadline = time.monotonic() + 60
            for a in results:
                a.wait(max(0.0, deadline - time.monotonic()))
            outcomes = [outcome(a) for a in results]
            bad = [(op, o) for op, o in zip(hist.cycle_ops, outcomes) if o[0] != "ack"]
            assert not bad, f"{len(bad)} writes not acknowledged, first {bad[:3]}"
            close(client)
            rc = terminate(server)
            info = start_and_check_log(server)
            client = connect(server)
            observed, zx, problems = read_tree(client)
            close(client)
            assert not problems, problems[:10]
            expected = hist.issued
            assert observed == expected, f"round {rnd} (exit code {rc}): " + describe_diff(expected, observed)
            assert not zxid_problems(observed, zx, info["recovered_zxid"])
            hist.reset_to(observed)
        assert len(hist.base) > 1000
    finally:
        server.cleanup()
