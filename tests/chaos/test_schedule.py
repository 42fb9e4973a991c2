"""The fault schedule and the packet-loss fault: --faults parsing, schedules as a function of
the seed (the kinds added later leave earlier schedules as they were), the loss rules each
namespace gets, and (as root, with iptables) that they are made and undone in real
namespaces.  python3 -m pytest tests/chaos -q"""

import os
import random
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "python"))

import chaos  # noqa: E402
import net  # noqa: E402

OLD_KINDS = ["isolate-leader", "partition-leader", "partition-random", "bridge",
             "kill-one", "kill-all", "pause-leader", "pause-follower"]


def test_parse_kinds():
    assert chaos.parse_kinds("all") == list(chaos.FAULT_KINDS)
    assert {"loss-leader", "loss-all"} <= set(chaos.parse_kinds("all"))
    assert chaos.parse_kinds("loss-all,kill-one") == ["loss-all", "kill-one"]
    assert chaos.parse_kinds(" loss-leader , loss-all ") == ["loss-leader", "loss-all"]
    with pytest.raises(ValueError, match="unknown fault loss-some"):
        chaos.parse_kinds("loss-some")
    with pytest.raises(ValueError):
        chaos.parse_kinds(",")


def test_loss_faults_carry_a_seeded_probability():
    kinds = ["loss-leader", "loss-all", "kill-one"]
    sched = chaos.make_schedule(random.Random(5), kinds, 600, False)
    assert sched == chaos.make_schedule(random.Random(5), kinds, 600, False)  # a function of the seed
    assert sched != chaos.make_schedule(random.Random(6), kinds, 600, False)
    lo, hi = chaos.LOSS_RANGE
    losses = [f for f in sched if f["kind"] in chaos.LOSS_KINDS]
    assert {f["kind"] for f in losses} == {"loss-leader", "loss-all"}
    for f in sched:
        if f["kind"] in chaos.LOSS_KINDS:
            assert lo <= f["loss"] <= hi and round(f["loss"], 2) == f["loss"]
            assert 4.0 <= f["hold_s"] <= 10.0
        else:
            assert "loss" not in f
    assert len({f["loss"] for f in losses}) > 1


def test_cycle_runs_every_kind_once_newest_last():
    sched = chaos.make_schedule(random.Random(1), list(chaos.FAULT_KINDS), 60, True)
    assert [f["kind"] for f in sched] == list(chaos.FAULT_KINDS)
    assert [f["kind"] for f in sched[-3:]] == ["loss-leader", "loss-all", "ring"]


class _Recorder:
    """Stands in for net: records the cuts a fault makes."""

    def __init__(self):
        self.cuts = []

    def cut(self, groups):
        self.cuts.append(groups)


class _Cluster:
    def __init__(self, n):
        self.n = n

    def leader(self):
        return 1


def _ring_cuts(n, pick, monkeypatch):
    rec = _Recorder()
    monkeypatch.setattr(chaos, "net", rec)
    what = chaos.inject(_Cluster(n), {"kind": "ring", "pick": pick})
    pairs = {frozenset((g[0][0], g[1][0])) for g in rec.cuts}
    return what, pairs


def test_a_ring_leaves_each_server_its_two_neighbours(monkeypatch):
    for pick in range(20):
        what, pairs = _ring_cuts(5, pick, monkeypatch)
        order = [int(x[1:]) for x in what.split()[1].split("-")]
        assert sorted(order) == [1, 2, 3, 4, 5]
        neighbours = {frozenset((order[k], order[(k + 1) % 5])) for k in range(5)}
        every = {frozenset((a, b)) for a in range(1, 6) for b in range(a + 1, 6)}
        assert pairs == every - neighbours, what
        # Each server keeps exactly two peers: itself and them, a majority of five.
        for s in range(1, 6):
            assert sum(1 for p in every - pairs if s in p) == 2


def test_with_three_servers_a_ring_is_a_line(monkeypatch):
    what, pairs = _ring_cuts(3, 7, monkeypatch)
    ends = [int(x[1:]) for x in what.split()[1].split("-")]
    assert what.startswith("line ") and pairs == {frozenset((ends[0], ends[2]))}


def test_schedules_without_loss_are_unchanged():
    """Recorded with the harness before the loss kinds existed: the planted-bug schedule
    (seed 16), the expiry reproduction (seed 1) and the CI cycle (seed 1) replay as before."""
    assert chaos.make_schedule(random.Random(16), ["partition-random"], 30, False) == [
        {"kind": "partition-random", "hold_s": 6.82, "quiet_s": 5.14, "pick": 486715754},
        {"kind": "partition-random", "hold_s": 4.04, "quiet_s": 7.42, "pick": 555887707}]
    assert chaos.make_schedule(random.Random(1), ["pause-leader", "kill-one"], 40, False) == [
        {"kind": "pause-leader", "hold_s": 10.28, "quiet_s": 7.21, "pick": 135520872},
        {"kind": "kill-one", "hold_s": 4.71, "quiet_s": 7.04, "pick": 1014138928}]
    old_cycle = chaos.make_schedule(random.Random(1), OLD_KINDS, 60, True)
    assert chaos.make_schedule(random.Random(1), list(chaos.FAULT_KINDS), 60, True)[:8] == old_cycle


def test_loss_ruleset_drops_each_packet_once():
    net.use_network(0)
    # One lossy server: everything in and everything out.
    leader = net.loss_ruleset(2, 0.25, [2]).splitlines()
    assert leader == ["*filter",
                      "-A INPUT -i eth0 -m statistic --mode random --probability 0.2500 -j DROP",
                      "-A OUTPUT -o eth0 -m statistic --mode random --probability 0.2500 -j DROP",
                      "COMMIT"]
    # All lossy: a packet to another lossy server is left to that server's INPUT.
    every = net.loss_ruleset(1, 0.1, [1, 2, 3]).splitlines()
    assert every == ["*filter",
                     "-A INPUT -i eth0 -m statistic --mode random --probability 0.1000 -j DROP",
                     "-A OUTPUT -o eth0 -d 10.77.0.12/32 -j ACCEPT",
                     "-A OUTPUT -o eth0 -d 10.77.0.13/32 -j ACCEPT",
                     "-A OUTPUT -o eth0 -m statistic --mode random --probability 0.1000 -j DROP",
                     "COMMIT"]
    for p in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            net.loss_ruleset(1, p, [1])


def _rules(i: int) -> list[str]:
    out = net.sh("ip", "netns", "exec", net.ns_name(i), "iptables-save", "-t", "filter").stdout
    return [line for line in out.splitlines() if line.startswith("-A")]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_loss_is_made_and_healed_in_namespaces():
    net.use_network(98)  # its own bridge and subnet, away from runs on 0, 1, 2, 5, 6, 11...
    try:
        why = net.available() or net.loss_available()
        if why:
            pytest.skip(why)
        net.setup(3)
        net.lose([2], 0.2)
        assert len(_rules(2)) == 2 and _rules(1) == [] and _rules(3) == []
        net.heal(3)
        assert all(_rules(i) == [] for i in (1, 2, 3))
        net.lose([1, 2, 3], 0.3)
        assert [len(_rules(i)) for i in (1, 2, 3)] == [4, 4, 4]
        net.cut([[1], [2, 3]])  # heal undoes both at once
        net.heal(3)
        assert all(_rules(i) == [] for i in (1, 2, 3))
        assert "blackhole" not in net.sh("ip", "-n", net.ns_name(1), "route", "show", "type", "blackhole").stdout
    finally:
        net.cleanup()
        net.use_network(0)
