"""A customer session's message store on a full disk holds its messages in memory and keeps the
session: real LMDB store on a real full filesystem (a tmpfs of the test's own), frozen time."""

from __future__ import annotations

from pathlib import Path

from fixgw.config import SessionID
from fixgw.store import LmdbStore
from replication.storage_health import StorageHealth
from tests.support.tmpfs import fill, small_tmpfs
from utilities.session_rule import SessionKey
from utilities.session_store import ReplicatedSessionStore

KEY = SessionKey("FIX.4.4", "CLIENT1")
SID = SessionID("FIX.4.4", "FIXGW", "CLIENT1")


class Allow:
    """The session's owner: every number may go out."""

    def __init__(self) -> None:
        self.resets = 0

    def may_send(self, key: SessionKey, last_seq: int) -> str | None:
        return None

    def reset_happened(self, key: SessionKey) -> None:
        self.resets += 1


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_full_disk_holds_messages_in_memory_then_writes_them(tmp_path: Path) -> None:
    mnt = tmp_path / "mnt"
    with small_tmpfs(mnt, "1m"):
        health, clock = StorageHealth(), Clock()
        local = LmdbStore(mnt / "fixstore", SID, sync=False, map_size=8 << 20)
        store = ReplicatedSessionStore(local, KEY, Allow(), health=health, monotonic=clock)
        try:
            store.commit_batch([(1, b"first")], 2, 1)
            fill(mnt / "filler")
            seq = 2
            while not store.spilled and seq < 2000:   # free LMDB pages take a few commits first
                store.commit_batch([(seq, b"x" * 2000)], seq + 1, seq)
                seq += 1
            assert store.spilled, "no commit refused on a full disk"
            assert health.degraded == "FIX message store of FIX.4.4:CLIENT1: disk full"
            held_from = seq - 1
            store.commit_batch([(seq, b"held")], seq + 1, seq + 1)
            # the engine reads the numbers and resends from what is held
            assert store.next_sender_seq == seq + 1 and store.next_target_seq == seq + 1
            assert dict(store.get_range(held_from, seq))[seq] == b"held"
            assert store.get_range(1, 1) == [(1, b"first")]
            # before the back-off is over, nothing is tried; with space back and the time come, written
            (mnt / "filler").unlink()
            assert not store.retry_spilled()
            clock.t += 5
            assert store.retry_spilled() and not store.spilled and health.ok
            local.refresh()
            assert local.next_sender_seq == seq + 1 and local.next_target_seq == seq + 1
            assert dict(local.get_range(held_from, seq))[seq] == b"held"
        finally:
            store.close()
