"""Market data on the bus: what a street utility publishes on ``quote/<street>`` and what a
customer utility publishes on ``mdwant/<customer>`` (topic names: :class:`replication.wire.Topics`).

Quotes are not records: they are never written to the LMDB log, never replicated to the
firm, never caught up. A lost quote message is repaired, not replayed: every message carries
the street's own sequence number, a customer utility that sees a gap asks for a fresh
snapshot of the symbols that street serves it (``refresh`` in its next interest message), and
the street answers with a full book. Hence QoS 0 both ways (a QoS 1 subscription would make
the broker queue quotes for a customer utility that is away, quotes nobody will want).

Payloads are msgpack arrays that start like every bus message (:mod:`replication.wire`)::

    [1, "M", street, seq, [[symbol, kind, [[type, price, size, action], ...], text], ...]]
    [1, "I", customer, [symbol, ...], [symbol to refresh, ...]]

``kind`` is ``S`` (a full book: the entries replace what the receiver holds), ``I`` (an
incremental change, ``action`` per entry as FIX's MDUpdateAction) or ``R`` (the venue refused
the symbol: ``text`` says why). Prices and sizes are decimal strings. Decoding anything
malformed raises ValueError (and nothing else).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import cast

import msgpack

from fixgw.mdcodes import MDEntryType, MDUpdateAction
from fixgw.mdmessages import MdEntry

WIRE_VERSION = 1


class QuoteKind(StrEnum):
    SNAPSHOT = "S"
    INCREMENTAL = "I"
    REFUSED = "R"


@dataclass(frozen=True, slots=True)
class QuoteItem:
    symbol: str
    kind: QuoteKind
    entries: tuple[MdEntry, ...] = ()
    text: str = ""


@dataclass(frozen=True, slots=True)
class Quotes:
    """One publish of a street utility: its items of one event-loop turn."""

    street: str
    seq: int
    items: tuple[QuoteItem, ...]


@dataclass(frozen=True, slots=True)
class Interest:
    """The symbols ``customer`` has subscribers for, and those it needs a full book of."""

    customer: str
    symbols: frozenset[str]
    refresh: frozenset[str] = frozenset()


def _num(d: Decimal) -> str:
    return format(d, "f")


def encode_quotes(q: Quotes) -> bytes:
    items = [[i.symbol, i.kind.value,
              [[e.entry_type.value, _num(e.price), _num(e.size), e.action.value if e.action else ""]
               for e in i.entries], i.text]
             for i in q.items]
    return cast(bytes, msgpack.packb([WIRE_VERSION, "M", q.street, q.seq, items], use_bin_type=True))


def encode_interest(i: Interest) -> bytes:
    return cast(bytes, msgpack.packb([WIRE_VERSION, "I", i.customer, sorted(i.symbols), sorted(i.refresh)],
                                     use_bin_type=True))


def _load(payload: bytes, kind: str, n: int) -> list[object]:
    try:
        obj = msgpack.unpackb(payload, raw=False)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types; all mean malformed
        raise ValueError(f"not msgpack: {type(exc).__name__}") from None
    if type(obj) is not list or len(obj) != n or obj[0] != WIRE_VERSION or obj[1] != kind:
        raise ValueError(f"not a version {WIRE_VERSION} {kind!r} message")
    return obj


def _str(v: object, what: str) -> str:
    if type(v) is not str:
        raise ValueError(f"{what} must be a string, got {v!r:.40}")
    return v


def _strs(v: object, what: str) -> frozenset[str]:
    if type(v) is not list:
        raise ValueError(f"{what} must be a list")
    return frozenset(_str(s, what) for s in v)


def _entry(raw: object, symbol: str) -> MdEntry:
    if type(raw) is not list or len(raw) != 4:
        raise ValueError("an entry must be [type, price, size, action]")
    t, px, size, action = (_str(x, "entry field") for x in raw)
    try:
        return MdEntry(MDEntryType(t), Decimal(px), Decimal(size), symbol, MDUpdateAction(action) if action else None)
    except (ValueError, InvalidOperation):
        raise ValueError(f"bad entry {raw!r:.60}") from None


def decode_quotes(payload: bytes) -> Quotes:
    obj = _load(payload, "M", 5)
    street, seq, raw_items = _str(obj[2], "street"), obj[3], obj[4]
    if type(seq) is not int or seq < 1 or type(raw_items) is not list:
        raise ValueError("bad quotes header")
    items = []
    for it in raw_items:
        if type(it) is not list or len(it) != 4 or type(it[2]) is not list:
            raise ValueError("an item must be [symbol, kind, entries, text]")
        symbol = _str(it[0], "symbol")
        try:
            kind = QuoteKind(_str(it[1], "kind"))
        except ValueError:
            raise ValueError(f"unknown quote kind {it[1]!r:.10}") from None
        items.append(QuoteItem(symbol, kind, tuple(_entry(e, symbol) for e in it[2]), _str(it[3], "text")))
    return Quotes(street, seq, tuple(items))


def decode_interest(payload: bytes) -> Interest:
    obj = _load(payload, "I", 5)
    return Interest(_str(obj[2], "customer"), _strs(obj[3], "symbols"), _strs(obj[4], "refresh"))


__all__ = ["Interest", "QuoteItem", "QuoteKind", "Quotes", "decode_interest",
           "decode_quotes", "encode_interest", "encode_quotes"]
