"""The status fold as it was before its optimisation (issue 15): the reference it must equal.

A verbatim copy of ``utilities/status.py``'s fold functions at commit 25a1e46 (the dataclasses
are the production ones, so results compare with ``==``). Used only by
``tests/utilities/test_fold_oracle.py``: production keeps ONE fold, this is its oracle. Do not
change it to follow the production fold; a difference is what the test exists to find.
"""

from __future__ import annotations

import decimal
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal

from fixgw.orders import OrdStatus
from replication.hlc import Hlc
from replication.record import Record, RecordKey, RecordType
from utilities.errors import InvalidValue, WrongType
from utilities.status import Fill, OrderStatus, PendingRequest

# FIX OrdStatus (39) values this fold produces (plain strings, as the records hold them).
PENDING_NEW = OrdStatus.PENDING_NEW.value
NEW = OrdStatus.NEW.value
PARTIALLY_FILLED = OrdStatus.PARTIALLY_FILLED.value
FILLED = OrdStatus.FILLED.value
CANCELED = OrdStatus.CANCELED.value
PENDING_CANCEL = OrdStatus.PENDING_CANCEL.value
REJECTED = OrdStatus.REJECTED.value
EXPIRED = OrdStatus.EXPIRED.value
PENDING_REPLACE = OrdStatus.PENDING_REPLACE.value

ORD_STATUSES = frozenset(
    {PENDING_NEW, NEW, PARTIALLY_FILLED, FILLED, CANCELED, PENDING_CANCEL, REJECTED, EXPIRED,
     PENDING_REPLACE}
)
TERMINAL_STATUSES = frozenset({FILLED, CANCELED, REJECTED, EXPIRED})

CUSTOMER_TYPES = frozenset(
    {RecordType.ORDER, RecordType.ORDER_REJECTED, RecordType.CANCEL_REQUEST,
     RecordType.REPLACE_REQUEST, RecordType.CANCEL_REJECTED_LOCAL, RecordType.ROUTED}
)
STREET_TYPES = frozenset(
    {RecordType.SENT, RecordType.CANCEL_SENT, RecordType.REPLACE_SENT, RecordType.VENUE_ACK,
     RecordType.VENUE_REJECT, RecordType.FILL, RecordType.CANCELED, RecordType.REPLACED,
     RecordType.EXPIRED, RecordType.CANCEL_REJECTED, RecordType.VENUE_STATUS,
     RecordType.TAKEOVER}
)
ORDER_FLOW_TYPES = CUSTOMER_TYPES | STREET_TYPES
"""The record types that are about an order; :func:`fold` ignores every other type."""

CANCEL = "cancel"
REPLACE = "replace"

_AVG_PX_PLACES = Decimal("1e-8")
# Sums of exact Decimals are exact (hence order-independent) only if the context never rounds.
_EXACT = decimal.Context(prec=80, rounding=decimal.ROUND_HALF_EVEN)

# Record types whose cl_ord_id / orig_cl_ord_id / order_qty / price are the order's own terms.
_ORDER_VIEW_TYPES = frozenset(
    {RecordType.ORDER_REJECTED, RecordType.ROUTED, RecordType.SENT, RecordType.VENUE_ACK,
     RecordType.VENUE_REJECT, RecordType.FILL, RecordType.EXPIRED, RecordType.VENUE_STATUS,
     RecordType.TAKEOVER}
)
# A cancel request carries the order's current quantity/price (FIX OrderQty on a cancel).
_QTY_FALLBACK_TYPES = frozenset({RecordType.CANCEL_REQUEST, RecordType.CANCEL_SENT})
_ORDER_TYPES = frozenset({RecordType.ORDER})
# the rest (replace requests and answers): used for identity fields only, as a last resort
_OTHER_TYPES = ORDER_FLOW_TYPES - _ORDER_TYPES - _ORDER_VIEW_TYPES - _QTY_FALLBACK_TYPES
_ROUTING_TYPES = frozenset(
    {RecordType.ROUTED, RecordType.SENT, RecordType.CANCEL_SENT, RecordType.REPLACE_SENT,
     RecordType.TAKEOVER}
)
_ANSWER_KINDS: Mapping[RecordType, frozenset[str]] = {
    RecordType.CANCELED: frozenset({CANCEL}),
    RecordType.REPLACED: frozenset({REPLACE}),
    RecordType.CANCEL_REJECTED: frozenset({CANCEL, REPLACE}),
    RecordType.CANCEL_REJECTED_LOCAL: frozenset({CANCEL, REPLACE}),
}
_VENUE_LIVE_STATUSES = frozenset({NEW, PARTIALLY_FILLED, PENDING_CANCEL, PENDING_REPLACE, "3", "5"})


def _order_key(r: Record) -> tuple[int, int, str, str, int]:
    """The one total order on records used for every choice: clock, then record key.

    The clock's fields are spread into the tuple (the order of :class:`Hlc`: wall, logical,
    node) so that sorting compares ints and strs in C: comparing Hlc objects calls the
    dataclass's ``__lt__`` in Python, which was a quarter of a ``fixgw log replay``."""
    h = r.hlc
    return (h.wall_ns, h.logical, h.node, r.origin, r.seq)


def fill_key(r: Record) -> str:
    """De-duplication key of a fill: its venue ``exec_id``, else ``"@origin:seq"``."""
    return r.exec_id if r.exec_id else f"@{r.origin}:{r.seq}"


def _positive(d: Decimal | None) -> Decimal | None:
    return d if d is not None and d > 0 else None


def _tidy_avg(numerator: Decimal, denominator: Decimal) -> Decimal:
    with decimal.localcontext(_EXACT):
        q = numerator / denominator
    exponent = q.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -8:  # exact enough: keep as is
        return q
    return q.quantize(_AVG_PX_PLACES, rounding=decimal.ROUND_HALF_EVEN)


def distinct_fills(records: Iterable[Record]) -> list[Fill]:
    """The distinct fills among ``records`` (FILL records of one order), sorted by clock."""
    copies: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.type is RecordType.FILL and r.last_qty is not None and r.last_qty > 0:
            copies[fill_key(r)].append(r)
    fills: list[Fill] = []
    for key, rs in copies.items():
        first = min(rs, key=_order_key)
        # largest quantity wins (a subset never counts more), then a priced copy, then earliest
        chosen = min(rs, key=lambda r: (-(r.last_qty or Decimal(0)), r.last_px is None, _order_key(r)))
        assert chosen.last_qty is not None
        fills.append(Fill(key=key, exec_id=chosen.exec_id, qty=chosen.last_qty, px=chosen.last_px,
                          hlc=first.hlc, record=chosen.key))
    fills.sort(key=lambda f: (f.hlc, f.key))
    return fills


def _pick(tiered: Sequence[Sequence[Record]], attr: str) -> object:
    """First non-empty ``attr`` in tier order, earliest record first within a tier."""
    for tier in tiered:
        for r in tier:  # each tier is sorted by _order_key
            v = getattr(r, attr)
            if v is not None and v != "":
                return v
    return None


def _tiers(recs: Sequence[Record], *tiers: frozenset[RecordType]) -> list[list[Record]]:
    return [[r for r in recs if r.type in tier] for tier in tiers]


def _str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _dec(v: object) -> Decimal | None:
    return v if isinstance(v, Decimal) else None


def _request_ids(r: Record) -> set[str]:
    ids = {r.cl_ord_id} if r.cl_ord_id else set()
    extra = r.extra.get("request_cl_ord_id")
    if isinstance(extra, str) and extra:
        ids.add(extra)
    return ids


def _pending(recs: Sequence[Record]) -> tuple[PendingRequest, ...]:
    requests = [r for r in recs if r.type in (RecordType.CANCEL_REQUEST, RecordType.REPLACE_REQUEST)]
    if not requests:
        return ()
    request_ids = {r.cl_ord_id for r in requests if r.cl_ord_id}
    answered: set[RecordKey] = set()
    for a in recs:
        kinds = _ANSWER_KINDS.get(a.type)
        if kinds is None:
            continue
        named = _request_ids(a) & request_ids
        if a.type is RecordType.REPLACED and a.orig_cl_ord_id in request_ids:
            named.add(a.orig_cl_ord_id)
        for q in requests:
            kind = CANCEL if q.type is RecordType.CANCEL_REQUEST else REPLACE
            if named:
                if q.cl_ord_id in named:  # named explicitly: answered whatever the kind
                    answered.add(q.key)
            elif kind in kinds and q.hlc < a.hlc:
                answered.add(q.key)
    out = []
    for q in requests:
        if q.key in answered:
            continue
        kind = CANCEL if q.type is RecordType.CANCEL_REQUEST else REPLACE
        out.append(PendingRequest(kind=kind, cl_ord_id=q.cl_ord_id, orig_cl_ord_id=q.orig_cl_ord_id,
                                  hlc=q.hlc, record=q.key,
                                  order_qty=q.order_qty if kind == REPLACE else None,
                                  price=q.price if kind == REPLACE else None))
    return tuple(out)


def _street(recs: Sequence[Record]) -> str:
    for r in reversed(recs):
        if r.type in _ROUTING_TYPES:
            s = r.extra.get("street")
            if isinstance(s, str) and s:
                return s
            if r.type in STREET_TYPES:
                return r.origin
    for r in reversed(recs):
        if r.type in STREET_TYPES:
            return r.origin
    return ""


def fold(records: Iterable[Record]) -> OrderStatus | None:
    """The status of ONE order from any subset of its records, in any order, with duplicates.

    Returns None when no order-flow record is given. Raises ValueError if the records belong to
    more than one ``txn`` (use :func:`fold_all` to fold a mixed collection).
    """
    by_key: dict[tuple[str, int], Record] = {}
    txns: set[str] = set()
    for r in records:
        if not isinstance(r, Record):
            raise WrongType(f"fold() takes Record values, got {type(r).__name__}")
        if r.type not in ORDER_FLOW_TYPES:
            continue
        txns.add(r.txn)
        # same key = same record; keep a deterministic copy if a broken writer reused a key
        k = (r.origin, r.seq)
        prev = by_key.get(k)
        if prev is None or (prev is not r and repr(r) < repr(prev)):
            by_key[k] = r
    if not by_key:
        return None
    if len(txns) > 1:
        raise InvalidValue(f"fold() got records of several orders: txns {sorted(txns)}")
    txn = txns.pop()
    recs = sorted(by_key.values(), key=_order_key)
    return _fold_sorted(txn, recs)


def fold_all(records: Iterable[Record]) -> dict[str, OrderStatus]:
    """Fold a mixed collection: ``{txn: status}`` for every txn with order-flow records.

    Records with an empty ``txn`` cannot be attributed to an order and are skipped.
    """
    groups: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r.type in ORDER_FLOW_TYPES and r.txn:
            groups[r.txn].append(r)
    out: dict[str, OrderStatus] = {}
    for txn in sorted(groups):
        st = fold(groups[txn])
        assert st is not None
        out[txn] = st
    return out


def _fold_sorted(txn: str, recs: list[Record]) -> OrderStatus:
    types = {r.type for r in recs}
    orders, views, qty_fallback, others = _tiers(
        recs, _ORDER_TYPES, _ORDER_VIEW_TYPES, _QTY_FALLBACK_TYPES, _OTHER_TYPES)
    ident_tiers = (orders, views, qty_fallback, others)
    term_tiers = (orders, views)
    qty_tiers = (orders, views, qty_fallback)

    account = _str(_pick(ident_tiers, "account"))
    symbol = _str(_pick(ident_tiers, "symbol"))
    side = _str(_pick(ident_tiers, "side"))
    venue = _str(_pick(ident_tiers, "venue"))
    session = _str(_pick(ident_tiers, "session"))
    ord_type = _str(_pick(qty_tiers, "ord_type"))
    tif = _str(_pick(qty_tiers, "tif"))
    cl_ord_id = _str(_pick(term_tiers, "cl_ord_id"))
    orig_cl_ord_id = _str(_pick(term_tiers, "orig_cl_ord_id"))
    order_qty = _positive(_dec(_pick(qty_tiers, "order_qty")))
    cash_order_qty = _positive(_dec(_pick(qty_tiers, "cash_order_qty")))
    price = _dec(_pick(qty_tiers, "price"))
    if not cl_ord_id:
        # only requests held: a request's OrigClOrdID is the order's ClOrdID
        requests = [r for r in recs if r.type in (RecordType.CANCEL_REQUEST, RecordType.REPLACE_REQUEST)]
        cl_ord_id = _str(_pick((requests,), "orig_cl_ord_id"))

    # a confirmed replace changes the terms; the latest one wins
    replaced = [r for r in recs if r.type is RecordType.REPLACED]
    replaced_hlc: Hlc | None = None
    if replaced:
        rep = replaced[-1]
        replaced_hlc = rep.hlc
        req = next((r for r in recs if r.type is RecordType.REPLACE_REQUEST and rep.cl_ord_id
                    and r.cl_ord_id == rep.cl_ord_id), None)

        def term(attr: str) -> object:
            v = getattr(rep, attr)
            if (v is None or v == "") and req is not None:
                v = getattr(req, attr)
            return v

        order_qty = _positive(_dec(term("order_qty"))) or order_qty
        new_cash = _positive(_dec(term("cash_order_qty")))
        cash_order_qty = new_cash or cash_order_qty
        new_price = _dec(term("price"))
        price = new_price if new_price is not None else price
        cl_ord_id = _str(term("cl_ord_id")) or cl_ord_id
        orig_cl_ord_id = _str(term("orig_cl_ord_id")) or orig_cl_ord_id
        ord_type = _str(term("ord_type")) or ord_type
        tif = _str(term("tif")) or tif

    # quantities
    fills = distinct_fills(recs)
    fill_sum = sum((f.qty for f in fills), Decimal(0))
    # venue-side records that report a CumQty, or (cash orders) say the order is filled
    reports = [r for r in recs if r.type in STREET_TYPES and (
        (r.cum_qty is not None and r.cum_qty > 0)
        or (r.status == FILLED and r.type in (RecordType.FILL, RecordType.VENUE_STATUS)))]
    best_report = max((r for r in reports if r.cum_qty is not None and r.cum_qty > 0), key=lambda r: (r.cum_qty, r.avg_px is not None, _order_key(r)),
                      default=None)
    reported_cum = best_report.cum_qty if best_report is not None and best_report.cum_qty else Decimal(0)
    cum_qty = max(fill_sum, reported_cum)
    priced = [f for f in fills if f.px is not None]
    with decimal.localcontext(_EXACT):
        priced_qty = sum((f.qty for f in priced), Decimal(0))
        notional = sum((f.qty * f.px for f in priced if f.px is not None), Decimal(0))
    if best_report is not None and reported_cum > fill_sum and best_report.avg_px is not None:
        avg_px = best_report.avg_px
    elif priced_qty > 0:
        avg_px = _tidy_avg(notional, priced_qty)
    elif best_report is not None and best_report.avg_px is not None:
        avg_px = best_report.avg_px
    else:
        avg_px = Decimal(0)
    if avg_px < 0:
        avg_px = Decimal(0)

    # when (if ever) the order became completely filled
    filled_hlc = _filled_at(fills, reports, order_qty, cash_order_qty, replaced_hlc)

    # terminal candidates: (clock, rank, status, text)
    candidates: list[tuple[Hlc, int, str, str]] = []
    if filled_hlc is not None:
        candidates.append((filled_hlc, 0, FILLED, ""))
    for r in recs:
        if r.type is RecordType.CANCELED or (r.type is RecordType.VENUE_STATUS and r.status == CANCELED):
            candidates.append((r.hlc, 1, CANCELED, r.text))
        elif r.type is RecordType.EXPIRED or (r.type is RecordType.VENUE_STATUS and r.status == EXPIRED):
            candidates.append((r.hlc, 2, EXPIRED, r.text))
        elif cum_qty == 0 and (r.type in (RecordType.ORDER_REJECTED, RecordType.VENUE_REJECT)
                               or (r.type is RecordType.VENUE_STATUS and r.status == REJECTED)):
            candidates.append((r.hlc, 3, REJECTED, r.text))
    pending = _pending(recs)
    text = ""
    terminal_hlc: Hlc | None = None
    if candidates:
        terminal_hlc, _, ord_status, text = min(candidates, key=lambda c: (c[0], c[1]))
    elif any(p.kind == CANCEL for p in pending):
        ord_status = PENDING_CANCEL
    elif pending:
        ord_status = PENDING_REPLACE
    elif cum_qty > 0:
        ord_status = PARTIALLY_FILLED
    elif (RecordType.VENUE_ACK in types or RecordType.REPLACED in types
          or any(r.type is RecordType.VENUE_STATUS and r.status in _VENUE_LIVE_STATUSES for r in recs)):
        ord_status = NEW
    else:
        ord_status = PENDING_NEW

    if terminal_hlc is not None or order_qty is None:
        leaves_qty = Decimal(0)
    else:
        leaves_qty = max(order_qty - cum_qty, Decimal(0))

    last = fills[-1] if fills else None
    cl_ord_ids = frozenset(x for r in recs for x in (r.cl_ord_id, r.orig_cl_ord_id) if x)
    venue_order_id = next((r.venue_order_id for r in reversed(recs) if r.venue_order_id), "")
    return OrderStatus(
        txn=txn, ord_status=ord_status, cum_qty=cum_qty, leaves_qty=leaves_qty, avg_px=avg_px,
        order_qty=order_qty, cash_order_qty=cash_order_qty, price=price,
        cl_ord_id=cl_ord_id, orig_cl_ord_id=orig_cl_ord_id, cl_ord_ids=cl_ord_ids,
        account=account, symbol=symbol, side=side, ord_type=ord_type, tif=tif, venue=venue,
        session=session, venue_order_id=venue_order_id,
        last_qty=last.qty if last is not None else Decimal(0),
        last_px=last.px if last is not None and last.px is not None else Decimal(0),
        exec_ids=frozenset(f.key for f in fills), fills=tuple(fills), pending=pending,
        last_hlc=recs[-1].hlc, terminal_hlc=terminal_hlc, street=_street(recs), text=text,
        record_count=len(recs),
    )


def _filled_at(fills: Sequence[Fill], reports: Sequence[Record], order_qty: Decimal | None,
               cash_order_qty: Decimal | None, replaced_hlc: Hlc | None) -> Hlc | None:
    """First clock at which what we knew said the order was complete, or None.

    Walks the distinct fills and the venue-side reports in clock order; the answer is consistent
    with the final CumQty because both use the same fills and reports.
    """
    # (clock, tie-break, fill qty to add, reported cum, notional to add, venue says filled)
    events: list[tuple[Hlc, str, Decimal, Decimal, Decimal, bool]] = []
    with decimal.localcontext(_EXACT):
        for f in fills:
            events.append((f.hlc, f.key, f.qty, Decimal(0),
                           f.qty * f.px if f.px is not None else Decimal(0), False))
        for r in reports:
            says_filled = r.status == FILLED and r.type in (RecordType.FILL, RecordType.VENUE_STATUS)
            events.append((r.hlc, f"@{r.origin}:{r.seq}", Decimal(0), r.cum_qty or Decimal(0),
                           Decimal(0), says_filled))
        events.sort(key=lambda e: (e[0], e[1]))
        fill_sum = Decimal(0)
        reported = Decimal(0)
        notional = Decimal(0)
        for hlc, _, add, rep, add_notional, says_filled in events:
            fill_sum += add
            reported = max(reported, rep)
            notional += add_notional
            if order_qty is not None:
                done = max(fill_sum, reported) >= order_qty
            else:
                done = says_filled or (cash_order_qty is not None and notional >= cash_order_qty)
            if done:
                # a replace that lowered the quantity completes the order when it is confirmed
                if replaced_hlc is not None and order_qty is not None and replaced_hlc > hlc:
                    return replaced_hlc
                return hlc
    return None
