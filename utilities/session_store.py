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
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fixgw.config import SessionID
from fixgw.store import LmdbStore, MessageStore, StoreError
from utilities.session_rule import SessionKey

__all__ = ["Permit", "ReplicatedSessionStore", "SessionStoreFactory"]


class Permit(Protocol):
    """What the store asks the session's owner (:class:`utilities.session_owner.SessionOwner`)."""

    def may_send(self, key: SessionKey, last_seq: int) -> str | None:
        """None when this process owns the session and numbers up to ``last_seq`` are reserved
        and replicated; else why not (the batch is refused)."""

    def reset_happened(self, key: SessionKey) -> None:
        """Both sides started again at 1: say so in the log."""


class ReplicatedSessionStore(MessageStore):
    """A local :class:`LmdbStore` whose commits the session's owner permits (see the module docstring)."""

    def __init__(self, local: LmdbStore, key: SessionKey, permit: Permit) -> None:
        self._local = local
        self.key = key
        self._permit = permit

    # the engine reads these: the local store's values
    @property
    def next_sender_seq(self) -> int:
        return self._local.next_sender_seq

    @property
    def next_target_seq(self) -> int:
        return self._local.next_target_seq

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
        return self._local.get_range(begin, end)

    def commit_batch(
        self,
        messages: Sequence[tuple[int, bytes]],
        next_sender_seq: int | None,
        next_target_seq: int | None,
    ) -> None:
        """Commit locally what the owner permits; StoreError (nothing written) otherwise."""
        last = (next_sender_seq - 1) if next_sender_seq is not None else 0
        if messages:
            last = max(last, max(s for s, _ in messages))
        why = self._permit.may_send(self.key, last)
        if why is not None:
            raise StoreError(f"session {self.key}: {why}")
        self._local.commit_batch(messages, next_sender_seq, next_target_seq)

    def reset(self) -> None:
        self._local.reset()
        self._permit.reset_happened(self.key)

    def start_at(self, next_sender: int, next_target: int) -> None:
        """A take-over: the messages held are of an earlier epoch, drop them; start here."""
        self._local.reset()
        self._local.commit_batch((), next_sender, next_target)

    def refresh(self) -> None:
        self._local.refresh()

    def close(self) -> None:
        self._local.close()


class SessionStoreFactory:
    """(SessionID) -> ReplicatedSessionStore over an LMDB store in ``directory``; keeps them by key."""

    def __init__(self, directory: str, permit: Permit, *, sync: bool) -> None:
        self.directory = directory
        self.permit = permit
        self.sync = sync
        self.stores: dict[SessionKey, ReplicatedSessionStore] = {}

    def __call__(self, session_id: SessionID) -> ReplicatedSessionStore:
        key = SessionKey(session_id.begin_string, session_id.target_comp_id)
        store = ReplicatedSessionStore(LmdbStore(self.directory, session_id, sync=self.sync), key, self.permit)
        self.stores[key] = store
        return store


StartFn = Callable[[SessionKey, int, int], None]
