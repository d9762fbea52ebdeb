from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support_broker import Mosquitto  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


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
    if not SHARED.is_dir():
        raise RuntimeError(f"../shared not found at {SHARED}: the acceptance scripts live there")
    return SHARED
