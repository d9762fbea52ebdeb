"""A street utility's open-order index (utilities.open_orders) and snapshot (utilities.street_snapshot)
on a real LMDB record log.

Random histories of street records (two streets' SENT, TAKEOVER, VENUE_ACK, FILL and the other
street's copy of it, CANCEL_SENT/CANCELED, REPLACE_SENT/REPLACED, CANCEL_REJECTED, VENUE_REJECT,
EXPIRED, the firm's SETTLED held read-only), the peer's records inserted in any order (gaps
included):

- the index kept record by record, asked at any point, with duplicates seen again, gives what the
  scan of the whole log it replaces gives (the oracle below is that scan, as it was);
- a snapshot taken after any prefix plus its tail gives the state a full fold gives.

Then snapshots that fail their checks are refused by name and ``StreetUtility.load`` folds the
whole log instead; and one that passes is used by ``load``, which folds only the tail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.codec import encode_values, make_checked_record, record_values
from replication.hlc import Hlc, HybridLogicalClock
from replication.log import RecordLog
from replication.matrix import Holding
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from utilities.liveness import Liveness
from utilities.open_orders import OpenOrder
from utilities.snapshot_file import SnapshotError
from utilities.status import fold
from utilities.street import StreetUtility
from utilities.street_snapshot import MAGIC, SNAPSHOT_FORMAT, decode, read_file, take
from utilities.street_state import StreetState, authoritative_only

ME, PEER, FIRM = "ssu1", "ssu2", "firm"
T0 = 1_709_650_800_000_000_000   # 2024-03-05 10:00 New York
SEC = 1_000_000_000
ENDINGS = ("open", "ack", "partial", "fill", "dup_fill", "cancel", "cancel_rejected", "replace", "replace_fill",
           "venue_reject", "expire", "takeover", "takeover_fill", "settled")

Rec = tuple[str, int, dict[str, Any]]   # (origin, wall_ns, fields)


def _order_flow(i: int, ending: str, street: str, t: int) -> list[Rec]:
    other = PEER if street == ME else ME
    txn = f"cfu{1 + i % 2}-0.{i + 1}"
    terms: dict[str, Any] = {"account": "ACC1", "symbol": "AAPL", "side": "1", "order_qty": Decimal(100),
                             "price": Decimal(10), "ord_type": "2", "tif": "0", "cl_ord_id": f"X{i}",
                             "venue": "exchange", "session": f"C{i % 3}"}

    def rec(origin: str, dt: int, rtype: RecordType, status: str, **more: Any) -> Rec:
        extra = more.pop("extra", {"street": origin})
        return (origin, t + dt, {**terms, "type": rtype, "txn": txn, "status": status, "extra": extra, **more})

    def fill(origin: str, dt: int, qty: int, cum: int, exec_id: str) -> Rec:
        return rec(origin, dt, RecordType.FILL, "2" if cum == 100 else "1", exec_id=exec_id,
                   last_qty=Decimal(qty), last_px=Decimal(10), cum_qty=Decimal(cum), avg_px=Decimal(10))

    flow = [rec(street, 1, RecordType.SENT, "A", extra={"street": street, "venue_cl_ord_id": txn})]
    if ending == "open":
        return flow
    flow.append(rec(street, 2, RecordType.VENUE_ACK, "0", venue_order_id=f"V{i}"))
    if ending == "partial":
        flow.append(fill(street, 3, 40, 40, f"E{i}"))
    elif ending in ("fill", "dup_fill", "settled"):
        flow.append(fill(street, 3, 100, 100, f"E{i}"))
        if ending == "dup_fill":
            flow.append(fill(other, 4, 100, 100, f"E{i}"))
        if ending == "settled":
            flow.append(rec(FIRM, 5, RecordType.SETTLED, "settled", extra={"fill_ref": f"{street}:E{i}"}))
    elif ending in ("cancel", "cancel_rejected"):
        flow.append(rec(street, 3, RecordType.CANCEL_SENT, "6", cl_ord_id=f"X{i}c", orig_cl_ord_id=f"X{i}",
                        extra={"street": street, "venue_cl_ord_id": f"{txn}~1"}))
        if ending == "cancel":
            flow.append(rec(street, 4, RecordType.CANCELED, "4", cl_ord_id=f"X{i}c", orig_cl_ord_id=f"X{i}"))
        else:
            flow.append(rec(street, 4, RecordType.CANCEL_REJECTED, "0", cl_ord_id=f"X{i}c", orig_cl_ord_id=f"X{i}"))
    elif ending in ("replace", "replace_fill"):
        flow.append(rec(street, 3, RecordType.REPLACE_SENT, "E", cl_ord_id=f"X{i}r", orig_cl_ord_id=f"X{i}",
                        order_qty=Decimal(60), extra={"street": street, "venue_cl_ord_id": f"{txn}~1"}))
        flow.append(rec(street, 4, RecordType.REPLACED, "0", cl_ord_id=f"X{i}r", orig_cl_ord_id=f"X{i}",
                        order_qty=Decimal(60), extra={"street": street, "venue_cl_ord_id": f"{txn}~1"}))
        if ending == "replace_fill":
            flow.append(fill(street, 5, 60, 60, f"E{i}"))
    elif ending == "venue_reject":
        flow[-1] = rec(street, 2, RecordType.VENUE_REJECT, "8")
    elif ending == "expire":
        flow.append(rec(street, 3, RecordType.EXPIRED, "C"))
    elif ending in ("takeover", "takeover_fill"):
        flow.append(rec(other, 3, RecordType.TAKEOVER, "0", extra={"street": other, "from": street}))
        if ending == "takeover_fill":
            flow.append(fill(other, 4, 100, 100, f"E{i}"))
    return flow


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[Rec], int]:
    """(records in insertion order, a cut point). Each order's records in their order, the
    orders' records interleaved at random; then the records of origins other than this node
    (they are received, not appended) shuffled among their places: a peer's records arrive in
    any order, with gaps."""
    flows = [_order_flow(i, draw(st.sampled_from(ENDINGS)), draw(st.sampled_from((ME, PEER))),
                         T0 + i * 60 * SEC) for i in range(draw(st.integers(1, 12)))]
    merged: list[Rec] = []
    pos = [0] * len(flows)
    while live := [i for i, f in enumerate(flows) if pos[i] < len(f)]:
        i = draw(st.sampled_from(live))
        merged.append(flows[i][pos[i]])
        pos[i] += 1
    received = [i for i, (origin, _, _) in enumerate(merged) if origin != ME]
    order = draw(st.permutations(received))
    numbered = _numbered(merged, {})          # each received record keeps its seq of the merged order
    out = list(numbered)
    for place, src in zip(received, order, strict=True):
        out[place] = numbered[src]
    return out, draw(st.integers(0, len(out)))


def _numbered(recs: list[Rec], seqs: dict[str, int]) -> list[Rec]:
    """The records, those of other origins than this node with their seqs (``_seq``) in this order."""
    out = []
    for origin, wall, fields in recs:
        if origin != ME:
            seqs[origin] = seqs.get(origin, 0) + 1
            fields = {**fields, "_seq": seqs[origin]}
        out.append((origin, wall, fields))
    return out


def at_or_below_hwm(log: RecordLog) -> int:
    """How many records the log holds at or below its high-water marks (not held above a gap)."""
    return sum(hwm for hwm in log.high_water_marks().values())


class StreetLog:
    """A real record log of ``ssu1``: its own records appended, the others received."""

    def __init__(self, path: Path) -> None:
        self.wall = [T0]
        self.log = RecordLog(path, node_id=ME, role=Role.STREET)
        self.clock = HybridLogicalClock(ME, physical=lambda: self.wall[0])

    def write(self, origin: str, wall_ns: int, fields: dict[str, Any]) -> Record | None:
        """The record as inserted (None: a duplicate, already held)."""
        fields = dict(fields)
        with self.log.write(self.clock) as batch:
            if origin == ME:
                self.wall[0] = wall_ns
                fields.pop("_seq", None)
                return batch.append(fields).record
            seq = fields.pop("_seq")
            v = record_values(origin, seq, Hlc(wall_ns, 0, origin), fields)
            rec = make_checked_record(v)
            out = batch.insert(Role.FIRM if origin == FIRM else Role.STREET, [(rec, encode_values(v))])
            return rec if out.inserted else None


def scan(log: RecordLog) -> list[OpenOrder]:
    """The open orders as ``StreetUtility._open_orders`` found them before the index: a scan of
    the whole log, every record grouped by txn, each txn folded."""
    by_txn: dict[str, list[Record]] = {}
    for r in log.iter_authoritative():
        if r.txn:
            by_txn.setdefault(r.txn, []).append(r)
    out = []
    for txn, recs in by_txn.items():
        st = fold(recs)
        if st is not None and not st.is_terminal:
            out.append((txn, st, recs[0]))
    return out


def settle(state: StreetState, log: RecordLog) -> list[OpenOrder]:
    want = authoritative_only(log.holding_of)
    state.open_orders.settle(lambda txn: log.records_for_txn(txn, want))
    return state.open_orders.listing()


def views(state: StreetState, log: RecordLog) -> dict[str, Any]:
    return {"open": settle(state, log), "requests": state.requests, "seen_exec": set(state.seen_exec),
            "sent_ids": state.sent_ids}


def full_fold(log: RecordLog) -> StreetState:
    state = StreetState()
    with log.reader() as rd:
        state.fold_from(rd, {})
    return state


PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROFILE
@given(history=histories(), asks=st.lists(st.integers(0, 60), max_size=4), dups=st.lists(st.integers(0, 60)))
def test_the_index_gives_the_scan_whatever_order_records_come_in(
        history: tuple[list[Rec], int], asks: list[int], dups: list[int]) -> None:
    records, _ = history
    with tempfile.TemporaryDirectory(prefix="h18-open-") as tmp:
        h = StreetLog(Path(tmp) / "log")
        try:
            state, seen = StreetState(), []
            for i, (origin, wall, fields) in enumerate(records):
                r = h.write(origin, wall, fields)
                if r is not None:
                    state.index(r, h.log.holding_of(r.origin) is Holding.AUTHORITATIVE)
                    seen.append(r)
                for d in dups:          # a record seen again (a redelivery): no different answer
                    if seen and d % len(records) == i:
                        again = seen[d % len(seen)]
                        state.index(again, h.log.holding_of(again.origin) is Holding.AUTHORITATIVE)
                if i in asks:           # asked in the middle: the dirty ones folded, the rest kept
                    assert settle(state, h.log) == scan(h.log)
            assert settle(state, h.log) == scan(h.log)
            # and the state is the one a fold of the whole log gives
            assert views(state, h.log) == views(full_fold(h.log), h.log)
        finally:
            h.log.close()


@PROFILE
@given(history=histories())
def test_a_snapshot_at_any_point_plus_its_tail_gives_the_full_fold(history: tuple[list[Rec], int]) -> None:
    records, cut = history
    with tempfile.TemporaryDirectory(prefix="h18-ssnap-") as tmp:
        h = StreetLog(Path(tmp) / "log")
        try:
            for origin, wall, fields in records[:cut]:
                h.write(origin, wall, fields)
            path = Path(tmp) / "snapshot" / "street.snap"
            taken = take(h.log, path, me=ME)
            assert taken.records == taken.folded == at_or_below_hwm(h.log) and not taken.previous
            first = path.read_bytes()
            for origin, wall, fields in records[cut:]:
                h.write(origin, wall, fields)
            again = take(h.log, path, me=ME)      # a second snapshot over the first folds what came since
            assert not again.previous and again.records == taken.records + again.folded == at_or_below_hwm(h.log)
            expected = views(full_fold(h.log), h.log)
            assert expected["open"] == scan(h.log)
            for data in (first, path.read_bytes()):
                snap = decode(data, node=ME, held=h.log.high_water_marks())
                with h.log.reader() as rd:
                    folded = snap.state.fold_from(rd, snap.position)
                assert folded == h.log.count() - snap.records
                assert views(snap.state, h.log) == expected
        finally:
            h.log.close()


# -- a snapshot that fails its checks --------------------------------------------------------------

def _log_with_history(tmp: Path) -> StreetLog:
    h = StreetLog(tmp / "log")
    for origin, wall, fields in _order_flow(0, "partial", ME, T0) + _order_flow(1, "fill", ME, T0 + SEC):
        h.write(origin, wall, fields)
    return h


def test_every_broken_snapshot_is_refused_by_name(tmp_path: Path) -> None:
    h = _log_with_history(tmp_path)
    try:
        path = tmp_path / "s.snap"
        take(h.log, path, me=ME)
        good = path.read_bytes()
        held = h.log.high_water_marks()
        assert decode(good, node=ME, held=held).records == 6
        header = len(MAGIC) + 2 + 32 + 32
        flipped = bytearray(good)
        flipped[header + 10] ^= 0xFF
        cases = {
            "truncated": (good[: len(good) // 2], "checksum mismatch"),
            "corrupted": (bytes(flipped), "checksum mismatch"),
            "header only": (good[:20], "not a street snapshot"),
            "a customer's": (b"fixgw customer snapshot\n" + good[len(MAGIC):], "not a street snapshot"),
            "version": (MAGIC + (SNAPSHOT_FORMAT + 1).to_bytes(2, "big") + good[len(MAGIC) + 2:], "format 2"),
            "build": (good[:len(MAGIC) + 2] + bytes(32) + good[len(MAGIC) + 34:], "another build"),
        }
        for name, (data, why) in cases.items():
            with pytest.raises(SnapshotError, match=why):
                decode(data, node=ME, held=held)
            assert name
        with pytest.raises(SnapshotError, match="of node 'ssu1', not 'ssu2'"):
            decode(good, node=PEER, held=held)
        with pytest.raises(SnapshotError, match="beyond the log for ssu1"):
            decode(good, node=ME, held={"ssu1": 5})
        snap, why = read_file(tmp_path / "missing", node=ME, held=held)
        assert snap is None and why == ""
    finally:
        h.log.close()


def _street(node: ReplicationNode, path: Path | None) -> StreetUtility:
    return StreetUtility(node=node, node_name=ME, venues={}, peers=(PEER,), liveness=Liveness(3.0),
                         snapshot_path=path, snapshot_every=0)


async def _snapshot_of(street: StreetUtility, node: ReplicationNode, records: int) -> None:
    """Wait for the snapshot the load started: its process done, the file of ``records`` records."""
    for _ in range(400):
        if street.counters["snapshots"] == 1:
            break
        await asyncio.sleep(0.025)
    assert street.snapshot_path is not None
    snap, why = read_file(street.snapshot_path, node=ME, held=node.log.high_water_marks())
    assert snap is not None and snap.records == records, why


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "other_node", "beyond"])
async def test_load_ignores_a_broken_snapshot_says_so_and_folds_the_whole_log(
        tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture) -> None:
    h = _log_with_history(tmp_path)
    path = tmp_path / "snapshot" / "street.snap"
    take(h.log, path, me=ME)
    h.log.close()
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[:-7])
    elif damage == "corrupt":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "other_node":
        with RecordLog(tmp_path / "other", node_id=PEER, role=Role.STREET) as peer_log:
            take(peer_log, path, me=PEER)
    else:   # a snapshot of a longer log than this one (the log was replaced by an older copy)
        longer = _log_with_history(tmp_path / "longer")
        longer.write(ME, T0 + 9 * SEC, {"type": RecordType.VENUE_STATUS, "txn": "x", "status": "0"})
        take(longer.log, path, me=ME)
        longer.log.close()
    caplog.set_level(logging.WARNING, logger="utilities.street")
    async with ReplicationNode(node_id=ME, role=Role.STREET, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        street = _street(node, path)
        street.load()
        assert street.startup["snapshot"] is False and street.startup["folded"] == 6
        assert street.startup["snapshot_ignored"] and "snapshot ignored, folding the whole log" in caplog.text
        assert [txn for txn, _, _ in await street._open_orders()] == ["cfu1-0.1"]
        assert street.startup["snapshot_written"] == "later"   # a fresh one, for the next start
        await _snapshot_of(street, node, 6)


async def test_load_uses_a_good_snapshot_folds_only_the_tail_and_gives_the_full_load(tmp_path: Path) -> None:
    """Integration: a real LMDB log of 40 orders, a snapshot, 40 more orders and a few late
    records of the first ones; ``load`` from the snapshot folds only the tail and its views and
    open orders are those of a load of the whole log (and of the scan); live records after it
    keep the index what the scan gives."""
    h = StreetLog(tmp_path / "log")
    endings = ENDINGS * 6
    flows = [_order_flow(i, endings[i], (ME, PEER)[i % 2], T0 + i * SEC) for i in range(80)]
    seqs: dict[str, int] = {}
    first = _numbered([r for f in flows[:40] for r in f[:2]], seqs)
    tail = _numbered([r for f in flows[:40] for r in f[2:]] + [r for f in flows[40:] for r in f], seqs)
    # and a record of the peer held above a gap (its predecessor not here yet): the load folds it too
    late = _order_flow(99, "open", PEER, T0 + 99 * SEC)[0]
    tail.append((late[0], late[1], {**late[2], "_seq": seqs[PEER] + 2}))
    for rec in first:
        h.write(*rec)
    path = tmp_path / "snapshot" / "street.snap"
    taken = take(h.log, path, me=ME)
    for rec in tail:
        h.write(*rec)
    expected_open = scan(h.log)
    total = h.log.count()
    h.log.close()
    async with ReplicationNode(node_id=ME, role=Role.STREET, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        street = _street(node, path)
        street.load()
        assert street.startup["snapshot"] is True and street.startup["snapshot_records"] == taken.records
        assert street.startup["folded"] == total - taken.records == len(tail)
        assert street.startup["snapshot_written"] == "later"   # it folded more than half of snapshot_every (0)
        whole = _street(node, None)
        whole.load()
        assert whole.startup["folded"] == total and whole.startup["snapshot"] is False
        assert await street._open_orders() == await whole._open_orders() == expected_open
        assert expected_open and len(expected_open) < 80 and "cfu2-0.100" in {t for t, _, _ in expected_open}
        assert street.requests == whole.requests and set(street.seen_exec) == set(whole.seen_exec)
        assert street.state.sent_ids == whole.state.sent_ids
        # live: an ack of an open order and the fill that ends it, by the node (the listener)
        txn, st0, base = expected_open[0]
        assert not st0.is_terminal
        fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(base)
                  if f.name in ("account", "symbol", "side", "order_qty", "price", "cl_ord_id", "venue", "session")}
        await node.append(type=RecordType.FILL, txn=txn, status="2", exec_id="LIVE1", last_qty=Decimal(100),
                          last_px=Decimal(10), cum_qty=Decimal(100), avg_px=Decimal(10), extra={"street": ME},
                          **fields)
        assert await street._open_orders() == scan_live(node)
        assert txn not in {t for t, _, _ in await street._open_orders()} and "LIVE1" in street.seen_exec
        now = await street.write_snapshot()   # after the one the load started: the whole log now
        # the record held above the gap is left to the tail of the next start
        assert now is not None and now.records == total and street.counters["snapshots"] == 2


def scan_live(node: ReplicationNode) -> list[OpenOrder]:
    log = node.log
    assert isinstance(log, RecordLog)
    return scan(log)


async def test_txns_to_fold_again_are_folded_without_being_asked(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two venue logons nobody asks for the open orders: the txns to fold again are
    folded once there are ``SETTLE_DIRTY`` of them, so they stay bounded whatever the uptime."""
    from utilities import street as street_mod

    monkeypatch.setattr(street_mod, "SETTLE_DIRTY", 5)
    monkeypatch.setattr(street_mod, "REFOLD_ON_LOOP", 2)
    async with ReplicationNode(node_id=ME, role=Role.STREET, cluster="t", data_dir=tmp_path / "log",
                               mqtt=False) as node:
        street = _street(node, None)
        street.load()
        for i in range(12):
            for _, _, fields in _order_flow(i, ENDINGS[i], ME, T0 + i * SEC):
                await node.append(**{k: v for k, v in fields.items() if k != "_seq"})
        for _ in range(100):
            if len(street.state.open_orders.dirty) < 5 and not street._settling:
                break
            await asyncio.sleep(0.01)
        assert len(street.state.open_orders.dirty) < 5 and street.state.open_orders.open
        log = node.log
        assert isinstance(log, RecordLog)
        assert await street._open_orders() == scan(log)
