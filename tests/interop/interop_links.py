"""A QuickFIX acceptor (our echo process) behind a relay that the test can hold or cut, and a
fixgw initiator connected through it: the set-up of the fixgw-to-QuickFIX interop tests."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fixgw.config import SessionID
from fixgw.engine import Engine
from tests.interop.interop_fixgw_apps import OrderBlotter, initiator_settings
from tests.interop.interop_proxy import CuttableProxy
from tests.interop.quickfix_echo import QuickfixProcess
from tests.support.broker import free_port


def strictly_increasing(xs: list[int]) -> bool:
    return all(a < b for a, b in itertools.pairwise(xs))


@dataclass(frozen=True, slots=True)
class QuickfixAcceptorLink:
    qf: QuickfixProcess
    proxy: CuttableProxy
    engine: Engine          # not started: the test starts it
    blotter: OrderBlotter
    sid: SessionID
    events: Path            # what QuickFIX received, as JSON lines (quickfix_echo.read_events)


@contextlib.asynccontextmanager
async def quickfix_acceptor_link(tmp_path: Path, me: str, heartbeat_s: int = 30) -> AsyncIterator[QuickfixAcceptorLink]:
    """QuickFIX started, the relay listening, the fixgw engine built; on the way out the engine
    stopped (logging out), the relay closed and QuickFIX killed, whatever the test did to them."""
    qf_port = free_port()
    events = tmp_path / "qf-events.jsonl"
    qf = QuickfixProcess(qf_port, tmp_path / "qf-store", me, events=events)
    qf.start()
    proxy = CuttableProxy(qf_port)
    try:
        await proxy.start()
        engine = Engine(initiator_settings(proxy.port, tmp_path / "fixgw-lmdb", me, heartbeat_s=heartbeat_s),
                        blotter := OrderBlotter())
        try:
            yield QuickfixAcceptorLink(qf, proxy, engine, blotter, SessionID("FIX.4.4", me, "ISLD"), events)
        finally:
            await engine.stop()
    finally:
        await proxy.close()
        qf.kill()
