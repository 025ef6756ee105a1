"""Train a story adapter from a creator's preferences: DPO (Rafailov et al., 2023) on a LoRA (Hu et
al., 2021) over the story model, with TRL's `DPOTrainer` and PEFT, on CPU, as a studio job.

Input: preference pairs, one JSON object a line. Each has `chosen` and `rejected` passages and
either `request` (the story request that produced both: its prompt is rebuilt exactly as the
story generator builds it, chat template included) or `prompt` (a plain instruction, as the
feedback export writes it). The reference policy is the base model itself (TRL runs it with the
adapter disabled), so no second copy of the model is held.

Cost (benchmarks/bench_dpo.py, profile_dpo.py): the LoRA covers the top `lora_layers` layers only, so
the backward pass stops there, and TRL's LM head scores only the passage tokens on CPU too; 200 pairs
took 471 CPU-seconds on one thread (the old all-layer recipe: ~3.8 CPU-s a pair, 2.35 now).

Output: one .safetensors adapter file (generators/story_lib/adapter.py) with the LoRA config, the
recipe (data hash, hyper-parameters, library versions, losses) and its hashes; the studio stores
it as an output of the creator who trained it, and the story generator's `adapter` option merges it.
Progress is reported per optimiser step; cancel and the job's time limit stop training between
steps, and nothing is written then.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress, Result,
                             Rng, param)

MIN_PAIRS = 4  # fewer preference pairs teach nothing but noise
MAX_PAIRS = 5_000
MAX_PAIRS_BYTES = 20 << 20
MAX_PASSAGE_CHARS = 20_000
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")  # attention projections of Llama-style models


@dataclass(frozen=True)
class StoryDPOParams(Params):
    model: str = param("", "base model: Hugging Face model id or local folder; empty = the embedded "
                       "SmolLM2-135M-Instruct (the adapter only fits the model it was trained on)", load=True,
                       max_length=300)
    pairs_file: str = param("", "preference pairs, JSON lines of {request or prompt, chosen, rejected}",
                            widget="file", max_length=1_000)
    name: str = param("my taste", "a name for the adapter (shown in the story workspace)", max_length=60)
    epochs: int = param(1, "passes over the pairs", min=1, max=10)
    learning_rate: float = param(1e-3, "AdamW step size for the LoRA weights", min=1e-6, max=1e-2)
    beta: float = param(0.1, "DPO beta: how far the adapter may move from the base model (lower = further)",
                        min=0.01, max=1.0)
    lora_r: int = param(8, "LoRA rank (adapter size)", min=1, max=64)
    lora_layers: int = param(10, "adapt only the model's top N layers (0 = all): training then goes back through "
                             "those layers only, about 1.3x faster on the 30-layer story model (bench_dpo.py)",
                             min=0, max=256)
    batch_size: int = param(4, "pairs per optimiser step", min=1, max=32)
    max_length: int = param(768, "longest pair in tokens (prompt + passage); longer pairs are left out and counted",
                            min=32, max=2048)

    def validate(self) -> None:
        super().validate()
        if not self.pairs_file.strip():
            raise InvalidInput("give the preference pairs to learn from (pairs_file)")
        if not self.name.strip():
            raise InvalidInput("give the adapter a name")


def read_pairs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The pairs of a JSON-lines file, checked; InvalidInput names the first bad line."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"the pairs file {p.name!r} is not on disk")
    if p.stat().st_size > MAX_PAIRS_BYTES:
        raise InvalidInput(f"the pairs file is larger than {MAX_PAIRS_BYTES >> 20} MB")
    pairs = []
    for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise InvalidInput(f"line {n} of the pairs file is not JSON") from None
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) and row[k].strip()
                                                for k in ("chosen", "rejected")):
            raise InvalidInput(f"line {n} of the pairs file needs non-empty 'chosen' and 'rejected' texts")
        if not isinstance(row.get("request"), dict) and not (isinstance(row.get("prompt"), str) and row["prompt"]):
            raise InvalidInput(f"line {n} of the pairs file needs a 'request' (story parameters) or a 'prompt'")
        if max(len(row["chosen"]), len(row["rejected"])) > MAX_PASSAGE_CHARS:
            raise InvalidInput(f"line {n}: passages longer than {MAX_PASSAGE_CHARS} characters are refused")
        if row["chosen"] == row["rejected"]:
            continue  # the same text both ways carries no preference
        pairs.append(row)
        if len(pairs) > MAX_PAIRS:
            raise InvalidInput(f"more than {MAX_PAIRS} pairs; train on the most recent ones")
    if len(pairs) < MIN_PAIRS:
        raise InvalidInput(f"{len(pairs)} usable preference pair(s); an adapter needs at least {MIN_PAIRS}: "
                           "rate or compare more story passages written from the same request")
    return pairs


def story_prompt(tokenizer: Any, pair: dict[str, Any]) -> str:
    """The exact prompt text the story generator gives the model for this pair's request."""
    from generators.story_lib import cowrite, prompting
    from generators.story_lib.bible import parse_bible

    if not isinstance(pair.get("request"), dict):
        system = prompting.render("system.j2", bible=parse_bible({}), fmt="prose")
        return prompting.build_prompt(tokenizer, system, pair["prompt"])
    from generators.story import StoryParams

    params = StoryParams.from_dict({k: v for k, v in pair["request"].items() if k in StoryParams.__dataclass_fields__})
    bible = parse_bible(params.bible)
    plan = cowrite.plan(params.mode, params.text, bible=bible, fmt=params.format, prompt=params.prompt.strip(),
                        beat=params.beat, cursor=params.cursor, selection_start=params.selection_start,
                        selection_end=params.selection_end, tone=params.tone, action=params.action,
                        context_chars=params.context_chars)
    system = prompting.render("system.j2", bible=bible, fmt=params.format)
    task = prompting.render(plan.template, **plan.variables)
    return prompting.build_prompt(tokenizer, system, task, plan.primer + plan.prefix)


def _joined(prompt: str, passage: str) -> str:
    """The passage as the model continues the prompt: a prompt ending on "slept." goes on with
    " Her eyes...", never ".Her eyes..." (stored passages are stripped). Otherwise the trainer would
    score text the model never writes, and a leading quote would merge with the prompt's last
    token (TRL then drops it from the prompt). The space is the same for chosen and rejected."""
    if prompt and not prompt[-1].isspace() and passage and not passage[0].isspace() \
            and passage[0] not in ",.;:!?'’)]":
        return " " + passage
    return passage


def _fitting(rows: list[dict[str, str]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, str]], int]:
    """The rows whose prompt + longer passage fit in `max_length` tokens, and how many did not (said
    in the result: a pair is left out whole, never cut silently)."""
    keep = []
    for row in rows:
        n_prompt = len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"])
        n_passage = max(len(tokenizer(row[k], add_special_tokens=False)["input_ids"]) for k in ("chosen", "rejected"))
        if n_prompt + n_passage + 1 <= max_length:  # + the end-of-text token TRL appends
            keep.append(row)
    return keep, len(rows) - len(keep)


_PATCH_LOCK = threading.Lock()
_PATCH_USERS = [0, None]  # training jobs inside the switch, TRL's own function while they run


@contextmanager
def _score_completions_only() -> Iterator[None]:
    """TRL's fused LM head scores only the completion tokens on Triton devices, but every position
    (the prompt too) elsewhere, so shapes stay fixed for compiled backends such as Neuron. On the
    CPU, in eager mode, nothing recompiles: scoring only the completions (~1/3 of the positions here)
    makes a DPO step ~1.4x cheaper (bench_dpo.py) with the same log-probabilities (tests). The switch
    is TRL's private `_use_triton` as its LM head sees it (counted, so jobs running at once restore
    it once); if TRL renames it, training is only slower."""
    import trl.trainer.utils as trl_utils

    with _PATCH_LOCK:
        if _PATCH_USERS[0] == 0:
            original = getattr(trl_utils, "_use_triton", None)
            _PATCH_USERS[1] = original
            if original is not None:
                trl_utils._use_triton = lambda device: device.type == "cpu" or original(device)
        _PATCH_USERS[0] += 1
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _PATCH_USERS[0] -= 1
            if _PATCH_USERS[0] == 0 and _PATCH_USERS[1] is not None:
                trl_utils._use_triton = _PATCH_USERS[1]
                _PATCH_USERS[1] = None


class StoryDPO(Generator):
    name = "story_dpo"
    Params = StoryDPOParams
    title = "Story adapter from my ratings"
    description = ("Train a small LoRA adapter for the story model from your preferred and rejected passages "
                   "(DPO with TRL + PEFT, on CPU); choose it in the story workspace.")
    devices = ("cuda", "cpu")
    # One thread: on the shared 2-core machine (load 8-16) two torch threads spent 2.9x the CPU time
    # for the same DPO work (10.8 vs 3.8 CPU-s a pair: they spin against other work) and were
    # slower in wall time too (33.7 vs 9.9 s a pair). settings.torch_threads overrides it.
    cpu_threads = 1

    def __init__(self, model: str = "") -> None:
        self.model_ref = model
        self._base: Any = None  # (folder or None, tokenizer, weights sha256)
        self._preloaded: tuple[Any, Any] | None = None  # debug(): in-memory tiny model
        self.device: Any = None

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        import importlib.util

        for module, pkg in (("trl", "trl"), ("peft", "peft"), ("datasets", "datasets")):
            if importlib.util.find_spec(module) is None:
                return f"training story adapters needs the '{pkg}' package; install it with pip"
        from generators.story import StoryWriter

        return StoryWriter.missing(cache_dir)

    def estimate_bytes(self) -> int:
        from generators.story_lib import loading

        if self._preloaded is not None:
            return 64 << 20
        # fp32 weights + their activations for backward, at the batch sizes allowed: ~3x the weights
        return 3 * loading.estimate_bytes(loading.resolve(self.model_ref))

    def load(self, device: Any, dtype: Any = None) -> None:
        """Only the tokenizer and the base folder: the trainable copy is built fresh for each job."""
        import torch

        from generators.story_lib import loading

        self.device = torch.device(device)
        if self._preloaded is not None:
            self._base = (None, self._preloaded[1], None)
            return
        source = loading.resolve(self.model_ref)
        folder, sha = loading.local_folder(source, root=self.cache_dir)
        self._base = (folder, loading.load_tokenizer(source, folder), sha or loading._weights_sha(folder))
        self.weights_sha256 = self._base[2]

    def unload(self) -> None:
        self._base = None

    def _fresh_model(self) -> Any:
        import copy

        import torch
        from transformers import AutoModelForCausalLM

        if self._preloaded is not None:
            return copy.deepcopy(self._preloaded[0])
        return AutoModelForCausalLM.from_pretrained(str(self._base[0]), dtype=torch.float32)

    def generate(self, params: StoryDPOParams, *, rng: Rng, progress: Progress) -> Result:  # type: ignore[override]
        import torch

        from generators.story_lib import adapter as lora

        params.validate()
        if self._base is None:
            raise GeneratorUnavailable("the story adapter trainer is not loaded; call load() first")
        folder, tokenizer, base_sha = self._base
        pairs = read_pairs(params.pairs_file)
        progress(0.0, f"preparing {len(pairs)} preference pairs")
        rows = []
        for p in pairs:
            prompt = story_prompt(tokenizer, p)
            rows.append({"prompt": prompt, "chosen": _joined(prompt, p["chosen"]),
                         "rejected": _joined(prompt, p["rejected"])})
        rows, too_long = _fitting(rows, tokenizer, params.max_length)
        if len(rows) < MIN_PAIRS:
            raise InvalidInput(f"{too_long} of {len(pairs)} pairs are longer than max_length ({params.max_length} "
                               f"tokens of prompt + passage), leaving {len(rows)}; raise max_length or lower the "
                               "requests' context_chars")
        data_sha = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
        seed = int(rng.torch.initial_seed()) % 2**31
        started = time.perf_counter()
        model, losses, steps = self._train(rows, params, seed, tokenizer, progress)
        progress.check()
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(model)
        lora_config = model.peft_config["default"].to_dict()
        lora_config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in lora_config.items()}
        import peft
        import transformers
        import trl

        seconds = time.perf_counter() - started
        recipe = {"method": "dpo-lora", "pairs": len(rows), "pairs_left_out_too_long": too_long,
                  "pairs_sha256": data_sha, "epochs": params.epochs,
                  "steps": steps, "learning_rate": params.learning_rate, "beta": params.beta, "lora_r": params.lora_r,
                  "lora_alpha": 2 * params.lora_r, "target_modules": list(LORA_TARGETS),
                  "layers_to_transform": lora_config.get("layers_to_transform"),
                  "reference_log_probs": "precomputed" if params.epochs > 1 else "per step",
                  "batch_size": params.batch_size, "max_length": params.max_length, "seed": seed,
                  "base_model": self.model_ref or "embedded:SmolLM2-135M-Instruct", "name": params.name.strip(),
                  "trained": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
                  "losses": [round(x, 4) for x in losses],
                  "versions": {"trl": trl.__version__, "peft": peft.__version__,
                               "transformers": transformers.__version__, "torch": torch.__version__}}
        blob = lora.pack(state, lora_config, recipe, base_sha)
        progress(1.0, f"adapter trained on {len(rows)} pairs in {seconds:.0f} s")
        data = {"adapter": recipe, "adapter_bytes": len(blob), "final_loss": losses[-1] if losses else None,
                "pairs_left_out_too_long": too_long}
        return Result(outputs=[Output(".safetensors", blob, role="adapter", label=params.name.strip())], data=data)

    def _train(self, rows: list[dict[str, str]], params: StoryDPOParams, seed: int, tokenizer: Any,
               progress: Progress) -> tuple[Any, list[float], int]:
        import tempfile

        from datasets import Dataset
        from peft import LoraConfig
        from transformers import TrainerCallback
        from transformers.utils import logging as hf_logging
        from trl import DPOConfig, DPOTrainer

        import datasets
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        hf_logging.set_verbosity_error()
        datasets.disable_progress_bars()  # the job's own progress events say how far it is
        steps_per_epoch = math.ceil(len(rows) / params.batch_size)
        total = steps_per_epoch * params.epochs
        losses: list[float] = []

        class Report(TrainerCallback):  # progress per step; cancel / time limit between steps
            def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
                progress.check()
                progress(min(0.99, state.global_step / max(1, total)),
                         f"training step {state.global_step}/{total}"
                         + (f" · DPO loss {losses[-1]:.3f}" if losses else ""))

            def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
                if logs and "loss" in logs:
                    losses.append(float(logs["loss"]))

        model = self._fresh_model()
        n_layers = int(model.config.num_hidden_layers)
        layers = (list(range(n_layers - params.lora_layers, n_layers))
                  if 0 < params.lora_layers < n_layers else None)  # None: every layer
        lora = LoraConfig(r=params.lora_r, lora_alpha=2 * params.lora_r, lora_dropout=0.0,
                          target_modules=list(LORA_TARGETS), layers_to_transform=layers, task_type="CAUSAL_LM")
        with tempfile.TemporaryDirectory(prefix="studio-dpo-") as work, _score_completions_only():
            config = DPOConfig(output_dir=work, per_device_train_batch_size=params.batch_size,
                               num_train_epochs=params.epochs, learning_rate=params.learning_rate, beta=params.beta,
                               max_length=params.max_length, logging_steps=1,
                               save_strategy="no", report_to=[], disable_tqdm=True, gradient_checkpointing=False,
                               use_cpu=self.device is None or self.device.type == "cpu", seed=seed, bf16=False,
                               data_seed=seed, dataloader_num_workers=0, lr_scheduler_type="linear",
                               warmup_steps=0,
                               # The reference (the base: adapter off) is fixed: over several epochs its
                               # log-probs are computed once, in one pass, not again every epoch.
                               precompute_ref_log_probs=params.epochs > 1,
                               precompute_ref_batch_size=max(params.batch_size, 16))
            trainer = DPOTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                                 processing_class=tokenizer, peft_config=lora, callbacks=[Report()])
            for quiet in (PrinterCallback, ProgressCallback):  # no prints on the studio's console
                trainer.remove_callback(quiet)
            progress.check()
            trainer.train()
            model = trainer.model
        return model, losses, total

    @classmethod
    def debug(cls) -> "StoryDPO":
        """The tiny random Llama of StoryWriter.debug(), for fast tests."""
        from generators.story_lib.tiny import tiny_llama

        trainer = cls(model="")
        trainer._preloaded = tiny_llama()
        trainer.model_ref = "debug:tiny-llama"
        return trainer
