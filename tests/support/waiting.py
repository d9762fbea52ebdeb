"""Waiting for a condition in a test, bounded in time: the one way (sync and async).

Several older tests still carry a copy of their own (``until`` in tests/replication/*.py,
``wait_for`` in some e2e tests); new tests use these."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """``check()`` until it is truthy (returned), at most ``timeout`` seconds (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)


async def until(pred: Callable[[], bool], timeout: float = 15.0, what: str = "condition", every: float = 0.02) -> None:
    """The same on the event loop."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)
