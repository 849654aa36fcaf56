"""Which browser origins may call the server, and the CORS headers they get.

By default only pages served from this machine (localhost, 127.0.0.1, [::1], any port) are
allowed; ``--cors-origin`` replaces that with an explicit list, or ``*`` for any origin.
A request whose Origin is not allowed is refused with 403, which also stops other web
sites from writing into the database through the user's browser.
"""

from __future__ import annotations

from urllib.parse import urlsplit

ALLOWED_METHODS = "GET, POST, PATCH, OPTIONS"
ALLOWED_HEADERS = "authorization, content-type"
PREFLIGHT_MAX_AGE_S = 600
"""Browsers cache a preflight this long (Chromium caps it at 2 hours)."""

LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


class CorsPolicy:
    def __init__(self, origins: list[str] | None = None):
        """``origins``: exact origins such as ``http://localhost:8000``, or ``["*"]``;
        None allows any loopback origin."""
        self.any = origins is not None and "*" in origins
        self.origins = {o.rstrip("/") for o in origins or ()}
        self.loopback_default = origins is None

    def allows(self, origin: str, own_host: str | None = None) -> bool:
        if self.any or origin in self.origins:
            return True
        parts = urlsplit(origin)
        if own_host and parts.netloc == own_host:
            return True  # same origin: a page served by this server (e.g. /docs)
        if self.loopback_default and parts.scheme in ("http", "https"):
            host = parts.hostname or ""
            return host in LOOPBACK_HOSTS or f"[{host}]" in LOOPBACK_HOSTS
        return False

    def describe(self) -> str:
        if self.any:
            return "any origin"
        if self.loopback_default:
            return "loopback origins (http://localhost:*, http://127.0.0.1:*)"
        return ", ".join(sorted(self.origins))

    @staticmethod
    def response_headers(origin: str) -> list[tuple[str, str]]:
        return [("access-control-allow-origin", origin), ("vary", "Origin")]

    @staticmethod
    def preflight_headers(origin: str) -> list[tuple[str, str]]:
        return [
            ("access-control-allow-origin", origin),
            ("access-control-allow-methods", ALLOWED_METHODS),
            ("access-control-allow-headers", ALLOWED_HEADERS),
            ("access-control-max-age", str(PREFLIGHT_MAX_AGE_S)),
            ("vary", "Origin"),
        ]
