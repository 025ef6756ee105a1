"""Small real generators for testing the session manager: tiny torch models, no network.

Each exercises one behaviour: weights from a safetensors file (cache, budget, load failure),
cooperative progress (cancel, timeout, fairness), a simulated out-of-memory error.
"""
from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from generators.base import (Generator, GeneratorUnavailable, Output, Params, Progress, Result, Rng,
                             file_sha256, param)
from dataclasses import dataclass


def write_weights(path: Path, features: int = 16, seed: int = 0) -> Path:
    """A tiny linear layer saved as safetensors (the format every studio model loads from)."""
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    save_file({"weight": torch.randn(features, features, generator=g), "bias": torch.zeros(features)}, str(path))
    return path


@dataclass(frozen=True)
class TinyParams(Params):
    weights: str = param("", "safetensors file of the linear layer", load=True)
    size: int = param(8, "image side in pixels", min=1, max=64)
    megabytes: int = param(1, "what estimate_bytes() reports, to exercise the budget", min=0, max=10**6,
                           load=True)


class TinyImage(Generator):
    """A linear layer applied to seeded noise, rendered as a grayscale PNG."""

    name = "tiny"
    Params = TinyParams
    title = "Tiny image"
    loads: ClassVar[int] = 0
    unloads: ClassVar[int] = 0

    def __init__(self, weights: str = "", megabytes: int = 1) -> None:
        self.weights = weights
        self.megabytes = megabytes
        self.layer: Any = None

    def estimate_bytes(self) -> int:
        return self.megabytes << 20

    def load(self, device, dtype=None) -> None:
        import torch
        from safetensors.torch import load_file

        path = Path(self.weights)
        if not path.is_file():
            raise GeneratorUnavailable(f"weights file {path} is missing")
        state = load_file(str(path), device=str(device))
        n = state["weight"].shape[0]
        self.layer = torch.nn.Linear(n, n).to(device)
        self.layer.load_state_dict(state)
        self.weights_sha256 = file_sha256(path)
        type(self).loads += 1

    def unload(self) -> None:
        self.layer = None
        type(self).unloads += 1

    def generate(self, params: TinyParams, *, rng: Rng, progress: Progress) -> Result:
        import torch
        from PIL import Image

        n = self.layer.in_features
        with torch.inference_mode():
            noise = torch.randn(params.size * params.size, n, generator=rng.torch)
            y = torch.sigmoid(self.layer(noise)).mean(dim=1).reshape(params.size, params.size)
        progress(1.0, "done")
        pixels = (y.numpy() * 255).astype("uint8")
        return Result(outputs=[Output(".png", Image.fromarray(pixels, mode="L"), role="image")],
                      data={"mean": float(y.mean())})

    @classmethod
    def debug(cls) -> "TinyImage":
        return cls()


@dataclass(frozen=True)
class StepParams(Params):
    steps: int = param(3, "how many steps", min=1, max=10_000)
    step_s: float = param(0.01, "seconds per step", min=0.0, max=60.0)
    tag: str = param("", "free text carried into the output")
    check: bool = param(True, "call progress between steps (False: ignore cancel, like a stuck model)")


class Steps(Generator):
    """Sleeps in steps, reporting progress; records the order jobs ran in."""

    name = "steps"
    Params = StepParams
    devices = ("cpu",)
    ran: ClassVar[list[str]] = []
    gate: ClassVar[threading.Event | None] = None  # when set by a test, the first step waits on it

    def estimate_bytes(self) -> int:
        return 1 << 10

    def load(self, device, dtype=None) -> None:
        pass

    def generate(self, params: StepParams, *, rng: Rng, progress: Progress) -> Result:
        type(self).ran.append(params.tag)
        if type(self).gate is not None:
            type(self).gate.wait(timeout=30)
        for i in range(params.steps):
            time.sleep(params.step_s)
            if params.check:
                progress((i + 1) / params.steps, f"step {i + 1}/{params.steps}")
        progress.token(params.tag or "done")
        text = f"{params.tag} {rng.numpy.integers(0, 1 << 30)}\n"
        return Result(outputs=[Output(".txt", text, role="text")], data={"text": text})


@dataclass(frozen=True)
class OOMParams(Params):
    boom: bool = param(True, "raise torch.OutOfMemoryError during generation")


class OOMer(Generator):
    """Allocates a little, then raises torch.OutOfMemoryError as a real CUDA OOM would."""

    name = "oom"
    Params = OOMParams
    devices = ("cpu",)
    unloads: ClassVar[int] = 0

    def __init__(self) -> None:
        self.buffer: Any = None

    def estimate_bytes(self) -> int:
        return 4 << 20

    def load(self, device, dtype=None) -> None:
        import torch

        self.buffer = torch.zeros(1 << 20)

    def unload(self) -> None:
        self.buffer = None
        type(self).unloads += 1

    def generate(self, params: OOMParams, *, rng: Rng, progress: Progress) -> Result:
        import torch

        if params.boom:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return Result(outputs=[Output(".txt", "fine", role="text")])


@dataclass(frozen=True)
class FlakyParams(Params):
    pass


class FlakyLoad(Generator):
    """Fails to load while `broken` is set: a missing or corrupt weights file, fixed later."""

    name = "flaky"
    Params = FlakyParams
    devices = ("cpu",)
    broken: ClassVar[bool] = True

    def estimate_bytes(self) -> int:
        return 1 << 10

    def load(self, device, dtype=None) -> None:
        if type(self).broken:
            raise OSError("weights file is corrupt (unexpected end of file)")

    def generate(self, params: FlakyParams, *, rng: Rng, progress: Progress) -> Result:
        return Result(outputs=[Output(".txt", "loaded fine", role="text")])
