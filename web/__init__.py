"""The game's side of the backend, in JavaScript, shipped with the Python package.

- arena-client.js: streams a match's frames to the ingest server over a WebSocket (docs/ingest.md).
- policy.js: runs an exported fighter (policies.export) in the browser (docs/export.md).
- client-test.html, policy-test.html: the pages the browser tests load them in.

An installed wheel carries these files; ``asset("policy.js")`` is the path of one of them.
"""

from pathlib import Path

FILES = ("arena-client.js", "policy.js", "observe.js", "client-test.html", "policy-test.html")


def asset(name: str) -> Path:
    """The path of one of the shipped files (FILES)."""
    if name not in FILES:
        raise FileNotFoundError(f"web has no file {name!r}; it ships {', '.join(FILES)}")
    return Path(__file__).resolve().parent / name
