"""Ensemble helpers: real multi-process ZooKeeper 3.8 or Warren ensembles on one host.

An ``Ensemble`` writes one directory per member (``zoo.cfg``, ``data/myid``), configured
exactly like a ZooKeeper ensemble::

    tickTime=1000  initLimit=10  syncLimit=5
    server.1=127.0.0.1:<quorumPort>:<electionPort>
    server.2=...
    server.5=127.0.0.1:<quorumPort>:<electionPort>:observer   (and peerType=observer in
                                                             the observer's own zoo.cfg)

and starts them with the same command as a standalone server (``servers.py``: ZooKeeper's
``QuorumPeerMain zoo.cfg`` with ``-Xmx128m``, or ``$WARREN_BIN start-foreground zoo.cfg``).
A member's role is read from the ``srvr`` four-letter word (``Mode: leader|follower|observer``).

All ports are on 127.0.0.1 in 23000-23999. With ``proxied=True`` every ordered pair of
members (i, j) gets two ``tcpproxy`` links (quorum port and election port): member i's
``zoo.cfg`` names the links as j's addresses, its own ``server.i`` line names its real
ports. ``isolate(i)`` / ``heal()`` then partition a member (see ``tcpproxy.py``).

Every wait is a polling loop with a deadline. ``close()`` kills every process the ensemble
started (by pid) and the proxies; processes also die with the test process
(PR_SET_PDEATHSIG), so nothing outlives a run.

Per-system knobs live in the tables below (``SYNC_LOG_PATTERNS``, ``diff_window_settings``).
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import threading
import time
from pathlib import Path

from kazoo.exceptions import KazooException

from servers import (
    LOCALHOST,
    WarrenServer,
    ZooKeeperServer,
    four_letter,
    warren_bin,
)

SYSTEMS = ("zookeeper", "warren")
PORT_LO, PORT_HI = 23000, 23999

# ---------------------------------------------------------------------------------------
# Per-system tables
# ---------------------------------------------------------------------------------------
# What the *leader* logs when it brings a learner (myid {sid}) in sync, by sync kind.
# ZooKeeper 3.8.0 (LearnerHandler.syncFollower / queueCommittedProposals / sendSnapshot):
#   INFO  "Sending DIFF zxid=0x{} for peer sid: {}"  (and the same with two spaces before "for")
#   INFO  "Sending TRUNC zxid=0x{}  for peer sid: {}"               (TRUNC inside the committed log)
#   DEBUG "Sending TRUNC to follower zxidToSend=0x{} for peer sid:{}" (learner ahead of the leader's
#         whole log; the ensemble enables DEBUG for the LearnerHandler logger to see it)
#   INFO  "Sending snapshot last zxid of peer is 0x{}, zxid of leader is 0x{}, ..." (no sid in it)
# Warren (assumed; adjust here): INFO "sync with follower {sid}: DIFF|TRUNC|SNAP".
SYNC_LOG_PATTERNS: dict[str, dict[str, str]] = {
    "zookeeper": {
        "DIFF": r"Sending DIFF zxid=0x[0-9a-f]+ +for peer sid: {sid}\b",
        "TRUNC": r"Sending TRUNC (?:zxid=0x[0-9a-f]+ +for peer sid: ?"
                 r"|to follower zxidToSend=0x[0-9a-f]+ for peer sid: ?){sid}\b",
        "SNAP": r"Sending snapshot last zxid of peer is 0x[0-9a-f]+",
    },
    "warren": {
        "DIFF": r"sync with follower {sid}: DIFF\b",
        "TRUNC": r"sync with follower {sid}: TRUNC\b",
        "SNAP": r"sync with follower {sid}: SNAP\b",
    },
}

# What the *learner* logs for the same event (checked in addition when not None).
# ZooKeeper 3.8.0 Learner.syncWithLeader: INFO "Getting a diff from the leader 0x{}",
# INFO "Getting a snapshot from leader 0x{}", WARN "Truncating log to get in sync with the
# leader 0x{}".
LEARNER_SYNC_LOG_PATTERNS: dict[str, dict[str, str | None]] = {
    "zookeeper": {
        "DIFF": r"Getting a diff from the leader 0x[0-9a-f]+",
        "TRUNC": r"Truncating log to get in sync with the leader 0x[0-9a-f]+",
        "SNAP": r"Getting a snapshot from leader 0x[0-9a-f]+",
    },
    "warren": {"DIFF": None, "TRUNC": None, "SNAP": None},
}

DIFF_WINDOW = 500  # ZooKeeper's minimum (and default) zookeeper.commitLogCount


def diff_window_settings(system: str, window: int = DIFF_WINDOW) -> tuple[dict, dict]:
    """(extra zoo.cfg keys, JVM system properties) that make the leader keep only `window`
    recent transactions for DIFFs, so a learner further behind gets a SNAP.

    ZooKeeper: ``zookeeper.commitLogCount`` (it refuses values below 500) plus
    ``zookeeper.snapshotSizeFactor=-1``, which turns off DIFFs read back from the on-disk
    transaction log (otherwise a learner behind the in-memory window still gets a DIFF).
    Warren: the ``warren.diffWindow`` zoo.cfg key.
    """
    if system == "zookeeper":
        return {}, {"zookeeper.commitLogCount": str(window),
                    "zookeeper.snapshotSizeFactor": "-1"}
    return {"warren.diffWindow": str(window)}, {}


# ---------------------------------------------------------------------------------------
# System selection
# ---------------------------------------------------------------------------------------
def selected_systems() -> list[str]:
    """WARREN_ENSEMBLE_SYSTEMS=zookeeper,warren (the default: both)."""
    raw = os.environ.get("WARREN_ENSEMBLE_SYSTEMS", ",".join(SYSTEMS))
    systems = [s.strip().lower() for s in raw.split(",") if s.strip()]
    bad = [s for s in systems if s not in SYSTEMS]
    if bad or not systems:
        raise ValueError(f"WARREN_ENSEMBLE_SYSTEMS must list some of {SYSTEMS}, got {raw!r}")
    return list(dict.fromkeys(systems))


def check_system_available(system: str) -> str | None:
    """None if the system can be started, else why not (a failure, never a skip)."""
    if system == "zookeeper":
        from servers import ZK_JAR
        if not ZK_JAR.exists():
            return f"{ZK_JAR} missing: run ci/install-deps.sh"
        return None
    binary = warren_bin()
    if not binary.exists():
        return (f"Warren binary {binary} not found: build it (cargo build --release) or set "
                f"WARREN_BIN")
    return None


# ---------------------------------------------------------------------------------------
# Ports
# ---------------------------------------------------------------------------------------
class PortAllocator:
    """Hands out ports in [PORT_LO, PORT_HI] that were bindable a moment ago, never the
    same port twice in one process (until the range is exhausted, then it starts over).
    Binding without SO_REUSEADDR also skips ports with TIME_WAIT leftovers."""

    def __init__(self, lo: int = PORT_LO, hi: int = PORT_HI):
        self.lo, self.hi = lo, hi
        self.used: set[int] = set()
        self.next = random.SystemRandom().randrange(lo, hi + 1)

    @staticmethod
    def _bindable(port: int) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((LOCALHOST, port))
                return True
            except OSError:
                return False

    def take(self, count: int) -> list[int]:
        out: list[int] = []
        size = self.hi - self.lo + 1
        for _ in range(2):
            for _ in range(size):
                port = self.next
                self.next = self.lo + (self.next - self.lo + 1) % size
                if port in self.used or not self._bindable(port):
                    continue
                self.used.add(port)
                out.append(port)
                if len(out) == count:
                    return out
            self.used = set(out)  # range exhausted: forget older allocations, go round again
        raise RuntimeError(f"could not find {count} free ports in {self.lo}-{self.hi}")


PORTS = PortAllocator()


# ---------------------------------------------------------------------------------------
# Members
# ---------------------------------------------------------------------------------------
class EnsembleError(AssertionError):
    pass


MODE_RE = re.compile(r"^Mode: *(\w+)", re.M)


def parse_mode(srvr_text: str) -> str | None:
    m = MODE_RE.search(srvr_text)
    return m.group(1) if m else None


class _MemberMixin:
    """Ensemble-member behaviour on top of servers.ZooKeeperServer / WarrenServer."""

    def _init_member(self, sid: int, observer: bool, quorum_port: int, election_port: int,
                     cluster: dict[int, tuple[int, int, bool]], ens_cfg: dict[str, str]):
        self.sid = sid
        self.observer = observer
        self.quorum_port = quorum_port
        self.election_port = election_port
        self.cluster = cluster          # sid -> (quorum port, election port, observer) as *I* see it
        self.ens_cfg = ens_cfg

    @property
    def role(self) -> str:
        return "observer" if self.observer else "participant"

    def cfg_lines(self) -> dict[str, str]:
        cfg = super().cfg_lines()  # type: ignore[misc]
        cfg.update(self.ens_cfg)
        if self.observer:
            cfg["peerType"] = "observer"
        for sid in sorted(self.cluster):
            q, e, obs = self.cluster[sid]
            cfg[f"server.{sid}"] = f"{LOCALHOST}:{q}:{e}" + (":observer" if obs else "")
        cfg.update(self.extra_cfg)  # type: ignore[attr-defined]
        return cfg

    def write_myid(self) -> None:
        (self.data_dir / "myid").write_text(f"{self.sid}\n")  # type: ignore[attr-defined]

    # -- process control (no readiness wait: a member alone never serves) ---------------
    def spawn(self) -> None:
        if self.is_running():  # type: ignore[attr-defined]
            return
        self.starts += 1  # type: ignore[attr-defined]
        self.paused = False
        self._spawn()  # type: ignore[attr-defined]

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid  # type: ignore[attr-defined]

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None  # type: ignore[attr-defined]

    def pause(self) -> None:
        if self.is_running():  # type: ignore[attr-defined]
            os.kill(self.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.is_running():  # type: ignore[attr-defined]
            os.kill(self.pid, signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:  # SIGKILL works on a stopped process too
        super().kill()  # type: ignore[misc]
        self.paused = False

    def stop(self) -> None:
        if getattr(self, "paused", False):
            self.resume()
        super().stop()  # type: ignore[misc]

    # -- status --------------------------------------------------------------------------
    def srvr(self, timeout: float = 2.0) -> str | None:
        try:
            return four_letter(LOCALHOST, self.port, "srvr", timeout)  # type: ignore[attr-defined]
        except OSError:
            return None

    def mode(self, timeout: float = 2.0) -> str | None:
        """'leader' | 'follower' | 'observer' | 'standalone' | None (down, electing, paused)."""
        if not self.is_running() or getattr(self, "paused", False):  # type: ignore[attr-defined]
            return None
        text = self.srvr(timeout)
        return parse_mode(text) if text else None

    # -- logs -----------------------------------------------------------------------------
    def log_size(self) -> int:
        try:
            return self.main_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int = 0) -> str:
        try:
            with open(self.main_log, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""


class ZooKeeperMember(_MemberMixin, ZooKeeperServer):
    heap = "128m"

    def __init__(self, *, sid, observer, quorum_port, election_port, cluster, ens_cfg, **kw):
        self._init_member(sid, observer, quorum_port, election_port, cluster, ens_cfg)
        super().__init__(**kw)
        self.write_myid()
        # "Sending TRUNC to follower zxidToSend=..." is a DEBUG line in 3.8.0
        with open(self.log4j_path, "a") as f:
            f.write("log4j.logger.org.apache.zookeeper.server.quorum.LearnerHandler=DEBUG\n")

    @property
    def main_log(self) -> Path:
        return self.log_path


class WarrenMember(_MemberMixin, WarrenServer):
    def __init__(self, *, sid, observer, quorum_port, election_port, cluster, ens_cfg, **kw):
        self._init_member(sid, observer, quorum_port, election_port, cluster, ens_cfg)
        super().__init__(**kw)
        self.write_myid()

    @property
    def main_log(self) -> Path:
        return self.out_path

    def status_cli(self, timeout: float = 10.0) -> str:
        """`warren status zoo.cfg` output (stdout + stderr)."""
        import subprocess
        r = subprocess.run([str(self.binary), "status", str(self.cfg_path)], capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return r.stdout + r.stderr


MEMBER_CLASSES = {"zookeeper": ZooKeeperMember, "warren": WarrenMember}

# Fast reconnects: kazoo's default connection backoff grows to an hour.
FAST_RETRY = dict(max_tries=-1, delay=0.05, backoff=1.5, max_jitter=0.05, max_delay=0.5)


# ---------------------------------------------------------------------------------------
# The ensemble
# ---------------------------------------------------------------------------------------
class Ensemble:
    def __init__(self, system: str, base_dir: str | os.PathLike, participants: int = 3,
                 observers: int = 0, proxied: bool = False, tick_time: int = 1000,
                 init_limit: int = 10, sync_limit: int = 5,
                 extra_cfg: dict[str, str] | None = None,
                 jvm_props: dict[str, str] | None = None, name: str = "ens"):
        if system not in MEMBER_CLASSES:
            raise ValueError(f"unknown system {system!r}")
        why = check_system_available(system)
        if why:
            raise EnsembleError(why)
        self.system = system
        self.name = name
        self.base_dir = Path(base_dir)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.sids = list(range(1, participants + observers + 1))
        self.observer_sids = set(self.sids[participants:])
        self.proxied = proxied
        self.clients: list = []
        self.hub = None
        self._closed = False

        ports = PORTS.take(3 * len(self.sids))
        real = {sid: tuple(ports[3 * k: 3 * k + 3]) for k, sid in enumerate(self.sids)}
        # real[sid] = (client, quorum, election)
        views: dict[int, dict[int, tuple[int, int, bool]]] = {}
        if proxied:
            from tcpproxy import ProxyHub
            self.hub = ProxyHub()
            pairs = [(i, j) for i in self.sids for j in self.sids if i != j]
            pports = PORTS.take(2 * len(pairs))
            link_port = {}
            for k, (i, j) in enumerate(pairs):
                link_port[(i, j, "quorum")] = pports[2 * k]
                link_port[(i, j, "election")] = pports[2 * k + 1]
            for (i, j, kind), port in link_port.items():
                rewrite = None
                if system == "zookeeper" and kind == "election":
                    rewrite = f"{LOCALHOST}:{link_port[(j, i, 'election')]}"
                target = real[j][1] if kind == "quorum" else real[j][2]
                self.hub.add_link(f"{i}->{j}/{kind}", port, target, src=i, dst=j, kind=kind,
                                  rewrite_initial=rewrite)
            for i in self.sids:
                views[i] = {}
                for j in self.sids:
                    if i == j:
                        views[i][j] = (real[j][1], real[j][2], j in self.observer_sids)
                    else:
                        views[i][j] = (link_port[(i, j, "quorum")],
                                       link_port[(i, j, "election")], j in self.observer_sids)
        else:
            for i in self.sids:
                views[i] = {j: (real[j][1], real[j][2], j in self.observer_sids)
                            for j in self.sids}

        ens_cfg = {"tickTime": str(tick_time), "initLimit": str(init_limit),
                   "syncLimit": str(sync_limit), "preAllocSize": "4096"}
        cls = MEMBER_CLASSES[system]
        self.members = {}
        for sid in self.sids:
            kw = dict(sid=sid, observer=sid in self.observer_sids, quorum_port=real[sid][1],
                      election_port=real[sid][2], cluster=views[sid], ens_cfg=ens_cfg,
                      base_dir=self.base_dir / f"{system}{sid}", port=real[sid][0],
                      extra_cfg=dict(extra_cfg or {}), name=f"{name}-{system}{sid}")
            if system == "zookeeper":
                kw["jvm_props"] = dict(jvm_props or {})
            self.members[sid] = cls(**kw)

    # -- lookup ---------------------------------------------------------------------------
    def __getitem__(self, sid: int):
        return self.members[sid]

    def __iter__(self):
        return iter(self.members.values())

    def running(self) -> list[int]:
        return [sid for sid, m in self.members.items() if m.is_running()]

    def participants(self) -> list[int]:
        return [sid for sid in self.sids if sid not in self.observer_sids]

    def hosts(self, sids=None) -> str:
        sids = self.sids if sids is None else list(sids)
        return ",".join(self.members[s].host_port for s in sids)

    def modes(self, sids=None) -> dict[int, str | None]:
        sids = self.sids if sids is None else list(sids)
        return {sid: self.members[sid].mode() for sid in sids}

    def describe(self) -> str:
        lines = [f"{self.name}: {self.system}, dir {self.base_dir}"]
        for sid, m in self.members.items():
            lines.append(f"  server.{sid} {m.role:11s} client {m.port} quorum {m.quorum_port} "
                         f"election {m.election_port} {m.status()} mode={m.mode()}")
        if self.hub is not None:
            lines.append(self.hub.describe())
        return "\n".join(lines)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 90.0, first: int | None = None) -> int:
        """Spawn every member; wait for one leader and everybody else following/observing.
        Returns the leader's sid.

        ``first``: the member seeded with an imported or exported history. It is spawned with
        just enough empty participants to make a majority with it (one of three, two of
        five), and only once it leads are the others spawned. Every majority of those first
        members includes the seed, and an empty member can never beat its vote, so the seed
        leads and the rest catch up from it. Starting the seed merely before the others is
        not enough: ZooKeeper's election retries a peer that was not up yet only after a
        backoff, so two empty members (a majority of three) could elect one of themselves
        meanwhile, and that leader then truncates the seed's history (ZooKeeper exits
        "Unable to truncate Txn log"; seen with the seed started 1 s ahead). The migration
        procedures in docs/migration.md say the same."""
        if first is not None:
            voters = self.participants()
            quorum = [first] + [s for s in voters if s != first][:len(voters) // 2]
            for sid in quorum:
                self.members[sid].spawn()
            leader = self.wait_stable(sids=quorum, timeout=timeout)
            if leader != first:
                raise EnsembleError(f"server.{leader} leads, not the seeded server.{first}\n{self.describe()}")
        for m in self:
            m.spawn()  # (members already running are left alone)
        return self.wait_stable(timeout=timeout)

    def kill(self, sid: int) -> None:
        self.members[sid].kill()

    def stop(self, sid: int) -> None:
        self.members[sid].stop()

    def restart(self, sid: int) -> None:
        """(Re)spawn a stopped or killed member; does not wait."""
        self.members[sid].spawn()

    def pause(self, sid: int) -> None:
        self.members[sid].pause()

    def resume(self, sid: int) -> None:
        self.members[sid].resume()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for c in self.clients:
            _close_client(c)
        self.clients.clear()
        for m in self:
            try:
                m.kill()
            except Exception:
                pass
            try:
                m._close_files()
            except Exception:
                pass
        if self.hub is not None:
            self.hub.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- partitions ----------------------------------------------------------------------------
    def isolate(self, sid: int, mode: str = "blackhole") -> None:
        """Cut every peer link to and from member `sid` (clients still reach it directly)."""
        assert self.hub is not None, "isolate() needs Ensemble(proxied=True)"
        self.hub.set_state(self.hub.select(lambda l: sid in (l.src, l.dst)), mode)

    def heal(self) -> None:
        assert self.hub is not None
        self.hub.heal()

    # -- waiting ----------------------------------------------------------------------------------
    def _check_alive(self, sids) -> None:
        for sid in sids:
            m = self.members[sid]
            if m.exited():
                raise EnsembleError(
                    f"server.{sid} ({self.system}) exited with code {m.proc.returncode}\n"
                    f"{m.log_tail(30)}")

    def wait_stable(self, sids=None, timeout: float = 60.0, exclude_leader=()) -> int:
        """Wait until every member in `sids` (default: all running) serves with the right
        mode: exactly one leader (not in `exclude_leader`), the other participants
        'follower', observers 'observer' -- in two polls in a row. Returns the leader."""
        sids = sorted(self.running() if sids is None else sids)
        deadline = time.monotonic() + timeout
        stable_leader, last = None, {}
        while True:
            self._check_alive(sids)
            last = self.modes(sids)
            if "standalone" in last.values():
                raise EnsembleError(
                    f"{self.system}: a member reports Mode: standalone although zoo.cfg has "
                    f"server.N lines (ensemble mode not implemented?): {last}")
            leaders = [s for s, mode in last.items() if mode == "leader"]
            ok = (len(leaders) == 1 and leaders[0] not in exclude_leader and all(
                mode == ("observer" if s in self.observer_sids else
                         "leader" if s == leaders[0] else "follower")
                for s, mode in last.items()))
            if ok:
                if stable_leader == leaders[0]:
                    return stable_leader
                stable_leader = leaders[0]
            else:
                stable_leader = None
            if time.monotonic() >= deadline:
                raise EnsembleError(
                    f"{self.system}: members {sids} not stable within {timeout}s "
                    f"(want one leader{' outside ' + str(list(exclude_leader)) if exclude_leader else ''}"
                    f", followers, observers): last modes {last}\n{self.describe()}")
            time.sleep(0.05)

    def leader(self, sids=None) -> int | None:
        leaders = [s for s, mode in self.modes(sids).items() if mode == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def followers(self, leader: int) -> list[int]:
        return [s for s in self.participants() if s != leader]

    # -- clients ----------------------------------------------------------------------------------
    def client(self, sids=None, timeout: float = 10.0, start_timeout: float = 30.0,
               randomize: bool = True, **kw):
        """A started KazooClient whose connect string lists the members `sids` (default all);
        closed by close()."""
        from kazoo.client import KazooClient
        kw.setdefault("connection_retry", dict(FAST_RETRY))
        c = KazooClient(hosts=self.hosts(sids), timeout=timeout, randomize_hosts=randomize, **kw)
        self.clients.append(c)
        c.start(timeout=start_timeout)
        return c

    def discard_client(self, c) -> None:
        _close_client(c)
        if c in self.clients:
            self.clients.remove(c)

    def view(self, sid: int, path: str, timeout: float = 30.0) -> dict:
        """What member `sid` holds under `path` after a sync through it: the children and
        the parent's child-related stat. Retries until `timeout` (the member may be joining)."""
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            c = None
            try:
                c = self.client([sid], timeout=10.0,
                                start_timeout=max(1.0, min(15.0, deadline - time.monotonic())))
                c.sync(path)
                _, stat = c.get(path)
                children = c.get_children(path)
                return {"children": sorted(children), "numChildren": stat.numChildren,
                        "cversion": stat.cversion, "pzxid": stat.pzxid}
            except (KazooException, Exception) as e:  # noqa: BLE001 - retried until deadline
                last_error = e
                time.sleep(0.2)
            finally:
                if c is not None:
                    self.discard_client(c)
        raise EnsembleError(f"could not read {path} through server.{sid} within {timeout}s: "
                            f"{last_error!r}\n{self.describe()}")

    def converged_view(self, path: str, sids=None, timeout: float = 60.0) -> dict:
        """Wait until every member in `sids` (default all running) returns the same view
        of `path`; return it."""
        sids = sorted(self.running() if sids is None else sids)
        deadline = time.monotonic() + timeout
        while True:
            views = {s: self.view(s, path, timeout=max(5.0, deadline - time.monotonic()))
                     for s in sids}
            first = views[sids[0]]
            if all(v == first for v in views.values()):
                return first
            if time.monotonic() >= deadline:
                summary = {s: (len(v["children"]), v["cversion"], hex(v["pzxid"]))
                           for s, v in views.items()}
                raise EnsembleError(f"{path} did not converge on {sids} within {timeout}s: "
                                    f"(children, cversion, pzxid) = {summary}")
            time.sleep(0.2)

    # -- logs -------------------------------------------------------------------------------------
    def log_marks(self) -> dict[int, int]:
        return {sid: m.log_size() for sid, m in self.members.items()}

    def sync_kinds_logged(self, leader: int, learner: int, since: int) -> set[str]:
        """Sync kinds the leader's log mentions for `learner` after offset `since`."""
        text = self.members[leader].log_since(since)
        return {kind for kind, pat in SYNC_LOG_PATTERNS[self.system].items()
                if re.search(pat.format(sid=learner), text)}

    def learner_sync_kinds_logged(self, learner: int, since: int) -> set[str] | None:
        pats = LEARNER_SYNC_LOG_PATTERNS[self.system]
        if all(p is None for p in pats.values()):
            return None
        text = self.members[learner].log_since(since)
        return {kind for kind, pat in pats.items() if pat and re.search(pat, text)}


def listening_ports(host: str = LOCALHOST) -> set[int]:
    """TCP ports in LISTEN state on IPv4 `host` or a wildcard address, from /proc/net/tcp
    and /proc/net/tcp6 (Java listens on IPv6 sockets with IPv4-mapped addresses)."""
    v4 = "".join(f"{int(b):02X}" for b in reversed(host.split(".")))
    wanted = {v4, "00000000", "0000000000000000FFFF0000" + v4, "0" * 32}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    addr, port = fields[1].split(":")
                    if fields[3] == "0A" and addr in wanted:
                        ports.add(int(port, 16))
        except FileNotFoundError:
            pass
    return ports


def _close_client(c) -> None:
    try:
        c.stop()
    except Exception:
        pass
    try:
        c.close()
    except Exception:
        pass


def wait_for(pred, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll `pred` until it returns a truthy value (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise EnsembleError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# kazoo helpers shared by the ensemble tests
# ---------------------------------------------------------------------------------------
class SeqWriter(threading.Thread):
    """Creates sequential nodes `prefix` in a loop through one client, recording every
    acknowledged path; writes whose outcome is unknown (connection loss, timeout) are
    counted and retried with new nodes."""

    def __init__(self, client, prefix: str):
        super().__init__(daemon=True, name=f"writer{prefix}")
        self.client, self.prefix = client, prefix
        self.acked: list[tuple[str, float]] = []
        self.unknown = 0
        self.errors: list[BaseException] = []
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        n = 0
        while not self.stop_event.is_set():
            n += 1
            try:
                path = self.client.create_async(self.prefix, f"{self.prefix}{n}".encode(),
                                                sequence=True).get(timeout=15.0)
            except (KazooException, self.client.handler.timeout_exception):
                self.unknown += 1
                self.stop_event.wait(0.01)
                continue
            except BaseException as e:  # noqa: BLE001 - reported by finish()
                self.errors.append(e)
                return
            with self.lock:
                self.acked.append((path, time.monotonic()))

    def acked_after(self, t: float) -> int:
        with self.lock:
            return sum(1 for _, at in self.acked if at > t)

    def finish(self) -> list[str]:
        self.stop_event.set()
        self.join(30.0)
        assert not self.is_alive(), f"{self.name} did not stop"
        assert not self.errors, f"{self.name}: unexpected error {self.errors[0]!r}"
        return [p for p, _ in self.acked]


def kill_leader_under_write_load(ens: "Ensemble", root: str, election_timeout: float = 60.0):
    """Writers through each follower; the leader is killed after 100 acknowledged writes per
    writer, and 50 more per writer must be acknowledged by the new quorum. Checks that no
    follower lost an acknowledged write. Returns (old leader, new leader, followers, acked
    names, the survivors' converged view of `root`)."""
    leader = ens.leader()
    followers = ens.followers(leader)
    setup = ens.client()
    setup.ensure_path(root)
    ens.discard_client(setup)
    writers = [SeqWriter(ens.client([f]), f"{root}/via{f}-") for f in followers]
    for w in writers:
        w.start()
    wait_for(lambda: all(len(w.acked) >= 100 for w in writers), 60,
             what="100 acknowledged writes per writer before the kill")
    t_kill = time.monotonic()
    ens.kill(leader)
    new_leader = ens.wait_stable(sids=followers, timeout=election_timeout)
    assert new_leader in followers
    wait_for(lambda: all(w.acked_after(t_kill) >= 50 for w in writers), 60,
             what="50 acknowledged writes per writer after the kill")
    acked = set()
    for w in writers:
        acked |= names(w.finish())
    print(f"killed leader server.{leader}; new leader server.{new_leader}; "
          f"{len(acked)} acknowledged writes, "
          f"{sum(w.unknown for w in writers)} with unknown outcome")
    return leader, new_leader, followers, acked, check_no_acked_write_lost(ens, followers, root, acked)


def check_no_acked_write_lost(ens: "Ensemble", sids, root: str, acked: set) -> dict:
    """Every member of `sids` holds every name in `acked` under `root`; returns their
    converged view of `root`."""
    for sid in sids:
        have = set(ens.view(sid, root)["children"])
        lost = acked - have
        assert not lost, f"server.{sid} lost {len(lost)} acknowledged writes: {sorted(lost)[:10]}"
    return ens.converged_view(root, sids=sids)


def works(client, path: str) -> bool:
    """True once `client` is connected and a sync through it succeeds."""
    try:
        client.sync(path)
        return client.connected
    except KazooException:
        return False


def names(paths) -> set[str]:
    return {p.rsplit("/", 1)[1] for p in paths}
