"""Run the ingest server: the browser game streams battles into the arena database.

    python ingest_server.py [--db PATH] [--host H] [--port P] [--token T] [--cors-origin O ...]

Prints the address once it listens. SIGINT/SIGTERM stop it gracefully: no new
connections, requests in progress and acknowledgements finish, queued frames commit.
Every limit of ingest/limits.py has a flag (--max-connections, --header-timeout, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import resource
import signal
import sqlite3
import sys

BLAS_THREADS = "1"
"""BLAS threads for /act's forward pass, set before numpy loads. Its matrices are tiny
(64 x 128); with OpenBLAS's default of one thread per core, a product waited for a worker
thread on a core busy elsewhere and took 16 ms instead of 15 us (docs/benchmarks.md)."""
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, BLAS_THREADS)

from ingest.limits import Limits, flag_name, limit_fields  # noqa: E402  (after the BLAS setting)
from ingest.server import ConfigError, IngestServer, ServerConfig  # noqa: E402
from storage import StorageError  # noqa: E402

GIL_SWITCH_INTERVAL_S = 0.0005
"""How soon the event loop hands the GIL to the database thread that asks for it (Python's
default is 5 ms). The writer needs the GIL briefly after each multi-row INSERT step; at
5 ms a busy event loop made each group commit wait tens of milliseconds for it."""

SPARE_FILE_DESCRIPTORS = 64
"""File descriptors beyond --max-connections: the database's files, the listening socket,
sockets being refused."""

GC_GEN0_THRESHOLD = 50_000
"""Young-generation collections after this many net container allocations (default 700).
Queued frame rows are short-lived tuples; at 50k frames/s the default threshold ran the
collector hundreds of times a second over them and cost more CPU than parsing."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], usage="python ingest_server.py [options]  (--help lists them)"
    )
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
    p.add_argument(
        "--allow-no-token",
        action="store_true",
        help="with a --host beyond loopback, run without --token: anyone who reaches the port may write",
    )
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    limits = p.add_argument_group("limits (docs/ingest.md, Limits; defaults in brackets)")
    for f in limit_fields():
        unit = " (seconds)" if f.name.endswith("_s") and not f.name.endswith("_per_s") else ""
        limits.add_argument(
            flag_name(f.name),
            dest=f"limit_{f.name}",
            type=int if f.type in (int, "int") else float,
            default=f.default,
            metavar="N",
            help=f"{f.metadata['help']}{unit} [{f.default}]",
        )
    args = p.parse_args(argv)
    try:
        args.limits = Limits(**{f.name: getattr(args, f"limit_{f.name}") for f in limit_fields()})
        args.config = ServerConfig(
            db_path=args.db,
            host=args.host,
            port=args.port,
            token=args.token,
            cors_origins=args.cors_origins,
            synchronous=args.synchronous,
            limits=args.limits,
            allow_no_token=args.allow_no_token,
        )
        args.config.check()
    except (ValueError, ConfigError) as e:
        p.error(str(e))  # exit status 2, before anything is opened or bound
    return args


def raise_file_limit(limits: Limits) -> None:
    """Raise the soft limit on open files to fit --max-connections (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = limits.max_connections + limits.max_refusing + SPARE_FILE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        if new < want:
            logging.getLogger("ingest").warning(
                "[conn -] only %d open files allowed (ulimit -Hn); --max-connections %d may not fit",
                new,
                limits.max_connections,
            )


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
    raise_file_limit(args.limits)
    try:
        asyncio.run(run(args.config))
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
