"""The hot-path shortcuts give exactly what the general code gives: framing, encoding, checksums,
time stamps."""

from __future__ import annotations

import time
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw import framing
from fixgw.framing import Framer, Garbled
from fixgw.message import checksum, encode, encode_after
from fixgw.session import utc_timestamp


def frames(framer: Framer, chunks: list[bytes]) -> list[bytes | tuple[str, bytes]]:
    out: list[bytes | tuple[str, bytes]] = []
    for c in chunks:
        framer.feed(c)
        while (item := framer.next_raw()) is not None:
            out.append((item.reason, item.raw) if isinstance(item, Garbled) else item)
    return out


def good(i: int, body: bytes = b"") -> bytes:
    return encode(b"FIX.4.4", [(35, b"D"), (49, b"A"), (56, b"B"), (34, b"%d" % i)], [(11, b"X%d" % i)]) + body


_pieces = st.one_of(
    st.integers(1, 50).map(good),
    st.integers(1, 50).map(lambda i: good(i)[:-3] + b"999"[: 3] + b"\x01"),  # maybe bad checksum
    st.integers(1, 50).map(lambda i: good(i).replace(b"9=", b"9=1", 1)),  # wrong BodyLength
    st.integers(1, 50).map(lambda i: good(i).replace(b"35=D", b"35=", 1)),  # empty MsgType
    st.integers(1, 50).map(lambda i: good(i).replace(b"FIX.4.4", b"FIX.4.4" * 6, 1)),  # long 8=
    st.binary(max_size=12),
    st.sampled_from([b"8=FIX", b"\x0110=", b"8=FIX.4.4\x019=", b"\x01"]),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_pieces, max_size=8), cuts=st.lists(st.integers(0, 400), max_size=6),
       max_size=st.sampled_from([64, 100, 1 << 20]))
def test_framer_fast_path_agrees_with_the_general_path(
    parts: list[bytes], cuts: list[int], max_size: int
) -> None:
    stream = b"".join(parts)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    fast = frames(Framer(max_size), chunks)
    with mock.patch.object(framing, "_USUAL_HEAD", lambda buf, pos: None):  # general path only
        general = frames(Framer(max_size), chunks)
    assert fast == general


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2000))
def test_checksum_is_the_byte_sum_modulo_256(data: bytes) -> None:
    assert checksum(data) == sum(data) % 256


def test_checksum_of_long_uniform_data() -> None:
    for n in (255, 256, 257, 512, 513, 70000):
        assert checksum(b"\xff" * n) == (255 * n) % 256


_field = st.tuples(st.integers(1, 9999), st.binary(min_size=1, max_size=8).filter(lambda b: b"\x01" not in b))


@settings(max_examples=200, deadline=None)
@given(head=st.lists(_field, max_size=4), body=st.lists(_field, max_size=8))
def test_encode_after_equals_encode(head: list[tuple[int, bytes]], body: list[tuple[int, bytes]]) -> None:
    header = [(35, b"D"), *head]
    pre = b"\x01".join(b"%d=%s" % f for f in header)
    assert encode_after(b"8=FIX.4.2\x019=", pre, body) == encode(b"FIX.4.2", header, body)


def test_utc_timestamp_is_exact_per_millisecond() -> None:
    base = 1_700_000_000
    for frac in (0.0, 0.0004, 0.001, 0.5, 0.9994, 0.9999):
        now = base + frac
        # the stamp as it was computed before the cache (the float rounding included)
        want = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(base)).encode()
        want += b".%03d" % int((now - int(now)) * 1000)
        assert utc_timestamp(now) == want
        assert utc_timestamp(now) == want  # from the cache
        assert utc_timestamp(now, millis=False) == want[:17]
    assert utc_timestamp(base + 1.0) != utc_timestamp(base + 0.0)
