"""The asyncio server: accepts sockets, applies limits, CORS and the token, and hands each
request to the routes (``handlers``) or each WebSocket to a ``FrameStream``.

Protocol parsing lives in ``http`` (h11) and ``websocket`` (wsproto); storage in
``storage.aio``. Every log line starts with ``[conn N]``, the connection's id.
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

from .cors import CorsPolicy
from .errors import ApiError, storage_error_status
from .handlers import Api
from .http import HttpConnection, HttpError, Request, Response
from .limits import Limits
from .stream import FrameStream
from .websocket import WebSocket

logger = logging.getLogger("ingest")

LISTEN_BACKLOG = 1024
"""Pending connections the kernel queues while the loop is busy (bursts of reconnects)."""


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


class ConnLog(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        return f"[conn {self.extra['conn']}] {msg}", kwargs


class _Conn:
    __slots__ = ("task", "http", "stream")

    def __init__(self, task: asyncio.Task):
        self.task = task
        self.http: HttpConnection | None = None
        self.stream: FrameStream | None = None


class IngestServer:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.limits = config.limits
        self.cors = CorsPolicy(config.cors_origins)
        self.store: AsyncStore | None = None
        self.api: Api | None = None
        self.port: int | None = None
        self.stats = {"connections": 0}
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _Conn] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._log = ConnLog(logger, {"conn": "-"})

    @property
    def url(self) -> str:
        host = self.config.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        self.store = await AsyncStore.open(self.config.db_path, self.config.synchronous)
        self.api = Api(self.store, self.limits, self.stats)
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
        if self.store is not None:
            await self.store.close()
        self._log.info("stopped; %d transactions committed", self.store.commits if self.store else 0)

    # ---------------------------------------------------------------- connections

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn_id = next(self._ids)
        log = ConnLog(logger, {"conn": conn_id})
        if self._closing:
            writer.close()
            return
        if len(self._conns) >= self.limits.max_connections:
            await self._refuse(reader, writer, log)
            return
        conn = self._conns[conn_id] = _Conn(asyncio.current_task())
        self.stats["connections"] = len(self._conns)
        log.debug("open from %s", writer.get_extra_info("peername"))
        try:
            await self._serve(reader, writer, conn, log)
        except asyncio.CancelledError:
            log.debug("closed by shutdown")
        except (ConnectionError, TimeoutError) as e:
            log.info("client went away (%s)", type(e).__name__)
        except Exception:
            log.exception("unexpected error; connection closed")
        finally:
            del self._conns[conn_id]
            self.stats["connections"] = len(self._conns)
            if not writer.is_closing():
                writer.close()

    async def _refuse(self, reader, writer, log) -> None:
        limit = self.limits.max_connections
        log.warning("refused: %d connections open (limit %d)", len(self._conns), limit)
        http = HttpConnection(
            reader, writer, dataclasses.replace(self.limits, request_timeout_s=1.0, keepalive_timeout_s=1.0)
        )
        try:
            await http.receive_request()
        except HttpError:
            pass  # answered with 503 below either way
        try:
            if http.can_respond:
                await http.send(
                    _error(503, f"too many connections (limit {limit}); retry shortly", [("retry-after", "1")]),
                    close=True,
                )
            await http.close(linger_s=0.5)
        except (ConnectionError, TimeoutError):
            writer.close()

    async def _serve(self, reader, writer, conn: _Conn, log: ConnLog) -> None:
        http = conn.http = HttpConnection(reader, writer, self.limits)
        while True:
            try:
                request = await http.receive_request()
            except HttpError as e:
                log.info("%d: %s", e.status, e.message)
                if http.can_respond:
                    await http.send(_error(e.status, e.message), close=True)
                break
            if request is None:
                break
            if request.is_websocket_upgrade:
                await self._serve_websocket(http, request, conn, log)
                return
            response = await self._respond(request, log)
            await http.send(response, close=self._closing)
            if self._closing or not http.keep_alive:
                break
        await http.close()

    # ---------------------------------------------------------------- HTTP requests

    async def _respond(self, req: Request, log: ConnLog) -> Response:
        origin = req.headers.get("origin")
        cors_headers: list[tuple[str, str]] = []
        if origin is not None:
            if not self.cors.allows(origin, req.headers.get("host")):
                log.info("%s %s from origin %r refused", req.method, req.path, origin)
                return _error(403, f"origin {origin!r} is not allowed; start the server with --cors-origin {origin}")
            cors_headers = CorsPolicy.response_headers(origin)
        if req.method == "OPTIONS":
            return self._preflight(req, origin)
        try:
            route, params = self.api.router.match(req.method, req.path)
            if route.write:
                self._check_token(req.headers.get("authorization"))
            result = await route.handler(req, **params)
            if isinstance(result, Response):
                response = result
            else:
                status, payload = result
                response = Response(status, orjson.dumps(payload))
        except ApiError as e:
            response = _error(e.status, e.message, e.headers)
        except StorageError as e:
            status, headers = storage_error_status(e)
            response = _error(status, str(e), headers)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            response = _error(500, "internal server error; the server log has the details")
        if response.status >= 400:
            log.info("%s %s -> %d", req.method, req.path, response.status)
        else:
            log.debug("%s %s -> %d", req.method, req.path, response.status)
        response.headers.extend(cors_headers)
        return response

    def _preflight(self, req: Request, origin: str | None) -> Response:
        allowed = self.api.router.allowed_methods(req.path)
        if not allowed:
            return _error(404, f"no such endpoint: {req.path}")
        if origin is None:
            return Response(204, headers=[("allow", ", ".join(allowed + ["OPTIONS"]))])
        return Response(204, headers=CorsPolicy.preflight_headers(origin))

    def _check_token(self, authorization: str | None) -> None:
        token = self.config.token
        if token is None:
            return
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(
                401,
                "this server needs 'Authorization: Bearer <token>' for writes",
                headers=[("www-authenticate", "Bearer")],
            )

    # ---------------------------------------------------------------- WebSocket

    async def _serve_websocket(self, http: HttpConnection, req: Request, conn: _Conn, log: ConnLog) -> None:
        try:
            episode_id, authenticated = await self._check_upgrade(req)
        except ApiError as e:
            log.info("WebSocket %s refused (%d): %s", req.path, e.status, e.message)
            await http.send(_error(e.status, e.message, e.headers), close=True)
            await http.close()
            return
        try:
            ws = await WebSocket.accept(http, req)
        except RemoteProtocolError as e:
            log.info("WebSocket handshake refused: %s", e)
            await http.send(_error(400, f"invalid WebSocket handshake: {e}"), close=True)
            await http.close()
            return
        log.info("stream open for episode %d", episode_id)
        stream = conn.stream = FrameStream(ws, episode_id, self.store, self.limits, self.config.token, log)
        if self._closing:
            stream.stop()
        try:
            await stream.run(authenticated)
        finally:
            await http.close(linger_s=0)

    async def _check_upgrade(self, req: Request) -> tuple[int, bool]:
        """The episode id of a stream request, and whether the token came with it."""
        route, params = self.api.router.match("GET", req.path)
        if route.handler != self.api.stream_without_upgrade:
            raise ApiError(404, f"{req.path} does not accept WebSockets; stream to /api/episodes/{{id}}/stream")
        origin = req.headers.get("origin")
        if origin is not None and not self.cors.allows(origin, req.headers.get("host")):
            raise ApiError(403, f"origin {origin!r} is not allowed; start the server with --cors-origin {origin}")
        query = dict(req.query)
        unknown = set(query) - {"token"}
        if unknown:
            raise ApiError(400, f"unknown query parameters {sorted(unknown)}; the stream takes token")
        authenticated = self.config.token is None
        if "token" in query and not authenticated:
            self._check_token("Bearer " + query["token"])
            authenticated = True
        episode_id = params["episode_id"]
        state = await self.store.episode_open(episode_id)
        if state is None:
            raise ApiError(404, f"episode {episode_id} does not exist; create it with POST /api/episodes")
        if not state:
            raise ApiError(409, f"episode {episode_id} is completed; start a new episode")
        return episode_id, authenticated


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
