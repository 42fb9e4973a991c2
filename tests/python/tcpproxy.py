"""A small fault-injecting TCP proxy for ensemble tests (asyncio, one background thread).

A ``ProxyHub`` owns many ``Link``s. A link listens on 127.0.0.1:``listen_port`` and forwards
every accepted connection to 127.0.0.1:``target_port``. In the ensemble tests there is one
link per ordered pair of servers and per peer port: server *i*'s ``zoo.cfg`` names link
(i -> j) as server *j*'s quorum / election address, so all peer traffic from *i* to *j*
(both directions of the connections *i* opens) crosses that link.

Link states:

``pass``       forward bytes both ways (the normal state).
``blackhole``  a network partition: bytes in either direction are read and dropped, an EOF
               from one side is not passed on (a partition does not deliver FINs), new
               connections are accepted but never reach the target. Connections that were
               blackholed are *tainted*: their byte streams have holes, so healing closes
               them and the peers reconnect.
``cut``        every connection is closed at once and new ones are closed on accept (a
               peer sees connection resets / EOF immediately).

``heal()`` returns links to ``pass`` and closes every tainted connection.

A proxy accepts a connection before it knows whether the target accepts it. When the target
refuses, the link retries for ``upstream_retry`` seconds (2 s) and then resets the client's
connection: a ZooKeeper follower that connects the moment a new leader is elected must not
see "connected, then EOF" just because the leader had not bound its quorum port yet (it
would go back to LOOKING and the leader would wait out initLimit for it).

Optional per-link rewrite of ZooKeeper's election handshake: a ZooKeeper server that opens
an election connection to a server with a higher id announces its own election address in
its first message (``long protocolVersion, long sid, int len, "host:port"``) and the higher
server connects *back to that address*, which would bypass the proxy. A link created with
``rewrite_initial="127.0.0.1:P"`` replaces the announced address with P (the reverse link),
so the back-connection crosses the proxy too. Anything that does not start with one of
ZooKeeper's two negative protocol versions is forwarded untouched, so the same links carry
other protocols (Warren's) byte for byte.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from dataclasses import dataclass, field

LOCALHOST = "127.0.0.1"
ZK_INITIAL_MESSAGE_VERSIONS = (-65536, -65535)  # QuorumCnxManager.PROTOCOL_VERSION_V1 / V2
STATES = ("pass", "blackhole", "cut")


@dataclass(eq=False)
class _Conn:
    link: "Link"
    client_writer: asyncio.StreamWriter
    upstream_writer: asyncio.StreamWriter | None = None
    tainted: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self, reset: bool = False) -> None:
        """Close both sides; `reset` sends RSTs (SO_LINGER 0) instead of FINs."""
        if self.closed.is_set():
            return
        self.closed.set()
        for w in (self.client_writer, self.upstream_writer):
            if w is not None:
                try:
                    if reset:
                        sock = w.get_extra_info("socket")
                        if sock is not None:
                            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                            struct.pack("ii", 1, 0))
                    w.transport.abort()
                except Exception:
                    pass


@dataclass(eq=False)
class Link:
    name: str
    listen_port: int
    target_port: int
    src: object = None          # free-form tags used to select links (e.g. server ids)
    dst: object = None
    kind: str = ""              # e.g. "quorum" / "election"
    rewrite_initial: str | None = None
    state: str = "pass"
    accepted: int = 0
    bytes_forwarded: int = 0
    bytes_dropped: int = 0
    conns: set = field(default_factory=set)
    server: asyncio.AbstractServer | None = None

    def __repr__(self) -> str:
        return (f"<Link {self.name} :{self.listen_port}->:{self.target_port} {self.state} "
                f"conns={len(self.conns)} fwd={self.bytes_forwarded} drop={self.bytes_dropped}>")


class ProxyHub:
    """Runs every link on one asyncio loop in a daemon thread; methods are thread-safe."""

    def __init__(self, connect_timeout: float = 5.0, upstream_retry: float = 2.0):
        self.connect_timeout = connect_timeout
        self.upstream_retry = upstream_retry
        self.links: list[Link] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tcpproxy", daemon=True)
        self._thread.start()
        self._closed = False

    # -- public API (any thread) ------------------------------------------------------
    def add_link(self, name: str, listen_port: int, target_port: int, *, src=None, dst=None,
                 kind: str = "", rewrite_initial: str | None = None) -> Link:
        link = Link(name=name, listen_port=listen_port, target_port=target_port, src=src,
                    dst=dst, kind=kind, rewrite_initial=rewrite_initial)
        self._call(self._start_link(link))
        self.links.append(link)
        return link

    def set_state(self, links, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        self._call(self._set_state(list(links), state))

    def heal(self, links=None) -> None:
        """Back to ``pass``; close the connections that lost bytes while blackholed."""
        self._call(self._set_state(list(self.links if links is None else links), "pass"))

    def select(self, pred) -> list[Link]:
        return [link for link in self.links if pred(link)]

    def describe(self) -> str:
        return "\n".join(repr(link) for link in self.links)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._call(self._shutdown(), timeout=10.0)
        except Exception:
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- loop side ----------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coro, timeout: float = 10.0):
        if self._closed and not coro.__qualname__.endswith("_shutdown"):
            coro.close()
            raise RuntimeError("proxy hub is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_link(self, link: Link) -> None:
        link.server = await asyncio.start_server(
            lambda r, w: self._handle(link, r, w), LOCALHOST, link.listen_port,
            reuse_address=True, backlog=64)

    async def _set_state(self, links: list[Link], state: str) -> None:
        for link in links:
            link.state = state
            for conn in list(link.conns):
                if state == "blackhole":
                    conn.tainted = True
                elif state == "cut" or conn.tainted:
                    conn.close(reset=True)

    async def _shutdown(self) -> None:
        for link in self.links:
            if link.server is not None:
                link.server.close()
            for conn in list(link.conns):
                conn.close()
        for link in self.links:
            if link.server is not None:
                try:
                    await asyncio.wait_for(link.server.wait_closed(), 2.0)
                except Exception:
                    pass

    async def _handle(self, link: Link, creader: asyncio.StreamReader,
                      cwriter: asyncio.StreamWriter) -> None:
        link.accepted += 1
        conn = _Conn(link=link, client_writer=cwriter)
        link.conns.add(conn)
        try:
            if link.state == "cut":
                conn.close(reset=True)
                return
            if link.state == "blackhole":
                conn.tainted = True
                await self._pump(conn, creader, None)
                return
            upstream = await self._connect_upstream(conn)
            if upstream is None:
                if link.state == "blackhole" and not conn.closed.is_set():
                    conn.tainted = True
                    await self._pump(conn, creader, None)
                return
            ureader, uwriter = upstream
            conn.upstream_writer = uwriter
            if conn.closed.is_set():
                return
            if link.rewrite_initial and not conn.tainted:
                if not await self._rewrite_zk_initial(conn, creader, uwriter):
                    return
            await asyncio.gather(self._pump(conn, creader, uwriter),
                                 self._pump(conn, ureader, cwriter))
        except Exception:
            pass
        finally:
            conn.close()
            link.conns.discard(conn)

    async def _connect_upstream(self, conn: _Conn):
        """Connect to the target, retrying refused connections for `upstream_retry` seconds:
        the client's connect already succeeded (the proxy accepted it), so a target that is
        just binding its port (a new leader's quorum port) must not look like a dead peer.
        Gives up with a reset of the client connection, like a refused connection."""
        link = conn.link
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.upstream_retry
        while not conn.closed.is_set() and link.state == "pass":
            try:
                return await asyncio.wait_for(
                    asyncio.open_connection(LOCALHOST, link.target_port), self.connect_timeout)
            except (OSError, asyncio.TimeoutError):
                if loop.time() >= deadline:
                    conn.close(reset=True)
                    return None
                await asyncio.sleep(0.02)
        return None

    async def _rewrite_zk_initial(self, conn: _Conn, creader, uwriter) -> bool:
        link = conn.link
        try:
            head = await asyncio.wait_for(creader.readexactly(8), 30.0)
            (version,) = struct.unpack(">q", head)
            if version in ZK_INITIAL_MESSAGE_VERSIONS:
                rest = await asyncio.wait_for(creader.readexactly(12), 30.0)
                (length,) = struct.unpack(">i", rest[8:])
                if 0 < length <= 2048:
                    await asyncio.wait_for(creader.readexactly(length), 30.0)
                    addr = link.rewrite_initial.encode("ascii")
                    head = head + rest[:8] + struct.pack(">i", len(addr)) + addr
                else:
                    head = head + rest
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, OSError):
            return False
        if conn.tainted:
            link.bytes_dropped += len(head)
            return True
        uwriter.write(head)
        link.bytes_forwarded += len(head)
        return True

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter | None) -> None:
        link = conn.link
        while not conn.closed.is_set():
            try:
                data = await reader.read(65536)
            except (OSError, asyncio.IncompleteReadError):
                data = b""
            if not data:
                if conn.tainted and not conn.closed.is_set():
                    # a partition hides the EOF: hold the other side until healed
                    await conn.closed.wait()
                conn.close()
                return
            if conn.tainted or writer is None:
                link.bytes_dropped += len(data)
                continue
            writer.write(data)
            link.bytes_forwarded += len(data)
            try:
                await writer.drain()
            except (OSError, ConnectionError):
                conn.close()
                return
