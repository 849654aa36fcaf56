"""The frame stream of one episode over a WebSocket.

The client sends ``{"seq": n, "frames": [...]}`` text messages and may send the next
before the previous is acknowledged (up to ``max_inflight_batches``). Each batch is queued
for the group-commit writer as soon as it is validated; answers go back in the order the
batches arrived: ``{"ack": n, "stored": k, "duplicates": d}`` once committed, or
``{"error": "...", "seq": n, "status": code}``.

Fairness: the read loop yields to the event loop after every message and is rate-limited
(``ws_messages_per_s``, ``ws_bytes_per_s``: a fast client is made to wait, which stops the
server reading its socket); answers wait in a queue of ``max_pending_replies``, so a
client that does not read them stops being read, and is dropped once an answer has waited
``send_timeout_s``; a client sending more than ``ws_max_refusals`` refused messages in a
row is closed with 1008. A server error in one batch answers that batch with status 500
and the stream goes on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

import orjson
from wsproto.utilities import LocalProtocolError

from storage.aio import AsyncStore
from storage.errors import StorageError
from storage.records import frame_rows

from .budget import RefusalLog, TokenBucket
from .errors import ApiError, storage_error_status
from .limits import Limits
from .validation import StreamAuth, StreamBatch, check_batch, decode, seq_of
from .websocket import CLOSE_GOING_AWAY, CLOSE_POLICY, CLOSE_SERVER_ERROR, WebSocket

_SENT_ERRORS = (ConnectionError, TimeoutError, LocalProtocolError)


class FrameStream:
    def __init__(
        self,
        ws: WebSocket,
        episode_id: int,
        store: AsyncStore,
        limits: Limits,
        token: str | None,
        log: logging.LoggerAdapter,
        refusals: RefusalLog | None = None,
        peer: str = "",
        on_abuse=None,
    ):
        self.ws = ws
        self.episode_id = episode_id
        self.store = store
        self.limits = limits
        self.token = token
        self.log = log
        self.refusals = refusals or RefusalLog()
        self.peer = peer
        self.on_abuse = on_abuse
        """Called when the stream is closed for breaking the rules (the server penalises its peer)."""
        self.acked_batches = 0
        self.refused_batches = 0
        self._outbox: asyncio.Queue = asyncio.Queue(maxsize=limits.max_pending_replies)
        self._inflight = asyncio.Semaphore(limits.max_inflight_batches)
        self._read_task: asyncio.Task | None = None
        self._stopping = False
        self._unread = False
        """True once an answer could not be delivered: the client does not read."""
        now = asyncio.get_running_loop().time()
        self._messages = TokenBucket(limits.ws_messages_per_s, limits.ws_message_burst, now)
        self._bytes = TokenBucket(limits.ws_bytes_per_s, limits.max_body_bytes, now)
        self._refusal_budget = TokenBucket(1.0, limits.ws_max_refusals, now)

    def stop(self) -> None:
        """Stop reading (server shutdown); batches already received are still acknowledged."""
        self._stopping = True
        if self._read_task is not None:
            self._read_task.cancel()

    async def run(self, authenticated: bool) -> None:
        sender = asyncio.create_task(self._send_loop())
        self._read_task = asyncio.create_task(self._read_loop(authenticated))
        close: tuple[int, str] | None = (CLOSE_GOING_AWAY, "server shutting down")
        try:
            await asyncio.wait({self._read_task, sender}, return_when=asyncio.FIRST_COMPLETED)
            if self._read_task.done() and not self._read_task.cancelled():
                exc = self._read_task.exception()
                if exc is None:
                    close = self._read_task.result()
                elif isinstance(exc, _SENT_ERRORS):
                    close = None  # the client went away, or stopped reading (a pong timed out)
                    self._unread = self._unread or isinstance(exc, TimeoutError)
                else:
                    self.log.error("stream for episode %d failed", self.episode_id, exc_info=exc)
                    close = (CLOSE_SERVER_ERROR, "server error; resend the unacknowledged batches")
            elif sender.done():
                close = None  # the client stopped reading its answers
        finally:
            if not self._read_task.done():
                self._read_task.cancel()
                await asyncio.gather(self._read_task, return_exceptions=True)
            await self._finish(sender, close)
        self.log.debug(
            "stream for episode %d closed (%s): %d batches acknowledged, %d refused",
            self.episode_id,
            self.ws.close_code or "dropped",
            self.acked_batches,
            self.refused_batches,
        )

    async def _finish(self, sender: asyncio.Task, close: tuple[int, str] | None) -> None:
        """Deliver the answers still due (acks of committed batches), then close."""
        if not sender.done():
            last = asyncio.create_task(self._outbox.put(None))
            try:
                async with asyncio.timeout(self.limits.shutdown_grace_s):
                    await sender
            except TimeoutError:
                sender.cancel()
                self.log.warning("acks not delivered within %.0f s; closing", self.limits.shutdown_grace_s)
            finally:
                last.cancel()
        if self._unread:
            self.ws.abort()  # nobody reads: a close frame would wait in vain
        elif close is not None:
            code, reason = close
            await self.ws.close(code, reason, linger=code != CLOSE_POLICY)

    async def _read_loop(self, authenticated: bool) -> tuple[int, str] | None:
        """Read, check and queue messages until the client closes (None: already closed) or
        must be closed: the code and reason to close with."""
        if not authenticated and not await self._authenticate():
            return CLOSE_POLICY, "unauthorized"
        loop = asyncio.get_running_loop()
        while not self._stopping:
            message = await self.ws.receive()
            if message is None:
                return None  # closed by the client, idle, or a protocol error: WebSocket sent the close
            now = loop.time()
            wait = max(self._messages.take(1, now), self._bytes.take(len(message), now))
            await asyncio.sleep(wait)  # the rate limit; at least a yield to the other connections
            try:
                await self._handle(message)
            except _Refused as e:
                self.refused_batches += 1
                await self._reply_error(e.seq, e.status, e.message)
                if e.status < 500 and not self._refusal_budget.try_take(1, loop.time()):
                    self._refused(f"stream closed after {self.limits.ws_max_refusals} refused messages")
                    if self.on_abuse is not None:
                        self.on_abuse()
                    return CLOSE_POLICY, f"over {self.limits.ws_max_refusals} refused messages"
        return CLOSE_GOING_AWAY, "server shutting down"

    async def _handle(self, message: str | bytes) -> None:
        """Queue one batch for the writer, its answer for the sender; _Refused if it cannot be."""
        if not isinstance(message, str):
            raise _Refused(None, 400, "send JSON text messages, not binary ones")
        seq = None
        try:
            batch = decode(message, StreamBatch)
            seq = batch.seq
            frames = check_batch(self.episode_id, batch.frames, self.limits.max_frames_per_batch)
            rows = frame_rows(self.episode_id, frames)
            del batch, frames  # freed now, while in the CPU cache
            await self._inflight.acquire()
            try:
                future = await self.store.submit_frames(self.episode_id, rows)
            except BaseException:
                self._inflight.release()
                raise
        except ApiError as e:
            raise _Refused(seq_of(message) if seq is None else seq, e.status, e.message) from None
        except StorageError as e:
            raise _Refused(seq, storage_error_status(e)[0], str(e)) from None
        except Exception:
            # A bug met by this batch alone: answer it, keep the stream.
            self.log.exception("batch seq=%s of episode %d failed", seq, self.episode_id)
            raise _Refused(seq, 500, "internal server error on this batch; the server log has the details") from None
        await self._put((seq, future))

    async def _authenticate(self) -> bool:
        try:
            async with asyncio.timeout(self.limits.ws_auth_timeout_s):
                message = await self.ws.receive(max_bytes=self.limits.max_anonymous_body_bytes)
            given = decode(message, StreamAuth).token if isinstance(message, str) else ""
        except (TimeoutError, ApiError):
            given = ""
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        await self._reply_error(
            None,
            401,
            'a bearer token is required: add ?token=... to the URL or send {"token": "..."} as the first message',
        )
        return False

    def _refused(self, what: str) -> None:
        if self.refusals.count(what, self.peer):
            self.log.info("%s", what)

    async def _reply_error(self, seq: int | None, status: int, message: str) -> None:
        if self.refusals.count(f"stream message {status}", self.peer):
            self.log.info("batch seq=%s refused (%d): %s", seq, status, message)
        await self._put((seq, {"error": message, "seq": seq, "status": status}))

    async def _put(self, item) -> None:
        """Queue an answer; waits (and so stops the reading) while MAX_PENDING_REPLIES wait."""
        await self._outbox.put(item)

    async def _send_loop(self) -> None:
        """Send the answers in order; returns when told (None) or when the client stops reading."""
        while (item := await self._outbox.get()) is not None:
            seq, pending = item
            if isinstance(pending, asyncio.Future):
                try:
                    r = await pending
                    answer = {"ack": seq, "stored": r.stored, "duplicates": r.duplicates}
                    self.acked_batches += 1
                except StorageError as e:
                    answer = {"error": str(e), "seq": seq, "status": storage_error_status(e)[0]}
                finally:
                    self._inflight.release()
            else:
                answer = pending
            try:
                await self.ws.send_text(orjson.dumps(answer).decode())
            except _SENT_ERRORS as e:
                self._unread = isinstance(e, TimeoutError)
                self._refused("stream dropped: the client did not read its answers")
                self.log.debug("client stopped reading answers (%s)", type(e).__name__)
                self._release_all()
                return

    def _release_all(self) -> None:
        """Nobody will read: give back the in-flight slots of the answers still queued."""
        while not self._outbox.empty():
            item = self._outbox.get_nowait()
            if item is not None and isinstance(item[1], asyncio.Future):
                self._inflight.release()


class _Refused(Exception):
    """A stream message that gets an error answer instead of an ack."""

    def __init__(self, seq: int | None, status: int, message: str):
        super().__init__(message)
        self.seq = seq
        self.status = status
        self.message = message
