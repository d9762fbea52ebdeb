"""The dashboard reads the firm's log only while somebody looks (utilities/dashboard.py).

A real LMDB firm log with one filled order, the real Starlette app under uvicorn on a loopback
port: with nobody connected the refresher takes snapshots of the nodes but leaves the log
unread; ``/api/state`` reads it before answering (the caller sees the order), and a page
connected to ``/events`` keeps it read.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn

from replication.codec import encode_record
from replication.log import RecordLog
from replication.record import RecordType, Role
from tests.support.broker import free_port
from tests.utilities.support_orderrecs import fill, rec
from utilities.dashboard import DashboardSource, create_app


def _firm_log(path: Path) -> str:
    # explicit seqs from 1: the dashboard reads each origin up to its contiguous high-water mark
    order = rec(RecordType.ORDER, 0, txn="cfu1-0.1", seq=1)
    street = [rec(RecordType.SENT, 1, txn="cfu1-0.1", seq=1), fill(2, 100, "10.00", "E1", txn="cfu1-0.1", seq=2)]
    with RecordLog(path, node_id="firm", role=Role.FIRM, sync=False) as log, log.write() as b:
        b.insert(Role.CUSTOMER, [(order, encode_record(order))])
        b.insert(Role.STREET, [(r, encode_record(r)) for r in street])
    return order.txn


class CountingSource(DashboardSource):
    def __init__(self, firm_log: Path) -> None:
        super().__init__(lambda: {"cluster": "t", "nodes": []}, firm_log)
        self.refreshes = 0
        self.with_books = 0

    def refresh(self, *, books: bool = True) -> dict[str, Any]:
        self.refreshes += 1
        self.with_books += books
        return super().refresh(books=books)


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


async def _first_event(port: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    while True:
        line = await asyncio.wait_for(reader.readline(), 10)
        assert line, "the event stream closed before its first event"
        if line.startswith(b"data: "):
            writer.close()
            data: dict[str, Any] = json.loads(line[6:])
            return data


async def _until(check: Any, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"{what} not seen within {timeout}s"
        await asyncio.sleep(0.05)


def test_the_firm_log_is_read_only_while_somebody_looks(tmp_path: Path) -> None:
    txn = _firm_log(tmp_path / "firm")
    source = CountingSource(tmp_path / "firm")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(source, interval=0.05), host="127.0.0.1", port=port,
                                           log_level="warning", loop="asyncio", lifespan="on"))

    async def scenario() -> None:
        task = asyncio.create_task(server.serve())
        try:
            await _until(lambda: source.refreshes >= 5, "five unwatched refreshes")
            assert source.with_books == 0
            assert source.snapshot["orders"] == []  # the log holds an order nobody asked for

            state = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/api/state")
            assert [o["txn"] for o in state["orders"]] == [txn]
            assert state["orders"][0]["ord_status"] == "2"

            event = await _first_event(port)
            assert [o["txn"] for o in event["orders"]] == [txn]
            before = source.with_books
            await _until(lambda: source.with_books > before + 2, "refreshes with the books while watched")
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 10)

    asyncio.run(scenario())
