"""``python -m policies.bench_imitation`` is now ``python -m training.bench_imitation``; this
forwards to it (the old name keeps working for the scripts and docs that use it)."""

import os
import sys


def main() -> None:
    print(
        "policies.bench_imitation moved to training.bench_imitation; running: python -m training.bench_imitation",
        file=sys.stderr,
        flush=True,
    )
    os.execv(sys.executable, [sys.executable, "-m", "training.bench_imitation", *sys.argv[1:]])


if __name__ == "__main__":
    main()
