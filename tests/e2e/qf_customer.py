"""A QuickFIX customer with the standard failover list (cfu1, then cfu2), as the session tests use it.

It sends orders, cancels and status requests through the QuickFIX engine (the C++ one from
PyPI), and reads back what the customer saw: ExecutionReports per ClOrdID, deduplicated by
ExecID as FIX tells customers to do, Logouts, sequence resets, logons.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import quickfix as fix

from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, Received
from tests.support.cluster import Cluster

FINAL = {"2", "4", "8", "C"}


def fields(raw: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for part in raw.split("|"):
        tag, _, value = part.partition("=")
        if tag.isdigit():
            out.setdefault(int(tag), value)
    return out


def now_ts() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


@dataclass(frozen=True, slots=True)
class Seen:
    """What the customer knows of one ClOrdID, from its reports deduplicated by ExecID."""

    ord_status: str            # OrdStatus of the latest report
    cum_qty: Decimal           # as the latest report says
    fill_qty: Decimal          # the sum of LastQty over distinct fill ExecIDs
    order_id: str


class QfCustomer:
    """One QuickFIX initiator session of ``client`` towards cfu1, failing over to cfu2."""

    def __init__(self, cluster: Cluster, base: Path, *, begin: str = "FIX.4.4", client: str = "CLIENT1",
                 first: str = "cfu1", then: str = "cfu2", heartbeat_s: int = 1) -> None:
        self.begin = begin
        self.qf = QuickfixInitiator(InitiatorConfig(
            host="127.0.0.1", port=cluster.ports[first], store_dir=base / "store", begin_string=begin,
            sender_comp_id=client, target_comp_id="FIXGW", heartbeat_s=heartbeat_s, reconnect_interval_s=1,
            log_dir=base / "log", failover=(("127.0.0.1", cluster.ports[then]),),
        ))
        self.sid = self.qf.session_id

    def start(self) -> None:
        self.qf.start()

    def close(self) -> None:
        self.qf.close()

    def _send(self, msg_type: str, body: list[tuple[int, str]]) -> None:
        m = fix.Message()
        m.getHeader().setField(fix.BeginString(self.begin))
        m.getHeader().setField(fix.MsgType(msg_type))
        for tag, value in body:
            m.setField(fix.StringField(tag, value))
        fix.Session.sendToTarget(m, self.sid)

    def order(self, cl: str, side: str, qty: int, price: str, symbol: str = "AAPL") -> None:
        self._send("D", [(11, cl), (21, "1"), (55, symbol), (54, side), (60, now_ts()), (38, str(qty)),
                         (40, "2"), (44, price), (59, "0")])

    def cancel(self, orig: str, cl: str, side: str, qty: int, symbol: str = "AAPL") -> None:
        self._send("F", [(41, orig), (11, cl), (55, symbol), (54, side), (38, str(qty)), (60, now_ts())])

    def status(self, cl: str, side: str, symbol: str = "AAPL") -> None:
        self._send("H", [(11, cl), (55, symbol), (54, side)])

    # ------------------------------------------------------------------ what the customer saw
    def reports(self) -> list[dict[int, str]]:
        return [fields(r.raw) for r in self.qf.app.snapshot()[0] if r.msg_type == "8"]

    def seen(self) -> dict[str, Seen]:
        """Per ClOrdID (the request's own id: cancels under theirs), deduplicated by ExecID."""
        fills: dict[str, dict[str, Decimal]] = {}
        last: dict[str, dict[int, str]] = {}
        for f in self.reports():
            cl = f.get(11, "")
            if f.get(150) == "I" or f.get(20) == "3":
                continue  # a status answer is not an event
            last[cl] = f
            if f.get(32) and Decimal(f[32]) > 0:
                fills.setdefault(cl, {})[f[17]] = Decimal(f[32])
        return {cl: Seen(f.get(39, ""), Decimal(f.get(14, "0")), sum(fills.get(cl, {}).values(), Decimal(0)),
                         f.get(37, "")) for cl, f in last.items()}

    def exec_ids_consistent(self) -> list[str]:
        """ExecIDs reported twice with different contents (a report sent again must be the same)."""
        by_id: dict[str, tuple[str, str, str, str]] = {}
        bad = []
        for f in self.reports():
            if f.get(150) == "I" or f.get(20) == "3":
                continue
            key = (f.get(150, ""), f.get(39, ""), f.get(14, ""), f.get(32, ""))
            seen = by_id.setdefault(f[17], key)
            if seen != key:
                bad.append(f[17])
        return bad

    def status_answers(self) -> dict[str, dict[int, str]]:
        return {f.get(11, ""): f for f in self.reports() if f.get(150) == "I" or (f.get(20) == "3")}

    def admin_in(self) -> list[Received]:
        return self.qf.app.snapshot()[1]

    def admin_out(self) -> list[Received]:
        return self.qf.app.snapshot()[2]

    def logouts(self) -> list[str]:
        """Logouts received or sent (the raw messages)."""
        return [r.raw for r in self.admin_in() + self.admin_out() if r.msg_type == "5"]

    def sequence_resets(self) -> list[str]:
        """Sequence resets that are not gap fills, and logons asking for a reset, either way."""
        out = [r.raw for r in self.admin_in() + self.admin_out()
               if r.msg_type == "4" and fields(r.raw).get(123) != "Y"]
        out += [r.raw for r in self.admin_in() + self.admin_out() if r.msg_type == "A" and fields(r.raw).get(141) == "Y"]
        return out

    def logons(self) -> int:
        return self.qf.app.logons
