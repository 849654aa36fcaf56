"""Demonstrations for behavioural cloning: the frames the game recorded, as (observation, action) arrays.

``load_demonstrations`` reads the selected fighters' frames from the arena database in bulk
(``storage.Database.read_frames``: float32 blobs joined into numpy arrays, no per-frame
decoding) and turns each frame's ``action_vector`` into the action label
(``imitation.action_encoding``):

======== =================================================================================
argmax   ``action_vector`` has one number per action (10): a one-hot, as the game's client
         sends it (``oneHot(action, 10)``), or scores/probabilities. The label is the index
         of the largest number, the first one on ties (the policy's greedy rule). A vector
         of all zeros means no action was recorded: the frame is dropped and counted.
index    ``action_vector`` is one number, the action index itself (0-9); anything else
         (12, 2.5) is an error naming the episode and frame.
auto     (default) index for vectors of length 1, argmax for length 10, an error otherwise.
======== =================================================================================

Actions: 0-7 move north, north-east, ..., north-west; 8 idle; 9 attack (arena/spec.py).
``split_episodes`` holds out whole episodes for measuring action accuracy.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arena.spec import NUM_ACTIONS
from configs import ConfigError, iso_utc

SHOWN_FIGHTERS = 10
"""Fighters listed in an error message about an unknown fighter."""


class ImitationDataError(ConfigError):
    """The database or the frames the config selects cannot be cloned from: a missing
    database, an unknown fighter, no matching frames, an unreadable action encoding.
    A ConfigError, so that train.py's command line reports it as one line (exit status 2)."""


# =============================================================================================
# Demonstrations: frames from the database -> (observation, action label) arrays
# =============================================================================================
@dataclass
class Demonstrations:
    """Labelled frames, ordered by episode and frame number."""

    obs: np.ndarray
    """(N, 30) float32 observation_vector"""
    actions: np.ndarray
    """(N,) int64 action labels 0-9"""
    episode_id: np.ndarray
    """(N,) int64 database episode of each frame"""
    dropped: int = 0
    """frames left out because their action_vector recorded no action (all zeros)"""
    selection: str = ""
    """the filters, in words, for logs and error messages"""
    load_time_s: float = 0.0
    """seconds to read and label the frames"""
    encoding: str = ""
    """the action encoding used: argmax or index"""

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def episodes(self) -> int:
        return len(np.unique(self.episode_id))


def action_labels(
    vectors: np.ndarray, encoding: str = "auto", num_actions: int = NUM_ACTIONS, where: str = "the frames"
) -> tuple[np.ndarray, np.ndarray, str]:
    """(labels int64 (N,), keep bool (N,), encoding used) for action vectors (N, A).

    ``keep`` is False for argmax rows of all zeros (no action recorded). Raises
    ImitationDataError for a length that fits no encoding and for bad index values."""
    width = vectors.shape[1] if vectors.ndim == 2 else 0
    if encoding == "auto":
        encoding = "index" if width == 1 else "argmax" if width == num_actions else None
        if encoding is None:
            raise ImitationDataError(
                f"{where} have action_vector of {width} numbers; imitation reads either {num_actions} "
                f"(one per action: a one-hot or scores, label = argmax) or 1 (the action index). "
                f"Select other episodes, or set imitation.action_encoding"
            )
    if encoding == "argmax":
        if width != num_actions:
            raise ImitationDataError(
                f"imitation.action_encoding is argmax, but {where} have action_vector of {width} numbers, "
                f"not {num_actions} (one per action)"
            )
        keep = (vectors != 0).any(axis=1)
        return vectors.argmax(axis=1).astype(np.int64), keep, encoding
    if encoding == "index":
        if width != 1:
            raise ImitationDataError(
                f"imitation.action_encoding is index, but {where} have action_vector of {width} numbers, not 1"
            )
        values = vectors[:, 0]
        labels = np.rint(values).astype(np.int64)
        bad = (labels != values) | (labels < 0) | (labels >= num_actions)
        if bad.any():
            raise ImitationDataError(
                f"{int(bad.sum())} of {where} carry an action index that is not an integer from 0 to "
                f"{num_actions - 1} (first: {float(values[bad][0])!r}, row {int(np.flatnonzero(bad)[0])})"
            )
        return labels, np.ones(len(labels), dtype=bool), encoding
    raise ImitationDataError(f"imitation.action_encoding must be auto, argmax or index, got {encoding!r}")


def load_demonstrations(
    db_path, imitation, num_actions: int = NUM_ACTIONS, observation: str = "basic"
) -> Demonstrations:
    """Read and label the frames ``imitation`` (an ImitationConfig) selects from ``db_path``, of
    the episodes that recorded ``observation`` (the run's env.observation: basic or full).

    Raises FileNotFoundError for a missing database and ImitationDataError for an unreadable
    one, an unknown fighter, an empty database or a selection without frames."""
    from storage import Database, StorageError

    if not db_path:
        raise ImitationDataError(
            "imitation reads recorded frames from the arena database: pass --db data/arena.db "
            "(or set db: in the config)"
        )
    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(
            f"database {str(path)!r} does not exist; record matches into it first "
            f"(python ingest_server.py --db {path}; python -m demos.clone_chaser shows the whole loop)"
        )
    start = time.perf_counter()
    try:
        db = Database.open(path)
    except (StorageError, sqlite3.DatabaseError) as exc:
        raise ImitationDataError(f"cannot read the arena database {str(path)!r}: {exc}") from None
    try:
        fighters = imitation.fighters
        fighters = [fighters] if isinstance(fighters, int) else fighters
        known = {f["id"]: f for f in db.list_fighters()}
        if fighters is not None:
            unknown = [f for f in fighters if f not in known]
            if unknown:
                raise ImitationDataError(
                    f"fighter {unknown[0]!r} (imitation.fighters) is not in {str(path)!r}; "
                    f"{_describe_fighters(db, known)}"
                )
        filters = dict(
            is_victory=True if imitation.victories_only else None,
            completed_only=imitation.completed_only,
            max_rank=imitation.max_rank,
            since=iso_utc(imitation.since) if imitation.since else None,
            until=iso_utc(imitation.until) if imitation.until else None,
        )
        selection = _describe_selection(fighters, imitation)
        parts = []
        for fighter in fighters or [None]:
            try:
                frames = db.read_frames(fighter_id=fighter, observation=observation, **filters)
            except ValueError as exc:  # mixed action_vector lengths within the selection
                raise ImitationDataError(f"{selection}: {exc}") from None
            if len(frames):
                parts.append((fighter, frames))
        if not parts:
            raise ImitationDataError(_no_frames_message(db, path, known, fighters, selection, observation, filters))
        widths = {f: frames.action.shape[1] for f, frames in parts}
        if len(set(widths.values())) > 1:
            raise ImitationDataError(
                f"the selected fighters recorded action_vector of different lengths ({widths}, by fighter); "
                "clone from fighters that share one action encoding"
            )
        obs = np.concatenate([frames.observation for _, frames in parts])
        vectors = np.concatenate([frames.action for _, frames in parts])
        episode_id = np.concatenate([frames.episode_id for _, frames in parts])
    except StorageError as exc:
        raise ImitationDataError(f"cannot read frames from {str(path)!r}: {exc}") from None
    finally:
        db.close()
    labels, keep, encoding = action_labels(
        vectors, imitation.action_encoding, num_actions, where=f"the frames of {selection}"
    )
    if not keep.any():
        raise ImitationDataError(
            f"all {len(keep):,} frames of {selection} have an action_vector of zeros (no action recorded); "
            "nothing to clone"
        )
    if not keep.all():
        obs, labels, episode_id = obs[keep], labels[keep], episode_id[keep]
    return Demonstrations(
        obs=np.ascontiguousarray(obs, dtype=np.float32),
        actions=labels,
        episode_id=episode_id,
        dropped=int((~keep).sum()),
        selection=selection,
        load_time_s=time.perf_counter() - start,
        encoding=encoding,
    )


def _describe_selection(fighters, imitation) -> str:
    words = [f"fighters {fighters}" if fighters is not None else "every fighter"]
    if imitation.victories_only:
        words.append("victories only")
    if imitation.max_rank is not None:
        words.append(f"rank <= {imitation.max_rank}")
    if imitation.since:
        words.append(f"since {imitation.since}")
    if imitation.until:
        words.append(f"until {imitation.until}")
    if not imitation.completed_only:
        words.append("open episodes included")
    return ", ".join(words)


def _describe_fighters(db, known: dict) -> str:
    if not known:
        return "the database has no fighters yet"
    shown = [
        f"{fid} {f['glb_filename']!r} ({db.fighter_stats(fid)['frames']:,} frames)"
        for fid, f in list(known.items())[:SHOWN_FIGHTERS]
    ]
    more = f" and {len(known) - SHOWN_FIGHTERS} more" if len(known) > SHOWN_FIGHTERS else ""
    return "its fighters are " + ", ".join(shown) + more


def _no_frames_message(db, path: Path, known: dict, fighters, selection: str, observation: str, filters) -> str:
    stats = [db.fighter_stats(f) for f in (fighters if fighters is not None else known)]
    total = sum(s["frames"] for s in stats)
    if not any(db.fighter_stats(f)["frames"] for f in known):
        return (
            f"the database {str(path)!r} holds no recorded frames ({len(known)} fighters); record "
            "matches through the ingest server first (python -m demos.clone_chaser shows how)"
        )
    episodes = sum(s["episodes"] for s in stats)
    completed = sum(s["completed_episodes"] for s in stats)
    victories = sum(s["victories"] for s in stats)
    other = next(k for k in ("basic", "full") if k != observation)
    if any(len(db.read_frames(fighter_id=f, observation=other, **filters)) for f in fighters or [None]):
        return (
            f"the selection ({selection}) has frames only of the {other} observation; clone with "
            f"--env.observation {other}, or record episodes with observation: {observation}"
        )
    return (
        f"no frames in {str(path)!r} match the selection ({selection}): those fighters have "
        f"{total:,} frames in {episodes} episodes ({completed} completed, {victories} victories); "
        "loosen the imitation.* filters or pick other fighters"
    )


def split_episodes(episode_id: np.ndarray, holdout: float, seed: int) -> np.ndarray:
    """A boolean mask of held-out frames: ``holdout`` of the episodes (at least one when > 0),
    drawn with ``seed``. Whole episodes, so that neighbouring frames of one match never sit on
    both sides of the split."""
    episodes = np.unique(episode_id)
    if holdout <= 0:
        return np.zeros(len(episode_id), dtype=bool)
    n_test = max(1, int(round(holdout * len(episodes))))
    if n_test >= len(episodes):
        raise ImitationDataError(
            f"the selection has {len(episodes)} episode(s), too few to hold out {holdout:.0%} of them and "
            "train on the rest; record more matches, or set imitation.holdout 0"
        )
    test_episodes = np.random.default_rng(seed).choice(episodes, n_test, replace=False)
    return np.isin(episode_id, test_episodes)
