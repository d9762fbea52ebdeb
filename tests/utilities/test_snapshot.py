"""A customer utility's snapshot (utilities.snapshot) on a real LMDB record log.

Random histories (orders of three trading days from the node itself and its peer, the streets'
sendings, acks, fills, duplicate fills of a take-over, cancels, rejects, expiries, in a random
interleaving of origins), a snapshot taken after ANY prefix of them: the snapshot plus the tail
gives the views a full fold gives. Then a snapshot that fails its checks (corrupted, truncated,
another format or build, another node, a position beyond the log) is ignored with a warning and
the utility folds the whole log; and one that passes is used by ``CustomerUtility.load``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from utilities.books import CASH_KEY, POSITION_PREFIX, trade_date_of
from utilities.customer import CustomerUtility
from utilities.liveness import Liveness
from utilities.snapshot import (
    MAGIC,
    SNAPSHOT_FORMAT,
    CustomerState,
    decode,
    read_file,
    take,
)
from utilities.snapshot_file import SnapshotError

ME, PEER, STREETS = "cfu1", "cfu2", ("ssu1", "ssu2")
PRICES = {"AAPL": Decimal(190), "IBM": Decimal(170)}
T0 = 1_709_650_800_000_000_000   # 2024-03-05 10:00 New York
DAY_NS = 86_400 * 1_000_000_000
DAY0 = trade_date_of(Hlc(T0, 0, ME))
ENDINGS = ("fill", "partial_fill", "cancel", "venue_reject", "expire", "open", "unsent", "refused", "takeover_fill")


@dataclasses.dataclass
class Order:
    origin: str
    client: str
    cl: str
    day: int
    ending: str
    symbol: str
    side: str
    street: str


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, int, dict[str, Any]]], int, dt.date]:
    """(records as (origin, wall_ns, fields) in insertion order, snapshot point, today)."""
    n = draw(st.integers(1, 14))
    counters: dict[tuple[str, int], int] = {}
    orders = []
    for _ in range(n):
        client, day = draw(st.sampled_from(("C1", "C2"))), draw(st.integers(0, 2))
        k = counters[(client, day)] = counters.get((client, day), 0) + 1
        orders.append(Order(draw(st.sampled_from((ME, PEER))), client, f"X{k}", day, draw(st.sampled_from(ENDINGS)),
                            draw(st.sampled_from(tuple(PRICES))), draw(st.sampled_from(("1", "2"))),
                            draw(st.sampled_from(STREETS))))
    orders.sort(key=lambda o: o.day)
    flows: list[list[tuple[str, int, dict[str, Any]]]] = []
    for i, o in enumerate(orders):
        t = T0 + o.day * DAY_NS + i * 60_000_000_000
        txn = f"{o.origin}-0.{i + 1}"
        terms = {"account": "ACC1", "symbol": o.symbol, "side": o.side, "order_qty": Decimal(100),
                 "price": PRICES[o.symbol], "ord_type": "2", "tif": "0", "cl_ord_id": o.cl, "venue": "exchange",
                 "session": o.client}
        first = {**terms, "type": RecordType.ORDER_REJECTED if o.ending == "refused" else RecordType.ORDER, "txn": txn,
                 "status": "8" if o.ending == "refused" else "A", "extra": {"begin": "FIX.4.4", "in_seq": i + 2}}
        flow = [(o.origin, t, first)]
        if o.ending not in ("refused", "unsent"):
            street, vid = o.street, f"V{i}"
            flow.append((street, t + 1, {**terms, "type": RecordType.SENT, "txn": txn, "status": "A",
                                         "extra": {"street": street}}))
            flow.append((street, t + 2, {**terms, "type": RecordType.VENUE_ACK, "txn": txn, "status": "0",
                                         "venue_order_id": vid, "cum_qty": Decimal(0), "avg_px": Decimal(0)}))

            def fill(origin: str, at: int, qty: int, cum: int, exec_id: str, terms: dict[str, Any] = terms,
                     txn: str = txn, vid: str = vid, px: Decimal = PRICES[o.symbol]) -> tuple[str, int, dict[str, Any]]:
                return (origin, at, {**terms, "type": RecordType.FILL, "txn": txn, "status": "2" if cum == 100 else "1",
                                     "venue_order_id": vid, "exec_id": exec_id, "last_qty": Decimal(qty),
                                     "last_px": px, "cum_qty": Decimal(cum), "avg_px": px})
            if o.ending in ("fill", "takeover_fill"):
                flow.append(fill(street, t + 3, 100, 100, f"E{i}"))
                if o.ending == "takeover_fill":   # the other street records the same venue fill again
                    other = STREETS[1 - STREETS.index(street)]
                    flow.append(fill(other, t + 4, 100, 100, f"E{i}"))
            elif o.ending == "partial_fill":
                flow.append(fill(street, t + 3, 40, 40, f"E{i}a"))
            elif o.ending == "cancel":
                flow.append((o.origin, t + 3, {**terms, "type": RecordType.CANCEL_REQUEST, "txn": txn, "status": "6",
                                               "cl_ord_id": o.cl + "c", "orig_cl_ord_id": o.cl,
                                               "extra": {"begin": "FIX.4.4", "in_seq": 100 + i}}))
                flow.append((street, t + 4, {**terms, "type": RecordType.CANCELED, "txn": txn, "status": "4",
                                             "cl_ord_id": o.cl + "c", "orig_cl_ord_id": o.cl}))
            elif o.ending == "venue_reject":
                flow.append((street, t + 3, {**terms, "type": RecordType.VENUE_REJECT, "txn": txn, "status": "8"}))
            elif o.ending == "expire":
                flow.append((street, t + 3, {**terms, "type": RecordType.EXPIRED, "txn": txn, "status": "C"}))
        if o.origin == PEER and draw(st.booleans()):
            flow.append(flow.pop(0))   # the peer's ORDER replicated after the street's records
        flows.append(flow)
    # a random interleaving: each order's records in their order, the orders' records mixed
    merged: list[tuple[str, int, dict[str, Any]]] = []
    pos = [0] * len(flows)
    while True:
        live = [i for i, f in enumerate(flows) if pos[i] < len(f)]
        if not live:
            break
        i = draw(st.sampled_from(live))
        merged.append(flows[i][pos[i]])
        pos[i] += 1
    # records come in within their day (replication lags by seconds, not days): a record more than
    # a day late may fold otherwise after a restart, as it does live (utilities.snapshot.KEEP_DAYS)
    merged.sort(key=lambda rec: (rec[1] - T0) // DAY_NS)
    cut = draw(st.integers(0, len(merged)))
    today = DAY0 + dt.timedelta(days=draw(st.integers(2, 3)))
    return merged, cut, today


class History:
    """A real record log of ``cfu1``, written record by record."""

    def __init__(self, path: Path) -> None:
        self.wall = [T0 - DAY_NS]
        self.log = RecordLog(path, node_id=ME, role=Role.CUSTOMER)
        self.clock = HybridLogicalClock(ME, physical=lambda: self.wall[0])
        self.seqs: dict[str, int] = {}
        self.write("firm", T0 - DAY_NS, {"type": RecordType.ACCOUNT, "txn": "account:ACC1", "status": "open",
                                          "account": "ACC1", "extra": {CASH_KEY: "10000000", POSITION_PREFIX + "AAPL": "5000",
                                                                       POSITION_PREFIX + "IBM": "5000"}})

    def write(self, origin: str, wall_ns: int, fields: dict[str, Any]) -> None:
        from replication.codec import encode_values, make_checked_record, record_values

        with self.log.write(self.clock) as batch:
            if origin == ME:
                self.wall[0] = wall_ns
                batch.append(fields)
                return
            seq = self.seqs[origin] = self.seqs.get(origin, 0) + 1
            v = record_values(origin, seq, Hlc(wall_ns, 0, origin), fields)
            role = Role.FIRM if origin == "firm" else Role.CUSTOMER if origin == PEER else Role.STREET
            out = batch.insert(role, [(make_checked_record(v), encode_values(v))])
            assert out.inserted and not out.rejected, out


def views(s: CustomerState) -> dict[str, Any]:
    """Everything a state holds, comparable (an amount reserved and released again is 0 in one
    fold and absent in another: the same buying power)."""
    risk = {k: ({a: v for a, v in d.items() if v != 0} if k.startswith("reserved") else d)
            for k, d in vars(s.risk).items()}
    # a session's facts are a set (utilities.session_rule reads them in any order); their list
    # order is the order the records came in
    sessions = {k: (sorted(map(repr, v.facts)), sorted(map(repr, v.received))) for k, v in s.sessions.items()}
    return {"risk": risk, "accounts": s.accounts.comparable(), "clids": s.clids.export(),
            "client_txns": s.client_txns, "sessions": sessions, "requests": s.requests,
            "peer_orders": s.peer_orders}


def full_fold(log: RecordLog, today: dt.date) -> CustomerState:
    state = CustomerState.empty(ME, PRICES)
    with log.reader() as rd:
        state.fold_from(rd, {})
        state.prune_requests(rd.records_for_txn)
        state.prune_peer_orders(rd.records_for_txn)
    state.roll(today)
    return state


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(history=histories())
def test_a_snapshot_at_any_point_plus_its_tail_gives_the_full_fold(
        history: tuple[list[tuple[str, int, dict[str, Any]]], int, dt.date]) -> None:
    records, cut, today = history
    with tempfile.TemporaryDirectory(prefix="h18-snap-") as tmp:
        h = History(Path(tmp) / "log")
        try:
            for origin, wall, fields in records[:cut]:
                h.write(origin, wall, fields)
            path = Path(tmp) / "snapshot" / "customer.snap"
            # taken the day of the last record written (the snapshot's clock), the restart on ``today``
            taken = take(h.log, path, me=ME, reference_prices=PRICES,
                         today=trade_date_of(Hlc(max(w for _, w, _ in records[:cut]), 0, ME)) if cut else DAY0)
            assert taken.records == cut + 1 and taken.folded == cut + 1 and not taken.previous
            first = path.read_bytes()
            for origin, wall, fields in records[cut:]:
                h.write(origin, wall, fields)
            # a second snapshot over the first folds only what came since
            again = take(h.log, path, me=ME, reference_prices=PRICES, today=today)
            assert again.folded == len(records) - cut and again.records == len(records) + 1 and not again.previous
            expected = views(full_fold(h.log, today))
            for data, snap_records in ((first, cut + 1), (path.read_bytes(), len(records) + 1)):
                snap = decode(data, node=ME, reference_prices=PRICES, held=h.log.high_water_marks())
                assert snap.records == snap_records
                with h.log.reader() as rd:
                    folded = snap.state.fold_from(rd, snap.position)
                    snap.state.prune_requests(rd.records_for_txn)
                    snap.state.prune_peer_orders(rd.records_for_txn)   # what a start-up checks in the log
                assert folded == len(records) + 1 - snap_records
                snap.state.roll(today)
                assert views(snap.state) == expected
        finally:
            h.log.close()


# -- a snapshot that fails its checks --------------------------------------------------------------

def _log_with_history(tmp: Path) -> History:
    h = History(tmp / "log")
    history: tuple[tuple[str, dict[str, Any]], ...] = (
            (ME, {"type": RecordType.ORDER, "txn": "cfu1-0.1", "status": "A", "account": "ACC1", "symbol": "AAPL",
                  "side": "1", "order_qty": Decimal(10), "price": Decimal(190), "ord_type": "2", "tif": "0",
                  "cl_ord_id": "A1", "venue": "exchange", "session": "C1", "extra": {"begin": "FIX.4.4"}}),
            ("ssu1", {"type": RecordType.SENT, "txn": "cfu1-0.1", "status": "A", "account": "ACC1",
                      "symbol": "AAPL", "side": "1", "cl_ord_id": "A1", "session": "C1"}))
    for i, (origin, fields) in enumerate(history):
        h.write(origin, T0 + i, fields)
    return h


def test_every_broken_snapshot_is_refused_by_name(tmp_path: Path) -> None:
    h = _log_with_history(tmp_path)
    try:
        path = tmp_path / "s.snap"
        take(h.log, path, me=ME, reference_prices=PRICES, today=DAY0)
        good = path.read_bytes()
        held = h.log.high_water_marks()
        assert decode(good, node=ME, reference_prices=PRICES, held=held).records == 3
        header = len(MAGIC) + 2 + 32 + 32
        flipped = bytearray(good)
        flipped[header + 10] ^= 0xFF
        cases = {
            "truncated": (good[: len(good) // 2], "checksum mismatch"),
            "corrupted": (bytes(flipped), "checksum mismatch"),
            "header only": (good[:20], "not a customer snapshot"),
            "not one": (b"hello", "not a customer snapshot"),
            "version": (MAGIC + (SNAPSHOT_FORMAT + 1).to_bytes(2, "big") + good[len(MAGIC) + 2:], "format 2"),
            "build": (good[:len(MAGIC) + 2] + bytes(32) + good[len(MAGIC) + 34:], "another build"),
        }
        for name, (data, why) in cases.items():
            with pytest.raises(SnapshotError, match=why):
                decode(data, node=ME, reference_prices=PRICES, held=held)
            assert name
        with pytest.raises(SnapshotError, match="of node 'cfu1', not 'cfu2'"):
            decode(good, node="cfu2", reference_prices=PRICES, held=held)
        with pytest.raises(SnapshotError, match="reference prices changed"):
            decode(good, node=ME, reference_prices={"AAPL": Decimal(1)}, held=held)
        with pytest.raises(SnapshotError, match="beyond the log for cfu1, ssu1"):
            decode(good, node=ME, reference_prices=PRICES, held={"firm": 1})
        snap, why = read_file(tmp_path / "missing", node=ME, reference_prices=PRICES, held=held)
        assert snap is None and why == ""
    finally:
        h.log.close()


async def _publish(topic: str, payload: bytes) -> None:
    return None


def _utility(node: ReplicationNode, path: Path) -> CustomerUtility:
    return CustomerUtility(node=node, node_name=ME, comp_id="FIXGW", cluster="t", customers={"C1": ("ACC1",)},
                           passwords={}, symbol_venues={"AAPL": "exchange"}, streets={"ssu1": ("exchange",)},
                           liveness=Liveness(3.0), publish=_publish, reference_prices=PRICES,
                           today=lambda: DAY0, snapshot_path=path, snapshot_every=0)


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "version", "beyond"])
async def test_load_ignores_a_broken_snapshot_says_so_and_folds_the_whole_log(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    h = _log_with_history(tmp_path)
    path = tmp_path / "snapshot" / "customer.snap"
    take(h.log, path, me=ME, reference_prices=PRICES, today=DAY0)
    h.log.close()
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-7])
    elif damage == "corrupt":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "version":
        path.write_bytes(MAGIC + (SNAPSHOT_FORMAT + 7).to_bytes(2, "big") + data[len(MAGIC) + 2:])
    else:   # a snapshot of a longer log than this one (the log was replaced by an older copy)
        longer = _log_with_history(tmp_path / "longer")
        longer.write("ssu1", T0 + 5, {"type": RecordType.VENUE_STATUS, "txn": "x", "status": "0"})
        take(longer.log, path, me=ME, reference_prices=PRICES, today=DAY0)
        longer.log.close()
    caplog.set_level(logging.WARNING, logger="utilities.customer")
    async with ReplicationNode(node_id=ME, role=Role.CUSTOMER, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        app = _utility(node, path)
        app.load()
        assert app.startup["snapshot"] is False and app.startup["folded"] == 3
        assert app.startup["snapshot_ignored"] and "snapshot ignored, folding the whole log" in caplog.text
        assert set(app.risk.open) == {"cfu1-0.1"} and app.clids.txn_of("C1", "A1") == "cfu1-0.1"
        assert app.startup["snapshot_written"] > 0   # a fresh one, for the next start
    snap, why = read_file(path, node=ME, reference_prices=PRICES, held={"cfu1": 1, "firm": 1, "ssu1": 1})
    assert snap is not None and why == "" and snap.records == 3


async def test_load_uses_a_good_snapshot_and_folds_only_the_tail(tmp_path: Path) -> None:
    h = _log_with_history(tmp_path)
    path = tmp_path / "snapshot" / "customer.snap"
    take(h.log, path, me=ME, reference_prices=PRICES, today=DAY0)
    h.write("ssu1", T0 + 10, {"type": RecordType.VENUE_ACK, "txn": "cfu1-0.1", "status": "0", "account": "ACC1",
                               "symbol": "AAPL", "side": "1", "cl_ord_id": "A1", "session": "C1",
                               "venue_order_id": "V1"})
    h.write(ME, T0 + 20, {"type": RecordType.ORDER, "txn": "cfu1-0.2", "status": "A", "account": "ACC1",
                          "symbol": "AAPL", "side": "1", "order_qty": Decimal(5), "price": Decimal(190),
                          "ord_type": "2", "tif": "0", "cl_ord_id": "A2", "venue": "exchange", "session": "C1",
                          "extra": {"begin": "FIX.4.4"}})
    h.log.close()
    async with ReplicationNode(node_id=ME, role=Role.CUSTOMER, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        app = _utility(node, path)
        app.load()
        # the next snapshot is written after the load, by the snapshot process (not keeping customers waiting)
        assert app.startup == {"snapshot": True, "snapshot_records": 3, "snapshot_ignored": "", "folded": 2,
                               "load_s": app.startup["load_s"], "snapshot_written": "later"}
        for _ in range(400):
            snap, _why = read_file(path, node=ME, reference_prices=PRICES, held=node.log.high_water_marks())
            if snap is not None and snap.records == 5 and app.counters["snapshots"] == 1:
                break
            await asyncio.sleep(0.025)
        assert snap is not None and snap.records == 5 and app.counters["snapshots"] == 1
        assert set(app.risk.open) == {"cfu1-0.1", "cfu1-0.2"} and app.clids.txn_of("C1", "A1") == "cfu1-0.1"
        # the order a street sent is not routed again; the one of the tail no street has seen is, and in flight
        assert list(app.router.pending) == ["cfu1-0.2"] and app.in_flight.total == 1
        assert app.client_txns == {"C1": {"cfu1-0.1": (DAY0, "FIX.4.4"), "cfu1-0.2": (DAY0, "FIX.4.4")}}


# -- the risk view does not depend on which origin's records come first ---------------------------

@settings(max_examples=200, deadline=None)
@given(fills=st.lists(st.integers(1, 60), min_size=1, max_size=4), final=st.booleans(), cash=st.booleans(),
       data=st.data())
def test_fills_before_their_order_record_reserve_what_the_order_first_would(
        fills: list[int], final: bool, cash: bool, data: st.DataObject) -> None:
    """A peer's ORDER record may come after the street's fills (two origins, two replication
    paths): the view ends as if the ORDER had come first, whichever snapshot sits in between."""
    from utilities.risk import RiskView

    px, qty = Decimal(10), Decimal(sum(fills) + (0 if final else 7))
    terms: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "price": px}
    order = Record(origin=PEER, seq=1, txn="cfu2-0.1", type=RecordType.ORDER, status="A", hlc=Hlc(T0, 0, PEER),
                   order_qty=None if cash else qty, cash_order_qty=qty * px if cash else None, **terms)
    street, cum = [], 0
    for i, q in enumerate(fills):
        cum += q
        street.append(Record(origin="ssu1", seq=i + 1, txn="cfu2-0.1", type=RecordType.FILL,
                             status="2" if final and i == len(fills) - 1 else "1", hlc=Hlc(T0 + i + 1, 0, "ssu1"),
                             exec_id=f"E{i}", last_qty=Decimal(q), last_px=px, cum_qty=Decimal(cum), **terms))
    first = RiskView(dict(PRICES))
    for r in [order, *street]:
        first.apply(r)
    late = RiskView(dict(PRICES))
    at = data.draw(st.integers(0, len(street)))
    for r in [*street[:at], order, *street[at:]]:
        late.apply(r)

    def seen(v: RiskView) -> tuple[Any, ...]:
        return (v.open, set(v.closed), {k: x for k, x in v.reserved_cash.items() if x != 0}, v.traded_cash,
                v.traded_pos, v.early)
    assert seen(late) == seen(first)
