"""What a venue did, read back from its journal: every NewOrderSingle it applied, every fill, and
each client order's status at the end.

``fixgw chaos`` asks the venue itself whether an order reached it twice and which fills it made,
to compare with the brokerage's records. Why the journal and not the venue's FIX message log:
the log is written by a background thread every ~200 ms and never fsynced (``fixgw.fixlog``),
so a SIGKILLed venue loses its last lines -- at a few hundred orders a second, a few dozen
reports that did reach the street, which would show as fills the venue "never made". The
journal holds every command before the venue applies it (``venues.journal``), and the venue
is deterministic given its commands and their instants, so replaying the journal through a
fresh venue gives back exactly the events it emitted, in process, without sending anything.

The replay follows ``VenueApplication.apply_submit`` and ``VenueApplication.replay``: a
NewOrderSingle flagged PossDup/PossResend is first a status query (no second order when the
venue has it), anything else is submitted. Open the journal of a stopped venue (LMDB allows a
reader next to a running one, but the cluster is stopped before the audit anyway).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fixgw.orders import OrdStatus
from venues.clock import SystemClock
from venues.commands import CancelOrder, QueryStatus, ReplaceOrder, SubmitOrder
from venues.events import NO_ORDER_ID, OrderAccepted, OrderFilled, OrderStatusReport, VenueEvent
from venues.fix_acceptor import VenueKind, build_venue
from venues.journal import JournalClock, VenueJournal, decode_command, from_micros
from venues.venue_config import VenueConfig


@dataclass(frozen=True, slots=True)
class NewOrderSeen:
    """One NewOrderSingle the venue applied: the firm, its ClOrdID, whether it was flagged a
    possible resend, and whether the venue accepted it as a new order."""

    firm: str
    cl_ord_id: str
    possdup: bool
    accepted: bool


@dataclass(frozen=True, slots=True)
class FillSeen:
    """One execution of a client order at the venue."""

    firm: str
    cl_ord_id: str
    exec_id: str
    qty: Decimal
    px: Decimal


@dataclass(slots=True)
class JournalAudit:
    new_orders: list[NewOrderSeen] = field(default_factory=list)
    fills: list[FillSeen] = field(default_factory=list)
    commands: int = 0
    # (firm, ClOrdID) -> (OrdStatus, CumQty) of each client order at the end of the journal
    final: dict[tuple[str, str], tuple[str, Decimal]] = field(default_factory=dict)


def _fills(events: Iterable[VenueEvent], firms: set[str], into: list[FillSeen]) -> None:
    for e in events:
        if isinstance(e, OrderFilled) and e.owner in firms:
            into.append(FillSeen(e.owner, e.cl_ord_id, e.exec_id, e.last_qty, e.last_px))


def audit_records(records: Iterable[list[Any]], kind: VenueKind, config: VenueConfig) -> JournalAudit:
    """Replay journal ``records`` (the start record first) through a fresh venue."""
    out = JournalAudit()
    it = iter(records)
    first = next(it, None)
    if first is None:
        return out
    clock = JournalClock(SystemClock())
    clock.pin(from_micros(first[1]))
    venue = build_venue(kind, config, clock)
    firms: set[str] = set()   # the clients' firms (the market maker is not one of them)
    submitted: dict[tuple[str, str], SubmitOrder] = {}
    for rec in it:
        clock.pin(from_micros(rec[1]))
        k = rec[0]
        if k == "T":
            _fills(venue.tick(), firms, out.fills)
            out.commands += 1
            continue
        if k not in ("D", "F", "G", "H"):
            continue
        out.commands += 1
        cmd = decode_command(k, rec[-1])
        firms.add(cmd.owner)
        if isinstance(cmd, SubmitOrder):
            submitted.setdefault((cmd.owner, cmd.cl_ord_id), cmd)
            possdup = bool(rec[4])
            if possdup:
                asked = venue.status(QueryStatus(cmd.owner, cmd.cl_ord_id, cmd.symbol, cmd.side))
                _fills(asked, firms, out.fills)   # time-driven events due before the answer
                known = asked[-1]
                if not (known.ord_status is OrdStatus.REJECTED and known.order_id == NO_ORDER_ID):
                    out.new_orders.append(NewOrderSeen(cmd.owner, cmd.cl_ord_id, True, False))
                    continue
            events = venue.submit(cmd)
            accepted = any(isinstance(e, OrderAccepted) and e.owner == cmd.owner and e.cl_ord_id == cmd.cl_ord_id
                           for e in events)
            out.new_orders.append(NewOrderSeen(cmd.owner, cmd.cl_ord_id, possdup, accepted))
        elif isinstance(cmd, CancelOrder):
            events = venue.cancel(cmd)
        elif isinstance(cmd, ReplaceOrder):
            events = venue.replace(cmd)
        else:
            assert isinstance(cmd, QueryStatus)
            events = venue.status(cmd)
        _fills(events, firms, out.fills)
    for (firm, cid), cmd in submitted.items():
        last = venue.status(QueryStatus(firm, cid, cmd.symbol, cmd.side))[-1]
        if isinstance(last, OrderStatusReport) and last.order_id != NO_ORDER_ID:   # one it accepted
            out.final[(firm, cid)] = (last.ord_status.value, last.cum_qty)
    return out


def audit_journal(path: Path, kind: VenueKind, config: VenueConfig) -> JournalAudit:
    """The audit of the journal at ``path`` (a venue's ``--data`` directory's ``journal``)."""
    journal = VenueJournal(path, sync=False)
    try:
        return audit_records(journal.records(), kind, config)
    finally:
        journal.close()
