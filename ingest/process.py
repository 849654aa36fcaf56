"""Run ingest_server.py as a child process: for the load generators, the demo and tests."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = re.compile(r"http://([\d.]+):(\d+)")  # the address ingest_server.py prints when ready


def start_server_process(db, port: int = 0, *args: str, log=None) -> tuple[subprocess.Popen, str, int]:
    """Start ingest_server.py on ``db`` (port 0: a free one), log level WARNING, with any further
    command-line ``args`` (a later --log-level wins); wait until it listens and return
    (process, host, port). Its log (stderr) goes to ``log``, a file open for writing and
    reading, or to a temporary file."""
    # stderr goes to a file, not a pipe nobody reads: a chatty server must never block on it.
    log = log if log is not None else tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "ingest_server.py"),
            "--db",
            str(db),
            "--port",
            str(port),
            "--log-level",
            "WARNING",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        cwd=ROOT,
    )
    line = proc.stdout.readline()
    m = READY_LINE.search(line)
    if not m:
        proc.kill()
        proc.wait()
        log.flush()
        log.seek(0)
        raise RuntimeError(f"the ingest server did not start: {line!r} {log.read()[-2000:]}")
    return proc, m.group(1), int(m.group(2))


def stop_server_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (graceful: acknowledged frames are committed), then SIGKILL after ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
