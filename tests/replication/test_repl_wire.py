from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replication.codec import encode_record
from replication.errors import RecordDecodeError
from replication.hlc import Hlc
from replication.record import Record, RecordType, Role
from replication.wire import (
    Batch,
    Digest,
    ResendRequest,
    Topics,
    decode_message,
    encode_batch,
    encode_digest,
    encode_request,
    encode_resend,
)


def rec(origin: str, seq: int) -> Record:
    return Record(origin=origin, seq=seq, txn="t", type=RecordType.NOTE, status="s", hlc=Hlc(1, 0, origin))


def test_messages_round_trip() -> None:
    data = [encode_record(rec("c1", i)) for i in (1, 2)]
    b = decode_message(encode_batch("c1", Role.CUSTOMER, data))
    assert isinstance(b, Batch) and b.origin == "c1" and b.origin_role is Role.CUSTOMER
    assert [r.seq for r, _ in b.records] == [1, 2] and [d for _, d in b.records] == data
    d = decode_message(encode_digest("s1", Role.STREET, 9, {"s1": 9, "c1": 3}))
    assert d == Digest("s1", Role.STREET, 9, {"s1": 9, "c1": 3})
    q = decode_message(encode_request(ResendRequest("c2", "c1", 3, 7)))
    assert q == ResendRequest("c2", "c1", 3, 7)


def test_a_resend_answer_round_trips_with_its_range() -> None:
    data = [encode_record(rec("c1", i)) for i in (3, 7)]
    b = decode_message(encode_resend("c1", Role.CUSTOMER, 2, 9, data))
    assert isinstance(b, Batch) and b.origin == "c1" and b.origin_role is Role.CUSTOMER
    assert b.complete == (2, 9) and [r.seq for r, _ in b.records] == [3, 7] and [d for _, d in b.records] == data
    holes_only = decode_message(encode_resend("c1", Role.CUSTOMER, 5, 5, []))
    assert holes_only == Batch("c1", Role.CUSTOMER, (), (5, 5))
    live = decode_message(encode_batch("c1", Role.CUSTOMER, data))
    assert isinstance(live, Batch) and live.complete is None


def test_a_resend_answer_is_not_encoded_with_a_bad_range() -> None:
    with pytest.raises(ValueError, match="bad resend answer range 0..3"):
        encode_resend("c1", Role.CUSTOMER, 0, 3, [])
    with pytest.raises(ValueError, match="bad resend answer range 4..3"):
        encode_resend("c1", Role.CUSTOMER, 4, 3, [])


def _answer(first: object, last: object, seqs: list[int], origin: str = "c1") -> bytes:
    return bytes(msgpack.packb([1, "R", "c1", "customer", first, last, [encode_record(rec(origin, s)) for s in seqs]]))


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (_answer(0, 3, []), "bad resend answer range 0..3"),
        (_answer(4, 3, []), "bad resend answer range 4..3"),
        (_answer(-1, 3, []), "first must be a non-negative integer"),
        (_answer(1, "9", []), "last must be a non-negative integer"),
        (_answer(1.0, 3, []), "first must be a non-negative integer"),
        (_answer(2, 5, [1]), "holds seq 1 after 1"),      # below the range
        (_answer(2, 5, [6]), "holds seq 6 after 1"),      # above the range
        (_answer(2, 5, [4, 3]), "holds seq 3 after 4"),   # out of order
        (_answer(2, 5, [3, 3]), "holds seq 3 after 3"),   # twice
        (_answer(2, 5, [3], origin="c2"), "holds a record of c2"),
        (msgpack.packb([1, "R", "c1", "customer", 1, 3, [b"\x93bad"]]), "record schema"),
        (msgpack.packb([1, "R", "c1", "customer", 1, 3, ["notbytes"]]), "binary strings"),
        (msgpack.packb([1, "R", "c1", "customer", 1, 3, {}]), "must be an array"),
        (msgpack.packb([1, "R", "c1", "customer", 1, 3]), "unknown message kind 'R' with 6"),
        (msgpack.packb([1, "R", "c1", "pilot", 1, 3, []]), "unknown role"),
        (msgpack.packb([1, "R", "a/b", "customer", 1, 3, []]), "resend answer origin"),
    ],
)
def test_malformed_resend_answers(payload: bytes, why: str) -> None:
    with pytest.raises(RecordDecodeError, match=why):
        decode_message(payload)


def test_topics() -> None:
    t = Topics("local")
    assert t.records(Role.STREET, "ssu1") == "fixgw/local/rec/street/ssu1"
    assert t.records_of_role(Role.FIRM) == "fixgw/local/rec/firm/+"
    with pytest.raises(ValueError):
        Topics("a/b")


def test_batch_with_a_record_of_another_origin_is_refused() -> None:
    with pytest.raises(RecordDecodeError, match="holds a record of c2"):
        decode_message(encode_batch("c1", Role.CUSTOMER, [encode_record(rec("c2", 1))]))


@pytest.mark.parametrize(
    "payload",
    [
        b"\xc1",
        msgpack.packb([2, "B"]),
        msgpack.packb([1, "X", 1, 2]),
        msgpack.packb([1, "B", "c1", "pilot", []]),
        msgpack.packb([1, "B", "c1", "customer", ["notbytes"]]),
        msgpack.packb([1, "Q", "a", "b", 5, 2]),
        msgpack.packb([1, "D", "a", "firm", -1, {}]),
        msgpack.packb([1, "D", "a", "firm", 1, {"x/y": 1}]),
    ],
)
def test_malformed_messages(payload: bytes) -> None:
    with pytest.raises(RecordDecodeError):
        decode_message(payload)


@given(st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_random_payloads_raise_only_record_decode_error(payload: bytes) -> None:
    try:
        decode_message(payload)
    except RecordDecodeError:
        pass
