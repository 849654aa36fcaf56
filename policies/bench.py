"""``python -m policies.bench`` is now ``python -m training.bench``; this forwards to it.

The benchmark trains (it runs train.py's loop), so it lives above the policies in
training/; the old name keeps working for the scripts and docs that use it:

    python -m policies.bench --device cuda --env.num_arenas 16384
"""

import os
import sys


def main() -> None:
    print("policies.bench moved to training.bench; running: python -m training.bench", file=sys.stderr, flush=True)
    os.execv(sys.executable, [sys.executable, "-m", "training.bench", *sys.argv[1:]])


if __name__ == "__main__":
    main()
