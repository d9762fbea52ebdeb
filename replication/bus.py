"""The MQTT connection of a node: connect, subscribe, publish, reconnect with backoff.

Our own small client underneath (:mod:`replication.mqtt`: about a sixth of aiomqtt's and
paho's CPU per message, measured there), MQTT 3.1.1 (the widest broker support), QoS 1, a
persistent session (``clean_session=False``, client id = node id) so that the broker queues
for a node that is away, and TCP_NODELAY on the client socket: without it a QoS 1 round trip
takes ~88 ms here (Nagle + delayed ACK), with it well under a millisecond.

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
import contextlib
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from replication.auth import BusLogin
from replication.mqtt import ConnectRefused, MqttClient, MqttError

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
        self._client: MqttClient | None = None
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
            # _closing makes the loop end even if the cancellation surfaces as an MqttError.
            # Never wait unboundedly here.
            done, _ = await asyncio.wait({task}, timeout=self._publish_timeout + 2)
            if not done:
                log.warning("%s: MQTT connection task did not stop in time", self.client_id)
            elif not task.cancelled() and task.exception() is not None:
                log.warning("%s: MQTT connection task ended with %r", self.client_id, task.exception())

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._connected_event.wait(), timeout)

    def client_socket(self) -> Any:
        """The TCP socket of the current connection, as its transport shows it (for checks
        such as TCP_NODELAY), or None."""
        client = self._client
        return None if client is None else client.socket()

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish and, for QoS 1, wait for the broker's PUBACK. BusDisconnected if offline."""
        client = self._client
        if client is None:
            raise BusDisconnected(f"{self.client_id}: not connected to {self.host}:{self.port}")
        try:
            await client.publish(topic, payload, qos=qos, retain=retain)
        except MqttError as exc:
            raise BusDisconnected(f"{self.client_id}: publish failed: {exc}") from None

    async def _run(self) -> None:
        delay = self._backoff_initial
        while not self._closing:
            client = MqttClient(
                self.host,
                self.port,
                client_id=self.client_id,
                on_message=self._deliver,
                clean_session=False,
                keepalive=self._keepalive,
                timeout=self._publish_timeout,
                **_login_args(self._login, self._tls),
            )
            try:
                try:
                    await client.connect()
                    self._client = client
                    self.connects += 1
                    self._refusals = 0
                    delay = self._backoff_initial
                    if self._subscriptions:
                        await client.subscribe(self._subscriptions)
                    self._connected_event.set()
                    log.info("%s connected to %s:%s", self.client_id, self.host, self.port)
                    await self._serve(client)
                finally:
                    self._client = None
                    self._connected_event.clear()
                    await client.disconnect()
            except MqttError as exc:
                self.last_error = str(exc)
                if refused(exc):
                    self._refusals += 1
                    if self._refusals == 1:
                        log.error("%s: the broker %s:%s refused our login as %r: %s (check the password "
                                  "file and the broker's ACL); retrying", self.client_id, self.host, self.port,
                                  self._login.username if self._login else None, exc)
                log.info("%s: broker %s:%s unavailable (%s); retrying in %.2fs",
                         self.client_id, self.host, self.port, exc, delay)
            if self._closing:
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._backoff_max)

    def _deliver(self, topic: str, payload: bytes) -> None:
        try:
            self._on_message(topic, payload)
        except Exception:  # a handler bug must not take the connection down
            log.exception("%s: message handler failed on %s", self.client_id, topic)

    async def _serve(self, client: MqttClient) -> None:
        """Until the connection ends (raises its MqttError) or a connection task fails."""
        loop = asyncio.get_running_loop()
        closed = loop.create_task(client.wait_closed())
        tasks: set[asyncio.Task[None]] = {closed}
        if self._on_connected is not None:
            tasks.add(loop.create_task(self._on_connected(self)))
        try:
            while closed not in (done := (await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED))[0]):
                for t in done:  # the connection task ended first: fine if it just returned
                    tasks.discard(t)
                    exc = t.exception()
                    if exc is not None:
                        if not isinstance(exc, (BusDisconnected, MqttError)):
                            log.error("%s: connection task failed: %r", self.client_id, exc)
                        raise MqttError(f"connection task failed: {exc!r}")
            closed.result()  # raises the MqttError that ended the connection
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["NODELAY", "BusDisconnected", "MqttBus", "listen_briefly", "refused"]


def _login_args(login: BusLogin | None, tls: Any = None) -> dict[str, Any]:
    if login is None:
        return {}
    args: dict[str, Any] = {"username": login.username, "password": login.password}
    if tls is not None or login.ca_file is not None:
        args["ssl"] = tls if tls is not None else login.tls_context()
    return args


def refused(exc: BaseException) -> bool:
    """Whether an MQTT error is the broker refusing our login (CONNACK 4 or 5)."""
    if isinstance(exc, ConnectRefused):
        return exc.rc in (4, 5)
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
    client = MqttClient(host, port, client_id=f"probe-{secrets.token_hex(6)}",
                        on_message=lambda _t, payload: got.append(payload), clean_session=True,
                        timeout=seconds + 2, **_login_args(login))
    try:
        await client.connect()
        try:
            await client.subscribe([(topic, 0)])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.wait_closed(), seconds)
        finally:
            await client.disconnect()
    except MqttError as exc:
        if refused(exc):
            log.error("probe of %s on %s:%s: the broker refused our login as %r: %s", topic, host, port,
                      login.username if login else None, exc)
        else:
            log.debug("probe of %s on %s:%s failed: %s", topic, host, port, exc)
        return None
    return got
