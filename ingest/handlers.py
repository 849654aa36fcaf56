"""The REST routes: JSON in, JSON out. No sockets, no SQL here (storage does that)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from storage.aio import AsyncStore
from storage.records import frame_rows
from storage.schema import SCHEMA_VERSION

from . import openapi
from .errors import ApiError
from .http import Request, Response
from .inference import PolicyCache
from .limits import DEFAULT_PAGE_LIMIT, MAX_OFFSET, Limits
from .routing import Router, parse_int
from .sessions import SessionError, SessionStore
from .validation import ActIn, EpisodeIn, EpisodeResult, FighterIn, FramesIn, check_metadata, decode, frames_of

JSON_TYPES = ("application/json", "text/plain", "")
"""Body media types accepted: JSON, or text/plain as navigator.sendBeacon sends it."""


class Api:
    """Route handlers over one AsyncStore. Each returns (status, payload) or a Response."""

    def __init__(self, store: AsyncStore, limits: Limits, stats: dict[str, Any], token_required: bool = False):
        self.store = store
        self.limits = limits
        self.stats = stats
        self.token_required = token_required
        """Whether writes need the bearer token (the document says so)."""
        self.started = time.monotonic()
        self.policies = PolicyCache()
        self.sessions = SessionStore(limits.max_sessions, limits.max_session_rows, limits.session_ttl_s)
        """recurrent fighters' memory between /act calls"""
        self._rng = np.random.default_rng()
        """draws sampled actions of requests that give no seed"""
        r = self.router = Router()
        r.add("GET", "/health", self.health)
        r.add("GET", "/openapi.json", self.openapi_json)
        r.add("GET", "/docs", self.docs)
        r.add("POST", "/api/fighters", self.create_fighter, write=True)
        r.add("GET", "/api/fighters", self.list_fighters)
        r.add("GET", "/api/fighters/{fighter_id}", self.get_fighter)
        r.add("GET", "/api/fighters/{fighter_id}/stats", self.fighter_stats)
        r.add("GET", "/api/fighters/{fighter_id}/episodes", self.list_episodes)
        r.add("GET", "/api/fighters/{fighter_id}/checkpoints", self.list_checkpoints)
        r.add("GET", "/api/fighters/{fighter_id}/best-model", self.best_model)
        r.add("POST", "/api/fighters/{fighter_id}/act", self.act)
        r.add("POST", "/api/episodes", self.create_episode, write=True)
        r.add("GET", "/api/episodes/{episode_id}", self.get_episode)
        r.add("PATCH", "/api/episodes/{episode_id}", self.complete_episode, write=True)
        r.add("GET", "/api/episodes/{episode_id}/frames", self.list_frames)
        r.add("GET", "/api/episodes/{episode_id}/stream", self.stream_without_upgrade)
        r.add("POST", "/api/fight-frames", self.add_frames, write=True)

    # ---------------------------------------------------------------- service

    async def health(self, req: Request) -> tuple[int, dict]:
        _no_query(req)
        return 200, {
            "status": "ok",
            "database": self.store.path,
            "schema_version": SCHEMA_VERSION,
            "uptime_s": round(time.monotonic() - self.started, 3),
            "connections": self.stats["connections"],
            "commits": self.store.commits,
        }

    async def openapi_json(self, req: Request) -> tuple[int, dict]:
        return 200, openapi.document(self.limits, self.token_required)

    async def docs(self, req: Request) -> Response:
        return Response(200, openapi.docs_html(self.limits, self.token_required).encode(), "text/html; charset=utf-8")

    async def stream_without_upgrade(self, req: Request, episode_id: int) -> tuple[int, dict]:
        raise ApiError(
            426,
            f"/api/episodes/{episode_id}/stream is a WebSocket endpoint: connect with a WebSocket client (ws://...)",
            headers=[("upgrade", "websocket"), ("connection", "upgrade")],
        )

    # ---------------------------------------------------------------- fighters

    async def create_fighter(self, req: Request) -> tuple[int, dict]:
        body = decode(req.body, FighterIn)
        check_metadata(body.metadata)
        return 201, await self.store.create_fighter(body.glb_filename, body.metadata, body.model_version)

    async def list_fighters(self, req: Request) -> tuple[int, dict]:
        limit, offset = self._page(req)
        items, total = await self.store.list_fighters(limit, offset)
        return 200, _page(items, total, limit, offset)

    async def get_fighter(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        _no_query(req)
        fighter = await self.store.get_fighter(fighter_id)
        if fighter is None:
            raise ApiError(404, f"fighter {fighter_id} does not exist")
        return 200, fighter

    async def fighter_stats(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        _no_query(req)
        return 200, await self.store.fighter_stats(fighter_id)

    async def list_episodes(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        limit, offset = self._page(req)
        items, total = await self.store.list_episodes(fighter_id, limit, offset)
        return 200, _page(items, total, limit, offset)

    async def list_checkpoints(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        limit, offset = self._page(req)
        items, total = await self.store.list_checkpoints(fighter_id, limit, offset)
        return 200, _page(items, total, limit, offset)

    async def best_model(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        _no_query(req)
        best = await self.store.best_checkpoint(fighter_id)
        if best is None:
            raise ApiError(404, f"fighter {fighter_id} has no checkpoints yet; train it first")
        return 200, best

    async def act(self, req: Request, fighter_id: int) -> tuple[int, dict]:
        """Actions for a batch of observations from the fighter's best checkpoint (or ``version``).

        A read: it changes nothing, so it needs no token."""
        _no_query(req)
        body = decode(req.body, ActIn)
        n, limit = len(body.observations), self.limits.max_act_observations
        if n > limit:
            raise ApiError(413, f"observations has {n} rows; at most {limit} per request: split it")
        if n == 0:
            raise ApiError(422, "observations is empty: send at least one row of observation numbers")
        checkpoint = await self.store.serving_checkpoint(fighter_id, body.version)
        if checkpoint is None:
            if body.version is None:
                raise ApiError(404, f"fighter {fighter_id} has no checkpoints yet; train it first")
            raise ApiError(
                404,
                f"fighter {fighter_id} has no checkpoint with model_version {body.version}; "
                f"GET /api/fighters/{fighter_id}/checkpoints lists them",
            )
        policy = await self.policies.get(checkpoint)
        sizes = {len(row) for row in body.observations}
        if sizes != {policy.obs_size}:
            kind = f" (the {policy.observation} observation)" if policy.observation else ""
            raise ApiError(
                422,
                f"fighter {fighter_id}'s model (checkpoint {checkpoint['id']}) reads {policy.obs_size} numbers per "
                f"observation{kind}; got rows of {', '.join(map(str, sorted(sizes)))}",
            )
        obs = np.array(body.observations, dtype=np.float32)
        rng = None if body.greedy else (self._rng if body.seed is None else np.random.default_rng(body.seed))
        answer = {
            "model_version": checkpoint["model_version"],
            "checkpoint_id": checkpoint["id"],
            "recurrent": policy.recurrent,
            "observation": policy.observation,
        }
        if not policy.recurrent:
            answer["actions"] = policy.act(obs, greedy=body.greedy, rng=rng).tolist()
            return 200, answer
        if body.session is None:
            raise ApiError(
                422,
                f"fighter {fighter_id}'s model has memory (policy.kind lstm): name a session, one per match "
                '(e.g. "session": "match-17"), and send it with every call of that match; reset: true starts a new one',
            )
        try:
            begun = self.sessions.begin(fighter_id, body.session, checkpoint["id"], n, policy, body.reset)
        except SessionError as e:
            raise ApiError(422, str(e)) from None
        actions, (h, c) = policy.act(obs, (begun.h, begun.c), greedy=body.greedy, rng=rng)
        self.sessions.keep(fighter_id, body.session, checkpoint["id"], h, c)
        answer["actions"] = actions.tolist()
        answer["session"] = {"id": body.session, "started": begun.started, "expires_in_s": self.sessions.ttl_s}
        return 200, answer

    # ---------------------------------------------------------------- episodes and frames

    async def create_episode(self, req: Request) -> tuple[int, dict]:
        body = decode(req.body, EpisodeIn)
        return 201, await self.store.create_episode(
            body.fighter_id, body.opponent_ids, body.episode_number, body.observation
        )

    async def get_episode(self, req: Request, episode_id: int) -> tuple[int, dict]:
        _no_query(req)
        episode = await self.store.get_episode(episode_id)
        if episode is None:
            raise ApiError(404, f"episode {episode_id} does not exist")
        return 200, episode

    async def complete_episode(self, req: Request, episode_id: int) -> tuple[int, dict]:
        body = decode(req.body, EpisodeResult)
        episode = await self.store.complete_episode(
            episode_id, body.total_reward, body.duration_frames, body.is_victory, body.rank
        )
        return 200, episode

    async def add_frames(self, req: Request) -> tuple[int, dict]:
        body = decode(req.body, FramesIn)
        frames = frames_of(body, self.limits.max_frames_per_batch)
        result = await self.store.add_frames(body.episode_id, frame_rows(body.episode_id, frames))
        return 201, {"episode_id": body.episode_id, "stored": result.stored, "duplicates": result.duplicates}

    async def list_frames(self, req: Request, episode_id: int) -> tuple[int, dict]:
        limit, offset = self._page(req)
        items, total = await self.store.list_frames(episode_id, limit, offset)
        return 200, _page(items, total, limit, offset)

    # ---------------------------------------------------------------- helpers

    def _page(self, req: Request) -> tuple[int, int]:
        """``limit`` (1..max_page_limit, default 100) and ``offset`` (>= 0) from the query."""
        values = {"limit": str(min(DEFAULT_PAGE_LIMIT, self.limits.max_page_limit)), "offset": "0"}
        for name, value in req.query:
            if name not in values:
                raise ApiError(400, f"unknown query parameter {name!r}; this list takes limit and offset")
            values[name] = value
        limit = parse_int("limit", values["limit"], 1, self.limits.max_page_limit)
        offset = parse_int("offset", values["offset"], 0, MAX_OFFSET)
        return limit, offset


def _page(items: list, total: int, limit: int, offset: int) -> dict:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _no_query(req: Request) -> None:
    if req.query:
        raise ApiError(400, f"{req.path} takes no query parameters, got {[k for k, _ in req.query]}")


def check_media_type(req: Request) -> None:
    """A body's Content-Type must be JSON (or text/plain, or none); ApiError 415 otherwise.
    Checked from the headers, before the body is read."""
    media = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise ApiError(
            415, f"send the body as application/json, not {media!r} (curl: -H 'content-type: application/json')"
        )
