"""Round-trip fixtures: real generator outputs (debug weights where a generator has them),
written through the real AssetStore once per session, then opened by tools no one here wrote."""
from __future__ import annotations

import shutil
import wave
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from generators.base import Progress, Result, Rng

BASE = {"format": "studio-provenance/1", "weights_sha256": "ab" * 32, "parents": [], "device": "cpu",
        "job_id": "job-1", "user": "alice", "timings": {"run_s": 0.5}}

pytestmark = pytest.mark.roundtrip


def need(tool: str) -> str:
    """The path of a Debian tool the Makefile's system-deps installs; skip with the reason if absent."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (make system-deps installs it)")
    return path


def run_generator(gen: Any, params: dict[str, Any], seed: int = 5) -> Result:
    gen.load("cpu")
    try:
        return gen.generate(gen.Params.from_dict(params), rng=Rng(seed), progress=Progress.none())
    finally:
        gen.unload()


def write(store: Any, name: str, params: dict[str, Any], result: Result, seed: int = 5, **base: Any) -> list[Path]:
    return store.write(result, {**BASE, **base, "generator": name, "params": params, "seed": seed})


def _inputs(folder: Path) -> dict[str, Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    face = folder / "astronaut.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(face)
    content = folder / "coffee.png"
    Image.fromarray(data.coffee()).resize((96, 64)).save(content)
    return {"face": face, "content": content}


# name -> (factory, params(inputs)); the cheap set every round-trip test draws from
def _jobs(inputs: dict[str, Path]) -> dict[str, tuple[Callable[[], Any], dict[str, Any]]]:
    from generators.breeder import Breeder
    from generators.face_anim import FaceAnimator
    from generators.gan import GlyphGAN
    from generators.music import MusicComposer
    from generators.sketch_rnn import SketchRNN
    from generators.style import StyleTransfer

    return {
        "breeder": (Breeder.debug, {"rows": 1, "cols": 2, "width": 48, "height": 48}),
        "gan": (GlyphGAN.debug, {"count": 2}),
        "sketch": (SketchRNN.debug, {"candidates": 1, "size": 128}),
        "music": (MusicComposer.debug, {"bars": 4}),
        "style": (StyleTransfer, {"image": str(inputs["content"]), "max_side": 64}),
        "face": (FaceAnimator.debug, {"image": str(inputs["face"]), "consent": True, "duration": 0.5, "fps": 8,
                                      "size": 96, "format": "both"}),
    }


@pytest.fixture(scope="session")
def outputs(tmp_path_factory) -> dict[str, list[Path]]:
    """Each cheap generator run once and written to a store: name -> written paths."""
    from studio.assets import AssetStore

    root = tmp_path_factory.mktemp("roundtrip")
    inputs = _inputs(root / "inputs")
    store = AssetStore(root / "outputs")
    written: dict[str, list[Path]] = {}
    for name, (factory, params) in _jobs(inputs).items():
        written[name] = write(store, name, params, run_generator(factory(), params))
    return written


def make_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(np.arange(int(rate * seconds)) * 0.1) * 8000).astype("<i2").tobytes())
    return path
