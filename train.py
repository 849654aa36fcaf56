"""PPO for the Wrestling Arena (and any Gymnasium env with discrete actions), in the style of CleanRL's ppo.py.

    python train.py configs/aggression.yaml [--section.key value ...] [--run-dir DIR] [--db PATH]
    python train.py --resume runs/aggression-20260101-120000 [--train.total_timesteps 40000000]
    python train.py configs/adaptation.yaml --init-from runs/<run>/checkpoints/best.pt
    python train.py configs/imitation.yaml --db data/arena.db   # behavioural cloning: training/imitation.py

Python API: ``summary = train("configs/aggression.yaml", ["--train.total_timesteps", "2e6"])``.
A run folder runs/<name>-<timestamp>/ holds config.yaml (resolved), TensorBoard events,
checkpoints/{latest,best,step_N}.pt and summary.json. Ctrl-C stops after the current update,
saves and exits; a second Ctrl-C stops at once (and still saves). --resume continues exactly:
the same weights and scalars as a run that never stopped. See docs/training.md.

This file is the algorithm: config, env, policy, then per update the rollout, GAE, the update
and logging. The run's lifecycle (folder, checkpoints, TensorBoard, database, Ctrl-C, summary)
and PPO's pieces live in training/.
"""

if __name__ == "__main__":  # glibc reads malloc tunables at start only (policies/runtime.py)
    from policies.runtime import reexec_with_malloc_tunables

    reexec_with_malloc_tunables()

import dataclasses
import datetime
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from configs import ConfigError, parse_overrides, save_config
from evaluation.tables import format_best_lines
from policies import CheckpointError, read_checkpoint, sample_actions
from policies.network import build_policy
from policies.runtime import precision_name, select_device, select_precision
from training import distributed, launch
from training.episodes import EpisodeLog
from training.evaluator import Checkpoints, make_evaluator
from training.imitation import format_summary, train_imitation
from training.layout import RunFolder
from training.memory import Memory
from training.ppo import Rollout, compute_gae, ppo_loss, ppo_sequence_update, ppo_update  # noqa: F401 (ppo_loss: API)
from training.run import RESEED, Run, load_initial_weights, resolve_start, resume_state
from training.selection import config_play, final_selection, format_selection
from training.symmetry import SymmetryLoss
from training.vecenv import DeviceCopy, make_vecenv, start_env

# Env info keys -> TensorBoard chart names; any other numeric key is logged as charts/<key>.
CHART_NAMES = {"episode_return": "episodic_return", "win": "win_rate", "rank": "mean_rank"}


def train(
    config=None,
    overrides=(),
    run_dir=None,
    resume=None,
    init_from=None,
    db=None,
    progress: bool | None = None,
    stop_at: int | None = None,
) -> dict:
    """Train a policy with PPO; return the summary also written to <run folder>/summary.json.

    config: a Config or a YAML path; overrides: ``--section.key value`` tokens or a dict.
    resume: a run folder or checkpoint to continue exactly (its config.yaml plus overrides).
    init_from: a checkpoint whose weights start a new run. db: SQLite path (overrides config.db).
    progress: one live status line (default when stdout is a terminal) or a line per log interval.
    stop_at: stop (and save) once this many agent-steps are done, short of total_timesteps
    (the learning-rate schedule still follows total_timesteps; league/pbt.py trains in such segments).
    """
    start = resolve_start(config, overrides, run_dir, resume, init_from, db)
    nproc = launch.local_processes(start.config)
    if nproc > 1:  # config.processes: this process starts the ranks of one torchrun run and waits for them
        return train_local_ranks(start, overrides, resume, init_from, db, stop_at, nproc)
    dist = distributed.setup(start.config.device)  # this process's rank under torchrun (docs/training.md)
    if dist.enabled:
        if run_dir is None and resume is None:  # one folder: rank 0's time stamp names it
            start = dataclasses.replace(start, folder=RunFolder(dist.broadcast(str(start.folder.path))))
        # all_reduce: shared_memory where it cannot work fails before the run folder exists
        device = distributed.process_device(dist, select_device(start.config.device))
        distributed.uses_shared_memory(dist, device, start.config.all_reduce)
    if start.config.mode == "imitation":  # behavioural cloning from recorded frames, not PPO
        if dist.enabled:
            raise ConfigError("behavioural cloning (mode: imitation) runs in one process: start it without torchrun")
        return train_imitation(start, progress)
    with Run(start, progress, dist) as run:
        run.create_folder()
        if start.config.league.enabled and start.config.league.specialists:
            start = train_league_specialists(run, start, progress)
        return ppo(run, start, stop_at)


def train_local_ranks(start, overrides, resume, init_from, db, stop_at, nproc: int) -> dict:
    """Train as ``nproc`` processes of one run on this machine (torchrun --standalone) and return
    rank 0's summary; they print as this process would. A new run's ranks read its resolved config."""
    if resume is not None:
        return launch.train_in_subprocess(None, overrides, resume=resume, stop_at=stop_at, db=db, nproc=nproc)
    created = not start.folder.path.exists()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            resolved = Path(tmp) / "config.yaml"
            save_config(start.config, resolved)
            return launch.train_in_subprocess(
                resolved, run_dir=start.folder.path, init_from=init_from, stop_at=stop_at, db=db, nproc=nproc
            )
    except (ConfigError, launch.TrainingFailed):  # any rank refusal is a ConfigError; a stopped rank 0 may leave it
        if created and not start.folder.holds_results():
            shutil.rmtree(start.folder.path, ignore_errors=True)
        raise


def ppo(run: Run, start, stop_at: int | None) -> dict:
    # ---------------------------------------------------------------- config
    config, args, state, dist = run.config, run.config.train, run.state, run.dist
    random.seed(config.seed)
    np.random.seed(config.seed)  # noqa: NPY002 (seeds numpy's global generator for any library that uses it)
    torch.manual_seed(config.seed)  # the same on every rank: their generators must move alike
    torch.set_num_threads(config.torch_threads)
    device = distributed.process_device(dist, select_device(config.device))
    precision = select_precision(args.update_precision, device)
    end_step = args.total_timesteps if stop_at is None else min(stop_at, args.total_timesteps)

    # ---------------------------------------------------------------- env: arenas against bots, a league, or Gymnasium
    env_seed, threads = config.seed + RESEED * state.iteration, distributed.env_threads(dist)
    league = make_league(run, start, device, threads) if config.league.enabled else None
    vecenv = league.make_env(env_seed) if league else make_vecenv(config.env, env_seed, dist, threads)
    run.on_exit(lambda: (league.env if league is not None else vecenv).close())  # the current stage's env
    to_device = DeviceCopy(device)  # the env's numpy arrays as tensors on the device

    # ---------------------------------------------------------------- policy, optimizer, how checkpoints are scored
    policy, optimizer = make_policy(run, start, vecenv, device)
    model = distributed.wrap(policy, dist, config.all_reduce)  # the update's module: gradients averaged over the ranks
    obs_shape, num_steps = vecenv.single_observation_space.shape, args.num_steps
    symmetry = (
        SymmetryLoss(obs_shape[0], args.symmetry_rows, device, args.symmetry_mirrors)
        if args.symmetry_coef > 0
        else None
    )
    run.open_outputs({"name": config.name, "mode": config.mode, "trainer": "train.py", "env": config.env.name})
    evaluate = make_evaluator(config, run)  # periodic evaluation against bots, or the training return
    checkpoints = Checkpoints(config, state, evaluate.evaluates)
    if league is not None:
        league.maybe_snapshot(policy, state.global_step)  # the pool's first snapshot: the starting policy

    # ---------------------------------------------------------------- rollout storage, first observations
    rollout = Rollout.allocate(num_steps, vecenv.num_agents, obs_shape, device, policy.recurrent)  # again per stage
    memory = Memory(policy, vecenv.num_agents, device) if policy.recurrent else None  # an LSTM's state per agent
    episode_log, timing, losses, metrics, last_log = EpisodeLog(), defaultdict(float), {}, {}, 0.0
    next_obs, next_mask = resume_envs(run, vecenv, env_seed, device, episode_log, memory)
    agent_rows = distributed.agent_rows(dist, vecenv.num_agents)  # this rank's rows of the run's agents
    run.start_clock()
    try:
        while state.global_step < end_step and not run.stopping:
            state.iteration += 1
            if args.anneal_lr:
                frac = max(1.0 - state.global_step / args.total_timesteps, 0.0)
                optimizer.param_groups[0]["lr"] = frac * args.learning_rate

            # -------------------------------------------------------- rollout
            reports = []  # the env's episode reports
            if memory is not None:
                rollout.initial_state = memory.snapshot()  # where the update's replay of the sequences starts
            for step in range(num_steps):
                t0 = time.perf_counter()
                rollout.obs[step] = next_obs
                rollout.masks[step] = next_mask
                with torch.no_grad():
                    if memory is None:
                        logits, rollout.values[step] = policy(rollout.obs[step])
                    else:
                        logits, rollout.values[step] = memory.decide(policy, next_obs, next_mask, rollout.resets[step])
                    step_logprobs = torch.log_softmax(logits, dim=-1)
                    rollout.actions[step] = action = sample_actions(step_logprobs, rows=agent_rows)
                    rollout.logprobs[step] = step_logprobs.gather(-1, action.unsqueeze(-1)).squeeze(-1)
                action_np = action.to(torch.int32).cpu().numpy()
                t1 = time.perf_counter()
                vecenv.send(action_np)
                next_obs_np, reward, terminal, truncation, infos, _, next_mask_np = vecenv.recv()
                t2 = time.perf_counter()
                rollout.rewards[step] = to_device("rewards", reward) * args.reward_scale
                rollout.dones[step] = to_device("dones", terminal | truncation)
                if memory is not None:
                    memory.ended(rollout.dones[step])
                next_obs, next_mask = to_device("obs", next_obs_np), to_device("masks", next_mask_np)
                reports.extend(infos)
                timing["inference"] += t1 - t0
                timing["env"] += t2 - t1
            for infos in dist.gather(reports):  # every rank's, in rank order
                state.episodes += episode_log.add(infos)
            state.global_step += int(dist.all_sum(rollout.masks.sum()))

            # -------------------------------------------------------- advantages and update
            t0 = time.perf_counter()
            with torch.no_grad():
                if memory is None:
                    next_value = policy.get_value(next_obs)
                else:
                    next_value = policy.get_value(next_obs, memory.state, memory.resets(next_mask))
                r = rollout
                advantages, returns = compute_gae(r.rewards, r.values, r.dones, r.masks, next_value, next_mask,
                                                  args.gamma, args.gae_lambda)  # fmt: skip
            if memory is None:
                batch = rollout.live_batch(advantages, returns, dist)
                losses = ppo_update(model, optimizer, batch, args, precision, dist, symmetry)
            else:  # whole sequences per minibatch, replayed from the rollout's initial state
                losses = ppo_sequence_update(policy, optimizer, rollout.sequence_batch(advantages, returns), args,
                                             precision, dist)  # fmt: skip
            run.agree_to_stop()  # every rank stops after the same update
            timing["update"] += time.perf_counter() - t0

            # -------------------------------------------------------- logging
            t0 = time.perf_counter()
            writer, step_now, run_time = run.writer, state.global_step, run.run_time()
            sps = (step_now - run.start_step) / max(run_time, 1e-9)
            for k, v in losses.items():
                writer.add_scalar(f"losses/{k}", v, step_now)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], step_now)
            writer.add_scalar("charts/SPS", sps, step_now)
            for k, v in episode_log.pop_means().items():
                writer.add_scalar(f"charts/{CHART_NAMES.get(k, k)}", v, step_now)
            ret, win = episode_log.recent_mean("episode_return"), episode_log.recent_mean("win")
            final = step_now >= end_step or run.stopping
            if run_time - last_log >= config.log_interval or final:
                last_log = run_time
                eta = (args.total_timesteps - step_now) / max(sps, 1e-9)
                run.progress(format_progress(step_now, args.total_timesteps, sps, ret, win, eta))
                run.record_metrics(state.iteration, ret, win, losses["loss"], losses["entropy"])
            metrics = dict(avg_reward_last_100=ret if math.isfinite(ret) else 0.0,
                           win_rate_last_100=win if math.isfinite(win) else 0.0,
                           episodes=state.episodes, **losses)  # fmt: skip

            # -------------------------------------------------------- league: snapshots and curriculum
            if league is not None:
                league.synchronize()  # every rank's match results, on every rank
                league.maybe_snapshot(policy, step_now)
                league.log(writer, step_now, state.iteration)
                # The next stage's ring and opponents; also when the run stops short (Ctrl-C,
                # --stop-at), so that the saved state is the one an unstopped run continues from.
                if league.promotion_due(step_now) and step_now < args.total_timesteps:
                    env_seed = config.seed + RESEED * state.iteration
                    vecenv = league.promote(step_now, seed=env_seed)
                    rollout = Rollout.allocate(num_steps, vecenv.num_agents, obs_shape, device, policy.recurrent)
                    memory = Memory(policy, vecenv.num_agents, device) if policy.recurrent else None
                    next_obs, next_mask, _ = start_env(vecenv, env_seed, device)
                    agent_rows = distributed.agent_rows(dist, vecenv.num_agents)
                    episode_log = EpisodeLog()  # the win rate chart restarts with the new stage

            # -------------------------------------------------------- evaluation and checkpoints (rank 0)
            if dist.is_main:
                scored = evaluate(policy, step_now, ret) if evaluate.due(state.iteration, final) else None
                if scored is not None and scored.win_rate is not None:
                    metrics["eval_win_rate"] = scored.win_rate
                save = checkpoints.record(scored, run.folder.step_checkpoint(step_now).name)
                if save is not None:
                    resumable = resume_state(state, optimizer, league, vecenv, episode_log, dist, memory)
                    run.save_step_checkpoint(policy, metrics, resumable, best=save.best, record=save.row)
            timing["eval_and_checkpoints"] += time.perf_counter() - t0
            for k in ("env", "inference", "update"):
                writer.add_scalar(f"perf/{k}_fraction", timing[k] / max(sum(timing.values()), 1e-9), step_now)
    except KeyboardInterrupt:  # a second Ctrl-C: stop mid-update and save what there is
        run.stop.requested = True
    except distributed.DistributedFailure:  # another rank failed: keep what this one has, then leave
        if dist.is_main and state.iteration > run.start_iteration:
            resumable = resume_state(state, optimizer, league, vecenv, episode_log, dist, memory)
            run.save_step_checkpoint(policy, metrics, resumable, record=False)
        raise

    # ---------------------------------------------------------------- the end: last checkpoint, best.pt, summary
    state.elapsed += run.run_time()
    run.end_progress()
    final_path = None
    if dist.is_main and state.iteration > run.start_iteration:  # a new step_N.pt unless the last update saved one
        resumable = resume_state(state, optimizer, league, vecenv, episode_log, dist, memory)
        record = "eval_win_rate" in metrics or not evaluate.evaluates
        final_path = run.save_step_checkpoint(policy, metrics, resumable, record=record)
    in_sync = distributed.parameters_in_sync(policy, dist)
    return finish(run, final_path, losses, timing, device, precision, league, evaluate.evaluates, in_sync)


# =============================================================================================
# Before and after the loop
# =============================================================================================
def train_league_specialists(run: Run, start, progress):
    """Train the league's specialists first (in the run folder, reused on resume); the start with
    league.init_from resolved to a specialist's checkpoint."""
    from league.specialists import train_specialists

    config = run.config
    specialists = train_specialists(config, run.folder.specialists, train, progress)
    start = dataclasses.replace(start, specialists=specialists)
    if config.league.init_from is not None and start.init_from is None and not run.resumed:  # a specialist's weights
        path = next(s["checkpoint"] for s in specialists if s["name"] == config.league.init_from)
        kind = read_checkpoint(path)["policy"].get("kind", "mlp")
        if kind != config.policy.kind:  # specialists train with their mode configs' network
            print(
                f"league.init_from {config.league.init_from!r} is a {kind} network; this {config.policy.kind} "
                "learner cannot start from its weights and starts from fresh ones",
                flush=True,
            )
            return start
        start = dataclasses.replace(
            start, init_from=path, init_label=f"league.init_from {config.league.init_from!r} ({path})"
        )
    return start


def make_league(run: Run, start, device, threads: int | None):
    """The self-play League (opponents from a pool of snapshots, bots and specialists), restored on resume."""
    from league import League

    league = League(run.config, run.folder.league, device, start.specialists, run.dist, threads)
    if run.resumed:
        league.load_state_dict(run.state.league)
    return league


def make_policy(run: Run, start, vecenv, device):
    """The policy network for the env's spaces and its Adam optimizer: resumed, started from
    --init-from (or league.init_from) weights, or freshly initialised."""
    config, state = run.config, run.state
    obs_size, num_actions = int(np.prod(vecenv.single_observation_space.shape)), int(vecenv.single_action_space.n)
    policy = build_policy(config.policy.kind, obs_size, num_actions, config.policy.hidden_size).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.train.learning_rate, eps=1e-5)
    if run.resumed:
        policy.load_state_dict(start.resumed["state_dict"])
        optimizer.load_state_dict(state.optimizer)
        torch.set_rng_state(state.torch_rng)
    elif start.init_from is not None:
        load_initial_weights(policy, start.init_from, start.init_label)
    return policy, optimizer


def resume_envs(run: Run, vecenv, env_seed: int, device, episode_log: EpisodeLog, memory: Memory | None):
    """The first observations and masks: the saved envs' state on resume (and the episode
    statistics not yet logged, and a recurrent policy's memory of the matches), else fresh
    matches seeded with ``env_seed``."""
    state = run.state
    if run.resumed and state.episode_log is not None:
        episode_log.load_state_dict(state.episode_log)
    saved = state.env if run.resumed and not run.dist.enabled else None  # a distributed run saves none
    next_obs, next_mask, exact = start_env(vecenv, env_seed, device, saved)
    if exact and memory is not None and state.memory is not None:
        memory.load_state_dict(state.memory)
    if run.resumed and not exact:
        print(
            "resume: these envs cannot save their state (Gymnasium, Multiprocessing workers, or a distributed "
            "run), so they start fresh matches; the weights, optimizer and counters continue exactly",
            flush=True,
        )
    return next_obs, next_mask


def finish(run: Run, final_path, losses, timing, device, precision, league, evaluating: bool, in_sync: bool) -> dict:
    """best.pt by the final replay (a finished run), then summary.json (rank 0 writes both)."""
    config, state, selection = run.config, run.state, None
    done = state.global_step >= config.train.total_timesteps
    if run.dist.is_main and evaluating and config.eval.final_candidates > 0 and done:
        # The run is done (not stopped, not a stop_at segment): best.pt by a larger replay.
        t0 = time.perf_counter()
        selection = final_selection(state.evals, run.folder.checkpoints, config.eval, config_play(config))
        timing["final_selection"] = time.perf_counter() - t0
        if selection is not None:
            state.best_eval = selection["results"]
            for opponent, r in selection["results"].items():
                run.writer.add_scalar(f"eval_final/{opponent}/win_rate", r["win_rate"], selection["global_step"])
            run.writer.add_text("eval_final/candidates", format_selection(selection), state.global_step)
    best = run.folder.best
    return run.finish(
        final_path,
        best_model_version=read_checkpoint(best)["model_version"] if best.is_file() else None,
        sps=round((state.global_step - run.start_step) / max(run.run_time(), 1e-9), 1),
        time_split_s={k: round(v, 3) for k, v in timing.items()},
        best_score=state.best_score.as_list() if state.best_score is not None else None,
        best_eval=state.best_eval,
        final_selection=selection,
        final_losses=losses,
        device=str(device),
        update_precision=precision_name(precision),
        league=league.summary() if league is not None else None,
        **({"distributed": distributed.dist_summary(run.dist, in_sync)} if run.dist.enabled else {}),
    )


def format_progress(step, total, sps, ret, win, eta) -> str:
    eta_text = str(datetime.timedelta(seconds=int(max(eta, 0)))) if math.isfinite(eta) else "?"
    win_text = f"  win {win:5.1%}" if math.isfinite(win) else ""
    return (
        f"step {step:>12,}/{total:,} ({min(step / total, 1):6.1%})  {sps:>9,.0f} SPS  "
        f"return {ret:8.2f}{win_text}  ETA {eta_text}"
    )


# =============================================================================================
# Command line
# =============================================================================================
FLAGS = {
    "run_dir": "run folder (default runs/<name>-<timestamp>)",
    "resume": "run folder or checkpoint to continue exactly",
    "init_from": "checkpoint whose weights start this new run",
    "db": "SQLite database to record the fighter, metrics and checkpoints in",
    "stop_at": "stop (and save) after this many agent-steps, short of train.total_timesteps",
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(
            __doc__.strip() + "\n\nflags:\n" + "\n".join(f"  --{k.replace('_', '-'):<12} {v}" for k, v in FLAGS.items())
        )
        return 0 if argv else 2
    config_path = None if argv[0].startswith("--") else argv.pop(0)
    try:
        pairs = parse_overrides(argv)  # flags and --section.key overrides alike: (name, value)
        flags = {k: v for k, v in pairs if k in FLAGS}
        if "stop_at" in flags:
            flags["stop_at"] = parse_step(flags["stop_at"])
    except ConfigError as exc:
        print(f"error: {exc} (usage: train.py CONFIG [--section.key value ...] [--flag value ...])", file=sys.stderr)
        return 2
    overrides = [token for k, v in pairs if k not in FLAGS for token in (f"--{k}", v)]
    rank = int(os.environ.get("RANK", "0"))  # under torchrun, rank 0 alone speaks (errors go to stderr on every rank)
    if rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the life of the process)
    try:
        summary = train(config_path, overrides, **flags)
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except distributed.DistributedFailure as exc:
        print(f"error: {exc}; rank 0 saved the last update in latest.pt: --resume carries on", file=sys.stderr)
        return 1
    except launch.TrainingFailed as exc:  # the ranks this process started (config processes)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:  # only before the loop, which saves and returns on Ctrl-C
        print(
            f"\nstopped{': ' + str(exc) if str(exc) else ''}; run the same command again (with --run-dir "
            f"to the same folder) to carry on",
            file=sys.stderr,
        )
        return 130
    if not (summary.get("distributed") and "WORLD_SIZE" not in os.environ):  # else the ranks it started printed it
        print(format_summary(summary) if summary.get("mode") == "imitation" else format_ppo_summary(summary))
    return 130 if summary["interrupted"] else 0


def parse_step(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer() or value < 1:
        raise ConfigError(f"--stop-at must be a number of agent-steps >= 1, got {text!r}")
    return int(value)


def format_ppo_summary(summary: dict) -> str:
    """The lines main prints when a PPO run ends."""
    threads = f"{summary['torch_threads']} torch thread{'s' if summary['torch_threads'] != 1 else ''}"
    lines = [
        f"\n{'Stopped' if summary['interrupted'] else 'Finished'}: {summary['global_step']:,} agent-steps "
        f"in {summary['run_time_s']:.0f} s ({summary['sps']:,.0f} SPS, {threads}, {summary['device']}, "
        f"{summary['update_precision']} update)"
    ]
    version = f" (model version {summary['best_model_version']})" if summary["best"] else ""
    lines.append(
        f"  run folder  {summary['run_dir']}\n  latest      {summary['latest']}\n  best        "
        f"{summary['best']}{version}"
    )
    for sp in (summary["league"] or {}).get("specialists", []):
        lines.append(
            f"  specialist  {sp['name']}: {sp['global_step']:,} agent-steps in {sp['wall_time_s']:.0f} s, "
            f"{sp['checkpoint']}"
        )
    if summary["final_selection"]:
        sel = summary["final_selection"]
        lines.append(
            f"  best.pt is {sel['chosen']}: the best of {len(sel['candidates'])} candidates replayed over "
            f"{sel['matches']} matches per opponent (eval.final_candidates)"
        )
    lines += format_best_lines(summary["best_eval"])
    if summary["interrupted"] and summary["latest"]:
        lines.append(f"  resume with: python train.py --resume {summary['run_dir']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
