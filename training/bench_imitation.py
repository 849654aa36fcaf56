"""How fast behavioural cloning reads its frames: a million stored frames -> labelled arrays.

    python -m training.bench_imitation                    # 1,000,000 frames, 3 timed loads, 1 epoch
    python -m training.bench_imitation --frames 200000 --epochs 0 --json

Fills a temporary arena database with ``--frames`` frames (episodes of 1,000 frames, one-hot
action vectors, as the ingest server stores them), then times ``load_demonstrations`` (what
``train.py configs/imitation.yaml`` calls: ``Database.read_frames`` in bulk, then the labels)
from a fresh connection ``--repeats`` times, and one training epoch over the frames at the
imitation config's batch size (training.imitation.feedforward_epoch, as train.py runs it).
Prints the figures (``--json``: as JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time

import numpy as np

EPISODE_FRAMES = 1000
"""Frames per stored episode (a 50 s match at one frame per decision is about 750)."""


def fill_database(path: str, frames: int, seed: int = 0) -> int:
    """A database at ``path`` holding ``frames`` frames of one fighter; returns the fighter id."""
    from storage import Database
    from storage.records import Frame, frame_rows, settle_enemies

    rng = np.random.default_rng(seed)
    obs = rng.uniform(-1, 1, (EPISODE_FRAMES, 30)).astype(np.float32).tolist()
    actions = rng.integers(0, 10, EPISODE_FRAMES).tolist()
    template = [
        Frame(
            frame_number=4 * i,
            fighter_position=[0.5, -0.25],
            fighter_health=1.0,
            fighter_velocity=[0.0, 1.0],
            enemies_state=[{"slot": 1, "health": 0.8}],
            action_vector=[1.0 if k == actions[i] else 0.0 for k in range(10)],
            reward_delta=0.0,
            cumulative_reward=0.0,
            observation_vector=obs[i],
        )
        for i in range(EPISODE_FRAMES)
    ]
    settle_enemies(template)
    db = Database.open(path, synchronous="OFF")
    try:
        fighter = db.register_fighter("bench.glb", {"bench": "imitation"})
        for _ in range(math.ceil(frames / EPISODE_FRAMES)):
            episode = db.create_episode(fighter)
            # One transaction per episode, without the per-frame validation of add_frames
            # (the template is valid, and the load being measured does not need it).
            db.add_frame_rows(frame_rows(episode, template))
            db.complete_episode(episode, 0.0, 4 * EPISODE_FRAMES, True, 1)
    finally:
        db.close()
    return fighter


def run(frames: int, repeats: int, epochs: int) -> dict:
    import torch

    from configs import CONFIG_DIR, load_config
    from training.demonstrations import load_demonstrations

    config = load_config(CONFIG_DIR / "imitation.yaml")
    tmp = tempfile.mkdtemp(prefix="bench-imitation-")
    try:
        path = os.path.join(tmp, "arena.db")
        t0 = time.perf_counter()
        fighter = fill_database(path, frames)
        fill_s = time.perf_counter() - t0
        config.imitation.fighters = [fighter]
        times, read_times = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            demos = load_demonstrations(path, config.imitation)
            times.append(time.perf_counter() - t0)
            from storage import Database

            with Database.open(path) as db:  # the bulk read alone, for the split
                t0 = time.perf_counter()
                db.read_frames(fighter_id=fighter, completed_only=True)
                read_times.append(time.perf_counter() - t0)
        size = os.path.getsize(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    times.sort()
    read_times.sort()
    result = {
        "frames": len(demos),
        "database_bytes": size,
        "fill_s": round(fill_s, 1),
        "load_median_s": round(times[len(times) // 2], 3),
        "load_best_s": round(times[0], 3),
        "read_frames_median_s": round(read_times[len(read_times) // 2], 3),
        "frames_per_s": round(len(demos) / times[len(times) // 2]),
        "repeats": repeats,
    }
    if epochs:
        from policies.network import Policy
        from training.imitation import feedforward_epoch

        torch.manual_seed(0)
        torch.set_num_threads(config.torch_threads)
        cfg = config.imitation
        policy = Policy()
        optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=1e-5)
        b_obs, b_actions = torch.from_numpy(demos.obs), torch.from_numpy(demos.actions)
        batch = cfg.batch_size
        total_updates, update = epochs * math.ceil(len(b_obs) / batch), 0
        t0 = time.perf_counter()
        for _ in range(epochs):  # the epoch train.py's imitation runs (a feed-forward policy)
            *_, update = feedforward_epoch(policy, optimizer, b_obs, b_actions, cfg, update, total_updates)
        epoch_s = (time.perf_counter() - t0) / epochs
        result.update(
            epoch_s=round(epoch_s, 2),
            train_samples_per_s=round(len(b_obs) / epoch_s),
            batch_size=batch,
            torch_threads=config.torch_threads,
        )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=1_000_000, help="frames to store and load (default 1,000,000)")
    p.add_argument("--repeats", type=int, default=3, help="timed loads (the median is reported)")
    p.add_argument("--epochs", type=int, default=1, help="training epochs to time over the loaded frames (0: none)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args(argv)
    if args.frames < 1 or args.repeats < 1 or args.epochs < 0:
        p.error("--frames and --repeats must be >= 1, --epochs >= 0")
    result = run(args.frames, args.repeats, args.epochs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"stored {result['frames']:,} frames ({result['database_bytes'] / 2**20:,.0f} MiB) in {result['fill_s']} s"
        )
        print(
            f"load_demonstrations: median {result['load_median_s']} s, best {result['load_best_s']} s over "
            f"{result['repeats']} loads ({result['frames_per_s']:,} frames/s); of it Database.read_frames "
            f"{result['read_frames_median_s']} s"
        )
        if "epoch_s" in result:
            print(
                f"one epoch at batch {result['batch_size']}: {result['epoch_s']} s "
                f"({result['train_samples_per_s']:,} frames/s, {result['torch_threads']} torch thread)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
