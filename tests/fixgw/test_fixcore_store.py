"""MessageStore contract on MemoryStore and LmdbStore (real LMDB files), durability, threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fixgw.config import SessionID
from fixgw.store import (
    LmdbStore,
    LmdbStoreFactory,
    MemoryStore,
    MemoryStoreFactory,
    MessageStore,
    StoreClosedError,
    StoreError,
    make_store_factory,
)

SID = SessionID("FIX.4.4", "GW", "CLIENT")
SID2 = SessionID("FIX.4.2", "GW", "OTHER")
T0 = datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["memory", "lmdb", "lmdb-nosync"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., MessageStore]]:
    opened: list[MessageStore] = []

    def factory(sid: SessionID = SID, clock: Callable[[], datetime] | None = None) -> MessageStore:
        clock = clock or FakeClock()
        s: MessageStore
        if request.param == "memory":
            s = MemoryStore(sid, clock=clock)
        else:
            s = LmdbStore(tmp_path / "store", sid, clock=clock, sync=request.param == "lmdb")
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


def test_fresh_store(make: Callable[..., MessageStore]) -> None:
    s = make()
    assert (s.next_sender_seq, s.next_target_seq) == (1, 1)
    assert s.creation_time == T0
    assert s.get_range(1, 0) == []


def test_sequence_numbers(make: Callable[..., MessageStore]) -> None:
    s = make()
    s.incr_next_sender_seq()
    s.incr_next_sender_seq()
    s.incr_next_target_seq()
    assert (s.next_sender_seq, s.next_target_seq) == (3, 2)
    s.set_next_sender_seq(100)
    s.set_next_target_seq(7)
    assert (s.next_sender_seq, s.next_target_seq) == (100, 7)
    for bad in (0, -1, True, 1.5, "2"):
        with pytest.raises(StoreError):
            s.set_next_sender_seq(bad)  # type: ignore[arg-type]
    assert s.next_sender_seq == 100


def test_save_and_get_range(make: Callable[..., MessageStore]) -> None:
    s = make()
    for seq in (1, 2, 3, 5, 10):
        s.save(seq, b"msg%d" % seq)
    assert s.get_range(1, 0) == [(q, b"msg%d" % q) for q in (1, 2, 3, 5, 10)]
    assert s.get_range(2, 5) == [(2, b"msg2"), (3, b"msg3"), (5, b"msg5")]
    assert s.get_range(4, 4) == []
    assert s.get_range(5, 999) == [(5, b"msg5"), (10, b"msg10")]
    assert s.get_range(11, 0) == []
    s.save(3, b"again")  # replaces
    assert s.get_range(3, 3) == [(3, b"again")]
    with pytest.raises(StoreError):
        s.save(0, b"x")
    with pytest.raises(StoreError):
        s.save(1, "text")  # type: ignore[arg-type]


def test_commit_batch(make: Callable[..., MessageStore]) -> None:
    s = make()
    s.commit_batch([(1, b"a"), (2, b"b"), (3, b"c")], 4, None)
    assert (s.next_sender_seq, s.next_target_seq) == (4, 1)
    s.commit_batch([], None, 9)
    assert (s.next_sender_seq, s.next_target_seq) == (4, 9)
    s.commit_batch([(4, b"d")], 5, 10)
    assert s.get_range(1, 0) == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]
    # a bad item rejects the whole batch, nothing is written
    with pytest.raises(StoreError):
        s.commit_batch([(5, b"e"), (0, b"bad")], 6, None)
    assert s.next_sender_seq == 5 and s.get_range(5, 0) == []


def test_reset(make: Callable[..., MessageStore]) -> None:
    clock = FakeClock()
    s = make(clock=clock)
    other = make(SID2)
    other.commit_batch([(1, b"keep")], 2, 2)
    s.commit_batch([(q, b"x") for q in range(1, 6)], 6, 3)
    clock.now = T0 + timedelta(hours=1)
    s.reset()
    assert (s.next_sender_seq, s.next_target_seq) == (1, 1)
    assert s.get_range(1, 0) == []
    assert s.creation_time == T0 + timedelta(hours=1)
    # another session of the same environment is untouched
    assert other.get_range(1, 0) == [(1, b"keep")] and other.next_sender_seq == 2


def test_sessions_are_separate(make: Callable[..., MessageStore]) -> None:
    a, b = make(SID), make(SID2)
    a.commit_batch([(1, b"a1"), (2, b"a2")], 3, 5)
    b.commit_batch([(1, b"b1")], 2, 1)
    assert a.get_range(1, 0) == [(1, b"a1"), (2, b"a2")]
    assert b.get_range(1, 0) == [(1, b"b1")]
    assert (b.next_sender_seq, b.next_target_seq) == (2, 1)


def test_closed_store_refuses(make: Callable[..., MessageStore]) -> None:
    s = make()
    s.close()
    s.close()  # twice is fine
    with pytest.raises(StoreClosedError):
        s.save(1, b"x")
    with pytest.raises(StoreClosedError):
        s.get_range(1, 0)
    with pytest.raises(StoreClosedError):
        s.reset()


def test_refresh_keeps_state(make: Callable[..., MessageStore]) -> None:
    s = make()
    s.commit_batch([(1, b"a")], 2, 3)
    s.refresh()
    assert (s.next_sender_seq, s.next_target_seq) == (2, 3)


# -- LMDB specifics ---------------------------------------------------------------------------------


def test_lmdb_survives_close_and_reopen(tmp_path: Path) -> None:
    d = tmp_path / "store"
    with LmdbStore(d, SID, clock=FakeClock()) as s:
        s.commit_batch([(q, b"m%d" % q) for q in range(1, 101)], 101, 42)
    with LmdbStore(d, SID, clock=lambda: T0 + timedelta(days=9)) as s:
        assert (s.next_sender_seq, s.next_target_seq) == (101, 42)
        assert s.creation_time == T0  # kept, not re-stamped
        got = s.get_range(1, 0)
        assert len(got) == 100 and got[0] == (1, b"m1") and got[-1] == (100, b"m100")
        s.reset()
    with LmdbStore(d, SID) as s:
        assert (s.next_sender_seq, s.next_target_seq, s.get_range(1, 0)) == (1, 1, [])


def test_lmdb_same_session_twice_is_refused_but_env_shared(tmp_path: Path) -> None:
    d = tmp_path / "store"
    a = LmdbStore(d, SID)
    try:
        with pytest.raises(StoreError, match="already open"):
            LmdbStore(d, SID)
        b = LmdbStore(d, SID2)  # another session, same environment
        b.save(1, b"x")
        b.close()
    finally:
        a.close()
    with LmdbStore(d, SID) as again:  # released: can be opened again
        assert again.next_sender_seq == 1


def test_lmdb_map_grows_when_full(tmp_path: Path) -> None:
    with LmdbStore(tmp_path / "small", SID, map_size=256 * 1024) as s:
        big = b"x" * 4000
        s.commit_batch([(q, big) for q in range(1, 301)], 301, None)  # ~1.2 MB > 256 KiB
        assert len(s.get_range(1, 0)) == 300


def test_lmdb_thread_safe_commits(tmp_path: Path) -> None:
    with LmdbStore(tmp_path / "store", SID) as s:
        errors: list[BaseException] = []

        def writer(base: int) -> None:
            try:
                for k in range(20):
                    seq = base + k * 5
                    s.commit_batch([(seq, b"t%d" % seq)], None, None)
            except Exception as e:  # noqa: BLE001 (collected; the test asserts there are none)
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(b,)) for b in range(1, 6)]
        reads = 0
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads) and reads < 2000:
            assert all(v == b"t%d" % q for q, v in s.get_range(1, 0))
            reads += 1
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert [q for q, _ in s.get_range(1, 0)] == list(range(1, 101))


_CHILD = textwrap.dedent(
    """
    import sys
    from fixgw.config import SessionID
    from fixgw.store import LmdbStore
    s = LmdbStore(sys.argv[1], SessionID("FIX.4.4", "GW", "CLIENT"), sync=sys.argv[2] == "sync")
    seq = s.next_sender_seq
    for batch in range(100000):
        msgs = [(seq + k, b"8=FIX.4.4|34=%d|" % (seq + k)) for k in range(10)]
        s.commit_batch(msgs, seq + 10, batch + 1)
        seq += 10
        print(seq, flush=True)   # committed: next sender seq
    """
)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sync", ["sync", "nosync"])
def test_lmdb_state_survives_sigkill(tmp_path: Path, sync: str) -> None:
    # FileStoreSync=N gives up surviving a power cut, not a killed process: what a commit
    # wrote is in the OS's page cache either way
    d = tmp_path / "store"
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(d), sync],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    last = 0
    deadline = time.monotonic() + 30
    try:
        while last < 501 and time.monotonic() < deadline:  # at least 50 committed batches
            line = proc.stdout.readline()
            if not line:
                break
            last = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert last >= 501, proc.stderr.read().decode() if proc.stderr else ""
    with LmdbStore(d, SID) as s:
        # everything reported as committed is there; the state and the messages agree
        n = s.next_sender_seq
        assert n >= last
        assert s.next_target_seq == (n - 1) // 10
        got = s.get_range(1, 0)
        assert [q for q, _ in got] == list(range(1, n))
        assert got[-1][1] == b"8=FIX.4.4|34=%d|" % (n - 1)


def test_factories(tmp_path: Path) -> None:
    mf = make_store_factory(None)
    assert isinstance(mf, MemoryStoreFactory)
    m = mf(SID)
    assert isinstance(m, MemoryStore) and m.session_id == SID
    lf = make_store_factory(tmp_path / "s")
    assert isinstance(lf, LmdbStoreFactory)
    a, b = lf(SID), lf(SID2)
    a.save(1, b"x")
    assert a.directory == b.directory == (tmp_path / "s").resolve()
    lf.close()
    with pytest.raises(StoreClosedError):
        a.save(2, b"y")
    with LmdbStoreFactory(tmp_path / "s")(SID) as again:
        assert again.get_range(1, 0) == [(1, b"x")]


def test_file_store_sync_setting_reaches_the_store(tmp_path: Path) -> None:
    from fixgw.config import parse_settings
    from fixgw.engine import default_store_factory

    def settings(extra: str) -> Any:
        text = ("[DEFAULT]\nConnectionType=acceptor\nSocketAcceptPort=9999\nSenderCompID=GW\n"
                f"TargetCompID=CLIENT\nFileStorePath={tmp_path / 'fs'}\n{extra}[SESSION]\nBeginString=FIX.4.4\n")
        return parse_settings(text, "<test>")[0]

    assert settings("").file_store_sync is True  # our default: fsync every commit
    off = settings("FileStoreSync=N\n")
    assert off.file_store_sync is False
    with default_store_factory(off, SID) as s:
        s.save(1, b"x")
        assert s._sync is False and s._env.synced is False
    with pytest.raises(Exception, match="FileStoreSync"):
        settings("FileStoreSync=maybe\n")
    # a synced store sharing an unsynced environment still syncs its own commits
    lf = LmdbStoreFactory(tmp_path / "shared", sync=False)
    a = lf(SID)
    with LmdbStore(tmp_path / "shared", SID2, sync=True) as b:
        b.save(1, b"y")
        assert b.get_range(1, 0) == [(1, b"y")]
    a.save(1, b"z")
    lf.close()
    with LmdbStore(tmp_path / "shared", SID) as again:
        assert again.get_range(1, 0) == [(1, b"z")]


def test_bad_directory_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("not a directory")
    with pytest.raises(StoreError, match="cannot create the message store directory"):
        LmdbStore(f, SID)


def test_lmdb_keeps_only_the_sessions_day(tmp_path: Path) -> None:
    """A new day's first messages drop the earlier days' (a resend reaches back within the day)."""
    from fixgw.store import PRUNE_PER_COMMIT

    clock = FakeClock()
    d = tmp_path / "store"
    with LmdbStore(d, SID, clock=clock) as s, LmdbStore(d, SID2, clock=clock) as other:
        s.commit_batch([(q, b"m%d" % q) for q in range(1, 51)], 51, 1)  # one batch entry
        for q in range(51, 51 + PRUNE_PER_COMMIT + 100):  # and one entry per message
            s.save(q, b"m%d" % q)
        other.save(1, b"o1")
        last = 50 + PRUNE_PER_COMMIT + 100
        s.save(last + 1, b"same day")
        assert len(s.get_range(1, 0)) == last + 1  # nothing dropped within the day
        clock.now = T0 + timedelta(days=1)
        s.commit_batch([(last + 2, b"new day"), (last + 3, b"new day 2")], last + 4, None)
        # bounded work per commit: the first commit of the day deleted PRUNE_PER_COMMIT entries
        remaining = s.get_range(1, last + 1)
        assert 0 < len(remaining) < last + 1 - PRUNE_PER_COMMIT + 50
        s.save(last + 4, b"more")
        assert [q for q, _ in s.get_range(1, 0)] == [last + 2, last + 3, last + 4]
        assert other.get_range(1, 0) == [(1, b"o1")]  # another session's messages are its own
        assert (s.next_sender_seq, s.next_target_seq) == (last + 4, 1)
    with LmdbStore(d, SID, clock=clock) as s:  # a restart on the same day prunes nothing more
        s.save(last + 5, b"after restart")
        assert [q for q, _ in s.get_range(1, 0)] == [last + 2, last + 3, last + 4, last + 5]
        s.reset()  # a reset forgets the day too: seq 1 of the same day is kept
        s.save(1, b"again")
        assert s.get_range(1, 0) == [(1, b"again")]
