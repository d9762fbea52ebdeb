"""Trading scenarios against the FIX venues, run by both a fixgw and a QuickFIX client.

The exchange must have its market maker off (the test trades with itself), IBM tick 0.01.
The fund scenario works on any clock: it waits for a valuation, then does what must happen
before the next cut-off at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

from fixgw.message import Message
from tests.venues.vfix_support import now_ts


class Client(Protocol):
    @property
    def invalid(self) -> list[str]: ...

    def send(self, msg_type: str, fields: Sequence[tuple[int, object]]) -> bool: ...

    async def expect(self, pred: Callable[[Message], bool], what: str, timeout: float = 5.0) -> Message: ...


def er(cl: str, exec_type: str | None = None, *, exec_trans: str | None = None) -> Callable[[Message], bool]:
    """An ExecutionReport for ClOrdID ``cl`` (with ExecType ``exec_type``)."""

    def pred(m: Message) -> bool:
        return (m.msg_type == b"8" and m.get_str(11) == cl
                and (exec_type is None or m.get_str(150) == exec_type)
                and (exec_trans is None or m.get_str(20) == exec_trans))

    return pred


def cxl_reject(cl: str) -> Callable[[Message], bool]:
    return lambda m: m.msg_type == b"9" and m.get_str(11) == cl


def dec(m: Message, tag: int) -> Decimal:
    v = m.get_decimal(tag)
    assert v is not None, f"no tag {tag} in {m!r}"
    return v


def new_order(cl: str, side: str, qty: str, price: str | None, symbol: str = "IBM", *,
              cash: str | None = None, tif: str | None = None, account: str | None = None) -> list[tuple[int, object]]:
    f: list[tuple[int, object]] = [(11, cl), (21, "1"), (55, symbol), (54, side), (60, now_ts())]
    if account:
        f.insert(1, (1, account))
    if qty:
        f.append((38, qty))
    if cash:
        f.append((152, cash))
    f.append((40, "2" if price is not None else "1"))
    if price is not None:
        f.append((44, price))
    if tif is not None:
        f.append((59, tif))
    return f


def cancel(cl: str, orig: str, side: str, symbol: str = "IBM", qty: str = "100") -> list[tuple[int, object]]:
    return [(41, orig), (11, cl), (55, symbol), (54, side), (60, now_ts()), (38, qty)]


def replace(cl: str, orig: str, side: str, qty: str, price: str, symbol: str = "IBM") -> list[tuple[int, object]]:
    return [(41, orig), (11, cl), (21, "1"), (55, symbol), (54, side), (60, now_ts()), (38, qty), (40, "2"),
            (44, price)]


def status(cl: str, side: str, symbol: str = "IBM", req_id: str | None = None) -> list[tuple[int, object]]:
    f: list[tuple[int, object]] = [(11, cl), (55, symbol), (54, side)]
    if req_id is not None:
        f.append((790, req_id))
    return f


def trade_type(begin: str, leaves: bool) -> str:
    """ExecType of a fill: F in 4.4; 1 (partial) / 2 (fill) in 4.2."""
    if begin == "FIX.4.4":
        return "F"
    return "1" if leaves else "2"


async def exchange_scenario(c: Client, begin: str, tag: str = "") -> None:
    """New, full fill, partial fill, replace, status, cancel, cancel rejects, unknown status,
    duplicate ClOrdID, unsupported order type: every answer checked field by field."""
    s1, b1, s2, c1, c2, r1, u1 = (f"{x}{tag}" for x in ("S1", "B1", "S2", "C1", "C2", "R1", "U1"))
    fix42 = begin == "FIX.4.2"
    # a resting sell
    c.send("D", new_order(s1, "2", "100", "180.00", account="ACC9"))
    ack = await c.expect(er(s1, "0"), "ack of the sell")
    assert ack.get_str(39) == "0" and dec(ack, 151) == 100 and dec(ack, 14) == 0 and ack.get_str(1) == "ACC9"
    assert ack.get_str(37) and ack.get_str(37) != "NONE" and ack.get_str(17)
    assert (ack.get_str(20) == "0") if fix42 else (20 not in ack)
    # a buy that trades 60 with it: the buy is filled in full, the sell in part
    c.send("D", new_order(b1, "1", "60", "180.00"))
    await c.expect(er(b1, "0"), "ack of the buy")
    full = await c.expect(er(b1, trade_type(begin, False)), "full fill of the buy")
    assert full.get_str(39) == "2" and dec(full, 32) == 60 and dec(full, 31) == 180
    assert dec(full, 14) == 60 and dec(full, 151) == 0 and dec(full, 6) == 180
    part = await c.expect(er(s1, trade_type(begin, True)), "partial fill of the sell")
    assert part.get_str(39) == "1" and dec(part, 32) == 60 and dec(part, 151) == 40 and dec(part, 14) == 60
    if not fix42:
        assert full.get_str(851) == "2" and part.get_str(851) == "1"  # taker removed, maker added
    # replace the rest: 100 -> 80 (20 left)
    c.send("G", replace(s2, s1, "2", "80", "180.00"))
    rep = await c.expect(er(s2, "5"), "replaced")
    assert rep.get_str(41) == s1 and rep.get_str(39) == "1" and dec(rep, 38) == 80 and dec(rep, 151) == 20
    assert rep.get_str(37) == ack.get_str(37)
    # status (by the new ClOrdID)
    c.send("H", status(s2, "2", req_id=None if fix42 else "Q1"))
    if fix42:
        st = await c.expect(er(s2, "1", exec_trans="3"), "status (4.2: ExecTransType 3)")
    else:
        st = await c.expect(er(s2, "I"), "status (4.4: ExecType I)")
        assert st.get_str(790) == "Q1"
    assert st.get_str(39) == "1" and dec(st, 151) == 20 and dec(st, 14) == 60
    # cancel it
    c.send("F", cancel(c1, s2, "2"))
    cxl = await c.expect(er(c1, "4"), "canceled")
    assert cxl.get_str(41) == s2 and cxl.get_str(39) == "4" and dec(cxl, 151) == 0 and dec(cxl, 14) == 60
    # too late to cancel again; a replace of an unknown order
    c.send("F", cancel(c2, s2, "2"))
    rej = await c.expect(cxl_reject(c2), "cancel reject")
    assert rej.get_str(434) == "1" and rej.get_str(102) == "0" and rej.get_str(39) == "4" and rej.get_str(41) == s2
    assert rej.get_str(58)
    c.send("G", replace(r1, "NO-SUCH", "2", "10", "180.00"))
    rej2 = await c.expect(cxl_reject(r1), "replace reject")
    assert rej2.get_str(434) == "2" and rej2.get_str(102) == "1" and rej2.get_str(39) == "8"
    assert rej2.get_str(37) == "NONE"
    # status of an order never sent: rejected, unknown order
    c.send("H", status(u1, "1"))
    unk = await c.expect(er(u1), "status of an unknown order")
    assert unk.get_str(39) == "8" and unk.get_str(103) == "5"
    assert unk.get_str(150) == ("8" if fix42 else "I")
    # a ClOrdID used before: rejected as a duplicate
    c.send("D", new_order(b1, "1", "10", "179.00"))
    dup = await c.expect(er(b1, "8"), "duplicate reject")
    assert dup.get_str(39) == "8" and dup.get_str(103) == "6"
    # a stop order: a value the venue does not support -> session Reject 373=5 on tag 40
    c.send("D", [*new_order(f"X{tag}", "1", "10", None)[:-1], (40, "3"), (99, "170.00")])
    rj = await c.expect(lambda m: m.msg_type == b"3", "session reject")
    assert rj.get_str(373) == "5" and rj.get_str(371) == "40"
    assert c.invalid == []


async def fund_scenario(c: Client, begin: str, *, timeout: float = 15.0, tag: str = "") -> None:
    """Buy by amount and by shares, filled at the valuation at the NAV; cancel before the
    cut-off; cancel reject after the valuation; status of a filled and of an unknown order."""
    a1, a2, b1, c1, c2, u1 = (f"{x}{tag}" for x in ("A1", "A2", "FB1", "FC1", "FC2", "FU1"))
    c.send("D", new_order(a1, "1", "", None, "FSIDX", cash="5000.00"))
    c.send("D", new_order(a2, "1", "100", None, "FSMMX"))
    ack1 = await c.expect(er(a1, "0"), "ack of the buy by amount")
    assert dec(ack1, 152) == Decimal(5000) and 38 not in ack1 and ack1.get_str(40) == "1"
    ack2 = await c.expect(er(a2, "0"), "ack of the buy by shares")
    assert dec(ack2, 38) == 100 and dec(ack2, 151) == 100
    # both filled at the next valuation, at that day's NAV
    fill1 = await c.expect(er(a1, trade_type(begin, False)), "valuation fill of the buy by amount", timeout)
    # right after a valuation the next cut-off is a whole business day away: do the rest now
    c.send("D", new_order(b1, "1", "50", None, "FSMMX"))
    c.send("F", cancel(c1, b1, "1", "FSMMX", "50"))
    c.send("F", cancel(c2, a1, "1", "FSIDX", "1"))
    c.send("H", status(a1, "1", "FSIDX"))
    c.send("H", status(u1, "1", "FSIDX"))
    nav = dec(fill1, 31)
    shares = (Decimal(5000) / nav).quantize(Decimal("0.001"))
    assert fill1.get_str(39) == "2" and dec(fill1, 32) == shares and dec(fill1, 14) == shares
    assert dec(fill1, 151) == 0 and dec(fill1, 6) == nav
    fill2 = await c.expect(er(a2, trade_type(begin, False)), "valuation fill of the buy by shares", timeout)
    assert fill2.get_str(39) == "2" and dec(fill2, 32) == 100 and dec(fill2, 31) == Decimal("1.00")
    await c.expect(er(b1, "0"), "ack of the order to cancel")
    cxl = await c.expect(er(c1, "4"), "canceled before the cut-off")
    assert cxl.get_str(39) == "4" and cxl.get_str(41) == b1
    rej = await c.expect(cxl_reject(c2), "cancel reject after the valuation")
    assert rej.get_str(434) == "1" and rej.get_str(102) == "0" and rej.get_str(39) == "2"
    st = await c.expect(er(a1, "2" if begin == "FIX.4.2" else "I"), "status of the filled order")
    assert st.get_str(39) == "2" and dec(st, 14) == shares and dec(st, 6) == nav
    if begin == "FIX.4.2":
        assert st.get_str(20) == "3"
    unk = await c.expect(er(u1), "status of an unknown order")
    assert unk.get_str(39) == "8" and unk.get_str(103) == "5"
    assert c.invalid == []
