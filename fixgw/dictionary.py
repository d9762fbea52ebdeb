"""FIX data dictionary: QuickFIX-format XML (fields, header, trailer, messages, components, groups).

The dictionary is loaded once and then only read (it is shared by every session of a FIX version),
so everything is precomputed into plain dicts and frozensets keyed by tag number: validation runs
on every message and must not walk XML structures.
"""

from __future__ import annotations

import difflib
import functools
import importlib.resources
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from fixgw.errors import DictionaryError
from fixgw.fieldtypes import CHECKERS, value_checker

__all__ = [
    "DataDictionary",
    "DictionaryError",
    "FieldDef",
    "GroupDef",
    "MessageDef",
    "Section",
    "value_checker",
]


# Types whose values are free text for validation purposes (STRING, DATA, EXCHANGE, ...).
_FREE_TYPES = frozenset(
    {
        "STRING",
        "DATA",
        "EXCHANGE",
        "COUNTRY",
        "MULTIPLEVALUESTRING",
        "MULTIPLESTRINGVALUE",
        "MULTIPLECHARVALUE",
        "LANGUAGE",
        "XMLDATA",
        "TZTIMEONLY",
        "TZTIMESTAMP",
        "TENOR",
        "RESERVED100PLUS",
        "RESERVED1000PLUS",
        "RESERVED4000PLUS",
    }
)

_MULTI_TYPES = frozenset({"MULTIPLEVALUESTRING", "MULTIPLESTRINGVALUE", "MULTIPLECHARVALUE"})


# ----------------------------------------------------------------------------------------------
# Model


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of the <fields> section."""

    tag: int
    name: str
    type: str
    enums: frozenset[bytes] | None = None  # None: any value; else the allowed values
    enum_names: Mapping[bytes, str] = field(default_factory=dict)
    check: Callable[[bytes], bool] | None = None  # format check; None: any value
    multi: bool = False  # MULTIPLEVALUESTRING: the enum applies to each space-separated value

    def __post_init__(self) -> None:
        if self.tag <= 0:
            raise ValueError(f"field {self.name}: tag must be positive, got {self.tag}")
        if not self.name:
            raise ValueError(f"field {self.tag}: empty name")


@dataclass(frozen=True, slots=True)
class GroupDef:
    """A repeating group: count tag (NumInGroup), delimiter (first member), members, nesting."""

    count_tag: int
    name: str
    delimiter: int
    members: tuple[int, ...]  # member tags in definition order, nested count tags included
    member_set: frozenset[int]
    required: tuple[int, ...]  # members required in each instance, ascending tag order
    groups: Mapping[int, GroupDef]  # nested groups by their count tag
    is_required: bool  # the group itself is required where it is used
    required_set: frozenset[int] = frozenset()  # = required, for subset tests

    def __post_init__(self) -> None:
        if self.delimiter not in self.member_set:
            raise ValueError(f"group {self.name}: delimiter {self.delimiter} is not a member")
        if self.required_set != frozenset(self.required):
            raise ValueError(f"group {self.name}: required_set differs from required")


@dataclass(frozen=True, slots=True)
class Section:
    """A block of fields with required flags and groups: the header, the trailer, or a body."""

    fields: tuple[int, ...]  # top-level tags in definition order (group count tags included)
    field_set: frozenset[int]
    required: tuple[int, ...]  # required top-level tags, ascending
    groups: Mapping[int, GroupDef]  # by count tag
    required_set: frozenset[int] = frozenset()  # = required, for subset tests

    def __post_init__(self) -> None:
        if self.required_set != frozenset(self.required):
            raise ValueError("section: required_set differs from required")
        if not self.required_set <= self.field_set:
            raise ValueError("section: a required field is not one of its fields")


@dataclass(frozen=True, slots=True)
class MessageDef:
    """One <message>: its type, name, category and body layout."""

    msgtype: str
    name: str
    category: str  # "admin" or "app"
    body: Section

    def __post_init__(self) -> None:
        if not self.msgtype:
            raise ValueError(f"message {self.name}: empty msgtype")
        if self.category not in ("admin", "app"):
            raise ValueError(f"message {self.name}: msgcat must be admin or app")

    @property
    def is_admin(self) -> bool:
        """True for session-level (admin) messages."""
        return self.category == "admin"


# ----------------------------------------------------------------------------------------------
# The dictionary

FLAG_MULTI = 1  # MULTIPLEVALUESTRING-like: enum applies to each space-separated value
FLAG_DATA = 2  # DATA: has a length field
FLAG_HEADER = 4  # top-level standard header field
FLAG_TRAILER = 8  # standard trailer field


class DataDictionary:
    """A loaded FIX data dictionary; read-only after construction, safe to share."""

    __slots__ = (
        "__weakref__",  # fixgw.plans keeps a PlanBook per dictionary
        "_begin_string",
        "_data_len",
        "_fast",
        "_fields",
        "_header",
        "_len_data",
        "_messages",
        "_messages_b",
        "_names",
        "_source",
        "_trailer",
    )

    def __init__(
        self,
        begin_string: str,
        fields: Mapping[int, FieldDef],
        header: Section,
        trailer: Section,
        messages: Mapping[str, MessageDef],
        source: str = "<memory>",
    ) -> None:
        """Build from already-parsed parts (normally use load() or builtin())."""
        self._begin_string = begin_string
        self._source = source
        self._fields: Mapping[int, FieldDef] = MappingProxyType(dict(fields))
        self._names: Mapping[str, int] = MappingProxyType({f.name: t for t, f in fields.items()})
        self._header = header
        self._trailer = trailer
        self._messages: Mapping[str, MessageDef] = MappingProxyType(dict(messages))
        self._messages_b: Mapping[bytes, MessageDef] = MappingProxyType(
            {k.encode("ascii"): v for k, v in messages.items()}
        )
        # DATA fields and the LENGTH field that gives their size (by name: X <- XLen/XLength,
        # else the tag just before, the FIX convention: 95/96, 90/91, 212/213, 354/355, ...).
        data_len: dict[int, int] = {}
        for tag, fd in fields.items():
            if fd.type != "DATA":
                continue
            for cand in (fd.name + "Len", fd.name + "Length"):
                lt = self._names.get(cand)
                if lt is not None and fields[lt].type == "LENGTH":
                    data_len[tag] = lt
                    break
            else:
                prev = fields.get(tag - 1)
                if prev is not None and prev.type == "LENGTH":
                    data_len[tag] = tag - 1
        self._data_len: Mapping[int, int] = MappingProxyType(data_len)
        self._len_data: Mapping[int, int] = MappingProxyType({v: k for k, v in data_len.items()})
        # tag -> (format check, enum values, flags) for the validator's single-lookup hot path
        fast: dict[int, tuple[Callable[[bytes], bool] | None, frozenset[bytes] | None, int]] = {}
        for tag, fd in fields.items():
            flags = (FLAG_MULTI if fd.multi else 0) | (FLAG_DATA if fd.type == "DATA" else 0)
            if tag in header.field_set:
                flags |= FLAG_HEADER
            if tag in trailer.field_set:
                flags |= FLAG_TRAILER
            fast[tag] = (fd.check, fd.enums, flags)
        self._fast = fast

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path) -> DataDictionary:
        """Load a QuickFIX-format XML dictionary file; DictionaryError names the file and problem."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as e:
            raise DictionaryError(f"{p}: cannot read data dictionary: {e.strerror or e}") from e
        return cls.from_xml(data, str(p))

    @classmethod
    def from_xml(cls, data: bytes | str, source: str = "<string>") -> DataDictionary:
        """Parse a QuickFIX-format XML dictionary held in memory; source names it in errors."""
        try:
            root = ET.fromstring(data)
        except ET.ParseError as e:
            raise DictionaryError(f"{source}: not well-formed XML: {e}") from e
        try:
            return _Builder(root, source).build()
        except DictionaryError:
            raise
        except ValueError as e:  # from the value objects' own checks
            raise DictionaryError(f"{source}: {e}") from e

    @staticmethod
    def builtin(begin_string: str) -> DataDictionary:
        """The dictionary shipped with fixgw for "FIX.4.2" or "FIX.4.4" (loaded once, shared)."""
        return _builtin(begin_string)

    # -- queries ------------------------------------------------------------------------------

    @property
    def begin_string(self) -> str:
        """The BeginString this dictionary describes, e.g. "FIX.4.2"."""
        return self._begin_string

    @property
    def source(self) -> str:
        """Where the dictionary was loaded from (file path or a label)."""
        return self._source

    @property
    def fields(self) -> Mapping[int, FieldDef]:
        """All fields by tag."""
        return self._fields

    @property
    def header(self) -> Section:
        """The standard header layout."""
        return self._header

    @property
    def trailer(self) -> Section:
        """The standard trailer layout."""
        return self._trailer

    @property
    def messages(self) -> Mapping[str, MessageDef]:
        """All messages by MsgType."""
        return self._messages

    def field(self, tag: int) -> FieldDef | None:
        """The field definition of a tag, or None if the tag is not in the dictionary."""
        return self._fields.get(tag)

    def is_field(self, tag: int) -> bool:
        """True if the tag is defined in <fields>."""
        return tag in self._fields

    def field_name(self, tag: int) -> str | None:
        """The field's name (e.g. 35 -> "MsgType"), or None if unknown."""
        fd = self._fields.get(tag)
        return None if fd is None else fd.name

    def field_tag(self, name: str) -> int | None:
        """The tag of a field name (e.g. "MsgType" -> 35), or None if unknown."""
        return self._names.get(name)

    def field_type(self, tag: int) -> str | None:
        """The field's FIX type name (e.g. "PRICE"), or None if unknown."""
        fd = self._fields.get(tag)
        return None if fd is None else fd.type

    def enum_values(self, tag: int) -> frozenset[bytes] | None:
        """The allowed values of an enumerated field, or None if any value is allowed."""
        fd = self._fields.get(tag)
        return None if fd is None else fd.enums

    def value_name(self, tag: int, value: bytes) -> str | None:
        """The description of an enum value (e.g. 54, b"1" -> "BUY"), or None."""
        fd = self._fields.get(tag)
        return None if fd is None else fd.enum_names.get(value)

    def is_header_field(self, tag: int) -> bool:
        """True if the tag is a top-level standard header field (header-group members are not)."""
        return tag in self._header.field_set

    def is_trailer_field(self, tag: int) -> bool:
        """True if the tag belongs to the standard trailer."""
        return tag in self._trailer.field_set

    def message(self, msgtype: str) -> MessageDef | None:
        """The message definition for a MsgType, or None if the dictionary has no such type."""
        return self._messages.get(msgtype)

    def message_b(self, msgtype: bytes) -> MessageDef | None:
        """message() keyed by the raw bytes of field 35 (no decoding on the hot path)."""
        return self._messages_b.get(msgtype)

    def has_msg_type(self, msgtype: str) -> bool:
        """True if the dictionary defines this MsgType."""
        return msgtype in self._messages

    def is_app_message(self, msgtype: str) -> bool:
        """True for an application-category MsgType (False for admin or unknown types)."""
        m = self._messages.get(msgtype)
        return m is not None and m.category == "app"

    def is_admin_message(self, msgtype: str) -> bool:
        """True for a session-level (admin) MsgType."""
        m = self._messages.get(msgtype)
        return m is not None and m.category == "admin"

    def group(self, msgtype: str, count_tag: int) -> GroupDef | None:
        """The top-level group of a message (or of the header) with this count tag, or None."""
        g = self._header.groups.get(count_tag)
        if g is not None:
            return g
        m = self._messages.get(msgtype)
        return None if m is None else m.body.groups.get(count_tag)

    def is_data_field(self, tag: int) -> bool:
        """True for a DATA-type field (its value may contain SOH; its length is in another tag)."""
        fd = self._fields.get(tag)
        return fd is not None and fd.type == "DATA"

    def length_tag_for(self, data_tag: int) -> int | None:
        """The LENGTH tag giving the size of a DATA tag (e.g. 96 -> 95), or None."""
        return self._data_len.get(data_tag)

    def data_tag_for(self, length_tag: int) -> int | None:
        """The DATA tag whose size a LENGTH tag gives (e.g. 95 -> 96), or None: for framers."""
        return self._len_data.get(length_tag)

    @property
    def data_length_tags(self) -> Mapping[int, int]:
        """LENGTH tag -> DATA tag, for framers that must read raw data containing SOH."""
        return self._len_data

    @property
    def fast_info(
        self,
    ) -> Mapping[int, tuple[Callable[[bytes], bool] | None, frozenset[bytes] | None, int]]:
        """tag -> (format check, enum values, FLAG_* bits): the validator's hot-path table."""
        return self._fast

    def suggest_field(self, name: str) -> str | None:
        """The closest field name to a misspelt one, or None."""
        m = difflib.get_close_matches(name, list(self._names), n=1)
        return m[0] if m else None

    def __repr__(self) -> str:
        return (
            f"DataDictionary({self._begin_string!r}, {len(self._fields)} fields, "
            f"{len(self._messages)} messages, source={self._source!r})"
        )


# ----------------------------------------------------------------------------------------------
# XML -> model


class _Builder:
    """Turns the XML tree into the model; every error names the source and the element."""

    def __init__(self, root: ET.Element, source: str) -> None:
        self.root = root
        self.source = source
        self.components: dict[str, ET.Element] = {}
        self.fields: dict[int, FieldDef] = {}
        self.by_name: dict[str, int] = {}

    def err(self, text: str) -> DictionaryError:
        return DictionaryError(f"{self.source}: {text}")

    def build(self) -> DataDictionary:
        root = self.root
        if root.tag != "fix":
            raise self.err(f"root element is <{root.tag}>, expected <fix>")
        ftype = root.get("type", "FIX")
        if ftype not in ("FIX", "FIXT"):
            raise self.err(f"<fix type='{ftype}'>: type must be FIX or FIXT")
        major, minor = root.get("major"), root.get("minor")
        if not major or not minor:
            raise self.err("<fix> needs major and minor attributes")
        if not (major.isdigit() and minor.isdigit()):
            raise self.err(f"<fix major='{major}' minor='{minor}'>: expected numbers")
        begin_string = f"{ftype}.{major}.{minor}"

        self._read_fields()
        comps = root.find("components")
        if comps is not None:
            for c in comps.findall("component"):
                name = c.get("name")
                if not name:
                    raise self.err("<component> without a name attribute")
                if name in self.components:
                    raise self.err(f"component {name} defined twice")
                self.components[name] = c

        header_el = root.find("header")
        trailer_el = root.find("trailer")
        if header_el is None:
            raise self.err("<header> section not found")
        if trailer_el is None:
            raise self.err("<trailer> section not found")
        header = self._section(header_el, "<header>")
        trailer = self._section(trailer_el, "<trailer>")

        msgs_el = root.find("messages")
        if msgs_el is None:
            raise self.err("<messages> section not found")
        messages: dict[str, MessageDef] = {}
        for m in msgs_el.findall("message"):
            name = m.get("name") or ""
            msgtype = m.get("msgtype")
            cat = m.get("msgcat", "app")
            if not name:
                raise self.err("<message> without a name attribute")
            if not msgtype:
                raise self.err(f"message {name} has no msgtype attribute")
            if msgtype in messages:
                raise self.err(
                    f"msgtype {msgtype!r} defined twice ({messages[msgtype].name}, {name})"
                )
            if cat not in ("admin", "app"):
                raise self.err(f"message {name}: msgcat {cat!r}, expected admin or app")
            body = self._section(m, f"message {name}")
            messages[msgtype] = MessageDef(msgtype=msgtype, name=name, category=cat, body=body)
        if not messages:
            raise self.err("no messages defined")
        return DataDictionary(begin_string, self.fields, header, trailer, messages, self.source)

    def _read_fields(self) -> None:
        fields_el = self.root.find("fields")
        if fields_el is None:
            raise self.err("<fields> section not found")
        for f in fields_el.findall("field"):
            name = f.get("name")
            number = f.get("number")
            ftype = f.get("type")
            if not name:
                raise self.err(f"<field number='{number}'> has no name attribute")
            if number is None or not number.isdigit() or int(number) <= 0:
                raise self.err(f"field {name}: number {number!r} is not a positive integer")
            if not ftype:
                raise self.err(f"field {name} has no type attribute")
            tag = int(number)
            if tag in self.fields:
                raise self.err(
                    f"field number {tag} defined twice ({self.fields[tag].name}, {name})"
                )
            if name in self.by_name:
                raise self.err(f"field name {name} defined twice")
            ftype = ftype.upper()
            if ftype not in CHECKERS and ftype not in _FREE_TYPES:
                raise self.err(f"field {name} ({tag}): unknown type {ftype!r}")
            enums: dict[bytes, str] = {}
            for v in f.findall("value"):
                e = v.get("enum")
                if e is None:
                    raise self.err(f"field {name}: <value> without an enum attribute")
                enums[e.encode("latin-1")] = v.get("description", "")
            # QuickFIX reads CHAR as STRING before FIX 4.2: multi-character values are legal there.
            check = CHECKERS.get(ftype)
            self.fields[tag] = FieldDef(
                tag=tag,
                name=name,
                type=ftype,
                enums=frozenset(enums) if enums else None,
                enum_names=MappingProxyType(enums),
                check=check,
                multi=ftype in _MULTI_TYPES,
            )
            self.by_name[name] = tag
        if not self.fields:
            raise self.err("no fields defined in <fields>")

    def _tag(self, el: ET.Element, where: str) -> int:
        name = el.get("name")
        if not name:
            raise self.err(f"{where}: <{el.tag}> without a name attribute")
        tag = self.by_name.get(name)
        if tag is None:
            hint = difflib.get_close_matches(name, list(self.by_name), n=1)
            more = f" (did you mean {hint[0]}?)" if hint else ""
            raise self.err(f"{where}: field {name} is not defined in <fields>{more}")
        return tag

    def _walk(
        self, parent: ET.Element, where: str, required_path: bool, stack: tuple[str, ...]
    ) -> Iterator[tuple[int, bool, GroupDef | None]]:
        """Yield (tag, required, group) for a block's top-level items, components expanded."""
        for el in parent:
            if el.tag == "field":
                tag = self._tag(el, where)
                yield tag, required_path and _is_y(el.get("required")), None
            elif el.tag == "group":
                tag = self._tag(el, where)
                if self.fields[tag].type not in ("NUMINGROUP", "INT"):
                    raise self.err(
                        f"{where}: group {el.get('name')} count field has type "
                        f"{self.fields[tag].type}, expected NUMINGROUP or INT"
                    )
                req = _is_y(el.get("required"))
                g = self._group(el, tag, f"{where} > group {el.get('name')}", req, stack)
                yield tag, required_path and req, g
            elif el.tag == "component":
                name = el.get("name")
                if not name:
                    raise self.err(f"{where}: <component> without a name attribute")
                comp = self.components.get(name)
                if comp is None:
                    raise self.err(f"{where}: component {name} is not defined in <components>")
                if name in stack:
                    raise self.err(f"{where}: component {name} includes itself")
                req = required_path and _is_y(el.get("required"))
                yield from self._walk(comp, f"{where} > component {name}", req, stack + (name,))
            elif el.tag in ("value",):
                raise self.err(f"{where}: unexpected <value>")
            # other elements (comments are dropped by ElementTree) are ignored, like QuickFIX

    def _section(self, el: ET.Element, where: str) -> Section:
        order: list[int] = []
        required: set[int] = set()
        groups: dict[int, GroupDef] = {}
        seen: set[int] = set()
        for tag, req, g in self._walk(el, where, True, ()):
            if tag in seen:
                raise self.err(f"{where}: field {self.fields[tag].name} appears twice")
            seen.add(tag)
            order.append(tag)
            if req:
                required.add(tag)
            if g is not None:
                groups[tag] = g
        return Section(
            fields=tuple(order),
            field_set=frozenset(order),
            required=tuple(sorted(required)),
            groups=MappingProxyType(groups),
            required_set=frozenset(required),
        )

    def _group(
        self, el: ET.Element, count_tag: int, where: str, is_required: bool, stack: tuple[str, ...]
    ) -> GroupDef:
        sec_members: list[int] = []
        required: set[int] = set()
        groups: dict[int, GroupDef] = {}
        for tag, req, g in self._walk(el, where, True, stack):
            if tag in sec_members:
                raise self.err(f"{where}: field {self.fields[tag].name} appears twice")
            sec_members.append(tag)
            if req:
                required.add(tag)
            if g is not None:
                groups[tag] = g
        if not sec_members:
            raise self.err(f"{where}: group has no fields")
        return GroupDef(
            count_tag=count_tag,
            name=el.get("name") or "",
            delimiter=sec_members[0],
            members=tuple(sec_members),
            member_set=frozenset(sec_members),
            required=tuple(sorted(required)),
            groups=MappingProxyType(groups),
            is_required=is_required,
            required_set=frozenset(required),
        )


def _is_y(v: str | None) -> bool:
    return v is not None and v.strip().upper() in ("Y", "YES", "TRUE")


_BUILTIN_FILES = {"FIX.4.2": "FIX42.xml", "FIX.4.4": "FIX44.xml"}


@functools.cache
def _builtin(begin_string: str) -> DataDictionary:
    name = _BUILTIN_FILES.get(begin_string)
    if name is None:
        raise DictionaryError(
            f"no built-in data dictionary for {begin_string!r}: have "
            f"{', '.join(sorted(_BUILTIN_FILES))}; set DataDictionary= to a QuickFIX XML file"
        )
    res = importlib.resources.files("fixgw").joinpath("spec", name)
    return DataDictionary.from_xml(res.read_bytes(), f"fixgw/spec/{name}")
