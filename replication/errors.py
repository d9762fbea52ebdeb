"""The one small exception hierarchy of the replication package.

Callers catch :class:`ReplicationError` for anything this package raises on purpose;
the subclasses say which part failed so that the message can be acted upon.
"""

from __future__ import annotations


class ReplicationError(Exception):
    """Base class of every error the replication package raises on purpose."""


class RecordDecodeError(ReplicationError):
    """Bytes (or a JSON line) that are not a valid record or bus message.

    Decoding anything malformed raises this and nothing else, so a receiver can log,
    count and drop a bad payload without ever crashing.
    """


class RecordEncodeError(ReplicationError, ValueError):
    """A record that cannot be encoded (e.g. an ``extra`` value of an unsupported type)."""


class LogError(ReplicationError):
    """The LMDB record log failed (cannot open, cannot write)."""


class LogFullError(LogError):
    """The LMDB map or the disk is full: the append was NOT made durable.

    ``map_grown``: the map was full but has grown since (it was below its limit): the same
    write may be made again, in a new transaction. ``disk``: the filesystem is full (else the
    map is: at its limit, or it could not grow just now).
    """

    def __init__(self, message: str, *, map_grown: bool = False, disk: bool = False) -> None:
        super().__init__(message)
        self.map_grown = map_grown
        self.disk = disk


class LogClosedError(LogError):
    """The log (or its writer) was closed before the operation could run."""


class LogConflictError(LogError):
    """The data directory belongs to another node or role than the one asked for."""


class ArchiveError(ReplicationError):
    """An archive file (``replication.archive``) that cannot be read or written: not an archive,
    cut short, corrupt, or another node's; the message names the file and what is wrong."""
