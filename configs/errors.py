"""The error a bad config raises, and where a key was set, so that every message names the key
and the file (or command-line flag) it came from. Shared by the loader and the checks."""

from __future__ import annotations

import re
import sys
from typing import NoReturn


class ConfigError(ValueError):
    """A config file or override is missing, malformed, has an unknown key or a wrong type."""


def run_command(main) -> NoReturn:
    """``raise SystemExit(main())`` for a command-line script, but a ConfigError (a bad config file,
    override or key) prints its ``error:`` line and exits with status 2 instead of a traceback."""
    try:
        status = main()
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        status = 2
    raise SystemExit(status)


def key_source(sources: dict, dotted: str, default_source: str) -> str:
    """The file (or command line) that set this key or the closest enclosing one.

    ``sources`` maps the dotted keys a file or override set to where it was set;
    ``default_source`` names where the config came from as a whole.
    """
    parts = re.sub(r"\[\d+\]", "", dotted).split(".")  # league.stages[1].fighters: set with league.stages
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in sources:
            return sources[key]
    for key, origin in sources.items():
        if key.startswith(dotted + "."):
            return origin
    return default_source
