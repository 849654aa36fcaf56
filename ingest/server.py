"""The asyncio server: accepts sockets within the connection budget, checks each request
from its headers (route, Host, Origin, token, media type, size) before reading its body,
and hands it to the routes (``handlers``) or each WebSocket to a ``FrameStream``.

Protocol parsing lives in ``http`` (h11) and ``websocket`` (wsproto); the rules of who may
take sockets and time in ``budget``; storage in ``storage.aio``. Every log line starts
with ``[conn N]``, the connection's id; refusals are counted and summed up every
``log_summary_interval_s`` instead of logged one by one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import itertools
import logging
import threading
from dataclasses import dataclass, field

import orjson
from wsproto.utilities import RemoteProtocolError

from storage.aio import AsyncStore
from storage.errors import StorageError

from .budget import ConnectionBudget, RefusalLog, TokenBucket, peer_key
from .cors import CorsPolicy, host_is_local, is_loopback_address
from .errors import ApiError, storage_error_status
from .handlers import Api, check_media_type
from .http import HttpConnection, HttpError, Request, Response
from .limits import Limits
from .stream import FrameStream
from .websocket import WebSocket

logger = logging.getLogger("ingest")

LISTEN_BACKLOG = 1024
"""Pending connections the kernel queues while the loop is busy (bursts of reconnects)."""

REFUSAL_DEADLINE_S = 1.0
"""How long a connection over the limits has to send its request line and headers (to be
answered 503, or /health); then it is closed."""


class ConfigError(ValueError):
    """A server configuration that must not run (the message says what to change)."""


@dataclass
class ServerConfig:
    db_path: str = "data/arena.db"
    host: str = "127.0.0.1"
    port: int = 8001
    """0 picks a free port (tests)."""
    token: str | None = None
    """When set, writes need ``Authorization: Bearer <token>`` (WebSocket: ``?token=``)."""
    cors_origins: list[str] | None = None
    """None: loopback origins; else exact origins, or ["*"]."""
    limits: Limits = field(default_factory=Limits)
    synchronous: str = "FULL"
    """SQLite synchronous mode of the server's connections; FULL: an ack survives power loss."""
    allow_no_token: bool = False
    """Listen beyond loopback without a token: anyone who can reach the port may write."""

    def check(self) -> None:
        """ConfigError for a server that would take writes from the network without a token."""
        if not is_loopback_address(self.host) and not self.token and not self.allow_no_token:
            raise ConfigError(
                f"--host {self.host} listens beyond this machine, where anyone who reaches port "
                f"{self.port} could write into the database: set --token (or $ARENA_INGEST_TOKEN), "
                "or pass --allow-no-token if that network is trusted"
            )


class ConnLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"[conn {self.extra['conn']}] {msg}", kwargs


class _Conn:
    __slots__ = ("task", "peer", "http", "stream")

    def __init__(self, task: asyncio.Task, peer: str):
        self.task = task
        self.peer = peer
        self.http: HttpConnection | None = None
        self.stream: FrameStream | None = None


class IngestServer:
    def __init__(self, config: ServerConfig):
        config.check()
        self.config = config
        self.limits = config.limits
        self.cors = CorsPolicy(config.cors_origins)
        self.local_hosts_only = is_loopback_address(config.host)
        """Listening on loopback: answer only Host names DNS cannot re-point (cors.host_is_local)."""
        self.store: AsyncStore | None = None
        self.api: Api | None = None
        self.port: int | None = None
        self.stats = {"connections": 0}
        self.budget = ConnectionBudget(self.limits)
        self.refusals = RefusalLog()
        self._refusing = 0
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._summary_task: asyncio.Task | None = None
        self._log = ConnLog(logger, {"conn": "-"})

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        self.store = await AsyncStore.open(self.config.db_path, self.config.synchronous)
        self.api = Api(self.store, self.limits, self.stats, token_required=self.config.token is not None)
        try:
            self._server = await asyncio.start_server(
                self._on_connect,
                self.config.host,
                self.config.port,
                backlog=LISTEN_BACKLOG,
                limit=self.limits.max_recv,
            )
        except BaseException:
            await self.store.close()
            raise
        self.port = self._server.sockets[0].getsockname()[1]
        self._summary_task = asyncio.create_task(self._log_summaries(), name="refusal-summaries")
        self._log.info(
            "listening on %s, database %s, CORS %s, token %s",
            self.url,
            self.config.db_path,
            self.cors.describe(),
            "required for writes" if self.config.token else "not required",
        )

    async def shutdown(self) -> None:
        """Stop accepting, let requests in progress finish and acks go out, commit, close."""
        if self._closing:
            return
        self._closing = True
        self._log.info("shutting down: %d connections open", len(self._conns))
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns.values()):
            if conn.stream is not None:
                conn.stream.stop()
            elif conn.http is not None and conn.http.idle:
                conn.task.cancel()
        tasks = [c.task for c in self._conns.values()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.limits.shutdown_grace_s)
            for t in late:
                t.cancel()
            if late:
                self._log.warning(
                    "%d connections did not finish within %.0f s; dropped", len(late), self.limits.shutdown_grace_s
                )
                await asyncio.wait(late, timeout=1.0)
        if self._summary_task is not None:
            self._summary_task.cancel()
            self._log_summary()
        if self.store is not None:
            await self.store.close()
        self._log.info("stopped; %d transactions committed", self.store.commits if self.store else 0)

    # ---------------------------------------------------------------- refusals, in aggregate

    def _refused(self, log: ConnLog, kind: str, peer: str, detail: str) -> None:
        """Count a refusal; only the first of its kind in an interval gets a line of its own."""
        if self.refusals.count(kind, peer):
            log.info("refused (%s) from %s: %s", kind, peer, detail)
        else:
            log.debug("refused (%s) from %s: %s", kind, peer, detail)

    async def _log_summaries(self) -> None:
        while True:
            await asyncio.sleep(self.limits.log_summary_interval_s)
            self._log_summary()

    def _log_summary(self) -> None:
        line = self.refusals.summary()
        if line:
            self._log.info("refused in the last %g s: %s", self.limits.log_summary_interval_s, line)

    # ---------------------------------------------------------------- connections

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = next(self._ids)
        log = ConnLog(logger, {"conn": conn_id})
        if self._closing:
            writer.transport.abort()
            return
        peername = writer.get_extra_info("peername")
        peer = peer_key(peername[0] if peername else None)
        admission = self.budget.admit(peer, asyncio.get_running_loop().time())
        if admission.evict is not None:
            self._evict(admission.evict, log)
        if not admission.ok:
            self._refused(log, "connection", peer, admission.reason)
            if admission.answer and self._refusing < self.limits.max_refusing:
                await self._refuse(reader, writer, log, admission.reason)
            else:
                writer.transport.abort()  # the cheapest refusal: an RST, no work
            return
        conn = self._conns[conn_id] = _Conn(asyncio.current_task(), peer)
        self.budget.opened(conn_id, peer)
        self.stats["connections"] = len(self._conns)
        log.debug("open from %s", peername)
        try:
            await self._serve(reader, writer, conn, conn_id, log)
        except asyncio.CancelledError:
            log.debug("closed (shutdown, or idle and its place needed)")
        except (ConnectionError, TimeoutError) as e:
            log.debug("client went away or stopped reading (%s)", type(e).__name__)
        except Exception:
            log.exception("unexpected error; connection closed")
        finally:
            self._conns.pop(conn_id, None)
            self.budget.closed(conn_id)
            self.stats["connections"] = len(self._conns)
            if writer.transport.get_write_buffer_size():
                writer.transport.abort()  # answers nobody reads: do not keep the socket for them
            elif not writer.is_closing():
                writer.close()

    def _evict(self, conn_id: int, log: ConnLog) -> None:
        """Close an idle connection to make room (its client reconnects when it needs to)."""
        conn = self._conns.get(conn_id)
        self.budget.closed(conn_id)
        if conn is not None:
            self.refusals.count("idle connection closed to make room", conn.peer)
            log.debug("closing idle connection %d of %s to make room", conn_id, conn.peer)
            conn.task.cancel()

    async def _refuse(self, reader, writer, log: ConnLog, reason: str) -> None:
        """Answer a connection over the limits: /health as usual (monitoring must see the
        server even when it is full), anything else 503. Nothing else is read."""
        self._refusing += 1
        quick = dataclasses.replace(
            self.limits, header_timeout_s=REFUSAL_DEADLINE_S, keepalive_timeout_s=REFUSAL_DEADLINE_S
        )
        http = HttpConnection(reader, writer, quick)
        try:
            try:
                request = await http.receive_head()
            except HttpError:
                request = None
            if http.can_respond:
                if request is not None and request.method == "GET" and request.path == "/health":
                    status, payload = await self.api.health(request)
                    response = Response(status, orjson.dumps(payload))
                else:
                    response = _error(503, f"{reason}; retry shortly", [("retry-after", "1")])
                await http.send(response, close=True)
            await http.close(linger_s=0.5)
        except (ConnectionError, TimeoutError, ApiError):
            writer.transport.abort()
        finally:
            self._refusing -= 1

    async def _serve(self, reader, writer, conn: _Conn, conn_id: int, log: ConnLog) -> None:
        http = conn.http = HttpConnection(reader, writer, self.limits)
        http.on_idle = lambda idle: self.budget.set_idle(conn_id, idle)
        self.budget.set_idle(conn_id, True)
        loop = asyncio.get_running_loop()
        rate = TokenBucket(self.limits.requests_per_s, self.limits.request_burst, loop.time())
        while True:
            try:
                request = await http.receive_head()
                if request is None:
                    break
                if request.is_websocket_upgrade:
                    await self._serve_websocket(http, request, conn, log)
                    return
                response = await self._respond(http, request, conn.peer, log)
            except HttpError as e:
                self._refused(log, f"HTTP {e.status}", conn.peer, e.message)
                if http.can_respond:
                    await http.send(_error(e.status, e.message), close=True)
                break
            await http.send(response, close=self._closing)
            if self._closing or not http.keep_alive:
                break
            # Fairness: at least a yield between two requests of one connection, and a
            # connection over its request rate waits (its next request is read later).
            await asyncio.sleep(rate.take(1, loop.time()))
        await http.close()

    # ---------------------------------------------------------------- HTTP requests

    def _check_host_and_origin(self, req: Request) -> list[tuple[str, str]]:
        """CORS headers for the answer; ApiError 403 for a foreign Host or Origin."""
        host = req.headers.get("host")
        if self.local_hosts_only and not host_is_local(host):
            raise ApiError(
                403,
                f"Host {host!r} is not this machine's: a server on loopback answers only localhost "
                "or an IP address (a DNS name pointed at 127.0.0.1 is how DNS rebinding reaches it); "
                "use http://127.0.0.1:PORT, or have your proxy send Host: 127.0.0.1",
            )
        origin = req.headers.get("origin")
        if origin is None:
            return []
        if not self.cors.allows(origin):
            raise ApiError(403, f"origin {origin!r} is not allowed; start the server with --cors-origin {origin}")
        return CorsPolicy.response_headers(origin)

    async def _respond(self, http: HttpConnection, req: Request, peer: str, log: ConnLog) -> Response:
        """Check the request from its headers, then read its body and run its handler."""
        cors_headers: list[tuple[str, str]] = []
        try:
            cors_headers = self._check_host_and_origin(req)
            if req.method == "OPTIONS":
                await http.receive_body(req, 0)
                return self._preflight(req)
            route, params = self.api.router.match(req.method, req.path)
            authorised = self._authorised(req.headers.get("authorization"))
            if route.write and not authorised:
                raise _unauthorised("this server needs 'Authorization: Bearer <token>' for writes")
            limit = self.limits.max_body_bytes if route.body else 0
            if not authorised and limit > self.limits.max_anonymous_body_bytes:
                limit = self.limits.max_anonymous_body_bytes
                if req.content_length is not None and req.content_length > limit:
                    raise _unauthorised(
                        f"a body of {req.content_length} bytes needs 'Authorization: Bearer <token>' on this "
                        f"server (without it, at most {limit} bytes)"
                    )
            if route.body:
                check_media_type(req)
            elif req.content_length:
                raise ApiError(413, f"{req.method} {route.pattern} takes no body; send none")
            await http.receive_body(req, limit)
            result = await route.handler(req, **params)
            response = result if isinstance(result, Response) else Response(result[0], orjson.dumps(result[1]))
        except ApiError as e:
            response = _error(e.status, e.message, e.headers)
        except StorageError as e:
            status, headers = storage_error_status(e)
            response = _error(status, str(e), headers)
        except HttpError:
            raise  # the body could not be read: answered (408, 413) and closed by _serve
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            response = _error(500, "internal server error; the server log has the details")
        if response.status >= 400 and response.status != 500:
            self._refused(log, f"HTTP {response.status}", peer, f"{req.method} {req.path[:200]}")
        else:
            log.debug("%s %s -> %d", req.method, req.path, response.status)
        response.headers.extend(cors_headers)
        return response

    def _preflight(self, req: Request) -> Response:
        allowed = self.api.router.allowed_methods(req.path)
        if not allowed:
            return _error(404, f"no such endpoint: {req.path}")
        origin = req.headers.get("origin")
        if origin is None:
            return Response(204, headers=[("allow", ", ".join(allowed + ["OPTIONS"]))])
        return Response(204, headers=CorsPolicy.preflight_headers(origin))

    def _authorised(self, authorization: str | None) -> bool:
        """No token configured, or the request shows it (compared in constant time)."""
        token = self.config.token
        if token is None:
            return True
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())

    # ---------------------------------------------------------------- WebSocket

    async def _serve_websocket(self, http: HttpConnection, req: Request, conn: _Conn, log: ConnLog) -> None:
        try:
            episode_id, authenticated = await self._check_upgrade(http, req)
            ws = await WebSocket.accept(http, req)
        except (ApiError, RemoteProtocolError) as e:
            if isinstance(e, RemoteProtocolError):
                e = ApiError(400, f"invalid WebSocket handshake: {e}")
            self._refused(log, f"WebSocket handshake {e.status}", conn.peer, f"{req.path[:200]}: {e.message}")
            if http.can_respond:
                await http.send(_error(e.status, e.message, e.headers), close=True)
            await http.close()
            return
        log.debug("stream open for episode %d", episode_id)
        loop = asyncio.get_running_loop()
        stream = conn.stream = FrameStream(
            ws,
            episode_id,
            self.store,
            self.limits,
            self.config.token,
            log,
            self.refusals,
            conn.peer,
            on_abuse=lambda: self.budget.penalise(conn.peer, loop.time()),
        )
        if self._closing:
            stream.stop()
        try:
            await stream.run(authenticated)
        finally:
            await http.close(linger_s=0)

    async def _check_upgrade(self, http: HttpConnection, req: Request) -> tuple[int, bool]:
        """The episode id of a stream request, and whether the token came with it; all
        checked from the headers (and one indexed read) before the upgrade."""
        route, params = self.api.router.match("GET", req.path)
        if route.handler != self.api.stream_without_upgrade:
            raise ApiError(404, f"{req.path} does not accept WebSockets; stream to /api/episodes/{{id}}/stream")
        self._check_host_and_origin(req)
        query = dict(req.query)
        unknown = set(query) - {"token"}
        if unknown:
            raise ApiError(400, f"unknown query parameters {sorted(unknown)}; the stream takes token")
        authenticated = self.config.token is None
        if "token" in query and not authenticated:
            if not self._authorised("Bearer " + query["token"]):
                raise _unauthorised("wrong token: pass the server's token as ?token=...")
            authenticated = True
        if req.content_length:
            raise ApiError(400, "a WebSocket handshake has no body")
        await http.receive_body(req, 0)
        episode_id = params["episode_id"]
        state = await self.store.episode_open(episode_id)
        if state is None:
            raise ApiError(404, f"episode {episode_id} does not exist; create it with POST /api/episodes")
        if not state:
            raise ApiError(409, f"episode {episode_id} is completed; start a new episode")
        return episode_id, authenticated


def _unauthorised(message: str) -> ApiError:
    return ApiError(401, message, headers=[("www-authenticate", "Bearer")])


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, orjson.dumps({"error": message, "status": status}), headers=list(headers or []))


class BackgroundServer:
    """An IngestServer on its own thread and event loop, for tests and embedding.

    with BackgroundServer(ServerConfig(db_path=..., port=0)) as server:
        urlopen(server.url + "/health")
    """

    def __init__(self, config: ServerConfig):
        self.config = config
        self.server = IngestServer(config)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="ingest-server", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> BackgroundServer:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        """Graceful shutdown (as on SIGTERM); returns when the database is closed."""
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as e:
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.shutdown()
