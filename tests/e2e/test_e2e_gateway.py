"""The gateway in a whole cluster (``fixgw up`` with gateways, real processes): QuickFIX customers
log on and trade through it; a customer utility SIGKILLed -> the connections through it close
and the customer's reconnect through the same gateway reaches the other utility; a gateway
SIGKILLed -> a customer with both gateways as failover hosts carries on through the other;
TLS through a gateway process; ``fixgw status`` and ``fixgw up`` show the gateways."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import quickfix as fix

import tests.support.prometheus as prom
from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, until
from tests.support.cluster import Cluster
from tests.utilities.support_gateway import Customer

pytestmark = pytest.mark.timeout(240)

DEAD_AFTER_S = 2.0   # tests/support/cluster.py's cluster


@dataclass(frozen=True, slots=True)
class FailoverConfig(InitiatorConfig):
    """A QuickFIX initiator with failover hosts (SocketConnectHost1/Port1, ...) after the first."""

    failover_ports: tuple[int, ...] = ()

    def settings_text(self) -> str:
        text = InitiatorConfig.settings_text(self)
        extra = "".join(f"SocketConnectHost{i}={self.host}\nSocketConnectPort{i}={p}\n"
                        for i, p in enumerate(self.failover_ports, start=1))
        return text.replace(f"SocketConnectPort={self.port}\n", f"SocketConnectPort={self.port}\n{extra}", 1)


def crossing_buy(begin: str, cl: str, account: str) -> fix.Message:
    m = fix.Message()
    m.getHeader().setField(fix.BeginString(begin))
    m.getHeader().setField(fix.MsgType("D"))
    for tag, value in ((11, cl), (1, account), (21, "1"), (55, "AAPL"), (54, "1"),
                       (60, dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]),
                       (38, "10"), (40, "2"), (44, "200")):
        m.setField(fix.StringField(tag, value))
    return m


async def trade(qf: QuickfixInitiator, cl: str) -> None:
    """A crossing buy, sent through whatever qf is connected to, until its fill comes back."""
    account = {"CLIENT1": "ACC1", "CLIENT2": "ACC2"}[qf.config.sender_comp_id]
    assert fix.Session.sendToTarget(crossing_buy(qf.config.begin_string, cl, account), qf.session_id)
    await qf.until(lambda: any(r.cl_ord_id == cl and "|39=2|" in r.raw for r in qf.reports()), 30, f"{cl} filled")


def gw_status(cl: Cluster, name: str) -> dict[str, Any]:
    try:
        return cl.gateway_status(name)
    except (OSError, ValueError):
        return {}


async def closed_by_peer(reader: asyncio.StreamReader, timeout: float) -> None:
    try:
        while await asyncio.wait_for(reader.read(4096), timeout):
            pass
    except ConnectionResetError:
        pass


def test_quickfix_customers_through_gateways_survive_a_utility_and_a_gateway_dying(tmp_path: Path) -> None:
    key, cert = make_cert(tmp_path)
    cl = Cluster(tmp_path, day_seconds=2.0, gateways=("gw1", "gw2", "gw3"),
                 gateway_extra={"gw3": f'tls_cert = "{cert}"\ntls_key = "{key}"\n'})
    cl.start()
    try:
        asyncio.run(_scenario(cl, tmp_path, cert))
        # Ctrl-C: the gateways stop before the customer utilities (no customer is let in meanwhile)
        assert cl.up is not None
        cl.up.send_signal(signal.SIGINT)
        assert cl.up.wait(60) == 0
        stopped = [stamp(cl, "gw2", "gw2 (gateway) stopped"), stamp(cl, "gw3", "gw3 (gateway) stopped")]
        survivor = "cfu2" if (cl.data / "logs" / "cfu2.log").read_text().count("(customer) stopping") else "cfu1"
        assert max(stopped) <= stamp(cl, survivor, f"{survivor} (customer) stopping")
    finally:
        cl.stop()


def stamp(cl: Cluster, process: str, text: str) -> dt.datetime:
    lines = [ln for ln in (cl.data / "logs" / f"{process}.log").read_text().splitlines() if ln.endswith(text)]
    assert len(lines) == 1, (process, text, lines)
    return dt.datetime.strptime(lines[0][:23], "%Y-%m-%d %H:%M:%S,%f")


async def _scenario(cl: Cluster, tmp_path: Path, cert: Path) -> None:
    up = (cl.base / "up.log").read_text()
    # the gateways are printed first: the one address customers need
    lines = [ln.strip() for ln in up.splitlines() if ln.startswith("  ")]
    assert lines[0].startswith(f"gw1: 127.0.0.1:{cl.ports['gw1']}") and "entry point for customers" in lines[0]
    assert lines[2].startswith(f"gw3: 127.0.0.1:{cl.ports['gw3']} TLS")
    assert any(ln.startswith(f"cfu1: 127.0.0.1:{cl.ports['cfu1']}") for ln in lines)  # still reachable directly
    st = json.loads(cl.fixgw("status", "--config", str(cl.config), "--json").stdout)
    kinds = {e["name"]: e["kind"] for e in st["entry_points"]}
    assert kinds == {"gw1": "gateway", "gw2": "gateway", "gw3": "gateway", "cfu1": "customer", "cfu2": "customer",
                     "exchange": "venue", "fund": "venue"}
    assert [g["state"] for g in st["gateways"]] == ["ready"] * 3
    text = cl.fixgw("status", "--config", str(cl.config)).stdout
    assert f"entry gw1 (gateway): 127.0.0.1:{cl.ports['gw1']} TargetCompID=FIXGW" in text

    # the gateway's bench: the same load through gw1 (the first gateway) and direct to its utility
    out = cl.fixgw("bench", "gateway", "--config", str(cl.config), "--orders", "60", "--inflight", "5",
                   "--rounds", "1", "--json", timeout=120)
    assert out.returncode == 0, out.stderr
    bench = json.loads(out.stdout)
    r = bench["rounds"][0]
    assert r["via_gateway"]["answered"] == 60 and r["direct"]["answered"] == 60 and r["utility"] == "cfu1"
    assert r["messages"] >= 2 * 60 and bench["median_relay_cpu_us_per_message"] is not None

    # CLIENT1, FIX 4.4, knows one address: gw1. (ResetOnLogon=Y: the session's continuity across
    # utilities is issue 12's replicated sessions; what is the gateway's is where it goes.)
    q1 = QuickfixInitiator(InitiatorConfig(host="127.0.0.1", port=cl.ports["gw1"], store_dir=tmp_path / "q1",
                                           sender_comp_id="CLIENT1", reset_on_logon=True))
    # CLIENT2, FIX 4.2, lists both gateways as failover hosts
    q2 = QuickfixInitiator(FailoverConfig(host="127.0.0.1", port=cl.ports["gw1"], store_dir=tmp_path / "q2",
                                          begin_string="FIX.4.2", sender_comp_id="CLIENT2", reset_on_logon=True,
                                          failover_ports=(cl.ports["gw2"],)))
    # routing is by load, and the load counts the sessions a utility's heartbeat lists: cfu1 owns
    # the bench's session BENCH1 from now on (an owner keeps a session its customer left), so
    # cfu1 weighs 1 and cfu2 0. The two Logons below arrive together: the first goes to cfu2,
    # and the second, while the first is still connecting, ties at 1 and goes to cfu1 by name
    await until(lambda: gw_status(cl, "gw1").get("sessions") == {"cfu1": ["BENCH1"], "cfu2": []}, 10,
                "gw1 hears cfu1 own the bench's session")
    q1.start()
    q2.start()
    try:
        await q1.until(q1.logged_on, 20, "CLIENT1 logon through gw1")
        await q2.until(q2.logged_on, 20, "CLIENT2 logon through gw1")
        await until(lambda: sum(gw_status(cl, "gw1").get("connections", {}).values()) == 2, 5, "gw1 status")
        conns = gw_status(cl, "gw1")["connections"]
        assert conns == {"cfu1": 1, "cfu2": 1}, conns          # by load: one each
        await trade(q1, "G1")
        await trade(q2, "G2")

        # garbage at gw1 closes only that connection
        reader, writer = await asyncio.open_connection("127.0.0.1", cl.ports["gw1"])
        writer.write(b"\x16\x03\x01\x02\x00garbage")
        await closed_by_peer(reader, 5)
        writer.close()
        await until(lambda: gw_status(cl, "gw1").get("counters", {}).get("refused_garbage") == 1, 5, "counted")
        # ... and the gateway's Prometheus endpoint (its URL in fixgw status) says the same
        url = next(g["metrics_url"] for g in st["gateways"] if g["name"] == "gw1")
        assert url == f"http://127.0.0.1:{cl.ports['m_gw1']}/metrics"
        _, samples = prom.scrape(url)
        events = "fixgw_gateway_events_total"
        assert prom.value(samples, events, gateway="gw1", counter="refused_garbage") == 1
        assert (prom.value(samples, events, gateway="gw1", counter="routed_load")
                + prom.value(samples, events, gateway="gw1", counter="routed_owner")) >= 3  # bench, q1, q2
        assert prom.value(samples, "fixgw_gateway_connections", gateway="gw1", utility="cfu1") == 1
        assert prom.value(samples, "fixgw_gateway_connections", gateway="gw1", utility="cfu2") == 1
        assert prom.value(samples, "fixgw_gateway_utility_state", gateway="gw1", utility="cfu1", state="routable") == 1
        assert prom.value(samples, "fixgw_broker_connected", gateway="gw1") == 1

        # kill the customer utility CLIENT1 is on: its reconnect through gw1 reaches the other one
        holder = "cfu1" if cl.status("cfu1")["fix_sessions"].get("FIX.4.4:FIXGW->CLIENT1") else "cfu2"
        other = "cfu2" if holder == "cfu1" else "cfu1"
        logons = q1.app.logons
        t0 = time.monotonic()
        cl.kill(holder)
        await q1.until(lambda: q1.app.logons > logons and q1.logged_on(), DEAD_AFTER_S + 10, "CLIENT1 back")
        took = time.monotonic() - t0
        assert took < DEAD_AFTER_S + 3.0, f"{took:.1f} s from the kill to the logon on {other}"
        await until(lambda: cl.status(other)["fix_sessions"].get("FIX.4.4:FIXGW->CLIENT1") is True, 5, "on other")
        await trade(q1, "G3")
        print(f"kill -> logon on the other utility through the gateway: {took:.2f} s")

        # kill gw1: CLIENT2 fails over to gw2 by itself; its utility is whichever is alive
        logons = q2.app.logons
        os.kill(int(cl.gateway_status("gw1")["pid"]), signal.SIGKILL)
        await q2.until(lambda: q2.app.logons > logons and q2.logged_on(), 30, "CLIENT2 back through gw2")
        await until(lambda: gw_status(cl, "gw2").get("connections", {}).get(other) == 1, 5, "CLIENT2 on gw2")
        await trade(q2, "G4")

        # TLS: fixgw's own engine as a TLS customer of gw3
        async with Customer(cl.ports["gw3"], "BENCH1", tls_ca=cert) as c:
            assert c.logged_on
        reader, writer = await asyncio.open_connection("127.0.0.1", cl.ports["gw3"])   # plain text: closed
        writer.write(b"8=FIX.4.4\x019=5\x0135=A\x0110=000\x01")
        await closed_by_peer(reader, 10)
        writer.close()
    finally:
        q1.close()
        q2.close()


def make_cert(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return key, cert


def test_gateway_command_errors_name_the_file_and_key(tmp_path: Path) -> None:
    cl = Cluster(tmp_path, gateways=("gw1",), gateway_extra={"gw1": 'tls_cert = "none.pem"\ntls_key = "none.key"\n'})
    out = cl.fixgw("gateway", "--config", str(cl.config), timeout=30)
    assert out.returncode == 2
    assert str(cl.config) in out.stderr and "gateway 'gw1' (tls_cert, tls_key)" in out.stderr
    assert f"{tmp_path}/none.pem: no such file" in out.stderr
    out = cl.fixgw("gateway", "--config", str(cl.config), "--name", "gw9", timeout=30)
    assert out.returncode == 2 and "no gateway named 'gw9' (gateways: gw1)" in out.stderr


def test_a_hung_utilitys_customer_is_moved_after_dead_after_s(tmp_path: Path) -> None:
    """SIGSTOP: the utility's process and sockets stay, only its heartbeats stop. The gateway
    closes its customers' connections once it is silent for dead_after_s, and the reconnect
    goes to the other utility."""
    cl = Cluster(tmp_path, day_seconds=2.0, gateways=("gw1",))
    cl.start()
    stopped: list[int] = []
    try:
        asyncio.run(_hung(cl, tmp_path, stopped))
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        cl.stop()


async def _hung(cl: Cluster, tmp_path: Path, stopped: list[int]) -> None:
    q = QuickfixInitiator(InitiatorConfig(host="127.0.0.1", port=cl.ports["gw1"], store_dir=tmp_path / "q",
                                          sender_comp_id="CLIENT1", reset_on_logon=True))
    q.start()
    try:
        await q.until(q.logged_on, 20, "CLIENT1 logon through gw1")
        await trade(q, "H1")
        await until(lambda: sum(gw_status(cl, "gw1").get("connections", {}).values()) == 1, 5, "gw1 status")
        holder = next(iter(gw_status(cl, "gw1")["connections"]))
        other = "cfu2" if holder == "cfu1" else "cfu1"
        logons = q.app.logons
        pid = cl.pid(holder)
        os.kill(pid, signal.SIGSTOP)
        stopped.append(pid)
        t0 = time.monotonic()
        await q.until(lambda: q.app.logons > logons and q.logged_on(), DEAD_AFTER_S + 15, "CLIENT1 back")
        took = time.monotonic() - t0
        # dead_after_s, then QuickFIX's ReconnectInterval (1 s), then the logon: with a margin for load
        assert DEAD_AFTER_S - 0.5 < took < DEAD_AFTER_S + 6.0, took
        await until(lambda: gw_status(cl, "gw1").get("connections") == {other: 1}, 5, f"on {other}")
        assert gw_status(cl, "gw1")["counters"]["closed_on_death"] == 1
        await trade(q, "H2")
        print(f"SIGSTOP -> logon on the other utility through the gateway: {took:.2f} s")
    finally:
        q.close()
