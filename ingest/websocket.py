"""WebSocket over asyncio streams, framed by wsproto (which does no I/O itself).

The upgrade request arrives through h11 (``HttpConnection``); ``WebSocket.accept`` hands its
headers to wsproto, answers 101 without extensions (permessage-deflate is never
negotiated: it cost 8.5x throughput here), and from then on reads whole messages, answers
pings, pings a silent peer and closes an idle one.
"""

from __future__ import annotations

import asyncio

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from .http import HttpConnection, Request
from .limits import Limits

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009

CLOSE_WAIT_S = 1.0
"""How long a close waits for the peer's close frame before dropping the socket."""


class WebSocket:
    """One accepted server-side WebSocket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ws: WSConnection, limits: Limits):
        self.reader = reader
        self.writer = writer
        self.ws = ws
        self.limits = limits
        self.close_code: int | None = None
        self._send_lock = asyncio.Lock()

    @classmethod
    async def accept(cls, http: HttpConnection, request: Request) -> WebSocket:
        """Complete the upgrade that ``request`` asked for (101 Switching Protocols)."""
        ws = WSConnection(ConnectionType.SERVER)
        ws.initiate_upgrade_connection(request.raw_headers, request.target)
        for _ in ws.events():
            pass  # the wsproto Request event: already checked by the caller
        sock = cls(http.reader, http.writer, ws, http.limits)
        await sock._send_bytes(ws.send(AcceptConnection()))
        trailing = http.trailing_data()
        if trailing:
            ws.receive_data(trailing)
        return sock

    @property
    def open(self) -> bool:
        return self.ws.state is ConnectionState.OPEN

    async def receive(self) -> str | bytes | None:
        """The next whole message; None once the connection is closed or idle too long.

        Raises MessageTooBig (after closing with 1009) for a message over the body limit.
        """
        parts: list = []
        size = 0
        silent_s = 0.0
        limits = self.limits
        while True:
            for event in self.ws.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > limits.max_body_bytes:
                        await self.close(CLOSE_TOO_BIG, "message too big")
                        raise MessageTooBig(size, limits.max_body_bytes)
                    if event.message_finished:
                        if isinstance(event, TextMessage):
                            return parts[0] if len(parts) == 1 else "".join(parts)
                        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
                elif isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    self.close_code = event.code
                    if self.ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._send(event.response())
                    return None
            if self.ws.state is ConnectionState.CLOSED:
                return None
            try:
                async with asyncio.timeout(limits.ws_ping_interval_s):
                    data = await self.reader.read(limits.max_recv)
            except TimeoutError:
                silent_s += limits.ws_ping_interval_s
                if silent_s >= limits.ws_idle_timeout_s:
                    await self.close(CLOSE_GOING_AWAY, "idle timeout")
                    return None
                await self._send(Ping(payload=b"keepalive"))
                continue
            except ConnectionError:
                return None
            silent_s = 0.0
            self.ws.receive_data(data or None)

    async def send_text(self, text: str) -> None:
        await self._send(TextMessage(data=text))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close handshake: send a close frame, then read (and drop) what the peer still
        sends until its close frame, for up to CLOSE_WAIT_S. Closing the socket sooner
        would reset it and could destroy acks the peer has not read yet."""
        if self.ws.state is not ConnectionState.OPEN:
            return
        self.close_code = code
        try:
            await self._send(CloseConnection(code=code, reason=reason))
            async with asyncio.timeout(CLOSE_WAIT_S):
                while self.ws.state is not ConnectionState.CLOSED:
                    data = await self.reader.read(self.limits.max_recv)
                    self.ws.receive_data(data or None)
                    for _ in self.ws.events():
                        pass  # messages after our close frame are dropped, as RFC 6455 says
        except (ConnectionError, TimeoutError, LocalProtocolError):
            pass  # the peer is gone or slow; the caller closes the socket next

    async def _send(self, event) -> None:
        await self._send_bytes(self.ws.send(event))

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            self.writer.write(data)
            async with asyncio.timeout(self.limits.send_timeout_s):
                await self.writer.drain()


class MessageTooBig(Exception):
    def __init__(self, size: int, limit: int):
        super().__init__(f"WebSocket message of {size} bytes is over the {limit}-byte limit")


__all__ = ["WebSocket", "MessageTooBig"]
