"""Learned message shapes (fixgw.plans): a shape accepts only what parse + validate accept."""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw import plans
from fixgw.dictionary import DataDictionary
from fixgw.message import parse_fields
from fixgw.validation import _validate_exact, validate

HDR = [(49, b"CLIENT"), (56, b"GW"), (34, b"2"), (52, b"20240102-03:04:05.678")]
NOS = [(35, b"D"), *HDR, (11, b"ORD1"), (21, b"1"), (38, b"100"), (40, b"2"), (44, b"10.5"),
       (54, b"1"), (55, b"IBM"), (60, b"20240102-03:04:05")]
PARTIES = [(453, b"2"), (448, b"P1"), (447, b"D"), (452, b"1"), (802, b"1"), (523, b"S"),
           (803, b"1"), (448, b"P2"), (447, b"D"), (452, b"3")]
BASES = [
    NOS,
    NOS + PARTIES,
    NOS + [(18, b"1 2")],  # ExecInst: MULTIPLEVALUESTRING
    [(35, b"0"), *HDR, (112, b"T")],
    [(35, b"A"), *HDR, (98, b"0"), (108, b"30")],
]


def fresh(begin: str = "FIX.4.4") -> DataDictionary:
    """A dictionary of our own: the builtin one is shared and learns from every test."""
    name = begin.replace(".", "") + ".xml"
    return DataDictionary.from_xml(resources.files("fixgw").joinpath("spec", name).read_bytes())


def frame(pairs: list[tuple[int, bytes]], begin: bytes = b"FIX.4.4") -> tuple[bytes, list[tuple[int, bytes]]]:
    """Wire bytes and fields (8, 9, ..., 10) with BodyLength and CheckSum computed."""
    body = b"".join(b"%d=%s\x01" % (t, v) for t, v in pairs)
    head = b"8=%s\x019=%d\x01" % (begin, len(body))
    cks = b"%03d" % (sum(head + body) % 256)
    raw = head + body + b"10=" + cks + b"\x01"
    return raw, [(8, begin), (9, b"%d" % len(body)), *pairs, (10, cks)]


def test_each_pattern_generates_only_values_its_check_accepts() -> None:
    def generated_by(check: Callable[[bytes], bool], pattern: bytes) -> Callable[[], None]:
        @settings(max_examples=40, deadline=None)
        @given(v=st.from_regex(re.compile(pattern), fullmatch=True))
        def generated(v: bytes) -> None:
            assert check(v), (check.__name__, v)

        return generated

    for check, pattern in plans._PATTERNS.items():
        generated_by(check, pattern)()


_ALPHABET = b"0123456789-.: YNAZaz+\x01"


@settings(max_examples=1000, deadline=None)
@given(v=st.binary(max_size=24).map(lambda b: bytes(_ALPHABET[x % len(_ALPHABET)] for x in b)))
def test_patterns_never_accept_what_checks_reject(v: bytes) -> None:
    for check, pattern in plans._PATTERNS.items():
        if re.fullmatch(pattern, v):
            assert check(v), (check.__name__, v)


def test_usual_values_match_their_patterns() -> None:
    from fixgw import fieldtypes as d

    cases = {
        d.check_int: [b"0", b"-12", b"42"],
        d.check_uint: [b"0", b"123"],
        d.check_float: [b"10.5", b"-1", b"1.", b".5", b"100"],
        d.check_char: [b"1", b"Z"],
        d.check_bool: [b"Y", b"N"],
        d.check_timestamp: [b"20240102-03:04:05", b"20240102-23:59:60.123", b"20241231-00:00:00.123456789"],
        d.check_timeonly: [b"03:04:05", b"03:04:05.5"],
        d.check_date: [b"20240229"],
        d.check_dayofmonth: [b"1", b"09", b"31"],
        d.check_currency: [b"USD", b"EUR"],
    }
    for check, values in cases.items():
        for v in values:
            assert check(v) and re.fullmatch(plans._PATTERNS[check], v), (check.__name__, v)


def test_a_valid_message_teaches_its_shape() -> None:
    dd = fresh()
    raw, fields = frame(NOS)
    assert plans.plan_book(dd).fields(raw) is None  # nothing learned yet
    assert validate(dd, fields) is None
    assert plans.plan_book(dd).fields(raw) == fields == parse_fields(raw)
    # the same shape with other values
    raw2, fields2 = frame([(t, b"ORD2" if t == 11 else v) for t, v in NOS])
    assert plans.plan_book(dd).fields(raw2) == fields2
    # a bad enumeration value, an empty value, a bad price or timestamp: not by the shape
    for tag, bad in ((54, b"Z"), (11, b""), (44, b"1e5"), (60, b"20241302-03:04:05"), (52, b"x")):
        raw3, _ = frame([(t, bad if t == tag else v) for t, v in NOS])
        assert plans.plan_book(dd).fields(raw3) is None, (tag, bad)


def test_an_invalid_message_teaches_nothing() -> None:
    dd = fresh()
    _, fields = frame([(t, b"Z" if t == 54 else v) for t, v in NOS])
    assert validate(dd, fields) is not None
    assert len(plans.plan_book(dd)) == 0
    _, fields = frame(NOS + [(96, b"ab")])  # a data field, without its length: rejected too
    assert validate(dd, fields) is not None
    assert len(plans.plan_book(dd)) == 0


def test_shapes_are_bounded_per_msg_type() -> None:
    dd = fresh()
    # distinct shapes: NOS with k optional fields of the body added
    optional = [(1, b"ACCT"), (15, b"USD"), (58, b"hi"), (59, b"0"), (100, b"X"), (207, b"X"),
                (109, b"C"), (376, b"C"), (528, b"A"), (583, b"L")]
    n = 0
    for k in range(len(optional) + 1):
        for j in range(k, len(optional) + 1):
            extra = optional[k:j]
            _, fields = frame(NOS + extra)
            if validate(dd, fields) is None:
                n += 1
    assert n > plans.MAX_SHAPES_PER_TYPE
    assert len(plans.plan_book(dd)) == plans.MAX_SHAPES_PER_TYPE


def test_multiple_value_enumeration() -> None:
    dd = fresh()
    _, fields = frame(NOS + [(18, b"1 2")])
    assert validate(dd, fields) is None
    for value, ok in ((b"1", True), (b"1 2 G", True), (b"1 ?", False), (b"?", False), (b"1  2", False), (b" 1", False)):
        raw, f = frame(NOS + [(18, value)])
        assert (plans.plan_book(dd).fields(raw) is not None) is ok, value
        if ok:
            assert validate(dd, f) is None


_VALUES = [b"", b"0", b"1", b"-1", b"2", b"Y", b"X", b"+1", b"1.5", b"1.", b".5", b"20240102-03:04:05",
           b"20240102-24:04:05", b"9999", b"D", b"A B", b"1 2", b"S"]
_TAGS = [0, 11, 18, 21, 34, 38, 40, 44, 49, 52, 54, 55, 56, 58, 89, 93, 95, 96, 447, 448, 452, 453,
         523, 802, 803, 999, 5001]
_mutation = st.one_of(
    st.tuples(st.just("del"), st.integers(0, 40)),
    st.tuples(st.just("dup"), st.integers(0, 40)),
    st.tuples(st.just("swap"), st.integers(0, 40), st.integers(0, 40)),
    st.tuples(st.just("val"), st.integers(0, 40), st.sampled_from(_VALUES)),
    st.tuples(st.just("ins"), st.integers(0, 40), st.sampled_from(_TAGS), st.sampled_from(_VALUES)),
)
DD = fresh()
for _base in BASES:
    assert validate(DD, frame(_base)[1]) is None  # every base shape is learned


@settings(max_examples=400, deadline=None)
@given(base=st.sampled_from(BASES), muts=st.lists(_mutation, max_size=3))
def test_a_shape_match_is_always_a_valid_message(
    base: list[tuple[int, bytes]], muts: list[tuple[object, ...]]
) -> None:
    pairs = list(base)
    for m in muts:
        i = int(m[1]) % len(pairs)  # type: ignore[call-overload]
        if m[0] == "del" and len(pairs) > 1:
            del pairs[i]
        elif m[0] == "dup":
            pairs.insert(i, pairs[i])
        elif m[0] == "swap":
            j = int(m[2]) % len(pairs)  # type: ignore[call-overload]
            pairs[i], pairs[j] = pairs[j], pairs[i]
        elif m[0] == "val":
            pairs[i] = (pairs[i][0], m[2])  # type: ignore[assignment]
        elif m[0] == "ins":
            pairs.insert(i, (m[2], m[3]))  # type: ignore[arg-type]
    raw, _ = frame(pairs)
    got = plans.plan_book(DD).fields(raw)
    if got is None:
        return
    assert got == parse_fields(raw)
    msg = DD.message_b(got[2][1])
    for opts in ((True, True, True, False), (False, False, False, True)):
        assert _validate_exact(DD, got, msg, *opts) is None
        assert validate(DD, got, check_fields_out_of_order=opts[0], check_fields_have_values=opts[1],
                        check_user_defined_fields=opts[2], allow_unknown_msg_fields=opts[3]) is None


def _nos_frame(seq: int, side: bytes, price: bytes) -> bytes:
    pairs = [(t, b"%d" % seq if t == 34 else side if t == 54 else price if t == 44 else v) for t, v in NOS]
    return frame(pairs)[0]


_frame_piece = st.one_of(
    st.builds(_nos_frame, st.integers(1, 10**6), st.sampled_from([b"1", b"2", b"Z", b""]),
              st.sampled_from([b"10.5", b"1", b"-2.", b"1e5", b"x"])),
    st.builds(lambda r, k: r[:k] + b"7" + r[k + 1 :], st.builds(_nos_frame, st.integers(1, 99),
              st.just(b"1"), st.just(b"10.5")), st.integers(0, 120)),  # one byte changed
    st.binary(max_size=10),
)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(_frame_piece, max_size=8), cuts=st.lists(st.integers(0, 1200), max_size=5),
       max_size=st.sampled_from([64, 1 << 20]))
def test_frame_at_cuts_what_the_framer_cuts(parts: list[bytes], cuts: list[int], max_size: int) -> None:
    from fixgw.framing import Framer, Garbled

    stream = b"".join(parts)
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    fast, ref = Framer(max_size), Framer(max_size)
    got: list[object] = []
    want: list[object] = []
    for c in chunks:
        fast.feed(c)
        while True:
            hit = fast.next_known(plans.plan_book(DD).frame_at)
            if hit is not None:
                raw, fields, _ = hit
                assert fields == parse_fields(raw)
                assert validate(DD, fields) is None
                got.append(raw)
                continue
            item = fast.next_raw()
            if item is None:
                break
            got.append((item.reason, item.raw) if isinstance(item, Garbled) else item)
        ref.feed(c)
        while (item := ref.next_raw()) is not None:
            want.append((item.reason, item.raw) if isinstance(item, Garbled) else item)
    assert got == want
