"""Device choice, dtype policy and memory budgets: the session manager's view of the hardware."""
from __future__ import annotations

import functools
import gc
import os
import resource
import sys
from typing import TYPE_CHECKING, Sequence

from generators.base import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from studio.config import Settings


def _torch():
    import torch

    return torch


@functools.lru_cache(maxsize=1)
def available_device_types() -> tuple[str, ...]:
    """Device types present on this machine, best first (asked once: it does not change)."""
    torch = _torch()
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return tuple(found)


@functools.lru_cache(maxsize=64)
def choose_device(setting: str, supported: tuple[str, ...]) -> "torch.device":
    """The device a generator runs on: the setting if the generator supports it, else its best.

    `setting` is "auto" or a device string ("cpu", "cuda", "cuda:1", "mps"). A generator that
    cannot use the requested kind (an ONNX or numpy generator asked for cuda) falls back to the
    best kind it supports that is present; the CPU is always present.
    """
    torch = _torch()
    present = available_device_types()
    if setting and setting != "auto":
        try:
            wanted = torch.device(setting)
        except (RuntimeError, ValueError):
            raise InvalidInput(f"unknown device {setting!r}; use auto, cpu, cuda, cuda:N or mps") from None
        if wanted.type not in present:
            raise InvalidInput(f"device {setting!r} is not available here; present: {', '.join(present)}")
        if wanted.type == "cuda" and wanted.index is not None and wanted.index >= torch.cuda.device_count():
            raise InvalidInput(f"device {setting!r} does not exist; this machine has "
                               f"{torch.cuda.device_count()} CUDA device(s)")
        if wanted.type in supported:
            return wanted
    for kind in supported:
        if kind in present:
            return torch.device(kind)
    raise InvalidInput(f"none of the devices {', '.join(supported)} is available here")


def choose_dtype(setting: str, device: "torch.device") -> "torch.dtype":
    """fp16 on CUDA, fp32 elsewhere: bf16 is 11-14x slower than fp32 on these CPUs (OFFLINE.md)."""
    torch = _torch()
    if setting != "auto":
        return getattr(torch, setting)
    return torch.float16 if device.type == "cuda" else torch.float32


def pool_of(device: "torch.device") -> str:
    """Which memory budget a device draws from: "ram" (cpu, mps: unified) or "cuda:N"."""
    if device.type == "cuda":
        return f"cuda:{device.index if device.index is not None else _torch().cuda.current_device()}"
    return "ram"


def physical_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8 << 30


def default_budget(pool: str, settings: "Settings") -> int:
    if pool == "ram":
        return settings.ram_budget or int(physical_memory() * 0.6)
    if settings.vram_budget:
        return settings.vram_budget
    torch = _torch()
    index = int(pool.split(":")[1])
    return int(torch.cuda.get_device_properties(index).total_memory * 0.9)


def peak_rss_bytes() -> int:
    """The process's high-water resident memory (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def free_memory(device_types: Sequence[str] = ("cuda", "mps")) -> None:
    """Collect garbage and hand cached accelerator memory back after an eviction or an OOM."""
    gc.collect()
    if "torch" not in sys.modules:
        return
    torch = sys.modules["torch"]
    if "cuda" in device_types and torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if "mps" in device_types and mps is not None and getattr(torch.backends, "mps", None) \
            and torch.backends.mps.is_available():
        mps.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError, MemoryError, or a backend's 'out of memory' RuntimeError."""
    if isinstance(exc, MemoryError):
        return True
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def preserve_global_rng(device: "torch.device"):
    """Restore torch's global RNG afterwards: building nn.Modules (their random init) or a
    library's internal sampling must not move the creator's own global seed state."""
    import contextlib

    torch = sys.modules.get("torch")
    if torch is None:
        return contextlib.nullcontext()
    cuda = [device.index or 0] if device.type == "cuda" else []
    return torch.random.fork_rng(devices=cuda)
