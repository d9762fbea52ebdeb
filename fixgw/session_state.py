"""Session states, the events that move them, and the transition table.

The table is the single place that says which handler of :class:`fixgw.session.Session`
runs for an event in a state; a pair that is not in the table is a protocol violation that
the session logs and ignores (or, before logon, answers by disconnecting). Tests walk the
table with frozen time.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Final


class State(enum.Enum):
    DISCONNECTED = "disconnected"
    AWAITING_LOGON = "awaiting-logon"  # acceptor: connected, no Logon yet
    LOGON_SENT = "logon-sent"  # initiator: Logon sent, waiting for the answer
    LOGON_PENDING_APP = "logon-pending-app"  # Logon verified; the application decides (RejectLogon)
    LOGGED_ON = "logged-on"
    LOGOUT_SENT = "logout-sent"  # we sent Logout; waiting for the answer or the timeout
    DISCONNECTING = "disconnecting"  # a close is queued behind the last messages


class Event(enum.Enum):
    CONNECTED = "connected"
    LOGON = "logon"  # a framed Logon (35=A)
    LOGOUT = "logout"  # a framed Logout (35=5)
    MESSAGE = "message"  # any other framed message
    GARBLED = "garbled"  # bytes that are not a valid message
    TIMER = "timer"
    APP_ACCEPTED_LOGON = "app-accepted-logon"
    APP_REJECTED_LOGON = "app-rejected-logon"
    LOGOUT_REQUESTED = "logout-requested"  # the application / engine asks to log out
    DISCONNECTED = "disconnected"


S, E = State, Event

# (state, event) -> name of the Session method that handles it
_TABLE: dict[tuple[State, Event], str] = {
    (S.DISCONNECTED, E.CONNECTED): "_on_connected",
    # acceptor before logon
    (S.AWAITING_LOGON, E.LOGON): "_on_acceptor_logon",
    (S.AWAITING_LOGON, E.LOGOUT): "_on_first_not_logon",
    (S.AWAITING_LOGON, E.MESSAGE): "_on_first_not_logon",
    (S.AWAITING_LOGON, E.GARBLED): "_on_garbled_before_logon",
    (S.AWAITING_LOGON, E.TIMER): "_on_logon_timer",
    (S.AWAITING_LOGON, E.LOGOUT_REQUESTED): "_on_close_now",
    # initiator before logon
    (S.LOGON_SENT, E.LOGON): "_on_initiator_logon",
    (S.LOGON_SENT, E.LOGOUT): "_on_logout_before_logon",
    (S.LOGON_SENT, E.MESSAGE): "_on_first_not_logon",
    (S.LOGON_SENT, E.GARBLED): "_on_garbled_before_logon",
    (S.LOGON_SENT, E.TIMER): "_on_logon_timer",
    (S.LOGON_SENT, E.LOGOUT_REQUESTED): "_on_close_now",
    # the application's verdict on a Logon
    (S.LOGON_PENDING_APP, E.APP_ACCEPTED_LOGON): "_on_logon_accepted",
    (S.LOGON_PENDING_APP, E.APP_REJECTED_LOGON): "_on_logon_rejected",
    (S.LOGON_PENDING_APP, E.TIMER): "_on_nothing",
    # logged on
    (S.LOGGED_ON, E.LOGON): "_on_session_message",
    (S.LOGGED_ON, E.LOGOUT): "_on_session_message",
    (S.LOGGED_ON, E.MESSAGE): "_on_session_message",
    (S.LOGGED_ON, E.GARBLED): "_on_garbled_ignored",
    (S.LOGGED_ON, E.TIMER): "_on_heartbeat_timer",
    (S.LOGGED_ON, E.LOGOUT_REQUESTED): "_on_logout_requested",
    # logout handshake
    (S.LOGOUT_SENT, E.LOGON): "_on_session_message",
    (S.LOGOUT_SENT, E.LOGOUT): "_on_session_message",
    (S.LOGOUT_SENT, E.MESSAGE): "_on_session_message",
    (S.LOGOUT_SENT, E.GARBLED): "_on_garbled_ignored",
    (S.LOGOUT_SENT, E.TIMER): "_on_logout_timer",
    (S.LOGOUT_SENT, E.LOGOUT_REQUESTED): "_on_nothing",
    # closing: nothing more is read or answered
    (S.DISCONNECTING, E.LOGON): "_on_nothing",
    (S.DISCONNECTING, E.LOGOUT): "_on_nothing",
    (S.DISCONNECTING, E.MESSAGE): "_on_nothing",
    (S.DISCONNECTING, E.GARBLED): "_on_nothing",
    (S.DISCONNECTING, E.TIMER): "_on_nothing",
    (S.DISCONNECTING, E.LOGOUT_REQUESTED): "_on_nothing",
    (S.DISCONNECTED, E.TIMER): "_on_nothing",
    (S.DISCONNECTED, E.LOGOUT_REQUESTED): "_on_nothing",
}
# every state may lose its connection
TRANSITIONS: Final[Mapping[tuple[State, Event], str]] = {
    **_TABLE,
    **{(s, E.DISCONNECTED): "_on_disconnected" for s in State},
}
