"""The config schema: one dataclass per section of a config file, and Config holding them.

The field names are the YAML keys, the defaults are the values a file may leave out, and the
docstring under each field is its documentation (docs/training.md lists the main ones). The
loader (configs/loader.py) builds these from YAML and checks the types; configs/checks.py checks
the values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
    opponents: list[str | list[str]] | None = field(default_factory=lambda: ["chaser"])
    """scripted bots in the non-learner slots: bot names, named variants or bot[key=value;...]
    (arena/variants.py); a list entry may be a list, sampled per match; None = all learners (self-play)"""
    rewards: dict[str, float] | str = "standard"
    """reward weights by term (survive, hit, knockout, damage_taken, edge, death, win, draw, inside; docs/arena.md),
    or a preset name"""
    report_interval: int = 32
    """env steps between episode-statistics reports"""
    rules: dict[str, Any] = field(default_factory=dict)
    """overrides of arena.Rules fields, e.g. {max_frames: 1800, frame_skip: 4}"""
    observation: str = "basic"
    """what a fighter sees: basic (the 30 numbers of the game's vector) or full (48: also its own and
    the 5 nearest enemies' attack cooldown and facing; docs/arena.md)"""


@dataclass
class PolicyConfig:
    """The network: obs -> hidden -> hidden (ReLU) or obs -> hidden (ReLU) -> LSTM, then a policy head
    and a value head."""

    kind: str = "mlp"
    """mlp (feed-forward, the default) or lstm (an LSTM core between the encoder and the heads: memory
    of the match so far; docs/training.md)"""
    hidden_size: int = 128
    """width of the hidden layers (and of the LSTM's state)"""


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
    symmetry_coef: float = 0.0
    """weight of the symmetry loss (training/symmetry.py): the policy and value of a state turned or
    mirrored by one of the ring's 16 symmetries should be those of the state, actions permuted
    (arena fighters, feed-forward policies; 0: off)"""
    symmetry_mirrors: bool = True
    """the symmetry loss also mirrors the ring (16 symmetries); false: turns only (8). A fighter symmetric
    under mirrors cannot break the tie of a mirror-symmetric state, such as a head-on approach"""
    symmetry_rows: float = 0.25
    """the share of each minibatch's rows that the symmetry loss also plays turned (each by a random
    symmetry other than the identity); its cost grows with it"""
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
    """bots to evaluate against (names, named variants or bot[key=value;...]), each in its own set of matches;
    the word gauntlet stands for every built-in bot and held-out variant (evaluate.py gauntlet's list)"""
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
    """at the end, replay the this-many checkpoints with the best periodic scores over final_matches;
    the best becomes best.pt (0: off)"""
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
    """cross-entropy label smoothing: keeps the logits moderate (about 20 instead of 300), so PPO can
    still explore when it fine-tunes the clone"""
    sequence_length: int = 16
    """a recurrent policy (policy.kind lstm) learns from whole episodes, replayed in order in
    batch_size / sequence_length parallel streams; each gradient step covers this many frames of
    each stream, its memory carried over from the step before (truncated backpropagation)"""


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
    hidden_size: int | None = None
    """its policy.hidden_size (None: the mode config's own); the league fields it, so it must be the learner's"""


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
    rewards: dict[str, float] | str | None = None
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
    """within older snapshots, fixed opponents and bots, draw in proportion to
    (1 - learner's recent score against them) ** priority_exponent"""
    priority_exponent: float = 2.0
    """sharpness of the prioritisation (0 = uniform)"""
    priority_floor: float = 0.001
    """the least prioritised weight of an entry, so that none is never drawn again; with many
    entries the learner always beats (a bot group of dozens of variants), their floors add up"""
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
    """training mode recorded with checkpoints (survival, aggression, tactical, adaptation, tournament);
    imitation runs behavioural cloning instead of PPO"""
    seed: int = 1
    """seed of torch, numpy and the envs"""
    device: str = "auto"
    """torch device: auto (cuda when available, else cpu), cpu, cuda, cuda:1"""
    torch_threads: int = 1
    """torch CPU threads (intra-op), in each process"""
    processes: int = 1
    """processes that train the run together on this machine's CPU, one rank each (torchrun
    --standalone, started by python train.py itself; docs/training.md, "More processes"). Under
    torchrun the launcher's count is the run's instead, and a run on a GPU trains in one process.
    1: this process alone"""
    all_reduce: str = "auto"
    """under torchrun, how the ranks sum their gradients: shared_memory (the ranks of one machine,
    on the CPU: Linux, x86-64), backend (the process group's: gloo or nccl), or auto (shared_memory
    where it can, else backend)"""
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
