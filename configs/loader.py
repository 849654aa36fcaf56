"""Loading configs: YAML files (following ``extends``) and overrides, built into a typed Config.

A config file is YAML with the sections of configs/schema.py. A file may start from another with
``extends: base.yaml`` (a path relative to the file); its keys are merged over the base's,
section by section. Command-line overrides use PufferLib's convention, ``--section.key value``
(``--train.learning_rate 1e-3``); a top-level key is ``--seed 3``.

Every value is coerced to its field's type, and every error names the key and the file (or the
command-line flag) it came from. This module only knows the types; what a valid value is
(ranges, bot names, the league's rules) is configs/checks.py's business, called once a config
is built.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import difflib
import os
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from common.files import atomic_write_text
from configs import checks
from configs.errors import ConfigError, key_source
from configs.schema import Config

CLI = "the command line"


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
    if config.env.name == "arena":
        # The words gauntlet (eval.opponents) and wide (env.opponents, league.bot_names) stand
        # for lists of bots; the resolved config lists them. Imported lazily: a Gymnasium
        # config never loads the arena.
        from arena.variants import expand_gauntlet, expand_wide, expand_wide_slots

        config.eval.opponents = expand_gauntlet(config.eval.opponents)
        config.env.opponents = expand_wide_slots(config.env.opponents)
        config.league.bot_names = expand_wide(config.league.bot_names)
        for stage in config.league.stages:
            if stage.bot_names is not None:
                stage.bot_names = expand_wide(stage.bot_names)
    checks.check(config, sources, default_source=label)
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
    checks.check(config, {}, default_source=source)
    return config


def save_config(config: Config, path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (common.files)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


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


def _build(cls, data, prefix: str, sources: dict, default_source: str):
    if not isinstance(data, dict):
        where = key_source(sources, prefix.rstrip("."), default_source)
        raise ConfigError(f"section {prefix.rstrip('.')!r} in {where} must be a mapping, got {data!r}")
    hints = _hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            where = key_source(sources, dotted, default_source)
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
                where = key_source(sources, dotted, default_source)
                raise ConfigError(f"key {dotted!r} in {where} must be a list of mappings, got {value!r}")
            kwargs[key] = [_build(item, v, f"{dotted}[{n}].", sources, default_source) for n, v in enumerate(value)]
        else:
            kwargs[key] = _coerce(value, tp, dotted, key_source(sources, dotted, default_source))
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
    """A value does not fit a type; _coerce turns it into a ConfigError that names the key."""


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
