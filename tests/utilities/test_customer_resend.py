"""What a customer utility resends on its customer's ResendRequest (``CustomerUtility.to_app``),
on a real record log (LMDB, no broker). The engine's gap fill on DoNotSend is tested over TCP in
tests/fixgw/test_fix_engine.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixgw.application import DoNotSend
from fixgw.message import Message
from tests.utilities.test_customer_in_flight import S1, start
from utilities.in_flight import InFlightLimits


async def test_market_data_is_gap_filled_on_a_resend_and_reports_are_resent(tmp_path: Path) -> None:
    """to_app on the customer's ResendRequest: a W or X (stale quotes) raises DoNotSend, so the
    engine gap-fills it; an ExecutionReport, or a refresh sent the first time, goes out."""
    node, app, _ = await start(tmp_path, InFlightLimits(10, 10, "pause"))
    try:
        def msg(mt: str, possdup: bool) -> Message:
            m = Message.new(mt, [(262, "R1")] if mt in ("W", "X") else [(11, "C1"), (150, "0"), (39, "0")])
            if possdup:
                m.set(43, "Y")
            return m

        for mt in ("W", "X"):
            app.to_app(msg(mt, False), S1)               # the first delivery goes
            with pytest.raises(DoNotSend):
                app.to_app(msg(mt, True), S1)
        app.to_app(msg("8", True), S1)                   # an ExecutionReport is resent
        assert app.counters["md_not_resent"] == 2
    finally:
        await node.close()
