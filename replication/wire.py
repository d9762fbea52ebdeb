"""What goes over MQTT: topic names and the four message kinds.

Topics (``<cluster>`` and node ids are single topic levels)::

    fixgw/<cluster>/rec/<role>/<node>      a node's records (live, QoS 1)
    fixgw/<cluster>/digest/<role>/<node>   a node's digest: its head and high-water marks
                                           (retained, so a subscriber learns heads at once)
    fixgw/<cluster>/req/<origin>/<node>    <node>'s requests to <origin> to resend a range of
                                           <origin>'s records
    fixgw/<cluster>/resend/<node>/<origin> records of <origin> resent to <node> on its request

and two kinds the roles built on a node use for their own messages (``utilities/``; the
replication node hands them over untouched)::

    fixgw/<cluster>/alive/<role>/<node>    a node's heartbeat (QoS 0, not retained)
    fixgw/<cluster>/cmd/<node>             commands to <node> (customer -> street routing, QoS 1)
    fixgw/<cluster>/quote/<street>         market data a street utility serves (QoS 0; not records)
    fixgw/<cluster>/mdwant/<customer>      the symbols a customer utility wants quotes of (QoS 0)

Except for commands, the sending node is always the last topic level, so that the broker's
ACL can let each node publish only under its own name (see :mod:`replication.auth`; only
customer utilities may publish commands), and a receiver checks that the sender named in a
payload is the one its topic names: a payload that disagrees with its topic is malformed
(dropped and counted), whoever managed to publish it.

Every topic name is built here and nowhere else, so the layout can be read in one place.

Payloads are msgpack arrays that start with the wire version and a kind letter:

    [1, "B", origin, origin_role, [record bytes, ...]]        a batch of one origin's records
    [1, "R", origin, origin_role, first, last, [record bytes, ...]]
                                                             a resend answer: complete for first..last
    [1, "D", node, role, head, {origin: hwm, ...}]           a digest
    [1, "Q", requester, origin, first, last]                 a resend request

An origin answers a resend request with "R": the records of ``first..last`` it still holds,
in seq order, and the word that every other seq of that range is gone for good. Its own log
loses records only when retention archives old, final orders to a file, always below its
contiguous high-water mark, so a seq it does not hold there was archived, not lost in
transit. Without that word a replica that was away would stop its high-water mark at the
first archived seq and ask for it for ever; with it, the mark moves over the holes (a "B" can
say nothing of the seqs it lacks: its records are whatever one publish carried). Both decode
to :class:`Batch`; ``Batch.complete`` is the range of an "R".

Decoding anything malformed raises :class:`RecordDecodeError` (and nothing else).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import msgpack

from replication.codec import check_node_id, decode_record
from replication.errors import RecordDecodeError
from replication.record import Record, Role

WIRE_VERSION = 1
HEARTBEAT_KIND = "alive"
COMMAND_KIND = "cmd"
SESSION_KIND = "session"   # requests to hand a customer's FIX session over (utilities.session_owner)
QUOTE_KIND = "quote"       # market data from a street utility (utilities.quote_feed)
MD_INTEREST_KIND = "mdwant"  # symbols a customer utility wants quotes of (utilities.customer_marketdata)
_ROLES = {r.value: r for r in Role}


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names of one cluster."""

    cluster: str

    def __post_init__(self) -> None:
        check_node_id(self.cluster, "cluster name")

    @property
    def prefix(self) -> str:
        return f"fixgw/{self.cluster}/"

    def records(self, role: Role, node: str) -> str:
        return f"fixgw/{self.cluster}/rec/{role.value}/{node}"

    def records_of_role(self, role: Role) -> str:
        return f"fixgw/{self.cluster}/rec/{role.value}/+"

    def digest(self, role: Role, node: str) -> str:
        return f"fixgw/{self.cluster}/digest/{role.value}/{node}"

    def digests_of_role(self, role: Role) -> str:
        return f"fixgw/{self.cluster}/digest/{role.value}/+"

    def requests(self, origin: str, requester: str) -> str:
        """Where ``requester`` asks ``origin`` to resend."""
        return f"fixgw/{self.cluster}/req/{origin}/{requester}"

    def requests_to(self, origin: str) -> str:
        return f"fixgw/{self.cluster}/req/{origin}/+"

    def resends(self, requester: str, origin: str) -> str:
        """Where ``origin`` resends its records to ``requester``."""
        return f"fixgw/{self.cluster}/resend/{requester}/{origin}"

    def resends_to(self, requester: str) -> str:
        return f"fixgw/{self.cluster}/resend/{requester}/+"

    def heartbeat(self, role: str, node: str) -> str:
        return f"fixgw/{self.cluster}/{HEARTBEAT_KIND}/{role}/{node}"

    def heartbeats(self) -> str:
        """Every node's heartbeat (a subscription filter)."""
        return f"fixgw/{self.cluster}/{HEARTBEAT_KIND}/#"

    def commands(self, node: str) -> str:
        return f"fixgw/{self.cluster}/{COMMAND_KIND}/{node}"

    def sessions(self, node: str) -> str:
        """Where a customer utility hears requests to hand a customer's FIX session over."""
        return f"fixgw/{self.cluster}/{SESSION_KIND}/{node}"

    def quotes(self, street: str) -> str:
        """Where ``street`` publishes the market data it serves (``utilities.quote_wire``)."""
        return f"fixgw/{self.cluster}/{QUOTE_KIND}/{street}"

    def all_quotes(self) -> str:
        return f"fixgw/{self.cluster}/{QUOTE_KIND}/+"

    def md_interest(self, customer: str) -> str:
        """Where customer utility ``customer`` says which symbols it wants quotes of."""
        return f"fixgw/{self.cluster}/{MD_INTEREST_KIND}/{customer}"

    def all_md_interest(self) -> str:
        return f"fixgw/{self.cluster}/{MD_INTEREST_KIND}/+"

    def kind_of(self, topic: str) -> str:
        """The kind level of a topic of this cluster (``rec``, ``alive``, ``cmd``, ...); "" for
        a topic outside the cluster."""
        prefix = self.prefix
        if not topic.startswith(prefix):
            return ""
        return topic[len(prefix):].split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class Batch:
    """Records of one origin, in one publish. ``records`` pairs each record with its bytes.

    ``complete``: for a resend answer ("R"), the range ``(first, last)`` it answers whole:
    ``records`` are those of the range the origin still holds, every other seq of it was
    archived; None for a live batch ("B").
    """

    origin: str
    origin_role: Role
    records: tuple[tuple[Record, bytes], ...]
    complete: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    """A node's periodic summary: its own head (highest own seq) and what it holds."""

    node: str
    role: Role
    head: int
    hwms: dict[str, int]


@dataclass(frozen=True, slots=True)
class ResendRequest:
    """``requester`` asks ``origin`` to resend its records first..last (inclusive)."""

    requester: str
    origin: str
    first: int
    last: int

    def __post_init__(self) -> None:
        if self.first < 1 or self.last < self.first:
            raise ValueError(f"bad resend range {self.first}..{self.last}")


Message = Batch | Digest | ResendRequest


def encode_batch(origin: str, origin_role: Role, records: Iterable[bytes]) -> bytes:
    return cast(bytes, msgpack.packb([WIRE_VERSION, "B", origin, origin_role.value, list(records)], use_bin_type=True))


def encode_resend(origin: str, origin_role: Role, first: int, last: int, records: Iterable[bytes]) -> bytes:
    """An "R": ``records`` (in seq order, within first..last) are all of ``origin``'s records
    of ``first..last`` that it still holds."""
    if first < 1 or last < first:
        raise ValueError(f"bad resend answer range {first}..{last}")
    return cast(bytes, msgpack.packb([WIRE_VERSION, "R", origin, origin_role.value, first, last, list(records)],
                                     use_bin_type=True))


def encode_digest(node: str, role: Role, head: int, hwms: dict[str, int]) -> bytes:
    return cast(bytes, msgpack.packb([WIRE_VERSION, "D", node, role.value, head, hwms], use_bin_type=True))


def encode_request(req: ResendRequest) -> bytes:
    return cast(bytes, msgpack.packb([WIRE_VERSION, "Q", req.requester, req.origin, req.first, req.last], use_bin_type=True))


def _node(v: object, what: str) -> str:
    try:
        return check_node_id(v, what)
    except ValueError as exc:
        raise RecordDecodeError(str(exc)) from None


def _role(v: object) -> Role:
    role = _ROLES.get(v) if type(v) is str else None
    if role is None:
        raise RecordDecodeError(f"unknown role {v!r:.40}")
    return role


def _count(v: object, what: str) -> int:
    if type(v) is not int or v < 0:
        raise RecordDecodeError(f"{what} must be a non-negative integer, got {v!r:.40}")
    return v


def _records(origin: str, recs: object) -> tuple[tuple[Record, bytes], ...]:
    if type(recs) is not list:
        raise RecordDecodeError("batch records must be an array")
    out = []
    for data in recs:
        if type(data) is not bytes:
            raise RecordDecodeError("a batch holds records as binary strings")
        rec = decode_record(data)
        if rec.origin != origin:
            raise RecordDecodeError(f"batch of {origin} holds a record of {rec.origin}")
        out.append((rec, data))
    return tuple(out)


def decode_message(payload: bytes) -> Message:
    """The message in an MQTT payload; :class:`RecordDecodeError` for anything malformed."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types; all mean malformed
        raise RecordDecodeError(f"payload is not valid msgpack: {type(exc).__name__}: {exc}") from None
    if type(obj) is not list or len(obj) < 2:
        raise RecordDecodeError("payload is not a [version, kind, ...] array")
    if obj[0] != WIRE_VERSION or type(obj[0]) is not int:
        raise RecordDecodeError(f"unsupported wire version {obj[0]!r:.20} (this build speaks {WIRE_VERSION})")
    kind = obj[1]
    if kind == "B" and len(obj) == 5:
        origin = _node(obj[2], "batch origin")
        return Batch(origin, _role(obj[3]), _records(origin, obj[4]))
    if kind == "R" and len(obj) == 7:
        origin, role = _node(obj[2], "resend answer origin"), _role(obj[3])
        first, last = _count(obj[4], "first"), _count(obj[5], "last")
        if first < 1 or last < first:
            raise RecordDecodeError(f"bad resend answer range {first}..{last} of {origin}")
        records = _records(origin, obj[6])
        prev = first - 1
        for rec, _ in records:
            if not prev < rec.seq <= last:
                raise RecordDecodeError(f"resend answer of {origin} for {first}..{last} holds seq {rec.seq} "
                                        f"after {prev}: expected increasing seqs within the range")
            prev = rec.seq
        return Batch(origin, role, records, (first, last))
    if kind == "D" and len(obj) == 6:
        node, role, head, hwms = _node(obj[2], "digest node"), _role(obj[3]), _count(obj[4], "head"), obj[5]
        if type(hwms) is not dict:
            raise RecordDecodeError("digest high-water marks must be a map")
        for k, v in hwms.items():
            _node(k, "digest origin")
            _count(v, "digest high-water mark")
        return Digest(node, role, head, hwms)
    if kind == "Q" and len(obj) == 6:
        first, last = _count(obj[4], "first"), _count(obj[5], "last")
        if first < 1 or last < first:
            raise RecordDecodeError(f"bad resend range {first}..{last}")
        return ResendRequest(_node(obj[2], "requester"), _node(obj[3], "origin"), first, last)
    raise RecordDecodeError(f"unknown message kind {kind!r:.20} with {len(obj)} elements")
