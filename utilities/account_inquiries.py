"""A customer utility's account-information inquiries: RequestForPositions (AN) answered with
RequestForPositionsAck (AO) + PositionReports (AP), CollateralInquiry (BB) with a
CollateralReport (BA), and position subscriptions (SubscriptionRequestType 1 .. 2).

The numbers come from :mod:`utilities.positions` over every record this node holds (the
firm's read-only ACCOUNT / SETTLED records and the replicated orders and fills), so either
customer utility answers what ``fixgw firm books`` prints for the same records.

Refusals, as FIX 4.4 has them:

- an account the session may not trade (another customer's): AO with PosReqResult 3 (not
  authorized to request positions) and PosReqStatus 2 (rejected); for a CollateralInquiry a
  CollateralInquiryAck (BG) with CollInquiryStatus 4 (rejected) and CollInquiryResult 9
  (unauthorized for collateral inquiry);
- a PosReqType other than 0 (positions): AO PosReqResult 4 (request not supported), status 2;
- an account not named while the session trades several: AO PosReqResult 1 (invalid), status 2.

FIX 4.2 defines neither message: the session answers them with BusinessMessageReject 380=3
before they reach this module (see :mod:`fixgw.engine`).

Subscriptions live in this process only, per session: a logout ends them (a customer that
logs on again, perhaps at the other utility, subscribes again). A fill of a subscribed
account's order is answered once per loop turn with one AP per changed instrument
(UnsolicitedIndicator Y); nothing is folded for an answer: the positions are kept up to date as
records come (:class:`utilities.positions.AccountLedger`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from fixgw.accountreports import (
    collateral_inquiry_ack,
    collateral_report,
    position_report,
    positions_ack,
)
from fixgw.config import SessionID
from fixgw.message import Message
from fixgw.orders import (
    CollInquiryResult,
    CollInquiryStatus,
    PosReqResult,
    PosReqStatus,
    PosReqType,
    SubscriptionRequestType,
)
from replication.record import Record, RecordType
from utilities.positions import AccountLedger, AccountView, TxnRecords
from utilities.status import fold

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Subscription:
    req_id: str
    account: str


class AccountInquiries:
    def __init__(self, *, name: str, customers: Mapping[str, tuple[str, ...]],
                 records_for_txn: TxnRecords,
                 send: Callable[[SessionID, Message], None], today: Callable[[], dt.date],
                 reference_prices: Mapping[str, Decimal] | None = None) -> None:
        self.name = name
        self.customers = customers
        self.records_for_txn = records_for_txn
        self.accounts = AccountLedger()
        self.adopt(self.accounts)
        self.send = send
        self.today = today
        self.reference_prices = dict(reference_prices or {})
        self.subscriptions: dict[SessionID, dict[str, Subscription]] = {}   # session -> PosReqID -> subscription
        self._ids = itertools.count(1)
        self._changed: set[tuple[str, str]] = set()     # (account, symbol) filled since the last flush
        self._flush_scheduled = False

    def _id(self, kind: str) -> str:
        return f"{self.name}.{kind}.{next(self._ids)}"

    def index(self, r: Record) -> None:
        """Every record this node holds, at start-up and as it arrives."""
        self.accounts.add(r)

    def adopt(self, ledger: AccountLedger) -> None:
        """Answer from ``ledger`` (a start-up's), reading orders' records from this utility's log."""
        ledger.source = self.records_for_txn
        self.accounts = ledger

    def _view(self, account: str) -> AccountView:
        return self.accounts.view(account, reference_prices=self.reference_prices)

    def _account(self, msg: Message, client: str) -> tuple[str, str]:
        """(account, why it is refused or "")."""
        accounts = self.customers.get(client, ())
        account = msg.get_str(1) or (accounts[0] if len(accounts) == 1 else "")
        if not account:
            return "", "Account (1) is required: this session may use several accounts"
        if account not in accounts:
            return account, f"Session {client} may not use account {account}"
        return account, ""

    # ------------------------------------------------------------------ RequestForPositions
    def on_request_for_positions(self, msg: Message, sid: SessionID) -> None:
        client = sid.target_comp_id
        req_id = msg.get_str(710) or ""
        sub = msg.get_str(263) or SubscriptionRequestType.SNAPSHOT.value
        account, why = self._account(msg, client)

        def refuse(result: int, text: str) -> None:
            self.send(sid, positions_ack(rpt_id=self._id("pos"), req_id=req_id, total=0, result=result,
                                         status=PosReqStatus.REJECTED, client=client, account=account, text=text))

        if sub == SubscriptionRequestType.UNSUBSCRIBE:
            gone = self.subscriptions.get(sid, {}).pop(req_id, None)
            if gone is None:
                refuse(PosReqResult.INVALID_OR_UNSUPPORTED, f"No subscription {req_id}")
            else:
                self.send(sid, positions_ack(rpt_id=self._id("pos"), req_id=req_id, total=0, result=PosReqResult.VALID,
                                             status=PosReqStatus.COMPLETED, client=client, account=gone.account,
                                             text="Unsubscribed"))
            return
        if why:
            refuse(PosReqResult.NOT_AUTHORIZED if account else PosReqResult.INVALID_OR_UNSUPPORTED, why)
            return
        if msg.get_int(724) != PosReqType.POSITIONS:
            refuse(PosReqResult.NOT_SUPPORTED, "Only PosReqType 0 (positions) is supported")
            return
        if sub not in (SubscriptionRequestType.SNAPSHOT, SubscriptionRequestType.SNAPSHOT_AND_UPDATES):
            refuse(PosReqResult.INVALID_OR_UNSUPPORTED, f"Unsupported SubscriptionRequestType {sub}")
            return
        view = self._view(account)
        n = len(view.positions)
        self.send(sid, positions_ack(rpt_id=self._id("pos"), req_id=req_id, total=n,
                                     result=PosReqResult.VALID if n else PosReqResult.NO_POSITIONS,
                                     status=PosReqStatus.COMPLETED, client=client, account=account))
        if sub == SubscriptionRequestType.SNAPSHOT_AND_UPDATES:
            self.subscriptions.setdefault(sid, {})[req_id] = Subscription(req_id, account)
        day = self.today()
        for line in view.positions:
            self.send(sid, position_report(rpt_id=self._id("pos"), req_id=req_id, subscription=sub, total=n,
                                           unsolicited=False, business_date=day, client=client, account=account,
                                           symbol=line.symbol, opening=line.opening, current=line.traded,
                                           price=line.price))

    # ------------------------------------------------------------------ CollateralInquiry
    def on_collateral_inquiry(self, msg: Message, sid: SessionID) -> None:
        client = sid.target_comp_id
        inquiry_id = msg.get_str(909) or ""
        account, why = self._account(msg, client)
        if why:
            self.send(sid, collateral_inquiry_ack(inquiry_id=inquiry_id, status=CollInquiryStatus.REJECTED,
                                                  result=CollInquiryResult.UNAUTHORIZED if account else CollInquiryResult.OTHER,
                                                  account=account, text=why))
            return
        b = self._view(account).balance
        self.send(sid, collateral_report(rpt_id=self._id("coll"), inquiry_id=inquiry_id, business_date=self.today(),
                                         client=client, account=account, opening_cash=b.opening, cash=b.cash,
                                         settled_cash=b.settled, buying_power=b.buying_power))

    # ------------------------------------------------------------------ subscriptions
    def on_logout(self, sid: SessionID) -> None:
        self.subscriptions.pop(sid, None)

    def on_record(self, r: Record) -> None:
        """A fill of a subscribed account's order: its instrument's report goes out (once per loop turn)."""
        if r.type is not RecordType.FILL or not self.subscriptions:
            return
        account, symbol = r.account, r.symbol
        if not account or not symbol:
            st = fold(list(self.records_for_txn(r.txn)))
            if st is None:
                return
            account, symbol = account or st.account, symbol or st.symbol
        if not any(s.account == account for subs in self.subscriptions.values() for s in subs.values()):
            return
        self._changed.add((account, symbol))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        changed, self._changed = self._changed, set()
        day = self.today()
        views: dict[str, AccountView] = {}
        for sid, subs in list(self.subscriptions.items()):
            for s in subs.values():
                symbols = sorted(sym for acct, sym in changed if acct == s.account)
                if not symbols:
                    continue
                view = views.get(s.account)
                if view is None:
                    view = views[s.account] = self._view(s.account)
                lines = {p.symbol: p for p in view.positions}
                for sym in symbols:
                    line = lines.get(sym)
                    opening = line.opening if line else Decimal(0)
                    current = line.traded if line else Decimal(0)
                    price = line.price if line else Decimal(0)
                    self.send(sid, position_report(rpt_id=self._id("pos"), req_id=s.req_id,
                                                   subscription=SubscriptionRequestType.SNAPSHOT_AND_UPDATES.value,
                                                   total=1, unsolicited=True, business_date=day, client=sid.target_comp_id,
                                                   account=s.account, symbol=sym, opening=opening, current=current,
                                                   price=price))
