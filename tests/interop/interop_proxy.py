"""A TCP relay on loopback that a test can stall and cut: a network fault between two FIX engines.

The engines talk through it over real sockets. ``hold("down")`` keeps reading what the acceptor
sends but stops passing it on (the bytes pile up in the relay, as in a stalled network);
``cut()`` then aborts both sockets and throws the held bytes away, so the acceptor has sent
messages the initiator never gets: a real sequence gap, to be filled by a resend after the
initiator reconnects (through the relay again: it accepts new connections after a cut).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["up", "down"]  # up: initiator -> acceptor; down: acceptor -> initiator


@dataclass(slots=True)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class CuttableProxy:
    """Relays 127.0.0.1:``port`` to 127.0.0.1:``target_port`` (``port`` is free, chosen at start)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pairs: list[_Pair] = []
        self._held: set[Direction] = set()
        self.held_bytes: dict[Direction, int] = {"up": 0, "down": 0}
        self.relayed_bytes: dict[Direction, int] = {"up": 0, "down": 0}
        self._held_msgs: dict[Direction, int] = {"up": 0, "down": 0}
        self.relayed_messages: dict[Direction, int] = {"up": 0, "down": 0}
        self._cut_at: tuple[Direction, int] | None = None
        self.connections = 0
        self.cuts = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def hold(self, *directions: Direction) -> None:
        """From now on, swallow what flows in these directions (until :meth:`cut`)."""
        self._held.update(directions)

    def cut_after(self, direction: Direction, messages: int) -> None:
        """Cut as soon as ``messages`` more FIX messages have been relayed in ``direction``:
        a cut in mid-stream, whatever the speed of the two engines."""
        self._cut_at = (direction, self.relayed_messages[direction] + messages)

    def held_messages(self, direction: Direction) -> int:
        """Roughly how many FIX messages are held (each ends with a CheckSum field)."""
        return self._held_msgs[direction]

    def cut(self) -> None:
        """Abort every relayed connection; held bytes are lost; new connections relay normally."""
        self.cuts += 1
        self._cut_at = None
        for pair in self._pairs:
            for w in (pair.client, pair.server):
                w.transport.abort()
            for t in pair.tasks:
                t.cancel()
        self._pairs.clear()
        self._held.clear()
        self._held_msgs = {"up": 0, "down": 0}

    def live_connections(self) -> int:
        return len(self._pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            # nobody listens behind us (the acceptor is restarting): refuse, the client retries
            writer.transport.abort()
            return
        pair = _Pair(writer, s_writer)
        self._pairs.append(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(reader, s_writer, "up", pair)),
            asyncio.create_task(self._pump(s_reader, writer, "down", pair)),
        ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction, pair: _Pair
    ) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if direction in self._held:
                    self.held_bytes[direction] += len(data)
                    self._held_msgs[direction] += data.count(b"\x0110=")
                    continue
                self.relayed_bytes[direction] += len(data)
                self.relayed_messages[direction] += data.count(b"\x0110=")
                writer.write(data)
                cut_at = self._cut_at
                if cut_at is not None and cut_at[0] == direction and self.relayed_messages[direction] >= cut_at[1]:
                    self._cut_at = None
                    self.cut()
                    return
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            # one side closed: close the other side too, as a real connection would end
            if pair in self._pairs:
                self._pairs.remove(pair)
                for w in (pair.client, pair.server):
                    w.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
