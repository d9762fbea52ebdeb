"""The gateway: one address for customers in front of the customer utilities (claims 29-31).

A FIX-aware TCP router. It reads a connection's first message, which must be a Logon (35=A),
framed and verified (BodyLength, CheckSum) by the engine's own framer (``fixgw.framing``);
takes SenderCompID (the customer) and TargetCompID; and connects the customer to a customer
utility: the one whose heartbeat says it owns that customer's FIX session, else the live one
with the fewest sessions (ties by name). It writes the Logon bytes on, then relays bytes both
ways without parsing them.

Why like this:

- **Stateless.** What it knows comes from the heartbeats customer utilities publish on the
  broker (``utilities.liveness.Heartbeat``: state, and ``sessions``, the customers whose FIX
  sessions a utility owns): several gateways run side by side with nothing to share, and
  customers list them as failover hosts, as every FIX engine allows.
- **The FIX session stays end to end** between the customer and the utility (sequence
  numbers, resends, heartbeats): the gateway only chooses where the bytes go, so it adds no
  session state that could diverge, and no message is parsed after the Logon.
- **The relay is two asyncio protocols** writing into each other's transport, with
  back-pressure (a side whose transport's buffer fills pauses reading on the other): no task
  wake-up and no StreamReader copy per read. Measured with ``fixgw bench gateway`` (README,
  "Benchmarks"; 2 shared cores at load 11-16, uvloop): 2.0 us of gateway CPU per relayed
  message with 50 orders in flight, 66 us with one (a wake-up per message); the added round
  trip was below the runs' own spread.
- **A dead utility's customers are closed, not kept waiting.** When a utility's connection
  drops (its process died: the kernel closes its sockets) or its heartbeats stop for
  ``dead_after_s``, every customer connection through it is closed, so the customer's FIX
  engine reconnects, and its reconnect is routed to a live utility (a utility that refused a
  connection is not tried again until it is heard anew or ``dead_after_s`` has passed).
- **Bad input disturbs nobody else.** Garbage first bytes, a first message over
  ``max_logon_bytes``, a first message that is garbled or not a Logon, or no Logon within
  ``logon_timeout_s`` close that one connection; each is counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, cast

from fixgw.framing import Framer, Garbled
from replication.auth import BusLogin
from replication.bus import MqttBus
from replication.wire import Topics
from utilities.errors import MalformedMessage
from utilities.liveness import Heartbeat, Liveness
from utilities.node_status import write_status

log = logging.getLogger("fixgw.gateway")

FIX_START = b"8=FIX"
LOGON = b"A"
CONNECT_TIMEOUT_S = 2.0     # per utility tried: a live one answers a loopback connect in < 1 ms
WATCH_INTERVAL_S = 0.25     # how often liveness is looked at for connections to close
STATUS_INTERVAL_S = 1.0     # how often status.json is rewritten (as the nodes do)
COUNTERS = (
    "accepted",             # customer connections accepted
    "routed_owner",         # Logons sent to the utility that owns the customer's session
    "routed_load",          # Logons sent to the least-loaded live utility
    "refused_garbage",      # first bytes are not the start of a FIX message
    "refused_oversized",    # no complete first message within max_logon_bytes
    "refused_garbled",      # first message framed but BodyLength / CheckSum / fields wrong
    "refused_not_logon",    # first message is not a Logon, or has no CompIDs
    "refused_timeout",      # no Logon within logon_timeout_s
    "refused_unknown_target",  # TargetCompID no customer utility answers to
    "no_live_utility",      # no live customer utility to route to
    "upstream_failed",      # a connect to a utility failed (it is then avoided)
    "closed_on_death",      # customer connections closed because their utility died
)


class GatewayError(Exception):
    """A gateway that cannot start (its TLS files, its port); the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """A customer utility the gateway may route to (from the cluster config)."""

    name: str
    host: str
    port: int
    comp_id: str


@dataclass(frozen=True, slots=True)
class Route:
    upstream: Upstream
    reason: str  # "owner" | "load"


class Directory:
    """Which customer utilities are alive, and which customers' sessions each owns.

    Pure logic over heartbeats and an injected clock, so that routing is tested without
    sockets. A utility is *routable* when its last heartbeat says ``ready`` within
    ``dead_after_s`` and it has not refused a connection since (a refused connect is fresher
    evidence than a heartbeat that may have left just before the process died).
    """

    def __init__(self, upstreams: Mapping[str, Upstream], dead_after_s: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.upstreams = dict(upstreams)
        self.liveness = Liveness(dead_after_s, monotonic)
        self._monotonic = monotonic
        self._suspect: dict[str, tuple[float, str]] = {}   # node -> (when, the instance refused)

    def saw(self, hb: Heartbeat) -> bool:
        """Take a heartbeat into account; False when it is not of a configured customer utility."""
        if hb.role != "customer" or hb.node not in self.upstreams:
            return False
        self.liveness.saw(hb)
        return True

    def suspect(self, node: str) -> None:
        """A connect to ``node`` failed: avoid it until another run of it is heard, or for
        ``dead_after_s`` (by then its heartbeats have stopped too, or it is back)."""
        hb = self.liveness.heartbeat(node)
        self._suspect[node] = (self._monotonic(), hb.instance if hb else "")

    def alive(self, node: str) -> bool:
        return self.liveness.alive(node)

    def routable(self, node: str) -> bool:
        hb = self.liveness.heartbeat(node)
        if hb is None or hb.state != "ready" or not self.liveness.alive(node):
            return False
        s = self._suspect.get(node)
        if s is None:
            return True
        at, instance = s
        if (instance and hb.instance and hb.instance != instance) or \
                self._monotonic() - at > self.liveness.dead_after_s:
            del self._suspect[node]
            return True
        return False

    def owners(self, client: str) -> list[str]:
        """Routable utilities whose heartbeat lists ``client``'s session (normally one)."""
        out = []
        for name in sorted(self.upstreams):
            hb = self.liveness.heartbeat(name)
            if hb is not None and client in hb.sessions and self.routable(name):
                out.append(name)
        return out

    def candidates(self, client: str, target: str, connections: Mapping[str, int]) -> list[Route]:
        """Where to send ``client``'s Logon to ``target``, best first: the owner(s) of its
        session, then every other routable utility by load (the more of the sessions its
        heartbeat lists and the connections this gateway has to it), ties by name."""
        names = [n for n, u in self.upstreams.items() if u.comp_id == target and self.routable(n)]
        owners = [n for n in self.owners(client) if n in names]

        def load(n: str) -> tuple[int, str]:
            hb = self.liveness.heartbeat(n)
            return max(len(hb.sessions) if hb else 0, connections.get(n, 0)), n

        rest = sorted((n for n in names if n not in owners), key=load)
        return [Route(self.upstreams[n], "owner") for n in owners] + [Route(self.upstreams[n], "load") for n in rest]

    def knows_target(self, target: str) -> bool:
        return any(u.comp_id == target for u in self.upstreams.values())


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS server context for the customer side; GatewayError names the file that is wrong."""
    for what, path in (("certificate", cert), ("private key", key)):
        if not path.is_file():
            raise GatewayError(f"TLS {what} {path}: no such file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise GatewayError(f"TLS certificate {cert} with key {key}: cannot be loaded: {exc}") from None
    return ctx


def _declared_size(buf: bytes) -> int:
    """The size a frame starting ``8=...<SOH>9=N<SOH>`` says it has (head + N + the 7-byte
    trailer), or 0 while that is not known yet (or not a number: the framer judges that)."""
    e1 = buf.find(b"\x01")
    if e1 < 0 or not buf.startswith(b"9=", e1 + 1):
        return 0
    e2 = buf.find(b"\x01", e1 + 3)
    length = buf[e1 + 3:e2]
    if e2 < 0 or not length.isdigit() or len(length) > 9:
        return 0
    return e2 + 1 + int(length) + 7


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class _Utility(asyncio.Protocol):
    """The gateway's connection to a customer utility: what it sends goes to the customer."""

    __slots__ = ("customer", "transport")

    def __init__(self, customer: _Customer) -> None:
        self.customer = customer
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport)

    def data_received(self, data: bytes) -> None:
        t = self.customer.transport
        if t is not None:
            t.write(data)

    def pause_writing(self) -> None:     # the utility's side is full: stop reading the customer
        self.customer.pause()

    def resume_writing(self) -> None:
        self.customer.resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.customer.upstream_lost()


class _Customer(asyncio.Protocol):
    """One customer connection: reads the Logon, has the gateway route it, then relays."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.upstream: _Utility | None = None
        self.node = ""
        self.client = ""
        self.state = "logon"            # logon | routing | relaying | closed
        self._buf = b""
        self._framer = Framer(max(64, gw.max_logon_bytes))
        self._pending: list[bytes] = []  # bytes that came while routing
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False

    # -- the customer's side -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        _nodelay(transport)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.gw.count("accepted")
        self._timer = asyncio.get_running_loop().call_later(self.gw.logon_timeout_s, self._logon_timed_out)

    def data_received(self, data: bytes) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.write(data)
            return
        if self.state == "routing":
            self._pending.append(data)
            return
        if self.state != "logon":
            return
        self._buf += data
        buf = self._buf
        if not (buf.startswith(FIX_START) or FIX_START.startswith(buf)):
            self.refuse("refused_garbage", f"first bytes are not a FIX message: {buf[:24]!r}")
            return
        declared = _declared_size(buf)
        if declared > self.gw.max_logon_bytes:
            self.refuse("refused_oversized", f"first message of {declared} bytes (by its BodyLength) over "
                                             f"{self.gw.max_logon_bytes}")
            return
        self._framer.feed(data)
        item = self._framer.next()
        if isinstance(item, Garbled):
            self.refuse("refused_garbled", f"first message garbled: {item.reason}")
            return
        if self._framer.skipped_bytes:
            self.refuse("refused_garbage", "bytes that are not a FIX message before the first one")
            return
        if item is None:
            if len(buf) > self.gw.max_logon_bytes:
                self.refuse("refused_oversized", f"no complete first message within {self.gw.max_logon_bytes} bytes")
            return
        raw = item.raw
        if len(raw) > self.gw.max_logon_bytes:
            self.refuse("refused_oversized", f"first message of {len(raw)} bytes over {self.gw.max_logon_bytes}")
            return
        if item.msg_type != LOGON:
            self.refuse("refused_not_logon", f"first message is MsgType {item.msg_type.decode(errors='replace')}, "
                                             "not a Logon (35=A)")
            return
        sender, target = item.get_str(49) or "", item.get_str(56) or ""
        if not sender or not target:
            self.refuse("refused_not_logon", "Logon without SenderCompID(49) or TargetCompID(56)")
            return
        rest = buf[len(buf) - self._framer.buffered:] if self._framer.buffered else b""
        self._cancel_timer()
        self.client = sender
        self.state = "routing"
        self.pause()
        self.gw.start_routing(self, raw + rest, sender, target)

    def pause_writing(self) -> None:     # the customer is not reading: stop reading its utility
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.pause_reading()

    def resume_writing(self) -> None:
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        prev, self.state = self.state, "closed"
        self.transport = None
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.close()
        if prev == "relaying":
            self.gw.forget(self)

    # -- used by the gateway and the utility's side ------------------------------------------

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def attach(self, up: _Utility, node: str, first: bytes) -> None:
        """Routed: the Logon (and what followed it) goes to the utility, then relay."""
        assert up.transport is not None
        self.upstream, self.node, self.state = up, node, "relaying"
        up.transport.write(first + b"".join(self._pending))
        self._pending.clear()
        self.resume()

    def upstream_lost(self) -> None:
        """The utility closed the connection (a Logout, or its process died): so do we, after
        flushing what it sent, so that the customer's engine reconnects."""
        if self.transport is not None:
            self.transport.close()

    def refuse(self, counter: str, why: str) -> None:
        self.gw.count(counter)
        log.warning("%s: connection from %s closed%s: %s", self.gw.name, self.peer,
                    f" ({self.client})" if self.client else "", why)
        self.state = "closed"
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()   # nothing of ours to flush; never wait on a bad peer

    def close(self) -> None:
        self.gw.forget(self)
        if self.transport is not None:
            self.transport.close()
        up = self.upstream
        if up is not None and up.transport is not None:
            up.transport.abort()

    def _logon_timed_out(self) -> None:
        self._timer = None
        if self.state == "logon":
            self.refuse("refused_timeout", f"no Logon within {self.gw.logon_timeout_s:g} s")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Gateway:
    """``async with Gateway(...) as gw:`` listens on ``host:port`` and routes until closed."""

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        upstreams: Mapping[str, Upstream],
        cluster: str,
        broker_host: str,
        broker_port: int,
        dead_after_s: float,
        logon_timeout_s: float = 10.0,
        max_logon_bytes: int = 4096,
        tls: ssl.SSLContext | None = None,
        route_wait_s: float | None = None,
        status_dir: Path | None = None,
        bus_client_id: str | None = None,
        login: BusLogin | None = None,   # the broker login it listens with (read-only is enough)
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.directory = Directory(upstreams, dead_after_s)
        self.logon_timeout_s = logon_timeout_s
        self.max_logon_bytes = max_logon_bytes
        self.tls = tls
        # how long a Logon waits for a routable utility (one may be starting or restarting)
        self.route_wait_s = dead_after_s if route_wait_s is None else route_wait_s
        self.status_dir = status_dir
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.connections: dict[str, set[_Customer]] = {}
        # Logons on their way to a utility (connecting): counted as its load, so customers
        # arriving together are spread, not all sent to the one that looked least loaded
        self._connecting: dict[str, int] = {}
        self.state = "starting"
        self.started_at = time.time()
        self._bus = MqttBus(client_id=bus_client_id or f"{cluster}-gateway-{name}", host=broker_host,
                            port=broker_port, subscriptions=[(Topics(cluster).heartbeat("customer", "+"), 0)],
                            on_message=self._on_message, login=login)
        self._server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._routing: set[asyncio.Task[None]] = set()   # held: the loop keeps only weak references

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self, bus_timeout: float = 5.0) -> None:
        self._bus.start()
        try:
            await self._bus.wait_connected(bus_timeout)
        except TimeoutError:
            log.warning("%s: broker %s:%s not reachable yet: routing waits for heartbeats", self.name,
                        self._bus.host, self._bus.port)
        # hear every live utility before taking customers: a Logon routed on the first heartbeat
        # heard would pick from part of the cluster (bounded: a utility that is down is never heard)
        loop = asyncio.get_running_loop()
        until = loop.time() + self.directory.liveness.dead_after_s
        while loop.time() < until and not all(self.directory.alive(n) for n in self.directory.upstreams):
            await asyncio.sleep(0.05)
        # a TLS handshake counts towards the Logon's time (asyncio rejects the option without TLS)
        tls: dict[str, Any] = {} if self.tls is None else {"ssl": self.tls,
                                                             "ssl_handshake_timeout": self.logon_timeout_s}
        try:
            self._server = await loop.create_server(lambda: _Customer(self), self.host, self.port,
                                                    reuse_address=True, **tls)
        except OSError as exc:
            await self._bus.close()
            raise GatewayError(f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        self._tasks.append(loop.create_task(self._watch()))
        if self.status_dir is not None:
            self._tasks.append(loop.create_task(self._status_writer()))
        self.state = "ready"
        self._write_status()
        log.info("%s listening on %s:%s%s, routing to %s", self.name, self.host, self.port,
                 " (TLS)" if self.tls else "", ", ".join(sorted(self.directory.upstreams)))

    async def stop(self) -> None:
        self.state = "stopping"
        log.info("%s (gateway) stopping", self.name)
        if self._server is not None:
            self._server.close()
        for conns in list(self.connections.values()):
            for c in list(conns):
                c.close()
        tasks = [*self._tasks, *self._routing]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._bus.close()
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except TimeoutError:
                pass
        self.state = "stopped"
        self._write_status()
        log.info("%s (gateway) stopped", self.name)

    @property
    def bound_port(self) -> int:
        """The port actually listened on (``port = 0`` in tests picks a free one)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    # -- heartbeats and liveness ---------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            hb = Heartbeat.decode(payload)
        except MalformedMessage as exc:
            log.warning("%s: malformed heartbeat on %s set aside: %s", self.name, topic, exc)
            return
        if not topic.endswith(f"/{hb.role}/{hb.node}"):
            # a node speaks for itself only: one claiming another's name is no evidence of it
            log.warning("%s: heartbeat of %s (%s) on %s set aside: not its topic", self.name, hb.node, hb.role, topic)
            return
        self.directory.saw(hb)

    async def _watch(self) -> None:
        """Close the customers of a utility that is dead by its heartbeats (a utility whose
        process died is seen sooner: its connections drop)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for node, conns in list(self.connections.items()):
                if conns and not self.directory.alive(node):
                    log.warning("%s: customer utility %s is dead (silent %.1f s or stopping): closing its %d "
                                "customer connection(s)", self.name, node,
                                self.directory.liveness.silent_for(node) or 0.0, len(conns))
                    for c in list(conns):
                        self.count("closed_on_death")
                        c.close()

    # -- routing -------------------------------------------------------------------------------

    def count(self, counter: str) -> None:
        self.counters[counter] = self.counters.get(counter, 0) + 1

    def forget(self, c: _Customer) -> None:
        conns = self.connections.get(c.node)
        if conns is not None:
            conns.discard(c)

    def load(self) -> dict[str, int]:
        """This gateway's connections to each utility, counting those being connected."""
        out = {n: len(c) for n, c in self.connections.items()}
        for n, k in self._connecting.items():
            out[n] = out.get(n, 0) + k
        return out

    def start_routing(self, c: _Customer, first: bytes, client: str, target: str) -> None:
        task = asyncio.get_running_loop().create_task(self.route(c, first, client, target))
        self._routing.add(task)
        task.add_done_callback(self._routing.discard)

    async def route(self, c: _Customer, first: bytes, client: str, target: str) -> None:
        try:
            await self._route(c, first, client, target)
        except Exception:   # a bug must cost one connection, never the gateway
            log.exception("%s: routing %s failed", self.name, client)
            c.close()

    async def _route(self, c: _Customer, first: bytes, client: str, target: str) -> None:
        if not self.directory.knows_target(target):
            c.refuse("refused_unknown_target", f"Logon of {client} to TargetCompID {target}, which no customer "
                                               "utility answers to")
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.route_wait_s
        tried: set[str] = set()
        while c.state == "routing":
            routes = [r for r in self.directory.candidates(client, target, self.load()) if r.upstream.name not in tried]
            if not routes:
                if loop.time() >= deadline:
                    c.refuse("no_live_utility", f"no live customer utility for {client} -> {target} "
                                                f"within {self.route_wait_s:g} s")
                    return
                await asyncio.sleep(0.05)
                tried.clear()   # a utility that refused may be back (heard anew)
                continue
            route = routes[0]
            up = route.upstream
            tried.add(up.name)
            self._connecting[up.name] = self._connecting.get(up.name, 0) + 1
            try:
                _, proto = await asyncio.wait_for(
                    loop.create_connection(lambda: _Utility(c), up.host, up.port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError) as exc:
                self.count("upstream_failed")
                self.directory.suspect(up.name)
                log.warning("%s: customer utility %s at %s:%s refused %s (%s): trying another", self.name, up.name,
                            up.host, up.port, client, exc)
                continue
            finally:
                self._connecting[up.name] -= 1
                if not self._connecting[up.name]:
                    del self._connecting[up.name]
            if c.state != "routing":     # the customer left while we connected
                if proto.transport is not None:
                    proto.transport.close()
                return
            c.attach(proto, up.name, first)
            self.connections.setdefault(up.name, set()).add(c)
            self.count("routed_" + route.reason)
            log.info("%s: %s from %s routed to %s (%s)", self.name, client, c.peer, up.name,
                     "owner of its session" if route.reason == "owner" else "least loaded")
            return

    # -- status ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        d = self.directory
        return {
            "name": self.name, "role": "gateway", "pid": os.getpid(), "state": self.state,
            "started_at": self.started_at, "updated_at": time.time(), "listen": f"{self.host}:{self.port}",
            "tls": self.tls is not None, "broker": "up" if self._bus.connected else "down",
            "counters": dict(self.counters),
            "connections": {n: len(c) for n, c in sorted(self.connections.items()) if c},
            "utilities": {n: ("routable" if d.routable(n) else "alive" if d.alive(n) else "dead")
                          for n in sorted(d.upstreams)},
            # the sessions each utility's last heartbeat lists: with "connections", what routing
            # by load weighs
            "sessions": {n: list(hb.sessions) for n in sorted(d.upstreams)
                         if (hb := d.liveness.heartbeat(n)) is not None},
        }

    def _write_status(self) -> None:
        if self.status_dir is None:
            return
        try:
            self.status_dir.mkdir(parents=True, exist_ok=True)
            write_status(self.status_dir, self.status())   # the same file as a node's: fixgw status reads it
        except OSError as exc:
            log.warning("%s: status file not written: %s", self.name, exc)

    async def _status_writer(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_S)
            self._write_status()


__all__ = ["COUNTERS", "Directory", "Gateway", "GatewayError", "Route", "Upstream", "server_tls_context"]
