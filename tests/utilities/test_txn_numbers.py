"""Transaction numbers: format, parse, allocator uniqueness across restarts."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utilities.txn import TxnAllocator, TxnId, parse_txn, txn_for


def test_format_and_parse() -> None:
    assert txn_for("cfu1", 1042, 7) == "cfu1-1042.7"
    assert parse_txn("cfu1-1042.7") == TxnId("cfu1", 1042, 7)
    assert parse_txn("cfu-east-1-0.3") == TxnId("cfu-east-1", 0, 3)  # '-' inside the node id


@given(node=st.text("abcXYZ019-_.:é", min_size=1, max_size=12),
       epoch=st.integers(0, 2**63), counter=st.integers(1, 2**63))
def test_parse_inverts_format(node: str, epoch: int, counter: int) -> None:
    assert parse_txn(txn_for(node, epoch, counter)) == TxnId(node, epoch, counter)


@pytest.mark.parametrize("bad", ["", "cfu1", "cfu1-", "-1.2", "cfu1-1", "cfu1-1.", "cfu1-a.1",
                                 "cfu1-1.0", "cfu1-+1.2", "cfu1-1.2.3", "cfu1-١.2"])
def test_parse_rejects_malformed(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_txn(bad)


@pytest.mark.parametrize("node", ["", "a/b", "a b", "a\x01"])
def test_bad_node_ids_are_refused(node: str) -> None:
    with pytest.raises(ValueError, match="node id"):
        TxnAllocator(node, 0)
    with pytest.raises(ValueError, match="node id"):
        txn_for(node, 0, 1)


def test_bad_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="epoch"):
        TxnAllocator("cfu1", -1)


def test_allocator_is_unique_across_threads_and_restarts() -> None:
    seen: set[str] = set()
    a = TxnAllocator("cfu1", 0)
    out: list[str] = []

    def take() -> None:
        out.extend(a.next() for _ in range(2000))

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(out) == len(set(out)) == 8000
    seen.update(out)
    # restart after committing (high-water 5): a fresh allocator cannot repeat any of them
    b = TxnAllocator("cfu1", 5)
    assert b.epoch == 5 and b.node_id == "cfu1"
    assert not seen & {b.next() for _ in range(10_000)}
    # another node never produces the same numbers
    assert not seen & {TxnAllocator("cfu2", 0).next() for _ in range(10)}
