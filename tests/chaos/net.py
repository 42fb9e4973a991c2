"""The harness's private network: one Linux bridge, one network namespace per server.

    root namespace: bridge wchaos-br 10.77.0.1/24 (the clients connect from here)
    wchaos-n<i>:    eth0 10.77.0.<10+i>/24, a veth whose host end wchaos-h<i> is on the bridge

Everything this module creates is named ``wchaos-*``; ``cleanup()`` removes exactly that
(and the processes still running inside those namespaces), so a run that was cut short is
cleaned up by the next one. Nothing else on the machine is touched: ``setup()`` refuses to
start when 10.77.0.0/24 is already routed here.

Partitions, with what this kernel offers (no iptables/nftables binaries, no netem, no tc
actions; checked 2026-12-07):
- ``isolate(i)``: ``ip link set wchaos-h<i> down``; the server loses every peer and every
  client at once, packets are silently lost (a cable pulled).
- ``cut(groups)``: blackhole routes inside each namespace towards the servers of the other
  groups. Clients (10.77.0.1) still reach every server. A blackhole route makes the sender's
  own kernel discard the packet (connect() fails at once with EINVAL; an established TCP
  connection sees its segments vanish until it times out), so this is a drop at the sender,
  in both directions since both sides get routes.
"""

from __future__ import annotations

import subprocess

PREFIX = "wchaos-"
BRIDGE = f"{PREFIX}br"
SUBNET = "10.77.0"
HOST_IP = f"{SUBNET}.1"


def use_network(net_id: int) -> None:
    """Select network ``net_id`` (0-99) before anything else: 0 is the default (``wchaos-*``,
    10.77.0.0/24); any other id uses ``wchaos<id>-*`` and 10.77.<id>.0/24, so runs with
    different ids can go on side by side without touching each other's namespaces."""
    global PREFIX, BRIDGE, SUBNET, HOST_IP
    if not 0 <= net_id <= 99:
        raise ValueError("network id must be 0-99")
    PREFIX = "wchaos-" if net_id == 0 else f"wchaos{net_id}-"
    BRIDGE = f"{PREFIX}br"
    SUBNET = f"10.77.{net_id}"
    HOST_IP = f"{SUBNET}.1"


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=20)


def ns_name(i: int) -> str:
    return f"{PREFIX}n{i}"


def server_ip(i: int) -> str:
    return f"{SUBNET}.{10 + i}"


def available() -> str | None:
    """None when namespaces and bridges can be made here, else why not."""
    try:
        r = sh("ip", "netns", "list", check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"ip: {e}"
    if r.returncode != 0:
        return f"ip netns list: {r.stderr.strip()}"
    probe = f"{PREFIX}probe"
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add: {r.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    return None


def cleanup() -> None:
    """Remove every wchaos-* namespace (killing what runs inside) and link."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if not name.startswith(PREFIX):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            sh("kill", "-9", pid, check=False)
        sh("ip", "netns", "del", name, check=False)
    for line in sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        fields = line.split(":")
        if len(fields) > 1:
            link = fields[1].strip().split("@")[0]
            if link.startswith(PREFIX):
                sh("ip", "link", "del", link, check=False)


def setup(n: int) -> None:
    cleanup()
    used = sh("ip", "-4", "route", "show").stdout + sh("ip", "-4", "addr", "show").stdout
    if f"{SUBNET}." in used:
        raise RuntimeError(f"{SUBNET}.0/24 is already in use on this machine; refusing to touch it")
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for i in range(1, n + 1):
        ns, host_end, peer_end = ns_name(i), f"{PREFIX}h{i}", f"{PREFIX}p{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", peer_end)
        sh("ip", "link", "set", peer_end, "netns", ns)
        sh("ip", "link", "set", host_end, "master", BRIDGE, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", peer_end, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{server_ip(i)}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


def isolate(i: int) -> None:
    sh("ip", "link", "set", f"{PREFIX}h{i}", "down")


def cut(groups: list[list[int]]) -> None:
    """Servers in different groups cannot talk to each other; clients reach everyone."""
    for g in groups:
        for i in g:
            for other in groups:
                if other is g:
                    continue
                for j in other:
                    sh("ip", "-n", ns_name(i), "route", "add", "blackhole", f"{server_ip(j)}/32")


def heal(n: int) -> None:
    for i in range(1, n + 1):
        sh("ip", "link", "set", f"{PREFIX}h{i}", "up")
        routes = sh("ip", "-n", ns_name(i), "route", "show", "type", "blackhole", check=False).stdout
        for line in routes.splitlines():
            dst = line.split()[1] if len(line.split()) > 1 else ""
            if dst:
                sh("ip", "-n", ns_name(i), "route", "del", "blackhole", dst, check=False)
