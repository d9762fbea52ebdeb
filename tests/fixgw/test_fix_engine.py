"""The engine in process: a fixgw initiator and a fixgw acceptor over real TCP (and TLS)."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from fixgw.application import Application, DoNotSend, MessageCracker, RejectLogon, handles
from fixgw.config import SessionID, parse_settings
from fixgw.engine import Engine
from fixgw.fixlog import MemoryLog
from fixgw.message import Message
from tests.support.broker import free_port


def settings(text: str) -> list:  # type: ignore[type-arg]
    return parse_settings(text, "<test>")


def acceptor_cfg(port: int, extra: str = "", target: str = "CLIENT", store: Path | None = None) -> str:
    s = (f"[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\nSocketAcceptPort={port}\n"
         f"SenderCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\n{extra}\n[SESSION]\nTargetCompID={target}\n")
    if store is not None:
        s = s.replace("[SESSION]", f"FileStorePath={store}\n[SESSION]")
    return s


def initiator_cfg(port: int, extra: str = "", sender: str = "CLIENT") -> str:
    return (f"[DEFAULT]\nConnectionType=initiator\nSocketConnectHost=127.0.0.1\nSocketConnectPort={port}\n"
            f"SenderCompID={sender}\nTargetCompID=VENUE\nBeginString=FIX.4.4\nHeartBtInt=30\n"
            f"ReconnectInterval=1\n{extra}\n[SESSION]\n")


class Venue(MessageCracker):
    """Answers each NewOrderSingle with an ExecutionReport; checks the password on logon."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self.events: list[tuple[str, str]] = []
        self.orders: list[tuple[str, str | None]] = []  # (ClOrdID, PossDupFlag) of each NewOrderSingle

    async def on_create(self, session_id: SessionID) -> None:
        self.events.append(("create", str(session_id)))

    async def on_logon(self, session_id: SessionID) -> None:
        self.events.append(("logon", str(session_id)))

    async def on_logout(self, session_id: SessionID) -> None:
        self.events.append(("logout", str(session_id)))

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        if message.msg_type == b"A" and self.password is not None and message.get_str(554) != self.password:
            raise RejectLogon("wrong password")

    @handles("D")
    async def new_order(self, msg: Message, session_id: SessionID) -> None:
        self.orders.append((msg.require_str(11), msg.get_str(43)))
        er = Message.new("8", [(37, b"V" + msg[11]), (11, msg[11]), (17, b"E" + msg[11]), (150, "0"), (39, "0"),
                               (55, msg[55]), (54, msg[54]), (151, msg[38]), (14, "0"), (6, "0")])
        self.send(er, session_id)


class Client(Application):
    def __init__(self) -> None:
        self.reports: asyncio.Queue[Message] = asyncio.Queue()
        self.admin: list[bytes] = []

    async def from_app(self, message: Message, session_id: SessionID) -> None:
        await self.reports.put(message)

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        self.admin.append(message.msg_type)


def nos(cid: str) -> Message:
    return Message.new("D", [(11, cid), (21, "1"), (55, "IBM"), (54, "1"), (60, "20240101-00:00:00"),
                             (38, "100"), (40, "1")])


CLIENT_SID = SessionID("FIX.4.4", "CLIENT", "VENUE")
VENUE_SID = SessionID("FIX.4.4", "VENUE", "CLIENT")


@pytest.mark.timeout(30)
async def test_orders_round_trip_and_logout(tmp_path: Path) -> None:
    port = free_port()
    venue, client = Venue(), Client()
    async with Engine(settings(acceptor_cfg(port, store=tmp_path / "v")), venue) as ve:
        async with Engine(settings(initiator_cfg(port)), client) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)
            await ve.wait_logged_on(VENUE_SID, 5)
            for i in range(50):
                assert ce.send_to_target(nos(f"C{i}"), CLIENT_SID)
            got = [await asyncio.wait_for(client.reports.get(), 5) for _ in range(50)]
            assert [m.get_str(11) for m in got] == [f"C{i}" for i in range(50)]
            assert all(m.msg_type == b"8" for m in got)
            # an unsupported type is answered with a BusinessMessageReject
            ce.send_to_target(Message.new("F", [(41, "C1"), (11, "X"), (55, "IBM"), (54, "1"),
                                                (60, "20240101-00:00:00")]), CLIENT_SID)
            bmr = await asyncio.wait_for(client.reports.get(), 5)
            assert bmr.msg_type == b"j" and bmr[380] == b"3"
        # the initiator's stop logged out; the acceptor saw it
        await ve.session(VENUE_SID).wait_disconnected(5)
    kinds = [k for k, _ in venue.events]
    assert kinds == ["create", "logon", "logout"]
    assert b"5" in client.admin


class StallingClient(Client):
    """Withholds its writes while ``stalled`` (Application.may_write) and, on a resend, lets
    through only the ClOrdIDs in ``resend_ok`` (to_app raises DoNotSend for the others)."""

    def __init__(self) -> None:
        super().__init__()
        self.stalled = False
        self.resend_ok: set[str] = set()
        self.resends_seen: list[str] = []

    def may_write(self, session_id: SessionID) -> bool:
        return not self.stalled

    def to_app(self, message: Message, session_id: SessionID) -> None:
        if message.get_str(43) == "Y":
            cid = message.require_str(11)
            self.resends_seen.append(cid)
            if cid not in self.resend_ok:
                raise DoNotSend(f"{cid} is stale")


@pytest.mark.timeout(30)
async def test_a_withheld_write_never_reaches_the_peer_and_its_resend_is_the_applications_choice(
        tmp_path: Path) -> None:
    port = free_port()
    venue, client = Venue(), StallingClient()
    async with Engine(settings(acceptor_cfg(port, store=tmp_path / "v")), venue) as ve:
        ini = initiator_cfg(port, extra=f"FileStorePath={tmp_path / 'c'}")
        async with Engine(settings(ini), client) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)
            ce.send_to_target(nos("C0"), CLIENT_SID)
            assert (await asyncio.wait_for(client.reports.get(), 5)).get_str(11) == "C0"
            rt = ce.session(CLIENT_SID)
            # the process "stood still" after sealing C1 and C2: their write is withheld
            client.stalled = True
            ce.send_to_target(nos("C1"), CLIENT_SID)
            ce.send_to_target(nos("C2"), CLIENT_SID)
            await rt.wait_disconnected(5)
            assert rt.writes_withheld == 1
            client.stalled = False
            client.resend_ok = {"C2"}
            # the initiator logs on again; the venue asks for the gap; C1 is gap-filled, C2 resent
            report = await asyncio.wait_for(client.reports.get(), 10)
            assert report.get_str(11) == "C2"
            ce.send_to_target(nos("C3"), CLIENT_SID)
            assert (await asyncio.wait_for(client.reports.get(), 5)).get_str(11) == "C3"
            assert client.resends_seen == ["C1", "C2"]
        await ve.session(VENUE_SID).wait_disconnected(5)
    assert venue.orders == [("C0", None), ("C2", "Y"), ("C3", None)]


class DurableLaterClient(Client):
    """Returns from from_app a future per report (its 'record being committed'); the test
    decides which of them become durable."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[str, asyncio.Future[None]] = {}

    async def from_app(self, message: Message, session_id: SessionID) -> asyncio.Future[None]:  # type: ignore[override]
        await self.reports.put(message)
        fut = self.pending[message.require_str(11)] = asyncio.get_running_loop().create_future()
        return fut


@pytest.mark.timeout(30)
async def test_an_inbound_message_not_yet_durable_is_resent_after_a_restart(tmp_path: Path) -> None:
    """from_app returned an awaitable not done when the process stopped: the store still
    expects that message, and the counterparty resends it (PossDup) at the next logon; the
    messages the application made durable are not asked for again."""
    port = free_port()
    venue = Venue()
    ini = initiator_cfg(port, extra=f"FileStorePath={tmp_path / 'c'}")
    async with Engine(settings(acceptor_cfg(port, store=tmp_path / "v")), venue) as ve:
        first = DurableLaterClient()
        async with Engine(settings(ini), first) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)
            for cid in ("C0", "C1", "C2"):
                ce.send_to_target(nos(cid), CLIENT_SID)
            got = [await asyncio.wait_for(first.reports.get(), 5) for _ in range(3)]
            assert [m.get_str(11) for m in got] == ["C0", "C1", "C2"]
            first.pending["C0"].set_result(None)          # C0's record is durable, C1's and C2's not
            await asyncio.sleep(0.2)
            rt = ce.session(CLIENT_SID)
            assert rt.inbound_held >= 1
            # what the store holds now: the report of C1 is still expected
            assert ce.session(CLIENT_SID).store.next_target_seq == int(got[1][34])
        await ve.session(VENUE_SID).wait_disconnected(5)
        # the process "died" with C1 and C2 not durable: a new one on the same store
        second = Client()
        async with Engine(settings(ini), second) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)
            again = [await asyncio.wait_for(second.reports.get(), 5) for _ in range(2)]
            assert [(m.get_str(11), m.get_str(43)) for m in again] == [("C1", "Y"), ("C2", "Y")]
            ce.send_to_target(nos("C3"), CLIENT_SID)
            nxt = await asyncio.wait_for(second.reports.get(), 5)
            assert (nxt.get_str(11), nxt.get_str(43)) == ("C3", None)
            assert second.reports.empty()                 # C0 was not asked for again


@pytest.mark.timeout(30)
async def test_the_store_catches_up_once_the_application_is_durable(tmp_path: Path) -> None:
    port = free_port()
    venue = Venue()
    async with Engine(settings(acceptor_cfg(port, store=tmp_path / "v")), venue):
        client = DurableLaterClient()
        ini = initiator_cfg(port, extra=f"FileStorePath={tmp_path / 'c'}")
        async with Engine(settings(ini), client) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)
            for cid in ("C0", "C1"):
                ce.send_to_target(nos(cid), CLIENT_SID)
            got = [await asyncio.wait_for(client.reports.get(), 5) for _ in range(2)]
            store = ce.session(CLIENT_SID).store
            await asyncio.sleep(0.1)
            assert store.next_target_seq == int(got[0][34])
            client.pending["C1"].set_result(None)         # out of order: C0 still holds
            await asyncio.sleep(0.1)
            assert store.next_target_seq == int(got[0][34])
            client.pending["C0"].set_result(None)
            for _ in range(50):
                if store.next_target_seq == int(got[1][34]) + 1:
                    break
                await asyncio.sleep(0.02)
            assert store.next_target_seq == int(got[1][34]) + 1


@pytest.mark.timeout(30)
async def test_sequence_numbers_survive_an_engine_restart(tmp_path: Path) -> None:
    port = free_port()
    venue = Venue()
    for round_ in range(2):
        client = Client()
        async with Engine(settings(acceptor_cfg(port, store=tmp_path / "v")), venue):
            ini = initiator_cfg(port, extra=f"FileStorePath={tmp_path / 'c'}")
            async with Engine(settings(ini), client) as ce:
                await ce.wait_logged_on(CLIENT_SID, 5)
                ce.send_to_target(nos(f"R{round_}"), CLIENT_SID)
                er = await asyncio.wait_for(client.reports.get(), 5)
                # logon 1, ER 2, logout 3 the first time; then logon 4 (no reset), ER 5
                assert er[34] == (b"2" if round_ == 0 else b"5")


@pytest.mark.timeout(30)
async def test_reject_logon_and_password() -> None:
    port = free_port()
    log = MemoryLog()
    venue = Venue(password="s3cret")
    async with Engine(settings(acceptor_cfg(port)), venue, log_factory=lambda s, sid: log):
        bad = Client()
        async with Engine(settings(initiator_cfg(port, "Password=nope")), bad) as ce:
            with pytest.raises(asyncio.TimeoutError):
                await ce.wait_logged_on(CLIENT_SID, 1.5)
        assert any("wrong password" in e for e in log.events)
        good = Client()
        async with Engine(settings(initiator_cfg(port, "Username=me\nPassword=s3cret")), good) as ce:
            await ce.wait_logged_on(CLIENT_SID, 5)


@pytest.mark.timeout(30)
async def test_a_new_dynamic_session_asked_for_twice_at_once_is_created_once(tmp_path: Path) -> None:
    """Two connections (or open_session calls) for a session nobody has opened yet, together:
    one runtime, one store open (a second open of the same LMDB session failed with "already
    open in this process"), on_create called once."""
    venue = Venue()
    async with Engine(settings(acceptor_cfg(free_port(), target="*", store=tmp_path / "v")), venue) as ve:
        sid = SessionID("FIX.4.4", "VENUE", "NEWCLIENT")
        assert list(await asyncio.gather(ve.open_session(sid), ve.open_session(sid), ve.open_session(sid))) == [True] * 3
        assert [e for e in venue.events if e[0] == "create"] == [("create", str(sid))]
        assert ve.session(sid) is ve.sessions[sid]


@pytest.mark.timeout(30)
async def test_dynamic_sessions_for_any_client() -> None:
    port = free_port()
    venue = Venue()
    async with Engine(settings(acceptor_cfg(port, target="*")), venue) as ve:
        clients = []
        engines = []
        for name in ("ALPHA", "BETA"):
            c = Client()
            e = Engine(settings(initiator_cfg(port, sender=name)), c)
            await e.start()
            clients.append(c)
            engines.append(e)
        try:
            for name, e in zip(("ALPHA", "BETA"), engines):
                sid = SessionID("FIX.4.4", name, "VENUE")
                await e.wait_logged_on(sid, 5)
                e.send_to_target(nos(name), sid)
            for name, c in zip(("ALPHA", "BETA"), clients):
                assert (await asyncio.wait_for(c.reports.get(), 5)).get_str(11) == name
            assert {str(s) for s in ve.sessions} == {"FIX.4.4:VENUE->ALPHA", "FIX.4.4:VENUE->BETA"}
        finally:
            for e in engines:
                await e.stop()


@pytest.mark.timeout(40)
async def test_initiator_reconnects_after_the_acceptor_comes_back() -> None:
    port = free_port()
    client = Client()
    async with Engine(settings(initiator_cfg(port)), client) as ce:
        await asyncio.sleep(1.2)  # nothing listens yet: the initiator retries with back-off
        async with Engine(settings(acceptor_cfg(port)), Venue()):
            await ce.wait_logged_on(CLIENT_SID, 8)
        rt = ce.session(CLIENT_SID)
        await rt.wait_disconnected(5)
        async with Engine(settings(acceptor_cfg(port)), Venue()):
            await ce.wait_logged_on(CLIENT_SID, 8)
            ce.send_to_target(nos("AGAIN"), CLIENT_SID)
            assert (await asyncio.wait_for(client.reports.get(), 5)).get_str(11) == "AGAIN"
        assert rt.logons == 2


def _make_cert(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return key, cert


@pytest.mark.timeout(30)
async def test_tls_on_both_sides(tmp_path: Path) -> None:
    key, cert = _make_cert(tmp_path)
    port = free_port()
    tls_acc = f"SocketUseSSL=Y\nSocketCertificateFile={cert}\nSocketPrivateKeyFile={key}"
    tls_ini = f"SocketUseSSL=Y\nSocketCAFile={cert}"
    client = Client()
    async with Engine(settings(acceptor_cfg(port, tls_acc)), Venue()), \
            Engine(settings(initiator_cfg(port, tls_ini)), client) as ce:
        await ce.wait_logged_on(CLIENT_SID, 5)
        ce.send_to_target(nos("TLS1"), CLIENT_SID)
        assert (await asyncio.wait_for(client.reports.get(), 5)).get_str(11) == "TLS1"


async def test_stop_closes_connections_that_never_sent_a_message(tmp_path: Path) -> None:
    """A client that connected but sent nothing must see EOF when the engine stops, not a
    socket left open until LogonTimeout (found by the QuickFIX interop work)."""
    from fixgw.application import Application
    from fixgw.config import parse_settings
    from fixgw.engine import Engine

    port = free_port()
    settings = parse_settings(
        f"[DEFAULT]\nConnectionType=acceptor\nSocketAcceptHost=127.0.0.1\nSocketAcceptPort={port}\n"
        f"SenderCompID=S\nFileStorePath={tmp_path}\nLogonTimeout=30\n[SESSION]\nBeginString=FIX.4.4\n"
        "TargetCompID=C\n", "<test>")
    engine = Engine(settings, Application())
    await engine.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(0.1)
    await engine.stop()
    assert await asyncio.wait_for(reader.read(100), 3) == b""
    writer.close()


class MovedVenue(Venue):
    """Before a Logon is looked at, the session's store is set as another process left it (a
    session taken over elsewhere: utilities.session_owner), or the connection is refused."""

    def __init__(self, start_at: int | None) -> None:
        super().__init__()
        self.start_at = start_at

    async def before_logon(self, message: Message, session_id: SessionID) -> None:
        if self.start_at is None:
            raise RejectLogon("not now")
        assert isinstance(self.engine, Engine)
        self.engine.session(session_id).store.set_next_sender_seq(self.start_at)


def test_before_logon_and_refresh_on_logon() -> None:
    asyncio.run(_before_logon())


async def _before_logon() -> None:
    port = free_port()
    venue = MovedVenue(50)
    client = Client()
    async with Engine(settings(acceptor_cfg(port, "RefreshOnLogon=Y")), venue) as acc, \
            Engine(settings(initiator_cfg(port)), client) as ini:
        sid = ini.settings[0].session_id
        await ini.wait_logged_on(sid, 10)
        ini.send_to_target(nos("B1"), sid)
        rep = await asyncio.wait_for(client.reports.get(), 10)
        assert rep.get_str(11) == "B1"
        # the acceptor answered from 50 on: the initiator asked for 1..49 and got a gap fill
        assert acc.sessions[acc.settings[0].session_id].session.next_sender > 50
        assert ini.session(sid).session.next_target > 50
        assert b"4" in client.admin


def test_before_logon_refusal_closes_without_a_logout() -> None:
    asyncio.run(_refused())


async def _refused() -> None:
    port = free_port()
    client = Client()
    async with Engine(settings(acceptor_cfg(port)), MovedVenue(None)) as acc, \
            Engine(settings(initiator_cfg(port)), client) as ini:
        sid = ini.settings[0].session_id
        with pytest.raises(TimeoutError):
            await ini.wait_logged_on(sid, 2.5)
        assert b"5" not in client.admin and b"A" not in client.admin
        assert not acc.sessions[acc.settings[0].session_id].logged_on


@pytest.mark.timeout(30)
async def test_pause_reading_holds_the_peer_back_without_timing_it_out() -> None:
    # backpressure (issue 19): the application stops reading a session for three heartbeat
    # intervals; the peer's orders wait unread, both sides stay logged on (our heartbeats go out,
    # the peer's silence is not held against it), and on resume every order is worked, in order
    port = free_port()
    venue, client = Venue(), Client()
    ini = settings(initiator_cfg(port).replace("HeartBtInt=30", "HeartBtInt=1"))
    async with Engine(settings(acceptor_cfg(port)), venue) as ve, Engine(ini, client) as ce:
        await ce.wait_logged_on(CLIENT_SID, 5)
        await ve.wait_logged_on(VENUE_SID, 5)
        rt = ve.session(VENUE_SID)
        assert ce.send_to_target(nos("B0"), CLIENT_SID)
        assert (await asyncio.wait_for(client.reports.get(), 5)).get_str(11) == "B0"
        rt.pause_reading()
        assert rt.reading_paused and rt.reading_pauses == 1
        for i in range(1, 21):
            assert ce.send_to_target(nos(f"B{i}"), CLIENT_SID)
        await asyncio.sleep(3.5)       # > 2.4 x HeartBtInt: a peer not heard from would be gone
        assert client.reports.empty()  # nothing read, nothing answered
        assert rt.logged_on and ce.session(CLIENT_SID).logged_on
        assert rt.logons == ce.session(CLIENT_SID).logons == 1   # never timed out, never reconnected
        assert b"0" in client.admin    # our heartbeats reached the client meanwhile
        assert b"5" not in client.admin
        rt.resume_reading()
        got = [await asyncio.wait_for(client.reports.get(), 5) for _ in range(20)]
        assert [m.get_str(11) for m in got] == [f"B{i}" for i in range(1, 21)]
        assert rt.logged_on and not rt.reading_paused
