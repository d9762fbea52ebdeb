"""``venues.audit``: a venue's journal (real LMDB in a tmp dir) replayed into what the venue did --
each NewOrderSingle (PossDup or not, accepted or not) and each fill of a client order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from fixgw.orders import OrdType, Side, TimeInForce
from venues.audit import audit_journal
from venues.commands import QueryStatus, SubmitOrder
from venues.journal import VenueJournal, command_record, to_micros
from venues.venue_config import DEFAULT_VENUE_CONFIG

NY = ZoneInfo("America/New_York")
MORNING = datetime(2024, 3, 6, 10, 0, tzinfo=NY)  # a Wednesday, far from 16:00
SESSION = ("FIX.4.4", "EXCH", "FIXGW-SSU1")


def _buy(cid: str, px: Decimal) -> SubmitOrder:
    return SubmitOrder("FIXGW", cid, "AAPL", Side.BUY, Decimal(100), OrdType.LIMIT, px, TimeInForce.DAY, None, "ACC1")


def test_audit_counts_new_orders_and_fills_from_the_journal(tmp_path: Path) -> None:
    ref = DEFAULT_VENUE_CONFIG.listing("exchange")["AAPL"]
    crossing = (ref * Decimal("1.05")).quantize(Decimal("0.01"))   # takes the market maker's offers
    resting = (ref * Decimal("0.5")).quantize(Decimal("0.01"))     # far below: rests
    j = VenueJournal(tmp_path / "journal", sync=False)
    t = to_micros(MORNING)
    j.append(["S", t])
    rows: list[tuple[str, bool, SubmitOrder | QueryStatus]] = [
        ("D", False, _buy("t1", crossing)),       # accepted, filled
        ("D", False, _buy("t1", crossing)),       # the same ClOrdID again, no PossDup: rejected (103=6)
        ("D", True, _buy("t1", crossing)),        # PossDup of a known order: a status answer, no order
        ("D", True, _buy("t2", resting)),         # PossDup of an order the venue never had: a new order
        ("H", False, QueryStatus("FIXGW", "t2", "AAPL", Side.BUY)),
    ]
    for i, (kind, possdup, cmd) in enumerate(rows, 1):
        extra: tuple[object, ...] = ("ACC1", possdup) if kind == "D" else ("ACC1", None)
        j.append(command_record(kind, datetime.fromtimestamp((t + i * 1000) / 1e6, tz=NY), SESSION, extra, cmd))
    j.close()

    audit = audit_journal(tmp_path / "journal", "exchange", DEFAULT_VENUE_CONFIG)
    assert audit.commands == 5
    seen = [(o.firm, o.cl_ord_id, o.possdup, o.accepted) for o in audit.new_orders]
    assert seen == [("FIXGW", "t1", False, True), ("FIXGW", "t1", False, False), ("FIXGW", "t1", True, False),
                    ("FIXGW", "t2", True, True)]
    # only the client's fills (not the market maker's side), and all of t1's 100
    assert audit.fills and {f.firm for f in audit.fills} == {"FIXGW"} and {f.cl_ord_id for f in audit.fills} == {"t1"}
    assert sum(f.qty for f in audit.fills) == 100
    assert all(f.px <= crossing for f in audit.fills)
    assert len({f.exec_id for f in audit.fills}) == len(audit.fills)
    # each accepted order's state at the end: t1 filled, t2 resting
    assert audit.final == {("FIXGW", "t1"): ("2", Decimal(100)), ("FIXGW", "t2"): ("0", Decimal(0))}


def test_audit_of_an_empty_journal(tmp_path: Path) -> None:
    VenueJournal(tmp_path / "journal", sync=False).close()
    audit = audit_journal(tmp_path / "journal", "fund", DEFAULT_VENUE_CONFIG)
    assert audit.new_orders == [] and audit.fills == [] and audit.commands == 0 and audit.final == {}
