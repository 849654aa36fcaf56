"""How long the frozen opponents of a self-play step take: one forward pass per snapshot
against one stacked pass (`PolicyStack`), at the league's shapes.

    python -m league.bench                          # 1024 duels, a full pool of 64 snapshots
    python -m league.bench --snapshots 16 --json

Opponent rows are drawn as `configs/selfplay.yaml` draws them: a share to the latest snapshot,
a share spread unevenly over the older ones (as prioritisation does), the rest to bots (no
network). Each figure is the median of --repeats timings of --steps calls, in milliseconds
per step, with the machine's torch threads as given.
"""

from __future__ import annotations

import argparse
import json
import platform

import numpy as np
import torch

from common.timing import median_ms
from policies.network import Policy, PolicyStack, sample_actions


def opponent_draw(rows: int, snapshots: int, latest: float, past: float, seed: int = 0) -> np.ndarray:
    """Snapshot index per opponent row, -1 for a bot: the latest is snapshots - 1."""
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.2, 1.8, snapshots - 1)  # uneven, as prioritised sampling is
    probs = np.r_[past * weights / weights.sum(), latest]
    kind = rng.random(rows)
    snap = rng.choice(snapshots, size=rows, p=probs / probs.sum())
    return np.where(kind < latest + past, snap, -1)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1024, help="opponent rows per step (default 1024: 1024 duels)")
    parser.add_argument("--snapshots", type=int, default=64, help="snapshots in the pool (default 64)")
    parser.add_argument("--latest", type=float, default=0.32, help="share of rows for the latest snapshot")
    parser.add_argument("--past", type=float, default=0.32, help="share of rows for the older snapshots")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="calls per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per figure; the median is kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.snapshots < 1 or args.rows < 1:
        parser.error("--snapshots and --rows must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    policies = [Policy(hidden_size=args.hidden_size).requires_grad_(False) for _ in range(args.snapshots)]
    stack = PolicyStack(policies)
    index = opponent_draw(args.rows, args.snapshots, args.latest, args.past)
    rows = np.flatnonzero(index >= 0)
    obs = np.random.default_rng(1).standard_normal((args.rows, policies[0].obs_size)).astype(np.float32)
    actions = np.zeros(args.rows, dtype=np.int32)

    def per_snapshot():
        for k in np.unique(index[rows]):
            mine = rows[index[rows] == k]
            with torch.no_grad():
                logits, _ = policies[k](torch.from_numpy(obs[mine]))
            actions[mine] = sample_actions(torch.log_softmax(logits, -1)).numpy()

    def stacked():
        logits = stack.logits(torch.from_numpy(obs[rows]), index[rows])
        actions[rows] = sample_actions(torch.log_softmax(logits, -1)).numpy()

    loop_ms = median_ms(per_snapshot, args.steps, args.repeats)
    stack_ms = median_ms(stacked, args.steps, args.repeats)
    result = {
        "rows": args.rows,
        "snapshot_rows": len(rows),
        "snapshots": args.snapshots,
        "snapshots_in_play": int(len(np.unique(index[rows]))),
        "torch_threads": args.threads,
        "per_snapshot_ms": round(loop_ms, 3),
        "stacked_ms": round(stack_ms, 3),
        "speedup": round(loop_ms / stack_ms, 2),
        "machine": f"{platform.machine()}, {platform.processor() or '?'}",
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{result['snapshot_rows']} snapshot rows of {args.rows}, {result['snapshots_in_play']} snapshots in play, "
            f"{args.threads} torch thread(s)"
        )
        print(f"  one forward pass per snapshot  {loop_ms:8.3f} ms/step")
        print(f"  PolicyStack, one stacked pass  {stack_ms:8.3f} ms/step   ({result['speedup']}x)")
    return result


if __name__ == "__main__":
    main()
