"""The bus's own MQTT 3.1.1 client (replication/mqtt.py) against a real mosquitto: QoS 0 and 1
both ways, in order; payloads that need every length of the remaining-length field and
arrive in many TCP segments; a persistent session that keeps what was published while the
client was away; refusals (wrong password, no login) as their CONNACK codes, and the ACL; a publish
waiting for its PUBACK when the broker is SIGKILLed fails, and so does the next one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from replication.auth import BusLogin
from replication.mqtt import ConnectionLost, ConnectRefused, MqttClient, MqttError
from tests.support.broker import Mosquitto


async def until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def client(broker: Mosquitto, login: BusLogin, name: str, got: list[tuple[str, bytes]] | None = None,
           *, clean: bool = True) -> MqttClient:
    return MqttClient("127.0.0.1", broker.port, client_id=name, username=login.username, password=login.password,
                      clean_session=clean, timeout=5,
                      on_message=(lambda t, p: got.append((t, p))) if got is not None else None)


@pytest.mark.timeout(60)
async def test_both_qos_in_order_every_length_and_a_persistent_session(mosquitto: Mosquitto) -> None:
    pub_login = mosquitto.user("pub", publish=("t/#",), subscribe=())
    sub_login = mosquitto.user("sub", publish=(), subscribe=("t/#",))
    got: list[tuple[str, bytes]] = []
    pub, sub = client(mosquitto, pub_login, "pub"), client(mosquitto, sub_login, "sub", got, clean=False)
    await pub.connect()
    await sub.connect()
    assert await sub.subscribe([("t/#", 1)]) == [1]
    sock = sub.socket()
    assert sock is not None
    # 1, 2, 3 and 4 bytes of remaining length (a 3 MB payload crosses many reads)
    sizes = [0, 1, 100, 127, 128, 16_383, 16_384, 200_000, 3_000_000]
    payloads = [bytes([i % 251]) * n for i, n in enumerate(sizes)]
    for i, p in enumerate(payloads):
        await pub.publish(f"t/{i}", p, qos=1)
    await asyncio.gather(*(pub.publish("t/burst", b"%d" % i, qos=1) for i in range(300)))
    await pub.publish("t/zero", b"q0", qos=0)
    await until(lambda: len(got) == len(sizes) + 301, 10, "every message")
    assert got[:len(sizes)] == [(f"t/{i}", p) for i, p in enumerate(payloads)]
    assert [p for t, p in got[len(sizes):-1]] == [b"%d" % i for i in range(300)]  # in order, once each
    assert got[-1] == ("t/zero", b"q0")

    # away: the broker keeps what is published to the persistent session meanwhile
    await sub.disconnect()
    assert not sub.connected
    for i in range(3):
        await pub.publish("t/away", b"away%d" % i, qos=1)
    got.clear()
    back = client(mosquitto, sub_login, "sub", got, clean=False)
    await back.connect()
    await until(lambda: len(got) == 3, 10, "what was published while away")
    assert [p for _, p in got] == [b"away0", b"away1", b"away2"]
    await back.disconnect()
    await pub.disconnect()


@pytest.mark.timeout(60)
async def test_refusals_are_their_codes(mosquitto: Mosquitto) -> None:
    good = mosquitto.user("someone", publish=("t/mine", "t/other"), subscribe=("t/mine",))
    with pytest.raises(ConnectRefused) as refused:
        await client(mosquitto, BusLogin(username="someone", password="wrong"), "x").connect()
    assert refused.value.rc in (4, 5)
    with pytest.raises(ConnectRefused):
        await MqttClient("127.0.0.1", mosquitto.port, client_id="anon", timeout=5).connect()
    got: list[tuple[str, bytes]] = []
    c = client(mosquitto, good, "someone", got)
    await c.connect()
    # the ACL: mosquitto grants a 3.1.1 subscription it may not serve, then delivers nothing of it
    await c.subscribe([("t/other", 1), ("t/mine", 1)])
    await c.publish("t/other", b"not for us", qos=1)
    await c.publish("t/mine", b"ours", qos=1)
    await until(lambda: len(got) == 1, 5, "our own message")
    await asyncio.sleep(0.2)
    assert got == [("t/mine", b"ours")]
    await c.disconnect()


@pytest.mark.timeout(60)
async def test_a_killed_broker_fails_what_waits_and_what_follows(mosquitto: Mosquitto) -> None:
    login = mosquitto.user("k", publish=("t/k",), subscribe=())
    c = client(mosquitto, login, "k")
    await c.connect()
    await c.publish("t/k", b"before", qos=1)
    mosquitto.kill()
    with pytest.raises(MqttError):
        await c.wait_closed()
    assert not c.connected
    with pytest.raises(ConnectionLost):
        await c.publish("t/k", b"after", qos=1)
    mosquitto.start()
    with pytest.raises(MqttError, match="cannot reach|no answer|refused"):
        await MqttClient("127.0.0.1", 1, client_id="nowhere", timeout=2).connect()
