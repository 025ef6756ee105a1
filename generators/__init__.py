"""The studio's generators, by name.

`REGISTRY` is a literal dict of name -> "module:Class". Classes are imported only when asked
for (`get(name)`), so importing this package imports no torch, numpy or gradio.
"""
from __future__ import annotations

import importlib

from generators.base import (Cancelled, Generator, GeneratorUnavailable, InvalidInput, Output,
                             OutOfMemory, Params, Progress, ProgressEvent, Result, Rng, StudioError,
                             TimedOut, param)

REGISTRY: dict[str, str] = {
    "story": "generators.story:StoryWriter",
    "story_dpo": "generators.story_dpo:StoryDPO",  # trains story adapters from ratings (the story workspace)
    "music": "generators.music:MusicComposer",
    "sketch": "generators.sketch_rnn:SketchRNN",
    "image": "generators.image:Diffusion",
    "style": "generators.style:StyleTransfer",
    "gan": "generators.gan:GlyphGAN",
    "breeder": "generators.breeder:Breeder",
    "face": "generators.face_anim:FaceAnimator",
}

__all__ = ["REGISTRY", "get", "resolve", "Cancelled", "Generator", "GeneratorUnavailable",
           "InvalidInput", "Output", "OutOfMemory", "Params", "Progress", "ProgressEvent", "Result",
           "Rng", "StudioError", "TimedOut", "param"]


def resolve(ref: str) -> type[Generator]:
    """Import "package.module:Class" and check that it is a Generator."""
    module_name, _, attr = ref.partition(":")
    if not attr:
        raise InvalidInput(f"a generator reference looks like 'module:Class', got {ref!r}")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeneratorUnavailable(f"cannot import generator {ref!r}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Generator)):
        raise InvalidInput(f"{ref!r} is not a Generator class")
    return cls


def get(name: str) -> type[Generator]:
    """The generator class registered under `name`."""
    if name not in REGISTRY:
        raise InvalidInput(f"unknown generator {name!r}; available: {', '.join(sorted(REGISTRY)) or 'none'}")
    return resolve(REGISTRY[name])
