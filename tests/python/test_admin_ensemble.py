"""The AdminServer, probes and metrics of a 3-server Warren ensemble: every member ready once
synced, one leader named alike by all, election_time recorded, leader-only gauges on the
leader; after the leader is killed, a new leader serves and the survivors are ready again."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from ensemble import Ensemble, PORTS
from servers import LOCALHOST

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read().decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def wait_for(pred, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_probes_and_leader_commands_in_an_ensemble(tmp_path):
    ens = Ensemble("warren", tmp_path / "ens", participants=3, name="adm")
    ports = {}
    for sid in ens.sids:
        admin, metrics = PORTS.take(2)
        ports[sid] = (admin, metrics)
        m = ens[sid]
        m.extra_cfg.update({"admin.enableServer": "true", "admin.serverPort": str(admin),
                            "metricsProvider.className": PROVIDER,
                            "metricsProvider.httpHost": LOCALHOST,
                            "metricsProvider.httpPort": str(metrics)})
        m._write_cfg()
    admin_url = lambda sid, path: f"http://{LOCALHOST}:{ports[sid][0]}{path}"  # noqa: E731
    metrics_url = lambda sid: f"http://{LOCALHOST}:{ports[sid][1]}/metrics"  # noqa: E731
    try:
        ens.start(timeout=60)
        ready = lambda sids: all(get(admin_url(s, "/readyz"))[0] == 200 for s in sids)  # noqa: E731
        wait_for(lambda: ready(ens.sids), "every member ready")
        leaders = {json.loads(get(admin_url(s, "/commands/leader"))[1])["leader_id"] for s in ens.sids}
        assert len(leaders) == 1, leaders
        leader = leaders.pop()
        assert ens.modes()[leader] == "leader"
        for sid in ens.sids:
            z = json.loads(get(admin_url(sid, "/commands/zabstate"))[1])
            assert z["myid"] == sid and z["zabstate"] == "broadcast" and z["voting"] is True
            assert z["is_leader"] == (sid == leader)
            mode = json.loads(get(admin_url(sid, "/readyz"))[1])["mode"]
            assert mode == ("leader" if sid == leader else "follower"), (sid, mode)
            view = json.loads(get(admin_url(sid, "/commands/voting_view"))[1])["current_config"]
            assert sorted(view) == [str(s) for s in ens.sids]
        text = get(metrics_url(leader))[1]
        assert metric(text, "quorum_size") == 3
        wait_for(lambda: metric(get(metrics_url(leader))[1], "synced_followers") == 2, "two synced followers")
        for sid in ens.sids:
            assert metric(get(metrics_url(sid))[1], "election_time_count") >= 1, sid
        # Kill the leader: a survivor leads, both are ready again, and they count a new election.
        ens.kill(leader)
        survivors = [s for s in ens.sids if s != leader]
        before = {s: metric(get(metrics_url(s))[1], "election_time_count") for s in survivors}
        wait_for(lambda: ready(survivors) and any(ens.modes([s])[s] == "leader" for s in survivors),
                 "a new leader and ready survivors")
        for s in survivors:
            wait_for(lambda s=s: metric(get(metrics_url(s))[1], "election_time_count") > before[s],
                     f"a second election_time sample on {s}")
    finally:
        ens.close()
