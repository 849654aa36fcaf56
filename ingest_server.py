"""Run the ingest server: the browser game streams battles into the arena database.

    python ingest_server.py [--db PATH] [--host H] [--port P] [--token T] [--cors-origin O ...]

Prints the address once it listens. SIGINT/SIGTERM stop it gracefully: no new
connections, requests in progress and acknowledgements finish, queued frames commit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sqlite3
import sys

BLAS_THREADS = "1"
"""BLAS threads for /act's forward pass, set before numpy loads. Its matrices are tiny
(64 x 128); with OpenBLAS's default of one thread per core, a product waited for a worker
thread on a core busy elsewhere and took 16 ms instead of 15 us (docs/benchmarks.md)."""
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

from ingest.server import IngestServer, ServerConfig  # noqa: E402  (after the BLAS setting)
from storage import StorageError  # noqa: E402

GIL_SWITCH_INTERVAL_S = 0.0005
"""How soon the event loop hands the GIL to the database thread that asks for it (Python's
default is 5 ms). The writer needs the GIL briefly after each multi-row INSERT step; at
5 ms a busy event loop made each group commit wait tens of milliseconds for it."""

GC_GEN0_THRESHOLD = 50_000
"""Young-generation collections after this many net container allocations (default 700).
Queued frame rows are short-lived tuples; at 50k frames/s the default threshold ran the
collector hundreds of times a second over them and cost more CPU than parsing."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", default="data/arena.db", help="SQLite database file (created if missing)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=8001, help="TCP port (0 picks a free one)")
    p.add_argument(
        "--token",
        default=os.environ.get("ARENA_INGEST_TOKEN"),
        help="require 'Authorization: Bearer TOKEN' for writes (default: $ARENA_INGEST_TOKEN, else no token)",
    )
    p.add_argument(
        "--cors-origin",
        action="append",
        dest="cors_origins",
        metavar="ORIGIN",
        help="allowed browser origin, e.g. http://localhost:8000 (repeatable; '*' for any). "
        "Default: any loopback origin",
    )
    p.add_argument(
        "--synchronous",
        default="FULL",
        choices=["NORMAL", "FULL"],
        help="SQLite synchronous mode: FULL makes an ack survive power loss, NORMAL "
        "only a crash of the server (default FULL)",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p.parse_args(argv)


async def run(config: ServerConfig) -> None:
    server = IngestServer(config)
    await server.start()
    gc.freeze()  # modules and startup objects: never garbage, never scan them again
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"ingest server listening on {server.url} (database {config.db_path})", flush=True)
    await stop.wait()
    await server.shutdown()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)  # one line per query otherwise
    config = ServerConfig(
        db_path=args.db,
        host=args.host,
        port=args.port,
        token=args.token,
        cors_origins=args.cors_origins,
        synchronous=args.synchronous,
    )
    try:
        asyncio.run(run(config))
    except (StorageError, sqlite3.Error) as e:
        print(f"ingest_server: cannot use the database {args.db!r}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(
            f"ingest_server: cannot listen on {args.host}:{args.port}: {e.strerror or e}; "
            "pick another --port or --host",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
