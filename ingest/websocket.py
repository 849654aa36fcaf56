"""WebSocket over asyncio streams, framed by wsproto (which does no I/O itself).

The upgrade request arrives through h11 (``HttpConnection``); ``WebSocket.accept`` hands its
headers to wsproto, answers 101 without extensions (permessage-deflate is never
negotiated: it cost 8.5x throughput here), and from then on reads whole messages, answers
pings, pings a silent peer and closes one that sends no message for WS_IDLE_TIMEOUT_S
(answering pings does not count: a pong is not a message).

Close codes (RFC 6455, section 7.4.1), each sent by the code that meets its cause:

| code | when |
|---|---|
| 1000 | the client closed, or sent no message for ``ws_idle_timeout_s`` |
| 1001 | the server is shutting down (and only then) |
| 1002 | a frame breaks the protocol (unmasked, reserved bits, bad opcode, ...) |
| 1007 | a text message that is not UTF-8 |
| 1008 | no valid token, or too many refused messages in a row (``stream``) |
| 1009 | a message over ``max_body_bytes`` (or, before the token, ``max_anonymous_body_bytes``) |
| 1011 | an unexpected server error outside any one batch (``stream``) |
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
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_BAD_PAYLOAD = 1007
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011

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
        """The code of the close handshake, once there is one (sent by either side)."""
        self.close_reason = ""
        self._send_lock = asyncio.Lock()
        self._last_message = asyncio.get_running_loop().time()

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

    async def receive(self, max_bytes: int | None = None) -> str | bytes | None:
        """The next whole message; None once the connection is closed: by the client, for
        idling (1000), for a protocol error (1002, 1007) or for a message over ``max_bytes``
        (default ``max_body_bytes``; 1009). ``close_code`` says which."""
        limits = self.limits
        max_bytes = limits.max_body_bytes if max_bytes is None else max_bytes
        loop = asyncio.get_running_loop()
        parts: list = []
        size = 0
        while True:
            for event in self.ws.events():
                if isinstance(event, Message):
                    parts.append(event.data)
                    size += len(event.data)
                    if size > max_bytes:
                        await self.close(CLOSE_TOO_BIG, f"message over {max_bytes} bytes", linger=False)
                        return None
                    if event.message_finished:
                        self._last_message = loop.time()
                        if isinstance(event, TextMessage):
                            return parts[0] if len(parts) == 1 else "".join(parts)
                        return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
                elif isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    if self.ws.state is ConnectionState.OPEN:
                        # Not the peer's close frame: wsproto's parser failed (ParseFailed)
                        # and says with which code: 1002 protocol error, 1007 bad UTF-8.
                        await self.close(event.code, event.reason or "protocol error", linger=False)
                        return None
                    self.close_code, self.close_reason = event.code, event.reason
                    if self.ws.state is ConnectionState.REMOTE_CLOSING:
                        await self._send(event.response())
                    return None
            if self.ws.state is ConnectionState.CLOSED:
                return None
            now = loop.time()
            idle_until = self._last_message + limits.ws_idle_timeout_s
            if now >= idle_until:
                await self.close(CLOSE_NORMAL, f"idle: no message in {limits.ws_idle_timeout_s:g} s")
                return None
            try:
                async with asyncio.timeout(min(limits.ws_ping_interval_s, idle_until - now)):
                    data = await self.reader.read(limits.max_recv)
            except TimeoutError:
                if loop.time() < idle_until:  # silent for a ping interval: is it still there?
                    await self._send(Ping(payload=b"keepalive"))
                continue
            except ConnectionError:
                return None
            self.ws.receive_data(data or None)

    async def send_text(self, text: str) -> None:
        await self._send(TextMessage(data=text))

    async def close(self, code: int = CLOSE_NORMAL, reason: str = "", linger: bool = True) -> None:
        """Close handshake: send a close frame, then read (and drop) what the peer still
        sends until its close frame, for up to CLOSE_WAIT_S. Closing the socket sooner
        would reset it and could destroy acks the peer has not read yet.

        ``linger=False`` for a peer closed for breaking the rules (protocol errors, too big,
        too many refused messages): its close frame is not waited for, since finding it
        would mean parsing whatever flood it is still sending."""
        if self.ws.state is not ConnectionState.OPEN:
            return
        self.close_code, self.close_reason = code, reason
        try:
            await self._send(CloseConnection(code=code, reason=reason[:120]))
            if not linger:
                if self.writer.can_write_eof():
                    self.writer.write_eof()  # the close frame, then FIN
                return
            async with asyncio.timeout(CLOSE_WAIT_S):
                while self.ws.state is not ConnectionState.CLOSED:
                    data = await self.reader.read(self.limits.max_recv)
                    self.ws.receive_data(data or None)
                    for _ in self.ws.events():
                        pass  # messages after our close frame are dropped, as RFC 6455 says
                    await asyncio.sleep(0)  # a read returns at once while data is buffered: yield
        except (ConnectionError, TimeoutError, LocalProtocolError, OSError):
            pass  # the peer is gone or slow; the caller closes the socket next

    def abort(self) -> None:
        """Drop the connection without a close handshake (a peer that reads nothing)."""
        self.writer.transport.abort()

    async def _send(self, event) -> None:
        await self._send_bytes(self.ws.send(event))

    async def _send_bytes(self, data: bytes) -> None:
        async with self._send_lock:
            self.writer.write(data)
            async with asyncio.timeout(self.limits.send_timeout_s):
                await self.writer.drain()


__all__ = ["WebSocket"]
