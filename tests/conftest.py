from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import Mosquitto
from tests.support.shared import shared_root


@pytest.fixture
def mosquitto() -> Iterator[Mosquitto]:
    """A fresh mosquitto process on a free loopback port (killable and restartable)."""
    broker = Mosquitto()
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_root()
