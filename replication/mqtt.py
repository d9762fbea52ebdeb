"""A small MQTT 3.1.1 client on an asyncio ``Protocol``: what the record bus needs, no more.

Why our own (issue 13, "replace a dependency where a better one exists, measured side by
side"): every record crosses the broker once out and once into each node that holds it, and
at the rates of an order gateway the client's cost per message is a large share of a node's
CPU. Measured on this 2-core machine against mosquitto on loopback, 10,000 QoS 1 messages of
200 bytes, CPU of the client process per message (the same runs, interleaved, load 7-9):

==========================  ================  =================
                            aiomqtt 2 + paho   this client
==========================  ================  =================
publish, one at a time       128-178 us        30-36 us
publish, 50 in flight        94-97 us          10.5-10.8 us
receive                      71-133 us         9-24 us
==========================  ================  =================

(``py-spy --gil`` of a customer utility at 100 orders/s put paho and aiomqtt at about 30% of
its Python time.) paho runs a full client state machine per packet (its own socket
callbacks, locks, a message object and a matcher per message) under aiomqtt's futures and an
async iterator; gmqtt, the other asyncio client, has no way to learn that a QoS 1 message
was acknowledged, which the node's outbox needs.

What it does: CONNECT (client id, clean session or not, keep-alive, username/password, TLS
through an ``ssl.SSLContext``), SUBSCRIBE, PUBLISH at QoS 0 and 1 both ways (a publish
returns once the broker's PUBACK is in), PINGREQ when idle, DISCONNECT. What one turn of the
event loop writes leaves in one system call (``_write``). TCP_NODELAY is set
(without it a QoS 1 round trip took ~88 ms here: Nagle and delayed ACK). Incoming PUBLISHes
are handed to ``on_message(topic, payload)`` on the loop thread, in order, and acknowledged
after it returns (it must not block). There is no client-side session store: when the
connection is lost every publish still waiting for its PUBACK fails with
:class:`ConnectionLost`, and the caller (the node's outbox) publishes again after
reconnecting; with ``clean_session=False`` the broker keeps our subscriptions and what was
published to us meanwhile, and sends it again (DUP) on the next connection.

Bounded: at most ``max_inflight`` publishes wait for a PUBACK (a publish beyond waits for a
free slot), and a publish waits while the socket's write buffer is above asyncio's high-water
mark (``pause_writing``); an incoming packet larger than ``max_packet`` closes the
connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl as ssl_module
import struct
from collections.abc import Callable, Sequence
from typing import Any, cast

from replication.errors import ReplicationError

__all__ = ["ConnectRefused", "ConnectionLost", "MqttClient", "MqttError"]

_CONNACK_TEXT = {
    1: "unacceptable protocol version", 2: "identifier rejected", 3: "server unavailable",
    4: "bad username or password", 5: "not authorised",
}
_U16 = struct.Struct("!H")
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


class MqttError(ReplicationError):
    """The broker connection failed or was lost; the message says how."""


class ConnectRefused(MqttError):
    """The broker answered CONNECT with a refusal (``rc``: 4 bad username or password,
    5 not authorised, ...)."""

    def __init__(self, rc: int) -> None:
        super().__init__(f"connection refused by the broker: {_CONNACK_TEXT.get(rc, 'code')} ({rc})")
        self.rc = rc


class ConnectionLost(MqttError):
    """The connection ended (or never came up) before the operation finished."""


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return _U16.pack(len(b)) + b


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n & 0x7F, n >> 7
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


class _Protocol(asyncio.Protocol):
    def __init__(self, client: MqttClient) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        client = self.client
        try:
            while end - pos >= 2:
                # fixed header: type/flags byte, then 1-4 bytes of remaining length
                n, shift, i, complete = 0, 0, pos + 1, False
                while i < end:
                    b = buf[i]
                    i += 1
                    n |= (b & 0x7F) << shift
                    if not b & 0x80:
                        complete = True
                        break
                    shift += 7
                    if shift > 21:
                        raise MqttError("malformed remaining length from the broker")
                if not complete:
                    break       # the length itself is incomplete
                if n > client.max_packet:
                    raise MqttError(f"a packet of {n} bytes from the broker (at most {client.max_packet})")
                if end - i < n:
                    break       # the body is incomplete
                client._packet(buf[pos], bytes(buf[i:i + n]))
                pos = i + n
        except (MqttError, ValueError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
            client._lost(exc if isinstance(exc, MqttError) else MqttError(f"malformed packet from the broker: {exc}"))
            if self.transport is not None:
                self.transport.close()
            return
        if pos:
            del buf[:pos]

    def pause_writing(self) -> None:
        self.client._writable.clear()

    def resume_writing(self) -> None:
        self.client._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._lost(ConnectionLost(f"connection to the broker lost: {exc or 'closed'}"))


class MqttClient:
    """One connection to a broker (connect once; make a new client to reconnect)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        on_message: Callable[[str, bytes], None] | None = None,
        clean_session: bool = True,
        keepalive: int = 10,
        username: str | None = None,
        password: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        timeout: float = 10.0,
        max_inflight: int = 1000,
        max_packet: int = 64 << 20,
    ) -> None:
        self.host = host
        self.port = port
        self.client_id = client_id
        self.on_message = on_message
        self.clean_session = clean_session
        self.keepalive = keepalive
        self.username = username
        self.password = password
        self.ssl = ssl
        self.timeout = timeout
        self.max_packet = max_packet
        self._proto: _Protocol | None = None
        self._connack: asyncio.Future[int] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}   # packet id -> PUBACK / SUBACK waiter
        self._out: list[bytes] = []                          # written at the end of this loop turn
        self._next_id = 0
        self._slots = asyncio.Semaphore(max_inflight)
        self._writable = asyncio.Event()
        self._writable.set()
        self._pinger: asyncio.Task[None] | None = None
        self._heard = 0.0           # loop time of the last packet from the broker
        self.error: MqttError | None = None

    # ------------------------------------------------------------------ connection
    @property
    def connected(self) -> bool:
        return self._closed is not None and not self._closed.done()

    def socket(self) -> Any:
        """The connection's socket as the transport shows it (asyncio's or uvloop's socket-like
        view: getsockopt works), or None."""
        t = self._proto.transport if self._proto is not None else None
        return t.get_extra_info("socket") if t is not None else None

    async def connect(self) -> None:
        """TCP (and TLS) to the broker, CONNECT, CONNACK; :class:`ConnectRefused` on a refusal,
        :class:`MqttError` when the broker cannot be reached within ``timeout``."""
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._closed = loop.create_future()
        try:
            async with asyncio.timeout(self.timeout):
                _, proto = await loop.create_connection(
                    lambda: _Protocol(self), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl is not None else None)
                self._proto = proto
                flags = 0x02 if self.clean_session else 0
                payload = _str(self.client_id)
                if self.username is not None:
                    flags |= 0x80
                    payload += _str(self.username)
                    if self.password is not None:
                        flags |= 0x40
                        payload += _str(self.password)
                vh = _str(b"MQTT") + bytes((4, flags)) + _U16.pack(self.keepalive)
                self._write(b"\x10" + _remaining_length(len(vh) + len(payload)) + vh + payload)
                rc = await asyncio.shield(self._connack)
        except TimeoutError:
            self.close()
            raise MqttError(f"no answer from the broker {self.host}:{self.port} within {self.timeout}s") from None
        except OSError as exc:
            self.close()
            raise MqttError(f"cannot reach the broker {self.host}:{self.port}: {exc.strerror or exc}") from None
        except MqttError:
            self.close()
            raise
        if rc != 0:
            self.close()
            raise ConnectRefused(rc)
        self._heard = loop.time()
        if self.keepalive > 0:
            self._pinger = loop.create_task(self._ping(), name=f"mqtt-ping-{self.client_id}")

    async def wait_closed(self) -> None:
        """Until the connection ends; raises the :class:`MqttError` that ended it."""
        assert self._closed is not None, "connect() first"
        await asyncio.shield(self._closed)

    async def disconnect(self) -> None:
        """DISCONNECT (the broker then drops our will, and keeps a persistent session)."""
        if self.connected:
            with contextlib.suppress(Exception):
                self._write(DISCONNECT)
        self.close()

    def close(self) -> None:
        proto = self._proto
        if proto is not None and proto.transport is not None:
            self._flush()   # what this turn queued still leaves, then the connection closes
            proto.transport.close()
        self._lost(ConnectionLost("connection closed by this client"))

    # ------------------------------------------------------------------ operations
    async def subscribe(self, topics: Sequence[tuple[str, int]]) -> list[int]:
        """Subscribe; the granted QoS per topic (0x80: refused, e.g. by the broker's ACL)."""
        if not topics:
            return []
        pid, fut = self._new_waiter()
        body = _U16.pack(pid) + b"".join(_str(t) + bytes((q,)) for t, q in topics)
        self._write(b"\x82" + _remaining_length(len(body)) + body)
        granted: list[int] = await self._await(fut, "SUBACK")
        return granted

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish; at QoS 1 return once the broker has acknowledged it (PUBACK)."""
        if not self.connected:
            raise ConnectionLost(f"not connected to {self.host}:{self.port}")
        if not self._writable.is_set():
            await self._await_writable()
        t = topic.encode()
        if qos == 0:
            vh = _U16.pack(len(t)) + t
            self._write(bytes((0x30 | retain,)) + _remaining_length(len(vh) + len(payload)) + vh + payload)
            return
        async with self._slots:
            pid, fut = self._new_waiter()
            vh = _U16.pack(len(t)) + t + _U16.pack(pid)
            self._write(bytes((0x32 | retain,)) + _remaining_length(len(vh) + len(payload)) + vh + payload)
            await self._await(fut, "PUBACK")

    # ------------------------------------------------------------------ internals
    def _write(self, data: bytes) -> None:
        """Queue ``data``; everything queued in one turn of the event loop leaves in one write
        (one system call) at its end. On loopback the sender's system call also carries the
        packet into the receiver's socket: each is kernel work on both sides, and one PUBACK
        per received message or one write per publish was the largest cost left in a node's
        traffic with the broker (py-spy --gil, customer utility at 100 orders/s: 20% of its
        Python time inside transport.write)."""
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            raise ConnectionLost(f"not connected to {self.host}:{self.port}")
        out = self._out
        out.append(data)
        if len(out) == 1:
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        out, self._out = self._out, []
        proto = self._proto
        if out and proto is not None and proto.transport is not None and not proto.transport.is_closing():
            proto.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def _new_waiter(self) -> tuple[int, asyncio.Future[Any]]:
        if len(self._pending) >= 65535:
            raise MqttError("no free MQTT packet identifier")
        pid = self._next_id
        while True:
            pid = pid % 65535 + 1
            if pid not in self._pending:
                break
        self._next_id = pid
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[pid] = fut
        return pid, fut

    async def _await(self, fut: asyncio.Future[Any], what: str) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await fut
        except TimeoutError:
            raise MqttError(f"no {what} from the broker within {self.timeout}s") from None

    async def _await_writable(self) -> None:
        # _lost sets the event too, so a lost connection ends the wait
        try:
            async with asyncio.timeout(self.timeout):
                await self._writable.wait()
        except TimeoutError:
            raise MqttError(f"the broker did not read for {self.timeout}s") from None
        if not self.connected:
            raise ConnectionLost(f"not connected to {self.host}:{self.port}")

    def _packet(self, first: int, body: bytes) -> None:
        kind = first >> 4
        self._heard = asyncio.get_running_loop().time()
        if kind == 3:           # PUBLISH
            tlen = _U16.unpack_from(body)[0]
            topic = body[2:2 + tlen].decode()
            qos = (first >> 1) & 3
            pos = 2 + tlen
            if qos:
                if qos == 2:
                    raise MqttError("QoS 2 PUBLISH from the broker (this client subscribes at QoS 0/1)")
                pid_bytes = body[pos:pos + 2]
                pos += 2
            on_message = self.on_message
            if on_message is not None:
                on_message(topic, body[pos:])
            if qos:
                self._write(b"\x40\x02" + pid_bytes)
        elif kind == 4:         # PUBACK
            fut = self._pending.pop(_U16.unpack_from(body)[0], None)
            if fut is not None and not fut.done():
                fut.set_result(None)
        elif kind == 9:         # SUBACK
            fut = self._pending.pop(_U16.unpack_from(body)[0], None)
            if fut is not None and not fut.done():
                fut.set_result(list(body[2:]))
        elif kind == 2:         # CONNACK
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(body[1] if len(body) >= 2 else 255)
        elif kind == 13:        # PINGRESP
            pass
        else:
            raise MqttError(f"unexpected MQTT packet type {kind} from the broker")

    def _lost(self, exc: MqttError) -> None:
        if self.error is None:
            self.error = exc
        for fut in (self._connack, self._closed):
            if fut is not None and not fut.done():
                fut.set_exception(exc)
                fut.exception()  # retrieved: nobody may be waiting
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionLost(str(exc)))
                fut.exception()
        self._writable.set()
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None

    async def _ping(self) -> None:
        """PINGREQ every ``keepalive / 2`` s; no packet from the broker for 1.5 x keepalive
        after one: the connection is dead (the broker uses the same 1.5 x)."""
        loop = asyncio.get_running_loop()
        every = self.keepalive / 2
        while self.connected:
            await asyncio.sleep(every)
            if loop.time() - self._heard > 1.5 * self.keepalive:
                self._lost(ConnectionLost(f"no answer from the broker for {1.5 * self.keepalive:.0f}s"))
                self.close()
                return
            with contextlib.suppress(MqttError):
                self._write(PINGREQ)
