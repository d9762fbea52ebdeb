"""Clocks, business days and NAV sources."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from venues.business_days import add_business_days, next_business_day, previous_business_day
from venues.clock import FrozenClock, SimulatedDayClock, SystemClock
from venues.errors import NavError
from venues.navs import CsvNavs, RandomWalkNavs

NY = ZoneInfo("America/New_York")
D = Decimal


def test_frozen_clock() -> None:
    c = FrozenClock(datetime(2024, 1, 2, 10, 0, tzinfo=NY))
    assert c.now() == datetime(2024, 1, 2, 15, 0, tzinfo=UTC) and c.now().tzinfo is UTC
    c.advance(30)
    c.advance(timedelta(minutes=1))
    assert c.now().isoformat() == "2024-01-02T15:01:30+00:00"
    with pytest.raises(ValueError, match="timezone-aware"):
        FrozenClock(datetime(2024, 1, 2))
    with pytest.raises(ValueError, match="non-negative"):
        c.advance(-1)


def test_system_clock_is_utc_aware() -> None:
    now = SystemClock().now()
    assert now.tzinfo is UTC
    assert abs((datetime.now(UTC) - now).total_seconds()) < 5


BUSINESS = [
    (date(2024, 3, 8), 1, date(2024, 3, 11)),  # Friday + 1 -> Monday
    (date(2024, 3, 9), 0, date(2024, 3, 11)),  # Saturday counts from Monday
    (date(2024, 3, 4), 5, date(2024, 3, 11)),
    (date(2024, 3, 4), 12, date(2024, 3, 20)),
    (date(2024, 3, 6), 522, date(2026, 3, 6)),  # 104 weeks and two days
]


@pytest.mark.parametrize(("start", "n", "end"), BUSINESS)
def test_add_business_days(start: date, n: int, end: date) -> None:
    assert add_business_days(start, n) == end
    # the arithmetic shortcut agrees with counting day by day
    d = start if start.weekday() < 5 else next_business_day(start)
    for _ in range(n):
        d = next_business_day(d)
    assert d == end


def test_previous_business_day() -> None:
    assert previous_business_day(date(2024, 3, 11)) == date(2024, 3, 8)
    assert previous_business_day(date(2024, 3, 10)) == date(2024, 3, 8)


def test_simulated_day_clock_runs_business_days_fast() -> None:
    real = [0.0]
    c = SimulatedDayClock(30, start=datetime(2024, 3, 7, 9, 0, tzinfo=NY), real=lambda: real[0])
    assert c.now().astimezone(NY).isoformat() == "2024-03-07T09:00:00-05:00"
    real[0] = 30.0
    assert c.now().astimezone(NY).isoformat() == "2024-03-08T09:00:00-05:00"
    real[0] = 45.0  # Friday 21:00
    assert c.now().astimezone(NY).isoformat() == "2024-03-08T21:00:00-05:00"
    real[0] = 60.0  # the weekend is skipped: Monday 09:00 (after the DST change of the 10th)
    assert c.now().astimezone(NY).isoformat() == "2024-03-11T09:00:00-04:00"
    # monotonic across the whole range
    times = []
    for i in range(600):
        real[0] = i * 0.5
        times.append(c.now())
    assert times == sorted(times)
    real[0] = 0.0
    assert c.real_seconds_until(datetime(2024, 3, 11, 9, 0, tzinfo=NY)) == pytest.approx(60)
    assert c.real_seconds_until(datetime(2024, 3, 1, tzinfo=NY)) == 0
    with pytest.raises(ValueError, match="day_seconds"):
        SimulatedDayClock(0)


def test_simulated_day_clock_starting_on_a_weekend_starts_monday() -> None:
    c = SimulatedDayClock(10, start=datetime(2024, 3, 9, 12, 0, tzinfo=NY), real=lambda: 5.0)
    assert c.now().astimezone(NY).isoformat() == "2024-03-11T00:00:00-04:00"


def test_random_walk_is_seeded_and_per_fund() -> None:
    start = {"A": D("100.00"), "B": D("10.00"), "FLAT": D("1.00")}
    kw = {"start_date": date(2024, 1, 2), "volatility_bp": {"A": 100, "B": 100, "FLAT": 0}}
    w1 = RandomWalkNavs(start, seed=7, **kw)  # type: ignore[arg-type]
    w2 = RandomWalkNavs(start, seed=7, **kw)  # type: ignore[arg-type]
    w3 = RandomWalkNavs(start, seed=8, **kw)  # type: ignore[arg-type]
    days = [date(2024, 1, 2) + timedelta(days=i) for i in range(60)]
    a1 = [w1.nav("A", d) for d in days]
    # asking in another order gives the same NAVs
    assert [w2.nav("A", d) for d in reversed(days)][::-1] == a1
    assert [w3.nav("A", d) for d in days] != a1
    assert len(set(a1)) > 10 and all(n > 0 and n == n.quantize(D("0.01")) for n in a1)
    assert {w1.nav("FLAT", d) for d in days} == {D("1.00")}
    assert w1.nav("A", date(2023, 1, 1)) == D("100.00")
    assert w1.nav("A", date(2024, 1, 6)) == w1.nav("A", date(2024, 1, 5))  # Saturday = Friday
    with pytest.raises(NavError):
        w1.nav("NOPE", days[0])


def test_csv_navs(tmp_path: Path) -> None:
    p = tmp_path / "n.csv"
    p.write_text("date,fund,nav\n2024-03-04,A,10.50\n2024-03-06,A,11.00\n\n2024-03-04,B,5\n")
    n = CsvNavs(p)
    assert n.funds() == {"A", "B"}
    assert n.nav("A", date(2024, 3, 4)) == D("10.50")
    assert n.nav("A", date(2024, 3, 5)) == D("10.50")  # missing: the latest before
    assert n.nav("A", date(2024, 3, 1)) == D("10.50")  # before the first: the first
    assert n.nav("A", date(2024, 4, 1)) == D("11.00")
    with pytest.raises(NavError, match="no NAV for fund C"):
        n.nav("C", date(2024, 3, 4))


CSV_ERRORS = [
    ("date;fund;nav\n", "line 1: expected the header"),
    ("", "line 1: expected the header"),
    ("date,fund,nav\n2024-03-04,A\n", "line 2: expected 3 columns"),
    ("date,fund,nav\n2024-13-04,A,1\n", "line 2: date: expected YYYY-MM-DD"),
    ("date,fund,nav\n2024-03-04,A,ten\n", "line 2: nav: expected a positive decimal"),
    ("date,fund,nav\n2024-03-04,A,-1\n", "line 2: nav: expected a positive decimal"),
    ("date,fund,nav\n2024-03-04,A,NaN\n", "line 2: nav"),
    ("date,fund,nav\n2024-03-04,,1\n", "line 2: fund"),
    ("date,fund,nav\n2024-03-04,A,1\n2024-03-04,A,2\n", "line 3: a second, different NAV"),
    ("date,fund,nav\n", "no NAVs"),
]


@pytest.mark.parametrize(("text", "message"), CSV_ERRORS)
def test_csv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(NavError, match=message) as info:
        CsvNavs(p)
    assert str(p) in str(info.value)


def test_csv_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(NavError, match="no such file"):
        CsvNavs(tmp_path / "none.csv")
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00\x01garbage")
    with pytest.raises(NavError):
        CsvNavs(p)
