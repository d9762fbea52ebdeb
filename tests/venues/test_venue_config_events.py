"""Venue configuration files, commands, events and the market maker."""

from __future__ import annotations

import argparse
import json
from dataclasses import FrozenInstanceError, fields
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fixgw.fastinit import fast_constructor
from fixgw.orders import OrdStatus, Side
from tests.venues.venue_support import T0, make_exchange, order
from venues import bench
from venues.clock import FrozenClock
from venues.commands import CancelOrder, SubmitOrder
from venues.errors import CommandError, VenueConfigError
from venues.events import (
    CancelRejected,
    ExecutionEvent,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderStatusReport,
)
from venues.exchange import Exchange
from venues.venue_config import (
    DEFAULT_VENUE_CONFIG,
    LiquiditySpec,
    load_venue_config,
    venue_config_from_mapping,
)

D = Decimal

GOOD = """
[exchange]
name = "XTEST"
session_close = "16:30"
timezone = "Europe/London"

[exchange.liquidity]
seed = 9
levels = 2
quote_size = 100
volatility_ticks = 0.5

[[exchange.symbols]]
symbol = "AAA"
tick_size = 0.05
reference_price = "12.35"

[fund_company]
cutoff = 15:00:00
nav_start = 2024-02-01
nav_csv = "navs.csv"

[[fund_company.funds]]
symbol = "FND"
nav = 10.25
min_investment = 500
"""


def test_load_a_good_file(tmp_path: Path) -> None:
    (tmp_path / "navs.csv").write_text("date,fund,nav\n2024-02-01,FND,10.25\n")
    p = tmp_path / "venues.toml"
    p.write_text(GOOD)
    cfg = load_venue_config(p)
    ex, fc = cfg.exchange, cfg.fund_company
    assert (ex.name, ex.session_close, ex.timezone) == ("XTEST", time(16, 30), "Europe/London")
    assert [(s.symbol, s.tick_size, s.reference_price) for s in ex.symbols] == [("AAA", D("0.05"), D("12.35"))]
    assert isinstance(ex.symbols[0].tick_size, Decimal)  # never a float, even when written 0.05
    assert (ex.liquidity.seed, ex.liquidity.levels, ex.liquidity.quote_size) == (9, 2, D(100))
    assert (fc.cutoff, fc.nav_start, fc.nav_csv) == (time(15, 0), date(2024, 2, 1), tmp_path / "navs.csv")
    assert [(f.symbol, f.nav, f.min_investment) for f in fc.funds] == [("FND", D("10.25"), D(500))]


def test_defaults() -> None:
    assert venue_config_from_mapping({}) == DEFAULT_VENUE_CONFIG
    syms = [s.symbol for s in DEFAULT_VENUE_CONFIG.exchange.symbols]
    assert {"AAPL", "MSFT", "IBM", "INTC"} <= set(syms)
    assert DEFAULT_VENUE_CONFIG.fund_company.cutoff == time(16, 0)
    assert DEFAULT_VENUE_CONFIG.fund_company.timezone == "America/New_York"


BAD = [
    ({"exchange": {"symbols": [{"symbol": "A", "tick_size": "-0.01", "reference_price": "1"}]}},
     "exchange.symbols[0].tick_size: expected a decimal number > 0"),
    ({"exchange": {"symbols": [{"symbol": "A", "tick_size": "0.05", "reference_price": "1.01"}]}},
     "exchange.symbols[0]: A: reference_price 1.01 is not a multiple of tick_size 0.05"),
    ({"exchange": {"symbols": [{"symbol": "A", "tick_size": "0.05"}]}},
     "exchange.symbols[0].reference_price: missing"),
    ({"exchange": {"symbols": []}}, "exchange.symbols: expected a non-empty array"),
    ({"exchange": {"tick": 1}}, "exchange.tick: unknown key"),
    ({"exchange": {"timezone": "Mars/Olympus"}}, "exchange.timezone: expected an IANA time zone"),
    ({"exchange": {"session_close": "4pm"}}, 'exchange.session_close: expected a time of day like "16:00"'),
    ({"exchange": {"liquidity": {"levels": 0}}}, "exchange.liquidity.levels: expected an integer >= 1"),
    ({"exchange": {"liquidity": {"enabled": "yes"}}}, "exchange.liquidity.enabled: expected true or false"),
    ({"exchange": {"liquidity": {"refresh_seconds": 0}}}, "exchange.liquidity.refresh_seconds: expected a number > 0"),
    ({"exchange": {"symbols": [{"symbol": "A", "tick_size": "0.01", "reference_price": "1"},
                               {"symbol": "A", "tick_size": "0.01", "reference_price": "1"}]}},
     "exchange: symbols are listed twice"),
    ({"fund_company": {"funds": [{"symbol": "F"}]}}, "fund_company.funds[0].nav: missing"),
    ({"fund_company": {"funds": [{"symbol": "F", "nav": "x"}]}}, "fund_company.funds[0].nav: expected a decimal"),
    ({"fund_company": {"funds": [{"symbol": "F", "nav": 1, "min_investment": -5}]}},
     "fund_company.funds[0].min_investment: expected a decimal number >= 0"),
    ({"fund_company": {"cutoff": "16:00", "valuation_time": "15:00"}},
     "fund_company: valuation_time must be a time not before the cut-off"),
    ({"fund_company": {"nav_csv": "missing.csv"}}, "fund_company.nav_csv: expected an existing CSV file"),
    ({"fund_company": {"nav_start": "yesterday"}}, "fund_company.nav_start: expected a date"),
    ({"fund_company": []}, "fund_company: expected a table"),
    ({"funds": {}}, "funds: unknown key"),
]


@pytest.mark.parametrize(("data", "message"), BAD, ids=[m for _, m in BAD])
def test_mistakes_name_file_key_and_expectation(data: dict[str, Any], message: str) -> None:
    with pytest.raises(VenueConfigError) as info:
        venue_config_from_mapping(data, source="v.toml")
    assert str(info.value).startswith("v.toml: ")
    assert message in str(info.value)


def test_file_level_errors(tmp_path: Path) -> None:
    with pytest.raises(VenueConfigError, match="no such file"):
        load_venue_config(tmp_path / "nope.toml")
    p = tmp_path / "broken.toml"
    p.write_text("[exchange\n")
    with pytest.raises(VenueConfigError, match=f"{p}: not valid TOML"):
        load_venue_config(p)


def test_a_csv_that_lacks_a_fund_is_a_config_error(tmp_path: Path) -> None:
    from venues.fund import FundCompany
    (tmp_path / "navs.csv").write_text("date,fund,nav\n2024-02-01,OTHER,1\n")
    p = tmp_path / "v.toml"
    p.write_text(GOOD)
    with pytest.raises(VenueConfigError, match=r"no NAVs for fund\(s\) \['FND'\]"):
        FundCompany(load_venue_config(p).fund_company, FrozenClock(T0))


def test_commands_check_their_shape() -> None:
    with pytest.raises(CommandError, match="cl_ord_id"):
        SubmitOrder("o", "", "AAA", Side.BUY, D(1))
    with pytest.raises(CommandError, match="quantity"):
        SubmitOrder("o", "1", "AAA", Side.BUY, 100)  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="finite"):
        SubmitOrder("o", "1", "AAA", Side.BUY, D("NaN"))
    with pytest.raises(CommandError, match="side"):
        SubmitOrder("o", "1", "AAA", "1", D(1))  # type: ignore[arg-type]
    with pytest.raises(CommandError, match="orig_cl_ord_id"):
        CancelOrder("o", "2", "", "AAA", Side.BUY)
    cmd = SubmitOrder("o", "1", "AAA", Side.BUY, D(1))
    with pytest.raises(FrozenInstanceError):
        cmd.quantity = D(2)  # type: ignore[misc]


EVENT_CLASSES = [OrderAccepted, OrderRejected, OrderFilled, OrderCanceled, OrderReplaced, OrderExpired,
                 OrderStatusReport, CancelRejected]


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=[c.__name__ for c in EVENT_CLASSES])
def test_fast_constructor_builds_ordinary_frozen_events(cls: type) -> None:
    samples: dict[str, Any] = {
        "str": "v", "str | None": "w", "Decimal": D(1), "Decimal | None": D(2), "datetime": T0, "bool": True,
    }
    values = []
    for f in fields(cls):
        t = str(f.type)
        if t in samples:
            values.append(samples[t])
        else:  # an enum: its first member
            from fixgw import orders as enums
            values.append(next(iter(getattr(enums, t))))
    fast: Any = fast_constructor(cls)(*values)
    slow = cls(**{f.name: v for f, v in zip(fields(cls), values, strict=True)})
    assert type(fast) is cls and fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(FrozenInstanceError):
        setattr(fast, "owner", "x")  # noqa: B010 - a frozen instance refuses any store
    if issubclass(cls, ExecutionEvent):
        assert cls.exec_type.value in "048C5FI"


def test_fill_and_reject_events_check_their_invariants() -> None:
    sample = order("o", "c", "B", "1")
    base: dict[str, Any] = {
        "venue": "v", "owner": "o", "cl_ord_id": "c", "orig_cl_ord_id": None, "order_id": "1", "exec_id": "e",
        "symbol": "S", "side": Side.BUY, "order_type": sample.order_type, "time_in_force": sample.time_in_force,
        "order_qty": D(1), "cash_order_qty": None, "price": None, "ord_status": OrdStatus.FILLED,
        "cum_qty": D(1), "leaves_qty": D(0), "avg_px": D(1), "ts": T0,
    }
    with pytest.raises(ValueError, match="last_qty"):
        OrderFilled(**base, last_qty=D(0), last_px=D(1), trade_id="t", aggressor=True)
    with pytest.raises(ValueError, match="reason"):
        OrderExpired(**base, reason="")
    from fixgw.orders import OrdRejReason
    with pytest.raises(ValueError, match="reason"):
        OrderRejected(**base, reason="", reason_code=OrdRejReason.OTHER)


def test_market_maker_gives_a_lone_client_fills_and_stays_hidden() -> None:
    x, clock = make_exchange(liquidity=LiquiditySpec(seed=5, levels=3, quote_size=D(100), volatility_ticks=3.0))
    bid, ask = x.book("AAA").best_bid(), x.book("AAA").best_ask()
    assert bid is not None and ask is not None and ask - bid == 2
    events = x.submit(order("c", "m1", "B", "250", None))
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [str(f.last_qty) for f in fills] == ["100", "100", "50"]
    assert all(f.owner == "c" for f in events)
    # a passive order fills once the reference price walks through it
    ref = x.reference_price("AAA")
    assert ref is not None
    x.submit(order("c", "b1", "B", "100", str(ref - D("0.05"))))
    filled = False
    for _ in range(300):
        clock.advance(timedelta(seconds=1))
        if any(isinstance(e, OrderFilled) and e.cl_ord_id == "b1" for e in x.tick()):
            filled = True
            break
    assert filled
    assert x.next_timer() == clock.now() + timedelta(seconds=1)


def test_market_maker_is_deterministic() -> None:
    def walk() -> list[Decimal | None]:
        x, clock = make_exchange(liquidity=LiquiditySpec(seed=11))
        out = []
        for _ in range(20):
            clock.advance(2)
            x.tick()
            out.append(x.reference_price("AAA"))
        return out

    a = walk()
    assert a == walk() and len(set(a)) >= 3


def test_default_exchange_on_the_default_symbols() -> None:
    x = Exchange(clock=FrozenClock(datetime(2024, 1, 2, 15, tzinfo=UTC)))
    assert "AAPL" in x.symbols and x.tick_size("AAPL") == D("0.01")
    (ack, *fills) = x.submit(SubmitOrder("c", "1", "IBM", Side.SELL, D(10), order("c", "1", "S", "1").order_type))
    assert isinstance(ack, OrderAccepted) and fills and isinstance(fills[-1], OrderFilled)


@pytest.mark.timeout(60)
def test_bench_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    rc = bench.main(argparse.Namespace(json=True, orders=3000, seconds=20.0))
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["orders"] == 3000
    assert result["orders_per_s"] > 0 and 0 < result["p50_us"] <= result["p99_us"]
    assert bench.main(argparse.Namespace(json=False, orders=500, seconds=None)) == 0
    assert "orders/s" in capsys.readouterr().out
    assert bench.main(argparse.Namespace(json=True, orders=0, seconds=None)) == 2
    assert "--orders" in capsys.readouterr().err


def test_the_example_file_in_configs_loads() -> None:
    cfg = load_venue_config(Path(__file__).resolve().parents[2] / "configs" / "venues.example.toml")
    assert [s.symbol for s in cfg.exchange.symbols] == ["AAPL", "MSFT", "IBM", "INTC"]
    assert [f.symbol for f in cfg.fund_company.funds] == ["FSIDX", "FSTBX", "FSMMX"]
