"""Background tasks a node role starts and must neither lose nor let fail silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any


class TaskSet:
    """Keeps a reference to each task (asyncio only keeps weak ones) and logs its failure.

    It takes a coroutine or a future (a record node's ``append`` gives a future: a record
    appended in the background still has its failure logged)."""

    def __init__(self, name: str, log: logging.Logger) -> None:
        self.name = name
        self.log = log
        self.tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self._done)

    def _done(self, t: asyncio.Future[Any]) -> None:
        self.tasks.discard(t)
        if not t.cancelled() and t.exception() is not None:
            self.log.error("%s: %s", self.name, t.exception(), exc_info=t.exception())
