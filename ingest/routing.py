"""Paths to handlers: ``/api/fighters/{fighter_id}`` style patterns with integer ids."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from storage.records import MAX_ID

from .errors import ApiError

MAX_ID_DIGITS = len(str(MAX_ID))
"""Digits of the largest id (19): a longer path segment is not an id, whatever its digits.
Checked before ``int()``, which refuses more than 4300 digits with a ValueError."""

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Callable[..., Awaitable[Any]]
    write: bool
    """Needs the bearer token when one is configured."""
    body: bool
    """Takes a JSON body (POST, PATCH); other routes take none."""


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[re.Pattern, Route, list[str]]] = []

    def add(self, method: str, pattern: str, handler: Callable[..., Awaitable[Any]], write: bool = False) -> None:
        pieces = _PARAM.split(pattern)  # literal, name, literal, name, ..., literal
        names = pieces[1::2]
        regex = re.compile("^" + "".join(re.escape(p) if i % 2 == 0 else "([^/]+)" for i, p in enumerate(pieces)) + "$")
        route = Route(method, pattern, handler, write, body=method in ("POST", "PATCH"))
        self._routes.append((regex, route, names))

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
                params[name] = parse_id(name, raw)
            return route, params
        if allowed:
            raise ApiError(
                405,
                f"{method} is not allowed on {path}; use {', '.join(sorted(set(allowed)))}",
                headers=[("allow", ", ".join(sorted(set(allowed) | {"OPTIONS"})))],
            )
        raise ApiError(404, f"no such endpoint: {path} (see /docs)")


def parse_id(name: str, raw: str) -> int:
    """A path id: 1 to MAX_ID in ASCII digits; ApiError 404 otherwise (no such resource)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS or not 1 <= int(raw) <= MAX_ID:
        shown = raw if len(raw) <= 40 else f"{raw[:20]}...({len(raw)} characters)"
        raise ApiError(404, f"{shown!r} is not a valid {name} (ids are integers from 1 to {MAX_ID})")
    return int(raw)


def parse_int(name: str, raw: str, low: int, high: int) -> int:
    """A query parameter: an integer from ``low`` to ``high`` in ASCII digits; ApiError 400
    otherwise. (``str.isdigit`` alone accepts "²" and other digits ``int()`` refuses.)"""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        shown = raw if len(raw) <= 40 else f"{raw[:20]}...({len(raw)} characters)"
        raise ApiError(400, f"{name} must be an integer from {low} to {high}, got {shown!r}")
    return int(raw)
