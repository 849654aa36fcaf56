"""Run bookkeeping for train.py: episode statistics, Ctrl-C handling, the progress line, resume paths."""
from __future__ import annotations

import datetime
import math
from collections import defaultdict, deque
from pathlib import Path

import numpy as np


class EpisodeLog:
    """Match-weighted means of the env's episode reports: per log window (``pop_means``) and over
    the newest reports that cover at least ``window`` episodes (``recent_mean``, the "last 100")."""

    def __init__(self, window: int = 100):
        self.window, self.recent = window, deque()
        self.sums, self.counts = defaultdict(float), defaultdict(float)

    def add(self, infos) -> int:
        """Take a list of info dicts (each a mean over ``matches`` episodes); return the episode count."""
        episodes = 0
        for info in infos:
            n = float(info.get("matches", 1))
            numeric = {k: float(v) for k, v in info.items() if k != "matches"
                       and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
            for k, v in numeric.items():
                self.sums[k] += v * n
                self.counts[k] += n
            self.recent.append((n, numeric))
            while sum(w for w, _ in self.recent) - self.recent[0][0] >= self.window:
                self.recent.popleft()
            episodes += int(n)
        return episodes

    def pop_means(self) -> dict:
        means = {k: self.sums[k] / self.counts[k] for k in self.sums if self.counts[k] > 0}
        self.sums, self.counts = defaultdict(float), defaultdict(float)
        return means

    def recent_mean(self, key: str) -> float:
        pairs = [(w, info[key]) for w, info in self.recent if key in info]
        total = sum(w for w, _ in pairs)
        return sum(w * v for w, v in pairs) / total if total else float("nan")


class StopFlag:
    """SIGINT handler: the first Ctrl-C asks the loop to stop after the current update."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after this update and saving (Ctrl-C again stops at once)", flush=True)


def resolve_resume(resume) -> tuple[Path, Path]:
    """(run folder, checkpoint) from a run folder or a checkpoint file."""
    path = Path(resume)
    if path.is_dir():
        return path, path / "checkpoints" / "latest.pt"
    return (path.parent.parent if path.parent.name == "checkpoints" else path.parent), path


def format_progress(step, total, sps, ret, win, eta) -> str:
    eta_text = str(datetime.timedelta(seconds=int(max(eta, 0)))) if math.isfinite(eta) else "?"
    win_text = f"  win {win:5.1%}" if math.isfinite(win) else ""
    return (f"step {step:>12,}/{total:,} ({min(step / total, 1):6.1%})  {sps:>9,.0f} SPS  "
            f"return {ret:8.2f}{win_text}  ETA {eta_text}")
