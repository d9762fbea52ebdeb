"""A venue fill is recorded once: recent ExecIDs from a bounded memory, older ones (which can
only come back resent, PossDupFlag=Y) from the order's records in a real LMDB log."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from replication.hlc import HybridLogicalClock
from replication.log import RecordLog
from replication.record import RecordType, Role
from utilities.liveness import Liveness
from utilities.street import StreetUtility
from utilities.street_state import RecentIds


def test_recent_ids_keep_the_last_ones_and_stay_bounded() -> None:
    ids = RecentIds(3)
    for i in range(10):
        ids.add(f"X{i}")
    assert len(ids) == 3
    assert [f"X{i}" in ids for i in range(10)] == [False] * 7 + [True] * 3
    ids.add("X8")  # already held: nothing is dropped for it
    assert "X7" in ids and len(ids) == 3
    with pytest.raises(ValueError):
        RecentIds(0)


async def test_an_old_exec_id_counts_as_recorded_only_when_resent_and_in_the_log(tmp_path: Path) -> None:
    log = RecordLog(tmp_path, node_id="ssu1", role=Role.STREET)
    try:
        with log.write(HybridLogicalClock("ssu1")) as batch:
            batch.append({"type": RecordType.FILL, "txn": "cfu1-0.1", "status": "1", "exec_id": "X1",
                          "last_qty": Decimal(10), "last_px": Decimal("10.00"), "cum_qty": Decimal(10)})
        street = StreetUtility(node=SimpleNamespace(log=log), node_name="ssu1", venues={}, peers=(),
                               liveness=Liveness(3.0))
        street.seen_exec = RecentIds(2)
        for exec_id in ("X2", "X3"):  # newer fills push X1 out of memory
            street.seen_exec.add(exec_id)
        assert "X1" not in street.seen_exec

        assert street.fill_recorded("cfu1-0.1", "X1", poss_dup=True)       # resent: the log has it
        assert not street.fill_recorded("cfu1-0.1", "X1", poss_dup=False)  # not resent: a new report
        assert not street.fill_recorded("cfu1-0.1", "X9", poss_dup=True)   # resent but never recorded
        assert not street.fill_recorded("cfu1-0.2", "X1", poss_dup=True)   # another order's fill
        assert street.fill_recorded("cfu1-0.1", "X3", poss_dup=False)      # recent: from memory
    finally:
        log.close()
