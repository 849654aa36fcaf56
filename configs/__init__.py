"""Training configs: the typed schema and loader, plus the shipped YAML files beside this module.

    from configs import load_config
    config = load_config("configs/aggression.yaml", ["--train.learning_rate", "1e-3"])

schema.py holds the dataclasses (the YAML keys and defaults), loader.py reads and builds them,
checks.py says which values are valid, names.py names config files, specialists and players,
and errors.py holds ConfigError.
"""

from configs.checks import iso_utc
from configs.errors import ConfigError
from configs.loader import config_from_dict, config_to_dict, load_config, parse_overrides, save_config
from configs.names import CONFIG_DIR, MODES, fixed_opponent_name, specialist_config_path, specialist_name, split_name
from configs.schema import (
    Config,
    EnvConfig,
    EvalConfig,
    ImitationConfig,
    LeagueConfig,
    PolicyConfig,
    PromotionConfig,
    SpecialistConfig,
    StageConfig,
    TrainConfig,
)

__all__ = [
    "CONFIG_DIR",
    "MODES",
    "Config",
    "ConfigError",
    "EnvConfig",
    "EvalConfig",
    "ImitationConfig",
    "LeagueConfig",
    "PolicyConfig",
    "PromotionConfig",
    "SpecialistConfig",
    "StageConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_overrides",
    "save_config",
    "fixed_opponent_name",
    "iso_utc",
    "specialist_config_path",
    "specialist_name",
    "split_name",
]
