"""Record builders for the status-fold and books tests (plain functions, no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from replication.hlc import Hlc
from replication.record import Record, RecordType, Scalar

# 2024-03-05 15:00:00 UTC = 10:00 New York (EST): a Tuesday
T0 = 1_709_650_800_000_000_000
SECOND = 1_000_000_000

ORDER_TERMS: dict[str, Any] = {
    "account": "ACC1", "symbol": "AAPL", "side": "1", "order_qty": Decimal(100), "price": Decimal("10.00"),
    "ord_type": "2", "tif": "0", "cl_ord_id": "C1", "venue": "exchange", "session": "CLIENT1",
}

_seqs: dict[str, int] = {}


def rec(
    type_: RecordType,
    at: float,
    *,
    origin: str = "",
    seq: int | None = None,
    txn: str = "cfu1-0.1",
    logical: int = 0,
    status: str = "",
    terms: bool = True,
    extra: Mapping[str, Scalar] | None = None,
    **fields: Any,
) -> Record:
    """A record of ``type_`` stamped ``at`` seconds after T0, carrying the order's terms.

    ``origin`` defaults to cfu1 for customer-side types and ssu1 for street-side ones; ``seq``
    defaults to a fresh number per origin so keys never collide by accident.
    """
    if not origin:
        origin = "cfu1" if type_ in _CUSTOMER else ("firm" if type_ in _FIRM else "ssu1")
    if seq is None:
        seq = _seqs.get(origin, 0) + 1
        _seqs[origin] = seq
    body: dict[str, Any] = dict(ORDER_TERMS) if terms else {}
    body.update(fields)
    return Record(origin=origin, seq=seq, txn=txn, type=type_, status=status,
                  hlc=Hlc(T0 + int(at * SECOND), logical, origin), extra=dict(extra or {}), **body)


_CUSTOMER = {RecordType.ORDER, RecordType.ORDER_REJECTED, RecordType.CANCEL_REQUEST,
             RecordType.REPLACE_REQUEST, RecordType.CANCEL_REJECTED_LOCAL, RecordType.ROUTED}
_FIRM = {RecordType.ACCOUNT, RecordType.POSITION, RecordType.BUYING_POWER, RecordType.SETTLED,
         RecordType.END_OF_DAY}


def fill(at: float, qty: int | str, px: str, exec_id: str, **kw: Any) -> Record:
    return rec(RecordType.FILL, at, last_qty=Decimal(qty), last_px=Decimal(px), exec_id=exec_id, **kw)
