"""Learned message shapes: one compiled regular expression parses AND validates a message.

Most messages a session receives have one of a few shapes (a client's NewOrderSingle always
carries the same tags in the same order). Once a message of a shape has been found *certainly
valid* by the validator's fast path (``validation._fast_ok``: every check on), its shape, the
sequence of tags (with the literal BeginString, MsgType and NumInGroup counts), is compiled into
one regular expression in which each value has a pattern that accepts only values the
dictionary's checks accept (non-empty, format, enumeration). A later frame that matches it in
full is then a valid message, and its fields come out of the match groups: no split on SOH, no
field-by-field check in Python (~1 us instead of ~20 us for a NewOrderSingle).

Why this can never accept what the validator rejects: everything the fast path checks is
either structural (which tags, in which order, each once, in the right section, group instances
led by their delimiter, NumInGroup equal to the instances, required tags present), and so the
same for every message of the shape, or a check of one value on its own, which the value's
pattern implies. A value pattern is only ever *narrower* than its check (a type whose check has
no exact pattern here is captured as any non-empty value and checked in Python after the match).
Shapes with data fields (which may hold SOH) are never learned. A frame that matches no shape
takes the ordinary path (split, then validate), which also teaches its shape when it is valid.

Bounded: at most ``MAX_SHAPES_PER_TYPE`` shapes per MsgType and ``MAX_SHAPES`` per dictionary,
and a bounded number of signatures seen; once full, nothing more is learned or compiled (so odd
traffic cannot make us compile, or remember, without end).
"""

from __future__ import annotations

import re
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Final
from weakref import WeakKeyDictionary

from fixgw import fieldtypes as _t
from fixgw.dictionary import FLAG_DATA, FLAG_MULTI, DataDictionary
from fixgw.message import DATA_LENGTH_TAGS, checksum

__all__ = ["MAX_SHAPES", "MAX_SHAPES_PER_TYPE", "PlanBook", "Shape", "plan_book", "value_pattern"]

MAX_SHAPES_PER_TYPE: Final = 16
MAX_SHAPES: Final = 512
_MAX_KNOWN: Final = 4 * MAX_SHAPES  # signatures remembered, shapes that did not compile included

_Field = tuple[int, bytes]

# tags that may hold SOH (the data field of a length/data pair): never in a learned shape
_DATA_TAGS: Final = frozenset(DATA_LENGTH_TAGS.values())

_DATE = rb"\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"
_TIME = rb"(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d{1,9})?"

# The exact value language of each of the dictionary's format checks, as a regular expression
# (bytes; ``\d`` is ASCII 0-9 like bytes.isdigit). tests/fixgw/test_fixperf_plans.py checks that
# each accepts only what its check accepts. A check that is not here is run in Python after
# the match.
_PATTERNS: Final[dict[Callable[[bytes], bool], bytes]] = {
    _t.check_int: rb"-?\d+",
    _t.check_uint: rb"\d+",
    _t.check_float: rb"-?(?:\d+\.?\d*|\.\d+)",
    _t.check_char: rb"[^\x01]",
    _t.check_bool: rb"[YN]",
    _t.check_timestamp: _DATE + rb"-" + _TIME,
    _t.check_timeonly: _TIME,
    _t.check_date: _DATE,
    _t.check_dayofmonth: rb"(?:0?[1-9]|[12]\d|3[01])",
    _t.check_currency: rb"[A-Za-z0-9]{3}",
}
_ANY: Final = rb"[^\x01]+"
_adler32: Final = zlib.adler32
# CheckSum value "ddd" -> what the byte sum of the whole frame, trailer included, must be
# modulo 256 (the sum up to the trailer is ddd; "10=ddd<SOH>" adds its own bytes)
_WHOLE_SUM: Final = {
    b"%03d" % v: (v + sum(b"10=%03d\x01" % v)) & 0xFF for v in range(1000)
}


def value_pattern(
    check: Callable[[bytes], bool] | None, enums: frozenset[bytes] | None, multi: bool
) -> tuple[bytes, bool] | None:
    """(pattern, needs a Python check after the match) for one field, or None: no plan."""
    if enums is not None:
        ok = sorted(
            (v for v in enums if v and b"\x01" not in v and (check is None or check(v))),
            key=lambda v: (-len(v), v),
        )
        if not ok:
            return None
        alt = b"(?:" + b"|".join(re.escape(v) for v in ok) + b")"
        if multi:
            if check is not None:
                return None  # no such type in FIX: do not guess
            # the fast path takes a value in the enumeration, or space-separated members of it
            if any(b" " in v for v in ok):
                return None
            return alt + b"(?: " + alt + b")*", False
        return alt, False
    if check is None:
        return _ANY, False
    pat = _PATTERNS.get(check)
    if pat is not None:
        return pat, False
    return _ANY, True


class Shape:
    """One learned shape: its regex, its tags, the values to check in Python after a match."""

    __slots__ = ("head_len", "match", "post_checks", "regex", "tags", "unique")

    def __init__(
        self,
        regex: re.Pattern[bytes],
        tags: tuple[int, ...],
        post_checks: tuple[tuple[int, Callable[[bytes], bool]], ...],
        begin_string: bytes = b"",
    ) -> None:
        self.regex = regex
        # bytes before the BodyLength digits and after them up to the body: "8=<begin><SOH>9="
        # and "<SOH>"
        self.head_len = len(begin_string) + 6
        self.match = regex.match
        self.tags = tags
        self.post_checks = post_checks
        self.unique = len(set(tags)) == len(tags)  # no repeating group: a dict of it is exact

    def fields(self, raw: bytes) -> list[_Field] | None:
        """The fields of raw when it is a valid message of this shape, else None."""
        m = self.regex.fullmatch(raw)
        if m is None:
            return None
        values = m.groups()
        for i, check in self.post_checks:
            if not check(values[i]):
                return None
        return list(zip(self.tags, values))  # as many groups as tags, by construction


def _signature(fields: Sequence[_Field], literal: frozenset[int]) -> tuple[object, ...]:
    return tuple(f if f[0] in literal else f[0] for f in fields)


class PlanBook:
    """The shapes learned for one data dictionary (shared by its sessions; thread-safe)."""

    __slots__ = ("_by_type", "_count", "_dd", "_known", "_last", "_literal", "_lock")

    def __init__(self, dd: DataDictionary) -> None:
        self._dd = dd
        self._by_type: dict[bytes, tuple[Shape, ...]] = {}
        self._known: set[tuple[object, ...]] = set()
        self._count = 0
        self._lock = threading.Lock()
        self._last: Shape | None = None  # the shape that matched last: tried first (a hint)
        # values that are part of a shape: BeginString, MsgType and every NumInGroup count
        self._literal = frozenset(
            {8, 35} | {t for t, f in dd.fields.items() if f.type == "NUMINGROUP"}
        )

    def __len__(self) -> int:
        return self._count

    def fields(self, raw: bytes) -> list[_Field] | None:
        """The fields of a framed message (8 ... 10) when it matches a learned valid shape."""
        i = raw.find(b"\x0135=")
        if i < 0:
            return None
        i += 4
        shapes = self._by_type.get(raw[i : raw.find(b"\x01", i)])
        if shapes is None:
            return None
        for shape in shapes:
            f = shape.fields(raw)
            if f is not None:
                return f
        return None

    def frame_at(
        self, buf: bytes, pos: int, max_size: int
    ) -> tuple[bytes, list[_Field], Shape] | None:
        """A whole valid frame of a learned shape at buf[pos:]: (raw, fields, shape), or None.

        The framing and the shape in one regex match: the frame is what Framer.next_raw would
        cut there (BodyLength and CheckSum are checked here; BeginString is at most 32 bytes
        and BodyLength at most 9 digits and max_size, so its trailer search bounds hold), and
        its fields are what parse_fields would give; it is valid for the dictionary.
        None: not one of the shapes (or not complete yet): use the Framer and the general path.
        """
        shape = self._last
        m = shape.match(buf, pos) if shape is not None else None
        if m is None:
            i = buf.find(b"\x0135=", pos, pos + 64)
            if i < 0:
                return None
            i += 4
            shapes = self._by_type.get(buf[i : buf.find(b"\x01", i, i + 64)])
            if shapes is None:
                return None
            for shape in shapes:
                m = shape.match(buf, pos)
                if m is not None:
                    break
            else:
                return None
            self._last = shape
        assert shape is not None
        values = m.groups()
        length_b = values[1]
        length = int(length_b)
        end = m.end()
        # BodyLength: from after "9=<digits><SOH>" to the SOH before "10=ddd<SOH>" (7 bytes)
        if length > max_size or end - 7 - pos - shape.head_len - len(length_b) != length:
            return None
        raw = buf[pos:end]
        cs = _adler32(raw) - 1 if len(raw) <= 256 else checksum(raw)
        if cs & 0xFF != _WHOLE_SUM[values[-1]]:
            return None
        if shape.post_checks:
            for i, check in shape.post_checks:
                if not check(values[i]):
                    return None
        return raw, list(zip(shape.tags, values)), shape

    def learn(self, fields: Sequence[_Field]) -> None:
        """Remember the shape of a message the validator found certainly valid (all checks)."""
        if self._count >= MAX_SHAPES or len(self._known) >= _MAX_KNOWN:
            return
        if len(fields) < 3 or len(self._by_type.get(fields[2][1], ())) >= MAX_SHAPES_PER_TYPE:
            return  # that type is full: no compiling for nothing
        sig = _signature(fields, self._literal)
        if sig in self._known:
            return
        shape = self._compile(fields)
        with self._lock:
            if sig in self._known or self._count >= MAX_SHAPES:
                return
            self._known.add(sig)  # also a shape that cannot be compiled: never tried again
            if shape is None:
                return
            mt = fields[2][1]
            have = self._by_type.get(mt, ())
            if len(have) >= MAX_SHAPES_PER_TYPE:
                return
            self._by_type = {**self._by_type, mt: (*have, shape)}  # copy: readers never lock
            self._count += 1

    def _compile(self, fields: Sequence[_Field]) -> Shape | None:
        if (
            len(fields) < 4 or len(fields) > 400 or fields[0][0] != 8 or fields[1][0] != 9
            or fields[2][0] != 35 or fields[-1][0] != 10
        ):
            return None
        fast = self._dd.fast_info
        parts: list[bytes] = []
        post: list[tuple[int, Callable[[bytes], bool]]] = []
        for i, (tag, value) in enumerate(fields):
            if tag <= 0 or tag in _DATA_TAGS or b"\x01" in value:
                return None
            info = fast.get(tag)
            if info is None:
                return None
            check, enums, flags = info
            if flags & FLAG_DATA:
                return None
            if tag in self._literal:
                pat: bytes = re.escape(value)
                if tag == 8 and len(value) > 32:
                    return None  # the framer's shortcut bounds (see frame_at)
            elif tag == 9:
                pat = rb"\d{1,9}"  # as the framer reads BodyLength
            elif tag == 10:
                pat = rb"\d{3}"  # as the framer reads CheckSum
            else:
                vp = value_pattern(check, enums, bool(flags & FLAG_MULTI))
                if vp is None:
                    return None
                pat, python_check = vp
                if python_check:
                    assert check is not None
                    post.append((i, check))
            parts.append(b"%d=(%s)\x01" % (tag, pat))
        try:
            regex = re.compile(b"".join(parts))
        except (re.error, RecursionError, OverflowError):
            return None
        return Shape(regex, tuple(t for t, _ in fields), tuple(post), fields[0][1])


_BOOKS: WeakKeyDictionary[DataDictionary, PlanBook] = WeakKeyDictionary()


def plan_book(dd: DataDictionary) -> PlanBook:
    """The shapes learned from ``dd``'s valid messages, one book per dictionary (shared by
    every session using it), created on first use."""
    book = _BOOKS.get(dd)
    if book is None:
        book = _BOOKS[dd] = PlanBook(dd)
    return book
