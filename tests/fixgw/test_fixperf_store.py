"""The LMDB store's batch entries (one key for a commit's messages) behave exactly like one key
per message: random commits, resets and reopenings against the memory store as the model."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.config import SessionID
from fixgw.store import LmdbStore, MemoryStore

SID = SessionID("FIX.4.4", "ISLD", "BENCH")
OTHER = SessionID("FIX.4.4", "ISLD", "OTHER")

_seq = st.integers(1, 40)
_batch = st.one_of(
    # the usual: ascending, above what is there (the store decides; the model does not care)
    st.integers(1, 40).flatmap(lambda a: st.integers(1, 8).map(lambda n: list(range(a, a + n)))),
    st.lists(_seq, max_size=6),  # anything: repeats, out of order, going back
)
_op = st.one_of(
    st.tuples(st.just("commit"), _batch, st.booleans()),
    st.tuples(st.just("reset")),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("other"), _batch),  # another session in the same environment
)


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_op, max_size=12), ranges=st.lists(st.tuples(st.integers(-1, 50), st.integers(-1, 50)), max_size=6))
def test_lmdb_store_equals_the_memory_model(ops: list[tuple[Any, ...]], ranges: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d)
        store = LmdbStore(path, SID)
        other = LmdbStore(path, OTHER)
        model = MemoryStore(SID)
        version = 0
        try:
            for op in ops:
                if op[0] == "commit":
                    version += 1
                    msgs = [(s, b"8=FIX.4.4\x0134=%d\x01v=%d\x01" % (s, version)) for s in op[1]]
                    nxt = max([s for s, _ in msgs], default=0) + 1 if op[2] else None
                    store.commit_batch(msgs, nxt, None)
                    model.commit_batch(msgs, nxt, None)
                elif op[0] == "reset":
                    store.reset()
                    model.reset()
                elif op[0] == "reopen":
                    store.close()
                    store = LmdbStore(path, SID)
                else:
                    other.commit_batch([(s, b"other %d" % s) for s in op[1]], None, None)
                assert store.next_sender_seq == model.next_sender_seq
                assert store.get_range(1, 0) == model.get_range(1, 0)
            for begin, end in ranges:
                assert store.get_range(begin, end) == model.get_range(begin, end), (begin, end)
        finally:
            store.close()
            other.close()


def test_a_usual_commit_is_one_key(tmp_path: Path) -> None:
    store = LmdbStore(tmp_path, SID)
    try:
        store.commit_batch([(1, b"a"), (2, b"b"), (3, b"c")], 4, 1)
        store.commit_batch([(5, b"e")], 6, 1)
        env = store._env
        with env.env.begin(db=env.messages) as txn:
            keys = [bytes(k) for k, _ in txn.cursor()]
        assert len(keys) == 2 and keys[0].endswith(b"B") and len(keys[1]) == 12
        assert store.get_range(2, 5) == [(2, b"b"), (3, b"c"), (5, b"e")]
        # storing 2 again splits the batch: still one entry per seq, the new one wins
        store.commit_batch([(2, b"B2")], None, None)
        assert store.get_range(1, 0) == [(1, b"a"), (2, b"B2"), (3, b"c"), (5, b"e")]
    finally:
        store.close()
