"""The ingest server: the browser game streams battles into SQLite through it.

Layers, each ignorant of the next: ``http`` (h11) and ``websocket`` (wsproto) adapt bytes
to requests and messages; ``handlers`` and ``stream`` turn them into storage calls;
``storage.aio`` group-commits them. ``budget`` decides who may take sockets and time (no
I/O); ``limits`` holds every limit with its reason. ``server`` wires these together;
``bench`` loads it, ``bench_abuse`` loads it while the clients of ``attacks`` misbehave.
``inference`` keeps the policies ``/act`` answers with (numpy, no torch); ``bench_act``
times that route. ``openapi`` documents it all from the types of ``validation`` and
``responses``.
"""

from .limits import Limits
from .server import BackgroundServer, IngestServer, ServerConfig

__all__ = ["BackgroundServer", "IngestServer", "Limits", "ServerConfig"]
