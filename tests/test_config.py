"""Config loading: shipped files, extends, overrides, and errors that name key and file."""

import pytest

from configs import CONFIG_DIR, MODES, Config, ConfigError, config_to_dict, load_config, parse_overrides, save_config

SHIPPED = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))  # every config the repo ships


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name):
    config = load_config(CONFIG_DIR / f"{name}.yaml")
    assert isinstance(config, Config)
    if name in MODES:
        assert config.mode == name and config.env.name == "arena"


def test_mode_files_extend_base_and_override_it():
    base = load_config(CONFIG_DIR / "base.yaml")
    aggression = load_config(CONFIG_DIR / "aggression.yaml")
    assert aggression.train.gamma == base.train.gamma  # inherited
    assert aggression.name == "aggression" != base.name  # overridden
    assert isinstance(aggression.env.rewards, dict)


def test_overrides_tokens_and_dict(tmp_path):
    config = load_config(
        CONFIG_DIR / "aggression.yaml",
        [
            "--train.learning_rate",
            "1e-3",
            "--train.total_timesteps=2e6",
            "--seed",
            "7",
            "--eval.opponents",
            "random,kiter",
            "--env.rewards.hit",
            "3",
            "--train.target_kl",
            "null",
        ],
    )
    assert config.train.learning_rate == 1e-3 and isinstance(config.train.learning_rate, float)
    assert config.train.total_timesteps == 2_000_000 and isinstance(config.train.total_timesteps, int)
    assert config.seed == 7
    assert config.eval.opponents == ["random", "kiter"]
    assert config.env.rewards["hit"] == 3.0 and "knockout" in config.env.rewards
    assert config.train.target_kl is None
    config = load_config(CONFIG_DIR / "base.yaml", {"train.update_epochs": 3})
    assert config.train.update_epochs == 3


def test_resolved_config_round_trips(tmp_path):
    config = load_config(CONFIG_DIR / "tournament.yaml", ["--train.gamma", "0.98"])
    save_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert config_to_dict(again) == config_to_dict(config)
    assert load_config(config_to_dict(config)) == config


def write(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_key_names_key_and_file(tmp_path):
    path = write(tmp_path, "train:\n  learnign_rate: 0.1\n")
    with pytest.raises(
        ConfigError, match=r"unknown key 'train.learnign_rate' in .*bad.yaml.*did you mean 'train.learning_rate'"
    ):
        load_config(path)


def test_unknown_section_and_reward_term(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'trian' in .*bad.yaml"):
        load_config(write(tmp_path, "trian:\n  gamma: 0.9\n"))
    with pytest.raises(ConfigError, match=r"unknown key 'env.rewards.punch' in .*bad2.yaml"):
        load_config(write(tmp_path, "env:\n  rewards: {punch: 1.0}\n", "bad2.yaml"))
    with pytest.raises(ConfigError, match=r"unknown key 'env.rules.gravity'"):
        load_config(write(tmp_path, "env:\n  rules: {gravity: 9.8}\n", "bad3.yaml"))
    with pytest.raises(ConfigError, match=r"unknown bot 'ninja'"):
        load_config(write(tmp_path, "env:\n  opponents: [ninja]\n", "bad4.yaml"))


def test_bot_variants_in_opponent_lists(tmp_path):
    config = load_config(
        write(tmp_path, "env:\n  opponents: [[far_kiter, 'kiter[noise=0.1]']]\neval:\n  opponents: [slow_chaser]\n")
    )
    assert config.env.opponents == [["far_kiter", "kiter[noise=0.1]"]] and config.eval.opponents == ["slow_chaser"]
    with pytest.raises(ConfigError, match=r"key 'eval.opponents' in .*v.yaml .*noise must be in \[0, 1\], got 3.0"):
        load_config(write(tmp_path, "eval:\n  opponents: ['kiter[noise=3]']\n", "v.yaml"))


def test_gauntlet_in_eval_opponents_stands_for_every_bot_and_held_out_variant(tmp_path):
    from arena import BOT_NAMES, HELD_OUT_VARIANTS

    text = "eval:\n  opponents: [chaser, gauntlet, 'kiter[noise=0.1]']\n  aggregate: worst\n"
    config = load_config(write(tmp_path, text))
    assert config.eval.opponents == ["chaser", *[n for n in BOT_NAMES if n != "chaser"], *HELD_OUT_VARIANTS,
                                     "kiter[noise=0.1]"]  # fmt: skip
    assert "striker" in config.eval.opponents and "far_kiter" in config.eval.opponents
    assert config_to_dict(config)["eval"]["opponents"] == config.eval.opponents  # the resolved config lists them


def test_wide_in_env_opponents_stands_for_the_training_distribution(tmp_path):
    from arena import BOT_NAMES
    from arena.variants import RANDOM_KEYS, TRAINING, WIDE_OPPONENTS, WIDE_RANDOM, resolve_variant

    config = load_config(write(tmp_path, "env:\n  opponents: [[wide, striker]]\n"))
    assert config.env.opponents == [[*WIDE_OPPONENTS, "striker"]]
    assert config_to_dict(config)["env"]["opponents"] == config.env.opponents  # the resolved config lists them
    assert set(BOT_NAMES) <= set(WIDE_OPPONENTS)
    variants = [resolve_variant(name) for name in WIDE_OPPONENTS]
    assert not any(v.held_out for v in variants)  # the held-out variants stay out of training
    random_ones = variants[-WIDE_RANDOM:]
    for key in RANDOM_KEYS:  # the random variants spread over each training range they draw from
        lo, hi = TRAINING[key]
        values = [getattr(v.params, key) for v in random_ones]
        assert lo <= min(values) < lo + 0.3 * (hi - lo) and hi - 0.3 * (hi - lo) < max(values) <= hi, key
    assert set(TRAINING) - set(RANDOM_KEYS) == {"leash"} and all(v.params.leash == 1.0 for v in random_ones)
    assert load_config(write(tmp_path, "env:\n  opponents: [wide]\n", "w.yaml")).env.opponents == [list(WIDE_OPPONENTS)]
    league = load_config(CONFIG_DIR / "selfplay.yaml", {"league.bot_names": ["wide"]}).league
    assert league.bot_names == list(WIDE_OPPONENTS)


def test_wrong_type_names_key_file_and_value(tmp_path):
    with pytest.raises(ConfigError, match=r"key 'train.num_steps' in .*bad.yaml must be int, got 'many'"):
        load_config(write(tmp_path, "train:\n  num_steps: many\n"))
    with pytest.raises(ConfigError, match=r"key 'train.anneal_lr' .* must be bool"):
        load_config(write(tmp_path, "train:\n  anneal_lr: 1\n", "b.yaml"))
    with pytest.raises(ConfigError, match=r"key 'train.gamma' .* must be a number in \(0, 1\]"):
        load_config(write(tmp_path, "train:\n  gamma: 1.5\n", "c.yaml"))
    with pytest.raises(ConfigError, match=r"section 'train' .* must be a mapping"):
        load_config(write(tmp_path, "train: 3\n", "d.yaml"))
    with pytest.raises(ConfigError, match=r"key 'train.update_precision' .* must be auto, float32 or bfloat16"):
        load_config(write(tmp_path, "train:\n  update_precision: fp16\n", "e.yaml"))


def test_error_names_the_file_in_an_extends_chain(tmp_path):
    write(tmp_path, "train:\n  update_epochs: two\n", "parent.yaml")
    child = write(tmp_path, "extends: parent.yaml\nname: child\n", "child.yaml")
    with pytest.raises(ConfigError, match=r"'train.update_epochs' in .*parent.yaml"):
        load_config(child)


def test_override_errors_name_the_command_line():
    with pytest.raises(ConfigError, match=r"unknown key 'train.lr' in the command line"):
        load_config(CONFIG_DIR / "base.yaml", ["--train.lr", "1"])
    with pytest.raises(ConfigError, match=r"key 'train.update_epochs' in the command line .* must be int"):
        load_config(CONFIG_DIR / "base.yaml", ["--train.update_epochs", "x"])
    with pytest.raises(ConfigError, match="has no value"):
        parse_overrides(["--seed"])
    with pytest.raises(
        ConfigError, match=r"key 'seed' in the command line \(--seed\) must be an integer from 0 to 2\*\*32 - 1"
    ):
        load_config(CONFIG_DIR / "base.yaml", ["--seed", "-1"])  # numpy's seeding would raise mid-run
    with pytest.raises(ConfigError, match=r"key 'eval.seed' .* from 0 to 2\*\*32 - 1"):
        load_config(CONFIG_DIR / "base.yaml", ["--eval.seed", str(2**32)])


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match=r"config file .*nope.yaml' not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"not found \(extended by"):
        load_config(write(tmp_path, "extends: missing.yaml\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "train: [unclosed\n", "e.yaml"))
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(write(tmp_path, "- a\n- b\n", "f.yaml"))


def test_the_symmetry_loss_is_refused_where_it_does_not_apply():
    base = CONFIG_DIR / "base.yaml"
    assert load_config(base, ["--train.symmetry_coef", "1"]).train.symmetry_coef == 1.0
    with pytest.raises(ConfigError, match=r"'train.symmetry_coef' .* a number >= 0, got -1"):
        load_config(base, ["--train.symmetry_coef", "-1"])
    with pytest.raises(ConfigError, match=r"'train.symmetry_rows' .* a number in \(0, 1\], got 0"):
        load_config(base, ["--train.symmetry_rows", "0"])
    with pytest.raises(ConfigError, match=r"'train.symmetry_coef' .* feed-forward policies .* not 'lstm'"):
        load_config(base, ["--train.symmetry_coef", "1", "--policy.kind", "lstm"])
    with pytest.raises(ConfigError, match=r"'train.symmetry_coef' .* arena's ring; a Gymnasium env"):
        load_config(CONFIG_DIR / "cartpole.yaml", ["--train.symmetry_coef", "0.5"])
    with pytest.raises(ConfigError, match=r"'train.symmetry_coef' .* behavioural cloning"):
        load_config(CONFIG_DIR / "imitation.yaml", ["--train.symmetry_coef", "0.5"])
