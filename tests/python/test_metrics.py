"""Prometheus /metrics: Warren's endpoint against ZooKeeper 3.8's metric names and types.

ZooKeeper's Prometheus provider jar is not installable here (no Maven), so the reference is
fixtures/zk38_metrics.txt: every metric ZooKeeper 3.8.0 registers and the Prometheus TYPE its
PrometheusMetricsProvider exports it with, read from the 3.8.0 sources (the file's header
says which). The ZooKeeper-side tests here check that file against a live ZooKeeper 3.8
(its monitor answer, fixtures/zk38_admin/monitor.json, and mntr of a fresh server).

Warren is started with ZooKeeper's keys
    metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider
    metricsProvider.httpHost=127.0.0.1   metricsProvider.httpPort=<free port>
and checked for: every scrape parses (prometheus_client's text parser) while kazoo clients
load it; ZooKeeper's core names are present; every name Warren shares with ZooKeeper has
ZooKeeper's TYPE; values mean what they mean in ZooKeeper (znode_count, ephemerals_count,
watch_count, num_alive_connections, packets_received, uptime); Warren's own metrics are
named warren_* and include histograms for the log batch size, the fsync latency, the
latency per operation and the snapshot capture time; without metricsProvider.className
nothing listens on the metrics port.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from servers import LOCALHOST, ServerStartError, WarrenServer, free_port, stop_clients

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REFERENCE_FILE = FIXTURES / "zk38_metrics.txt"
PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
# ZooKeeper 3.8's znode_count on an empty tree: its DataTree holds the root under both ""
# and "/", plus /zookeeper, /zookeeper/quota and /zookeeper/config (checked live below).
ZK_BUILTIN_ZNODES = 5
# Names the issue requires, as ZooKeeper exports them (readlatency/updatelatency are the
# request latency summaries).
CORE_NAMES = [
    "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
    "outstanding_requests", "num_alive_connections", "packets_received", "packets_sent",
    "readlatency", "updatelatency", "fsynctime", "snapshottime", "election_time",
    "quorum_size", "learners", "synced_followers", "pending_syncs", "uptime",
    "open_file_descriptor_count",
]
# Families a Prometheus exporter may add beside its own (the standard process collector).
STANDARD_PREFIXES = ("process_",)


def load_reference() -> dict[str, str]:
    ref = {}
    for line in REFERENCE_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, kind = line.split()
        assert name not in ref, f"{name} listed twice"
        ref[name] = kind
    return ref


REFERENCE = load_reference()


# ---------------------------------------------------------------------------------------
# ZooKeeper side: the reference file
# ---------------------------------------------------------------------------------------
def test_reference_file_is_well_formed():
    assert set(REFERENCE.values()) <= {"counter", "gauge", "summary"}
    for name in REFERENCE:
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name), name
    for name in CORE_NAMES:
        assert name in REFERENCE, name


def test_reference_matches_live_zookeeper_monitor():
    """Every counter, summary and standalone gauge of the reference shows up in the monitor
    command of a live ZooKeeper 3.8.0 (recorded in fixtures/zk38_admin/monitor.json):
    counters and gauges under their name, summaries as avg_/min_/max_/cnt_/sum_<name>."""
    monitor = json.loads((FIXTURES / "zk38_admin" / "monitor.json").read_text())
    quorum_only = {"quorum_size", "learners", "synced_followers", "synced_non_voting_followers",
                   "synced_observers", "pending_syncs", "leader_uptime", "last_proposal_size",
                   "max_proposal_size", "min_proposal_size"}
    labelled = {"quota_exceeded_error_per_namespace", "quota_count_limit_per_namespace",
                "quota_bytes_limit_per_namespace", "quota_count_usage_per_namespace",
                "quota_bytes_usage_per_namespace", "write_per_namespace", "read_per_namespace",
                "learner_handler_qp_size", "learner_handler_qp_time_ms", "ack_latency"}
    missing = []
    for name, kind in REFERENCE.items():
        if name in quorum_only or name in labelled:
            continue
        keys = [name] if kind != "summary" else [f"{p}_{name}" for p in
                                                 ("avg", "min", "max", "cnt", "sum")]
        missing += [k for k in keys if k not in monitor]
    assert not missing, missing


def test_zookeeper_builtin_znode_count(fresh_zookeeper):
    text = fresh_zookeeper.four_letter("mntr")
    stats = dict(ln.split("\t", 1) for ln in text.splitlines() if "\t" in ln)
    assert int(stats["zk_znode_count"]) == ZK_BUILTIN_ZNODES


# ---------------------------------------------------------------------------------------
# Warren
# ---------------------------------------------------------------------------------------
def http_get(url: str, timeout: float = 5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers.items()), e.read()


def parse(text: str) -> dict:
    """name -> MetricFamily; raises on anything the Prometheus text parser rejects."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {}
    for fam in text_string_to_metric_families(text):
        assert fam.name not in families, f"family {fam.name} appears twice"
        families[fam.name] = fam
    return families


def sample_value(families, name, labels=None) -> float:
    fam = families[name]
    for s in fam.samples:
        if labels is None or s.labels == labels:
            return s.value
    raise KeyError(name)


# ZooKeeper computes its gauges when scraped; a server that publishes them periodically
# must show a new value within this long.
GAUGE_LAG = 2.0


def eventually(server, name: str, expected: float, timeout: float = GAUGE_LAG) -> None:
    """The gauge reaches ``expected`` within ``timeout`` (scraped every 50 ms)."""
    deadline = time.monotonic() + timeout
    values = []
    for _ in range(int(timeout / 0.05) + 2):
        value = sample_value(server.scrape()[0], name)
        values.append(value)
        if value == expected:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail(f"{name}: expected {expected} within {timeout}s, saw {sorted(set(values))}")


class MetricsWarren(WarrenServer):
    def __init__(self, *args, metrics: bool = True, **kw):
        self.metrics_port = free_port()
        cfg = {"metricsProvider.httpHost": LOCALHOST,
               "metricsProvider.httpPort": str(self.metrics_port)}
        if metrics:
            cfg["metricsProvider.className"] = PROVIDER
        cfg.update(kw.pop("extra_cfg", None) or {})
        super().__init__(*args, extra_cfg=cfg, **kw)

    @property
    def metrics_url(self) -> str:
        return f"http://{LOCALHOST}:{self.metrics_port}/metrics"

    def scrape(self) -> tuple[dict, str]:
        status, headers, body = http_get(self.metrics_url)
        assert status == 200, (status, body[:300])
        return parse(body.decode("utf-8")), headers.get("Content-Type", "")

    def wait_metrics(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / 0.1) + 5):
            try:
                if http_get(self.metrics_url, timeout=2.0)[0] == 200:
                    return
            except OSError as e:
                last = repr(e)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise ServerStartError(f"{self.metrics_url} did not answer within {timeout}s "
                               f"(last: {last})\n{self.log_tail(40)}")


@pytest.fixture
def metrics_warren(tmp_path):
    server = MetricsWarren(base_dir=tmp_path / "warren-metrics", name="warren-metrics")
    try:
        try:
            server.start()
            server.wait_metrics()
        except ServerStartError as e:
            pytest.fail(f"could not start Warren with /metrics: {e}", pytrace=False)
        yield server
    finally:
        server.cleanup()


def _load(server, stop: threading.Event, errors: list, worker: int, counts: list):
    from kazoo.client import KazooClient

    c = KazooClient(hosts=server.host_port, timeout=10.0)
    try:
        c.start(timeout=15)
        base = f"/load-{worker}"
        c.create(base, b"")
        i = 0
        while not stop.is_set() and i < 400:
            p = f"{base}/n{i}"
            c.create(p, b"x" * 16)
            i += 1
            c.get(p)
            c.set(p, b"y" * 16)
        counts[worker] = i
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(repr(e))
    finally:
        c.stop()
        c.close()


def test_scrapes_parse_under_load(metrics_warren):
    """Scrape every 100 ms while 3 kazoo clients create/get/set for about 3 s."""
    server = metrics_warren
    first, ctype = server.scrape()
    assert ctype.startswith("text/plain"), ctype
    stop = threading.Event()
    errors: list = []
    counts = [0, 0, 0]
    threads = [threading.Thread(target=_load, args=(server, stop, errors, w, counts))
               for w in range(3)]
    for t in threads:
        t.start()
    scrapes = 0
    deadline = time.monotonic() + 3.0
    try:
        while time.monotonic() < deadline:
            status, _, body = http_get(server.metrics_url)
            assert status == 200
            try:
                parse(body.decode("utf-8"))
            except Exception as e:  # noqa: BLE001
                pytest.fail(f"scrape {scrapes} does not parse: {e!r}\n{body[:2000]!r}")
            scrapes += 1
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert scrapes >= 15, scrapes
    last, _ = server.scrape()
    assert sample_value(last, "packets_received") > sample_value(first, "packets_received")
    assert sample_value(last, "packets_sent") > sample_value(first, "packets_sent")
    assert sample_value(last, "uptime") > sample_value(first, "uptime")
    created = 3 + sum(counts)
    eventually(server, "znode_count", ZK_BUILTIN_ZNODES + created)


def test_core_zookeeper_names_present(metrics_warren):
    families, _ = metrics_warren.scrape()
    missing = [n for n in CORE_NAMES if n not in families]
    assert not missing, f"missing ZooKeeper metrics: {missing}"


def test_types_match_zookeeper(metrics_warren):
    families, _ = metrics_warren.scrape()
    wrong = {n: (f.type, REFERENCE[n]) for n, f in families.items()
             if n in REFERENCE and f.type != REFERENCE[n]}
    assert not wrong, f"name: (Warren's TYPE, ZooKeeper's TYPE): {wrong}"
    # ZooKeeper's summaries carry quantile labels and _count/_sum samples
    for n, f in families.items():
        if n in REFERENCE and REFERENCE[n] == "summary":
            names = {s.name for s in f.samples}
            assert {f"{n}_count", f"{n}_sum"} <= names, (n, names)


def test_own_metrics_are_warren_prefixed(metrics_warren):
    families, _ = metrics_warren.scrape()
    stray = [n for n in families
             if n not in REFERENCE and not n.startswith("warren_")
             and not n.startswith(STANDARD_PREFIXES)]
    assert not stray, f"metrics neither ZooKeeper's nor warren_*: {stray}"


def test_warren_histograms(metrics_warren, kazoo_client):
    c = kazoo_client(metrics_warren)
    c.create("/h", b"x")
    c.get("/h")
    families, _ = metrics_warren.scrape()
    hist = {n: f for n, f in families.items() if n.startswith("warren_") and f.type == "histogram"}

    def find(pattern, what, label_any=None):
        for n, f in hist.items():
            if re.search(pattern, n):
                if label_any is None or any(set(label_any) & set(s.labels) for s in f.samples):
                    return n
        pytest.fail(f"no warren_* histogram for {what} (pattern {pattern!r}); "
                    f"histograms: {sorted(hist)}")

    find(r"batch", "the log batch size")
    find(r"fsync", "the fsync latency")
    find(r"(request|op).*(seconds|latency)", "the latency per operation",
         label_any=("op", "opcode", "operation", "type"))
    find(r"snapshot.*capture|capture.*snapshot", "the snapshot capture time")
    for n, f in hist.items():
        names = {s.name for s in f.samples}
        assert {f"{n}_bucket", f"{n}_count", f"{n}_sum"} <= names, (n, names)


def test_values_have_zookeeper_meaning(metrics_warren):
    from kazoo.client import KazooClient

    server = metrics_warren
    clients = []
    try:
        for _ in range(3):
            c = KazooClient(hosts=server.host_port, timeout=10.0)
            c.start(timeout=15)
            clients.append(c)
        a, b, _c = clients
        a.create("/v", b"")
        a.create("/v/p1", b"hello")
        a.create("/v/e1", b"", ephemeral=True)
        b.create("/v/e2", b"", ephemeral=True)
        a.get("/v/p1", watch=lambda ev: None)      # data watch
        b.get_children("/v", watch=lambda ev: None)  # child watch
        b.exists("/v/none", watch=lambda ev: None)  # exists watch
        eventually(server, "znode_count", ZK_BUILTIN_ZNODES + 4)
        eventually(server, "ephemerals_count", 2)
        eventually(server, "watch_count", 3)  # ZooKeeper counts data + child watches
        eventually(server, "num_alive_connections", 3)
        eventually(server, "outstanding_requests", 0)
        up = sample_value(server.scrape()[0], "uptime")
        clients.pop().stop()
        eventually(server, "num_alive_connections", 2)
        assert sample_value(server.scrape()[0], "uptime") > up
        # the ephemerals of a closed session go
        clients.pop().stop()
        eventually(server, "ephemerals_count", 1)
        eventually(server, "znode_count", ZK_BUILTIN_ZNODES + 3)
    finally:
        stop_clients(clients)


def test_no_metrics_port_without_provider(tmp_path):
    server = MetricsWarren(base_dir=tmp_path / "w", metrics=False, name="warren-no-metrics")
    try:
        server.start()
        with pytest.raises(OSError):
            http_get(server.metrics_url, timeout=2.0)
    finally:
        server.cleanup()
