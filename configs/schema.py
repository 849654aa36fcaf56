"""Typed training configuration: dataclasses whose field names are the YAML keys, and the loader.

A config file is YAML with the sections below. A file may start from another with
``extends: base.yaml`` (a path relative to the file); its keys are merged over the
base's, section by section. Command-line overrides use PufferLib's convention,
``--section.key value`` (``--train.learning_rate 1e-3``); a top-level key is ``--seed 3``.

Every error names the key and the file (or the command-line flag) it came from.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

CLI = "the command line"


class ConfigError(ValueError):
    """A config file or override is missing, malformed, has an unknown key or a wrong type."""


# ---------------------------------------------------------------------------------------------
# The schema
# ---------------------------------------------------------------------------------------------
@dataclass
class EnvConfig:
    """What to train on and how it is vectorized."""

    name: str = "arena"
    """env family: "arena" (envs.ArenaEnv) or "gymnasium" (any Gymnasium id, via pufferlib.emulation)"""
    id: str | None = None
    """Gymnasium env id when name is gymnasium, e.g. CartPole-v1"""
    backend: str = "Serial"
    """pufferlib.vector backend: Serial (default, fastest for one big arena env) or Multiprocessing"""
    num_envs: int = 1
    """env instances the backend drives; for the arena one instance holds all arenas"""
    num_workers: int | None = None
    """worker processes for Multiprocessing (None: one per env)"""
    num_arenas: int = 1024
    """arenas simulated side by side in one ArenaEnv"""
    fighters_per_arena: int = 2
    """fighters in each ring (2 = 1v1, 8 = tournament free-for-all)"""
    opponents: list[Union[str, list[str]]] | None = field(default_factory=lambda: ["chaser"])
    """scripted bots in the non-learner slots (a list entry may be a list: sampled per match); None = all learners (self-play)"""
    rewards: Union[dict[str, float], str] = "seed"
    """reward weights by term (survive, hit, knockout, damage_taken, edge, death, win), or a preset name"""
    report_interval: int = 32
    """env steps between episode-statistics reports"""
    rules: dict[str, Any] = field(default_factory=dict)
    """overrides of arena.Rules fields, e.g. {max_frames: 1800, frame_skip: 4}"""


@dataclass
class PolicyConfig:
    """The network: obs -> hidden -> hidden (ReLU), a policy head and a value head."""

    hidden_size: int = 128
    """width of the two hidden layers"""


@dataclass
class TrainConfig:
    """PPO hyperparameters (names as in CleanRL's ppo.py)."""

    total_timesteps: int = 20_000_000
    """agent-steps to train for (masked steps of eliminated fighters do not count)"""
    learning_rate: float = 2.5e-3
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate linearly to 0 over total_timesteps"""
    num_steps: int = 64
    """rollout length per agent between updates"""
    gamma: float = 0.99
    """discount factor"""
    gae_lambda: float = 0.95
    """lambda of generalized advantage estimation"""
    reward_scale: float = 1.0
    """rewards are multiplied by this before GAE (keeps value targets near 1; logged returns are unscaled)"""
    num_minibatches: int = 8
    """minibatches per update epoch (the batch is the rollout's unmasked rows)"""
    update_epochs: int = 2
    """passes over the batch per update"""
    norm_adv: bool = True
    """normalize advantages per minibatch"""
    clip_coef: float = 0.2
    """PPO surrogate clipping coefficient"""
    clip_vloss: bool = True
    """clip the value loss around the rollout's value estimates"""
    ent_coef: float = 0.01
    """entropy bonus coefficient"""
    vf_coef: float = 0.5
    """value loss coefficient"""
    max_grad_norm: float = 0.5
    """global gradient-norm clip"""
    target_kl: float | None = None
    """stop the update's epochs early when the approximate KL exceeds this (None: never)"""
    update_precision: str = "float32"
    """number format of the update's forward and backward matmuls: float32, bfloat16 (mixed precision:
    weights, optimizer and losses stay float32; ~2x faster updates, but see docs/training.md) or
    auto (bfloat16 where the device multiplies it natively: a CPU with AVX512-BF16 or AMX, a CUDA
    GPU with bf16; else float32)"""


@dataclass
class EvalConfig:
    """Periodic evaluation against scripted bots; best.pt is the checkpoint with the best metric."""

    interval: int = 20
    """updates between evaluations (0 disables; best.pt then follows the training return)"""
    opponents: list[str] = field(default_factory=lambda: ["random", "chaser"])
    """bot names to evaluate against, each in its own set of matches"""
    matches: int = 200
    """seeded matches per opponent"""
    fighters: int = 2
    """fighters per evaluation match (the learner plus fighters - 1 copies of the bot)"""
    seed: int = 12345
    """seed of the evaluation matches (the same matches every time)"""
    greedy: bool = True
    """evaluate the argmax action instead of sampling"""
    metric: str = "win_rate"
    """what best.pt maximizes: win_rate, survival_rate, avg_reward or mean_rank (lower is better)"""
    aggregate: str = "mean"
    """how the metric combines over the opponents: mean, or worst (the weakest opponent result counts)"""
    rules: dict[str, Any] = field(default_factory=dict)
    """rule overrides for evaluation (default: the env's rules)"""
    final_candidates: int = 0
    """at the end, replay the this-many checkpoints with the best periodic scores over final_matches; the best becomes best.pt (0: off)"""
    final_matches: int = 1000
    """matches per opponent in that final re-evaluation (seed eval.seed + 1)"""


@dataclass
class ImitationConfig:
    """Behavioural cloning from recorded frames (used when mode is imitation; docs/training.md)."""

    fighters: list[int] | int | None = None
    """database fighter id, or list of ids, whose recorded frames are the demonstrations (None: every fighter)"""
    victories_only: bool = False
    """keep only episodes the fighter won (is_victory)"""
    max_rank: int | None = None
    """keep only episodes finished at this rank or better (1 = first; None: any rank)"""
    since: str | None = None
    """keep episodes started at or after this UTC date or time, ISO 8601 (2026-11-24 or 2026-11-24T08:00)"""
    until: str | None = None
    """keep episodes started before this UTC date or time, ISO 8601"""
    completed_only: bool = True
    """keep only completed episodes (an open episode may still be streaming, or was abandoned)"""
    action_encoding: str = "auto"
    """action_vector -> label: argmax (one-hot or scores, one per action), index (one number), auto (by length)"""
    holdout: float = 0.1
    """fraction of the episodes (not frames) held out to measure action accuracy (0: none)"""
    epochs: int = 100
    """passes over the training frames"""
    batch_size: int = 256
    """frames per gradient step"""
    learning_rate: float = 3e-3
    """Adam learning rate"""
    anneal_lr: bool = True
    """anneal the learning rate to 0 over the epochs (cosine)"""
    label_smoothing: float = 0.1
    """cross-entropy label smoothing: keeps the logits moderate (about 20 instead of 300), so PPO can still explore when it fine-tunes the clone"""


@dataclass
class PromotionConfig:
    """When a curriculum stage hands over to the next: the learner's record in its last training matches."""

    metric: str = "win_rate"
    """win_rate (sole first place; promote at or above threshold) or mean_rank (promote at or below it)"""
    threshold: float = 0.6
    """the value of metric over the last `window` matches that promotes"""
    window: int = 500
    """learner matches the metric is measured over (promotion waits until this many are played in the stage)"""
    min_steps: int = 0
    """agent-steps the learner trains in the stage before promotion is considered"""
    max_steps: int | None = None
    """promote anyway after this many agent-steps in the stage (None: only the metric promotes)"""


@dataclass
class SpecialistConfig:
    """A fighter the league trains first, with a mode config against the scripted bots, and then
    fields as a fixed opponent (docs/league.md)."""

    config: str = ""
    """the mode config it trains with: a YAML path, as given or inside configs/ (tactical.yaml)"""
    seed: int = 101
    """its training seed"""
    name: str = ""
    """its name in the pool (default: <config file stem>_s<seed>)"""
    total_timesteps: int | None = None
    """its budget in agent-steps (None: the mode config's own)"""
    update_precision: str | None = None
    """its train.update_precision: float32, bfloat16 or auto (None: the mode config's own)"""


@dataclass
class StageConfig:
    """One curriculum stage: ring size, opponent mix and rewards (unset keys take the league's or env's)."""

    name: str = ""
    """display name (default: stage<index>)"""
    fighters: int = 2
    """fighters per arena (2 = duel, 4 = 1v1v1v1, 8 = free-for-all)"""
    learners: int = 1
    """slots per arena the learner plays; the other fighters - learners slots are opponents from the pool"""
    num_arenas: int | None = None
    """arenas in this stage (None: env.num_arenas)"""
    latest: float | None = None
    """probability an opponent slot gets the latest snapshot (None: league.latest)"""
    past: float | None = None
    """probability it gets an older snapshot (None: league.past)"""
    bots: float | None = None
    """probability it gets a scripted bot (None: league.bots)"""
    bot_names: list[str] | None = None
    """scripted bots to draw from (None: league.bot_names)"""
    fixed: float | None = None
    """probability it gets one of league.fixed_opponents (None: league.fixed)"""
    rewards: Union[dict[str, float], str, None] = None
    """reward weights or preset in this stage (None: env.rewards)"""
    promote: PromotionConfig | None = None
    """the rule that ends this stage (None: the stage lasts to the end of training)"""


@dataclass
class LeagueConfig:
    """Self-play against a pool of frozen snapshots and bots, with an optional curriculum (docs/league.md)."""

    enabled: bool = False
    """train in the league (env.opponents is then unused: opponents come from the pool)"""
    snapshot_interval: int = 1_000_000
    """agent-steps between frozen snapshots of the learner added to the pool"""
    pool_size: int = 16
    """most snapshots kept; the oldest is retired when a new one arrives"""
    latest: float = 0.5
    """probability an opponent slot gets the latest snapshot"""
    past: float = 0.3
    """probability it gets an older snapshot (the latest when there is none yet)"""
    bots: float = 0.2
    """probability it gets a scripted bot"""
    bot_names: list[str] = field(default_factory=lambda: ["random", "idle", "chaser", "kiter", "edge_pusher"])
    """scripted bots in the pool"""
    fixed: float = 0.0
    """probability it gets one of fixed_opponents"""
    fixed_opponents: list[str] = field(default_factory=list)
    """fighters trained elsewhere that the pool fields as they are, never learning: checkpoint
    files (NAME=PATH names one; default name: its run folder), e.g. a mode config's best.pt"""
    specialists: list[SpecialistConfig] = field(default_factory=list)
    """fighters trained first, each with its mode config, then fielded like fixed_opponents
    (in <run>/specialists/<name>; a resumed run reuses them)"""
    init_from: str | None = None
    """the learner starts from this specialist's weights (a name from specialists, e.g.
    aggression_s101) instead of random ones (null). --init-from on the command line wins"""
    prioritized: bool = False
    """within older snapshots, fixed opponents and bots, draw in proportion to (1 - learner's recent score against them) ** priority_exponent"""
    priority_exponent: float = 2.0
    """sharpness of the prioritisation (0 = uniform)"""
    share_caps: dict[str, float] = field(default_factory=dict)
    """the most a named bot or fixed opponent takes of its group's share after prioritisation,
    e.g. {striker: 0.1}; the excess goes to the others in the group"""
    result_window: int = 400
    """results against each opponent that count for prioritisation and ratings (older ones fade out)"""
    opponent_greedy: bool | float = False
    """frozen snapshots play their argmax action instead of sampling: true, false, or the share
    of snapshot opponents (drawn per opponent and match) that play greedy"""
    rating_interval: int = 20
    """updates between pool ratings logged to TensorBoard (0: never)"""
    start_stage: int = 0
    """curriculum stage to start in (the last stage index trains without curriculum)"""
    stages: list[StageConfig] = field(default_factory=list)
    """the curriculum; empty: a single stage from env.fighters_per_arena with one learner slot"""


@dataclass
class Config:
    """A training run."""

    name: str = "run"
    """run name; the run folder is <runs_dir>/<name>-<timestamp>"""
    mode: str = "custom"
    """training mode recorded with checkpoints (survival, aggression, tactical, adaptation, tournament); imitation runs behavioural cloning instead of PPO"""
    seed: int = 1
    """seed of torch, numpy and the envs"""
    device: str = "auto"
    """torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1"""
    torch_threads: int = 1
    """torch CPU threads (intra-op)"""
    runs_dir: str = "runs"
    """parent folder of run folders"""
    checkpoint_interval: int = 50
    """updates between periodic checkpoints (latest.pt is refreshed at the same time)"""
    log_interval: float = 5.0
    """seconds between progress lines and database metric rows"""
    db: str | None = None
    """SQLite database to record the fighter, metrics and checkpoints in (None: no database)"""
    fighter_id: int | None = None
    """existing fighter id to train in the database (None: register a new fighter)"""
    glb_filename: str | None = None
    """3D model file the registered fighter uses (None: <name>.glb)"""
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    imitation: ImitationConfig = field(default_factory=ImitationConfig)
    league: LeagueConfig = field(default_factory=LeagueConfig)


# Values that are checked beyond their type; each message names what a valid value is.
_SEED_CHECK = (lambda v: 0 <= v < 2 ** 32, "an integer from 0 to 2**32 - 1 (numpy's seed range)")
_CHECKS = {
    "device": (lambda v: v in ("auto", "cpu", "cuda", "mps") or v.startswith("cuda:"),
               "auto, cpu, cuda, cuda:N or mps"),
    "torch_threads": (lambda v: v >= 1, "an integer >= 1"),
    "seed": _SEED_CHECK,
    "eval.seed": _SEED_CHECK,
    "checkpoint_interval": (lambda v: v >= 1, "an integer >= 1"),
    "log_interval": (lambda v: v > 0, "a number > 0 (seconds)"),
    "env.name": (lambda v: v in ("arena", "gymnasium"), "arena or gymnasium"),
    "env.backend": (lambda v: v in ("Serial", "Multiprocessing"), "Serial or Multiprocessing"),
    "env.num_envs": (lambda v: v >= 1, "an integer >= 1"),
    "env.num_arenas": (lambda v: v >= 1, "an integer >= 1"),
    "env.fighters_per_arena": (lambda v: 2 <= v <= 8, "an integer from 2 to 8"),
    "env.report_interval": (lambda v: v >= 1, "an integer >= 1"),
    "policy.hidden_size": (lambda v: v >= 1, "an integer >= 1"),
    "train.total_timesteps": (lambda v: v >= 1, "an integer >= 1"),
    "train.learning_rate": (lambda v: v > 0, "a number > 0"),
    "train.num_steps": (lambda v: v >= 1, "an integer >= 1"),
    "train.gamma": (lambda v: 0 < v <= 1, "a number in (0, 1]"),
    "train.gae_lambda": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    "train.reward_scale": (lambda v: v > 0, "a number > 0"),
    "train.num_minibatches": (lambda v: v >= 1, "an integer >= 1"),
    "train.update_epochs": (lambda v: v >= 1, "an integer >= 1"),
    "train.clip_coef": (lambda v: v > 0, "a number > 0"),
    "train.max_grad_norm": (lambda v: v > 0, "a number > 0"),
    "train.target_kl": (lambda v: v is None or v > 0, "a number > 0 or null"),
    "train.update_precision": (lambda v: v in ("auto", "float32", "bfloat16"), "auto, float32 or bfloat16"),
    "eval.interval": (lambda v: v >= 0, "an integer >= 0 (0 disables evaluation)"),
    "eval.matches": (lambda v: v >= 1, "an integer >= 1"),
    "eval.fighters": (lambda v: 2 <= v <= 8, "an integer from 2 to 8"),
    "eval.aggregate": (lambda v: v in ("mean", "worst"), "mean or worst"),
    "eval.metric": (lambda v: v in ("win_rate", "survival_rate", "avg_reward", "mean_rank"),
                    "win_rate, survival_rate, avg_reward or mean_rank"),
    "eval.final_candidates": (lambda v: v >= 0, "an integer >= 0 (0: best.pt is the best periodic evaluation)"),
    "eval.final_matches": (lambda v: v >= 1, "an integer >= 1"),
    "imitation.fighters": (lambda v: v is None or (min(v) >= 0 if isinstance(v, list) and v else isinstance(v, int) and v >= 0),
                           "null (every fighter), a fighter id or a non-empty list of fighter ids"),
    "imitation.max_rank": (lambda v: v is None or v >= 1, "null or an integer >= 1"),
    "imitation.since": (lambda v: v is None or iso_utc(v) is not None, "an ISO 8601 date or time, e.g. '2026-11-24'"),
    "imitation.until": (lambda v: v is None or iso_utc(v) is not None, "an ISO 8601 date or time, e.g. '2026-11-24'"),
    "imitation.action_encoding": (lambda v: v in ("auto", "argmax", "index"), "auto, argmax or index"),
    "imitation.holdout": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "imitation.epochs": (lambda v: v >= 1, "an integer >= 1"),
    "imitation.batch_size": (lambda v: v >= 1, "an integer >= 1"),
    "imitation.learning_rate": (lambda v: v > 0, "a number > 0"),
    "imitation.label_smoothing": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "league.snapshot_interval": (lambda v: v >= 1, "an integer >= 1 (agent-steps)"),
    "league.pool_size": (lambda v: v >= 1, "an integer >= 1"),
    "league.latest": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "league.past": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "league.bots": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "league.fixed": (lambda v: 0 <= v <= 1, "a probability in [0, 1]"),
    "league.priority_exponent": (lambda v: v >= 0, "a number >= 0"),
    "league.result_window": (lambda v: v >= 1, "an integer >= 1"),
    "league.rating_interval": (lambda v: v >= 0, "an integer >= 0 (0: never)"),
}


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
# Loading
# ---------------------------------------------------------------------------------------------
def load_config(path: str | os.PathLike | dict | None = None, overrides=()) -> Config:
    """Load a YAML config (following ``extends``), apply overrides, and type-check everything.

    ``path`` may also be a config dict (as a checkpoint stores it). ``overrides`` is either a
    list of command-line tokens (``["--train.learning_rate", "1e-3"]``) or a mapping of dotted
    keys to values (``{"train.learning_rate": 1e-3}``).
    """
    raw: dict = {}
    sources: dict[str, str] = {}
    label = CLI
    if isinstance(path, dict):
        raw, label = copy.deepcopy(path), "the checkpoint's stored config"
    elif path is not None:
        raw, sources = _read_with_extends(Path(path), chain=())
        label = str(path)
    if isinstance(overrides, dict):
        pairs = [(key, value, f"{CLI} ({key}={value!r})") for key, value in overrides.items()]
    else:
        pairs = [(key, _parse_scalar(value), f"{CLI} (--{key})") for key, value in parse_overrides(overrides)]
    for key, value, origin in pairs:
        _set_dotted(raw, key, value)
        sources[key] = origin
    config = _build(Config, raw, prefix="", sources=sources, default_source=label)
    _check(config, sources, default_source=label)
    return config


def parse_overrides(tokens) -> list[tuple[str, str]]:
    """Pair ``--section.key value`` / ``--section.key=value`` tokens into (dotted key, raw string)."""
    pairs, tokens, i = [], list(tokens), 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--") or len(token) < 3:
            raise ConfigError(f"expected an override like --train.learning_rate 1e-3, got {token!r}")
        key = token[2:]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        elif i + 1 < len(tokens):
            value = tokens[i + 1]
            i += 2
        else:
            raise ConfigError(f"override {token!r} on {CLI} has no value; write {token} VALUE")
        pairs.append((key.replace("-", "_"), value))
    return pairs


def config_to_dict(config: Config) -> dict:
    """The config as plain YAML-able data (the resolved config a run folder stores)."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict, source: str = "a checkpoint") -> Config:
    """Rebuild a Config from ``config_to_dict`` output, with the same checks as a file."""
    config = _build(Config, data, prefix="", sources={}, default_source=source)
    _check(config, {}, default_source=source)
    return config


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML (temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))
    os.replace(tmp, path)


def _read_with_extends(path: Path, chain: tuple) -> tuple[dict, dict]:
    if not path.is_file():
        hint = f" (extended by {chain[-1]})" if chain else ""
        raise ConfigError(f"config file {str(path)!r} not found{hint}")
    if path.resolve() in chain:
        raise ConfigError(f"config file {str(path)!r} extends itself through {[str(p) for p in chain]}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, got {type(data).__name__}")
    base, sources = {}, {}
    parent = data.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"key 'extends' in {str(path)!r} must be a file name, got {parent!r}")
        base, sources = _read_with_extends(path.parent / parent, chain + (path.resolve(),))
    for key, value in _flatten(data):
        _set_dotted(base, key, value)
        sources[key] = str(path)
    return base, sources


def _flatten(data: dict, prefix: str = ""):
    """Yield (dotted key, value) leaves; section mappings recurse, dict-valued fields stay whole."""
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and not _is_dict_field(dotted):
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted, value


def _is_dict_field(dotted: str) -> bool:
    cls, parts = Config, dotted.split(".")
    for part in parts:
        fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
        if part not in fields:
            return False
        cls = _hints(cls)[part]
    return any(typing.get_origin(arg) is dict for arg in _union_args(cls))


def _set_dotted(data: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _parse_scalar(text: str):
    """Parse an override value as YAML (numbers, booleans, null, [lists], {maps}); else keep the string."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# ---------------------------------------------------------------------------------------------
# Building and type checking
# ---------------------------------------------------------------------------------------------
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _union_args(tp) -> tuple:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _source(sources: dict, dotted: str, default_source: str) -> str:
    """The file (or command line) that set this key or the closest enclosing one."""
    parts = re.sub(r"\[\d+\]", "", dotted).split(".")  # league.stages[1].fighters: set with league.stages
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return sources[key]
    for key, origin in sources.items():
        if key.startswith(dotted + "."):
            return origin
    return default_source


def _build(cls, data, prefix: str, sources: dict, default_source: str):
    if not isinstance(data, dict):
        where = _source(sources, prefix.rstrip("."), default_source)
        raise ConfigError(f"section {prefix.rstrip('.')!r} in {where} must be a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            where = _source(sources, dotted, default_source)
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {prefix + close[0]!r}?" if close else ""
            valid = ", ".join(names)
            section = f"section {prefix.rstrip('.')!r}" if prefix else "the top level"
            raise ConfigError(f"unknown key {dotted!r} in {where}{hint} (valid keys in {section}: {valid})")
        tp = hints[key]
        item, listed = _dataclass_item(tp)
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, dotted + ".", sources, default_source)
        elif item is not None and value is not None and not listed:
            kwargs[key] = _build(item, value, dotted + ".", sources, default_source)
        elif item is not None and value is not None:
            if not isinstance(value, list):
                where = _source(sources, dotted, default_source)
                raise ConfigError(f"key {dotted!r} in {where} must be a list of mappings, got {value!r}")
            kwargs[key] = [_build(item, v, f"{dotted}[{n}].", sources, default_source) for n, v in enumerate(value)]
        else:
            kwargs[key] = _coerce(value, tp, dotted, _source(sources, dotted, default_source))
    return cls(**kwargs)


def _dataclass_item(tp) -> tuple:
    """(D, True) when tp is list[D] for a dataclass D, (D, False) when it is D | None (a
    section that may be absent), else (None, False)."""
    for arg in _union_args(tp):
        if typing.get_origin(arg) is list and dataclasses.is_dataclass(typing.get_args(arg)[0]):
            return typing.get_args(arg)[0], True
        if dataclasses.is_dataclass(arg) and arg is not tp:
            return arg, False
    return None, False


def _type_name(tp) -> str:
    if tp is type(None):
        return "null"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of ({_type_name(typing.get_args(tp)[0])})"
    if origin is dict:
        return f"a mapping of names to ({_type_name(typing.get_args(tp)[1])})"
    if tp is Any:
        return "any value"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    pass


def _coerce(value, tp, dotted: str, where: str):
    try:
        return _coerce_inner(value, tp)
    except _Mismatch:
        raise ConfigError(
            f"key {dotted!r} in {where} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})"
        ) from None


def _coerce_inner(value, tp):
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        # Exact matches first so that "seed" stays a string and 3 stays an int.
        for arg in args:
            if _matches_exactly(value, arg):
                return _coerce_inner(value, arg)
        for arg in args:
            try:
                return _coerce_inner(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, str) and "," in value:
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _Mismatch
        return [_coerce_inner(v, item) for v in value]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise _Mismatch
        return {k: _coerce_inner(v, val_tp) for k, v in value.items()}
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, int):
            return value
        number = _as_number(value)
        if number is not None and float(number).is_integer():
            return int(number)
        raise _Mismatch
    if tp is float:
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, (int, float)):
            return float(value)
        number = _as_number(value)
        if number is not None:
            return float(number)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, datetime.date):  # YAML reads an unquoted 2026-11-24 as a date
            return value.isoformat()
        raise _Mismatch
    raise TypeError(f"config schema uses an unsupported type {tp!r}")


def _matches_exactly(value, tp) -> bool:
    if tp is type(None):
        return value is None
    origin = typing.get_origin(tp)
    if origin is list:
        return isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict)
    if tp is bool:
        return isinstance(value, bool)
    if tp in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    return False


def _as_number(value):
    """Numbers written as strings: PyYAML reads 1e-3 (no dot) and 2e6 as strings."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return None
    return None


def _check(config: Config, sources: dict, default_source: str) -> None:
    for dotted, (ok, expected) in _CHECKS.items():
        node = config
        for part in dotted.split("."):
            node = getattr(node, part)
        if not ok(node):
            where = _source(sources, dotted, default_source)
            raise ConfigError(f"key {dotted!r} in {where} must be {expected}, got {node!r}")
    env = config.env
    if env.name == "gymnasium" and not env.id:
        where = _source(sources, "env.id", default_source)
        raise ConfigError(f"key 'env.id' in {where} must name a Gymnasium env (e.g. CartPole-v1) when env.name is gymnasium")
    if env.name == "arena":
        _check_arena_keys(config, sources, default_source)
    if config.league.enabled:
        _check_league(config, sources, default_source)


def _check_league(config: Config, sources: dict, default_source: str) -> None:
    """The league's opponent mix, bots and curriculum stages."""
    from arena.rules import BOT_NAMES, REWARD_PRESETS, REWARD_TERMS

    league = config.league

    def fail(key, message):
        raise ConfigError(f"key {key!r} in {_source(sources, key, default_source)} {message}")

    def resolved_mix(key, stage=None):
        """The four shares, a stage's unset ones taken from the league. They are probabilities of
        one draw, so they must add up to 1; the error names where each share was set."""
        values, origins = {}, {}
        for term in ("latest", "past", "bots", "fixed"):
            own = None if stage is None else getattr(stage, term)
            values[term] = getattr(league, term) if own is None else own
            origins[_source(sources, f"{key if own is not None else 'league'}.{term}", default_source)] = None
        total = sum(values.values())
        if abs(total - 1) > 1e-6:
            raise ConfigError(f"the opponent mix of {key} (set in {' and '.join(origins)}) must sum to 1: "
                              + " + ".join(f"{term} {value:g}" for term, value in values.items()) + f" = {total:g}")
        return values

    if config.env.name != "arena":
        fail("league.enabled", "needs env.name arena: the league plays arena fighters")
    mixes = [("league", resolved_mix("league"), league.bot_names)]
    for n, stage in enumerate(league.stages):
        key = f"league.stages[{n}]"
        if not 2 <= stage.fighters <= 8:
            fail(f"{key}.fighters", f"must be an integer from 2 to 8, got {stage.fighters!r}")
        if not 1 <= stage.learners < stage.fighters:
            fail(f"{key}.learners", f"must be from 1 to fighters - 1 = {stage.fighters - 1} (the rest are opponents), "
                                    f"got {stage.learners!r}")
        if stage.num_arenas is not None and stage.num_arenas < 1:
            fail(f"{key}.num_arenas", f"must be an integer >= 1 or null, got {stage.num_arenas!r}")
        for term, value in (("latest", stage.latest), ("past", stage.past), ("bots", stage.bots),
                            ("fixed", stage.fixed)):
            if value is not None and not 0 <= value <= 1:
                fail(f"{key}.{term}", f"must be a probability in [0, 1], got {value!r}")
        mixes.append((key, resolved_mix(key, stage), _first(stage.bot_names, league.bot_names)))
        if isinstance(stage.rewards, dict):
            for term in stage.rewards:
                if term not in REWARD_TERMS:
                    fail(f"{key}.rewards", f"has an unknown reward term {term!r} (terms: {', '.join(REWARD_TERMS)})")
        elif stage.rewards is not None and stage.rewards not in REWARD_PRESETS:
            fail(f"{key}.rewards", f"names no reward preset: {stage.rewards!r} (presets: {', '.join(REWARD_PRESETS)})")
        rule = stage.promote
        if rule is not None:
            if rule.metric not in ("win_rate", "mean_rank"):
                fail(f"{key}.promote.metric", f"must be win_rate or mean_rank, got {rule.metric!r}")
            if n == len(league.stages) - 1:
                fail(f"{key}.promote", "is set on the last stage, which never ends: remove it, or add the stage to promote to")
            if rule.metric == "win_rate" and not 0 <= rule.threshold <= 1:
                fail(f"{key}.promote.threshold", f"must be a win rate in [0, 1], got {rule.threshold!r}")
            if rule.metric == "mean_rank" and not 1 <= rule.threshold <= stage.fighters:
                fail(f"{key}.promote.threshold", f"must be a mean rank from 1 to fighters = {stage.fighters}, "
                                                 f"got {rule.threshold!r}")
            if rule.window < 1:
                fail(f"{key}.promote.window", f"must be an integer >= 1 (matches), got {rule.window!r}")
            if rule.min_steps < 0:
                fail(f"{key}.promote.min_steps", f"must be an integer >= 0, got {rule.min_steps!r}")
            if rule.max_steps is not None and rule.max_steps < max(rule.min_steps, 1):
                fail(f"{key}.promote.max_steps", f"must be null or an integer >= min_steps, got {rule.max_steps!r}")
    for key, mix, names in mixes:
        latest, past, bots, fixed = mix["latest"], mix["past"], mix["bots"], mix["fixed"]
        if latest + past + bots <= 0:
            fail(f"{key}.latest", "together with past and bots must give a positive total probability")
        if fixed > 0 and not league.fixed_opponents and not league.specialists:
            fail(f"{key}.fixed", f"is {fixed!r} but neither league.fixed_opponents nor league.specialists "
                                 f"names a fighter to field")
        if bots > 0 and not names:
            fail(f"{key}.bot_names", "must name at least one bot when the bots probability is above 0")
        for name in names:
            if name not in BOT_NAMES:
                fail(f"{key}.bot_names", f"names an unknown bot {name!r} (bots: {', '.join(BOT_NAMES)})")
    names = set()
    for n, spec in enumerate(league.specialists):
        key = f"league.specialists[{n}]"
        if specialist_config_path(spec.config) is None:
            fail(f"{key}.config", f"names no config file: {spec.config!r} (neither as given nor in {CONFIG_DIR})")
        if not _SEED_CHECK[0](spec.seed):
            fail(f"{key}.seed", f"must be {_SEED_CHECK[1]}, got {spec.seed!r}")
        if spec.total_timesteps is not None and spec.total_timesteps < 1:
            fail(f"{key}.total_timesteps", f"must be an integer >= 1 or null, got {spec.total_timesteps!r}")
        if spec.update_precision is not None and not _CHECKS["train.update_precision"][0](spec.update_precision):
            fail(f"{key}.update_precision", f"must be {_CHECKS['train.update_precision'][1]} or null, "
                                            f"got {spec.update_precision!r}")
        name = specialist_name(spec)
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):  # it names the specialist's run folder
            fail(f"{key}.name", f"{name!r} must be a folder name: letters, digits, '_', '-' and '.' (not a leading '.')")
        if name in names:
            fail(f"{key}.name", f"{name!r} is taken by an earlier specialist; give each its own name or seed")
        names.add(name)
    if league.init_from is not None and league.init_from not in names:
        fail("league.init_from", f"names no specialist: {league.init_from!r} "
                                 f"(specialists: {', '.join(sorted(names)) or 'none'})")
    from evaluation.players import split_name

    fixed_names = {name or fixed_opponent_name(path) for name, path in map(split_name, league.fixed_opponents)}
    known = set(league.bot_names) | {n for stage in league.stages for n in (stage.bot_names or ())} | names | fixed_names
    for name, cap in league.share_caps.items():
        if name not in known:
            fail(f"league.share_caps.{name}", f"names no bot or fixed opponent of this league "
                                             f"(known: {', '.join(sorted(known)) or 'none'})")
        if not 0.0 < cap <= 1.0:
            fail(f"league.share_caps.{name}", f"must be a fraction of its group's share in (0, 1], got {cap!r}")
    greedy = league.opponent_greedy
    if not isinstance(greedy, bool) and not 0.0 <= greedy <= 1.0:
        fail("league.opponent_greedy", f"must be true, false or a share from 0 to 1, got {greedy!r}")
    last = max(len(league.stages) - 1, 0)
    if not 0 <= league.start_stage <= last:
        fail("league.start_stage", f"must be a stage index from 0 to {last}, got {league.start_stage!r}")


CONFIG_DIR = Path(__file__).resolve().parent
"""Folder of the shipped YAML configs (base.yaml and one file per training mode)."""


def specialist_config_path(config: str) -> Path | None:
    """A specialist's mode config file: the path as given, else inside configs/ (None if neither exists)."""
    if not config:
        return None
    for path in (Path(config), CONFIG_DIR / config):
        if path.is_file():
            return path
    return None


def fixed_opponent_name(path: str) -> str:
    """A fixed opponent's default name: its run folder (runs/<run>/checkpoints/x.pt -> <run>), else the file's stem."""
    path = Path(path)
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.stem


def specialist_name(spec: SpecialistConfig) -> str:
    return spec.name or f"{Path(spec.config).stem}_s{spec.seed}"


def _first(value, default):
    return default if value is None else value


def _check_arena_keys(config: Config, sources: dict, default_source: str) -> None:
    """Reward terms, rule names and bot names are the arena's; check them here so errors name the file."""
    from arena.rules import BOT_NAMES, REWARD_PRESETS, REWARD_TERMS, Rules

    env = config.env
    rule_names = [f.name for f in dataclasses.fields(Rules)]
    if isinstance(env.rewards, dict):
        for term in env.rewards:
            if term not in REWARD_TERMS:
                where = _source(sources, f"env.rewards.{term}", default_source)
                raise ConfigError(f"unknown key 'env.rewards.{term}' in {where} (reward terms: {', '.join(REWARD_TERMS)})")
    elif env.rewards not in REWARD_PRESETS:
        where = _source(sources, "env.rewards", default_source)
        raise ConfigError(f"key 'env.rewards' in {where} names no reward preset: {env.rewards!r} (presets: {', '.join(REWARD_PRESETS)})")
    for section, rules in (("env.rules", env.rules), ("eval.rules", config.eval.rules)):
        for name in rules:
            if name not in rule_names:
                where = _source(sources, f"{section}.{name}", default_source)
                raise ConfigError(f"unknown key '{section}.{name}' in {where} (rules: {', '.join(rule_names)})")
    bots = []
    for entry in env.opponents or []:
        bots.extend(entry if isinstance(entry, list) else [entry])
    for key, names in (("env.opponents", bots), ("eval.opponents", config.eval.opponents)):
        for name in names:
            if name not in BOT_NAMES:
                where = _source(sources, key, default_source)
                raise ConfigError(f"key {key!r} in {where} names an unknown bot {name!r} (bots: {', '.join(BOT_NAMES)})")
    if env.opponents is not None and len(env.opponents) >= env.fighters_per_arena:
        where = _source(sources, "env.opponents", default_source)
        raise ConfigError(
            f"key 'env.opponents' in {where} fills all {env.fighters_per_arena} slots "
            f"({len(env.opponents)} bots); leave at least one slot for the learner")
