"""Real checkpoints and observations for the export, /act and browser-policy tests."""

from pathlib import Path

import numpy as np
import torch

from arena.spec import OBSERVATIONS
from policies import AgentCheckpoint, Policy
from policies.network import RecurrentPolicy


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


# ---------------------------------------------------------------------------- a recurrent fighter

FIGHTERS, STEPS = 100, 100
"""The recurrent tests' sequences: 25 rings of 4 fighters for 100 decisions, 10,000 observations."""


def make_recurrent_checkpoint(path, seed: int = 0, observation: str = "full", kind: str = "lstm") -> Path:
    """A checkpoint of ``kind`` reading ``observation``, its heads and biases spread like a trained
    policy's (as policy_files.make_checkpoint's) and, for lstm, a forget-gate bias that makes
    memory last, so that a state carried wrong or a missed reset changes the actions."""
    torch.manual_seed(seed)
    size = OBSERVATIONS[observation]
    policy = RecurrentPolicy(size, 10, 128) if kind == "lstm" else Policy(size, 10, 128)
    with torch.no_grad():
        policy.actor.weight.normal_(0.0, 0.3)
        first = policy.encoder[0] if kind == "lstm" else policy.network[0]
        for layer in (first, policy.actor, policy.critic):
            layer.bias.normal_(0.0, 0.1)
        if kind == "lstm":
            policy.lstm.bias_hh[128:256] += 2.0
    checkpoint = AgentCheckpoint(
        policy, config={"env": {"observation": observation}}, fighter_id=9, model_version=2, global_step=8192
    )
    return checkpoint.save(path)


def match_sequences(observation: str = "full", seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """FIGHTERS fighters' observations over STEPS decisions of real matches (random actions, matches
    of at most 30 decisions, so most fighters start several): obs (STEPS, FIGHTERS, size) float32
    and resets (STEPS, FIGHTERS), True where training resets a fighter's memory before the decision
    (training/memory.py): the first decision of a match and an eliminated fighter's rows."""
    from envs import ArenaEnv

    env = ArenaEnv(
        num_arenas=FIGHTERS // 4, fighters_per_arena=4, seed=seed, threads=1, observation=observation, max_frames=120
    )
    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    starts = np.ones(env.num_agents, bool)
    sequence, resets = [], []
    for _ in range(STEPS):
        sequence.append(obs.copy())
        resets.append(starts | ~env.masks)
        obs, _, terminals, truncations, _ = env.step(rng.integers(0, 10, env.num_agents).astype(np.int32))
        starts = terminals | truncations
    env.close()
    return np.stack(sequence), np.stack(resets)


def torch_sequences(path, obs: np.ndarray, resets: np.ndarray):
    """The checkpoint's logits (T, n, A), values (T, n) and final (h, c) on the sequences, computed by torch."""
    policy = AgentCheckpoint.load(path).policy
    state = policy.initial_state(obs.shape[1])
    logits, values = [], []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 100-row products: a second thread only waits for a busy core
    try:
        with torch.no_grad():
            for x, reset in zip(obs, resets, strict=True):
                step_logits, step_values, state = policy(torch.from_numpy(x), state, torch.from_numpy(reset))
                logits.append(step_logits.numpy())
                values.append(step_values.numpy())
    finally:
        torch.set_num_threads(threads)
    return np.stack(logits), np.stack(values), (state[0].numpy(), state[1].numpy())
