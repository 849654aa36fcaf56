"""Throughput of the env layer: the arena kernel's figures (arena.bench) and the same arenas
stepped through pufferlib.vector's Serial and Multiprocessing backends.

    python -m envs.bench            # a table
    python -m envs.bench --json     # one JSON object

Figures are agent-steps per second (one fighter making one decision), medians of --repeats
timed runs after a warm-up, frame_skip=1 (a decision is one 60 Hz frame); `*_skip4` rows use
the shipped frame_skip=4. Actions are random, drawn up front.
"""

from __future__ import annotations

import json

import numba

from arena.bench import FIGHTER_COUNTS, KERNEL_ROWS, action_table, measure, parser, print_table
from common.timing import median_rate

ROWS = KERNEL_ROWS + [
    ("Serial vecenv, 1 thread", "serial_1t"),
    ("Serial vecenv, 2 threads", "serial"),
    ("Multiprocessing, 2 workers", "multiprocessing"),
]


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
    table = action_table(vecenv.num_agents, steps)

    def run():
        for t in range(steps):
            vecenv.step(table[t])

    try:
        return median_rate(run, vecenv.num_agents * steps, repeats)
    finally:
        vecenv.close()


def main(argv=None):
    p = parser(__doc__)
    p.add_argument(
        "--skip-multiprocessing",
        action="store_true",
        help="leave out the (slow, process-spawning) Multiprocessing figure",
    )
    args = p.parse_args(argv)
    out = measure(args)
    cores = out["cores"]
    numba.set_num_threads(1)
    out["serial_1t"] = {
        str(f): bench_vector("Serial", f, args.arenas, args.steps, args.repeats, 1) for f in FIGHTER_COUNTS
    }
    numba.set_num_threads(min(2, cores))
    out["serial"] = {
        str(f): bench_vector("Serial", f, args.arenas, args.steps, args.repeats, None) for f in FIGHTER_COUNTS
    }
    if not args.skip_multiprocessing:
        out["multiprocessing"] = {
            str(f): bench_vector("Multiprocessing", f, args.arenas, args.steps // 4, max(1, args.repeats // 2), 1)
            for f in FIGHTER_COUNTS
        }
    out["serial_over_kernel_1t"] = {f: out["serial_1t"][f] / out["kernel_1t"][f] for f in out["kernel_1t"]}
    out["serial_over_kernel_2t"] = {f: out["serial"][f] / out["kernel_2t"][f] for f in out["kernel_2t"]}
    if args.json:
        print(json.dumps(out, indent=None))
        return out
    print_table(out, ROWS)
    print(
        "Serial / kernel: 1 thread "
        + ", ".join(f"{v:.0%}" for v in out["serial_over_kernel_1t"].values())
        + "; 2 threads "
        + ", ".join(f"{v:.0%}" for v in out["serial_over_kernel_2t"].values())
    )
    return out


if __name__ == "__main__":
    main()
