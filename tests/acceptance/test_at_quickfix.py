"""QuickFIX's session acceptance scripts (fix42: 58, fix44: 59) against a real ``fixgw at-server``.

The scripts of one FIX version share a session (ISLD<->TW42 / TW44), so they run one after the
other against one server process. The four scripts that wait on heart-beat timers (4a: ~12 s,
6: ~34 s) run from the start in background threads against two more server processes, so the
whole module takes about as long as the slowest script.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.at_script import load_patterns, run_script
from tests.support.at_process import AtServerProcess
from tests.support.shared import at_root

DEFS = at_root() / "definitions"
SLOW = ("4a_NoDataSentDuringHeartBtInt.def", "6_SendTestRequest.def")
SCRIPTS = sorted(DEFS.glob("server/fix4[24]/*.def"))
FAST = [p for p in SCRIPTS if p.name not in SLOW]
SLOW_SCRIPTS = [p for p in SCRIPTS if p.name in SLOW]
PATTERNS = load_patterns(DEFS / "fields.fmt") if DEFS.is_dir() else {}


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


def test_all_scripts_are_here() -> None:
    # the count: 58 scripts for FIX 4.2, 59 for FIX 4.4
    assert len([p for p in SCRIPTS if p.parent.name == "fix42"]) == 58
    assert len([p for p in SCRIPTS if p.parent.name == "fix44"]) == 59


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    base = tmp_path_factory.mktemp("at")
    main = AtServerProcess(base / "main-store").start()
    extra = [AtServerProcess(base / f"slow{i}-store").start() for i in range(2)]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(SLOW_SCRIPTS))
    futures: dict[Path, concurrent.futures.Future[int]] = {}
    # one FIX.4.2 and one FIX.4.4 script per extra server: different sessions, no interference
    for i, name in enumerate(SLOW):
        for p in SLOW_SCRIPTS:
            if p.name == name:
                futures[p] = pool.submit(run_script, p, "127.0.0.1", extra[i].port, PATTERNS)
    try:
        yield {"main": main, "slow": futures}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for s in (main, *extra):
            s.stop()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("script", FAST, ids=_id)
def test_script(script: Path, servers: dict[str, object]) -> None:
    main = servers["main"]
    assert isinstance(main, AtServerProcess)
    steps = run_script(script, "127.0.0.1", main.port, PATTERNS)
    assert steps > 0
    # let the server see our close before the next script logs on to the same session
    time.sleep(0.02)
    assert main.alive(), main.output().decode(errors="replace")[-2000:]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("script", SLOW_SCRIPTS, ids=_id)
def test_timer_script(script: Path, servers: dict[str, object]) -> None:
    futures = servers["slow"]
    assert isinstance(futures, dict)
    steps = futures[script].result(timeout=110)
    assert steps > 0
