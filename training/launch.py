"""Train in a child process: ``python -m train ...`` run for a caller that is not train.py itself.

Population-based training (league/pbt.py) trains its members, and their specialists, this way:
each training is an ordinary train.py run in its own process, with its own run folder, so a
package module never imports the command-line script, and a member's crash cannot take the
population down with it. The child's output is passed through line by line.

Ctrl-C reaches the child too (it is in the same process group): it saves and exits, and then
``train_in_subprocess`` raises KeyboardInterrupt in the caller.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading

from configs import ConfigError
from training.layout import RunFolder

INTERRUPTED = 130
"""train.py's exit status after Ctrl-C (it saved first)"""
USAGE_ERROR = 2
"""train.py's exit status for a bad config, checkpoint or flag"""


class TrainingFailed(RuntimeError):
    """A child train.py failed other than by refusing its input or being stopped."""


def override_tokens(overrides) -> list[str]:
    """``--section.key value`` tokens from tokens or a {dotted key: value} dict (values as JSON, which YAML reads)."""
    if isinstance(overrides, dict):
        return [token for key, value in overrides.items() for token in (f"--{key}", json.dumps(value))]
    return list(overrides)


def local_processes(config) -> int:
    """How many processes ``python train.py`` trains this config with: its ``processes`` when the
    run is on the CPU and this process is not already one of torchrun's ranks, else 1 (this
    process trains; under torchrun the launcher's count is the run's)."""
    from policies.runtime import select_device

    if config.processes <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    device = select_device(config.device)
    if device.type != "cpu":
        print(
            f"processes: {config.processes} applies to CPU runs; this run is on {device} and trains in one "
            "process (torchrun --nproc_per_node N gives each of N GPUs a process)",
            flush=True,
        )
        return 1
    return config.processes


def train_in_subprocess(
    config=None,
    overrides=(),
    run_dir=None,
    resume=None,
    stop_at: int | None = None,
    progress=None,
    nproc: int = 1,
    init_from=None,
    db=None,
) -> dict:
    """Run train.py with these arguments (train.train's, by name) in a child process and return
    the summary it wrote; with nproc > 1, as ``nproc`` processes of one distributed run on this
    machine (torchrun --standalone). Raises ConfigError with train.py's message when it refuses
    its input, RuntimeError when it fails otherwise, KeyboardInterrupt when it was stopped."""
    args = [] if config is None else [str(config)]
    args += override_tokens(overrides)
    for flag, value in (("--run-dir", run_dir), ("--resume", resume), ("--init-from", init_from), ("--db", db)):
        if value is not None:
            args += [flag, str(value)]
    if stop_at is not None:
        args += ["--stop-at", str(int(stop_at))]
    folder = RunFolder(resume if resume is not None else run_dir)
    command = [sys.executable, "-m", "train", *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
        command = [*launcher, "-m", "train", *args]
        env.setdefault("OMP_NUM_THREADS", "1")  # train.py sets the config's torch_threads; torchrun warns if unset
    interrupted = []
    previous = None
    if threading.current_thread() is threading.main_thread():  # the child handles Ctrl-C; wait for it
        previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as child:
            errors = []
            drain = threading.Thread(target=lambda: errors.extend(child.stderr), daemon=True)
            drain.start()
            for line in child.stdout:
                print(line, end="", flush=True)
            code = child.wait()
            drain.join()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    message = "".join(errors).strip()
    if code == USAGE_ERROR:
        raise ConfigError(
            message.removeprefix("error: ").splitlines()[-1] if message else f"train.py refused {' '.join(args)}"
        )
    if nproc > 1 and root_cause_status(message) == USAGE_ERROR:  # torchrun's own status is 1: a rank refused
        refusals = [line.removeprefix("error: ").strip() for line in errors if line.startswith("error: ")]
        raise ConfigError(refusals[-1] if refusals else f"train.py refused {' '.join(args)}")
    if interrupted and folder.summary.is_file():  # torchrun's own status after Ctrl-C is 1
        code = INTERRUPTED
    if code not in (0, INTERRUPTED):
        raise TrainingFailed(f"train.py {' '.join(args)} failed with exit status {code}:\n{message[-4000:]}")
    if message:
        print(message, file=sys.stderr, flush=True)
    summary = json.loads(folder.summary.read_text())
    if code == INTERRUPTED or interrupted:
        raise KeyboardInterrupt(f"stopped while training {folder.path}")
    return summary


def root_cause_status(report: str) -> int | None:
    """The exit status of the rank that failed first, from torchrun's failure report (torchrun
    itself exits with 1 whatever its ranks' statuses were); None if the report names none."""
    found = re.search(r"Root Cause.*?exitcode\s*:\s*(-?\d+)", report, re.DOTALL)
    return int(found.group(1)) if found else None
