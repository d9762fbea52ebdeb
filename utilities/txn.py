"""Transaction numbers that no other utility can produce.

A txn looks like ``"<node_id>-<epoch>.<counter>"``, e.g. ``"cfu1-1042.7"``:

* ``node_id`` — the customer utility that received the order. No other node has the same id,
  so no other node can produce the same txn, and the txn tells which utility created it.
* ``epoch`` — the highest sequence number of the node's OWN records in its LMDB log when the
  allocator was created (0 for an empty log).
* ``counter`` — 1, 2, 3, ... within that process lifetime.

Why not simply the counter, or ``"<node_id>-<seq of the ORDER record>"``? An allocator that
keeps no state of its own must still never repeat a txn after a restart. A txn only becomes
known outside the process inside a record this node commits (the client is acknowledged after
the commit), and every commit raises the node's high-water sequence. So if a process lifetime
exposed any txn, the next lifetime starts with a larger epoch; if it exposed none, reusing its
numbers harms nobody. This holds whatever the batching and ordering of appends, which a plain
``high_water + counter`` scheme does not (txn A issued, txn B issued, only B committed, restart:
``high_water + 1`` is B again), nor ``"<node_id>-<seq of the ORDER record>"`` (the txn is
needed before the record is appended, and group commit decides the seq later).

The epoch could also be any other durable value that strictly grows whenever a txn is exposed
(e.g. the node's HLC wall time seeded from its log); the high-water sequence is the simplest.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from utilities.errors import InvalidValue, WrongType


@dataclass(frozen=True, slots=True)
class TxnId:
    """A parsed transaction number."""

    node_id: str
    epoch: int
    counter: int

    def __post_init__(self) -> None:
        _check_node_id(self.node_id)
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or self.epoch < 0:
            raise InvalidValue(f"TxnId.epoch must be an int >= 0, got {self.epoch!r}")
        if not isinstance(self.counter, int) or isinstance(self.counter, bool) or self.counter < 1:
            raise InvalidValue(f"TxnId.counter must be an int >= 1, got {self.counter!r}")

    def __str__(self) -> str:
        return f"{self.node_id}-{self.epoch}.{self.counter}"


def _check_node_id(node_id: str) -> None:
    if not isinstance(node_id, str) or not node_id:
        raise InvalidValue(f"txn node id must be a non-empty str, got {node_id!r}")
    # '/' would break MQTT topics and record origins; whitespace/SOH would break FIX fields
    if "/" in node_id or any(c.isspace() or ord(c) < 32 for c in node_id):
        raise InvalidValue(f"txn node id must not contain '/', whitespace or control characters: {node_id!r}")


def txn_for(node_id: str, epoch: int, counter: int) -> str:
    """Format a transaction number (pure): ``txn_for("cfu1", 1042, 7) == "cfu1-1042.7"``."""
    return str(TxnId(node_id, epoch, counter))


def parse_txn(txn: str) -> TxnId:
    """Parse a transaction number made by :func:`txn_for`; ValueError says what is wrong.

    The node id may itself contain '-': the split is on the LAST '-'.
    """
    if not isinstance(txn, str):
        raise WrongType(f"a txn must be a str, got {txn!r}")
    node_id, dash, numbers = txn.rpartition("-")
    epoch_s, dot, counter_s = numbers.partition(".")
    if not dash or not node_id or not dot or not epoch_s.isdigit() or not counter_s.isdigit() \
            or not epoch_s.isascii() or not counter_s.isascii():
        raise InvalidValue(f"not a txn of the form '<node_id>-<epoch>.<counter>': {txn!r}")
    return TxnId(node_id, int(epoch_s), int(counter_s))


class TxnAllocator:
    """Issues ``txn_for(node_id, epoch, 1)``, ``txn_for(node_id, epoch, 2)``, ...

    ``epoch`` must be the highest sequence number of this node's own records in its log at
    start-up (see the module docstring for why that makes txns unique across restarts).
    Thread-safe.
    """

    def __init__(self, node_id: str, epoch: int) -> None:
        _check_node_id(node_id)
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise InvalidValue(f"TxnAllocator epoch must be an int >= 0 (the log's high-water seq), got {epoch!r}")
        self._node_id = node_id
        self._epoch = epoch
        self._counter = 0
        self._lock = threading.Lock()

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def epoch(self) -> int:
        return self._epoch

    def next(self) -> str:
        with self._lock:
            self._counter += 1
            counter = self._counter
        return txn_for(self._node_id, self._epoch, counter)
