"""The shared-memory all-reduce (training/shared_reduce.py): every rank gets the same sum, bit
for bit, equal to the sum in rank order; calls in a row reuse the slots safely; a rank whose
peer died stops with PeerLost within seconds instead of hanging."""

import os
import signal
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from training import shared_reduce
from training.shared_reduce import PeerLost, SharedReducer

pytestmark = pytest.mark.skipif(shared_reduce.supported() is not None, reason=str(shared_reduce.supported()))

SIZES = [1, 7, 24_000, 3]


def exchange_through(queue_in, queues_out, rank, world):
    """A tiny all-gather over queues: each rank sends to rank 0, which sends everything back."""

    def exchange(obj):
        queue_in.put((rank, obj))
        if rank == 0:
            got = dict(queue_in.get() for _ in range(world))
            for q in queues_out:
                q.put([got[r] for r in range(world)])
        return queues_out[rank].get()

    return exchange


def _sums(rank, world, inbox, outboxes, results, calls):
    reducer = SharedReducer.open(rank, world, 4 * max(SIZES), exchange_through(inbox, outboxes, rank, world), 30)
    out = []
    for k in range(calls):
        size = SIZES[k % len(SIZES)]
        t = torch.from_numpy(np.random.default_rng(1000 * k + rank).standard_normal(size).astype(np.float32))
        out.append(reducer.all_sum_(t).numpy().copy())
    reducer.close()
    results.put((rank, out))


def _spawn(target, world, *args):
    ctx = mp.get_context("spawn")
    inbox, outboxes, results = ctx.Queue(), [ctx.Queue() for _ in range(world)], ctx.Queue()
    procs = [ctx.Process(target=target, args=(r, world, inbox, outboxes, results, *args)) for r in range(world)]
    for p in procs:
        p.start()
    return procs, (inbox, outboxes, results)  # the queues live as long as the test holds them


@pytest.mark.parametrize("world", [2, 3])
def test_every_rank_gets_the_sum_in_rank_order_bit_for_bit(world):
    calls = 40
    procs, (*_, results) = _spawn(_sums, world, calls)
    got = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    for k in range(calls):
        size = SIZES[k % len(SIZES)]
        parts = [np.random.default_rng(1000 * k + r).standard_normal(size).astype(np.float32) for r in range(world)]
        expected = parts[0].copy()
        for part in parts[1:]:
            expected += part
        for r in range(world):
            assert np.array_equal(got[r][k], expected), (k, r)
    assert not [f for f in os.listdir(shared_reduce.SHM_DIR) if f.startswith("arena-allreduce-")]


def _waits_for_a_dead_peer(rank, world, inbox, outboxes, results):
    reducer = SharedReducer.open(rank, world, 64, exchange_through(inbox, outboxes, rank, world), 30)
    reducer.all_sum_(torch.ones(4))
    if rank == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    t0 = time.monotonic()
    try:
        reducer.all_sum_(torch.ones(4))
    except PeerLost as exc:
        results.put(("lost", time.monotonic() - t0, str(exc)))
    else:
        results.put(("summed", time.monotonic() - t0, ""))


def test_a_rank_whose_peer_died_stops_within_seconds():
    procs, (*_, results) = _spawn(_waits_for_a_dead_peer, 2)
    what, took, message = results.get(timeout=60)
    for p in procs:
        p.join(timeout=30)
    assert what == "lost" and took < 5, (what, took)
    assert "ended during an all-reduce" in message


def test_a_tensor_larger_than_the_slots_is_refused():
    reducer = SharedReducer.open(0, 1, 16, lambda obj: [obj], 1)
    with pytest.raises(ValueError, match="of 16 bytes at most"):
        reducer.all_sum_(torch.ones(5))
    assert torch.equal(reducer.all_sum_(torch.ones(4)), torch.ones(4))  # one rank: its own tensor
    reducer.close()


def test_a_run_across_machines_sums_through_the_backend_and_says_why_when_asked_otherwise():
    from configs import ConfigError
    from training.distributed import Dist, uses_shared_memory

    cpu = torch.device("cpu")
    one_machine = Dist(rank=1, world_size=2, local_rank=1, local_world_size=2)
    two_machines = Dist(rank=3, world_size=4, local_rank=1, local_world_size=2)
    assert uses_shared_memory(one_machine, cpu, "auto") and uses_shared_memory(one_machine, cpu, "shared_memory")
    assert not uses_shared_memory(one_machine, cpu, "backend")
    assert not uses_shared_memory(two_machines, cpu, "auto")
    with pytest.raises(ConfigError, match="every rank on one machine; this run has 4 ranks, 2 on this machine"):
        uses_shared_memory(two_machines, cpu, "shared_memory")
    with pytest.raises(ConfigError, match="sums CPU tensors; this run trains on cuda"):
        uses_shared_memory(one_machine, torch.device("cuda"), "shared_memory")


def test_no_room_in_dev_shm_is_reported_and_leaves_no_file(monkeypatch):
    import errno

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(shared_reduce.Unavailable, match="has no room for .* bytes"):
        SharedReducer.open(0, 1, 1 << 20, lambda obj: [obj])
    assert not [f for f in os.listdir(shared_reduce.SHM_DIR) if f.startswith("arena-allreduce-")]
