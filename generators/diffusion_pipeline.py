"""The diffusers side of `generators.image.Diffusion`: locate, load and run a pipeline offline.

Latent diffusion (Rombach et al. 2022) through Hugging Face diffusers: one loaded pipeline serves
text-to-image, image-to-image (SDEdit, Meng et al. 2022: noise the input to `strength`, then
denoise) and inpainting, sharing weights via `AutoPipelineFor*.from_pipe`. Sampler choice swaps
the scheduler with `from_config`, keeping the model's own noise schedule.

Imports torch and diffusers: only ever imported from inside `Diffusion` methods.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from generators.base import GeneratorUnavailable, InvalidInput
from generators.image import DEFAULT_MODEL, EMBEDDED, HOW_TO_ADD

# Sampler name -> (diffusers scheduler class, extra config, A1111 sampler name).
SCHEDULERS: dict[str, tuple[str, dict[str, Any], str]] = {
    "euler": ("EulerDiscreteScheduler", {}, "Euler"),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}, "Euler a"),
    "dpm++": ("DPMSolverMultistepScheduler", {}, "DPM++ 2M"),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}, "DPM++ 2M Karras"),
    "dpm++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}, "DPM++ 2M SDE"),
    "ddim": ("DDIMScheduler", {}, "DDIM"),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}, "PLMS"),  # PLMS, as SD configs set it
    "lms": ("LMSDiscreteScheduler", {}, "LMS"),
    "heun": ("HeunDiscreteScheduler", {}, "Heun"),
    "unipc": ("UniPCMultistepScheduler", {}, "UniPC"),
}
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".ckpt", ".pth", ".gguf")


def resolve_model(model: str) -> Path:
    """A local diffusers folder for `model` (a folder path or a cached hub id), or a clear error."""
    text = model.strip() or DEFAULT_MODEL
    if text in EMBEDDED:
        folder = EMBEDDED[text]
        if not (folder / "model_index.json").is_file():
            raise GeneratorUnavailable(f"the embedded image model '{text}' is missing from {folder}; "
                                       "train it with `studio train image`, or " + HOW_TO_ADD[0].lower()
                                       + HOW_TO_ADD[1:])
        return folder
    path = Path(text).expanduser()
    # Hub ids are "name" or "owner/name"; anything else that is not on disk is a wrong path.
    looks_like_path = text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text
    if path.is_file():
        raise GeneratorUnavailable(
            f"'{text}' is a single file; the studio loads diffusers folders (with model_index.json). "
            "Convert a single-file checkpoint once with diffusers' "
            "`StableDiffusionPipeline.from_single_file(...).save_pretrained(folder)`.")
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise GeneratorUnavailable(f"the folder '{text}' is not a diffusers pipeline: it has no "
                                       "model_index.json. " + HOW_TO_ADD)
        return path
    if looks_like_path:
        raise GeneratorUnavailable(f"the folder '{text}' does not exist. " + HOW_TO_ADD)
    from generators import hub

    if not hub.is_hub_id(text, bare_names=True):
        raise GeneratorUnavailable(f"'{text}' is neither an existing folder nor a Hugging Face id "
                                   "(owner/name). " + HOW_TO_ADD)
    # Pipelines are gigabytes: the creator fetches one ahead of time (HOW_TO_ADD), never a job.
    return hub.snapshot(text, what="diffusers pipeline", download=False, advice=HOW_TO_ADD)


def weight_files(folder: Path) -> list[Path]:
    """The weight files a diffusers folder would load (safetensors preferred per component)."""
    chosen: list[Path] = []
    for sub in sorted([folder] + [p for p in folder.iterdir() if p.is_dir()]):
        files = [p for p in sub.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        safe = [p for p in files if p.suffix == ".safetensors"]
        chosen.extend(safe or files)
    return chosen


def weights_variant(folder: Path) -> str | None:
    """"fp16" when some component has only fp16-variant weight files (e.g. a hub download made
    with `--include '*.fp16.*'`), else None (the plain files, as diffusers loads by default)."""
    for sub in (p for p in folder.iterdir() if p.is_dir()):
        names = [p.name for p in sub.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)]
        if names and all(".fp16." in n for n in names):
            return "fp16"
    return None


def make_scheduler(base_config: Any, base_class: str, name: str, pipeline_class: str = "") -> Any:
    """A fresh scheduler for `name` ("default" = the model's own) built from the model's config."""
    import diffusers

    if name == "default":
        return getattr(diffusers, base_class).from_config(base_config)
    cls_name, extra, _ = SCHEDULERS[name]
    if "FlowMatch" in base_class:
        raise InvalidInput(f"this model is a flow-matching model ({base_class}); it only works with "
                           "the 'default' sampler")
    scheduler = getattr(diffusers, cls_name).from_config(base_config, **extra)
    if pipeline_class.startswith("IF") and "variance_type" not in scheduler.config:
        # DeepFloyd IF pipelines read `scheduler.config.variance_type` to know whether the UNet's
        # second half is a learned variance; samplers without that notion use a fixed one.
        scheduler.register_to_config(variance_type=base_config.get("variance_type"))
    return scheduler


def sampler_label(name: str, base_class: str) -> str:
    return base_class.removesuffix("Scheduler") if name == "default" else SCHEDULERS[name][2]


@dataclass
class LoadedPipeline:
    """A loaded diffusers pipeline plus the per-mode views that share its weights."""

    base: Any
    folder: Path
    device: torch.device
    dtype: torch.dtype
    scheduler_config: Any
    scheduler_class: str
    views: dict[str, Any] = field(default_factory=dict)

    def native_size(self) -> tuple[int, int]:
        """(width, height) the model was trained at: what diffusers draws when given no size."""
        base = self.base
        denoiser = getattr(base, "unet", None) or getattr(base, "transformer", None)
        sample = getattr(base, "default_sample_size", None) or \
            getattr(getattr(denoiser, "config", None), "sample_size", None) or 64
        side = (sample[0] if isinstance(sample, (tuple, list)) else int(sample)) * \
            int(getattr(base, "vae_scale_factor", 1) if getattr(base, "vae", None) is not None else 1)
        return side, side

    def for_mode(self, mode: str) -> Any:
        """The pipeline for "text", "image" or "inpaint", made from the base with `from_pipe`."""
        unet = getattr(self.base, "unet", None)
        if mode != "inpaint" and getattr(getattr(unet, "config", None), "in_channels", 4) == 9:
            raise InvalidInput("this is a dedicated inpainting model: give it a starting picture and a "
                               "mask (mode 'inpaint'), or load a regular model for other modes")
        if mode not in self.views:
            from diffusers import (AutoPipelineForImage2Image, AutoPipelineForInpainting,
                                   AutoPipelineForText2Image)

            auto = {"text": AutoPipelineForText2Image, "image": AutoPipelineForImage2Image,
                    "inpaint": AutoPipelineForInpainting}[mode]
            try:
                self.views[mode] = auto.from_pipe(self.base)
            except (ValueError, KeyError, TypeError) as exc:
                label = {"text": "text-to-image", "image": "image-to-image", "inpaint": "inpainting"}[mode]
                raise InvalidInput(f"this model ({type(self.base).__name__}) cannot do {label}: {exc}") from None
            self.views[mode].set_progress_bar_config(disable=True)
        return self.views[mode]


def load_pipeline(folder: Path, device: torch.device, dtype: torch.dtype, offload: str) -> LoadedPipeline:
    """Load from a local folder only (no network), place it on `device`, or raise GeneratorUnavailable."""
    from diffusers import DiffusionPipeline

    try:
        pipe = DiffusionPipeline.from_pretrained(str(folder), dtype=dtype, local_files_only=True,
                                                 variant=weights_variant(folder))
    except (OSError, ValueError, EnvironmentError, ImportError, KeyError) as exc:
        raise GeneratorUnavailable(f"could not load the diffusers pipeline in '{folder}': {exc}") from exc
    if offload == "none":
        pipe.to(device)
        if device.type == "cpu":
            channels_last(pipe)
    elif offload == "model":
        pipe.enable_model_cpu_offload(device=device)
    else:  # "sequential": lowest memory, slowest
        pipe.enable_sequential_cpu_offload(device=device)
    pipe.set_progress_bar_config(disable=True)
    if getattr(pipe, "vae", None) is not None and hasattr(pipe.vae, "enable_slicing"):
        pipe.vae.enable_slicing()  # decode a batch one image at a time: same pixels, less memory
    scheduler = pipe.scheduler
    return LoadedPipeline(base=pipe, folder=folder, device=device, dtype=dtype,
                          scheduler_config=scheduler.config, scheduler_class=type(scheduler).__name__)


def channels_last(pipe: Any) -> None:
    """Keep the denoiser's weights in channels_last (NHWC), the layout oneDNN's CPU convolutions
    work in, so they are not reordered at every call: the same pixels up to float rounding, and
    the embedded model's images take less time (side by side in benchmarks/bench_image.py)."""
    unet = getattr(pipe, "unet", None)
    if isinstance(unet, torch.nn.Module):
        unet.to(memory_format=torch.channels_last)


def count_prompt_tokens(pipe: Any, text: str) -> tuple[int, int] | None:
    """(tokens incl. start/end, the model's limit) for CLIP-style tokenizers, else None."""
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or not text:
        return None
    limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    if not 0 < limit < 100_000:
        return None
    return len(tokenizer(text, truncation=False).input_ids), limit


def call_kwargs(pipe: Any, kwargs: dict[str, Any], progress: Callable[[float, str], None],
                total: int) -> dict[str, Any]:
    """`kwargs` for this pipeline's `__call__`: progress through `callback_on_step_end` (most
    pipelines) or the older `callback`/`callback_steps` (DeepFloyd IF, the embedded model); a size
    only where the pipeline takes one (IF image-to-image and inpainting keep the picture's size)."""
    import importlib.util
    import inspect

    accepted = inspect.signature(pipe.__call__).parameters
    out = {k: v for k, v in kwargs.items() if k in accepted or k not in ("width", "height")}
    if "callback_on_step_end" in accepted:
        out["callback_on_step_end"] = step_callback(progress, total)
    elif "callback" in accepted:
        on_end = step_callback(progress, total)
        out.update(callback=lambda step, t, latents: on_end(pipe, step, t, {}), callback_steps=1)
    if "clean_caption" in accepted and not (importlib.util.find_spec("bs4") and importlib.util.find_spec("ftfy")):
        out["clean_caption"] = False  # what IF falls back to without them, minus two warnings per call
    return out


def step_callback(progress: Callable[[float, str], None], total: int,
                  start: float = 0.05, end: float = 0.95) -> Callable[..., dict[str, Any]]:
    """A diffusers `callback_on_step_end` that reports progress (and so can cancel the job)."""
    total = max(1, total)

    def on_step_end(pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        n = int(getattr(pipe, "num_timesteps", 0) or total)  # second-order samplers take 2 per step
        progress(start + (end - start) * min(1.0, (step + 1) / n), f"step {step + 1}/{n}")
        return kwargs

    return on_step_end
