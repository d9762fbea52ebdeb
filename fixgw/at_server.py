"""The acceptance-test server: a fixgw acceptor set up as QuickFIX's conformance scripts expect.

SenderCompID ISLD; clients TW42 (FIX.4.2) and TW44 (FIX.4.4), plus BENCH (for ``fixgw bench``)
and any CompIDs given with ``--client`` on both versions (``--any-client``: every CompID); ResetOnLogon=Y,
HeartBtInt from the client's Logon, MaxLatency 120 s, dictionary validation on, a durable
store unless ``memory_store``.

The echo application (QuickFIX's ``at`` application): every NewOrderSingle is sent back to
its sender with a new header (PossResend 97 kept), unless it is a PossResend=Y duplicate of a
ClOrdID already seen on the session since logon; SecurityDefinition (35=d) is echoed too (the
scripts' ``21_RepeatingGroupSpecifierWithValueOfZero`` expects it); every other application
message type is answered with BusinessMessageReject 380=3.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fixgw import eventloop
from fixgw.application import MessageCracker, handles
from fixgw.config import SessionID, SessionSettings, load_settings, parse_settings
from fixgw.engine import Engine
from fixgw.message import HEADER_TAGS, TRAILER_TAGS, Message

__all__ = ["EchoApplication", "at_settings", "serve"]


def at_settings(
    host: str,
    port: int,
    store_dir: Path | None,
    log_dir: Path | None = None,
    *,
    clients: Sequence[str] = ("BENCH",),
    any_client: bool = False,
) -> list[SessionSettings]:
    """ISLD acceptor sessions: TW42 (FIX.4.2), TW44 (FIX.4.4), each of ``clients`` on both
    versions, and with ``any_client`` a TargetCompID=* session per version (the scripts'
    1c_InvalidSenderCompID expects an unknown client to be disconnected, so it is off by default)."""
    lines = [
        "[DEFAULT]",
        "ConnectionType=acceptor",
        f"SocketAcceptHost={host}",
        f"SocketAcceptPort={port}",
        "SenderCompID=ISLD",
        "ResetOnLogon=Y",
        "MaxLatency=120",
        "LogoutTimeout=1",
        "UseDataDictionary=Y",
    ]
    if store_dir is not None:
        lines.append(f"FileStorePath={store_dir}")
    if log_dir is not None:
        lines.append(f"FileLogPath={log_dir}")
    pairs = [("FIX.4.2", "TW42"), ("FIX.4.4", "TW44")]
    for c in clients:
        pairs += [("FIX.4.2", c), ("FIX.4.4", c)]
    if any_client:
        pairs += [("FIX.4.2", "*"), ("FIX.4.4", "*")]
    for begin, client in dict.fromkeys(pairs):
        lines += ["[SESSION]", f"BeginString={begin}", f"TargetCompID={client}"]
    return parse_settings("\n".join(lines) + "\n", "<at-server>")


# the header and trailer, less PossResend (97), which the echo keeps
_NOT_ECHOED = (HEADER_TAGS | TRAILER_TAGS) - {97}


class EchoApplication(MessageCracker):
    """Echo NewOrderSingle (and SecurityDefinition); reject every other application type."""

    def __init__(self) -> None:
        self._seen: dict[SessionID, set[bytes]] = {}
        self.echoed = 0

    async def on_logon(self, session_id: SessionID) -> None:
        self._seen[session_id] = set()

    @handles("D")
    async def new_order_single(self, msg: Message, session_id: SessionID) -> None:
        seen = self._seen.get(session_id)
        if seen is None:
            seen = self._seen[session_id] = set()
        clordid = msg.get(11) or b""
        if msg.get(97) == b"Y" and clordid in seen:
            return  # a possible resend of an order already processed: ignore it
        seen.add(clordid)
        self._echo(msg, session_id)

    @handles("d")
    async def security_definition(self, msg: Message, session_id: SessionID) -> None:
        self._echo(msg, session_id)

    def _echo(self, msg: Message, session_id: SessionID) -> None:
        fields = [(35, msg.msg_type)]
        fields += [f for f in msg.fields if f[0] not in _NOT_ECHOED]
        self.echoed += 1
        self.send(Message(fields), session_id)


async def serve(
    host: str,
    port: int,
    *,
    store_dir: Path | None,
    config: Path | None = None,
    log_dir: Path | None = None,
    clients: Sequence[str] = ("BENCH",),
    any_client: bool = False,
    ready: asyncio.Event | None = None,
    announce: bool = True,
) -> int:
    settings: Sequence[SessionSettings]
    if config is not None:
        settings = load_settings(config)
    else:
        settings = at_settings(host, port, store_dir, log_dir, clients=clients, any_client=any_client)
    app = EchoApplication()
    engine = Engine(settings, app)
    stop = asyncio.Event()
    eventloop.stop_on_signals(stop)
    await engine.start()
    eventloop.settle_gc()
    try:
        if announce:
            where = ", ".join(f"{h}:{p}" for (h, _), p in engine.bound_ports.items())
            store = "memory" if store_dir is None and config is None else str(store_dir or config)
            print(f"fixgw at-server listening on {where} (store: {store})", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await engine.stop()
        if announce:
            commits = sum(rt.commits for rt in engine.sessions.values())
            msgs = sum(rt.committed_messages for rt in engine.sessions.values())
            print(f"fixgw at-server stopped: {app.echoed} messages echoed, {msgs} stored in "
                  f"{commits} store commits", flush=True)
    return 0


def default_store_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fixgw-at-store-"))
