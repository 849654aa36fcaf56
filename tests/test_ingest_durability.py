"""The server as a process: restart on the same database, graceful SIGTERM, kill -9 under load."""

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from wsproto.utilities import LocalProtocolError

from ingest.client import HttpClient, WsClient
from storage import Database
from storage.records import OBSERVATION_SIZE

ROOT = Path(__file__).resolve().parent.parent


def frame(n: int) -> dict:
    return {
        "frame_number": n,
        "fighter_position": [0.0, 1.0],
        "fighter_health": 50.0,
        "fighter_velocity": [0.0, 0.0],
        "enemies_state": [],
        "action_vector": [0.0, 1.0],
        "reward_delta": 0.0,
        "cumulative_reward": 0.0,
        "observation_vector": [float(n)] * OBSERVATION_SIZE,
    }


class ServerProcess:
    def __init__(self, db: Path, port: int = 0):
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "ingest_server.py"),
                "--db",
                str(db),
                "--port",
                str(port),
                "--log-level",
                "INFO",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        line = self.proc.stdout.readline()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()}")
        self.port = int(m.group(1))

    def stop(self, sig=signal.SIGTERM, timeout=20) -> tuple[int, str]:
        self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, err


@pytest.fixture
def processes():
    started = []

    def start(db, port=0):
        started.append(ServerProcess(db, port))
        return started[-1]

    yield start
    for p in started:  # never leave a server behind, even when a test fails
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def open_episodes(port: int, n: int) -> list[int]:
    http = await HttpClient.connect("127.0.0.1", port)
    fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "d.glb"})).json()
    ids = [(await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"]})).json()["id"] for _ in range(n)]
    await http.close()
    return ids


async def stream_until_closed(port: int, episode_id: int, acked: set, batch: int = 20) -> int | None:
    """Send batches back to back (4 in flight); record acked frame numbers until the server goes."""
    try:
        ws = await WsClient.connect("127.0.0.1", port, f"/api/episodes/{episode_id}/stream")
    except OSError:
        return None
    pending: dict[int, range] = {}
    seq = 0
    try:
        while True:
            while len(pending) < 4:
                numbers = range(seq * batch, (seq + 1) * batch)
                pending[seq] = numbers
                await ws.send_json({"seq": seq, "frames": [frame(n) for n in numbers]})
                seq += 1
            msg = await ws.receive_json(timeout=10)
            if msg is None:
                return ws.close_code
            if "ack" in msg:
                acked.update(pending.pop(msg["ack"]))
            else:
                pending.pop(msg["seq"], None)
    except LocalProtocolError:  # sending after the server closed the stream
        return ws.close_code
    except (ConnectionError, OSError):
        return None


def test_restart_keeps_everything(tmp_path, processes):
    db = tmp_path / "arena.db"
    server = processes(db)

    async def first(port):
        eid = (await open_episodes(port, 1))[0]
        http = await HttpClient.connect("127.0.0.1", port)
        r = await http.request(
            "POST", "/api/fight-frames", {"episode_id": eid, "frames": [frame(n) for n in range(10)]}
        )
        await http.close()
        return eid, r.json()

    eid, stored = run(first(server.port))
    assert stored["stored"] == 10
    code, log = server.stop()
    assert code == 0 and "stopped" in log and "[conn -]" in log

    server = processes(db)

    async def second(port):
        http = await HttpClient.connect("127.0.0.1", port)
        before = (await http.request("GET", f"/api/episodes/{eid}")).json()
        r = await http.request(
            "POST", "/api/fight-frames", {"episode_id": eid, "frames": [frame(n) for n in range(5, 15)]}
        )
        after = (await http.request("GET", f"/api/episodes/{eid}/frames?limit=100")).json()
        await http.close()
        return before, r.json(), after

    before, again, after = run(second(server.port))
    assert before["frame_count"] == 10 and before["status"] == "open"
    assert again == {"episode_id": eid, "stored": 5, "duplicates": 5}
    assert [f["frame_number"] for f in after["items"]] == list(range(15))
    assert server.stop()[0] == 0


def test_sigterm_under_load_delivers_acks_and_loses_nothing(tmp_path, processes):
    db = tmp_path / "arena.db"
    server = processes(db)
    eids = run(open_episodes(server.port, 4))
    acked = {e: set() for e in eids}

    async def load():
        tasks = [asyncio.create_task(stream_until_closed(server.port, e, acked[e])) for e in eids]
        await asyncio.sleep(1.0)
        server.proc.send_signal(signal.SIGTERM)
        return await asyncio.gather(*tasks)

    codes = run(load())
    returncode, log = server.stop(sig=signal.SIGTERM)
    assert returncode == 0, log
    assert codes == [1001] * len(eids)  # "going away", after the last ack
    assert all(acked.values())
    with Database.open(db) as database:
        for e in eids:
            stored = {f["frame_number"] for f in database.list_frames(e)}
            assert acked[e] <= stored


def test_kill_9_under_load_loses_nothing_acknowledged(tmp_path, processes):
    db = tmp_path / "arena.db"
    server = processes(db)
    eids = run(open_episodes(server.port, 6))
    acked = {e: set() for e in eids}

    async def load():
        tasks = [asyncio.create_task(stream_until_closed(server.port, e, acked[e])) for e in eids]
        await asyncio.sleep(1.5)
        os.kill(server.proc.pid, signal.SIGKILL)
        await asyncio.gather(*tasks)

    run(load())
    server.proc.wait(timeout=10)
    total = sum(len(a) for a in acked.values())
    assert total > 1000, "the load did not get going"
    with Database.open(db) as database:
        for e in eids:
            stored = {f["frame_number"] for f in database.list_frames(e)}
            assert acked[e] <= stored, f"episode {e}: {len(acked[e] - stored)} acknowledged frames lost"

    restarted = processes(db)  # and the server starts again on the same file

    async def resume(port):
        http = await HttpClient.connect("127.0.0.1", port)
        r = await http.request("GET", f"/api/episodes/{eids[0]}")
        await http.close()
        return r.json()

    assert run(resume(restarted.port))["frame_count"] >= len(acked[eids[0]])
    assert restarted.stop()[0] == 0


def test_cli_errors(tmp_path, processes):
    server = processes(tmp_path / "a.db")
    clash = subprocess.run(
        [sys.executable, str(ROOT / "ingest_server.py"), "--db", str(tmp_path / "b.db"), "--port", str(server.port)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert clash.returncode == 1 and "pick another --port" in clash.stderr and "Traceback" not in clash.stderr
    assert server.stop()[0] == 0
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("not a database")
    bad = subprocess.run(
        [sys.executable, str(ROOT / "ingest_server.py"), "--db", str(not_a_db), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert bad.returncode == 1 and "cannot use the database" in bad.stderr and "Traceback" not in bad.stderr
