from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replication.codec import (
    SCHEMA_VERSION,
    decode_record,
    encode_record,
    make_record,
    record_from_json,
    record_to_json,
    record_to_json_line,
    record_values,
)
from replication.errors import RecordDecodeError, RecordEncodeError
from replication.hlc import Hlc
from replication.record import Record, RecordType
from tests.replication.strategies_repl import records


def sample(**over: object) -> Record:
    fields: dict[str, object] = {
        "origin": "cfu1", "seq": 7, "txn": "cfu1-42", "type": RecordType.FILL,
        "status": "partially_filled", "hlc": Hlc(1_700_000_000_000_000_000, 3, "cfu1"),
        "account": "ACC", "symbol": "IBM", "side": "1", "order_qty": Decimal(100),
        "price": Decimal("12.50"), "last_qty": Decimal(10), "last_px": Decimal("12.49"),
        "cum_qty": Decimal(10), "avg_px": Decimal("12.49"),
        "extra": {"fee": Decimal("0.01"), "n": 3, "flag": True, "none": None, "s": "x"},
    }
    fields.update(over)
    return Record(**fields)  # type: ignore[arg-type]


def test_round_trip_keeps_every_field_and_decimal_exactly() -> None:
    rec = sample()
    back = decode_record(encode_record(rec))
    assert back == rec
    assert str(back.price) == "12.50"  # exponent kept: "12.50", not "12.5"
    assert isinstance(back.extra["fee"], Decimal) and back.extra["fee"] == Decimal("0.01")


def test_encoding_is_versioned_and_uses_strings_for_decimals() -> None:
    arr = msgpack.unpackb(encode_record(sample()), raw=False, strict_map_key=False, ext_hook=lambda c, d: (c, d))
    assert arr[0] == SCHEMA_VERSION
    assert "12.50" in arr and not any(isinstance(x, float) for x in arr)


@given(records())
@settings(max_examples=150, deadline=None)
def test_any_record_round_trips(rec: Record) -> None:
    data = encode_record(rec)
    assert decode_record(data) == rec
    assert encode_record(decode_record(data)) == data  # deterministic bytes


@given(st.binary(max_size=300))
@settings(max_examples=400, deadline=None)
def test_random_bytes_raise_only_record_decode_error(data: bytes) -> None:
    try:
        decode_record(data)
    except RecordDecodeError:
        pass


@given(records(), st.data())
@settings(max_examples=200, deadline=None)
def test_corrupted_encodings_raise_only_record_decode_error(rec: Record, data: st.DataObject) -> None:
    raw = bytearray(encode_record(rec))
    op = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    i = data.draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        raw[i] ^= data.draw(st.integers(1, 255))
    elif op == "truncate":
        del raw[i:]
    else:
        raw[i:i] = data.draw(st.binary(min_size=1, max_size=5))
    try:
        out = decode_record(bytes(raw))
    except RecordDecodeError:
        return
    assert isinstance(out, Record)  # a corruption may still spell a valid record


@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text() | st.binary(),
                    lambda c: st.lists(c, max_size=30) | st.dictionaries(st.text(), c, max_size=5),
                    max_leaves=60))
@settings(max_examples=250, deadline=None)
def test_arbitrary_msgpack_values_raise_only_record_decode_error(value: object) -> None:
    try:
        decode_record(msgpack.packb(value))
    except RecordDecodeError:
        pass


def _with(index: int, value: object) -> bytes:
    arr = msgpack.unpackb(encode_record(sample()), raw=False, ext_hook=msgpack.ExtType)
    arr[index] = value
    packed: bytes = msgpack.packb(arr)
    return packed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not valid msgpack"),
        (msgpack.packb({"a": 1}), "non-empty msgpack array"),
        (_with(0, 2), "unsupported record schema version 2"),
        (_with(2, 0), "'seq' must be >= 1"),
        (_with(2, True), "field 'seq' must be int"),
        (_with(4, "teleport"), "unknown record type 'teleport'"),
        (_with(14, 12.5), "field 'price' must be str or nil"),
        (_with(14, "12.5000000000000000000000000001e0"), "not a canonical finite decimal"),
        (_with(14, "NaN"), "not a canonical finite decimal"),
        (_with(14, "abc"), "not a decimal"),
        (_with(1, "bad/origin"), "field 'origin' must be"),
        (_with(28, {"x": 1.5}), "unsupported type float"),
        (msgpack.packb([1, 2, 3]), "has 29 elements"),
    ],
)
def test_malformed_records_say_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(RecordDecodeError, match=message):
        decode_record(raw)


def test_decode_rejects_non_bytes() -> None:
    with pytest.raises(RecordDecodeError):
        decode_record("text")  # type: ignore[arg-type]


def test_encode_refuses_floats_and_non_finite_decimals() -> None:
    with pytest.raises(RecordEncodeError, match="float"):
        encode_record(sample(extra={"x": 1.5}))
    with pytest.raises(RecordEncodeError, match="finite"):
        encode_record(sample(price=Decimal("NaN")))


@given(records())
@settings(max_examples=100, deadline=None)
def test_json_round_trip(rec: Record) -> None:
    line = record_to_json_line(rec)
    assert record_from_json(json.loads(line)) == rec


def test_json_is_readable_and_strict() -> None:
    d = record_to_json(sample())
    assert d["price"] == "12.50" and d["extra"]["fee"] == {"decimal": "0.01"}
    assert d["hlc"] == {"wall_ns": 1_700_000_000_000_000_000, "logical": 3, "node": "cfu1"}
    with pytest.raises(RecordDecodeError, match="unknown record field"):
        record_from_json({**d, "bogus": 1})
    with pytest.raises(RecordDecodeError, match="lacks field 'seq'"):
        record_from_json({k: v for k, v in d.items() if k != "seq"})
    with pytest.raises(RecordDecodeError):
        record_from_json({**d, "price": 12.5})
    with pytest.raises(RecordDecodeError):
        record_from_json([1, 2])


def test_parsed_decimals_are_cached_but_still_checked() -> None:
    from replication import codec

    first = decode_record(encode_record(sample()))
    again = decode_record(encode_record(sample()))
    assert again.price == first.price == Decimal("12.50")
    assert str(again.price) == "12.50"  # the spelling is part of the value the cache keys on
    assert "12.50" in codec._DEC_CACHE
    # a value the cache holds does not make a non-canonical spelling of it acceptable
    with pytest.raises(RecordDecodeError, match="not a canonical finite decimal"):
        decode_record(_with(14, "1.25E+1"))
    # bounded: hostile input cannot grow it without end
    for i in range(codec._DEC_CACHE_MAX + 10):
        decode_record(_with(14, f"{i}.5"))
    assert len(codec._DEC_CACHE) <= codec._DEC_CACHE_MAX


@given(records())
@settings(max_examples=100, deadline=None)
def test_fast_built_records_are_real_frozen_records(rec: Record) -> None:
    # make_record builds through a same-layout shell and __class__ assignment: the result
    # must be indistinguishable from Record(...), frozen included
    values = [getattr(rec, f.name) for f in dataclasses.fields(Record)]
    built = make_record(values)
    assert type(built) is Record and built == rec and hash(built.key) == hash(rec.key)
    assert dataclasses.astuple(built) == dataclasses.astuple(rec)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.seq = 99  # type: ignore[misc]
    assert built.replace(seq=99).seq == 99 and built.seq == rec.seq


def test_make_record_still_runs_record_validation() -> None:
    values = [getattr(sample(), f.name) for f in dataclasses.fields(Record)]
    values[1] = 0  # seq
    with pytest.raises(ValueError, match="seq"):
        make_record(values)
    values[1], values[3] = 1, "fill"  # a type given as its value is made the enum member
    assert make_record(values).type is RecordType.FILL


def test_new_record_values_refuse_what_the_log_assigns_and_unknown_fields() -> None:
    hlc = Hlc(1, 0, "n")
    base = {"type": RecordType.ORDER, "txn": "t", "status": "new"}
    for given_field in ("origin", "seq", "hlc"):
        with pytest.raises(ValueError, match="assigned by the log"):
            record_values("n", 1, hlc, {**base, given_field: 1})
    with pytest.raises(ValueError, match="no field"):
        record_values("n", 1, hlc, {**base, "colour": "red"})
    with pytest.raises(ValueError, match="price must be Decimal"):
        record_values("n", 1, hlc, {**base, "price": 1.5})
