"""Gateways in process against real parts: a real mosquitto, real TCP, and two fixgw FIX
acceptors (the echo application) standing as customer utilities cfu1 and cfu2, whose
heartbeats the rig publishes on the broker as the nodes do (so that a test decides which
sessions each one says it owns, and when it falls silent)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from fixgw.at_server import EchoApplication
from fixgw.config import SessionID, SessionSettings
from fixgw.engine import Engine
from fixgw.message import Message
from replication.bus import MqttBus
from replication.wire import Topics
from tests.support.broker import Mosquitto, free_port
from tests.support.fixclient import Collector, now_ts
from utilities.gateway import Gateway, Upstream
from utilities.liveness import Heartbeat

CLUSTER = "gwt"
HEARTBEAT_S = 0.1
DEAD_AFTER_S = 1.0


def heartbeat_topic(node: str) -> str:
    return Topics(CLUSTER).heartbeat("customer", node)


@dataclass
class FakeBeat:
    """What the rig says about one utility in its heartbeats."""

    state: str = "ready"
    sessions: tuple[str, ...] = ()
    silent: bool = False
    instance: str = field(default_factory=lambda: secrets.token_hex(4))


class Rig:
    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.ports = {n: free_port() for n in ("cfu1", "cfu2")}
        self.upstreams = {n: Upstream(n, "127.0.0.1", p, "FIXGW") for n, p in self.ports.items()}
        self.beats = {n: FakeBeat() for n in self.ports}
        self.engines: dict[str, Engine] = {}
        self.gateways: list[Gateway] = []
        # the broker refuses anonymous clients: the rig publishes the utilities' heartbeats, the
        # gateways only listen to the cluster's topics
        prefix = Topics(CLUSTER).prefix
        self.rig_login = broker.user(f"rig-{secrets.token_hex(4)}", (prefix + "alive/#",), ())
        self.listen_login = broker.user(f"gwmon-{secrets.token_hex(4)}", (), (prefix + "#",))
        self._bus = MqttBus(client_id=f"rig-{secrets.token_hex(4)}", host="127.0.0.1", port=broker.port,
                            subscriptions=[], on_message=lambda t, p: None, login=self.rig_login)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for name, port in self.ports.items():
            s = SessionSettings(begin_string="FIX.4.4", sender_comp_id="FIXGW", target_comp_id="*",
                                connection_type="acceptor", socket_accept_host="127.0.0.1", socket_accept_port=port,
                                reset_on_logon=True)
            self.engines[name] = Engine([s], EchoApplication())
            await self.engines[name].start()
        self._bus.start()
        await self._bus.wait_connected(10)
        self._task = asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            for name, b in self.beats.items():
                if not b.silent:
                    hb = Heartbeat(name, "customer", b.state, (), 1, b.instance, b.sessions)
                    with contextlib.suppress(Exception):
                        await self._bus.publish(heartbeat_topic(name), hb.encode(), qos=0)
            await asyncio.sleep(HEARTBEAT_S)

    async def publish(self, topic: str, hb: Heartbeat) -> None:
        await self._bus.publish(topic, hb.encode(), qos=0)

    async def gateway(self, name: str = "gw1", **kw: Any) -> Gateway:
        gw = Gateway(name=name, host="127.0.0.1", port=kw.pop("port", free_port()), upstreams=self.upstreams,
                     cluster=CLUSTER, broker_host="127.0.0.1", broker_port=self.broker.port, dead_after_s=DEAD_AFTER_S,
                     bus_client_id=f"{name}-{secrets.token_hex(4)}", login=kw.pop("login", self.listen_login), **kw)
        await gw.start()
        self.gateways.append(gw)
        # routable once every utility has been heard
        await until(lambda: all(gw.directory.routable(n) for n in self.ports), 10, "heartbeats heard")
        return gw

    def holder(self, client: str) -> list[str]:
        """The utilities on which ``client`` is logged on now."""
        return sorted(n for n, e in self.engines.items()
                      for sid, rt in e.sessions.items() if sid.target_comp_id == client and rt.logged_on)

    async def stop(self) -> None:
        for gw in self.gateways:
            await gw.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._bus.close()
        for e in self.engines.values():
            await e.stop()


@contextlib.asynccontextmanager
async def rig(broker: Mosquitto) -> AsyncIterator[Rig]:
    r = Rig(broker)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def until(pred: Any, timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


class Customer:
    """A fixgw initiator (FIX 4.4, ResetOnLogon) to a gateway; ``echo()`` round-trips an order."""

    def __init__(self, port: int, client: str, *, tls_ca: Path | None = None, store: Path | None = None) -> None:
        self.sid = SessionID("FIX.4.4", client, "FIXGW")
        self.settings = SessionSettings(
            begin_string="FIX.4.4", sender_comp_id=client, target_comp_id="FIXGW", connection_type="initiator",
            socket_connect_host="127.0.0.1", socket_connect_port=port, heart_bt_int=30, reconnect_interval=1,
            reset_on_logon=True, socket_use_ssl=tls_ca is not None, socket_ca_file=tls_ca, file_store_path=store,
        )
        self.app = Collector()
        self.engine = Engine([self.settings], self.app)
        self.n = 0

    async def __aenter__(self) -> Self:
        await self.engine.start()
        await self.engine.wait_logged_on(self.sid, timeout=15)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.engine.stop()

    @property
    def logged_on(self) -> bool:
        return self.engine.session(self.sid).logged_on

    async def echo(self, timeout: float = 10.0) -> None:
        self.n += 1
        cl = f"{self.sid.sender_comp_id}-{self.n}"
        self.engine.send_to_target(Message.new("D", [(11, cl), (21, "1"), (55, "IBM"), (54, "1"), (60, now_ts()),
                                                    (38, "100"), (40, "2"), (44, "10.5")]), self.sid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            msg = await asyncio.wait_for(self.app.queue.get(), max(0.01, deadline - loop.time()))
            if msg.get_str(11) == cl:
                return
