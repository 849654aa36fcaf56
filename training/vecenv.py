"""The vector env a trainer steps: the arena or any Gymnasium env with discrete actions, through
pufferlib.vector, seeded so that every backend runs the same envs; and saving and restoring
the envs' state for an exact resume.

Seeds. pufferlib's Serial backend seeds env k with ``seed + k``. Its Multiprocessing backend
seeds worker w with ``seed + w`` and that worker's envs with ``seed + w + j``, so with more
envs than workers two envs share a seed (4 envs on 2 workers: seed + 1 twice). Here every
worker runs one ``EnvGroup`` of consecutive envs, which seeds env j of group w as Serial
seeds env ``w * per_group + j``: whatever the backend and the split, env k gets
``seed + k``, and Multiprocessing runs exactly what Serial runs.

Resume. ``env_state`` captures the envs' arrays, generators and buffers (the arena's, or the
league's) and ``start_env`` puts them back, so a resumed run steps the same matches the
interrupted one would have. Envs whose state cannot be read (Gymnasium envs, envs in
Multiprocessing workers) start fresh matches instead, seeded apart from the first session.
"""

from __future__ import annotations

import numpy as np
import pufferlib
import pufferlib.emulation
import pufferlib.pufferlib
import pufferlib.vector
import torch

from configs import ConfigError
from training.distributed import Dist, shard


class GymnasiumEnv(pufferlib.emulation.GymnasiumPufferEnv):
    """pufferlib's Gymnasium adaptor with each episode's final observation masked.

    pufferlib.vector resets a finished env on the next send and ignores that send's action, so
    the row holding the final observation is no decision: masking it keeps it out of the loss
    and the step count, as an eliminated fighter's rows are.
    """

    def step(self, action):
        out = super().step(action)
        if self.done:
            self.masks[0] = False
        return out


def make_gymnasium_env(env_id, buf=None, seed=0):
    import gymnasium

    return GymnasiumEnv(env=pufferlib.pufferlib.EpisodeStats(gymnasium.make(env_id)), buf=buf, seed=seed)


def check_gymnasium_env(env_id: str) -> None:
    """ConfigError unless ``env_id`` names a registered Gymnasium env with discrete actions
    (the policy's head is a categorical distribution)."""
    import gymnasium

    try:
        env = gymnasium.make(env_id)
    except gymnasium.error.Error as exc:
        raise ConfigError(f"env.id {env_id!r} is not a Gymnasium env this machine can make: {exc}") from None
    except ImportError as exc:
        raise ConfigError(f"env.id {env_id!r} needs a package that is not installed: {exc}") from None
    try:
        space = env.action_space
        if not isinstance(space, gymnasium.spaces.Discrete):
            raise ConfigError(
                f"env.id {env_id!r} has {type(space).__name__} actions ({space}); train.py trains discrete "
                f"actions only (a categorical policy head), e.g. CartPole-v1, Acrobot-v1 or LunarLander-v3"
            )
    finally:
        env.close()


def _creator(env_cfg, arenas: tuple[int, int] | None = None, threads: int | None = None):
    """(env creator, its keyword arguments) for a config's env section; arenas: (first, count) of
    the env's arenas this process steps (a distributed run's shard of one ArenaEnv)."""
    if env_cfg.name == "arena":
        from envs import ArenaEnv

        first, count = arenas if arenas is not None else (0, env_cfg.num_arenas)
        return ArenaEnv, dict(
            num_arenas=count,
            first_arena=first,
            threads=threads,
            fighters_per_arena=env_cfg.fighters_per_arena,
            observation=env_cfg.observation,
            opponents=env_cfg.opponents,
            rewards=env_cfg.rewards,
            report_interval=env_cfg.report_interval,
            **env_cfg.rules,
        )
    if env_cfg.name == "gymnasium":
        check_gymnasium_env(env_cfg.id)
        return make_gymnasium_env, dict(env_id=env_cfg.id)
    raise ConfigError(f"env.name must be arena or gymnasium, got {env_cfg.name!r}")


class EnvGroup(pufferlib.PufferEnv):
    """``count`` envs made by ``creator``, stepped one after the other (pufferlib's Serial), as
    one native env: what one Multiprocessing worker runs. Group ``index``'s env j is seeded as
    env ``index * count + j`` of the whole vector (the module docstring says why)."""

    def __init__(self, creator, env_kwargs: dict, count: int, index: int, buf=None, seed=0):
        self.count, self.index = count, index
        self.envs = pufferlib.vector.Serial(
            [creator] * count, [[]] * count, [env_kwargs] * count, count, buf=buf, seed=self._first_seed(seed)
        )
        self.single_observation_space = self.envs.single_observation_space
        self.single_action_space = self.envs.single_action_space
        self.num_agents = self.envs.num_agents
        super().__init__(buf)

    def _first_seed(self, seed):
        # The backend hands this group seed + index; its first env's seed is seed + index * count.
        return None if seed is None else seed + self.index * (self.count - 1)

    def reset(self, seed=None):
        self.envs.async_reset(self._first_seed(seed))
        infos = self.envs.recv()[4]
        return self.observations, infos

    def step(self, actions):
        self.envs.send(actions)
        _, _, _, _, infos, _, _ = self.envs.recv()
        return self.observations, self.rewards, self.terminals, self.truncations, infos

    def close(self):
        self.envs.close()


def make_vecenv(env_cfg, seed: int, dist: Dist | None = None, threads: int | None = None):
    """A pufferlib vecenv for the config's env section; env k is seeded ``seed + k``.

    In a distributed run (dist) the config's envs are the whole run's: each rank makes its
    share of the envs (seeded as in one process), or, with one env, its share of the arenas.
    threads: numba threads stepping the arenas (None: numba's setting)."""
    dist = dist if dist is not None else Dist()
    num_envs, arenas = env_cfg.num_envs, None
    if dist.enabled and num_envs > 1:
        first, num_envs = shard(num_envs, dist, "env.num_envs")
        seed += first
    elif dist.enabled:
        if env_cfg.name != "arena":
            raise ConfigError(
                f"env.num_envs is 1, which does not split between {dist.world_size} processes; "
                f"make it a multiple of {dist.world_size}"
            )
        arenas = shard(env_cfg.num_arenas, dist, "env.num_arenas")
    creator, kwargs = _creator(env_cfg, arenas, threads)
    if env_cfg.backend == "Serial":
        return pufferlib.vector.make(
            creator, env_kwargs=kwargs, backend=pufferlib.vector.Serial, num_envs=num_envs, seed=seed
        )
    workers = env_cfg.num_workers or num_envs
    if num_envs % workers:
        here = " in this process" if dist.enabled else ""
        raise ConfigError(f"env.num_envs ({num_envs}{here}) must be a multiple of env.num_workers ({workers})")
    per_group = num_envs // workers
    groups = [dict(creator=creator, env_kwargs=kwargs, count=per_group, index=w) for w in range(workers)]
    try:
        return pufferlib.vector.make(
            [EnvGroup] * workers,
            env_args=[[]] * workers,
            env_kwargs=groups,
            backend=pufferlib.vector.Multiprocessing,
            num_envs=workers,
            num_workers=workers,
            seed=seed,
        )
    except pufferlib.APIUsageError as exc:  # e.g. more workers than cores
        raise ConfigError(f"env.backend Multiprocessing: {exc}") from None


class DeviceCopy:
    """The env's numpy arrays as tensors on the training device. On the CPU a tensor shares the
    array's memory (no copy); on a GPU each array goes through a pinned host buffer of its own,
    allocated once, and is copied without blocking: the step's one host synchronisation stays
    the actions' way back to the env."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.pinned: dict[str, torch.Tensor] = {}

    def __call__(self, name: str, array: np.ndarray) -> torch.Tensor:
        host = torch.from_numpy(np.asarray(array))
        if self.device.type == "cpu":
            return host
        buffer = self.pinned.get(name)
        if buffer is None or buffer.shape != host.shape or buffer.dtype != host.dtype:
            buffer = self.pinned[name] = torch.empty(host.shape, dtype=host.dtype).pin_memory()
        buffer.copy_(host)
        return buffer.to(self.device, non_blocking=True)


# =============================================================================================
# Starting, saving and restoring
# =============================================================================================
def env_state(vecenv) -> dict | None:
    """The envs' state for an exact resume, or None where it cannot be read (see the module docstring)."""
    if hasattr(vecenv, "state_dict"):  # the league's env
        return {"vecenv": vecenv.state_dict()}
    envs = getattr(vecenv, "envs", None)
    if isinstance(vecenv, pufferlib.vector.Serial) and all(hasattr(e, "state_dict") for e in envs):
        return {"envs": [e.state_dict() for e in envs]}
    return None


def start_env(vecenv, seed: int, device, saved: dict | None = None):
    """Reset the envs with ``seed``, or restore ``saved`` (env_state of an env built the same
    way); returns the first (observations, masks) as tensors on ``device`` and whether the
    state was restored."""
    restored = False
    if saved is not None and "vecenv" in saved and hasattr(vecenv, "load_state_dict"):
        vecenv.load_state_dict(saved["vecenv"])
        obs, _, _, _, _, _, mask = vecenv.recv()
        restored = True
    else:
        vecenv.async_reset(seed)
        obs, _, _, _, _, _, mask = vecenv.recv()
        if saved is not None and "envs" in saved and len(saved["envs"]) == len(getattr(vecenv, "envs", ())):
            for env, state in zip(vecenv.envs, saved["envs"], strict=True):
                env.load_state_dict(state)  # writes into the buffers obs and mask view
            restored = True
    return torch.from_numpy(obs).to(device), torch.from_numpy(np.asarray(mask)).to(device), restored
