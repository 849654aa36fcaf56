"""Training across processes and machines with torch.distributed, as torchrun starts it.

    torchrun --standalone --nproc_per_node 2 train.py configs/aggression.yaml
    torchrun --nnodes 2 --node_rank R --rdzv_backend c10d --rdzv_endpoint HOST:PORT --nproc_per_node 2 train.py ...

A config describes the whole run, whatever the number of processes: its env is split between
the ranks (each steps its own shard of the arenas, or of the envs, seeded as one process would
seed them), the rollout of every rank is one part of the global batch, and the update works on
that global batch: the same minibatches, advantage normalisation and losses over them, and the
same early stop on the KL as one process would compute, with the gradients averaged by
DistributedDataParallel (gloo on CPU, nccl on CUDA; a recurrent policy's by one all-reduce per
step in its update). When every rank runs on one machine's CPU, the gradients are summed
through shared memory instead of gloo's TCP (training/shared_reduce.py; config ``all_reduce``).
Rank 0 alone writes files, runs the evaluations and talks to the database; every rank leaves
together when one is asked to stop.

``Dist`` is the process's place in the run; ``Dist()`` (one process) makes every collective a
no-op, so the trainer has one code path.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field

import torch
import torch.distributed as torch_dist

from training.shared_reduce import PeerLost, SharedReducer, Unavailable, supported

TIMEOUT_S = 300
"""How long a collective waits for a silent peer before failing (a dead peer fails it at once).
Long enough for rank 0's evaluations and checkpoints, which the others wait for."""


class DistributedFailure(RuntimeError):
    """Another process of a distributed run failed or left: this one stops too."""


@dataclass
class Dist:
    """This process's place in a distributed run (the defaults: a run of one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    reducer: SharedReducer | None = field(default=None, compare=False, repr=False)
    """the shared-memory gradient sum, once ``wrap`` made it (None: the backend's all-reduce)"""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ collectives (no-ops alone)
    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over the ranks of ``tensor`` (every rank gets it)."""
        if self.enabled:
            tensor = self._sum_(tensor.clone().contiguous())
        return tensor

    def average_gradients_(self, flat: torch.Tensor) -> torch.Tensor:
        """Replace ``flat`` by its mean over the ranks; returns it."""
        if self.enabled:
            self._sum_(flat).div_(self.world_size)
        return flat

    def _sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Replace ``tensor`` by its sum over the ranks: through shared memory when the reducer
        takes it (the same answer on every rank, whose tensors match), else the backend's."""
        if self.reducer is not None and self.reducer.takes(tensor):
            try:
                return self.reducer.all_sum_(tensor)
            except PeerLost as exc:
                raise self._failure(exc) from exc
        self._call(torch_dist.all_reduce, tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """Whether any rank's ``flag`` is set."""
        if not self.enabled:
            return bool(flag)
        return bool(self.all_sum(torch.tensor([1.0 if flag else 0.0])).item() > 0)

    def gather(self, obj) -> list:
        """Every rank's ``obj`` (picklable), in rank order."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        self._call(torch_dist.all_gather_object, out, obj)
        return out

    def gather_tensor(self, tensor: torch.Tensor) -> torch.Tensor:
        """Every rank's ``tensor`` (all of one shape), stacked in rank order on a new first axis."""
        if not self.enabled:
            return tensor[None]
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        self._call(torch_dist.all_gather, out, tensor.contiguous())
        return torch.stack(out)

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        self._call(torch_dist.broadcast_object_list, box, src=0)
        return box[0]

    def broadcast_tensor(self, tensor: torch.Tensor) -> None:
        """Rank 0's values of ``tensor``, written into every rank's ``tensor``."""
        if self.enabled:
            self._call(torch_dist.broadcast, tensor, src=0)

    def barrier(self) -> None:
        if self.enabled:
            self._call(torch_dist.barrier)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (RuntimeError, ValueError) as exc:  # gloo and nccl raise RuntimeError subclasses
            raise self._failure(exc) from exc

    def _failure(self, exc: Exception) -> DistributedFailure:
        return DistributedFailure(f"rank {self.rank}: another process of the run failed or left ({exc})")


def setup(device_name: str = "auto") -> Dist:
    """The process's Dist: under torchrun (WORLD_SIZE > 1) the process group is joined once
    (nccl for CUDA devices, else gloo); without it, a run of one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    dist = Dist(
        rank=int(os.environ["RANK"]),
        world_size=world,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
    )
    if not torch_dist.is_initialized():
        cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(dist.local_rank)
        torch_dist.init_process_group(backend, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return dist


def process_device(dist: Dist, device: torch.device) -> torch.device:
    """A CUDA device is this rank's own GPU (cuda:LOCAL_RANK) in a distributed run."""
    if dist.enabled and device.type == "cuda":
        return torch.device("cuda", dist.local_rank)
    return device


def shard(total: int, dist: Dist, what: str) -> tuple[int, int]:
    """(first, count) of this rank's equal share of ``total`` items; ConfigError unless it divides."""
    from configs import ConfigError

    if total % dist.world_size:
        raise ConfigError(
            f"{what} is {total}, which does not split evenly between {dist.world_size} processes; "
            f"make it a multiple of {dist.world_size}"
        )
    count = total // dist.world_size
    return dist.rank * count, count


def env_threads(dist: Dist) -> int | None:
    """numba threads for each rank's arenas: the machine's cores shared by its ranks (None alone: numba's setting)."""
    if not dist.enabled:
        return None
    return max(1, (os.cpu_count() or 1) // dist.local_world_size)


def agent_rows(dist: Dist, num_agents: int) -> tuple[int, int] | None:
    """(first, total) of this rank's rows among the run's agents (each rank has ``num_agents``)."""
    return (dist.rank * num_agents, dist.world_size * num_agents) if dist.enabled else None


def wrap(policy: torch.nn.Module, dist: Dist, all_reduce: str = "auto") -> torch.nn.Module:
    """The module the update runs: DistributedDataParallel of ``policy`` (which starts every rank
    from rank 0's weights) in a distributed run, else ``policy`` itself. A recurrent policy stays
    bare, with rank 0's weights copied to every rank: its update replays sequences outside the
    module's forward and averages the gradients itself (training/ppo.py). all_reduce (one of
    configs.checks.ALL_REDUCE_MODES): whether the gradients are summed through shared memory
    (``dist.reducer``, also DistributedDataParallel's communication hook) or by the process group."""
    if not dist.enabled:
        return policy
    device = next(policy.parameters()).device
    if uses_shared_memory(dist, device, all_reduce):
        capacity = sum(p.numel() * p.element_size() for p in policy.parameters())
        try:
            dist.reducer = SharedReducer.open(dist.rank, dist.world_size, capacity, dist.gather, TIMEOUT_S)
        except Unavailable as exc:  # every rank gets it: all fall back to the backend together
            if all_reduce == "shared_memory":
                raise _refused(str(exc)) from exc
    if getattr(policy, "recurrent", False):
        for tensor in [*policy.parameters(), *policy.buffers()]:
            dist.broadcast_tensor(tensor.data)
        return policy
    ids = [device.index] if device.type == "cuda" else None
    model = torch.nn.parallel.DistributedDataParallel(policy, device_ids=ids)
    if dist.reducer is not None:
        model.register_comm_hook(dist, _shared_memory_hook)
    return model


def uses_shared_memory(dist: Dist, device: torch.device, all_reduce: str) -> bool:
    """Whether ``wrap`` sums the gradients through shared memory; ConfigError when
    ``all_reduce: shared_memory`` asks for it where it cannot work (train.py asks before it
    makes the run folder). The modes: shared_memory, through a mapping shared by the ranks of
    one machine (Linux, x86-64, CPU); backend, the process group's all-reduce (gloo or nccl);
    auto, shared_memory where it can, else backend."""
    from configs import ConfigError
    from configs.checks import ALL_REDUCE_MODES

    if all_reduce not in ALL_REDUCE_MODES:
        raise ConfigError(f"all_reduce is {all_reduce!r}; expected one of {', '.join(ALL_REDUCE_MODES)}")
    if all_reduce == "backend":
        return False
    why_not = supported()
    if why_not is None and device.type != "cpu":
        why_not = f"shared-memory all-reduce sums CPU tensors; this run trains on {device.type}"
    if why_not is None and dist.local_world_size != dist.world_size:
        why_not = (
            f"shared-memory all-reduce needs every rank on one machine; this run has {dist.world_size} ranks, "
            f"{dist.local_world_size} on this machine"
        )
    if why_not is not None and all_reduce == "shared_memory":
        raise _refused(why_not)
    return why_not is None


def _refused(why_not: str):
    """The ConfigError of ``all_reduce: shared_memory`` where it cannot work."""
    from configs import ConfigError

    return ConfigError(f"all_reduce: shared_memory cannot work here: {why_not}; use auto or backend")


def _shared_memory_hook(dist: Dist, bucket):  # no annotations: DDP checks them, and here they are strings
    """DistributedDataParallel's communication hook: one bucket of gradients, averaged over the
    ranks through shared memory (complete when it returns)."""
    future = torch.futures.Future()
    future.set_result(dist.average_gradients_(bucket.buffer()))
    return future


def parameters_in_sync(policy: torch.nn.Module, dist: Dist) -> bool:
    """Whether every rank holds the same weights, bit for bit (True alone)."""
    if not dist.enabled:
        return True
    flat = torch.cat([p.detach().reshape(-1).float().cpu() for p in policy.parameters()])
    everyone = dist.gather_tensor(flat.to(next(policy.parameters()).device)).cpu()
    return bool((everyone == everyone[0]).all())


def dist_summary(dist: Dist, in_sync: bool) -> dict:
    """summary.json's ``distributed``: the ranks, how they summed their gradients (shared_memory or
    the backend's name) and whether their weights ended identical."""
    backend = torch_dist.get_backend()
    return {
        "world_size": dist.world_size,
        "backend": backend,
        "all_reduce": "shared_memory" if dist.reducer is not None else backend,
        "parameters_in_sync": in_sync,
    }
