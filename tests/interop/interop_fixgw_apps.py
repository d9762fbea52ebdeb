"""The fixgw side of the interop tests: settings and two small applications.

- :class:`OrderDesk` (an acceptor's application): answers every NewOrderSingle with one
  ExecutionReport, New or Fill (alternately), unless it is a PossDupFlag=Y copy of an order it
  already answered; it keeps every NewOrderSingle it received (ClOrdID, MsgSeqNum, PossDupFlag).
- :class:`OrderBlotter` (an initiator's application): keeps every ExecutionReport it receives
  (ClOrdID, MsgSeqNum, PossDupFlag) and the admin messages both ways.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from fixgw.application import Application, MessageCracker, handles
from fixgw.config import SessionID, SessionSettings, parse_settings
from fixgw.engine import Engine
from fixgw.message import Message


@dataclass(frozen=True, slots=True)
class Seen:
    """One message as the application saw it."""

    msg_type: str
    seq_num: int
    poss_dup: bool
    cl_ord_id: str | None
    gap_fill: bool = False  # a SequenceReset with GapFillFlag=Y

    @classmethod
    def of(cls, msg: Message) -> Seen:
        return cls(
            msg_type=msg.msg_type.decode(),
            seq_num=msg.get_int(34) or 0,
            poss_dup=msg.get(43) == b"Y",
            cl_ord_id=msg.get_str(11),
            gap_fill=msg.get(123) == b"Y",
        )


def acceptor_settings(
    port: int, store_dir: Path, client: str, begin_strings: tuple[str, ...] = ("FIX.4.4",), sender: str = "FIXGW"
) -> list[SessionSettings]:
    """fixgw acceptor sessions ``sender``<-``client`` on 127.0.0.1:``port``, LMDB store, validation on."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        "SocketAcceptHost=127.0.0.1",
        f"SocketAcceptPort={port}",
        f"SenderCompID={sender}",
        f"FileStorePath={store_dir}",
        "UseDataDictionary=Y",
        "ResetOnLogon=N",
        "LogoutTimeout=2",
    ]
    for b in begin_strings:
        lines += ["[SESSION]", f"BeginString={b}", f"TargetCompID={client}"]
    return parse_settings("\n".join(lines) + "\n", "<interop acceptor>")


def initiator_settings(
    port: int, store_dir: Path, sender: str, target: str = "ISLD", begin_string: str = "FIX.4.4",
    heartbeat_s: int = 30,
) -> list[SessionSettings]:
    """One fixgw initiator session to 127.0.0.1:``port``, LMDB store, reconnect every second."""
    text = "\n".join([
        "[DEFAULT]",
        "ConnectionType=initiator",
        "SocketConnectHost=127.0.0.1",
        f"SocketConnectPort={port}",
        f"HeartBtInt={heartbeat_s}",
        "ReconnectInterval=1",
        "MaxReconnectInterval=1",
        f"FileStorePath={store_dir}",
        "UseDataDictionary=Y",
        "ResetOnLogon=N",
        "LogoutTimeout=2",
        "[SESSION]",
        f"BeginString={begin_string}",
        f"SenderCompID={sender}",
        f"TargetCompID={target}",
    ]) + "\n"
    return parse_settings(text, "<interop initiator>")


def execution_report(order: Message, begin_string: str, exec_no: int, fill: bool) -> Message:
    """An ExecutionReport for ``order``: New, or a complete Fill at the limit price."""
    qty = order.get(38) or b"0"
    px = order.get(44) or b"0"
    fields: list[tuple[int, object]] = [
        (37, f"O{exec_no}"), (17, f"X{exec_no}"), (11, order[11]),
    ]
    if begin_string == "FIX.4.2":
        fields.append((20, "0"))  # ExecTransType: New
    if fill:
        fields += [(150, "F" if begin_string == "FIX.4.4" else "2"), (39, "2"),
                   (32, qty), (31, px), (151, "0"), (14, qty), (6, px)]
    else:
        fields += [(150, "0"), (39, "0"), (151, qty), (14, "0"), (6, "0")]
    fields += [(55, order.get(55) or b"?"), (54, order.get(54) or b"1"), (38, qty)]
    return Message.new("8", fields)


class OrderDesk(MessageCracker):
    """Acceptor application: an ExecutionReport for every new NewOrderSingle."""

    def __init__(self) -> None:
        self.orders: list[Seen] = []
        self.answered: set[str] = set()
        self.logons = 0
        self.logouts = 0
        self._exec_no = itertools.count(1)

    async def on_logon(self, session_id: SessionID) -> None:
        self.logons += 1

    async def on_logout(self, session_id: SessionID) -> None:
        self.logouts += 1

    @handles("D")
    async def new_order_single(self, msg: Message, session_id: SessionID) -> None:
        seen = Seen.of(msg)
        self.orders.append(seen)
        cl = seen.cl_ord_id or ""
        if seen.poss_dup and cl in self.answered:
            return  # a resent copy of an order already answered
        self.answered.add(cl)
        n = next(self._exec_no)
        self.send(execution_report(msg, session_id.begin_string, n, fill=n % 2 == 0), session_id)


class OrderBlotter(Application):
    """Initiator application: records ExecutionReports and admin traffic."""

    def __init__(self) -> None:
        self.reports: list[Seen] = []
        self.admin_in: list[Seen] = []
        self.admin_out: list[str] = []
        self.logons = 0
        self.logouts = 0

    async def on_logon(self, session_id: SessionID) -> None:
        self.logons += 1

    async def on_logout(self, session_id: SessionID) -> None:
        self.logouts += 1

    def to_admin(self, message: Message, session_id: SessionID) -> None:
        self.admin_out.append(message.msg_type.decode())

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        self.admin_in.append(Seen.of(message))

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.reports.append(Seen.of(message))

    def answered(self) -> set[str]:
        return {r.cl_ord_id for r in self.reports if r.msg_type == "8" and r.cl_ord_id is not None}


def new_order_single(cl_ord_id: str, qty: int = 100, price: str = "10.25") -> Message:
    """A limit NewOrderSingle valid in FIX.4.2 and FIX.4.4 (the session adds the header)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]
    return Message.new("D", [
        (11, cl_ord_id), (21, "1"), (55, "IBM"), (54, "1"), (60, now),
        (38, str(qty)), (40, "2"), (44, price),
    ])


async def send_orders(engine: Engine, sid: SessionID, prefix: str, n: int) -> list[str]:
    """Send ``n`` NewOrderSingle (ClOrdIDs ``<prefix><number>``) and wait until they are stored and written."""
    ids = [f"{prefix}{i:06d}" for i in range(n)]
    for cl in ids:
        engine.send_to_target(new_order_single(cl), sid)
    await engine.session(sid).flushed()
    return ids
