"""The FIX engine's exceptions, under one root: ``except FixgwError`` catches anything the
engine raises on purpose.

Each keeps the built-in base it had before it moved here (``FieldNotFound`` is a KeyError,
``ConfigError`` and the Reject-causing ``IncorrectTagValue`` / ``IncorrectDataFormat`` are
ValueErrors, ``FixLogError`` an OSError, ``StoreError`` a RuntimeError), because callers catch
them by those bases. The modules that raise them (``message``, ``application``, ``config``,
``dictionary``, ``fixlog``, ``store``) import them from here and still export them, so
``from fixgw.application import RejectLogon`` keeps working. This module imports nothing of
fixgw: every other module may import it, and no cycle can go through it.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DictionaryError",
    "DoNotSend",
    "FieldNotFound",
    "FixLogError",
    "FixgwError",
    "IncorrectDataFormat",
    "IncorrectTagValue",
    "RejectLogon",
    "StoreClosedError",
    "StoreError",
    "UnsupportedMessageType",
]


class FixgwError(Exception):
    """The root of the FIX engine's exceptions."""


class ConfigError(FixgwError, ValueError):
    """A settings mistake; the message names the file, line, section and key, and the expectation."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        section: str | None = None,
        key: str | None = None,
    ) -> None:
        """Build with the location parts; str(error) carries them all."""
        self.source = source
        self.line = line
        self.section = section
        self.key = key
        where = []
        if source:
            where.append(source if line is None else f"{source}:{line}")
        if section:
            where.append(f"[{section}]")
        if key:
            where.append(key)
        super().__init__(f"{' '.join(where)}: {message}" if where else message)


class DictionaryError(FixgwError, ValueError):
    """A data dictionary file that cannot be used; the message names the file and the problem."""


class FixLogError(FixgwError, OSError):
    """A log file cannot be opened or written; the message names the file."""


class FieldNotFound(FixgwError, KeyError):
    """A required field is absent. Raised from an application callback, the session answers
    with a session Reject (SessionRejectReason 1, required tag missing)."""

    def __init__(self, tag: int) -> None:
        super().__init__(tag)
        self.tag = tag

    def __str__(self) -> str:
        return f"field {self.tag} not found"


class IncorrectTagValue(FixgwError, ValueError):
    """A field has a value the application does not accept (Reject reason 5)."""

    def __init__(self, tag: int, text: str = "") -> None:
        super().__init__(tag, text)
        self.tag = tag
        self.text = text


class IncorrectDataFormat(FixgwError, ValueError):
    """A field value has the wrong format (Reject reason 6)."""

    def __init__(self, tag: int, text: str = "") -> None:
        super().__init__(tag, text)
        self.tag = tag
        self.text = text


class RejectLogon(FixgwError):
    """Raised by ``from_admin`` on a Logon to refuse it; the text goes into the Logout (58)."""

    def __init__(self, text: str = "Logon rejected") -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


class UnsupportedMessageType(FixgwError):
    """Raised by ``from_app`` for a MsgType the application does not handle (BMR 380=3)."""


class BusinessReject(FixgwError):
    """Raised by ``from_app`` to refuse an application message with a BusinessMessageReject
    (35=j) of this reason (380) and text (58), e.g. a session over its message-rate limit."""

    def __init__(self, reason: int, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


class DoNotSend(FixgwError):
    """Raised by ``to_app`` to drop an outgoing message (on a resend it is gap-filled)."""


class StoreError(FixgwError, RuntimeError):
    """A message store cannot do what was asked (bad argument, full, already open, ...)."""


class StoreClosedError(StoreError):
    """The store was used after close()."""
