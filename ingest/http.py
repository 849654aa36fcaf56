"""HTTP/1.1 over asyncio streams, parsed by h11 (which does no I/O itself).

``HttpConnection`` reads bytes, feeds h11, and returns requests: first their headers, then,
if the server still wants it, their body (size and time capped); it writes responses. It
knows nothing of routes, JSON or storage.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import h11

from .limits import Limits

_REASONS = {
    200: b"OK",
    201: b"Created",
    204: b"No Content",
    400: b"Bad Request",
    401: b"Unauthorized",
    403: b"Forbidden",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    409: b"Conflict",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    422: b"Unprocessable Content",
    426: b"Upgrade Required",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


LINGER_MAX_BYTES = 256 * 1024
"""Bytes read (and dropped) after an answer that ends a connection, before closing anyway."""


class HttpError(Exception):
    """The request could not be read; answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class Request:
    method: str
    target: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with ', '."""
    raw_headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    """Empty until ``HttpConnection.receive_body`` has read it."""
    content_length: int | None = None
    """From the headers; None for a chunked body (its size is known once read)."""

    @property
    def is_websocket_upgrade(self) -> bool:
        return (
            self.headers.get("upgrade", "").lower() == "websocket"
            and "upgrade" in self.headers.get("connection", "").lower()
        )


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


class HttpConnection:
    """One client connection: a sequence of keep-alive request/response cycles.

    A request is read in two steps, so that the server can refuse it from its headers alone:
    ``receive_head`` (the request line and headers, by HEADER_TIMEOUT_S from its first byte),
    then, only if the server wants it, ``receive_body`` (by BODY_TIMEOUT_S after the headers).
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits):
        self.reader = reader
        self.writer = writer
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.idle = True
        """True while waiting for a request's first byte (safe to drop at shutdown or to make room)."""
        self.on_idle = None
        """Called with True when the connection starts waiting for a request, False when one starts."""

    def _set_idle(self, idle: bool) -> None:
        if idle != self.idle:
            self.idle = idle
            if self.on_idle is not None:
                self.on_idle(idle)

    async def _read(self, deadline: float | None, timeout_message: str) -> bytes:
        """The next bytes, by ``deadline`` (loop time; None: the keep-alive timeout, then b"").
        Raises HttpError 408 at the deadline."""
        loop = asyncio.get_running_loop()
        timeout = self.limits.keepalive_timeout_s if deadline is None else deadline - loop.time()
        try:
            async with asyncio.timeout(max(timeout, 0)):
                return await self.reader.read(self.limits.max_recv)
        except TimeoutError:
            if deadline is None:
                return b""  # idle too long: closed quietly, like a client going away
            raise HttpError(408, timeout_message) from None
        except ConnectionError:
            return b""

    async def receive_head(self) -> Request | None:
        """The next request's line and headers (its ``body`` not read yet); None when the
        client closed or idled out between requests.

        Raises HttpError for malformed, oversized (431, 413 by Content-Length) or too slow requests.
        """
        h = self.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        self._set_idle(True)
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as e:
                raise HttpError(e.error_status_hint, f"malformed HTTP request: {e}") from e
            if event is h11.NEED_DATA:
                data = await self._read(
                    deadline, f"request headers not completed within {self.limits.header_timeout_s:g} s"
                )
                if deadline is None:
                    if not data:
                        return None
                    deadline = loop.time() + self.limits.header_timeout_s
                    self._set_idle(False)
                h.receive_data(data)
            elif isinstance(event, h11.Request):
                self._set_idle(False)
                header_bytes = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if header_bytes > self.limits.max_header_bytes:
                    # h11's own cap only applies while the headers are incomplete.
                    raise HttpError(
                        431,
                        f"request headers of {header_bytes} bytes are over the "
                        f"{self.limits.max_header_bytes}-byte limit",
                    )
                return _make_request(event)
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:  # Data, EndOfMessage and PAUSED only follow a Request, which returned above
                raise HttpError(400, f"unexpected HTTP event {event!r}")

    async def receive_body(self, request: Request, max_bytes: int) -> None:
        """Read the body of ``request`` (whose head came from receive_head) into
        ``request.body``; HttpError 413 beyond ``max_bytes``, 408 beyond BODY_TIMEOUT_S."""
        h = self.h11
        if request.content_length is not None and request.content_length > max_bytes:
            raise HttpError(413, _too_large(request.content_length, max_bytes))
        if h.they_are_waiting_for_100_continue:
            await self._write(h.send(h11.InformationalResponse(status_code=100, headers=[])))
        deadline = asyncio.get_running_loop().time() + self.limits.body_timeout_s
        body = bytearray()
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as e:
                raise HttpError(e.error_status_hint, f"malformed HTTP request body: {e}") from e
            if event is h11.NEED_DATA:
                data = await self._read(deadline, f"request body not completed within {self.limits.body_timeout_s:g} s")
                if not data:
                    raise ConnectionResetError("client closed the connection during the request body")
                h.receive_data(data)
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > max_bytes:
                    raise HttpError(413, _too_large(len(body), max_bytes))
            elif isinstance(event, h11.EndOfMessage):
                request.body = bytes(body)
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionResetError("client closed the connection during the request body")
            else:
                raise HttpError(400, f"unexpected HTTP event {event!r}")

    @property
    def body_pending(self) -> bool:
        """The client may still send the current request's body (unread)."""
        return self.h11.their_state is h11.SEND_BODY

    @property
    def can_respond(self) -> bool:
        return self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE)

    @property
    def keep_alive(self) -> bool:
        return self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE

    def trailing_data(self) -> bytes:
        """Bytes the client sent after an upgrade request (the start of the new protocol)."""
        return self.h11.trailing_data[0]

    async def send(self, response: Response, close: bool = False) -> None:
        headers = list(response.headers)
        if response.status != 204:
            if response.content_type:
                headers.append(("content-type", response.content_type))
            headers.append(("content-length", str(len(response.body))))
        if close or self.body_pending:
            headers.append(("connection", "close"))  # an unread body ends this connection
        h = self.h11
        data = h.send(
            h11.Response(
                status_code=response.status,
                headers=headers,
                reason=_REASONS.get(response.status, b""),
            )
        )
        if response.body and response.status != 204:
            data += h.send(h11.Data(data=response.body))
        data += h.send(h11.EndOfMessage())
        await self._write(data)

    async def _write(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(self.limits.send_timeout_s):
            await self.writer.drain()

    async def close(self, linger_s: float = 1.0) -> None:
        """Close, first letting the client read what was sent: after an early error answer
        it may still be sending a body, and closing with unread data would reset the
        connection before the client sees the answer. What it sends meanwhile is dropped,
        up to LINGER_MAX_BYTES: a client pushing megabytes at a refusal is not worth reading."""
        writer = self.writer
        try:
            if linger_s > 0 and not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
                dropped = 0
                async with asyncio.timeout(linger_s):
                    while dropped < LINGER_MAX_BYTES and (data := await self.reader.read(self.limits.max_recv)):
                        dropped += len(data)
        except (TimeoutError, ConnectionError, OSError):
            pass  # the client did not finish in time or went away; close anyway
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (TimeoutError, ConnectionError, OSError):
            pass  # nothing more to do for a socket we are dropping


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value)  # h11 has already checked it is a valid number
    return None


def _too_large(size: int, limit: int) -> str:
    return f"request body of {size} bytes is over the {limit}-byte limit; send frames in smaller batches"


def _make_request(event: h11.Request) -> Request:
    target = event.target.decode("latin-1")
    parts = urlsplit(target)
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1")
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=event.method.decode("ascii"),
        target=target,
        path=parts.path,
        query=parse_qsl(parts.query, keep_blank_values=True),
        headers=headers,
        raw_headers=list(event.headers),
        content_length=_content_length(event.headers),
    )


def reason(status: int) -> str:
    return _REASONS.get(status, b"").decode()
