"""QuickFIX-style session settings files: [DEFAULT] and [SESSION] sections of Key=Value lines.

    # comment
    [DEFAULT]
    ConnectionType=acceptor
    SocketAcceptPort=9878
    [SESSION]
    BeginString=FIX.4.2
    SenderCompID=ISLD
    TargetCompID=TW42

A session takes every DEFAULT key, then its own keys override them. Keys are QuickFIX's names
(case-sensitive, as in QuickFIX); an unknown key, a bad value or a missing required key is a
ConfigError naming the file, line, section and key, and saying what was expected. Relative paths
(DataDictionary, FileStorePath, FileLogPath, certificate files) are taken relative to the settings
file's folder, so that a configuration means the same from any working directory.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from fixgw.errors import ConfigError

__all__ = [
    "KNOWN_KEYS",
    "ConfigError",
    "SessionID",
    "SessionSettings",
    "load_settings",
    "parse_settings",
]

_BEGIN_RE = re.compile(r"FIXT?\.[0-9]\.[0-9]")
_BUILTIN_DICTIONARIES = ("FIX.4.2", "FIX.4.4")


@dataclass(frozen=True, slots=True, order=True)
class SessionID:
    """A FIX session's identity: BeginString, SenderCompID, TargetCompID (our side first)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    # the hash, computed once: a SessionID keys dicts on every message sent or received
    _hash: int = field(init=False, repr=False, compare=False)

    def __hash__(self) -> int:
        return self._hash

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "_hash", hash((self.begin_string, self.sender_comp_id, self.target_comp_id))
        )
        if not _BEGIN_RE.fullmatch(self.begin_string):
            raise ValueError(f"BeginString {self.begin_string!r}: expected FIX.4.x or FIXT.1.1")
        for name, v in (
            ("SenderCompID", self.sender_comp_id),
            ("TargetCompID", self.target_comp_id),
        ):
            if not v:
                raise ValueError(f"{name} must not be empty")
            if any(c in v for c in "\x01=|:") or v != v.strip() or "->" in v:
                raise ValueError(f"{name} {v!r} contains a character a CompID cannot hold")

    def __str__(self) -> str:
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"

    def reverse(self) -> SessionID:
        """The same session seen from the other side (Sender and Target swapped)."""
        return SessionID(self.begin_string, self.target_comp_id, self.sender_comp_id)

    @property
    def is_dynamic(self) -> bool:
        """True for an acceptor template that accepts any client CompID (TargetCompID=*)."""
        return self.target_comp_id == "*"

    def file_stem(self) -> str:
        """A file-name-safe form, e.g. 'FIX.4.2-ISLD-TW42' (QuickFIX's file naming)."""
        raw = f"{self.begin_string}-{self.sender_comp_id}-{self.target_comp_id}"
        return re.sub(r"[^A-Za-z0-9._-]", "_", raw)

    @classmethod
    def parse(cls, text: str) -> SessionID:
        """Parse the str() form 'FIX.4.2:ISLD->TW42'."""
        m = re.fullmatch(r"([^:]+):(.+)->(.+)", text)
        if m is None:
            raise ValueError(f"session id {text!r}: expected BEGINSTRING:SENDER->TARGET")
        return cls(m.group(1), m.group(2), m.group(3))


ConnectionType = Literal["acceptor", "initiator"]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """One session's settings, typed, with QuickFIX's defaults; validated on construction."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    connection_type: ConnectionType
    sender_sub_id: str | None = None
    target_sub_id: str | None = None
    socket_accept_host: str = "0.0.0.0"
    socket_accept_port: int | None = None
    socket_connect_host: str | None = None
    socket_connect_port: int | None = None
    heart_bt_int: int = 30
    reset_on_logon: bool = False
    reset_on_logout: bool = False
    reset_on_disconnect: bool = False
    # fixgw's own (not QuickFIX's): an initiator whose counterparty answers its Logon with a
    # MsgSeqNum lower than expected (it restarted with no memory of the session) logs on again
    # with ResetSeqNumFlag=Y instead of retrying the same Logon for ever
    reset_when_peer_forgot: bool = False
    refresh_on_logon: bool = False
    use_data_dictionary: bool = True
    data_dictionary: Path | None = None  # None: the built-in dictionary of begin_string
    validate_fields_out_of_order: bool = True
    validate_fields_have_values: bool = True
    validate_user_defined_fields: bool = True
    allow_unknown_msg_fields: bool = False
    check_latency: bool = True
    max_latency: int = 120
    check_comp_id: bool = True
    logon_timeout: int = 10
    logout_timeout: int = 2
    reconnect_interval: int = 30
    max_reconnect_interval: int | None = None  # None: = max(reconnect_interval, 60)
    file_store_path: Path | None = None  # None: messages kept in memory only
    file_store_sync: bool = True  # fsync each store commit (QuickFIX's FileStore defaults to N)
    file_log_path: Path | None = None  # None: no message/event log files
    file_log_keep_days: int = 7  # rotated daily; files of older days deleted (0: kept); ours, not QuickFIX's
    persist_messages: bool = True
    send_redundant_resend_requests: bool = False
    resend_request_chunk_size: int = 0  # 0: ask for the whole gap at once
    max_message_size: int = 1 << 20
    socket_use_ssl: bool = False
    socket_certificate_file: Path | None = None
    socket_private_key_file: Path | None = None
    socket_ca_file: Path | None = None
    socket_nodelay: bool = True
    timestamp_precision: int = 3
    start_time: time | None = None
    end_time: time | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    # keys the caller declared with parse_settings(extra_keys=...); not part of the hash
    extras: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def __post_init__(self) -> None:
        # SessionID checks BeginString and the CompIDs
        sid = SessionID(self.begin_string, self.sender_comp_id, self.target_comp_id)
        if self.connection_type not in ("acceptor", "initiator"):
            raise ValueError(
                f"ConnectionType {self.connection_type!r}: expected acceptor or initiator"
            )
        if self.sender_comp_id == "*":
            raise ValueError("SenderCompID cannot be '*' (only an acceptor's TargetCompID can)")
        if sid.is_dynamic and self.connection_type != "acceptor":
            raise ValueError("TargetCompID=* (any client) is only possible on an acceptor")
        if self.connection_type == "acceptor":
            if self.socket_accept_port is None:
                raise ValueError("SocketAcceptPort is required for ConnectionType=acceptor")
        else:
            if self.socket_connect_host is None or self.socket_connect_port is None:
                raise ValueError(
                    "SocketConnectHost and SocketConnectPort are required for ConnectionType=initiator"
                )
        for name, port in (
            ("SocketAcceptPort", self.socket_accept_port),
            ("SocketConnectPort", self.socket_connect_port),
        ):
            if port is not None and not 1 <= port <= 65535:
                raise ValueError(f"{name}={port}: expected an integer 1..65535")
        for name, v, lo, hi in (
            ("HeartBtInt", self.heart_bt_int, 1, 3600),
            ("MaxLatency", self.max_latency, 1, 86400),
            ("LogonTimeout", self.logon_timeout, 1, 3600),
            ("LogoutTimeout", self.logout_timeout, 1, 3600),
            ("ReconnectInterval", self.reconnect_interval, 1, 86400),
            ("ResendRequestChunkSize", self.resend_request_chunk_size, 0, 1_000_000),
            ("MaxMessageSize", self.max_message_size, 64, 64 << 20),
        ):
            if not lo <= v <= hi:
                raise ValueError(f"{name}={v}: expected an integer {lo}..{hi}")
        if self.max_reconnect_interval is not None and not (
            self.reconnect_interval <= self.max_reconnect_interval <= 86400
        ):
            raise ValueError(
                f"MaxReconnectInterval={self.max_reconnect_interval}: expected an integer "
                f"{self.reconnect_interval}..86400 (not below ReconnectInterval)"
            )
        if self.timestamp_precision not in (0, 3, 6, 9):
            raise ValueError(
                f"TimeStampPrecision={self.timestamp_precision}: expected 0, 3, 6 or 9"
            )
        if (self.start_time is None) != (self.end_time is None):
            raise ValueError("StartTime and EndTime go together: give both or neither")
        if (
            self.use_data_dictionary
            and self.data_dictionary is None
            and self.begin_string not in _BUILTIN_DICTIONARIES
        ):
            raise ValueError(
                f"BeginString={self.begin_string} has no built-in data dictionary "
                f"({', '.join(_BUILTIN_DICTIONARIES)}): set DataDictionary= to a QuickFIX XML file "
                "or UseDataDictionary=N"
            )
        if (
            self.socket_use_ssl
            and self.connection_type == "acceptor"
            and (self.socket_certificate_file is None or self.socket_private_key_file is None)
        ):
            raise ValueError(
                "SocketUseSSL=Y on an acceptor needs SocketCertificateFile and SocketPrivateKeyFile"
            )
        if (self.socket_certificate_file is None) != (self.socket_private_key_file is None):
            raise ValueError("SocketCertificateFile and SocketPrivateKeyFile go together")

    @property
    def session_id(self) -> SessionID:
        """This session's SessionID (our SenderCompID first)."""
        return SessionID(self.begin_string, self.sender_comp_id, self.target_comp_id)

    @property
    def is_acceptor(self) -> bool:
        """True for ConnectionType=acceptor."""
        return self.connection_type == "acceptor"

    @property
    def effective_max_reconnect_interval(self) -> int:
        """The reconnect back-off cap in seconds (MaxReconnectInterval or its default)."""
        if self.max_reconnect_interval is not None:
            return self.max_reconnect_interval
        return max(self.reconnect_interval, 60)


# ----------------------------------------------------------------------------------------------
# Parsing

_Parser = Callable[[str, Path | None], Any]


def _p_str(v: str, _base: Path | None) -> str:
    if not v:
        raise ValueError("expected a non-empty text")
    return v


def _p_yn(v: str, _base: Path | None) -> bool:
    if v in ("Y", "y"):
        return True
    if v in ("N", "n"):
        return False
    raise ValueError(f"{v!r}: expected Y or N")


def _p_int(lo: int, hi: int) -> _Parser:
    def parse(v: str, _base: Path | None) -> int:
        if not re.fullmatch(r"[0-9]+", v) or not lo <= int(v) <= hi:
            raise ValueError(f"{v!r}: expected an integer {lo}..{hi}")
        return int(v)

    return parse


def _p_path(v: str, base: Path | None) -> Path:
    if not v:
        raise ValueError("expected a path")
    p = Path(v).expanduser()
    return p if p.is_absolute() or base is None else base / p


def _p_file(v: str, base: Path | None) -> Path:
    p = _p_path(v, base)
    if not p.is_file():
        raise ValueError(f"{v!r}: file not found ({p})")
    return p


def _p_conn(v: str, _base: Path | None) -> str:
    if v not in ("acceptor", "initiator"):
        raise ValueError(f"{v!r}: expected acceptor or initiator")
    return v


def _p_begin(v: str, _base: Path | None) -> str:
    if not _BEGIN_RE.fullmatch(v):
        raise ValueError(
            f"{v!r}: expected FIX.4.2, FIX.4.4 (or another FIX.4.x with DataDictionary)"
        )
    return v


def _p_time(v: str, _base: Path | None) -> time:
    m = re.fullmatch(r"([0-9]{2}):([0-9]{2}):([0-9]{2})", v)
    if m is None or int(m.group(1)) > 23 or int(m.group(2)) > 59 or int(m.group(3)) > 59:
        raise ValueError(f"{v!r}: expected a time HH:MM:SS")
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _p_precision(v: str, _base: Path | None) -> int:
    if v not in ("0", "3", "6", "9"):
        raise ValueError(f"{v!r}: expected 0, 3, 6 or 9 (digits of the seconds' fraction)")
    return int(v)


def _p_host(v: str, _base: Path | None) -> str:
    if not v or any(c.isspace() for c in v):
        raise ValueError(f"{v!r}: expected a host name or IP address")
    return v


_PORT = _p_int(1, 65535)

# QuickFIX key -> (SessionSettings attribute, parser)
_KEYS: dict[str, tuple[str, _Parser]] = {
    "BeginString": ("begin_string", _p_begin),
    "SenderCompID": ("sender_comp_id", _p_str),
    "TargetCompID": ("target_comp_id", _p_str),
    "SenderSubID": ("sender_sub_id", _p_str),
    "TargetSubID": ("target_sub_id", _p_str),
    "ConnectionType": ("connection_type", _p_conn),
    "SocketAcceptHost": ("socket_accept_host", _p_host),
    "SocketAcceptPort": ("socket_accept_port", _PORT),
    "SocketConnectHost": ("socket_connect_host", _p_host),
    "SocketConnectPort": ("socket_connect_port", _PORT),
    "HeartBtInt": ("heart_bt_int", _p_int(1, 3600)),
    "ResetOnLogon": ("reset_on_logon", _p_yn),
    "ResetOnLogout": ("reset_on_logout", _p_yn),
    "ResetOnDisconnect": ("reset_on_disconnect", _p_yn),
    "ResetWhenPeerForgot": ("reset_when_peer_forgot", _p_yn),
    "RefreshOnLogon": ("refresh_on_logon", _p_yn),
    "UseDataDictionary": ("use_data_dictionary", _p_yn),
    "DataDictionary": ("data_dictionary", _p_file),
    "ValidateFieldsOutOfOrder": ("validate_fields_out_of_order", _p_yn),
    "ValidateFieldsHaveValues": ("validate_fields_have_values", _p_yn),
    "ValidateUserDefinedFields": ("validate_user_defined_fields", _p_yn),
    "AllowUnknownMsgFields": ("allow_unknown_msg_fields", _p_yn),
    "CheckLatency": ("check_latency", _p_yn),
    "MaxLatency": ("max_latency", _p_int(1, 86400)),
    "CheckCompID": ("check_comp_id", _p_yn),
    "LogonTimeout": ("logon_timeout", _p_int(1, 3600)),
    "LogoutTimeout": ("logout_timeout", _p_int(1, 3600)),
    "ReconnectInterval": ("reconnect_interval", _p_int(1, 86400)),
    "MaxReconnectInterval": ("max_reconnect_interval", _p_int(1, 86400)),
    "FileStorePath": ("file_store_path", _p_path),
    "FileStoreSync": ("file_store_sync", _p_yn),
    "FileLogPath": ("file_log_path", _p_path),
    "FileLogKeepDays": ("file_log_keep_days", _p_int(0, 36500)),
    "PersistMessages": ("persist_messages", _p_yn),
    "SendRedundantResendRequests": ("send_redundant_resend_requests", _p_yn),
    "ResendRequestChunkSize": ("resend_request_chunk_size", _p_int(0, 1_000_000)),
    "MaxMessageSize": ("max_message_size", _p_int(64, 64 << 20)),
    "SocketUseSSL": ("socket_use_ssl", _p_yn),
    "SocketCertificateFile": ("socket_certificate_file", _p_file),
    "SocketPrivateKeyFile": ("socket_private_key_file", _p_file),
    "SocketCAFile": ("socket_ca_file", _p_file),
    "SocketNodelay": ("socket_nodelay", _p_yn),
    "TimeStampPrecision": ("timestamp_precision", _p_precision),
    "StartTime": ("start_time", _p_time),
    "EndTime": ("end_time", _p_time),
    "Username": ("username", _p_str),
    "Password": ("password", _p_str),
}

KNOWN_KEYS: frozenset[str] = frozenset(_KEYS)
_REQUIRED = ("BeginString", "SenderCompID", "TargetCompID", "ConnectionType")


@dataclass(frozen=True, slots=True)
class _Entry:
    value: str
    line: int
    section: str


def _suggest(key: str, known: Iterable[str]) -> str:
    known = list(known)
    lower = {k.lower(): k for k in known}
    if key.lower() in lower:
        return f" (did you mean {lower[key.lower()]}? keys are case-sensitive)"
    m = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {m[0]}?)" if m else ""


def parse_settings(
    text: str,
    source_name: str,
    *,
    base_dir: Path | None = None,
    extra_keys: Iterable[str] = (),
) -> list[SessionSettings]:
    """Parse settings text; source_name names it in errors, base_dir anchors relative paths."""
    extra = frozenset(extra_keys)
    clash = extra & KNOWN_KEYS
    if clash:
        raise ConfigError(
            f"extra keys {sorted(clash)} are already standard keys", source=source_name
        )
    known = KNOWN_KEYS | extra
    default: dict[str, _Entry] = {}
    sessions: list[tuple[int, dict[str, _Entry]]] = []
    current: dict[str, _Entry] | None = None
    section = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ConfigError(
                    f"section header {line!r} has no closing ']'", source=source_name, line=lineno
                )
            name = line[1:-1].strip().upper()
            if name == "DEFAULT":
                section, current = "DEFAULT", default
            elif name == "SESSION":
                section, current = "SESSION", {}
                sessions.append((lineno, current))
            else:
                raise ConfigError(
                    f"unknown section [{line[1:-1].strip()}]: expected [DEFAULT] or [SESSION]",
                    source=source_name,
                    line=lineno,
                )
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"expected Key=Value, got {line!r}", source=source_name, line=lineno)
        if current is None:
            raise ConfigError(
                f"{key}= before any [DEFAULT] or [SESSION] section", source=source_name, line=lineno
            )
        if key not in known:
            raise ConfigError(
                f"unknown key{_suggest(key, known)}",
                source=source_name,
                line=lineno,
                section=section,
                key=key,
            )
        if key in current:
            raise ConfigError(
                f"given twice in this section (first at line {current[key].line})",
                source=source_name,
                line=lineno,
                section=section,
                key=key,
            )
        current[key] = _Entry(value, lineno, section)
    if not sessions:
        raise ConfigError("no [SESSION] section: nothing to run", source=source_name)

    result: list[SessionSettings] = []
    seen: dict[SessionID, int] = {}
    for start, own in sessions:
        merged = {**default, **own}
        for req in _REQUIRED:
            if req not in merged:
                raise ConfigError(
                    "required key missing (in this section or [DEFAULT])",
                    source=source_name,
                    line=start,
                    section="SESSION",
                    key=req,
                )
        kwargs: dict[str, Any] = {}
        extras: dict[str, str] = {}
        for key, entry in merged.items():
            if key in extra:
                extras[key] = entry.value
                continue
            attr, parse = _KEYS[key]
            try:
                kwargs[attr] = parse(entry.value, base_dir)
            except ValueError as e:
                raise ConfigError(
                    f"{key}={entry.value}: {e}",
                    source=source_name,
                    line=entry.line,
                    section=entry.section,
                    key=key,
                ) from None
        kwargs["extras"] = MappingProxyType(extras)
        try:
            s = SessionSettings(**kwargs)
        except ValueError as e:
            label = f"{merged['BeginString'].value}:{merged['SenderCompID'].value}->{merged['TargetCompID'].value}"
            raise ConfigError(
                f"session {label}: {e}", source=source_name, line=start, section="SESSION"
            ) from None
        sid = s.session_id
        if sid in seen:
            raise ConfigError(
                f"session {sid} defined twice (first at line {seen[sid]})",
                source=source_name,
                line=start,
                section="SESSION",
            )
        seen[sid] = start
        result.append(s)
    return result


def load_settings(path: str | Path, *, extra_keys: Iterable[str] = ()) -> list[SessionSettings]:
    """Read a settings file; relative paths in it are taken from the file's folder."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read settings file: {e.strerror or e}", source=str(p)) from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text: {e}", source=str(p)) from e
    return parse_settings(text, str(p), base_dir=p.parent, extra_keys=extra_keys)
