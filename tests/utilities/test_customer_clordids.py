"""ClOrdIDs are unique within a trading day: a client may use an id again on a later day once
its order is done, never while it is open; refused requests take no id; a restart knows the same.

The pure map (``utilities.clordids``) in frozen dates, then the customer utility on a real
record log (LMDB, no broker) with one injected clock for its trading day and its records."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fixgw.config import SessionID
from fixgw.message import Message
from replication.hlc import HybridLogicalClock
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from tests.utilities.clordids_oracle import DictClOrdIds
from utilities.books import CASH_KEY, NEW_YORK
from utilities.clordids import ClOrdIds
from utilities.customer import CustomerUtility
from utilities.liveness import Liveness

D1 = dt.date(2026, 11, 23)
D2 = D1 + dt.timedelta(days=1)
D3 = D1 + dt.timedelta(days=2)


# -- the map ----------------------------------------------------------------------------------

def test_an_id_recorded_under_two_txns_on_one_day_is_seen_and_forgotten_with_its_day() -> None:
    """A paused customer utility's order and its successor's copy of the customer's resend
    (utilities.customer._drop_superseded): each txn sees the other; a refused request frees its id."""
    ids = ClOrdIds(lambda txn: False)
    ids.take("C", "1", "cfu1-1", D1)
    ids.learn("C", "1", "cfu1-1", D1)             # its own record, and the street's: the same txn
    assert ids.others("C", "1", "cfu1-1") == set()
    ids.learn("C", "1", "cfu2-7", D1)             # the successor's record of the resend
    assert ids.others("C", "1", "cfu1-1") == {"cfu2-7"} and ids.others("C", "1", "cfu2-7") == {"cfu1-1"}
    ids.learn("C", "2", "cfu1-2", D1)
    ids.learn("C", "2", "cfu1-9", D2)             # a later day's use of the id is not a duplicate
    assert ids.others("C", "2", "cfu1-9") == set()
    ids.roll(D2)
    assert ids.others("C", "1", "cfu1-1") == set()
    ids.take("C", "3", "cfu1-3", D2)
    ids.forget("C", "3", "cfu1-3")                # not stored after all (a full disk): free again
    assert not ids.taken("C", "3", D2)


def test_an_id_is_taken_for_its_day_then_free_once_its_order_is_done() -> None:
    open_orders = {"t1"}
    ids = ClOrdIds(lambda txn: txn in open_orders)
    assert not ids.taken("C", "1", D1)
    ids.take("C", "1", "t1", D1)
    assert ids.taken("C", "1", D1) and ids.txn_of("C", "1") == "t1"
    assert not ids.taken("OTHER", "1", D1)       # ids are per client
    assert ids.taken("C", "1", D2)               # still open the next day: a second live order would be ambiguous
    open_orders.clear()
    assert ids.taken("C", "1", D1)               # done, but the same day: a duplicate
    assert not ids.taken("C", "1", D2)           # done, and a new day: free again
    ids.take("C", "1", "t2", D2)
    assert ids.txn_of("C", "1") == "t2"          # the id now names today's order


def test_roll_forgets_done_ids_of_earlier_days_only() -> None:
    open_orders = {"open-gtc"}
    ids = ClOrdIds(lambda txn: txn in open_orders)
    ids.take("C", "gtc", "open-gtc", D1)
    ids.take("C", "done", "t-done", D1)
    ids.take("C", "today", "t-today", D2)
    assert ids.roll(D2) == 1 and len(ids) == 2
    assert ids.txn_of("C", "done") is None and ids.txn_of("C", "gtc") == "open-gtc"
    assert ids.roll(D2) == 0
    open_orders.clear()
    assert ids.roll(D3) == 2 and len(ids) == 0


def test_a_day_ahead_of_ours_counts_as_today() -> None:
    ids = ClOrdIds(lambda txn: False)
    ids.learn("C", "1", "t1", D2)                # a peer's record stamped just after its midnight
    assert ids.taken("C", "1", D1)


def test_learning_keeps_the_first_of_a_day_and_the_latest_day() -> None:
    ids = ClOrdIds(lambda txn: False)
    ids.learn("C", "1", "first", D1)
    ids.learn("C", "1", "second", D1)
    assert ids.txn_of("C", "1") == "first"
    ids.learn("C", "1", "older", D1 - dt.timedelta(days=1))
    assert ids.txn_of("C", "1") == "first"
    ids.learn("C", "1", "next-day", D2)
    assert ids.txn_of("C", "1") == "next-day"


@given(st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.integers(0, 5)), unique=True, max_size=18),
       st.randoms(use_true_random=False))
def test_whatever_the_arrival_order_an_id_names_its_latest_days_order(uses: list[tuple[str, int]],
                                                                      rnd: object) -> None:
    # one accepted use per (id, day): learnt in any order, replicated twice
    records = [(cl, f"{cl}@{d}", D1 + dt.timedelta(days=d)) for cl, d in uses] * 2
    rnd.shuffle(records)  # type: ignore[attr-defined]
    ids = ClOrdIds(lambda txn: False)
    for cl, txn, day in records:
        ids.learn("C", cl, txn, day)
    for cl in {cl for cl, _ in uses}:
        latest = max(d for c, d in uses if c == cl)
        assert ids.txn_of("C", cl) == f"{cl}@{latest}"


_OPS = st.tuples(st.sampled_from(["take", "forget", "learn", "learn_unknown", "roll", "close"]),
                 st.sampled_from(["C", "D"]), st.sampled_from(["1", "2", "3"]),
                 st.sampled_from(["t1", "t2", "t3", "t4"]), st.integers(0, 3))


@given(st.lists(_OPS, max_size=60))
def test_the_nested_layout_answers_as_the_one_dict_of_entries_did(ops: list[tuple[str, str, str, str, int]]) -> None:
    """utilities.clordids keeps ids per day and client (session 13, for the snapshot's load time);
    any sequence of uses, forgets, learnt records, rolls and orders closing gives the answers the
    first layout gave (tests/utilities/clordids_oracle.py)."""
    open_orders = {"t1", "t2", "t3", "t4"}
    new, old = ClOrdIds(lambda t: t in open_orders), DictClOrdIds(lambda t: t in open_orders)
    for op, client, cl, txn, d in ops:
        day = D1 + dt.timedelta(days=d)
        if op == "take":
            assert new.taken(client, cl, day) == old.taken(client, cl, day)
            if not old.taken(client, cl, day):
                new.take(client, cl, txn, day)
                old.take(client, cl, txn, day)
        elif op == "forget":
            new.forget(client, cl, txn)
            old.forget(client, cl, txn)
        elif op in ("learn", "learn_unknown"):
            getattr(new, op)(client, cl, txn, day)
            getattr(old, op)(client, cl, txn, day)
        elif op == "roll":
            assert new.roll(day) == old.roll(day)
        else:
            open_orders.discard(txn)
        assert len(new) == len(old)
        for c in ("C", "D"):
            for i in ("1", "2", "3"):
                assert new.txn_of(c, i) == old.txn_of(c, i)
                assert all(new.taken(c, i, D1 + dt.timedelta(days=k)) == old.taken(c, i, D1 + dt.timedelta(days=k))
                           for k in range(4))
                assert all(new.others(c, i, t) == old.others(c, i, t) for t in ("t1", "t2", "t3", "t4"))
    days, twice = new.export()
    again = ClOrdIds(lambda t: t in open_orders)
    again.restore(days, twice)
    assert again.export() == new.export() and len(again) == len(new)


# -- the customer utility on a real log --------------------------------------------------------

class Market:
    """One frozen clock for the utility's trading day and its records' hybrid clock."""

    def __init__(self) -> None:
        self.ns = int(dt.datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK).timestamp()) * 10**9

    def physical(self) -> int:
        self.ns += 1000
        return self.ns

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.ns // 10**9, tz=dt.UTC).astimezone(NEW_YORK).date()

    def next_day(self) -> None:
        self.ns += 24 * 3600 * 10**9


SID = SessionID("FIX.4.4", "FIXGW", "CLIENT1")


async def _publish(topic: str, payload: bytes) -> None:
    return None  # no street utility in this test: orders stay pending


async def start(data: Path, market: Market) -> tuple[ReplicationNode, CustomerUtility]:
    node = ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=data, mqtt=False,
                           clock=HybridLogicalClock("cfu1", physical=market.physical))
    await node.start()
    if node.log.head == 0:
        await node.append(type=RecordType.ACCOUNT, txn="account:ACC1", status="open", account="ACC1",
                          extra={CASH_KEY: "1000000"})
    app = CustomerUtility(node=node, node_name="cfu1", comp_id="FIXGW", cluster="t",
                          customers={"CLIENT1": ("ACC1",)}, passwords={}, symbol_venues={"AAPL": "exchange"},
                          streets={"ssu1": ("exchange",)}, liveness=Liveness(3.0), publish=_publish,
                          reference_prices={"AAPL": Decimal(190)}, today=market.today)
    app.load()
    return node, app


async def order(node: ReplicationNode, app: CustomerUtility, cl: str) -> Record:
    """Send a NewOrderSingle; the record the utility appended for it (ORDER or ORDER_REJECTED)."""
    head = node.log.head
    await app.on_new_order(Message.new("D", [(11, cl), (1, "ACC1"), (55, "AAPL"), (54, "1"), (38, "10"),
                                             (40, "2"), (44, "190"), (59, "1")]), SID)
    for _ in range(500):
        if node.log.head > head:
            rec = node.log.get("cfu1", head + 1)
            assert rec is not None
            return rec
        await asyncio.sleep(0.01)
    raise AssertionError(f"no record for ClOrdID {cl}")


async def test_a_client_may_reuse_yesterdays_ids_of_done_orders_but_not_of_open_ones(tmp_path: Path) -> None:
    market = Market()
    node, app = await start(tmp_path, market)
    try:
        first = await order(node, app, "1")
        assert first.type is RecordType.ORDER
        dup = await order(node, app, "1")
        assert dup.type is RecordType.ORDER_REJECTED and dup.text == "Duplicate ClOrdID 1"
        gtc = await order(node, app, "2")                     # stays open: good till canceled
        assert gtc.type is RecordType.ORDER
        await node.append(type=RecordType.CANCELED, txn=first.txn, status="4", account="ACC1", symbol="AAPL",
                          side="1", cl_ord_id="1", session="CLIENT1")
        assert (await order(node, app, "1")).type is RecordType.ORDER_REJECTED  # done, but the same day

        market.next_day()
        again = await order(node, app, "1")
        assert again.type is RecordType.ORDER and again.txn != first.txn
        assert app.clids.txn_of("CLIENT1", "1") == again.txn  # cancels by OrigClOrdID 1 reach today's order
        refused = await order(node, app, "2")
        assert refused.type is RecordType.ORDER_REJECTED and refused.text == "Duplicate ClOrdID 2"
        assert len(app.clids) == 2                            # today's "1" and the open "2"; nothing else kept
    finally:
        await node.close()

    # a restart on the same day reads the same from the log: refused requests took no id
    node, app = await start(tmp_path, market)
    try:
        assert app.clids.txn_of("CLIENT1", "1") == again.txn and app.clids.txn_of("CLIENT1", "2") == gtc.txn
        assert app.clids.taken("CLIENT1", "1", market.today()) and app.clids.taken("CLIENT1", "2", market.today())
        assert len(app.clids) == 2
        market.next_day()
        await node.append(type=RecordType.CANCELED, txn=again.txn, status="4", account="ACC1", symbol="AAPL",
                          side="1", cl_ord_id="1", session="CLIENT1")
        assert (await order(node, app, "1")).type is RecordType.ORDER   # day three: free again
        assert (await order(node, app, "2")).type is RecordType.ORDER_REJECTED
        # the risk view keeps finished orders of yesterday and today only (late records come within minutes)
        assert app.risk.closed and app.risk.closed.days()[0] == market.today() - dt.timedelta(days=1)
        assert first.txn not in app.risk.closed and again.txn in app.risk.closed
    finally:
        await node.close()
