"""A training run's folder: what it holds and what each file is called.

    runs/<name>-<timestamp>/
        config.yaml            the resolved config (every key, defaults included)
        events.out.tfevents.*  TensorBoard
        checkpoints/           step_N.pt (never overwritten; epoch_N.pt for cloning), latest.pt, best.pt
        summary.json           what the run did, written when it ends
        league/                frozen snapshots of the learner (self-play runs)
        specialists/<name>/    run folders of the specialists a league trains first

Every module that reads or writes a run goes through ``RunFolder``; the checkpoint file
names (latest.pt, best.pt, step_N.pt) are the checkpoint format's (policies/checkpoint.py),
and the checkpoints folder's name is configs.names.CHECKPOINTS_DIR (a fixed opponent's
default name is its run folder's, found through it).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from configs.names import CHECKPOINTS_DIR
from policies.checkpoint import BEST_NAME, LATEST_NAME, epoch_checkpoint_name, step_checkpoint_name

CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
LEAGUE_DIR = "league"
SPECIALISTS_DIR = "specialists"


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is created until the run starts)."""

    path: Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def new(cls, runs_dir, name: str) -> RunFolder:
        """<runs_dir>/<name>-<local time stamp>."""
        return cls(Path(runs_dir) / f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")

    @classmethod
    def of(cls, run_or_checkpoint) -> tuple[RunFolder, Path]:
        """(run folder, checkpoint) from a run folder (its latest.pt) or a checkpoint file in one."""
        path = Path(run_or_checkpoint)
        if path.is_dir():
            folder = cls(path)
            return folder, folder.latest
        parent = path.parent.parent if path.parent.name == CHECKPOINTS_DIR else path.parent
        return cls(parent), path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def summary(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def latest(self) -> Path:
        return self.checkpoints / LATEST_NAME

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST_NAME

    def step_checkpoint(self, global_step: int) -> Path:
        return self.checkpoints / step_checkpoint_name(global_step)

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / epoch_checkpoint_name(epoch)

    @property
    def league(self) -> Path:
        return self.path / LEAGUE_DIR

    @property
    def specialists(self) -> Path:
        return self.path / SPECIALISTS_DIR

    def holds_results(self) -> bool:
        """A checkpoint or a specialist is in it: a failed run leaves it (and its results) behind."""
        return any(self.checkpoints.glob("*.pt")) or self.specialists.exists()

    def specialist(self, name: str) -> RunFolder:
        return RunFolder(self.specialists / name)
