"""Population-based training: K learners trained side by side, the weak ones replaced by perturbed
copies of the strong ones (Jaderberg et al. 2017, "Population Based Training of Neural Networks").

    python -m league.pbt configs/selfplay.yaml --population 2 --generations 4 [--out DIR]
                         [--matches 200] [--fitness 1v1|ffa|all] [--seed 0] [--section.key value ...]

The budget is the config's train.total_timesteps per member, cut into ``generations`` equal
segments. Each segment trains every member in turn with train.py (``python -m train ...
--stop-at N`` in a child process, resuming its run folder: training/launch.py), one after the
other: on a 2-core machine two trainings at once would only share the same cores. After a
segment the members' latest checkpoints play a round robin with the config's evaluation bots
(evaluation.compare), and the Elo-scale rating is each member's fitness. Then

- exploit: each member in the bottom ``--exploit`` fraction (at least one when K >= 2)
  whose rating is below the best's copies the best member's latest checkpoint (weights,
  optimizer, league pool) over its own;
- explore: it perturbs the copied hyperparameters, each multiplied by 0.8 or 1.25 at random.

Members start from the config's hyperparameters, member k > 0 with each one multiplied by a
seeded random factor in [0.5, 2] (log-uniform). The hyperparameters searched are
train.learning_rate and train.ent_coef. Results go to DIR/pbt.json (every generation's
ratings, hyperparameters and exploits) and TensorBoard charts in DIR (pbt/...); each member's
own run folder is DIR/member<k>. The config's league.specialists are trained once, in
DIR/specialists, and copied into each member's folder.
"""

if __name__ == "__main__":  # glibc reads malloc tunables at start only (policies/runtime.py)
    from policies.runtime import reexec_with_malloc_tunables

    reexec_with_malloc_tunables()

import argparse
import datetime
import functools
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from common.files import atomic_write_json
from configs import Config, ConfigError, load_config, parse_overrides
from policies.checkpoint import atomic_torch_save, read_checkpoint
from training.launch import train_in_subprocess
from training.layout import RunFolder
from training.state import EvalRecord, TrainerState

SEARCHED = ("learning_rate", "ent_coef")
"""train.* hyperparameters PBT perturbs"""
PERTURB = (0.8, 1.25)
"""explore: factors a copied hyperparameter is multiplied by"""


def initial_hyperparameters(config: Config, population: int, rng: np.random.Generator) -> list[dict]:
    base = {k: float(getattr(config.train, k)) for k in SEARCHED}
    members = [dict(base)]
    for _ in range(1, population):
        members.append({k: v * float(2.0 ** rng.uniform(-1.0, 1.0)) for k, v in base.items()})
    return members


def as_overrides(hyper: dict) -> list[str]:
    return [token for k, v in hyper.items() for token in (f"--train.{k}", repr(float(v)))]


def exploit(src: Path, dst: Path) -> None:
    """Copy a member's resumable state (latest checkpoint and league snapshots) over another's.

    The copied state's candidates for the final best.pt replay (trainer_state evals, file
    names in src's checkpoints folder) are re-pointed at src's files, relative to dst's."""
    src, dst = RunFolder(src), RunFolder(dst)
    dst.checkpoints.mkdir(parents=True, exist_ok=True)
    data = read_checkpoint(src.latest)
    state = TrainerState.from_dict(data["trainer_state"], data["model_version"])
    state.evals = [
        EvalRecord(
            e.global_step, e.score, os.path.relpath(os.path.normpath(src.checkpoints / e.checkpoint), dst.checkpoints)
        )
        for e in state.evals
    ]
    data["trainer_state"] = dict(data["trainer_state"], evals=[e.to_dict() for e in state.evals])
    atomic_torch_save(data, dst.latest)
    if dst.league.exists():
        shutil.rmtree(dst.league)
    if src.league.exists():
        shutil.copytree(src.league, dst.league)


def fitness(member_dirs: list[Path], config: Config, matches: int, mode: str, seed: int) -> dict:
    """Round robin of the members' latest checkpoints and the config's evaluation bots."""
    from evaluation.compare import compare

    entrants = [f"member{k}={RunFolder(d).latest}" for k, d in enumerate(member_dirs)]
    entrants += list(config.eval.opponents)
    ffa = mode != "1v1"  # free-for-all matches of all entrants (up to 8) as well
    result = compare(
        entrants,
        matches=matches,
        ffa_matches=matches if ffa else 0,
        ffa_fighters=min(len(entrants), 8) if ffa else None,
        seed=seed,
        rank_by=mode,
        rewards=config.env.rewards,
        bootstrap=50,
        **{**config.env.rules, **config.eval.rules},
    )
    return {row["name"]: row for row in result["ratings"]}


def run_pbt(
    config_path,
    overrides=(),
    population: int = 2,
    generations: int = 4,
    out=None,
    matches: int = 200,
    mode: str = "1v1",
    exploit_fraction: float = 0.25,
    seed: int = 0,
    progress: bool = False,
    nproc: int = 1,
) -> dict:
    """Population-based training as the module docstring says; nproc: processes per member
    (each member trains as one distributed run of nproc processes, torchrun --standalone)."""
    from torch.utils.tensorboard import SummaryWriter

    if population < 2:
        raise ValueError(f"population must be at least 2, got {population}")
    if generations < 1:
        raise ValueError(f"generations must be at least 1, got {generations}")
    if matches < 1:
        raise ValueError(f"matches must be at least 1 (matches per pairing in the rating round), got {matches}")
    if not 0 < exploit_fraction <= 1:
        raise ValueError(f"exploit must be a fraction of the population in (0, 1], got {exploit_fraction}")
    if nproc < 1:
        raise ValueError(f"nproc-per-node must be at least 1, got {nproc}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer from 0 to 2**32 - 1, got {seed}")
    config = load_config(config_path, overrides)
    out = Path(out) if out else Path(config.runs_dir) / f"pbt-{config.name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    hyper = initial_hyperparameters(config, population, rng)
    dirs = [out / f"member{k}" for k in range(population)]
    segment = math.ceil(config.train.total_timesteps / generations)
    if config.league.enabled and config.league.specialists:  # trained once; every member fields the same ones
        from league.specialists import train_specialists

        train_specialists(config, out / "specialists", functools.partial(train_in_subprocess, nproc=nproc), progress)
        for d in dirs:
            if not RunFolder(d).specialists.exists():
                shutil.copytree(out / "specialists", RunFolder(d).specialists)
    writer = SummaryWriter(str(out))
    history = []
    for gen in range(generations):
        stop_at = min((gen + 1) * segment, config.train.total_timesteps)
        for k in range(population):
            started = RunFolder(dirs[k]).latest.is_file()
            print(
                f"[pbt] generation {gen + 1}/{generations}: member{k} to step {stop_at:,} "
                f"({', '.join(f'{n} {v:.3g}' for n, v in hyper[k].items())})",
                flush=True,
            )
            if started:
                train_in_subprocess(resume=dirs[k], overrides=as_overrides(hyper[k]), stop_at=stop_at, nproc=nproc)
            else:
                train_in_subprocess(
                    config_path,
                    list(overrides) + as_overrides(hyper[k]) + ["--seed", str(config.seed + k)],
                    run_dir=dirs[k],
                    stop_at=stop_at,
                    nproc=nproc,
                )
        ratings = fitness(dirs, config, matches, mode, seed + gen)
        scores = [ratings[f"member{k}"]["rating"] for k in range(population)]
        order = np.argsort(scores)[::-1]
        best = int(order[0])
        record = {
            "generation": gen + 1,
            "step": stop_at,
            "ratings": {n: r["rating"] for n, r in ratings.items()},
            "hyperparameters": [dict(h) for h in hyper],
            "exploits": [],
        }
        if gen < generations - 1:
            losers = order[-max(1, int(round(exploit_fraction * population))) :]
            for k in map(int, losers):
                if k == best or scores[k] >= scores[best]:
                    continue
                exploit(dirs[best], dirs[k])
                hyper[k] = {n: v * float(rng.choice(PERTURB)) for n, v in hyper[best].items()}
                record["exploits"].append({"member": k, "copied": best, "new_hyperparameters": dict(hyper[k])})
                print(
                    f"[pbt] member{k} ({scores[k]:.0f}) copies member{best} ({scores[best]:.0f}) and explores "
                    f"{', '.join(f'{n} {v:.3g}' for n, v in hyper[k].items())}",
                    flush=True,
                )
        for k in range(population):
            writer.add_scalar(f"pbt/rating/member{k}", scores[k], stop_at)
            for n, v in record["hyperparameters"][k].items():
                writer.add_scalar(f"pbt/{n}/member{k}", v, stop_at)
        writer.add_scalar("pbt/best_rating", scores[best], stop_at)
        history.append(record)
        summary = {
            "out": str(out),
            "population": population,
            "generations": generations,
            "segment": segment,
            "fitness": mode,
            "history": history,
            "best_member": f"member{best}",
            "best_checkpoint": str(RunFolder(dirs[best]).latest),
        }
        atomic_write_json(out / "pbt.json", summary)
    writer.close()
    return summary


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m league.pbt", description=__doc__.split("\n\n")[0])
    parser.add_argument("config", help="training config (YAML)")
    parser.add_argument("--population", type=int, default=2, help="learners trained side by side (K)")
    parser.add_argument("--generations", type=int, default=4, help="exploit/explore rounds over the budget")
    parser.add_argument("--out", help="output folder (default runs/pbt-<name>-<timestamp>)")
    parser.add_argument("--matches", type=int, default=200, help="matches per pairing when rating the members")
    parser.add_argument("--fitness", choices=("1v1", "ffa", "all"), default="1v1", help="which rating ranks members")
    parser.add_argument("--exploit", type=float, default=0.25, help="bottom fraction of members that copy the best")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbations and rating matches")
    parser.add_argument("--nproc-per-node", type=int, default=1, help="processes each member trains with (torchrun)")
    args, rest = parser.parse_known_args(argv)
    try:
        parse_overrides(rest)
        summary = run_pbt(
            args.config,
            rest,
            args.population,
            args.generations,
            args.out,
            args.matches,
            args.fitness,
            args.exploit,
            args.seed,
            nproc=args.nproc_per_node,
        )
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(
            f"\nstopped{': ' + str(exc) if str(exc) else ''}; run the same command with --out to the same "
            f"folder to carry on (members resume from their latest checkpoints)",
            file=sys.stderr,
        )
        return 130
    last = summary["history"][-1]
    print(
        f"\nPBT finished: best {summary['best_member']} ({last['ratings'][summary['best_member']]:.0f} Elo)\n"
        f"  {summary['best_checkpoint']}\n  history in {summary['out']}/pbt.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
