"""Framer and message: BodyLength/CheckSum, garbled input, chunk boundaries, never stuck."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.errors import FieldNotFound
from fixgw.framing import Framer, Garbled
from fixgw.message import Message, encode, parse_fields


def msg(seq: int, mt: bytes = b"D", body: list[tuple[int, bytes]] | None = None) -> bytes:
    header = [(35, mt), (49, b"A"), (56, b"B"), (34, b"%d" % seq), (52, b"20240101-00:00:00.000")]
    return encode(b"FIX.4.4", header, body if body is not None else [(11, b"X%d" % seq), (55, b"IBM")])


def drain(f: Framer) -> list[Message | Garbled]:
    out = []
    while (item := f.next()) is not None:
        out.append(item)
    return out


def test_encode_computes_body_length_and_checksum() -> None:
    raw = msg(1)
    assert raw.startswith(b"8=FIX.4.4\x019=")
    body_start = raw.index(b"\x01", 10) + 1
    body_end = raw.rindex(b"10=")
    assert int(raw[12:body_start - 1]) == body_end - body_start
    assert int(raw[-4:-1]) == sum(raw[:body_end]) % 256


def test_messages_are_cut_and_parsed() -> None:
    f = Framer()
    f.feed(msg(1) + msg(2) + msg(3)[:20])
    got = drain(f)
    assert [m[34] for m in got if isinstance(m, Message)] == [b"1", b"2"]
    f.feed(msg(3)[20:])
    (m3,) = drain(f)
    assert isinstance(m3, Message) and m3.raw == msg(3) and m3.get(11) == b"X3"


def test_junk_before_a_message_is_skipped() -> None:
    f = Framer()
    f.feed(b"\x01garbage 9=12\x01 10=000\x01" + msg(7))
    got = drain(f)
    assert [type(g) for g in got] == [Message]
    assert f.skipped_bytes > 0


def test_bad_checksum_is_garbled_and_the_next_message_survives() -> None:
    bad = msg(1)[:-4] + b"000\x01"
    f = Framer()
    f.feed(bad + msg(2))
    g, m = drain(f)
    assert isinstance(g, Garbled) and "CheckSum" in g.reason and g.msg_type == b"D"
    assert isinstance(m, Message) and m[34] == b"2"


def test_body_length_too_short_is_garbled_with_its_own_extent() -> None:
    raw = msg(1)
    bad = raw.replace(b"9=", b"9=1", 1)[:0] or raw[: raw.index(b"9=") + 2] + b"20" + raw[raw.index(b"\x01", 10):]
    f = Framer()
    f.feed(bad + msg(2))
    g, m = drain(f)
    assert isinstance(g, Garbled) and "BodyLength" in g.reason
    assert isinstance(m, Message) and m[34] == b"2"


def test_body_length_too_long_swallows_the_next_message_as_quickfix_does() -> None:
    raw = msg(1)
    i = raw.index(b"9=") + 2
    j = raw.index(b"\x01", i)
    bad = raw[:i] + b"%d" % (int(raw[i:j]) + 20) + raw[j:]
    f = Framer()
    f.feed(bad + msg(2) + msg(3))
    got = drain(f)
    assert isinstance(got[0], Garbled)
    assert [m[34] for m in got[1:] if isinstance(m, Message)] == [b"3"]


def test_msgtype_not_third_and_length_not_second_are_garbled() -> None:
    f = Framer()
    f.feed(b"8=FIX.4.2\x0135=0\x019=5\x0110=000\x01" + msg(5))
    got = drain(f)
    assert isinstance(got[0], Garbled) and isinstance(got[-1], Message)
    f = Framer()
    data = b"8=FIX.4.2\x019=10\x0149=A\x0135=0\x01"
    f.feed(data + b"10=%03d\x01" % (sum(data) % 256))
    (g,) = drain(f)
    assert isinstance(g, Garbled) and "MsgType" in g.reason


def test_oversized_body_length_is_dropped() -> None:
    f = Framer(max_message_size=1000)
    f.feed(b"8=FIX.4.4\x019=999999\x0135=D\x01" + msg(1))
    got = drain(f)
    assert isinstance(got[0], Garbled) and "maximum" in got[0].reason
    assert isinstance(got[-1], Message)


def test_a_frame_that_never_ends_does_not_block_the_stream() -> None:
    f = Framer(max_message_size=200)
    f.feed(b"8=FIX.4.4\x019=150\x0135=D\x01" + b"x" * 600 + msg(9))
    got = drain(f)
    assert isinstance(got[-1], Message) and got[-1][34] == b"9"


def test_data_fields_may_contain_soh() -> None:
    raw = msg(1, body=[(95, b"3"), (96, b"a\x01b"), (11, b"Z")])
    f = Framer()
    f.feed(raw)
    (m,) = drain(f)
    assert isinstance(m, Message) and m[96] == b"a\x01b" and m[11] == b"Z"


def test_message_api() -> None:
    m = Message.new("D", [(11, "A1"), (38, Decimal("100.50")), (54, 1)])
    m.append(55, "IBM").set(54, "2")
    assert m.msg_type == b"D" and m.get_str(55) == "IBM" and m[54] == b"2"
    assert m.get_decimal(38) == Decimal("100.50") and m.get_int(54) == 2
    with pytest.raises(FieldNotFound):
        m[9999]
    with pytest.raises(TypeError):
        m.append(44, 1.5)  # no floats for prices
    assert m.remove(55).get(55) is None
    assert parse_fields(b"8=FIX.4.2\x01garbage\x0110=000\x01") is None
    assert parse_fields(b"8=FIX.4.2\x01-1=HI\x0110=000\x01") == [(8, b"FIX.4.2"), (-1, b"HI"), (10, b"000")]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=400), min_size=0, max_size=12))
def test_any_chunking_gives_the_same_messages(cuts: list[int]) -> None:
    stream = b"".join(msg(i) for i in range(1, 8))
    f = Framer()
    got: list[bytes] = []
    pos = 0
    for c in sorted(set(cuts)):
        f.feed(stream[pos:c])
        pos = max(pos, c)
        got += [m.raw for m in drain(f) if isinstance(m, Message)]
    f.feed(stream[pos:])
    got += [m.raw for m in drain(f) if isinstance(m, Message)]
    assert got == [msg(i) for i in range(1, 8)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=0, max_value=3000))
def test_random_bytes_never_raise_or_stall(junk: bytes, at: int) -> None:
    stream = junk[:at] + msg(1) + junk[at:] + msg(2) + msg(3)
    f = Framer(max_message_size=4096)
    for i in range(0, len(stream), 97):
        f.feed(stream[i:i + 97])
        drain(f)
    # whatever the junk did, the framer still frames what follows it
    f.feed(msg(4))
    assert any(isinstance(m, Message) and m[34] == b"4" for m in drain(f)) or f.buffered < 8192
