"""One training run's lifecycle, shared by every trainer (PPO in train.py, behavioural cloning in
training/imitation.py): where it starts from, its folder, TensorBoard, the database and the
fighter it trains, Ctrl-C, the progress line, checkpoints and summary.json.

    start = resolve_start(config, overrides, run_dir=..., resume=..., init_from=..., db=...)
    with Run(start, progress) as run:         # Ctrl-C asks run.stop; errors close everything
        run.create_folder()                   # run folder and config.yaml
        ...build the env and the policy...
        run.open_outputs(fighter_metadata)    # TensorBoard and the database
        while ... and not run.stop.requested:
            ...train...; run.progress(line); run.save_step_checkpoint(policy, metrics, ...)
        summary = run.finish(...)

A run that fails before it saved anything leaves no folder behind: an unknown env id or a
wrong --init-from is an error message, not a half-made run.
"""

from __future__ import annotations

import datetime
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.files import atomic_write_json
from configs import Config, ConfigError, config_to_dict, load_config, save_config
from policies import AgentCheckpoint, CheckpointError, read_checkpoint
from training.distributed import Dist
from training.layout import RunFolder
from training.state import TrainerState
from training.tensorboard import RunWriter

RESEED = 7919
"""a run that cannot restore its envs (see training/vecenv.py) reseeds them with seed + RESEED * iteration"""


class StopFlag:
    """SIGINT (and, in a distributed run, SIGTERM) handler: the first asks the loop to stop
    after the current update; another one stops at once (the run still saves). In a distributed
    run later signals change nothing: torchrun passes a terminal's Ctrl-C on to its workers,
    which got it from the terminal too, and a rank that left mid-update would leave the others
    waiting in a collective; torchrun itself kills what is still running after its timeout."""

    def __init__(self, distributed: bool = False, announce: bool = True):
        self.requested, self.distributed, self.announce = False, distributed, announce

    def __call__(self, signum, frame):
        if self.requested:
            if self.distributed:
                return
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            print("\nCtrl-C: stopping after this update and saving (Ctrl-C again stops at once)", flush=True)


# =============================================================================================
# Where a run starts
# =============================================================================================
@dataclass
class Start:
    """What a run starts from: its config and folder, the checkpoint it resumes, the weights it starts with."""

    config: Config
    folder: RunFolder
    resumed: dict | None = None
    """the checkpoint --resume continues (read_checkpoint's dict), or None for a new run"""
    init_from: str | None = None
    """a checkpoint whose weights start a new run"""
    init_label: str = ""
    """where init_from came from, for error messages"""
    specialists: list = field(default_factory=list)
    """the league's specialists as trained (league/specialists.py): name, checkpoint, run folder, ..."""


def resolve_start(config=None, overrides=(), run_dir=None, resume=None, init_from=None, db=None) -> Start:
    """The config (a Config or YAML path, plus ``--section.key value`` overrides or a dict) and
    the run folder; with ``resume``, the run folder or checkpoint to continue and its saved
    config.yaml (the overrides apply on top). Raises ConfigError, CheckpointError or
    FileNotFoundError naming the problem."""
    resumed = None
    if resume is not None:
        folder, checkpoint = RunFolder.of(resume)
        resumed = read_checkpoint(checkpoint)
        if not resumed.get("trainer_state"):
            raise CheckpointError(
                f"{str(checkpoint)!r} holds no trainer state; use --init-from to start from its weights"
            )
        config = load_config(folder.config if folder.config.is_file() else resumed["config"], overrides)
    else:
        if config is None:
            raise ConfigError("no config given: pass a YAML file such as configs/aggression.yaml, or --resume")
        if not isinstance(config, Config):
            config = load_config(config, overrides)
        folder = RunFolder(run_dir) if run_dir else RunFolder.new(config.runs_dir, config.name)
    if db is not None:
        config.db = str(db)
    return Start(
        config, folder, resumed, None if init_from is None else str(init_from), f"--init-from {str(init_from)!r}"
    )


def load_initial_weights(policy, path, label: str) -> None:
    """Copy a checkpoint's weights into ``policy``; CheckpointError unless the networks have one
    shape. A network of the basic observation starts a full-observation one (widen_inputs: the
    numbers it never saw get zero weights, so it plays as it did)."""
    from policies.network import widen_inputs

    source = AgentCheckpoint.load(path)
    weights = source.policy
    if source.kind == policy.kind and source.obs_size < policy.obs_size and source.observation == "basic":
        weights = widen_inputs(weights, policy.obs_size)

    def shape(p):
        return p.kind, p.obs_size, p.num_actions, p.hidden_size

    if shape(weights) != shape(policy):
        raise CheckpointError(
            f"{label}: its network ({source.kind}, {source.obs_size} obs, {source.num_actions} actions, "
            f"hidden {source.policy.hidden_size}) does not fit this run's ({policy.kind}, {policy.obs_size} obs, "
            f"{policy.num_actions} actions, hidden {policy.hidden_size}); policy.kind, env.observation and "
            "policy.hidden_size must match the checkpoint's"
        )
    policy.load_state_dict(weights.state_dict())


# =============================================================================================
# The run
# =============================================================================================
class Run:
    """A run in progress. Use it as a context manager: inside, the first Ctrl-C sets
    ``stop.requested``; on the way out the SIGINT handler is restored, TensorBoard and the
    database are closed, and a folder this run created is removed again if the run failed
    before writing a checkpoint or a specialist."""

    def __init__(self, start: Start, progress: bool | None = None, dist: Dist | None = None):
        self.config, self.folder = start.config, start.folder
        self.dist = dist if dist is not None else Dist()  # rank 0 alone writes files
        self.resumed = start.resumed is not None
        if self.resumed:
            self.state = TrainerState.from_dict(start.resumed["trainer_state"], start.resumed["model_version"])
        else:
            self.state = TrainerState(fighter_id=self.config.fighter_id)
        self.live_line = sys.stdout.isatty() if progress is None else progress
        self.stop = StopFlag(self.dist.enabled, announce=self.dist.is_main)
        self.writer: RunWriter | None = None
        self.database = None
        self.start_clock()
        self._created = False
        self._old_handlers = {}
        self._agreed_stop = False
        self._saved_step = None  # the global step of this session's last step checkpoint
        self._on_exit = []

    # ------------------------------------------------------------------ opening and closing
    def __enter__(self) -> Run:
        if threading.current_thread() is threading.main_thread():
            signals = [signal.SIGINT] + ([signal.SIGTERM] if self.dist.enabled else [])  # torchrun stops with SIGTERM
            self._old_handlers = {s: signal.signal(s, self.stop) for s in signals}
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for s, handler in self._old_handlers.items():
            signal.signal(s, handler)
        while self._on_exit:
            self._on_exit.pop()()
        self.close()
        if exc_type is not None and self._created and not self.folder.holds_results():
            shutil.rmtree(self.folder.path, ignore_errors=True)

    def on_exit(self, cleanup) -> None:
        """Call ``cleanup()`` when the run ends, whether it finished or failed (last added, first called)."""
        self._on_exit.append(cleanup)

    def create_folder(self) -> None:
        """The run folder with its checkpoints folder and the resolved config.yaml (rank 0)."""
        if not self.dist.is_main:
            return
        self._created = not self.folder.path.exists()
        self.folder.checkpoints.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.folder.config)

    def open_outputs(self, fighter_metadata: dict) -> None:
        """TensorBoard (dropping an interrupted session's points after the resumed step) and
        the database, registering the fighter (with ``fighter_metadata``) unless it has one.
        The other ranks of a distributed run get a writer that writes nothing, and no database."""
        if not self.dist.is_main:
            self.writer = RunWriter(None)
            return
        self.database, self.state.fighter_id = open_database(self.config, self.state.fighter_id, fighter_metadata)
        self.writer = RunWriter(self.folder.path, purge_step=self.state.global_step + 1 if self.resumed else None)
        self.writer.add_config(config_to_dict(self.config))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.database is not None:
            self.database.close()
            self.database = None

    @property
    def stopping(self) -> bool:
        """Whether the run stops after this update: Ctrl-C's flag, or in a distributed run what all
        ranks agreed at the last agree_to_stop (a signal can reach one rank later than another)."""
        return self._agreed_stop if self.dist.enabled else self.stop.requested

    def agree_to_stop(self) -> None:
        """Distributed runs: stop after this update if any rank was asked to (every rank calls it)."""
        if self.dist.enabled:
            self._agreed_stop = self.dist.any(self.stop.requested)

    def start_clock(self) -> None:
        """Training starts now: run_time, SPS and the session's first update count from here."""
        self.start_time = time.time()
        self.start_step = self.state.global_step
        self.start_iteration = self.state.iteration

    # ------------------------------------------------------------------ progress
    def progress(self, line: str) -> None:
        """One status line: rewritten in place on a terminal, else printed as a line of its own (rank 0)."""
        if not self.dist.is_main:
            return
        print("\r" + line + "    " if self.live_line else line, end="" if self.live_line else "\n", flush=True)

    def end_progress(self) -> None:
        if self.live_line and self.dist.is_main:
            print()

    def record_metrics(self, iteration: int, avg_reward: float, win_rate: float, loss: float, entropy: float) -> None:
        """A training_metrics row in the database (if the run has one)."""
        if self.database is not None:
            self.database.add_training_metrics(
                self.state.fighter_id, self.folder.name, iteration, avg_reward, win_rate, loss, entropy
            )

    # ------------------------------------------------------------------ checkpoints
    def write_checkpoint(self, policy, path: Path, aliases=(), metrics=None, trainer_state=None) -> Path:
        """Save ``policy`` as ``path`` and each alias (latest.pt, best.pt), atomically, with the
        run's config, fighter, model version and step."""
        checkpoint = AgentCheckpoint(
            policy,
            config=config_to_dict(self.config),
            fighter_id=self.state.fighter_id,
            model_version=self.state.model_version,
            global_step=self.state.global_step,
            metrics=metrics,
            trainer_state=trainer_state,
        )
        for target in [path, *aliases]:
            checkpoint.save(target)
        return path

    def record_checkpoint(self, path: Path, iteration: int, win_rate: float, avg_reward: float, episodes: int) -> None:
        """A model_checkpoints row for the newest saved version (if the run has a database)."""
        if self.database is not None:
            self.database.add_checkpoint(
                self.state.fighter_id,
                self.state.model_version,
                iteration,
                win_rate,
                avg_reward,
                episodes,
                str(path.resolve()),
                self.config.mode,
            )

    def save_step_checkpoint(
        self, policy, metrics: dict, trainer_state: dict, best: bool = False, record: bool = True
    ) -> Path:
        """The immutable checkpoints/step_N.pt as a new model version, latest.pt (and best.pt)
        refreshed, and a database row when ``record``. Called again at the same step (a run's
        end), it only refreshes latest.pt (and best.pt) with the newer trainer state."""
        state = self.state
        again, self._saved_step = state.global_step == self._saved_step, state.global_step
        if not again:
            state.model_version += 1
        path = self.folder.step_checkpoint(state.global_step)
        aliases = [self.folder.latest] + ([self.folder.best] if best else [])
        if again:
            path, aliases = aliases[0], aliases[1:]
        self.write_checkpoint(policy, path, aliases, metrics, trainer_state)
        if not again and record:
            self.record_checkpoint(
                self.folder.step_checkpoint(state.global_step),
                state.iteration,
                metrics.get("eval_win_rate", metrics.get("win_rate_last_100", 0.0)),
                metrics.get("avg_reward_last_100", 0.0),
                state.episodes,
            )
        return self.folder.step_checkpoint(state.global_step)

    # ------------------------------------------------------------------ the end
    def run_time(self) -> float:
        return time.time() - self.start_time

    def finish(self, final_path: Path | None, **facts) -> dict:
        """Close the outputs, write summary.json (the run's paths, the state's counters and
        ``facts``) and return it."""
        self.close()
        state, folder, run_time = self.state, self.folder, self.run_time()
        summary = dict(
            run_dir=str(folder.path),
            config=str(folder.config),
            tensorboard=str(folder.path),
            latest=str(folder.latest) if folder.latest.is_file() else None,
            best=str(folder.best) if folder.best.is_file() else None,
            final=str(final_path) if final_path else None,
            global_step=state.global_step,
            iterations=state.iteration,
            episodes=state.episodes,
            wall_time_s=round(state.elapsed, 2),
            run_time_s=round(run_time, 2),
            interrupted=self.stopping,
            fighter_id=state.fighter_id,
            torch_threads=self.config.torch_threads,
            finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        )
        summary.update(facts)
        if self.dist.is_main:
            atomic_write_json(folder.summary, summary)
        self.dist.barrier()  # the others return once rank 0 has written (a league reads specialists' summaries)
        return summary


# =============================================================================================
# The database
# =============================================================================================
def open_database(config: Config, fighter_id: int | None, metadata: dict):
    """The storage Database and the fighter being trained: ``fighter_id`` if the database has it
    (ConfigError if not), else a newly registered one. (None, fighter_id) without config.db."""
    if not config.db:
        return None, fighter_id
    from storage import Database

    db = Database.open(config.db)
    if fighter_id is None:
        fighter_id = db.register_fighter(config.glb_filename or f"{config.name}.glb", metadata)
    elif db.get_fighter(fighter_id) is None:
        db.close()
        raise ConfigError(f"fighter_id {fighter_id!r} is not in {config.db!r}; leave it null to register a new fighter")
    return db, fighter_id


def record_evaluated_checkpoint(db_path, model: AgentCheckpoint, results: dict, fighter_id: int | None = None):
    """A model_checkpoints row for a checkpoint evaluated outside training (evaluate.py --db):
    win_rate and avg_reward are the means over the opponents. The fighter is ``fighter_id``,
    else the checkpoint's own if the database has it, else a newly registered one. Returns
    (fighter id, checkpoint row id)."""
    from evaluation.evaluate import mean_over_opponents
    from storage import Database

    config = model.config or {}
    trainer = TrainerState.from_dict(model.trainer_state or {})
    episodes = trainer.episodes or int(model.metrics.get("episodes", 0))
    with Database.open(db_path) as db:
        if fighter_id is None and model.fighter_id is not None and db.get_fighter(model.fighter_id):
            fighter_id = model.fighter_id
        if fighter_id is None:
            fighter_id = db.register_fighter(
                config.get("glb_filename") or f"{config.get('name', 'fighter')}.glb",
                {"name": config.get("name"), "mode": config.get("mode"), "registered_by": "evaluate.py"},
            )
        row = db.add_checkpoint(
            fighter_id,
            int(model.model_version),
            trainer.iteration,
            mean_over_opponents(results, "win_rate"),
            mean_over_opponents(results, "avg_reward"),
            episodes,
            str(Path(model.path).resolve()),
            str(config.get("mode") or "custom"),
        )
    return fighter_id, row


def resume_state(
    state: TrainerState, optimizer, league=None, vecenv=None, episode_log=None, dist=None, memory=None
) -> dict:
    """The trainer_state a checkpoint saves: the state's counters, best and candidates, plus what
    an exact resume restores: the optimizer, torch's generator, the league, the envs, the
    episode statistics not yet logged and a recurrent policy's memory in the envs' matches
    (``memory``: a Memory). A distributed run saves no envs (rank 0 holds a shard)."""
    if dist is not None and dist.enabled:
        vecenv = None
    import torch

    from training.state import to_plain
    from training.vecenv import env_state

    return dict(
        state.to_dict(),
        optimizer=optimizer.state_dict(),
        torch_rng=torch.get_rng_state(),
        league=league.state_dict() if league is not None else None,
        env=to_plain(env_state(vecenv)) if vecenv is not None else None,
        episode_log=episode_log.state_dict() if episode_log is not None else None,
        memory=memory.state_dict() if memory is not None and vecenv is not None else None,
    )
