"""The MQTT connection of a node: connect, subscribe, publish, reconnect with backoff.

aiomqtt underneath, MQTT 3.1.1 (the widest broker support), QoS 1, a persistent session
(``clean_session=False``, client id = node id) so that the broker queues for a node that
is away, and TCP_NODELAY on the client socket: without it a QoS 1 round trip takes ~88 ms
here (Nagle + delayed ACK), with it well under a millisecond.

The bus knows nothing of records: it hands every message to ``on_message(topic,
payload)`` (called on the loop thread; it must not block) and runs ``on_connected(bus)``
as a task for the life of each connection (the node's publisher, digests, ...). When the
broker goes away, the connection's tasks are cancelled, ``connected`` turns false and the
bus retries with exponential backoff until it is closed.

``login`` (:class:`replication.auth.BusLogin`) gives the username and password, and with a
CA file, TLS to the broker. A broker that refuses the login (CONNACK "not authorised" or
"bad username or password") is logged as an error once per streak, and retried like a
broker that is away: an operator may fix the password file and reload the broker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import aiomqtt

from replication.auth import BusLogin

log = logging.getLogger(__name__)

NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class BusDisconnected(Exception):
    """A publish was attempted while the bus has no broker connection."""


class MqttBus:
    def __init__(
        self,
        *,
        client_id: str,
        host: str,
        port: int,
        subscriptions: Sequence[tuple[str, int]],
        on_message: Callable[[str, bytes], None],
        on_connected: Callable[[MqttBus], Coroutine[Any, Any, None]] | None = None,
        backoff_initial: float = 0.05,
        backoff_max: float = 2.0,
        keepalive: int = 10,
        publish_timeout: float = 10.0,
        login: BusLogin | None = None,
    ) -> None:
        self.client_id = client_id
        self.host = host
        self.port = port
        self._subscriptions = list(subscriptions)
        self._on_message = on_message
        self._on_connected = on_connected
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._keepalive = keepalive
        self._publish_timeout = publish_timeout
        self._login = login
        self._tls = login.tls_context() if login is not None else None
        self._refusals = 0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected_event = asyncio.Event()
        self._closing = False
        self.connects = 0
        self.last_error: str = ""

    @property
    def connected(self) -> bool:
        return self._client is not None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"mqtt-{self.client_id}")

    async def close(self) -> None:
        task, self._task = self._task, None
        self._closing = True
        if task is not None:
            task.cancel()
            # aiomqtt may turn our cancellation into an MqttError (e.g. its disconnect wait
            # timing out); _closing makes the loop end anyway. Never wait unboundedly here.
            done, _ = await asyncio.wait({task}, timeout=self._publish_timeout + 2)
            if not done:
                log.warning("%s: MQTT connection task did not stop in time", self.client_id)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("%s: MQTT connection task ended with %r", self.client_id, task.exception())

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    def client_socket(self) -> socket.socket | None:
        """The TCP socket of the current connection (for checks such as TCP_NODELAY)."""
        client = self._client
        if client is None:
            return None
        sock = client._client.socket()
        return sock if isinstance(sock, socket.socket) else None

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK. BusDisconnected if offline."""
        client = self._client
        if client is None:
            raise BusDisconnected(f"{self.client_id}: not connected to {self.host}:{self.port}")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain, timeout=self._publish_timeout)
        except aiomqtt.MqttError as exc:
            raise BusDisconnected(f"{self.client_id}: publish failed: {exc}") from None

    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._closing:
            client = aiomqtt.Client(
                self.host,
                self.port,
                identifier=self.client_id,
                protocol=aiomqtt.ProtocolVersion.V311,
                clean_session=False,
                keepalive=self._keepalive,
                socket_options=[NODELAY],
                timeout=self._publish_timeout,
                **_login_args(self._login, self._tls),
            )
            try:
                async with client:
                    self._client = client
                    self.connects += 1
                    self._refusals = 0
                    delay = self._backoff_initial
                    if self._subscriptions:
                        await client.subscribe(self._subscriptions)
                    self._connected_event.set()
                    log.info("%s connected to %s:%s", self.client_id, self.host, self.port)
                    await self._serve(client)
            except aiomqtt.MqttError as exc:
                self.last_error = str(exc)
                if refused(exc):
                    self._refusals += 1
                    if self._refusals == 1:
                        log.error("%s: the broker %s:%s refused our login as %r: %s (check the password "
                                  "file and the broker's ACL); retrying", self.client_id, self.host, self.port,
                                  self._login.username if self._login else None, exc)
                log.info("%s: broker %s:%s unavailable (%s); retrying in %.2fs",
                         self.client_id, self.host, self.port, exc, delay)
            except asyncio.CancelledError:
                raise
            finally:
                self._client = None
                self._connected_event.clear()
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    async def _serve(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        recv = loop.create_task(self._receive(client))
        tasks: set[asyncio.Task[None]] = {recv}
        if self._on_connected is not None:
            tasks.add(loop.create_task(self._on_connected(self)))
        try:
            while recv not in (done := (await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED))[0]):
                for t in done:  # the connection task ended first: fine if it just returned
                    tasks.discard(t)
                    exc = t.exception()
                    if exc is not None:
                        if not isinstance(exc, (BusDisconnected, aiomqtt.MqttError)):
                            log.error("%s: connection task failed: %r", self.client_id, exc)
                        raise aiomqtt.MqttError(f"connection task failed: {exc!r}")
            recv.result()  # raises the receive loop's MqttError on disconnection
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            if not isinstance(payload, (bytes, bytearray)):
                payload = b"" if payload is None else str(payload).encode()
            try:
                self._on_message(message.topic.value, bytes(payload))
            except Exception:  # a handler bug must not take the connection down
                log.exception("%s: message handler failed on %s", self.client_id, message.topic.value)
        raise aiomqtt.MqttError("message stream ended")


__all__ = ["NODELAY", "BusDisconnected", "MqttBus", "listen_briefly", "refused"]


def _login_args(login: BusLogin | None, tls: Any = None) -> dict[str, Any]:
    if login is None:
        return {}
    args: dict[str, Any] = {"username": login.username, "password": login.password}
    if tls is not None or login.ca_file is not None:
        args["tls_context"] = tls if tls is not None else login.tls_context()
    return args


def refused(exc: BaseException) -> bool:
    """Whether an MQTT error is the broker refusing our login (CONNACK 4 or 5)."""
    rc = getattr(exc, "rc", None)
    value = getattr(rc, "value", rc)
    return value in (4, 5, 134, 135) or "not authori" in str(exc).lower()


async def listen_briefly(host: str, port: int, topic: str, seconds: float,
                         login: BusLogin | None = None) -> list[bytes] | None:
    """The payloads published on ``topic`` during ``seconds``, heard by a throwaway client
    with a client id of its own (so it takes no node's session away); None when the broker
    cannot be reached. Used before a node connects, to hear whether it already runs elsewhere."""
    import secrets

    got: list[bytes] = []
    client = aiomqtt.Client(host, port, identifier=f"probe-{secrets.token_hex(6)}",
                            protocol=aiomqtt.ProtocolVersion.V311, clean_session=True, timeout=seconds + 2,
                            **_login_args(login))
    try:
        async with client:
            await client.subscribe(topic, qos=0)

            async def collect() -> None:
                async for message in client.messages:
                    if isinstance(message.payload, (bytes, bytearray)):
                        got.append(bytes(message.payload))

            try:
                await asyncio.wait_for(collect(), seconds)
            except TimeoutError:
                pass
    except aiomqtt.MqttError as exc:
        if refused(exc):
            log.error("probe of %s on %s:%s: the broker refused our login as %r: %s", topic, host, port,
                      login.username if login else None, exc)
        else:
            log.debug("probe of %s on %s:%s failed: %s", topic, host, port, exc)
        return None
    return got
