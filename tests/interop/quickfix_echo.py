"""The QuickFIX reference acceptor: the peer fixgw is measured and tested against.

Run as a script, it is the QuickFIX (C++ engine, Python binding) counterpart of ``fixgw at-server``:

    .venv/bin/python tests/interop/quickfix_echo.py --port 9878 [--target BENCH] [--store DIR]

SenderCompID ISLD; sessions ISLD<->TW42 (FIX.4.2), ISLD<->TW44 (FIX.4.4) as in the QuickFIX
acceptance scripts, plus ISLD<->``--target`` in FIX.4.2 and FIX.4.4 (the load client's CompID).
Its application does what the QuickFIX acceptance-test application does: every NewOrderSingle is
echoed back to the sender with a re-stamped header (PossResend kept), unless it is a PossResend=Y
duplicate of a ClOrdID already seen in the session; any other application message is answered
with BusinessMessageReject 380=3. ResetOnLogon=Y, heart-beat interval from the client's Logon,
MaxLatency 120 s, data-dictionary validation on. Messages go to a FileStore in ``--store`` (a
temporary directory by default) with QuickFIX's own durability, which is fflush after every
message (QuickFIX 1.16's FileStore never calls fsync). One line is printed once it listens; SIGTERM
or SIGINT logs the sessions out and ends the process.

For the interop tests the same script runs with ``--reply new|fill`` (answer every NewOrderSingle
with an ExecutionReport instead of echoing it), ``--no-reset`` (keep sequence numbers across
logons, so a reconnect must resend) and ``--events FILE`` (a JSON line per NewOrderSingle
received). The tests run it as a child process, because a QuickFIX acceptor cannot be stopped
safely inside a process (see :class:`QuickfixAcceptor`), and killing the child is the crash they
want anyway. Imported, the module gives the pieces: :class:`AcceptorConfig`,
:class:`EchoApplication`, :class:`ExecutionReportApplication`, :class:`QuickfixAcceptor`,
:func:`read_events`, and :class:`QuickfixProcess` (this script as a child process).

QuickFIX 1.16 has no setting for the listening address: the acceptor binds every interface.
Everything here connects to 127.0.0.1 only.

The QuickFIX binding calls the application from its own thread(s), with the GIL held; the
applications below keep their shared state behind a lock and do nothing slow in a callback.
"""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import quickfix as fix

SPEC_DIR = Path(__file__).resolve().parents[2] / "fixgw" / "spec"

# FIX.4.2 and FIX.4.4 sessions the acceptance scripts use (the client's CompID per version)
AT_SESSIONS: tuple[tuple[str, str], ...] = (("FIX.4.2", "TW42"), ("FIX.4.4", "TW44"))
BEGIN_STRINGS = ("FIX.4.2", "FIX.4.4")

TAG_MSG_TYPE = 35
TAG_POSS_RESEND = 97
TAG_CL_ORD_ID = 11
MSG_NEW_ORDER_SINGLE = "D"


@dataclass(frozen=True, slots=True)
class AcceptorSession:
    """One session the acceptor accepts: its BeginString and the client's CompID."""

    begin_string: str
    target_comp_id: str

    def __post_init__(self) -> None:
        if self.begin_string not in BEGIN_STRINGS:
            raise ValueError(f"begin_string must be one of {BEGIN_STRINGS}, got {self.begin_string!r}")
        if not self.target_comp_id or any(c in self.target_comp_id for c in "\x01=[]\n"):
            raise ValueError(f"target_comp_id must be a plain non-empty CompID, got {self.target_comp_id!r}")


@dataclass(frozen=True, slots=True)
class AcceptorConfig:
    """What a :class:`QuickfixAcceptor` needs; rendered to a QuickFIX settings file."""

    port: int
    store_dir: Path
    sessions: tuple[AcceptorSession, ...]
    sender_comp_id: str = "ISLD"
    reset_on_logon: bool = True
    validate: bool = True
    log_dir: Path | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, got {self.port}")
        if not self.sessions:
            raise ValueError("at least one session is needed")

    def settings_text(self) -> str:
        yn = {True: "Y", False: "N"}
        lines = [
            "[DEFAULT]",
            "ConnectionType=acceptor",
            f"SocketAcceptPort={self.port}",
            "SocketReuseAddress=Y",
            "SocketNodelay=Y",
            f"FileStorePath={self.store_dir}",
            f"SenderCompID={self.sender_comp_id}",
            "StartTime=00:00:00",
            "EndTime=00:00:00",
            f"ResetOnLogon={yn[self.reset_on_logon]}",
            "MaxLatency=120",
            f"UseDataDictionary={yn[self.validate]}",
        ]
        if self.log_dir is not None:
            lines.append(f"FileLogPath={self.log_dir}")
        lines += [f"{k}={v}" for k, v in self.extra]
        for s in self.sessions:
            lines += [
                "",
                "[SESSION]",
                f"BeginString={s.begin_string}",
                f"TargetCompID={s.target_comp_id}",
                f"DataDictionary={SPEC_DIR / (s.begin_string.replace('.', '') + '.xml')}",
            ]
        return "\n".join(lines) + "\n"


def echo_sessions(extra_targets: Iterable[str] = ()) -> tuple[AcceptorSession, ...]:
    """The acceptance-test sessions plus, for each extra CompID, one FIX.4.2 and one FIX.4.4 session."""
    sessions = [AcceptorSession(b, t) for b, t in AT_SESSIONS]
    for target in extra_targets:
        for begin in BEGIN_STRINGS:
            s = AcceptorSession(begin, target)
            if s not in sessions:
                sessions.append(s)
    return tuple(sessions)


def header_field(message: fix.Message, tag: int) -> str | None:
    header = message.getHeader()
    return header.getField(tag) if header.isSetField(tag) else None


def body_field(message: fix.Message, tag: int) -> str | None:
    return message.getField(tag) if message.isSetField(tag) else None


class EchoApplication(fix.Application):  # type: ignore[misc]
    """The acceptance-test application (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()  # (session, ClOrdID), cleared at logout
        self.echoed = 0
        self.rejected = 0

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:
        key = sessionID.toString()
        with self._lock:
            self._seen = {p for p in self._seen if p[0] != key}

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if header_field(message, TAG_MSG_TYPE) != MSG_NEW_ORDER_SINGLE:
            with self._lock:
                self.rejected += 1
            # QuickFIX answers this with BusinessMessageReject 380=3 (FIX.4.2 and later)
            raise fix.UnsupportedMessageType()
        cl_ord_id = body_field(message, TAG_CL_ORD_ID) or ""
        poss_resend = header_field(message, TAG_POSS_RESEND) == "Y"
        key = (sessionID.toString(), cl_ord_id)
        with self._lock:
            if poss_resend and key in self._seen:
                return
            self._seen.add(key)
            self.echoed += 1
        # a copy: QuickFIX fills BeginString, CompIDs, MsgSeqNum and SendingTime when it sends
        fix.Session.sendToTarget(fix.Message(message), sessionID)


class ExecutionReportApplication(fix.Application):  # type: ignore[misc]
    """Answers every NewOrderSingle with one ExecutionReport: New, or Fill when ``fill`` is set.

    A PossDupFlag=Y NewOrderSingle whose ClOrdID was already answered is not answered again
    (the order was seen before the connection dropped); every other one is. Each NewOrderSingle
    received is passed to ``on_order(ClOrdID, MsgSeqNum, PossDupFlag)`` (the script writes them
    to ``--events``, for the tests).
    """

    def __init__(self, fill: bool = False, on_order: Callable[[str, int, bool], None] | None = None) -> None:
        super().__init__()
        self.fill = fill
        self.on_order = on_order
        self._lock = threading.Lock()
        self._exec_ids = itertools.count(1)
        self._answered: set[str] = set()
        self.echoed = 0  # answered orders (the script's exit line calls them "echoed")
        self.rejected = 0

    def onCreate(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogon(self, sessionID: fix.SessionID) -> None:
        pass

    def onLogout(self, sessionID: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def toApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, sessionID: fix.SessionID) -> None:
        if header_field(message, TAG_MSG_TYPE) != MSG_NEW_ORDER_SINGLE:
            with self._lock:
                self.rejected += 1
            raise fix.UnsupportedMessageType()
        cl_ord_id = body_field(message, TAG_CL_ORD_ID) or ""
        poss_dup = header_field(message, 43) == "Y"
        seq = int(header_field(message, 34) or 0)
        with self._lock:
            if self.on_order is not None:
                self.on_order(cl_ord_id, seq, poss_dup)
            if poss_dup and cl_ord_id in self._answered:
                return
            self._answered.add(cl_ord_id)
            self.echoed += 1
            exec_id = next(self._exec_ids)
        er = execution_report(message, sessionID.getBeginString().getValue(), exec_id, self.fill)
        fix.Session.sendToTarget(er, sessionID)


def execution_report(order: fix.Message, begin_string: str, exec_id: int, fill: bool) -> fix.Message:
    """An ExecutionReport answering ``order`` (a NewOrderSingle): New, or a complete Fill."""
    qty = body_field(order, 38) or "0"
    price = body_field(order, 44) or "0"
    er = fix.Message()
    er.getHeader().setField(fix.BeginString(begin_string))
    er.getHeader().setField(fix.MsgType("8"))
    er.setField(fix.OrderID(f"Q{exec_id}"))
    er.setField(fix.ExecID(f"QE{exec_id}"))
    er.setField(fix.ClOrdID(body_field(order, TAG_CL_ORD_ID) or ""))
    if begin_string == "FIX.4.2":
        er.setField(fix.ExecTransType("0"))
    # ExecType/OrdStatus: 2 = Fill (FIX.4.4 ExecType F = Trade), 0 = New
    if fill:
        er.setField(fix.ExecType("F" if begin_string == "FIX.4.4" else "2"))
        er.setField(fix.OrdStatus("2"))
        er.setField(fix.StringField(14, qty))  # CumQty
        er.setField(fix.StringField(151, "0"))  # LeavesQty
        er.setField(fix.StringField(32, qty))  # LastQty / LastShares
        er.setField(fix.StringField(31, price))  # LastPx
    else:
        er.setField(fix.ExecType("0"))
        er.setField(fix.OrdStatus("0"))
        er.setField(fix.StringField(14, "0"))
        er.setField(fix.StringField(151, qty))
    er.setField(fix.StringField(6, price if fill else "0"))  # AvgPx
    er.setField(fix.Symbol(body_field(order, 55) or "?"))
    er.setField(fix.Side(body_field(order, 54) or "1"))
    er.setField(fix.StringField(38, qty))
    return er


class QuickfixAcceptor:
    """A running ``quickfix.SocketAcceptor``.

    There is deliberately no ``stop``: QuickFIX 1.16's ``Acceptor.stop()`` races with its own
    server thread (``SocketServer::close`` walks a map the thread is freeing) and segfaults the
    process now and then once a client has connected. So an acceptor lives as long as its
    process: :meth:`shutdown` logs the sessions out, and the process then exits (the script
    does), or is killed (the tests that need a crashed acceptor do). FileStore flushes every
    message as it is sent, so nothing is lost either way.
    """

    def __init__(self, config: AcceptorConfig, application: fix.Application) -> None:
        self.config = config
        self.application = application
        config.store_dir.mkdir(parents=True, exist_ok=True)
        if config.log_dir is not None:
            config.log_dir.mkdir(parents=True, exist_ok=True)
        self._settings_path = config.store_dir / "acceptor.cfg"
        self._settings_path.write_text(config.settings_text())
        self._settings = fix.SessionSettings(str(self._settings_path))
        self._store = fix.FileStoreFactory(self._settings)
        self._log = fix.FileLogFactory(self._settings) if config.log_dir is not None else None
        if self._log is not None:
            self._acceptor = fix.SocketAcceptor(application, self._store, self._settings, self._log)
        else:
            self._acceptor = fix.SocketAcceptor(application, self._store, self._settings)

    def start(self) -> None:
        self._acceptor.start()  # binds the port before it returns; raises if it cannot

    def sessions(self) -> list[fix.Session]:
        found = []
        for s in self.config.sessions:
            sid = fix.SessionID(s.begin_string, self.config.sender_comp_id, s.target_comp_id)
            session = fix.Session.lookupSession(sid)
            if session is not None:
                found.append(session)
        return found

    def is_logged_on(self) -> bool:
        return bool(self._acceptor.isLoggedOn())

    def shutdown(self, grace_s: float = 3.0) -> bool:
        """Send Logout on every logged-on session and wait up to ``grace_s`` for them to end;
        True if all ended. The acceptor keeps listening: exit the process next."""
        for session in self.sessions():
            if session.isLoggedOn():
                session.logout()
        deadline = time.monotonic() + grace_s
        while self.is_logged_on() and time.monotonic() < deadline:
            time.sleep(0.02)
        return not self.is_logged_on()


class EventFile:
    """Appends one JSON line per NewOrderSingle received (``--events``), flushed at once."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")

    def __call__(self, cl_ord_id: str, seq: int, poss_dup: bool) -> None:
        self._file.write(json.dumps({"cl": cl_ord_id, "seq": seq, "poss_dup": poss_dup}) + "\n")
        self._file.flush()


def read_events(path: Path) -> list[tuple[str, int, bool]]:
    """The (ClOrdID, MsgSeqNum, PossDupFlag) lines an ``--events`` file holds (complete lines)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.endswith("}"):
            d = json.loads(line)
            out.append((str(d["cl"]), int(d["seq"]), bool(d["poss_dup"])))
    return out


class QuickfixProcess:
    """This script as a child process (for tests): ``kill()`` is a crash, ``start()`` a restart
    over the same FileStore. Defaults: ExecutionReport answers, ResetOnLogon=N."""

    def __init__(self, port: int, store: Path, target: str, *, events: Path | None = None,
                 reply: str = "new", reset_on_logon: bool = False) -> None:
        self.cmd = [
            sys.executable, str(Path(__file__).resolve()), "--port", str(port), "--target", target,
            "--store", str(store), "--reply", reply,
        ]
        if not reset_on_logon:
            self.cmd.append("--no-reset")
        if events is not None:
            self.cmd += ["--events", str(events)]
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("quickfix-echo listening"):
            self.proc.kill()
            raise RuntimeError(f"quickfix_echo.py did not start: {line!r} {self.proc.communicate()[1]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self) -> tuple[int, str, str]:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="QuickFIX echo acceptor (the at-server application)")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--target", action="append", default=[],
                        help="an extra client CompID to accept (FIX.4.2 and FIX.4.4); repeatable")
    parser.add_argument("--sender", default="ISLD", help="our SenderCompID (default ISLD)")
    parser.add_argument("--store", type=Path, default=None,
                        help="FileStore directory (default: a temporary one, removed at exit)")
    parser.add_argument("--log", type=Path, default=None, help="write QuickFIX message logs here")
    parser.add_argument("--no-validate", action="store_true", help="turn data-dictionary validation off")
    parser.add_argument("--reply", choices=["echo", "new", "fill"], default="echo",
                        help="echo: the at-server application (default); new/fill: answer every "
                             "NewOrderSingle with an ExecutionReport New / Fill")
    parser.add_argument("--no-reset", action="store_true",
                        help="ResetOnLogon=N: keep sequence numbers across logons (resend tests)")
    parser.add_argument("--events", type=Path, default=None,
                        help="with --reply new/fill: append a JSON line per NewOrderSingle received")
    args = parser.parse_args(argv)
    faulthandler.enable()  # a crash inside QuickFIX then shows where Python was

    owned = args.store is None
    store: Path = Path(tempfile.mkdtemp(prefix="qf-echo-")) if owned else args.store
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        config = AcceptorConfig(
            port=args.port, store_dir=store, sessions=echo_sessions(args.target),
            sender_comp_id=args.sender, validate=not args.no_validate, log_dir=args.log,
            reset_on_logon=not args.no_reset,
        )
        app: EchoApplication | ExecutionReportApplication
        if args.reply == "echo":
            app = EchoApplication()
        else:
            events = EventFile(args.events) if args.events is not None else None
            app = ExecutionReportApplication(fill=args.reply == "fill", on_order=events)
        acceptor = QuickfixAcceptor(config, app)
        acceptor.start()
        sessions = " ".join(f"{s.begin_string}:{s.target_comp_id}" for s in config.sessions)
        print(f"quickfix-echo listening on port {args.port} as {args.sender} store={store} "
              f"sessions={sessions}", flush=True)
        while not stop.wait(0.2):
            pass
        acceptor.shutdown()
        print(f"quickfix-echo stopped: echoed={app.echoed} rejected={app.rejected}", flush=True)
    except (fix.ConfigError, fix.RuntimeError, ValueError) as e:
        print(f"quickfix-echo: {e}", file=sys.stderr, flush=True)
        code = 2
    finally:
        if owned:
            shutil.rmtree(store, ignore_errors=True)
    # no Acceptor.stop() (see QuickfixAcceptor) and no interpreter teardown of the SWIG objects,
    # which can crash the same way: the store is flushed, leave now
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
