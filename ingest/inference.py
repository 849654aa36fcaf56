"""Policies for ``POST /api/fighters/{id}/act``: each checkpoint file loaded once, kept in memory.

No torch in the server: ``policies.numpy_policy.load_policy`` reads train.py's ``.pt`` files
(a zip of raw float32 storages, read by ``policies.torch_zip`` without running any pickled
code) and ``python -m policies.export``'s ``policy.safetensors`` files, and evaluates the
network with numpy.

A file is known by (path, modification time, size): a checkpoint registered later is a new
key and is loaded on first use; a file rewritten in place is loaded again.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from pathlib import Path

from policies.numpy_policy import NumpyPolicy, WeightsError, load_policy

from .errors import ApiError

MAX_CACHED_POLICIES = 16
"""Policies kept in memory (~90 KB each at 128 hidden units): the best checkpoints of the
fighters in play and the versions games name; the least recently used goes beyond it."""


class PolicyCache:
    """Loaded policies by checkpoint file. Relative ``weights_path``s resolve against
    ``base_dir`` (default: the server's working directory when it started)."""

    def __init__(self, max_policies: int = MAX_CACHED_POLICIES, base_dir: str | None = None):
        self.max_policies = max_policies
        self.base_dir = Path(base_dir or os.getcwd())
        self.loads = 0
        """Files read so far (a cached policy is not read again)."""
        self._policies: OrderedDict[tuple, NumpyPolicy] = OrderedDict()
        self._load_lock = asyncio.Lock()

    async def get(self, checkpoint: dict) -> NumpyPolicy:
        """The policy of a model_checkpoints row; ApiError 500 if its file is missing or unreadable."""
        path = self.base_dir / checkpoint["weights_path"]
        try:
            st = os.stat(path)
        except OSError as e:
            raise ApiError(
                500,
                f"{_describe(checkpoint)} is registered at {str(path)!r}, but the file "
                f"cannot be opened ({e.strerror}); restore it or register another checkpoint",
            ) from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        policy = self._policies.get(key)
        if policy is not None:
            self._policies.move_to_end(key)
            return policy
        async with self._load_lock:  # one load at a time; a second request for it waits and reuses it
            policy = self._policies.get(key)
            if policy is None:
                policy = await asyncio.to_thread(self._load, path, checkpoint)
                self._policies[key] = policy
                self.loads += 1
                while len(self._policies) > self.max_policies:
                    self._policies.popitem(last=False)
        return policy

    @staticmethod
    def _load(path: Path, checkpoint: dict) -> NumpyPolicy:
        try:
            return load_policy(path)
        except (OSError, WeightsError) as e:
            raise ApiError(500, f"{_describe(checkpoint)} at {str(path)!r} cannot be served: {e}") from None


def _describe(checkpoint: dict) -> str:
    return (
        f"checkpoint {checkpoint['id']} (model version {checkpoint['model_version']}) "
        f"of fighter {checkpoint['fighter_id']}"
    )
