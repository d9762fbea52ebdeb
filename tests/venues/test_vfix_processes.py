"""``fixgw venue exchange|fund`` as real processes, with QuickFIX clients using the shipped
``configs/quickfix-client.cfg``: the exchange scenario in FIX.4.4, the fund scenario
(``--day-seconds``) in FIX.4.2; the README's client program; SIGTERM; config errors; a bench
through FIX with ``fixgw bench --connect``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.venues.vfix_scenarios import exchange_scenario, fund_scenario
from tests.venues.vfix_support import PROJECT, SPEC_DIR, QuickfixClients, free_port

SHIPPED_CFG = PROJECT / "configs" / "quickfix-client.cfg"
README = PROJECT / "README.md"
NO_MARKET_MAKER = "[exchange.liquidity]\nenabled = false\n"


class VenueProcess:
    def __init__(self, kind: str, port: int, *extra: str, cwd: Path = PROJECT) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fixgw", "venue", kind, "--port", str(port), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline()  # printed once it listens

    def terminate(self, timeout: float = 15) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def venues(tmp_path: Path) -> Iterator[tuple[VenueProcess, VenueProcess]]:
    cfg = tmp_path / "venues.toml"
    cfg.write_text(NO_MARKET_MAKER)
    ex = VenueProcess("exchange", free_port(), "--config", str(cfg), "--data", str(tmp_path / "exch"))
    fund = VenueProcess("fund", free_port(), "--day-seconds", "3")
    try:
        yield ex, fund
    finally:
        ex.kill()
        fund.kill()


def client_cfg(tmp_path: Path, exch_port: int, fund_port: int, *, absolute_paths: bool = True) -> str:
    """The shipped QuickFIX config with the test's ports (and, by default, absolute paths)."""
    text = SHIPPED_CFG.read_text()
    text = text.replace("SocketConnectPort=9880", f"SocketConnectPort={exch_port}")
    text = text.replace("SocketConnectPort=9881", f"SocketConnectPort={fund_port}")
    assert text.count("SocketConnectPort=") == 2 and "=9880" not in text and "=9881" not in text
    if absolute_paths:
        text = text.replace("DataDictionary=fixgw/spec/", f"DataDictionary={SPEC_DIR}/")
        text = re.sub(r"FileStorePath=.*", f"FileStorePath={tmp_path / 'qf-store'}", text)
        text = re.sub(r"FileLogPath=.*", f"FileLogPath={tmp_path / 'qf-log'}", text)
    return text


@pytest.mark.timeout(60)
async def test_quickfix_client_trades_with_both_venue_processes(
    venues: tuple[VenueProcess, VenueProcess], tmp_path: Path
) -> None:
    ex, fund = venues
    assert re.match(rf"fixgw venue exchange XSIM listening on 127\.0\.0\.1:{ex.port} as EXCH "
                    r"\(FIX\.4\.2, FIX\.4\.4; any client CompID; store .*\)", ex.banner), ex.banner
    assert f"listening on 127.0.0.1:{fund.port} as FUND" in fund.banner and "business day = 3 s" in fund.banner
    path = tmp_path / "client.cfg"
    path.write_text(client_cfg(tmp_path, ex.port, fund.port))
    qf = QuickfixClients(path)
    qf.start()
    try:
        exch_s, fund_s = qf.sessions["EXCH"], qf.sessions["FUND"]
        for s in (exch_s, fund_s):
            deadline = asyncio.get_running_loop().time() + 10
            while not s.logged_on():
                assert asyncio.get_running_loop().time() < deadline, "QuickFIX did not log on"
                await asyncio.sleep(0.01)
        assert exch_s.begin_string == "FIX.4.4" and fund_s.begin_string == "FIX.4.2"
        await asyncio.gather(exchange_scenario(exch_s, "FIX.4.4"), fund_scenario(fund_s, "FIX.4.2", timeout=10))
    finally:
        await asyncio.to_thread(qf.stop)
    for p in (ex, fund):
        rc, out, err = p.terminate()
        assert rc == 0, err
        assert "stopped" in out, (out, err)
    # --data: LMDB stores and FIX logs of the session
    logs = sorted(x.name for x in (tmp_path / "exch" / "log").iterdir())
    assert "FIX.4.4-EXCH-MYFIRM-1.messages.log" in logs
    assert any((tmp_path / "exch" / "store").iterdir())


def readme_program() -> str:
    text = README.read_text()
    section = text.split("## Simulated venues: test your own FIX client", 1)[1]
    m = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert m is not None, "the README section has no python program"
    return m.group(1)


@pytest.mark.timeout(60)
def test_readme_program_buys_at_the_exchange(tmp_path: Path) -> None:
    """The README's QuickFIX program, run as shown (relative paths, from a project root),
    against the default exchange (market maker on): the buy is filled."""
    root = tmp_path / "root"
    (root / "configs").mkdir(parents=True)
    (root / "fixgw").mkdir()
    (root / "fixgw" / "spec").symlink_to(SPEC_DIR)
    ex = VenueProcess("exchange", free_port())
    try:
        (root / "configs" / "quickfix-client.cfg").write_text(
            client_cfg(root, ex.port, free_port(), absolute_paths=False))
        (root / "client.py").write_text(readme_program())
        run = subprocess.run([sys.executable, "client.py"], cwd=root, capture_output=True, text=True, timeout=40, check=False)
        assert run.returncode == 0, (run.stdout, run.stderr)
        assert "|35=8|" in run.stdout and "|150=F|" in run.stdout and "|39=2|" in run.stdout, run.stdout
        assert (root / "var" / "quickfix-client" / "store").is_dir()
    finally:
        rc, _, err = ex.terminate()
    assert rc == 0, err


def test_venue_cli_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[exchange]\nsession_close = \"25:00\"\n")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    cases = [
        (["exchange", "--config", str(bad)], f"{bad}: exchange.session_close"),
        (["fund", "--config", str(tmp_path / "missing.toml")], "missing.toml: no such file"),
        (["exchange", "--comp-id", "A|B"], "--comp-id"),
        (["exchange", "--port", "70000"], "--port 70000"),
        (["fund", "--day-seconds", "0"], "--day-seconds"),
    ]
    for argv, expected in cases:
        r = subprocess.run([sys.executable, "-m", "fixgw", "venue", *argv], capture_output=True, text=True,
                           timeout=30, env=env, check=False)
        assert r.returncode == 2, (argv, r.stdout, r.stderr)
        assert expected in r.stderr and "Traceback" not in r.stderr, (argv, r.stderr)


@pytest.mark.timeout(60)
def test_bench_through_fix_against_the_exchange_process() -> None:
    ex = VenueProcess("exchange", free_port())
    try:
        r = subprocess.run(
            [sys.executable, "-m", "fixgw", "bench", "--connect", f"127.0.0.1:{ex.port}", "--sender", "BENCHER",
             "--target", "EXCH", "--orders", "3000", "--inflight", "100", "--json"],
            capture_output=True, text=True, timeout=45, check=False,
        )
        assert r.returncode == 0, (r.stdout, r.stderr)
        res = json.loads(r.stdout)
        assert res["answered"] == 3000 and res["errors"] == 0 and res["orders_per_s"] > 0
    finally:
        rc, _, err = ex.terminate()
    assert rc == 0, err
