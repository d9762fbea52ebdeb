"""Clocks for the venues. Every venue reads time only through a :class:`Clock`, so tests
freeze it and demos speed it up.

``now()`` always returns an aware datetime in UTC; venues convert to their local zone
(cut-offs, session ends) with zoneinfo.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from venues.business_days import add_business_days, is_business_day, next_business_day

NEW_YORK = "America/New_York"
_DAY = 86400.0


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


def _utc(at: datetime, what: str) -> datetime:
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} needs a timezone-aware datetime, got {at!r}")
    return at.astimezone(UTC)


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """Time stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self._at = _utc(at, "FrozenClock")

    def now(self) -> datetime:
        return self._at

    def set(self, at: datetime) -> None:
        self._at = _utc(at, "FrozenClock.set")

    def advance(self, delta: timedelta | float) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError(f"FrozenClock.advance needs a non-negative step, got {delta!r}")
        self._at += step
        return self._at


class SimulatedDayClock:
    """A business day lasts ``day_seconds`` real seconds, weekends skipped.

    Simulated time starts at ``start`` (default: today 09:00 in ``zone``) and advances
    86400/day_seconds times faster than the real clock; when a simulated Friday ends the
    next instant is Monday 00:00, so a fund values every ``day_seconds`` seconds and an
    exchange ends a session every ``day_seconds`` seconds. ``real`` (monotonic seconds) is
    injected so tests can drive the clock without sleeping.
    """

    def __init__(
        self,
        day_seconds: float,
        *,
        start: datetime | None = None,
        zone: str = NEW_YORK,
        real: Callable[[], float] = _time.monotonic,
    ) -> None:
        if not isinstance(day_seconds, (int, float)) or not day_seconds > 0:
            raise ValueError(f"SimulatedDayClock needs day_seconds > 0, got {day_seconds!r}")
        self._zone = ZoneInfo(zone)
        self._speed = _DAY / float(day_seconds)
        self._day_seconds = float(day_seconds)
        self._real = real
        self._real0 = real()
        if start is None:
            today = datetime.now(self._zone).date()
            local = datetime.combine(today, time(9, 0), tzinfo=self._zone)
        else:
            local = _utc(start, "SimulatedDayClock start").astimezone(self._zone)
        if not is_business_day(local.date()):
            local = datetime.combine(next_business_day(local.date()), time(0), tzinfo=self._zone)
        self._day0: date = local.date()
        self._sec0 = (local.replace(tzinfo=None) - datetime.combine(self._day0, time(0))).total_seconds()

    @property
    def day_seconds(self) -> float:
        return self._day_seconds

    def now(self) -> datetime:
        elapsed = max(0.0, self._real() - self._real0)
        total = self._sec0 + elapsed * self._speed
        days, sec = divmod(total, _DAY)
        day = add_business_days(self._day0, int(days))
        # wall-clock time of day in the zone; business days never contain a DST change
        # (US and EU switch on Sundays), so this is monotonic
        local = datetime.combine(day, time(0)) + timedelta(seconds=sec)
        return local.replace(tzinfo=self._zone).astimezone(UTC)

    def real_seconds_until(self, at: datetime) -> float:
        """Real seconds until simulated time reaches ``at`` (0 if already past); for timers."""
        target = _utc(at, "real_seconds_until").astimezone(self._zone)
        day = target.date()
        if not is_business_day(day):
            day = next_business_day(day)
            sec = 0.0
        else:
            sec = (target.replace(tzinfo=None) - datetime.combine(day, time(0))).total_seconds()
        days = _business_days_between(self._day0, day)
        total = days * _DAY + sec - self._sec0
        elapsed = max(0.0, self._real() - self._real0)
        return max(0.0, total / self._speed - elapsed)


def _business_days_between(start: date, end: date) -> int:
    """Business days from ``start`` (a business day) to ``end``: negative if before."""
    if end < start:
        # only the sign matters to the caller (a past instant is due now)
        return -(start - end).days
    weeks, rest = divmod((end - start).days, 7)
    count = weeks * 5
    day = start + timedelta(weeks=weeks)
    for _ in range(rest):
        day += timedelta(days=1)
        if is_business_day(day):
            count += 1
    return count
