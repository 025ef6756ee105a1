"""Diffusion images: text-to-image, image-to-image and inpainting with any diffusers pipeline.

Latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent Diffusion
Models") run through Hugging Face diffusers; image-to-image is SDEdit (Meng et al. 2022), and
classifier-free guidance (Ho & Salimans 2022) weighs the prompt against the negative prompt.
The model is a diffusers folder or a Hugging Face id already in the local cache (this studio
never downloads). With none configured it loads the embedded default, 'kanji-glyphs-64': a small
pixel-space text-to-image model trained here on captioned KanjiVG glyphs (`studio train image`),
saved as a standard diffusers folder (DeepFloyd IF layout) and loaded by exactly the same
`DiffusionPipeline` code as any other model. Each image of a batch has its own seed (the job
seed + its index, as AUTOMATIC1111 does), so any single image can be reproduced alone.

This module imports no torch, numpy, PIL or diffusers; the work happens in
`generators.diffusion_pipeline`, imported inside `load()` / `generate()`.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, OutOfMemory, Params,
                             Progress, Result, Rng, file_sha256, param, tree_sha256)
from generators.resources import assets_dir

if TYPE_CHECKING:  # pragma: no cover - typing only
    import torch

# Shown by the UI/CLI when no model is configured (also part of load()'s error).
HOW_TO_ADD = (
    "Set the image model to a diffusers model: a local folder that contains model_index.json "
    "(e.g. one saved with `pipeline.save_pretrained(folder)`), or a Hugging Face id such as "
    "'stabilityai/sd-turbo' that is already in the local Hugging Face cache "
    "(download it on a machine with internet using `hf download ID`, then copy ~/.cache/huggingface)."
)
# Models the studio ships, by name (a diffusers folder under assets/image/); the first is the
# default when no model is configured. Made by `python -m training.image.train`.
EMBEDDED = {"kanji-glyphs-64": assets_dir("image", "kanji-glyphs-64")}
DEFAULT_MODEL = "kanji-glyphs-64"
MODES = ("auto", "text-to-image", "image-to-image", "inpaint")
SAMPLERS = ("default", "euler", "euler_a", "dpm++", "dpm++_karras", "dpm++_sde", "ddim", "pndm",
            "lms", "heun", "unipc")
OFFLOAD = ("none", "model", "sequential")


@dataclass(frozen=True)
class DiffusionParams(Params):
    model: str = param("", "a diffusers model folder (with model_index.json), a Hugging Face id "
                       "already in the local cache, or 'kanji-glyphs-64' (embedded); empty = the "
                       "embedded 'kanji-glyphs-64'", load=True, max_length=500)
    offload: str = param("none", "GPU only: keep idle parts of the model in CPU memory ('model') or "
                         "stream every layer ('sequential', least memory, slowest)",
                         choices=OFFLOAD, load=True)
    prompt: str = param("", "what to draw", max_length=2000, widget="textarea")
    negative_prompt: str = param("", "what to steer away from", max_length=2000, widget="textarea")
    mode: str = param("auto", "auto picks inpaint when a mask is given, image-to-image when a "
                      "starting image is given, else text-to-image", choices=MODES)
    init_image: str = param("", "starting picture for image-to-image and inpainting; it is resized "
                            "to width x height", widget="image")
    mask: str = param("", "inpainting mask, same size as the starting picture: white = repaint, "
                      "black = keep", widget="mask")
    strength: float = param(0.75, "image-to-image/inpaint: how far to move from the starting "
                            "picture (0 = unchanged, 1 = ignore it)", min=0.0, max=1.0)
    steps: int = param(25, "denoising steps: more is slower and usually cleaner", min=1, max=150)
    guidance: float = param(7.5, "classifier-free guidance: how strictly to follow the prompt "
                            "(1 = off)", min=0.0, max=30.0)
    # 0 = the model's own size (512 for SD 1.x, 1024 for SDXL, 64 for the embedded model): a model
    # asked for another size than it was trained at draws worse, so the default follows the model.
    width: int = param(0, "image width in pixels (a multiple of 8); 0 = the model's own size",
                       min=0, max=2048)
    height: int = param(0, "image height in pixels (a multiple of 8); 0 = the model's own size",
                        min=0, max=2048)
    scheduler: str = param("default", "sampler; 'default' keeps the model's own", choices=SAMPLERS)
    batch: int = param(1, "how many images; image i uses seed + i", min=1, max=8)

    def validate(self) -> None:
        super().validate()
        for name in ("width", "height"):
            if getattr(self, name) % 8:
                raise InvalidInput(f"{name} must be a multiple of 8, got {getattr(self, name)}")
            if 0 < getattr(self, name) < 64:
                raise InvalidInput(f"{name} must be at least 64 pixels (or 0 for the model's own size), "
                                   f"got {getattr(self, name)}")
        if (self.width == 0) != (self.height == 0):
            raise InvalidInput("set both width and height, or leave both at 0 for the model's own size")
        if self.negative_prompt.strip() and self.guidance <= 1.0:
            raise InvalidInput("a negative prompt only has an effect with guidance above 1; raise the "
                               "guidance or clear the negative prompt")
        if self.width * self.height > 2_359_296:  # 1536 x 1536
            raise InvalidInput(f"{self.width}x{self.height} is too large; at most 2.4 megapixels "
                               "(e.g. 1536x1536)")
        self.resolved_mode()

    def resolved_mode(self) -> str:
        """"text", "image" or "inpaint", or InvalidInput when the inputs do not fit the mode."""
        has_init, has_mask = bool(self.init_image.strip()), bool(self.mask.strip())
        mode = self.mode
        if mode == "auto":
            mode = "inpaint" if has_mask else "image-to-image" if has_init else "text-to-image"
        if mode == "text-to-image":
            if has_init or has_mask:
                raise InvalidInput("text-to-image does not use a starting picture or mask; clear them "
                                   "or choose image-to-image / inpaint")
            if not self.prompt.strip():
                raise InvalidInput("write a prompt describing the picture")
            return "text"
        if not has_init:
            raise InvalidInput(f"{mode} needs a starting picture (init_image)")
        if mode == "image-to-image" and has_mask:
            raise InvalidInput("a mask is only used for inpainting; choose mode 'inpaint' or clear the mask")
        if mode == "inpaint" and not has_mask:
            raise InvalidInput("inpainting needs a mask: paint the area to repaint in white")
        if denoising_steps(self.steps, self.strength) < 1:
            raise InvalidInput(f"with strength {self.strength} and {self.steps} steps no denoising step "
                               "would run; raise the strength or the steps")
        return "image" if mode == "image-to-image" else "inpaint"


def denoising_steps(steps: int, strength: float) -> int:
    """Steps diffusers' image-to-image actually runs (its `get_timesteps` arithmetic)."""
    return steps - int(max(steps - min(steps * strength, steps), 0))


@functools.lru_cache(maxsize=1)
def _tiny_model_folder() -> str:
    """Build the tiny random test pipeline once per process (see generators.diffusion_tiny)."""
    from generators.diffusion_tiny import build_tiny_sd

    root = Path(tempfile.mkdtemp(prefix="studio-tiny-sd-"))
    atexit.register(shutil.rmtree, root, True)
    build_tiny_sd(root / "tiny-sd")
    return str(root / "tiny-sd")


class Diffusion(Generator):
    name = "image"
    Params = DiffusionParams
    title = "Diffusion"
    description = ("Text-to-image, image-to-image and inpainting with any diffusers model you point "
                   "it at (a local folder or a cached Hugging Face id).")
    devices = ("cuda", "mps", "cpu")
    cpu_threads = 2  # diffusion gains ~2x from two threads (shared/OFFLINE.md)

    def __init__(self, model: str = "", offload: str = "none") -> None:
        super().__init__()
        if offload not in OFFLOAD:
            raise InvalidInput(f"offload must be one of {', '.join(OFFLOAD)}, got {offload!r}")
        self.model = model
        self.offload = offload
        self._pipe: Any = None
        # A diffusers pipeline is not re-entrant (the scheduler is swapped per call): one job at a time.
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------
    def estimate_bytes(self) -> int:
        """Device memory the model will hold: weight files plus a working set (activations and the
        VAE decode of a 512 px image). With offload only the largest component ('model') or a
        slice of it ('sequential') sits on the GPU at a time. 0 when the model cannot be found
        (load() then says why)."""
        from generators.diffusion_pipeline import resolve_model, weight_files

        try:
            files = weight_files(resolve_model(self.model))
        except (GeneratorUnavailable, OSError):
            return 0
        per_component: dict[str, int] = {}
        for p in files:
            per_component[p.parent.name] = per_component.get(p.parent.name, 0) + p.stat().st_size
        weights = sum(per_component.values())
        on_device = {"none": weights, "model": max(per_component.values(), default=0),
                     "sequential": weights // 10}[self.offload]
        return int(on_device * 1.25) + 256 * 2**20

    def load(self, device: "torch.device", dtype: "torch.dtype | None" = None) -> None:
        import torch

        from generators.diffusion_pipeline import load_pipeline, resolve_model, weight_files

        device = torch.device(device)
        if self.offload != "none" and device.type == "cpu":
            raise InvalidInput("CPU offload moves the model between GPU and CPU memory, so it needs a "
                               "GPU; choose offload 'none' on this machine")
        folder = resolve_model(self.model)
        if dtype is None:  # bf16/fp16 are many times slower than fp32 on CPUs (shared/OFFLINE.md)
            dtype = torch.float16 if device.type in ("cuda", "mps") else torch.float32
        files = weight_files(folder)
        self._pipe = load_pipeline(folder, device, dtype, self.offload)
        self.weights_sha256 = tree_sha256(files) if files else None

    def unload(self) -> None:
        self._pipe = None

    # -- generation ------------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        import torch

        if not isinstance(params, DiffusionParams):
            raise InvalidInput(f"the image generator takes DiffusionParams, got {type(params).__name__}")
        params.validate()
        if self._pipe is None:
            raise GeneratorUnavailable("the image model is not loaded")
        try:
            with self._lock, torch.inference_mode():
                return self._generate(params, rng, progress)
        except torch.OutOfMemoryError as exc:
            raise OutOfMemory(f"{params.width or 'native'}x{params.height or 'native'} x {params.batch} needed more GPU memory "
                              "than is free: try a smaller size or batch, or offload 'model'") from exc
        except RuntimeError as exc:
            if "can't allocate memory" not in str(exc):
                raise
            raise OutOfMemory(f"{params.width or 'native'}x{params.height or 'native'} x {params.batch} needed more memory than "
                              "is free: try a smaller size or batch") from exc

    def _generate(self, params: DiffusionParams, rng: Rng, progress: Progress) -> Result:
        import torch
        from PIL import Image

        from generators.diffusion_pipeline import (call_kwargs, count_prompt_tokens, make_scheduler,
                                                   sampler_label)
        from generators.image_io import a1111_parameters, load_image, load_mask, make_grid

        mode = params.resolved_mode()
        size = (params.width, params.height) if params.width else self._pipe.native_size()
        # Every input is checked before any model work.
        init = mask = None
        parents: list[str] = []
        if mode != "text":
            init = load_image(params.init_image, what="the starting picture")
            parents.append(file_sha256(params.init_image))
            if mode == "inpaint":
                mask = load_mask(params.mask, size=init.size)
                parents.append(file_sha256(params.mask))
            if init.size != size:
                init = init.resize(size, Image.LANCZOS)
                if mask is not None:
                    mask = mask.resize(size, Image.NEAREST)
        pipe = self._pipe.for_mode(mode)
        for label, text in (("prompt", params.prompt), ("negative prompt", params.negative_prompt)):
            counted = count_prompt_tokens(pipe, text)
            if counted and counted[0] > counted[1]:
                raise InvalidInput(f"the {label} is {counted[0]} tokens long but this model reads at most "
                                   f"{counted[1]}; the end would be ignored, so shorten it")
        pipe.scheduler = make_scheduler(self._pipe.scheduler_config, self._pipe.scheduler_class,
                                        params.scheduler, pipeline_class=type(pipe).__name__)

        seeds = [rng.seed + i for i in range(params.batch)]
        # One CPU generator per image: the starting noise is the same on any device.
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        total = params.steps if mode == "text" else denoising_steps(params.steps, params.strength)
        kwargs: dict[str, Any] = dict(
            prompt=params.prompt, negative_prompt=params.negative_prompt or None,
            num_inference_steps=params.steps, guidance_scale=params.guidance,
            num_images_per_prompt=params.batch, generator=generators, output_type="pil")
        if mode == "text":
            kwargs.update(width=size[0], height=size[1])
        else:
            kwargs.update(image=init, strength=params.strength)
            if mode == "inpaint":
                kwargs.update(mask_image=mask, width=size[0], height=size[1])
        progress(0.02, "starting")
        out = pipe(**call_kwargs(pipe, kwargs, progress, total))
        images: list[Any] = list(out.images)
        progress(0.97, "saving")

        sampler = sampler_label(params.scheduler, self._pipe.scheduler_class)
        model_label = self.model.strip() or DEFAULT_MODEL
        mode_label = {"text": "text-to-image", "image": "image-to-image", "inpaint": "inpaint"}[mode]

        def infotext(seed: int, extra: dict[str, Any] | None = None) -> str:
            more: dict[str, Any] = {"Model hash": (self.weights_sha256 or "")[:10] or None,
                                    "Mode": mode_label}
            if mode != "text":
                more["Denoising strength"] = params.strength
            more.update(extra or {})
            return a1111_parameters(params.prompt, params.negative_prompt, params.steps, sampler,
                                    params.guidance, seed, size, model_label, more)

        outputs = [Output(".png", img, role="image", label=f"seed {s}", extra={"parameters": infotext(s)})
                   for img, s in zip(images, seeds)]
        if len(images) > 1:
            outputs.append(Output(".png", make_grid(images), role="grid", label="grid",
                                  extra={"parameters": infotext(seeds[0], {"Batch size": len(images)})}))
        nsfw = getattr(out, "nsfw_content_detected", getattr(out, "nsfw_detected", None))
        data: dict[str, Any] = {"mode": mode_label, "seeds": seeds, "sampler": sampler,
                                "size": list(size), "steps_run": total, "model": model_label}
        if nsfw is not None:
            data["nsfw_content_detected"] = [bool(x) for x in nsfw]
        return Result(outputs=outputs, data=data, parents=parents)

    @classmethod
    def debug(cls) -> "Diffusion":
        """A tiny random Stable Diffusion pipeline saved to a temporary folder (built once)."""
        return cls(model=_tiny_model_folder())
