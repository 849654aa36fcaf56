"""The whole loop in one command: record a scripted bot through the ingest server as the game
would, clone it by behavioural cloning, evaluate the clone, export it, and check that the
browser module picks the same actions as Python.

    python -m demos.clone_chaser                          # 200 matches, about a minute on 2 cores
    python -m demos.clone_chaser --matches 50 --epochs 40 --browser numpy --json result.json
    python -m demos.clone_chaser --out demo-run           # keep the database, run and export

Steps (docs/demo.md):

1. Start ``ingest_server.py`` as a subprocess on a temporary database and a free port.
2. Register a ``chaser`` fighter and a ``random`` opponent (POST /api/fighters), then play
   ``--matches`` 1v1 matches of the chaser bot against the random bot in the arena. The
   chaser sits in the learner slot: before each decision its action is computed from the
   ring's state with the kernel's own bot code (``Arena.bot_actions``), so it plays exactly as the
   built-in bot. Each match is an episode (POST /api/episodes) whose frames stream over its
   WebSocket while the match runs (one frame per decision, in batches of 30, each batch
   acknowledged after the commit), completed with its outcome (PATCH /api/episodes/{id}).
3. Stop the server and run ``train.py``'s imitation mode (configs/imitation.yaml) on the
   chaser's frames: held-out action agreement, then the best epoch against the random bot.
4. Play the chaser itself in the same seeded matches for its own win rate, and the clone
   once more to measure how often it takes the chaser's action in the states it reaches.
5. Export the clone (``policies.export``: ONNX and policy.safetensors) and run web/policy.js
   in headless chromium on the recorded observations; its greedy actions must equal the
   Python policy's on every one. Without chromium (``--browser numpy``, or ``auto`` when it
   is not installed) the exported weights are checked with the numpy forward pass instead,
   and the report says so.

Exit status: 0 when every step ran and the browser (or numpy) actions equal Python's on
every observation; 1 otherwise. The cloning targets are reported, not enforced.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import web
from arena import NUM_ACTIONS
from demos.browser import find_chromium, page_report
from ingest.process import start_server_process, stop_server_process

BATCH_FRAMES = 30
"""Frames per WebSocket message, the JavaScript client's default batchSize."""
GAMES_AT_ONCE = 100
"""Matches played (and WebSockets open) at a time; the server accepts 256 connections."""
BROWSER_OBSERVATIONS = 10_000
"""Recorded observations the browser check runs (all of them when fewer were recorded)."""
BROWSER_TIMEOUT_S = 120
TARGET_AGREEMENT = 0.90
TARGET_WIN_SHARE = 0.80


@dataclass
class Outcome:
    """How a recorded match ended for the chaser (the PATCH /api/episodes body's fields)."""

    total_reward: float
    duration_frames: int
    is_victory: bool
    rank: int


def chaser_decisions(
    matches: int, seed: int, opponent: str = "random", policy=None, record: bool = True, observation: str = "basic"
):
    """Play ``matches`` seeded 1v1 matches, the chaser (or ``policy``) in slot 0 against
    ``opponent``; yield per decision ``(frames, ended, agree)``.

    frames: {ring: frame dict as the API takes it} for every ring still playing (empty when
    ``record`` is False); ended: {ring: Outcome} for the rings whose match ended with this
    decision; agree: (rows, how many took the chaser's action) this decision. The setting is
    evaluate.play_matches's (same env, seeds and rules), so the win rates compare.
    ``policy``: obs (n, 30) -> actions (n, 48 with ``observation`` full); None plays the chaser itself.
    """
    from envs import ArenaEnv

    env = ArenaEnv(
        num_arenas=matches,
        fighters_per_arena=2,
        seed=seed,
        opponents=[opponent],
        report_interval=1 << 30,
        observation=observation,
    )
    arena = env.arena
    arena.autoreset = False  # each ring plays one match; an ended ring stays as it ended
    me, them = 0, 1
    obs, _ = env.reset(seed=seed)
    chaser = np.zeros(matches, dtype=np.int32)
    rings, slots = np.arange(matches), np.full(matches, me)
    running = np.ones(matches, dtype=bool)
    cumulative = np.zeros(matches)
    for _ in range(math.ceil(env.rules.max_frames / env.rules.frame_skip) + 1):
        # The chaser bot's own kernel code (it draws no random numbers), for slot 0 of every ring.
        arena.bot_actions("chaser", rings, slots, out=chaser)
        actions = chaser if policy is None else np.asarray(policy(obs), dtype=np.int32).reshape(-1)
        rows = np.flatnonzero(running)
        agree = (len(rows), int((actions[rows] == chaser[rows]).sum()))
        if record:
            before = [
                x[rows].tolist()
                for x in (
                    obs,
                    arena.frame,
                    arena.pos[:, me],
                    arena.vel[:, me],
                    arena.health[:, me],
                    arena.pos[:, them],
                    arena.vel[:, them],
                    arena.health[:, them],
                    actions,
                )
            ]
        env.step(actions)
        cumulative[rows] += env.rewards[rows]
        frames = {}
        if record:
            rewards, totals = env.rewards[rows].tolist(), cumulative[rows].tolist()
            for i, ring in enumerate(rows.tolist()):
                o, frame, pos, vel, health, e_pos, e_vel, e_health, action = (b[i] for b in before)
                frames[ring] = {
                    "frame_number": frame,
                    "fighter_position": pos,
                    "fighter_health": health,
                    "fighter_velocity": vel,
                    "enemies_state": [
                        {"slot": them, "bot": opponent, "position": e_pos, "velocity": e_vel, "health": e_health}
                    ],
                    "action_vector": [1.0 if k == action else 0.0 for k in range(NUM_ACTIONS)],
                    "reward_delta": rewards[i],
                    "cumulative_reward": totals[i],
                    "observation_vector": o,
                }
        ended = {}
        finished = rows[arena.match_end[rows] != 0]
        result = arena.results(finished)
        for k, ring in enumerate(finished.tolist()):
            ended[ring] = Outcome(
                total_reward=float(result.ret[k, me]),
                duration_frames=int(result.length[k]),
                is_victory=bool(result.win[k, me]),
                rank=int(result.rank[k, me]),
            )
            running[ring] = False
        yield frames, ended, agree
        if not running.any():
            env.close()
            return
    raise RuntimeError(f"{int(running.sum())} matches did not end within max_frames")


def play_chaser_matches(
    matches: int, seed: int, opponent: str = "random", observation: str = "basic"
) -> list[tuple[list[dict], Outcome]]:
    """The recorded frames and the outcome of each match, without a server (tests use it)."""
    frames = [[] for _ in range(matches)]
    outcomes = [None] * matches
    for step_frames, ended, _ in chaser_decisions(matches, seed, opponent, observation=observation):
        for ring, frame in step_frames.items():
            frames[ring].append(frame)
        for ring, outcome in ended.items():
            outcomes[ring] = outcome
    return list(zip(frames, outcomes, strict=True))


def play_results(matches: int, seed: int, opponent: str = "random", policy=None, observation: str = "basic") -> dict:
    """Win rate (sole first place), its Wilson interval and the share of decisions taking the
    chaser's action, for the chaser itself (policy None) or a policy in its place."""
    from evaluation.matches import wilson_interval

    wins = decisions = agreed = 0
    for _, ended, (rows, same) in chaser_decisions(
        matches, seed, opponent, policy=policy, record=False, observation=observation
    ):
        wins += sum(o.is_victory for o in ended.values())
        decisions, agreed = decisions + rows, agreed + same
    return {
        "win_rate": wins / matches,
        "ci95": [round(x, 6) for x in wilson_interval(wins, matches)],
        "matches": matches,
        "chaser_agreement": agreed / max(decisions, 1),
        "decisions": decisions,
    }


# =============================================================================================
# Recording through the ingest server, as the game does
# =============================================================================================
class RecordingError(RuntimeError):
    """The server refused or did not acknowledge something the demo sent."""


async def _call(http, method: str, path: str, body: dict, expect: int) -> dict:
    response = await http.request(method, path, body)
    if response.status != expect:
        raise RecordingError(f"{method} {path} answered {response.status}: {response.body[:300]!r}")
    return response.json()


class EpisodeStream:
    """One episode's WebSocket: frames go out in batches of BATCH_FRAMES; each batch waits for
    its acknowledgement, which the server sends after the commit."""

    def __init__(self, ws, episode_id: int):
        self.ws, self.episode_id = ws, episode_id
        self.pending: list[dict] = []
        self.seq = self.sent = self.stored = 0

    @classmethod
    async def open(cls, host: str, port: int, episode_id: int, attempts: int = 8) -> EpisodeStream:
        """Open the stream; a server at its connection limits (503, or a reset while the
        streams of the last matches are still closing) is asked again with a growing wait."""
        from ingest.client import WsClient, WsRejected

        delay = 0.1
        for attempt in range(attempts):
            try:
                return cls(await WsClient.connect(host, port, f"/api/episodes/{episode_id}/stream"), episode_id)
            except (WsRejected, ConnectionError) as e:
                if (isinstance(e, WsRejected) and e.status != 503) or attempt == attempts - 1:
                    raise RecordingError(f"episode {episode_id}: the stream could not be opened: {e}") from None
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def add(self, frame: dict) -> None:
        self.pending.append(frame)
        if len(self.pending) >= BATCH_FRAMES:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending:
            return
        frames, self.pending = self.pending, []
        await self.ws.send_json({"seq": self.seq, "frames": frames})
        reply = await self.ws.receive_json()
        if not reply or reply.get("ack") != self.seq:
            raise RecordingError(f"episode {self.episode_id}: batch {self.seq} was not acknowledged: {reply!r}")
        self.seq += 1
        self.sent += len(frames)
        self.stored += reply["stored"]

    async def close(self) -> None:
        await self.flush()
        await self.ws.close()


async def record_matches(
    host: str, port: int, matches: int, seed: int, games_at_once: int = GAMES_AT_ONCE, observation: str = "basic"
) -> dict:
    """Register the fighters, then play and stream ``matches`` matches (episodes recording
    ``observation``); returns the counts."""
    from ingest.client import HttpClient

    http = await HttpClient.connect(host, port)
    try:
        chaser = await _call(
            http,
            "POST",
            "/api/fighters",
            {"glb_filename": "chaser.glb", "metadata": {"bot": "chaser", "recorded_by": "demos.clone_chaser"}},
            201,
        )
        opponent = await _call(
            http,
            "POST",
            "/api/fighters",
            {"glb_filename": "random.glb", "metadata": {"bot": "random", "recorded_by": "demos.clone_chaser"}},
            201,
        )
        sent = stored = victories = 0
        for first in range(0, matches, games_at_once):
            n = min(games_at_once, matches - first)
            episodes = [
                (
                    await _call(
                        http,
                        "POST",
                        "/api/episodes",
                        {"fighter_id": chaser["id"], "opponent_ids": [opponent["id"]], "observation": observation},
                        201,
                    )
                )["id"]
                for _ in range(n)
            ]
            streams = [await EpisodeStream.open(host, port, e) for e in episodes]
            for frames, ended, _ in chaser_decisions(n, seed + first, observation=observation):
                await asyncio.gather(*(streams[ring].add(frame) for ring, frame in frames.items()))
                for ring, outcome in ended.items():
                    stream = streams[ring]
                    await stream.close()
                    await _call(
                        http,
                        "PATCH",
                        f"/api/episodes/{stream.episode_id}",
                        {
                            "total_reward": outcome.total_reward,
                            "duration_frames": outcome.duration_frames,
                            "is_victory": outcome.is_victory,
                            "rank": outcome.rank,
                        },
                        200,
                    )
                    sent, stored, victories = sent + stream.sent, stored + stream.stored, victories + outcome.is_victory
        stats = await _call(http, "GET", f"/api/fighters/{chaser['id']}/stats", None, 200)
    finally:
        await http.close()
    if stored != sent or stats["frames"] != sent:
        raise RecordingError(f"sent {sent} frames, {stored} acknowledged as stored, {stats['frames']} in the database")
    return {
        "chaser_fighter_id": chaser["id"],
        "opponent_fighter_id": opponent["id"],
        "episodes": matches,
        "frames": sent,
        "victories": victories,
        "completed_episodes": stats["completed_episodes"],
    }


# =============================================================================================
# The browser check
# =============================================================================================
def browser_actions(chromium: str, export_dir: Path, obs: np.ndarray, work: Path) -> tuple[np.ndarray, float]:
    """web/policy.js's greedy actions for ``obs`` in headless chromium (web/policy-test.html,
    the page tests/test_policy_js.py drives), and the milliseconds its ``act`` call took."""
    site = work / "site"
    site.mkdir(parents=True, exist_ok=True)
    for name in ("policy.js", "policy-test.html"):
        (site / name).symlink_to(web.asset(name))
    (site / "export").symlink_to(export_dir.resolve())
    (site / "observations.bin").write_bytes(np.ascontiguousarray(obs, dtype="<f4").tobytes())
    report = page_report(chromium, site, "policy-test.html?row=0", BROWSER_TIMEOUT_S)
    if not report.get("ok"):
        raise RuntimeError(f"the browser page failed: {report.get('error')}")
    return np.array(report["greedy"], dtype=np.int64), float(report["greedyMs"])


def run_demo(args) -> dict:
    from configs import CONFIG_DIR
    from policies import AgentCheckpoint
    from policies.export import export_checkpoint
    from storage import Database
    from train import train

    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="clone-chaser-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "arena.db"
    result = {"matches": args.matches, "seed": args.seed, "observation": args.observation, "work_dir": str(work)}
    timings = result["timings_s"] = {}

    print(f"1. recording {args.matches} matches of the chaser against the random bot through the ingest server")
    t0 = time.perf_counter()
    proc, host, port = start_server_process(db_path)
    try:
        recorded = asyncio.run(
            record_matches(host, port, args.matches, args.seed, args.games_at_once, args.observation)
        )
    finally:
        stop_server_process(proc)
    timings["record"] = round(time.perf_counter() - t0, 2)
    result["recorded"] = recorded
    print(
        f"   {recorded['frames']:,} frames in {recorded['episodes']} episodes (chaser won {recorded['victories']}), "
        f"every frame acknowledged and stored; database {db_path}  [{timings['record']:.1f} s]"
    )

    print(
        "2. behavioural cloning: python train.py configs/imitation.yaml --db "
        f"{db_path} --imitation.fighters {recorded['chaser_fighter_id']} --env.observation {args.observation}"
    )
    t0 = time.perf_counter()
    summary = train(
        CONFIG_DIR / "imitation.yaml",
        {
            "imitation.fighters": [recorded["chaser_fighter_id"]],
            "imitation.epochs": args.epochs,
            "seed": args.seed,
            "eval.opponents": ["random"],
            "eval.matches": args.eval_matches,
            "eval.seed": args.eval_seed,
            "log_interval": 10.0,
            "name": "clone-chaser",
            "env.observation": args.observation,
        },
        run_dir=work / "run",
        db=db_path,
        progress=False,
    )
    timings["clone"] = round(time.perf_counter() - t0, 2)
    clone_eval = summary["best_eval"]["random"]
    result["clone"] = {
        k: summary[k]
        for k in (
            "best",
            "frames",
            "train_frames",
            "heldout_frames",
            "heldout_episodes",
            "epochs",
            "best_epoch",
            "train_accuracy",
            "heldout_accuracy",
            "heldout_recall",
            "load_time_s",
            "samples_per_s",
        )
    }
    result["clone"]["vs_random"] = clone_eval
    print(
        f"   held-out action agreement {summary['heldout_accuracy']:.1%} on {summary['heldout_frames']:,} frames "
        f"of {summary['heldout_episodes']} unseen matches (epoch {summary['best_epoch']})  [{timings['clone']:.1f} s]"
    )

    print(f"3. evaluation against the random bot, {args.eval_matches} seeded matches (evaluate.evaluate)")
    t0 = time.perf_counter()
    model = AgentCheckpoint.load(summary["best"])
    chaser = play_results(args.eval_matches, args.eval_seed, observation=args.observation)
    in_play = play_results(args.eval_matches, args.eval_seed, policy=model, observation=args.observation)
    timings["evaluate"] = round(time.perf_counter() - t0, 2)
    share = clone_eval["win_rate"] / chaser["win_rate"] if chaser["win_rate"] else float("nan")
    result["chaser_vs_random"] = chaser
    result["clone_in_play"] = in_play
    result["win_share"] = share
    print(
        f"   chaser {chaser['win_rate']:.1%}, clone {clone_eval['win_rate']:.1%} "
        f"[{clone_eval['ci95'][0]:.1%}, {clone_eval['ci95'][1]:.1%}]: {share:.1%} of the chaser's win rate; "
        f"the clone takes the chaser's action in {in_play['chaser_agreement']:.1%} of the states it reaches"
    )

    print("4. export: python -m policies.export " + summary["best"])
    t0 = time.perf_counter()
    export_dir = work / "export"
    manifest = export_checkpoint(summary["best"], export_dir, onnx=not args.no_onnx)
    timings["export"] = round(time.perf_counter() - t0, 2)
    result["export"] = {"dir": str(export_dir), "files": sorted(manifest["files"]), "checks": manifest["checks"]}
    print(
        f"   {', '.join(f['path'] for f in manifest['files'].values())} in {export_dir}; "
        f"self-checks {manifest['checks']}"
    )

    with Database.open(db_path) as db:
        obs = db.read_frames(fighter_id=recorded["chaser_fighter_id"]).observation[:BROWSER_OBSERVATIONS].copy()
    python_actions = model.get_action_and_value(obs)[0]
    chromium = find_chromium() if args.browser in ("auto", "chromium") else None
    if args.browser == "chromium" and chromium is None:
        raise RuntimeError("--browser chromium: no chromium found (apt-get install -y chromium)")
    t0 = time.perf_counter()
    if chromium:
        print(f"5. web/policy.js in headless chromium on {len(obs):,} recorded observations")
        js_actions, js_ms = browser_actions(chromium, export_dir, obs, work)
        checked_with = f"web/policy.js in headless chromium ({Path(chromium).name}), {js_ms:.0f} ms for one act() call"
    else:
        from policies.numpy_policy import load_policy

        print(
            f"5. no browser: the exported weights through the numpy forward pass on {len(obs):,} recorded observations"
        )
        js_actions = load_policy(export_dir / "policy.safetensors").act(obs)
        checked_with = "policies/numpy_policy.py on policy.safetensors (no chromium: JavaScript not run)"
    timings["browser_check"] = round(time.perf_counter() - t0, 2)
    mismatches = int((js_actions != python_actions).sum())
    result["browser_check"] = {"checked_with": checked_with, "observations": len(obs), "mismatches": mismatches}
    print(f"   {len(obs) - mismatches:,} of {len(obs):,} actions equal Python's greedy actions ({checked_with})")

    result["targets"] = {
        "heldout_agreement": {
            "value": summary["heldout_accuracy"],
            "target": TARGET_AGREEMENT,
            "met": summary["heldout_accuracy"] >= TARGET_AGREEMENT,
        },
        "win_share_of_chaser": {"value": share, "target": TARGET_WIN_SHARE, "met": share >= TARGET_WIN_SHARE},
        "browser_equals_python": {"value": mismatches, "target": 0, "met": mismatches == 0},
    }
    return result


def format_report(result: dict) -> str:
    lines = ["", "targets:"]
    names = {
        "heldout_agreement": "held-out action agreement",
        "win_share_of_chaser": "share of the chaser's win rate",
        "browser_equals_python": "browser actions differing from Python",
    }
    for key, t in result["targets"].items():
        value = f"{t['value']:.1%}" if isinstance(t["value"], float) else str(t["value"])
        target = f">= {t['target']:.0%}" if isinstance(t["target"], float) else f"== {t['target']}"
        lines.append(f"  {names[key]:<36} {value:>8}  (target {target})  {'met' if t['met'] else 'MISSED'}")
    lines.append(f"files: {result['work_dir']}")
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--matches", type=int, default=200, help="matches to record (default 200)")
    p.add_argument("--epochs", type=int, default=100, help="behavioural cloning epochs (default 100)")
    p.add_argument("--eval-matches", type=int, default=200, help="seeded evaluation matches (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the recorded matches and of training")
    p.add_argument("--eval-seed", type=int, default=12345, help="seed of the evaluation matches")
    p.add_argument(
        "--games-at-once",
        type=int,
        default=GAMES_AT_ONCE,
        help=f"matches played and streamed at a time (default {GAMES_AT_ONCE})",
    )
    p.add_argument(
        "--browser",
        choices=["auto", "chromium", "numpy"],
        default="auto",
        help="check the export with web/policy.js in chromium, or numpy (auto: chromium if installed)",
    )
    p.add_argument(
        "--observation",
        choices=["basic", "full"],
        default="basic",
        help="what the recorded frames carry and the clone reads: the game's 30 numbers, or the full 48",
    )
    p.add_argument("--no-onnx", action="store_true", help="export only the browser weights")
    p.add_argument("--out", help="folder for the database, run and export (default: a temporary folder, kept)")
    p.add_argument("--json", help="also write the results as JSON")
    args = p.parse_args(argv)
    for name in ("matches", "epochs", "eval_matches", "games_at_once"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.games_at_once > 200:
        p.error("--games-at-once must be at most 200 (the server accepts 256 connections)")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from configs import ConfigError
    from ingest.client import ClientError
    from policies.export import ExportError

    try:
        result = run_demo(args)
    except (RecordingError, ClientError, ConfigError, ExportError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=float) + "\n")
    return 0 if result["targets"]["browser_equals_python"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
