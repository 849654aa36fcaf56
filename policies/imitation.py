"""Behavioural cloning: pretrain a fighter's policy on the frames the game recorded.

    python train.py configs/imitation.yaml --db data/arena.db --imitation.fighters 3
    python train.py configs/aggression.yaml --init-from runs/imitation-<ts>/checkpoints/best.pt

train.py hands a config whose ``mode`` is ``imitation`` to ``train_imitation``. It reads the
selected fighters' frames from the arena database in bulk (``storage.Database.read_frames``:
float32 blobs joined into numpy arrays, no per-frame decoding), turns each frame's
``action_vector`` into the action label, holds out whole episodes, fits the policy head and
trunk by cross-entropy (observation_vector -> the action taken), logs action accuracy to
TensorBoard and writes ordinary checkpoints: ``AgentCheckpoint.load`` reads them, PPO
fine-tunes them with ``--init-from``, ``policies.export`` exports them.

The label of a frame (``imitation.action_encoding``):

======== =================================================================================
argmax   ``action_vector`` has one number per action (10): a one-hot, as the game's client
         sends it (``oneHot(action, 10)``), or scores/probabilities. The label is the index
         of the largest number, the first one on ties (the policy's greedy rule). A vector
         of all zeros means no action was recorded: the frame is dropped and counted.
index    ``action_vector`` is one number, the action index itself (0-9); anything else
         (12, 2.5) is an error naming the episode and frame.
auto     (default) index for vectors of length 1, argmax for length 10, an error otherwise.
======== =================================================================================

Actions: 0-7 move north, north-east, ..., north-west; 8 idle; 9 attack (envs/arena_env.py).
The value head is not trained: its returns depend on reward weights the frames do not fix;
PPO fits it when it fine-tunes the clone.
"""
from __future__ import annotations

import copy
import datetime
import json
import math
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from configs import Config, ConfigError, config_to_dict, save_config
from configs.schema import iso_utc
from policies.checkpoint import AgentCheckpoint, CheckpointError
from policies.network import NUM_ACTIONS, Policy
from policies.runs import StopFlag
from policies.runtime import select_device

ACTION_NAMES = ("north", "north_east", "east", "south_east", "south", "south_west", "west",
                "north_west", "idle", "attack")
"""TensorBoard-friendly names of the 10 actions, for per-action recall."""
EVAL_CHUNK = 65_536
"""Rows per forward pass when scoring the held-out frames (bounded memory for any dataset)."""
SHOWN_FIGHTERS = 10
"""Fighters listed in an error message about an unknown fighter."""


class ImitationDataError(ConfigError):
    """The database or the frames the config selects cannot be cloned from: a missing
    database, an unknown fighter, no matching frames, an unreadable action encoding.
    A ConfigError, so that train.py's command line reports it as one line (exit status 2)."""


# =============================================================================================
# Demonstrations: frames from the database -> (observation, action label) arrays
# =============================================================================================
@dataclass
class Demonstrations:
    """Labelled frames, ordered by episode and frame number."""

    obs: np.ndarray
    """(N, 30) float32 observation_vector"""
    actions: np.ndarray
    """(N,) int64 action labels 0-9"""
    episode_id: np.ndarray
    """(N,) int64 database episode of each frame"""
    dropped: int = 0
    """frames left out because their action_vector recorded no action (all zeros)"""
    selection: str = ""
    """the filters, in words, for logs and error messages"""
    load_time_s: float = 0.0
    """seconds to read and label the frames"""
    encoding: str = ""
    """the action encoding used: argmax or index"""

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episodes(self) -> int:
        return len(np.unique(self.episode_id))


def action_labels(vectors: np.ndarray, encoding: str = "auto", num_actions: int = NUM_ACTIONS,
                  where: str = "the frames") -> tuple[np.ndarray, np.ndarray, str]:
    """(labels int64 (N,), keep bool (N,), encoding used) for action vectors (N, A).

    ``keep`` is False for argmax rows of all zeros (no action recorded). Raises
    ImitationDataError for a length that fits no encoding and for bad index values."""
    width = vectors.shape[1] if vectors.ndim == 2 else 0
    if encoding == "auto":
        encoding = "index" if width == 1 else "argmax" if width == num_actions else None
        if encoding is None:
            raise ImitationDataError(
                f"{where} have action_vector of {width} numbers; imitation reads either {num_actions} "
                f"(one per action: a one-hot or scores, label = argmax) or 1 (the action index). "
                f"Select other episodes, or set imitation.action_encoding")
    if encoding == "argmax":
        if width != num_actions:
            raise ImitationDataError(
                f"imitation.action_encoding is argmax, but {where} have action_vector of {width} numbers, "
                f"not {num_actions} (one per action)")
        keep = (vectors != 0).any(axis=1)
        return vectors.argmax(axis=1).astype(np.int64), keep, encoding
    if encoding == "index":
        if width != 1:
            raise ImitationDataError(
                f"imitation.action_encoding is index, but {where} have action_vector of {width} numbers, not 1")
        values = vectors[:, 0]
        labels = np.rint(values).astype(np.int64)
        bad = (labels != values) | (labels < 0) | (labels >= num_actions)
        if bad.any():
            raise ImitationDataError(
                f"{int(bad.sum())} of {where} carry an action index that is not an integer from 0 to "
                f"{num_actions - 1} (first: {float(values[bad][0])!r}, row {int(np.flatnonzero(bad)[0])})")
        return labels, np.ones(len(labels), dtype=bool), encoding
    raise ImitationDataError(f"imitation.action_encoding must be auto, argmax or index, got {encoding!r}")


def load_demonstrations(db_path, imitation, num_actions: int = NUM_ACTIONS) -> Demonstrations:
    """Read and label the frames ``imitation`` (an ImitationConfig) selects from ``db_path``.

    Raises FileNotFoundError for a missing database and ImitationDataError for an unreadable
    one, an unknown fighter, an empty database or a selection without frames."""
    from storage import Database, StorageError

    if not db_path:
        raise ImitationDataError(
            "imitation reads recorded frames from the arena database: pass --db data/arena.db "
            "(or set db: in the config)")
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"database {str(path)!r} does not exist; record matches into it first "
            f"(python ingest_server.py --db {path}; python -m demos.clone_chaser shows the whole loop)")
    start = time.perf_counter()
    try:
        db = Database.open(path)
    except (StorageError, sqlite3.DatabaseError) as exc:
        raise ImitationDataError(f"cannot read the arena database {str(path)!r}: {exc}") from None
    try:
        fighters = imitation.fighters
        fighters = [fighters] if isinstance(fighters, int) else fighters
        known = {f["id"]: f for f in db.list_fighters()}
        if fighters is not None:
            unknown = [f for f in fighters if f not in known]
            if unknown:
                raise ImitationDataError(
                    f"fighter {unknown[0]!r} (imitation.fighters) is not in {str(path)!r}; "
                    f"{_describe_fighters(db, known)}")
        filters = dict(is_victory=True if imitation.victories_only else None,
                       completed_only=imitation.completed_only, max_rank=imitation.max_rank,
                       since=iso_utc(imitation.since) if imitation.since else None,
                       until=iso_utc(imitation.until) if imitation.until else None)
        selection = _describe_selection(fighters, imitation)
        parts = []
        for fighter in fighters or [None]:
            try:
                frames = db.read_frames(fighter_id=fighter, **filters)
            except ValueError as exc:  # mixed action_vector lengths within the selection
                raise ImitationDataError(f"{selection}: {exc}") from None
            if len(frames):
                parts.append((fighter, frames))
        if not parts:
            raise ImitationDataError(_no_frames_message(db, path, known, fighters, selection))
        widths = {f: frames.action.shape[1] for f, frames in parts}
        if len(set(widths.values())) > 1:
            raise ImitationDataError(
                f"the selected fighters recorded action_vector of different lengths ({widths}, by fighter); "
                "clone from fighters that share one action encoding")
        obs = np.concatenate([frames.observation for _, frames in parts])
        vectors = np.concatenate([frames.action for _, frames in parts])
        episode_id = np.concatenate([frames.episode_id for _, frames in parts])
    except StorageError as exc:
        raise ImitationDataError(f"cannot read frames from {str(path)!r}: {exc}") from None
    finally:
        db.close()
    labels, keep, encoding = action_labels(vectors, imitation.action_encoding, num_actions,
                                           where=f"the frames of {selection}")
    if not keep.any():
        raise ImitationDataError(
            f"all {len(keep):,} frames of {selection} have an action_vector of zeros (no action recorded); "
            "nothing to clone")
    if not keep.all():
        obs, labels, episode_id = obs[keep], labels[keep], episode_id[keep]
    return Demonstrations(obs=np.ascontiguousarray(obs, dtype=np.float32), actions=labels,
                          episode_id=episode_id, dropped=int((~keep).sum()), selection=selection,
                          load_time_s=time.perf_counter() - start, encoding=encoding)


def _describe_selection(fighters, imitation) -> str:
    words = [f"fighters {fighters}" if fighters is not None else "every fighter"]
    if imitation.victories_only:
        words.append("victories only")
    if imitation.max_rank is not None:
        words.append(f"rank <= {imitation.max_rank}")
    if imitation.since:
        words.append(f"since {imitation.since}")
    if imitation.until:
        words.append(f"until {imitation.until}")
    if not imitation.completed_only:
        words.append("open episodes included")
    return ", ".join(words)


def _describe_fighters(db, known: dict) -> str:
    if not known:
        return "the database has no fighters yet"
    shown = [f"{fid} {f['glb_filename']!r} ({db.fighter_stats(fid)['frames']:,} frames)"
             for fid, f in list(known.items())[:SHOWN_FIGHTERS]]
    more = f" and {len(known) - SHOWN_FIGHTERS} more" if len(known) > SHOWN_FIGHTERS else ""
    return "its fighters are " + ", ".join(shown) + more


def _no_frames_message(db, path: Path, known: dict, fighters, selection: str) -> str:
    stats = [db.fighter_stats(f) for f in (fighters if fighters is not None else known)]
    total = sum(s["frames"] for s in stats)
    if not any(db.fighter_stats(f)["frames"] for f in known):
        return (f"the database {str(path)!r} holds no recorded frames ({len(known)} fighters); record "
                "matches through the ingest server first (python -m demos.clone_chaser shows how)")
    episodes = sum(s["episodes"] for s in stats)
    completed = sum(s["completed_episodes"] for s in stats)
    victories = sum(s["victories"] for s in stats)
    return (f"no frames in {str(path)!r} match the selection ({selection}): those fighters have "
            f"{total:,} frames in {episodes} episodes ({completed} completed, {victories} victories); "
            "loosen the imitation.* filters or pick other fighters")


def split_episodes(episode_id: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """A boolean mask of held-out frames: ``holdout`` of the episodes (at least one when > 0),
    drawn with ``seed``. Whole episodes, so that neighbouring frames of one match never sit on
    both sides of the split."""
    episodes = np.unique(episode_id)
    if holdout <= 0:
        return np.zeros(len(episode_id), dtype=bool)
    n_test = max(1, int(round(holdout * len(episodes))))
    if n_test >= len(episodes):
        raise ImitationDataError(
            f"the selection has {len(episodes)} episode(s), too few to hold out {holdout:.0%} of them and "
            "train on the rest; record more matches, or set imitation.holdout 0")
    test_episodes = np.random.default_rng(seed).choice(episodes, n_test, replace=False)
    return np.isin(episode_id, test_episodes)


# =============================================================================================
# The loss and its metrics
# =============================================================================================
@torch.no_grad()
def score(policy: Policy, obs: torch.Tensor, actions: torch.Tensor) -> dict:
    """Cross-entropy, greedy action accuracy and per-action recall of ``policy`` on labelled rows."""
    loss_sum, predicted = 0.0, []
    for start in range(0, len(obs), EVAL_CHUNK):
        logits, _ = policy(obs[start:start + EVAL_CHUNK])
        loss_sum += float(F.cross_entropy(logits, actions[start:start + EVAL_CHUNK], reduction="sum"))
        predicted.append(logits.argmax(-1))
    predicted = torch.cat(predicted)
    hits = (predicted == actions)
    recall = {}
    for a in range(policy.num_actions):
        rows = actions == a
        if rows.any():
            recall[ACTION_NAMES[a] if a < len(ACTION_NAMES) else str(a)] = float(hits[rows].float().mean())
    return dict(loss=loss_sum / max(len(obs), 1), accuracy=float(hits.float().mean()), recall=recall)


# =============================================================================================
# Training
# =============================================================================================
@dataclass
class _Best:
    """The epoch best.pt holds: the highest held-out accuracy, ties broken by the lower held-out
    loss; without a held-out split, the last epoch."""

    key: tuple = (-math.inf, -math.inf)
    accuracy: float = math.nan
    epoch: int = 0
    state_dict: dict = field(default_factory=dict)


def train_imitation(config: Config, run_dir=None, init_from=None, progress: bool | None = None) -> dict:
    """Behavioural cloning as configured (``config.mode == "imitation"``); returns the summary
    also written to <run folder>/summary.json. Called by ``train.train``."""
    import sys

    from torch.utils.tensorboard import SummaryWriter

    cfg = config.imitation
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    device = select_device(config.device)
    demos = load_demonstrations(config.db, cfg)
    heldout = split_episodes(demos.episode_id, cfg.holdout, config.seed)
    train_rows = ~heldout

    policy = Policy(demos.obs.shape[1], NUM_ACTIONS, config.policy.hidden_size)
    if init_from is not None:
        source = AgentCheckpoint.load(init_from)
        shape = lambda p: (p.obs_size, p.num_actions, p.hidden_size)  # noqa: E731
        if shape(source.policy) != shape(policy):
            raise CheckpointError(
                f"--init-from {str(init_from)!r}: its network {shape(source.policy)} (obs, actions, hidden) "
                f"does not fit this run's {shape(policy)}")
        policy.load_state_dict(source.policy.state_dict())
    policy = policy.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=1e-5)
    database, fighter_id = _open_output_database(config, demos)

    run_dir = Path(run_dir) if run_dir else Path(config.runs_dir) / (
        f"{config.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    writer = SummaryWriter(str(run_dir))
    writer.add_text("config", "```\n" + json.dumps(config_to_dict(config), indent=2) + "\n```")
    writer.add_text("imitation/data", f"{len(demos):,} frames from {demos.episodes} episodes ({demos.selection}); "
                                      f"{int(heldout.sum()):,} held out; {demos.dropped:,} without an action")

    # Data on the device once; minibatches are index gathers.
    b_obs = torch.from_numpy(demos.obs[train_rows]).to(device)
    b_actions = torch.from_numpy(demos.actions[train_rows]).to(device)
    h_obs = torch.from_numpy(demos.obs[heldout]).to(device)
    h_actions = torch.from_numpy(demos.actions[heldout]).to(device)
    n_train = len(b_obs)
    num_minibatches = math.ceil(n_train / cfg.batch_size)
    total_updates = cfg.epochs * num_minibatches
    live_line = sys.stdout.isatty() if progress is None else progress
    print(f"imitation: {len(demos):,} frames from {demos.episodes} episodes ({demos.selection}; label "
          f"{demos.encoding}) read in {demos.load_time_s:.2f} s; training on {n_train:,}, holding out "
          f"{len(h_obs):,} ({len(np.unique(demos.episode_id[heldout]))} episodes)"
          + (f"; {demos.dropped:,} frames without an action left out" if demos.dropped else ""), flush=True)

    stop, old_handler = StopFlag(), None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, stop)
    best, update, epoch, last_log = _Best(), 0, 0, -math.inf
    train_stats, held = {}, {}
    start_time = time.time()
    train_episodes = len(np.unique(demos.episode_id[train_rows]))
    try:
        while epoch < cfg.epochs and not stop.requested:
            epoch += 1
            b_inds = torch.randperm(n_train, device=device)
            loss_sum, correct, entropy_sum = 0.0, 0, 0.0
            for start in range(0, n_train, cfg.batch_size):
                if cfg.anneal_lr:
                    optimizer.param_groups[0]["lr"] = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * update / total_updates))
                mb_inds = b_inds[start:start + cfg.batch_size]
                logits, _ = policy(b_obs[mb_inds])
                mb_actions = b_actions[mb_inds]
                loss = F.cross_entropy(logits, mb_actions, label_smoothing=cfg.label_smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                update += 1
                with torch.no_grad():
                    logprobs = torch.log_softmax(logits, -1)
                    loss_sum += float(loss) * len(mb_inds)
                    correct += int((logits.argmax(-1) == mb_actions).sum())
                    entropy_sum += float(-(logprobs.exp() * logprobs).sum())
            train_stats = dict(loss=loss_sum / n_train, accuracy=correct / n_train, entropy=entropy_sum / n_train)
            held = score(policy, h_obs, h_actions) if len(h_obs) else {}
            for k, v in train_stats.items():
                writer.add_scalar(f"imitation/{'train_accuracy' if k == 'accuracy' else k}", v, epoch)
            if held:
                writer.add_scalar("imitation/heldout_loss", held["loss"], epoch)
                writer.add_scalar("imitation/heldout_accuracy", held["accuracy"], epoch)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], epoch)
            writer.add_scalar("charts/samples_per_s", epoch * n_train / max(time.time() - start_time, 1e-9), epoch)
            key = (held["accuracy"], -held["loss"]) if held else (epoch, 0.0)
            if key > best.key:
                best = _Best(key, held.get("accuracy", math.nan), epoch, copy.deepcopy(policy.state_dict()))
            final = epoch == cfg.epochs or stop.requested
            if time.time() - last_log >= config.log_interval or final:
                last_log = time.time()
                line = _progress_line(epoch, cfg.epochs, train_stats, held, best, time.time() - start_time)
                print("\r" + line + "    " if live_line else line, end="" if live_line else "\n", flush=True)
                if database is not None:
                    database.add_training_metrics(fighter_id, run_dir.name, epoch, math.nan, math.nan,
                                                  train_stats["loss"], train_stats["entropy"])
    except KeyboardInterrupt:  # a second Ctrl-C: stop mid-epoch and save what there is
        stop.requested = True
    except BaseException:
        writer.close()
        if database is not None:
            database.close()
        raise
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    run_time = time.time() - start_time
    if live_line:
        print()

    # ---------------------------------------------------------------- evaluation, checkpoints, database
    try:
        latest_state = copy.deepcopy(policy.state_dict())
        if not best.epoch:  # stopped inside the first epoch: the weights there are, as both
            best = _Best(epoch=epoch, state_dict=latest_state)
        policy.load_state_dict(best.state_dict)
        best_held = score(policy, h_obs, h_actions) if len(h_obs) else {}
        best_eval = None
        if config.eval.interval > 0 and epoch > 0:
            from evaluate import evaluate

            best_eval = evaluate(policy, opponents=config.eval.opponents, matches=config.eval.matches,
                                 seed=config.eval.seed, fighters=config.eval.fighters, greedy=config.eval.greedy,
                                 rewards=config.env.rewards, **{**config.env.rules, **config.eval.rules})
            for opponent, r in best_eval.items():
                for key in ("win_rate", "survival_rate", "avg_reward", "knockouts", "ring_outs", "mean_rank",
                            "match_length"):
                    writer.add_scalar(f"eval/{opponent}/{key}", r[key], best.epoch)
            writer.add_scalar("eval/mean_win_rate", np.mean([r["win_rate"] for r in best_eval.values()]), best.epoch)
        for action, recall in best_held.get("recall", {}).items():
            writer.add_scalar(f"imitation/heldout_recall/{action}", recall, best.epoch)

        data_facts = dict(imitation_frames=len(demos), imitation_episodes=demos.episodes,
                          imitation_train_frames=n_train, imitation_heldout_frames=len(h_obs),
                          imitation_selection=demos.selection)
        best_metrics = dict(**data_facts, epoch=best.epoch, heldout_accuracy=best_held.get("accuracy", math.nan),
                            heldout_loss=best_held.get("loss", math.nan))
        if best_eval:
            best_metrics["eval_win_rate"] = float(np.mean([r["win_rate"] for r in best_eval.values()]))
            best_metrics["eval"] = best_eval
        # checkpoints/epoch_N.pt of the last epoch (latest.pt, model version 1) and, when another
        # epoch was better, of that one (best.pt, version 2): registered newest last, so that
        # the server's best-model order (win rate, then reward, then newest) prefers best.pt.
        saved = []
        if epoch > 0:
            same = best.epoch == epoch
            latest_metrics = best_metrics if same else dict(
                **data_facts, epoch=epoch, train_accuracy=train_stats.get("accuracy", math.nan),
                heldout_accuracy=held.get("accuracy", math.nan), heldout_loss=held.get("loss", math.nan))
            policy.load_state_dict(latest_state)
            saved.append((_save(policy, config, fighter_id, 1, ckpt_dir / f"epoch_{epoch:04d}.pt", latest_metrics,
                                ["latest.pt", "best.pt"] if same else ["latest.pt"]), latest_metrics))
            if not same:
                policy.load_state_dict(best.state_dict)
                saved.append((_save(policy, config, fighter_id, 2, ckpt_dir / f"epoch_{best.epoch:04d}.pt",
                                    best_metrics, ["best.pt"]), best_metrics))
        if database is not None:
            for version, (path, metrics) in enumerate(saved, start=1):
                database.add_checkpoint(fighter_id, version, metrics["epoch"], metrics.get("eval_win_rate", 0.0),
                                        _mean_reward(metrics), train_episodes, str(path.resolve()), config.mode)
    finally:
        writer.close()
        if database is not None:
            database.close()

    summary = dict(
        mode="imitation", run_dir=str(run_dir), config=str(run_dir / "config.yaml"), tensorboard=str(run_dir),
        latest=str(ckpt_dir / "latest.pt") if saved else None, best=str(ckpt_dir / "best.pt") if saved else None,
        final=str(saved[0][0]) if saved else None,
        frames=len(demos), episodes=demos.episodes, train_frames=n_train, heldout_frames=len(h_obs),
        heldout_episodes=int(len(np.unique(demos.episode_id[heldout]))), dropped_frames=demos.dropped,
        selection=demos.selection, action_encoding=demos.encoding, load_time_s=round(demos.load_time_s, 3),
        label_counts=np.bincount(demos.actions, minlength=NUM_ACTIONS).tolist(),
        epochs=epoch, best_epoch=best.epoch, train_accuracy=train_stats.get("accuracy"),
        heldout_accuracy=best_held.get("accuracy"), heldout_loss=best_held.get("loss"),
        heldout_recall=best_held.get("recall"), final_heldout_accuracy=held.get("accuracy"),
        best_eval=best_eval, global_step=0, iterations=epoch, updates=update,
        samples_per_s=round(epoch * n_train / max(run_time, 1e-9), 1), run_time_s=round(run_time, 2),
        wall_time_s=round(run_time, 2), interrupted=stop.requested, fighter_id=fighter_id, device=str(device),
        torch_threads=config.torch_threads,
        finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _progress_line(epoch, epochs, train_stats, held, best, elapsed) -> str:
    held_text = (f"  held-out {held['accuracy']:6.1%} (best {best.accuracy:6.1%}, epoch {best.epoch})"
                 if held else "")
    return (f"epoch {epoch:>4}/{epochs}  loss {train_stats['loss']:.4f}  train {train_stats['accuracy']:6.1%}"
            f"{held_text}  {elapsed:6.1f} s")


def _save(policy, config, fighter_id, model_version, path: Path, metrics, aliases) -> Path:
    """Write the immutable checkpoints/epoch_N.pt, then the aliases (latest.pt, best.pt)."""
    ckpt = AgentCheckpoint(policy, config=config_to_dict(config), fighter_id=fighter_id,
                           model_version=model_version, global_step=0, metrics=metrics, trainer_state=None)
    ckpt.save(path)
    for name in aliases:
        ckpt.save(path.parent / name)
    return path


def _mean_reward(metrics: dict) -> float:
    results = (metrics.get("eval") or {}).values()
    return float(np.mean([r["avg_reward"] for r in results])) if results else 0.0


def _open_output_database(config: Config, demos: Demonstrations):
    """The database the clone is registered in (the one its frames came from), as train.py
    registers a PPO run's fighter: a new fighter unless config.fighter_id names one."""
    from storage import Database

    db = Database.open(config.db)
    fighter_id = config.fighter_id
    if fighter_id is None:
        fighter_id = db.register_fighter(config.glb_filename or f"{config.name}.glb", {
            "name": config.name, "mode": config.mode, "trainer": "train.py", "cloned_from": demos.selection})
    elif db.get_fighter(fighter_id) is None:
        db.close()
        raise ImitationDataError(f"fighter_id {fighter_id!r} is not in {config.db!r}; leave it null to register a new fighter")
    return db, fighter_id


def format_summary(summary: dict) -> str:
    """The lines train.py prints at the end of an imitation run."""
    verb = "Stopped" if summary["interrupted"] else "Finished"
    held = summary["heldout_accuracy"]
    lines = [f"\n{verb}: behavioural cloning on {summary['train_frames']:,} frames, {summary['epochs']} epochs "
             f"in {summary['run_time_s']:.0f} s ({summary['samples_per_s']:,.0f} frames/s)",
             f"  run folder  {summary['run_dir']}", f"  latest      {summary['latest']}",
             f"  best        {summary['best']}"
             + (f"  (epoch {summary['best_epoch']}, held-out action accuracy {held:.1%} on "
                f"{summary['heldout_frames']:,} frames)" if held is not None else "")]
    for opponent, r in (summary["best_eval"] or {}).items():
        lo, hi = r["ci95"]
        lines.append(f"  best vs {opponent:<12} win {r['win_rate']:6.1%} [{lo:.1%}, {hi:.1%}]  survival "
                     f"{r['survival_rate']:6.1%}  reward {r['avg_reward']:7.2f}  rank {r['mean_rank']:.2f}  "
                     f"({r['matches']} matches)")
    if summary["best"]:
        lines.append(f"  fine-tune   python train.py configs/aggression.yaml --init-from {summary['best']}")
    return "\n".join(lines)
