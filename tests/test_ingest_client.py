"""ingest.client.HttpClient against a server that closes kept-alive connections: a request
on a connection the server closed while idle is sent again on a new one (the server never
read it), once; any other cut answer is a ClientError, never an h11 traceback."""

import asyncio

import pytest

from ingest.client import ClientError, HttpClient

BODY = b'{"ok": true}'
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + (await reader.readexactly(length) if length else b"")


def serve(handler):
    """Run ``handler(reader, writer, n)`` for the n-th connection; returns (server, requests seen)."""
    seen: list[bytes] = []
    count = 0

    async def on_connect(reader, writer):
        nonlocal count
        count += 1
        try:
            await handler(reader, writer, count, seen)
        finally:
            writer.close()

    return on_connect, seen


async def answer_once_then_close(reader, writer, n, seen):
    """Each connection answers one request with keep-alive, then the server closes it while
    it is idle (as the ingest server does after its keep-alive timeout or to make room)."""
    seen.append(await read_request(reader))
    writer.write(ANSWER)
    await writer.drain()
    await asyncio.sleep(0.05)


async def close_without_answer(reader, writer, n, seen):
    seen.append(await read_request(reader))


async def cut_mid_answer(reader, writer, n, seen):
    seen.append(await read_request(reader))
    writer.write(ANSWER[:30])
    await writer.drain()


async def exchange(handler, requests: int):
    on_connect, seen = serve(handler)
    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    http = await HttpClient.connect("127.0.0.1", port)
    try:
        answers = []
        for k in range(requests):
            answers.append(await http.request("POST", "/api/things", {"k": k}, timeout=5))
            await asyncio.sleep(0.2)  # the server closes the idle connection meanwhile
        return answers, seen, http.reconnects
    finally:
        await http.close()
        server.close()


def test_a_request_on_a_connection_closed_while_idle_is_sent_again_once():
    answers, seen, reconnects = asyncio.run(exchange(answer_once_then_close, 3))
    assert [a.json() for a in answers] == [{"ok": True}] * 3
    assert reconnects == 2
    assert [s.endswith(b'{"k":%d}' % k) for k, s in enumerate(seen)] == [True] * 3  # each request reached it once


def test_a_fresh_connection_closed_before_the_answer_is_a_client_error():
    with pytest.raises(ClientError, match="closed the connection before answering"):
        asyncio.run(exchange(close_without_answer, 1))


def test_an_answer_cut_in_the_middle_is_a_client_error_and_not_resent():
    with pytest.raises(ClientError):
        asyncio.run(exchange(cut_mid_answer, 1))
