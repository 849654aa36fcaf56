"""Specialists: fighters a league run trains first, each with a mode config, then fields as fixed opponents.

A self-play population settles into its own style. It keeps trading blows with copies of
itself and never meets the defensive fighters the mode configs produce, which wait, strike
first and hold the centre; against those it draws. ``league.specialists`` lists mode configs
(tactical.yaml, survival.yaml, ...) and seeds. Before the self-play loop starts, each one is
trained the ordinary way (``train``, against the scripted bots) into
``<run>/specialists/<name>/``, and its best.pt joins the pool as a fixed opponent, drawn
with ``league.fixed``. A resumed run finds them there and trains only what is missing.
"""

from __future__ import annotations

import json
from pathlib import Path

from configs import Config, ConfigError, load_config, specialist_config_path, specialist_name
from training.layout import RunFolder


def train_specialists(config: Config, directory, train_fn, progress=None) -> list[dict]:
    """Train every specialist the league lists that ``directory`` lacks; return each one's
    name, checkpoint, run folder and training wall time (s).

    train_fn trains one config into a run folder and returns its summary; it takes train.train's
    arguments (config, overrides, run_dir=, resume=, progress=). train.py passes train.train, in
    the same process; population-based training passes training.launch.train_in_subprocess.
    The league's fixed opponents are read first, so that a wrong path fails before minutes of
    training, not after.
    """
    from league.league import check_fixed_opponents

    check_fixed_opponents(config)
    paths = [_specialist_config(config, n, spec) for n, spec in enumerate(config.league.specialists)]
    out = []
    for spec, path in zip(config.league.specialists, paths, strict=True):
        name = specialist_name(spec)
        folder = RunFolder(Path(directory) / name)
        run, latest = folder.path, folder.latest
        summary = json.loads(folder.summary.read_text()) if folder.summary.is_file() else None
        if summary is None or summary["interrupted"]:
            print(f"league: training specialist {name} ({path}, seed {spec.seed}) in {run}", flush=True)
            if latest.is_file():  # an interrupted specialist carries on where it stopped
                summary = train_fn(resume=run, progress=progress)
            else:
                # the machine's settings are the league run's: a mode config's torch_threads would
                # oversubscribe the cores under torchrun (2 threads in each of 2 processes ran 5x slower)
                overrides = {
                    "seed": spec.seed,
                    "name": name,
                    "torch_threads": config.torch_threads,
                    "device": config.device,
                }
                if spec.total_timesteps is not None:
                    overrides["train.total_timesteps"] = spec.total_timesteps
                if spec.update_precision is not None:
                    overrides["train.update_precision"] = spec.update_precision
                if spec.hidden_size is not None:
                    overrides["policy.hidden_size"] = spec.hidden_size
                summary = train_fn(path, overrides, run_dir=run, progress=progress)
            if summary["interrupted"]:
                raise KeyboardInterrupt(f"stopped while training specialist {name}")
            print(f"league: specialist {name} trained in {summary['wall_time_s']:.0f} s", flush=True)
        out.append(
            dict(
                name=name,
                checkpoint=str(folder.best if folder.best.is_file() else latest),
                run_dir=str(run),
                wall_time_s=summary["wall_time_s"],
                global_step=summary["global_step"],
            )
        )
    return out


def _specialist_config(config: Config, n: int, spec) -> Path:
    """The path of the mode config ``league.specialists[n]`` trains with; ConfigError, before any
    specialist trains, unless it is a mode config whose network the league can field (one of the
    learner's hidden size)."""
    path = specialist_config_path(spec.config)
    mode = load_config(path)
    key = f"league.specialists[{n}]"
    if mode.league.enabled or mode.mode == "imitation":
        raise ConfigError(
            f"{key}.config {spec.config!r} is a {'league' if mode.league.enabled else 'imitation'} config; "
            "a specialist trains against the scripted bots with a mode config such as tactical.yaml"
        )
    hidden = mode.policy.hidden_size if spec.hidden_size is None else spec.hidden_size
    if hidden != config.policy.hidden_size:
        origin = f"{key}.hidden_size" if spec.hidden_size is not None else f"policy.hidden_size of {spec.config!r}"
        raise ConfigError(
            f"{key}: its network would have hidden size {hidden} ({origin}), but the league fields "
            f"opponents of the learner's policy.hidden_size, {config.policy.hidden_size}; "
            f"set the entry's hidden_size: {config.policy.hidden_size}"
        )
    return path
