"""Session ownership on a real record log (utilities.session_owner, utilities.session_store).

A replication node without MQTT (its LMDB log is real) owns sessions; the FIX side is a small
recorder of what the owner asked it to do. Peers' confirmations come from their digests, which
a node without a broker never hears: a live peer then never confirms, which is what the
reservation rule must wait for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fixgw.config import SessionID
from fixgw.store import LmdbStore, StoreError
from replication.hlc import Hlc
from replication.node import ReplicationNode
from replication.record import Record, RecordType, Role
from utilities.liveness import Heartbeat, Liveness
from utilities.session_owner import HandoverRequest, NotReady, SessionOwner
from utilities.session_rule import SessionKey, current_owner, session_txn
from utilities.session_store import ReplicatedSessionStore

KEY = SessionKey("FIX.4.4", "CLIENT1")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Fix:
    """The FIX side as the owner sees it: what it was asked to do."""

    def __init__(self) -> None:
        self.aborted: list[tuple[SessionKey, str]] = []
        self.started: list[tuple[SessionKey, int, int]] = []
        self.numbers = (1, 1)

    def abort_session(self, key: SessionKey, reason: str) -> None:
        self.aborted.append((key, reason))

    async def log_out_session(self, key: SessionKey, text: str, timeout: float) -> tuple[int, int]:
        return self.numbers

    def start_session_at(self, key: SessionKey, next_sender: int, next_target: int) -> None:
        self.started.append((key, next_sender, next_target))
        self.numbers = (next_sender, next_target)

    def session_numbers(self, key: SessionKey) -> tuple[int, int]:
        return self.numbers


async def _publish(topic: str, payload: bytes) -> None:
    return None


def owner_on(node: ReplicationNode, clock: Clock, *, peers: tuple[str, ...] = (), block: int = 100,
             liveness: Liveness | None = None) -> tuple[SessionOwner, Fix]:
    o = SessionOwner(node=node, me=node.node_id, peers=peers, liveness=liveness or Liveness(2.0, clock),
                     dead_after_s=2.0, heartbeat_s=0.1, cluster="t", publish=_publish, block=block, monotonic=clock)
    fix = Fix()
    o.control = fix
    node.add_listener(o.on_record)
    return o, fix


def test_take_reserve_and_refuse_beyond_the_reservation(tmp_path: Path) -> None:
    asyncio.run(_take(tmp_path))


async def _take(tmp: Path) -> None:
    clock = Clock()
    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "log", mqtt=False) as node:
        o, fix = owner_on(node, clock)
        assert await o.acquire(KEY) is True                 # nobody owned it: taken over, epoch 1
        assert fix.started == [(KEY, 1, 1)] and o.owns(KEY) and KEY in o.report_again
        assert o.may_send(KEY, 100) is None                 # the first block: 1..100
        o.report_again.clear()
        why = o.may_send(KEY, 101)
        assert why is not None and "reservation" in why
        assert KEY in o.report_again                         # the refused batch's reports: again at next logon
        for _ in range(100):                                # the next block is reserved meanwhile
            await asyncio.sleep(0.01)
            if o.may_send(KEY, 101) is None:
                break
        assert o.may_send(KEY, 101) is None
        kinds = [r.extra["kind"] for r in node.log.records_for_txn(session_txn(KEY))]
        assert kinds[0] == "taken" and "reserved" in kinds
        assert await o.acquire(KEY) is False                # owned already: carry on
        assert o.owned_clients() == ("CLIENT1",)


def test_a_block_is_not_used_before_a_live_peer_holds_it(tmp_path: Path) -> None:
    asyncio.run(_peer(tmp_path))


async def _peer(tmp: Path) -> None:
    clock = Clock()
    live = Liveness(2.0, clock)
    live.saw(Heartbeat("cfu2", "customer", "ready"))
    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "log", mqtt=False) as node:
        o, fix = owner_on(node, clock, peers=("cfu1", "cfu2"), liveness=live)
        task = asyncio.create_task(o.acquire(KEY))
        await asyncio.sleep(0.2)
        assert not task.done() and not o.owns(KEY)           # cfu2's digest never says it holds the record
        clock.t += 10                                        # past the owner's patience ...
        live.saw(Heartbeat("cfu2", "customer", "ready"))     # ... with cfu2 still alive
        with pytest.raises(NotReady):
            await task
        assert fix.started == [] and not o.owns(KEY)


def test_a_higher_epoch_elsewhere_closes_the_connection(tmp_path: Path) -> None:
    asyncio.run(_lost(tmp_path))


async def _lost(tmp: Path) -> None:
    clock = Clock()
    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "log", mqtt=False) as node:
        o, fix = owner_on(node, clock)
        await o.acquire(KEY)
        theirs = Record(origin="cfu2", seq=1, txn=session_txn(KEY), type=RecordType.SESSION, status="taken",
                        hlc=Hlc(2**62, 0, "cfu2"), session="CLIENT1",
                        extra={"begin": "FIX.4.4", "kind": "taken", "epoch": 2, "upto": 300, "next_sender": 201})
        o.on_record(theirs)
        assert not o.owns(KEY) and fix.aborted and fix.aborted[0][0] == KEY
        assert o.may_send(KEY, 1) is not None
        owner = current_owner(o.facts(KEY))
        assert owner is not None and owner.node == "cfu2"
        # asked to hand over a session another utility owns now: nothing to release
        await o.on_handover_request(HandoverRequest(KEY, "cfu3", 1))
        assert not [r for r in node.log.records_for_txn(session_txn(KEY)) if r.extra.get("kind") == "released"]


def test_handover_writes_the_exact_numbers(tmp_path: Path) -> None:
    asyncio.run(_handover(tmp_path))


async def _handover(tmp: Path) -> None:
    clock = Clock()
    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "log", mqtt=False) as node:
        o, fix = owner_on(node, clock)
        await o.acquire(KEY)
        fix.numbers = (42, 17)
        await o.on_handover_request(HandoverRequest(KEY, "cfu2", 1))
        assert not o.owns(KEY) and o.counters["handed_over"] == 1
        rel = [r for r in node.log.records_for_txn(session_txn(KEY)) if r.extra.get("kind") == "released"][-1]
        assert (rel.extra["next_sender"], rel.extra["next_target"], rel.extra["epoch"]) == (42, 17, 1)
        owner = current_owner(o.facts(KEY))
        assert owner is not None and owner.released


def test_a_pause_fences_the_process_and_its_store_refuses(tmp_path: Path) -> None:
    asyncio.run(_pause(tmp_path))


async def _pause(tmp: Path) -> None:
    clock = Clock()
    async with ReplicationNode(node_id="cfu1", role=Role.CUSTOMER, cluster="t", data_dir=tmp / "log", mqtt=False) as node:
        o, fix = owner_on(node, clock)
        await o.acquire(KEY)
        local = LmdbStore(tmp / "fixstore", SessionID("FIX.4.4", "FIXGW", "CLIENT1"), sync=False)
        store = ReplicatedSessionStore(local, KEY, o)
        store.commit_batch([(1, b"first")], 2, 1)
        clock.t += 5                                          # the process stood still past dead_after_s
        with pytest.raises(StoreError, match="paused"):
            store.commit_batch([(2, b"second")], 3, 1)
        assert local.get_range(1, 0) == [(1, b"first")] and local.next_sender_seq == 2
        o.fence.fence("test")
        assert not o.owns(KEY) and fix.aborted and o.fence.fenced
        with pytest.raises(StoreError):
            store.commit_batch([(2, b"second")], 3, 1)
        store.close()
