"""Which checkpoint of a run is best.pt: the periodic score, and a final, larger re-evaluation.

During a run the policy plays `eval.matches` matches against each of `eval.opponents` every
`eval.interval` updates; `score` turns those results into one number (`eval.metric`, combined
over the opponents by `eval.aggregate`), and the best score so far makes best.pt.

Each periodic score is noisy: over 200 matches a 90% win rate has a standard error of about
2 points. The best of some forty such scores is biased upwards (the winner's curse), so the
checkpoint it picks is often one whose matches went well, not the strongest one. With
`eval.final_candidates: K`, `final_selection` re-plays, at the end of the run, the K
checkpoints with the best periodic scores over `eval.final_matches` matches per opponent, on
other matches (seed `eval.seed + 1`), and makes the best of them best.pt. For a run already
trained, `python evaluate.py select RUN` does the same (`run_candidates` finds the
candidates). docs/training.md and docs/benchmarks.md have the measurements behind it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.files import atomic_write_bytes
from training.layout import RunFolder
from training.state import EvalRecord, Score

__all__ = ["score", "final_selection", "final_seed", "format_selection", "config_play", "run_candidates"]


def score(results: dict, metric: str, aggregate: str) -> Score:
    """The score of one evaluation: `metric` over the opponents, their mean or the weakest
    ("worst"), higher is better (mean_rank counts negated); ties go to the higher mean reward."""
    signed = [(-1.0 if metric == "mean_rank" else 1.0) * r[metric] for r in results.values()]
    value = float(np.min(signed) if aggregate == "worst" else np.mean(signed))
    return Score(value, float(np.mean([r["avg_reward"] for r in results.values()])))


def final_seed(eval_seed: int) -> int:
    """The final re-evaluation's seed: the one after the periodic evaluations' (other matches)."""
    return (eval_seed + 1) % 2**32


def config_play(config) -> Callable:
    """play(player, matches, seed) -> results per opponent, with a run config's evaluation
    settings (eval.opponents, fighters, greedy, rules) and its reward weights."""
    from evaluation.evaluate import evaluate

    def play(player, matches: int, seed: int) -> dict:
        return evaluate(
            player,
            opponents=config.eval.opponents,
            matches=matches,
            seed=seed,
            fighters=config.eval.fighters,
            greedy=config.eval.greedy,
            rewards=config.env.rewards,
            **{**config.env.rules, **config.eval.rules},
        )

    return play


def run_candidates(run_dir) -> tuple:
    """A finished run's config and its candidates (EvalRecords): the evaluations its latest.pt
    recorded (a run trained with eval.final_candidates), else its TensorBoard eval records,
    scored as train.py scores them, for those steps whose step_N.pt is on disk."""
    from configs import load_config
    from policies import read_checkpoint
    from training.state import TrainerState

    folder = RunFolder(run_dir)
    if not folder.config.is_file():
        raise FileNotFoundError(
            f"{str(folder.path)!r} is not a run folder (no config.yaml): give the folder "
            f"train.py wrote, e.g. runs/<run>"
        )
    config = load_config(folder.config)
    if config.eval.interval == 0 or config.env.name != "arena":
        raise ValueError(
            f"run {str(folder.path)!r} has no periodic evaluations (eval.interval 0 or not an arena "
            f"run), so there is nothing to choose from"
        )
    if folder.latest.is_file():
        evals = TrainerState.from_dict(read_checkpoint(folder.latest).get("trainer_state") or {}).evals
        if evals:
            return config, evals
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder.path), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags().get("scalars", []))
    records = {}
    for opponent in config.eval.opponents:
        for key in {config.eval.metric, "avg_reward"}:
            tag = f"eval/{opponent}/{key}"
            for e in events.Scalars(tag) if tag in tags else []:
                records.setdefault(e.step, {}).setdefault(opponent, {})[key] = e.value
    candidates = []
    for step, results in sorted(records.items()):
        path = folder.step_checkpoint(step)
        if len(results) == len(config.eval.opponents) and path.is_file():
            candidates.append(EvalRecord(step, score(results, config.eval.metric, config.eval.aggregate), path.name))
    return config, candidates


def final_selection(
    candidates: list[EvalRecord], ckpt_dir, eval_config, play: Callable, log: Callable = print, write: bool = True
) -> dict | None:
    """Re-evaluate the strongest candidates and write the winner over ``ckpt_dir``/best.pt.

    candidates: the run's periodic evaluations (EvalRecord). play(path, matches, seed) ->
    results per opponent, as evaluation.evaluate returns them (config_play). write=False
    leaves best.pt as it is. Returns what was played and chosen (summary.json's
    final_selection), or None when no candidate file is left.
    """
    from policies import BEST_NAME

    ckpt_dir = Path(ckpt_dir)
    present = [c for c in candidates if (ckpt_dir / c.checkpoint).is_file()]
    if len(present) < len(candidates):
        missing = sorted({c.checkpoint for c in candidates} - {c.checkpoint for c in present})
        log(
            f"final selection: {len(missing)} candidate checkpoint(s) no longer on disk, skipped: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    if not present:
        log("final selection: no evaluated checkpoint on disk to replay; best.pt stays as it is")
        return None
    top = sorted(present, key=lambda c: (c.score.as_list(), c.global_step), reverse=True)[
        : eval_config.final_candidates
    ]
    seed, rows = final_seed(eval_config.seed), []
    for record in top:
        results = play(str(ckpt_dir / record.checkpoint), eval_config.final_matches, seed)
        rows.append(
            dict(
                checkpoint=record.checkpoint,
                global_step=int(record.global_step),
                periodic_score=record.score.as_list(),
                score=score(results, eval_config.metric, eval_config.aggregate).as_list(),
                results=results,
            )
        )
    chosen = max(rows, key=lambda r: (r["score"], r["global_step"]))
    if write:
        atomic_write_bytes(ckpt_dir / BEST_NAME, (ckpt_dir / chosen["checkpoint"]).read_bytes())
    return dict(
        matches=eval_config.final_matches,
        seed=seed,
        chosen=chosen["checkpoint"],
        global_step=chosen["global_step"],
        score=chosen["score"],
        results=chosen["results"],
        candidates=[
            dict(
                {k: v for k, v in r.items() if k != "results"},
                win_rates={o: x["win_rate"] for o, x in r["results"].items()},
            )
            for r in rows
        ],
    )


def format_selection(selection: dict) -> str:
    """The candidates as a Markdown table (TensorBoard's text tab), the chosen one in bold."""
    opponents = list(selection["results"])
    lines = [
        f"best.pt: {selection['chosen']}, the best of {len(selection['candidates'])} candidates over "
        f"{selection['matches']} matches per opponent (seed {selection['seed']})",
        "",
        "| checkpoint | periodic score | final score | " + " | ".join(opponents) + " |",
        "|---" * (3 + len(opponents)) + "|",
    ]
    for c in selection["candidates"]:
        mark = "**" if c["checkpoint"] == selection["chosen"] else ""
        lines.append(
            f"| {mark}{c['checkpoint']}{mark} | {c['periodic_score'][0]:.3f} | {c['score'][0]:.3f} | "
            + " | ".join(f"{c['win_rates'][o]:.1%}" for o in opponents)
            + " |"
        )
    return "\n".join(lines)
