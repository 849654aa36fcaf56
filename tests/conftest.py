"""How `make test` shares its test files between two pytest-xdist workers.

On a fresh checkout the arena's numba kernels compile for one to two minutes, the first time a
process steps an arena, and numba caches them on disk for every later process. Plain
``--dist loadfile`` hands both workers arena tests at once, so both compile the same kernels
side by side. Here the files that never step an arena (the server, storage, config and policy
tests: about two minutes of work) go to one worker as a single unit first, while the other
worker starts on the arena's tests and compiles; by the time the first worker needs the
kernels they are in numba's cache. Should it need them sooner, it waits for the compile
(a file lock) rather than compiling them a second time. The tests themselves do not change:
every file still runs whole in one worker, and a file listed here by mistake only costs a
second compile.
"""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path, PurePath

import pytest

WITHOUT_KERNEL = frozenset(
    {
        "test_act_sessions.py",
        "test_config.py",
        "test_ingest_abuse.py",
        "test_ingest_api.py",
        "test_ingest_browser.py",
        "test_ingest_client.py",
        "test_ingest_durability.py",
        "test_ingest_limits.py",
        "test_ingest_openapi.py",
        "test_ingest_protocol.py",
        "test_ingest_stream.py",
        "test_ingest_ws_close.py",
        "test_layers.py",
        "test_policy.py",
        "test_shared_reduce.py",
        "test_storage.py",
        "test_storage_concurrency.py",
        "test_storage_observation.py",
    }
)
"""Test files that never step an arena, in this process or in one they start."""
WITHOUT_KERNEL_UNIT = "files without the arena's kernels"
KERNEL_LOCK = Path(tempfile.gettempdir()) / "wrestling-arena-rl-kernels.lock"
_kernels_ready = False


@pytest.fixture(scope="module", autouse=True)
def _compiled_arena_kernels(request):
    """Before the first test file of this process that may step an arena (here or in a process
    it starts): the arena's kernels compiled or loaded from numba's cache, one process at a
    time. An autouse fixture comes before the file's own module fixtures (some train a policy)."""
    global _kernels_ready
    if _kernels_ready or request.path.name in WITHOUT_KERNEL:
        return
    from arena_helpers import Ring

    with open(KERNEL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        Ring().step()
    _kernels_ready = True


def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the files of WITHOUT_KERNEL as one unit, handed out first."""
    if config.getoption("dist") != "loadfile":
        return None  # xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class KernelFreeFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return WITHOUT_KERNEL_UNIT if PurePath(path).name in WITHOUT_KERNEL else path

        def _assign_work_unit(self, node) -> None:
            if WITHOUT_KERNEL_UNIT in self.workqueue:
                self.workqueue.move_to_end(WITHOUT_KERNEL_UNIT, last=False)
            super()._assign_work_unit(node)

    return KernelFreeFirst(config, log)
