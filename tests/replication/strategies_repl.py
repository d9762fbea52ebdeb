"""Hypothesis strategies for records (shared by the replication tests)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from replication.hlc import Hlc
from replication.record import Record, RecordType

node_ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=12)
decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None).map(lambda d: Decimal(str(d)))
opt_decimals = st.none() | decimals
texts = st.text(max_size=30)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | texts | decimals
hlcs = st.builds(Hlc, st.integers(0, 2**63), st.integers(0, 2**32), node_ids)


@st.composite
def records(draw: st.DrawFn, origin: str | None = None, seq: int | None = None) -> Record:
    return Record(
        origin=origin if origin is not None else draw(node_ids),
        seq=seq if seq is not None else draw(st.integers(1, 2**40)),
        txn=draw(st.text(max_size=40)),
        type=draw(st.sampled_from(list(RecordType))),
        status=draw(texts),
        hlc=draw(hlcs),
        account=draw(texts),
        symbol=draw(texts),
        side=draw(st.sampled_from(["", "1", "2"])),
        order_qty=draw(opt_decimals),
        cash_order_qty=draw(opt_decimals),
        price=draw(opt_decimals),
        ord_type=draw(texts),
        tif=draw(texts),
        cl_ord_id=draw(texts),
        orig_cl_ord_id=draw(texts),
        venue=draw(texts),
        session=draw(texts),
        venue_order_id=draw(texts),
        exec_id=draw(texts),
        last_qty=draw(opt_decimals),
        last_px=draw(opt_decimals),
        cum_qty=draw(opt_decimals),
        avg_px=draw(opt_decimals),
        text=draw(texts),
        extra=draw(st.dictionaries(st.text(max_size=10), scalars, max_size=4)),
    )
