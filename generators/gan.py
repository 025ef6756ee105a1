"""Glyph GAN: a DCGAN (Radford et al., 2016) that dreams up kanji-like glyphs.

The embedded default is trained by `python -m training.gan.train` on 32x32 rasterised KanjiVG
characters (PyPI `kanjivg`, CC BY-SA 3.0) and committed as `assets/gan/generator.safetensors`;
a learned 32 -> 64 px stage (`assets/gan/upsampler-64.safetensors`, generators/gan_upsample.py,
trained by `python -m training.gan.train_upsample`) turns its glyphs into 64 px strokes.
Modes:

* `sample`: a batch of glyphs (each a PNG, plus a grid), optionally with the truncation trick
  (BigGAN, Brock et al., 2019: latents drawn from a normal truncated to +-t trade variety for
  tidiness).
* `interpolate`: a walk through latent space from sample A to sample B (spherical
  interpolation, White 2016), as a PNG strip and an animated GIF.
* `mix`: one glyph part-way between A and B.

Latents are returned in `Result.data["latents"]` (plain floats) so a UI can send two of them
back as `latent_a` / `latent_b` to interpolate or mix those exact samples.
torch and PIL are imported inside functions: importing this module stays instant.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress,
                             Result, Rng, file_sha256, param)
from generators.resources import assets_dir

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch
    from PIL import Image

DEFAULT_WEIGHTS = assets_dir("gan", "generator.safetensors")
# The learned 32 -> 64 px stage (generators/gan_upsample.py) the embedded generator runs through
# when this file is there; user-supplied generators are used as they are.
DEFAULT_UPSAMPLER = assets_dir("gan", "upsampler-64.safetensors")
WEIGHTS_NAME = "generator.safetensors"
MAX_LATENT_ABS = 10.0
MAX_OUTPUT_PIXELS = 16_777_216  # the sample grid or the interpolation strip, all frames together
MAX_OUTPUT_SIDE = 65536  # a long strip is fine as long as its pixel count stays under the cap


@dataclass(frozen=True)
class GANParams(Params):
    weights: str = param("", "a studio DCGAN .safetensors file, a folder holding one, or a Hugging Face "
                         "repo id with generator.safetensors; empty = the embedded KanjiVG model",
                         load=True, max_length=1000)
    mode: str = param("sample", "sample: a batch of glyphs; interpolate: an animated walk from A to B; "
                      "mix: one glyph between A and B", choices=("sample", "interpolate", "mix"))
    count: int = param(16, "how many glyphs to sample (sample mode)", min=1, max=64)
    truncation: float = param(0.0, "truncation trick: latents drawn within +-t; about 1 gives tidier, less "
                              "varied glyphs, lower values also fainter ink; 0 = off", min=0.0, max=4.0)
    latent_a: list[float] = param(default_factory=list, help="latent of sample A (from a previous result's "
                                  "data.latents); empty = drawn from the seed", max_length=4096)
    latent_b: list[float] = param(default_factory=list, help="latent of sample B; empty = drawn from the seed",
                                  max_length=4096)
    frames: int = param(16, "frames from A to B (interpolate mode)", min=2, max=120)
    fps: float = param(8.0, "animation speed in frames per second (interpolate mode)", min=0.5, max=50.0)
    pingpong: bool = param(True, "the animation walks back from B to A so it loops smoothly")
    mix: float = param(0.5, "mix mode: 0 = sample A, 1 = sample B", min=0.0, max=1.0)
    path: str = param("slerp", "slerp follows the Gaussian shell (no washed-out middle); lerp is a "
                      "straight line", choices=("slerp", "lerp"))
    scale: int = param(4, "pixels per glyph pixel in the output images (smooth upscaling)", min=1, max=32)
    invert: bool = param(True, "dark ink on light paper (off: light ink on dark)")

    def validate(self) -> None:
        super().validate()
        if 0.0 < self.truncation < 0.1:
            raise InvalidInput(f"truncation must be 0 (off) or at least 0.1, got {self.truncation}")
        for name in ("latent_a", "latent_b"):
            values = getattr(self, name)
            if any(abs(v) > MAX_LATENT_ABS for v in values):
                raise InvalidInput(f"{name} has values beyond +-{MAX_LATENT_ABS:g}; latents are drawn from "
                                   f"a standard normal, so send back the ones a result gave you")


def _resolve_weights(spec: str) -> Path:
    """The safetensors file `spec` names (see GANParams.weights); GeneratorUnavailable if none."""
    if not spec.strip():
        if not DEFAULT_WEIGHTS.is_file():
            raise GeneratorUnavailable(f"the embedded GAN weights are missing ({DEFAULT_WEIGHTS}); "
                                       f"train them with `python -m training.gan.train`")
        return DEFAULT_WEIGHTS
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        if (path / WEIGHTS_NAME).is_file():
            return path / WEIGHTS_NAME
        found = sorted(path.glob("*.safetensors"))
        if len(found) == 1:
            return found[0]
        raise GeneratorUnavailable(f"the folder {path} should hold {WEIGHTS_NAME} (found "
                                   f"{len(found)} .safetensors files)")
    from generators import hub

    if hub.is_hub_id(spec):
        return hub.file(spec, WEIGHTS_NAME, what="GAN model")
    raise GeneratorUnavailable(f"no GAN weights at {spec!r}: give a .safetensors file, a folder, or a "
                               f"Hugging Face repo id")


class GlyphGAN(Generator):
    name = "gan"
    Params = GANParams
    title = "Glyph GAN"
    description = ("Invent kanji-like glyphs with a small DCGAN trained on KanjiVG; sample, tidy with "
                   "truncation, and morph one glyph into another (GIF + strip).")
    devices = ("cpu",)  # a 0.3 M-parameter net: a GPU's launch overhead outweighs its speed
    cpu_threads = 1

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        return None if DEFAULT_WEIGHTS.is_file() else f"the embedded GAN weights are missing ({DEFAULT_WEIGHTS})"

    def __init__(self, weights: str = "", **load_options: Any) -> None:
        super().__init__(**load_options)
        self.weights = weights
        self._debug_config: Any = None
        self.model: Any = None
        self.upsampler: Any = None
        self.device: Any = None

    @property
    def native_size(self) -> int:
        """Side in pixels of the glyphs the network draws (before `scale`)."""
        side = self.model.cfg.image_size
        return side * self.upsampler.cfg.factor if self.upsampler is not None else side

    # -- lifecycle -------------------------------------------------------------------------
    def load(self, device: "torch.device | str" = "cpu", dtype: "torch.dtype | None" = None) -> None:
        import torch

        from generators.gan_model import DCGenerator, init_weights, load_generator

        self.device = torch.device(device)
        if self._debug_config is not None:
            model = DCGenerator(self._debug_config)
            init_weights(model, torch.Generator().manual_seed(0))
            self.model = model.to(self.device).eval()
            self.weights_sha256 = None
            return
        path = _resolve_weights(self.weights)
        try:
            self.model = load_generator(path, self.device)
        except Exception as exc:  # corrupt file, wrong format, wrong shapes
            raise GeneratorUnavailable(f"could not load GAN weights from {path.name}: {exc}") from exc
        self.weights_sha256 = file_sha256(path)
        self.upsampler = None
        if path == DEFAULT_WEIGHTS and DEFAULT_UPSAMPLER.is_file():
            from generators.gan_upsample import load_upsampler

            try:
                self.upsampler = load_upsampler(DEFAULT_UPSAMPLER, self.device)
            except Exception as exc:
                raise GeneratorUnavailable(f"could not load the 64 px stage {DEFAULT_UPSAMPLER.name}: {exc}") from exc
            self.weights_sha256 = hashlib.sha256((self.weights_sha256 + file_sha256(DEFAULT_UPSAMPLER)).encode()).hexdigest()

    def unload(self) -> None:
        self.model = None
        self.upsampler = None

    def estimate_bytes(self) -> int:
        path = DEFAULT_WEIGHTS if not self.weights else Path(self.weights)
        size = path.stat().st_size if path.is_file() else 4 << 20
        return size + (48 << 20)  # weights + activations for 64 samples and the output images

    @classmethod
    def debug(cls) -> "GlyphGAN":
        from generators.gan_model import GANConfig

        gen = cls()
        gen._debug_config = GANConfig(z_dim=8, width=4, image_size=16)
        return gen

    # -- generation ------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        if not isinstance(params, GANParams):
            raise InvalidInput(f"the GAN takes GANParams, got {type(params).__name__}")
        params.validate()
        if self.model is None:
            raise GeneratorUnavailable("the GAN is not loaded; call load() first")
        z_dim = self.model.cfg.z_dim
        for name in ("latent_a", "latent_b"):
            values = getattr(params, name)
            if values and len(values) != z_dim:
                raise InvalidInput(f"{name} has {len(values)} numbers but this model's latents have {z_dim}")
        from generators.image_io import check_size

        side = self.native_size * params.scale
        if params.mode == "sample":
            cols = min(params.count, 8)
            check_size(cols * side, -(-params.count // cols) * side, max_pixels=MAX_OUTPUT_PIXELS,
                       max_side=MAX_OUTPUT_SIDE, what=f"a grid of {params.count} glyphs at scale {params.scale}")
        elif params.mode == "interpolate":
            check_size(params.frames * side, side, max_pixels=MAX_OUTPUT_PIXELS, max_side=MAX_OUTPUT_SIDE,
                       what=f"a strip of {params.frames} frames at scale {params.scale}")
        progress(0.0, params.mode)
        gen = rng.torch_cpu()
        if params.mode == "sample":
            return self._sample(params, rng, gen, progress)
        return self._between(params, rng, gen, progress)

    def _latents(self, n: int, truncation: float, gen: "torch.Generator") -> "torch.Tensor":
        import torch

        z = torch.empty(n, self.model.cfg.z_dim)
        if truncation > 0:
            torch.nn.init.trunc_normal_(z, 0.0, 1.0, -truncation, truncation, generator=gen)
        else:
            z.normal_(generator=gen)
        return z

    def _decode(self, z: "torch.Tensor") -> "torch.Tensor":
        import torch

        with torch.inference_mode():
            x = self.model(z.to(self.device))  # (N, 1, S, S) in [-1, 1]
            if self.upsampler is not None:
                x = self.upsampler(x)  # (N, 1, 2S, 2S)
            x = x.float().cpu()
        return ((x[:, 0] + 1.0) / 2.0).clamp(0.0, 1.0)  # ink in [0, 1]

    def _image(self, ink: "torch.Tensor", params: GANParams) -> "Image.Image":
        import torch
        from PIL import Image

        pixels = (1.0 - ink) if params.invert else ink
        img = Image.fromarray((pixels * 255.0).round().to(torch.uint8).numpy())
        if params.scale > 1:
            img = img.resize((img.width * params.scale, img.height * params.scale), Image.Resampling.BICUBIC)
        return img

    def _parameters(self, params: GANParams, seed: int, size: tuple[int, int], **extra: Any) -> str:
        from generators.image_io import a1111_parameters

        model = ("debug-random-dcgan" if self._debug_config is not None else
                 ("kanjivg-dcgan-64px" if self.upsampler is not None else "kanjivg-dcgan") if not params.weights
                 else Path(params.weights).name)
        if self.weights_sha256:
            model += f" [{self.weights_sha256[:10]}]"
        fields = {"Mode": params.mode, "Truncation": params.truncation or None, **extra}
        return a1111_parameters(f"DCGAN glyph ({params.mode})", seed=seed, size=size, model=model, extra=fields)

    def _sample(self, params: GANParams, rng: Rng, gen: "torch.Generator", progress: Progress) -> Result:
        from generators.image_io import make_grid

        z = self._latents(params.count, params.truncation, gen)
        progress(0.3, "decoding")
        images = [self._image(ink, params) for ink in self._decode(z)]
        ids = [_latent_id(v) for v in z]
        outputs = [Output(".png", img, role="image", label=f"sample {i + 1}",
                          extra={"parameters": self._parameters(params, rng.seed, img.size, Index=i + 1,
                                                                Latent=ids[i])})
                   for i, img in enumerate(images)]
        if len(images) > 1:
            cols = min(8, len(images))
            grid = make_grid(images, cols=cols)
            outputs.insert(0, Output(".png", grid, role="grid", label=f"{len(images)} samples",
                                     extra={"parameters": self._parameters(params, rng.seed, grid.size,
                                                                           Count=len(images))}))
        progress(1.0, "done")
        return Result(outputs=outputs, data={"mode": "sample", "latents": z.tolist(), "latent_ids": ids,
                                             "z_dim": self.model.cfg.z_dim,
                                             "image_size": self.native_size * params.scale})

    def _between(self, params: GANParams, rng: Rng, gen: "torch.Generator", progress: Progress) -> Result:
        import torch

        a = torch.tensor(params.latent_a, dtype=torch.float32) if params.latent_a else \
            self._latents(1, params.truncation, gen)[0]
        b = torch.tensor(params.latent_b, dtype=torch.float32) if params.latent_b else \
            self._latents(1, params.truncation, gen)[0]
        if params.mode == "mix":
            ts = [params.mix]
        else:
            ts = [i / (params.frames - 1) for i in range(params.frames)]
        z = torch.stack([interpolate(a, b, t, params.path) for t in ts])
        progress(0.3, "decoding")
        frames = [self._image(ink, params) for ink in self._decode(z)]
        ids = [_latent_id(a), _latent_id(b)]
        data = {"mode": params.mode, "latents": [a.tolist(), b.tolist()], "latent_ids": ids, "t": ts,
                "z_dim": self.model.cfg.z_dim, "path": params.path}
        if params.mode == "mix":
            img = frames[0]
            out = Output(".png", img, role="image", label=f"mix {params.mix:g} of A and B",
                         extra={"parameters": self._parameters(params, rng.seed, img.size, Mix=params.mix,
                                                               Path=params.path, A=ids[0], B=ids[1])})
            progress(1.0, "done")
            return Result(outputs=[out], data=data, parents=ids)
        from generators.image_io import make_grid

        strip = make_grid(frames, cols=len(frames))
        info = dict(Frames=params.frames, FPS=params.fps, Path=params.path, A=ids[0], B=ids[1])
        progress(0.7, "encoding the animation")
        gif = _gif_bytes(frames + (frames[-2:0:-1] if params.pingpong else []), params.fps)
        outputs = [Output(".png", strip, role="strip", label="A to B strip",
                          extra={"parameters": self._parameters(params, rng.seed, strip.size, **info)}),
                   Output(".gif", gif, role="animation", label="A to B animation",
                          extra={"parameters": self._parameters(params, rng.seed, frames[0].size, **info)})]
        progress(1.0, "done")
        return Result(outputs=outputs, data=data, parents=ids)


def interpolate(a: "torch.Tensor", b: "torch.Tensor", t: float, path: str = "slerp") -> "torch.Tensor":
    """Point t in [0, 1] between latents a and b: spherical (slerp) or straight (lerp)."""
    import torch

    if t == 0.0:
        return a.clone()
    if t == 1.0:
        return b.clone()
    if path == "lerp":
        return (1.0 - t) * a + t * b
    na, nb = a / a.norm().clamp_min(1e-8), b / b.norm().clamp_min(1e-8)
    omega = torch.arccos((na * nb).sum().clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if float(so) < 1e-6:  # (anti)parallel: slerp is undefined, fall back to a straight line
        return (1.0 - t) * a + t * b
    return (torch.sin((1.0 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def _latent_id(z: "torch.Tensor") -> str:
    """A short content hash of a latent (float32 bytes), used as the sample's lineage id."""
    return "z" + hashlib.sha256(z.detach().float().contiguous().numpy().tobytes()).hexdigest()[:15]


def _gif_bytes(frames: list["Image.Image"], fps: float) -> bytes:
    buf = io.BytesIO()
    duration = max(20, int(round(1000.0 / fps)))  # GIF stores centiseconds; browsers floor to 20 ms
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=duration,
                   loop=0, optimize=False, disposal=1)
    return buf.getvalue()


__all__ = ["GlyphGAN", "GANParams", "interpolate", "DEFAULT_WEIGHTS"]
