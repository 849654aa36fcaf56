"""How a run scores its checkpoints as it trains, and which of them it keeps.

- ``PeriodicEvaluation``: every eval.interval updates (and when the run stops), the policy plays
  eval.matches matches against each of eval.opponents; the results go to TensorBoard with a
  replay of match 0, and training/selection.py turns them into a Score.
- ``ReturnScore``: runs without an evaluation (eval.interval 0, Gymnasium envs) score a
  checkpoint by its training return, every checkpoint_interval updates.
- ``Checkpoints``: given a score, whether the checkpoint is the best so far (best.pt), a
  candidate for the final replay, or only due; and saving it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from training.run import Run
from training.selection import config_play, score
from training.state import EvalRecord, Score


@dataclass
class Scored:
    """One checkpoint's score, and its evaluation results when it was evaluated."""

    score: Score | None
    results: dict | None = None
    win_rate: float | None = None
    """the mean win rate over the evaluation opponents"""


class PeriodicEvaluation:
    evaluates = True

    def __init__(self, config, run: Run):
        self.config, self.run = config, run
        self.play = config_play(config)  # (player, matches, seed) -> results per eval opponent

    def due(self, iteration: int, final: bool) -> bool:
        return iteration % self.config.eval.interval == 0 or final

    def __call__(self, policy, global_step: int, avg_reward: float) -> Scored:
        from evaluation.evaluate import mean_over_opponents
        from evaluation.replay import replay_clip

        ev, env = self.config.eval, self.config.env
        results = self.play(policy, ev.matches, ev.seed)
        win_rate = mean_over_opponents(results, "win_rate")
        self.run.writer.add_eval(results, global_step, win_rate)
        # match 0 against the first opponent, an animated GIF under Images
        clip = replay_clip(
            policy,
            ev.opponents[0],
            seed=ev.seed,
            fighters=ev.fighters,
            greedy=ev.greedy,
            rewards=env.rewards,
            rules={**env.rules, **ev.rules},
        )
        self.run.writer.add_clip("eval/replay", clip, global_step)
        return Scored(score(results, ev.metric, ev.aggregate), results, win_rate)


class ReturnScore:
    evaluates = False

    def __init__(self, config):
        self.config = config

    def due(self, iteration: int, final: bool) -> bool:
        return iteration % self.config.checkpoint_interval == 0 or final

    def __call__(self, policy, global_step: int, avg_reward: float) -> Scored:
        return Scored(Score(avg_reward, 0.0) if math.isfinite(avg_reward) else None)


def make_evaluator(config, run: Run):
    """PeriodicEvaluation for arena runs with eval.interval > 0, else ReturnScore."""
    if config.eval.interval > 0 and config.env.name == "arena":
        return PeriodicEvaluation(config, run)
    return ReturnScore(config)


@dataclass
class Save:
    """A checkpoint to save this update."""

    best: bool
    """it is the best so far: best.pt too"""
    row: bool
    """it gets a database row"""


class Checkpoints:
    """Which checkpoints a PPO run saves, and best.pt.

    A scored checkpoint that beats the best score becomes best.pt; every evaluated one is kept
    (a step_N.pt and an EvalRecord) when eval.final_candidates asks for the final replay; and
    latest.pt is refreshed every checkpoint_interval updates. Only evaluated checkpoints get a
    database row in an evaluating run: a training win rate must not rank against evaluation ones.
    """

    def __init__(self, config, state, evaluating: bool):
        self.config, self.state, self.evaluating = config, state, evaluating

    def record(self, scored: Scored | None, step_checkpoint: str) -> Save | None:
        """Take this update's score (None when nothing was scored) into the state's best and
        candidates; return what to save, or None. step_checkpoint: this step's file name."""
        state = self.state
        scored = scored if scored is not None and scored.score is not None else None
        best = scored is not None and scored.score > (state.best_score or Score(-math.inf, -math.inf))
        if best:
            state.best_score, state.best_eval = scored.score, scored.results
        candidate = self.evaluating and scored is not None and self.config.eval.final_candidates > 0
        if candidate:
            state.evals.append(EvalRecord(state.global_step, scored.score, step_checkpoint))
        if best or candidate or state.iteration % self.config.checkpoint_interval == 0:
            return Save(best=best, row=not self.evaluating or (scored is not None and scored.results is not None))
        return None
