"""Process setup shared by the entry points: malloc tuning, torch threads and device choice.

glibc's malloc returns big blocks to the OS with munmap as soon as they are freed, and the
update's minibatch tensors (a few MB each) are freed and allocated again thousands of times.
Raising the mmap and trim thresholds keeps those blocks in the heap; on the 2-core CPU box this
made torch training 20-50% faster and steadier. glibc reads GLIBC_TUNABLES only when a process
starts, so ``reexec_with_malloc_tunables`` restarts the interpreter once with it set.
"""

from __future__ import annotations

import os
import platform
import sys

MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
"""mmap only blocks over 32 MiB (glibc's maximum) and trim the heap only past 1 GiB free"""
_REEXEC_FLAG = "WRESTLING_ARENA_MALLOC_SET"


def reexec_with_malloc_tunables() -> None:
    """Restart this process with GLIBC_TUNABLES set, once; a no-op off glibc or if the user set it.

    Set GLIBC_TUNABLES yourself (even to an empty string) to opt out.
    """
    if "GLIBC_TUNABLES" in os.environ or os.environ.get(_REEXEC_FLAG):
        return
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return
    env = dict(os.environ, GLIBC_TUNABLES=MALLOC_TUNABLES, **{_REEXEC_FLAG: "1"})
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is not None and spec.name:  # started as python -m package.module
        argv = [sys.executable, "-m", spec.name.removesuffix(".__main__"), *sys.argv[1:]]
    else:
        argv = [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, env)


def select_device(name: str = "auto"):
    """torch.device for a config's ``device``: auto means cuda when available, else cpu."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    from configs import ConfigError

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but torch sees no CUDA GPU; use device: auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} was asked for but torch sees {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} was asked for but this machine has no MPS (Apple GPU); use auto or cpu")
    return device


def native_bf16(device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware: a CUDA GPU that supports it,
    or an x86 CPU with the AVX512-BF16 or AMX-BF16 instructions (read from /proc/cpuinfo)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu" or not torch.backends.mkldnn.is_available():
        return False
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def select_precision(name: str, device):
    """torch dtype for a config's ``train.update_precision``; auto means bfloat16 only where it is native.

    bfloat16 on a CPU without it runs, emulated, slower than float32: asking for it explicitly is
    allowed (to compare), auto never picks it there.
    """
    import torch

    if name == "auto":
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def precision_name(dtype) -> str:
    """The config's name of a precision dtype: torch.bfloat16 -> "bfloat16"."""
    return str(dtype).removeprefix("torch.")
