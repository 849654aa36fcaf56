"""The run's TensorBoard writer: scalars, the config, evaluation results and replay clips.

Tags follow CleanRL's grouping: ``charts/*`` (returns, win rate, learning rate, SPS),
``losses/*``, ``eval/<opponent>/<figure>``, ``perf/*`` (time split), ``league/*``.
"""

from __future__ import annotations

import json

EVAL_FIGURES = ("win_rate", "survival_rate", "avg_reward", "knockouts", "ring_outs", "mean_rank", "match_length")
"""the figures of an evaluation logged per opponent"""


class RunWriter:
    """A torch SummaryWriter for one run folder.

    purge_step: on resume, the first step the resumed run will log; TensorBoard then drops the
    points an interrupted session wrote at that step or later (after its last checkpoint),
    so no step appears twice. logdir None: a writer that writes nothing (the other ranks of a
    distributed run)."""

    def __init__(self, logdir, purge_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(logdir), purge_step=purge_step) if logdir is not None else None

    def add_scalar(self, tag: str, value, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def add_text(self, tag: str, text: str, step: int | None = None) -> None:
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

    def add_config(self, config: dict) -> None:
        self.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```")

    def add_eval(self, results: dict, step: int, mean_win_rate: float) -> None:
        """eval/<opponent>/<figure> for every opponent of an evaluate() result, eval/mean_win_rate
        and eval/worst_win_rate (the opponent the policy wins least against: with
        ``eval.opponents: [gauntlet]``, the gauntlet's worst case)."""
        for opponent, r in results.items():
            for key in EVAL_FIGURES:
                self.add_scalar(f"eval/{opponent}/{key}", r[key], step)
        self.add_scalar("eval/mean_win_rate", mean_win_rate, step)
        if results:
            self.add_scalar("eval/worst_win_rate", min(r["win_rate"] for r in results.values()), step)

    def add_clip(self, tag: str, clip, step: int) -> None:
        """An animated GIF (evaluation.replay.Clip) into the Images tab, which plays it."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        if self.writer is None:
            return
        image = Summary.Image(height=clip.height, width=clip.width, colorspace=3, encoded_image_string=clip.gif)
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
