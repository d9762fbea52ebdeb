"""Settings files: inheritance, typed defaults, and errors that name file, line, section, key."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from fixgw.config import (
    KNOWN_KEYS,
    ConfigError,
    SessionID,
    SessionSettings,
    load_settings,
    parse_settings,
)

ACCEPTOR = """# the reference acceptor of the acceptance tests
[DEFAULT]
ConnectionType=acceptor
SenderCompID=ISLD
SocketAcceptHost=127.0.0.1
SocketAcceptPort=9878
ResetOnLogon=Y
MaxLatency=120

[SESSION]
BeginString=FIX.4.2
TargetCompID=TW42

[SESSION]
BeginString=FIX.4.4
TargetCompID=TW44
HeartBtInt=5
ValidateUserDefinedFields=N
"""


def test_defaults_inherited_and_overridden() -> None:
    s42, s44 = parse_settings(ACCEPTOR, "at.cfg")
    assert s42.session_id == SessionID("FIX.4.2", "ISLD", "TW42")
    assert s44.session_id == SessionID("FIX.4.4", "ISLD", "TW44")
    for s in (s42, s44):
        assert (
            s.is_acceptor and s.socket_accept_host == "127.0.0.1" and s.socket_accept_port == 9878
        )
        assert s.reset_on_logon and not s.reset_on_logout and s.max_latency == 120
    assert s42.heart_bt_int == 30 and s44.heart_bt_int == 5
    assert s42.validate_user_defined_fields and not s44.validate_user_defined_fields
    # QuickFIX's defaults for what is not given
    assert s42.use_data_dictionary and s42.data_dictionary is None
    assert s42.check_latency and s42.check_comp_id and s42.validate_fields_out_of_order
    assert s42.logon_timeout == 10 and s42.logout_timeout == 2 and s42.reconnect_interval == 30
    assert s42.effective_max_reconnect_interval == 60
    assert s42.persist_messages and s42.socket_nodelay and not s42.socket_use_ssl
    assert s42.timestamp_precision == 3 and s42.file_store_path is None
    assert s42.start_time is None and s42.extras == {}


def test_session_id_value() -> None:
    sid = SessionID("FIX.4.2", "ISLD", "TW42")
    assert str(sid) == "FIX.4.2:ISLD->TW42"
    assert sid.reverse() == SessionID("FIX.4.2", "TW42", "ISLD")
    assert SessionID.parse(str(sid)) == sid
    assert sid.file_stem() == "FIX.4.2-ISLD-TW42"
    assert SessionID("FIX.4.4", "A/B", "C D1".replace(" ", "")).file_stem() == "FIX.4.4-A_B-CD1"
    assert SessionID("FIX.4.2", "ISLD", "*").is_dynamic
    assert hash(sid) == hash(SessionID("FIX.4.2", "ISLD", "TW42"))
    for bad in (
        ("FIX42", "A", "B"),
        ("FIX.4.2", "", "B"),
        ("FIX.4.2", "A", "B:C"),
        ("FIX.4.2", "A|", "B"),
    ):
        with pytest.raises(ValueError):
            SessionID(*bad)
    with pytest.raises(ValueError, match="expected BEGINSTRING:SENDER->TARGET"):
        SessionID.parse("nonsense")


def test_initiator_and_all_keys_typed(tmp_path: Path) -> None:
    (tmp_path / "dd.xml").write_text("<fix/>")
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    cfg = tmp_path / "init.cfg"
    cfg.write_text(
        """[SESSION]
ConnectionType=initiator
BeginString=FIX.4.4
SenderCompID=CLIENT
SenderSubID=desk1
TargetCompID=GW
TargetSubID=router
SocketConnectHost=localhost
SocketConnectPort=5001
HeartBtInt=15
ResetOnLogout=Y
ResetOnDisconnect=Y
ResetWhenPeerForgot=Y
RefreshOnLogon=Y
DataDictionary=dd.xml
ValidateFieldsOutOfOrder=N
ValidateFieldsHaveValues=N
AllowUnknownMsgFields=Y
CheckLatency=N
CheckCompID=N
LogonTimeout=5
LogoutTimeout=3
ReconnectInterval=2
MaxReconnectInterval=20
FileStorePath=store
FileStoreSync=N
FileLogPath=/var/tmp/fixlogs
FileLogKeepDays=30
PersistMessages=N
SendRedundantResendRequests=Y
ResendRequestChunkSize=100
MaxMessageSize=65536
SocketUseSSL=Y
SocketCertificateFile=cert.pem
SocketPrivateKeyFile=key.pem
SocketCAFile=ca.pem
SocketNodelay=N
TimeStampPrecision=6
StartTime=08:00:00
EndTime=17:30:00
Username=alice
Password=secret
"""
    )
    (s,) = load_settings(cfg)
    assert s.connection_type == "initiator" and not s.is_acceptor
    assert (s.sender_sub_id, s.target_sub_id) == ("desk1", "router")
    assert (s.socket_connect_host, s.socket_connect_port, s.heart_bt_int) == ("localhost", 5001, 15)
    assert s.reset_on_logout and s.reset_on_disconnect and s.refresh_on_logon and s.reset_when_peer_forgot
    assert s.data_dictionary == tmp_path / "dd.xml"  # relative to the settings file
    assert not (s.validate_fields_out_of_order or s.validate_fields_have_values)
    assert s.allow_unknown_msg_fields and not s.check_latency and not s.check_comp_id
    assert (s.logon_timeout, s.logout_timeout) == (5, 3)
    assert (s.reconnect_interval, s.effective_max_reconnect_interval) == (2, 20)
    assert s.file_store_path == tmp_path / "store" and not s.file_store_sync
    assert s.file_log_path == Path("/var/tmp/fixlogs") and s.file_log_keep_days == 30
    assert not s.persist_messages and s.send_redundant_resend_requests
    assert s.resend_request_chunk_size == 100 and s.max_message_size == 65536
    assert s.socket_use_ssl and s.socket_ca_file == tmp_path / "ca.pem"
    assert s.socket_certificate_file == tmp_path / "cert.pem"
    assert s.socket_private_key_file == tmp_path / "key.pem"
    assert not s.socket_nodelay and s.timestamp_precision == 6
    assert (s.start_time, s.end_time) == (time(8, 0), time(17, 30))
    assert (s.username, s.password) == ("alice", "secret")
    assert "secret" not in repr(s)
    # every documented key was exercised by this file or ACCEPTOR
    used = {line.split("=")[0] for line in cfg.read_text().splitlines() if "=" in line}
    used |= {"SocketAcceptHost", "SocketAcceptPort", "ResetOnLogon", "MaxLatency"}
    used |= {"ValidateUserDefinedFields", "UseDataDictionary"}
    assert used == set(KNOWN_KEYS)


def test_dynamic_acceptor_target() -> None:
    text = "[SESSION]\nConnectionType=acceptor\nBeginString=FIX.4.4\nSenderCompID=GW\nTargetCompID=*\nSocketAcceptPort=1\n"
    (s,) = parse_settings(text, "dyn.cfg")
    assert s.session_id.is_dynamic


def _err(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse_settings(text, "x.cfg")
    assert "x.cfg" in str(ei.value)
    return ei.value


def test_unknown_key_names_line_section_and_suggests() -> None:
    e = _err(ACCEPTOR.replace("HeartBtInt=5", "HeartBeatInt=5"))
    assert (e.source, e.line, e.section, e.key) == ("x.cfg", 17, "SESSION", "HeartBeatInt")
    assert "did you mean HeartBtInt?" in str(e)
    assert str(e).startswith("x.cfg:17 [SESSION] HeartBeatInt: unknown key")
    e = _err(ACCEPTOR.replace("ResetOnLogon=Y", "resetonlogon=Y"))
    assert "did you mean ResetOnLogon? keys are case-sensitive" in str(e) and e.section == "DEFAULT"


def test_bad_values_say_what_was_expected() -> None:
    e = _err(ACCEPTOR.replace("SocketAcceptPort=9878", "SocketAcceptPort=99999"))
    assert e.key == "SocketAcceptPort" and e.section == "DEFAULT" and e.line == 6
    assert "expected an integer 1..65535" in str(e)
    assert "expected Y or N" in str(_err(ACCEPTOR.replace("ResetOnLogon=Y", "ResetOnLogon=yes")))
    assert "expected acceptor or initiator" in str(
        _err(ACCEPTOR.replace("ConnectionType=acceptor", "ConnectionType=server"))
    )
    assert "expected a time HH:MM:SS" in str(_err(ACCEPTOR + "StartTime=8am\nEndTime=17:00:00\n"))
    assert "expected 0, 3, 6 or 9" in str(_err(ACCEPTOR + "TimeStampPrecision=2\n"))
    assert "file not found" in str(_err(ACCEPTOR + "DataDictionary=/nonexistent/FIX44.xml\n"))
    assert "expected FIX.4.2" in str(
        _err(ACCEPTOR.replace("BeginString=FIX.4.2", "BeginString=FIX42"))
    )


def test_structure_errors() -> None:
    assert "before any [DEFAULT] or [SESSION]" in str(_err("BeginString=FIX.4.2\n[SESSION]\n"))
    assert "unknown section [SESSIONS]" in str(_err("[SESSIONS]\n"))
    assert "no closing" in str(_err("[SESSION\n"))
    assert "expected Key=Value" in str(_err("[SESSION]\nBeginString\n"))
    assert "no [SESSION] section" in str(_err("[DEFAULT]\nConnectionType=acceptor\n"))
    e = _err(ACCEPTOR.replace("TargetCompID=TW44", "TargetCompID=TW44\nTargetCompID=X"))
    assert "given twice" in str(e) and "first at line 16" in str(e)
    e = _err(
        ACCEPTOR.replace("TargetCompID=TW44", "TargetCompID=TW42").replace("FIX.4.4", "FIX.4.2")
    )
    assert "defined twice (first at line 10)" in str(e)
    e = _err("[SESSION]\nConnectionType=acceptor\nBeginString=FIX.4.2\nSenderCompID=A\n")
    assert e.key == "TargetCompID" and "required key missing" in str(e)


def test_cross_field_rules() -> None:
    base = "[SESSION]\nBeginString=FIX.4.2\nSenderCompID=A\nTargetCompID=B\n"
    assert "SocketAcceptPort is required" in str(_err(base + "ConnectionType=acceptor\n"))
    assert "SocketConnectHost and SocketConnectPort are required" in str(
        _err(base + "ConnectionType=initiator\nSocketConnectPort=5\n")
    )
    assert "only possible on an acceptor" in str(
        _err(
            base.replace("=B", "=*")
            + "ConnectionType=initiator\nSocketConnectHost=h\nSocketConnectPort=5\n"
        )
    )
    acc = base + "ConnectionType=acceptor\nSocketAcceptPort=5\n"
    assert "needs SocketCertificateFile" in str(_err(acc + "SocketUseSSL=Y\n"))
    assert "StartTime and EndTime go together" in str(_err(acc + "StartTime=08:00:00\n"))
    assert "not below ReconnectInterval" in str(
        _err(acc + "ReconnectInterval=30\nMaxReconnectInterval=10\n")
    )
    assert "no built-in data dictionary" in str(_err(acc.replace("FIX.4.2", "FIX.4.3")))
    (s,) = parse_settings(acc.replace("FIX.4.2", "FIX.4.3") + "UseDataDictionary=N\n", "ok.cfg")
    assert s.begin_string == "FIX.4.3"
    # the value object validates on its own too
    with pytest.raises(ValueError, match="HeartBtInt=0"):
        SessionSettings("FIX.4.2", "A", "B", "acceptor", socket_accept_port=1, heart_bt_int=0)


def test_extra_keys_and_file_errors(tmp_path: Path) -> None:
    text = ACCEPTOR + "VenueName=exchange\n"
    (s42, s44) = parse_settings(text, "x.cfg", extra_keys={"VenueName"})
    assert s44.extras == {"VenueName": "exchange"} and s42.extras == {}
    assert len({s42, s44, s42}) == 2  # hashable values
    with pytest.raises(ConfigError, match="already standard keys"):
        parse_settings(ACCEPTOR, "x.cfg", extra_keys={"HeartBtInt"})
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "missing.cfg")
    assert issubclass(ConfigError, ValueError)
