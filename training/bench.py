"""How fast training runs, and how fast it could run: the policy's compute bound vs end to end.

    python -m training.bench                                   # configs/aggression.yaml, as shipped
    python -m training.bench --config configs/tournament.yaml --timesteps 5000000 --json out.json
    python -m training.bench --device cuda --env.num_arenas 16384   # on a GPU
    python -m training.bench --nproc-per-node 2 --torch_threads 1 --no-bound   # two processes (torchrun)

1. The policy alone, at the config's shapes: inference (forward + sampling on num_agents rows)
   and training (forward/backward/clip/Adam on one minibatch) samples per second, training in
   float32 and in bfloat16 (train.update_precision) in the same run. One agent-step costs one
   inference plus update_epochs training passes, so the compute bound is
   1 / (1 / inference + update_epochs / training) agent-steps per second, training at the
   config's precision, on the config's device (--no-bound skips this part).
2. A real training run with the config (evaluations and checkpoints included): train.py in a
   child process (training/launch.py; with --nproc-per-node N, N processes under torchrun, the
   config's batch split between them), whose summary.json gives the end-to-end agent-steps per
   second and the time split between env, inference, update and the rest (rank 0's).
Figures are medians of --repeats timings after a warm-up.
"""

if __name__ == "__main__":  # same malloc setup as train.py (the policy figures run here)
    from policies.runtime import reexec_with_malloc_tunables

    reexec_with_malloc_tunables()

import argparse
import math
import os
import platform
import tempfile

import torch

from common.files import atomic_write_json
from common.timing import median_rate
from policies.network import Policy, sample_actions
from policies.runtime import precision_name
from training.ppo import ppo_loss


def policy_bound(
    num_agents: int,
    minibatch_size: int,
    update_epochs: int,
    hidden_size: int = 128,
    train_args=None,
    repeats: int = 5,
    precision=torch.float32,
    device="cpu",
) -> dict:
    """Inference and training samples/s of the network on ``device`` (training in float32 and
    bfloat16) and the agent-steps/s bound with training at ``precision``."""
    device = torch.device(device)
    torch.manual_seed(0)
    policy = Policy(hidden_size=hidden_size).to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-4, eps=1e-5)
    obs = torch.randn(num_agents, policy.obs_size, device=device)

    def finish():  # a GPU works asynchronously: a timing ends when its work does
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def infer():
        with torch.no_grad():
            logits, _ = policy(obs)
            logprobs = torch.log_softmax(logits, dim=-1)
            action = sample_actions(logprobs)
            logprobs.gather(-1, action.unsqueeze(-1))
            action.to(torch.int32).cpu().numpy()  # the actions' way back to the env

    mb = dict(
        obs=torch.randn(minibatch_size, policy.obs_size, device=device),
        actions=torch.randint(0, 10, (minibatch_size,), device=device),
        logprobs=torch.full((minibatch_size,), -math.log(10), device=device),
        advantages=torch.randn(minibatch_size, device=device),
        returns=torch.randn(minibatch_size, device=device),
        values=torch.randn(minibatch_size, device=device),
    )

    def update(dtype):
        loss, _ = ppo_loss(policy, mb, train_args, dtype)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), train_args.max_grad_norm)
        optimizer.step()
        finish()

    inference = median_rate(infer, num_agents, repeats, min_time=0.3)
    training = {
        dtype: median_rate(lambda dtype=dtype: update(dtype), minibatch_size, repeats, min_time=0.3)
        for dtype in (torch.float32, torch.bfloat16)
    }
    bound = 1.0 / (1.0 / inference + update_epochs / training[precision])
    return dict(
        inference_samples_per_s=round(inference),
        training_samples_per_s=round(training[precision]),
        training_float32_samples_per_s=round(training[torch.float32]),
        training_bfloat16_samples_per_s=round(training[torch.bfloat16]),
        update_precision=precision_name(precision),
        policy_bound_sps=round(bound),
        num_agents=num_agents,
        minibatch_size=minibatch_size,
        update_epochs=update_epochs,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/aggression.yaml")
    parser.add_argument(
        "--timesteps", type=float, default=None, help="train this many agent-steps (default: the config's)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--run-dir", help="keep the training run here (default: a temporary folder, deleted)")
    parser.add_argument(
        "--nproc-per-node", type=int, default=None, help="train with this many processes (default: config processes)"
    )
    parser.add_argument("--no-bound", action="store_true", help="skip the policy's compute bound (part 1)")
    args, args.overrides = parser.parse_known_args(argv)  # the rest: --section.key value overrides

    from configs import load_config, save_config
    from policies.runtime import select_device, select_precision
    from training.launch import train_in_subprocess
    from training.vecenv import make_vecenv

    config = load_config(args.config, args.overrides)
    if args.timesteps:
        config.train.total_timesteps = int(args.timesteps)
    if args.nproc_per_node is None:
        args.nproc_per_node = config.processes
    config.processes = args.nproc_per_node  # the child is torchrun's rank, or the one process
    torch.set_num_threads(config.torch_threads)
    vecenv = make_vecenv(config.env, seed=0)
    num_agents = vecenv.num_agents
    vecenv.close()
    rows = num_agents * config.train.num_steps
    device = select_device(config.device)
    bound = {"policy_bound_sps": math.nan}
    if config.policy.kind != "mlp" and not args.no_bound:
        print(f"the policy's compute bound is measured for policy.kind mlp; skipped for {config.policy.kind}")
        args.no_bound = True
    if not args.no_bound:
        bound = policy_bound(
            num_agents,
            math.ceil(rows / config.train.num_minibatches),
            config.train.update_epochs,
            config.policy.hidden_size,
            config.train,
            args.repeats,
            select_precision(config.train.update_precision, device),
            device,
        )
    with tempfile.TemporaryDirectory() as tmp:
        save_config(config, f"{tmp}/bench.yaml")
        summary = train_in_subprocess(f"{tmp}/bench.yaml", run_dir=args.run_dir or f"{tmp}/run",
                                      nproc=args.nproc_per_node)  # fmt: skip
    split = dict(summary["time_split_s"])
    split["other"] = max(summary["run_time_s"] - sum(split.values()), 0.0)
    total = sum(split.values())
    env_sps = summary["global_step"] / split["env"] if split.get("env") else float("nan")
    figures = dict(
        config=args.config,
        overrides=args.overrides,
        total_timesteps=config.train.total_timesteps,
        torch_threads=config.torch_threads,
        processes=args.nproc_per_node,
        all_reduce=summary.get("distributed", {}).get("all_reduce"),
        policy_kind=config.policy.kind,
        observation=config.env.observation,
        glibc_tunables=os.environ.get("GLIBC_TUNABLES"),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, device {summary['device']}",
        **bound,
        end_to_end_sps=summary["sps"],
        fraction_of_bound=round(summary["sps"] / bound["policy_bound_sps"], 3),
        env_only_sps=round(env_sps),
        time_split_s={k: round(v, 2) for k, v in split.items()},
        time_split_fraction={k: round(v / total, 3) for k, v in split.items()},
        run_time_s=summary["run_time_s"],
        global_step=summary["global_step"],
        best_eval=summary["best_eval"],
    )
    print(
        f"config {args.config} {' '.join(args.overrides)}  ({figures['machine']}, torch threads "
        f"{config.torch_threads}, {args.nproc_per_node} process{'es' if args.nproc_per_node > 1 else ''}"
        f"{', gradients summed by ' + figures['all_reduce'] if figures['all_reduce'] else ''})"
    )
    if not args.no_bound:
        print(f"policy inference     {bound['inference_samples_per_s']:>12,} samples/s   (batch {num_agents})")
        for name in ("float32", "bfloat16"):
            rate = bound[f"training_{name}_samples_per_s"]
            print(
                f"policy training      {rate:>12,} samples/s   (minibatch {bound['minibatch_size']}, fwd+bwd+Adam, "
                f"{name}: {rate / bound['training_float32_samples_per_s']:.2f}x float32"
                f"{', the config' if name == bound['update_precision'] else ''})"
            )
        print(
            f"policy compute bound {bound['policy_bound_sps']:>12,} agent-steps/s "
            f"(1 inference + {config.train.update_epochs} epochs)"
        )
    of_bound = "" if args.no_bound else f"= {figures['fraction_of_bound']:.0%} of the bound "
    print(
        f"end to end           {summary['sps']:>12,.0f} agent-steps/s {of_bound}"
        f"({summary['global_step']:,} steps in {summary['run_time_s']:.1f} s)"
    )
    print(f"env alone            {env_sps:>12,.0f} agent-steps/s")
    print("time split           " + "  ".join(f"{k} {v:.1%}" for k, v in figures["time_split_fraction"].items()))
    if args.json:
        atomic_write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    from configs.errors import run_command

    run_command(main)
