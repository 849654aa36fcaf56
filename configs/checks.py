"""What a valid config is, beyond the types of its values: ranges, choices, the arena's names and
the league's rules. The loader calls check() once a config is built.

Each range or set of choices is a named Constraint (or a tuple of choices), so that a check and
the message that says what was expected come from one place. Every error names the key and the
file (or command-line flag) that set it.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from configs.errors import ConfigError, key_source
from configs.names import CONFIG_DIR, fixed_opponent_name, specialist_config_path, specialist_name, split_name
from configs.schema import Config


@dataclass(frozen=True)
class Constraint:
    """A rule a value must follow, and how an error message says what a valid value is."""

    ok: Callable[[Any], bool]
    expected: str
    """what a valid value is, worded to follow "must be" (an integer >= 1)"""

    def or_null(self) -> Constraint:
        """The same rule, null (None) allowed as well."""
        return Constraint(lambda v: v is None or self.ok(v), f"{self.expected} or null")

    def noting(self, note: str) -> Constraint:
        """The same rule, its message followed by what the value means: "an integer >= 1 (agent-steps)"."""
        return Constraint(self.ok, f"{self.expected} ({note})")


def one_of(choices: tuple[str, ...]) -> Constraint:
    """The value is one of these choices; the message lists them ("a, b or c")."""
    return Constraint(lambda v: v in choices, f"{', '.join(choices[:-1])} or {choices[-1]}")


def iso_utc(text: str) -> str | None:
    """An ISO 8601 date or time as the database writes started_at (UTC, 2026-11-24T08:00:00.000Z),
    so that text comparison orders it correctly; None if it is not one. Times without an offset are UTC."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# The allowed values
# ---------------------------------------------------------------------------------------------
ENV_NAMES = ("arena", "gymnasium")
OBSERVATIONS = ("basic", "full")
"""arena.spec.OBSERVATIONS's kinds (not imported: a Gymnasium config loads without the arena)"""
POLICY_KINDS = ("mlp", "lstm")
"""policies.network.POLICY_KINDS (not imported: configs load without torch)"""
BACKENDS = ("Serial", "Multiprocessing")
PRECISIONS = ("auto", "float32", "bfloat16")
ALL_REDUCE_MODES = ("auto", "shared_memory", "backend")
"""config ``all_reduce`` (training/distributed.py says what each does)"""
EVAL_METRICS = ("win_rate", "survival_rate", "avg_reward", "mean_rank")
AGGREGATES = ("mean", "worst")
ACTION_ENCODINGS = ("auto", "argmax", "index")
PROMOTION_METRICS = ("win_rate", "mean_rank")
MIX_TERMS = ("latest", "past", "bots", "fixed")
"""The opponent-mix shares of the league and of a stage: probabilities of one draw, summing to 1."""

POSITIVE_INT = Constraint(lambda v: v >= 1, "an integer >= 1")
NON_NEGATIVE_INT = Constraint(lambda v: v >= 0, "an integer >= 0")
POSITIVE = Constraint(lambda v: v > 0, "a number > 0")
NON_NEGATIVE = Constraint(lambda v: v >= 0, "a number >= 0")
PROBABILITY = Constraint(lambda v: 0 <= v <= 1, "a probability in [0, 1]")
PROPER_FRACTION = Constraint(lambda v: 0 <= v < 1, "a number in [0, 1)")
SEED = Constraint(lambda v: 0 <= v < 2**32, "an integer from 0 to 2**32 - 1 (numpy's seed range)")
FIGHTERS = Constraint(lambda v: 2 <= v <= 8, "an integer from 2 to 8")
UPDATE_PRECISION = one_of(PRECISIONS)
DEVICE = Constraint(
    lambda v: v in ("auto", "cpu", "cuda", "mps") or v.startswith("cuda:"), "auto, cpu, cuda, cuda:N or mps"
)
# null (no bound) passes, but the message has always named only the date: the wording is kept.
ISO_TIME = Constraint(lambda v: v is None or iso_utc(v) is not None, "an ISO 8601 date or time, e.g. '2026-11-24'")
FOLDER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
"""A specialist's name, which names its run folder."""

# Keys whose value alone decides whether it is valid, checked in this order.
KEY_CONSTRAINTS = {
    "device": DEVICE,
    "torch_threads": POSITIVE_INT,
    "processes": POSITIVE_INT,
    "all_reduce": one_of(ALL_REDUCE_MODES),
    "seed": SEED,
    "eval.seed": SEED,
    "checkpoint_interval": POSITIVE_INT,
    "log_interval": POSITIVE.noting("seconds"),
    "env.name": one_of(ENV_NAMES),
    "env.backend": one_of(BACKENDS),
    "env.observation": one_of(OBSERVATIONS),
    "env.num_envs": POSITIVE_INT,
    "env.num_arenas": POSITIVE_INT,
    "env.fighters_per_arena": FIGHTERS,
    "env.report_interval": POSITIVE_INT,
    "policy.kind": one_of(POLICY_KINDS),
    "policy.hidden_size": POSITIVE_INT,
    "train.total_timesteps": POSITIVE_INT,
    "train.learning_rate": POSITIVE,
    "train.num_steps": POSITIVE_INT,
    "train.gamma": Constraint(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.gae_lambda": Constraint(lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "train.reward_scale": POSITIVE,
    "train.num_minibatches": POSITIVE_INT,
    "train.update_epochs": POSITIVE_INT,
    "train.clip_coef": POSITIVE,
    "train.max_grad_norm": POSITIVE,
    "train.target_kl": POSITIVE.or_null(),
    "train.symmetry_coef": NON_NEGATIVE,
    "train.symmetry_rows": Constraint(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.update_precision": UPDATE_PRECISION,
    "eval.interval": NON_NEGATIVE_INT.noting("0 disables evaluation"),
    "eval.matches": POSITIVE_INT,
    "eval.fighters": FIGHTERS,
    "eval.aggregate": one_of(AGGREGATES),
    "eval.metric": one_of(EVAL_METRICS),
    "eval.final_candidates": NON_NEGATIVE_INT.noting("0: best.pt is the best periodic evaluation"),
    "eval.final_matches": POSITIVE_INT,
    "imitation.fighters": Constraint(
        lambda v: v is None or (min(v) >= 0 if isinstance(v, list) and v else isinstance(v, int) and v >= 0),
        "null (every fighter), a fighter id or a non-empty list of fighter ids",
    ),
    "imitation.max_rank": Constraint(lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "imitation.since": ISO_TIME,
    "imitation.until": ISO_TIME,
    "imitation.action_encoding": one_of(ACTION_ENCODINGS),
    "imitation.holdout": PROPER_FRACTION,
    "imitation.epochs": POSITIVE_INT,
    "imitation.batch_size": POSITIVE_INT,
    "imitation.learning_rate": POSITIVE,
    "imitation.label_smoothing": PROPER_FRACTION,
    "imitation.sequence_length": POSITIVE_INT,
    "league.snapshot_interval": POSITIVE_INT.noting("agent-steps"),
    "league.pool_size": POSITIVE_INT,
    "league.latest": PROBABILITY,
    "league.past": PROBABILITY,
    "league.bots": PROBABILITY,
    "league.fixed": PROBABILITY,
    "league.priority_exponent": NON_NEGATIVE,
    "league.priority_floor": Constraint(lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "league.result_window": POSITIVE_INT,
    "league.rating_interval": NON_NEGATIVE_INT.noting("0: never"),
}


# ---------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Origins:
    """Where each key was set (see configs.errors.key_source), for the error messages."""

    sources: dict
    default_source: str

    def of(self, key: str) -> str:
        return key_source(self.sources, key, self.default_source)

    def fail(self, key: str, message: str) -> NoReturn:
        raise ConfigError(f"key {key!r} in {self.of(key)} {message}")

    def require(self, key: str, value, constraint: Constraint) -> None:
        if not constraint.ok(value):
            self.fail(key, f"must be {constraint.expected}, got {value!r}")


def check(config: Config, sources: dict, default_source: str) -> None:
    """Raise ConfigError for the first invalid value of a built config.

    ``sources`` maps the dotted keys that files and overrides set to where they were set;
    ``default_source`` names where the config came from as a whole.
    """
    at = _Origins(sources, default_source)
    for dotted, constraint in KEY_CONSTRAINTS.items():
        node = config
        for part in dotted.split("."):
            node = getattr(node, part)
        at.require(dotted, node, constraint)
    env = config.env
    if env.name == "gymnasium" and not env.id:
        at.fail("env.id", "must name a Gymnasium env (e.g. CartPole-v1) when env.name is gymnasium")
    if env.name == "gymnasium" and env.observation != "basic":
        at.fail("env.observation", "applies to the arena; a Gymnasium env has its own observation (leave it basic)")
    if env.name == "arena":
        _check_arena_keys(config, at)
    if config.train.symmetry_coef > 0:
        _check_symmetry_loss(config, at)
    if config.league.enabled:
        _check_league(config, at)


def _check_arena_keys(config: Config, at: _Origins) -> None:
    """Reward terms, rule names and bot names are the arena's; check them here so errors name the file."""
    # Imported here, not at the top: only arena configs need the arena's names, and a Gymnasium
    # config loads without importing the arena.
    from arena.rules import REWARD_PRESETS, REWARD_TERMS, ArenaConfigError, Rules, reward_preset
    from arena.variants import resolve_variant

    env = config.env
    rule_names = [f.name for f in dataclasses.fields(Rules)]
    if isinstance(env.rewards, dict):
        for term in env.rewards:
            if term not in REWARD_TERMS:
                raise ConfigError(
                    f"unknown key 'env.rewards.{term}' in {at.of(f'env.rewards.{term}')} "
                    f"(reward terms: {', '.join(REWARD_TERMS)})"
                )
    elif reward_preset(env.rewards) is None:
        at.fail("env.rewards", f"names no reward preset: {env.rewards!r} (presets: {', '.join(REWARD_PRESETS)})")
    _check_reward_weights(at, "env.rewards", env.rewards)
    for section, rules in (("env.rules", env.rules), ("eval.rules", config.eval.rules)):
        for name in rules:
            if name not in rule_names:
                raise ConfigError(
                    f"unknown key '{section}.{name}' in {at.of(f'{section}.{name}')} (rules: {', '.join(rule_names)})"
                )
    bots = []
    for entry in env.opponents or []:
        bots.extend(entry if isinstance(entry, list) else [entry])
    for key, names in (("env.opponents", bots), ("eval.opponents", config.eval.opponents)):
        for name in names:
            try:
                resolve_variant(name)  # a bot, a named variant or bot[key=value;...]
            except ArenaConfigError as exc:
                at.fail(key, f"names a bad bot: {exc}")
    if env.opponents is not None and len(env.opponents) >= env.fighters_per_arena:
        at.fail(
            "env.opponents",
            f"fills all {env.fighters_per_arena} slots ({len(env.opponents)} bots); "
            f"leave at least one slot for the learner",
        )


def _check_symmetry_loss(config: Config, at: _Origins) -> None:
    """The symmetry loss (train.symmetry_coef > 0) needs the arena's ring and PPO's feed-forward update."""
    key = "train.symmetry_coef"
    if config.env.name != "arena":
        at.fail(key, "applies to the arena's ring; a Gymnasium env has no known symmetries (leave it 0)")
    if config.mode == "imitation":
        at.fail(key, "is a term of PPO's update; behavioural cloning (mode: imitation) has none")
    if config.policy.kind != "mlp":
        at.fail(key, f"is for feed-forward policies (policy.kind mlp), not {config.policy.kind!r}")


def _check_reward_weights(at: _Origins, key: str, rewards) -> None:
    """The weights ``rewards`` resolves to: each a finite number, a draw below a win."""
    from arena.rules import ArenaConfigError, RewardWeights  # lazily, as in _check_arena_keys

    try:
        RewardWeights.resolve(rewards)
    except ArenaConfigError as exc:
        at.fail(key, f"is invalid: {exc}")


def _check_league(config: Config, at: _Origins) -> None:
    """The league's opponent mix, bots, curriculum stages, specialists and fixed opponents."""
    # lazily, as in _check_arena_keys
    from arena.rules import REWARD_PRESETS, REWARD_TERMS, ArenaConfigError, reward_preset
    from arena.variants import resolve_variant

    league = config.league

    def resolved_mix(key, stage=None):
        """The four shares, a stage's unset ones taken from the league. They are probabilities of
        one draw, so they must add up to 1; the error names where each share was set."""
        values, origins = {}, {}
        for term in MIX_TERMS:
            own = None if stage is None else getattr(stage, term)
            values[term] = getattr(league, term) if own is None else own
            origins[at.of(f"{key if own is not None else 'league'}.{term}")] = None
        total = sum(values.values())
        if abs(total - 1) > 1e-6:
            raise ConfigError(
                f"the opponent mix of {key} (set in {' and '.join(origins)}) must sum to 1: "
                + " + ".join(f"{term} {value:g}" for term, value in values.items())
                + f" = {total:g}"
            )
        return values

    if config.env.name != "arena":
        at.fail("league.enabled", "needs env.name arena: the league plays arena fighters")
    mixes = [("league", resolved_mix("league"), league.bot_names)]
    for n, stage in enumerate(league.stages):
        key = f"league.stages[{n}]"
        at.require(f"{key}.fighters", stage.fighters, FIGHTERS)
        if not 1 <= stage.learners < stage.fighters:
            at.fail(
                f"{key}.learners",
                f"must be from 1 to fighters - 1 = {stage.fighters - 1} (the rest are opponents), "
                f"got {stage.learners!r}",
            )
        at.require(f"{key}.num_arenas", stage.num_arenas, POSITIVE_INT.or_null())
        for term in MIX_TERMS:
            if getattr(stage, term) is not None:  # unset: the league's share, checked above
                at.require(f"{key}.{term}", getattr(stage, term), PROBABILITY)
        mixes.append((key, resolved_mix(key, stage), league.bot_names if stage.bot_names is None else stage.bot_names))
        if isinstance(stage.rewards, dict):
            for term in stage.rewards:
                if term not in REWARD_TERMS:
                    at.fail(f"{key}.rewards", f"has an unknown reward term {term!r} (terms: {', '.join(REWARD_TERMS)})")
        elif stage.rewards is not None and reward_preset(stage.rewards) is None:
            at.fail(
                f"{key}.rewards", f"names no reward preset: {stage.rewards!r} (presets: {', '.join(REWARD_PRESETS)})"
            )
        if stage.rewards is not None:
            _check_reward_weights(at, f"{key}.rewards", stage.rewards)
        rule = stage.promote
        if rule is not None:
            at.require(f"{key}.promote.metric", rule.metric, one_of(PROMOTION_METRICS))
            if n == len(league.stages) - 1:
                at.fail(
                    f"{key}.promote",
                    "is set on the last stage, which never ends: remove it, or add the stage to promote to",
                )
            if rule.metric == "win_rate" and not PROBABILITY.ok(rule.threshold):
                at.fail(f"{key}.promote.threshold", f"must be a win rate in [0, 1], got {rule.threshold!r}")
            if rule.metric == "mean_rank" and not 1 <= rule.threshold <= stage.fighters:
                at.fail(
                    f"{key}.promote.threshold",
                    f"must be a mean rank from 1 to fighters = {stage.fighters}, got {rule.threshold!r}",
                )
            at.require(f"{key}.promote.window", rule.window, POSITIVE_INT.noting("matches"))
            at.require(f"{key}.promote.min_steps", rule.min_steps, NON_NEGATIVE_INT)
            if rule.max_steps is not None and rule.max_steps < max(rule.min_steps, 1):
                at.fail(f"{key}.promote.max_steps", f"must be null or an integer >= min_steps, got {rule.max_steps!r}")
    for key, mix, names in mixes:
        latest, past, bots, fixed = mix["latest"], mix["past"], mix["bots"], mix["fixed"]
        if latest + past + bots <= 0:
            at.fail(f"{key}.latest", "together with past and bots must give a positive total probability")
        if fixed > 0 and not league.fixed_opponents and not league.specialists:
            at.fail(
                f"{key}.fixed",
                f"is {fixed!r} but neither league.fixed_opponents nor league.specialists names a fighter to field",
            )
        if bots > 0 and not names:
            at.fail(f"{key}.bot_names", "must name at least one bot when the bots probability is above 0")
        for name in names:
            try:
                resolve_variant(name)  # a bot, a named variant or bot[key=value;...]
            except ArenaConfigError as exc:
                at.fail(f"{key}.bot_names", f"names a bad bot: {exc}")
    names = set()
    for n, spec in enumerate(league.specialists):
        key = f"league.specialists[{n}]"
        if specialist_config_path(spec.config) is None:
            at.fail(f"{key}.config", f"names no config file: {spec.config!r} (neither as given nor in {CONFIG_DIR})")
        at.require(f"{key}.seed", spec.seed, SEED)
        at.require(f"{key}.total_timesteps", spec.total_timesteps, POSITIVE_INT.or_null())
        at.require(f"{key}.update_precision", spec.update_precision, UPDATE_PRECISION.or_null())
        at.require(f"{key}.hidden_size", spec.hidden_size, POSITIVE_INT.or_null())
        name = specialist_name(spec)
        if not FOLDER_NAME.fullmatch(name):
            at.fail(
                f"{key}.name", f"{name!r} must be a folder name: letters, digits, '_', '-' and '.' (not a leading '.')"
            )
        if name in names:
            at.fail(f"{key}.name", f"{name!r} is taken by an earlier specialist; give each its own name or seed")
        names.add(name)
    if league.init_from is not None and league.init_from not in names:
        at.fail(
            "league.init_from",
            f"names no specialist: {league.init_from!r} (specialists: {', '.join(sorted(names)) or 'none'})",
        )
    fixed_names = {name or fixed_opponent_name(path) for name, path in map(split_name, league.fixed_opponents)}
    known = (
        set(league.bot_names) | {n for stage in league.stages for n in (stage.bot_names or ())} | names | fixed_names
    )
    for name, cap in league.share_caps.items():
        if name not in known:
            at.fail(
                f"league.share_caps.{name}",
                f"names no bot or fixed opponent of this league (known: {', '.join(sorted(known)) or 'none'})",
            )
        if not 0.0 < cap <= 1.0:
            at.fail(f"league.share_caps.{name}", f"must be a fraction of its group's share in (0, 1], got {cap!r}")
    greedy = league.opponent_greedy
    if not isinstance(greedy, bool) and not PROBABILITY.ok(greedy):
        at.fail("league.opponent_greedy", f"must be true, false or a share from 0 to 1, got {greedy!r}")
    last = max(len(league.stages) - 1, 0)
    if not 0 <= league.start_stage <= last:
        at.fail("league.start_stage", f"must be a stage index from 0 to {last}, got {league.start_stage!r}")
