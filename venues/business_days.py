"""Business days: Monday to Friday. Holidays are not modelled (a simulator needs none)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo

_SATURDAY = 5


def is_business_day(day: date) -> bool:
    return day.weekday() < _SATURDAY


def next_business_day(day: date) -> date:
    """The first business day strictly after ``day``."""
    day += timedelta(days=1)
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def on_or_after(day: date) -> date:
    """``day`` if it is a business day, else the next one."""
    return day if is_business_day(day) else next_business_day(day)


def add_business_days(day: date, count: int) -> date:
    """``count`` (>= 0) business days after ``day``; a weekend ``day`` counts from Monday.

    Whole weeks are added arithmetically so that a simulated clock that has run for
    years does not loop day by day.
    """
    if count < 0:
        raise ValueError(f"add_business_days needs count >= 0, got {count}")
    day = on_or_after(day)
    weeks, rest = divmod(count, 5)
    day += timedelta(weeks=weeks)
    for _ in range(rest):
        day = next_business_day(day)
    return day


def local_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """``day`` at wall-clock time ``at`` in ``zone``, as an aware UTC datetime."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def previous_business_day(day: date) -> date:
    """The last business day strictly before ``day``."""
    day -= timedelta(days=1)
    while not is_business_day(day):
        day -= timedelta(days=1)
    return day


def next_local_instant(after: datetime, at: time, zone: tzinfo) -> datetime:
    """The first business day's wall-clock time ``at`` in ``zone`` strictly after ``after``
    (the exchange's next session end, the fund's next valuation point)."""
    day = after.astimezone(zone).date()
    if is_business_day(day):
        instant = local_instant(day, at, zone)
        if instant > after:
            return instant
    return local_instant(next_business_day(day), at, zone)
