"""A session over its message-rate limit (``max_messages_per_s`` of its ``[[customers]]`` entry)
gets the protocol's reject, ExecutionReport Rejected for an order and BusinessMessageReject for
anything else, with the text "throttled: ...", while another session trades normally; and once
the second has passed it trades again (a rate, not a ban). Issue 19 item 3."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from fixgw.message import Message
from tests.support.cluster import Cluster
from tests.support.fixclient import FixClient

pytestmark = pytest.mark.timeout(120)

TEXT = "throttled: more than 5 messages/s on this session"   # SLOW1: max_messages_per_s = 5


def test_session_over_its_rate_limit_is_refused_while_another_trades(cluster: Cluster) -> None:
    asyncio.run(_throttle(cluster))


async def _seen(c: FixClient, pred: Callable[[Message], bool], count: int = 1, timeout: float = 20.0) -> list[Message]:
    """Every message received so far that matches ``pred``, once there are ``count`` (bounded wait)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = [m for m in c.app.all if pred(m)]
        if len(got) >= count:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{len(got)} of {count} messages")
        await asyncio.sleep(0.05)


async def _first_answers(c: FixClient, cls: list[str], timeout: float = 20.0) -> dict[str, Message]:
    """The first ExecutionReport of each ClOrdID, once each has one (bounded wait)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        out: dict[str, Message] = {}
        for m in c.app.all:
            if m.msg_type == b"8" and (cl := m.get_str(11) or "") in cls:
                out.setdefault(cl, m)
        if len(out) == len(set(cls)):
            return out
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"answers for {len(out)} of {len(cls)} orders")
        await asyncio.sleep(0.05)


async def _throttle(cl: Cluster) -> None:
    async with FixClient(cl.ports["cfu1"], "SLOW1", "FIXGW") as slow, \
            FixClient(cl.ports["cfu2"], "CLIENT2", "FIXGW") as other:
        # SLOW1 sends 20 resting orders and 10 status requests at once: 30 messages, 5 allowed a second
        burst = [slow.new_order(symbol="IBM", side="1", qty="1", price="1.00", account="SLOWACC") for _ in range(20)]
        for _ in range(10):
            slow.status(burst[0], symbol="IBM", side="1")
        # meanwhile CLIENT2, with no limit, sends 10 at once and one that fills
        fast = [other.new_order(symbol="IBM", side="1", qty="1", price="1.00", account="ACC2") for _ in range(10)]
        fill = other.new_order(symbol="IBM", side="1", qty="1", price="1000.00", account="ACC2")

        first = await _first_answers(slow, burst)
        refused = [c for c, m in first.items() if m.get_str(150) == "8"]
        accepted = [c for c, m in first.items() if m.get_str(150) == "A"]
        assert len(refused) + len(accepted) == 20, {c: m.get_str(150) for c, m in first.items()}
        # a full bucket (5) plus what refills while the burst is read: a few, never most
        assert 1 <= len(accepted) <= 7 and len(refused) >= 13, (len(accepted), len(refused))
        for c in refused:
            m = first[c]
            assert m.get_str(39) == "8" and m.get_str(58) == TEXT and m.get_str(103) == "99", m
        # the status requests over the limit: BusinessMessageReject, reason Other, naming the MsgType
        bmr = (await _seen(slow, lambda m: m.msg_type == b"j"))[0]
        assert bmr.get_str(372) == "H" and bmr.get_str(380) == "0" and bmr.get_str(58) == TEXT, bmr

        # the other session traded normally: every order acknowledged, none throttled, one filled
        got = await _first_answers(other, fast + [fill])
        assert all(m.get_str(150) == "A" for m in got.values()), {c: m.get_str(150) for c, m in got.items()}
        done = (await _seen(other, lambda m: m.msg_type == b"8" and m.get_str(11) == fill and m.get_str(39) == "2"))[0]
        assert done.get_str(150) == "F"
        assert not [m for m in other.app.all if "throttled" in (m.get_str(58) or "")]

        # a rate, not a ban: after a quiet second SLOW1 is accepted again
        await asyncio.sleep(1.5)
        again = slow.new_order(symbol="IBM", side="1", qty="1", price="1.00", account="SLOWACC")
        m = (await _first_answers(slow, [again]))[again]
        assert m.get_str(150) == "A", m
        # leave no open orders behind in the shared cluster
        for c in [*accepted, again]:
            slow.cancel(c, symbol="IBM", side="1", qty="1")
            await asyncio.sleep(0.25)   # within SLOW1's 5 messages/s
        for c in fast:
            other.cancel(c, symbol="IBM", side="1", qty="1")
