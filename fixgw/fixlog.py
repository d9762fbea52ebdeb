"""Per-session FIX logs: a readable message log (one line per message) and an event log.

    FileLogPath/FIX.4.2-ISLD-TW42.messages.log
        20240102-03:04:05.123456 IN 8=FIX.4.2|9=63|35=A|...|10=123|
        20240102-03:04:05.124001 OUT 8=FIX.4.2|9=63|35=A|...|10=045|
    FileLogPath/FIX.4.2-ISLD-TW42.event.log
        20240102-03:04:05.123900 Logon received, sequence reset

Times are UTC with microseconds; SOH is shown as '|'. Writes only append to a memory buffer (no
system call, no fsync, so they are cheap on an asyncio loop); one background thread writes every
file log's buffer out every ~200 ms, and flush()/close() write it at once. A log is a record for
people, not the durable state (that is the message store), so it is never fsynced.

The files rotate daily (UTC days, as the time stamps): the first flush of a new day renames
them to ``<stem>.messages.<YYYYMMDD>.log`` / ``<stem>.event.<YYYYMMDD>.log`` (the day they
cover) and starts new ones, which take what that flush writes (so lines buffered in the last
~200 ms before midnight open the new day's file);
a file found at open that was last written on an earlier day is rotated the same way. Rotated
files older than ``keep_days`` days (``FileLogKeepDays``, default 7; 0 keeps them all) are
deleted. Why: a gateway logs ~1 KB per order (the issue measured 33 MB of FIX logs for 40,000
orders), so a month of full load would be hundreds of GB in one file per session.
"""

from __future__ import annotations

import abc
import atexit
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, Self

from fixgw.config import SessionID
from fixgw.errors import FixLogError

__all__ = [
    "DEFAULT_KEEP_DAYS",
    "FLUSH_INTERVAL_S",
    "FileLog",
    "FileLogFactory",
    "FixLog",
    "FixLogError",
    "LogFactory",
    "LogRecord",
    "MemoryLog",
    "NullLog",
    "format_message",
    "make_log_factory",
    "read_message_log",
]

FLUSH_INTERVAL_S = 0.2
DEFAULT_KEEP_DAYS = 7
_MAX_BUFFER = 4 << 20  # past this many buffered bytes a write flushes inline (back-pressure)
_TS_FORMAT = "%Y%m%d-%H:%M:%S"


def format_message(raw: bytes) -> str:
    """A raw FIX message as one readable line: SOH -> '|', CR/LF escaped (no line breaks)."""
    text = raw.decode("latin-1").replace("\x01", "|")
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text


class FixLog(abc.ABC):
    """A session's log: messages in and out, and events."""

    @abc.abstractmethod
    def incoming(self, raw: bytes) -> None:
        """Record a message received."""

    @abc.abstractmethod
    def outgoing(self, raw: bytes) -> None:
        """Record a message sent."""

    @abc.abstractmethod
    def event(self, text: str) -> None:
        """Record a session event (logon, reject, sequence reset, disconnect, ...)."""

    def flush(self) -> None:
        """Write out what is buffered (no-op when nothing is buffered)."""

    def close(self) -> None:
        """Flush and release files; later writes are ignored (logging never fails a session)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LogFactory = Callable[[SessionID], FixLog]


class NullLog(FixLog):
    """Records nothing."""

    def incoming(self, raw: bytes) -> None:
        """Ignore."""

    def outgoing(self, raw: bytes) -> None:
        """Ignore."""

    def event(self, text: str) -> None:
        """Ignore."""


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One logged message or event: when, what kind ('IN', 'OUT' or 'EVENT'), the content."""

    time: datetime
    kind: str
    raw: bytes  # the message (SOH restored) or the event text in UTF-8

    def __post_init__(self) -> None:
        if self.kind not in ("IN", "OUT", "EVENT"):
            raise ValueError(f"log record kind {self.kind!r}: expected IN, OUT or EVENT")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryLog(FixLog):
    """Keeps every record in a list, for tests."""

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        """An empty log; clock stamps the records."""
        self._clock = clock
        self._lock = threading.Lock()
        self.records: list[LogRecord] = []
        self.closed = False

    def _add(self, kind: str, raw: bytes) -> None:
        with self._lock:
            if not self.closed:
                self.records.append(LogRecord(self._clock(), kind, bytes(raw)))

    def incoming(self, raw: bytes) -> None:
        """Record a message received."""
        self._add("IN", raw)

    def outgoing(self, raw: bytes) -> None:
        """Record a message sent."""
        self._add("OUT", raw)

    def event(self, text: str) -> None:
        """Record a session event."""
        self._add("EVENT", text.encode("utf-8"))

    def close(self) -> None:
        """Stop recording (the records stay readable)."""
        self.closed = True

    @property
    def messages(self) -> list[tuple[str, bytes]]:
        """(direction, raw) of every message, in order."""
        return [(r.kind, r.raw) for r in self.records if r.kind != "EVENT"]

    @property
    def events(self) -> list[str]:
        """The event texts, in order."""
        return [r.raw.decode("utf-8") for r in self.records if r.kind == "EVENT"]


class _Stamp:
    """Formats UTC times quickly: the seconds part is formatted once per second."""

    __slots__ = ("_cache", "_clock")

    def __init__(self, clock: Callable[[], datetime] | None) -> None:
        self._clock = clock
        # (second, its text) swapped as one reference, so concurrent callers never mix them
        self._cache: tuple[int, str] = (-1, "")

    def now(self) -> str:
        if self._clock is not None:
            t = self._clock()
            if t.tzinfo is not None:
                t = t.astimezone(UTC)
            return t.strftime(_TS_FORMAT) + f".{t.microsecond:06d}"
        ts = time.time()
        sec = int(ts)
        cache = self._cache
        if cache[0] != sec:
            cache = (sec, time.strftime(_TS_FORMAT, time.gmtime(sec)))
            self._cache = cache
        return f"{cache[1]}.{int((ts - sec) * 1_000_000):06d}"


class FileLog(FixLog):
    """The two log files of one session, written by the background flusher."""

    def __init__(
        self,
        directory: str | Path,
        session_id: SessionID,
        *,
        clock: Callable[[], datetime] | None = None,
        keep_days: int = DEFAULT_KEEP_DAYS,
    ) -> None:
        """Open (append) the session's .messages.log and .event.log in directory; rotated
        files older than keep_days days are deleted (0: kept)."""
        if isinstance(keep_days, bool) or not isinstance(keep_days, int) or keep_days < 0:
            raise ValueError(f"keep_days must be an integer >= 0, got {keep_days!r}")
        self.directory = Path(directory)
        self.session_id = session_id
        stem = self._stem = session_id.file_stem()
        self.messages_path = self.directory / f"{stem}.messages.log"
        self.event_path = self.directory / f"{stem}.event.log"
        self.keep_days = keep_days
        self._clock = clock
        self._stamp = _Stamp(clock)
        self._lock = threading.Lock()  # guards the buffers
        self._io_lock = threading.Lock()  # one writer of the files at a time, in order
        self._msg_buf: list[str] = []
        self._evt_buf: list[str] = []
        self._buffered = 0
        self._closed = False
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise FixLogError(f"{self.directory}: cannot create the FIX log directory: {e}") from e
        self._day = self._today()
        for path in (self.messages_path, self.event_path):  # left from an earlier day
            try:
                written = datetime.fromtimestamp(path.stat().st_mtime, UTC).date()
            except OSError:
                continue
            if written < self._day:
                self._rotated(path, written)
        self._purge()
        self._msg_file: BinaryIO = self._open(self.messages_path)
        try:
            self._evt_file: BinaryIO = self._open(self.event_path)
        except FixLogError:
            self._msg_file.close()
            raise
        _flusher.register(self)

    def _today(self) -> date:
        now = self._clock() if self._clock is not None else datetime.now(UTC)
        return (now.astimezone(UTC) if now.tzinfo is not None else now).date()

    def _rotated(self, path: Path, day: date) -> None:
        """Rename a current file to its day's name (a free one, should that day have one)."""
        kind = path.name[len(self._stem) + 1:].split(".")[0]  # "messages" or "event"
        target = path.with_name(f"{self._stem}.{kind}.{day:%Y%m%d}.log")
        n = 1
        while target.exists():
            target = path.with_name(f"{self._stem}.{kind}.{day:%Y%m%d}-{n}.log")
            n += 1
        try:
            path.rename(target)
        except OSError as e:
            raise FixLogError(f"{path}: cannot rotate the FIX log: {e}") from e

    def _purge(self) -> None:
        """Delete this session's rotated files older than keep_days days."""
        if self.keep_days == 0:
            return
        oldest = self._day - timedelta(days=self.keep_days)
        for kind in ("messages", "event"):
            for path in self.directory.glob(f"{self._stem}.{kind}.*.log"):
                stamp = path.name[len(self._stem) + len(kind) + 2:].split(".")[0][:8]
                try:
                    day = datetime.strptime(stamp, "%Y%m%d").date()
                except ValueError:
                    continue  # not a rotated file of ours
                if day < oldest:
                    try:
                        path.unlink()
                    except OSError:
                        pass  # gone already, or not ours to delete: tried again at the next rotation

    def _rotate_if_new_day(self) -> None:
        """With the io lock held, before writing: a new day starts new files."""
        today = self._today()
        if today == self._day:
            return
        self._msg_file.close()
        self._evt_file.close()
        self._rotated(self.messages_path, self._day)
        self._rotated(self.event_path, self._day)
        self._day = today
        self._msg_file = self._open(self.messages_path)
        self._evt_file = self._open(self.event_path)
        self._purge()

    @staticmethod
    def _open(path: Path) -> BinaryIO:
        try:
            return open(path, "ab")
        except OSError as e:
            raise FixLogError(f"{path}: cannot open FIX log file: {e.strerror or e}") from e

    def _add(self, events: bool, line: str) -> None:
        # the buffer is looked up under the lock: a reference taken before it could be the list
        # a flush has just swapped out and written, and the line appended to it would be lost
        # (seen: 4,999 of 5,000 lines written while the flusher thread ran)
        with self._lock:
            if self._closed:
                return
            (self._evt_buf if events else self._msg_buf).append(line)
            self._buffered += len(line)
            full = self._buffered > _MAX_BUFFER
        if full:
            self.flush()

    def incoming(self, raw: bytes) -> None:
        """Record a message received (buffered)."""
        self._add(False, f"{self._stamp.now()} IN {format_message(raw)}\n")

    def outgoing(self, raw: bytes) -> None:
        """Record a message sent (buffered)."""
        self._add(False, f"{self._stamp.now()} OUT {format_message(raw)}\n")

    def event(self, text: str) -> None:
        """Record a session event (buffered); line breaks in the text are escaped."""
        one_line = text.replace("\r", "\\r").replace("\n", "\\n")
        self._add(True, f"{self._stamp.now()} {one_line}\n")

    def flush(self) -> None:
        """Write the buffered lines to the files now (no fsync)."""
        with self._io_lock:
            with self._lock:
                msgs, self._msg_buf = self._msg_buf, []
                evts, self._evt_buf = self._evt_buf, []
                self._buffered = 0
            if self._msg_file.closed:
                return
            try:
                self._rotate_if_new_day()
                if msgs:
                    self._msg_file.write("".join(msgs).encode("latin-1", "replace"))
                    self._msg_file.flush()
                if evts:
                    self._evt_file.write("".join(evts).encode("utf-8", "replace"))
                    self._evt_file.flush()
            except OSError as e:
                # these lines are lost: the log is for people, the store keeps the state
                raise FixLogError(f"{self.directory}: cannot write FIX log: {e}") from e

    def close(self) -> None:
        """Flush and close both files."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _flusher.unregister(self)
        try:
            self.flush()
        finally:
            with self._io_lock:
                self._msg_file.close()
                self._evt_file.close()


class _Flusher:
    """One daemon thread flushing every open FileLog every FLUSH_INTERVAL_S."""

    def __init__(self) -> None:
        self._logs: weakref.WeakSet[FileLog] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def register(self, log: FileLog) -> None:
        with self._lock:
            self._logs.add(log)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="fixlog-flusher", daemon=True
                )
                self._thread.start()

    def unregister(self, log: FileLog) -> None:
        with self._lock:
            self._logs.discard(log)

    def flush_all(self) -> None:
        with self._lock:
            logs = list(self._logs)
        for log in logs:
            try:
                log.flush()
            except FixLogError:
                pass  # a full disk must not stop the other sessions' logs; retried next tick

    def _run(self) -> None:
        while True:
            time.sleep(FLUSH_INTERVAL_S)
            self.flush_all()


_flusher = _Flusher()
atexit.register(_flusher.flush_all)


class FileLogFactory:
    """(SessionID) -> FileLog in one directory (FileLogPath)."""

    def __init__(
        self, directory: str | Path, *, clock: Callable[[], datetime] | None = None,
        keep_days: int = DEFAULT_KEEP_DAYS,
    ) -> None:
        """Logs of every session will be written in directory (created if missing)."""
        self.directory = Path(directory)
        self._clock = clock
        self._keep_days = keep_days

    def __call__(self, session_id: SessionID) -> FileLog:
        """Open the session's log files."""
        return FileLog(self.directory, session_id, clock=self._clock, keep_days=self._keep_days)


def make_log_factory(file_log_path: str | Path | None, keep_days: int = DEFAULT_KEEP_DAYS) -> LogFactory:
    """File logs in file_log_path (FileLogPath), or NullLog when it is None."""
    if file_log_path is None:
        return lambda _sid: NullLog()
    return FileLogFactory(file_log_path, keep_days=keep_days)


def read_message_log(path: str | Path) -> Iterator[LogRecord]:
    """Parse a .messages.log into records ('|' becomes SOH again, so a '|' in a value does too)."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            text = line.rstrip(b"\n").decode("latin-1")
            try:
                stamp, kind, msg = text.split(" ", 2)
                t = datetime.strptime(stamp, _TS_FORMAT + ".%f").replace(tzinfo=UTC)
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not a FIX message log line: {e}") from e
            raw = msg.replace("\\n", "\n").replace("\\r", "\r").replace("|", "\x01")
            yield LogRecord(t, kind, raw.encode("latin-1"))
