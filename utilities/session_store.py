"""The message store of a customer's FIX session on a customer utility: local messages, replicated limits.

It keeps the FIX engine's store contract (:class:`fixgw.store.MessageStore`, plugged in through
``Engine(store_factory=...)``): the engine knows nothing of the record log.

What is where, and why:

- The messages sent and the exact next numbers stay in the node's own (unsynced) LMDB message
  store, as before: replicating every ExecutionReport's bytes would double the records per order
  (the cost goal is +10% CPU per order), and a successor does not need them. It gap-fills the
  numbers it does not hold and reports the events again from the records, which it holds anyway
  (PossResend=Y, same ExecID: :mod:`utilities.customer`).
- What a successor needs is in the record log (:mod:`utilities.session_rule`): which numbers the
  owner may have sent (reservations), what the customer sent (its requests' records).

This store is where that rule is enforced, because every message the engine sends passes
through :meth:`commit_batch` before its bytes are written (group commit): a batch that uses a
number beyond the owner's replicated reservation, or a batch of a session this process no longer
owns (handed over, taken over, or this process was paused past the liveness timeout), raises
:class:`fixgw.store.StoreError`. The engine then closes the connection without writing what the
batch held: nothing is ever sent on a session this process may have lost.

A full disk does not close the session (issue 14, item 5: the customer utility must keep its
sessions and answer, with a reject, what it cannot store). When the local store cannot commit
because the filesystem is full (:func:`replication.storage_health.is_disk_full`), the batch is
held in memory instead (:class:`_Spill`: the messages by number, the latest next numbers), the
node's :class:`~replication.storage_health.StorageHealth` says "FIX message store: disk full",
and the held part is written to the local store at the next commit after a back-off (0.2 s
doubling to 2 s) or at :meth:`SessionStoreFactory.retry_spilled`, which the customer utility
calls twice a second. This store was never synced per message (``fix_store_sync``: the record
log holds what a successor needs), so holding a while in memory changes what a SIGKILL may
lose only in degree; past :data:`SPILL_LIMIT_BYTES` held, the commit is refused and the
connection closes as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import lmdb

from fixgw.config import SessionID
from fixgw.store import LmdbStore, MessageStore, StoreError
from replication.storage_health import FIX_STORE, Backoff, StorageHealth, is_disk_full
from utilities.session_rule import SessionKey

log = logging.getLogger(__name__)
SPILL_LIMIT_BYTES = 64 << 20  # messages held in memory per session while the disk is full, at most
WRITE_ERRORS = (lmdb.Error, OSError, StoreError)  # what a local commit raises when it cannot write

__all__ = ["Permit", "ReplicatedSessionStore", "SessionStoreFactory"]


class Permit(Protocol):
    """What the store asks the session's owner (:class:`utilities.session_owner.SessionOwner`)."""

    def may_send(self, key: SessionKey, last_seq: int) -> str | None:
        """None when this process owns the session and numbers up to ``last_seq`` are reserved
        and replicated; else why not (the batch is refused)."""

    def reset_happened(self, key: SessionKey) -> None:
        """Both sides started again at 1: say so in the log."""


@dataclass(slots=True)
class _Spill:
    """What a session's store holds in memory while its disk is full."""

    reset: bool = False                                   # the local store is to be reset first
    messages: dict[int, bytes] = field(default_factory=dict)
    next_sender: int | None = None
    next_target: int | None = None
    size: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    retry_at: float = 0.0


class ReplicatedSessionStore(MessageStore):
    """A local :class:`LmdbStore` whose commits the session's owner permits (see the module docstring)."""

    def __init__(self, local: LmdbStore, key: SessionKey, permit: Permit, *, health: StorageHealth | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._local = local
        self.key = key
        self._permit = permit
        self._health = health if health is not None else StorageHealth()
        self._monotonic = monotonic
        self._lock = threading.RLock()   # the engine commits from its store thread
        self._spill: _Spill | None = None
        self._part = f"{FIX_STORE} of {key.begin_string}:{key.client}"  # in the node's health report

    @property
    def spilled(self) -> bool:
        """Whether messages are held in memory (the disk was full at the last try)."""
        return self._spill is not None

    # the engine reads these: the local store's values (or those held while the disk is full)
    @property
    def next_sender_seq(self) -> int:
        sp = self._spill
        if sp is not None and sp.next_sender is not None:
            return sp.next_sender
        return 1 if sp is not None and sp.reset else self._local.next_sender_seq

    @property
    def next_target_seq(self) -> int:
        sp = self._spill
        if sp is not None and sp.next_target is not None:
            return sp.next_target
        return 1 if sp is not None and sp.reset else self._local.next_target_seq

    @property
    def creation_time(self):  # type: ignore[no-untyped-def]  # a datetime, as the contract says
        return self._local.creation_time

    @property
    def syncs(self) -> bool:
        return self._local.syncs

    def set_next_sender_seq(self, n: int) -> None:
        self.commit_batch((), n, None)

    def set_next_target_seq(self, n: int) -> None:
        self._local.set_next_target_seq(n)

    def save(self, seq: int, raw: bytes) -> None:
        self.commit_batch(((seq, raw),), None, None)

    def get_range(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        with self._lock:
            sp = self._spill
            if sp is None:
                return self._local.get_range(begin, end)
            held = {} if sp.reset else dict(self._local.get_range(begin, end))
            held.update((n, raw) for n, raw in sp.messages.items() if n >= begin and (end < 1 or n <= end))
            return sorted(held.items())

    def commit_batch(
        self,
        messages: Sequence[tuple[int, bytes]],
        next_sender_seq: int | None,
        next_target_seq: int | None,
    ) -> None:
        """Commit locally what the owner permits; StoreError (nothing written) otherwise. A full
        disk: held in memory (see the module docstring)."""
        last = (next_sender_seq - 1) if next_sender_seq is not None else 0
        if messages:
            last = max(last, max(s for s, _ in messages))
        why = self._permit.may_send(self.key, last)
        if why is not None:
            raise StoreError(f"session {self.key}: {why}")
        with self._lock:
            if self._spill is None:
                try:
                    self._local.commit_batch(messages, next_sender_seq, next_target_seq)
                    return
                except WRITE_ERRORS as exc:
                    self._start_spill(exc, reset=False)
            self._hold(messages, next_sender_seq, next_target_seq)
            self._retry(force=False)

    def _start_spill(self, exc: BaseException, *, reset: bool) -> None:
        """The local store could not write: hold in memory if the disk is full, else raise."""
        if not is_disk_full(exc, self._local.directory):
            raise exc
        log.error("session %s: FIX message store cannot write (%s): holding its messages in memory until it can",
                  self.key, exc)
        self._spill = _Spill(reset=reset)
        self._spill.retry_at = self._monotonic() + self._spill.backoff.next()
        self._health.failed(self._part, "disk full")

    def _hold(self, messages: Sequence[tuple[int, bytes]], next_sender: int | None, next_target: int | None) -> None:
        sp = self._spill
        assert sp is not None
        size = sum(len(raw) for _, raw in messages)
        if sp.size + size > SPILL_LIMIT_BYTES:
            raise StoreError(f"session {self.key}: the disk is full and {sp.size} bytes are held in memory already")
        for n, raw in messages:
            sp.messages[n] = bytes(raw)
        sp.size += size
        if next_sender is not None:
            sp.next_sender = next_sender
        if next_target is not None:
            sp.next_target = next_target

    def _retry(self, *, force: bool) -> bool:
        """Write what is held to the local store (when due, or ``force``); True once nothing is held."""
        sp = self._spill
        if sp is None:
            return True
        now = self._monotonic()
        if not force and now < sp.retry_at:
            return False
        try:
            if sp.reset:
                self._local.reset()
                sp.reset = False   # done: a failure below leaves the rest held
            self._local.commit_batch(sorted(sp.messages.items()), sp.next_sender, sp.next_target)
        except Exception as exc:  # noqa: BLE001 - still full (or another LMDB error): try again later
            sp.retry_at = now + sp.backoff.next()
            log.debug("session %s: FIX message store still cannot write: %s", self.key, exc)
            return False
        self._spill = None
        log.warning("session %s: FIX message store writes again (%d held messages written)", self.key,
                    len(sp.messages))
        self._health.recovered(self._part)
        return True

    def retry_spilled(self) -> bool:
        """Write what is held now if its back-off is over; True once nothing is held."""
        with self._lock:
            return self._retry(force=False)

    def reset(self) -> None:
        with self._lock:
            if self._spill is None:
                try:
                    self._local.reset()
                except WRITE_ERRORS as exc:
                    self._start_spill(exc, reset=True)
            else:
                self._spill = _Spill(reset=True, backoff=self._spill.backoff, retry_at=self._spill.retry_at)
        self._permit.reset_happened(self.key)

    def start_at(self, next_sender: int, next_target: int) -> None:
        """A take-over: the messages held are of an earlier epoch, drop them; start here."""
        with self._lock:
            if self._spill is None:
                try:
                    self._local.reset()
                    self._local.commit_batch((), next_sender, next_target)
                    return
                except WRITE_ERRORS as exc:
                    self._start_spill(exc, reset=True)
            else:
                self._spill = _Spill(reset=True, backoff=self._spill.backoff, retry_at=self._spill.retry_at)
            self._hold((), next_sender, next_target)

    def refresh(self) -> None:
        self._local.refresh()

    def close(self) -> None:
        self._local.close()


class SessionStoreFactory:
    """(SessionID) -> ReplicatedSessionStore over an LMDB store in ``directory``; keeps them by key."""

    def __init__(self, directory: str, permit: Permit, *, sync: bool, health: StorageHealth | None = None) -> None:
        self.directory = directory
        self.permit = permit
        self.sync = sync
        self.health = health if health is not None else StorageHealth()
        self.stores: dict[SessionKey, ReplicatedSessionStore] = {}

    def __call__(self, session_id: SessionID) -> ReplicatedSessionStore:
        key = SessionKey(session_id.begin_string, session_id.target_comp_id)
        store = ReplicatedSessionStore(LmdbStore(self.directory, session_id, sync=self.sync), key, self.permit,
                                       health=self.health)
        self.stores[key] = store
        return store

    def retry_spilled(self) -> None:
        """Write what any session holds in memory (a full disk), each when its back-off is over."""
        for store in list(self.stores.values()):
            if store.spilled:
                store.retry_spilled()


StartFn = Callable[[SessionKey, int, int], None]
