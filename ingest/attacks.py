"""Misbehaving clients: the attacks of issue 24, for the abuse benchmark and the tests.

Each attack is a coroutine ``attack(target, stop_at, ...)`` that misbehaves against one
server until the event loop's clock reaches ``stop_at``, reconnecting whenever the server
closes it (a persistent attacker, or a buggy game build stuck in a loop), and returns
counters of what it saw. They connect from ``target.source``, a loopback alias such as
127.0.0.2, so that the server sees them as a peer of their own, as it would see another
machine on the network; the honest clients of a test or benchmark use 127.0.0.1.

- ``flood``: opens a stream and sends tiny invalid messages as fast as the socket takes
  them, never reading the answers.
- ``idle_tcp``: holds ``count`` TCP connections that send nothing.
- ``slowloris``: holds ``count`` connections that send a request's headers one line every
  ``interval`` seconds.
- ``idle_ws``: holds ``count`` WebSockets that answer pings but never send a message.
- ``nested``: streams a batch whose ``enemies_state`` is nested ``depth`` levels deep,
  again and again.
- ``stalled_uploads``: starts ``count`` uploads of almost 4 MiB without the token and stops
  sending before the end.
- ``bad_values``: sends values that once made the server answer 500 (big integers, deep
  metadata, bad UTF-8, ``?limit=²``, 5000-digit ids).
- ``rebinding``: writes with the ``Host`` and ``Origin`` of a foreign DNS name that resolves
  to the server (DNS rebinding).

Only loopback addresses are ever targets: these are load tools for a server on this machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import Counter
from dataclasses import dataclass

import h11
import orjson
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, RejectConnection, Request, TextMessage
from wsproto.utilities import RemoteProtocolError

ATTACKER_ADDRESS = "127.0.0.2"
"""The attackers' source address: another loopback alias, so the server counts it as another peer."""

RECONNECT_PAUSE_S = 0.01
"""After a refused or closed connection, before the next, for the one-connection attacks: a
persistent attacker, not a busy loop."""

HOLD_REOPEN_S = 1.0
"""The many-connection attacks (idle, slowloris, stalled uploads) reopen each connection the
server closed or refused after this: they hold places, they are not a connection flood
(tens of thousands of connects a second are for a firewall, not for the server, to stop)."""

READ_SIZE = 64 * 1024

NEARLY_4_MIB = 4 * 1024 * 1024 - 1024
"""The stalled uploads' Content-Length: just under the server's default body limit."""


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    source: str = ATTACKER_ADDRESS
    """Local address the attacker binds to (a loopback alias)."""
    episode_id: int | None = None
    """An open episode, for the attacks on its stream."""
    token: str | None = None
    """The server's token, for attacks that a client holding it makes (a buggy game build)."""

    def __post_init__(self) -> None:
        for address in (self.host, self.source):
            if not ipaddress.ip_address(address).is_loopback:
                raise ValueError(f"attacks target this machine only; {address!r} is not a loopback address")

    @property
    def stream_path(self) -> str:
        query = f"?token={self.token}" if self.token else ""
        return f"/api/episodes/{self.episode_id}/stream{query}"


def _remaining(stop_at: float) -> float:
    return stop_at - asyncio.get_running_loop().time()


async def _connect(t: Target) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(t.host, t.port, local_addr=(t.source, 0), limit=READ_SIZE)


async def _ws_open(t: Target, timeout: float = 5.0):
    """A client WebSocket on the episode's stream: (reader, writer, wsproto connection), or
    None if the server refused the handshake or closed the socket."""
    reader, writer = await _connect(t)
    ws = WSConnection(ConnectionType.CLIENT)
    writer.write(ws.send(Request(host=f"{t.host}:{t.port}", target=t.stream_path)))
    try:
        async with asyncio.timeout(timeout):
            while True:
                data = await reader.read(READ_SIZE)
                ws.receive_data(data or None)
                for event in ws.events():
                    if isinstance(event, AcceptConnection):
                        return reader, writer, ws
                    if isinstance(event, RejectConnection):
                        writer.close()
                        return None
                if not data:
                    writer.close()
                    return None
    except (TimeoutError, ConnectionError, OSError, RemoteProtocolError):
        writer.close()  # refused: reset, or closed during the handshake
        return None


async def _hold(reader: asyncio.StreamReader, stop_at: float) -> bool:
    """Read (and drop) until the server closes (True) or stop_at (False)."""
    try:
        async with asyncio.timeout(max(0.0, _remaining(stop_at))):
            while await reader.read(READ_SIZE):
                pass
        return True
    except TimeoutError:
        return False
    except (ConnectionError, OSError):
        return True


def _close(writer: asyncio.StreamWriter) -> None:
    try:
        writer.close()
    except (ConnectionError, OSError, RuntimeError):
        pass  # already gone


async def _repeat(stop_at: float, one, count: int = 1, pause: float = RECONNECT_PAUSE_S) -> None:
    """Run ``count`` copies of ``one()`` (one connection each), restarting each until stop_at."""

    async def loop():
        while _remaining(stop_at) > 0:
            try:
                await one()
            except (ConnectionError, OSError, TimeoutError):
                pass  # refused or reset: try again
            await asyncio.sleep(min(pause, max(0.0, _remaining(stop_at))))

    await asyncio.gather(*(loop() for _ in range(count)))


# ---------------------------------------------------------------- the attacks


async def flood(t: Target, stop_at: float, message: str = "x", per_write: int = 500) -> dict:
    """Tiny invalid messages on one stream at a time, never reading the answers."""
    c: Counter = Counter()

    async def one():
        conn = await _ws_open(t)
        if conn is None:
            c["refused"] += 1
            return
        reader, writer, ws = conn
        c["connections"] += 1
        chunk = b"".join(ws.send(TextMessage(data=message)) for _ in range(per_write))
        try:
            async with asyncio.timeout(max(0.0, _remaining(stop_at))):
                while True:
                    writer.write(chunk)
                    await writer.drain()
                    c["messages"] += per_write
        except TimeoutError:
            c["held_to_the_end"] += 1
        except (ConnectionError, OSError):
            c["closed_by_server"] += 1
        finally:
            _close(writer)

    await _repeat(stop_at, one)
    return dict(c)


async def idle_tcp(t: Target, stop_at: float, count: int = 256) -> dict:
    """``count`` connections that send nothing."""
    c: Counter = Counter()

    async def one():
        reader, writer = await _connect(t)
        c["connections"] += 1
        closed = await _hold(reader, stop_at)
        c["closed_by_server" if closed else "held_to_the_end"] += 1
        _close(writer)

    await _repeat(stop_at, one, count, HOLD_REOPEN_S)
    return dict(c)


async def slowloris(t: Target, stop_at: float, count: int = 256, interval: float = 1.0) -> dict:
    """``count`` connections sending a request's headers one line every ``interval`` s."""
    c: Counter = Counter()

    async def one():
        reader, writer = await _connect(t)
        c["connections"] += 1
        writer.write(f"POST /api/fight-frames HTTP/1.1\r\nHost: {t.host}:{t.port}\r\n".encode())
        closed = asyncio.create_task(_hold(reader, stop_at))
        n = 0
        while not closed.done() and _remaining(stop_at) > 0:
            await asyncio.wait({closed}, timeout=min(interval, max(0.0, _remaining(stop_at))))
            if not closed.done():
                writer.write(f"X-Slow-{n}: {'a' * 20}\r\n".encode())
                n += 1
        c["closed_by_server" if await closed else "held_to_the_end"] += 1
        _close(writer)

    await _repeat(stop_at, one, count, HOLD_REOPEN_S)
    return dict(c)


async def idle_ws(t: Target, stop_at: float, count: int = 256) -> dict:
    """``count`` WebSockets that answer every ping and never send a message."""
    c: Counter = Counter()

    async def one():
        conn = await _ws_open(t)
        if conn is None:
            c["refused"] += 1
            return
        reader, writer, ws = conn
        c["connections"] += 1
        try:
            async with asyncio.timeout(max(0.0, _remaining(stop_at))):
                while data := await reader.read(READ_SIZE):
                    ws.receive_data(data)
                    for event in ws.events():
                        if isinstance(event, Ping):
                            c["pongs"] += 1
                            writer.write(ws.send(event.response()))
                        elif isinstance(event, CloseConnection):
                            c[f"close_{event.code}"] += 1
                            writer.write(ws.send(event.response()))  # as browsers do
            c["closed_by_server"] += 1
        except TimeoutError:
            c["held_to_the_end"] += 1
        except (ConnectionError, OSError):
            c["closed_by_server"] += 1
        finally:
            _close(writer)

    await _repeat(stop_at, one, count, HOLD_REOPEN_S)
    return dict(c)


def nested_batch(seq: int, depth: int) -> str:
    """A stream message whose one frame's enemies_state is nested ``depth`` levels (~2 KB at 1000)."""
    frame = {
        "frame_number": seq,
        "fighter_position": [0.0, 0.0],
        "fighter_health": 1.0,
        "fighter_velocity": [0.0, 0.0],
        "enemies_state": [],
        "action_vector": [1.0],
        "reward_delta": 0.0,
        "cumulative_reward": 0.0,
        "observation_vector": [0.0] * 30,
    }
    text = orjson.dumps({"seq": seq, "frames": [frame]}).decode()
    return text.replace('"enemies_state":[]', '"enemies_state":' + "[" * depth + "]" * depth)


async def nested(t: Target, stop_at: float, depth: int = 1000, interval: float = 0.05) -> dict:
    """A game that keeps resending one batch with a deeply nested enemies_state."""
    c: Counter = Counter()

    async def one():
        conn = await _ws_open(t)
        if conn is None:
            c["refused"] += 1
            return
        reader, writer, ws = conn
        c["connections"] += 1
        seq = 0
        try:
            async with asyncio.timeout(max(0.0, _remaining(stop_at))):
                while True:
                    writer.write(ws.send(TextMessage(data=nested_batch(seq, depth))))
                    answered = False
                    while not answered:
                        data = await reader.read(READ_SIZE)
                        if not data:
                            c["closed_by_server"] += 1
                            return
                        ws.receive_data(data)
                        for event in ws.events():
                            if isinstance(event, Message):
                                answer = orjson.loads(event.data)
                                c[f"status_{answer.get('status', 'ack')}"] += 1
                                answered = True
                            elif isinstance(event, Ping):
                                writer.write(ws.send(event.response()))
                            elif isinstance(event, CloseConnection):
                                c[f"close_{event.code}"] += 1
                                return
                    seq += 1
                    await asyncio.sleep(interval)
        except TimeoutError:
            c["held_to_the_end"] += 1
        finally:
            _close(writer)

    await _repeat(stop_at, one)
    return dict(c)


async def stalled_uploads(t: Target, stop_at: float, count: int = 250, size: int = NEARLY_4_MIB) -> dict:
    """``count`` POSTs without the token that declare ``size`` bytes, send all but the last
    KiB as fast as the server reads them, then stall."""
    c: Counter = Counter()
    body = b"[" + b" " * (64 * 1024)

    async def one():
        reader, writer = await _connect(t)
        c["connections"] += 1
        writer.write(
            f"POST /api/fight-frames HTTP/1.1\r\nHost: {t.host}:{t.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        answer = asyncio.create_task(_first_status(reader, stop_at))
        sent = 0
        try:
            while sent < size - 1024 and not answer.done() and _remaining(stop_at) > 0:
                piece = body[: min(len(body), size - 1024 - sent)]
                writer.write(piece)
                sent += len(piece)
                drained = asyncio.ensure_future(writer.drain())
                wait = max(0.0, _remaining(stop_at))
                await asyncio.wait({drained, answer}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if not drained.done():
                    drained.cancel()
                    break  # the server stopped reading: stall here
                if drained.exception() is not None:
                    break  # the server closed the connection (its 401 is in `answer`)
            c["bytes_sent"] += sent
            status = await answer
        except (ConnectionError, OSError):
            answer.cancel()
            status = None
        c[f"status_{status}" if status else "no_answer"] += 1
        _close(writer)

    await _repeat(stop_at, one, count, HOLD_REOPEN_S)
    return dict(c)


async def _first_status(reader: asyncio.StreamReader, stop_at: float) -> int | None:
    """The status of the first response on the connection, None if none came by stop_at;
    then waits for the server to close."""
    h = h11.Connection(h11.CLIENT)
    h.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))  # only to move h11 to reading
    h.send(h11.EndOfMessage())
    try:
        async with asyncio.timeout(max(0.0, _remaining(stop_at))):
            while True:
                event = h.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(READ_SIZE)
                    if not data:
                        return None
                    h.receive_data(data)
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    await _hold(reader, stop_at)
                    return status
    except (TimeoutError, ConnectionError, OSError, h11.RemoteProtocolError):
        return None


BAD_VALUES = [
    ("POST", "/api/fighters", b'{"glb_filename": "a.glb", "metadata": {"n": 123456789012345678901234567890}}'),
    ("POST", "/api/fighters", b'{"glb_filename": "a.glb", "metadata": {"n": ' + b"[" * 253 + b"]" * 253 + b"}}"),
    ("GET", "/api/fighters?limit=%C2%B2", b""),  # "²", a digit to str.isdigit() but not to int()
    ("GET", "/api/fighters/" + "9" * 5000, b""),
    ("GET", "/api/episodes/" + "7" * 5000 + "/frames", b""),
]
"""(method, target, body) of requests that each answered 500 before issue 24; the invalid
UTF-8 inside an enemies_state string is added per episode by ``bad_values``."""


def bad_utf8_frames(episode_id: int) -> bytes:
    """A POST /api/fight-frames body whose one frame has invalid UTF-8 in an enemies_state string."""
    body = nested_batch(0, 1).replace('"seq":0,', f'"episode_id":{episode_id},').encode()
    return body.replace(b'"enemies_state":[]', b'"enemies_state":["\xff\xfe"]')


async def bad_values(t: Target, stop_at: float, interval: float = 0.001) -> dict:
    """The requests of BAD_VALUES (and bad UTF-8 in enemies_state) in a loop, keep-alive."""
    requests = list(BAD_VALUES)
    if t.episode_id is not None:
        requests.append(("POST", "/api/fight-frames", bad_utf8_frames(t.episode_id)))
    auth = [("authorization", f"Bearer {t.token}")] if t.token else []
    return await _keep_alive_loop(t, stop_at, f"{t.host}:{t.port}", requests, auth, interval)


async def _keep_alive_loop(t: Target, stop_at: float, host: str, requests, extra, interval: float) -> dict:
    """``requests`` ((method, target, body) with ``extra`` headers and Host ``host``) sent over
    and over on keep-alive connections until ``stop_at``, reconnecting when the server closes;
    counts connections and the statuses answered."""
    c: Counter = Counter()

    async def one():
        reader, writer = await _connect(t)
        h = h11.Connection(h11.CLIENT)
        c["connections"] += 1
        try:
            while _remaining(stop_at) > 0:
                for method, target, body in requests:
                    status = await _exchange(h, reader, writer, host, method, target, body, extra)
                    if status is None:
                        return
                    c[f"status_{status}"] += 1
                    if h.our_state is not h11.DONE or h.their_state is not h11.DONE:
                        return
                    h.start_next_cycle()
                    await asyncio.sleep(interval)
        finally:
            _close(writer)

    await _repeat(stop_at, one)
    return dict(c)


async def _exchange(h, reader, writer, host: str, method, target, body, extra) -> int | None:
    """One request and its response on a keep-alive connection; the status, None if closed."""
    headers = [("host", host), ("content-type", "application/json"), *extra]
    if body:
        headers.append(("content-length", str(len(body))))
    data = h.send(h11.Request(method=method, target=target.encode("latin-1", "replace"), headers=headers))
    if body:
        data += h.send(h11.Data(data=body))
    data += h.send(h11.EndOfMessage())
    writer.write(data)
    status = None
    async with asyncio.timeout(10):
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(READ_SIZE)
                h.receive_data(chunk)
                if not chunk and status is None:
                    return None
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status


async def rebinding(t: Target, stop_at: float, name: str = "attacker.example", interval: float = 0.01) -> dict:
    """Writes as a page of ``name`` would after its DNS name was re-pointed at the server."""
    foreign = [("origin", f"http://{name}:{t.port}")]
    body = b'{"glb_filename": "rebound.glb"}'
    return await _keep_alive_loop(t, stop_at, f"{name}:{t.port}", [("POST", "/api/fighters", body)], foreign, interval)


ATTACKS = {
    "flood": flood,
    "idle_tcp": idle_tcp,
    "slowloris": slowloris,
    "idle_ws": idle_ws,
    "nested": nested,
    "stalled_uploads": stalled_uploads,
    "bad_values": bad_values,
    "rebinding": rebinding,
}


def run_attack(name: str, target: Target, duration_s: float, **params) -> dict:
    """Run one attack for ``duration_s`` seconds in a fresh event loop (e.g. in a child
    process, so that it competes with the server as another machine would); its counters."""

    async def main():
        stop_at = asyncio.get_running_loop().time() + duration_s
        return await ATTACKS[name](target, stop_at, **params)

    cpu0 = time.process_time()
    counters = asyncio.run(main())
    counters["cpu_s"] = round(time.process_time() - cpu0, 2)  # the attacker's own CPU (user + sys)
    return counters
