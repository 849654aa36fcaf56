"""Evaluate a fighter over seeded matches, compare fighters, and replay their matches.

    python evaluate.py runs/<run>/checkpoints/best.pt --opponents random,chaser --matches 200 --seed 0
    python evaluate.py best.pt --opponents chaser,runs/old/checkpoints/best.pt,my_bots:charge --json out.json
    python evaluate.py best.pt --opponents chaser --replay match.gif --replay-frames match.ndjson
    python evaluate.py best.pt --db data/arena.db            # record a model_checkpoints row
    python evaluate.py compare v1=runs/a/checkpoints/step_000001638400.pt v2=runs/a/checkpoints/best.pt chaser
    python evaluate.py select runs/<run> --candidates 5 --matches 1000   # re-pick best.pt by a larger replay
    python evaluate.py gauntlet runs/<run>/checkpoints/best.pt --matches 200 --json gauntlet.json
    python evaluate.py symmetry runs/<run>/checkpoints/best.pt   # the same move in the turned ring?

A player (the evaluated one or an opponent) is a bot name, a bot variant (``far_kiter``,
``'kiter[retreat=2.0;noise=0.1]'``, arena/variants.py), a checkpoint file, ``module:function``
(obs float32 (n, 30) -> actions int (n,)), ``path/to/file.py:function`` or ``uniform``
(evaluation/players.py). This file is the command line; the work is done in evaluation/
(and, for ``select`` and ``--db``, in training/). The Python API, re-exported here:

    from evaluate import evaluate, compare
    results = evaluate(policy, opponents=["random", "chaser"], matches=200, seed=0)
    results["chaser"]["win_rate"], results["chaser"]["ci95"]
    table = compare(["runs/a/checkpoints/best.pt", "runs/b/checkpoints/best.pt", "chaser"], matches=100)

Every match is seeded, so the same players, seed and rules give the same numbers. A win is
finishing as the sole rank-1 fighter (the last one standing, or the healthiest at the time
limit); a shared first place is a draw. docs/evaluation.md is the guide.
"""

from __future__ import annotations

import argparse
import sys

from common.files import atomic_write_json
from evaluation.compare import compare
from evaluation.evaluate import evaluate, play_matches
from evaluation.gauntlet import format_gauntlet, gauntlet
from evaluation.matches import Z95, wilson_interval
from evaluation.outsiders import expand_outsiders
from evaluation.players import UNIFORM, Player, PlayerError, as_action_fn, resolve_player, uniform_policy
from evaluation.symmetry import format_symmetry, symmetry_report
from evaluation.tables import format_compare, format_table

__all__ = [
    "evaluate",
    "compare",
    "gauntlet",
    "play_matches",
    "as_action_fn",
    "uniform_policy",
    "wilson_interval",
    "UNIFORM",
    "Z95",
    "main",
]


# =============================================================================================
# Command line
# =============================================================================================
def env_settings(player: Player, config_path: str | None) -> dict:
    """Reward weights and rules: from --config if given, else the checkpoint's own config."""
    env = dict(player.env_config)
    if config_path:
        from configs import config_to_dict, load_config

        env = config_to_dict(load_config(config_path))["env"]
    return {"rewards": env.get("rewards", "standard"), **env.get("rules", {})}


def parse_list(text: str) -> list[str]:
    """Comma-separated player specs; the word ``outsiders`` stands for every opponent of
    evaluation/outsiders.py (written from docs/arena.md alone, never trained against)."""
    return expand_outsiders(o.strip() for o in text.split(",") if o.strip())


def evaluate_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Evaluate a fighter against opponents over seeded matches. "
        "Also: evaluate.py compare A B ... (round robin and ratings), evaluate.py gauntlet CKPT "
        "(every bot and the held-out variants, and the worst case), evaluate.py symmetry CKPT (the same "
        "move in the turned ring?).",
    )
    parser.add_argument(
        "checkpoint",
        help=f"the fighter: a .pt file from train.py, a bot name, module:function, "
        f"or '{UNIFORM}' for a uniformly random policy (the baseline)",
    )
    parser.add_argument(
        "--opponents",
        default="random,chaser",
        help="comma-separated: bot names, bot variants (far_kiter, 'kiter[retreat=2.0;noise=0.1]'), "
        "checkpoint files, module:function (default random,chaser)",
    )
    parser.add_argument("--matches", type=int, default=200, help="seeded matches per opponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fighters", type=int, default=2, help="fighters per match (the fighter + opponent copies)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    parser.add_argument(
        "--config",
        metavar="YAML",
        help="take reward weights (for avg_reward) and rules from this training config instead of the checkpoint's own",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--replay", metavar="PATH", help="render one match to an animated .gif (or .webp, .png)")
    parser.add_argument("--replay-frames", metavar="PATH", help="write one match as ingest-server frames (NDJSON)")
    parser.add_argument("--replay-opponent", metavar="SPEC", help="the replay's opponent (default: the first)")
    parser.add_argument("--replay-match", type=int, default=0, metavar="I", help="which match of the seed to replay")
    parser.add_argument("--replay-size", type=int, default=480, metavar="PX", help="replay width in pixels")
    parser.add_argument("--replay-speed", type=float, default=1.0, help="playback speed (1 = real time)")
    parser.add_argument("--db", metavar="PATH", help="record a model_checkpoints row in this arena database")
    parser.add_argument("--fighter-id", type=int, help="with --db: the fighter the row belongs to")
    args = parser.parse_args(argv)

    learner = resolve_player(args.checkpoint, greedy=not args.sample)
    if args.db and learner.checkpoint is None:
        raise ValueError(f"--db records checkpoints; {args.checkpoint!r} is a {learner.kind}, not a checkpoint file")
    if args.replay_size < 64:
        raise ValueError(f"--replay-size must be at least 64 pixels, got {args.replay_size!r}")
    opponents = parse_list(args.opponents)
    settings = env_settings(learner, args.config)
    results = evaluate(
        learner,
        opponents,
        matches=args.matches,
        seed=args.seed,
        fighters=args.fighters,
        greedy=not args.sample,
        **settings,
    )
    model = learner.checkpoint
    what = (
        f"step {model.global_step:,}"
        if model
        else {"bot": "built-in bot", UNIFORM: "baseline", "callable": "callable"}[learner.kind]
    )
    print(
        f"{args.checkpoint}: {what}, {args.fighters} fighters, seed {args.seed}, "
        f"{'sampled' if args.sample else 'greedy'} actions"
    )
    print(format_table(results))
    if args.json:
        atomic_write_json(
            args.json,
            {
                "checkpoint": args.checkpoint,
                "seed": args.seed,
                "fighters": args.fighters,
                "greedy": not args.sample,
                "results": results,
            },
        )
    if args.replay or args.replay_frames:
        from evaluation.replay import record_match, result_line, save_animation, write_frames

        opponent = args.replay_opponent or opponents[0]
        rec = record_match(
            learner,
            opponent,
            seed=args.seed,
            fighters=args.fighters,
            match=args.replay_match,
            greedy=not args.sample,
            **settings,
        )
        summary = (
            f"match {args.replay_match} of seed {args.seed} vs {opponent}: {rec.decisions} decisions "
            f"({rec.frame[-1] / 60:.1f} s), {result_line(rec)}"
        )
        if args.replay:
            count = save_animation(rec, args.replay, size=args.replay_size, speed=args.replay_speed)
            print(f"replay: {args.replay} ({count} pictures, one per decision); {summary}")
        if args.replay_frames:
            count = write_frames(rec, args.replay_frames)
            print(f"replay frames: {args.replay_frames} ({count} frames); {summary}")
    if args.db:
        from training.run import record_evaluated_checkpoint

        fighter_id, row = record_evaluated_checkpoint(args.db, model, results, args.fighter_id)
        print(f"database {args.db}: model_checkpoints row {row} for fighter {fighter_id}")
    return 0


def compare_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py compare",
        description="Round robin (1v1 and free-for-all) between fighters, with a win "
        "matrix and ratings. A fighter is a checkpoint file, bot name or module:function; NAME=SPEC names it.",
    )
    parser.add_argument("players", nargs="+", help="two or more fighters")
    parser.add_argument("--matches", type=int, default=100, help="1v1 matches per pair")
    parser.add_argument("--ffa-matches", type=int, default=100, help="free-for-all matches (0: none; needs 3+ players)")
    parser.add_argument("--ffa-fighters", type=int, help="fighters per free-for-all match (default: all, at most 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    parser.add_argument("--bootstrap", type=int, default=200, help="resamples for the rating intervals")
    parser.add_argument(
        "--rank-by",
        choices=("1v1", "ffa", "all"),
        default="1v1",
        help="the rating that orders the table: 1v1, free-for-all, or one fitted to both",
    )
    parser.add_argument("--config", metavar="YAML", help="rules and reward weights (default: the first checkpoint's)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

    from evaluation.compare import resolve_entrants

    players = resolve_entrants(args.players, greedy=not args.sample)
    first = next((p for p in players if p.checkpoint is not None), players[0])
    result = compare(
        players,
        matches=args.matches,
        ffa_matches=args.ffa_matches,
        ffa_fighters=args.ffa_fighters,
        seed=args.seed,
        greedy=not args.sample,
        bootstrap=args.bootstrap,
        rank_by=args.rank_by,
        **env_settings(first, args.config),
    )
    print(format_compare(result))
    if args.json:
        atomic_write_json(args.json, result)
    return 0


def select_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py select",
        description="Re-pick a run's best.pt: replay the checkpoints with the best "
        "periodic evaluation scores over more, other matches (seed eval.seed + 1) and copy the best over best.pt. "
        "A config's eval.final_candidates does this at the end of training.",
    )
    parser.add_argument("run", help="a run folder written by train.py")
    parser.add_argument(
        "--candidates",
        type=int,
        help="how many checkpoints replay (default: the run's eval.final_candidates, or 5 if it has none)",
    )
    parser.add_argument("--matches", type=int, help="matches per opponent (default: the run's eval.final_matches)")
    parser.add_argument("--dry-run", action="store_true", help="print the choice; leave best.pt as it is")
    parser.add_argument("--json", metavar="PATH", help="also write the candidates and the choice as JSON")
    args = parser.parse_args(argv)

    import dataclasses

    from policies import read_checkpoint
    from training.layout import RunFolder
    from training.selection import config_play, final_selection, format_selection, run_candidates

    for name in ("candidates", "matches"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name} must be at least 1, got {getattr(args, name)!r}")
    config, candidates = run_candidates(args.run)
    eval_config = dataclasses.replace(
        config.eval,
        final_candidates=args.candidates or config.eval.final_candidates or 5,
        final_matches=args.matches or config.eval.final_matches,
    )
    folder = RunFolder(args.run)
    selection = final_selection(
        candidates, folder.checkpoints, eval_config, config_play(config), write=not args.dry_run
    )
    if selection is None:
        raise ValueError(f"run {args.run!r} has no evaluated checkpoint on disk to choose from")
    print(format_selection(selection).replace("**", ""))
    chosen = folder.checkpoints / selection["chosen"]
    version = read_checkpoint(chosen)["model_version"]
    print(f"{'would copy' if args.dry_run else 'copied'} {chosen} (model version {version}) over {folder.best}")
    if args.json:
        atomic_write_json(args.json, selection)
    return 0


def gauntlet_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py gauntlet",
        description="Play a fighter against every built-in bot and the held-out bot variants "
        "(parameters outside the training ranges; docs/evaluation.md), plus any --opponents, "
        "and report each and the worst case.",
    )
    parser.add_argument("checkpoint", help="the fighter: a .pt file from train.py, a bot, or module:function")
    parser.add_argument("--matches", type=int, default=200, help="seeded matches per opponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="also write the results and the worst case as JSON")
    parser.add_argument(
        "--opponents",
        default="",
        help="comma-separated extra opponents: checkpoint files, module:function, more bot variants",
    )
    parser.add_argument("--fighters", type=int, default=2, help="fighters per match (the fighter + opponent copies)")
    parser.add_argument("--sample", action="store_true", help="sample actions instead of argmax")
    parser.add_argument("--config", metavar="YAML", help="rules and reward weights (default: the checkpoint's own)")
    args = parser.parse_args(argv)

    learner = resolve_player(args.checkpoint, greedy=not args.sample)
    result = gauntlet(
        learner,
        matches=args.matches,
        seed=args.seed,
        extra=parse_list(args.opponents),
        fighters=args.fighters,
        greedy=not args.sample,
        **env_settings(learner, args.config),
    )
    print(
        f"{args.checkpoint}: gauntlet of {len(result.results)} opponents, {args.matches} matches each, "
        f"{args.fighters} fighters, seed {args.seed}, {'sampled' if args.sample else 'greedy'} actions"
    )
    print(format_gauntlet(result))
    if args.json:
        atomic_write_json(
            args.json,
            {
                "checkpoint": args.checkpoint,
                "seed": args.seed,
                "matches": args.matches,
                "fighters": args.fighters,
                "greedy": not args.sample,
                **result.to_json(),
            },
        )
    return 0


def symmetry_main(argv) -> int:
    parser = argparse.ArgumentParser(
        prog="evaluate.py symmetry",
        description="How symmetric a fighter plays: over the states of a few seeded matches per opponent, "
        "how often the ring turned or mirrored (its 16 symmetries) gets the turned greedy move "
        "(docs/evaluation.md).",
    )
    parser.add_argument("checkpoint", help="a feed-forward fighter: a .pt file from train.py")
    parser.add_argument("--opponents", default="idle,chaser,striker,kiter", help="comma-separated opponents")
    parser.add_argument("--matches", type=int, default=8, help="seeded matches per opponent")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    report = symmetry_report(args.checkpoint, parse_list(args.opponents), args.matches, args.seed)
    print(f"{args.checkpoint}: the ring turned and mirrored, {args.matches} matches per opponent, seed {args.seed}")
    print(format_symmetry(report))
    if args.json:
        atomic_write_json(args.json, {"checkpoint": args.checkpoint, "seed": args.seed, "matches": args.matches,
                                      **report.to_json()})  # fmt: skip
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    import torch

    # Evaluation runs batches of a few hundred rows through a 128-wide network: one thread is
    # as fast, and two stall in OpenMP barriers whenever another process holds a core.
    torch.set_num_threads(1)
    from arena import ArenaConfigError
    from policies import CheckpointError
    from storage import StorageError

    try:
        if argv and argv[0] == "compare":
            return compare_main(argv[1:])
        if argv and argv[0] == "select":
            return select_main(argv[1:])
        if argv and argv[0] == "gauntlet":
            return gauntlet_main(argv[1:])
        if argv and argv[0] == "symmetry":
            return symmetry_main(argv[1:])
        return evaluate_main(argv)
    except (FileNotFoundError, CheckpointError, ArenaConfigError, PlayerError, StorageError, ValueError) as exc:
        # ConfigError is a ValueError; PlayerError names a bad module:function or bot
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
