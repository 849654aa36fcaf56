"""Real checkpoints and observations for the export, /act and browser-policy tests."""

from pathlib import Path

import numpy as np
import torch

from policies import AgentCheckpoint, Policy


def make_checkpoint(path, seed: int = 0, fighter_id=None, model_version: int = 1, global_step: int = 4096) -> Path:
    """A checkpoint as train.py writes it (optimizer and RNG state included), saved with
    AgentCheckpoint.save. The heads are re-drawn wider than the init's std 0.01 and the
    biases made non-zero, so that the logits are spread like a trained policy's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny QRs and products: threads only wait for a busy core
    try:
        return _make_checkpoint(path, seed, fighter_id, model_version, global_step)
    finally:
        torch.set_num_threads(threads)


def _make_checkpoint(path, seed, fighter_id, model_version, global_step) -> Path:
    torch.manual_seed(seed)
    policy = Policy()
    with torch.no_grad():
        policy.actor.weight.normal_(0.0, 0.3)
        for layer in (*policy.network[::2], policy.actor, policy.critic):
            layer.bias.normal_(0.0, 0.1)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3, eps=1e-5)
    policy.get_value(torch.randn(8, policy.obs_size)).sum().backward()
    optimizer.step()
    trainer_state = dict(
        optimizer=optimizer.state_dict(),
        torch_rng=torch.get_rng_state(),
        iteration=3,
        global_step=global_step,
        best_score=[-float("inf"), 0.25],
    )
    checkpoint = AgentCheckpoint(
        policy,
        config={"name": "test", "seed": seed},
        fighter_id=fighter_id,
        model_version=model_version,
        global_step=global_step,
        metrics={"win_rate_last_100": 0.5},
        trainer_state=trainer_state,
    )
    return checkpoint.save(path)


def arena_observations(n: int = 10_000, seed: int = 3) -> np.ndarray:
    """n observations from real matches (4 fighters a ring, random actions): float32 (n, 30).
    About 3% are eliminated fighters' all-zero rows."""
    from envs.arena_env import ArenaEnv

    env = ArenaEnv(num_arenas=50, fighters_per_arena=4, seed=seed, threads=1)
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    while sum(len(r) for r in rows) < n:
        obs, *_ = env.step(rng.integers(0, 10, env.num_agents))
        rows.append(obs.copy())
    env.close()
    return np.ascontiguousarray(np.concatenate(rows)[:n], dtype=np.float32)


def torch_outputs(path, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The checkpoint's logits and values for ``obs``, computed by torch."""
    policy = AgentCheckpoint.load(path).policy
    with torch.no_grad():
        logits, values = policy(torch.from_numpy(obs))
    return logits.numpy(), values.numpy()
