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
