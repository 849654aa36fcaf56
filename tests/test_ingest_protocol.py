"""Protocol and request-level pieces without sockets: the h11 adapter on in-memory streams,
routing, validation messages and the CORS policy."""

import asyncio

import orjson
import pytest

from ingest.budget import Admission, ConnectionBudget, RefusalLog, TokenBucket, peer_key
from ingest.cors import CorsPolicy, host_is_local, is_loopback_address
from ingest.errors import ApiError
from ingest.http import HttpConnection, HttpError, Response
from ingest.limits import Limits
from ingest.routing import Router
from ingest.validation import EpisodeResult, FramesIn, decode, frames_of
from storage.records import OBSERVATION_SIZE


class FakeWriter:
    """The StreamWriter methods HttpConnection uses, recording what is written."""

    def __init__(self):
        self.data = bytearray()
        self.closed = False

    def write(self, data):
        self.data += data

    async def drain(self):
        pass

    def is_closing(self):
        return self.closed

    def can_write_eof(self):
        return False

    def close(self):
        self.closed = True

    async def wait_closed(self):
        pass


def connection(data: bytes = b"", eof: bool = True, **limits) -> tuple[HttpConnection, FakeWriter]:
    reader = asyncio.StreamReader()
    if data:
        reader.feed_data(data)
    if eof:
        reader.feed_eof()
    writer = FakeWriter()
    return HttpConnection(reader, writer, Limits(**limits)), writer


async def whole_request(conn: HttpConnection):
    """A request's head, then its body (up to the body limit), as the server reads them."""
    request = await conn.receive_head()
    if request is not None:
        await conn.receive_body(request, conn.limits.max_body_bytes)
    return request


def receive(data: bytes, eof: bool = True, **limits):
    async def go():
        conn, writer = connection(data, eof, **limits)
        return await whole_request(conn), conn, writer

    return asyncio.run(go())


def test_pipelined_keep_alive_requests():
    async def go():
        conn, writer = connection(
            b"POST /api/fighters?x=1&x=2 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nX-A: 1\r\nX-A: 2\r\n\r\nbody"
            b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n"
        )
        first = await whole_request(conn)
        await conn.send(Response(201, b"{}"))
        second = await whole_request(conn)
        await conn.send(Response(200, b"{}"), close=True)
        return first, second, bytes(writer.data)

    first, second, written = asyncio.run(go())
    assert (first.method, first.path, first.body) == ("POST", "/api/fighters", b"body")
    assert first.query == [("x", "1"), ("x", "2")] and first.headers["x-a"] == "1, 2"
    assert (second.method, second.path, second.body) == ("GET", "/health", b"")
    assert written.startswith(b"HTTP/1.1 201 Created\r\n") and b"connection: close" in written


@pytest.mark.parametrize(
    "data, status",
    [
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999\r\n\r\n", 413),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"400\r\n"
            + b"x" * 1024
            + b"\r\n" * 1,
            413,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 5000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),  # HTTP/1.1 requires Host
    ],
)
def test_bad_requests_get_the_status_h11_hints(data, status):
    with pytest.raises(HttpError) as info:
        receive(data, max_body_bytes=1000, max_header_bytes=4096)
    assert info.value.status == status


def test_slow_headers_or_body_time_out_with_408_and_idle_connection_closes_quietly():
    with pytest.raises(HttpError) as info:
        receive(b"GET /health HTTP/1.1\r\nHost: a\r\n", eof=False, header_timeout_s=0.2, keepalive_timeout_s=5)
    assert info.value.status == 408 and "headers not completed within 0.2 s" in info.value.message
    with pytest.raises(HttpError) as info:
        receive(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{", eof=False, body_timeout_s=0.2)
    assert info.value.status == 408 and "body not completed within 0.2 s" in info.value.message
    request, conn, _ = receive(b"", eof=False, keepalive_timeout_s=0.2)
    assert request is None and conn.idle


def test_head_is_read_without_the_body():
    """The server can refuse a request from its headers: nothing of the body is read, and
    100-continue is only sent when the body is wanted."""

    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4000000\r\nExpect: 100-continue\r\n\r\n")
        writer = FakeWriter()
        conn = HttpConnection(reader, writer, Limits())
        head = await conn.receive_head()
        early = bytes(writer.data)
        with pytest.raises(HttpError) as info:
            await conn.receive_body(head, 1000)
        return head, early, info.value.status, bytes(writer.data), conn.body_pending

    head, early, status, written, pending = asyncio.run(go())
    assert head.content_length == 4_000_000 and head.body == b"" and early == b""
    assert status == 413 and written == b"" and pending  # refused by its Content-Length alone


def test_client_closing_between_requests_is_not_an_error():
    request, _, _ = receive(b"")
    assert request is None


def test_expect_100_continue_is_answered():
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        writer = FakeWriter()
        conn = HttpConnection(reader, writer, Limits())
        task = asyncio.create_task(whole_request(conn))
        await asyncio.sleep(0.05)
        continued = bytes(writer.data)
        reader.feed_data(b"{}")
        return continued, await task

    continued, request = asyncio.run(go())
    assert continued.startswith(b"HTTP/1.1 100 ") and request.body == b"{}"


def test_websocket_upgrade_is_recognised():
    request, conn, _ = receive(
        b"GET /api/episodes/1/stream HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\n"
        b"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        b"\x81\x85"
    )
    assert request.is_websocket_upgrade and conn.trailing_data() == b"\x81\x85"


def test_router():
    async def handler(req, **params):
        return params

    router = Router()
    router.add("GET", "/api/fighters/{fighter_id}", handler)
    router.add("GET", "/api/fighters/{fighter_id}/episodes", handler)
    router.add("POST", "/api/fighters", handler, write=True)
    route, params = router.match("GET", "/api/fighters/12/episodes")
    assert route.pattern == "/api/fighters/{fighter_id}/episodes" and params == {"fighter_id": 12}
    assert router.match("POST", "/api/fighters")[0].write
    for path in ("/api/fighters/x", "/api/fighters/-1", f"/api/fighters/{2**63}", "/api/nothing"):
        with pytest.raises(ApiError) as info:
            router.match("GET", path)
        assert info.value.status == 404, path
    with pytest.raises(ApiError) as info:
        router.match("DELETE", "/api/fighters/1")
    assert info.value.status == 405 and ("allow", "GET, OPTIONS") in info.value.headers
    assert router.allowed_methods("/api/fighters") == ["POST"]


def _frame(n=0):
    return {
        "frame_number": n,
        "fighter_position": [0, 0],
        "fighter_health": 1,
        "fighter_velocity": [0, 0],
        "enemies_state": [],
        "action_vector": [1],
        "reward_delta": 0,
        "cumulative_reward": 0,
        "observation_vector": [0] * OBSERVATION_SIZE,
    }


def test_frames_body_forms():
    single = decode(orjson.dumps({"episode_id": 3, **_frame(7)}), FramesIn)
    assert [f.frame_number for f in frames_of(single, 10)] == [7]
    batch = decode(orjson.dumps({"episode_id": 3, "frames": [_frame(1), {**_frame(2), "episode_id": 3}]}), FramesIn)
    assert [f.frame_number for f in frames_of(batch, 10)] == [1, 2]
    with pytest.raises(ApiError) as info:
        frames_of(batch, 1)
    assert info.value.status == 413
    empty = decode(b'{"episode_id": 3, "frames": []}', FramesIn)
    with pytest.raises(ApiError, match="no frames"):
        frames_of(empty, 10)


@pytest.mark.parametrize(
    "body, status, needle",
    [
        (b'{"total_reward": 1, "duration_frames": 2}', 422, "is_victory"),
        (b'{"total_reward": "1", "duration_frames": 2, "is_victory": true}', 422, "total_reward"),
        (b'{"total_reward": 1, "duration_frames": 2, "is_victory": 1}', 422, "is_victory"),
        (b'{"total_reward": Infinity, "duration_frames": 2, "is_victory": true}', 400, "NaN and Infinity"),
        (b'{"total_reward": 1, "duration_frames": 2, "is_victory": true, "rank": 0}', 422, "rank"),
    ],
)
def test_validation_messages(body, status, needle):
    with pytest.raises(ApiError) as info:
        decode(body, EpisodeResult)
    assert info.value.status == status and needle in info.value.message


def test_cors_policy():
    default = CorsPolicy(None)
    assert default.allows("http://localhost:8000") and default.allows("http://127.0.0.1")
    assert default.allows("http://[::1]:3000") and not default.allows("http://example.com")
    assert not default.allows("null")
    assert not default.allows("http://attacker.example:8001")  # its Host header changes nothing (DNS rebinding)
    listed = CorsPolicy(["https://game.example/"])
    assert listed.allows("https://game.example") and not listed.allows("http://localhost:8000")
    assert CorsPolicy(["*"]).allows("https://anything.example")


@pytest.mark.parametrize(
    "host, local",
    [
        ("127.0.0.1:8001", True),
        ("localhost:8001", True),
        ("LOCALHOST.", True),
        ("game.localhost:80", True),
        ("[::1]:8001", True),
        ("192.168.1.20:8001", True),  # an address literal cannot be re-pointed
        (None, True),
        ("attacker.example:8001", False),
        ("localhost.attacker.example", False),
        ("127.0.0.1.nip.io:8001", False),
        ("a", False),
    ],
)
def test_host_names_dns_cannot_repoint(host, local):
    assert host_is_local(host) is local


def test_loopback_addresses():
    assert all(map(is_loopback_address, ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback_address, ["0.0.0.0", "::", "192.0.2.1", "example.com"]))


# ---------------------------------------------------------------- budget (no sockets, no clock)


def test_token_bucket_throttles_and_refills():
    bucket = TokenBucket(rate=10, burst=3, now=0.0)
    assert [bucket.take(1, 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(1, 0.0) == pytest.approx(0.1)  # in debt: wait a tenth of a second
    assert not bucket.try_take(1, 0.05) and bucket.try_take(1, 0.25)
    assert bucket.full(10.0) and bucket.tokens == 3  # never more than the burst


def test_peer_key():
    assert peer_key("127.0.0.2") == "127.0.0.2"
    assert peer_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert peer_key("2001:db8::1") == peer_key("2001:db8::ffff:2") == "2001:db8::/64"
    assert peer_key(None) == "unknown"


def admit(budget: ConnectionBudget, conn_id: int, peer: str) -> Admission:
    decision = budget.admit(peer, now=float(conn_id))  # a second apart: the connect rate never binds
    if decision.evict is not None:
        budget.closed(decision.evict)
    if decision.ok:
        budget.opened(conn_id, peer)
    return decision


def test_connection_budget_rules():
    limits = Limits(max_connections=12, max_connections_per_peer=9, reserved_connections=2, connects_per_peer_per_s=1e3)
    budget = ConnectionBudget(limits)
    assert all(admit(budget, i, "a").ok for i in range(9))
    refused = admit(budget, 9, "a")
    assert not refused.ok and refused.answer and "limit 9" in refused.reason  # per peer
    budget.set_idle(3, True)
    made_room = admit(budget, 10, "a")
    assert made_room.ok and made_room.evict == 3  # its own idle connection made room
    assert admit(budget, 11, "b").ok  # 10 open: the reserved places start here
    assert not admit(budget, 12, "a").ok  # "a" holds 9 >= RESERVE_PEER_SHARE
    assert admit(budget, 13, "c").ok and admit(budget, 14, "c").ok  # newcomers get them
    full = admit(budget, 15, "d")
    assert not full.ok and "limit 12" in full.reason
    budget.set_idle(11, True)
    assert admit(budget, 16, "d").evict == 11  # anyone's idle connection, when full


def test_connection_rate_per_peer():
    budget = ConnectionBudget(Limits(max_connections_per_peer=3, connects_per_peer_per_s=2))
    decisions = [budget.admit("a", 0.0) for _ in range(5)]
    assert [d.ok for d in decisions] == [True, True, True, False, False]
    assert not decisions[3].answer  # dropped without an answer: cheaper than any
    assert budget.admit("a", 0.5).ok and budget.admit("b", 0.5).ok
    budget.penalise("b", now=1.0)  # its stream was closed for abuse
    assert not budget.admit("b", 2.9).ok and budget.admit("a", 2.9).ok
    assert budget.admit("b", 3.1).ok  # abuse_penalty_s (2 s) later


def test_refusals_are_logged_once_per_kind_then_summed_up():
    log = RefusalLog()
    firsts = [log.count("HTTP 400", "127.0.0.2") for _ in range(1000)]
    assert firsts.count(True) == 1 and log.count("stream message 422", "127.0.0.3")
    summary = log.summary()
    assert "1000 x HTTP 400 (from 127.0.0.2 x 1000)" in summary and "1 x stream message 422" in summary
    assert log.summary() is None and log.count("HTTP 400", "x")  # reset: the next one is a first again
