"""Positions and balances of one account as this node holds them: what a customer's
RequestForPositions (AN) and CollateralInquiry (BB) are answered from.

Why a view over :class:`utilities.books.Books` and not a fold of its own: ``fixgw firm books``
prints the books folded by :mod:`utilities.books`; a customer asking a customer utility must
see the same numbers for the same records, so this module only picks one account's records
and reads the books' answers (positions traded / settled / opening, cash traded / settled,
buying power). Like the books, the result depends only on the SET of records (any order,
duplicates), tested with hypothesis in ``tests/utilities/test_positions.py``.

All the node's records are folded, not only the account's: the books price an open market
buy order (reserved cash, hence buying power) at the symbol's last trade of ANY account, so a
fold of the account's records alone could disagree with ``fixgw firm books``. The settlement
price reported for a symbol is its last trade price (any account), else the customer
utility's reference price, else zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from replication.record import Record
from utilities.books import Books

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionLine:
    """One instrument of an account: quantities (negative = short) and a settlement price."""

    symbol: str
    opening: Decimal      # start of day (the firm's ACCOUNT record)
    traded: Decimal       # opening + every trade (FIX PosType FIN)
    settled: Decimal      # opening + settled trades
    price: Decimal        # last trade price of the symbol, else the reference price, else 0

    @property
    def long_qty(self) -> Decimal:
        return self.traded if self.traded > 0 else _ZERO

    @property
    def short_qty(self) -> Decimal:
        return -self.traded if self.traded < 0 else _ZERO

    @property
    def market_value(self) -> Decimal:
        return self.traded * self.price


@dataclass(frozen=True, slots=True)
class Balance:
    """An account's cash: opening, traded (after every executed trade), settled, and buying power."""

    account: str
    opening: Decimal
    cash: Decimal
    settled: Decimal
    reserved: Decimal
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    account: str
    positions: tuple[PositionLine, ...]    # by symbol; instruments with a zero position and no opening are left out
    balance: Balance


def last_prices(books: Books) -> dict[str, Decimal]:
    """Each symbol's last trade price in ``books`` (trades are in clock order)."""
    out: dict[str, Decimal] = {}
    for t in books.trades():
        if t.price is not None:
            out[t.symbol] = t.price
    return out


def account_view(books: Books, account: str, *,
                 reference_prices: Mapping[str, Decimal] | None = None) -> AccountView:
    """Positions and balance of ``account`` as ``books`` hold them."""
    prices = {**dict(reference_prices or {}), **last_prices(books)}
    lines = tuple(
        PositionLine(symbol=p.symbol, opening=p.opening, traded=p.traded, settled=p.settled,
                     price=prices.get(p.symbol, _ZERO))
        for p in books.positions(account)
        if p.traded != 0 or p.opening != 0 or p.settled != 0
    )
    c = books.cash(account)
    balance = Balance(account=account, opening=c.opening, cash=c.traded, settled=c.settled,
                      reserved=books.reserved(account), buying_power=books.buying_power(account))
    return AccountView(account=account, positions=lines, balance=balance)


def account_view_of(records: Iterable[Record], account: str, *,
                    reference_prices: Mapping[str, Decimal] | None = None) -> AccountView:
    """Positions and balance of ``account`` from ``records`` (any order, duplicates allowed),
    folded exactly as ``fixgw firm books`` folds them (no reference prices into the books, so
    buying power agrees; ``reference_prices`` only price a symbol nobody traded yet)."""
    return account_view(Books.from_records(records), account, reference_prices=reference_prices)
