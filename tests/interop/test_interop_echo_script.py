"""tests/interop/quickfix_echo.py, the QuickFIX echo acceptor used for the benchmark comparison.

Run as a process, as the benchmark runs it: a QuickFIX initiator logs on with the acceptance
CompIDs and with an extra ``--target``, gets every NewOrderSingle echoed back, a
BusinessMessageReject for anything else, and SIGTERM ends the process cleanly.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import quickfix as fix

from tests.interop.quickfix_initiator import InitiatorConfig, QuickfixInitiator, until
from tests.support.broker import free_port

SCRIPT = Path(__file__).with_name("quickfix_echo.py")


@pytest.fixture
def echo_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--target", "BENCH", "--store", str(tmp_path / "qf")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once it listens
        assert line.startswith(f"quickfix-echo listening on port {port}"), (line, proc.stderr and proc.stderr.read())
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("begin", "sender"), [("FIX.4.4", "TW44"), ("FIX.4.2", "TW42"), ("FIX.4.4", "BENCH")])
async def test_echo_script_echoes_orders_and_rejects_the_rest(
    echo_process: tuple[subprocess.Popen[str], int], tmp_path: Path, begin: str, sender: str
) -> None:
    proc, port = echo_process
    init = QuickfixInitiator(InitiatorConfig(
        host="127.0.0.1", port=port, store_dir=tmp_path / "init", begin_string=begin,
        sender_comp_id=sender, target_comp_id="ISLD",
    ))
    init.start()
    try:
        await init.until(init.logged_on, 10, "logon")
        ids = init.send_orders("E", 200)
        # an OrderStatusRequest: not a NewOrderSingle, so a BusinessMessageReject
        status = fix.Message()
        status.getHeader().setField(fix.BeginString(begin))
        status.getHeader().setField(fix.MsgType("H"))
        status.setField(fix.ClOrdID("E000000"))
        status.setField(fix.Symbol("IBM"))
        status.setField(fix.Side("1"))
        assert fix.Session.sendToTarget(status, init.session_id)

        def done() -> bool:
            msgs = init.app.snapshot()[0]
            return len(msgs) >= 201

        await until(done, 20, "200 echoes and a reject")
        app_in = init.app.snapshot()[0]
        echoes = [r for r in app_in if r.msg_type == "D"]
        assert [r.cl_ord_id for r in echoes] == ids  # every order echoed once, in order
        assert all(not r.poss_dup for r in echoes)
        rejects = [r for r in app_in if r.msg_type == "j"]
        assert len(rejects) == 1 and "|380=3|" in rejects[0].raw and "|372=H|" in rejects[0].raw
        # the echo is re-stamped: it comes from ISLD to us
        assert "|49=ISLD|" in echoes[0].raw and f"|56={sender}|" in echoes[0].raw
        assert await init.logout_async()
    finally:
        init.close()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "quickfix-echo stopped: echoed=200 rejected=1" in out


@pytest.mark.timeout(30)
def test_echo_script_reports_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--port", str(port)], check=False, capture_output=True, text=True, timeout=20,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert done.returncode == 2
    assert "quickfix-echo:" in done.stderr and "listening" not in done.stdout
