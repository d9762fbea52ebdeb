"""The street utility's cancel/replace requests by venue ClOrdID: a bounded cache of its log.
A request pushed out of the cache is read back from the log, so a replaced order's later
reports still carry the replace's ClOrdIDs however long it rests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from replication.node import ReplicationNode
from replication.record import RecordType, Role
from utilities import street as street_mod
from utilities.liveness import Liveness
from utilities.street import StreetUtility


async def test_requests_beyond_the_cache_are_read_back_from_the_log(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(street_mod, "REQUEST_LIMIT", 2)
    async with ReplicationNode(node_id="ssu1", role=Role.STREET, cluster="t", data_dir=tmp_path, mqtt=False) as node:
        for i, kind in enumerate((RecordType.REPLACE_SENT, RecordType.CANCEL_SENT, RecordType.REPLACE_SENT)):
            await node.append(type=kind, txn="cfu1-0.1", status="E", account="ACC1", symbol="AAPL", side="1",
                              order_qty=Decimal(100 + i), cl_ord_id=f"C{i + 2}", orig_cl_ord_id=f"C{i + 1}",
                              extra={"street": "ssu1", "venue_cl_ord_id": f"cfu1-0.1~{i}"})
        street = StreetUtility(node=node, node_name="ssu1", venues={}, peers=(), liveness=Liveness(3.0))
        street.load()
        assert list(street.requests) == ["cfu1-0.1~1", "cfu1-0.1~2"]   # the oldest went first
        oldest = street._request_of("cfu1-0.1~0")
        assert oldest is not None and oldest.type is RecordType.REPLACE_SENT
        assert (oldest.cl_ord_id, oldest.orig_cl_ord_id, oldest.order_qty) == ("C2", "C1", Decimal(100))
        assert len(street.requests) == 2 and "cfu1-0.1~0" in street.requests   # cached again, still bounded
        assert street._request_of("cfu1-0.1") is None        # the order's own id names no request
        assert street._request_of("cfu1-0.1~9") is None      # a request this log never held
