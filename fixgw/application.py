"""The application interface (as QuickFIX/J's ``Application``), with dispatch by MsgType.

Callbacks that receive something are coroutines (``on_create``, ``on_logon``, ``on_logout``,
``from_admin``, ``from_app``); the two hooks on the way out (``to_admin``, ``to_app``) are
plain functions, because they run while the session seals a message (they may modify it in
place, e.g. add Username/Password to a Logon; ``to_app`` may raise :class:`DoNotSend`).

Raise from ``from_app`` / ``from_admin``:

- :class:`UnsupportedMessageType` -> BusinessMessageReject 380=3;
- ``FieldNotFound(tag)`` (also raised by ``msg[tag]``) -> BusinessMessageReject 380=5 for an
  application message (Reject 373=1 for an admin one), as QuickFIX does;
- ``IncorrectTagValue(tag)`` / ``IncorrectDataFormat(tag)`` -> Reject 373=5 / 373=6;
- :class:`RejectLogon` (from ``from_admin`` on a Logon) -> Logout with the text, disconnect.

Dispatch by type::

    class Venue(MessageCracker):
        @handles("D")
        async def new_order(self, msg, session_id): ...

        async def on_message_F(self, msg, session_id): ...   # by name also works

A :class:`MessageCracker` tells the session which types it supports, so an unsupported type
is answered with BusinessMessageReject before its body is validated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, Protocol, TypeVar

from fixgw.config import SessionID
from fixgw.errors import (
    DoNotSend,
    FieldNotFound,
    IncorrectDataFormat,
    IncorrectTagValue,
    RejectLogon,
    UnsupportedMessageType,
)
from fixgw.message import Message

__all__ = [
    "Application",
    "DoNotSend",
    "FieldNotFound",
    "IncorrectDataFormat",
    "IncorrectTagValue",
    "MessageCracker",
    "RejectLogon",
    "UnsupportedMessageType",
    "handles",
]


class MessageSender(Protocol):
    """What an application needs of the engine it is attached to
    (:class:`fixgw.engine.Engine` is one; this module does not import it)."""

    def send_to_target(self, msg: Message, session_id: SessionID) -> bool: ...


class Application:
    """Default callbacks do nothing; override what you need.

    ``self.engine`` is set by the :class:`~fixgw.engine.Engine` the application is given to, so
    that callbacks can answer with ``self.engine.send_to_target(msg, session_id)``.
    """

    engine: MessageSender | None = None

    def attach(self, engine: MessageSender) -> None:
        self.engine = engine

    async def on_create(self, session_id: SessionID) -> None:
        return None

    async def before_logon(self, message: Message, session_id: SessionID) -> None:
        """An acceptor's new connection opened with this Logon for ``session_id``: called before
        the session layer looks at it (its MsgSeqNum against the one expected).

        The application may get the session ready here, e.g. take it over from another process
        and set its store's sequence numbers (the engine reloads them from the store afterwards
        when ``RefreshOnLogon=Y``), or raise :class:`RejectLogon` to refuse the connection: it is
        then closed at once, with no Logout (the session's sequence numbers are not settled).
        """
        return

    async def on_logon(self, session_id: SessionID) -> None:
        return None

    async def on_logout(self, session_id: SessionID) -> None:
        return None

    def to_admin(self, message: Message, session_id: SessionID) -> None:
        return None

    async def from_admin(self, message: Message, session_id: SessionID) -> None:
        return None

    def to_app(self, message: Message, session_id: SessionID) -> None:
        return None

    def may_write(self, session_id: SessionID) -> bool:
        """Asked by the engine just before it writes to the socket what a session produced,
        when that holds an application message (once per write, not per message).

        ``to_app`` runs when a message is sealed; the bytes reach the socket later, after the
        session's store has committed them (a loop turn, a store commit in a thread). A process
        that stood still in between (SIGSTOP, a stalled host) and may meanwhile have been
        presumed dead must not then let them go out: return False and the engine drops the
        write and closes the connection. The dropped messages are in the store under their
        sequence numbers, so the counterparty's ResendRequest after the next logon asks for
        them again, and ``to_app`` (with PossDupFlag 43=Y) decides then: resend, or raise
        :class:`DoNotSend` to gap-fill. An application that does not override this costs no
        call."""
        return True

    async def from_app(self, message: Message, session_id: SessionID) -> Awaitable[object] | None:
        """An application message from the counterparty.

        Return an awaitable (e.g. the future of a record being committed) when what the message
        caused is durable only once it is done: until then the session's store keeps expecting
        this message's MsgSeqNum, so that if the process dies first the counterparty resends
        the message (PossDupFlag 43=Y) at the next logon, instead of its being lost with the
        session's sequence numbers already past it. The session itself goes on meanwhile (the
        next messages are read and handled). Return None when nothing is pending."""
        return None

    def supports(self, msg_type: bytes) -> bool:
        """Whether from_app handles this MsgType (the base application accepts every type)."""
        return True

    def send(self, message: Message, session_id: SessionID) -> bool:
        """Send through the engine this application is attached to."""
        if self.engine is None:
            raise RuntimeError("the application is not attached to an engine")
        return self.engine.send_to_target(message, session_id)


Handler = Callable[[Any, Message, "SessionID"], Awaitable[Awaitable[object] | None]]
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def handles(*msg_types: str) -> Callable[[F], F]:
    """Mark a coroutine method of a MessageCracker as the handler of these MsgTypes."""

    def mark(func: F) -> F:
        func.__fix_msg_types__ = tuple(msg_types)  # type: ignore[attr-defined]
        return func

    return mark


class MessageCracker(Application):
    """``from_app`` dispatches by MsgType to ``@handles`` methods or ``on_message_<type>``;
    a type with no handler raises :class:`UnsupportedMessageType`."""

    _handlers: ClassVar[dict[bytes, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[bytes, str] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                if name.startswith("on_message_") and callable(attr):
                    table[name[len("on_message_") :].encode()] = name
                for mt in getattr(attr, "__fix_msg_types__", ()):
                    table[mt.encode()] = name
        cls._handlers = table

    def supports(self, msg_type: bytes) -> bool:
        return msg_type in self._handlers

    def bound_handlers(self) -> dict[bytes, Callable[[Message, SessionID], Awaitable[Awaitable[object] | None]]]:
        """MsgType -> this application's bound handler (built once; engines may call them
        directly when from_app is not overridden)."""
        try:
            bound: dict[bytes, Callable[[Message, SessionID], Awaitable[Awaitable[object] | None]]] = self.__dict__[
                "_bound_handlers"
            ]
        except KeyError:
            bound = self.__dict__["_bound_handlers"] = {
                mt: getattr(self, name) for mt, name in self._handlers.items()
            }
        return bound

    async def from_app(self, message: Message, session_id: SessionID) -> Awaitable[object] | None:
        try:
            bound = self.__dict__["_bound_handlers"]
        except KeyError:
            bound = self.bound_handlers()
        handler = bound.get(message.msg_type)
        if handler is None:
            raise UnsupportedMessageType(message.msg_type.decode("latin-1"))
        result: Awaitable[object] | None = await handler(message, session_id)
        return result
