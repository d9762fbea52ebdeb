"""The gateway in process against real parts (tests/utilities/support_gateway.py: real mosquitto,
real TCP, fixgw acceptors as customer utilities): routing by load and to the owner named in
heartbeats, a utility falling silent, bad first messages that close only their own connection,
two gateways side by side, TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from fixgw.message import encode
from tests.support.broker import Mosquitto
from tests.support.fixclient import now_ts
from tests.utilities.support_gateway import DEAD_AFTER_S, Customer, Rig, heartbeat_topic, rig, until
from utilities.gateway import GatewayError, server_tls_context
from utilities.liveness import Heartbeat

NO_BEAT = Heartbeat(node="", role="", state="")  # a node not heard: no sessions

pytestmark = pytest.mark.timeout(180)   # generous: the machine is shared


def logon(sender: str = "RAW1", target: str = "FIXGW", msg_type: bytes = b"A", pad: int = 0) -> bytes:
    body = [(98, b"0"), (108, b"30"), (141, b"Y")] + ([(58, b"x" * pad)] if pad else [])
    return encode(b"FIX.4.4", [(35, msg_type), (49, sender.encode()), (56, target.encode()), (34, b"1"),
                               (52, now_ts().encode())], body)


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float) -> float:
    """Seconds until the gateway closes the connection (EOF or reset)."""
    t0 = time.monotonic()
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


async def test_routes_by_load_then_to_the_owner_named_in_heartbeats(mosquitto: Mosquitto) -> None:
    async with rig(mosquitto) as r:
        gw = await r.gateway()
        async with Customer(gw.port, "CLIENT1") as c1, Customer(gw.port, "CLIENT2") as c2:
            await c1.echo()
            await c2.echo()
            # no heartbeat names an owner: the least loaded, ties by name
            assert r.holder("CLIENT1") == ["cfu1"] and r.holder("CLIENT2") == ["cfu2"]
            assert gw.counters["routed_load"] == 2 and gw.counters["routed_owner"] == 0
            # cfu2 says it owns CLIENT3's session: CLIENT3 goes there although cfu1 is as loaded
            r.beats["cfu2"].sessions = ("CLIENT2", "CLIENT3")
            await until(lambda: "CLIENT3" in (gw.directory.liveness.heartbeat("cfu2") or NO_BEAT).sessions, 5,
                        "owner heard")
            async with Customer(gw.port, "CLIENT3") as c3:
                await c3.echo()
                assert r.holder("CLIENT3") == ["cfu2"] and gw.counters["routed_owner"] == 1
                assert gw.status()["connections"] == {"cfu1": 1, "cfu2": 2}


async def test_customers_arriving_together_are_spread_not_sent_to_one_utility(mosquitto: Mosquitto) -> None:
    # six Logons written at once: each is routed while the others are still connecting, so the
    # connections being made count as load (before: all six could see the same least-loaded one)
    async with rig(mosquitto) as r:
        gw = await r.gateway()
        conns = [await asyncio.open_connection("127.0.0.1", gw.port) for _ in range(6)]
        try:
            for i, (_, writer) in enumerate(conns):
                writer.write(logon(f"RAW{i}"))
            for _, (reader, _) in enumerate(conns):
                answer = await asyncio.wait_for(reader.read(4096), 10)
                assert b"\x0135=A\x01" in answer
            assert gw.status()["connections"] == {"cfu1": 3, "cfu2": 3}
            assert gw.load() == {"cfu1": 3, "cfu2": 3}
        finally:
            for _, writer in conns:
                writer.close()


async def test_a_silent_utility_loses_its_customers_to_a_live_one(mosquitto: Mosquitto) -> None:
    async with rig(mosquitto) as r:
        gw = await r.gateway()
        async with Customer(gw.port, "CLIENT1") as c1, Customer(gw.port, "CLIENT2") as c2:
            assert r.holder("CLIENT1") == ["cfu1"]
            r.beats["cfu1"].silent = True   # cfu1's process stays up and listening: only its heartbeats stop
            t0 = time.monotonic()
            await until(lambda: not c1.logged_on, DEAD_AFTER_S + 3, "CLIENT1 disconnected")
            # its reconnect (ReconnectInterval=1) goes to cfu2, which is alive
            await until(lambda: c1.logged_on and r.holder("CLIENT1") == ["cfu2"], DEAD_AFTER_S + 5, "CLIENT1 on cfu2")
            took = time.monotonic() - t0
            await c1.echo()
            assert took < DEAD_AFTER_S + 1 + 2.5, took   # dead_after_s + ReconnectInterval + margin
            assert gw.counters["closed_on_death"] == 1
            # CLIENT2 (on cfu2) was never disturbed: still its first connection
            assert c2.engine.session(c2.sid).logons == 1
            await c2.echo()


async def test_a_heartbeat_on_another_nodes_topic_is_no_evidence(mosquitto: Mosquitto) -> None:
    async with rig(mosquitto) as r:
        gw = await r.gateway()
        r.beats["cfu1"].silent = True
        loop = asyncio.get_running_loop()
        end = loop.time() + DEAD_AFTER_S + 0.5
        while loop.time() < end:   # "cfu1" heard only on cfu2's topic
            await r.publish(heartbeat_topic("cfu2"), Heartbeat("cfu1", "customer", "ready", (), 1, "x"))
            await asyncio.sleep(0.1)
        assert not gw.directory.alive("cfu1") and gw.directory.alive("cfu2")


async def test_bad_first_messages_close_only_their_own_connection(mosquitto: Mosquitto) -> None:
    async with rig(mosquitto) as r:
        gw = await r.gateway(logon_timeout_s=1.0, max_logon_bytes=512)
        async with Customer(gw.port, "CLIENT1") as good:
            await good.echo()

            async def bad(first: bytes, limit: float = 5.0) -> float:
                reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
                if first:
                    writer.write(first)
                took = await closed_by_peer(reader, limit)
                writer.close()
                await good.echo()   # the customer already trading keeps trading meanwhile
                return took

            assert await bad(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") < 1.0
            assert await bad(b"8=FIX.4.4\x019=5000\x0135=A\x01" + b"58=" + b"y" * 600) < 1.0
            assert await bad(logon(pad=700)) < 1.0
            assert await bad(logon(msg_type=b"D")) < 1.0
            garbled = logon()
            assert await bad(garbled[:-4] + b"000\x01") < 1.0    # CheckSum wrong
            assert await bad(logon(target="NOBODY")) < 1.0
            assert 0.8 < await bad(b"") < 3.0                    # nothing at all: the logon timeout
            assert 0.8 < await bad(b"8=FIX.4") < 3.0             # a Logon that never completes
            c = gw.counters
            assert (c["refused_garbage"], c["refused_oversized"], c["refused_not_logon"], c["refused_garbled"],
                    c["refused_unknown_target"], c["refused_timeout"]) == (1, 2, 1, 1, 1, 2), c
            assert good.engine.session(good.sid).logons == 1 and r.holder("CLIENT1") == ["cfu1"]
            # a proper Logon on a raw socket, with no FIX engine: relayed, answered by the utility
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(logon("RAW1"))
            answer = await asyncio.wait_for(reader.read(4096), 5)
            assert b"\x0135=A\x01" in answer and b"\x0156=RAW1\x01" in answer
            writer.close()


async def test_two_gateways_side_by_side(mosquitto: Mosquitto) -> None:
    async with rig(mosquitto) as r:
        gw1 = await r.gateway("gw1")
        gw2 = await r.gateway("gw2")
        async with Customer(gw1.port, "CLIENT1") as c1, Customer(gw2.port, "CLIENT2") as c2:
            await c1.echo()
            await c2.echo()
            # each gateway knows only its own connections: both chose cfu1 (the tie by name)
            assert r.holder("CLIENT1") == ["cfu1"] and r.holder("CLIENT2") == ["cfu1"]
            # once the heartbeats say so, a gateway routes by the whole cluster's load
            r.beats["cfu1"].sessions = ("CLIENT1", "CLIENT2")
            await until(lambda: len((gw2.directory.liveness.heartbeat("cfu1") or NO_BEAT).sessions) == 2, 5,
                        "sessions heard")
            async with Customer(gw2.port, "CLIENT3") as c3:
                await c3.echo()
                assert r.holder("CLIENT3") == ["cfu2"]
        await gw1.stop()   # one gateway going away leaves the other routing
        async with Customer(gw2.port, "CLIENT4") as c4:
            await c4.echo()


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return key, cert


async def test_tls_towards_customers(mosquitto: Mosquitto, tmp_path: Path) -> None:
    key, cert = make_cert(tmp_path)
    async with rig(mosquitto) as r:
        gw = await r.gateway(tls=server_tls_context(cert, key), logon_timeout_s=1.0)
        async with Customer(gw.port, "CLIENT1", tls_ca=cert) as c:   # fixgw's engine, SocketUseSSL=Y
            await c.echo()
            assert r.holder("CLIENT1") == ["cfu1"]
            # a plain Python ssl client with a bare Logon
            ctx = ssl.create_default_context(cafile=str(cert))
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port, ssl=ctx)
            writer.write(logon("RAW2"))
            answer = await asyncio.wait_for(reader.read(4096), 5)
            assert b"\x0135=A\x01" in answer and b"\x0156=RAW2\x01" in answer
            writer.close()
            # plain text to the TLS port goes nowhere, and the TLS customer keeps trading
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(logon("RAW3"))
            assert await closed_by_peer(reader, 5) < 3
            writer.close()
            await c.echo()
            assert gw.counters["accepted"] == 2   # the plain-text one never got past TLS


def test_tls_files_that_are_wrong_are_named(tmp_path: Path) -> None:
    with pytest.raises(GatewayError, match="no such file"):
        server_tls_context(tmp_path / "nope.pem", tmp_path / "nope.key")
    (tmp_path / "bad.pem").write_text("not a certificate")
    (tmp_path / "bad.key").write_text("not a key")
    with pytest.raises(GatewayError, match="bad.pem with key .*bad.key: cannot be loaded"):
        server_tls_context(tmp_path / "bad.pem", tmp_path / "bad.key")


async def test_a_port_in_use_is_a_clear_error(mosquitto: Mosquitto) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = Rig(mosquitto)
        with pytest.raises(GatewayError, match=f"cannot listen on 127.0.0.1:{port}"):
            await r.gateway(port=port)
