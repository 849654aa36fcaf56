"""The ingest server: the browser game streams battles into SQLite through it.

Layers, each ignorant of the next: ``http`` (h11) and ``websocket`` (wsproto) adapt bytes
to requests and messages; ``handlers`` and ``stream`` turn them into storage calls;
``storage.aio`` group-commits them. ``server`` wires these together; ``bench`` loads it.
``inference`` keeps the policies ``/act`` answers with (numpy, no torch); ``bench_act``
times that route.
"""

from .limits import Limits
from .server import BackgroundServer, IngestServer, ServerConfig

__all__ = ["BackgroundServer", "IngestServer", "Limits", "ServerConfig"]
