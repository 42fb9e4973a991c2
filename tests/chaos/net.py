"""The harness's private network: one Linux bridge, one network namespace per server.

    root namespace: bridge wchaos-br 10.77.0.1/24 (the clients connect from here)
    wchaos-n<i>:    eth0 10.77.0.<10+i>/24, a veth whose host end wchaos-h<i> is on the bridge

Everything this module creates is named ``wchaos-*``; ``cleanup()`` removes exactly that
(and the processes still running inside those namespaces), so a run that was cut short is
cleaned up by the next one. Nothing else on the machine is touched: ``setup()`` refuses to
start when 10.77.0.0/24 is already routed here.

Faults, with what this kernel offers (no netem, no tc actions; netfilter built in, with the
``statistic`` match; checked 2026-12-07):
- ``isolate(i)``: ``ip link set wchaos-h<i> down``; the server loses every peer and every
  client at once, packets are silently lost (a cable pulled).
- ``cut(groups)``: blackhole routes inside each namespace towards the servers of the other
  groups. Clients (10.77.0.1) still reach every server. A blackhole route makes the sender's
  own kernel discard the packet (connect() fails at once with EINVAL; an established TCP
  connection sees its segments vanish until it times out), so this is a drop at the sender,
  in both directions since both sides get routes.
- ``lose(lossy, p)``: random packet loss with iptables' ``statistic`` match inside the
  namespaces of the servers in ``lossy``: every IP packet on a link with an end in ``lossy``
  is dropped with probability ``p``, once (not once per end): each such namespace drops
  arriving packets on ``eth0`` (INPUT) and departing ones (OUTPUT) except those to another
  server in ``lossy``, whose INPUT already had its chance. ARP is untouched, so this is loss
  of IP packets, not of the link. A departing packet is dropped by the sender's own kernel
  (TCP keeps the segment and retransmits it on its timer, as after a loss on the wire).
  Needs the ``iptables`` package (``iptables-restore``; Debian's default is the nf_tables
  flavour).
- ``heal(n)`` undoes all of them: links up, blackhole routes removed, loss rules flushed.
"""

from __future__ import annotations

import shutil
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


def sh(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=20,
                          input=stdin)


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
    clear_loss(n)


def loss_available() -> str | None:
    """None when ``lose()`` can work here (iptables-restore installed and accepted by the
    kernel inside a namespace, with the statistic match), else why not."""
    if shutil.which("iptables-restore") is None:
        return "no iptables-restore (apt-get install iptables; ci/install-deps.sh installs it)"
    probe = f"{PREFIX}lprobe"
    sh("ip", "netns", "del", probe, check=False)
    r = sh("ip", "netns", "add", probe, check=False)
    if r.returncode != 0:
        return f"ip netns add: {r.stderr.strip()}"
    try:
        r = sh("ip", "netns", "exec", probe, "iptables-restore", "-w", "5",
               stdin=loss_ruleset(1, 0.5, [1]), check=False)
        if r.returncode != 0:
            return f"iptables-restore in a namespace: {r.stderr.strip()}"
    finally:
        sh("ip", "netns", "del", probe, check=False)
    return None


def loss_ruleset(i: int, p: float, lossy: list[int]) -> str:
    """The iptables-restore input that makes server i's namespace drop, with probability p,
    each packet it receives on eth0 and each it sends on eth0 to anyone but the other servers
    of ``lossy`` (so a packet between two lossy servers gets one chance to be lost, not two).
    Replaces the namespace's whole filter table (restore without --noflush)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"loss probability {p} not in (0, 1)")
    stat = f"-m statistic --mode random --probability {p:.4f} -j DROP"
    lines = ["*filter", f"-A INPUT -i eth0 {stat}"]
    lines += [f"-A OUTPUT -o eth0 -d {server_ip(j)}/32 -j ACCEPT" for j in sorted(lossy) if j != i]
    lines += [f"-A OUTPUT -o eth0 {stat}", "COMMIT", ""]
    return "\n".join(lines)


def lose(lossy: list[int], p: float) -> None:
    """Random loss p on every link with an end in ``lossy`` (see the module's docstring)."""
    for i in lossy:
        sh("ip", "netns", "exec", ns_name(i), "iptables-restore", "-w", "5", stdin=loss_ruleset(i, p, lossy))


def clear_loss(n: int) -> None:
    """Empty the filter table of every server's namespace (only loss rules are ever put there)."""
    if shutil.which("iptables-restore") is None:
        return  # then no loss rule can have been made
    for i in range(1, n + 1):
        sh("ip", "netns", "exec", ns_name(i), "iptables-restore", "-w", "5", stdin="*filter\nCOMMIT\n")
