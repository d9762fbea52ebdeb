"""Issue 14 on a whole cluster (``fixgw up``, mosquitto): the broker refuses strangers and
forgeries in another node's name; a record forged with a street utility's own (stolen)
password is a conflict that the street, every replica, ``fixgw status`` and ``fixgw log
verify`` all report, apart from missing records."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

import aiomqtt
import pytest

from replication.auth import BusLogin
from replication.codec import encode_record
from replication.hlc import Hlc
from replication.record import Record, RecordType, Role
from replication.wire import Digest, Topics, decode_message, encode_batch
from tests.support.cluster import Cluster
from utilities.bus_access import monitor_login, node_login
from utilities.cluster_config import load_cluster_config

pytestmark = pytest.mark.timeout(240)
STREETS = ("ssu1", "ssu2")


def client(port: int, login: BusLogin | None, ident: str) -> aiomqtt.Client:
    kw = {} if login is None else {"username": login.username, "password": login.password}
    return aiomqtt.Client("127.0.0.1", port, identifier=ident, **kw)  # type: ignore[arg-type]


async def street_heads(port: int, monitor: BusLogin, topics: Topics) -> dict[str, int]:
    """Each street utility's head, from its retained digest (heard with the read-only login)."""
    heads: dict[str, int] = {}
    async with client(port, monitor, "e2e-monitor") as m:
        await m.subscribe(topics.digests_of_role(Role.STREET))
        async with asyncio.timeout(10):
            async for msg in m.messages:
                d = decode_message(bytes(msg.payload))
                assert isinstance(d, Digest)
                heads[d.node] = d.head
                if set(heads) == set(STREETS):
                    return heads
    raise AssertionError("no digests")


async def forge(c: Cluster) -> dict[str, int]:
    cfg = load_cluster_config(c.config)
    port, topics = cfg.broker.port, Topics(cfg.name)
    # a stranger, and a wrong password: refused at CONNECT
    for login in (None, BusLogin("ssu1", "guess")):
        with pytest.raises(aiomqtt.MqttError, match="(?i)not authori"):
            async with client(port, login, "stranger"):
                pass
    monitor = monitor_login(cfg)
    assert monitor is not None
    heads = await street_heads(port, monitor, topics)
    forged = {s: Record(origin=s, seq=heads[s] + 1, txn="forged-1", type=RecordType.NOTE, status="forged",
                        hlc=Hlc(time.time_ns(), 0, s), text="not written by " + s) for s in STREETS}
    # with cfu2's password, in ssu1's name, and with the read-only login: the broker drops both
    for who in ("cfu2", "monitor"):
        login = node_login(cfg, cfg.node(who)) if who != "monitor" else monitor
        async with client(port, login, f"{who}-gone-bad") as evil:
            await evil.publish(topics.records(Role.STREET, "ssu1"),
                               encode_batch("ssu1", Role.STREET, [encode_record(forged["ssu1"])]), qos=1)
    await asyncio.sleep(1.0)
    assert await street_heads(port, monitor, topics) == heads
    for n in ("cfu1", "cfu2", "firm"):
        assert c.status(n)["hwm"].get("ssu1", 0) == heads["ssu1"], n
    # with the streets' own passwords (stolen): the broker lets it through; the nodes take it
    # (it is the next seq), and the streets say at once that it is not theirs
    for s in STREETS:
        async with client(port, node_login(cfg, cfg.node(s)), f"{s}-stolen") as evil:
            await evil.publish(topics.records(Role.STREET, s),
                               encode_batch(s, Role.STREET, [encode_record(forged[s])]), qos=1)
    return heads


def test_strangers_and_forgeries_are_refused_and_conflicts_are_loud(own_cluster: Cluster) -> None:
    c = own_cluster
    for path in [*(c.data / "secrets").iterdir(), c.data / "broker" / "passwords", c.data / "broker" / "acl"]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    assert "logins and ACL in" in (c.base / "up.log").read_text()
    heads = asyncio.run(forge(c))
    deadline = time.monotonic() + 20
    while not all(c.status(s).get("conflicts", 0) >= 1 for s in STREETS):
        assert time.monotonic() < deadline, [c.status(s).get("conflicts") for s in STREETS]
        time.sleep(0.2)
    # an order makes one street write its real record under the forged key
    out = c.fixgw("order", "--config", str(c.config), "--sender", "CLIENT1", "--account", "ACC1",
                  "buy", "10", "MSFT", "--price", "1", "--wait", "10")
    assert "New" in out.stdout, out.stdout + out.stderr
    deadline = time.monotonic() + 20
    while not (c.status("cfu1").get("conflicts", 0) >= 1 and c.status("firm").get("conflicts", 0) >= 1):
        assert time.monotonic() < deadline, (c.status("cfu1").get("conflicts"), c.status("firm").get("conflicts"))
        time.sleep(0.2)
    sent_by = next(s for s in STREETS if c.status(s)["own_seq"] > heads[s])
    st = c.fixgw("status", "--config", str(c.config))
    assert st.returncode == 0
    lines = st.stdout.splitlines()
    cfu1 = next(line for line in lines if line.startswith("cfu1 "))
    assert "CONFLICTS=" in cfu1, st.stdout
    assert f"conflict {sent_by}#{heads[sent_by] + 1}: kept note forged" in st.stdout, st.stdout
    assert "FOREIGN version of its own record" in st.stdout, st.stdout
    v = c.fixgw("log", "verify", *c.node_dirs("cfu1", "cfu2", "ssu1", "ssu2", "firm"))
    assert v.returncode == 1, v.stdout
    assert f"CONFLICT: 1 record(s) differ from {sent_by}'s under the same key, seq {heads[sent_by] + 1}" in v.stdout
    assert "conflicting record(s)" in v.stdout


def test_up_with_tls_makes_a_ca_and_nodes_trade_over_it(tmp_path: Path) -> None:
    c = Cluster(tmp_path, broker_extra="tls = true")
    c.start()
    try:
        tls = c.data / "broker" / "tls"
        assert "logins and ACL in" in (tmp_path / "up.log").read_text() and ", TLS" in (tmp_path / "up.log").read_text()
        assert stat.S_IMODE(os.stat(tls / "broker.key").st_mode) == 0o600
        assert f"cafile {tls / 'ca.crt'}" in (c.data / "broker" / "mosquitto.conf").read_text()
        out = c.fixgw("order", "--config", str(c.config), "--node", "cfu2", "--sender", "CLIENT1",
                      "--account", "ACC1", "buy", "10", "MSFT", "--price", "450", "--wait", "30")
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.splitlines()[-1].split()[0] == "Trade", out.stdout
        st = c.fixgw("status", "--config", str(c.config))
        assert st.stdout.count(" ready ") == 5 and "broker=down" not in st.stdout, st.stdout

        async def plain() -> None:  # the same password without TLS: the broker does not answer MQTT
            cfg = load_cluster_config(c.config)
            login = node_login(cfg, cfg.node("cfu1"))
            assert login is not None and login.ca_file == tls / "ca.crt"
            with pytest.raises(aiomqtt.MqttError):
                async with client(cfg.broker.port, BusLogin(login.username, login.password), "plain"):
                    pass
        asyncio.run(plain())
    finally:
        c.stop()
