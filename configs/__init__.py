"""Training configs: the typed schema and loader, plus the shipped YAML files beside this module.

    from configs import load_config
    config = load_config("configs/aggression.yaml", ["--train.learning_rate", "1e-3"])
"""
from configs.schema import (
    CONFIG_DIR,
    Config,
    ConfigError,
    EnvConfig,
    EvalConfig,
    ImitationConfig,
    LeagueConfig,
    PolicyConfig,
    PromotionConfig,
    SpecialistConfig,
    StageConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    parse_overrides,
    save_config,
)

MODES = ("survival", "aggression", "tactical", "adaptation", "tournament")
"""The training modes; each has configs/<mode>.yaml."""

__all__ = [
    "CONFIG_DIR", "MODES", "Config", "ConfigError", "EnvConfig", "EvalConfig", "ImitationConfig", "LeagueConfig", "PolicyConfig", "PromotionConfig", "SpecialistConfig",
    "StageConfig",
    "TrainConfig", "config_from_dict", "config_to_dict", "load_config", "parse_overrides", "save_config",
]
