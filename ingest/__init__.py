"""The ingest server: the browser game streams battles into SQLite through it.

Layers, each ignorant of the next: ``http`` (h11) and ``websocket`` (wsproto) adapt bytes
to requests and messages; ``handlers`` and ``stream`` turn them into storage calls;
``storage.aio`` group-commits them. ``server`` wires these together; ``bench`` loads it.
"""

from .limits import Limits
from .server import BackgroundServer, IngestServer, ServerConfig

__all__ = ["BackgroundServer", "IngestServer", "Limits", "ServerConfig"]
