"""Names and paths the configs agree on with the rest of the tree: where the shipped YAML files
live, the training modes, and how specialists, fixed opponents and ``NAME=SPEC`` player specs
are named."""

from __future__ import annotations

import os
from pathlib import Path

from configs.schema import SpecialistConfig

CONFIG_DIR = Path(__file__).resolve().parent
"""Folder of the shipped YAML configs (base.yaml and one file per training mode)."""

MODES = ("survival", "aggression", "tactical", "adaptation", "tournament")
"""The training modes; each has configs/<mode>.yaml."""


def specialist_config_path(config: str) -> Path | None:
    """A specialist's mode config file: the path as given, else inside configs/ (None if neither exists)."""
    if not config:
        return None
    for path in (Path(config), CONFIG_DIR / config):
        if path.is_file():
            return path
    return None


def specialist_name(spec: SpecialistConfig) -> str:
    """A specialist's name in the pool and its run folder: its own, else <config file stem>_s<seed>."""
    return spec.name or f"{Path(spec.config).stem}_s{spec.seed}"


CHECKPOINTS_DIR = "checkpoints"
"""the folder of a run folder that holds its checkpoints (training/layout.py lays out the rest)"""


def fixed_opponent_name(path: str) -> str:
    """A fixed opponent's default name: its run folder (runs/<run>/checkpoints/x.pt -> <run>), else the file's stem."""
    path = Path(path)
    return path.parent.parent.name if path.parent.name == CHECKPOINTS_DIR else path.stem


def split_name(spec: str) -> tuple[str | None, str]:
    """``NAME=SPEC`` -> (NAME, SPEC); anything else -> (None, spec)."""
    # The part before "=" is a name only if it could not be part of a path or module:function,
    # and a file whose own name holds "=" stays whole, as does a bot variant (kiter[retreat=2.0]).
    head, sep, tail = spec.partition("=")
    if sep and head and tail and not any(c in head for c in "/:\\[") and not os.path.exists(spec):
        return head, tail
    return None, spec
