"""Limits over real sockets: connection cap, slow and stalled clients, idle keep-alive."""

import http.client
import json
import socket
import time

import pytest

from ingest import BackgroundServer, Limits, ServerConfig


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    limits = Limits(max_connections=4, request_timeout_s=0.4, keepalive_timeout_s=0.6, send_timeout_s=0.5)
    db = tmp_path_factory.mktemp("limits") / "arena.db"
    with BackgroundServer(ServerConfig(db_path=str(db), port=0, limits=limits)) as s:
        yield s


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass  # the server dropped the connection: what was read so far is the answer
    return b"".join(chunks)


def health(server) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/health")
    status = conn.getresponse().status
    conn.close()
    return status


def wait_until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_connections_over_the_limit_get_503(server):
    held = [connect(server) for _ in range(4)]
    assert wait_until(lambda: server.server.stats["connections"] == 4)
    extra = connect(server)
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
    answer = read_all(extra)
    assert answer.startswith(b"HTTP/1.1 503 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert "too many connections" in body["error"] and body["status"] == 503
    for s in held:
        s.close()
    assert wait_until(lambda: server.server.stats["connections"] == 0)
    assert health(server) == 200


def test_stalled_request_gets_408(server):
    s = connect(server)
    s.sendall(b'POST /api/fighters HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{"glb')
    start = time.monotonic()
    answer = read_all(s)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"not completed within 0.4 s" in answer
    assert time.monotonic() - start < 3


def test_idle_keep_alive_connection_is_closed(server):
    s = connect(server)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
    time.sleep(0.1)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    start = time.monotonic()
    assert read_all(s) == b""  # closed by the server after the keep-alive timeout
    assert 0.3 < time.monotonic() - start < 3


def test_client_that_never_reads_is_dropped(server):
    s = connect(server)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    request = b"GET /docs HTTP/1.1\r\nHost: a\r\n\r\n"
    s.settimeout(0.2)
    try:
        for _ in range(3000):  # pipelined requests whose answers fill every buffer
            s.sendall(request)
    except (TimeoutError, ConnectionError):
        pass  # the server stopped reading us
    assert wait_until(lambda: server.server.stats["connections"] == 0, timeout=8)
    s.close()
    assert health(server) == 200
