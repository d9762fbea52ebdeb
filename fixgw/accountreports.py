"""The builders of the FIX 4.4 account-information answers: RequestForPositionsAck (AO),
PositionReport (AP), CollateralReport (BA) and CollateralInquiryAck (BG), one builder each.

Why every field written here is written: QuickFIX, with its data dictionary on, rejects an
AO / AP / BA / BG that lacks a field FIX44.xml marks required, so each builder writes them
all, in the dictionary's order, groups with their delimiter first:

- AO: PosMaintRptID, PosReqID, TotalNumPosReports, UnsolicitedIndicator, PosReqResult,
  PosReqStatus, Parties, Account, AccountType (+ Text on a refusal).
- AP: PosMaintRptID, PosReqID, PosReqType, SubscriptionRequestType, TotalNumPosReports,
  UnsolicitedIndicator, PosReqResult, ClearingBusinessDate, Parties, Account, AccountType,
  Symbol, Currency, SettlPrice, SettlPriceType (2 theoretical: the last trade, not an official
  close), PriorSettlPrice, PositionQty (SOD = opening, FIN = current incl. unsettled trades;
  LongQty / ShortQty), PositionAmountData (FMTM = current qty x SettlPrice).
- BA: CollRptID, CollInquiryID, CollStatus, TotNumReports, Parties, Account, AccountType,
  Currency, MarginExcess (buying power), TotalNetValue (cash after every executed trade),
  CashOutstanding (settled cash), PriceType (3 fixed amount), StartCash (opening cash),
  ClearingBusinessDate.
- BG: CollInquiryID, CollInquiryStatus, CollInquiryResult, TotNumReports, Account, Text.

FIX 4.2 has none of these messages (its sessions get a BusinessMessageReject instead).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from fixgw.message import Message

__all__ = ["collateral_inquiry_ack", "collateral_report", "position_report", "positions_ack"]

ACCOUNT_TYPE_CUSTOMER = b"1"     # AccountType 581: carried customer side
PARTY_CLIENT_ID = b"3"           # PartyRole 452
PARTY_SOURCE_PROPRIETARY = b"D"  # PartyIDSource 447
CURRENCY = b"USD"


def _dec(d: Decimal) -> bytes:
    s = format(d.normalize(), "f")
    return b"0" if s in ("-0", "") else s.encode()


def _date(d: dt.date) -> bytes:
    return d.strftime("%Y%m%d").encode()


def _parties(client: str) -> list[tuple[int, bytes]]:
    return [(453, b"1"), (448, client.encode()), (447, PARTY_SOURCE_PROPRIETARY), (452, PARTY_CLIENT_ID)]


def positions_ack(*, rpt_id: str, req_id: str, total: int, result: int, status: int, client: str,
                  account: str, text: str = "") -> Message:
    """A RequestForPositionsAck (AO): ``result`` PosReqResult (728), ``status`` PosReqStatus (729)."""
    f: list[tuple[int, bytes]] = [
        (35, b"AO"), (721, rpt_id.encode()), (710, req_id.encode()), (727, b"%d" % total),
        (325, b"N"), (728, b"%d" % result), (729, b"%d" % status), *_parties(client),
        (1, (account or "NONE").encode()), (581, ACCOUNT_TYPE_CUSTOMER),
    ]
    if text:
        f.append((58, text.encode("latin-1", "replace")))
    return Message(f)


def position_report(*, rpt_id: str, req_id: str, subscription: str, total: int, unsolicited: bool,
                    business_date: dt.date, client: str, account: str, symbol: str,
                    opening: Decimal, current: Decimal, price: Decimal) -> Message:
    """A PositionReport (AP) of one instrument: PosReqResult 0 (valid request)."""
    f: list[tuple[int, bytes]] = [
        (35, b"AP"), (721, rpt_id.encode()), (710, req_id.encode()), (724, b"0"),
        (263, subscription.encode()), (727, b"%d" % total), (325, b"Y" if unsolicited else b"N"),
        (728, b"0"), (715, _date(business_date)), *_parties(client),
        (1, account.encode()), (581, ACCOUNT_TYPE_CUSTOMER), (55, symbol.encode()), (15, CURRENCY),
        (730, _dec(price)), (731, b"2"), (734, _dec(price)),
        (702, b"2"),
        (703, b"SOD"), (704, _dec(max(opening, Decimal(0)))), (705, _dec(max(-opening, Decimal(0)))),
        (703, b"FIN"), (704, _dec(max(current, Decimal(0)))), (705, _dec(max(-current, Decimal(0)))),
        (753, b"1"), (707, b"FMTM"), (708, _dec(current * price)),
    ]
    return Message(f)


def collateral_report(*, rpt_id: str, inquiry_id: str, business_date: dt.date, client: str, account: str,
                      opening_cash: Decimal, cash: Decimal, settled_cash: Decimal,
                      buying_power: Decimal) -> Message:
    """A CollateralReport (BA) of an account's cash (see the module docstring for the fields)."""
    f: list[tuple[int, bytes]] = [
        (35, b"BA"), (908, rpt_id.encode()), (909, inquiry_id.encode()), (910, b"3"), (911, b"1"),
        *_parties(client), (1, account.encode()), (581, ACCOUNT_TYPE_CUSTOMER), (15, CURRENCY),
        (899, _dec(buying_power)), (900, _dec(cash)), (901, _dec(settled_cash)), (423, b"3"),
        (921, _dec(opening_cash)), (715, _date(business_date)),
    ]
    return Message(f)


def collateral_inquiry_ack(*, inquiry_id: str, status: int, result: int, account: str, text: str) -> Message:
    """A CollateralInquiryAck (BG): ``status`` CollInquiryStatus (945), ``result`` CollInquiryResult (946)."""
    f: list[tuple[int, bytes]] = [
        (35, b"BG"), (909, inquiry_id.encode()), (945, b"%d" % status), (946, b"%d" % result), (911, b"0"),
    ]
    if account:
        f.append((1, account.encode()))
    f.append((58, text.encode("latin-1", "replace")))
    return Message(f)
