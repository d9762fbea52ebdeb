from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cluster import Cluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One whole cluster (fixgw up) shared by the tests that only trade through it."""
    c = Cluster(tmp_path_factory.mktemp("cluster"), day_seconds=2.0)
    c.start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """A cluster of the test's own, for tests that kill its processes."""
    c = Cluster(tmp_path, day_seconds=2.0)
    c.start()
    try:
        yield c
    finally:
        c.stop()
