"""Conflicts: a record received under a key a node holds with other bytes (issue 14).

Records are insert-only and a key (origin, seq) names one record for ever, so two versions
of one key mean that someone forged one (with an origin's stolen password, or on a broker
without our ACL), or that an origin lost its log and reused its seqs. The log keeps the
first version (:class:`replication.log.Conflict`); what a node then reports, in its log
lines and through ``fixgw status``, is a :class:`ConflictReport`: the key and one readable
line per version, enough for an operator to see which one is real.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from replication.codec import decode_record
from replication.errors import RecordDecodeError

RECENT_CONFLICTS = 20  # conflicts kept (both versions) for `fixgw status`


def describe_record(data: bytes) -> str:
    """One line naming a stored or received record version (for conflict reports)."""
    if not data:
        return "(none: not written here)"
    try:
        rec = decode_record(data)
    except RecordDecodeError as exc:
        return f"undecodable ({exc}) {data[:48].hex()}"
    fields = [rec.type.value, rec.status or "-", f"txn={rec.txn}", f"hlc={rec.hlc.wall_ns}+{rec.hlc.logical}"]
    for name in ("account", "symbol", "side", "order_qty", "price", "last_qty", "last_px", "cum_qty"):
        v = getattr(rec, name)
        if v is not None and v != "":
            fields.append(f"{name}={v}")
    return " ".join(fields)


@dataclass(frozen=True, slots=True)
class ConflictReport:
    """A conflict as ``fixgw status`` shows it: the key, the version kept, the one refused."""

    origin: str
    seq: int
    kept: str
    received: str
    own: bool  # a foreign version of one of this node's own records
    at: float  # wall-clock time it was seen

    def as_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "seq": self.seq, "kept": self.kept, "received": self.received,
                "own": self.own, "at": self.at}
