"""Evaluate a fighter against scripted bots over seeded matches.

    python evaluate.py runs/<run>/checkpoints/best.pt --opponents random,chaser --matches 200 --seed 0
    python evaluate.py best.pt --fighters 8 --opponents chaser --json results.json

Python API (train.py uses it for periodic evaluation and best.pt):

    from evaluate import evaluate
    results = evaluate(policy, opponents=["random", "chaser"], matches=200, seed=0)
    results["chaser"]["win_rate"], results["chaser"]["ci95"]

Each opponent gets exactly ``matches`` matches: one ArenaEnv with one arena per match, the
learner in slot 0 and ``fighters - 1`` copies of the bot, and only each arena's first match
counts. Everything is seeded, so the same policy, seed and rules give the same numbers.
A win is finishing as the sole rank-1 fighter (the last one standing, or the healthiest at the
time limit); a shared first place is a draw.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

UNIFORM = "uniform"
"""the checkpoint argument that evaluates a uniformly random policy instead of a file"""
NUM_ACTIONS = 10
Z95 = 1.959963984540054
"""two-sided 95% normal quantile, for the Wilson score interval"""


def wilson_interval(wins: float, n: int, z: float = Z95) -> list[float]:
    """Wilson score interval of a binomial proportion: [lo, hi] (the whole [0, 1] for n = 0)."""
    if n == 0:
        return [0.0, 1.0]
    p = wins / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [max(0.0, centre - half), min(1.0, centre + half)]


def as_action_fn(policy, greedy: bool = True, seed: int = 0):
    """Turn an AgentCheckpoint, a torch policy or a callable into ``obs (n, 30) -> actions (n,)``.

    A torch policy is anything returning (logits, value) from ``forward``, as policies.Policy
    does. Sampling (greedy=False) draws from a generator seeded with ``seed``.
    """
    from policies import AgentCheckpoint, sample_actions

    if isinstance(policy, AgentCheckpoint):
        policy = policy.policy
    if not isinstance(policy, torch.nn.Module):
        if not callable(policy):
            raise TypeError(f"policy must be an AgentCheckpoint, a torch policy or a callable, got {type(policy).__name__}")
        return lambda obs: np.asarray(policy(obs)).reshape(-1)
    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def act(obs):
        logits, _ = policy(torch.from_numpy(obs).to(device))
        if greedy:
            return logits.argmax(-1).cpu().numpy()
        return sample_actions(torch.log_softmax(logits, -1), generator=generator).cpu().numpy()

    return act


def play_matches(act, opponent: str, matches: int, seed: int, fighters: int = 2,
                 rewards="seed", **rules) -> dict:
    """Play ``matches`` first matches of the learner against ``fighters - 1`` copies of one bot."""
    from arena.kernel import FATE_ALIVE, FATE_KNOCKED_OUT, FATE_RING_OUT
    from envs import ArenaEnv

    env = ArenaEnv(num_arenas=matches, fighters_per_arena=fighters, seed=seed,
                   opponents=[opponent] * (fighters - 1), rewards=rewards,
                   report_interval=1 << 30, **rules)
    arena = env.arena
    slot = arena.agent_slots[0]
    obs, _ = env.reset(seed=seed)
    finished = np.zeros(matches, dtype=bool)
    rank = np.zeros(matches)
    sole_first = np.zeros(matches, dtype=bool)
    ret, hits, kos, ring_outs, length = (np.zeros(matches) for _ in range(5))
    fate = np.zeros(matches, dtype=np.int8)
    max_steps = math.ceil(env.rules.max_frames / env.rules.frame_skip) + 1
    for _ in range(max_steps):
        env.step(act(obs).astype(np.int32))
        ended = np.flatnonzero((arena.match_end != 0) & ~finished)
        if len(ended):
            ranks = arena.final_rank[ended]
            rank[ended] = ranks[:, slot]
            sole_first[ended] = (ranks == 1).sum(axis=1) == 1
            ret[ended] = arena.final_return[ended, slot]
            hits[ended] = arena.final_hits[ended, slot]
            kos[ended] = arena.final_kos[ended, slot]
            ring_outs[ended] = arena.final_ringouts[ended, slot]
            fate[ended] = arena.final_fate[ended, slot]
            length[ended] = arena.final_length[ended]
            finished[ended] = True
        if finished.all():
            break
    else:
        raise RuntimeError(f"{int((~finished).sum())} matches did not end within max_frames; the env broke its contract")
    env.close()
    wins = int(((rank == 1) & sole_first).sum())
    return {
        "win_rate": wins / matches,
        "ci95": [round(x, 6) for x in wilson_interval(wins, matches)],
        "draw_rate": float(((rank == 1) & ~sole_first).mean()),
        "avg_reward": float(ret.mean()),
        "hits": float(hits.mean()),
        "knockouts": float(kos.mean()),
        "ring_outs": float(ring_outs.mean()),
        "knocked_out": float((fate == FATE_KNOCKED_OUT).mean()),
        "rung_out": float((fate == FATE_RING_OUT).mean()),
        "survival_rate": float((fate == FATE_ALIVE).mean()),
        "mean_rank": float(rank.mean()),
        "match_length": float(length.mean()),
        "matches": matches,
    }


def evaluate(policy, opponents=("random", "chaser"), matches: int = 200, seed: int = 0,
             fighters: int = 2, greedy: bool = True, rewards="seed", **rules) -> dict:
    """Results per opponent name: win_rate, ci95 (Wilson, 95%), draw_rate, avg_reward, hits,
    knockouts and ring_outs (per match, dealt by the learner), knocked_out and rung_out (how
    often the learner fell that way), survival_rate (still standing at the end), mean_rank,
    match_length (frames at 60 Hz), matches.

    policy: an AgentCheckpoint, a torch policy, or a callable obs (n, 30) -> actions (n,).
    rewards: the weights avg_reward is measured in. rules: arena.Rules overrides.
    """
    if isinstance(opponents, str):
        opponents = [opponents]
    if not isinstance(matches, int) or matches < 1:
        raise ValueError(f"matches must be an integer >= 1, got {matches!r}")
    results = {}
    for opponent in opponents:
        act = as_action_fn(policy, greedy=greedy, seed=seed)
        results[opponent] = play_matches(act, opponent, matches, seed, fighters, rewards, **rules)
    return results


def uniform_policy(seed: int = 0):
    """The baseline: uniformly random actions from a seeded generator."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(0, NUM_ACTIONS, size=len(obs))


def format_table(results: dict) -> str:
    header = f"{'opponent':<12} {'win rate':>8}  {'95% CI':<15} {'draws':>6} {'reward':>8} {'KOs':>5} " \
             f"{'ring-outs':>9} {'rank':>5} {'length':>7} {'matches':>7}"
    lines = [header, "-" * len(header)]
    for name, r in results.items():
        lo, hi = r["ci95"]
        lines.append(f"{name:<12} {r['win_rate']:>8.1%}  [{lo:5.1%}, {hi:5.1%}] {r['draw_rate']:>6.1%} "
                     f"{r['avg_reward']:>8.2f} {r['knockouts']:>5.2f} {r['ring_outs']:>9.2f} "
                     f"{r['mean_rank']:>5.2f} {r['match_length']:>7.0f} {r['matches']:>7}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate a checkpoint against scripted bots.")
    parser.add_argument("checkpoint", help=f"a .pt file written by train.py or AgentCheckpoint.save, or "
                        f"'{UNIFORM}' for a uniformly random policy (the baseline)")
    parser.add_argument("--opponents", default="random,chaser", help="comma-separated bot names")
    parser.add_argument("--matches", type=int, default=200, help="seeded matches per opponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fighters", type=int, default=2, help="fighters per match (learner + bots)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    parser.add_argument("--config", metavar="YAML", help="take reward weights (for avg_reward) and rules from this "
                        "training config instead of the checkpoint's own")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    from arena import ArenaConfigError
    from policies import AgentCheckpoint, CheckpointError

    try:
        if args.checkpoint == UNIFORM:
            model, env_config = uniform_policy(args.seed), {}
        else:
            model = AgentCheckpoint.load(args.checkpoint)
            env_config = (model.config or {}).get("env", {})
        if args.config:
            from configs import config_to_dict, load_config

            env_config = config_to_dict(load_config(args.config))["env"]
        results = evaluate(model, [o.strip() for o in args.opponents.split(",") if o.strip()],
                           matches=args.matches, seed=args.seed, fighters=args.fighters,
                           greedy=not args.sample, rewards=env_config.get("rewards", "seed"),
                           **env_config.get("rules", {}))
    except (FileNotFoundError, CheckpointError, ArenaConfigError, ValueError) as exc:  # ConfigError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    step = f"step {model.global_step:,}" if isinstance(model, AgentCheckpoint) else "baseline"
    print(f"{args.checkpoint}: {step}, {args.fighters} fighters, seed {args.seed}, "
          f"{'sampled' if args.sample else 'greedy'} actions")
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"checkpoint": args.checkpoint, "seed": args.seed,
                                               "fighters": args.fighters, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
