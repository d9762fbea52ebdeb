"""The FIX message: an ordered list of ``(tag, bytes)`` fields with cheap get-by-tag.

Values are kept as the wire bytes (no decoding on the hot path); ``get_str`` / ``get_int`` /
``get_decimal`` convert on demand. ``encode`` computes BodyLength (9) and CheckSum (10).

    msg = Message.new("D")                      # MsgType only; the session adds the header
    msg.append(11, "ORD-1").append(55, "IBM").append(54, "1").append(38, Decimal("100"))
    msg.get_str(55)  -> "IBM";   msg[55] -> b"IBM" (FieldNotFound if absent)
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Final

from fixgw.errors import FieldNotFound, IncorrectDataFormat

SOH: Final = b"\x01"
_adler32: Final = zlib.adler32

# Tags of the standard header (FIX 4.2 / 4.4) and trailer: the encoder places them before /
# after the body whatever order the application appended them in.
HEADER_TAGS: Final = frozenset(
    {8, 9, 35, 49, 56, 115, 128, 90, 91, 34, 50, 142, 57, 143, 116, 144, 129, 145, 43, 97,
     52, 122, 212, 213, 347, 369, 627, 628, 629, 630}
)
TRAILER_TAGS: Final = frozenset({93, 89, 10})
# tags the session always writes itself when it seals a message
SESSION_HEADER_TAGS: Final = frozenset({8, 9, 35, 49, 56, 34, 52, 43, 122, 10})
ADMIN_MSG_TYPES: Final = frozenset({b"0", b"1", b"2", b"3", b"4", b"5", b"A"})

# length field -> the data field it announces (the data may contain SOH)
DATA_LENGTH_TAGS: Final = {
    90: 91, 93: 89, 95: 96, 212: 213, 348: 349, 350: 351, 352: 353, 354: 355, 356: 357,
    358: 359, 360: 361, 362: 363, 364: 365, 445: 446, 618: 619, 621: 622,
}


_DATA_LENGTH_SET: Final = frozenset(DATA_LENGTH_TAGS)
_DATA_LENGTH_RE: Final = re.compile(
    rb"\x01(?:" + b"|".join(b"%d" % t for t in sorted(DATA_LENGTH_TAGS)) + rb")="
)
# tag bytes -> int for the common tags (a dict lookup is cheaper than int(bytes))
_TAG_INT: Final[dict[bytes, int]] = {b"%d" % t: t for t in range(1, 2000)}


# "tag=" for the tags of the standard dictionaries (and any other once seen, up to a bound)
_TAG_PREFIX: dict[int, bytes] = {t: b"%d=" % t for t in range(1, 1000)}


def _prefix(tag: int) -> bytes:
    p = _TAG_PREFIX.get(tag)
    if p is None:
        p = b"%d=" % tag
        if len(_TAG_PREFIX) < 20000:
            _TAG_PREFIX[tag] = p
    return p


def to_bytes(value: object) -> bytes:
    """Wire form of a field value. Decimal keeps its exact digits; bool is Y/N; float refused."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"Y" if value else b"N"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, Decimal):
        return format(value, "f").encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, float):
        raise TypeError("FIX prices and quantities must be Decimal or str, not float")
    raise TypeError(f"cannot put {type(value).__name__} into a FIX field")


# a field that starts at the beginning or right after an SOH: when the number of matches equals
# the number of SOHs, the matches cover the message exactly (fast path, one C-level scan)
_FIELD_RE: Final = re.compile(rb"(?:^|(?<=\x01))(-?\d+)=([^\x01]*)\x01")


def parse_fields(raw: bytes) -> list[tuple[int, bytes]] | None:
    """Split a framed message into ``(tag, value)`` pairs, or ``None`` when it is not FIX.

    Tags must be decimal integers (a leading ``-`` is kept so that the session can reject
    a negative tag number, as the FIX test cases want). Data fields announced by their
    length field (e.g. 95/96) may contain SOH.
    """
    pairs = _FIELD_RE.findall(raw)
    if len(pairs) == raw.count(SOH) and raw.endswith(SOH) and _DATA_LENGTH_RE.search(raw) is None:
        g = _TAG_INT.get
        return [(g(t) or int(t), v) for t, v in pairs]
    return _parse_slow(raw)


def _parse_slow(raw: bytes) -> list[tuple[int, bytes]] | None:
    parts = raw.split(SOH)
    if parts[-1] != b"":
        return None
    del parts[-1]
    out: list[tuple[int, bytes]] = []
    append = out.append
    i = 0
    n = len(parts)
    while i < n:
        tag_b, sep, value = parts[i].partition(b"=")
        i += 1
        if not sep or not tag_b:
            return None
        if tag_b.isdigit() or tag_b[:1] == b"-" and tag_b[1:].isdigit():
            tag = int(tag_b)
        else:
            return None
        append((tag, value))
        if tag in DATA_LENGTH_TAGS and value.isdigit() and i < n:
            # the data field announced by this length may contain SOH: rebuild it
            data_tag = DATA_LENGTH_TAGS[tag]
            prefix = b"%d=" % data_tag
            if parts[i].startswith(prefix):
                want = int(value)
                data = parts[i][len(prefix):]
                i += 1
                while len(data) < want and i < n - 1:  # never swallow the CheckSum field
                    data += SOH + parts[i]
                    i += 1
                append((data_tag, data))
    return out


class Message:
    """An ordered FIX message. ``fields`` is the whole message in order (incl. 8/9/35/10 for
    a received message); ``raw`` is the wire form when the message was received or sealed."""

    __slots__ = ("_map", "_mt", "fields", "raw", "validated")

    def __init__(self, fields: list[tuple[int, bytes]] | None = None, raw: bytes = b"") -> None:
        self.fields: list[tuple[int, bytes]] = fields if fields is not None else []
        self.raw = raw
        self._map: dict[int, bytes] | None = None
        self._mt: bytes | None = None
        # True when a learned shape of the session's dictionary parsed it (fixgw.plans): it is
        # then known valid and the session does not run the dictionary check again
        self.validated = False

    @classmethod
    def new(cls, msg_type: str | bytes, fields: Iterable[tuple[int, object]] = ()) -> Message:
        m = cls([(35, to_bytes(msg_type))])
        for tag, value in fields:
            m.fields.append((tag, to_bytes(value)))
        return m

    @classmethod
    def from_wire(cls, raw: bytes) -> Message:
        """Parse one complete message (no BodyLength/CheckSum verification: see Framer)."""
        fields = parse_fields(raw)
        if fields is None:
            raise ValueError(f"not a FIX message: {raw[:80]!r}")
        return cls(fields, raw)

    # ---- read ----
    def _index(self) -> dict[int, bytes]:
        m = self._map
        if m is None:
            m = self._map = dict(reversed(self.fields))  # first occurrence wins
        return m

    def get(self, tag: int, default: bytes | None = None) -> bytes | None:
        m = self._map
        if m is None:
            m = self._index()
        return m.get(tag, default)

    def __getitem__(self, tag: int) -> bytes:
        try:
            return self._index()[tag]
        except KeyError:
            raise FieldNotFound(tag) from None

    def __contains__(self, tag: object) -> bool:
        return tag in self._index()

    def get_str(self, tag: int, default: str | None = None) -> str | None:
        v = self._index().get(tag)
        return default if v is None else v.decode("latin-1")

    def get_int(self, tag: int, default: int | None = None) -> int | None:
        v = self._index().get(tag)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise IncorrectDataFormat(tag, f"not an integer: {v!r}") from None

    def get_decimal(self, tag: int, default: Decimal | None = None) -> Decimal | None:
        v = self._index().get(tag)
        if v is None:
            return default
        try:
            return Decimal(v.decode("ascii"))
        except (ArithmeticError, UnicodeDecodeError, ValueError):
            raise IncorrectDataFormat(tag, f"not a decimal: {v!r}") from None

    def require_str(self, tag: int) -> str:
        return self[tag].decode("latin-1")

    def get_all(self, tag: int) -> list[bytes]:
        return [v for t, v in self.fields if t == tag]

    @property
    def msg_type(self) -> bytes:
        mt = self._mt
        if mt is None:
            f = self.fields
            # a message built to be sent usually starts with 35: no need to index it all
            if self._map is None and f and f[0][0] == 35:
                mt = self._mt = f[0][1]
            else:
                mt = self._mt = self._index().get(35, b"")
        return mt

    def is_admin(self) -> bool:
        return self.msg_type in ADMIN_MSG_TYPES

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    # ---- write ----
    def append(self, tag: int, value: object) -> Message:
        """Add a field at the end (repeating groups are built by appending in order)."""
        self.fields.append((tag, to_bytes(value)))
        if tag == 35:
            self._mt = None
        if self._map is not None and tag not in self._map:
            self._map[tag] = self.fields[-1][1]
        self.raw = b""
        self.validated = False
        return self

    def set(self, tag: int, value: object) -> Message:
        """Replace the first occurrence of tag, or append it."""
        b = to_bytes(value)
        for i, (t, _) in enumerate(self.fields):
            if t == tag:
                self.fields[i] = (tag, b)
                self._mt = None
                if self._map is not None:
                    self._map[tag] = b
                self.raw = b""
                self.validated = False
                return self
        return self.append(tag, b)

    def remove(self, tag: int) -> Message:
        self.fields = [f for f in self.fields if f[0] != tag]
        self._map = None
        self._mt = None
        self.raw = b""
        self.validated = False
        return self

    def copy(self) -> Message:
        return Message(list(self.fields), self.raw)

    def body(self) -> list[tuple[int, bytes]]:
        """Fields that are neither header nor trailer, in order."""
        return [(t, v) for t, v in self.fields if t not in HEADER_TAGS and t not in TRAILER_TAGS]

    def __repr__(self) -> str:
        return "Message(" + "|".join(f"{t}={v.decode('latin-1')}" for t, v in self.fields) + ")"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and self.fields == other.fields

    __hash__ = None  # type: ignore[assignment]


def checksum(data: bytes) -> int:
    """FIX CheckSum: the sum of the bytes modulo 256.

    Computed with zlib.adler32 (C), whose low half is 1 + the byte sum modulo 65521: exact for
    up to 256 bytes at a time (256 * 255 + 1 < 65521), and ~3x cheaper than sum() over bytes.
    """
    n = len(data)
    if n <= 256:
        return (_adler32(data) - 1) & 0xFF
    total = 0
    mv = memoryview(data)
    for i in range(0, n, 256):
        total += (_adler32(mv[i : i + 256]) & 0xFFFF) - 1
    return total & 0xFF


def encode(begin_string: bytes, header: Sequence[tuple[int, bytes]], body: Sequence[tuple[int, bytes]]) -> bytes:
    """Wire bytes: ``8=begin | 9=len | header | body | 10=checksum``.

    ``header`` must start with 35 (MsgType); neither part may contain 8, 9 or 10.
    """
    g = _TAG_PREFIX.get
    parts = [(g(t) or _prefix(t)) + v for t, v in header]
    if body:
        parts += [(g(t) or _prefix(t)) + v for t, v in body]
    parts.append(b"")
    payload = SOH.join(parts)
    data = b"8=" + begin_string + b"\x019=%d\x01" % len(payload) + payload
    return data + b"10=%03d\x01" % checksum(data)


def encode_after(head_begin: bytes, head: bytes, fields: Sequence[tuple[int, bytes]]) -> bytes:
    """Wire bytes from a pre-encoded start: ``head_begin`` is ``8=<begin><SOH>9=``, ``head``
    the fields from MsgType (35) on, encoded, without the final SOH; ``fields`` follow.
    The same bytes as ``encode`` gives for the same fields."""
    if fields:
        try:
            body = b"\x01".join([_TAG_PREFIX[t] + v for t, v in fields])
        except KeyError:  # a tag not seen before
            body = b"\x01".join([_prefix(t) + v for t, v in fields])
        payload = b"%s\x01%s\x01" % (head, body)
    else:
        payload = head + b"\x01"
    data = b"%s%d\x01%s" % (head_begin, len(payload), payload)
    cs = (_adler32(data) - 1) & 0xFF if len(data) <= 256 else checksum(data)
    return b"%s10=%03d\x01" % (data, cs)


def encode_fields(fields: Sequence[tuple[int, bytes]]) -> bytes:
    """Encode a full field list that starts with 8 and (optionally) 9, recomputing 9 and 10."""
    if not fields or fields[0][0] != 8:
        raise ValueError("a FIX message starts with BeginString(8)")
    rest = [(t, v) for t, v in fields[1:] if t not in (9, 10)]
    return encode(fields[0][1], rest, ())
