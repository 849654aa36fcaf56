"""PPO for the Wrestling Arena (and any Gymnasium env), in the style of CleanRL's ppo.py.

    python train.py configs/aggression.yaml [--section.key value ...] [--run-dir DIR] [--db PATH]
    python train.py --resume runs/aggression-20260101-120000 [--train.total_timesteps 40000000]
    python train.py configs/adaptation.yaml --init-from runs/<run>/checkpoints/best.pt
    python train.py configs/imitation.yaml --db data/arena.db   # behavioural cloning: policies/imitation.py

Python API: ``summary = train("configs/aggression.yaml", ["--train.total_timesteps", "2e6"])``.
A run folder runs/<name>-<timestamp>/ holds config.yaml (resolved), TensorBoard events,
checkpoints/{latest,best,step_N}.pt and summary.json. Ctrl-C stops after the current update,
saves and exits; a second Ctrl-C stops at once (and still saves). See docs/training.md.
"""
if __name__ == "__main__":  # glibc reads malloc tunables at start only (policies/runtime.py)
    from policies.runtime import reexec_with_malloc_tunables

    reexec_with_malloc_tunables()

import datetime
import json
import math
import random
import signal
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pufferlib.emulation
import pufferlib.pufferlib
import pufferlib.vector
import torch
from torch.utils.tensorboard import SummaryWriter

from configs import Config, ConfigError, config_to_dict, load_config, parse_overrides, save_config
from policies import AgentCheckpoint, CheckpointError, Policy, read_checkpoint, sample_actions, step_checkpoint_name
from policies.runs import EpisodeLog, StopFlag, format_progress, resolve_resume
from policies.runtime import precision_name, select_device, select_precision

# Env info keys -> TensorBoard chart names; any other numeric key is logged as charts/<key>.
CHART_NAMES = {"episode_return": "episodic_return", "win": "win_rate", "rank": "mean_rank"}
RESEED = 7919  # a resumed run reseeds its envs with seed + RESEED * iteration: fresh matches


# =============================================================================================
# Environments: dispatch on env.name; the PPO loop below only sees a pufferlib vecenv
# =============================================================================================
class GymnasiumEnv(pufferlib.emulation.GymnasiumPufferEnv):
    """pufferlib's Gymnasium adaptor with each episode's final observation masked.

    pufferlib.vector resets a finished env on the next send and ignores that send's action, so
    the row holding the final observation is no decision: masking it keeps it out of the loss
    and the step count, as an eliminated fighter's rows are.
    """

    def step(self, action):
        out = super().step(action)
        if self.done:
            self.masks[0] = False
        return out


def make_gymnasium_env(env_id, buf=None, seed=0):
    import gymnasium

    return GymnasiumEnv(env=pufferlib.pufferlib.EpisodeStats(gymnasium.make(env_id)), buf=buf, seed=seed)


def make_vecenv(env_cfg, seed: int):
    if env_cfg.name == "arena":
        from envs import ArenaEnv

        creator, kwargs = ArenaEnv, dict(
            num_arenas=env_cfg.num_arenas, fighters_per_arena=env_cfg.fighters_per_arena,
            opponents=env_cfg.opponents, rewards=env_cfg.rewards,
            report_interval=env_cfg.report_interval, **env_cfg.rules)
    elif env_cfg.name == "gymnasium":
        creator, kwargs = make_gymnasium_env, dict(env_id=env_cfg.id)
    else:
        raise ConfigError(f"env.name must be arena or gymnasium, got {env_cfg.name!r}")
    backend = getattr(pufferlib.vector, env_cfg.backend)
    extra = {}
    if backend is pufferlib.vector.Multiprocessing:
        extra = dict(num_workers=env_cfg.num_workers or env_cfg.num_envs)
    return pufferlib.vector.make(creator, env_kwargs=kwargs, backend=backend,
                                 num_envs=env_cfg.num_envs, seed=seed, **extra)


# =============================================================================================
# PPO: rollout storage, advantages, loss, update
# =============================================================================================
def rollout_storage(num_steps, num_agents, obs_shape, device):
    """obs, actions, logprobs, rewards, dones, masks, values: zeroed (num_steps, num_agents) tensors."""
    obs = torch.zeros((num_steps, num_agents, *obs_shape), device=device)
    actions = torch.zeros((num_steps, num_agents), dtype=torch.long, device=device)
    logprobs = torch.zeros((num_steps, num_agents), device=device)
    rewards = torch.zeros((num_steps, num_agents), device=device)
    dones = torch.zeros((num_steps, num_agents), dtype=torch.bool, device=device)
    masks = torch.zeros((num_steps, num_agents), dtype=torch.bool, device=device)
    values = torch.zeros((num_steps, num_agents), device=device)
    return obs, actions, logprobs, rewards, dones, masks, values


def compute_gae(rewards, values, dones, masks, next_value, next_mask, gamma, gae_lambda):
    """Generalized advantage estimates and returns for a (num_steps, num_agents) rollout.

    dones[t] is True when an episode ended with step t (terminal or truncated); masks[t] is
    True when row t was a live decision. A row bootstraps from the next row only if neither
    holds the episode's end nor a masked (eliminated) agent.
    """
    advantages = torch.zeros_like(rewards)
    lastgaelam = torch.zeros_like(next_value)
    num_steps = rewards.shape[0]
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextvalues, nextlive = next_value, next_mask
        else:
            nextvalues, nextlive = values[t + 1], masks[t + 1]
        nextnonterminal = (1.0 - dones[t].float()) * nextlive.float()
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
    return advantages, advantages + values


def ppo_loss(policy, mb, args, precision=torch.float32):
    """Clipped-surrogate PPO loss on one minibatch dict; returns (loss, detached stats).

    precision bfloat16 runs the network's matmuls (forward, and so backward) in bfloat16; the
    weights, the optimizer and everything below stay float32 (train.update_precision).
    """
    with torch.autocast(mb["obs"].device.type, dtype=precision, enabled=precision != torch.float32):
        _, newlogprob, entropy, newvalue = policy.get_action_and_value(mb["obs"], mb["actions"])
    logratio = newlogprob - mb["logprobs"]
    ratio = logratio.exp()
    mb_advantages = mb["advantages"]
    if args.norm_adv and len(mb_advantages) > 1:
        mb_advantages = (mb_advantages - mb_advantages.mean()) / (mb_advantages.std() + 1e-8)
    pg_loss1 = -mb_advantages * ratio
    pg_loss2 = -mb_advantages * torch.clamp(ratio, 1 - args.clip_coef, 1 + args.clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    if args.clip_vloss:
        v_loss_unclipped = (newvalue - mb["returns"]) ** 2
        v_clipped = mb["values"] + torch.clamp(newvalue - mb["values"], -args.clip_coef, args.clip_coef)
        v_loss = 0.5 * torch.max(v_loss_unclipped, (v_clipped - mb["returns"]) ** 2).mean()
    else:
        v_loss = 0.5 * ((newvalue - mb["returns"]) ** 2).mean()
    entropy_loss = entropy.mean()
    loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
    with torch.no_grad():
        stats = dict(policy_loss=pg_loss, value_loss=v_loss, entropy=entropy_loss, loss=loss,
                     old_approx_kl=(-logratio).mean(), approx_kl=((ratio - 1) - logratio).mean(),
                     clipfrac=((ratio - 1.0).abs() > args.clip_coef).float().mean())
    return loss, {k: v.detach() for k, v in stats.items()}


def ppo_update(policy, optimizer, batch, args, precision=torch.float32) -> dict:
    """update_epochs passes of num_minibatches minibatches over a flat batch dict of b_* tensors."""
    batch_size = len(batch["obs"])
    minibatch_size = math.ceil(batch_size / args.num_minibatches)
    totals, count = defaultdict(float), 0
    for epoch in range(args.update_epochs):
        b_inds = torch.randperm(batch_size, device=batch["obs"].device)
        for start in range(0, batch_size, minibatch_size):
            mb_inds = b_inds[start:start + minibatch_size]
            loss, stats = ppo_loss(policy, {k: v[mb_inds] for k, v in batch.items()}, args, precision)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), args.max_grad_norm)
            optimizer.step()
            for k, v in stats.items():
                totals[k] += float(v)
            count += 1
        if args.target_kl is not None and float(stats["approx_kl"]) > args.target_kl:
            break
    means = {k: v / count for k, v in totals.items()}
    var_y = torch.var(batch["returns"]).item() if batch_size > 1 else 0.0
    means["explained_variance"] = float("nan") if var_y == 0 else \
        1 - torch.var(batch["returns"] - batch["values"]).item() / var_y
    means["epochs"] = epoch + 1
    return means


# =============================================================================================
# The database (episode statistics, Ctrl-C and the progress line are in policies/runs.py)
# =============================================================================================
def open_database(config: Config, fighter_id):
    """The storage Database and the fighter being trained (registered if new), or (None, None)."""
    if not config.db:
        return None, None
    from storage import Database

    db = Database.open(config.db)
    if fighter_id is None:
        fighter_id = db.register_fighter(config.glb_filename or f"{config.name}.glb", {
            "name": config.name, "mode": config.mode, "trainer": "train.py", "env": config.env.name})
    return db, fighter_id


# =============================================================================================
# Training
# =============================================================================================
def train(config=None, overrides=(), run_dir=None, resume=None, init_from=None, db=None,
          progress: bool | None = None, stop_at: int | None = None) -> dict:
    """Train a policy with PPO; return the summary also written to <run folder>/summary.json.

    config: a Config or a YAML path; overrides: ``--section.key value`` tokens or a dict.
    resume: a run folder or checkpoint to continue exactly (its config.yaml plus overrides).
    init_from: a checkpoint whose weights start a new run. db: SQLite path (overrides config.db).
    progress: one live status line (default when stdout is a terminal) or a line per log interval.
    stop_at: stop (and save) once this many agent-steps are done, short of total_timesteps
    (the learning-rate schedule still follows total_timesteps; league/pbt.py trains in such segments).
    """
    resumed = None
    if resume is not None:
        run_dir, resume_path = resolve_resume(resume)
        resumed = read_checkpoint(resume_path)
        if not resumed.get("trainer_state"):
            raise CheckpointError(f"{str(resume_path)!r} holds no trainer state; use --init-from to start from its weights")
        saved = run_dir / "config.yaml"
        config = load_config(saved if saved.is_file() else resumed["config"], overrides)
    elif not isinstance(config, Config):
        if config is None:
            raise ConfigError("no config given: pass a YAML file such as configs/aggression.yaml, or --resume")
        config = load_config(config, overrides)
    if db is not None:
        config.db = str(db)
    if config.mode == "imitation":  # behavioural cloning from recorded frames, not PPO
        from policies.imitation import train_imitation

        return train_imitation(config, run_dir=run_dir, init_from=init_from, progress=progress)
    args = config.train

    # ---------------------------------------------------------------- run folder, env, policy
    run_dir = Path(run_dir) if run_dir else Path(config.runs_dir) / (
        f"{config.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}")
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")
    specialists, init_label = [], f"--init-from {str(init_from)!r}"
    if config.league.enabled and config.league.specialists:  # fighters the league fields, each trained first
        from league.specialists import train_specialists

        specialists = train_specialists(config, run_dir / "specialists", train, progress)
        if config.league.init_from is not None and init_from is None and not resumed:  # start from a specialist's weights
            init_from = next(s["checkpoint"] for s in specialists if s["name"] == config.league.init_from)
            init_label = f"league.init_from {config.league.init_from!r} ({init_from})"
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.torch_threads)
    device = select_device(config.device)
    precision = select_precision(args.update_precision, device)
    state = dict(iteration=0, global_step=0, episodes=0, elapsed=0.0, best_score=[-math.inf, -math.inf],
                 best_eval=None, evals=[], model_version=0, fighter_id=config.fighter_id)
    if resumed:
        state.update({k: resumed["trainer_state"][k] for k in state if k in resumed["trainer_state"]})
        state["model_version"] = resumed["model_version"]
    league = None
    if config.league.enabled:  # self-play: opponents from a pool of snapshots and bots (league/)
        from league import League

        league = League(config, run_dir / "league", device, specialists)
        if resumed:
            league.load_state_dict(resumed["trainer_state"]["league"])
        vecenv = league.make_env(seed=config.seed + RESEED * state["iteration"])
    else:
        vecenv = make_vecenv(config.env, seed=config.seed + RESEED * state["iteration"])
    obs_shape = vecenv.single_observation_space.shape
    num_agents, num_steps = vecenv.num_agents, args.num_steps
    policy = Policy(int(np.prod(obs_shape)), int(vecenv.single_action_space.n), config.policy.hidden_size)
    policy = policy.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate, eps=1e-5)
    if resumed:
        policy.load_state_dict(resumed["state_dict"])
        optimizer.load_state_dict(resumed["trainer_state"]["optimizer"])
        torch.set_rng_state(resumed["trainer_state"]["torch_rng"])
    elif init_from is not None:
        source = AgentCheckpoint.load(init_from)
        shape = lambda p: (p.obs_size, p.num_actions, p.hidden_size)  # noqa: E731
        if shape(source.policy) != shape(policy):
            raise CheckpointError(
                f"{init_label}: its network ({source.obs_size} obs, {source.num_actions} actions, "
                f"hidden {source.policy.hidden_size}) does not fit this run's ({policy.obs_size} obs, "
                f"{policy.num_actions} actions, hidden {policy.hidden_size})")
        policy.load_state_dict(source.policy.state_dict())
    database, state["fighter_id"] = open_database(config, state["fighter_id"])
    writer = SummaryWriter(str(run_dir), purge_step=state["global_step"] if resumed else None)
    writer.add_text("config", "```\n" + json.dumps(config_to_dict(config), indent=2) + "\n```")
    evaluating = config.eval.interval > 0 and config.env.name == "arena"
    if evaluating:
        from evaluation.selection import config_play, final_selection, format_selection, score as eval_score

        play_eval = config_play(config)  # (player, matches, seed) -> results per eval opponent

    if league is not None:
        league.maybe_snapshot(policy, state["global_step"])  # the pool's first snapshot: the starting policy

    # Rollout storage, allocated once (again only when a curriculum stage changes the agent count):
    # row t of agent i is obs[t, i] and what followed it.
    obs, actions, logprobs, rewards, dones, masks, values = rollout_storage(num_steps, num_agents, obs_shape, device)

    saved_step = None  # the global step of this session's last snapshot

    def snapshot(metrics, best=False):
        """Save the immutable checkpoints/step_N.pt, refresh latest.pt (and best.pt), record it.
        Called again at the same step (the run's end), it only refreshes latest.pt's trainer state."""
        nonlocal saved_step
        again, saved_step = state["global_step"] == saved_step, state["global_step"]
        if not again:
            state["model_version"] += 1
        trainer_state = dict(optimizer=optimizer.state_dict(), torch_rng=torch.get_rng_state(),
                             league=league.state_dict() if league is not None else None,
                             **{k: v for k, v in state.items() if k != "model_version"})
        ckpt = AgentCheckpoint(policy, config=config_to_dict(config), fighter_id=state["fighter_id"],
                               model_version=state["model_version"], global_step=state["global_step"],
                               metrics=metrics, trainer_state=trainer_state)
        path = ckpt_dir / step_checkpoint_name(state["global_step"])
        for name in ([] if again else [path.name]) + (["latest.pt", "best.pt"] if best else ["latest.pt"]):
            ckpt.save(ckpt_dir / name)
        # A database row per evaluated checkpoint (per saved one when the run does not evaluate):
        # an unevaluated one's training win rate must not rank against evaluation win rates.
        if database is not None and not again and ("eval_win_rate" in metrics or not evaluating):
            database.add_checkpoint(
                state["fighter_id"], state["model_version"], state["iteration"],
                metrics.get("eval_win_rate", metrics.get("win_rate_last_100", 0.0)),
                metrics.get("avg_reward_last_100", 0.0),
                state["episodes"], str(path.resolve()), config.mode)
        return path

    def run_eval():
        results = play_eval(policy, config.eval.matches, config.eval.seed)
        for opponent, r in results.items():
            for key in ("win_rate", "survival_rate", "avg_reward", "knockouts", "ring_outs", "mean_rank",
                        "match_length"):
                writer.add_scalar(f"eval/{opponent}/{key}", r[key], state["global_step"])
        win_rate = float(np.mean([r["win_rate"] for r in results.values()]))
        writer.add_scalar("eval/mean_win_rate", win_rate, state["global_step"])
        from evaluation.replay import log_replay  # match 0 vs the first opponent, an animated GIF under Images

        log_replay(writer, "eval/replay", policy, config.eval.opponents[0], state["global_step"], seed=config.eval.seed,
                   fighters=config.eval.fighters, greedy=config.eval.greedy, rewards=config.env.rewards,
                   rules={**config.env.rules, **config.eval.rules})
        return eval_score(results, config.eval.metric, config.eval.aggregate), win_rate, results

    # ---------------------------------------------------------------- the loop
    stop, old_handler = StopFlag(), None
    if threading.current_thread() is threading.main_thread():
        old_handler = signal.signal(signal.SIGINT, stop)
    live_line = sys.stdout.isatty() if progress is None else progress
    episode_log, timing = EpisodeLog(), defaultdict(float)
    vecenv.async_reset(config.seed + RESEED * state["iteration"])
    next_obs_np, _, _, _, _, _, next_mask_np = vecenv.recv()
    next_obs, next_mask = torch.from_numpy(next_obs_np).to(device), torch.from_numpy(next_mask_np).to(device)
    start_time, start_step, start_iteration, last_log = time.time(), state["global_step"], state["iteration"], 0.0
    losses, metrics = {}, {}
    end_step = args.total_timesteps if stop_at is None else min(stop_at, args.total_timesteps)
    try:
        while state["global_step"] < end_step and not stop.requested:
            state["iteration"] += 1
            if args.anneal_lr:
                frac = max(1.0 - state["global_step"] / args.total_timesteps, 0.0)
                optimizer.param_groups[0]["lr"] = frac * args.learning_rate

            # ------------------------------------------------------------ rollout
            for step in range(num_steps):
                t0 = time.perf_counter()
                obs[step] = next_obs
                masks[step] = next_mask
                with torch.no_grad():
                    logits, values[step] = policy(obs[step])
                    step_logprobs = torch.log_softmax(logits, dim=-1)
                    actions[step] = action = sample_actions(step_logprobs)
                    logprobs[step] = step_logprobs.gather(-1, action.unsqueeze(-1)).squeeze(-1)
                action_np = action.to(torch.int32).cpu().numpy()
                t1 = time.perf_counter()
                vecenv.send(action_np)
                next_obs_np, reward, terminal, truncation, infos, _, next_mask_np = vecenv.recv()
                t2 = time.perf_counter()
                rewards[step] = torch.from_numpy(reward).to(device) * args.reward_scale
                dones[step] = torch.from_numpy(terminal | truncation).to(device)
                next_obs, next_mask = torch.from_numpy(next_obs_np).to(device), torch.from_numpy(next_mask_np).to(device)
                if infos:
                    state["episodes"] += episode_log.add(infos)
                timing["inference"] += t1 - t0
                timing["env"] += t2 - t1
            state["global_step"] += int(masks.sum())

            # ------------------------------------------------------------ advantages and update
            t0 = time.perf_counter()
            with torch.no_grad():
                next_value = policy.get_value(next_obs)
                advantages, returns = compute_gae(rewards, values, dones, masks, next_value, next_mask,
                                                  args.gamma, args.gae_lambda)
            live = masks.reshape(-1).nonzero().squeeze(-1)
            batch = dict(obs=obs.reshape(-1, *obs_shape)[live], actions=actions.reshape(-1)[live],
                         logprobs=logprobs.reshape(-1)[live], advantages=advantages.reshape(-1)[live],
                         returns=returns.reshape(-1)[live], values=values.reshape(-1)[live])
            losses = ppo_update(policy, optimizer, batch, args, precision)
            timing["update"] += time.perf_counter() - t0

            # ------------------------------------------------------------ logging
            t0 = time.perf_counter()
            step_now, run_time = state["global_step"], time.time() - start_time
            sps = (step_now - start_step) / max(run_time, 1e-9)
            for k, v in losses.items():
                writer.add_scalar(f"losses/{k}", v, step_now)
            writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], step_now)
            writer.add_scalar("charts/SPS", sps, step_now)
            for k, v in episode_log.pop_means().items():
                writer.add_scalar(f"charts/{CHART_NAMES.get(k, k)}", v, step_now)
            ret, win = episode_log.recent_mean("episode_return"), episode_log.recent_mean("win")
            final = step_now >= end_step or stop.requested
            if run_time - last_log >= config.log_interval or final:
                last_log = run_time
                line = format_progress(step_now, args.total_timesteps, sps, ret, win,
                                       (args.total_timesteps - step_now) / max(sps, 1e-9))
                print("\r" + line + "    " if live_line else line, end="" if live_line else "\n", flush=True)
                if database is not None:
                    database.add_training_metrics(state["fighter_id"], run_dir.name, state["iteration"],
                                                  ret, win, losses["loss"], losses["entropy"])
            metrics = dict(avg_reward_last_100=ret if math.isfinite(ret) else 0.0,
                           win_rate_last_100=win if math.isfinite(win) else 0.0, episodes=state["episodes"], **losses)

            # ------------------------------------------------------------ evaluation and checkpoints
            score = None
            if evaluating and (state["iteration"] % config.eval.interval == 0 or final):
                score, metrics["eval_win_rate"], results = run_eval()
            elif not evaluating and (state["iteration"] % config.checkpoint_interval == 0 or final):
                score, results = ([ret, 0.0] if math.isfinite(ret) else None), None
            best = score is not None and score > state["best_score"]
            if best:
                state["best_score"], state["best_eval"] = score, results
            candidate = evaluating and score is not None and config.eval.final_candidates > 0
            if candidate:  # every evaluated checkpoint is kept for the final selection
                state["evals"].append([state["global_step"], score, step_checkpoint_name(state["global_step"])])
            if best or candidate or state["iteration"] % config.checkpoint_interval == 0:
                snapshot(metrics, best=best)
            timing["eval_and_checkpoints"] += time.perf_counter() - t0

            # ------------------------------------------------------------ league: snapshots and curriculum
            if league is not None:
                league.maybe_snapshot(policy, step_now)
                league.log(writer, step_now, state["iteration"])
                if league.promotion_due(step_now) and not final:
                    vecenv = league.promote(step_now, seed=config.seed + RESEED * state["iteration"])
                    num_agents = vecenv.num_agents
                    obs, actions, logprobs, rewards, dones, masks, values = rollout_storage(
                        num_steps, num_agents, obs_shape, device)
                    vecenv.async_reset(config.seed + RESEED * state["iteration"])
                    next_obs_np, _, _, _, _, _, next_mask_np = vecenv.recv()
                    next_obs, next_mask = torch.from_numpy(next_obs_np).to(device), torch.from_numpy(next_mask_np).to(device)
                    episode_log = EpisodeLog()  # the win rate chart restarts with the new stage
            for k in ("env", "inference", "update"):
                writer.add_scalar(f"perf/{k}_fraction", timing[k] / max(sum(timing.values()), 1e-9), step_now)
    except KeyboardInterrupt:  # a second Ctrl-C: stop mid-update and save what there is
        stop.requested = True
    except BaseException:
        vecenv.close()
        writer.close()
        if database is not None:
            database.close()
        raise
    finally:
        if old_handler is not None:
            signal.signal(signal.SIGINT, old_handler)
    run_time = time.time() - start_time
    state["elapsed"] += run_time
    if live_line:
        print()
    final_path = snapshot(metrics) if state["iteration"] > start_iteration else None
    vecenv.close()
    selection = None
    if evaluating and config.eval.final_candidates > 0 and state["global_step"] >= args.total_timesteps:
        # The run is done (not stopped, not a stop_at segment): best.pt by a larger replay.
        t0 = time.perf_counter()
        selection = final_selection(state["evals"], ckpt_dir, config.eval, play_eval)
        timing["final_selection"] = time.perf_counter() - t0
        if selection is not None:
            state["best_eval"] = selection["results"]
            for opponent, r in selection["results"].items():
                writer.add_scalar(f"eval_final/{opponent}/win_rate", r["win_rate"], selection["global_step"])
            writer.add_text("eval_final/candidates", format_selection(selection), state["global_step"])
    writer.close()
    if database is not None:
        database.close()

    # ---------------------------------------------------------------- summary
    best_path = ckpt_dir / "best.pt"
    summary = dict(
        run_dir=str(run_dir), config=str(run_dir / "config.yaml"), tensorboard=str(run_dir),
        latest=str(ckpt_dir / "latest.pt"), best=str(best_path) if best_path.is_file() else None,
        best_model_version=read_checkpoint(best_path)["model_version"] if best_path.is_file() else None,
        final=str(final_path) if final_path else None,
        global_step=state["global_step"], iterations=state["iteration"], episodes=state["episodes"],
        wall_time_s=round(state["elapsed"], 2), run_time_s=round(run_time, 2),
        sps=round((state["global_step"] - start_step) / max(run_time, 1e-9), 1),
        time_split_s={k: round(v, 3) for k, v in timing.items()},
        best_score=state["best_score"] if math.isfinite(state["best_score"][0]) else None,
        best_eval=state["best_eval"], final_selection=selection, final_losses=losses, interrupted=stop.requested,
        fighter_id=state["fighter_id"], device=str(device), torch_threads=config.torch_threads,
        update_precision=precision_name(precision),
        league=league.summary() if league is not None else None,
        finished_at=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# =============================================================================================
# Command line
# =============================================================================================
FLAGS = {"run_dir": "run folder (default runs/<name>-<timestamp>)",
         "resume": "run folder or checkpoint to continue exactly",
         "init_from": "checkpoint whose weights start this new run",
         "db": "SQLite database to record the fighter, metrics and checkpoints in"}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nflags:\n" + "\n".join(f"  --{k.replace('_', '-'):<12} {v}" for k, v in FLAGS.items()))
        return 0 if argv else 2
    config_path = None if argv[0].startswith("--") else argv.pop(0)
    try:
        pairs = parse_overrides(argv)  # flags and --section.key overrides alike: (name, value)
    except ConfigError as exc:
        print(f"error: {exc} (usage: train.py CONFIG [--section.key value ...] [--flag value ...])", file=sys.stderr)
        return 2
    flags = {k: v for k, v in pairs if k in FLAGS}
    overrides = [token for k, v in pairs if k not in FLAGS for token in (f"--{k}", v)]
    try:
        summary = train(config_path, overrides, **flags)
    except (ConfigError, CheckpointError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # only before the loop, which saves and returns on Ctrl-C
        print(f"\nstopped{': ' + str(exc) if str(exc) else ''}; run the same command again (with --run-dir "
              f"to the same folder) to carry on", file=sys.stderr)
        return 130
    if summary.get("mode") == "imitation":
        from policies.imitation import format_summary

        print(format_summary(summary))
        return 130 if summary["interrupted"] else 0
    threads = f"{summary['torch_threads']} torch thread{'s' if summary['torch_threads'] != 1 else ''}"
    print(f"\n{'Stopped' if summary['interrupted'] else 'Finished'}: {summary['global_step']:,} agent-steps "
          f"in {summary['run_time_s']:.0f} s ({summary['sps']:,.0f} SPS, {threads}, {summary['device']}, "
          f"{summary['update_precision']} update)")
    version = f" (model version {summary['best_model_version']})" if summary["best"] else ""
    print(f"  run folder  {summary['run_dir']}\n  latest      {summary['latest']}\n  best        {summary['best']}{version}")
    for sp in (summary["league"] or {}).get("specialists", []):
        print(f"  specialist  {sp['name']}: {sp['global_step']:,} agent-steps in {sp['wall_time_s']:.0f} s, {sp['checkpoint']}")
    if summary["final_selection"]:
        sel = summary["final_selection"]
        print(f"  best.pt is {sel['chosen']}: the best of {len(sel['candidates'])} candidates replayed over "
              f"{sel['matches']} matches per opponent (eval.final_candidates)")
    for opponent, r in (summary["best_eval"] or {}).items():
        lo, hi = r["ci95"]
        print(f"  best vs {opponent:<12} win {r['win_rate']:6.1%} [{lo:.1%}, {hi:.1%}]  survival "
              f"{r['survival_rate']:6.1%}  reward {r['avg_reward']:7.2f}  rank {r['mean_rank']:.2f}  ({r['matches']} matches)")
    if summary["interrupted"]:
        print(f"  resume with: python train.py --resume {summary['run_dir']}")
    return 130 if summary["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
