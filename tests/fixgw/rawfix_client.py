"""A small blocking FIX client over a real socket, for tests that play the counterparty by hand."""

from __future__ import annotations

import socket
import time

from fixgw.framing import Framer, Garbled
from fixgw.message import Message, encode
from fixgw.session import utc_timestamp


class RawFixClient:
    def __init__(self, port: int, *, begin: str = "FIX.4.4", sender: str = "CLIENT", target: str = "ISLD",
                 host: str = "127.0.0.1", next_seq: int = 1) -> None:
        self.begin = begin.encode()
        self.sender = sender.encode()
        self.target = target.encode()
        self.seq = next_seq
        self.sock = socket.create_connection((host, port), timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.framer = Framer()
        self.eof = False
        self.received: list[Message] = []

    def build(self, mt: str, body: list[tuple[int, object]] | None = None, *, seq: int | None = None,
              sender: bytes | None = None, possdup: bool = False, sending_time: bytes | None = None) -> bytes:
        use = self.seq if seq is None else seq
        if seq is None:
            self.seq += 1
        now = time.time()
        ts = sending_time or utc_timestamp(now)
        header: list[tuple[int, bytes]] = [(35, mt.encode()), (49, sender or self.sender), (56, self.target),
                                           (34, b"%d" % use), (52, ts)]
        if possdup:
            header += [(43, b"Y"), (122, ts)]
        enc = [(t, v if isinstance(v, bytes) else str(v).encode()) for t, v in (body or [])]
        return encode(self.begin, header, enc)

    def send(self, mt: str, body: list[tuple[int, object]] | None = None, **kw: object) -> bytes:
        raw = self.build(mt, body, **kw)  # type: ignore[arg-type]
        self.sock.sendall(raw)
        return raw

    def send_raw(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def logon(self, heartbeat: int = 30, reset: bool = False) -> Message:
        body: list[tuple[int, object]] = [(98, 0), (108, heartbeat)]
        if reset:
            body.append((141, "Y"))
        self.send("A", body)
        return self.expect("A")

    def recv(self, timeout: float = 5.0) -> Message | None:
        deadline = time.monotonic() + timeout
        while True:
            item = self.framer.next()
            if item is not None:
                if isinstance(item, Garbled):
                    raise AssertionError(f"garbled message from the acceptor: {item}")
                self.received.append(item)
                return item
            if self.eof:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            except (ConnectionResetError, BrokenPipeError):
                data = b""
            if not data:
                self.eof = True
                continue
            self.framer.feed(data)

    def expect(self, mt: str, timeout: float = 5.0) -> Message:
        """The next message that is not a Heartbeat (TestRequests are answered)."""
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv(max(0.0, deadline - time.monotonic()))
            if m is None:
                raise AssertionError(f"expected 35={mt}, got {'disconnect' if self.eof else 'nothing'}")
            if m.msg_type == b"0" and mt != "0":
                continue
            if m.msg_type == b"1" and mt != "1":
                self.send("0", [(112, m.get(112) or b"")])
                continue
            if m.msg_type != mt.encode():
                raise AssertionError(f"expected 35={mt}, got {m!r}")
            return m

    def wait_closed(self, timeout: float = 5.0) -> list[Message]:
        """Messages received until the acceptor closes the connection (AssertionError on timeout)."""
        got = []
        deadline = time.monotonic() + timeout
        while not self.eof:
            m = self.recv(max(0.0, deadline - time.monotonic()))
            if m is not None:
                got.append(m)
            elif not self.eof:
                raise AssertionError(f"the acceptor did not close the connection; got {got}")
        return got

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
