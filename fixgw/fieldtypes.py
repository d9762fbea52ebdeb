"""The value format check of each FIX data type (bytes in, bool out), by type name.

The data dictionary (:mod:`fixgw.dictionary`) gives each field its type's check; the learned
message shapes (:mod:`fixgw.plans`) pair each check with the regular expression that accepts
exactly the same values. Both import them from here, so neither imports the other's private
names and plans -> dictionary is the only direction between those two.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = [
    "CHECKERS",
    "check_bool",
    "check_char",
    "check_currency",
    "check_date",
    "check_dayofmonth",
    "check_float",
    "check_int",
    "check_monthyear",
    "check_timeonly",
    "check_timestamp",
    "check_uint",
    "value_checker",
]

# Value format checks, one per FIX type (bytes in, bool out; no decoding on the hot path).
# They follow QuickFIX's convertors where QuickFIX checks (INT, floats, CHAR, BOOLEAN, UTC times
# and dates) and add the checks the FIX specification states for the types QuickFIX treats as
# free strings (LOCALMKTDATE, MONTHYEAR, DAYOFMONTH, CURRENCY).

# The checks use bytes.isdigit() and slice comparisons rather than regular expressions: they run
# for every field of every message (a regex call costs several times more).


def check_int(v: bytes) -> bool:
    return v.isdigit() or (v[:1] == b"-" and v[1:].isdigit())


def check_uint(v: bytes) -> bool:
    # SEQNUM, LENGTH, NUMINGROUP: QuickFIX parses them as INT; a negative one is never valid FIX,
    # and a negative count or length would make framing and group parsing meaningless.
    return v.isdigit()


def check_float(v: bytes) -> bool:
    # QuickFIX's DoubleConvertor: optional '-', digits, optional '.' and digits; "1." and ".5"
    # pass, "+1", "1e5", "." and "" do not.
    if v[:1] == b"-":
        v = v[1:]
    return v.isdigit() or v.replace(b".", b"", 1).isdigit()


def check_char(v: bytes) -> bool:
    return len(v) == 1


def check_bool(v: bytes) -> bool:
    return v == b"Y" or v == b"N"


def _date_ok(v: bytes) -> bool:
    # v: 8 ASCII digits YYYYMMDD
    return b"01" <= v[4:6] <= b"12" and b"01" <= v[6:8] <= b"31"


def _fraction_ok(frac: bytes) -> bool:
    # "" or "." followed by 1..9 digits (milli, micro, nano and anything between)
    return not frac or (frac[0] == 46 and 2 <= len(frac) <= 10 and frac[1:].isdigit())


def _time_ok(v: bytes) -> bool:
    # v: "HH:MM:SS"; 60 seconds is allowed for a leap second, as QuickFIX does
    return (
        v[2] == 58
        and v[5] == 58
        and v[0:2].isdigit()
        and v[3:5].isdigit()
        and v[6:8].isdigit()
        and v[0:2] <= b"23"
        and v[3:5] <= b"59"
        and v[6:8] <= b"60"
    )


def check_timestamp(v: bytes) -> bool:
    return (
        len(v) >= 17
        and v[8] == 45
        and v[:8].isdigit()
        and _date_ok(v)
        and _time_ok(v[9:17])
        and _fraction_ok(v[17:])
    )


def check_timeonly(v: bytes) -> bool:
    return len(v) >= 8 and _time_ok(v[:8]) and _fraction_ok(v[8:])


def check_date(v: bytes) -> bool:
    return len(v) == 8 and v.isdigit() and _date_ok(v)


def check_monthyear(v: bytes) -> bool:
    # YYYYMM, YYYYMMDD or YYYYMMwN (week of month, FIX 4.4)
    n = len(v)
    if n < 6 or not v[:6].isdigit() or not b"01" <= v[4:6] <= b"12":
        return False
    if n == 6:
        return True
    if n == 8 and v[6:8].isdigit():
        return b"01" <= v[6:8] <= b"31"
    return n == 8 and v[6:7] == b"w" and b"1" <= v[7:8] <= b"5"


def check_dayofmonth(v: bytes) -> bool:
    return v.isdigit() and len(v) <= 2 and 1 <= int(v) <= 31


def check_currency(v: bytes) -> bool:
    return len(v) == 3 and v.isalnum()


CHECKERS: dict[str, Callable[[bytes], bool]] = {
    "INT": check_int,
    "LENGTH": check_uint,
    "SEQNUM": check_uint,
    "NUMINGROUP": check_uint,
    "FLOAT": check_float,
    "PRICE": check_float,
    "QTY": check_float,
    "AMT": check_float,
    "PRICEOFFSET": check_float,
    "PERCENTAGE": check_float,
    "CHAR": check_char,
    "BOOLEAN": check_bool,
    "UTCTIMESTAMP": check_timestamp,
    "TIME": check_timestamp,
    "UTCTIMEONLY": check_timeonly,
    "UTCDATE": check_date,
    "UTCDATEONLY": check_date,
    "DATE": check_date,
    "LOCALMKTDATE": check_date,
    "MONTHYEAR": check_monthyear,
    "DAYOFMONTH": check_dayofmonth,
    "CURRENCY": check_currency,
}


def value_checker(fix_type: str) -> Callable[[bytes], bool] | None:
    """Format check for a FIX type name (None when any value of that type is well-formed)."""
    return CHECKERS.get(fix_type)
