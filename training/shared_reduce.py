"""Summing the gradients of the ranks on one machine through shared memory.

gloo's all-reduce goes through TCP on the loopback device: on the 2-core VM it takes about
1.6 ms for the default policy's 24k gradients even when both ranks arrive at once, and adds
about 3 ms to every optimizer step of a training run, where the step itself takes 13 ms
(docs/benchmarks.md). When every rank of a run is on one machine, the ranks can instead write
their gradients into one shared file mapped into each of them, wait until all have written,
and each add up the same slots in the same order (so every rank holds the same sum, bit for
bit): about 0.04 ms.

``SharedReducer.open`` makes the mapping (rank 0 creates a file in /dev/shm, the others map
it, and rank 0 removes its name at once: nothing is left behind, even if a rank dies).
``all_sum_`` is the collective: every rank calls it with a tensor of the same size, in the same
order. training/distributed.py sums every gradient and every small collective sum of a run
through it (``Dist.all_sum``), the others (gathers, broadcasts) going through the backend. The
wait spins briefly, then sleeps in short steps; it gives up with ``PeerLost`` when another
rank's process has ended, or after ``timeout`` seconds.

Only on Linux on x86-64 (``supported``): the wait relies on x86's ordering of stores (a rank's
gradients are visible to the others before its flag is), which other processors do not promise
without fences that Python cannot issue.
"""

from __future__ import annotations

import mmap
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

SHM_DIR = "/dev/shm"
LINE = 64
"""bytes per rank's flag: one cache line each, so that a rank's writes do not slow the others' reads"""
SPINS = 20000
"""busy checks of the flags before the wait starts sleeping (a few ms: the other ranks are usually
that close in an optimizer step)"""
SLEEP_S = 0.0002
LIVENESS_S = 0.1
"""how often a sleeping wait checks that the other ranks' processes still run"""


SUMMABLE = (torch.float32, torch.float64, torch.int32, torch.int64)


class Unavailable(RuntimeError):
    """Shared memory cannot hold the reducer here (the reason is the message)."""


class PeerLost(RuntimeError):
    """Another rank's process ended, or did not arrive in time."""


def supported() -> str | None:
    """None when this machine can sum through shared memory, else why not."""
    if sys.platform != "linux":
        return f"shared-memory all-reduce needs Linux, not {sys.platform}"
    if platform.machine() not in ("x86_64", "AMD64"):
        return f"shared-memory all-reduce needs an x86-64 processor, not {platform.machine()}"
    if not (os.path.isdir(SHM_DIR) and os.access(SHM_DIR, os.W_OK)):
        return f"shared-memory all-reduce needs a writable {SHM_DIR}"
    return None


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


class SharedReducer:
    """One machine's ranks summing equal-sized tensors through one shared mapping.

    Two banks of ``world`` slots of ``capacity`` bytes each, used in turn: a rank writes call
    k's tensor while a slower one may still read call k - 1's, and it cannot get to call k + 1
    (the same bank as k - 1) before every rank has finished reading k - 1 and raised its flag
    for k.
    """

    def __init__(self, path: str, rank: int, world: int, capacity: int, pids: list[int], timeout: float):
        self.rank, self.world, self.capacity, self.timeout = rank, world, capacity, timeout
        self.peers = [pid for r, pid in enumerate(pids) if r != rank]
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, self.size(world, capacity))
        finally:
            os.close(fd)
        raw = np.frombuffer(self._map, dtype=np.uint8)
        head = world * LINE
        self.flags = raw[:head].view(np.int64).reshape(world, LINE // 8)[:, 0]
        self.banks = raw[head:].reshape(2, world, capacity)
        self.calls = 0  # collectives so far; the file starts zero-filled, every flag at 0

    @staticmethod
    def size(world: int, capacity: int) -> int:
        return world * LINE + 2 * world * capacity

    @classmethod
    def open(cls, rank: int, world: int, capacity: int, exchange, timeout: float = 300.0) -> SharedReducer:
        """Every rank's reducer, made together. exchange(obj) -> every rank's obj in rank order
        (a collective over the run's process group): it passes the file's name and the pids.
        Raises Unavailable on every rank when rank 0 cannot reserve the file's space in /dev/shm
        (a small tmpfs, as in a container, would otherwise kill the ranks with SIGBUS later)."""
        path = why_not = None
        if rank == 0:
            fd, path = tempfile.mkstemp(prefix="arena-allreduce-", dir=SHM_DIR)
            try:
                os.posix_fallocate(fd, 0, cls.size(world, capacity))  # zero-filled: every flag starts at 0
            except OSError as exc:
                why_not = f"{SHM_DIR} has no room for {cls.size(world, capacity):,} bytes ({exc.strerror})"
            finally:
                os.close(fd)
        try:
            everyone = exchange((path, os.getpid(), why_not))
            if everyone[0][2] is not None:
                raise Unavailable(everyone[0][2])
            reducer = cls(everyone[0][0], rank, world, capacity, [pid for _, pid, _ in everyone], timeout)
            exchange(None)  # every rank has mapped the file: its name can go
        finally:
            if rank == 0:
                os.unlink(path)
        return reducer

    def takes(self, tensor: torch.Tensor) -> bool:
        """Whether all_sum_ can sum ``tensor``: a contiguous CPU tensor of numbers that fits a slot."""
        return (
            tensor.device.type == "cpu"
            and tensor.is_contiguous()
            and tensor.dtype in SUMMABLE
            and tensor.numel() * tensor.element_size() <= self.capacity
        )

    def all_sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Replace ``tensor`` (a contiguous CPU tensor, the same size on every rank) by its sum
        over the ranks, added in rank order; returns it."""
        if not self.takes(tensor):
            raise ValueError(
                f"the shared-memory all-reduce takes contiguous CPU tensors of {self.capacity} bytes at most, of "
                f"float32, float64, int32 or int64; got {tensor.dtype} on {tensor.device}, {tensor.numel()} elements"
            )
        values = tensor.detach().numpy()
        nbytes = values.nbytes
        self.calls += 1
        bank = self.banks[self.calls & 1]
        bank[self.rank, :nbytes] = values.reshape(-1).view(np.uint8)
        self.flags[self.rank] = self.calls  # after the data: x86 keeps the two stores in this order
        self._wait(self.calls)
        slots = [bank[r, :nbytes].view(values.dtype).reshape(values.shape) for r in range(self.world)]
        np.copyto(values, slots[0])
        for slot in slots[1:]:
            values += slot
        return tensor

    def _wait(self, call: int) -> None:
        flags = self.flags
        for _ in range(SPINS):
            if flags.min() >= call:
                return
        start = last_check = time.monotonic()
        while flags.min() < call:
            time.sleep(SLEEP_S)
            now = time.monotonic()
            if now - last_check >= LIVENESS_S:
                last_check = now
                gone = [pid for pid in self.peers if not _alive(pid)]
                if gone:
                    raise PeerLost(f"the process of another rank (pid {gone[0]}) ended during an all-reduce")
                if now - start > self.timeout:
                    raise PeerLost(f"another rank did not reach the all-reduce within {self.timeout:.0f} s")

    def close(self) -> None:
        self.flags = self.banks = None
        self._map.close()
