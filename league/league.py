"""`League`: the opponent pool, the curriculum and the current stage's env, as train.py drives them.

    league = League(config, run_dir / "league", device)
    vecenv = league.make_env(seed)                  # the learner's rows only
    ...after each rollout:
    league.synchronize()                            # a distributed run: every rank's results, on every rank
    league.maybe_snapshot(policy, global_step)      # every league.snapshot_interval agent-steps
    if league.promotion_due(global_step):           # the curriculum's rule
        vecenv = league.promote(global_step, seed)  # a new env for the next stage
    league.log(writer, global_step, iteration)

Its state (pool entries and records, curriculum position and window, the draw generator)
goes into the checkpoint's trainer state; snapshot weights are files in the league folder.

In a distributed run (training/distributed.py) every rank holds a League. Each plays its
shard of the stage's arenas and records its matches at once, as one process does; after each
rollout, ``synchronize`` rolls the records back to where they stood after the last one and
replays every rank's results in rank order, so that all ranks hold the same pool records and
curriculum window and so draw, prioritise and promote alike. Each rank draws its own
opponents (rank 0 with the generator one process would use) and samples its snapshot
opponents' actions with a generator of its own, so torch's global generator moves alike on
every rank (the update's minibatches depend on it). Only rank 0 writes snapshot files.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from arena import NUM_ACTIONS, OBS_SIZE
from configs import Config, split_name
from league.curriculum import Curriculum, resolve_stages
from league.env import LeagueEnv
from league.pool import OpponentPool
from policies import CheckpointError, read_checkpoint
from training.distributed import Dist, shard


def check_fixed_file(path: str, source: str, hidden_size: int, obs_size: int = OBS_SIZE) -> None:
    """Fail with a message naming ``source`` (the config key) unless ``path`` is a checkpoint of
    the learner's shape. Reads the file only, builds no network: train_specialists calls it for
    league.fixed_opponents before the specialists train (minutes), so a wrong path fails at once."""
    try:
        spec = read_checkpoint(path)["policy"]
    except FileNotFoundError:
        raise CheckpointError(f"{source}: no checkpoint file {path!r}") from None
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    # A fighter of the basic observation plays in a league of the full one: it reads the first 30
    # numbers (the pool widens its first layer with zero weights for the rest).
    seen = obs_size if spec["obs_size"] == OBS_SIZE else spec["obs_size"]
    want, got = (obs_size, NUM_ACTIONS, hidden_size), (seen, spec["num_actions"], spec["hidden_size"])
    if got != want:
        raise CheckpointError(
            f"{source}: {path!r} is a network of {got[0]} obs, {got[1]} actions and hidden size {got[2]}; "
            f"the league runs opponents with the learner's shape {want} (policy.hidden_size)"
        )


def check_fixed_opponents(config: Config) -> None:
    """check_fixed_file for every league.fixed_opponents entry (NAME=PATH or PATH)."""
    for spec in config.league.fixed_opponents:
        check_fixed_file(split_name(spec)[1], "league.fixed_opponents", config.policy.hidden_size, learner_obs(config))


def learner_obs(config: Config) -> int:
    """The learner's observation size (the env's observation kind)."""
    from arena import OBSERVATIONS

    return OBSERVATIONS[config.env.observation]


class League:
    def __init__(
        self,
        config: Config,
        directory,
        device="cpu",
        specialists=(),
        dist: Dist | None = None,
        threads: int | None = None,
    ):
        self.config = config
        self.dist = dist if dist is not None else Dist()
        self.threads = threads  # numba threads stepping this process's arenas (None: numba's setting)
        lc = config.league
        self.stages = resolve_stages(config)
        self.pool = OpponentPool(
            lc.bot_names + [n for s in self.stages for n in s.bot_names],  # one entry per bot (the pool's rule)
            lc.pool_size,
            lc.result_window,
            lc.prioritized,
            lc.priority_exponent,
            directory=directory,
            device=device,
            share_caps=lc.share_caps,
            write_files=self.dist.is_main,
            obs_size=learner_obs(config),
            priority_floor=lc.priority_floor,
        )
        for spec in lc.fixed_opponents:
            name, path = split_name(spec)
            self.add_fixed(path, name, "league.fixed_opponents")
        self.specialists = list(specialists)  # league.specialists as trained (league/specialists.py)
        for sp in self.specialists:
            self.add_fixed(sp["checkpoint"], sp["name"], "league.specialists")
        self.curriculum = Curriculum(self.stages, lc.start_stage)
        rank = self.dist.rank
        self.rng = np.random.default_rng(config.seed if rank == 0 else [config.seed, rank])
        # A distributed run's snapshot opponents sample with their own generator (see above).
        self.generator = torch.Generator(device).manual_seed(config.seed * 7919 + rank) if self.dist.enabled else None
        self._results: list = []  # this rank's results since the last synchronize (distributed runs)
        self.next_snapshot_step = 0
        self.env: LeagueEnv | None = None
        self.promotions: list[str] = []
        self._take_mark()  # the pool records and curriculum window as all ranks agree on them

    def add_fixed(self, path: str, name: str | None = None, source: str = "league.fixed_opponents") -> None:
        """Field a fixed opponent (league.fixed_opponents, league.specialists): a checkpoint of the
        learner's shape. source: the config key that named it, for error messages."""
        check_fixed_file(path, source, self.config.policy.hidden_size, learner_obs(self.config))
        try:
            self.pool.add_fixed(path, name)
        except CheckpointError as exc:  # weights that do not fit the network the file describes
            raise CheckpointError(f"{source}: {exc}") from None

    @property
    def stage(self):
        return self.curriculum.stage

    def make_env(self, seed: int) -> LeagueEnv:
        self.env = LeagueEnv(
            self.stage,
            self.pool,
            seed,
            self.config.env.report_interval,
            self.config.env.rules,
            rng=self.rng,
            greedy_opponents=self.config.league.opponent_greedy,
            on_results=self.record,
            arenas=shard(self.stage.num_arenas, self.dist, f"the arenas of stage {self.stage.name!r}")
            if self.dist.enabled
            else None,
            generator=self.generator,
            threads=self.threads,
            observation=self.config.env.observation,
        )
        return self.env

    def record(self, ids, scores, wins, ranks) -> None:
        """The learner's finished matches: its scores against the opponents (the pool) and its
        wins and ranks (the curriculum); kept for the other ranks in a distributed run."""
        self.pool.record(ids, scores)
        self.curriculum.record(wins, ranks)
        if self.dist.enabled:
            self._results.append((np.array(ids), np.array(scores), np.array(wins), np.array(ranks)))

    def synchronize(self) -> None:
        """Distributed runs: every rank's results since the last call, on every rank, in rank order
        (a no-op in a run of one process, which recorded them as they came)."""
        if not self.dist.enabled:
            return
        everyone = self.dist.gather(self._results)
        score, games, wins, ranks = self._mark  # back to where all ranks agreed, then every rank's matches
        self.pool.score[:] = 0.0  # entries added since (snapshots) start from no results
        self.pool.games[:] = 0.0
        self.pool.score[: len(score)], self.pool.games[: len(games)] = score, games
        self.curriculum.wins.clear()
        self.curriculum.ranks.clear()
        self.curriculum.wins.extend(wins)
        self.curriculum.ranks.extend(ranks)
        for results in everyone:
            for ids, scores, w, r in results:
                self.pool.record(ids, scores)
                self.curriculum.record(w, r)
        self._results = []
        self._take_mark()

    def _take_mark(self) -> None:
        """Remember the records all ranks agree on (after a synchronize, a promotion or a load)."""
        self._mark = (
            self.pool.score.copy(),
            self.pool.games.copy(),
            list(self.curriculum.wins),
            list(self.curriculum.ranks),
        )

    def maybe_snapshot(self, policy, global_step: int) -> bool:
        """Add a frozen snapshot of the learner when one is due (the first at step 0)."""
        if global_step < self.next_snapshot_step:
            return False
        self.pool.add_snapshot(policy, global_step)
        self.next_snapshot_step = global_step + self.config.league.snapshot_interval
        return True

    def promotion_due(self, global_step: int) -> bool:
        return self.curriculum.ready(global_step)

    def promote(self, global_step: int, seed: int) -> LeagueEnv:
        """Close the stage's env, move to the next stage and return its env."""
        old = self.stage
        metric = self.curriculum.metric()
        self.curriculum.promote(global_step)
        self.promotions.append(
            f"step {global_step:,}: {old.name} -> {self.stage.name} "
            f"({old.promote.metric} {metric:.3f} over the stage's last {old.promote.window} matches)"
        )
        if self.env is not None:
            self.env.close()
        self._take_mark()
        return self.make_env(seed)

    def log(self, writer, global_step: int, iteration: int) -> None:
        """Stage chart, pool size, promotion metric; ratings and scores every rating_interval updates."""
        writer.add_scalar("league/stage", self.curriculum.index, global_step)
        writer.add_scalar("league/pool_snapshots", len(self.pool.snapshots()), global_step)
        metric = self.curriculum.metric()
        if math.isfinite(metric) and self.stage.promote is not None:
            writer.add_scalar(f"league/promotion_{self.stage.promote.metric}", metric, global_step)
        while self.promotions:
            writer.add_text("league/promotions", self.promotions.pop(0), global_step)
        interval = self.config.league.rating_interval
        if interval and iteration % interval == 0:
            for name, rating in self.pool.ratings().items():
                writer.add_scalar(f"league_rating/{name}", rating, global_step)
            for name, score in self.pool.recent_scores().items():
                writer.add_scalar(f"league_score_vs/{name}", score, global_step)

    def summary(self) -> dict:
        return dict(
            stage=self.stage.name,
            stage_index=self.curriculum.index,
            stage_history=[dict(stage=self.stages[i].name, from_step=s) for i, s in self.curriculum.history],
            snapshots=len(self.pool.snapshots(active_only=False)),
            ratings=self.pool.ratings(),
            scores=self.pool.recent_scores(),
            specialists=self.specialists,
        )

    def state_dict(self) -> dict:
        return dict(
            pool=self.pool.state_dict(),
            curriculum=self.curriculum.state_dict(),
            rng=self.rng.bit_generator.state,
            next_snapshot_step=self.next_snapshot_step,
        )

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.curriculum.load_state_dict(state["curriculum"])
        self.rng.bit_generator.state = state["rng"]  # rank 0's: the generator one process continues
        if self.dist.rank != 0:  # the others draw apart from it
            self.rng = np.random.default_rng([self.config.seed, self.dist.rank, int(state["next_snapshot_step"])])
        self.next_snapshot_step = state["next_snapshot_step"]
        self._take_mark()
