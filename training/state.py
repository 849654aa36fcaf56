"""What a trainer carries from one update to the next, and across --resume: ``TrainerState``.

A checkpoint stores it as plain data under ``trainer_state`` (``to_dict``), so that it loads
with ``torch.load(weights_only=True)``: numbers, strings, lists, dicts and tensors only. The
env's arrays travel as tensors (``to_plain`` / ``from_plain``). ``from_dict`` also reads the
untyped dicts that checkpoints written before this module hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True, order=True)
class Score:
    """How good an evaluated checkpoint is: compared by value, then by the tie-break."""

    value: float
    """the eval.metric over the opponents (mean or worst; mean_rank negated), or the training return"""
    tiebreak: float = 0.0
    """the mean reward over the opponents"""

    def as_list(self) -> list[float]:
        return [self.value, self.tiebreak]

    @classmethod
    def from_list(cls, values) -> Score | None:
        """A Score from [value, tie-break]; None for a missing one or the old "none yet" [-inf, -inf]."""
        if values is None or not math.isfinite(values[0]):
            return None
        return cls(float(values[0]), float(values[1]))


@dataclass(frozen=True)
class EvalRecord:
    """One periodic evaluation: a candidate for the final replay that picks best.pt."""

    global_step: int
    score: Score
    checkpoint: str
    """the step checkpoint's file name, relative to the run's checkpoints folder"""

    def to_dict(self) -> dict:
        return {"global_step": self.global_step, "score": self.score.as_list(), "checkpoint": self.checkpoint}

    @classmethod
    def from_dict(cls, data) -> EvalRecord:
        if isinstance(data, (list, tuple)):  # checkpoints before TrainerState: [step, [score, tie-break], name]
            step, score, name = data
            return cls(int(step), Score(float(score[0]), float(score[1])), str(name))
        return cls(int(data["global_step"]), Score(*map(float, data["score"])), str(data["checkpoint"]))


@dataclass
class TrainerState:
    """Counters, the best result so far and everything a resumed run needs to continue exactly."""

    iteration: int = 0
    """updates done"""
    global_step: int = 0
    """agent-steps trained (live rows only)"""
    episodes: int = 0
    """learner matches finished"""
    elapsed: float = 0.0
    """seconds spent training over every session of the run"""
    model_version: int = 0
    """version of the newest saved checkpoint (1, 2, ...): the database's model_version"""
    fighter_id: int | None = None
    """the database fighter trained, or None"""
    best_score: Score | None = None
    """the best score so far (best.pt's), None before the first"""
    best_eval: dict | None = None
    """best.pt's evaluation results per opponent"""
    evals: list[EvalRecord] = field(default_factory=list)
    """every evaluated checkpoint kept for the final replay (eval.final_candidates > 0)"""
    optimizer: dict | None = None
    """the optimizer's state_dict"""
    torch_rng: torch.Tensor | None = None
    """torch's CPU generator state"""
    league: dict | None = None
    """League.state_dict(): the pool, the curriculum and the opponent draws"""
    env: dict | None = None
    """the envs' state (their arrays, generators and buffers) for an exact resume, or None"""
    episode_log: dict | None = None
    """EpisodeLog.state_dict(): the episode statistics not yet logged"""
    memory: dict | None = None
    """a recurrent policy's state in the saved envs' matches: h, c and starts (tensors), or None"""

    def to_dict(self) -> dict:
        """Plain data for the checkpoint's trainer_state (model_version lives in the checkpoint itself)."""
        return {
            "iteration": self.iteration,
            "global_step": self.global_step,
            "episodes": self.episodes,
            "elapsed": self.elapsed,
            "fighter_id": self.fighter_id,
            "best_score": self.best_score.as_list() if self.best_score is not None else None,
            "best_eval": self.best_eval,
            "evals": [e.to_dict() for e in self.evals],
            "optimizer": self.optimizer,
            "torch_rng": self.torch_rng,
            "league": self.league,
            "env": to_plain(self.env),
            "episode_log": self.episode_log,
            "memory": self.memory,
        }

    @classmethod
    def from_dict(cls, data: dict, model_version: int = 0) -> TrainerState:
        return cls(
            iteration=int(data.get("iteration", 0)),
            global_step=int(data.get("global_step", 0)),
            episodes=int(data.get("episodes", 0)),
            elapsed=float(data.get("elapsed", 0.0)),
            model_version=int(model_version),
            fighter_id=data.get("fighter_id"),
            best_score=Score.from_list(data.get("best_score")),
            best_eval=data.get("best_eval"),
            evals=[EvalRecord.from_dict(e) for e in data.get("evals") or []],
            optimizer=data.get("optimizer"),
            torch_rng=data.get("torch_rng"),
            league=data.get("league"),
            env=from_plain(data.get("env")),
            episode_log=data.get("episode_log"),
            memory=data.get("memory"),
        )


def to_plain(value):
    """Nested dicts and lists with numpy arrays as tensors and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value).copy())
    if isinstance(value, np.generic):
        return value.item()
    return value


def from_plain(value):
    """The inverse of to_plain: tensors back to numpy arrays."""
    if isinstance(value, dict):
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.numpy()
    return value
