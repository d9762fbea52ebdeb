"""A snapshot file, whatever role's state it holds: its header, its checks, its atomic write.

Two roles keep a snapshot of what they rebuild from their log at start-up: the customer
utility (:mod:`utilities.snapshot`) and the street utility (:mod:`utilities.street_snapshot`).
What their files have in common lives here, once, so that a fix to a check or to the write
reaches both:

- the header: a magic line naming the kind, the format version (2 bytes), a fingerprint of the
  source of the modules whose objects the kind holds or whose rules made them (32 bytes:
  another build, another fingerprint), a SHA-256 of the payload (32 bytes);
- the payload: a pickle of a dict (the state is Python objects, Decimals, dates and Records;
  pickle writes and reads them in a few hundred ms at 250,000 orders where a field-by-field
  encoding would need a codec per class). A :class:`replication.record.Record` pickles as its
  encoded bytes (its ``extra`` is a read-only mapping pickle refuses). The file is the node's
  own, in its data directory, as trusted as its LMDB, and unpickled only after its checksum
  matches;
- the checks every kind makes after reading: the node that wrote it, and a position (per origin
  a high-water mark) not beyond what the log holds (a log replaced by an older copy);
- the write: a temporary file, fsynced, renamed over the file, the directory fsynced.

A snapshot that fails a check raises :class:`SnapshotError` naming it; its role ignores the
snapshot with a warning and folds the whole log.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import os
import pickle
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from replication.codec import decode_record, encode_record
from replication.record import Record

_ROOT = Path(__file__).resolve().parents[1]


class SnapshotError(Exception):
    """A snapshot that fails its checks (the text says which)."""


@dataclass(frozen=True)
class SnapshotKind:
    """One kind of snapshot: its name, magic line, format version and fingerprinted sources
    (paths from the project root)."""

    name: str
    magic: bytes
    format: int
    sources: tuple[str, ...]
    _fingerprint: list[bytes] = field(default_factory=list, compare=False, repr=False)

    @property
    def header_len(self) -> int:
        return len(self.magic) + 2 + 32 + 32

    def fingerprint(self) -> bytes:
        """SHA-256 of the sources (this module's included: it makes the file), computed once."""
        if not self._fingerprint:
            h = hashlib.sha256()
            for name in (*self.sources, "utilities/snapshot_file.py"):
                h.update(name.encode() + b"\0" + (_ROOT / name).read_bytes())
            self._fingerprint.append(h.digest())
        return self._fingerprint[0]


def _reduce_record(r: Record) -> tuple[Callable[[bytes], Record], tuple[bytes]]:
    """A Record pickles as its encoded bytes (its ``extra`` is a read-only mapping pickle refuses)."""
    return decode_record, (encode_record(r),)


def encode(kind: SnapshotKind, payload: Mapping[str, Any]) -> bytes:
    """The file's bytes: the header of ``kind`` and ``payload`` pickled."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, Record: _reduce_record}
    pickler.dump(dict(payload))
    body = buf.getvalue()
    return kind.magic + kind.format.to_bytes(2, "big") + kind.fingerprint() + hashlib.sha256(body).digest() + body


def decode(kind: SnapshotKind, data: bytes) -> dict[str, Any]:
    """The payload of a file of ``kind`` whose header checks (magic, format, fingerprint,
    checksum). Raises SnapshotError."""
    magic = kind.magic
    if not data.startswith(magic) or len(data) < kind.header_len:
        raise SnapshotError(f"not a {kind.name} snapshot (or truncated)")
    at = len(magic)
    fmt = int.from_bytes(data[at:at + 2], "big")
    if fmt != kind.format:
        raise SnapshotError(f"format {fmt}, this build reads {kind.format}")
    if data[at + 2:at + 34] != kind.fingerprint():
        raise SnapshotError("written by another build (the modules of the state differ)")
    body = data[kind.header_len:]
    if hashlib.sha256(body).digest() != data[at + 34:at + 66]:
        raise SnapshotError("checksum mismatch (corrupted or truncated)")
    try:
        d = pickle.loads(body)  # the node's own file, its checksum checked
    except Exception as exc:  # noqa: BLE001 - whatever a bad pickle raises
        raise SnapshotError(f"unreadable payload: {exc}") from None
    if not isinstance(d, dict) or not isinstance(d.get("position"), dict):
        raise SnapshotError(f"unreadable payload: not a {kind.name} snapshot's")
    return d


def check_node_and_position(d: Mapping[str, Any], *, node: str, held: Mapping[str, int] | None) -> dict[str, int]:
    """The position of a decoded payload written by ``node``, not beyond ``held`` (the log's
    high-water marks; None: not checked). Raises SnapshotError."""
    if d.get("node") != node:
        raise SnapshotError(f"a snapshot of node {d.get('node')!r}, not {node!r}")
    position = {str(k): int(v) for k, v in d["position"].items()}
    if held is not None:
        beyond = sorted(o for o, seq in position.items() if seq > held.get(o, 0))
        if beyond:
            raise SnapshotError(f"its position is beyond the log for {', '.join(beyond)}")
    return position


def read_bytes(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why ("" when there is none)."""
    try:
        return path.read_bytes(), ""
    except FileNotFoundError:
        return None, ""
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror}"


def write_file(path: Path, data: bytes) -> None:
    """Atomically: a temporary file, fsynced, renamed over ``path``, the directory fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # a writer of its own (a restarted node's and an old one's)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Taken:
    """What one snapshot process did (either kind)."""

    records: int          # records the snapshot is the fold of
    folded: int           # of which folded now (the rest came from the previous snapshot)
    bytes: int
    seconds: float
    previous: str         # "" or why the previous snapshot was not used
