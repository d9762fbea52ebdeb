"""The pieces a node process is assembled from (``utilities.node_process`` and its helpers):
the topics it builds (``replication.wire.Topics`` only), what it does with heartbeats and
commands heard on the bus, readiness to route, the status file ``fixgw status`` reads, the
venue catalogue, order requests, and the risk checks one function at a time.

Real parts throughout: the configs/local.toml cluster config, real status files in a
temporary directory, real processes' pids, a real record log (LMDB, no broker)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from replication.hlc import Hlc
from replication.node import ReplicationNode
from replication.record import Role
from replication.wire import COMMAND_KIND, HEARTBEAT_KIND, Topics
from utilities import risk
from utilities.books import account_record
from utilities.catalogue import VenueCatalogue
from utilities.cluster_config import ClusterConfig, load_cluster_config
from utilities.customer import CustomerUtility
from utilities.errors import InvalidValue, MalformedMessage, UtilitiesError
from utilities.liveness import Heartbeat, Liveness
from utilities.node_process import NodeProcess, customer_settings, street_settings
from utilities.node_status import NEVER_STARTED, cluster_status, read_status, write_status
from utilities.order_request import OrderRequest
from utilities.routing import decode_commands
from utilities.txn import parse_txn

LOCAL = Path(__file__).resolve().parents[2] / "configs" / "local.toml"


def local_config(data: Path) -> ClusterConfig:
    return dataclasses.replace(load_cluster_config(LOCAL), data_dir=data)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# -- topics ----------------------------------------------------------------------------------

def test_heartbeat_and_command_topics_come_from_wire() -> None:
    t = Topics("local")
    assert t.heartbeat("street", "ssu1") == "fixgw/local/alive/street/ssu1"
    assert t.heartbeats() == "fixgw/local/alive/#"
    assert t.commands("ssu1") == "fixgw/local/cmd/ssu1"
    assert t.kind_of(t.heartbeat("street", "ssu1")) == HEARTBEAT_KIND
    assert t.kind_of(t.commands("ssu2")) == COMMAND_KIND
    assert t.kind_of(t.records(Role.STREET, "ssu1")) == "rec"
    assert t.kind_of("fixgw/other/alive/street/ssu1") == ""   # another cluster's topic


def test_a_street_node_subscribes_to_its_commands_and_every_heartbeat(tmp_path: Path) -> None:
    """A street also hears its commands and the customer utilities' market-data interest; a customer
    utility the requests to hand a session over and the streets' quotes (QoS 0: not records)."""
    cfg = local_config(tmp_path)
    street = NodeProcess(cfg, cfg.node("ssu1"), VenueCatalogue())
    customer = NodeProcess(cfg, cfg.node("cfu1"), VenueCatalogue())
    assert street.subscriptions() == [("fixgw/local/alive/#", 0), ("fixgw/local/cmd/ssu1", 1),
                                      ("fixgw/local/mdwant/+", 0)]
    assert customer.subscriptions() == [("fixgw/local/alive/#", 0), ("fixgw/local/session/cfu1", 1),
                                        ("fixgw/local/quote/+", 0)]


# -- the bus: heartbeats and commands ----------------------------------------------------------

def test_heartbeats_heard_make_peers_alive_and_malformed_ones_are_set_aside(tmp_path: Path) -> None:
    cfg = local_config(tmp_path)
    np = NodeProcess(cfg, cfg.node("cfu1"), VenueCatalogue())
    clock = Clock()
    np.liveness = Liveness(cfg.dead_after_s, monotonic=clock)
    topic = np.topics.heartbeat("street", "ssu1")
    np.on_bus_message(topic, Heartbeat("ssu1", "street", "ready", ("exchange",), 4242, "h/1/x").encode())
    assert np.liveness.alive("ssu1")
    assert np.liveness.heartbeat("ssu1") == Heartbeat("ssu1", "street", "ready", ("exchange",), 4242, "h/1/x")
    np.on_bus_message(np.topics.heartbeat("customer", "cfu1"), Heartbeat("cfu1", "customer", "ready").encode())
    assert not np.liveness.ever_seen("cfu1")            # its own heartbeat is not a peer's
    np.on_bus_message(np.topics.heartbeat("street", "ssu2"), b"\x93not a heartbeat")
    assert not np.liveness.ever_seen("ssu2")
    clock.now += cfg.dead_after_s + 0.1
    assert not np.liveness.alive("ssu1")
    # a command reaching a node that is not a street (or not started) is ignored
    np.on_bus_message(np.topics.commands("cfu1"), b"anything")


def test_malformed_bus_messages_are_utilities_errors_and_value_errors() -> None:
    for bad, decode in ((b"\xc1", Heartbeat.decode), (b"\x92\x01\x02", Heartbeat.decode), (b"\xc1", decode_commands),
                        (b"\x92\x02\x90", decode_commands)):
        try:
            decode(bad)
        except MalformedMessage as exc:
            assert isinstance(exc, UtilitiesError) and isinstance(exc, ValueError)
        else:
            raise AssertionError(f"{bad!r} decoded")
    try:
        parse_txn("no-txn-here")
    except InvalidValue as exc:
        assert isinstance(exc, ValueError)
    else:
        raise AssertionError("parsed")


# -- readiness to route ------------------------------------------------------------------------

def test_a_customer_utility_can_route_to_a_venue_once_a_live_street_reaches_it(tmp_path: Path) -> None:
    async def main() -> None:
        clock = Clock()
        liveness = Liveness(3.0, monotonic=clock)

        async def publish(topic: str, payload: bytes) -> None:
            return None

        async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp_path,
                                   mqtt=False) as node:
            app = CustomerUtility(node=node, node_name="cfu1", comp_id="FIXGW", cluster="t", customers={},
                                  passwords={}, symbol_venues={}, streets={"ssu1": ("exchange",), "ssu2": ("fund",)},
                                  liveness=liveness, publish=publish)
            assert not app.can_route("exchange")
            liveness.saw(Heartbeat("ssu1", "street", "ready", ()))          # alive, not logged on yet
            assert not app.can_route("exchange")
            liveness.saw(Heartbeat("ssu1", "street", "ready", ("exchange",)))
            assert app.can_route("exchange") and not app.can_route("fund")   # asked afresh each time
            clock.now += 3.1
            assert not app.can_route("exchange")

    asyncio.run(main())


def test_fix_sessions_of_a_node_follow_the_config(tmp_path: Path) -> None:
    cfg = local_config(tmp_path)
    sessions = customer_settings(cfg, cfg.node("cfu1"), tmp_path / "cfu1")
    assert {(s.begin_string, s.target_comp_id) for s in sessions} == {
        (b, c) for c in cfg.customers for b in ("FIX.4.2", "FIX.4.4")}
    assert all(s.socket_accept_port == 19001 and s.sender_comp_id == "FIXGW" for s in sessions)
    streets = street_settings(cfg, cfg.node("ssu1"), tmp_path / "ssu1")
    assert set(streets) == set(cfg.node("ssu1").venues)
    assert all(s.connection_type == "initiator" for s in streets.values())


# -- the status file -------------------------------------------------------------------------

def test_status_files_make_the_cluster_status(tmp_path: Path) -> None:
    cfg = local_config(tmp_path)
    assert read_status(tmp_path / "cfu1") is None
    (tmp_path / "cfu1").mkdir()
    write_status(tmp_path / "cfu1", {"name": "cfu1", "pid": os.getpid(), "state": "ready", "own_seq": 7,
                                     "hwm": {"firm": 4, "ssu1": 2}, "connected": True})
    assert read_status(tmp_path / "cfu1") == {"name": "cfu1", "pid": os.getpid(), "state": "ready", "own_seq": 7,
                                              "hwm": {"firm": 4, "ssu1": 2}, "connected": True}
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / "ssu1").mkdir()
    write_status(tmp_path / "ssu1", {"name": "ssu1", "pid": gone.pid, "state": "ready", "own_seq": 5})
    (tmp_path / "firm").mkdir()
    write_status(tmp_path / "firm", {"name": "firm", "pid": os.getpid(), "state": "ready", "own_seq": 4})
    (tmp_path / "ssu2").mkdir()
    (tmp_path / "ssu2" / "status.json").write_text("{half a fi")
    report = cluster_status(cfg)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert nodes["cfu1"]["state"] == "ready" and nodes["cfu1"]["connected"] is True
    assert nodes["cfu1"]["lag"] == {"cfu2": 0, "ssu1": 3, "ssu2": 0, "firm": 0}   # ssu1: head 5, held up to 2
    assert nodes["ssu1"]["state"] == "down"                            # its process is gone
    assert nodes["ssu2"]["state"] == NEVER_STARTED and nodes["cfu2"]["state"] == NEVER_STARTED
    assert {e["name"]: e["kind"] for e in report["entry_points"]} == {
        "gw1": "gateway", "cfu1": "customer", "cfu2": "customer", "exchange": "venue", "fund": "venue"}
    assert report["entry_points"][0]["name"] == "gw1"                   # the customers' one address first
    assert [(g["name"], g["state"]) for g in report["gateways"]] == [("gw1", NEVER_STARTED)]


async def test_a_node_too_far_behind_an_origin_says_so_in_its_log_and_status(tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    # issue 19 item 2: records and seconds behind per origin, BEHIND past cluster.behind_after_s
    cfg = local_config(tmp_path)
    clock = Clock()
    np = NodeProcess(cfg, cfg.node("ssu1"), VenueCatalogue())
    np.node = node = ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="local", data_dir=tmp_path / "log",
                                     mqtt=False, monotonic=clock, behind_after_s=cfg.behind_after_s)
    await node.start()
    try:
        node.lag.heard("ssu2", 120)          # ssu2's digest: its head is 120; nothing of it held
        clock.now += 3.0
        with caplog.at_level(logging.INFO, logger="fixgw.node"):
            np.check_lag()
            assert not [r for r in caplog.records if "BEHIND" in r.getMessage()]
            st = np.status()
            assert st["replication_lag"] == {"ssu2": {"records": 120, "seconds": 3.0}} and st["behind"] == []
            clock.now += 2.5                 # 5.5 s > behind_after_s (5)
            np.check_lag()
            np.check_lag()                   # said once
            warned = [r for r in caplog.records if "BEHIND" in r.getMessage()]
            assert len(warned) == 1 and warned[0].levelno == logging.WARNING
            assert "ssu1: BEHIND ssu2: 120 records, 5.5 s behind" in warned[0].getMessage()
            assert np.status()["behind"] == ["ssu2"]
            (tmp_path / "ssu1").mkdir()
            write_status(tmp_path / "ssu1", {**np.status(), "pid": os.getpid()})
            nodes = {n["name"]: n for n in cluster_status(cfg)["nodes"]}
            assert nodes["ssu1"]["behind"] == ["ssu2"] and nodes["ssu1"]["lag_seconds"] == {"ssu2": 5.5}
    finally:
        await node.close()


# -- the catalogue and order requests ----------------------------------------------------------

def test_a_symbol_listed_twice_goes_to_the_first_venue() -> None:
    cat = VenueCatalogue.of({"exchange": {"AAPL": Decimal("190.00"), "IBM": Decimal(150)},
                             "fund": {"FSIDX": Decimal("120.5"), "AAPL": Decimal(1)}})
    assert dict(cat.symbol_venue) == {"AAPL": "exchange", "IBM": "exchange", "FSIDX": "fund"}
    assert dict(cat.prices) == {"AAPL": Decimal("190.00"), "IBM": Decimal(150), "FSIDX": Decimal("120.5")}


def test_an_order_request_gives_its_record_fields() -> None:
    req = OrderRequest(account="ACC1", symbol="AAPL", side="1", order_qty=Decimal(100), cash_order_qty=None,
                       price=Decimal(200), ord_type="2", tif="0", cl_ord_id="C1", venue="exchange",
                       session="CLIENT1", begin="FIX.4.2")
    fields = req.record_fields()
    assert fields == {"account": "ACC1", "symbol": "AAPL", "side": "1", "order_qty": Decimal(100),
                      "cash_order_qty": None, "price": Decimal(200), "ord_type": "2", "tif": "0", "cl_ord_id": "C1",
                      "venue": "exchange", "session": "CLIENT1", "extra": {"begin": "FIX.4.2"}}
    replace = dataclasses.replace(req, cl_ord_id="C2", orig_cl_ord_id="C1", order_qty=Decimal(50), begin="")
    assert replace.record_fields()["orig_cl_ord_id"] == "C1" and "extra" not in replace.record_fields()
    assert req.order_qty == Decimal(100)    # frozen: the original request is untouched


# -- risk checks, one at a time ----------------------------------------------------------------

def _view() -> risk.RiskView:
    view = risk.RiskView({"AAPL": Decimal(10)})
    view.apply(account_record(origin="firm", seq=1, hlc=Hlc(1, 0, "firm"), account="ACC1", cash=Decimal(1000),
                              positions={"AAPL": Decimal(50)},
                              extra={"max_order_qty": Decimal(500), "max_notional": Decimal(2000)}))
    return view


def _order(**kw: object) -> risk.RiskOrder:
    base: dict[str, object] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "qty": Decimal(10),
                               "cash_qty": None, "ref": Decimal(10), "notional": Decimal(100)}
    base.update(kw)
    return risk.RiskOrder(**base)  # type: ignore[arg-type]


def test_each_risk_check_gives_its_own_reason() -> None:
    view = _view()
    ok = _order()
    assert all(check(view, ok) is None for check in risk.CHECKS)
    cases = [
        (risk.known_account, _order(account="NOPE"), 0, "Unknown account"),
        (risk.positive_quantity, _order(qty=Decimal(0)), 0, "OrderQty must be positive"),
        (risk.positive_quantity, _order(qty=None, cash_qty=None), 0, "OrderQty or CashOrderQty"),
        (risk.within_max_order_qty, _order(qty=Decimal(501)), 3, "exceeds the account's maximum 500"),
        (risk.within_max_notional, _order(notional=Decimal(2001)), 3, "Notional 2001"),
        (risk.buying_power, _order(notional=Decimal(1001)), 3, "Insufficient buying power"),
        (risk.buying_power, _order(notional=None), 0, "No reference price"),
        (risk.position, _order(side="2", qty=Decimal(51)), 3, "Insufficient position"),
        (risk.position, _order(side="2", qty=None, cash_qty=Decimal(100), ref=None), 0, "No reference price"),
        (risk.known_side, _order(side="9"), 0, "Unsupported Side 9"),
    ]
    for check, order, reason, text in cases:
        refusal = check(view, order)
        assert refusal is not None and refusal.reason == reason and text in refusal.text, (check.__name__, refusal)
    # the checks of one side leave the other side's orders alone
    assert risk.position(view, _order(side="1", qty=Decimal(10**6))) is None
    assert risk.buying_power(view, _order(side="2", notional=Decimal(10**6))) is None


def test_the_view_runs_the_checks_in_order() -> None:
    view = _view()
    # unknown account first, whatever else is wrong
    refusal = view.check(account="NOPE", symbol="AAPL", side="9", qty=Decimal(0), cash_qty=None, price=None)
    assert refusal is not None and refusal.text == "Unknown account NOPE"
    refusal = view.check(account="ACC1", symbol="AAPL", side="1", qty=Decimal(600), cash_qty=None, price=None)
    assert refusal is not None and refusal.text == "OrderQty 600 exceeds the account's maximum 500"
    assert view.check(account="ACC1", symbol="AAPL", side="2", qty=Decimal(50), cash_qty=None, price=None) is None
