"""The customer utility's orders in flight (issue 19 item 1) on a real record log (LMDB, no
broker): a session at its bound is not read any more (pause) or its next order is refused
(reject, no record); a venue's answer releases it; a restart counts the same from the log.

The engine is a recorder of what the utility asks of it (pause, resume, send): the engine's own
pause is tested over TCP in tests/fixgw/test_fix_engine.py, the whole path in
tests/e2e/test_e2e_overload.py."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw.config import SessionID
from fixgw.message import Message
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from utilities.books import CASH_KEY
from utilities.customer import CustomerUtility
from utilities.in_flight import InFlightLimits
from utilities.liveness import Liveness

S1 = SessionID("FIX.4.4", "FIXGW", "CLIENT1")
S2 = SessionID("FIX.4.4", "FIXGW", "CLIENT2")


class Runtime:
    def __init__(self) -> None:
        self.reading_paused = False
        self.pauses = 0

    def pause_reading(self) -> None:
        self.reading_paused = True
        self.pauses += 1

    def resume_reading(self) -> None:
        self.reading_paused = False


class RecordingEngine:
    def __init__(self) -> None:
        self.sessions = {S1: Runtime(), S2: Runtime()}
        self.sent: list[tuple[SessionID, Message]] = []

    def send_to_target(self, msg: Message, sid: SessionID) -> bool:
        self.sent.append((sid, msg))
        return True


async def _publish(topic: str, payload: bytes) -> None:
    return None  # no street utility here: the test appends the venue's answers itself


async def start(data: Path, limits: InFlightLimits) -> tuple[ReplicationNode, CustomerUtility, RecordingEngine]:
    node = ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=data, mqtt=False)
    await node.start()
    if node.log.head == 0:
        await node.append(type=RecordType.ACCOUNT, txn="account:ACC1", status="open", account="ACC1",
                          extra={CASH_KEY: "100000000"})
    app = CustomerUtility(node=node, node_name="cfu1", comp_id="FIXGW", cluster="t",
                          customers={"CLIENT1": ("ACC1",), "CLIENT2": ("ACC1",)}, passwords={},
                          symbol_venues={"AAPL": "exchange"}, streets={"ssu1": ("exchange",)}, liveness=Liveness(3.0),
                          publish=_publish, reference_prices={"AAPL": Decimal(190)}, in_flight=limits)
    app.load()
    engine = RecordingEngine()
    app.engine = engine  # type: ignore[assignment]
    return node, app, engine


async def order(node: ReplicationNode, app: CustomerUtility, sid: SessionID, cl: str) -> Record | None:
    """A NewOrderSingle; the record appended for it, None when none was (refused unrecorded)."""
    head = node.log.head
    await app.on_new_order(Message.new("D", [(11, cl), (1, "ACC1"), (55, "AAPL"), (54, "1"), (38, "10"),
                                             (40, "2"), (44, "190"), (59, "0")]), sid)
    for _ in range(200):
        if node.log.head > head:
            return node.log.get("cfu1", head + 1)
        await asyncio.sleep(0.005)
    return None


async def venue_ack(node: ReplicationNode, rec: Record) -> None:
    fields: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "cl_ord_id": rec.cl_ord_id,
                              "session": rec.session}
    await node.append(type=RecordType.VENUE_ACK, txn=rec.txn, status="0", **fields)


async def test_pause_at_the_session_bound_release_on_venue_answers_and_count_again_after_restart(tmp_path: Path) -> None:
    node, app, engine = await start(tmp_path, InFlightLimits(total=100, per_session=4))
    try:
        recs = [await order(node, app, S1, f"A{i}") for i in range(4)]
        assert all(r is not None and r.type is RecordType.ORDER for r in recs)
        assert app.in_flight.count(S1) == 4
        assert engine.sessions[S1].reading_paused and not engine.sessions[S2].reading_paused
        sent = await order(node, app, S2, "B0")   # another session trades on
        assert sent is not None and sent.type is RecordType.ORDER
        # the street sending it is no answer yet; the venue's is
        first = recs[0]
        assert first is not None
        await node.append(type=RecordType.SENT, txn=first.txn, status="A", account="ACC1", symbol="AAPL", side="1",
                          cl_ord_id=first.cl_ord_id, session="CLIENT1")
        assert app.in_flight.count(S1) == 4 and engine.sessions[S1].reading_paused
        await venue_ack(node, first)
        assert app.in_flight.count(S1) == 3 and not engine.sessions[S1].reading_paused   # low water of 4: 3
        assert app.in_flight_report()["peak"] == 5 and app.counters["in_flight_holds"] == 1
    finally:
        await node.close()
    node, app, engine = await start(tmp_path, InFlightLimits(total=100, per_session=4))
    try:
        # rebuilt from the log: the 3 of CLIENT1 and the 1 of CLIENT2 the venue has not answered
        assert app.in_flight.count(S1) == 3 and app.in_flight.count(S2) == 1 and app.in_flight.total == 4
    finally:
        await node.close()


async def test_the_total_bound_pauses_every_session(tmp_path: Path) -> None:
    node, app, engine = await start(tmp_path, InFlightLimits(total=3, per_session=10))
    try:
        for i in range(3):
            assert await order(node, app, S1 if i < 2 else S2, f"T{i}") is not None
        assert app.in_flight.all_held
        assert all(rt.reading_paused for rt in engine.sessions.values())
    finally:
        await node.close()


async def test_reject_policy_refuses_the_order_over_the_bound_and_records_nothing(tmp_path: Path) -> None:
    node, app, engine = await start(tmp_path, InFlightLimits(total=100, per_session=2,
                                                             customer_policies={"CLIENT1": "reject"}))
    try:
        assert await order(node, app, S1, "R0") is not None and await order(node, app, S1, "R1") is not None
        assert not engine.sessions[S1].reading_paused          # reject: never paused
        head = node.log.head
        assert await order(node, app, S1, "R2") is None        # refused, no record
        assert node.log.head == head
        sid, er = engine.sent[-1]
        assert sid == S1 and er.msg_type == b"8" and er.get(150) == b"8" and er.get(39) == b"8"
        assert er.get_str(58) == "throttled: 2 orders in flight" and er.get_str(11) == "R2"
        assert app.counters["in_flight_rejects"] == 1
        # CLIENT2 keeps the cluster's policy (pause) and its own count
        assert await order(node, app, S2, "P0") is not None and await order(node, app, S2, "P1") is not None
        assert engine.sessions[S2].reading_paused
    finally:
        await node.close()


async def test_cancel_and_replace_requests_are_in_flight_until_the_venue_answers_them(tmp_path: Path) -> None:
    node, app, _engine = await start(tmp_path, InFlightLimits(total=100, per_session=3))
    try:
        recs = [await order(node, app, S1, f"O{i}") for i in range(2)]
        for r in recs:
            assert r is not None
            await venue_ack(node, r)                      # resting at the venue: out of flight
        assert app.in_flight.total == 0
        head = node.log.head
        await app.on_cancel(Message.new("F", [(11, "X0"), (41, "O0"), (55, "AAPL"), (54, "1"),
                                             (60, "20260102-10:00:00")]), S1)
        await app.on_replace(Message.new("G", [(11, "X1"), (41, "O1"), (55, "AAPL"), (54, "1"), (38, "20"),
                                              (40, "2"), (44, "191"), (60, "20260102-10:00:00")]), S1)
        for _ in range(200):
            if node.log.head >= head + 2:
                break
            await asyncio.sleep(0.005)
        assert recs[0] is not None and recs[1] is not None
        assert set(app.in_flight.txns) == {f"{recs[0].txn}|X0", f"{recs[1].txn}|X1"}
        # the venue refuses the cancel (its ClOrdID), and the replaced order's own answer
        await node.append(type=RecordType.CANCEL_REJECTED, txn=recs[0].txn, status="0", account="ACC1", symbol="AAPL",
                          side="1", cl_ord_id="X0", orig_cl_ord_id="O0", session="CLIENT1")
        assert set(app.in_flight.txns) == {f"{recs[1].txn}|X1"}
    finally:
        await node.close()
    node, app, _engine = await start(tmp_path, InFlightLimits(total=100, per_session=3))
    try:
        assert set(app.in_flight.txns) == {f"{recs[1].txn}|X1"}   # rebuilt from the log
        await node.append(type=RecordType.CANCELED, txn=recs[1].txn, status="4", account="ACC1", symbol="AAPL",
                          side="1", cl_ord_id="O1", session="CLIENT1")
        assert app.in_flight.total == 0                   # the order ended: its requests with it
    finally:
        await node.close()

