"""Data dictionary loading: the shipped FIX 4.2 / 4.4 dictionaries, a small custom one, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.dictionary import DataDictionary, DictionaryError, value_checker
from tests.fixgw.fixcore_support import TEST_XML


@pytest.fixture(scope="module")
def dd42() -> DataDictionary:
    return DataDictionary.builtin("FIX.4.2")


@pytest.fixture(scope="module")
def dd44() -> DataDictionary:
    return DataDictionary.builtin("FIX.4.4")


def test_builtin_versions_and_basic_lookups(dd42: DataDictionary, dd44: DataDictionary) -> None:
    assert dd42.begin_string == "FIX.4.2"
    assert dd44.begin_string == "FIX.4.4"
    assert DataDictionary.builtin("FIX.4.4") is dd44  # loaded once, shared
    assert dd44.field_name(35) == "MsgType"
    assert dd44.field_tag("MsgType") == 35
    assert dd44.field_type(44) == "PRICE"
    assert dd44.field_type(38) == "QTY"
    assert dd44.field_name(99999) is None and dd44.field_type(99999) is None
    assert dd44.is_header_field(49) and dd44.is_header_field(52)
    assert not dd44.is_header_field(11)
    assert dd44.is_trailer_field(10) and not dd44.is_trailer_field(49)
    assert dd44.value_name(54, b"1") == "BUY"
    assert dd44.enum_values(54) is not None and b"2" in dd44.enum_values(54)  # type: ignore[operator]


def test_messages_and_categories(dd42: DataDictionary, dd44: DataDictionary) -> None:
    nos = dd44.message("D")
    assert nos is not None and nos.name == "NewOrderSingle" and nos.category == "app"
    assert dd44.has_msg_type("A") and not dd44.has_msg_type("*")
    assert dd44.is_app_message("D") and not dd44.is_app_message("0")
    assert dd44.is_admin_message("0") and not dd44.is_admin_message("zz")
    assert dd44.message("*") is None
    # required fields in ascending tag order, as QuickFIX checks them
    assert dd42.message("D").body.required == (11, 21, 40, 54, 55, 60)  # type: ignore[union-attr]
    assert dd44.message("D").body.required == (11, 40, 54, 60)  # type: ignore[union-attr]
    assert dd44.header.required == (8, 9, 34, 35, 49, 52, 56)
    assert dd44.trailer.required == (10,)


def test_components_expanded_and_groups(dd44: DataDictionary) -> None:
    nos = dd44.message("D")
    assert nos is not None
    # Instrument component fields are body fields of the message
    assert {55, 48, 22, 167} <= nos.body.field_set
    parties = nos.body.groups[453]
    assert parties.delimiter == 448
    assert {448, 447, 452, 802} <= parties.member_set
    sub = parties.groups[802]
    assert sub.delimiter == 523 and sub.count_tag == 802
    assert dd44.group("D", 453) is parties
    assert dd44.group("D", 11) is None
    # header group (NoHops) in FIX 4.4
    assert 627 in dd44.header.groups and dd44.header.groups[627].delimiter == 628


def test_data_fields_and_their_lengths(dd44: DataDictionary) -> None:
    assert dd44.is_data_field(96) and not dd44.is_data_field(95)
    assert dd44.length_tag_for(96) == 95
    assert dd44.data_tag_for(95) == 96
    assert dd44.length_tag_for(89) == 93  # Signature <- SignatureLength (not tag - 1)
    assert dd44.data_length_tags[354] == 355


def test_custom_dictionary_nested_components_and_groups(tmp_path: Path) -> None:
    p = tmp_path / "test.xml"
    p.write_text(TEST_XML)
    dd = DataDictionary.load(p)
    assert dd.begin_string == "FIX.4.4" and dd.source == str(p)
    order = dd.message("D")
    assert order is not None
    # Instrument is required and Symbol inside it is required -> required for the message
    assert order.body.required == (11, 54, 55)
    assert 454 in order.body.groups  # group reached through a nested component
    parties = order.body.groups[453]
    assert parties.required == (448,)
    assert parties.groups[802].required == (523,)
    assert parties.members == (448, 452, 802)


def _broken(tmp_path: Path, text: str) -> str:
    p = tmp_path / "broken.xml"
    p.write_text(text)
    with pytest.raises(DictionaryError) as ei:
        DataDictionary.load(p)
    msg = str(ei.value)
    assert str(p) in msg  # every error names the file
    return msg


def test_broken_dictionaries_give_clear_errors(tmp_path: Path) -> None:
    assert "not well-formed XML" in _broken(tmp_path, "<fix><header>")
    assert "expected <fix>" in _broken(tmp_path, "<fox/>")
    assert "major and minor" in _broken(tmp_path, "<fix type='FIX'/>")
    no_header = TEST_XML.replace("<header>", "<hdr>").replace("</header>", "</hdr>")
    assert "<header> section not found" in _broken(tmp_path, no_header)
    typo = TEST_XML.replace(
        "<field name='ClOrdID' required='Y' />", "<field name='ClOrID' required='Y' />"
    )
    msg = _broken(tmp_path, typo)
    assert "ClOrID is not defined" in msg and "did you mean ClOrdID" in msg
    bad_type = TEST_XML.replace("name='Symbol' type='STRING'", "name='Symbol' type='STRNG'")
    assert "unknown type 'STRNG'" in _broken(tmp_path, bad_type)
    no_comp = TEST_XML.replace(
        "<component name='Parties' required='N' />", "<component name='Partys' required='N' />"
    )
    assert "component Partys is not defined" in _broken(tmp_path, no_comp)
    dup = TEST_XML.replace("number='112'", "number='11'")
    assert "field number 11 defined twice" in _broken(tmp_path, dup)
    bad_num = TEST_XML.replace("number='112'", "number='x12'")
    assert "not a positive integer" in _broken(tmp_path, bad_num)
    bad_cat = TEST_XML.replace("msgcat='admin'", "msgcat='session'")
    assert "expected admin or app" in _broken(tmp_path, bad_cat)
    bad_group = TEST_XML.replace(
        "number='453' name='NoPartyIDs' type='NUMINGROUP'",
        "number='453' name='NoPartyIDs' type='STRING'",
    )
    assert "expected NUMINGROUP or INT" in _broken(tmp_path, bad_group)
    loop = TEST_XML.replace(
        "<field name='SecurityAltIDSource' required='N' />",
        "<field name='SecurityAltIDSource' required='N' /><component name='Instrument' required='N' />",
    )
    assert "includes itself" in _broken(tmp_path, loop)


def test_missing_file_and_unknown_builtin(tmp_path: Path) -> None:
    with pytest.raises(DictionaryError, match="nope.xml: cannot read"):
        DataDictionary.load(tmp_path / "nope.xml")
    with pytest.raises(DictionaryError, match="no built-in data dictionary for 'FIX.4.3'"):
        DataDictionary.builtin("FIX.4.3")
    assert isinstance(DictionaryError("x"), ValueError)


@pytest.mark.parametrize(
    ("fix_type", "good", "bad"),
    [
        ("INT", [b"0", b"42", b"-7", b"007"], [b"", b"+1", b"1.0", b"-", b"1a", b" 1"]),
        ("SEQNUM", [b"1", b"0"], [b"-1", b"", b"x"]),
        ("NUMINGROUP", [b"0", b"3"], [b"-1", b"2.0"]),
        (
            "PRICE",
            [b"1", b"1.5", b"-1.5", b"1.", b".5", b"002000.00"],
            [b"", b"+200.00", b".", b"1e5", b"1.2.3", b"-"],
        ),
        ("QTY", [b"100"], [b"1,000"]),
        ("CHAR", [b"1", b"A"], [b"", b"AB"]),
        ("BOOLEAN", [b"Y", b"N"], [b"y", b"YES", b""]),
        (
            "UTCTIMESTAMP",
            [
                b"20240102-03:04:05",
                b"20240102-03:04:05.678",
                b"20240102-23:59:60.123456789",
                b"20240102-03:04:05.1",
            ],
            [
                b"20240102",
                b"20241302-03:04:05",
                b"20240100-03:04:05",
                b"20240102-24:00:00",
                b"20240102-03:60:00",
                b"20240102-03:04:05.",
                b"20240102-03:04:05.1234567890",
                b"20240102 03:04:05",
                b"2024010-03:04:05",
            ],
        ),
        ("UTCTIMEONLY", [b"03:04:05", b"03:04:05.123"], [b"3:04:05", b"25:00:00", b"03:04"]),
        ("UTCDATE", [b"20240229"], [b"2024022", b"20241301", b"2024-02-29"]),
        ("LOCALMKTDATE", [b"20240102"], [b"20240132", b"240102"]),
        (
            "MONTHYEAR",
            [b"202401", b"20240115", b"202401w2"],
            [b"202413", b"2024", b"202401w9", b"20240132"],
        ),
        ("DAYOFMONTH", [b"1", b"31"], [b"0", b"32", b"x"]),
        ("CURRENCY", [b"USD", b"EUR"], [b"US", b"USDX", b""]),
    ],
)
def test_value_checkers(fix_type: str, good: list[bytes], bad: list[bytes]) -> None:
    check = value_checker(fix_type)
    assert check is not None
    for v in good:
        assert check(v), (fix_type, v)
    for v in bad:
        assert not check(v), (fix_type, v)


def test_free_text_types_have_no_checker() -> None:
    for t in ("STRING", "DATA", "EXCHANGE", "MULTIPLEVALUESTRING", "COUNTRY"):
        assert value_checker(t) is None
