"""Every limit the server enforces, with the reason for its value.

The defaults are module constants; a ``Limits`` instance carries them into the server so
that tests can shrink a timeout without patching globals. Each field of ``Limits`` is also
a command-line flag of ingest_server.py (``flag_name``), and docs/ingest.md lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# ---------------------------------------------------------------- sizes

MAX_RECV = 256 * 1024
"""Bytes read from a socket at once: one 100-frame WebSocket batch (~150 KB) in one read."""

MAX_HEADER_BYTES = 16 * 1024
"""Request line plus headers (h11's incomplete-event cap); answered with 431 beyond it."""

MAX_BODY_BYTES = 4 * 1024 * 1024
"""HTTP body and WebSocket message size: 1000 frames of ~1.5 KB fit 2.5 times; 413 (close
1009 on a stream) beyond."""

MAX_ANONYMOUS_BODY_BYTES = 64 * 1024
"""With a token configured: the largest body (or first stream message) read from a client
that has not shown it. Larger requests are refused with 401 from their headers, before a
byte of the body is read, so that clients without the token cannot make the server hold
megabytes each. 64 KiB still takes a /act of ~100 observations or a token message."""

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

MAX_OFFSET = 2**62
"""Largest ``offset`` of a list: SQLite's OFFSET is a 64-bit integer."""

# ---------------------------------------------------------------- connections

MAX_CONNECTIONS = 512
"""Open sockets in all. Twice the 256 that 100 games (one stream each, plus their requests)
and a training run need, and half of the usual 1024 file descriptors (ingest_server.py
raises its soft limit to fit). Beyond it an idle keep-alive connection is closed to make
room, else the newcomer is answered 503 (or its /health answered) and closed."""

MAX_CONNECTIONS_PER_PEER = 128
"""Open sockets from one address (an IPv6 /64 counts as one): no single machine can hold
more than a quarter of the server. 100 games run from one machine (a test rig, the
benchmark) still fit; a browser uses at most ~6 connections plus one stream per match."""

RESERVED_CONNECTIONS = 32
"""The last sockets of MAX_CONNECTIONS, kept for newcomers: a peer that already holds
RESERVE_PEER_SHARE connections is refused them, so a new player (or a /health probe) still
gets in while a few peers hold the rest."""

RESERVE_PEER_SHARE = 8
"""Connections a peer may hold and still be let into the reserved ones (a browser's 6 plus
a stream or two)."""

CONNECTS_PER_PEER_PER_S = 250.0
"""New connections per second from one address, once its burst (MAX_CONNECTIONS_PER_PEER)
is spent; beyond it a connection is closed at once. A client the server keeps closing
(for flooding, say) cannot make it spend its time accepting and closing instead. One machine
recording 100 short matches at a time (``python -m demos.clone_chaser --matches 1000``: a
stream per match, matches of about 40 decisions) opens about 200 a second; 50 cut it off."""

ABUSE_PENALTY_S = 2.0
"""A peer whose stream was closed for too many refused messages (1008) has its new
connections dropped this long: reconnecting at once to start again costs the server a
handshake and a database read each time. A game's client backs off longer than this."""

MAX_REFUSING = 64
"""Connections over the limits being answered (503, or /health) at once; beyond it they are
closed without an answer, so that refusing costs no more than a bounded amount of work."""

# ---------------------------------------------------------------- time

HEADER_TIMEOUT_S = 10.0
"""From a request's first byte to the end of its headers (slowloris): 408 and close beyond."""

BODY_TIMEOUT_S = 30.0
"""From the end of a request's headers to the end of its body: 4 MiB at 1.2 Mbit/s. A
stalled upload gets 408 and is closed."""

KEEPALIVE_TIMEOUT_S = 5.0
"""An idle connection (a new one that sent nothing yet, or a keep-alive one between
requests) is closed after this. Browsers reopen one in a millisecond on loopback; idle
sockets must not hold places that others need."""

SEND_TIMEOUT_S = 10.0
"""Writing an answer or an ack that the client does not read (its socket buffers full):
then the connection is dropped."""

SHUTDOWN_GRACE_S = 10.0
"""On SIGINT/SIGTERM: how long in-flight requests and acks may take before sockets close."""

# ---------------------------------------------------------------- rates (per connection)

REQUESTS_PER_S = 200.0
"""HTTP requests per second on one keep-alive connection, after a burst of REQUEST_BURST;
beyond it the server reads that connection's next request later (it is throttled, not
refused). A game makes a few requests per match."""

REQUEST_BURST = 400.0
"""Requests a keep-alive connection may send back to back before REQUESTS_PER_S applies."""

WS_MESSAGES_PER_S = 200.0
"""Stream messages per second (after a burst of WS_MESSAGE_BURST): 20 times a 60 Hz game
sending batches of 6 frames; beyond it the server reads the stream later (TCP back-pressure)."""

WS_MESSAGE_BURST = 400.0
"""Messages a stream may send back to back, e.g. its unacknowledged batches after a reconnect."""

WS_BYTES_PER_S = 8 * 1024 * 1024
"""Bytes per second of one stream (after a burst of MAX_BODY_BYTES): about 5,500 frames/s,
11 times a benchmark game; a backlog of 100,000 frames is resent in 20 s. Parsing is the
server's main cost, so this bounds the share of the event loop one stream can take."""

WS_MAX_REFUSALS = 32
"""Refused stream messages (malformed, invalid) a stream may send at once; then one a
second more. Beyond it the stream is closed with 1008: a client sending nothing but errors
is broken or hostile, and each refusal costs an answer. (A database busy or shutting down,
status 503, is not the client's fault and does not count.)"""

MAX_PENDING_REPLIES = 64
"""Answers queued for a stream's client. When the client does not read them the queue
fills and the server stops reading its messages (it is throttled); SEND_TIMEOUT_S later
the connection is dropped."""

MAX_INFLIGHT_BATCHES = 8
"""WebSocket batches of one connection received but not yet acknowledged; the server
stops reading that socket beyond it (TCP back-pressure on the game)."""

# ---------------------------------------------------------------- WebSocket time

WS_PING_INTERVAL_S = 20.0
"""A WebSocket silent this long is pinged; browsers answer pings without page code."""

WS_IDLE_TIMEOUT_S = 60.0
"""A stream that sends no message this long is closed (1000, "idle"), whether or not it
answers pings: a match sends frames several times a second, and a socket that only
answers pings holds a place for nothing. The client reconnects when it has frames again."""

WS_AUTH_TIMEOUT_S = 10.0
"""With a token configured and none in the URL, the first message must arrive by then."""

# ---------------------------------------------------------------- /act sessions (recurrent fighters' memory)

MAX_SESSIONS = 4096
"""Sessions held at once: 4,000 matches in play against recurrent fighters served by /act;
beyond it the least recently used is forgotten (its next call starts with fresh memory, and
the answer says so)."""

MAX_SESSION_ROWS = 65_536
"""Fighters' memories held over all sessions: at 128 hidden units one is 1 KiB (h and c,
float32), so 64 MiB in all whatever the clients send."""

SESSION_TTL_S = 600.0
"""Seconds a session is kept after its last call: a paused match resumes with its memory, an
abandoned one is forgotten."""

# ---------------------------------------------------------------- logs

LOG_SUMMARY_INTERVAL_S = 10.0
"""Refused requests, messages and connections are counted and logged as one summary line
this often (and the first of each kind at once), never one line each."""


def _limit(default, what: str):
    return field(default=default, metadata={"help": what})


@dataclass(frozen=True)
class Limits:
    """The limits one server instance applies (defaults: the constants above)."""

    max_recv: int = _limit(MAX_RECV, "bytes read from a socket at once")
    max_header_bytes: int = _limit(MAX_HEADER_BYTES, "request line and headers, bytes (431 beyond)")
    max_body_bytes: int = _limit(MAX_BODY_BYTES, "HTTP body or stream message, bytes (413, close 1009)")
    max_anonymous_body_bytes: int = _limit(
        MAX_ANONYMOUS_BODY_BYTES, "with --token: largest body read before the token is shown (401 beyond)"
    )
    max_frames_per_batch: int = _limit(MAX_FRAMES_PER_BATCH, "frames per POST or stream message (413)")
    max_act_observations: int = _limit(MAX_ACT_OBSERVATIONS, "observations per /act request (413)")
    max_sessions: int = _limit(MAX_SESSIONS, "recurrent fighters' /act sessions held at once")
    max_session_rows: int = _limit(MAX_SESSION_ROWS, "fighters' memories held over all /act sessions")
    session_ttl_s: float = _limit(SESSION_TTL_S, "seconds an /act session is kept after its last call")
    max_page_limit: int = _limit(MAX_PAGE_LIMIT, "largest ?limit= of a list (400)")
    max_connections: int = _limit(MAX_CONNECTIONS, "open sockets in all")
    max_connections_per_peer: int = _limit(MAX_CONNECTIONS_PER_PEER, "open sockets from one address")
    reserved_connections: int = _limit(RESERVED_CONNECTIONS, "sockets kept for peers holding few")
    connects_per_peer_per_s: float = _limit(CONNECTS_PER_PEER_PER_S, "new connections per second from one address")
    abuse_penalty_s: float = _limit(ABUSE_PENALTY_S, "seconds a peer closed with 1008 for refusals is kept out")
    max_refusing: int = _limit(MAX_REFUSING, "over-limit connections answered at once")
    header_timeout_s: float = _limit(HEADER_TIMEOUT_S, "seconds from a request's first byte to its last header")
    body_timeout_s: float = _limit(BODY_TIMEOUT_S, "seconds for a request's body after its headers")
    keepalive_timeout_s: float = _limit(KEEPALIVE_TIMEOUT_S, "seconds an idle connection is kept")
    send_timeout_s: float = _limit(SEND_TIMEOUT_S, "seconds an unread answer may wait before the drop")
    shutdown_grace_s: float = _limit(SHUTDOWN_GRACE_S, "seconds work in progress gets on SIGTERM")
    requests_per_s: float = _limit(REQUESTS_PER_S, "HTTP requests per second per connection")
    request_burst: float = _limit(REQUEST_BURST, "HTTP requests per connection before the rate applies")
    ws_messages_per_s: float = _limit(WS_MESSAGES_PER_S, "stream messages per second per connection")
    ws_message_burst: float = _limit(WS_MESSAGE_BURST, "stream messages before the rate applies")
    ws_bytes_per_s: float = _limit(WS_BYTES_PER_S, "stream bytes per second per connection")
    ws_max_refusals: int = _limit(WS_MAX_REFUSALS, "refused stream messages (then one a second) before close 1008")
    max_pending_replies: int = _limit(MAX_PENDING_REPLIES, "answers queued for a stream's client")
    max_inflight_batches: int = _limit(MAX_INFLIGHT_BATCHES, "unacknowledged batches per stream")
    ws_ping_interval_s: float = _limit(WS_PING_INTERVAL_S, "seconds of silence before a ping")
    ws_idle_timeout_s: float = _limit(WS_IDLE_TIMEOUT_S, "seconds without a stream message before close 1000")
    ws_auth_timeout_s: float = _limit(WS_AUTH_TIMEOUT_S, "seconds for the token message of a stream")
    log_summary_interval_s: float = _limit(LOG_SUMMARY_INTERVAL_S, "seconds between summaries of refusals")

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not value > 0:
                raise ValueError(f"{flag_name(f.name)} must be positive, got {value!r}")
        if self.reserved_connections >= self.max_connections:
            raise ValueError(
                f"--reserved-connections ({self.reserved_connections}) must be below "
                f"--max-connections ({self.max_connections})"
            )


def flag_name(field_name: str) -> str:
    """The command-line flag of a Limits field: ``header_timeout_s`` -> ``--header-timeout``
    (seconds), ``requests_per_s`` -> ``--requests-per-s``."""
    if not field_name.endswith("_per_s"):
        field_name = field_name.removesuffix("_s")
    return "--" + field_name.replace("_", "-")


def limit_fields() -> list:
    """The fields of Limits, each with ``.name``, ``.type``, ``.default`` and ``.metadata['help']``."""
    return list(fields(Limits))
