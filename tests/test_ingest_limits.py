"""Limits over real sockets: the connection budget (total, per peer, reserved places, connect
rate, idle connections making room, /health when full), slow and stalled clients, idle
keep-alive, request rates, clients that do not read, and checks made before the body."""

import http.client
import json
import socket
import time

import pytest

from ingest import BackgroundServer, Limits, ServerConfig


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    limits = Limits(
        max_connections=6,
        reserved_connections=1,
        header_timeout_s=0.4,
        body_timeout_s=0.4,
        keepalive_timeout_s=0.6,
        send_timeout_s=0.5,
    )
    db = tmp_path_factory.mktemp("limits") / "arena.db"
    with BackgroundServer(ServerConfig(db_path=str(db), port=0, limits=limits)) as s:
        yield s


def connect(server, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5, source_address=(source, 0))


def busy(server, source: str = "127.0.0.1") -> socket.socket:
    """A connection in the middle of a request's headers: not idle, so never closed to make room."""
    s = connect(server, source)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return s


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (ConnectionResetError, TimeoutError):
        pass  # the server dropped the connection: what was read so far is the answer
    return b"".join(chunks)


def request(server, raw: bytes, source: str = "127.0.0.1") -> bytes:
    s = connect(server, source)
    s.sendall(raw)
    answer = read_all(s)
    s.close()
    return answer


def health(server, source: str = "127.0.0.1") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5, source_address=(source, 0))
    conn.request("GET", "/health")
    status = conn.getresponse().status
    conn.close()
    return status


def open_connections(server) -> int:
    return server.server.stats["connections"]


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_connections_over_the_limit_get_503_but_health_is_answered(server):
    held = [busy(server, f"127.0.0.{2 + i % 5}") for i in range(6)]
    assert wait_until(lambda: open_connections(server) == 6)
    answer = request(server, b"POST /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in answer
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "connections open" in body["error"] and body["status"] == 503
    assert health(server) == 200  # monitoring still sees the server
    for s in held:
        s.close()
    assert wait_until(lambda: open_connections(server) == 0)


def test_idle_connections_make_room_for_a_new_client(server):
    idle = [connect(server, f"127.0.0.{2 + i % 5}") for i in range(6)]
    assert wait_until(lambda: open_connections(server) == 6)
    answer = request(server, b"GET /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert read_all(idle[0]) == b""  # the oldest idle one was closed for it
    for s in idle:
        s.close()
    assert wait_until(lambda: open_connections(server) == 0)


def test_one_peer_cannot_take_every_place(tmp_path):
    limits = Limits(max_connections=10, max_connections_per_peer=3, reserved_connections=2, keepalive_timeout_s=5)
    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "p.db"), port=0, limits=limits)) as server:
        mine = [busy(server, "127.0.0.2") for _ in range(3)]
        assert wait_until(lambda: open_connections(server) == 3)
        # The connect rate's burst is the per-peer limit (3): a fourth connect within
        # 1/250 s of the first three is dropped by the rate rule, not answered by this one.
        time.sleep(4 / limits.connects_per_peer_per_s)
        refused = request(server, b"GET /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", source="127.0.0.2")
        assert refused.startswith(b"HTTP/1.1 503 ") and b"from this address (limit 3)" in refused
        assert health(server, "127.0.0.3") == 200  # another peer is served
        for s in mine:
            s.close()


def test_the_reserved_places_go_to_peers_holding_few(tmp_path):
    # 12 places, the last 2 kept for peers holding fewer than 8 (budget.RESERVE_PEER_SHARE)
    limits = Limits(max_connections=12, max_connections_per_peer=12, reserved_connections=2, keepalive_timeout_s=5)
    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "r.db"), port=0, limits=limits)) as server:
        big = [busy(server, "127.0.0.2") for _ in range(10)]
        assert wait_until(lambda: open_connections(server) == 10)
        refused = request(server, b"GET /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", source="127.0.0.2")
        assert refused.startswith(b"HTTP/1.1 503 ") and b"kept for addresses" in refused
        assert health(server, "127.0.0.3") == 200  # a newcomer gets a reserved place
        for s in big:
            s.close()


def test_a_peer_reconnecting_too_fast_is_dropped_without_an_answer(tmp_path):
    limits = Limits(max_connections_per_peer=4, connects_per_peer_per_s=2, keepalive_timeout_s=5)
    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "c.db"), port=0, limits=limits)) as server:
        once = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        answers = [request(server, once, "127.0.0.2") for _ in range(8)]
        assert [a[:12] for a in answers[:4]] == [b"HTTP/1.1 200"] * 4  # the burst
        assert b"" in answers[4:]  # then dropped at once
        assert health(server, "127.0.0.1") == 200  # others are not affected


def test_stalled_headers_and_bodies_get_408(server):
    for raw, needle in [
        (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1", b"headers not completed within 0.4 s"),
        (b'POST /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{"glb', b"body not completed"),
    ]:
        start = time.monotonic()
        answer = request(server, raw)
        assert answer.startswith(b"HTTP/1.1 408 ") and needle in answer, answer
        assert time.monotonic() - start < 3


def test_slowloris_sending_a_header_line_at_a_time_is_cut_off(server):
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    start = time.monotonic()
    answer = b""
    try:
        for i in range(40):  # a line every 0.05 s: each arrives well within any per-read timeout
            s.sendall(b"X-Slow-%d: a\r\n" % i)
            time.sleep(0.05)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 408 ") and time.monotonic() - start < 1.5


def test_idle_keep_alive_connection_is_closed(server):
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    time.sleep(0.1)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    start = time.monotonic()
    assert read_all(s) == b""  # closed by the server after the keep-alive timeout
    assert 0.3 < time.monotonic() - start < 3


def test_client_that_never_reads_is_dropped(server):
    s = connect(server)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET /docs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    s.settimeout(0.2)
    try:
        for _ in range(3000):  # pipelined requests whose answers fill every buffer
            s.sendall(request)
    except (TimeoutError, ConnectionError):
        pass  # the server stopped reading us
    assert wait_until(lambda: open_connections(server) == 0, timeout=8)
    s.close()
    assert health(server) == 200


def test_requests_on_one_connection_are_rate_limited(tmp_path):
    limits = Limits(requests_per_s=40, request_burst=10)
    with BackgroundServer(ServerConfig(db_path=str(tmp_path / "q.db"), port=0, limits=limits)) as server:
        s = connect(server)
        start = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 30)  # 10 at once, then 40 a second
        data = b""
        while data.count(b"HTTP/1.1 200 ") < 30:
            data += s.recv(65536)
        elapsed = time.monotonic() - start
        s.close()
    assert 0.4 < elapsed < 3, elapsed


def test_the_token_is_checked_before_a_large_body_is_read(tmp_path):
    config = ServerConfig(db_path=str(tmp_path / "t.db"), port=0, token="s3cret", limits=Limits(body_timeout_s=5))
    with BackgroundServer(config) as server:
        start = time.monotonic()
        for path in ("/api/fight-frames", "/api/fighters/1/act"):  # a write, and a read that takes a body
            s = connect(server)
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3000000\r\n\r\n".encode())
            s.sendall(b"[" * 1000)  # and then nothing more: a stalled upload
            answer = read_all(s)
            s.close()
            assert answer.startswith(b"HTTP/1.1 401 ") and b"www-authenticate: Bearer" in answer, answer
        assert time.monotonic() - start < 4  # answered from the headers, not after the body timeout
        s = connect(server)  # with the token, the same size is read
        body = b'{"episode_id": 1, "frames": [' + b" " * 2_000_000 + b"]}"
        head = f"POST /api/fight-frames HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n".encode()
        head += b"Connection: close\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\n\r\n"
        s.sendall(head + body)
        answer = read_all(s)
        assert answer.startswith(b"HTTP/1.1 422 ") and b"batch has no frames" in answer


def test_other_header_checks_come_before_the_body(server):
    for raw, status in [
        (b"POST /nope HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999\r\n\r\n", b"404"),
        (b"DELETE /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 999999\r\n\r\n", b"405"),
        (
            b"POST /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\nContent-Length: 9\r\n\r\n",
            b"415",
        ),
        (b"GET /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n", b"413"),
        (
            b"POST /api/fighters HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
            b"Content-Length: 9\r\n\r\n",
            b"403",
        ),
        (b"POST /api/fighters HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 9\r\n\r\n", b"403"),
    ]:
        answer = request(server, raw)
        assert answer.startswith(b"HTTP/1.1 " + status + b" "), (raw, answer[:200])
