"""HTTP/1.1 over asyncio streams, parsed by h11 (which does no I/O itself).

``HttpConnection`` reads bytes, feeds h11, and returns whole requests (body included, size
capped); it writes responses. It knows nothing of routes, JSON or storage.
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
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


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
    body: bytes

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
    """One client connection: a sequence of keep-alive request/response cycles."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limits: Limits):
        self.reader = reader
        self.writer = writer
        self.limits = limits
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
        self.idle = True
        """True while waiting for a request's first byte (safe to drop at shutdown)."""

    async def receive_request(self) -> Request | None:
        """The next whole request; None when the client closed or idled out between requests.

        Raises HttpError for malformed, oversized or too slow requests.
        """
        h = self.h11
        if h.our_state is h11.DONE and h.their_state is h11.DONE:
            h.start_next_cycle()
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        request: h11.Request | None = None
        body = bytearray()
        self.idle = True
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as e:
                raise HttpError(e.error_status_hint, f"malformed HTTP request: {e}") from e
            if event is h11.NEED_DATA:
                if h.they_are_waiting_for_100_continue:
                    await self._write(h.send(h11.InformationalResponse(status_code=100, headers=[])))
                if deadline is None:
                    timeout = self.limits.keepalive_timeout_s
                else:
                    timeout = deadline - loop.time()
                try:
                    async with asyncio.timeout(max(timeout, 0)):
                        data = await self.reader.read(self.limits.max_recv)
                except TimeoutError:
                    if deadline is None:
                        return None
                    raise HttpError(408, f"request not completed within {self.limits.request_timeout_s:g} s") from None
                except ConnectionError:
                    return None
                if deadline is None:
                    deadline = loop.time() + self.limits.request_timeout_s
                    self.idle = False
                h.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
                self.idle = False
                header_bytes = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if header_bytes > self.limits.max_header_bytes:
                    # h11's own cap only applies while the headers are incomplete.
                    raise HttpError(
                        431,
                        f"request headers of {header_bytes} bytes are over the "
                        f"{self.limits.max_header_bytes}-byte limit",
                    )
                length = _content_length(event.headers)
                if length is not None and length > self.limits.max_body_bytes:
                    raise HttpError(413, _too_large(length, self.limits.max_body_bytes))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    raise HttpError(413, _too_large(len(body), self.limits.max_body_bytes))
            elif isinstance(event, h11.EndOfMessage):
                assert request is not None
                return _make_request(request, bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None
            else:  # PAUSED can only follow EndOfMessage, which returned above
                raise HttpError(400, f"unexpected HTTP event {event!r}")

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
        if close:
            headers.append(("connection", "close"))
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
        connection before the client sees the answer."""
        writer = self.writer
        try:
            if linger_s > 0 and not writer.is_closing() and writer.can_write_eof():
                writer.write_eof()
                async with asyncio.timeout(linger_s):
                    while await self.reader.read(self.limits.max_recv):
                        pass
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


def _make_request(event: h11.Request, body: bytes) -> Request:
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
        body=body,
    )


def reason(status: int) -> str:
    return _REASONS.get(status, b"").decode()
