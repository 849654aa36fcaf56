"""Episode statistics from the env's reports: per log window, and over the last 100 episodes."""

from __future__ import annotations

from collections import defaultdict, deque

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
            numeric = {
                k: float(v)
                for k, v in info.items()
                if k != "matches" and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            }
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

    def state_dict(self) -> dict:
        return {
            "sums": dict(self.sums),
            "counts": dict(self.counts),
            "recent": [[w, dict(info)] for w, info in self.recent],
        }

    def load_state_dict(self, state: dict) -> None:
        self.sums = defaultdict(float, state["sums"])
        self.counts = defaultdict(float, state["counts"])
        self.recent = deque((w, dict(info)) for w, info in state["recent"])
