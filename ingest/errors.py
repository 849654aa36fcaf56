"""The errors the server answers with: ``ApiError``, which every handler raises for a bad
request, and the one map from the storage layer's errors to HTTP statuses, which the HTTP
routes (``server``) and the WebSocket frame stream (``stream``) both use."""

from __future__ import annotations

from storage.errors import BusyError, ConflictError, FrameKindError, NotFoundError, StorageError

STORAGE_RETRY_AFTER_S = 1
"""Retry-After sent with 503 when the database is busy."""


class ApiError(Exception):
    """Answer ``status`` with ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def storage_error_status(exc: StorageError) -> tuple[int, list[tuple[str, str]]]:
    """The HTTP status, and extra response headers, that answer a storage error; the
    message is ``str(exc)``.

    - ``NotFoundError`` (the fighter or episode named does not exist): 404.
    - ``ConflictError`` (the write contradicts stored state, e.g. frames for a completed
      episode): 409.
    - ``FrameKindError`` (frames of the other observation kind than their episode's): 422.
    - ``BusyError`` (another process held the write lock past the busy timeout): 503 with
      ``Retry-After: STORAGE_RETRY_AFTER_S``; the same request may succeed then.
    - any other ``StorageError`` (server shutting down, database error): 503.

    The WebSocket stream sends the status in its ``{"error", "seq", "status"}`` answer and
    has no headers to send.
    """
    if isinstance(exc, NotFoundError):
        return 404, []
    if isinstance(exc, ConflictError):
        return 409, []
    if isinstance(exc, FrameKindError):
        return 422, []
    if isinstance(exc, BusyError):
        return 503, [("retry-after", str(STORAGE_RETRY_AFTER_S))]
    return 503, []
