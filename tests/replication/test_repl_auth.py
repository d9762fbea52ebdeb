"""Nobody forges a record (issue 14): on real brokers (mosquitto and the embedded amqtt), with
real nodes, anonymous clients are refused, a node cannot publish under another node's
topics, a payload naming another sender than its topic is dropped and counted, and a
record forged by any of these means never reaches a log. Conflicts are loud. TLS works."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
import pytest

from replication.auth import (
    BrokerAccess,
    BusLogin,
    TlsFiles,
    make_tls,
    monitor_grant,
    new_password,
    node_grant,
)
from replication.broker import LocalBroker
from replication.codec import encode_record
from replication.node import ReplicationNode
from replication.record import RecordType, Role
from replication.wire import ResendRequest, Topics, encode_batch, encode_digest, encode_request
from tests.support.broker import Mosquitto

T = Topics("t")


async def until(pred: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def client(port: int, login: BusLogin | None, ident: str) -> aiomqtt.Client:
    kw: dict[str, object] = {}
    if login is not None:
        kw = {"username": login.username, "password": login.password}
        if login.ca_file is not None:
            kw["tls_context"] = login.tls_context()
    return aiomqtt.Client("127.0.0.1", port, identifier=ident, **kw)  # type: ignore[arg-type]


def access_for_three(tls: TlsFiles | None = None) -> BrokerAccess:
    return BrokerAccess((node_grant("t", "ssu1", Role.STREET, new_password()),
                         node_grant("t", "cfu1", Role.CUSTOMER, new_password()),
                         node_grant("t", "cfu2", Role.CUSTOMER, new_password()),
                         monitor_grant("t", new_password())), tls)


async def forge_everything(port: int, access: BrokerAccess, tmp: Path) -> None:
    """ssu1 writes 2 records, cfu1 holds them; cfu2's credentials (and a stranger without any)
    try every forgery of issue 14; then ssu1 writes seq 3 for real, and only that is booked."""
    logins = {n: access.login(n) for n in ("ssu1", "cfu1", "cfu2")}
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp / "ssu1",
                               broker_port=port, digest_interval=0.2, login=logins["ssu1"]) as ssu1, \
            ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "cfu1",
                            broker_port=port, digest_interval=0.2, login=logins["cfu1"]) as cfu1:
        await ssu1.wait_connected(10)
        await cfu1.wait_connected(10)
        for i in range(2):
            await ssu1.append(type=RecordType.SENT, txn=f"cfu1-0.{i}", status="sent")
        await until(lambda: cfu1.log.high_water_marks().get("ssu1") == 2, what="cfu1 to hold ssu1 1..2")

        # a stranger: refused at CONNECT
        with pytest.raises(aiomqtt.MqttError, match="(?i)not authori"):
            async with client(port, None, "stranger"):
                pass
        # a wrong password: refused too
        with pytest.raises(aiomqtt.MqttError, match="(?i)not authori"):
            async with client(port, BusLogin("ssu1", "guessed"), "guesser"):
                pass

        # cfu2's own credentials, used to forge in other names
        fill = ssu1.log.get("ssu1", 2)
        assert fill is not None
        forged3 = fill.replace(seq=3, type=RecordType.FILL, status="filled", txn="cfu1-0.1")
        malformed_before = cfu1.stats.malformed
        async with client(port, logins["cfu2"], "cfu2-gone-bad") as evil:
            # 1. on ssu1's own topic: the broker drops it (ACL)
            await evil.publish(T.records(Role.STREET, "ssu1"), encode_batch("ssu1", Role.STREET, [encode_record(forged3)]),
                               qos=1)
            # 2. a resend "from" ssu1 to cfu1: the broker drops it too
            await evil.publish(T.resends("cfu1", "ssu1"), encode_batch("ssu1", Role.STREET, [encode_record(forged3)]),
                               qos=1)
            # 3. on its own topic, naming ssu1 as the origin: delivered, refused by cfu1 (sender != topic)
            await evil.publish(T.records(Role.CUSTOMER, "cfu2"), encode_batch("ssu1", Role.STREET,
                                                                              [encode_record(forged3)]), qos=1)
            # 4. a digest in ssu1's name, head 10**12, on cfu2's own digest topic: refused by cfu1
            await evil.publish(T.digest(Role.CUSTOMER, "cfu2"), encode_digest("ssu1", Role.STREET, 10**12, {}), qos=1)
            # 5. a resend request in cfu1's name: the broker drops it (req/<origin>/<requester>)
            await evil.publish(T.requests("ssu1", "cfu1"), encode_request(ResendRequest("cfu1", "ssu1", 1, 2)), qos=1)
            # 6. the same request on cfu2's own request topic: refused by ssu1 (requester != topic)
            await evil.publish(T.requests("ssu1", "cfu2"), encode_request(ResendRequest("cfu1", "ssu1", 1, 2)), qos=1)
        # 3 and 4 came after 1 and 2 on one connection: once they are counted, 1 and 2 would have arrived
        await until(lambda: cfu1.stats.malformed >= malformed_before + 2, what="cfu1 to refuse the forgeries")
        await until(lambda: ssu1.stats.malformed >= 1, what="ssu1 to refuse the request in cfu1's name")
        assert cfu1.log.high_water_marks().get("ssu1") == 2 and cfu1.log.get("ssu1", 3) is None
        assert ssu1.stats.resends_served == 0 and ssu1.stats.conflicts == 0

        real = await ssu1.append(type=RecordType.VENUE_ACK, txn="cfu1-0.1", status="new")
        await until(lambda: cfu1.log.high_water_marks().get("ssu1") == 3, what="the real seq 3")
        assert cfu1.log.get("ssu1", 3) == real
        assert cfu1.stats.conflicts == 0 and cfu1.stats.duplicates == 0
        await asyncio.sleep(0.5)  # digests flow: no request for the forged head
        assert cfu1.stats.malformed == malformed_before + 2
        assert cfu1.peer_digests()["ssu1"].head == 3


@pytest.mark.timeout(60)
async def test_forgeries_are_refused_on_mosquitto(tmp_path: Path) -> None:
    with LocalBroker(kind="mosquitto", access=access_for_three()) as broker:
        await forge_everything(broker.port, broker.access or access_for_three(), tmp_path)
        log = broker.log_path.read_text()
        assert "not authorised" in log or "not authorized" in log.lower()
        for name in ("passwords", "acl"):
            assert stat.S_IMODE(os.stat(broker.dir / name).st_mode) == 0o600


@pytest.mark.timeout(90)
async def test_forgeries_are_refused_on_amqtt(tmp_path: Path) -> None:
    with LocalBroker(prefer_mosquitto=False, access=access_for_three()) as broker:
        assert broker.kind == "amqtt"
        await forge_everything(broker.port, broker.access or access_for_three(), tmp_path)
        assert stat.S_IMODE(os.stat(broker.dir / "passwords.amqtt").st_mode) == 0o600


@pytest.mark.timeout(90)
@pytest.mark.parametrize("prefer_mosquitto", [True, False], ids=["mosquitto", "amqtt"])
async def test_replication_over_tls_with_a_local_ca(tmp_path: Path, prefer_mosquitto: bool) -> None:
    tls = make_tls(tmp_path / "tls", "127.0.0.1")
    assert stat.S_IMODE(os.stat(tls.key).st_mode) == 0o600
    access = access_for_three(tls)
    with LocalBroker(prefer_mosquitto=prefer_mosquitto, access=access) as broker:
        plain = BusLogin("cfu1", access.login("cfu1").password)  # no TLS: the broker does not speak MQTT in clear
        with pytest.raises(aiomqtt.MqttError):
            async with client(broker.port, plain, "plain"):
                pass
        async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path / "s",
                                   broker_port=broker.port, login=access.login("ssu1"), digest_interval=0.2) as s, \
                ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path / "c",
                                broker_port=broker.port, login=access.login("cfu1"), digest_interval=0.2) as c:
            await s.wait_connected(15)
            await c.wait_connected(15)
            for i in range(10):
                await s.append(type=RecordType.SENT, txn=f"o{i}", status="sent")
            await until(lambda: c.log.high_water_marks().get("ssu1") == 10, what="replication over TLS")


@pytest.mark.timeout(60)
async def test_a_conflicting_record_is_kept_first_counted_and_logged(
        tmp_path: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="replication.node")
    c1_login = mosquitto.login("c1", Role.CUSTOMER)
    async with ReplicationNode(node_id="c1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path / "c1",
                               broker_port=mosquitto.port, login=c1_login, digest_interval=0.2) as c1, \
            ReplicationNode(node_id="f1", role=Role.FIRM, cluster="t", data_dir=tmp_path / "f1",
                            broker_port=mosquitto.port, login=mosquitto.login("f1", Role.FIRM),
                            digest_interval=0.2) as f1:
        await c1.wait_connected(10)
        await f1.wait_connected(10)
        recs = [await c1.append(type=RecordType.ORDER, txn=f"c1-0.{i}", status="new", symbol="IBM") for i in range(3)]
        await until(lambda: f1.log.high_water_marks().get("c1") == 3, what="f1 to hold c1 1..3")
        other = recs[1].replace(symbol="MSFT")
        # c1's credentials in the wrong hands: the broker lets it through, the nodes do not
        async with client(mosquitto.port, c1_login, "c1-stolen") as evil:
            await evil.publish(T.records(Role.CUSTOMER, "c1"),
                               encode_batch("c1", Role.CUSTOMER, [encode_record(other)]), qos=1)
        await until(lambda: f1.stats.conflicts == 1, what="f1 to count the conflict")
        await until(lambda: c1.stats.conflicts == 1, what="c1 to say it saw foreign content under its key")
        assert f1.log.get("c1", 2) == recs[1] and c1.log.get("c1", 2) == recs[1]  # the first version stays
        [report] = f1.stats.recent_conflicts
        assert (report.origin, report.seq, report.own) == ("c1", 2, False)
        assert "symbol=IBM" in report.kept and "symbol=MSFT" in report.received
        [own] = c1.stats.recent_conflicts
        assert own.own and "symbol=MSFT" in own.received
        text = caplog.text
        assert "CONFLICT at c1#2" in text and "symbol=IBM" in text and "symbol=MSFT" in text
        assert "FOREIGN CONTENT under our own record c1#2" in text
        # a resent copy with the true bytes is a plain duplicate, not a conflict
        async with client(mosquitto.port, c1_login, "c1-again") as again:
            await again.publish(T.records(Role.CUSTOMER, "c1"),
                                encode_batch("c1", Role.CUSTOMER, [encode_record(recs[1])]), qos=1)
        await until(lambda: f1.stats.duplicates >= 1, what="the duplicate")
        assert f1.stats.conflicts == 1
        # a forged head in c1's name: c1's own next digest (every 0.2 s) puts it right, so f1
        # stops asking for records nobody has
        async with client(mosquitto.port, c1_login, "c1-head") as evil:
            await evil.publish(T.digest(Role.CUSTOMER, "c1"), encode_digest("c1", Role.CUSTOMER, 10**12, {}), qos=1)
        await asyncio.sleep(1.5)
        asked = f1.stats.gaps_requested
        await asyncio.sleep(3.0)  # f1 asks again every 0.5 s while it believes the head
        assert f1.stats.gaps_requested == asked and f1.peer_digests()["c1"].head == 3


@pytest.mark.timeout(60)
async def test_a_flood_of_distinct_resend_requests_is_rate_limited(tmp_path: Path, mosquitto: Mosquitto) -> None:
    login = mosquitto.login("s1", Role.STREET)
    async with ReplicationNode(node_id="s1", role=Role.STREET, cluster="t", data_dir=tmp_path / "s1",
                               broker_port=mosquitto.port, login=login, digest_interval=0.5,
                               resend_chunk=500, resend_records_per_s=2000, resend_requests_per_s=10) as s1:
        await s1.wait_connected(10)
        await asyncio.gather(*(s1.append(type=RecordType.SENT, txn=f"o{i}", status="sent") for i in range(2000)))
        await s1.flush(10)
        flooder = mosquitto.login("f9", Role.FIRM)
        n = 1500
        t0 = time.monotonic()
        async with client(mosquitto.port, flooder, "flood") as evil:
            for i in range(n):  # distinct ranges, each as long as a chunk
                await evil.publish(T.requests("s1", "f9"),
                                   encode_request(ResendRequest("f9", "s1", 1 + i, 500 + i)), qos=1)
        await until(lambda: s1.stats.resends_limited + s1.stats.resends_served >= n, timeout=30,
                    what="every request to be decided")
        elapsed = time.monotonic() - t0
        st = s1.stats
        # the budget: bursts of 1,000 records and 10 requests, then 2,000 records/s and 10 requests/s
        assert st.resends_served <= 10 + 10 * elapsed, (st.resends_served, elapsed)
        assert st.resent <= 1000 + 2000 * elapsed, (st.resent, elapsed)
        assert st.resends_limited >= n - 10 - 10 * elapsed
        assert st.resends_served >= 2  # within the budget requests are answered
