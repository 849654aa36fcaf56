"""Atomic file writes: to a temporary file beside the target, fsynced, then renamed over it.

A reader (a web server, a resumed run, another process) sees the old file or the new one,
never half of one, even if the writer is killed mid-write. Every durable file the project
writes (checkpoints, configs, summaries, replays, exported weights) goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; the parent folder must exist.

    The file is readable by all (0644), like one written with open(): a web server serves it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """``atomic_write_bytes`` of UTF-8 text."""
    return atomic_write_bytes(path, text.encode())


def atomic_write_json(path, data, indent: int | None = 2) -> Path:
    """``data`` as JSON, written atomically (creating the parent folder if needed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(data, indent=indent))
