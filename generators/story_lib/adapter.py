"""LoRA adapters for the story model: one self-describing file, verified before use, merged at load.

An adapter is what "train from my ratings" (generators/story_dpo.py: DPO, Rafailov et al. 2023,
with TRL over a PEFT LoRA, Hu et al. 2021) produces: the LoRA tensors in one .safetensors file
whose metadata carries the LoRA config, the training recipe, the sha256 of the base weights it
was trained on and a sha256 over its own tensors. Before use the file is read whole and checked
(header, tensors, hash, base); anything wrong makes it *unavailable with the reason*, and the
base model is untouched.

Why merge, not run PEFT at inference: the CPU default engine is ONNX Runtime GenAI int8
(story_lib/engines.py, 36-40 tok/s against ~10 for transformers), which knows nothing of LoRA.
Merging W' = W + (alpha/r)·B·A gives a plain model of the same shape, so the same engine, the
same sampling and the same seeds apply; the merged model is saved once per (adapter, base) under
the story cache and converted like any other model folder (a one-off conversion, minutes on this
CPU), then loads in about a second. On GPUs or with quantize='none' it runs on transformers.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
from pathlib import Path
from typing import Any, Callable, Mapping

from generators.base import GeneratorUnavailable

FORMAT = "studio-story-adapter/1"
MAX_ADAPTER_BYTES = 256 << 20  # a LoRA of a small model is a few MB; refuse anything absurd before reading it


def tensors_sha256(state: Mapping[str, Any]) -> str:
    """sha256 over names, dtypes, shapes and bytes of the tensors (order-independent)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def pack(state: Mapping[str, Any], lora_config: Mapping[str, Any], recipe: Mapping[str, Any],
         base_weights_sha256: str | None) -> bytes:
    """The adapter file's bytes: LoRA tensors + metadata (config, recipe, hashes)."""
    from safetensors.torch import save

    state = {k: v.detach().contiguous().cpu() for k, v in state.items()}
    meta = {"format": FORMAT, "lora_config": json.dumps(dict(lora_config), sort_keys=True, default=str),
            "recipe": json.dumps(dict(recipe), sort_keys=True, default=str),
            "base_weights_sha256": base_weights_sha256 or "", "tensors_sha256": tensors_sha256(state)}
    return save(state, metadata=meta)


def _header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise ValueError("the file is too short to be a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100 << 20:
        raise ValueError("its header is truncated")
    return json.loads(data[8:8 + n])


def read(path: str | os.PathLike[str], base_weights_sha256: str | None = None) -> dict[str, Any]:
    """{"state", "lora_config", "recipe", "sha256", "name"} of a verified adapter file, or
    GeneratorUnavailable saying what is wrong (the base model is not touched)."""
    path = Path(path)
    name = path.name

    def bad(why: str) -> GeneratorUnavailable:
        return GeneratorUnavailable(f"the story adapter {name!r} is unavailable: {why}. The base model still "
                                    "works: choose no adapter, or train a new one")

    try:
        size = path.stat().st_size
    except OSError:
        raise bad("the file is not on disk (any more)") from None
    if size > MAX_ADAPTER_BYTES:
        raise bad(f"the file is {size >> 20} MB, far larger than a LoRA adapter")
    data = path.read_bytes()
    try:
        meta = _header(data).get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(f"the file is damaged ({exc})") from None
    if meta.get("format") != FORMAT:
        raise bad("it is not a studio story adapter (no adapter metadata)")
    try:
        from safetensors.torch import load

        state = load(data)
        lora_config = json.loads(meta["lora_config"])
        recipe = json.loads(meta.get("recipe") or "{}")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own errors for damaged files
        raise bad(f"the file is damaged ({str(exc).splitlines()[0][:200]})") from None
    if tensors_sha256(state) != meta.get("tensors_sha256"):
        raise bad("its tensors do not match the hash recorded when it was trained (the file was changed "
                  "or damaged)")
    trained_on = meta.get("base_weights_sha256") or ""
    if base_weights_sha256 and trained_on and trained_on != base_weights_sha256:
        raise bad(f"it was trained on other base weights ({trained_on[:12]}), not on this model "
                  f"({base_weights_sha256[:12]})")
    return {"state": state, "lora_config": lora_config, "recipe": recipe, "name": name,
            "sha256": hashlib.sha256(data).hexdigest(), "tensors_sha256": meta["tensors_sha256"],
            "base_weights_sha256": trained_on}


def merge(model: Any, adapter: Mapping[str, Any]) -> Any:
    """`model` (a transformers causal LM, changed in place) with the adapter merged into its weights."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    config = {k: v for k, v in adapter["lora_config"].items() if k in LoraConfig.__dataclass_fields__}
    try:
        peft_model = get_peft_model(model, LoraConfig(**config))
        result = set_peft_model_state_dict(peft_model, adapter["state"])
    except Exception as exc:  # noqa: BLE001 - a config for another architecture
        raise GeneratorUnavailable(f"the story adapter {adapter['name']!r} does not fit this model: "
                                   f"{str(exc).splitlines()[0][:200]}") from None
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise GeneratorUnavailable(f"the story adapter {adapter['name']!r} does not fit this model "
                                   f"({len(unexpected)} tensors have no place in it, e.g. {unexpected[0]})")
    return peft_model.merge_and_unload()


def merged_folder(base_folder: Path, adapter: Mapping[str, Any], cache: Path, load_base: Callable[[], Any],
                  tokenizer: Any, log: Callable[[str], None] = lambda _m: None) -> Path:
    """A Hugging Face folder of base + adapter merged (saved once per adapter and base, atomically)."""
    base_tag = (adapter.get("base_weights_sha256") or "base")[:12]
    folder = cache / "adapted" / f"{adapter['tensors_sha256'][:16]}-{base_tag}"
    if (folder / "studio_meta.json").is_file():
        return folder
    from generators.story_lib import loading

    log(f"merging the adapter {adapter['name']} into {base_folder.name} (one-off)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model = merge(load_base(), adapter)
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        (tmp / "studio_meta.json").write_text(json.dumps({"base": str(base_folder), "adapter": adapter["name"],
                                                          "adapter_sha256": adapter["sha256"]}, indent=1))
        loading.replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def describe(adapter: Mapping[str, Any]) -> dict[str, Any]:
    """What a story output's provenance says about the adapter it was written with."""
    recipe = adapter.get("recipe") or {}
    return {"name": adapter["name"], "sha256": adapter["sha256"], "method": recipe.get("method", "dpo-lora"),
            "pairs": recipe.get("pairs"), "trained": recipe.get("trained")}
