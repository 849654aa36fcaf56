"""Checkpoint files: a trained fighter's weights with everything needed to use or resume it.

A checkpoint is a ``torch.save`` dict:

=================== ===========================================================================
key                 contents
=================== ===========================================================================
format              ``"wrestling-arena-agent"`` (anything else is not ours)
format_version      ``1``
policy              network: kind (``mlp`` or ``lstm``), obs_size, num_actions, hidden_size
                    (files written before policy.kind existed lack kind: they are ``mlp``)
state_dict          the network weights
observation         ``basic`` (the game's 30 numbers), ``full`` (48) or None (a Gymnasium env's own)
observation_space   ``{"shape": [30], "dtype": "float32"}``
action_space        ``{"n": 10}``
config              the resolved training config (a plain dict) or None
fighter_id          the database fighter id, or None
model_version       version number of this fighter's model (1, 2, ... per saved checkpoint)
global_step         agent-steps trained
metrics             latest training/eval figures (returns, win rates, ...)
trainer_state       optimizer, counters and RNG states for ``train.py --resume`` (or None)
created_at          UTC time of writing, ISO 8601
=================== ===========================================================================

Files are written atomically: to a temporary name in the same folder, then renamed, so a
reader never sees half a checkpoint even if training is killed mid-write.
"""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import numpy as np
import torch

from common.files import atomic_write_bytes
from policies.network import POLICY_KINDS, Policy, RecurrentPolicy, build_policy

FORMAT = "wrestling-arena-agent"
FORMAT_VERSION = 1
LATEST_NAME = "latest.pt"
"""a run's newest checkpoint, refreshed at every save (what --resume continues from)"""
BEST_NAME = "best.pt"
"""a run's best checkpoint by its evaluations (what gets exported and served)"""


class CheckpointError(ValueError):
    """A file is not a readable checkpoint of this project (wrong kind, corrupt or incompatible)."""


class AgentCheckpoint:
    """A policy plus its metadata; the product description's model-loading API.

    >>> model = AgentCheckpoint.load("runs/aggression-.../checkpoints/best.pt")
    >>> actions, values = model.get_action_and_value(obs)          # obs: float32 (n, 30)

    A recurrent checkpoint (``model.recurrent``, policy.kind lstm) also takes and returns the
    fighters' memory: pass ``state=None`` at the start of a match, then the state it returned::

    >>> actions, values, state = model.get_action_and_value(obs, state)

    ``get_action_and_value`` is greedy (argmax) by default, which is what evaluation and the
    game want; pass ``greedy=False`` to sample from the policy as during training.
    A 1-D observation (30,) gives a scalar action and value.
    ``model.observation`` says which observation it reads: ``basic`` (30 numbers) or ``full`` (48).
    """

    def __init__(
        self,
        policy: Policy | RecurrentPolicy,
        config: dict | None = None,
        fighter_id: int | None = None,
        model_version: int = 0,
        global_step: int = 0,
        metrics: dict | None = None,
        trainer_state: dict | None = None,
        path: str | None = None,
        observation: str | None = None,
    ):
        self.policy = policy
        self.observation = observation if observation is not None else observation_of(policy.obs_size, config)
        self.config = config
        self.fighter_id = fighter_id
        self.model_version = model_version
        self.global_step = global_step
        self.metrics = dict(metrics or {})
        self.trainer_state = trainer_state
        self.path = path

    @property
    def obs_size(self) -> int:
        return self.policy.obs_size

    @property
    def num_actions(self) -> int:
        return self.policy.num_actions

    @property
    def kind(self) -> str:
        """policy.kind: ``mlp`` or ``lstm``."""
        return self.policy.kind

    @property
    def recurrent(self) -> bool:
        """Whether the policy has memory (takes and returns a state)."""
        return self.policy.recurrent

    # ------------------------------------------------------------------ inference
    def initial_state(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """A recurrent policy's memory at the start of a match: (h, c), zeros of shape (n, hidden)
        ((hidden,) when n is None, for one fighter's 1-D observation)."""
        if not self.recurrent:
            raise TypeError("a feed-forward (mlp) checkpoint has no state")
        shape = (self.policy.hidden_size,) if n is None else (int(n), self.policy.hidden_size)
        return np.zeros(shape, dtype=np.float32), np.zeros(shape, dtype=np.float32)

    def get_action_and_value(self, obs, state=None, greedy: bool = True):
        """Actions (int64) and values (float32) as numpy for a batch of observations, and for a
        recurrent checkpoint the new state (h, c) as a third value (``state=None``: fresh memory)."""
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if batch.ndim != 2 or batch.shape[1] != self.obs_size:
            raise ValueError(
                f"observations must have shape (n, {self.obs_size}) or ({self.obs_size},), got {obs.shape}"
                + (f" (this checkpoint reads the {self.observation} observation)" if self.observation else "")
            )
        device = next(self.policy.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(device)
        if not self.recurrent:
            if state is not None:
                raise TypeError("this checkpoint is feed-forward (policy.kind mlp): it takes no state")
            actions, values = self.policy.act(x, greedy=greedy)
        else:
            h, c = self._state_tensors(state, len(batch), single, device)
            actions, values, (h, c) = self.policy.act(x, (h, c), greedy=greedy)
            h, c = h.cpu().numpy(), c.cpu().numpy()
        actions, values = actions.cpu().numpy(), values.cpu().numpy()
        if single:
            out = int(actions[0]), float(values[0])
            return out if not self.recurrent else (*out, (h[0], c[0]))
        return (actions, values) if not self.recurrent else (actions, values, (h, c))

    def _state_tensors(self, state, n: int, single: bool, device):
        hidden = self.policy.hidden_size
        if state is None:
            return self.policy.initial_state(n, device)
        want = (hidden,) if single else (n, hidden)
        if not isinstance(state, tuple | list) or len(state) != 2:
            raise ValueError(f"state must be the (h, c) pair get_action_and_value returned, each of shape {want}")
        h, c = (np.asarray(part, dtype=np.float32) for part in state)
        if h.shape != want or c.shape != want:
            raise ValueError(f"state (h, c) must be two arrays of shape {want}, got {h.shape} and {c.shape}")
        h, c = (torch.from_numpy(np.ascontiguousarray(part.reshape(n, hidden))).to(device) for part in (h, c))
        return h, c

    def __call__(self, obs) -> np.ndarray:
        """Greedy actions for a batch: makes a feed-forward checkpoint usable wherever a callable policy is."""
        if self.recurrent:
            raise TypeError(
                "a recurrent checkpoint needs its state from call to call: use "
                "get_action_and_value(obs, state), or evaluation's players, which keep it"
            )
        return self.get_action_and_value(obs, greedy=True)[0]

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "policy": {
                "kind": self.policy.kind,
                "obs_size": self.policy.obs_size,
                "num_actions": self.policy.num_actions,
                "hidden_size": self.policy.hidden_size,
            },
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.policy.state_dict().items()},
            "observation": self.observation,
            "observation_space": {"shape": [self.policy.obs_size], "dtype": "float32"},
            "action_space": {"n": self.policy.num_actions},
            "config": self.config,
            "fighter_id": self.fighter_id,
            "model_version": int(self.model_version),
            "global_step": int(self.global_step),
            "metrics": self.metrics,
            "trainer_state": self.trainer_state,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, path) -> Path:
        """Write atomically (temporary file in the same folder, fsync, rename)."""
        path = Path(path)
        atomic_torch_save(self.to_dict(), path)
        self.path = str(path)
        return path

    @classmethod
    def load(cls, path, device: str | torch.device = "cpu") -> AgentCheckpoint:
        """Load a checkpoint; raise FileNotFoundError or CheckpointError saying what is wrong."""
        data = read_checkpoint(path)
        spec = data["policy"]
        policy = build_policy(spec.get("kind", "mlp"), spec["obs_size"], spec["num_actions"], spec["hidden_size"])
        try:
            policy.load_state_dict(data["state_dict"])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"{str(path)!r}: weights do not fit the network it describes ({spec}): {exc}"
            ) from None
        policy.to(device).eval()
        return cls(
            policy,
            config=data.get("config"),
            fighter_id=data.get("fighter_id"),
            model_version=data.get("model_version", 0),
            global_step=data.get("global_step", 0),
            metrics=data.get("metrics"),
            trainer_state=data.get("trainer_state"),
            path=str(path),
            observation=data.get("observation"),
        )


def observation_of(obs_size: int, config: dict | None = None) -> str | None:
    """The observation kind of a network reading ``obs_size`` numbers: the training config's
    env.observation when it has one, else basic for 30 and full for 48 (None for a Gymnasium env's)."""
    from arena.spec import OBSERVATIONS

    env = (config or {}).get("env") or {}
    if env.get("name") == "gymnasium":
        return None
    kind = env.get("observation")
    if kind in OBSERVATIONS and OBSERVATIONS[kind] == obs_size:
        return kind
    return next((k for k, size in OBSERVATIONS.items() if size == obs_size), None)


def _example_checkpoint(folder: Path) -> Path | None:
    """A checkpoint file to suggest for a folder: a latest.pt in it or one level down (a run
    folder's checkpoints/latest.pt), else the newest .pt inside it."""
    for candidate in (folder / LATEST_NAME, *sorted(folder.glob(f"*/{LATEST_NAME}"))):
        if candidate.is_file():
            return candidate
    files = sorted(folder.glob("*.pt"), key=lambda f: f.stat().st_mtime)
    return files[-1] if files else None


def read_checkpoint(path) -> dict:
    """The raw checkpoint dict, validated; errors say whether the file is missing, corrupt or foreign."""
    path = Path(path)
    if path.is_dir():
        example = _example_checkpoint(path)
        if example is None:
            raise CheckpointError(
                f"{str(path)!r} is a folder with no checkpoint in it; give a checkpoint file "
                "such as runs/<run>/checkpoints/latest.pt"
            )
        raise CheckpointError(f"{str(path)!r} is a folder; give a checkpoint file such as {str(example)!r}")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt pickle can fail in any way (IndexError, KeyError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a readable checkpoint (corrupt, truncated, or not written by "
            f"torch.save of plain data): {first}"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = sorted(data)[:8] if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{str(path)!r} is not a {FORMAT} checkpoint (found {found}); "
            "checkpoints come from train.py or AgentCheckpoint.save"
        )
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{str(path)!r} has checkpoint format version {data.get('format_version')!r}; "
            f"this code reads version {FORMAT_VERSION}"
        )
    for key in ("policy", "state_dict"):
        if key not in data:
            raise CheckpointError(f"{str(path)!r} lacks {key!r}; the file is incomplete")
    kind = data["policy"].get("kind", "mlp") if isinstance(data["policy"], dict) else None
    if kind not in POLICY_KINDS:
        raise CheckpointError(
            f"{str(path)!r} holds a policy of kind {kind!r}; this code reads {', '.join(POLICY_KINDS)}"
        )
    return data


def step_checkpoint_name(global_step: int) -> str:
    """The file name a trainer gives the checkpoint of one agent-step count (never overwritten)."""
    return f"step_{int(global_step):012d}.pt"


def epoch_checkpoint_name(epoch: int) -> str:
    """The file name behavioural cloning gives the checkpoint of one epoch."""
    return f"epoch_{int(epoch):04d}.pt"


def atomic_torch_save(obj, path) -> None:
    """torch.save to memory, then written atomically over ``path`` (common.files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())
