"""Any permutation and duplication of deliveries leaves the same store and high-water marks."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from replication.codec import encode_record
from replication.hlc import Hlc
from replication.log import RecordLog
from replication.matrix import Holding
from replication.record import Record, RecordType, Role

ROLES = {"c2": Role.CUSTOMER, "s1": Role.STREET, "f1": Role.FIRM}


def make(origin: str, seq: int) -> tuple[Record, bytes]:
    rec = Record(origin=origin, seq=seq, txn=f"T{seq % 3}", type=RecordType.NOTE, status="s",
                 hlc=Hlc(seq, 0, origin))
    return rec, encode_record(rec)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[tuple[str, int]], list[list[list[tuple[str, int]]]]]:
    keys: list[tuple[str, int]] = []
    for origin in ROLES:
        n = draw(st.integers(0, 12))
        held = draw(st.lists(st.booleans(), min_size=n, max_size=n))  # some never arrive: gaps
        keys += [(origin, s + 1) for s in range(n) if held[s]]
    deliveries = keys + draw(st.lists(st.sampled_from(keys), max_size=10)) if keys else []
    order = draw(st.permutations(deliveries))
    # split into transactions of deliveries of a few records each
    txns: list[list[list[tuple[str, int]]]] = []
    i = 0
    while i < len(order):
        size = draw(st.integers(1, 6))
        chunk = order[i:i + size]
        i += size
        txns.append([[k] for k in chunk] if draw(st.booleans()) else [chunk])
    return keys, txns


def apply(path: Path, txns: list[list[list[tuple[str, int]]]]) -> tuple[dict[bytes, bytes], dict[str, int], dict[str, list[tuple[str, int]]], dict[str, tuple[Role, int, int]]]:
    with RecordLog(path, node_id="c1", role=Role.CUSTOMER) as log:
        for txn in txns:
            with log.write() as batch:
                for delivery in txn:
                    by_role: dict[Role, list[tuple[Record, bytes]]] = {}
                    for origin, seq in delivery:
                        by_role.setdefault(ROLES[origin], []).append(make(origin, seq))
                    for role, items in by_role.items():
                        batch.insert(role, items)
        content = {k: v for how in Holding for k, v in log.iter_holding(how)}
        index = {t: [(r.origin, r.seq) for r in log.records_for_txn(t)] for t in ("T0", "T1", "T2")}
        states = {o: (s.role, s.hwm, s.max_seq) for o, s in log.origin_states().items()}
        return content, log.high_water_marks(), index, states
    raise AssertionError


@given(scenario())
@settings(max_examples=120, deadline=None)
def test_permutation_and_duplication_do_not_matter(sc: tuple[list[tuple[str, int]], list[list[list[tuple[str, int]]]]]) -> None:
    keys, txns = sc
    with tempfile.TemporaryDirectory() as d:
        content, hwms, index, states = apply(Path(d) / "shuffled", txns)
        reference = apply(Path(d) / "ordered", [[[k]] for k in sorted(keys)])
    assert (content, hwms, index, states) == reference
    # and the high-water mark is the contiguous prefix of what was delivered
    for origin in ROLES:
        seqs = {s for o, s in keys if o == origin}
        expected = 0
        while expected + 1 in seqs:
            expected += 1
        assert hwms.get(origin, 0) == expected
        assert len([k for k in content if k.startswith(origin.encode() + b"\0")]) == len(seqs)
