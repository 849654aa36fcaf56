"""Asyncio access for the ingest server, through aiosqlite.

Three long-lived connections, each on its own aiosqlite thread: the writer, a read-only
reader (reads never see a write transaction in progress and, in WAL mode, never block
it) and a checkpointer (copies the WAL into the database beside the writer).

All writes go through one queue and are group-committed: the writer takes every job
queued while the previous commit ran (up to ``MAX_ROWS_PER_TRANSACTION`` rows), runs them
in one ``BEGIN IMMEDIATE`` transaction, commits once, and only then resolves each job's
future. A caller's acknowledgement therefore always means "committed".
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite
import orjson

from . import queries as q
from .db import _synchronous
from .db import connect as connect_sync
from .errors import BusyError, ConflictError, FrameKindError, NotFoundError, StorageError
from .records import observation_mismatch

log = logging.getLogger("storage.aio")

MAX_ROWS_PER_TRANSACTION = 4096
"""Rows per group commit: ~40 ms of inserts, enough to amortise the commit's fsync, short
enough that a training run waiting for the write lock waits little."""

MAX_PENDING_ROWS = 50_000
"""Rows queued but not yet committed, over all clients (about 1 s at the 50k frames/s
target, ~100 MB). Submitters wait beyond it, which stops them reading their sockets."""

LOCK_FREE_SHARE = 0.1
"""Share of the time a busy server leaves the write lock free between group commits.
Other processes (train.py, evaluate.py) wait for the lock by polling every 1-100 ms;
without gaps a busy server would hold it nearly always and starve them into "database
is locked". Jobs arriving during a gap join the next group, so throughput barely drops."""

WRITER_CACHE_KIB = 64 * 1024
"""SQLite page cache of the writer connection (default 2 MiB): frames of ~100 games land in
as many places of the (episode, frame) index; keeping them cached saved 10% of insert time."""

CHECKPOINT_INTERVAL_S = 0.5
"""A third connection copies the WAL into the database this often (PASSIVE checkpoint,
beside the writer, never blocking it). Done by the writer at commit, as SQLite does by
default, a 4-40 MB copy and fsync stalled every acknowledgement behind it for up to 200 ms."""

WAL_RESET_PAGES = 4000
"""When a background checkpoint found at least this many WAL pages (16 MB), the writer
copies the few committed since, between two groups, so the WAL restarts from its start
instead of growing while writes never pause."""

STATEMENT_CACHE = 256
"""Prepared statements kept per connection (the 11 frame INSERTs of queries.frame_statements
and the fixed queries), so that no batch recompiles its INSERT."""


@dataclass(frozen=True, slots=True)
class FramesResult:
    stored: int
    """Frames newly written by this batch."""
    duplicates: int
    """Frames of this batch whose (episode, frame_number) was already stored."""


class _Job:
    """A write waiting for the next group commit: a frame batch (``episode_id`` and
    ``frames`` set) or a general write (``run``, awaited inside the transaction)."""

    __slots__ = ("future", "rows", "run", "episode_id", "frames")

    def __init__(
        self,
        future: asyncio.Future,
        rows: int,
        run: Callable[[aiosqlite.Connection], Awaitable[Any]] | None = None,
        episode_id: int | None = None,
        frames: list[tuple] | None = None,
    ):
        self.future = future
        self.rows = rows
        self.run = run
        self.episode_id = episode_id
        self.frames = frames


_STOP = object()


class AsyncStore:
    """The server's view of the database. Create with ``await AsyncStore.open(path)``."""

    def __init__(
        self, path: str, writer: aiosqlite.Connection, reader: aiosqlite.Connection, checkpointer: aiosqlite.Connection
    ):
        self.path = path
        self._writer = writer
        self._reader = reader
        self._checkpointer = checkpointer
        self._finish_checkpoint = False
        self._queue: asyncio.Queue = asyncio.Queue()
        self._pending_rows = 0
        self._space = asyncio.Event()
        self._space.set()
        self._closing = False
        self._writer_task = asyncio.create_task(self._write_loop(), name="storage-writer")
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="storage-checkpoint")
        self.commits = 0
        """Transactions committed (for /health and the benchmark)."""

    @classmethod
    async def open(cls, path: str, synchronous: str = "FULL") -> AsyncStore:
        """Migrate the schema (synchronously, once), then open the connections."""
        sync = _synchronous(synchronous)
        await asyncio.to_thread(lambda: connect_sync(path, sync).close())
        writer = await aiosqlite.connect(path, isolation_level=None, cached_statements=STATEMENT_CACHE)
        reader = await aiosqlite.connect(path, isolation_level=None)
        checkpointer = await aiosqlite.connect(path, isolation_level=None)
        try:
            for conn in (writer, reader, checkpointer):
                await conn.execute("PRAGMA busy_timeout = 10000")
                await conn.execute("PRAGMA foreign_keys = ON")
                await conn.execute(f"PRAGMA synchronous = {sync}")
            await reader.execute("PRAGMA query_only = ON")
            await writer.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            await writer.execute("PRAGMA wal_autocheckpoint = 0")  # _checkpoint_loop does it
            mode = (await writer.execute_fetchall("PRAGMA journal_mode"))[0][0]
            if mode.lower() != "wal":
                raise StorageError(f"{path}: expected WAL journal mode, found {mode!r}")
        except BaseException:
            for conn in (writer, reader, checkpointer):
                await conn.close()
            raise
        return cls(path, writer, reader, checkpointer)

    async def close(self) -> None:
        """Commit everything already queued, then close both connections."""
        if self._closing:
            return
        self._closing = True
        self._queue.put_nowait(_STOP)
        self._checkpoint_task.cancel()
        try:
            await self._writer_task
        finally:
            await asyncio.gather(self._checkpoint_task, return_exceptions=True)
            for conn in (self._checkpointer, self._reader, self._writer):
                await conn.close()  # the last close checkpoints and removes the WAL

    # ---------------------------------------------------------------- writes

    async def create_fighter(self, glb_filename: str, metadata: dict, model_version: int) -> dict:
        meta = orjson.dumps(metadata).decode()

        async def run(conn: aiosqlite.Connection) -> dict:
            rows = await conn.execute_fetchall(q.INSERT_FIGHTER, (glb_filename, meta, model_version))
            return q.fighter_dict(rows[0])

        return await self._submit(run)

    async def create_episode(
        self, fighter_id: int, opponent_ids: list[int], episode_number: int | None, observation: str = "basic"
    ) -> dict:
        opponents = orjson.dumps(opponent_ids).decode()

        async def run(conn: aiosqlite.Connection) -> dict:
            if not await conn.execute_fetchall(q.FIGHTER_EXISTS, (fighter_id,)):
                raise NotFoundError(f"fighter {fighter_id} does not exist; register it first")
            number = episode_number
            if number is None:
                number = (await conn.execute_fetchall(q.NEXT_EPISODE_NUMBER, (fighter_id,)))[0][0]
            row = (await conn.execute_fetchall(q.INSERT_EPISODE, (fighter_id, number, opponents, observation)))[0]
            return q.episode_dict(row)

        return await self._submit(run)

    async def complete_episode(
        self, episode_id: int, total_reward: float, duration_frames: int, is_victory: bool, rank: int | None
    ) -> dict:
        """Close the episode. Repeating the same completion answers the stored episode
        (a retried request); a different result for a completed episode is a conflict."""
        values = (total_reward, duration_frames, int(is_victory), rank)

        async def run(conn: aiosqlite.Connection) -> dict:
            rows = await conn.execute_fetchall(q.COMPLETE_EPISODE, (*values, episode_id))
            if rows:
                return q.episode_dict(rows[0])
            rows = await conn.execute_fetchall(q.SELECT_EPISODE, (episode_id,))
            if not rows:
                raise NotFoundError(f"episode {episode_id} does not exist")
            stored = rows[0]
            if (stored[4], stored[5], stored[6], stored[7]) == values:
                return q.episode_dict(stored)
            raise ConflictError(
                f"episode {episode_id} is already completed with a different result "
                f"(total_reward={stored[4]!r}, duration_frames={stored[5]!r}, "
                f"is_victory={bool(stored[6])!r}, rank={stored[7]!r})"
            )

        return await self._submit(run)

    async def submit_frames(self, episode_id: int, rows: list[tuple]) -> asyncio.Future:
        """Queue frame rows (from ``records.frame_rows``); the returned future resolves to a
        FramesResult after the commit, or raises NotFoundError / ConflictError / BusyError."""
        return await self._enqueue(len(rows), episode_id=episode_id, frames=rows)

    async def add_frames(self, episode_id: int, rows: list[tuple]) -> FramesResult:
        return await (await self.submit_frames(episode_id, rows))

    async def _submit(self, run: Callable[[aiosqlite.Connection], Awaitable[Any]]) -> Any:
        return await (await self._enqueue(1, run=run))

    async def _enqueue(self, rows: int, **job) -> asyncio.Future:
        if self._closing:
            raise StorageError("the server is shutting down; retry against the restarted server")
        while self._pending_rows >= MAX_PENDING_ROWS:
            self._space.clear()
            await self._space.wait()
            if self._closing:
                raise StorageError("the server is shutting down; retry against the restarted server")
        self._pending_rows += rows
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(future, rows, **job))
        return future

    async def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            job = await self._queue.get()
            if job is _STOP:
                break
            group, rows = [job], job.rows
            while rows < MAX_ROWS_PER_TRANSACTION and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
                rows += nxt.rows
            started = time.monotonic()
            try:
                await self._commit_group(group)
            except Exception as e:  # an unexpected bug must not stop the writer
                log.exception("[conn -] writer: group commit failed")
                for j in group:
                    _fail(j.future, StorageError(f"internal storage error: {e}"))
            held = time.monotonic() - started
            log.debug("[conn -] writer: %d jobs, %d rows committed in %.1f ms", len(group), rows, held * 1e3)
            self._pending_rows -= rows
            if self._pending_rows < MAX_PENDING_ROWS:
                self._space.set()
            if self._finish_checkpoint:
                self._finish_checkpoint = False
                await self._checkpoint(self._writer)
            if not self._queue.empty() and not stopping:  # busy: let other processes in
                await asyncio.sleep(held * LOCK_FREE_SHARE / (1 - LOCK_FREE_SHARE))

    async def _checkpoint_loop(self) -> None:
        seen = self.commits
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            if self.commits == seen:
                continue
            seen = self.commits
            wal_pages = await self._checkpoint(self._checkpointer)
            if wal_pages >= WAL_RESET_PAGES:
                self._finish_checkpoint = True

    @staticmethod
    async def _checkpoint(conn: aiosqlite.Connection) -> int:
        """PASSIVE checkpoint; the WAL's size in pages (0 if it failed)."""
        try:
            busy, wal_pages, copied = (await conn.execute_fetchall("PRAGMA wal_checkpoint(PASSIVE)"))[0]
        except sqlite3.Error as e:
            log.warning("[conn -] writer: checkpoint failed: %s", e)
            return 0
        log.debug("[conn -] writer: checkpoint copied %d of %d WAL pages", copied, wal_pages)
        return wal_pages

    async def _commit_group(self, group: list[_Job]) -> None:
        """Run the jobs in one transaction and resolve their futures after COMMIT.

        A job that breaks a constraint rolls the transaction back; the group is retried
        without it, and it alone gets the error.
        """
        conn = self._writer
        while group:
            try:
                await conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                log.warning("[conn -] writer: could not begin a write transaction: %s", e)
                for j in group:
                    _fail(j.future, BusyError(f"database busy ({e}); retry shortly"))
                return
            results: dict[_Job, Any] = {}
            culprit = None
            try:
                i = 0
                while i < len(group) and culprit is None:
                    if group[i].run is not None:
                        culprit = await self._run_general(group[i], results)
                        i += 1
                    else:  # consecutive frame batches, inserted together
                        j = i
                        while j < len(group) and group[j].run is None:
                            j += 1
                        culprit = await self._insert_frames(group[i:j], results)
                        i = j
                if culprit is None:
                    await conn.execute("COMMIT")
            except sqlite3.Error as e:
                await _rollback(conn)
                log.error("[conn -] writer: transaction of %d jobs failed: %s", len(group), e)
                for j in group:
                    _fail(j.future, StorageError(f"database error: {e}"))
                return
            if culprit is not None:
                await _rollback(conn)
                job, err = culprit
                _fail(job.future, _integrity_error(job, err))
                group = [j for j in group if j is not job]
                continue
            self.commits += 1
            for j in group:
                r = results[j]
                if isinstance(r, Exception):
                    _fail(j.future, r)
                elif not j.future.done():
                    j.future.set_result(r)
            return

    async def _run_general(self, job: _Job, results: dict) -> tuple | None:
        try:
            results[job] = await job.run(self._writer)
        except (NotFoundError, ConflictError) as e:
            results[job] = e  # checked before writing, so nothing to undo
        except sqlite3.IntegrityError as e:
            return job, e
        return None

    async def _insert_frames(self, jobs: list[_Job], results: dict) -> tuple | None:
        """Insert consecutive frame batches.

        The episodes' states are read inside the write transaction, so an episode completed
        by another process, or earlier in this group, refuses its frames (ConflictError).
        Fast path: all rows in a few 512-row statements. If that stores fewer rows than
        given (a client resent frames already stored) it is undone to a savepoint and the
        batches are inserted one by one, which tells each batch its duplicates.
        """
        conn = self._writer
        ids = sorted({j.episode_id for j in jobs})
        rows = await conn.execute_fetchall(q.EPISODES_ENDED_AT, (orjson.dumps(ids).decode(),))
        states = {episode: (ended_at, kind) for episode, ended_at, kind in rows}
        ready = []
        for job in jobs:
            if job.episode_id not in states:
                results[job] = NotFoundError(
                    f"episode {job.episode_id} does not exist; create it with POST /api/episodes"
                )
            elif states[job.episode_id][0] is not None:
                results[job] = ConflictError(f"episode {job.episode_id} is completed; start a new episode")
            elif (mismatch := observation_mismatch(job.frames, states[job.episode_id][1])) is not None:
                results[job] = FrameKindError(mismatch)
            else:
                ready.append(job)
        if not ready:
            return None
        rows = ready[0].frames if len(ready) == 1 else [r for j in ready for r in j.frames]
        await conn.execute("SAVEPOINT frames")
        inserted, conflict = 0, False
        for sql, params in q.frame_statements(rows):
            try:
                inserted += (await conn.executemany(sql, params)).rowcount
            except sqlite3.IntegrityError:
                conflict = True
                break
        if not conflict and inserted == len(rows):
            await conn.execute("RELEASE frames")
            for job in ready:
                results[job] = FramesResult(job.rows, 0)
            return None
        await conn.execute("ROLLBACK TO frames")
        await conn.execute("RELEASE frames")
        for job in ready:  # slow path: one batch at a time
            stored = 0
            try:
                for sql, params in q.frame_statements(job.frames):
                    stored += (await conn.executemany(sql, params)).rowcount
            except sqlite3.IntegrityError as e:
                return job, e
            results[job] = FramesResult(stored, job.rows - stored)
        return None

    # ---------------------------------------------------------------- reads

    async def _one(self, sql: str, params: tuple) -> tuple | None:
        rows = await self._reader.execute_fetchall(sql, params)
        return rows[0] if rows else None

    async def episode_open(self, episode_id: int) -> bool | None:
        """True if open, False if completed, None if unknown."""
        row = await self._one(q.EPISODE_ENDED_AT, (episode_id,))
        return None if row is None else row[0] is None

    async def get_fighter(self, fighter_id: int) -> dict | None:
        row = await self._one(q.SELECT_FIGHTER, (fighter_id,))
        return q.fighter_dict(row) if row else None

    async def _require_fighter(self, fighter_id: int) -> None:
        if await self._one(q.FIGHTER_EXISTS, (fighter_id,)) is None:
            raise NotFoundError(f"fighter {fighter_id} does not exist")

    async def list_fighters(self, limit: int, offset: int) -> tuple[list[dict], int]:
        total = (await self._one(q.COUNT_FIGHTERS, ()))[0]
        rows = await self._reader.execute_fetchall(q.LIST_FIGHTERS, (limit, offset))
        return [q.fighter_dict(r) for r in rows], total

    async def fighter_stats(self, fighter_id: int) -> dict:
        await self._require_fighter(fighter_id)
        p = (fighter_id,)
        return q.stats_dict(
            fighter_id,
            await self._one(q.FIGHTER_EPISODE_STATS, p),
            (await self._one(q.FIGHTER_FRAME_COUNT, p))[0],
            (await self._one(q.COUNT_CHECKPOINTS, p))[0],
            await self._one(q.BEST_CHECKPOINT, p),
            await self._one(q.LATEST_METRICS, p),
        )

    async def get_episode(self, episode_id: int) -> dict | None:
        row = await self._one(q.SELECT_EPISODE, (episode_id,))
        if row is None:
            return None
        episode = q.episode_dict(row)
        episode["frame_count"] = (await self._one(q.COUNT_EPISODE_FRAMES, (episode_id,)))[0]
        return episode

    async def list_episodes(self, fighter_id: int, limit: int, offset: int) -> tuple[list[dict], int]:
        await self._require_fighter(fighter_id)
        total = (await self._one(q.COUNT_EPISODES, (fighter_id,)))[0]
        rows = await self._reader.execute_fetchall(q.LIST_EPISODES, (fighter_id, limit, offset))
        return [q.episode_dict(r) for r in rows], total

    async def list_frames(self, episode_id: int, limit: int, offset: int) -> tuple[list[dict], int]:
        if await self._one(q.EPISODE_ENDED_AT, (episode_id,)) is None:
            raise NotFoundError(f"episode {episode_id} does not exist")
        total = (await self._one(q.COUNT_EPISODE_FRAMES, (episode_id,)))[0]
        rows = await self._reader.execute_fetchall(q.LIST_FRAMES, (episode_id, limit, offset))
        return [q.frame_dict(r, raw_json=True) for r in rows], total

    async def list_checkpoints(self, fighter_id: int, limit: int, offset: int) -> tuple[list[dict], int]:
        await self._require_fighter(fighter_id)
        total = (await self._one(q.COUNT_CHECKPOINTS, (fighter_id,)))[0]
        rows = await self._reader.execute_fetchall(q.LIST_CHECKPOINTS, (fighter_id, limit, offset))
        return [q.checkpoint_dict(r) for r in rows], total

    async def best_checkpoint(self, fighter_id: int) -> dict | None:
        await self._require_fighter(fighter_id)
        row = await self._one(q.BEST_CHECKPOINT, (fighter_id,))
        return q.checkpoint_dict(row) if row else None

    async def serving_checkpoint(self, fighter_id: int, model_version: int | None = None) -> dict | None:
        """The checkpoint /act serves: the fighter's best, or its newest of ``model_version``.
        None if it has none; NotFoundError if the fighter does not exist. One query."""
        if model_version is None:
            row = await self._one(q.SERVING_BEST_CHECKPOINT, (fighter_id,))
        else:
            row = await self._one(q.SERVING_CHECKPOINT_VERSION, (model_version, fighter_id))
        if row is None:
            raise NotFoundError(f"fighter {fighter_id} does not exist")
        return q.checkpoint_dict(row[1:]) if row[1] is not None else None

    async def schema_version(self) -> int:
        return (await self._one("PRAGMA user_version", ()))[0]


def _integrity_error(job: _Job, e: Exception) -> Exception:
    """What a constraint failure (not expected after the checks above) means for the client."""
    if job.episode_id is not None and "FOREIGN KEY" in str(e):
        return NotFoundError(f"episode {job.episode_id} does not exist")
    return StorageError(f"write rejected by the database: {e}")


def _fail(future: asyncio.Future, exc: Exception) -> None:
    if not future.done():
        future.set_exception(exc)
        # A caller that went away never retrieves it; do not log "never retrieved".
        future.exception()


async def _rollback(conn: aiosqlite.Connection) -> None:
    try:
        await conn.execute("ROLLBACK")
    except sqlite3.Error as e:  # SQLite already rolled back, e.g. after an I/O error
        log.debug("[conn -] writer: rollback: %s", e)


__all__ = ["AsyncStore", "FramesResult"]
