"""Where a fund's NAV per valuation date comes from: a seeded random walk, or a CSV file.

Both give a NAV for any date: a non-business day has the previous business day's NAV.
"""

from __future__ import annotations

import csv
import random
from bisect import bisect_right
from collections.abc import Mapping
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol

from venues.business_days import is_business_day, next_business_day, previous_business_day
from venues.errors import NavError

_CENT = Decimal("0.01")
_BP = Decimal(10000)


class NavSource(Protocol):
    def nav(self, fund: str, day: date) -> Decimal:
        """The fund's NAV struck on ``day``; raises NavError for an unknown fund."""
        ...

    def funds(self) -> frozenset[str]:
        ...


class RandomWalkNavs:
    """Each business day after ``start_date`` multiplies the NAV by (1 + r), r drawn from a
    seeded normal distribution with std dev ``volatility_bp`` basis points (whole basis
    points, applied in Decimal and rounded to cents). Dates before ``start_date`` have the
    start NAV. The walk of a fund depends only on the seed and its ticker."""

    def __init__(
        self,
        start: Mapping[str, Decimal],
        *,
        seed: int,
        start_date: date,
        volatility_bp: Mapping[str, int] | int = 100,
    ) -> None:
        self._start_date = start_date if is_business_day(start_date) else previous_business_day(start_date)
        self._walks: dict[str, list[Decimal]] = {}
        self._days: dict[str, list[date]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._vol: dict[str, int] = {}
        for fund, nav in start.items():
            if not isinstance(nav, Decimal) or not nav.is_finite() or nav <= 0:
                raise ValueError(f"start NAV of {fund} must be a positive Decimal, got {nav!r}")
            vol = volatility_bp if isinstance(volatility_bp, int) else volatility_bp.get(fund, 100)
            if vol < 0:
                raise ValueError(f"volatility of {fund} must be >= 0 basis points, got {vol}")
            self._walks[fund] = [nav]
            self._days[fund] = [self._start_date]
            self._rngs[fund] = random.Random(f"{seed}:{fund}")
            self._vol[fund] = vol

    def funds(self) -> frozenset[str]:
        return frozenset(self._walks)

    def nav(self, fund: str, day: date) -> Decimal:
        walk = self._walks.get(fund)
        if walk is None:
            raise NavError(f"no NAV for unknown fund {fund}")
        if not is_business_day(day):
            day = previous_business_day(day)
        if day <= self._start_date:
            return walk[0]
        days = self._days[fund]
        rng = self._rngs[fund]
        vol = self._vol[fund]
        # extend the walk, cached, up to the day asked for
        while days[-1] < day:
            step = round(rng.gauss(0.0, vol)) if vol else 0
            nav = (walk[-1] * (_BP + step) / _BP).quantize(_CENT, ROUND_HALF_EVEN)
            walk.append(max(nav, _CENT))
            days.append(next_business_day(days[-1]))
        return walk[bisect_right(days, day) - 1]


class CsvNavs:
    """NAVs from a CSV file with the header ``date,fund,nav`` (ISO dates). A date missing
    from the file takes the latest NAV before it (before the first: the first)."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        rows: dict[str, dict[date, Decimal]] = {}
        try:
            with self._path.open(newline="") as fh:
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None or [h.strip().lower() for h in header] != ["date", "fund", "nav"]:
                    raise NavError(f"{self._path}: line 1: expected the header 'date,fund,nav', got {header!r}")
                for line, row in enumerate(reader, start=2):
                    if not row or all(not c.strip() for c in row):
                        continue
                    if len(row) != 3:
                        raise NavError(f"{self._path}: line {line}: expected 3 columns date,fund,nav, got {row!r}")
                    raw_day, fund, raw_nav = (c.strip() for c in row)
                    try:
                        day = date.fromisoformat(raw_day)
                    except ValueError:
                        raise NavError(f"{self._path}: line {line}: date: expected YYYY-MM-DD, got {raw_day!r}") from None
                    try:
                        nav = Decimal(raw_nav)
                    except InvalidOperation:
                        nav = Decimal(-1)
                    if not nav.is_finite() or nav <= 0:
                        raise NavError(f"{self._path}: line {line}: nav: expected a positive decimal, got {raw_nav!r}")
                    if not fund:
                        raise NavError(f"{self._path}: line {line}: fund: expected a ticker, got an empty field")
                    per_fund = rows.setdefault(fund, {})
                    if day in per_fund and per_fund[day] != nav:
                        raise NavError(f"{self._path}: line {line}: a second, different NAV for {fund} on {day}")
                    per_fund[day] = nav
        except FileNotFoundError:
            raise NavError(f"{self._path}: no such file") from None
        except UnicodeDecodeError as exc:
            raise NavError(f"{self._path}: not a text file: {exc}") from None
        except csv.Error as exc:
            raise NavError(f"{self._path}: not valid CSV: {exc}") from None
        if not rows:
            raise NavError(f"{self._path}: no NAVs in the file")
        self._days: dict[str, list[date]] = {}
        self._navs: dict[str, list[Decimal]] = {}
        for fund, per in rows.items():
            ordered = sorted(per)
            self._days[fund] = ordered
            self._navs[fund] = [per[d] for d in ordered]

    @property
    def path(self) -> Path:
        return self._path

    def funds(self) -> frozenset[str]:
        return frozenset(self._days)

    def nav(self, fund: str, day: date) -> Decimal:
        days = self._days.get(fund)
        if days is None:
            raise NavError(f"{self._path}: no NAV for fund {fund}")
        i = bisect_right(days, day) - 1
        return self._navs[fund][max(i, 0)]
