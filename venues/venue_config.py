"""Venue configuration: exchange symbols and liquidity, fund company funds and cut-off.

Read from a TOML file (``[exchange]`` and ``[fund_company]`` tables, see
``configs/venues.example.toml``) or from a mapping that a cluster config hands over; what
is left out takes the built-in defaults. A mistake raises :class:`VenueConfigError`
naming the file, the key and what was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from venues.errors import VenueConfigError

NEW_YORK = "America/New_York"


def _zone_ok(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _positive(v: object) -> bool:
    return isinstance(v, Decimal) and v.is_finite() and v > 0


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _real(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise ValueError(what)


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One listed symbol: prices must be multiples of ``tick_size``; the liquidity
    provider quotes around ``reference_price``."""

    symbol: str
    tick_size: Decimal
    reference_price: Decimal

    def __post_init__(self) -> None:
        _check(isinstance(self.symbol, str) and bool(self.symbol.strip()), f"symbol must be non-empty, got {self.symbol!r}")
        _check(_positive(self.tick_size), f"{self.symbol}: tick_size must be a positive Decimal, got {self.tick_size!r}")
        _check(_positive(self.reference_price), f"{self.symbol}: reference_price must be a positive Decimal, got {self.reference_price!r}")
        _check(
            self.reference_price % self.tick_size == 0,
            f"{self.symbol}: reference_price {self.reference_price} is not a multiple of tick_size {self.tick_size}",
        )


@dataclass(frozen=True, slots=True)
class LiquiditySpec:
    """The simulated market maker: ``levels`` quotes of ``quote_size`` on each side, best
    bid and ask ``spread_ticks`` apart and levels ``level_ticks`` apart, around a reference
    price that takes one seeded random step (std dev ``volatility_ticks``) at each refresh,
    at most every ``refresh_seconds`` of clock time."""

    enabled: bool = True
    seed: int = 1
    levels: int = 5
    quote_size: Decimal = Decimal(500)
    spread_ticks: int = 2
    level_ticks: int = 1
    volatility_ticks: float = 1.0
    refresh_seconds: float = 1.0

    def __post_init__(self) -> None:
        _check(isinstance(self.enabled, bool), f"enabled must be true or false, got {self.enabled!r}")
        _check(_int(self.seed), f"seed must be an integer, got {self.seed!r}")
        _check(_int(self.levels) and self.levels >= 1, f"levels must be an integer >= 1, got {self.levels!r}")
        _check(_positive(self.quote_size), f"quote_size must be a positive Decimal, got {self.quote_size!r}")
        _check(_int(self.spread_ticks) and self.spread_ticks >= 1, f"spread_ticks must be an integer >= 1, got {self.spread_ticks!r}")
        _check(_int(self.level_ticks) and self.level_ticks >= 1, f"level_ticks must be an integer >= 1, got {self.level_ticks!r}")
        _check(_real(self.volatility_ticks) and self.volatility_ticks >= 0, f"volatility_ticks must be a number >= 0, got {self.volatility_ticks!r}")
        _check(_real(self.refresh_seconds) and self.refresh_seconds > 0, f"refresh_seconds must be a number > 0, got {self.refresh_seconds!r}")


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = tuple(
    SymbolSpec(sym, Decimal("0.01"), Decimal(px))
    for sym, px in [
        ("AAPL", "190.00"),
        ("MSFT", "420.00"),
        ("IBM", "180.00"),
        ("INTC", "30.00"),
        ("GOOG", "170.00"),
        ("AMZN", "180.00"),
        ("ORCL", "120.00"),
        ("CSCO", "50.00"),
    ]
)


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    name: str = "XSIM"
    symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS
    session_close: time = time(16, 0)
    timezone: str = NEW_YORK
    liquidity: LiquiditySpec = field(default_factory=LiquiditySpec)

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(self.name), f"name must be non-empty, got {self.name!r}")
        _check(bool(self.symbols), "symbols must list at least one symbol")
        names = [s.symbol for s in self.symbols]
        _check(len(set(names)) == len(names), f"symbols are listed twice: {sorted({n for n in names if names.count(n) > 1})}")
        _check(isinstance(self.session_close, time), f"session_close must be a time, got {self.session_close!r}")
        _check(_zone_ok(self.timezone), f"timezone must be an IANA zone like {NEW_YORK!r}, got {self.timezone!r}")


@dataclass(frozen=True, slots=True)
class FundSpec:
    """One fund: its NAV starts at ``nav`` (random walk) or comes from the NAV file;
    buys below ``min_investment`` (in currency) are rejected. ``volatility_bp`` (daily
    std dev in basis points) overrides the company default; 0 keeps the NAV flat."""

    symbol: str
    name: str
    nav: Decimal
    min_investment: Decimal = Decimal(0)
    volatility_bp: int | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.symbol, str) and bool(self.symbol.strip()), f"symbol must be non-empty, got {self.symbol!r}")
        _check(isinstance(self.name, str), f"{self.symbol}: name must be a string, got {self.name!r}")
        _check(_positive(self.nav), f"{self.symbol}: nav must be a positive Decimal, got {self.nav!r}")
        _check(
            isinstance(self.min_investment, Decimal) and self.min_investment.is_finite() and self.min_investment >= 0,
            f"{self.symbol}: min_investment must be a Decimal >= 0, got {self.min_investment!r}",
        )
        _check(
            self.volatility_bp is None or (_int(self.volatility_bp) and self.volatility_bp >= 0),
            f"{self.symbol}: volatility_bp must be an integer >= 0, got {self.volatility_bp!r}",
        )


DEFAULT_FUNDS: tuple[FundSpec, ...] = (
    FundSpec("FSIDX", "Sim 500 Index Fund Admiral", Decimal("450.00"), Decimal(3000)),
    FundSpec("FSTBX", "Sim Total Bond Market Fund", Decimal("10.00"), Decimal(1000), volatility_bp=20),
    FundSpec("FSGRX", "Sim Growth Fund", Decimal("125.00"), Decimal(2500), volatility_bp=150),
    FundSpec("FSINX", "Sim International Index Fund", Decimal("32.50"), Decimal(3000)),
    FundSpec("FSMMX", "Sim Money Market Fund", Decimal("1.00"), Decimal(0), volatility_bp=0),
)


@dataclass(frozen=True, slots=True)
class FundCompanyConfig:
    """Orders received before ``cutoff`` (local time in ``timezone``) on a business day
    get that day's NAV at ``valuation_time`` (default: the cut-off itself); later ones the
    next business day's. NAVs: a random walk from each fund's ``nav`` starting on
    ``nav_start`` (seeded by ``nav_seed``), or the CSV file ``nav_csv``."""

    name: str = "FUNDSIM"
    funds: tuple[FundSpec, ...] = DEFAULT_FUNDS
    cutoff: time = time(16, 0)
    valuation_time: time | None = None
    timezone: str = NEW_YORK
    nav_seed: int = 7
    nav_volatility_bp: int = 100
    nav_start: date = date(2024, 1, 2)
    nav_csv: Path | None = None

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(self.name), f"name must be non-empty, got {self.name!r}")
        _check(bool(self.funds), "funds must list at least one fund")
        names = [f.symbol for f in self.funds]
        _check(len(set(names)) == len(names), f"funds are listed twice: {sorted({n for n in names if names.count(n) > 1})}")
        _check(isinstance(self.cutoff, time), f"cutoff must be a time, got {self.cutoff!r}")
        _check(
            self.valuation_time is None or (isinstance(self.valuation_time, time) and self.valuation_time >= self.cutoff),
            f"valuation_time must be a time not before the cut-off {self.cutoff}, got {self.valuation_time!r}",
        )
        _check(_zone_ok(self.timezone), f"timezone must be an IANA zone like {NEW_YORK!r}, got {self.timezone!r}")
        _check(_int(self.nav_seed), f"nav_seed must be an integer, got {self.nav_seed!r}")
        _check(_int(self.nav_volatility_bp) and self.nav_volatility_bp >= 0, f"nav_volatility_bp must be an integer >= 0, got {self.nav_volatility_bp!r}")
        _check(isinstance(self.nav_start, date), f"nav_start must be a date, got {self.nav_start!r}")

    @property
    def valuation_at(self) -> time:
        return self.cutoff if self.valuation_time is None else self.valuation_time


@dataclass(frozen=True, slots=True)
class VenueConfig:
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    fund_company: FundCompanyConfig = field(default_factory=FundCompanyConfig)

    def listing(self, kind: str) -> dict[str, Decimal]:
        """What a venue of ``kind`` ("exchange" or "fund") lists: symbol -> reference price
        (an exchange symbol's reference price, a fund's starting NAV). The brokerage routes
        orders by these symbols and checks limits against these prices."""
        out: dict[str, Decimal] = {}
        if kind == "exchange":
            for s in self.exchange.symbols:
                out.setdefault(s.symbol, s.reference_price)
        else:
            for f in self.fund_company.funds:
                out.setdefault(f.symbol, f.nav)
        return out


DEFAULT_VENUE_CONFIG = VenueConfig()


# -- loading -------------------------------------------------------------------------


def load_venue_config(path: str | Path) -> VenueConfig:
    """Read a TOML venue file. Numbers with a fraction are read as Decimal, never float."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh, parse_float=Decimal)
    except FileNotFoundError:
        raise VenueConfigError(f"{p}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise VenueConfigError(f"{p}: not valid TOML: {exc}") from None
    return venue_config_from_mapping(data, source=str(p), base_dir=p.parent)


def venue_config_from_mapping(
    data: Mapping[str, Any], *, source: str = "<config>", base_dir: Path | None = None, prefix: str = ""
) -> VenueConfig:
    """Build a VenueConfig from parsed TOML. ``prefix`` is where the tables sit in a
    bigger file (e.g. ``"venues."``), for error messages; relative file names are taken
    from ``base_dir``."""
    r = _Reader(source, base_dir or Path("."))
    r.keys(data, prefix.rstrip("."), {"exchange", "fund_company"}, allow_other=bool(prefix))
    exchange = ExchangeConfig()
    funds = FundCompanyConfig()
    if "exchange" in data:
        exchange = r.exchange(data["exchange"], f"{prefix}exchange")
    if "fund_company" in data:
        funds = r.fund_company(data["fund_company"], f"{prefix}fund_company")
    return VenueConfig(exchange=exchange, fund_company=funds)


class _Reader:
    def __init__(self, source: str, base_dir: Path) -> None:
        self.source = source
        self.base_dir = base_dir

    def fail(self, key: str, expected: str, got: object) -> VenueConfigError:
        return VenueConfigError(f"{self.source}: {key}: expected {expected}, got {got!r}")

    def keys(self, table: object, key: str, allowed: set[str], allow_other: bool = False) -> None:
        if not isinstance(table, Mapping):
            raise self.fail(key or "top level", "a table", table)
        if allow_other:
            return
        for k in table:
            if k not in allowed:
                where = f"{key}.{k}" if key else k
                raise VenueConfigError(f"{self.source}: {where}: unknown key; expected one of {sorted(allowed)}")

    def decimal(self, v: object, key: str, minimum: Decimal | None = None, strict: bool = False) -> Decimal:
        expected = "a decimal number"
        if minimum is not None:
            expected += f" {'>' if strict else '>='} {minimum}"
        try:
            d = Decimal(v) if isinstance(v, (int, str)) and not isinstance(v, bool) else v
        except InvalidOperation:
            raise self.fail(key, expected, v) from None
        if not isinstance(d, Decimal) or not d.is_finite():
            raise self.fail(key, expected, v)
        if minimum is not None and (d <= minimum if strict else d < minimum):
            raise self.fail(key, expected, v)
        return d

    def integer(self, v: object, key: str, minimum: int | None = None) -> int:
        if not _int(v) or (minimum is not None and v < minimum):  # type: ignore[operator]
            raise self.fail(key, "an integer" + (f" >= {minimum}" if minimum is not None else ""), v)
        return v  # type: ignore[return-value]

    def real(self, v: object, key: str, positive: bool) -> float:
        if isinstance(v, Decimal) and v.is_finite():
            v = float(v)  # a rate or a duration, not money
        if not _real(v) or (v <= 0 if positive else v < 0):  # type: ignore[operator]
            raise self.fail(key, "a number " + ("> 0" if positive else ">= 0"), v)
        return float(v)  # type: ignore[arg-type]

    def text(self, v: object, key: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.fail(key, "a non-empty string", v)
        return v.strip()

    def boolean(self, v: object, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(key, "true or false", v)
        return v

    def clock_time(self, v: object, key: str) -> time:
        if isinstance(v, time):
            return v
        if isinstance(v, str):
            try:
                return time.fromisoformat(v)
            except ValueError:
                pass
        raise self.fail(key, 'a time of day like "16:00"', v)

    def day(self, v: object, key: str) -> date:
        if isinstance(v, date):
            return v
        if isinstance(v, str):
            try:
                return date.fromisoformat(v)
            except ValueError:
                pass
        raise self.fail(key, 'a date like "2024-01-02"', v)

    def zone(self, v: object, key: str) -> str:
        name = self.text(v, key)
        if not _zone_ok(name):
            raise self.fail(key, f"an IANA time zone like {NEW_YORK!r}", v)
        return name

    def build(self, cls: type, kwargs: dict[str, Any], key: str) -> Any:
        try:
            return cls(**kwargs)
        except ValueError as exc:
            raise VenueConfigError(f"{self.source}: {key}: {exc}") from None

    def exchange(self, t: object, key: str) -> ExchangeConfig:
        self.keys(t, key, {"name", "symbols", "session_close", "timezone", "liquidity"})
        assert isinstance(t, Mapping)
        kw: dict[str, Any] = {}
        if "name" in t:
            kw["name"] = self.text(t["name"], f"{key}.name")
        if "session_close" in t:
            kw["session_close"] = self.clock_time(t["session_close"], f"{key}.session_close")
        if "timezone" in t:
            kw["timezone"] = self.zone(t["timezone"], f"{key}.timezone")
        if "symbols" in t:
            rows = t["symbols"]
            if not isinstance(rows, list) or not rows:
                raise self.fail(f"{key}.symbols", "a non-empty array of tables ([[exchange.symbols]])", rows)
            kw["symbols"] = tuple(self.symbol(row, f"{key}.symbols[{i}]") for i, row in enumerate(rows))
        if "liquidity" in t:
            kw["liquidity"] = self.liquidity(t["liquidity"], f"{key}.liquidity")
        result: ExchangeConfig = self.build(ExchangeConfig, kw, key)
        return result

    def symbol(self, t: object, key: str) -> SymbolSpec:
        self.keys(t, key, {"symbol", "tick_size", "reference_price"})
        assert isinstance(t, Mapping)
        for k in ("symbol", "tick_size", "reference_price"):
            if k not in t:
                raise VenueConfigError(f"{self.source}: {key}.{k}: missing; expected a value")
        spec: SymbolSpec = self.build(
            SymbolSpec,
            {
                "symbol": self.text(t["symbol"], f"{key}.symbol"),
                "tick_size": self.decimal(t["tick_size"], f"{key}.tick_size", Decimal(0), strict=True),
                "reference_price": self.decimal(t["reference_price"], f"{key}.reference_price", Decimal(0), strict=True),
            },
            key,
        )
        return spec

    def liquidity(self, t: object, key: str) -> LiquiditySpec:
        allowed = {"enabled", "seed", "levels", "quote_size", "spread_ticks", "level_ticks",
                   "volatility_ticks", "refresh_seconds"}
        self.keys(t, key, allowed)
        assert isinstance(t, Mapping)
        kw: dict[str, Any] = {}
        if "enabled" in t:
            kw["enabled"] = self.boolean(t["enabled"], f"{key}.enabled")
        if "seed" in t:
            kw["seed"] = self.integer(t["seed"], f"{key}.seed")
        for k in ("levels", "spread_ticks", "level_ticks"):
            if k in t:
                kw[k] = self.integer(t[k], f"{key}.{k}", 1)
        if "quote_size" in t:
            kw["quote_size"] = self.decimal(t["quote_size"], f"{key}.quote_size", Decimal(0), strict=True)
        if "volatility_ticks" in t:
            kw["volatility_ticks"] = self.real(t["volatility_ticks"], f"{key}.volatility_ticks", positive=False)
        if "refresh_seconds" in t:
            kw["refresh_seconds"] = self.real(t["refresh_seconds"], f"{key}.refresh_seconds", positive=True)
        result: LiquiditySpec = self.build(LiquiditySpec, kw, key)
        return result

    def fund_company(self, t: object, key: str) -> FundCompanyConfig:
        allowed = {"name", "funds", "cutoff", "valuation_time", "timezone", "nav_seed",
                   "nav_volatility_bp", "nav_start", "nav_csv"}
        self.keys(t, key, allowed)
        assert isinstance(t, Mapping)
        kw: dict[str, Any] = {}
        if "name" in t:
            kw["name"] = self.text(t["name"], f"{key}.name")
        for k in ("cutoff", "valuation_time"):
            if k in t:
                kw[k] = self.clock_time(t[k], f"{key}.{k}")
        if "timezone" in t:
            kw["timezone"] = self.zone(t["timezone"], f"{key}.timezone")
        if "nav_seed" in t:
            kw["nav_seed"] = self.integer(t["nav_seed"], f"{key}.nav_seed")
        if "nav_volatility_bp" in t:
            kw["nav_volatility_bp"] = self.integer(t["nav_volatility_bp"], f"{key}.nav_volatility_bp", 0)
        if "nav_start" in t:
            kw["nav_start"] = self.day(t["nav_start"], f"{key}.nav_start")
        if "nav_csv" in t:
            p = Path(self.text(t["nav_csv"], f"{key}.nav_csv"))
            p = p if p.is_absolute() else self.base_dir / p
            if not p.is_file():
                raise self.fail(f"{key}.nav_csv", "an existing CSV file of NAVs", str(p))
            kw["nav_csv"] = p
        if "funds" in t:
            rows = t["funds"]
            if not isinstance(rows, list) or not rows:
                raise self.fail(f"{key}.funds", "a non-empty array of tables ([[fund_company.funds]])", rows)
            kw["funds"] = tuple(self.fund(row, f"{key}.funds[{i}]") for i, row in enumerate(rows))
        result: FundCompanyConfig = self.build(FundCompanyConfig, kw, key)
        return result

    def fund(self, t: object, key: str) -> FundSpec:
        self.keys(t, key, {"symbol", "name", "nav", "min_investment", "volatility_bp"})
        assert isinstance(t, Mapping)
        for k in ("symbol", "nav"):
            if k not in t:
                raise VenueConfigError(f"{self.source}: {key}.{k}: missing; expected a value")
        kw: dict[str, Any] = {
            "symbol": self.text(t["symbol"], f"{key}.symbol"),
            "nav": self.decimal(t["nav"], f"{key}.nav", Decimal(0), strict=True),
        }
        kw["name"] = self.text(t["name"], f"{key}.name") if "name" in t else kw["symbol"]
        if "min_investment" in t:
            kw["min_investment"] = self.decimal(t["min_investment"], f"{key}.min_investment", Decimal(0))
        if "volatility_bp" in t:
            kw["volatility_bp"] = self.integer(t["volatility_bp"], f"{key}.volatility_bp", 0)
        spec: FundSpec = self.build(FundSpec, kw, key)
        return spec
