"""Which browser origins may call the server, which Host names it answers, and the CORS
headers they get.

By default only pages served from this machine (localhost, 127.0.0.1, [::1], any port) are
allowed; ``--cors-origin`` replaces that with an explicit list, or ``*`` for any origin.
A request whose Origin is not allowed is refused with 403, which also stops other web
sites from writing into the database through the user's browser.

The Host header decides nothing here: it is whatever name the browser used, and after DNS
rebinding (a site's name re-pointed at 127.0.0.1) a page of ``attacker.example`` talks to
this server as ``Host: attacker.example`` with ``Origin: http://attacker.example``. The
allow-list refuses its writes. A server listening on loopback only also refuses any Host
that is a DNS name other than ``localhost`` (``host_is_local``): its reads are the ones a
rebound page could otherwise make without an Origin header.
"""

from __future__ import annotations

import ipaddress
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

    def allows(self, origin: str) -> bool:
        if self.any or origin in self.origins:
            return True
        parts = urlsplit(origin)
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


def host_is_local(host_header: str | None) -> bool:
    """Whether a Host header names this machine in a way DNS cannot re-point: an IP address
    literal or ``localhost`` (any port). A missing Host is local: HTTP/1.0 clients."""
    if host_header is None:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [v6]:port
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True  # RFC 6761: resolvers must answer loopback for these
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback_address(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
