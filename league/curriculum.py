"""Curriculum stages and the promotion rule.

A stage fixes the ring (fighters per arena, learner slots, arenas), the opponent mix and
the reward weights. The learner moves to the next stage when its record over the last
``promote.window`` training matches of the stage reaches the threshold (win rate at or
above it, or mean rank at or below it), once it has trained ``min_steps`` in the stage;
``max_steps`` promotes regardless. The last stage never ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from configs import Config, PromotionConfig


@dataclass
class Stage:
    """A stage with every key resolved (the league's and env's values filled in)."""

    index: int
    name: str
    fighters: int
    learners: int
    num_arenas: int
    latest: float
    past: float
    bots: float
    bot_names: list
    rewards: object
    promote: PromotionConfig | None
    fixed: float = 0.0


def resolve_stages(config: Config) -> list[Stage]:
    """The config's curriculum as resolved stages (one stage from env.* when there are none)."""
    league, env = config.league, config.env
    if not league.stages:
        return [
            Stage(
                0,
                "stage0",
                env.fighters_per_arena,
                1,
                env.num_arenas,
                league.latest,
                league.past,
                league.bots,
                list(league.bot_names),
                env.rewards,
                None,
                league.fixed,
            )
        ]

    def pick(value, default):
        return default if value is None else value

    stages = []
    for n, s in enumerate(league.stages):
        last = n == len(league.stages) - 1
        stages.append(
            Stage(
                n,
                s.name or f"stage{n}",
                s.fighters,
                s.learners,
                pick(s.num_arenas, env.num_arenas),
                pick(s.latest, league.latest),
                pick(s.past, league.past),
                pick(s.bots, league.bots),
                list(pick(s.bot_names, league.bot_names)),
                pick(s.rewards, env.rewards),
                None if last else s.promote,
                pick(s.fixed, league.fixed),
            )
        )
    return stages


class Curriculum:
    """The current stage and the learner's recent record in it."""

    def __init__(self, stages: list[Stage], start: int = 0, start_step: int = 0):
        if not 0 <= start < len(stages):
            raise ValueError(f"start stage {start} is not one of the {len(stages)} stages")
        self.stages = stages
        self.index = start
        self.stage_start_step = start_step
        self.history = [(start, start_step)]  # (stage index, agent-step it began at)
        self._reset_window()

    def _reset_window(self) -> None:
        rule = self.stage.promote
        self.wins = deque(maxlen=rule.window if rule else 1)
        self.ranks = deque(maxlen=rule.window if rule else 1)

    @property
    def stage(self) -> Stage:
        return self.stages[self.index]

    def record(self, wins, ranks) -> None:
        """The learner's finished matches: win (sole first place) and rank, one entry per learner slot."""
        self.wins.extend(np.asarray(wins, dtype=float).tolist())
        self.ranks.extend(np.asarray(ranks, dtype=float).tolist())

    def metric(self) -> float:
        """The promotion metric over the window so far (nan before any match)."""
        rule = self.stage.promote
        values = self.ranks if rule is not None and rule.metric == "mean_rank" else self.wins
        return float(np.mean(values)) if values else float("nan")

    def ready(self, global_step: int) -> bool:
        """Whether the promotion rule is met now."""
        rule = self.stage.promote
        if rule is None or self.index == len(self.stages) - 1:
            return False
        steps = global_step - self.stage_start_step
        if steps < rule.min_steps:
            return False
        if rule.max_steps is not None and steps >= rule.max_steps:
            return True
        if len(self.wins) < rule.window:
            return False
        value = self.metric()
        return value >= rule.threshold if rule.metric == "win_rate" else value <= rule.threshold

    def promote(self, global_step: int) -> Stage:
        """Move to the next stage; its record starts empty."""
        self.index += 1
        self.stage_start_step = global_step
        self.history.append((self.index, global_step))
        self._reset_window()
        return self.stage

    def state_dict(self) -> dict:
        return dict(
            index=self.index,
            stage_start_step=self.stage_start_step,
            history=list(self.history),
            wins=list(self.wins),
            ranks=list(self.ranks),
        )

    def load_state_dict(self, state: dict) -> None:
        self.index = state["index"]
        self.stage_start_step = state["stage_start_step"]
        self.history = [tuple(h) for h in state["history"]]
        self._reset_window()
        self.record(state["wins"], state["ranks"])
