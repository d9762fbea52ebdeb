"""Market-data messages: MarketDataRequest (V) read into an :class:`MdRequest`, and the one
builder of each answer: MarketDataSnapshotFullRefresh (W), MarketDataIncrementalRefresh (X),
MarketDataRequestReject (Y), in FIX 4.2 or 4.4.

The venues (``venues.marketdata``) and the customer utilities serve the same messages, so the
builders live here, next to the enums of :mod:`fixgw.mdcodes`. What differs between the two
versions and matters to a validating peer: FIX 4.2's W requires MDEntryPx in every entry
(every entry served here has a price); FIX 4.2 and 4.4 both carry Symbol (55) inside each X
entry (4.4 through the Instrument component). Fields are written in dictionary order.
Every built message passes QuickFIX's FIX42.xml / FIX44.xml (tests/venues/test_marketdata*).

A street utility is a client of the venue's market data: :func:`read_entries` reads the
NoMDEntries group of a W or an X it receives (the reader of what the builders here write).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from fixgw.errors import IncorrectDataFormat, IncorrectTagValue
from fixgw.mdcodes import MDEntryType, MDReqRejReason, MDUpdateAction, SubscriptionRequestType
from fixgw.message import Message

__all__ = ["MdEntry", "MdRequest", "incremental_refresh", "md_reject", "md_request", "parse_md_request",
           "read_entries", "refresh_group", "snapshot"]


@dataclass(frozen=True, slots=True)
class MdEntry:
    """One market-data entry: a price level (bid/offer: ``size`` is the level's total) or
    a trade. ``action`` is set in incremental refreshes only; ``symbol`` names the
    instrument (X carries it per entry)."""

    entry_type: MDEntryType
    price: Decimal
    size: Decimal
    symbol: str = ""
    action: MDUpdateAction | None = None


@dataclass(frozen=True, slots=True)
class MdRequest:
    """A MarketDataRequest as sent: ``entry_types`` are the raw MDEntryType values (one the
    server does not serve is its to refuse); ``depth`` 0 is the full book; ``update_type``
    is MDUpdateType (265) if present."""

    req_id: str
    kind: SubscriptionRequestType
    depth: int
    entry_types: tuple[str, ...]
    symbols: tuple[str, ...]
    update_type: str | None = None


def parse_md_request(msg: Message) -> MdRequest:
    """Read a V (already checked against the dictionary). Raises IncorrectTagValue /
    IncorrectDataFormat for values the dictionary lets through but that make no request."""
    req_id = msg.get_str(262) or ""
    if not req_id:
        raise IncorrectTagValue(262)
    try:
        kind = SubscriptionRequestType(msg.get_str(263) or "")
    except ValueError:
        raise IncorrectTagValue(263) from None
    try:
        depth = msg.get_int(264, 0) or 0
    except ValueError:
        raise IncorrectDataFormat(264) from None
    if depth < 0:
        raise IncorrectTagValue(264)
    types = tuple(v.decode("latin-1") for v in msg.get_all(269))
    symbols = tuple(dict.fromkeys(v.decode("latin-1") for v in msg.get_all(55)))
    return MdRequest(req_id, kind, depth, types, symbols, msg.get_str(265))


def read_entries(msg: Message) -> list[MdEntry]:
    """The entries of a W (symbol from 55 before the group) or an X (symbol per entry), in order.
    An entry of a type outside :class:`MDEntryType`, or without a price, is skipped (this
    project serves only bid, offer and trade, each with a price). Raises IncorrectDataFormat
    for a price or size that is not a number."""
    out: list[MdEntry] = []
    top_symbol = ""
    in_group = False
    cur: dict[int, bytes] = {}

    def close() -> None:
        if not cur:
            return
        try:
            kind = MDEntryType(cur.get(269, b"").decode("latin-1"))
        except ValueError:
            return
        raw_px = cur.get(270)
        if raw_px is None:
            return
        try:
            px, size = Decimal(raw_px.decode()), Decimal((cur.get(271) or b"0").decode())
        except ArithmeticError:
            raise IncorrectDataFormat(270) from None
        action = None
        if 279 in cur:
            try:
                action = MDUpdateAction(cur[279].decode("latin-1"))
            except ValueError:
                return
        symbol = cur[55].decode("latin-1") if 55 in cur else top_symbol
        out.append(MdEntry(kind, px, size, symbol, action))

    delim = 0  # the group's first tag (279 in an X, 269 in a W) starts each entry
    for tag, value in msg.fields:
        if tag == 268:
            in_group = True
            continue
        if not in_group:
            if tag == 55:
                top_symbol = value.decode("latin-1")
            continue
        if tag == 10:
            break
        if not delim:
            delim = tag
        elif tag == delim:
            close()
            cur = {}
        cur.setdefault(tag, value)
    close()
    return out


def md_request(req_id: str, kind: SubscriptionRequestType, symbols: Sequence[str],
               entry_types: Sequence[MDEntryType] = tuple(MDEntryType), depth: int = 0) -> Message:
    """A MarketDataRequest (V) as a client sends it (incremental updates when subscribing)."""
    fields: list[tuple[int, object]] = [(262, req_id), (263, kind.value), (264, depth)]
    if kind is SubscriptionRequestType.SNAPSHOT_AND_UPDATES:
        fields.append((265, "1"))
    fields.append((267, len(entry_types)))
    fields += [(269, t.value) for t in entry_types]
    fields.append((146, len(symbols)))
    fields += [(55, s) for s in symbols]
    return Message.new("V", fields)


def _num(value: Decimal) -> str:
    """A Decimal as FIX writes it: no exponent, no trailing zeros after the point."""
    text = f"{value:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def snapshot(req_id: str, symbol: str, entries: Sequence[MdEntry]) -> Message:
    """MarketDataSnapshotFullRefresh (W) of one symbol (same shape in FIX 4.2 and 4.4)."""
    fields: list[tuple[int, object]] = [(262, req_id), (55, symbol), (268, len(entries))]
    for e in entries:
        fields += [(269, e.entry_type.value), (270, _num(e.price)), (271, _num(e.size))]
    return Message.new("W", fields)


def refresh_group(entries: Sequence[MdEntry]) -> list[tuple[int, bytes]]:
    """The NoMDEntries group of an X, encoded: a server that sends the same changes to many
    subscribers encodes them once and passes the result to :func:`incremental_refresh`
    (10 subscribers: encoding once cut the venue's CPU per book change by about half)."""
    fields = [(268, str(len(entries)).encode())]
    for e in entries:
        action = e.action or MDUpdateAction.NEW
        fields += [(279, action.value.encode()), (269, e.entry_type.value.encode()), (55, e.symbol.encode()),
                   (270, _num(e.price).encode()), (271, _num(e.size).encode())]
    return fields


def incremental_refresh(req_id: str, entries: Sequence[MdEntry],
                        group: list[tuple[int, bytes]] | None = None) -> Message:
    """MarketDataIncrementalRefresh (X): each entry has its action and symbol; a deleted
    level carries its price (the key a client's book uses) and size 0. ``group`` is
    ``refresh_group(entries)`` when the caller has it already."""
    msg = Message.new("X", [(262, req_id)])
    msg.fields += refresh_group(entries) if group is None else group
    return msg


def md_reject(req_id: str, reason: MDReqRejReason | None, text: str) -> Message:
    """MarketDataRequestReject (Y); ``reason`` None when no MDReqRejReason fits (e.g. an
    unsubscribe of an unknown MDReqID)."""
    fields: list[tuple[int, object]] = [(262, req_id)]
    if reason is not None:
        fields.append((281, reason.value))
    fields.append((58, text))
    return Message.new("Y", fields)
