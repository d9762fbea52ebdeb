"""The optimised status fold equals the fold as it was before (issue 15), over random record sets.

The oracle is ``tests/utilities/fold_oracle.py``, a verbatim copy of the fold before it was
made faster; production keeps one fold. Two generators: arbitrary records of a few orders
(any types, clocks, exec ids, ClOrdIDs, nothing consistent, duplicates) and the realistic flows
of ``test_status_properties``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replication.record import Record
from tests.utilities import fold_oracle
from tests.utilities.test_status_properties import arbitrary_record, flow, keyed
from utilities.status import fold, fold_all

PROFILE = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TXNS = ("cfu1-0.1", "cfu1-0.2", "cfu2-0.1", "")


@st.composite
def mixed_records(draw: st.DrawFn) -> list[Record]:
    """Records of up to three orders (and some without a txn), keyed as a log keys them."""
    recs = draw(st.lists(arbitrary_record(), min_size=1, max_size=24))
    txns = draw(st.lists(st.sampled_from(TXNS), min_size=len(recs), max_size=len(recs)))
    out = keyed([r.replace(txn=t) for r, t in zip(recs, txns, strict=True)])
    dups = draw(st.lists(st.sampled_from(out), max_size=4))
    return out + dups


@PROFILE
@given(records=mixed_records())
def test_fold_all_equals_the_oracle_on_arbitrary_records(records: list[Record]) -> None:
    assert fold_all(records) == fold_oracle.fold_all(records)


@PROFILE
@given(records=st.lists(arbitrary_record(), min_size=1, max_size=14).map(keyed))
def test_fold_of_one_order_equals_the_oracle(records: list[Record]) -> None:
    assert fold(records) == fold_oracle.fold(records)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=flow(), data=st.data())
def test_fold_equals_the_oracle_on_realistic_flows_and_their_subsets(
        case: tuple[list[Record], str, object], data: st.DataObject) -> None:
    records = case[0]
    subset = data.draw(st.lists(st.sampled_from(records), min_size=1, max_size=len(records)))
    assert fold(records) == fold_oracle.fold(records)
    assert fold(subset) == fold_oracle.fold(subset)
