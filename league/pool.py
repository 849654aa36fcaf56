"""The opponent pool: frozen snapshots of the learner, fixed fighters and scripted bots.

Each opponent slot of each match draws one entry: the latest snapshot, an older one, a
fixed fighter (a checkpoint trained elsewhere, such as a mode config's best.pt) or a bot,
with the stage's probabilities. Within the older snapshots, within the fixed fighters and
within the bots, entries are drawn uniformly, or, with prioritisation, in proportion to
``(1 - s) ** exponent`` where s is the learner's recent score against them (1 win, 0.5
draw, 0 loss): the opponents the learner still loses to or draws with come up most
(AlphaStar's prioritised fictitious self-play). ``share_caps`` ({name: fraction}) keeps a
named entry under that fraction of its group's share; the rest goes to the others in
proportion to their weights. An opponent the learner can at best draw with would otherwise
take over its group.

The learner's results against every entry are kept as fading sums: each new result first
multiplies the entry's old sums by ``q = 1 - 1 / result_window``, so they weigh about the
last ``result_window`` results (an exponential moving record; k results that arrive together
count as k in a row with their mean score). Those sums give the prioritisation and the pool's ratings (the
Bradley-Terry fit of evaluation.ratings, on the Elo scale).
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from arena.rules import LEARNER
from arena.variants import BotVariant, VariantTable
from configs import fixed_opponent_name
from evaluation.ratings import fit_log_strengths, to_elo
from policies import AgentCheckpoint, CheckpointError, Policy
from policies.network import widen_inputs

BOT, SNAPSHOT, FIXED = "bot", "snapshot", "fixed"
MIN_PRIORITY = 1e-3
"""default floor of a prioritised weight (``priority_floor``), so that no entry is never drawn again"""


@dataclass
class Entry:
    """One opponent the pool can field."""

    id: int
    """index in the pool's entry list (stable: entries are never removed, only retired)"""
    name: str
    """bot name, v<N> for the N-th snapshot, or the fixed fighter's name"""
    kind: str
    """bot, snapshot or fixed"""
    bot: int
    """a bot's row of the pool's variant_table() (its kernel bot id for a built-in bot);
    arena.rules.LEARNER for a network (the trainer drives it)"""
    step: int = 0
    """learner agent-steps when the snapshot was taken"""
    path: str | None = None
    """the network's checkpoint file: a snapshot's relative to the pool's folder, a fixed fighter's absolute"""
    active: bool = True
    """drawn as an opponent (a snapshot is retired when the pool is full)"""
    policy: Policy | None = None
    """the frozen network (snapshots and fixed fighters; loaded from path when needed)"""


@dataclass
class _DrawGroup:
    """One group of a draw (older snapshots, bots or fixed fighters): its entries and share."""

    ids: np.ndarray
    share: float
    """the group's probability of one draw"""
    copies: np.ndarray | None
    """bots only: how many times the stage's bot_names name each (None: once each)"""
    caps: np.ndarray
    """share_caps per entry (np.inf: none)"""


@dataclass
class _DrawPlan:
    newest: int | None
    """the latest snapshot's entry id"""
    latest_share: float
    groups: list[_DrawGroup]


def capped(shares: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Shares (summing to 1) with none above its cap (np.inf: none): a capped entry gives its
    excess to the uncapped ones in proportion to their shares, repeatedly (water-filling).
    When every entry is capped and the caps sum to less than 1, shares follow the caps."""
    shares = np.asarray(shares, dtype=float)
    caps = np.asarray(caps, dtype=float)
    out = shares.copy()
    held = np.zeros(len(out), dtype=bool)
    while True:
        over = (out > caps) & ~held
        if not over.any():
            return out
        held |= over
        free = ~held
        rest = 1.0 - caps[held].sum()
        if not free.any() or rest <= 0.0:  # the capped entries alone fill the group
            out[free] = 0.0
            out[held] = caps[held] / caps[held].sum()
            return out
        out[held] = caps[held]
        base = shares[free].sum()
        out[free] = shares[free] / base * rest if base > 0 else rest / free.sum()


class OpponentPool:
    """Scripted bots, fixed fighters and up to ``pool_size`` frozen snapshots, and the learner's record against each.

    directory: where snapshots are written as checkpoint files (None: memory only).
    write_files: False for the other processes of a distributed run, which keep their snapshots
    in memory and read rank 0's files from ``directory`` when they resume.
    """

    def __init__(
        self,
        bot_names,
        pool_size: int = 16,
        result_window: int = 400,
        prioritized: bool = False,
        priority_exponent: float = 2.0,
        directory=None,
        device="cpu",
        share_caps=None,
        write_files: bool = True,
        obs_size: int | None = None,
        priority_floor: float = MIN_PRIORITY,
    ):
        self.share_caps = {str(k): float(v) for k, v in (share_caps or {}).items()}
        for name, cap in self.share_caps.items():
            if not 0.0 < cap <= 1.0:
                raise ValueError(f"share cap of {name!r} must be in (0, 1], got {cap!r}")
        self.pool_size = int(pool_size)
        self.result_window = float(result_window)
        self.prioritized = bool(prioritized)
        self.priority_exponent = float(priority_exponent)
        self.priority_floor = float(priority_floor)
        self.directory = Path(directory) if directory is not None else None
        self.write_files = bool(write_files)
        self.obs_size = obs_size  # the learner's observation size; narrower fixed fighters are widened
        self.device = torch.device(device)
        self.entries: list[Entry] = []
        self._plans: dict[tuple, _DrawPlan] = {}  # probabilities' groups per stage mix, while the entries stay
        self.bot_ids = np.zeros(0, dtype=np.int32)  # kernel bot id per entry (LEARNER for snapshots), for the arena
        self.score = np.zeros(0)  # learner's summed score against each entry (fading)
        self.games = np.zeros(0)  # results against each entry (fading)
        self.table = VariantTable()  # the bots' rows (the arena's rule: arena/variants.py)
        for name in dict.fromkeys(bot_names):  # one entry per bot; a repeat only weighs (probabilities)
            self._append(Entry(len(self.entries), name, BOT, self.table.row(name)))

    # ------------------------------------------------------------ bots
    @property
    def variants(self) -> list[BotVariant]:
        """The variants behind the table's rows after the built-in bots, in row order (LeagueEnv
        adds them to its arena in this order)."""
        return self.table.variants

    def variant_table(self) -> np.ndarray:
        """The kernels' variant table the pool's bot rows index: the built-in bots, then
        ``variants`` in order."""
        return self.table.array

    # ------------------------------------------------------------ entries
    def _append(self, entry: Entry) -> Entry:
        self._plans.clear()
        self.entries.append(entry)
        self.bot_ids = np.append(self.bot_ids, np.int32(entry.bot))
        self.score = np.append(self.score, 0.0)
        self.games = np.append(self.games, 0.0)
        return entry

    def snapshots(self, active_only: bool = True) -> list[Entry]:
        return [e for e in self.entries if e.kind == SNAPSHOT and (e.active or not active_only)]

    def fixed(self) -> list[Entry]:
        return [e for e in self.entries if e.kind == FIXED]

    def add_fixed(self, path, name: str | None = None) -> Entry:
        """Field a checkpoint trained elsewhere as a fixed opponent (it never learns and is never
        retired). Its name defaults to the run folder it comes from (runs/<run>/checkpoints/x.pt)."""
        path = Path(path)
        loaded = AgentCheckpoint.load(path, device=self.device)  # FileNotFoundError / CheckpointError name the file
        if name is None:
            name = fixed_opponent_name(path)
        taken = {e.name for e in self.entries}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}_{n}", n + 1
        entry = Entry(
            len(self.entries),
            unique,
            FIXED,
            LEARNER,
            int(loaded.global_step),
            path=str(path.resolve()),
            policy=self._frozen(loaded.policy),
        )
        return self._append(entry)

    @property
    def latest(self) -> Entry | None:
        snaps = self.snapshots()
        return snaps[-1] if snaps else None

    def add_snapshot(self, policy: Policy, step: int) -> Entry:
        """Freeze a copy of ``policy`` as the newest entry (written to the pool's folder if it has
        one) and retire the oldest active snapshot beyond pool_size."""
        frozen = copy.deepcopy(policy).to(self.device).eval().requires_grad_(False)
        number = len(self.snapshots(active_only=False)) + 1
        entry = Entry(len(self.entries), f"v{number}", SNAPSHOT, LEARNER, int(step), policy=frozen)
        if self.directory is not None:
            entry.path = f"snapshot_{number:04d}_step_{int(step):012d}.pt"
            if self.write_files:
                self.directory.mkdir(parents=True, exist_ok=True)
                AgentCheckpoint(
                    frozen, model_version=number, global_step=int(step), metrics={"league_snapshot": number}
                ).save(self.directory / entry.path)
        self._append(entry)
        active = self.snapshots()
        for old in active[: max(len(active) - self.pool_size, 0)]:
            old.active = False
        self._plans.clear()
        return entry

    def policy(self, entry_id: int) -> Policy:
        """The frozen network of a snapshot or fixed entry, loaded from its file the first time it is needed."""
        entry = self.entries[entry_id]
        if entry.kind == BOT:
            raise ValueError(f"pool entry {entry.name!r} is a bot, not a network")
        if entry.policy is None:
            # Building the network draws its (discarded) initial weights from torch's generator, on
            # which the opponents' sampling goes on: a resumed run loads here the networks a run
            # that never stopped holds in memory, so the load must leave the generator as it was.
            with torch.random.fork_rng(devices=[]):
                checkpoint = AgentCheckpoint.load(self._file(entry), device=self.device)
            entry.policy = self._frozen(checkpoint.policy)
        return entry.policy

    def _frozen(self, policy: Policy) -> Policy:
        """A fielded network without gradients, reading the learner's observation: one of the basic
        observation in a full-observation league gets zero weights for the numbers it never saw."""
        if self.obs_size is not None and policy.obs_size < self.obs_size:
            policy = widen_inputs(policy, self.obs_size)
        return policy.eval().requires_grad_(False)

    def _file(self, entry: Entry) -> Path:
        """Where a network entry's checkpoint lies (snapshots: in the pool's folder)."""
        if entry.kind == FIXED:
            return Path(entry.path)
        if self.directory is None or entry.path is None:
            raise CheckpointError(f"snapshot {entry.name!r} has no file to load it from")
        return self.directory / entry.path

    # ------------------------------------------------------------ drawing opponents
    def probabilities(self, latest: float, past: float, bots: float, bot_names=None, fixed: float = 0.0) -> np.ndarray:
        """The probability of drawing each entry for one opponent slot, given the stage's mix.

        Missing categories hand their share on: no older snapshot -> the latest; no snapshot
        at all -> the bots; no bot allowed -> the snapshots; no fixed fighter -> the others,
        in proportion. Within the bots, a bot that ``bot_names`` names k times weighs k times
        as much (``[wide, striker, striker]``: the striker three times, every other bot once).
        """
        plan = self._draw_plan(latest, past, bots, bot_names, fixed)
        probs = np.zeros(len(self.entries))
        if plan.newest is not None:
            probs[plan.newest] += plan.latest_share
        for group in plan.groups:
            weights = self._priorities(group.ids)
            if group.copies is not None:
                weights = weights * group.copies
            probs[group.ids] += group.share * capped(weights / weights.sum(), group.caps)
        return probs

    def _draw_plan(self, latest: float, past: float, bots: float, bot_names, fixed: float) -> _DrawPlan:
        """Who is in which group and with what share: fixed until the entries change (a draw
        happens at nearly every step; only the priorities move between them)."""
        key = (latest, past, bots, fixed, None if bot_names is None else tuple(bot_names))
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        copies = Counter(bot_names) if bot_names is not None else None  # a bot named k times weighs k
        snaps = self.snapshots()
        newest = snaps[-1:] if snaps else []
        older = snaps[:-1]
        allowed = set(bot_names) if bot_names is not None else None
        bot_entries = [e for e in self.entries if e.kind == BOT and (allowed is None or e.name in allowed)]
        fixed_entries = self.fixed()
        shares = {"latest": latest, "past": past, "bots": bots, "fixed": fixed if fixed_entries else 0.0}
        if not older:
            shares["latest"], shares["past"] = shares["latest"] + shares["past"], 0.0
        if not newest:
            shares["bots"], shares["latest"] = shares["bots"] + shares["latest"], 0.0
        if not bot_entries:
            shares["latest"], shares["bots"] = shares["latest"] + shares["bots"], 0.0
        total = sum(shares.values())
        if total <= 0:
            raise ValueError("the pool has nothing to draw: no snapshot and no allowed bot")
        groups = []
        for group, share in ((older, shares["past"]), (bot_entries, shares["bots"]), (fixed_entries, shares["fixed"])):
            if group:
                weighed = group is bot_entries and copies is not None
                groups.append(
                    _DrawGroup(
                        ids=np.array([e.id for e in group], dtype=np.int64),
                        share=share / total,
                        copies=np.array([copies[e.name] for e in group]) if weighed else None,
                        caps=np.array([self.share_caps.get(e.name, np.inf) for e in group]),
                    )
                )
        plan = _DrawPlan(newest[0].id if newest else None, shares["latest"] / total, groups)
        self._plans[key] = plan
        return plan

    def _priorities(self, ids: np.ndarray) -> np.ndarray:
        """Relative draw weights of these entries within their group (older snapshots, fixed fighters,
        or bots): uniform, or prioritised by the learner's recent record (an entry without results
        counts as even)."""
        if not self.prioritized:
            return np.ones(len(ids))
        score = np.divide(self.score[ids], self.games[ids], out=np.full(len(ids), 0.5), where=self.games[ids] > 0)
        return np.maximum((1.0 - score) ** self.priority_exponent, self.priority_floor)

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        latest: float,
        past: float,
        bots: float,
        bot_names=None,
        fixed: float = 0.0,
    ) -> np.ndarray:
        """Entry ids for n opponent slots, drawn independently."""
        probs = self.probabilities(latest, past, bots, bot_names, fixed)
        return rng.choice(len(probs), size=n, p=probs).astype(np.int64)

    # ------------------------------------------------------------ results and ratings
    def record(self, entry_ids: np.ndarray, scores: np.ndarray) -> None:
        """Add the learner's scores (1 win, 0.5 draw, 0 loss) against the given entries."""
        entry_ids = np.asarray(entry_ids, dtype=np.int64).reshape(-1)
        scores = np.asarray(scores, dtype=float).reshape(-1)
        k = np.bincount(entry_ids, minlength=len(self.entries)).astype(float)
        total = np.bincount(entry_ids, weights=scores, minlength=len(self.entries))
        fade = (1.0 - 1.0 / self.result_window) ** k
        added = self.result_window * (1.0 - fade)  # sum of q**i for i < k: the weight of k results in a row
        mean = np.divide(total, k, out=np.zeros_like(total), where=k > 0)
        self.score = self.score * fade + mean * added
        self.games = self.games * fade + added

    def recent_scores(self) -> dict:
        """The learner's recent mean score against each active entry that has results."""
        return {
            e.name: float(self.score[e.id] / self.games[e.id])
            for e in self.entries
            if e.active and self.games[e.id] > 0
        }

    def ratings(self) -> dict:
        """Elo-scale ratings of the learner and every active entry it has results against
        (a retired snapshot's record no longer moves, so it is left out)."""
        played = [e for e in self.entries if e.active and self.games[e.id] > 0]
        if not played:
            return {}
        n = len(played) + 1  # player 0 is the learner
        games, wins = np.zeros((n, n)), np.zeros((n, n))
        for k, e in enumerate(played, start=1):
            games[0, k] = games[k, 0] = self.games[e.id]
            wins[0, k] = self.score[e.id]
            wins[k, 0] = self.games[e.id] - self.score[e.id]
        elo = to_elo(fit_log_strengths(games, wins))
        return {"learner": float(elo[0]), **{e.name: float(r) for e, r in zip(played, elo[1:], strict=True)}}

    # ------------------------------------------------------------ resume
    def state_dict(self) -> dict:
        entries = [
            dict(id=e.id, name=e.name, kind=e.kind, bot=e.bot, step=e.step, path=e.path, active=e.active)
            for e in self.entries
        ]
        return dict(entries=entries, score=self.score.tolist(), games=self.games.tolist())

    def load_state_dict(self, state: dict) -> None:
        """Restore entries and records; snapshot networks load from their files when first drawn."""
        self.entries = [Entry(**fields) for fields in state["entries"]]
        self._plans.clear()
        for e in self.entries:  # a bot's row is this pool's, whatever table the saved one had
            if e.kind == BOT:
                e.bot = self.table.row(e.name)
        self.bot_ids = np.array([e.bot for e in self.entries], dtype=np.int32)
        self.score = np.asarray(state["score"], dtype=float)
        self.games = np.asarray(state["games"], dtype=float)
        for e in self.snapshots(active_only=False):
            if self.directory is None or e.path is None or not (self.directory / e.path).is_file():
                raise CheckpointError(f"league snapshot {e.name!r} file {e.path!r} is missing from {self.directory}")
        for e in self.fixed():
            if not Path(e.path).is_file():
                raise CheckpointError(f"league fixed opponent {e.name!r}: its checkpoint {e.path!r} is missing")
