"""MqttBus on a real mosquitto: QoS 1 both ways, in order and once each, across a broker
killed with SIGKILL and restarted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from replication.bus import MqttBus
from tests.support.broker import Mosquitto


async def until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.timeout(60)
async def test_qos1_both_ways_in_order_and_across_a_broker_restart(mosquitto: Mosquitto) -> None:
    got: dict[str, list[bytes]] = {"a": [], "b": []}

    def bus(name: str, other: str) -> MqttBus:
        return MqttBus(client_id=f"bus-{name}", host="127.0.0.1", port=mosquitto.port,
                       subscriptions=[(f"t/{other}", 1)],
                       login=mosquitto.user(f"bus-{name}", publish=(f"t/{name}",), subscribe=(f"t/{other}",)),
                       on_message=lambda topic, payload: got[name].append(payload))

    a, b = bus("a", "b"), bus("b", "a")
    a.start()
    b.start()
    try:
        await a.wait_connected(10)
        await b.wait_connected(10)
        n = 500
        # concurrent publishes from both sides: every PUBACK (to us and from us) is a packet
        await asyncio.gather(*(a.publish("t/a", b"%d" % i) for i in range(n)),
                             *(b.publish("t/b", b"%d" % i) for i in range(n)))
        await until(lambda: len(got["a"]) == n and len(got["b"]) == n, 10, "every message")
        assert got["b"] == [b"%d" % i for i in range(n)]  # in order, once each
        assert got["a"] == [b"%d" % i for i in range(n)]

        mosquitto.kill()
        mosquitto.start()
        await until(lambda: a.connects >= 2 and b.connects >= 2 and a.connected and b.connected, 20,
                    "both buses reconnected")
        await a.publish("t/a", b"after")
        await b.publish("t/b", b"after")
        await until(lambda: got["a"][-1:] == [b"after"] and got["b"][-1:] == [b"after"], 10, "messages after restart")
    finally:
        await a.close()
        await b.close()
