"""Latency of ``POST /api/fighters/{id}/act``: one game asking for actions, request after request.

    python -m ingest.bench_act                               # 2000 requests of 64 observations
    python -m ingest.bench_act --requests 5000 --batch 256 --json
    python -m ingest.bench_act --url http://127.0.0.1:8001 --fighter 3

Without ``--url`` the server runs as a subprocess (ingest_server.py, its defaults) on a
temporary database holding one fighter whose checkpoint is a train.py-format .pt file of
the default network (30 -> 128 -> 128 -> 10 + 1). One keep-alive connection sends each
request after the previous answer (closed loop); latency is from sending the request to
reading the whole answer, measured in this process. The bodies are realistic: full-
precision float32 observations as the game's JSON.stringify writes them, 16 different
batches in turn. Greedy requests first, then sampled ones (greedy false, no seed).
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from urllib.parse import urlsplit

import numpy as np
import orjson

from common.timing import percentile

from .bench import _server_cpu_s, _start_server
from .process import stop_server_process

DISTINCT_BODIES = 16
"""Different observation batches sent in turn (so no answer can come from a cache)."""


def make_fighter(db_path: str, folder: str) -> int:
    """A fighter with one checkpoint saved by the project's own AgentCheckpoint.save."""
    import torch

    from policies import AgentCheckpoint, Policy
    from storage import Database

    torch.manual_seed(0)
    checkpoint = AgentCheckpoint(Policy(), fighter_id=None, model_version=1, global_step=1_000_000)
    path = checkpoint.save(os.path.join(folder, "step_000001000000.pt"))
    with Database.open(db_path) as db:
        fighter = db.register_fighter("bench.glb", {"bench": "act"})
        db.add_checkpoint(fighter, 1, 100, 0.5, 1.0, 1000, str(path), "aggression")
    return fighter


def bodies(batch: int, greedy: bool, seed: int = 0) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(DISTINCT_BODIES):
        obs = rng.normal(0.0, 0.5, (batch, 30)).astype(np.float32)
        obs[:, 2] = rng.uniform(0, 1, batch)  # health
        out.append(orjson.dumps({"observations": obs.astype(np.float64).tolist(), "greedy": greedy}))
    return out


def measure(
    host: str, port: int, fighter: int, payloads: list[bytes], requests: int, warmup: int, server_pid: int | None
) -> dict:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    path = f"/api/fighters/{fighter}/act"
    headers = {"content-type": "application/json"}
    latencies = []
    cpu0 = None
    for i in range(warmup + requests):
        if i == warmup:
            cpu0 = _server_cpu_s(server_pid) if server_pid else None
            wall0 = time.perf_counter()
        body = payloads[i % len(payloads)]
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        answer = response.read()
        t1 = time.perf_counter()
        if response.status != 200:
            raise SystemExit(f"request {i} answered {response.status}: {answer[:300]!r}")
        if i >= warmup:
            latencies.append(t1 - t0)
    wall = time.perf_counter() - wall0
    server_cpu = (_server_cpu_s(server_pid) - cpu0) if server_pid else None
    conn.close()
    latencies.sort()
    ms = lambda s: round(s * 1000, 3)  # noqa: E731
    return {
        "requests": requests,
        "batch": len(orjson.loads(payloads[0])["observations"]),
        "greedy": orjson.loads(payloads[0])["greedy"],
        "p50_ms": ms(percentile(latencies, 50)),
        "p90_ms": ms(percentile(latencies, 90)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1]),
        "mean_ms": ms(statistics.fmean(latencies)),
        "requests_per_s": round(requests / wall),
        "server_cpu_ms_per_request": round(1000 * server_cpu / requests, 3) if server_cpu is not None else None,
        "body_bytes": len(payloads[0]),
    }


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=2000, help="measured requests per mode")
    p.add_argument("--warmup", type=int, default=200, help="requests before measuring (the first loads the model)")
    p.add_argument("--batch", type=int, default=64, help="observations per request")
    p.add_argument("--url", help="an already running server (default: start one on a temporary database)")
    p.add_argument("--fighter", type=int, help="with --url: a fighter that has a checkpoint")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, to report its CPU")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.url and args.fighter is None:
        raise SystemExit("--url needs --fighter: the id of a fighter with a registered checkpoint")
    tmp = server = None
    try:
        if args.url:
            parts = urlsplit(args.url)
            host, port, pid, fighter = parts.hostname, parts.port or 80, args.server_pid, args.fighter
        else:
            tmp = tempfile.mkdtemp(prefix="bench-act-")
            db = os.path.join(tmp, "bench.db")
            fighter = make_fighter(db, tmp)
            server, host, port = _start_server(db, "FULL")
            pid = server.pid
        reports = [
            measure(host, port, fighter, bodies(args.batch, greedy), args.requests, args.warmup, pid)
            for greedy in (True, False)
        ]
    finally:
        if server is not None:
            stop_server_process(server)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}"
    if args.json:
        print(orjson.dumps({"machine": machine, "runs": reports}, option=orjson.OPT_INDENT_2).decode())
    else:
        print(machine)
        for r in reports:
            print("  ".join(f"{k}={v}" for k, v in r.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
