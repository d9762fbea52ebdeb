"""The engine's shortcuts decide exactly as the general path: Session.accept_usual against
Session._on_session_message on random streams, the merge of staged commits, and a store that
fails closes the connection instead of hanging it."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixgw.application import Application, MessageCracker, handles
from fixgw.config import SessionID, parse_settings
from fixgw.dictionary import DataDictionary
from fixgw.engine import Engine, _merge
from fixgw.message import Message, encode, parse_fields
from fixgw.session import Batch, Deliver, Session, SessionConfig, utc_timestamp
from fixgw.session_state import State
from fixgw.store import LmdbStore
from fixgw.validation import validate
from tests.support.broker import free_port

T0 = 1_700_000_000.0
DD = DataDictionary.builtin("FIX.4.4")


def _session(supports: bool) -> Session:
    s = Session(
        SessionConfig("FIX.4.4", "SRV", "CLI"),
        validator=functools.partial(validate, DD),
        supports=(lambda mt: mt == b"D") if supports else None,
        is_app_type=lambda mt: mt not in (b"0", b"1", b"2", b"3", b"4", b"5", b"A"),
    )
    s.connected(T0)
    logon = _msg(b"A", 1, [(98, b"0"), (108, b"30")])
    s.on_message(logon, T0)
    s.logon_accepted(T0)
    assert s.state is State.LOGGED_ON
    return s


def _msg(mt: bytes, seq: int, body: list[tuple[int, bytes]], *, sender: bytes = b"CLI",
         target: bytes = b"SRV", st: float = T0, possdup: bool = False, begin: bytes = b"FIX.4.4",
         orig: float | None = None) -> Message:
    header = [(35, mt), (49, sender), (56, target), (34, b"%d" % seq), (52, utc_timestamp(st))]
    if possdup:
        header.append((43, b"Y"))
        if orig is not None:
            header.append((122, utc_timestamp(orig)))
    raw = encode(begin, header, body)
    fields = parse_fields(raw)
    assert fields is not None
    m = Message(fields, raw)
    m.validated = validate(DD, fields) is None  # as a learned shape would have marked it
    return m


ORDER = [(11, b"O1"), (21, b"1"), (55, b"IBM"), (54, b"1"), (60, b"20240101-00:00:00"),
         (38, b"100"), (40, b"1")]

_one = st.fixed_dictionaries({
    "mt": st.sampled_from([b"D", b"D", b"D", b"F", b"0"]),
    "seq": st.sampled_from([0, 0, 0, 1, -1, 5]),  # offset from the expected one
    "sender": st.sampled_from([b"CLI", b"CLI", b"XX"]),
    "target": st.sampled_from([b"SRV", b"SRV", b"YY"]),
    "st": st.sampled_from([0.0, 0.0, 119.0, -121.0, 500.0]),
    "possdup": st.booleans(),
    "orig": st.sampled_from([None, -1.0, 1.0]),
    "begin": st.sampled_from([b"FIX.4.4", b"FIX.4.4", b"FIX.4.2"]),
    "side": st.sampled_from([b"1", b"1", b"Z"]),
})


def _state(s: Session) -> tuple[Any, ...]:
    return (s.state, s.next_target, s.next_sender, s.last_received, s.test_requests, s._dirty,
            s._resend_range, sorted(s._queue), [o if isinstance(o, bytes) else ("close", o.reason)
                                                 for o in s.outbox])


def _acts(actions: list[Any]) -> list[tuple[str, Any]]:
    return [(type(a).__name__, a.message.fields if isinstance(a, Deliver) else None) for a in actions]


@settings(max_examples=150, deadline=None)
@given(stream=st.lists(_one, min_size=1, max_size=12), supports=st.booleans())
def test_accept_usual_decides_as_the_general_path(stream: list[dict[str, Any]], supports: bool) -> None:
    fast, general = _session(supports), _session(supports)
    now = T0
    for d in stream:
        now += 0.25
        seq = fast.next_target + d["seq"]
        if seq < 1:
            continue
        body = [(f[0], d["side"] if f[0] == 54 else f[1]) for f in ORDER] if d["mt"] == b"D" else (
            [(41, b"O1"), (11, b"O2"), (55, b"IBM"), (54, b"1"), (60, b"20240101-00:00:00")]
            if d["mt"] == b"F" else [])
        kw = {"sender": d["sender"], "target": d["target"], "st": now + d["st"],
              "possdup": d["possdup"], "begin": d["begin"],
              "orig": None if d["orig"] is None else now + d["orig"]}
        a = fast.on_message(_msg(d["mt"], seq, body, **kw), now)
        if general.state is State.LOGGED_ON:
            b = general._on_session_message(_msg(d["mt"], seq, body, **kw), now, "")
        else:
            b = general.on_message(_msg(d["mt"], seq, body, **kw), now)
        assert _acts(a) == _acts(b)
        assert _state(fast) == _state(general)


def test_merge_of_staged_batches() -> None:
    b1 = Batch(False, [(2, b"a")], 3, 2)
    b2 = Batch(False, [(3, b"b")], 4, 3)
    assert _merge([b1]) is b1
    m = _merge([b1, b2])
    assert (m.reset, m.messages, m.next_sender_seq, m.next_target_seq) == (False, [(2, b"a"), (3, b"b")], 4, 3)
    # a reset wipes what was staged before it
    b3 = Batch(True, [(1, b"c")], 2, 2)
    m = _merge([b1, b3, b2])
    assert (m.reset, m.messages, m.next_sender_seq) == (True, [(1, b"c"), (3, b"b")], 4)


class _FailingStore(LmdbStore):
    """An LMDB store whose commits fail after a few (a full disk, say)."""

    fail_after = 1

    def commit_batch(self, messages: Any, next_sender_seq: Any, next_target_seq: Any) -> None:
        type(self).fail_after -= 1
        if type(self).fail_after < 0:
            raise OSError("disk full")
        super().commit_batch(messages, next_sender_seq, next_target_seq)


class _Echo(MessageCracker):
    @handles("D")
    async def order(self, msg: Message, session_id: SessionID) -> None:
        self.send(Message([(35, b"D"), *[f for f in msg.fields if f[0] in (11, 21, 55, 54, 60, 38, 40)]]),
                  session_id)


class _Client(Application):
    def __init__(self) -> None:
        self.got = 0

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        self.got += 1


@pytest.mark.timeout(30)
async def test_a_failing_store_closes_the_connection(tmp_path: Path) -> None:
    port = free_port()
    acc = parse_settings(
        f"[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\nSocketAcceptPort={port}\n"
        "SenderCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\n[SESSION]\nTargetCompID=CLIENT\n", "<t>")
    ini = parse_settings(
        f"[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n"
        "SenderCompID=CLIENT\nTargetCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\n"
        "ReconnectInterval=30\n[SESSION]\n", "<t>")
    _FailingStore.fail_after = 1  # the logon's commit works, the orders' fails
    client = _Client()
    venue_sid = SessionID("FIX.4.4", "VENUE", "CLIENT")
    client_sid = SessionID("FIX.4.4", "CLIENT", "VENUE")
    def store(s: Any, sid: SessionID) -> _FailingStore:
        return _FailingStore(tmp_path, sid)

    async with Engine(acc, _Echo(), store_factory=store) as ve, Engine(ini, client) as ce:
        await ce.wait_logged_on(client_sid, 5)
        await ve.wait_logged_on(venue_sid, 5)
        for i in range(20):
            ce.send_to_target(Message.new("D", [*[(t, v) for t, v in ORDER if t != 11], (11, f"C{i}")]),
                              client_sid)
        # the acceptor's commit fails: it closes the connection rather than answer unstored
        await asyncio.wait_for(ve.session(venue_sid).wait_disconnected(), 10)
        assert client.got == 0


@pytest.mark.timeout(30)
@pytest.mark.parametrize("inline", [True, False, "nosync"])
async def test_group_commit_answers_everything_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inline: bool | str
) -> None:
    """Both commit paths: in the event loop (quick disk) and in the store thread (a slow one:
    forced here), with the answers in order and every answer stored before it left; also with
    a store that does not fsync (FileStoreSync=N), which takes the same paths."""
    from fixgw import commitlane

    if inline is not True:
        monkeypatch.setattr(commitlane, "INLINE_MAX_S", -1.0)  # every commit counts as slow
        monkeypatch.setattr(commitlane, "INLINE_PAUSE", 10**9)
    port = free_port()
    acc = parse_settings(
        f"[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\nSocketAcceptPort={port}\n"
        f"SenderCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\nFileStorePath={tmp_path / 'v'}\n"
        f"FileStoreSync={'N' if inline == 'nosync' else 'Y'}\n[SESSION]\nTargetCompID=CLIENT\n", "<t>")
    ini = parse_settings(
        f"[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n"
        "SenderCompID=CLIENT\nTargetCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\n"
        "ReconnectInterval=30\n[SESSION]\n", "<t>")

    class Recorder(Application):
        def __init__(self) -> None:
            self.ids: list[bytes] = []

        async def from_app(self, message: Message, session_id: SessionID) -> None:
            self.ids.append(message[11])

    client = Recorder()
    venue_sid = SessionID("FIX.4.4", "VENUE", "CLIENT")
    client_sid = SessionID("FIX.4.4", "CLIENT", "VENUE")
    async with Engine(acc, _Echo()) as ve, Engine(ini, client) as ce:
        await ce.wait_logged_on(client_sid, 5)
        await ve.wait_logged_on(venue_sid, 5)
        n = 600
        for i in range(n):
            ce.send_to_target(Message.new("D", [*[(t, v) for t, v in ORDER if t != 11], (11, f"C{i}")]),
                              client_sid)
            if i % 50 == 0:
                await asyncio.sleep(0)
        for _ in range(200):
            if len(client.ids) == n:
                break
            await asyncio.sleep(0.05)
        assert client.ids == [b"C%d" % i for i in range(n)]
        rt = ve.session(venue_sid)
        stored = rt.store.get_range(1, 0)
        assert [m for _, m in stored if b"\x0111=C599\x01" in m]  # the last answer was stored
        assert rt.commits < n  # group commit: far fewer transactions than messages
        if inline is not True:
            assert rt._lane.done > 0
        if inline == "nosync":
            assert rt.store.syncs is False
