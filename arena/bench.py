"""Throughput of the arena kernel, and against the slow reference implementation.

    python -m arena.bench            # a table
    python -m arena.bench --json     # one JSON object

python -m envs.bench adds the figures through pufferlib.vector (the env layer).

Figures are agent-steps per second: one agent-step is one fighter making one decision.
The headline figures use frame_skip=1 (a decision is one 60 Hz frame); `*_skip4` rows use
the shipped frame_skip=4, where each decision simulates four frames. Every figure is
the median of --repeats timed runs after a warm-up. Actions are random, drawn up front.
"""

from __future__ import annotations

import argparse
import json
import time

import numba
import numpy as np

from arena import OBS_SIZE, Arena, Rules, parse_slots
from arena.reference import reference_step
from common.timing import median_rate

FIGHTER_COUNTS = (2, 4, 8)


def _buffers(n):
    return (
        np.zeros((n, OBS_SIZE), np.float32),
        np.zeros(n, np.float32),
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.ones(n, bool),
    )


def action_table(num_agents, steps, seed=0):
    return np.random.default_rng(seed).integers(0, 10, size=(steps, num_agents), dtype=np.int32)


def bench_kernel(fighters, num_arenas, steps, repeats, threads, frame_skip=1):
    arena = Arena(
        num_arenas, fighters, parse_slots(fighters, None), Rules(frame_skip=frame_skip), seed=1, threads=threads
    )
    bufs = _buffers(arena.num_agents)
    arena.reset(*bufs)
    table = action_table(arena.num_agents, steps)

    def run():
        for t in range(steps):
            arena.step(table[t], *bufs)

    return median_rate(run, arena.num_agents * steps, repeats)


def bench_reference(fighters, num_arenas, steps):
    rules = Rules(frame_skip=1)
    arena = Arena(num_arenas, fighters, parse_slots(fighters, None), rules, seed=1)
    arena.reset(*_buffers(arena.num_agents))
    table = action_table(arena.num_agents, steps)
    state = arena.copy_state()
    start = time.perf_counter()
    for t in range(steps):
        state, _ = reference_step(state, table[t], rules, arena.weights, arena.num_agents)
    return arena.num_agents * steps / (time.perf_counter() - start)


KERNEL_ROWS = [
    ("kernel, 1 thread", "kernel_1t"),
    ("kernel, 1 thread, skip 4", "kernel_1t_skip4"),
    ("kernel, 2 threads", "kernel_2t"),
]
"""Table rows: label and figure key."""


def parser(description: str = __doc__) -> argparse.ArgumentParser:
    """The options arena.bench and envs.bench share."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arenas", type=int, default=1024, help="arenas per run (default 1024)")
    p.add_argument("--steps", type=int, default=200, help="decisions per timed run (default 200)")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per figure; the median is kept")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p


def measure(args) -> dict:
    """The kernel's figures on one and two threads, and the reference's."""
    cores = numba.config.NUMBA_NUM_THREADS
    out = {"arenas": args.arenas, "steps": args.steps, "repeats": args.repeats, "cores": cores}
    numba.set_num_threads(1)
    out["kernel_1t"] = {str(f): bench_kernel(f, args.arenas, args.steps, args.repeats, 1) for f in FIGHTER_COUNTS}
    out["kernel_1t_skip4"] = {
        str(f): bench_kernel(f, args.arenas, args.steps // 4, args.repeats, 1, 4) for f in FIGHTER_COUNTS
    }
    numba.set_num_threads(min(2, cores))
    out["kernel_2t"] = {str(f): bench_kernel(f, args.arenas, args.steps, args.repeats, None) for f in FIGHTER_COUNTS}
    out["reference_8"] = bench_reference(8, 8, 10)
    out["kernel_over_reference"] = out["kernel_1t"]["8"] / out["reference_8"]
    return out


def print_table(out: dict, rows) -> None:
    print(f"agent-steps/s, {out['arenas']} arenas, median of {out['repeats']} (frame_skip=1 unless noted)")
    print(f"{'':28s}" + "".join(f"{f + ' fighters':>16s}" for f in map(str, FIGHTER_COUNTS)))
    for label, key in rows:
        if key in out:
            print(f"{label:28s}" + "".join(f"{out[key][str(f)] / 1e6:14.2f} M" for f in FIGHTER_COUNTS))
    print(
        f"reference step (8 fighters): {out['reference_8']:,.0f} agent-steps/s; "
        f"kernel_1t / reference = {out['kernel_over_reference']:,.0f}x"
    )


def main(argv=None):
    args = parser().parse_args(argv)
    out = measure(args)
    if args.json:
        print(json.dumps(out, indent=None))
    else:
        print_table(out, KERNEL_ROWS)
    return out


if __name__ == "__main__":
    main()
