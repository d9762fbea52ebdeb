"""The record codec: msgpack on the wire and in LMDB, JSON lines for the ops tools.

Wire/storage form (schema version 1) is one msgpack array, positional for speed::

    [1, origin, seq, txn, type, status, hlc_wall_ns, hlc_logical, hlc_node,
     account, symbol, side, order_qty, cash_order_qty, price, ord_type, tif,
     cl_ord_id, orig_cl_ord_id, venue, session, venue_order_id, exec_id,
     last_qty, last_px, cum_qty, avg_px, text, extra]

The leading schema version lets a later build read old records (and refuse newer ones
with a clear message). Decimal fields are canonical decimal strings (``str(Decimal)``) or
nil, never floats; a Decimal inside ``extra`` is a msgpack ext type 1 holding the same
string, so that it comes back as a Decimal and not as a str.

Decoding anything malformed -- truncated, random bytes, wrong types, a future schema --
raises :class:`RecordDecodeError` and nothing else.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, cast

import msgpack

from replication.errors import RecordDecodeError, RecordEncodeError
from replication.hlc import Hlc, hlc_unchecked
from replication.record import Record, RecordType, Scalar

SCHEMA_VERSION = 1
_DECIMAL_EXT = 1

# Field layout of schema version 1 after the version number (index 1..28).
_STR_FIELDS_A = ("account", "symbol", "side")
_DEC_FIELDS_A = ("order_qty", "cash_order_qty", "price")
_STR_FIELDS_B = (
    "ord_type", "tif", "cl_ord_id", "orig_cl_ord_id", "venue", "session", "venue_order_id", "exec_id",
)
_DEC_FIELDS_B = ("last_qty", "last_px", "cum_qty", "avg_px")
_V1_LEN = 29

DECIMAL_FIELDS = _DEC_FIELDS_A + _DEC_FIELDS_B
STR_FIELDS = ("txn", "status") + _STR_FIELDS_A + _STR_FIELDS_B + ("text",)


def _dec_out(name: str, v: Decimal) -> str:
    if not v.is_finite():
        raise RecordEncodeError(f"Record.{name} must be a finite Decimal, got {v!r}")
    return str(v)


def _default(obj: object) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise RecordEncodeError(f"a Decimal in Record.extra must be finite, got {obj!r}")
        return msgpack.ExtType(_DECIMAL_EXT, str(obj).encode("ascii"))
    raise RecordEncodeError(f"cannot encode {type(obj).__name__} value {obj!r} in Record.extra")


_tls = threading.local()


def _packer() -> msgpack.Packer:
    # One Packer per thread: building one per call costs ~0.7 us, and a Packer is not thread-safe.
    try:
        packer: msgpack.Packer = _tls.packer
    except AttributeError:
        packer = _tls.packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)
    return packer


def _check_extra(extra: Mapping[str, Scalar]) -> dict[str, Scalar]:
    out: dict[str, Scalar] = {}
    for k, v in extra.items():
        if type(k) is not str:
            raise RecordEncodeError(f"Record.extra keys must be str, got {k!r}")
        if v is not None and type(v) not in (str, int, bool, Decimal):
            raise RecordEncodeError(
                f"Record.extra[{k!r}] must be str, int, bool, Decimal or None, got {type(v).__name__}"
            )
        out[k] = v
    return out


def encode_record(rec: Record) -> bytes:
    """The msgpack bytes of ``rec`` (deterministic: equal records give equal bytes)."""
    h = rec.hlc
    extra = _check_extra(rec.extra) if rec.extra else None
    try:
        return cast(bytes, _packer().pack(
            [
                SCHEMA_VERSION, rec.origin, rec.seq, rec.txn, rec.type.value, rec.status,
                h.wall_ns, h.logical, h.node,
                rec.account, rec.symbol, rec.side,
                None if rec.order_qty is None else _dec_out("order_qty", rec.order_qty),
                None if rec.cash_order_qty is None else _dec_out("cash_order_qty", rec.cash_order_qty),
                None if rec.price is None else _dec_out("price", rec.price),
                rec.ord_type, rec.tif, rec.cl_ord_id, rec.orig_cl_ord_id, rec.venue, rec.session,
                rec.venue_order_id, rec.exec_id,
                None if rec.last_qty is None else _dec_out("last_qty", rec.last_qty),
                None if rec.last_px is None else _dec_out("last_px", rec.last_px),
                None if rec.cum_qty is None else _dec_out("cum_qty", rec.cum_qty),
                None if rec.avg_px is None else _dec_out("avg_px", rec.avg_px),
                rec.text, extra,
            ]
        ))
    except RecordEncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecordEncodeError(f"cannot encode record {rec.origin}#{rec.seq}: {exc}") from None


def encode_values(v: Sequence[Any]) -> bytes:
    """Like :func:`encode_record`, from a record's field values in declaration order (a
    record just built from them by :func:`make_record`, so already validated).

    The hot path of every append: the record type goes in as the str-valued enum itself
    (msgpack packs a str subclass as its str, which is the value), and the decimals are
    converted inline (a call per field costs ~0.2 us).
    """
    h = v[5]
    extra = v[25]
    try:
        order_qty, cash_qty, price, last_qty, last_px, cum_qty, avg_px = v[9], v[10], v[11], v[20], v[21], v[22], v[23]
        return cast(bytes, _packer().pack([
            SCHEMA_VERSION, v[0], v[1], v[2], v[3], v[4], h.wall_ns, h.logical, h.node,
            v[6], v[7], v[8],
            None if order_qty is None else str(order_qty) if order_qty.is_finite() else _dec_out("order_qty", order_qty),
            None if cash_qty is None else str(cash_qty) if cash_qty.is_finite() else _dec_out("cash_order_qty", cash_qty),
            None if price is None else str(price) if price.is_finite() else _dec_out("price", price),
            v[12], v[13], v[14], v[15], v[16], v[17], v[18], v[19],
            None if last_qty is None else str(last_qty) if last_qty.is_finite() else _dec_out("last_qty", last_qty),
            None if last_px is None else str(last_px) if last_px.is_finite() else _dec_out("last_px", last_px),
            None if cum_qty is None else str(cum_qty) if cum_qty.is_finite() else _dec_out("cum_qty", cum_qty),
            None if avg_px is None else str(avg_px) if avg_px.is_finite() else _dec_out("avg_px", avg_px),
            v[24], _check_extra(extra) if extra else None,
        ]))
    except RecordEncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise RecordEncodeError(f"cannot encode record {v[0]}#{v[1]}: {exc}") from None


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _DECIMAL_EXT:
        raise RecordDecodeError(f"unknown msgpack ext type {code}")
    return _parse_decimal("extra", data.decode("ascii"))


# Prices and quantities repeat (every record of an order carries its terms): a parsed,
# canonical spelling is looked up instead of parsed and re-printed (Decimals are immutable).
_DEC_CACHE: dict[str, Decimal] = {}
_DEC_CACHE_MAX = 8192


def _parse_decimal(name: str, s: object) -> Decimal:
    if type(s) is not str:
        raise RecordDecodeError(f"field {name!r} must be a decimal string or nil, got {type(s).__name__}")
    d = _DEC_CACHE.get(s)
    if d is not None:
        return d
    d = _parse_decimal_text(name, s)
    if len(_DEC_CACHE) >= _DEC_CACHE_MAX:
        _DEC_CACHE.clear()
    _DEC_CACHE[s] = d
    return d


def _parse_decimal_text(name: str, s: str) -> Decimal:
    try:
        d = Decimal(s)
    except (InvalidOperation, ValueError):
        raise RecordDecodeError(f"field {name!r} is not a decimal: {s[:40]!r}") from None
    # Canonical form only: one spelling per value keeps the stored bytes deterministic.
    if not d.is_finite() or str(d) != s:
        raise RecordDecodeError(f"field {name!r} is not a canonical finite decimal: {s[:40]!r}")
    return d


_NODE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_GOOD_NODE_IDS: set[str] = set()


def check_node_id(node_id: object, what: str = "node id") -> str:
    """``node_id`` if it is a valid node id: 1-64 of ``A-Z a-z 0-9 _ . -``.

    Node ids are MQTT topic levels and LMDB key prefixes, so wildcards, '/' and NUL are out.
    """
    if type(node_id) is str and node_id in _GOOD_NODE_IDS:
        return node_id
    if type(node_id) is not str or not _NODE_ID.fullmatch(node_id):
        raise ValueError(f"{what} must be 1-64 characters of A-Z a-z 0-9 _ . -, got {node_id!r:.80}")
    if len(_GOOD_NODE_IDS) < 100_000:  # a cache, bounded so hostile input cannot grow it forever
        _GOOD_NODE_IDS.add(node_id)
    return node_id


# --- fast construction ------------------------------------------------------------------
# A frozen 26-field dataclass costs ~10 us to build through __init__ on this machine, which
# alone would eat half of the 20 us budget per durable append; setting its 26 slots through
# their descriptors still costs ~2 us (a wrapper call each). Records built here are born as
# a _RecordShell -- the same slots, not frozen, so each store is a plain attribute store the
# interpreter specialises -- and then become Records by __class__ assignment (~0.7 us in
# all), which CPython allows because the two layouts are identical. Every record is built
# on some node's hot path (appends, and every received record decoded). make_record then
# runs Record.__post_init__, so Record's own validation still applies.

_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(Record))
_EXPECTED_FIELDS = ("origin", "seq", "txn", "type", "status", "hlc") + _STR_FIELDS_A + _DEC_FIELDS_A \
    + _STR_FIELDS_B + _DEC_FIELDS_B + ("text", "extra")
if _RECORD_FIELDS != _EXPECTED_FIELDS:  # pragma: no cover - guards a change of record.py
    raise RuntimeError(
        "replication.record.Record fields changed; update replication/codec.py (and bump "
        f"SCHEMA_VERSION): got {_RECORD_FIELDS}"
    )
_POST_INIT = Record.__post_init__
FIELD_NAMES = frozenset(_RECORD_FIELDS)
_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(Record) if f.default is not dataclasses.MISSING
}
_EMPTY: Mapping[str, Scalar] = MappingProxyType({})
_DEFAULTS["extra"] = _EMPTY  # shared and read-only, so no record can alter another's


class _RecordShell:
    """A Record under construction (see above); never seen outside this module."""

    __slots__ = Record.__slots__


def _compile_builder(validate: bool) -> Callable[[Sequence[Any]], Record]:
    # straight-line stores (no Python loop), generated from the dataclass's own field list
    stores = "".join(f"    r.{name} = v[{i}]\n" for i, name in enumerate(_RECORD_FIELDS))
    post = "    _post(r)\n" if validate else ""
    src = f"def build(v, _Shell=_Shell, _R=_R, _post=_post):\n    r = _Shell()\n{stores}    r.__class__ = _R\n{post}    return r\n"
    ns: dict[str, Any] = {"_Shell": _RecordShell, "_R": Record, "_post": _POST_INIT}
    exec(src, ns)  # noqa: S102 - generated from the dataclass's own field list above
    return ns["build"]  # type: ignore[no-any-return]


make_record: Callable[[Sequence[Any]], Record] = _compile_builder(validate=True)
"""A Record from all its field values in declaration order (validated by Record itself)."""

make_checked_record: Callable[[Sequence[Any]], Record] = _compile_builder(validate=False)
"""A Record from values already checked by :func:`record_values` (or the decoder), which
check every field at least as strictly as Record.__post_init__ does."""

_INDEX = {name: i for i, name in enumerate(_RECORD_FIELDS)}
_DEFAULT_VALUES: list[Any] = [_DEFAULTS.get(name) for name in _RECORD_FIELDS]


_D = (Decimal, type(None))
# allowed type of each Record field value, in declaration order (extra is normalised first)
_FIELD_TYPES: tuple[tuple[type, ...], ...] = (
    (str,), (int,), (str,), (RecordType,), (str,), (Hlc,), (str,), (str,), (str,), _D, _D, _D,
    (str,), (str,), (str,), (str,), (str,), (str,), (str,), (str,), _D, _D, _D, _D, (str,),
    (MappingProxyType,),
)
_EXTRA = _INDEX["extra"]
_TYPE = _INDEX["type"]
# What a caller may give for a new record (the log assigns origin, seq and hlc): field ->
# (its index, the value types taken as they are). A type given as its str value and every
# extra (copied, read-only) go through _given_value.
_GIVEN: dict[str, tuple[int, tuple[type, ...]]] = {
    name: (i, () if name == "extra" else _FIELD_TYPES[i])
    for name, i in _INDEX.items() if name not in ("origin", "seq", "hlc")
}


def _given_value(i: int, value: Any) -> Any:
    if i == _EXTRA:
        if value is _EMPTY:
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"Record.extra must be a mapping, got {type(value).__name__}")
        # Copy into a read-only mapping so that a caller mutating its dict later changes nothing.
        return MappingProxyType(dict(value)) if value else _EMPTY
    if i == _TYPE and type(value) is str:
        try:
            return RecordType(value)
        except ValueError:
            raise ValueError(f"Record.type {value!r:.40} is not a RecordType") from None
    want = " or ".join("None" if t is type(None) else t.__name__ for t in _FIELD_TYPES[i])
    raise ValueError(f"Record.{_RECORD_FIELDS[i]} must be {want}, got {type(value).__name__} {value!r:.40}")


def record_values(origin: str, seq: int, hlc: Hlc, fields: Mapping[str, Any]) -> list[Any]:
    """Field values in declaration order for a new record: ``fields`` over the defaults,
    every value type-checked (a str field must be a str, a price a Decimal, ...).

    Raises ValueError for a field name that Record does not have, a missing txn/type/status,
    or a value of the wrong type. The result may go to :func:`make_checked_record`.
    """
    v = _DEFAULT_VALUES.copy()  # the defaults are valid: only the given values are checked
    given = _GIVEN
    for k, x in fields.items():
        spec = given.get(k)
        if spec is None:
            if k in ("origin", "seq", "hlc"):
                raise ValueError("origin, seq and hlc of a new record are assigned by the log, not given")
            unknown = sorted(set(fields) - FIELD_NAMES)
            raise ValueError(f"Record has no field(s) {', '.join(map(str, unknown))}")
        i, allowed = spec
        v[i] = x if type(x) in allowed else _given_value(i, x)
    if v[2] is None or v[3] is None or v[4] is None:
        missing = [n for n in ("txn", "type", "status") if n not in fields]
        raise ValueError(f"Record field(s) {', '.join(missing)} required")
    v[0] = origin
    v[1] = seq
    v[5] = hlc
    return v


# --- decoding -----------------------------------------------------------------------------

_TYPES = {t.value: t for t in RecordType}
_OPT_DEC = (str, type(None))
# expected msgpack types of each element of a version 1 array
_V1_TYPES: tuple[tuple[type, ...], ...] = (
    (int,), (str,), (int,), (str,), (str,), (str,), (int,), (int,), (str,),
    (str,), (str,), (str,), _OPT_DEC, _OPT_DEC, _OPT_DEC,
    (str,), (str,), (str,), (str,), (str,), (str,), (str,), (str,),
    _OPT_DEC, _OPT_DEC, _OPT_DEC, _OPT_DEC, (str,), (dict, type(None)),
)
_V1_NAMES = ("version", "origin", "seq", "txn", "type", "status", "hlc.wall_ns", "hlc.logical", "hlc.node") \
    + _EXPECTED_FIELDS[6:]


def _type_error(obj: list[Any]) -> RecordDecodeError:
    """Which element of a version 1 array has the wrong type (the reader's slow path)."""
    for i, (value, allowed) in enumerate(zip(obj, _V1_TYPES)):
        if type(value) not in allowed:
            want = " or ".join("nil" if t is type(None) else t.__name__ for t in allowed)
            return RecordDecodeError(f"field {_V1_NAMES[i]!r} must be {want}, got {type(value).__name__}")
    return RecordDecodeError("a version 1 record has an element of the wrong type")  # pragma: no cover


def decode_record(data: bytes) -> Record:
    """The record in ``data``; :class:`RecordDecodeError` for anything malformed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise RecordDecodeError(f"a record is bytes, got {type(data).__name__}")
    try:
        obj = msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=True)
    except RecordDecodeError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises many types (ExtraData, StackError, ...)
        raise RecordDecodeError(f"record is not valid msgpack: {type(exc).__name__}: {exc}") from None
    return record_from_array(obj)


def record_from_array(obj: object) -> Record:
    """Build a record from an already unpacked msgpack array (schema version first)."""
    if type(obj) is not list or not obj:
        raise RecordDecodeError(f"a record is a non-empty msgpack array, got {type(obj).__name__}")
    version = obj[0]
    if type(version) is not int or version != SCHEMA_VERSION:
        raise RecordDecodeError(
            f"unsupported record schema version {version!r:.20} (this build reads version {SCHEMA_VERSION})"
        )
    if len(obj) != _V1_LEN:
        raise RecordDecodeError(f"a version 1 record has {_V1_LEN} elements, got {len(obj)}")
    return _read_v1(obj)


def _decimal(name: str, text: str | None) -> Decimal | None:
    # the cache looked up here first: going through _parse_decimal (a call and a type check
    # more) costs 7% of a whole decode
    if text is None:
        return None
    d = _DEC_CACHE.get(text)
    return d if d is not None else _parse_decimal(name, text)


def _read_v1(obj: list[Any]) -> Record:
    # Straight-line on purpose: every record received by every node comes through here, and
    # one pass over named locals costs about half of generic per-element loops.
    (_, origin, seq, txn, type_value, status, wall_ns, logical, node, account, symbol, side,
     order_qty, cash_order_qty, price, ord_type, tif, cl_ord_id, orig_cl_ord_id, venue, session,
     venue_order_id, exec_id, last_qty, last_px, cum_qty, avg_px, text, extra) = obj
    if not (
        type(origin) is str and type(seq) is int and type(txn) is str and type(type_value) is str
        and type(status) is str and type(wall_ns) is int and type(logical) is int and type(node) is str
        and type(account) is str and type(symbol) is str and type(side) is str
        and (order_qty is None or type(order_qty) is str)
        and (cash_order_qty is None or type(cash_order_qty) is str)
        and (price is None or type(price) is str)
        and type(ord_type) is str and type(tif) is str and type(cl_ord_id) is str
        and type(orig_cl_ord_id) is str and type(venue) is str and type(session) is str
        and type(venue_order_id) is str and type(exec_id) is str
        and (last_qty is None or type(last_qty) is str) and (last_px is None or type(last_px) is str)
        and (cum_qty is None or type(cum_qty) is str) and (avg_px is None or type(avg_px) is str)
        and type(text) is str and (extra is None or type(extra) is dict)
    ):
        raise _type_error(obj)
    try:
        if origin not in _GOOD_NODE_IDS:
            check_node_id(origin, "field 'origin'")
        if node not in _GOOD_NODE_IDS:
            check_node_id(node, "field 'hlc.node'")
    except ValueError as exc:
        raise RecordDecodeError(str(exc)) from None
    if seq < 1:
        raise RecordDecodeError(f"field 'seq' must be >= 1, got {seq}")
    if wall_ns < 0 or logical < 0:
        raise RecordDecodeError(f"hlc wall_ns and logical must be >= 0, got {wall_ns}, {logical}")
    rtype = _TYPES.get(type_value)
    if rtype is None:
        raise RecordDecodeError(f"unknown record type {type_value[:40]!r}")
    if extra:
        for k, x in extra.items():
            if type(k) is not str:
                raise RecordDecodeError(f"field 'extra' has a non-string key {k!r:.40}")
            if x is not None and type(x) not in (str, int, bool, Decimal):
                raise RecordDecodeError(
                    f"field 'extra' value for {k!r:.40} has unsupported type {type(x).__name__}"
                )
        extra = MappingProxyType(extra)
    else:
        extra = _EMPTY
    # Every value is checked above as strictly as Hlc and Record check them: build both
    # without re-checking (see "fast construction").
    r: Any = _RecordShell()
    r.origin = origin
    r.seq = seq
    r.txn = txn
    r.type = rtype
    r.status = status
    r.hlc = hlc_unchecked(wall_ns, logical, node)
    r.account = account
    r.symbol = symbol
    r.side = side
    r.order_qty = _decimal("order_qty", order_qty)
    r.cash_order_qty = _decimal("cash_order_qty", cash_order_qty)
    r.price = _decimal("price", price)
    r.ord_type = ord_type
    r.tif = tif
    r.cl_ord_id = cl_ord_id
    r.orig_cl_ord_id = orig_cl_ord_id
    r.venue = venue
    r.session = session
    r.venue_order_id = venue_order_id
    r.exec_id = exec_id
    r.last_qty = _decimal("last_qty", last_qty)
    r.last_px = _decimal("last_px", last_px)
    r.cum_qty = _decimal("cum_qty", cum_qty)
    r.avg_px = _decimal("avg_px", avg_px)
    r.text = text
    r.extra = extra
    r.__class__ = Record
    return cast(Record, r)


# ---------------------------------------------------------------------------------------
# JSON lines (ops: dump --json, export, import). Decimals are strings; a Decimal inside
# ``extra`` is {"decimal": "1.5"} so that import gives back exactly the same record.

_JSON_FIELDS = ("origin", "seq", "txn", "type", "status", "hlc") + _STR_FIELDS_A + _DEC_FIELDS_A \
    + _STR_FIELDS_B + _DEC_FIELDS_B + ("text", "extra")


def record_to_json(rec: Record) -> dict[str, Any]:
    """A JSON-ready dict of ``rec`` (round-trips through :func:`record_from_json`)."""
    out: dict[str, Any] = {}
    for name in _JSON_FIELDS:
        v = getattr(rec, name)
        if name == "type":
            v = rec.type.value
        elif name == "hlc":
            v = {"wall_ns": rec.hlc.wall_ns, "logical": rec.hlc.logical, "node": rec.hlc.node}
        elif name == "extra":
            v = {k: ({"decimal": str(x)} if isinstance(x, Decimal) else x) for k, x in rec.extra.items()}
        elif isinstance(v, Decimal):
            v = str(v)
        out[name] = v
    return out


def record_from_json(obj: object) -> Record:
    """The record of a :func:`record_to_json` dict; :class:`RecordDecodeError` if malformed."""
    if type(obj) is not dict:
        raise RecordDecodeError(f"a JSON record is an object, got {type(obj).__name__}")
    unknown = set(obj) - set(_JSON_FIELDS)
    if unknown:
        raise RecordDecodeError(f"unknown record field(s): {', '.join(sorted(map(str, unknown)))[:200]}")
    for required in ("origin", "seq", "txn", "type", "status", "hlc"):
        if required not in obj:
            raise RecordDecodeError(f"JSON record lacks field {required!r}")
    hlc = obj["hlc"]
    if type(hlc) is not dict or set(hlc) != {"wall_ns", "logical", "node"}:
        raise RecordDecodeError("field 'hlc' must be an object with wall_ns, logical and node")
    extra_in = obj.get("extra") or {}
    if type(extra_in) is not dict:
        raise RecordDecodeError("field 'extra' must be an object")
    extra: dict[str, Any] = {}
    for k, x in extra_in.items():
        if type(x) is dict:
            if set(x) != {"decimal"}:
                raise RecordDecodeError(f"field 'extra' value for {k!r:.40} is an object other than {{'decimal': ...}}")
            extra[k] = _parse_decimal("extra", x["decimal"])
        else:
            extra[k] = x
    arr: list[Any] = [SCHEMA_VERSION, obj["origin"], obj["seq"], obj["txn"], obj["type"], obj["status"],
                      hlc["wall_ns"], hlc["logical"], hlc["node"]]
    for name in _STR_FIELDS_A:
        arr.append(obj.get(name, ""))
    for name in _DEC_FIELDS_A:
        arr.append(obj.get(name))
    for name in _STR_FIELDS_B:
        arr.append(obj.get(name, ""))
    for name in _DEC_FIELDS_B:
        arr.append(obj.get(name))
    arr.append(obj.get("text", ""))
    arr.append(extra)
    return record_from_array(arr)


def record_to_json_line(rec: Record, **more: Any) -> str:
    """One JSON line for ``rec``; ``more`` adds keys next to the record (e.g. origin_role)."""
    d = record_to_json(rec)
    d.update(more)
    return json.dumps(d, separators=(",", ":"), ensure_ascii=False)
