"""The session state machine without sockets, with frozen time (now is a number we move)."""

from __future__ import annotations

import functools

import pytest

from fixgw.dictionary import DataDictionary
from fixgw.message import Message, encode, parse_fields
from fixgw.session import (
    Close,
    Deliver,
    LoggedOn,
    LoggedOut,
    Session,
    SessionConfig,
    VerifyLogon,
    utc_timestamp,
)
from fixgw.session_state import TRANSITIONS, Event, State
from fixgw.validation import validate

T0 = 1_700_000_000.0
DD = DataDictionary.builtin("FIX.4.4")


class Peer:
    """The counterparty: builds its messages, and reads what the session under test sends."""

    def __init__(self, session: Session, now: float = T0) -> None:
        self.s = session
        self.now = now
        self.seq = 1
        self.sent_index = 0

    def msg(self, mt: str, body: list[tuple[int, bytes]] | None = None, *, seq: int | None = None,
            possdup: bool = False, orig: float | None = None, sender: bytes = b"CLI", begin: bytes = b"FIX.4.4",
            sending_time: float | None = None) -> Message:
        use = self.seq if seq is None else seq
        if seq is None:
            self.seq += 1
        ts = utc_timestamp(self.now if sending_time is None else sending_time)
        header = [(35, mt.encode()), (49, sender), (56, b"SRV"), (34, b"%d" % use), (52, ts)]
        if possdup:
            header += [(43, b"Y"), (122, utc_timestamp(orig if orig is not None else self.now))]
        raw = encode(begin, header, body or [])
        fields = parse_fields(raw)
        assert fields is not None
        return Message(fields, raw)

    def send(self, mt: str, body: list[tuple[int, bytes]] | None = None, **kw: object) -> list[object]:
        acts: list[object] = [*self.s.on_message(self.msg(mt, body, **kw), self.now)]  # type: ignore[arg-type]
        return acts

    def out(self) -> list[Message | Close]:
        """Messages (and Close markers) the session produced since the last call."""
        items = self.s.outbox[self.sent_index:]
        self.sent_index = len(self.s.outbox)
        res: list[Message | Close] = []
        for it in items:
            if isinstance(it, Close):
                res.append(it)
            else:
                f = parse_fields(it)
                assert f is not None
                res.append(Message(f, it))
        return res

    def types(self) -> list[str]:
        return ["CLOSE" if isinstance(m, Close) else m.msg_type.decode() for m in self.out()]


def order(cid: str = "O1") -> list[tuple[int, bytes]]:
    return [(11, cid.encode()), (21, b"1"), (55, b"IBM"), (54, b"1"), (60, b"20240101-00:00:00"),
            (38, b"100"), (40, b"1")]


def state_of(s: Session) -> State:
    """The session's state, read afresh (mypy would keep an earlier assert's narrowing)."""
    return s.state


def acceptor(**kw: object) -> tuple[Session, Peer]:
    cfg = SessionConfig("FIX.4.4", "SRV", "CLI", **kw)  # type: ignore[arg-type]
    s = Session(cfg, validator=functools.partial(validate, DD))
    p = Peer(s)
    return s, p


def logged_on(hb: int = 30, **kw: object) -> tuple[Session, Peer]:
    s, p = acceptor(**kw)
    s.connected(p.now)
    assert s.state is State.AWAITING_LOGON
    acts = p.send("A", [(98, b"0"), (108, b"%d" % hb)])
    assert [type(a) for a in acts] == [VerifyLogon]
    assert state_of(s) is State.LOGON_PENDING_APP
    assert [type(a) for a in s.logon_accepted(p.now)] == [LoggedOn]
    assert state_of(s) is State.LOGGED_ON
    (logon,) = p.out()
    assert isinstance(logon, Message) and logon[108] == b"%d" % hb and logon[34] == b"1"
    return s, p


def test_transition_table_names_real_handlers_and_covers_disconnect() -> None:
    for (state, event), name in TRANSITIONS.items():
        assert callable(getattr(Session, name)), name
    for state in State:
        assert (state, Event.DISCONNECTED) in TRANSITIONS
        assert (state, Event.TIMER) in TRANSITIONS


def test_acceptor_logon_takes_heartbeat_interval_from_the_logon() -> None:
    s, _p = logged_on(hb=7)
    assert s.heartbeat_int == 7 and s.next_target == 2 and s.next_sender == 2


def test_first_message_not_a_logon_disconnects() -> None:
    s, p = acceptor()
    s.connected(p.now)
    p.send("0")
    assert p.types() == ["CLOSE"]
    assert s.state is State.DISCONNECTING


def test_garbled_before_logon_disconnects_and_after_logon_is_ignored() -> None:
    s, p = acceptor()
    s.connected(p.now)
    s.on_garbled(b"8=FIX.4.4\x019=5\x01...", "bad", p.now)
    assert p.types() == ["CLOSE"]
    s, p = logged_on()
    s.on_garbled(b"8=FIX.4.4\x019=5\x01...", "bad", p.now)
    assert p.types() == [] and s.state is State.LOGGED_ON and s.next_target == 2


def test_reject_logon_sends_logout_and_does_not_reset_sequence_numbers() -> None:
    s, p = acceptor()
    s.next_sender, s.next_target = 10, 5
    s.connected(p.now)
    p.seq = 5
    p.send("A", [(98, b"0"), (108, b"30"), (141, b"Y")], seq=1)
    s.logon_rejected("bad password", p.now)
    out = p.out()
    assert [m.msg_type for m in out if isinstance(m, Message)] == [b"5"]
    assert out[0].get(58) == b"bad password"  # type: ignore[union-attr]
    assert isinstance(out[-1], Close)
    # ResetSeqNumFlag is honoured only once the logon is accepted
    batch = s.take_batch()
    assert batch is not None and not batch.reset and batch.next_target_seq == 5
    assert s.next_target == 5 and s.next_sender == 11


def test_reset_seq_num_flag_resets_once_accepted() -> None:
    s, p = acceptor()
    s.next_sender, s.next_target = 10, 5
    s.connected(p.now)
    p.send("A", [(98, b"0"), (108, b"30"), (141, b"Y")], seq=1)
    s.logon_accepted(p.now)
    (logon,) = p.out()
    assert logon[34] == b"1" and logon.get(141) == b"Y"  # type: ignore[index,union-attr]
    batch = s.take_batch()
    assert batch is not None and batch.reset and batch.next_sender_seq == 2 and batch.next_target_seq == 2


def test_heartbeat_test_request_and_timeout_with_frozen_time() -> None:
    s, p = logged_on(hb=10)
    p.now += 9.9
    s.on_timer(p.now)
    assert p.types() == []
    p.now += 0.1  # 10 s without sending: a Heartbeat
    s.on_timer(p.now)
    assert p.types() == ["0"]
    p.now = T0 + 12.0  # 1.2 x HeartBtInt without hearing from the peer: a TestRequest
    s.on_timer(p.now)
    (tr,) = p.out()
    assert isinstance(tr, Message) and tr.msg_type == b"1" and tr[112] == b"TEST"
    p.now = T0 + 23.9
    s.on_timer(p.now)
    assert p.types() == []  # a TestRequest is out: no heartbeat, no second TestRequest yet
    p.now = T0 + 24.0  # 2.4 x HeartBtInt: give up
    s.on_timer(p.now)
    assert p.types() == ["CLOSE"]
    assert s.disconnected(p.now) == [LoggedOut("disconnected")]


def test_incoming_traffic_resets_the_test_request_clock() -> None:
    s, p = logged_on(hb=10)
    p.now += 11
    p.send("0")
    p.now += 11
    s.on_timer(p.now)
    assert p.types() == ["0"]  # only our own heartbeat, no TestRequest


def test_test_request_is_answered_with_its_id() -> None:
    _s, p = logged_on()
    acts = p.send("1", [(112, b"PING")])
    (hb,) = p.out()
    assert isinstance(hb, Message) and hb.msg_type == b"0" and hb[112] == b"PING"
    assert isinstance(acts[0], Deliver) and acts[0].admin


def test_too_high_queues_and_asks_once_then_gap_fill_releases_the_queue() -> None:
    s, p = logged_on()
    p.send("D", order("A"), seq=5)
    p.send("D", order("B"), seq=6)
    out = p.out()
    assert [m.msg_type for m in out] == [b"2"]  # type: ignore[union-attr]
    assert out[0][7] == b"2" and out[0][16] == b"0"  # type: ignore[index]
    acts = p.send("4", [(123, b"Y"), (36, b"5")], seq=2, possdup=True)
    assert s.next_target == 5
    delivered = []
    while (more := s.next_queued(p.now)) is not None:
        delivered += [a.message[11] for a in more if isinstance(a, Deliver)]
    assert delivered == [b"A", b"B"] and s.next_target == 7
    assert acts  # the gap fill itself went to from_admin


def test_resend_request_chunks() -> None:
    _s, p = logged_on(resend_request_chunk_size=3)
    p.send("0", seq=20)
    (rr,) = p.out()
    assert rr[7] == b"2" and rr[16] == b"4"  # type: ignore[index]


def test_too_low_without_possdup_logs_out_with_the_reason() -> None:
    _s, p = logged_on()
    p.send("0")
    p.send("0", seq=2)
    out = p.out()
    assert out[0].get(58) == b"MsgSeqNum too low, expecting 3 but received 2"  # type: ignore[union-attr]
    assert isinstance(out[1], Close)


def test_possdup_duplicate_is_ignored_and_missing_orig_sending_time_rejected() -> None:
    s, p = logged_on()
    p.send("0")
    p.send("0", seq=2, possdup=True)
    assert p.types() == [] and s.next_target == 3
    m = p.msg("0", seq=2)
    m.fields.insert(5, (43, b"Y"))
    m._map = None
    s.on_message(m, p.now)
    (rej,) = p.out()
    assert rej[373] == b"1" and rej[371] == b"122"  # type: ignore[index]


def test_orig_sending_time_after_sending_time_is_rejected_with_logout() -> None:
    s, p = logged_on()
    p.send("0")
    p.send("0", seq=2, possdup=True, orig=p.now + 10)
    assert p.types() == ["3", "5"]
    assert s.state is State.LOGOUT_SENT


def test_sending_time_out_of_range_rejects_and_logs_out() -> None:
    _s, p = logged_on()
    p.send("0", sending_time=p.now - 121)
    out = p.out()
    assert out[0][373] == b"10" and out[1].msg_type == b"5"  # type: ignore[index,union-attr]


def test_compid_problem_rejects_and_logs_out() -> None:
    _s, p = logged_on()
    p.send("0", sender=b"EVIL")
    assert p.types() == ["3", "5"]


def test_invalid_field_is_rejected_and_counted() -> None:
    s, p = logged_on()
    bad = order()
    bad[3] = (54, b"Z")
    p.send("D", bad)
    (rej,) = p.out()
    assert rej[45] == b"2" and rej[371] == b"54" and rej[373] == b"5"  # type: ignore[index]
    assert s.next_target == 3


def test_service_resend_request_app_messages_possdup_admin_as_gap_fill() -> None:
    s, p = logged_on()
    s.send(Message.new("8", [(37, "1"), (17, "E1")]), p.now)  # seq 2
    p.send("1", [(112, b"X")])  # our heartbeat answer: seq 3
    s.send(Message.new("8", [(37, "2"), (17, "E2")]), p.now)  # seq 4
    p.out()
    p.now += 5
    p.send("2", [(7, b"1"), (16, b"0")])
    out = [m for m in p.out() if isinstance(m, Message)]
    assert [(m.msg_type, m[34]) for m in out] == [(b"4", b"1"), (b"8", b"2"), (b"4", b"3"), (b"8", b"4")]
    assert out[0][36] == b"2" and out[2][36] == b"4" and out[0][123] == b"Y"
    assert out[1][43] == b"Y" and out[1][122] == utc_timestamp(T0) and out[1][52] == utc_timestamp(p.now)
    assert s.next_sender == 5  # resends do not consume sequence numbers


def test_sequence_reset_reset_mode_lower_is_rejected_without_ref_tag() -> None:
    s, p = logged_on()
    p.send("4", [(36, b"1")], seq=0)
    (rej,) = p.out()
    assert rej[373] == b"5" and rej.get(371) is None and rej[45] == b"0"  # type: ignore[index,union-attr]
    p.send("4", [(36, b"40")], seq=0)
    assert s.next_target == 40


def test_logout_handshake_and_timeout() -> None:
    s, p = logged_on()
    s.logout(p.now, "bye")
    (lo,) = p.out()
    assert lo.get(58) == b"bye" and s.state is State.LOGOUT_SENT  # type: ignore[union-attr]
    p.now += 1.9
    s.on_timer(p.now)
    assert p.types() == []
    p.now += 0.2
    s.on_timer(p.now)
    assert p.types() == ["CLOSE"]


def test_logout_answered_then_closed() -> None:
    _s, p = logged_on()
    acts = p.send("5")
    assert p.types() == ["5", "CLOSE"]
    assert isinstance(acts[0], Deliver)


def test_initiator_sends_logon_with_reset_and_credentials() -> None:
    cfg = SessionConfig("FIX.4.4", "CLI", "SRV", initiator=True, heartbeat_int=15, reset_on_logon=True,
                        username="u1", password="p1")
    s = Session(cfg)
    s.next_sender = 9
    s.connected(T0)
    (raw,) = s.outbox
    f = dict(parse_fields(raw))  # type: ignore[arg-type]
    assert f[35] == b"A" and f[34] == b"1" and f[141] == b"Y" and f[108] == b"15"
    assert f[553] == b"u1" and f[554] == b"p1"
    assert s.state is State.LOGON_SENT
    # the answer
    header = [(35, b"A"), (49, b"SRV"), (56, b"CLI"), (34, b"1"), (52, utc_timestamp(T0))]
    ans = encode(b"FIX.4.4", header, [(98, b"0"), (108, b"15"), (141, b"Y")])
    fields = parse_fields(ans)
    assert fields is not None
    acts = s.on_message(Message(fields), T0)
    assert isinstance(acts[0], VerifyLogon)
    assert s.logon_accepted(T0) == [LoggedOn()]
    assert state_of(s) is State.LOGGED_ON and s.next_target == 2


def test_logon_timeout() -> None:
    cfg = SessionConfig("FIX.4.4", "CLI", "SRV", initiator=True, logon_timeout=5)
    s = Session(cfg)
    s.connected(T0)
    s.on_timer(T0 + 4.9)
    assert not any(isinstance(x, Close) for x in s.outbox)
    s.on_timer(T0 + 5.0)
    assert isinstance(s.outbox[-1], Close)


def test_app_messages_are_stored_even_when_not_logged_on() -> None:
    s, _p = acceptor()
    assert s.send(Message.new("8", [(37, "1")]), T0) is False
    batch = s.take_batch()
    assert batch is not None and [seq for seq, _ in batch.messages] == [1] and batch.next_sender_seq == 2
    assert s.outbox == []


def test_queue_is_bounded() -> None:
    s, p = logged_on(max_queued=3)
    for seq in range(10, 20):
        p.send("0", seq=seq)
    assert len(s._queue) == 3


def test_unsupported_application_type_gets_business_reject_before_body_validation() -> None:
    cfg = SessionConfig("FIX.4.4", "SRV", "CLI")
    s = Session(cfg, validator=functools.partial(validate, DD), supports=lambda mt: mt == b"D",
                is_app_type=lambda mt: (m := DD.message_b(mt)) is not None and not m.is_admin)
    p = Peer(s)
    s.connected(p.now)
    p.send("A", [(98, b"0"), (108, b"30")])
    s.logon_accepted(p.now)
    p.out()
    p.send("8", [(37, b"x")])  # an incomplete ExecutionReport: still "unsupported", not "invalid"
    (bmr,) = p.out()
    assert bmr.msg_type == b"j" and bmr[380] == b"3" and bmr[372] == b"8"  # type: ignore[union-attr,index]
    assert s.next_target == 3


@pytest.mark.parametrize("exc_name,mt,reason", [("UnsupportedMessageType", b"j", b"3"),
                                                ("IncorrectTagValue", b"3", b"5")])
def test_application_errors_become_rejects(exc_name: str, mt: bytes, reason: bytes) -> None:
    import fixgw.application as A

    s, p = logged_on()
    acts = p.send("D", order())
    msg = acts[0].message  # type: ignore[attr-defined]
    exc = A.UnsupportedMessageType() if exc_name == "UnsupportedMessageType" else A.IncorrectTagValue(54)
    s.app_error(msg, exc, p.now)
    (r,) = p.out()
    assert r.msg_type == mt  # type: ignore[union-attr]
    assert r[380 if mt == b"j" else 373] == reason  # type: ignore[index]
    assert s.next_target == 3  # counted once, when the message was accepted


def test_a_peer_not_read_by_our_choice_is_not_timed_out_and_heartbeats_still_go_out() -> None:
    # backpressure (issue 19): the engine stops reading the peer for longer than 2.4 x HeartBtInt;
    # its silence is ours: no TestRequest, no time-out, our heartbeats keep going
    s, p = logged_on(hb=10)
    for _ in range(6):               # 60 s held, the engine's ticker calls reading_held each tick
        p.now += 10.0
        s.reading_held(p.now)
        s.on_timer(p.now)
        assert p.types() == ["0"], p.now
    assert s.state is State.LOGGED_ON
    # reading again, the usual clock starts from the last held tick: a peer silent after it is
    # asked (TestRequest at 1.2 x) and given up (2.4 x), as any other
    p.now += 12.0
    s.on_timer(p.now)
    assert p.types() == ["1"]
    p.now += 12.0
    s.on_timer(p.now)
    assert p.types() == ["CLOSE"]


def test_reading_held_forgets_a_test_request_the_peer_could_not_answer_unread() -> None:
    s, p = logged_on(hb=10)
    p.now += 12.0
    s.on_timer(p.now)
    assert p.types() == ["1"] and s.test_requests == 1
    s.reading_held(p.now + 5)     # its answer waits unread in the socket
    assert s.test_requests == 0 and s.last_received == p.now + 5
    s.reading_held(p.now)         # never moves the clock back
    assert s.last_received == p.now + 5


def _logon_answer(seq: int, reset: bool = False) -> Message:
    header = [(35, b"A"), (49, b"SRV"), (56, b"CLI"), (34, b"%d" % seq), (52, utc_timestamp(T0))]
    ans = encode(b"FIX.4.4", header, [(98, b"0"), (108, b"30")] + ([(141, b"Y")] if reset else []))
    f = parse_fields(ans)
    assert f is not None
    return Message(f)


@pytest.mark.parametrize("forgot", [True, False])
def test_a_counterparty_that_forgot_the_session_is_logged_on_again_with_a_reset(forgot: bool) -> None:
    """ResetWhenPeerForgot=Y: a venue restarted empty answers our Logon with MsgSeqNum 1 where 40
    was expected; the next Logon asks both sides to start again at 1. Without it, the same
    Logon is refused again and again."""
    cfg = SessionConfig("FIX.4.4", "CLI", "SRV", initiator=True, reset_when_peer_forgot=forgot)
    s = Session(cfg)
    s.next_sender, s.next_target = 25, 40
    s.connected(T0)
    assert dict(parse_fields(s.outbox[-1]) or [])[34] == b"25"      # type: ignore[arg-type]
    s.on_message(_logon_answer(1), T0)
    assert isinstance(s.outbox[-1], Close) and not s.logged_on
    s.disconnected(T0)
    s.connected(T0 + 1)
    logon = dict(parse_fields(s.outbox[-1]) or [])                  # type: ignore[arg-type]
    if not forgot:
        assert logon[34] == b"27" and 141 not in logon   # 26 went into the Logout
        return
    assert logon[34] == b"1" and logon[141] == b"Y"
    acts = s.on_message(_logon_answer(1, reset=True), T0 + 1)
    assert isinstance(acts[0], VerifyLogon)
    assert s.logon_accepted(T0 + 1) == [LoggedOn()]
    assert s.logged_on and s.next_target == 2 and s.next_sender == 2
    # once only: a later reconnect logs on with the numbers as they are
    s.disconnected(T0 + 2)
    s.connected(T0 + 3)
    assert 141 not in dict(parse_fields(s.outbox[-1]) or [])
