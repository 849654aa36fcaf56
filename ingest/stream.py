"""The frame stream of one episode over a WebSocket.

The client sends ``{"seq": n, "frames": [...]}`` text messages and may send the next
before the previous is acknowledged (up to ``max_inflight_batches``). Each batch is queued
for the group-commit writer as soon as it is validated; answers go back in the order the
batches arrived: ``{"ack": n, "stored": k, "duplicates": d}`` once committed, or
``{"error": "...", "seq": n, "status": code}``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging

import msgspec
import orjson
from wsproto.utilities import LocalProtocolError

from storage.aio import AsyncStore
from storage.errors import StorageError
from storage.records import frame_rows

from .errors import ApiError, storage_error_status
from .limits import Limits
from .validation import StreamAuth, StreamBatch, check_batch, decode
from .websocket import CLOSE_GOING_AWAY, CLOSE_NORMAL, CLOSE_POLICY, MessageTooBig, WebSocket

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
    ):
        self.ws = ws
        self.episode_id = episode_id
        self.store = store
        self.limits = limits
        self.token = token
        self.log = log
        self.acked_batches = 0
        self._outbox: asyncio.Queue = asyncio.Queue()
        self._inflight = asyncio.Semaphore(limits.max_inflight_batches)
        self._read_task: asyncio.Task | None = None
        self._stopping = False

    def stop(self) -> None:
        """Stop reading (server shutdown); batches already received are still acknowledged."""
        self._stopping = True
        if self._read_task is not None:
            self._read_task.cancel()

    async def run(self, authenticated: bool) -> None:
        sender = asyncio.create_task(self._send_loop())
        self._read_task = asyncio.create_task(self._read_loop(authenticated))
        close = (CLOSE_GOING_AWAY, "server shutting down")
        try:
            await asyncio.wait({self._read_task})
            if not self._read_task.cancelled():
                close = self._read_task.result()
        finally:
            if not self._read_task.done():
                self._read_task.cancel()
            self._outbox.put_nowait(None)
            try:
                async with asyncio.timeout(self.limits.shutdown_grace_s):
                    await sender
            except TimeoutError:
                sender.cancel()
                self.log.warning("acks not delivered within %.0f s; closing", self.limits.shutdown_grace_s)
            await self.ws.close(*close)
        self.log.info("stream for episode %d closed: %d batches acknowledged", self.episode_id, self.acked_batches)

    async def _read_loop(self, authenticated: bool) -> tuple[int, str]:
        if not authenticated and not await self._authenticate():
            return CLOSE_POLICY, "unauthorized"
        max_frames = self.limits.max_frames_per_batch
        while not self._stopping:
            try:
                message = await self.ws.receive()
            except MessageTooBig as e:
                self.log.info("%s; closed", e)
                return CLOSE_NORMAL, ""
            if message is None:
                return CLOSE_NORMAL, ""
            if not isinstance(message, str):
                self._reply_error(None, 400, "send JSON text messages, not binary ones")
                continue
            try:
                seq, rows = _rows_of(message, self.episode_id, max_frames)
            except ApiError as e:
                self._reply_error(_seq_of(message), e.status, e.message)
                continue
            del message
            await self._inflight.acquire()
            try:
                future = await self.store.submit_frames(self.episode_id, rows)
            except StorageError as e:
                self._inflight.release()
                self._reply_error(seq, storage_error_status(e)[0], str(e))
                continue
            self._outbox.put_nowait((seq, future))
        return CLOSE_GOING_AWAY, "server shutting down"

    async def _authenticate(self) -> bool:
        try:
            async with asyncio.timeout(self.limits.ws_auth_timeout_s):
                message = await self.ws.receive()
            given = decode(message, StreamAuth).token if isinstance(message, str) else ""
        except (TimeoutError, ApiError, MessageTooBig):
            given = ""
        if self.token is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        self._reply_error(
            None,
            401,
            'a bearer token is required: add ?token=... to the URL or send {"token": "..."} as the first message',
        )
        return False

    def _reply_error(self, seq: int | None, status: int, message: str) -> None:
        self.log.info("batch seq=%s refused (%d): %s", seq, status, message)
        self._outbox.put_nowait((seq, {"error": message, "seq": seq, "status": status}))

    async def _send_loop(self) -> None:
        broken = False
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
            if broken:
                continue  # keep releasing in-flight slots; nobody is listening
            try:
                await self.ws.send_text(orjson.dumps(answer).decode())
            except _SENT_ERRORS as e:
                self.log.info("client stopped reading acks (%s)", type(e).__name__)
                broken = True
                self.stop()


def _rows_of(message: str, episode_id: int, max_frames: int) -> tuple[int, list[tuple]]:
    """Validate a stream message; its seq and storage rows. The decoded frames are freed
    on return, while still in the CPU cache (freeing them later cost as much as decoding)."""
    batch = decode(message, StreamBatch)
    return batch.seq, frame_rows(episode_id, check_batch(episode_id, batch.frames, max_frames))


def _seq_of(message: str) -> int | None:
    """The seq of a message that failed validation, when it has a usable one."""
    try:
        seq = msgspec.json.decode(message).get("seq")
    except (msgspec.DecodeError, AttributeError):
        return None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None
