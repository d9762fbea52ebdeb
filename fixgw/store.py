"""Message stores: sequence numbers and sent messages of a FIX session (QuickFIX/J's MessageStore).

Two implementations with one contract: `MemoryStore` (tests, PersistMessages=N setups) and
`LmdbStore` (durable). One LMDB environment (a directory) holds many sessions, each keyed by its
SessionID. What a commit returned survives a SIGKILL either way (it is in the OS's page cache);
with ``sync=True`` (FileStoreSync=Y, our default) it also survives a power cut. QuickFIX's
FileStore defaults to FileStoreSync=N: a node whose orders live in a synced record log of their
own (the utilities) may choose that too, and save an fsync per message.

`commit_batch` writes several messages and the new sequence numbers in ONE transaction: the
session collects what one event-loop turn produced and commits it at once (group commit), since a
synced LMDB commit costs ~0.25 ms whatever its size. The LMDB store is thread-safe, so that commit
can run in a worker thread.
"""

from __future__ import annotations

import abc
import os
import struct
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import lmdb

from fixgw.config import SessionID
from fixgw.errors import StoreClosedError, StoreError
from fixgw.lmdblock import allocate_lock_file

__all__ = [
    "Clock",
    "LmdbStore",
    "LmdbStoreFactory",
    "MemoryStore",
    "MemoryStoreFactory",
    "MessageStore",
    "StoreClosedError",
    "StoreError",
    "StoreFactory",
    "make_store_factory",
]

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _check_seq(name: str, n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise StoreError(f"{name} must be an integer >= 1, got {n!r}")
    return n


def _check_raw(raw: bytes) -> bytes:
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise StoreError(f"a stored message must be bytes, got {type(raw).__name__}")
    return bytes(raw)


class MessageStore(abc.ABC):
    """The contract: next sender/target sequence numbers and the messages sent, by sequence."""

    # implementations keep the current values in these (a cache of what is durable, for LMDB)
    _sender: int
    _target: int
    _created: datetime

    @property
    def next_sender_seq(self) -> int:
        """The MsgSeqNum our next outgoing message gets."""
        return self._sender

    @property
    def next_target_seq(self) -> int:
        """The MsgSeqNum we expect on the next incoming message."""
        return self._target

    @property
    def creation_time(self) -> datetime:
        """When the session's sequence started (creation or last reset), UTC."""
        return self._created

    @property
    def syncs(self) -> bool:
        """Whether a commit waits for the disk (fsync)."""
        return True

    @abc.abstractmethod
    def set_next_sender_seq(self, n: int) -> None:
        """Set the next outgoing MsgSeqNum (n >= 1)."""

    @abc.abstractmethod
    def set_next_target_seq(self, n: int) -> None:
        """Set the next expected incoming MsgSeqNum (n >= 1)."""

    def incr_next_sender_seq(self) -> None:
        """Add one to the next outgoing MsgSeqNum."""
        self.set_next_sender_seq(self.next_sender_seq + 1)

    def incr_next_target_seq(self) -> None:
        """Add one to the next expected incoming MsgSeqNum."""
        self.set_next_target_seq(self.next_target_seq + 1)

    @abc.abstractmethod
    def save(self, seq: int, raw: bytes) -> None:
        """Store an outgoing message under its MsgSeqNum (replaces one already there)."""

    @abc.abstractmethod
    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored messages with begin <= seq <= end (end < 1 or beyond: to the last), ascending."""

    @abc.abstractmethod
    def commit_batch(
        self,
        messages: Sequence[tuple[int, bytes]],
        next_sender_seq: int | None,
        next_target_seq: int | None,
    ) -> None:
        """Save messages and set the given sequence numbers (None: unchanged) atomically."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Back to sequence 1 on both sides, drop the messages, new creation time."""

    @abc.abstractmethod
    def refresh(self) -> None:
        """Reload the state from the backing storage (no-op for memory)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release resources; later calls raise StoreClosedError (close twice is fine)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


StoreFactory = Callable[[SessionID], MessageStore]


# ----------------------------------------------------------------------------------------------
# Memory


class MemoryStore(MessageStore):
    """A store in a dict: fast, lost with the process."""

    syncs = False

    def __init__(self, session_id: SessionID | None = None, *, clock: Clock = _utc_now) -> None:
        """An empty store at sequence 1/1; clock gives the creation time."""
        self.session_id = session_id
        self._clock = clock
        self._lock = threading.Lock()
        self._messages: dict[int, bytes] = {}
        self._sender = 1
        self._target = 1
        self._created = clock()
        self._closed = False

    def _open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"memory store {self.session_id} is closed")

    def set_next_sender_seq(self, n: int) -> None:
        """Set the next outgoing MsgSeqNum (n >= 1)."""
        _check_seq("next sender seq", n)
        with self._lock:
            self._open()
            self._sender = n

    def set_next_target_seq(self, n: int) -> None:
        """Set the next expected incoming MsgSeqNum (n >= 1)."""
        _check_seq("next target seq", n)
        with self._lock:
            self._open()
            self._target = n

    def save(self, seq: int, raw: bytes) -> None:
        """Store an outgoing message under its MsgSeqNum (replaces one already there)."""
        _check_seq("seq", seq)
        data = _check_raw(raw)
        with self._lock:
            self._open()
            self._messages[seq] = data

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored messages with begin <= seq <= end (end < 1 or beyond: to the last), ascending."""
        with self._lock:
            self._open()
            hi = end if end >= 1 else None
            return sorted(
                (s, m) for s, m in self._messages.items() if s >= begin and (hi is None or s <= hi)
            )

    def commit_batch(
        self,
        messages: Sequence[tuple[int, bytes]],
        next_sender_seq: int | None,
        next_target_seq: int | None,
    ) -> None:
        """Save messages and set the given sequence numbers (None: unchanged) atomically."""
        checked = [(_check_seq("seq", s), _check_raw(m)) for s, m in messages]
        if next_sender_seq is not None:
            _check_seq("next sender seq", next_sender_seq)
        if next_target_seq is not None:
            _check_seq("next target seq", next_target_seq)
        with self._lock:
            self._open()
            self._messages.update(checked)
            if next_sender_seq is not None:
                self._sender = next_sender_seq
            if next_target_seq is not None:
                self._target = next_target_seq

    def reset(self) -> None:
        """Back to sequence 1 on both sides, drop the messages, new creation time."""
        with self._lock:
            self._open()
            self._messages.clear()
            self._sender = self._target = 1
            self._created = self._clock()

    def refresh(self) -> None:
        """Nothing to reload: memory is the only copy."""
        with self._lock:
            self._open()

    def close(self) -> None:
        """Mark closed; the messages are dropped."""
        with self._lock:
            self._closed = True
            self._messages.clear()


class MemoryStoreFactory:
    """(SessionID) -> MemoryStore."""

    def __init__(self, *, clock: Clock = _utc_now) -> None:
        """clock gives the stores' creation times."""
        self._clock = clock

    def __call__(self, session_id: SessionID) -> MemoryStore:
        """A new, empty store for the session."""
        return MemoryStore(session_id, clock=self._clock)

    def close(self) -> None:
        """Nothing to release."""


# ----------------------------------------------------------------------------------------------
# LMDB
#
# Layout of one environment (directory):
#   db "sessions": SessionID string -> 4-byte session number (short keys for messages)
#   db "state":    session number -> next sender seq, next target seq (u64), creation time (µs)
#   db "messages": session number (4 bytes BE) + seq (8 bytes BE) -> raw message, or
#                  session number + first seq + b"B" -> a batch of messages (see _pack_batch)
# Big-endian keys sort by (session, seq), so a range read is one cursor walk.
#
# Why batches: py-lmdb releases the GIL around every put, and a thread that gives the GIL up
# waits up to the switch interval to get it back while the event loop is busy: a commit of 50
# messages one key each took ~5 ms under load, one key for all of them ~1 ms. A commit whose
# messages all come after every stored one (the usual case: ascending sequence numbers) is one
# key; anything else (a sequence number stored again, out of order) takes the slow path, which
# splits the batches it touches back into one key per message: no seq is ever in two entries.

# Only what a resend within the session's day can ask for is kept: the first commit of messages
# on a new (UTC) day records the day and its first seq (state key: session number + b"D") and
# every entry of earlier seqs is deleted, at most PRUNE_PER_COMMIT entries per commit so that no
# commit waits on a whole day's deletes. A ResendRequest reaching back before the day gets a
# gap fill for what is gone (orders and their status live in the record log, not here). Why: the
# store grew with every message ever sent (14 MB for 40,000 orders in issue 18), for ever.
_DAY = struct.Struct(">iQ")  # day (proleptic ordinal), its first stored seq
_DAY_KEY = b"D"
PRUNE_PER_COMMIT = 500
_STATE = struct.Struct(">QQq")
_SESSION_NO = struct.Struct(">I")
_SEQ = struct.Struct(">Q")
_COUNT = struct.Struct("<I")
_BATCH = b"B"  # key suffix of a batch entry


def _pack_batch(seqs: list[int], raws: list[bytes]) -> bytes:
    """count (u32 LE), the seqs (u64 LE each), the lengths (u32 LE each), then the messages."""
    return b"".join(
        (
            _COUNT.pack(len(seqs)),
            struct.pack(f"<{len(seqs)}Q", *seqs),
            struct.pack(f"<{len(raws)}I", *[len(r) for r in raws]),
            *raws,
        )
    )


def _unpack_batch(value: bytes) -> list[tuple[int, bytes]]:
    n = _COUNT.unpack_from(value)[0]
    seqs = struct.unpack_from(f"<{n}Q", value, 4)
    lens = struct.unpack_from(f"<{n}I", value, 4 + 8 * n)
    out: list[tuple[int, bytes]] = []
    pos = 4 + 12 * n
    for seq, ln in zip(seqs, lens, strict=True):
        out.append((seq, value[pos : pos + ln]))
        pos += ln
    return out
_DEFAULT_MAP_SIZE = 1 << 30  # virtual: the file grows with use; doubled when full


class _Env:
    """One open LMDB environment, shared by every store of that directory in this process."""

    def __init__(self, path: Path, map_size: int, sync: bool) -> None:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"{path}: cannot create the message store directory: {e}") from e
        try:
            self.env = lmdb.open(
                str(path),
                map_size=map_size,
                max_dbs=4,
                subdir=True,
                sync=sync,
                metasync=sync,
                lock=True,
                max_readers=256,
            )
        except lmdb.Error as e:
            raise StoreError(f"{path}: cannot open LMDB message store: {e}") from e
        try:
            allocate_lock_file(path)  # a full disk later: write errors, not SIGBUS (fixgw.lmdblock)
        except OSError as e:
            self.env.close()
            raise StoreError(f"{path}: cannot allocate the LMDB lock file: {e}") from e
        self.path = path
        self.synced = sync  # commits sync by themselves (else write(sync=True) syncs after)
        self.sessions = self.env.open_db(b"sessions")
        self.state = self.env.open_db(b"state")
        self.messages = self.env.open_db(b"messages")
        # LMDB allows one write transaction at a time anyway; one lock per environment also
        # lets set_mapsize() run with no transaction of this process open.
        self.lock = threading.RLock()
        self.open_sessions: set[SessionID] = set()
        self.refs = 0

    def write(self, fn: Callable[[Any], None], sync: bool = True) -> None:
        """Run fn(txn) in one write transaction, growing the map when it is full; ``sync``:
        on disk when this returns (an environment opened unsynced syncs after the commit)."""
        with self.lock:
            for _ in range(8):
                try:
                    with self.env.begin(write=True) as txn:
                        fn(txn)
                    if sync and not self.synced:
                        self.env.sync(True)
                    return
                except lmdb.MapFullError:
                    self.env.set_mapsize(self.env.info()["map_size"] * 2)
            raise StoreError(f"{self.path}: LMDB map still full after growing it")


_ENVS: dict[str, _Env] = {}
_ENVS_LOCK = threading.Lock()


def _acquire_env(path: Path, map_size: int, sync: bool) -> _Env:
    key = os.path.realpath(path)
    with _ENVS_LOCK:
        env = _ENVS.get(key)
        if env is None:
            env = _Env(Path(key), map_size, sync)
            _ENVS[key] = env
        env.refs += 1
        return env


def _release_env(env: _Env) -> None:
    with _ENVS_LOCK:
        env.refs -= 1
        if env.refs == 0:
            _ENVS.pop(str(env.path), None)
            if not env.synced:
                env.env.sync(True)  # a clean stop leaves everything on disk
            env.env.close()


class LmdbStore(MessageStore):
    """A durable store for one session inside an LMDB environment (directory)."""

    def __init__(
        self,
        directory: str | Path,
        session_id: SessionID,
        *,
        clock: Clock = _utc_now,
        map_size: int = _DEFAULT_MAP_SIZE,
        sync: bool = True,
    ) -> None:
        """Open (creating if needed) the session's state in directory; one open store per session.

        ``sync=False`` (FileStoreSync=N): commits are not fsynced (LMDB's MDB_NOSYNC). They
        survive the process being killed, not the machine crashing: after a power cut the
        session may restart with sequence numbers its peer has already seen, or the store
        may be unreadable and need deleting (the session then starts at sequence 1).
        """
        self.session_id = session_id
        self._clock = clock
        self._sync = sync
        self._env = _acquire_env(Path(directory), map_size, sync)
        self._closed = False
        env = self._env
        with env.lock:
            already = session_id in env.open_sessions
            if not already:
                env.open_sessions.add(session_id)
        if already:
            self._closed = True
            _release_env(env)
            raise StoreError(f"{env.path}: session {session_id} is already open in this process")
        try:
            self._prefix = self._session_number(str(session_id).encode())
            self._load()
        except BaseException:
            self.close()
            raise

    @property
    def syncs(self) -> bool:
        return self._sync

    # -- internals ----------------------------------------------------------------------------

    def _session_number(self, sid: bytes) -> bytes:
        env = self._env
        with env.lock:
            with env.env.begin(db=env.sessions) as txn:
                got = txn.get(sid)
            if got is not None:
                return bytes(got)
            out: list[bytes] = []

            def create(txn: Any) -> None:
                known = txn.get(sid, db=env.sessions)  # another process may have just added it
                if known is not None:
                    out.append(bytes(known))
                    return
                n = txn.stat(env.sessions)["entries"] + 1
                no = _SESSION_NO.pack(n)
                txn.put(sid, no, db=env.sessions)
                txn.put(no, _STATE.pack(1, 1, _micros(self._clock())), db=env.state)
                out.append(no)

            env.write(create)
            return out[0]

    def _load(self) -> None:
        env = self._env
        with env.lock, env.env.begin(db=env.state) as txn:
            raw = txn.get(self._prefix)
        if raw is None:
            raise StoreError(f"{env.path}: state of session {self.session_id} is missing")
        s, t, created = _STATE.unpack(bytes(raw))
        self._sender: int = int(s)
        self._target: int = int(t)
        self._created = datetime.fromtimestamp(created / 1e6, UTC)
        self._last_seq = self._read_last_seq()
        with env.lock, env.env.begin(db=env.state) as txn:
            day = txn.get(self._prefix + _DAY_KEY)
        # the day's first seq: entries below it are pruned (again, after a restart: idempotent)
        self._day, self._prune_below = _DAY.unpack(bytes(day)) if day is not None else (0, 0)

    def _read_last_seq(self) -> int:
        """The highest seq stored for this session (0: none)."""
        env = self._env
        prefix = self._prefix
        with env.env.begin(db=env.messages) as txn:
            cur = txn.cursor()
            # the first key after ours, then one back
            if cur.set_range(prefix + b"\xff" * 9):
                if not cur.prev():
                    return 0
            elif not cur.last():
                return 0
            key = cur.key()
            if key[: len(prefix)] != prefix:
                return 0
            if len(key) == len(prefix) + 8:
                return int(_SEQ.unpack_from(key, len(prefix))[0])
            return max(seq for seq, _ in _unpack_batch(cur.value()))

    def _open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"LMDB store {self.session_id} is closed")

    def _key(self, seq: int) -> bytes:
        return self._prefix + _SEQ.pack(seq)

    def _state_bytes(self, sender: int, target: int) -> bytes:
        return _STATE.pack(sender, target, _micros(self._created))

    # -- contract -----------------------------------------------------------------------------

    def set_next_sender_seq(self, n: int) -> None:
        """Set the next outgoing MsgSeqNum (n >= 1), durably (as FileStoreSync says)."""
        self.commit_batch((), n, None)

    def set_next_target_seq(self, n: int) -> None:
        """Set the next expected incoming MsgSeqNum (n >= 1), durably."""
        self.commit_batch((), None, n)

    def save(self, seq: int, raw: bytes) -> None:
        """Store an outgoing message under its MsgSeqNum, durably."""
        self.commit_batch(((seq, raw),), None, None)

    def commit_batch(
        self,
        messages: Sequence[tuple[int, bytes]],
        next_sender_seq: int | None,
        next_target_seq: int | None,
    ) -> None:
        """Save messages and set the given sequence numbers (None: unchanged) in one transaction."""
        # the usual batch (int seqs >= 1, bytes) in one pass; anything else is checked one by one
        # for the error (this runs in the engine's store thread, holding the GIL: keep it short)
        items = [(s, m) for s, m in messages if type(s) is int and s > 0 and type(m) is bytes]
        if len(items) != len(messages):
            items = [(_check_seq("seq", s), _check_raw(m)) for s, m in messages]
        if next_sender_seq is not None:
            _check_seq("next sender seq", next_sender_seq)
        if next_target_seq is not None:
            _check_seq("next target seq", next_target_seq)
        env = self._env
        with env.lock:
            self._open()
            sender = self._sender if next_sender_seq is None else next_sender_seq
            target = self._target if next_target_seq is None else next_target_seq
            state_changed = sender != self._sender or target != self._target

            seqs = [seq for seq, _ in items]
            usual = (
                bool(seqs) and seqs[0] > self._last_seq and (len(seqs) == 1 or seqs == sorted(set(seqs)))
            )
            day, prune_below = self._day, self._prune_below
            if seqs:
                today = self._clock().astimezone(UTC).date().toordinal()
                if today != day:
                    day, prune_below = today, min(seqs)
            pruned = [False]

            def write(txn: Any) -> None:
                if prune_below:
                    pruned[0] = self._prune(txn, prune_below)
                if day != self._day or pruned[0]:  # (day, 0) once done: a restart prunes nothing more
                    txn.put(self._prefix + _DAY_KEY, _DAY.pack(day, 0 if pruned[0] else prune_below),
                            db=env.state)
                if usual:
                    if len(items) == 1:
                        txn.put(self._key(seqs[0]), items[0][1], db=env.messages)
                    else:
                        value = _pack_batch(seqs, [m for _, m in items])
                        txn.put(self._key(seqs[0]) + _BATCH, value, db=env.messages)
                elif items:
                    self._put_one_by_one(txn, items)
                if state_changed:
                    txn.put(self._prefix, self._state_bytes(sender, target), db=env.state)

            if items or state_changed:
                env.write(write, self._sync)
            # only after the commit returned: the cache never runs ahead of the disk
            self._day, self._prune_below = day, 0 if pruned[0] else prune_below
            self._sender, self._target = sender, target
            if seqs:
                self._last_seq = max(self._last_seq, max(seqs))

    def _prune(self, txn: Any, below: int) -> bool:
        """Delete up to PRUNE_PER_COMMIT entries of this session whose first seq is below
        ``below`` (a batch of an earlier day holds only earlier seqs); True when none is left."""
        cur = txn.cursor(db=self._env.messages)
        prefix, plen = self._prefix, len(self._prefix)
        if not cur.set_range(prefix):
            return True
        for _ in range(PRUNE_PER_COMMIT):
            key = cur.key()
            if key[:plen] != prefix or _SEQ.unpack_from(key, plen)[0] >= below:
                return True
            if not cur.delete():  # deleted, and on the next entry; False at the end
                return True
        key = cur.key()
        return bool(key[:plen] != prefix or _SEQ.unpack_from(key, plen)[0] >= below)

    def _put_one_by_one(self, txn: Any, items: list[tuple[int, bytes]]) -> None:
        """The slow path: split every batch entry holding a seq >= the lowest new one into one
        key per message, then put each new message under its own key (the last one of a seq
        wins), so that no seq is ever held by two entries."""
        env = self._env
        prefix = self._prefix
        plen = len(prefix)
        lo = min(seq for seq, _ in items)
        cur = txn.cursor(db=env.messages)
        split: list[tuple[bytes, list[tuple[int, bytes]]]] = []
        if cur.set_range(self._key(lo)):
            if not (cur.prev() and cur.key()[:plen] == prefix):
                cur.set_range(self._key(lo))
        elif not cur.last():
            cur = None
        if cur is not None:
            for key, value in cur:
                if key[:plen] != prefix:
                    break
                if len(key) == plen + 9:
                    split.append((bytes(key), _unpack_batch(value)))
        for key, held in split:
            txn.delete(key, db=env.messages)
            for seq, raw in held:
                txn.put(self._key(seq), raw, db=env.messages)
        for seq, raw in items:
            txn.put(self._key(seq), raw, db=env.messages)

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Stored messages with begin <= seq <= end (end < 1 or beyond: to the last), ascending."""
        env = self._env
        lo = self._key(max(begin, 0))
        out: list[tuple[int, bytes]] = []
        plen = len(self._prefix)
        prefix = self._prefix
        with env.lock:
            self._open()
            with env.env.begin(db=env.messages) as txn:
                cur = txn.cursor()
                # the entry before the first key >= lo may be a batch that reaches begin
                if cur.set_range(lo):
                    if not (cur.prev() and cur.key()[:plen] == prefix and len(cur.key()) == plen + 9):
                        cur.set_range(lo)
                elif not cur.last():
                    return out
                for key, value in cur:
                    if key[:plen] != prefix:
                        break
                    first = _SEQ.unpack_from(key, plen)[0]
                    if end >= 1 and first > end:
                        break
                    if len(key) == plen + 8:
                        if first >= begin:
                            out.append((first, bytes(value)))
                        continue
                    for seq, raw in _unpack_batch(value):
                        if end >= 1 and seq > end:
                            break
                        if seq >= begin:
                            out.append((seq, raw))
        return out

    def reset(self) -> None:
        """Back to sequence 1 on both sides, drop the messages, new creation time (one txn)."""
        env = self._env
        with env.lock:
            self._open()
            created = self._clock()

            def write(txn: Any) -> None:
                cur = txn.cursor(db=env.messages)
                if cur.set_range(self._prefix):
                    while cur.key()[: len(self._prefix)] == self._prefix:
                        if not cur.delete():
                            break
                txn.put(self._prefix, _STATE.pack(1, 1, _micros(created)), db=env.state)
                txn.delete(self._prefix + _DAY_KEY, db=env.state)

            env.write(write, self._sync)
            self._day = self._prune_below = 0
            self._sender = self._target = 1
            self._created = created
            self._last_seq = 0

    def refresh(self) -> None:
        """Reload the sequence numbers and creation time from disk."""
        with self._env.lock:
            self._open()
            self._load()

    def close(self) -> None:
        """Release this session (the environment closes with its last store)."""
        env = self._env
        with env.lock:
            if self._closed:
                return
            self._closed = True
            env.open_sessions.discard(self.session_id)
        _release_env(env)

    @property
    def directory(self) -> Path:
        """The LMDB environment's directory."""
        return self._env.path


class LmdbStoreFactory:
    """(SessionID) -> LmdbStore, all in one directory; close() closes what it opened."""

    def __init__(
        self, directory: str | Path, *, clock: Clock = _utc_now, map_size: int = _DEFAULT_MAP_SIZE,
        sync: bool = True,
    ) -> None:
        """Stores of every session will live in directory (created if missing); ``sync`` as
        for :class:`LmdbStore`."""
        self.directory = Path(directory)
        self._clock = clock
        self._map_size = map_size
        self._sync = sync
        self._stores: list[LmdbStore] = []
        self._lock = threading.Lock()

    def __call__(self, session_id: SessionID) -> LmdbStore:
        """Open the session's store (StoreError if it is already open in this process)."""
        store = LmdbStore(self.directory, session_id, clock=self._clock, map_size=self._map_size, sync=self._sync)
        with self._lock:
            self._stores.append(store)
        return store

    def close(self) -> None:
        """Close every store this factory opened."""
        with self._lock:
            stores, self._stores = self._stores, []
        for s in stores:
            s.close()


def make_store_factory(
    file_store_path: str | Path | None, *, clock: Clock = _utc_now, sync: bool = True
) -> LmdbStoreFactory | MemoryStoreFactory:
    """LMDB stores in file_store_path (FileStorePath), or memory stores when it is None;
    ``sync`` is FileStoreSync."""
    if file_store_path is None:
        return MemoryStoreFactory(clock=clock)
    return LmdbStoreFactory(file_store_path, clock=clock, sync=sync)


def _micros(t: datetime) -> int:
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return round(t.timestamp() * 1_000_000)
