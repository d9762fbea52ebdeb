"""validate(): one test per SessionRejectReason, QuickFIX's check order, options, SendingTime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.dictionary import DataDictionary
from fixgw.validation import (
    REJECT_TEXTS,
    RejectReason,
    SessionReject,
    _fast_ok,
    _validate_exact,
    check_sending_time,
    parse_utc_timestamp,
    validate,
)
from tests.fixgw.fixcore_support import HDR, NOS44, TEST_XML, fields_of

DD42 = DataDictionary.builtin("FIX.4.2")
DD44 = DataDictionary.builtin("FIX.4.4")
TDD = DataDictionary.from_xml(TEST_XML, "test.xml")


def rej(dd: DataDictionary, body: str, **opts: bool) -> tuple[int, int | None] | None:
    r = validate(dd, fields_of(body, dd.begin_string), **opts)
    if r is None:
        return None
    assert r.text == REJECT_TEXTS[r.reason]
    return (r.reason, r.ref_tag)


def test_valid_messages_pass() -> None:
    assert rej(DD44, NOS44) is None
    assert rej(DD42, NOS44) is None
    assert rej(DD44, "35=0|" + HDR) is None
    assert rej(DD44, "35=A|" + HDR + "|98=0|108=30") is None
    # repeating group with nested group, count 0 with no instances
    assert (
        rej(DD44, NOS44 + "|453=2|448=P1|447=D|452=1|802=1|523=S|803=1|448=P2|447=D|452=3") is None
    )
    assert rej(DD44, NOS44 + "|453=0") is None


def test_invalid_tag_number_0() -> None:
    assert rej(DD44, "35=0|" + HDR + "|999=HI") == (0, 999)
    assert rej(DD44, "35=0|" + HDR + "|5000=HI") == (0, 5000)
    assert rej(DD44, "35=0|" + HDR + "|0=HI") == (0, 0)
    assert rej(DD44, "35=0|" + HDR + "|-1=HI") == (0, -1)
    # ValidateUserDefinedFields=N: tags >= 5000 are not checked; below 5000 still are
    assert rej(DD44, "35=0|" + HDR + "|5000=HI", check_user_defined_fields=False) is None
    assert rej(DD44, "35=0|" + HDR + "|999=HI", check_user_defined_fields=False) == (0, 999)
    # AllowUnknownMsgFields=Y: unknown or misplaced standard tags pass, user-defined still checked
    assert rej(DD44, "35=0|" + HDR + "|999=HI", allow_unknown_msg_fields=True) is None
    assert rej(DD44, "35=0|" + HDR + "|55=X", allow_unknown_msg_fields=True) is None
    assert rej(DD44, "35=0|" + HDR + "|5001=HI", allow_unknown_msg_fields=True) == (0, 5001)


def test_required_tag_missing_1() -> None:
    assert rej(DD44, "35=0|49=A|34=2|52=20240102-03:04:05") == (1, 56)
    assert rej(DD44, "35=0|56=A|34=2|52=20240102-03:04:05") == (1, 49)
    assert rej(DD44, "35=0|49=A|56=B|52=20240102-03:04:05") == (1, 34)
    assert rej(DD42, "35=D|" + HDR + "|40=1|60=20240102-03:04:05|54=1|21=3|11=id") == (1, 55)
    # several missing: the lowest tag is reported (QuickFIX's sorted set)
    assert rej(DD44, "35=D|" + HDR + "|40=1|54=1|21=3") == (1, 11)
    # required inside a group instance and a nested instance (custom dictionary)
    base = "35=D|" + HDR + "|11=A|54=1|55=X"
    assert rej(TDD, base) is None
    assert rej(TDD, base + "|453=1|448=P|802=1|523=S") is None
    assert rej(TDD, base + "|453=1|448=P|802=1|803=1") == (15, 803)  # 803 cannot lead
    assert rej(TDD, base + "|453=1|448=P|802=1|523=S|803=1") is None


def test_required_member_missing_in_instance() -> None:
    # a second instance led by the delimiter but missing a required member of the first level
    tdd_order = TEST_XML.replace(
        "<field name='PartyID' required='Y' />\n    <field name='PartyRole' required='N' />",
        "<field name='PartyID' required='Y' />\n    <field name='PartyRole' required='Y' />",
    )
    dd = DataDictionary.from_xml(tdd_order, "t2.xml")
    base = "35=D|" + HDR + "|11=A|54=1|55=X"
    assert rej(dd, base + "|453=2|448=P|452=1|448=Q|452=2") is None
    assert rej(dd, base + "|453=2|448=P|452=1|448=Q") == (1, 452)


def test_tag_not_defined_for_message_type_2() -> None:
    assert rej(DD44, "35=0|" + HDR + "|55=MSFT") == (2, 55)
    # a group member outside its group
    assert rej(DD44, NOS44 + "|448=P1") == (2, 448)


def test_tag_specified_without_value_4() -> None:
    assert rej(DD44, "35=0|49=A|34=2|52=20240102-03:04:05|56=") == (4, 56)
    assert rej(DD44, NOS44 + "|1=") == (4, 1)
    assert (
        rej(DD44, "35=0|49=A|34=2|52=20240102-03:04:05|56=|112=", check_fields_have_values=False)
        is None
    )
    # without the have-value check an empty value still has to be of the right format
    assert rej(DD44, NOS44.replace("38=100", "38="), check_fields_have_values=False) == (6, 38)


def test_value_incorrect_5() -> None:
    assert rej(DD44, NOS44.replace("21=1", "21=4")) == (5, 21)
    assert rej(DD44, NOS44 + "|167=BOO") == (5, 167)
    # MULTIPLEVALUESTRING: every space-separated value must be an enum value
    assert rej(TDD, "35=D|" + HDR + "|11=A|54=1|55=X|18=1 2 G") is None
    assert rej(TDD, "35=D|" + HDR + "|11=A|54=1|55=X|18=1 Z") == (5, 18)
    # enum inside a group instance
    assert rej(DD44, NOS44 + "|453=1|448=P1|447=D|452=9999") == (5, 452)


def test_incorrect_data_format_6() -> None:
    assert rej(DD44, NOS44.replace("38=100", "38=+200.00")) == (6, 38)
    assert rej(DD44, NOS44 + "|126=20040415") == (6, 126)
    assert rej(DD44, "35=0|49=A|56=B|34=x|52=20240102-03:04:05") == (6, 34)
    assert rej(DD44, "35=0|49=A|56=B|34=2|52=20240102-03:04") == (6, 52)
    assert rej(DD44, "35=0|" + HDR + "|43=X") == (6, 43)
    # DATA with its length: right length passes, wrong or missing length is a format error
    base = "35=D|" + HDR + "|11=A|54=1|55=X"
    assert rej(TDD, base + "|95=5|96=ab=cd") is None
    assert rej(TDD, base + "|95=4|96=ab=cd") == (6, 96)
    assert rej(TDD, base + "|96=abc") == (6, 96)


def test_invalid_msgtype_11() -> None:
    r = validate(DD44, fields_of("35=*|" + HDR))
    assert r == SessionReject(11, None, "Invalid MsgType")


def test_tag_appears_more_than_once_13() -> None:
    assert rej(DD44, NOS44.replace("40=2", "40=1|40=2")) == (13, 40)
    assert rej(DD44, "35=0|" + HDR + "|49=X") == (13, 49)
    # a repeated group count tag
    assert rej(DD44, NOS44 + "|453=1|448=P|58=x|453=1|448=Q") == (13, 453)


def test_tag_out_of_required_order_14() -> None:
    body = "35=D|11=id|21=3|40=1|54=1|55=MSFT|60=20240102-03:04:05|38=1|34=2|49=A|52=20240102-03:04:05|56=B"
    assert rej(DD44, body) == (14, 34)
    assert rej(DD44, body, check_fields_out_of_order=False) is None
    # a body field after a trailer field
    assert rej(TDD, "35=0|" + HDR + "|93=2|89=ab|112=X") == (14, 112)
    # 8, 9, 35 not leading (QuickFIX drops these as garbled; validate answers 14 defensively)
    f = fields_of("35=0|" + HDR)
    f[2], f[3] = f[3], f[2]
    assert validate(DD44, f) == SessionReject.of(14, f[2][0])
    assert validate(DD44, [(8, b"FIX.4.4"), (9, b"5")]) == SessionReject.of(1, 35)


def test_repeating_group_fields_out_of_order_15() -> None:
    assert rej(DD44, NOS44 + "|453=1|447=D|448=P1|452=1") == (15, 447)


def test_numingroup_count_16() -> None:
    assert rej(DD42, NOS44 + "|386=3|336=PRE-OPEN|336=AFTER-HOURS") == (16, 386)
    assert rej(DD44, NOS44 + "|453=1") == (16, 453)
    assert rej(DD44, NOS44 + "|453=0|448=P") == (16, 453)
    # nested count
    assert rej(DD44, NOS44 + "|453=1|448=P1|447=D|452=1|802=2|523=S|803=1") == (16, 802)


def test_check_order_when_several_problems() -> None:
    # body fields are checked in ascending tag order, not wire order: 21 before 38
    assert rej(DD44, NOS44.replace("38=100", "38=+1").replace("21=1", "21=9")) == (5, 21)
    # header before body
    assert rej(DD44, NOS44.replace("21=1", "21=9").replace("34=2", "34=x")) == (6, 34)
    # required missing before a bad value
    assert rej(DD44, NOS44.replace("21=1", "21=9").replace("11=ORD1|", "")) == (1, 11)
    # out of order before invalid msg type and missing fields
    assert rej(DD44, "35=*|11=1|34=2|49=A|52=20240102-03:04:05|56=B") == (14, 34)
    # missing TargetCompID before everything else
    assert rej(DD44, "35=*|11=1|34=2|49=A|52=20240102-03:04:05") == (1, 56)
    # repeated tag is found where the sorted walk meets it: 21's bad enum comes first
    assert rej(DD44, NOS44.replace("40=2", "40=1|40=2").replace("21=1", "21=9")) == (5, 21)
    assert rej(DD44, NOS44.replace("40=2", "40=1|40=2").replace("54=1", "54=Z")) == (13, 40)
    # an empty header field (ReverseRouteWithEmptyRoutingTags) beats a bad body enum
    assert rej(DD44, NOS44.replace("40=2", "40=w").replace("35=D|", "35=D|145=|")) == (4, 145)


def test_session_reject_value_object() -> None:
    assert SessionReject.of(RejectReason.COMPID_PROBLEM) == SessionReject(9, None, "CompID problem")
    assert SessionReject.of(10).text == "SendingTime accuracy problem"
    with pytest.raises(ValueError):
        SessionReject(100, None, "x")
    with pytest.raises(ValueError):
        SessionReject(1, 2, "")
    r = SessionReject.of(1, 56)
    with pytest.raises(AttributeError):
        r.reason = 2  # type: ignore[misc]


def test_parse_utc_timestamp() -> None:
    t = parse_utc_timestamp(b"20240102-03:04:05.678")
    assert t == datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert parse_utc_timestamp(b"20240102-03:04:05.123456789") == datetime(
        2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC
    )
    assert parse_utc_timestamp(b"20231231-23:59:60") == datetime(2024, 1, 1, tzinfo=UTC)
    for bad in (
        b"",
        b"20240102",
        b"20240102-03:04:05.",
        b"2024-01-02T03:04:05",
        b"20241302-03:04:05",
        b"\xff" * 17,
    ):
        assert parse_utc_timestamp(bad) is None


def test_check_sending_time() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)

    def ts(d: datetime) -> bytes:
        return d.strftime("%Y%m%d-%H:%M:%S").encode()

    assert check_sending_time(ts(now), now, 120)
    assert check_sending_time(ts(now - timedelta(seconds=120)), now, 120)
    assert not check_sending_time(ts(now - timedelta(seconds=121)), now, 120)
    assert not check_sending_time(ts(now + timedelta(seconds=121)), now, 120)
    assert check_sending_time(ts(now), now.replace(tzinfo=None), 120)  # naive now = UTC
    assert not check_sending_time(b"garbage", now, 120)


# -- the fast path never disagrees with the exact check -------------------------------------------

_BASES = [
    (DD44, NOS44),
    (DD44, NOS44 + "|453=2|448=P1|447=D|452=1|802=1|523=S|803=1|448=P2|447=D|452=3"),
    (DD42, NOS44 + "|386=2|336=A|336=B"),
    (DD44, "35=0|" + HDR + "|112=T"),
    (TDD, "35=D|" + HDR + "|11=A|54=1|55=X|95=2|96=ab|18=1 2"),
]
_VALUES = [
    b"",
    b"0",
    b"1",
    b"-1",
    b"2",
    b"Y",
    b"X",
    b"+1",
    b"1.5",
    b"20240102-03:04:05",
    b"9999",
    b"D",
]
_TAGS = [
    0,
    11,
    21,
    34,
    38,
    40,
    44,
    49,
    52,
    54,
    55,
    56,
    58,
    89,
    93,
    95,
    96,
    336,
    386,
    447,
    448,
    452,
    453,
    523,
    802,
    999,
    5001,
]

_mutation = st.one_of(
    st.tuples(st.just("del"), st.integers(0, 40)),
    st.tuples(st.just("dup"), st.integers(0, 40)),
    st.tuples(st.just("swap"), st.integers(0, 40), st.integers(0, 40)),
    st.tuples(st.just("val"), st.integers(0, 40), st.sampled_from(_VALUES)),
    st.tuples(st.just("ins"), st.integers(0, 40), st.sampled_from(_TAGS), st.sampled_from(_VALUES)),
)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(_BASES),
    muts=st.lists(_mutation, max_size=3),
    opts=st.tuples(*[st.booleans()] * 4),
)
def test_fast_path_agrees_with_exact_check(
    base: tuple[DataDictionary, str],
    muts: list[tuple[object, ...]],
    opts: tuple[bool, bool, bool, bool],
) -> None:
    dd, body = base
    fields = fields_of(body, dd.begin_string)
    for m in muts:
        i = int(m[1]) % len(fields)  # type: ignore[call-overload]
        if m[0] == "del" and len(fields) > 1:
            del fields[i]
        elif m[0] == "dup":
            fields.insert(i, fields[i])
        elif m[0] == "swap":
            j = int(m[2]) % len(fields)  # type: ignore[call-overload]
            fields[i], fields[j] = fields[j], fields[i]
        elif m[0] == "val":
            fields[i] = (fields[i][0], m[2])  # type: ignore[assignment]
        elif m[0] == "ins":
            fields.insert(i, (m[2], m[3]))  # type: ignore[arg-type]
    ooo, hv, ud, au = opts
    result = validate(
        dd,
        fields,
        check_fields_out_of_order=ooo,
        check_fields_have_values=hv,
        check_user_defined_fields=ud,
        allow_unknown_msg_fields=au,
    )
    if len(fields) >= 3 and [t for t, _ in fields[:3]] == [8, 9, 35]:
        msg = dd.message_b(fields[2][1])
        exact = _validate_exact(dd, fields, msg, ooo, hv, ud, au)
        if msg is not None and _fast_ok(dd, fields, msg):
            # "certainly valid" must be right under every option set
            assert exact is None
            assert result is None
        else:
            assert result == exact
    assert result is None or isinstance(result, SessionReject)


@settings(max_examples=300, deadline=None)
@given(
    msgtype=st.sampled_from([b"D", b"0", b"A", b"4", b"*", b"", b"8"]),
    tail=st.lists(
        st.tuples(
            st.one_of(st.sampled_from(_TAGS), st.integers(-5, 10000)),
            st.one_of(st.sampled_from(_VALUES), st.binary(max_size=12)),
        ),
        max_size=30,
    ),
    dd=st.sampled_from([DD42, DD44, TDD]),
    opts=st.tuples(*[st.booleans()] * 4),
)
def test_validate_never_raises_on_garbage(
    msgtype: bytes,
    tail: list[tuple[int, bytes]],
    dd: DataDictionary,
    opts: tuple[bool, bool, bool, bool],
) -> None:
    fields = [(8, b"FIX.4.4"), (9, b"10"), (35, msgtype), *tail, (10, b"000")]
    ooo, hv, ud, au = opts
    r = validate(
        dd,
        fields,
        check_fields_out_of_order=ooo,
        check_fields_have_values=hv,
        check_user_defined_fields=ud,
        allow_unknown_msg_fields=au,
    )
    assert r is None or (isinstance(r, SessionReject) and r.text)
