"""What the utilities need of a record node, as a ``typing.Protocol``.

The customer and street utilities and the firm node run on a ``replication.node.
ReplicationNode`` (an LMDB log replicated over MQTT), but they use a small part of it:
append an own record durably, hear every new record, and read the log. Naming that part
keeps the roles typed without tying them to the class (a test may hand a role a node
without MQTT, or only a log), and shows in one place what the roles ask of replication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Protocol

from replication.log import KeyFilter, LogReader
from replication.matrix import Holding
from replication.record import Record, RecordType


class RecordSource(Protocol):
    """The reads of a node's log the roles do."""

    @property
    def head(self) -> int:
        """The highest sequence number of this node's own records."""
        ...

    def iter_all(self) -> Iterator[Record]: ...

    def iter_authoritative(self) -> Iterator[Record]: ...

    def iter_type(self, rtype: RecordType) -> Iterator[Record]: ...

    def records_for_txn(self, txn_id: str, want: KeyFilter | None = None) -> list[Record]: ...

    def reader(self) -> AbstractContextManager[LogReader]:
        """One consistent read (a snapshot's position and the records after it)."""
        ...

    def high_water_marks(self) -> dict[str, int]:
        """Per origin, the highest sequence number held with every one before it."""
        ...

    def holding_of(self, origin: str) -> Holding | None:
        """How this log holds ``origin``'s records: authoritative, read-only, or not at all."""
        ...


class RecordNode(Protocol):
    """A node's log and what the roles do with it."""

    @property
    def log(self) -> RecordSource: ...

    def append(self, *, type: RecordType, txn: str, status: str, **fields: Any) -> Awaitable[Record]:
        """Append an own record; it resolves once the record is durable in LMDB."""
        ...

    def add_listener(self, callback: Callable[[Record], None], *, replay: bool = False) -> None: ...
