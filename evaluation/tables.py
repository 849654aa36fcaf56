"""Text tables of evaluation results, as evaluate.py and train.py print them."""

from __future__ import annotations

from evaluation.compare import unique_names


def format_table(results: dict) -> str:
    """One row per opponent of an ``evaluate`` result."""
    names = unique_names(list(results))  # checkpoint paths shortened to what tells them apart
    width = max([12] + [len(name) for name in names])
    header = (
        f"{'opponent':<{width}} {'win rate':>8}  {'95% CI':<15} {'draws':>6} {'reward':>8} {'KOs':>5} "
        f"{'ring-outs':>9} {'rank':>5} {'length':>7} {'matches':>7}"
    )
    lines = [header, "-" * len(header)]
    for name, r in zip(names, results.values(), strict=True):
        lo, hi = r["ci95"]
        lines.append(
            f"{name:<{width}} {r['win_rate']:>8.1%}  [{lo:5.1%}, {hi:5.1%}] {r['draw_rate']:>6.1%} "
            f"{r['avg_reward']:>8.2f} {r['knockouts']:>5.2f} {r['ring_outs']:>9.2f} "
            f"{r['mean_rank']:>5.2f} {r['match_length']:>7.0f} {r['matches']:>7}"
        )
    return "\n".join(lines)


def format_best_lines(results: dict) -> list[str]:
    """'best vs OPPONENT win ...' lines: a trained checkpoint's evaluation, as trainers print it."""
    lines = []
    for opponent, r in (results or {}).items():
        lo, hi = r["ci95"]
        lines.append(
            f"  best vs {opponent:<12} win {r['win_rate']:6.1%} [{lo:.1%}, {hi:.1%}]  survival "
            f"{r['survival_rate']:6.1%}  reward {r['avg_reward']:7.2f}  rank {r['mean_rank']:.2f}  "
            f"({r['matches']} matches)"
        )
    return lines


def format_compare(result: dict) -> str:
    """The ratings table and the 1v1 win matrix of a ``compare`` result."""
    rows = result["ratings"]
    width = max([6] + [len(r["name"]) for r in rows])
    ffa = result["ffa"]
    header = f"{'#':>2}  {'player':<{width}} {'1v1 rating':>10}  {'95% CI':<14} {'1v1 win':>8}"
    if ffa:
        header += f" {'FFA rating':>10}  {'95% CI':<14} {'FFA win':>8} {'FFA rank':>8}"
    lines = [
        f"Ratings (Elo scale, mean 1500; 95% CI from {result['bootstrap']} bootstrap resamples of the matches), "
        f"sorted by the {result['rank_by']} rating",
        header,
        "-" * len(header),
    ]
    for r in rows:
        lo, hi = r["rating_1v1_ci95"]
        line = (
            f"{r['rank']:>2}  {r['name']:<{width}} {r['rating_1v1']:>10.0f}  [{lo:5.0f}, {hi:5.0f}] "
            f"{r['win_rate_1v1']:>8.1%}"
        )
        if ffa:
            lo, hi = r["rating_ffa_ci95"]
            line += (
                f" {r['rating_ffa']:>10.0f}  [{lo:5.0f}, {hi:5.0f}] {r['ffa_win_rate']:>8.1%} "
                f"{r['ffa_mean_rank']:>8.2f}"
            )
        lines.append(line)
    order = [r["name"] for r in rows]
    lines += [
        "",
        f"1v1 win rate of the row against the column ({result['matches_1v1']} matches a pair; draws are in the JSON)",
        f"{'':>2}  {'':<{width}}" + "".join(f"{k:>7}" for k in range(1, len(order) + 1)),
    ]
    for k, a in enumerate(order, start=1):
        cells = "".join(f"{'-':>7}" if a == b else f"{result['matrix'][a][b]['win_rate']:>7.0%}" for b in order)
        lines.append(f"{k:>2}  {a:<{width}}{cells}")
    if ffa:
        lines += ["", f"Free-for-all: {ffa['matches']} matches of {ffa['fighters']} fighters (seats drawn per match)"]
    return "\n".join(lines)
