"""Paths to handlers: ``/api/fighters/{fighter_id}`` style patterns with integer ids."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .errors import ApiError

MAX_ID = 2**63 - 1
"""SQLite INTEGER range; larger ids cannot exist."""

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Callable[..., Awaitable[Any]]
    write: bool
    """Needs the bearer token when one is configured."""


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, Route, list[str]]] = []

    def add(self, method: str, pattern: str, handler: Callable[..., Awaitable[Any]], write: bool = False) -> None:
        pieces = _PARAM.split(pattern)  # literal, name, literal, name, ..., literal
        names = pieces[1::2]
        regex = re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(pieces)) + "$")
        self._routes.append((regex, Route(method, pattern, handler, write), names))

    @property
    def routes(self) -> list[Route]:
        return [r for _, r, _ in self._routes]

    def allowed_methods(self, path: str) -> list[str]:
        return sorted({r.method for regex, r, _ in self._routes if regex.match(path)})

    def match(self, method: str, path: str) -> tuple[Route, dict[str, int]]:
        """The route and its integer parameters; ApiError 404 or 405 otherwise."""
        allowed = []
        for regex, route, names in self._routes:
            m = regex.match(path)
            if m is None:
                continue
            if route.method != method:
                allowed.append(route.method)
                continue
            params = {}
            for name, raw in zip(names, m.groups(), strict=True):
                if not raw.isdigit() or int(raw) > MAX_ID:
                    raise ApiError(404, f"{raw!r} is not a valid {name} (ids are positive integers)")
                params[name] = int(raw)
            return route, params
        if allowed:
            raise ApiError(
                405,
                f"{method} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}",
                headers=[("allow", ", ".join(sorted(set(allowed) | {"OPTIONS"})))],
            )
        raise ApiError(404, f"no such endpoint: {path} (see /docs)")
