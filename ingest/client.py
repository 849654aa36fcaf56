"""A small asyncio client for the ingest server (h11 and wsproto, like the server).

Used by the load generator and the tests; Python tools that feed frames can use it too:

    http = await HttpClient.connect("127.0.0.1", 8001)
    fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "a.glb"})).json()
    ws = await WsClient.connect("127.0.0.1", 8001, f"/api/episodes/{episode_id}/stream")
    await ws.send_text(orjson.dumps({"seq": 0, "frames": frames}).decode())
    print(await ws.receive())  # {"ack": 0, "stored": ..., "duplicates": 0}
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11
import orjson
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

READ_SIZE = 256 * 1024
TIMEOUT_S = 30.0
"""Default wait for any one answer; the server's own timeouts are shorter or equal."""


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return orjson.loads(self.body)


class ClientError(Exception):
    pass


_ENDED = (h11.MUST_CLOSE, h11.CLOSED)


class _ClosedBeforeAnswer(Exception):
    """The connection closed before any byte of the answer came."""


class HttpClient:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int | None = None):
        self.reader = reader
        self.writer = writer
        self.host = host
        self._address = (host.rpartition(":")[0], port) if port is not None else None
        self.h11 = h11.Connection(h11.CLIENT)
        self._lock = asyncio.Lock()
        self.reconnects = 0
        """Requests resent on a new connection because the server had closed the idle one."""

    @classmethod
    async def connect(cls, host: str, port: int) -> HttpClient:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        return cls(reader, writer, f"{host}:{port}", port)

    async def request(
        self,
        method: str,
        path: str,
        json=None,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = TIMEOUT_S,
    ) -> HttpResponse:
        async with self._lock, asyncio.timeout(timeout):
            if self._address is not None and (self.h11.our_state in _ENDED or self.h11.their_state in _ENDED):
                await self._reopen()  # the server answered "connection: close" last time
            reused = self.h11.our_state is h11.DONE
            try:
                return await self._request(method, path, json, body, headers or {})
            except _ClosedBeforeAnswer:
                if not reused or self._address is None:
                    raise ClientError("server closed the connection before answering") from None
            # The server had closed this kept-alive connection while it was idle (its
            # keep-alive timeout, or to make room): it never read the request. Send it again
            # on a new connection, once, as browsers do.
            await self._reopen()
            self.reconnects += 1
            try:
                return await self._request(method, path, json, body, headers or {})
            except _ClosedBeforeAnswer:
                raise ClientError("server closed the connection before answering") from None

    async def _reopen(self) -> None:
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(*self._address, limit=READ_SIZE)
        self.h11 = h11.Connection(h11.CLIENT)

    async def _request(self, method, path, json, body, headers) -> HttpResponse:
        h = self.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
        if h.our_state is not h11.IDLE:
            raise ClientError("the connection is not reusable (an earlier request did not finish)")
        if json is not None:
            body = orjson.dumps(json)
            headers.setdefault("content-type", "application/json")
        hdrs = [("host", self.host), *headers.items()]
        if body is not None:
            hdrs.append(("content-length", str(len(body))))
        data = h.send(h11.Request(method=method, target=path, headers=hdrs))
        if body:
            data += h.send(h11.Data(data=body))
        data += h.send(h11.EndOfMessage())
        try:
            self.writer.write(data)
            await self.writer.drain()
        except ConnectionError:
            raise _ClosedBeforeAnswer from None
        status, resp_headers, chunks = 0, {}, []
        answered = False
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as e:
                raise ClientError(f"bad or cut answer from the server: {e}") from None
            if event is h11.NEED_DATA:
                try:
                    received = await self.reader.read(READ_SIZE)
                except ConnectionError:
                    received = b""
                if not received and not answered:
                    raise _ClosedBeforeAnswer
                answered = True
                h.receive_data(received)
            elif isinstance(event, h11.Response):
                status = event.status_code
                resp_headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return HttpResponse(status, resp_headers, b"".join(chunks))
            elif isinstance(event, h11.ConnectionClosed):
                raise ClientError("server closed the connection before answering")

    @property
    def reusable(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # already reset by the server


class WsRejected(ClientError):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"WebSocket refused with {status}: {body[:200]!r}")
        self.status = status
        self.body = body


class WsClient:
    """A client WebSocket (no extensions)."""

    def __init__(self, reader, writer, ws: WSConnection):
        self.reader = reader
        self.writer = writer
        self.ws = ws
        self.close_code: int | None = None
        self._pending: list[str | bytes] = []
        self._parts: list = []

    @classmethod
    async def connect(
        cls, host: str, port: int, path: str, origin: str | None = None, timeout: float = TIMEOUT_S
    ) -> WsClient:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_SIZE)
        ws = WSConnection(ConnectionType.CLIENT)
        extra = [("origin", origin)] if origin else []
        writer.write(ws.send(Request(host=f"{host}:{port}", target=path, extra_headers=extra)))
        await writer.drain()
        client = cls(reader, writer, ws)
        status, body = None, b""
        async with asyncio.timeout(timeout):
            while True:
                data = await reader.read(READ_SIZE)
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        return client
                    if isinstance(event, RejectConnection):
                        status = event.status_code
                        if not event.has_body:
                            raise WsRejected(status, b"")
                    elif isinstance(event, RejectData):
                        body += event.data
                        if event.body_finished:
                            raise WsRejected(status, body)
                    else:
                        client._handle(event)
                if not data:
                    raise ClientError("connection closed during the WebSocket handshake")

    def _handle(self, event) -> None:
        if isinstance(event, Message):
            self._parts.append(event.data)
            if event.message_finished:
                joined = "".join(self._parts) if isinstance(event, TextMessage) else b"".join(self._parts)
                self._pending.append(joined)
                self._parts = []
        elif isinstance(event, Ping):
            self.writer.write(self.ws.send(event.response()))
        elif isinstance(event, CloseConnection):
            self.close_code = event.code
            if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self.writer.write(self.ws.send(event.response()))

    async def send_text(self, text: str) -> None:
        self.writer.write(self.ws.send(TextMessage(data=text)))
        await self.writer.drain()

    async def send_json(self, obj) -> None:
        await self.send_text(orjson.dumps(obj).decode())

    async def receive(self, timeout: float = TIMEOUT_S) -> str | bytes | None:
        """The next message, or None once the server closed the connection."""
        async with asyncio.timeout(timeout):
            while not self._pending:
                if self.ws.state is ConnectionState.CLOSED or self.close_code is not None:
                    return None
                data = await self.reader.read(READ_SIZE)
                self.ws.receive_data(data or None)
                for event in self.ws.events():
                    self._handle(event)
                if not data and not self._pending:
                    return None
            return self._pending.pop(0)

    async def receive_json(self, timeout: float = TIMEOUT_S):
        message = await self.receive(timeout)
        return None if message is None else orjson.loads(message)

    async def close(self, code: int = 1000) -> None:
        try:
            if self.ws.state is ConnectionState.OPEN:
                self.writer.write(self.ws.send(CloseConnection(code=code)))
                await self.writer.drain()
        except (ConnectionError, OSError):
            pass  # the server is already gone
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass  # already reset by the server
