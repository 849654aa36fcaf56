"""Load generator: many simulated games stream frames into an ingest server.

    python -m ingest.bench                      # WebSocket, then the same load over HTTP
    python -m ingest.bench --games 100 --rate 500 --batch 50 --duration 15 --json
    python -m ingest.bench --url http://127.0.0.1:8001 --transport ws
    python -m ingest.bench --mode layout        # storage layout: float32 blobs vs JSON text
    python -m ingest.bench --mode read          # Database.read_frames of a million frames
    python -m ingest.bench --mode abuse         # the load while each misbehaving client runs (bench_abuse)

Each game opens an episode, sends ``batch`` frames every ``batch / rate`` seconds (open
loop, at most ``--window`` batches unacknowledged), and completes the episode at the end.
Reported: sustained acknowledged frames/s, ack latency percentiles (send to ack), server
and client CPU, and a check that every acknowledged frame is in the database.
Without ``--url`` the server runs as a subprocess on a temporary database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import resource
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from common.timing import percentile

from .bench_abuse import SCENARIOS, main_abuse
from .client import HttpClient, WsClient
from .process import start_server_process, stop_server_process

START_DELAY_S = 1.5
"""Time for the worker processes to connect before the common start instant."""

DRAIN_TIMEOUT_S = 10.0
"""After the run, how long games wait for their outstanding acknowledgements."""

TEMPLATES = 256
"""Distinct random frames each game cycles through (only frame_number changes)."""


# ---------------------------------------------------------------- frames


def frame_templates(seed: int, n: int = TEMPLATES) -> list[tuple[bytes, bytes]]:
    """(prefix, suffix) JSON pieces per frame: prefix + frame_number + suffix is one frame.

    Realistic size: full-precision floats, 4 enemies, ~1.5 KB per frame.
    """
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        rest = {
            "fighter_position": [rng.uniform(-10, 10), rng.uniform(-10, 10)],
            "fighter_health": rng.uniform(0, 100),
            "fighter_velocity": [rng.uniform(-3, 3), rng.uniform(-3, 3)],
            "enemies_state": [
                {
                    "id": k,
                    "position": [rng.uniform(-10, 10), rng.uniform(-10, 10)],
                    "velocity": [rng.uniform(-3, 3), rng.uniform(-3, 3)],
                    "health": rng.uniform(0, 100),
                }
                for k in range(4)
            ],
            "action_vector": [1.0 if i == rng.randrange(10) else 0.0 for i in range(10)],
            "reward_delta": rng.uniform(-1, 1),
            "cumulative_reward": rng.uniform(-50, 200),
            "observation_vector": [rng.uniform(-1, 1) for _ in range(30)],
        }
        body = orjson.dumps(rest)
        out.append((b'{"frame_number":', b"," + body[1:]))
    return out


def batch_json(templates, first_frame: int, count: int) -> bytes:
    n = len(templates)
    return b",".join(
        templates[i % n][0] + str(i).encode() + templates[i % n][1] for i in range(first_frame, first_frame + count)
    )


# ---------------------------------------------------------------- one worker process


@dataclass
class GameResult:
    episode_id: int
    acked_frames: int
    records: list[tuple[float, float, int]]
    """(ack time, latency s, frames) per acknowledged batch"""
    errors: list[str]


async def _ws_game(host, port, episode_id, templates, rate, batch, start_at, stop_at, window, token=None) -> GameResult:
    query = f"?token={token}" if token else ""
    ws = await WsClient.connect(host, port, f"/api/episodes/{episode_id}/stream{query}")
    sent: dict[int, tuple[float, int]] = {}
    res = GameResult(episode_id, 0, [], [])
    slots = asyncio.Semaphore(window)
    drained = asyncio.Event()
    sending = True

    async def receiver():
        while sending or sent:
            msg = await ws.receive_json(timeout=DRAIN_TIMEOUT_S)
            if msg is None:
                res.errors.append(f"episode {episode_id}: connection closed ({ws.close_code})")
                return
            now = time.monotonic()
            if "ack" in msg:
                t_send, n = sent.pop(msg["ack"])
                res.records.append((now, now - t_send, n))
                res.acked_frames += msg["stored"] + msg["duplicates"]
            else:
                sent.pop(msg.get("seq"), None)
                res.errors.append(f"episode {episode_id}: {msg}")
            slots.release()
            if not sending and not sent:
                drained.set()

    recv_task = asyncio.create_task(receiver())
    interval = batch / rate
    await asyncio.sleep(max(0.0, start_at - time.monotonic()) + random.uniform(0, interval))
    seq = frame = 0
    next_t = time.monotonic()
    while time.monotonic() < stop_at and not recv_task.done():
        await slots.acquire()
        payload = b'{"seq":%d,"frames":[' % seq + batch_json(templates, frame, batch) + b"]}"
        sent[seq] = (time.monotonic(), batch)
        await ws.send_text(payload.decode())
        seq += 1
        frame += batch
        next_t += interval
        delay = next_t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            next_t = time.monotonic()  # fell behind by a second: do not burst to catch up
    sending = False
    if sent and not recv_task.done():
        try:
            await asyncio.wait_for(drained.wait(), DRAIN_TIMEOUT_S)
        except TimeoutError:
            res.errors.append(f"episode {episode_id}: {len(sent)} batches unacknowledged after {DRAIN_TIMEOUT_S} s")
    recv_task.cancel()
    await asyncio.gather(recv_task, return_exceptions=True)
    await ws.close()
    return res


async def _http_game(
    host, port, episode_id, templates, rate, batch, start_at, stop_at, window, token=None
) -> GameResult:
    http = await HttpClient.connect(host, port)
    auth = {"authorization": f"Bearer {token}"} if token else {}
    res = GameResult(episode_id, 0, [], [])
    interval = batch / rate
    await asyncio.sleep(max(0.0, start_at - time.monotonic()) + random.uniform(0, interval))
    frame = 0
    next_t = time.monotonic()
    while time.monotonic() < stop_at:
        body = b'{"episode_id":%d,"frames":[' % episode_id + batch_json(templates, frame, batch) + b"]}"
        t0 = time.monotonic()
        r = await http.request(
            "POST", "/api/fight-frames", body=body, headers={"content-type": "application/json", **auth}
        )
        now = time.monotonic()
        if r.status == 201:
            out = r.json()
            res.records.append((now, now - t0, batch))
            res.acked_frames += out["stored"] + out["duplicates"]
        else:
            res.errors.append(f"episode {episode_id}: HTTP {r.status} {r.body[:200]!r}")
        frame += batch
        next_t += interval
        delay = next_t - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -1.0:
            next_t = time.monotonic()
    await http.close()
    return res


def _worker(args: tuple) -> tuple[list[GameResult], float]:
    host, port, transport, episode_ids, rate, batch, start_at, stop_at, window, seed, token = args
    templates = frame_templates(seed)
    game = _ws_game if transport == "ws" else _http_game

    async def main():
        return await asyncio.gather(
            *(game(host, port, e, templates, rate, batch, start_at, stop_at, window, token) for e in episode_ids),
            return_exceptions=True,
        )

    cpu0 = time.process_time()
    results = asyncio.run(main())
    out = []
    for e, r in zip(episode_ids, results, strict=True):
        if isinstance(r, BaseException):
            out.append(GameResult(e, 0, [], [f"episode {e}: {type(r).__name__}: {r}"]))
        else:
            out.append(r)
    return out, time.process_time() - cpu0


# ---------------------------------------------------------------- driver


def _server_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _setup(host, port, games, token=None) -> list[int]:
    http = await HttpClient.connect(host, port)
    auth = {"authorization": f"Bearer {token}"} if token else {}
    body = {"glb_filename": "bench.glb", "metadata": {"bench": True}}
    fighter = (await http.request("POST", "/api/fighters", body, headers=auth)).json()
    ids = []
    for _ in range(games):
        r = await http.request(
            "POST", "/api/episodes", {"fighter_id": fighter["id"], "opponent_ids": [1]}, headers=auth
        )
        ids.append(r.json()["id"])
    await http.close()
    return ids


async def _finish(host, port, results: list[GameResult], token=None) -> tuple[int, list[str]]:
    """Complete every episode and compare stored frame counts with acknowledged ones."""
    http = await HttpClient.connect(host, port)
    auth = {"authorization": f"Bearer {token}"} if token else {}
    missing, problems = 0, []
    for r in results:
        ep = (await http.request("GET", f"/api/episodes/{r.episode_id}")).json()
        if ep["frame_count"] < r.acked_frames:
            missing += r.acked_frames - ep["frame_count"]
            problems.append(f"episode {r.episode_id}: {r.acked_frames} acked, {ep['frame_count']} stored")
        await http.request(
            "PATCH",
            f"/api/episodes/{r.episode_id}",
            {"total_reward": 0.0, "duration_frames": ep["frame_count"], "is_victory": False},
            headers=auth,
        )
    health = (await http.request("GET", "/health")).json()
    await http.close()
    return missing, problems + ([] if health else ["no /health"])


def run_load(host, port, transport, args, server_pid, token=None) -> dict:
    episode_ids = asyncio.run(_setup(host, port, args.games, token))
    procs = max(1, min(args.procs, args.games))
    start_at = time.monotonic() + START_DELAY_S
    measure_from = start_at + args.warmup
    stop_at = measure_from + args.duration
    chunks = [episode_ids[i::procs] for i in range(procs)]
    work = [
        (host, port, transport, c, args.rate, args.batch, start_at, stop_at, args.window, i, token)
        for i, c in enumerate(chunks)
    ]
    cpu0 = _server_cpu_s(server_pid) if server_pid else None
    if procs == 1:
        outputs = [_worker(work[0])]
    else:
        with multiprocessing.get_context("spawn").Pool(procs) as pool:
            outputs = pool.map(_worker, work)
    server_cpu = (_server_cpu_s(server_pid) - cpu0) if server_pid else None
    wall = time.monotonic() - start_at
    results = [g for games, _ in outputs for g in games]
    client_cpu = sum(c for _, c in outputs)
    in_window = [rec for g in results for rec in g.records if measure_from <= rec[0] <= stop_at]
    latencies = sorted(rec[1] for rec in in_window)
    frames = sum(rec[2] for rec in in_window)
    missing, problems = asyncio.run(_finish(host, port, results, token))
    errors = [e for g in results for e in g.errors]
    return {
        "transport": transport,
        "games": args.games,
        "target_frames_per_s": args.games * args.rate,
        "batch": args.batch,
        "frames_per_s": round(frames / args.duration),
        "batches_per_s": round(len(in_window) / args.duration),
        "ack_p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "ack_p95_ms": round(percentile(latencies, 95) * 1000, 2),
        "ack_p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "ack_max_ms": round((latencies[-1] if latencies else float("nan")) * 1000, 2),
        "server_cpu_percent": round(100 * server_cpu / wall, 1) if server_cpu is not None else None,
        "client_cpu_percent": round(100 * client_cpu / wall, 1),
        "acked_frames_total": sum(g.acked_frames for g in results),
        "acked_frames_missing": missing,
        "errors": len(errors),
        "first_errors": (errors + problems)[:5],
    }


def _start_server(db: str, synchronous: str) -> tuple[subprocess.Popen, str, int]:
    try:
        return start_server_process(db, 0, "--synchronous", synchronous)
    except RuntimeError as exc:
        raise SystemExit(str(exc)) from None


def main_load(args) -> list[dict]:
    tmp = None
    if args.url:
        parts = urlsplit(args.url)
        host, port, server, pid = parts.hostname, parts.port or 80, None, args.server_pid
    else:
        tmp = tempfile.mkdtemp(prefix="ingest-bench-")
        server, host, port = _start_server(os.path.join(tmp, "bench.db"), args.synchronous)
        pid = server.pid
    transports = ["ws", "http"] if args.transport == "both" else [args.transport]
    reports = []
    try:
        for t in transports:
            reports.append(run_load(host, port, t, args, pid))
    finally:
        if server is not None:
            stop_server_process(server)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return reports


# ---------------------------------------------------------------- storage layout


def main_layout(args) -> list[dict]:
    """Insert and bulk-read the same frames stored as float32 blobs and as JSON text."""
    import numpy as np

    n_frames = args.layout_frames
    templates = frame_templates(0)
    frames = [orjson.loads(batch_json(templates, i, 1)) for i in range(TEMPLATES)]
    reports = []
    for layout in ("blob", "json"):
        tmp = tempfile.mkdtemp(prefix="ingest-layout-")
        conn = sqlite3.connect(os.path.join(tmp, "l.db"), isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {args.synchronous}")
        vec = "BLOB" if layout == "blob" else "TEXT"
        conn.execute(
            f"CREATE TABLE f (id INTEGER PRIMARY KEY, episode_id INTEGER, frame_number INTEGER, "
            f"pos {vec}, health REAL, vel {vec}, enemies TEXT, action {vec}, rd REAL, cr REAL, "
            f"obs {vec}, UNIQUE (episode_id, frame_number))"
        )
        if layout == "blob":

            def enc(v):
                return struct.pack(f"<{len(v)}f", *v)
        else:

            def enc(v):
                return orjson.dumps(v).decode()

        rows_per_commit, t_insert = 4096, 0.0
        for start in range(0, n_frames, rows_per_commit):
            t0 = time.perf_counter()
            rows = []
            for i in range(start, min(n_frames, start + rows_per_commit)):
                f = frames[i % TEMPLATES]
                rows.append(
                    (
                        i // 3600,
                        i % 3600,
                        enc(f["fighter_position"]),
                        f["fighter_health"],
                        enc(f["fighter_velocity"]),
                        orjson.dumps(f["enemies_state"]).decode(),
                        enc(f["action_vector"]),
                        f["reward_delta"],
                        f["cumulative_reward"],
                        enc(f["observation_vector"]),
                    )
                )
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO f (episode_id, frame_number, pos, health, vel, enemies, "
                "action, rd, cr, obs) VALUES (?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            conn.execute("COMMIT")
            t_insert += time.perf_counter() - t0
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = os.path.getsize(os.path.join(tmp, "l.db"))
        t0 = time.perf_counter()
        got = conn.execute("SELECT obs, action FROM f ORDER BY episode_id, frame_number").fetchall()
        obs_col, act_col = zip(*got, strict=True)
        if layout == "blob":
            obs = np.frombuffer(b"".join(obs_col), "<f4").reshape(len(got), 30)
            act = np.frombuffer(b"".join(act_col), "<f4").reshape(len(got), -1)
        else:
            obs = np.array([orjson.loads(x) for x in obs_col], np.float32)
            act = np.array([orjson.loads(x) for x in act_col], np.float32)
        t_read = time.perf_counter() - t0
        assert obs.shape == (n_frames, 30) and act.shape[0] == n_frames
        conn.close()
        shutil.rmtree(tmp, ignore_errors=True)
        reports.append(
            {
                "layout": layout,
                "frames": n_frames,
                "insert_rows_per_s": round(n_frames / t_insert),
                "bulk_read_rows_per_s": round(n_frames / t_read),
                "bytes_per_frame": round(size / n_frames),
            }
        )
    return reports


# ---------------------------------------------------------------- bulk read for training


def main_read(args) -> list[dict]:
    """Time Database.read_frames (what behavioural cloning calls) over --read-frames frames."""
    import msgspec

    from storage import Database
    from storage.records import WireFrame, frame_rows, settle_enemies

    per_episode = 1000
    frames = msgspec.json.decode(b"[" + batch_json(frame_templates(0), 0, per_episode) + b"]", type=list[WireFrame])
    settle_enemies(frames)
    tmp = tempfile.mkdtemp(prefix="ingest-read-")
    try:
        db = Database.open(os.path.join(tmp, "read.db"), synchronous="NORMAL")
        fighter = db.register_fighter("bench.glb", {})
        for _ in range(args.read_frames // per_episode):
            db.add_frame_rows(frame_rows(db.create_episode(fighter), frames))
        db.close()
        db = Database.open(os.path.join(tmp, "read.db"))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            data = db.read_frames(fighter_id=fighter)
            times.append(time.perf_counter() - t0)
        db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    times.sort()
    return [
        {
            "read_frames": len(data),
            "median_s": round(times[1], 2),
            "best_s": round(times[0], 2),
            "frames_per_s": round(len(data) / times[1]),
        }
    ]


# ---------------------------------------------------------------- CLI


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Load generator for the ingest server.")
    p.add_argument(
        "--mode",
        choices=["load", "layout", "read", "abuse"],
        default="load",
        help="load: games streaming to a server; layout: blobs vs JSON text; "
        "read: Database.read_frames over --read-frames frames; abuse: the WebSocket load while each "
        "misbehaving client of ingest.attacks runs in turn",
    )
    p.add_argument(
        "--attacks", nargs="+", choices=list(SCENARIOS), help="--mode abuse: these scenarios only (default: all)"
    )
    p.add_argument(
        "--probe-interval", type=float, default=0.05, help="--mode abuse: seconds between two /health probes"
    )
    p.add_argument("--repeats", type=int, default=1, help="--mode abuse: rounds of every attack (with its baseline)")
    p.add_argument("--url", help="an already running server (default: start one on a temp database)")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, to report its CPU")
    p.add_argument("--transport", choices=["ws", "http", "both"], default="both")
    p.add_argument("--games", type=int, default=100, help="simultaneous games (one episode each)")
    p.add_argument("--rate", type=float, default=500.0, help="frames/s each game sends")
    p.add_argument("--batch", type=int, default=50, help="frames per message")
    p.add_argument("--window", type=int, default=8, help="WebSocket batches in flight per game")
    p.add_argument("--duration", type=float, default=15.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    p.add_argument("--procs", type=int, default=1, help="client processes")
    p.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="FULL")
    p.add_argument("--layout-frames", type=int, default=200_000, help="--mode layout: frames")
    p.add_argument("--read-frames", type=int, default=1_000_000, help="--mode read: frames")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:  # one socket per game
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    modes = {"load": main_load, "layout": main_layout, "read": main_read, "abuse": lambda a: main_abuse(a, run_load)}
    reports = modes[args.mode](args)
    if args.json:
        print(orjson.dumps(reports, option=orjson.OPT_INDENT_2).decode())
    else:
        for r in reports:
            print("  ".join(f"{k}={v}" for k, v in r.items()))
    bad = any(r.get("acked_frames_missing") or r.get("errors") or r.get("targets_met") is False for r in reports)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
