"""The abuse benchmark (``python -m ingest.bench --mode abuse``): the streaming load of
``ingest.bench`` while, in turn, each misbehaving client of ``ingest.attacks`` runs.

For each scenario, and for a run of the load alone (``none``) just before it as its
baseline, a fresh server with a token starts on a fresh database; the honest games
(127.0.0.1) stream as in ``--mode load``; the attacker runs in a process of its own from
127.0.0.2; a prober (127.0.0.3, a monitoring host) asks /health on a new connection every
``--probe-interval`` seconds. Reported per run: the honest frames/s and its share of the
baseline's, ack latency p50/p99, the /health p99 and worst (an unanswered probe counts as
failed), the server's peak RSS (VmHWM), acknowledged frames missing afterwards, and the
attacker's own counters.

Targets (issue 24): honest throughput at least 80% of the unattacked figure, /health p99
under 100 ms, peak RSS under 300 MB, every acknowledged frame stored.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common.timing import percentile

from .attacks import ATTACKER_ADDRESS, Target, run_attack
from .client import HttpClient
from .process import start_server_process, stop_server_process

TOKEN = "bench-abuse-token"
PROBE_ADDRESS = "127.0.0.3"
"""The /health prober's address: a monitoring host, neither the games' nor the attacker's."""

SCENARIOS = {
    "none": None,
    "flood": ("flood", {}, True),
    "idle_tcp": ("idle_tcp", {"count": 256}, False),
    "slowloris": ("slowloris", {"count": 256, "interval": 1.0}, False),
    "idle_ws": ("idle_ws", {"count": 256}, True),
    "nested": ("nested", {"depth": 1000}, True),
    "stalled_uploads": ("stalled_uploads", {"count": 250}, False),
    "bad_values": ("bad_values", {}, True),
    "rebinding": ("rebinding", {}, False),
}
"""scenario -> (attack, its parameters, whether the attacker holds the token: a buggy game
build does; the stalled uploads are a stranger's). Rows of issue 24's table."""

ATTACK_LEAD_S = 2.0
"""The attacker starts this long before the honest games (its process, then its connections)."""


def _probe(host: str, port: int, duration_s: float, interval_s: float) -> list[float | None]:
    """/health on a new connection every interval_s for duration_s: latencies (s), None if unanswered."""

    async def main():
        out = []
        stop = time.monotonic() + duration_s
        while time.monotonic() < stop:
            t0 = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(host, port, local_addr=(PROBE_ADDRESS, 0))
                http = HttpClient(reader, writer, f"{host}:{port}")
                r = await http.request("GET", "/health", timeout=5)
                await http.close()
                out.append(time.monotonic() - t0 if r.status == 200 else None)
            except Exception:
                out.append(None)
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - t0)))
        return out

    return asyncio.run(main())


def _peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


async def _attacker_episode(host: str, port: int) -> int:
    http = await HttpClient.connect(host, port)
    auth = {"authorization": f"Bearer {TOKEN}"}
    fighter = (await http.request("POST", "/api/fighters", {"glb_filename": "attacker.glb"}, headers=auth)).json()
    episode = (await http.request("POST", "/api/episodes", {"fighter_id": fighter["id"]}, headers=auth)).json()
    await http.close()
    return episode["id"]


def run_scenario(name: str, args, run_load) -> dict:
    """One scenario; ``run_load`` is ``ingest.bench.run_load`` (passed in: bench imports this module)."""
    tmp = tempfile.mkdtemp(prefix="ingest-abuse-")
    server, host, port = start_server_process(
        os.path.join(tmp, "bench.db"), 0, "--synchronous", args.synchronous, "--token", TOKEN
    )
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(2)
    try:
        attack = None
        spec = SCENARIOS[name]
        total_s = ATTACK_LEAD_S + args.warmup + args.duration + 4.0
        if spec is not None:
            attack_name, params, with_token = spec
            target = Target(
                host,
                port,
                source=ATTACKER_ADDRESS,
                episode_id=asyncio.run(_attacker_episode(host, port)),
                token=TOKEN if with_token else None,
            )
            attack = pool.apply_async(run_attack, (attack_name, target, total_s), params)
        probes = pool.apply_async(_probe, (host, port, total_s, args.probe_interval))
        time.sleep(ATTACK_LEAD_S)
        load = run_load(host, port, "ws", args, server.pid, token=TOKEN)
        probe_latencies = probes.get(timeout=total_s + 60)
        try:
            counters = attack.get(timeout=total_s + 60) if attack is not None else {}
        except Exception as e:  # the attacker's own failure: report it, the figures stand
            counters = {"attacker_failed": f"{type(e).__name__}: {e}"}
        rss = _peak_rss_mb(server.pid)
    finally:
        pool.terminate()
        pool.join()
        stop_server_process(server)
        shutil.rmtree(tmp, ignore_errors=True)
    answered = sorted(p for p in probe_latencies if p is not None)
    return {
        "scenario": name,
        "frames_per_s": load["frames_per_s"],
        "ack_p50_ms": load["ack_p50_ms"],
        "ack_p99_ms": load["ack_p99_ms"],
        "health_probes": len(probe_latencies),
        "health_failed": len(probe_latencies) - len(answered),
        "health_p99_ms": round(percentile(answered, 99) * 1000, 1) if answered else None,
        "health_max_ms": round(answered[-1] * 1000, 1) if answered else None,
        "server_peak_rss_mb": round(rss, 1),
        "server_cpu_percent": load["server_cpu_percent"],
        "acked_frames_total": load["acked_frames_total"],
        "acked_frames_missing": load["acked_frames_missing"],
        "errors": load["errors"],
        "first_errors": load["first_errors"],
        "attacker_cpu_percent": round(100 * counters["cpu_s"] / total_s, 1) if "cpu_s" in counters else None,
        "attacker": counters,
    }


def main_abuse(args, run_load) -> list[dict]:
    """Each attack right after a baseline run of its own (``none``), so that a machine whose
    other work comes and goes shifts both alike; the share compares the two."""
    attacks = [s for s in (args.attacks or list(SCENARIOS)) if s != "none"]
    reports = []
    for name in attacks * args.repeats:
        baseline = run_scenario("none", args, run_load)
        baseline["baseline_for"] = name
        r = run_scenario(name, args, run_load)
        if baseline["frames_per_s"]:
            r["share_of_unattacked"] = round(r["frames_per_s"] / baseline["frames_per_s"], 3)
        r["unattacked_frames_per_s"] = baseline["frames_per_s"]
        r["unattacked_health_p99_ms"] = baseline["health_p99_ms"]
        baseline["targets_met"] = _targets_met(baseline)
        r["targets_met"] = _targets_met(r)
        reports += [baseline, r]
        for row in (baseline, r):
            print(
                f"# {row['scenario']}: {row['frames_per_s']} frames/s"
                f"{f' ({share:.0%} of the run before)' if (share := row.get('share_of_unattacked')) else ''}, "
                f"ack p99 {row['ack_p99_ms']} ms, /health p99 {row['health_p99_ms']} ms "
                f"({row['health_failed']} failed), peak RSS {row['server_peak_rss_mb']} MB, "
                f"{row['acked_frames_missing']} acked frames missing",
                file=sys.stderr,
                flush=True,
            )
    return reports


def _targets_met(r: dict) -> bool:
    return (
        r.get("share_of_unattacked", 1.0) >= 0.8
        and r["health_failed"] == 0
        and (r["health_p99_ms"] or 1e9) < 100
        and r["server_peak_rss_mb"] < 300
        and r["acked_frames_missing"] == 0
    )
