"""Every limit the server enforces, with the reason for its value.

The defaults are module constants; a ``Limits`` instance carries them into the server so
that tests can shrink a timeout without patching globals.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_RECV = 256 * 1024
"""Bytes read from a socket at once: one 100-frame WebSocket batch (~150 KB) in one read."""

MAX_HEADER_BYTES = 16 * 1024
"""Request line plus headers (h11's incomplete-event cap); answered with 431 beyond it."""

MAX_BODY_BYTES = 4 * 1024 * 1024
"""HTTP body and WebSocket message size: 1000 frames of ~1.5 KB fit 2.5 times; 413 beyond."""

MAX_FRAMES_PER_BATCH = 1000
"""Frames in one POST or WebSocket message (16 s of a 60 Hz match); 413 beyond it."""

MAX_ACT_OBSERVATIONS = 1024
"""Observations in one /act request: every fighter of 16 full rings at once. Its JSON is at
most ~600 KB at full precision (inside the body limit) and its forward pass takes about a
millisecond of the event loop; 413 beyond it."""

MAX_OPPONENTS = 16
"""opponent_ids per episode; a ring holds at most this many fighters."""

MAX_METADATA_BYTES = 64 * 1024
"""A fighter's metadata JSON (sizes, speeds, names); larger is not metadata."""

MAX_PAGE_LIMIT = 1000
"""Largest ``limit`` of a paginated list; a page of 1000 frames is ~1.5 MB of JSON."""

DEFAULT_PAGE_LIMIT = 100
"""``limit`` when the query string has none."""

MAX_CONNECTIONS = 256
"""Open sockets. Each may hold one decoded batch (~3 MB at the frame limit), so this
bounds memory at about 1 GB in the worst case; more get 503 and are closed."""

MAX_INFLIGHT_BATCHES = 8
"""WebSocket batches of one connection received but not yet acknowledged; the server
stops reading that socket beyond it (TCP back-pressure on the game)."""

REQUEST_TIMEOUT_S = 30.0
"""From a request's first byte to its last: a stalled or slowloris client gets 408."""

KEEPALIVE_TIMEOUT_S = 75.0
"""An idle keep-alive connection is closed after this (longer than browsers' 60 s)."""

SEND_TIMEOUT_S = 30.0
"""Writing a response or an ack to a client that does not read it: then the socket is dropped."""

WS_PING_INTERVAL_S = 20.0
"""A WebSocket silent this long is pinged; browsers answer pings without page code."""

WS_IDLE_TIMEOUT_S = 60.0
"""A WebSocket that sends nothing (not even a pong) this long is closed (1001)."""

WS_AUTH_TIMEOUT_S = 10.0
"""With a token configured and none in the URL, the first message must arrive by then."""

SHUTDOWN_GRACE_S = 10.0
"""On SIGINT/SIGTERM: how long in-flight requests and acks may take before sockets close."""


@dataclass(frozen=True)
class Limits:
    """The limits one server instance applies (defaults: the constants above)."""

    max_recv: int = MAX_RECV
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    max_frames_per_batch: int = MAX_FRAMES_PER_BATCH
    max_act_observations: int = MAX_ACT_OBSERVATIONS
    max_page_limit: int = MAX_PAGE_LIMIT
    max_connections: int = MAX_CONNECTIONS
    max_inflight_batches: int = MAX_INFLIGHT_BATCHES
    request_timeout_s: float = REQUEST_TIMEOUT_S
    keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S
    send_timeout_s: float = SEND_TIMEOUT_S
    ws_ping_interval_s: float = WS_PING_INTERVAL_S
    ws_idle_timeout_s: float = WS_IDLE_TIMEOUT_S
    ws_auth_timeout_s: float = WS_AUTH_TIMEOUT_S
    shutdown_grace_s: float = SHUTDOWN_GRACE_S
