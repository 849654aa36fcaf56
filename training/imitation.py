"""Behavioural cloning: pretrain a fighter's policy on the frames the game recorded.

    python train.py configs/imitation.yaml --db data/arena.db --imitation.fighters 3
    python train.py configs/aggression.yaml --init-from runs/imitation-<ts>/checkpoints/best.pt

train.py hands a config whose ``mode`` is ``imitation`` to ``train_imitation``. It reads the
demonstrations (training/demonstrations.py: the selected fighters' frames, each labelled with
the action it took), holds out whole episodes, fits the policy head and trunk by
cross-entropy (observation_vector -> the action taken), logs action accuracy to TensorBoard
and writes ordinary checkpoints on the same run lifecycle as PPO (training/run.py):
``AgentCheckpoint.load`` reads them, PPO fine-tunes them with ``--init-from``,
``policies.export`` exports them.

The value head is not trained: its returns depend on reward weights the frames do not fix;
PPO fits it when it fine-tunes the clone.

A recurrent policy (policy.kind lstm) learns from whole episodes in order: each epoch deals the
training episodes, shuffled, into parallel streams; memory starts afresh at each episode's first
frame and is carried from one gradient step (``imitation.sequence_length`` frames of every
stream) to the next, as it is carried when the fighter plays (truncated backpropagation
through time). The held-out episodes are scored the same way, each from its first frame.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from arena.spec import ACTION_NAMES, NUM_ACTIONS
from policies.network import Policy, build_policy
from policies.runtime import select_device
from training.demonstrations import Demonstrations, load_demonstrations, split_episodes
from training.run import Run, Start, load_initial_weights

EVAL_CHUNK = 65_536
"""Rows per forward pass when scoring the held-out frames (bounded memory for any dataset)."""


# =============================================================================================
# The loss and its metrics
# =============================================================================================
@torch.no_grad()
def score(policy: Policy, obs: torch.Tensor, actions: torch.Tensor, episode_id: np.ndarray | None = None) -> dict:
    """Cross-entropy, greedy action accuracy and per-action recall of ``policy`` on labelled rows
    (a recurrent policy plays each episode of ``episode_id`` from its first frame)."""
    if policy.recurrent:
        logits = torch.empty((len(obs), policy.num_actions), device=obs.device)
        for rows, starts, state in episode_streams(policy, episode_id, None, EVAL_CHUNK, 256, obs.device):
            valid = rows >= 0
            out, _, new_state = policy.forward_sequence(obs[rows.clamp(min=0)], state, starts)
            state[0].copy_(new_state[0]), state[1].copy_(new_state[1])
            logits[rows[valid]] = out[valid]
        loss_sum = float(F.cross_entropy(logits, actions, reduction="sum"))
        predicted = logits.argmax(-1)
    else:
        loss_sum, predicted = 0.0, []
        for start in range(0, len(obs), EVAL_CHUNK):
            logits, _ = policy(obs[start : start + EVAL_CHUNK])
            loss_sum += float(F.cross_entropy(logits, actions[start : start + EVAL_CHUNK], reduction="sum"))
            predicted.append(logits.argmax(-1))
        predicted = torch.cat(predicted)
    hits = predicted == actions
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


def train_imitation(start: Start, progress: bool | None = None) -> dict:
    """Behavioural cloning as configured (``config.mode == "imitation"``); returns the summary
    also written to <run folder>/summary.json. Called by ``train.train``."""
    config = start.config
    cfg = config.imitation
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002 (seeds numpy's global generator for any library that uses it)
    torch.set_num_threads(config.torch_threads)
    device = select_device(config.device)
    demos = load_demonstrations(config.db, cfg, observation=config.env.observation)
    heldout = split_episodes(demos.episode_id, cfg.holdout, config.seed)

    policy = build_policy(config.policy.kind, demos.obs.shape[1], NUM_ACTIONS, config.policy.hidden_size)
    if start.init_from is not None:
        load_initial_weights(policy, start.init_from, start.init_label)
    policy = policy.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=cfg.learning_rate, eps=1e-5)
    with Run(start, progress) as run:
        run.create_folder()
        run.open_outputs(
            {"name": config.name, "mode": config.mode, "trainer": "train.py", "cloned_from": demos.selection}
        )
        run.writer.add_text(
            "imitation/data",
            f"{len(demos):,} frames from {demos.episodes} episodes "
            f"({demos.selection}); {int(heldout.sum()):,} held out; "
            f"{demos.dropped:,} without an action",
        )
        return clone(run, demos, heldout, policy, optimizer, device)


def clone(run: Run, demos: Demonstrations, heldout: np.ndarray, policy, optimizer, device) -> dict:
    """The epochs over the demonstrations, then the checkpoints, their evaluation and the summary."""
    config, writer = run.config, run.writer
    cfg = config.imitation
    train_rows = ~heldout
    # Data on the device once; minibatches are index gathers.
    b_obs = torch.from_numpy(demos.obs[train_rows]).to(device)
    b_actions = torch.from_numpy(demos.actions[train_rows]).to(device)
    h_obs = torch.from_numpy(demos.obs[heldout]).to(device)
    h_actions = torch.from_numpy(demos.actions[heldout]).to(device)
    b_episodes, h_episodes = demos.episode_id[train_rows], demos.episode_id[heldout]
    n_train = len(b_obs)
    total_updates = cfg.epochs * updates_per_epoch(policy, b_episodes, cfg)
    print(
        f"imitation: {len(demos):,} frames from {demos.episodes} episodes ({demos.selection}; label "
        f"{demos.encoding}) read in {demos.load_time_s:.2f} s; training on {n_train:,}, holding out "
        f"{len(h_obs):,} ({len(np.unique(demos.episode_id[heldout]))} episodes)"
        + (f"; {demos.dropped:,} frames without an action left out" if demos.dropped else ""),
        flush=True,
    )

    best, update, epoch, last_log = _Best(), 0, 0, -math.inf
    train_stats, held = {}, {}
    run.start_clock()
    try:
        while epoch < cfg.epochs and not run.stop.requested:
            epoch += 1
            if policy.recurrent:
                loss_sum, correct, entropy_sum, update = recurrent_epoch(
                    policy, optimizer, b_obs, b_actions, b_episodes, cfg, update, total_updates, device
                )
            else:
                loss_sum, correct, entropy_sum, update = feedforward_epoch(
                    policy, optimizer, b_obs, b_actions, cfg, update, total_updates
                )
            train_stats = dict(loss=loss_sum / n_train, accuracy=correct / n_train, entropy=entropy_sum / n_train)
            held = score(policy, h_obs, h_actions, h_episodes) if len(h_obs) else {}
            for k, v in train_stats.items():
                writer.add_scalar(f"imitation/{'train_accuracy' if k == 'accuracy' else k}", v, epoch)
            if held:
                writer.add_scalar("imitation/heldout_loss", held["loss"], epoch)
                writer.add_scalar("imitation/heldout_accuracy", held["accuracy"], epoch)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], epoch)
            writer.add_scalar("charts/samples_per_s", epoch * n_train / max(run.run_time(), 1e-9), epoch)
            key = (held["accuracy"], -held["loss"]) if held else (epoch, 0.0)
            if key > best.key:
                best = _Best(key, held.get("accuracy", math.nan), epoch, copy.deepcopy(policy.state_dict()))
            final = epoch == cfg.epochs or run.stop.requested
            if time.time() - last_log >= config.log_interval or final:
                last_log = time.time()
                run.progress(_progress_line(epoch, cfg.epochs, train_stats, held, best, run.run_time()))
                run.record_metrics(epoch, math.nan, math.nan, train_stats["loss"], train_stats["entropy"])
    except KeyboardInterrupt:  # a second Ctrl-C: stop mid-epoch and save what there is
        run.stop.requested = True
    run_time = run.run_time()
    run.state.iteration, run.state.elapsed = epoch, run_time
    run.end_progress()

    # ---------------------------------------------------------------- evaluation, checkpoints, database
    latest_state = copy.deepcopy(policy.state_dict())
    if not best.epoch:  # stopped inside the first epoch: the weights there are, as both
        best = _Best(epoch=epoch, state_dict=latest_state)
    policy.load_state_dict(best.state_dict)
    best_held = score(policy, h_obs, h_actions, h_episodes) if len(h_obs) else {}
    best_eval = None
    if config.eval.interval > 0 and epoch > 0:
        from evaluation.evaluate import evaluate, mean_over_opponents

        best_eval = evaluate(
            policy,
            opponents=config.eval.opponents,
            matches=config.eval.matches,
            seed=config.eval.seed,
            fighters=config.eval.fighters,
            greedy=config.eval.greedy,
            rewards=config.env.rewards,
            **{**config.env.rules, **config.eval.rules},
        )
        writer.add_eval(best_eval, best.epoch, mean_over_opponents(best_eval, "win_rate"))
    for action, recall in best_held.get("recall", {}).items():
        writer.add_scalar(f"imitation/heldout_recall/{action}", recall, best.epoch)

    data_facts = dict(
        imitation_frames=len(demos),
        imitation_episodes=demos.episodes,
        imitation_train_frames=n_train,
        imitation_heldout_frames=len(h_obs),
        imitation_selection=demos.selection,
    )
    best_metrics = dict(
        **data_facts,
        epoch=best.epoch,
        heldout_accuracy=best_held.get("accuracy", math.nan),
        heldout_loss=best_held.get("loss", math.nan),
    )
    if best_eval:
        best_metrics["eval_win_rate"] = mean_over_opponents(best_eval, "win_rate")
        best_metrics["eval"] = best_eval
    # checkpoints/epoch_N.pt of the last epoch (latest.pt, model version 1) and, when another
    # epoch was better, of that one (best.pt, version 2): registered newest last, so that
    # the server's best-model order (win rate, then reward, then newest) prefers best.pt.
    saved, folder = [], run.folder
    if epoch > 0:
        same = best.epoch == epoch
        latest_metrics = (
            best_metrics
            if same
            else dict(
                **data_facts,
                epoch=epoch,
                train_accuracy=train_stats.get("accuracy", math.nan),
                heldout_accuracy=held.get("accuracy", math.nan),
                heldout_loss=held.get("loss", math.nan),
            )
        )
        policy.load_state_dict(latest_state)
        saved.append((latest_metrics, latest_state, [folder.latest, folder.best] if same else [folder.latest]))
        if not same:
            saved.append((best_metrics, best.state_dict, [folder.best]))
    train_episodes = len(np.unique(demos.episode_id[train_rows]))
    paths = []
    for metrics, weights, aliases in saved:
        policy.load_state_dict(weights)
        run.state.model_version += 1
        path = run.write_checkpoint(policy, folder.epoch_checkpoint(metrics["epoch"]), aliases, metrics)
        run.record_checkpoint(
            path,
            metrics["epoch"],
            metrics.get("eval_win_rate", 0.0),
            mean_over_eval(metrics, "avg_reward"),
            train_episodes,
        )
        paths.append(path)
    return run.finish(
        paths[0] if paths else None,
        mode="imitation",
        frames=len(demos),
        episodes=demos.episodes,
        train_frames=n_train,
        heldout_frames=len(h_obs),
        heldout_episodes=int(len(np.unique(demos.episode_id[heldout]))),
        dropped_frames=demos.dropped,
        selection=demos.selection,
        observation=config.env.observation,
        action_encoding=demos.encoding,
        load_time_s=round(demos.load_time_s, 3),
        label_counts=np.bincount(demos.actions, minlength=NUM_ACTIONS).tolist(),
        epochs=epoch,
        best_epoch=best.epoch,
        train_accuracy=train_stats.get("accuracy"),
        heldout_accuracy=best_held.get("accuracy"),
        heldout_loss=best_held.get("loss"),
        heldout_recall=best_held.get("recall"),
        final_heldout_accuracy=held.get("accuracy"),
        best_eval=best_eval,
        global_step=0,
        updates=update,
        samples_per_s=round(epoch * n_train / max(run_time, 1e-9), 1),
        run_time_s=round(run_time, 2),
        device=str(device),
    )


# =============================================================================================
# One epoch: frames in random minibatches, or episodes in streams (recurrent)
# =============================================================================================
def set_lr(optimizer, cfg, update: int, total_updates: int) -> None:
    if cfg.anneal_lr:
        optimizer.param_groups[0]["lr"] = cfg.learning_rate * 0.5 * (1 + math.cos(math.pi * update / total_updates))


def feedforward_epoch(policy, optimizer, b_obs, b_actions, cfg, update: int, total_updates: int):
    """One pass over the frames in random minibatches of batch_size; (loss sum, correct, entropy sum, updates)."""
    n_train = len(b_obs)
    b_inds = torch.randperm(n_train, device=b_obs.device)
    loss_sum, correct, entropy_sum = 0.0, 0, 0.0
    for start in range(0, n_train, cfg.batch_size):
        set_lr(optimizer, cfg, update, total_updates)
        mb_inds = b_inds[start : start + cfg.batch_size]
        logits, _ = policy(b_obs.index_select(0, mb_inds))
        step_loss, step_correct, step_entropy = cloning_step(optimizer, logits, b_actions.index_select(0, mb_inds), cfg)
        update += 1
        loss_sum, correct, entropy_sum = loss_sum + step_loss, correct + step_correct, entropy_sum + step_entropy
    return loss_sum, correct, entropy_sum, update


def cloning_step(optimizer, logits, labels, cfg) -> tuple[float, int, float]:
    """One optimizer step on the cross-entropy of ``logits`` against the demonstrated actions;
    this minibatch's (loss sum, correct, entropy sum)."""
    loss = F.cross_entropy(logits, labels, label_smoothing=cfg.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        logprobs = torch.log_softmax(logits, -1)
        return (
            float(loss) * len(labels),
            int((logits.argmax(-1) == labels).sum()),
            float(-(logprobs.exp() * logprobs).sum()),
        )


def recurrent_epoch(policy, optimizer, b_obs, b_actions, b_episodes, cfg, update: int, total_updates: int, device):
    """One pass over the training episodes in streams (module docstring); the same four figures."""
    loss_sum, correct, entropy_sum = 0.0, 0, 0.0
    order = torch.randperm(len(np.unique(b_episodes))).numpy()  # the episodes' order this epoch
    streams = max(1, cfg.batch_size // cfg.sequence_length)
    for rows, starts, state in episode_streams(policy, b_episodes, order, cfg.sequence_length, streams, device):
        set_lr(optimizer, cfg, update, total_updates)
        valid = rows >= 0
        logits, _, new_state = policy.forward_sequence(b_obs[rows.clamp(min=0)], state, starts)
        step_loss, step_correct, step_entropy = cloning_step(optimizer, logits[valid], b_actions[rows[valid]], cfg)
        update += 1
        loss_sum, correct, entropy_sum = loss_sum + step_loss, correct + step_correct, entropy_sum + step_entropy
        with torch.no_grad():
            state[0].copy_(new_state[0]), state[1].copy_(new_state[1])  # carried on, without its gradient
    return loss_sum, correct, entropy_sum, update


def stream_layout(episode_id: np.ndarray, order: np.ndarray | None, streams: int) -> tuple[np.ndarray, np.ndarray]:
    """Deal episodes (runs of one episode_id in the frame order) into ``streams`` rows: each episode
    goes whole to the stream that is shortest so far, in ``order`` (indices into the episodes as
    they first appear; None: as they appear). Returns rows (streams, T), the frame index at each
    place (-1: padding at a stream's end), and starts (streams, T), True at an episode's first frame."""
    n = len(episode_id)
    if n == 0:
        return np.zeros((streams, 0), np.int64), np.zeros((streams, 0), bool)
    firsts = np.flatnonzero(np.r_[True, episode_id[1:] != episode_id[:-1]])
    ends = np.r_[firsts[1:], n]
    if order is None:
        order = np.arange(len(firsts))
    streams = min(streams, len(firsts))
    lengths = np.zeros(streams, np.int64)
    placed = [[] for _ in range(streams)]
    for e in order:
        k = int(lengths.argmin())
        placed[k].append(e)
        lengths[k] += ends[e] - firsts[e]
    rows = np.full((streams, int(lengths.max())), -1, np.int64)
    starts = np.zeros(rows.shape, bool)
    for k, episodes in enumerate(placed):
        at = 0
        for e in episodes:
            length = ends[e] - firsts[e]
            rows[k, at : at + length] = np.arange(firsts[e], ends[e])
            starts[k, at] = True
            at += length
    return rows, starts


def episode_streams(policy, episode_id, order, chunk: int, streams: int, device):
    """The chunks of an epoch's streams: (rows (chunk, S) frame indices, -1 for padding, starts
    (chunk, S), the streams' state (h, c)), time first; the caller carries the state on in place."""
    rows, starts = stream_layout(episode_id, order, streams)
    rows, starts = torch.from_numpy(rows.T.copy()).to(device), torch.from_numpy(starts.T.copy()).to(device)
    state = policy.initial_state(rows.shape[1], device)
    for t in range(0, rows.shape[0], chunk):
        yield rows[t : t + chunk], starts[t : t + chunk], state


def updates_per_epoch(policy, episode_id: np.ndarray, cfg) -> int:
    if not policy.recurrent:
        return math.ceil(len(episode_id) / cfg.batch_size)
    rows, _ = stream_layout(episode_id, None, max(1, cfg.batch_size // cfg.sequence_length))
    return max(1, math.ceil(rows.shape[1] / cfg.sequence_length))


def mean_over_eval(metrics: dict, key: str) -> float:
    """The mean of one evaluation figure over the opponents in a checkpoint's metrics (0 without one)."""
    results = (metrics.get("eval") or {}).values()
    return float(np.mean([r[key] for r in results])) if results else 0.0


def _progress_line(epoch, epochs, train_stats, held, best, elapsed) -> str:
    held_text = f"  held-out {held['accuracy']:6.1%} (best {best.accuracy:6.1%}, epoch {best.epoch})" if held else ""
    return (
        f"epoch {epoch:>4}/{epochs}  loss {train_stats['loss']:.4f}  train {train_stats['accuracy']:6.1%}"
        f"{held_text}  {elapsed:6.1f} s"
    )


def format_summary(summary: dict) -> str:
    """The lines train.py prints at the end of an imitation run."""
    from evaluation.tables import format_best_lines

    verb = "Stopped" if summary["interrupted"] else "Finished"
    held = summary["heldout_accuracy"]
    lines = [
        f"\n{verb}: behavioural cloning on {summary['train_frames']:,} frames, {summary['epochs']} epochs "
        f"in {summary['run_time_s']:.0f} s ({summary['samples_per_s']:,.0f} frames/s)",
        f"  run folder  {summary['run_dir']}",
        f"  latest      {summary['latest']}",
        f"  best        {summary['best']}"
        + (
            f"  (epoch {summary['best_epoch']}, held-out action accuracy {held:.1%} on "
            f"{summary['heldout_frames']:,} frames)"
            if held is not None
            else ""
        ),
    ]
    lines += format_best_lines(summary["best_eval"])
    if summary["best"]:
        lines.append(f"  fine-tune   python train.py configs/aggression.yaml --init-from {summary['best']}")
    return "\n".join(lines)
