"""Message validation against a data dictionary, with QuickFIX's reject reasons, texts and order.

`validate` takes a framed, checksum-verified message as (tag, value) pairs in wire order and
returns the first problem as QuickFIX would report it (a `SessionReject`), or None.

The order of the checks follows QuickFIX (C++), because acceptance scripts compare the Reject
that comes back when a message has several problems:

1. SenderCompID (49), then TargetCompID (56) present (QuickFIX's session checks them first).
2. Structure: 8, 9, 35 first; no header field after a body or trailer field, no body field after
   a trailer field (14, ref = the first misplaced tag); a repeating-group instance that does not
   start with the group's delimiter (15).
3. MsgType known to the dictionary (11).
4. Required fields: header (ascending tag), trailer, body (ascending tag), then each group
   instance (1).
5. Field by field: header (8, 9, 35, then ascending tag), trailer, then body in ascending tag
   order (QuickFIX keeps fields in tag-sorted maps). For each field: appears more than once (13),
   has a value (4), data format (6), enum value (5), tag defined (0, "Invalid tag number"), tag
   defined for this message type (2, body only), NumInGroup count (16) and then the group's
   instances (members' values, formats, enums, nested groups).

Session-level checks (CompID values 9, SendingTime 10, PossDup without OrigSendingTime,
BeginString, sequence numbers) belong to the session; `check_sending_time` and
`parse_utc_timestamp` are the pure helpers it uses.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fixgw.dictionary import (
    FLAG_DATA,
    FLAG_HEADER,
    FLAG_MULTI,
    FLAG_TRAILER,
    DataDictionary,
    GroupDef,
    MessageDef,
    Section,
)
from fixgw.plans import plan_book

__all__ = [
    "REJECT_TEXTS",
    "RejectReason",
    "SessionReject",
    "check_sending_time",
    "parse_utc_timestamp",
    "validate",
]


class RejectReason(enum.IntEnum):
    """SessionRejectReason (373) values."""

    INVALID_TAG_NUMBER = 0
    REQUIRED_TAG_MISSING = 1
    TAG_NOT_DEFINED_FOR_MESSAGE_TYPE = 2
    UNDEFINED_TAG = 3
    TAG_WITHOUT_VALUE = 4
    VALUE_INCORRECT = 5
    INCORRECT_DATA_FORMAT = 6
    DECRYPTION_PROBLEM = 7
    SIGNATURE_PROBLEM = 8
    COMPID_PROBLEM = 9
    SENDINGTIME_ACCURACY_PROBLEM = 10
    INVALID_MSGTYPE = 11
    XML_VALIDATION_ERROR = 12
    TAG_APPEARS_MORE_THAN_ONCE = 13
    TAG_OUT_OF_REQUIRED_ORDER = 14
    GROUP_FIELDS_OUT_OF_ORDER = 15
    INCORRECT_NUMINGROUP_COUNT = 16
    NON_DATA_VALUE_INCLUDES_DELIMITER = 17
    OTHER = 99


# QuickFIX's wording (Session::generateReject); acceptance scripts compare Text (58) by prefix.
REJECT_TEXTS: dict[int, str] = {
    0: "Invalid tag number",
    1: "Required tag missing",
    2: "Tag not defined for this message type",
    3: "Undefined Tag",
    4: "Tag specified without a value",
    5: "Value is incorrect (out of range) for this tag",
    6: "Incorrect data format for value",
    7: "Decryption problem",
    8: "Signature problem",
    9: "CompID problem",
    10: "SendingTime accuracy problem",
    11: "Invalid MsgType",
    12: "XML Validation error",
    13: "Tag appears more than once",
    14: "Tag specified out of required order",
    15: "Repeating group fields out of order",
    16: "Incorrect NumInGroup count for repeating group",
    17: "Non Data Value includes Field Delimiter",
    99: "Other",
}


@dataclass(frozen=True, slots=True)
class SessionReject:
    """Why a message is rejected: SessionRejectReason (373), RefTagID (371), Text (58)."""

    reason: int
    ref_tag: int | None
    text: str

    def __post_init__(self) -> None:
        if not isinstance(self.reason, int) or not 0 <= self.reason <= 99:
            raise ValueError(f"SessionRejectReason must be an integer 0..99, got {self.reason!r}")
        if not self.text:
            raise ValueError("a reject needs a text")

    @classmethod
    def of(cls, reason: int, ref_tag: int | None = None) -> SessionReject:
        """A reject with QuickFIX's standard text for the reason."""
        return cls(int(reason), ref_tag, REJECT_TEXTS.get(int(reason), "Other"))


# Singletons for the common, tag-less answer.
_INVALID_MSGTYPE = SessionReject.of(RejectReason.INVALID_MSGTYPE)

_Field = tuple[int, bytes]
_USER_MIN = 5000  # first user-defined tag


class _Instance:
    """One repeating-group instance: its fields in wire order and its nested groups."""

    __slots__ = ("fields", "groups")

    def __init__(self) -> None:
        self.fields: list[_Field] = []
        self.groups: dict[int, list[_Instance]] = {}


class _Parsed:
    """A message split into header, body and trailer, with groups gathered into instances."""

    __slots__ = ("body", "group_order", "groups", "header", "out_of_order", "trailer")

    def __init__(self) -> None:
        self.header: list[_Field] = []
        self.body: list[_Field] = []
        self.trailer: list[_Field] = []
        # top-level groups (header, body or trailer) by count tag; a count tag that appears twice
        # is a repeated tag (13), reported before its instances matter
        self.groups: dict[int, list[_Instance]] = {}
        self.out_of_order: int | None = None  # first misplaced tag (reason 14)
        self.group_order: int | None = None  # first instance not led by its delimiter (15)


def _parse_group(
    fields: Sequence[_Field], i: int, n: int, g: GroupDef, parsed: _Parsed
) -> tuple[list[_Instance], int]:
    """Collect the instances of group g starting at fields[i]; returns them and the next index."""
    # QuickFIX's rule: a new instance starts at the delimiter, or at a member that the current
    # instance already holds; the group ends at the first field that is not a member.
    instances: list[_Instance] = []
    cur: _Instance | None = None
    cur_tags: set[int] = set()
    members = g.member_set
    delim = g.delimiter
    nested = g.groups
    while i < n:
        tag, value = fields[i]
        if tag not in members:
            break
        if tag == delim or cur is None or tag in cur_tags:
            if tag != delim and parsed.group_order is None:
                parsed.group_order = tag
            cur = _Instance()
            cur_tags = set()
            instances.append(cur)
        cur.fields.append((tag, value))
        cur_tags.add(tag)
        i += 1
        sub = nested.get(tag)
        if sub is not None:
            inner, i = _parse_group(fields, i, n, sub, parsed)
            cur.groups[tag] = inner
    return instances, i


def _split(dd: DataDictionary, fields: Sequence[_Field], body_sec: Section | None) -> _Parsed:
    """Walk the message once: sections, misplaced fields and group instances."""
    parsed = _Parsed()
    header_set = dd.header.field_set
    header_groups = dd.header.groups
    trailer_set = dd.trailer.field_set
    trailer_groups = dd.trailer.groups
    body_groups = body_sec.groups if body_sec is not None else {}
    header = parsed.header
    body = parsed.body
    trailer = parsed.trailer
    groups = parsed.groups
    section = 0  # 0 header, 1 body, 2 trailer
    i = 0
    n = len(fields)
    while i < n:
        f = fields[i]
        tag = f[0]
        i += 1
        if tag in header_set:
            if section and parsed.out_of_order is None:
                parsed.out_of_order = tag
            header.append(f)
            g = header_groups.get(tag)
        elif tag in trailer_set:
            section = 2
            trailer.append(f)
            g = trailer_groups.get(tag)
        else:
            if section == 2 and parsed.out_of_order is None:
                parsed.out_of_order = tag
            section = 1
            body.append(f)
            g = body_groups.get(tag)
        if g is not None:
            inst, i = _parse_group(fields, i, n, g, parsed)
            if tag not in groups:
                groups[tag] = inst
    return parsed


def _check_required_instances(
    groups: dict[int, list[_Instance]], defs: dict[int, GroupDef] | None
) -> SessionReject | None:
    if not groups or defs is None:
        return None
    for count_tag in sorted(groups):
        g = defs.get(count_tag)
        if g is None:
            continue
        for inst in groups[count_tag]:
            if g.required:
                have = {t for t, _ in inst.fields}
                for t in g.required:
                    if t not in have:
                        return SessionReject(1, t, REJECT_TEXTS[1])
            if inst.groups:
                r = _check_required_instances(inst.groups, dict(g.groups))
                if r is not None:
                    return r
    return None


def _check_value(
    dd: DataDictionary, tag: int, value: bytes, container: Sequence[_Field], have_values: bool
) -> SessionReject | None:
    """Value checks of one field: has a value (4), data format (6), enum (5)."""
    if not value and have_values:
        return SessionReject(4, tag, REJECT_TEXTS[4])
    fd = dd.fields.get(tag)
    if fd is None:
        return None
    check = fd.check
    if check is not None and not check(value):
        return SessionReject(6, tag, REJECT_TEXTS[6])
    if fd.type == "DATA":
        # The length field must be there and give this value's size: a framer that honours it
        # cannot produce a mismatch, one that does not would have split the data at an SOH.
        lt = dd.length_tag_for(tag)
        if lt is not None:
            lv = next((v for t, v in container if t == lt), None)
            if lv is None or not lv.isdigit() or int(lv) != len(value):
                return SessionReject(6, tag, REJECT_TEXTS[6])
    enums = fd.enums
    if enums is not None and value:
        if fd.multi:
            if not all(part in enums for part in value.split(b" ")):
                return SessionReject(5, tag, REJECT_TEXTS[5])
        elif value not in enums:
            return SessionReject(5, tag, REJECT_TEXTS[5])
    return None


def _check_instances(
    dd: DataDictionary,
    count_tag: int,
    count_value: bytes,
    instances: list[_Instance] | None,
    g: GroupDef,
    have_values: bool,
) -> SessionReject | None:
    """NumInGroup against the instances found (16), then each instance's fields and subgroups."""
    insts = instances if instances is not None else []
    # the count's format was checked before: it is a non-negative integer here
    if int(count_value) != len(insts):
        return SessionReject(16, count_tag, REJECT_TEXTS[16])
    for inst in insts:
        for tag, value in inst.fields:
            r = _check_value(dd, tag, value, inst.fields, have_values)
            if r is not None:
                return r
            sub = g.groups.get(tag)
            if sub is not None:
                r = _check_instances(dd, tag, value, inst.groups.get(tag), sub, have_values)
                if r is not None:
                    return r
    return None


def _header_key(f: _Field) -> tuple[int, int]:
    t = f[0]
    if t == 8:
        return (0, 0)
    if t == 9:
        return (1, 0)
    if t == 35:
        return (2, 0)
    return (3, t)


def _trailer_key(f: _Field) -> tuple[int, int]:
    t = f[0]
    return (1, 0) if t == 10 else (0, t)


def _body_key(f: _Field) -> int:
    return f[0]


def _iterate(
    dd: DataDictionary,
    items: list[_Field],
    section: Section | None,
    is_body: bool,
    groups: dict[int, list[_Instance]],
    have_values: bool,
    user_defined: bool,
    allow_unknown: bool,
) -> SessionReject | None:
    """QuickFIX's DataDictionary::iterate over one section, already in its canonical order."""
    last = None
    fields = dd.fields
    for tag, value in items:
        if tag == last:
            return SessionReject(13, tag, REJECT_TEXTS[13])
        last = tag
        r = _check_value(dd, tag, value, items, have_values)
        if r is not None:
            return r
        # shouldCheckTag: AllowUnknownMsgFields skips standard tags, ValidateUserDefinedFields=N
        # skips tags >= 5000
        if tag >= _USER_MIN:
            should_check = user_defined
        else:
            should_check = not allow_unknown
        if should_check and tag not in fields:
            return SessionReject(0, tag, REJECT_TEXTS[0])
        if section is None:
            continue
        if is_body and should_check and tag not in section.field_set:
            return SessionReject(2, tag, REJECT_TEXTS[2])
        g = section.groups.get(tag)
        if g is not None:
            r = _check_instances(dd, tag, value, groups.get(tag), g, have_values)
            if r is not None:
                return r
    return None


# ----------------------------------------------------------------------------------------------
# Fast path: one pass in wire order that only answers "certainly valid". Anything unusual
# (unknown tag, data field, misplaced or repeated field, odd group) makes it give up, and the
# exact, QuickFIX-ordered check above runs instead; so the two can never disagree on a valid
# message, and the slow path only runs for messages that are about to be rejected (or rare ones).

_FastTable = Mapping[int, tuple[Callable[[bytes], bool] | None, frozenset[bytes] | None, int]]


def _fast_group(
    fast: _FastTable, fields: Sequence[_Field], i: int, n: int, g: GroupDef, count: int
) -> int:
    """Check group g's instances from fields[i]; the index after them, or -1 to give up."""
    members = g.member_set
    delim = g.delimiter
    nested = g.groups
    req = g.required_set
    instances = 0
    cur: set[int] | None = None
    while i < n:
        tag, value = fields[i]
        if tag not in members:
            break
        if tag == delim:
            if cur is not None and not req <= cur:
                return -1
            cur = set()
            instances += 1
        elif cur is None or tag in cur:
            return -1
        cur.add(tag)
        i += 1
        if not value:
            return -1
        check, enums, flags = fast[tag]
        if check is not None and not check(value):
            return -1
        if (
            enums is not None
            and value not in enums
            and (not flags & FLAG_MULTI or not all(p in enums for p in value.split(b" ")))
        ):
            return -1
        if flags & FLAG_DATA:
            return -1
        sub = nested.get(tag)
        if sub is not None:
            i = _fast_group(fast, fields, i, n, sub, int(value))
            if i < 0:
                return -1
    if cur is not None and not req <= cur:
        return -1
    return i if instances == count else -1


def _fast_ok(dd: DataDictionary, fields: Sequence[_Field], msg: MessageDef) -> bool:
    """True only if the message is certainly valid (all checks on); False means "look closer"."""
    fast = dd.fast_info
    body = msg.body
    body_set = body.field_set
    body_groups = body.groups
    header_groups = dd.header.groups
    trailer_groups = dd.trailer.groups
    seen: set[int] = set()
    add = seen.add
    section = 0
    n = len(fields)
    i = 0
    while i < n:
        tag, value = fields[i]
        i += 1
        if tag in seen or not value:
            return False
        add(tag)
        info = fast.get(tag)
        if info is None:
            return False
        check, enums, flags = info
        if check is not None and not check(value):
            return False
        if (
            enums is not None
            and value not in enums
            and (not flags & FLAG_MULTI or not all(p in enums for p in value.split(b" ")))
        ):
            return False
        if flags & FLAG_DATA:
            return False
        if flags & FLAG_HEADER:
            if section:
                return False
            g = header_groups.get(tag)
        elif flags & FLAG_TRAILER:
            section = 2
            g = trailer_groups.get(tag)
        else:
            if section == 2 or tag not in body_set:
                return False
            section = 1
            g = body_groups.get(tag)
        if g is not None:
            i = _fast_group(fast, fields, i, n, g, int(value))
            if i < 0:
                return False
    return (
        dd.header.required_set <= seen
        and dd.trailer.required_set <= seen
        and body.required_set <= seen
    )


def validate(
    dd: DataDictionary,
    fields: Sequence[tuple[int, bytes]],
    *,
    check_fields_out_of_order: bool = True,
    check_fields_have_values: bool = True,
    check_user_defined_fields: bool = True,
    allow_unknown_msg_fields: bool = False,
) -> SessionReject | None:
    """Validate a whole framed message (8 ... 10, wire order) against dd; first problem or None."""
    n = len(fields)
    if n < 3 or fields[0][0] != 8 or fields[1][0] != 9 or fields[2][0] != 35:
        # QuickFIX treats such a message as garbled (ignored, no Reject): the framer should
        # drop it before calling validate. Answer defensively here.
        for pos, want in enumerate((8, 9, 35)):
            if pos >= n:
                return SessionReject(1, want, REJECT_TEXTS[1])
            if fields[pos][0] != want:
                return SessionReject(14, fields[pos][0], REJECT_TEXTS[14])
    msg = dd.message_b(fields[2][1])
    if msg is not None and _fast_ok(dd, fields, msg):
        # certainly valid: its shape parses and validates the next ones in one match
        plan_book(dd).learn(fields)
        return None
    return _validate_exact(
        dd,
        fields,
        msg,
        check_fields_out_of_order,
        check_fields_have_values,
        check_user_defined_fields,
        allow_unknown_msg_fields,
    )


def _validate_exact(
    dd: DataDictionary,
    fields: Sequence[_Field],
    msg: MessageDef | None,
    check_fields_out_of_order: bool,
    check_fields_have_values: bool,
    check_user_defined_fields: bool,
    allow_unknown_msg_fields: bool,
) -> SessionReject | None:
    """The full check in QuickFIX's order (8, 9, 35 already known to lead)."""
    body_sec = msg.body if msg is not None else None
    parsed = _split(dd, fields, body_sec)

    # 1. QuickFIX's session reads SenderCompID and TargetCompID before validating.
    htags = {t for t, _ in parsed.header}
    if 49 not in htags:
        return SessionReject(1, 49, REJECT_TEXTS[1])
    if 56 not in htags:
        return SessionReject(1, 56, REJECT_TEXTS[1])

    # 2. structure
    if check_fields_out_of_order and parsed.out_of_order is not None:
        return SessionReject(14, parsed.out_of_order, REJECT_TEXTS[14])
    if parsed.group_order is not None:
        return SessionReject(15, parsed.group_order, REJECT_TEXTS[15])

    # 3. message type
    if msg is None or body_sec is None:
        return _INVALID_MSGTYPE

    # 4. required fields
    for t in dd.header.required:
        if t not in htags:
            return SessionReject(1, t, REJECT_TEXTS[1])
    if dd.trailer.required:
        ttags = {t for t, _ in parsed.trailer}
        for t in dd.trailer.required:
            if t not in ttags:
                return SessionReject(1, t, REJECT_TEXTS[1])
    if body_sec.required:
        btags = {t for t, _ in parsed.body}
        for t in body_sec.required:
            if t not in btags:
                return SessionReject(1, t, REJECT_TEXTS[1])
    if parsed.groups:
        r = _check_required_instances(
            parsed.groups, {**dd.header.groups, **body_sec.groups, **dd.trailer.groups}
        )
        if r is not None:
            return r

    # 5. field by field, header, trailer, body, each in QuickFIX's canonical order
    hv = check_fields_have_values
    ud = check_user_defined_fields
    au = allow_unknown_msg_fields
    header = sorted(parsed.header, key=_header_key)
    r = _iterate(dd, header, dd.header, False, parsed.groups, hv, ud, au)
    if r is not None:
        return r
    if parsed.trailer:
        trailer = sorted(parsed.trailer, key=_trailer_key)
        r = _iterate(dd, trailer, dd.trailer, False, parsed.groups, hv, ud, au)
        if r is not None:
            return r
    if parsed.body:
        body = sorted(parsed.body, key=_body_key)
        r = _iterate(dd, body, body_sec, True, parsed.groups, hv, ud, au)
        if r is not None:
            return r
    return None


# ----------------------------------------------------------------------------------------------
# SendingTime


def parse_utc_timestamp(value: bytes) -> datetime | None:
    """Parse a FIX UTCTIMESTAMP (YYYYMMDD-HH:MM:SS[.fff...]) into an aware UTC datetime, or None."""
    if len(value) < 17 or value[8:9] != b"-":
        return None
    try:
        s = value.decode("ascii")
        y, mo, d = int(s[0:4]), int(s[4:6]), int(s[6:8])
        if s[11] != ":" or s[14] != ":":
            return None
        hh, mm, ss = int(s[9:11]), int(s[12:14]), int(s[15:17])
        micro = 0
        if len(s) > 17:
            frac = s[18:]
            if s[17] != "." or not frac.isdigit() or not 1 <= len(frac) <= 9:
                return None
            micro = int((frac + "000000")[:6])
        if not (
            s[0:8].isdigit() and s[9:11].isdigit() and s[12:14].isdigit() and s[15:17].isdigit()
        ):
            return None
        leap = ss == 60  # a leap second: keep it representable
        t = datetime(y, mo, d, hh, mm, 59 if leap else ss, micro, tzinfo=UTC)
        return t + timedelta(seconds=1) if leap else t
    except (ValueError, UnicodeDecodeError, IndexError):
        return None


def check_sending_time(value: bytes, now: datetime, max_latency_s: int) -> bool:
    """True if SendingTime (52) is well-formed and within max_latency_s of now (naive now = UTC)."""
    t = parse_utc_timestamp(value)
    if t is None:
        return False
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return abs((now - t).total_seconds()) <= max_latency_s
