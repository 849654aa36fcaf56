"""The error every handler raises for a bad request; the server turns it into JSON."""

from __future__ import annotations


class ApiError(Exception):
    """Answer ``status`` with ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
