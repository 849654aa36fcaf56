"""Throughput of the arena: raw kernel, through pufferlib.vector, and against the reference.

    python -m arena.bench            # a table
    python -m arena.bench --json     # one JSON object

Figures are agent-steps per second: one agent-step is one fighter making one decision.
The headline figures use frame_skip=1 (a decision is one 60 Hz frame); `*_skip4` rows use
the shipped frame_skip=4, where each decision simulates four frames. Every figure is
the median of --repeats timed runs after a warm-up. Actions are random, drawn up front.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numba
import numpy as np

from arena import Arena, Rules, parse_slots
from arena.reference import reference_step

FIGHTER_COUNTS = (2, 4, 8)


def _buffers(n):
    return (np.zeros((n, 30), np.float32), np.zeros(n, np.float32), np.zeros(n, bool),
            np.zeros(n, bool), np.ones(n, bool))


def _median_rate(run, agent_steps, repeats):
    run()  # warm-up (and compilation)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(agent_steps / (time.perf_counter() - start))
    return statistics.median(rates)


def _action_table(num_agents, steps, seed=0):
    return np.random.default_rng(seed).integers(0, 10, size=(steps, num_agents), dtype=np.int32)


def bench_kernel(fighters, num_arenas, steps, repeats, threads, frame_skip=1):
    arena = Arena(num_arenas, fighters, parse_slots(fighters, None), Rules(frame_skip=frame_skip),
                  seed=1, threads=threads)
    bufs = _buffers(arena.num_agents)
    arena.reset(*bufs)
    table = _action_table(arena.num_agents, steps)

    def run():
        for t in range(steps):
            arena.step(table[t], *bufs)
    return _median_rate(run, arena.num_agents * steps, repeats)


def bench_vector(backend_name, fighters, num_arenas, steps, repeats, threads):
    import pufferlib.vector
    from envs import ArenaEnv
    backend = getattr(pufferlib.vector, backend_name)
    if backend_name == "Multiprocessing":
        kwargs = dict(num_envs=2, num_workers=2)
        env_kwargs = dict(num_arenas=num_arenas // 2, fighters_per_arena=fighters, frame_skip=1, threads=1)
    else:
        kwargs = dict(num_envs=1)
        env_kwargs = dict(num_arenas=num_arenas, fighters_per_arena=fighters, frame_skip=1, threads=threads)
    vecenv = pufferlib.vector.make(ArenaEnv, backend=backend, env_kwargs=env_kwargs, **kwargs)
    vecenv.reset(seed=1)
    table = _action_table(vecenv.num_agents, steps)

    def run():
        for t in range(steps):
            vecenv.step(table[t])
    try:
        return _median_rate(run, vecenv.num_agents * steps, repeats)
    finally:
        vecenv.close()


def bench_reference(fighters, num_arenas, steps):
    rules = Rules(frame_skip=1)
    arena = Arena(num_arenas, fighters, parse_slots(fighters, None), rules, seed=1)
    arena.reset(*_buffers(arena.num_agents))
    table = _action_table(arena.num_agents, steps)
    state = arena.copy_state()
    start = time.perf_counter()
    for t in range(steps):
        state, _ = reference_step(state, table[t], rules, arena.weights, arena.num_agents)
    return arena.num_agents * steps / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arenas", type=int, default=1024, help="arenas per run (default 1024)")
    parser.add_argument("--steps", type=int, default=200, help="decisions per timed run (default 200)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure; the median is kept")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--skip-multiprocessing", action="store_true",
                        help="leave out the (slow, process-spawning) Multiprocessing figure")
    args = parser.parse_args(argv)
    cores = numba.config.NUMBA_NUM_THREADS
    out = {"arenas": args.arenas, "steps": args.steps, "repeats": args.repeats, "cores": cores}

    numba.set_num_threads(1)
    out["kernel_1t"] = {str(f): bench_kernel(f, args.arenas, args.steps, args.repeats, 1) for f in FIGHTER_COUNTS}
    out["kernel_1t_skip4"] = {str(f): bench_kernel(f, args.arenas, args.steps // 4, args.repeats, 1, 4)
                              for f in FIGHTER_COUNTS}
    out["serial_1t"] = {str(f): bench_vector("Serial", f, args.arenas, args.steps, args.repeats, 1)
                        for f in FIGHTER_COUNTS}
    numba.set_num_threads(min(2, cores))
    out["kernel_2t"] = {str(f): bench_kernel(f, args.arenas, args.steps, args.repeats, None) for f in FIGHTER_COUNTS}
    out["serial"] = {str(f): bench_vector("Serial", f, args.arenas, args.steps, args.repeats, None)
                     for f in FIGHTER_COUNTS}
    if not args.skip_multiprocessing:
        out["multiprocessing"] = {str(f): bench_vector("Multiprocessing", f, args.arenas, args.steps // 4,
                                                       max(1, args.repeats // 2), 1) for f in FIGHTER_COUNTS}
    reference = bench_reference(8, 8, 10)
    out["reference_8"] = reference
    out["kernel_over_reference"] = out["kernel_1t"]["8"] / reference
    out["serial_over_kernel_1t"] = {f: out["serial_1t"][f] / out["kernel_1t"][f] for f in out["kernel_1t"]}
    out["serial_over_kernel_2t"] = {f: out["serial"][f] / out["kernel_2t"][f] for f in out["kernel_2t"]}

    if args.json:
        print(json.dumps(out, indent=None))
        return out
    print(f"agent-steps/s, {args.arenas} arenas, median of {args.repeats} (frame_skip=1 unless noted)")
    print(f"{'':28s}" + "".join(f"{f + ' fighters':>16s}" for f in map(str, FIGHTER_COUNTS)))
    rows = [("kernel, 1 thread", "kernel_1t"), ("kernel, 1 thread, skip 4", "kernel_1t_skip4"),
            ("kernel, 2 threads", "kernel_2t"), ("Serial vecenv, 1 thread", "serial_1t"),
            ("Serial vecenv, 2 threads", "serial"), ("Multiprocessing, 2 workers", "multiprocessing")]
    for label, key in rows:
        if key in out:
            print(f"{label:28s}" + "".join(f"{out[key][str(f)] / 1e6:14.2f} M" for f in FIGHTER_COUNTS))
    print(f"reference step (8 fighters): {reference:,.0f} agent-steps/s; "
          f"kernel_1t / reference = {out['kernel_over_reference']:,.0f}x")
    print("Serial / kernel: 1 thread " + ", ".join(f"{v:.0%}" for v in out["serial_over_kernel_1t"].values())
          + "; 2 threads " + ", ".join(f"{v:.0%}" for v in out["serial_over_kernel_2t"].values()))
    return out


if __name__ == "__main__":
    main()
