"""Who plays: a player spec resolved into something that chooses actions.

A spec is one of

- a built-in bot name (``random``, ``idle``, ``chaser``, ``kiter``, ``edge_pusher``, ``counter``,
  ``striker``), a named bot variant (``far_kiter``) or a bot with parameters
  (``kiter[retreat=2.0;noise=0.1]``), see arena/variants.py;
- ``uniform``: a uniformly random policy drawn from its own seeded generator;
- a checkpoint file written by train.py or ``AgentCheckpoint.save``;
- ``module:function`` or ``path/to/file.py:function``: any callable taking observations
  float32 (n, 30) and returning actions int (n,) in [0, 10), so that users can test
  against their own scripted fighters without touching the project;
- ``NAME=SPEC``: any of the above under a display name (``v1=runs/a/checkpoints/best.pt``).

The Python API also takes objects: an AgentCheckpoint, a torch policy, or a callable.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from arena import BOT_NAMES, NUM_ACTIONS, OBS_SIZE, VARIANTS, ArenaConfigError, is_variant_spec, resolve_variant
from configs import split_name  # lives in configs, whose league checks name fixed opponents with it

UNIFORM = "uniform"
"""the spec of a uniformly random policy (the baseline)"""


class PlayerError(ValueError):
    """A player spec cannot be resolved, or a player returned unusable actions."""


@dataclass
class Player:
    """One side of a match: a built-in bot (played from the arena state) or a policy."""

    name: str
    """display name, and the key of its results"""
    kind: str
    """bot, uniform, checkpoint or callable"""
    bot: str | None = None
    """the bot's spec (kind bot): a bot name, a named variant or ``bot[key=value;...]``"""
    source: object = None
    """an AgentCheckpoint, a torch policy or a callable (the other kinds)"""
    greedy: bool = True
    """argmax actions (True) or samples from the policy (torch policies only)"""
    env_config: dict = field(default_factory=dict)
    """the env section of a checkpoint's training config (rewards, rules), else empty"""

    def actor(self, seed: int = 0) -> Callable | None:
        """A fresh ``obs (n, 30) -> actions (n,)`` function (None for a bot); sampling and
        the uniform policy draw from a generator seeded with ``seed``."""
        if self.kind == "bot":
            return None
        if self.kind == UNIFORM:
            return uniform_policy(seed)
        return as_action_fn(self.source, greedy=self.greedy, seed=seed)

    @property
    def obs_size(self) -> int:
        """How many numbers of the observation the player reads: a network's input size (30 or
        48, the full observation), else the basic 30 (bots, uniform, module:function players)."""
        import torch

        from policies import AgentCheckpoint

        source = self.source.policy if isinstance(self.source, AgentCheckpoint) else self.source
        if isinstance(source, torch.nn.Module):
            return int(getattr(source, "obs_size", OBS_SIZE))
        return OBS_SIZE

    @property
    def checkpoint(self):
        """The AgentCheckpoint behind this player, or None."""
        from policies import AgentCheckpoint

        return self.source if isinstance(self.source, AgentCheckpoint) else None


def uniform_policy(seed: int = 0):
    """The baseline: uniformly random actions from a seeded generator."""
    rng = np.random.default_rng(seed)
    return lambda obs: rng.integers(0, NUM_ACTIONS, size=len(obs))


def as_action_fn(policy, greedy: bool = True, seed: int = 0):
    """Turn an AgentCheckpoint, a torch policy or a callable into ``obs (n, 30) -> actions (n,)``.

    A torch policy is anything returning (logits, value) from ``forward``, as policies.Policy
    does; a recurrent one (policies.RecurrentPolicy) gives a RecurrentActor, which keeps each
    row's memory. Sampling (greedy=False) draws from a generator seeded with ``seed``.
    """
    import torch

    from policies import AgentCheckpoint, sample_actions

    if isinstance(policy, AgentCheckpoint):
        policy = policy.policy
    if not isinstance(policy, torch.nn.Module):
        if not callable(policy):
            raise TypeError(
                f"policy must be an AgentCheckpoint, a torch policy or a callable, got {type(policy).__name__}"
            )
        return lambda obs: np.asarray(policy(obs))
    if getattr(policy, "recurrent", False):
        return RecurrentActor(policy, greedy, seed)
    device = next(policy.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)

    @torch.no_grad()
    def act(obs):
        logits, _ = policy(torch.from_numpy(obs).to(device))
        if greedy:
            return logits.argmax(-1).cpu().numpy()
        return sample_actions(torch.log_softmax(logits, -1), generator=generator).cpu().numpy()

    return act


class RecurrentActor:
    """``act(obs, starts)`` for a recurrent policy: the same rows in the same order at every call,
    each with its memory, which starts afresh where ``starts`` is True (a row's first decision of
    a match; every row at the first call)."""

    recurrent = True

    def __init__(self, policy, greedy: bool = True, seed: int = 0):
        import torch

        self.policy, self.greedy = policy, greedy
        self.device = next(policy.parameters()).device
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self.state = None

    def __call__(self, obs: np.ndarray, starts: np.ndarray | None = None) -> np.ndarray:
        import torch

        from policies import sample_actions

        x = torch.from_numpy(np.ascontiguousarray(obs)).to(self.device)
        if self.state is None or len(self.state[0]) != len(x):
            self.state, starts = self.policy.initial_state(len(x), self.device), None
        reset = None if starts is None else torch.from_numpy(np.asarray(starts, dtype=bool)).to(self.device)
        with torch.no_grad():
            logits, _, self.state = self.policy(x, self.state, reset)
            if self.greedy:
                return logits.argmax(-1).cpu().numpy()
            return sample_actions(torch.log_softmax(logits, -1), generator=self.generator).cpu().numpy()


def check_actions(player: Player, actions, n: int) -> np.ndarray:
    """A player's actions as int32 (n,), or a PlayerError naming the player and the fix."""
    actions = np.asarray(actions)
    if actions.shape != (n,) and actions.size == n:
        actions = actions.reshape(n)
    if actions.shape != (n,) or actions.dtype.kind not in "iu":
        raise PlayerError(
            f"player {player.name!r} returned an array of shape {actions.shape} and dtype {actions.dtype} "
            f"for {n} observations; a policy must return {n} integer actions, shape ({n},)"
        )
    if n and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
        bad = actions[(actions < 0) | (actions >= NUM_ACTIONS)][0]
        raise PlayerError(
            f"player {player.name!r} returned action {int(bad)}; actions are integers in [0, {NUM_ACTIONS})"
        )
    return actions.astype(np.int32, copy=False)


# ------------------------------------------------------------------------------ resolving specs
def resolve_player(spec, greedy: bool = True, name: str | None = None) -> Player:
    """A Player from a spec string (see the module docstring) or an object.

    Raises PlayerError for an unknown name or a bad module:function, FileNotFoundError for a
    missing checkpoint and policies.CheckpointError for a corrupt or foreign one.
    """
    if isinstance(spec, Player):
        return spec
    if not isinstance(spec, str):
        label = name or getattr(spec, "__name__", None) or type(spec).__name__
        from policies import AgentCheckpoint

        kind = "checkpoint" if isinstance(spec, AgentCheckpoint) else "callable"
        if not callable(spec) and kind != "checkpoint":
            raise PlayerError(
                f"a player must be a spec string, an AgentCheckpoint, a torch policy or a "
                f"callable, got {type(spec).__name__}"
            )
        env = ((spec.config or {}).get("env") or {}) if kind == "checkpoint" else {}
        return Player(label, kind, source=spec, greedy=greedy, env_config=env)
    label, spec = split_name(spec)
    label = name or label or spec
    if is_variant_spec(spec):
        try:
            variant = resolve_variant(spec)
        except ArenaConfigError as exc:
            raise PlayerError(str(exc)) from None
        return Player(label, "bot", bot=variant.name)
    if spec == UNIFORM:
        return Player(label, UNIFORM)
    if os.path.isfile(spec) or os.path.isdir(spec):
        return load_checkpoint_player(spec, label, greedy)
    if ":" in spec:
        return Player(label, "callable", source=load_callable(spec), greedy=greedy)
    if spec.endswith(".pt") or "/" in spec or os.sep in spec:
        return load_checkpoint_player(spec, label, greedy)  # raises FileNotFoundError, naming the path
    close = difflib.get_close_matches(spec, [*BOT_NAMES, *VARIANTS, UNIFORM], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise PlayerError(
        f"unknown player {spec!r}: {hint}a player is a bot ({', '.join(BOT_NAMES)}), a bot variant "
        f"(e.g. far_kiter, or kiter[retreat=2.0;noise=0.1]), '{UNIFORM}', a checkpoint file, or module:function"
    )


def load_checkpoint_player(path: str, label: str, greedy: bool) -> Player:
    from policies import AgentCheckpoint

    model = AgentCheckpoint.load(path)
    return Player(
        label, "checkpoint", source=model, greedy=greedy, env_config=dict((model.config or {}).get("env") or {})
    )


def load_callable(spec: str) -> Callable:
    """The function named by ``module:function`` or ``path/to/file.py:function``.

    A module name is imported with the current directory on sys.path (as ``python -m``
    would), so a user's own ``my_bots.py`` next to them works.
    """
    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise PlayerError(f"bad callable {spec!r}: give module:function, e.g. my_bots:charge")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise PlayerError(f"bad callable {spec!r}: file {module_name!r} does not exist")
            module_spec = importlib.util.spec_from_file_location(f"_player_file_{path.stem}", path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.append(os.getcwd())
            module = importlib.import_module(module_name)
    except PlayerError:
        raise
    except ModuleNotFoundError as exc:
        raise PlayerError(
            f"bad callable {spec!r}: cannot import {exc.name!r} ({exc}); the module must be "
            f"importable from the current directory, or give a file: path/to/bots.py:function"
        ) from None
    except Exception as exc:  # the user's module may fail in any way while importing
        raise PlayerError(
            f"bad callable {spec!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if fn is None:
        public = sorted(n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n]))
        raise PlayerError(
            f"bad callable {spec!r}: module {module_name!r} has no attribute {attr!r} "
            f"(callables there: {', '.join(public[:10]) or 'none'})"
        )
    if not callable(fn):
        raise PlayerError(f"bad callable {spec!r}: {attr!r} is a {type(fn).__name__}, not a function")
    return fn
