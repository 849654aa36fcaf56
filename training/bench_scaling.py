"""Why two ranks are not twice one process: what the machine gives two busy processes, and
what one synchronised PPO optimizer step costs across ranks.

    python -m training.bench_scaling                      # configs/aggression.yaml's minibatch
    python -m training.bench_scaling --rounds 3 --steps 100 --json scaling.json

1. Ceiling: the update's work (forward, backward, gradient clip and Adam on one minibatch of
   the config's size, one torch thread) in one process, then the same in two independent
   processes at once; their summed steps/s over one process's is what the machine allows two
   ranks at best.
2. One optimizer step, one process on the whole minibatch against two gloo ranks on half of
   it each: unsynchronised; with DistributedDataParallel summing through gloo (``ddp``, what
   train.py does with ``all_reduce: backend``) and through shared memory (``shared_memory``,
   train.py's default on one Linux x86-64 machine); and with one hand-written gloo all-reduce of
   the flattened gradients. The difference between the first and the others is the price of
   synchronising every step.
Figures are medians over --rounds.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from common.files import atomic_write_json
from policies.network import Policy
from training import distributed

MODES = ("unsynchronised", "ddp", "shared_memory", "one_all_reduce")


def _minibatch_rows(config_path: str) -> int:
    from configs import load_config
    from training.vecenv import make_vecenv

    config = load_config(config_path)
    vecenv = make_vecenv(config.env, seed=0)
    num_agents = vecenv.num_agents
    vecenv.close()
    return config.train.num_steps * num_agents // config.train.num_minibatches


def _ms_per_step(rows: int, steps: int, mode: str = "alone", world: int = 1) -> float:
    """Milliseconds per optimizer step on ``rows`` random observations (one torch thread)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    policy = Policy(hidden_size=128)
    params = list(policy.parameters())
    model, here = policy, None
    if mode in ("ddp", "shared_memory"):  # as train.py wraps it
        rank = dist.get_rank()
        here = distributed.Dist(rank=rank, world_size=world, local_rank=rank, local_world_size=world)
        model = distributed.wrap(policy, here, "backend" if mode == "ddp" else "shared_memory")
    optimizer = torch.optim.Adam(params, lr=2.5e-4, eps=1e-5)
    obs = torch.randn(rows, policy.obs_size)

    def step():
        logits, value = model(obs)
        loss = logits.logsumexp(-1).mean() + value.square().mean()
        optimizer.zero_grad()
        loss.backward()
        if mode == "one_all_reduce":
            flat = torch.cat([p.grad.reshape(-1) for p in params])
            dist.all_reduce(flat)
            torch.nn.utils.vector_to_parameters(flat / world, [p.grad for p in params])
        torch.nn.utils.clip_grad_norm_(params, 0.5)
        optimizer.step()

    try:
        for _ in range(10):
            step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - t0) / steps * 1000
    finally:
        if here is not None and here.reducer is not None:  # the shared-memory mode's segment
            here.reducer.close()


def _worker(rank: int, world: int, port: int, rows: int, steps: int, modes: tuple, out) -> None:
    """Measure each of ``modes`` in turn; the ranks start each one together."""
    grouped = modes != ("independent",)
    if grouped:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for mode in modes:
            if grouped:
                dist.barrier()
            out.put((mode, rank, _ms_per_step(rows, steps, mode, world)))
        if grouped:
            dist.barrier()
    finally:
        if grouped:
            dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ranks(rows: int, steps: int, modes: tuple, world: int = 2) -> dict[str, list[float]]:
    """mode -> each rank's ms per step, ``world`` processes at once: one set of processes
    measures every mode in turn (starting processes, not measuring them, is what takes time).
    ``("independent",)`` alone runs them without a process group."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world, port, rows, steps, modes, out)) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a benchmark process failed (exit code {p.exitcode})")
    results = sorted(out.get() for _ in range(world * len(modes)))
    return {mode: [ms for m, _, ms in results if m == mode] for mode in modes}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.bench_scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/aggression.yaml", help="whose minibatch size to use")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="timed optimizer steps per measurement")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    rows = _minibatch_rows(args.config)
    print(f"minibatch: {rows:,} rows ({args.config}); one torch thread per process; {os.cpu_count()} CPUs")
    rounds = []
    for k in range(args.rounds):
        one = _ms_per_step(rows, args.steps)
        two = _ranks(rows, args.steps, ("independent",))["independent"]
        ceiling = sum(one / ms for ms in two)
        figures = {"one_process_ms": one, "two_independent_ms": two, "ceiling": ceiling}
        line = f"round {k + 1}: one process {one:.1f} ms/step; two independent processes {ceiling:.2f}x its steps/s"
        synchronised = _ranks(rows // 2, args.steps, MODES)
        for mode in MODES:
            figures[mode] = synchronised[mode]
            line += f"; 2 ranks {mode} {max(synchronised[mode]):.1f} ms"
        print(line, flush=True)
        rounds.append(figures)
    median = {
        "ceiling": statistics.median(r["ceiling"] for r in rounds),
        "one_process_ms": statistics.median(r["one_process_ms"] for r in rounds),
        **{f"two_ranks_{m}_ms": statistics.median(max(r[m]) for r in rounds) for m in MODES},
    }
    print(
        f"median: two independent processes {median['ceiling']:.2f}x one; one step {median['one_process_ms']:.1f} ms "
        f"in one process, " + ", ".join(f"{median[f'two_ranks_{m}_ms']:.1f} ms on 2 ranks {m}" for m in MODES)
    )
    if args.json:
        atomic_write_json(args.json, {"minibatch_rows": rows, "rounds": rounds, "median": median})
    return 0


if __name__ == "__main__":
    from configs.errors import run_command

    run_command(main)
