"""Autoregressive sampling with a KV cache, seeded by the job's own torch.Generator.

`model.generate` draws from torch's global RNG, which the studio never seeds (two jobs would
share it), so this loop calls the model step by step and samples with
`torch.multinomial(..., generator=rng)`. The logits pipeline itself is transformers' own
(`RepetitionPenaltyLogitsProcessor`, `TemperatureLogitsWarper`, `TopKLogitsWarper`,
`TopPLogitsWarper`), so the distribution sampled is the one `generate()` would sample. Text is
streamed as it decodes (held back while it could still be the start of a stop string or of a
multi-byte character), and a `check()` between tokens makes cancel and timeouts prompt.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Settings:
    temperature: float = 0.8  # 0 = greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    max_new_tokens: int = 200
    stop: tuple[str, ...] = ()


@dataclass
class Sampled:
    text: str  # generated text, cut before any stop string
    token_ids: list[int]
    finish: str  # "eos" | "stop" | "length"
    prompt_tokens: int
    seconds: float
    first_token_seconds: float | None  # prompt in -> first token sampled (time to first token)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for value in (getattr(getattr(model, "generation_config", None), "eos_token_id", None),
                  getattr(tokenizer, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return ids


def processors(settings: Settings) -> Any:
    from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                              TopKLogitsWarper, TopPLogitsWarper)

    procs = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        procs.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.temperature > 0:
        if settings.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k > 0:
            procs.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            procs.append(TopPLogitsWarper(settings.top_p))
    return procs


def new_cache(model: Any, kind: str, max_len: int) -> Any:
    from transformers import DynamicCache, StaticCache

    if kind == "static":
        return StaticCache(config=model.config, max_cache_len=max_len)
    return DynamicCache(config=model.config)


# Reading the prompt is one large batched pass that two threads run ~1.6x faster (256 tokens on
# SmolLM2-135M: 0.93 s -> 0.52-0.60 s here), while token-by-token decoding is faster on one
# (shared/OFFLINE.md). So the prompt pass gets at least this many CPU threads, decoding keeps
# the thread count the session manager set.
PREFILL_THREADS = 2


@contextlib.contextmanager
def prefill_threads(device: Any) -> Any:
    import torch

    before = torch.get_num_threads()
    wanted = min(max(before, PREFILL_THREADS), os.cpu_count() or 1)
    if getattr(device, "type", "cpu") != "cpu" or wanted == before:
        yield
        return
    torch.set_num_threads(wanted)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def sample(model: Any, tokenizer: Any, prompt_ids: Sequence[int], settings: Settings, *,
           generator: Any, on_text: Callable[[str], None] = lambda _t: None,
           check: Callable[[], None] = lambda: None, cache: str = "dynamic") -> Sampled:
    """Sample up to `settings.max_new_tokens` tokens after `prompt_ids`; see the module docstring."""
    import torch

    start = time.perf_counter()
    device = next(model.parameters()).device
    procs = processors(settings)
    stops = tuple(s for s in settings.stop if s)
    hold = max((len(s) for s in stops), default=1) - 1
    eos = eos_ids(model, tokenizer)
    ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=device)
    kv = new_cache(model, cache, ids.shape[1] + settings.max_new_tokens + 1)
    new: list[int] = []
    text, emitted, finish, first = "", 0, "length", None
    with torch.inference_mode():
        with prefill_threads(device):
            out = model(input_ids=ids, cache=kv, use_cache=True, logits_to_keep=1)
        for step in range(settings.max_new_tokens):
            scores = procs(ids, out.logits[:, -1, :].float())
            if settings.temperature > 0:
                probs = torch.softmax(scores, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator)
            else:
                token = torch.argmax(scores, dim=-1, keepdim=True)
            tok = int(token)
            if first is None:
                first = time.perf_counter() - start
            if tok in eos:
                finish = "eos"
                break
            new.append(tok)
            ids = torch.cat([ids, token.to(ids.device)], dim=1)
            text = tokenizer.decode(new, skip_special_tokens=True)
            cut = _find_stop(text, stops, max(0, emitted - hold - 1))
            if cut is not None:
                text, finish = text[:cut], "stop"
                break
            ready = len(text) - hold
            if ready > emitted and not text.endswith("\ufffd"):
                on_text(text[emitted:ready])
                emitted = ready
            check()
            if step + 1 < settings.max_new_tokens:
                out = model(input_ids=token.view(1, 1).to(device), cache=kv, use_cache=True)
    if len(text) > emitted:
        on_text(text[emitted:])
    return Sampled(text=text, token_ids=new, finish=finish, prompt_tokens=len(prompt_ids),
                   seconds=time.perf_counter() - start, first_token_seconds=first)


def _find_stop(text: str, stops: Sequence[str], start: int) -> int | None:
    best: int | None = None
    for s in stops:
        i = text.find(s, start)
        if i >= 0 and (best is None or i < best):
            best = i
    return best


def perplexity(model: Any, token_ids: Sequence[int], window: int = 512) -> float:
    """Perplexity of a token sequence in non-overlapping windows (for the quantisation check)."""
    import math

    import torch

    device = next(model.parameters()).device
    total, count = 0.0, 0
    with torch.inference_mode():
        for i in range(0, len(token_ids) - 1, window):
            chunk = torch.tensor([list(token_ids[i:i + window + 1])], device=device)
            if chunk.shape[1] < 2:
                break
            logits = model(input_ids=chunk[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0], chunk[0, 1:], reduction="sum")
            total += float(loss)
            count += chunk.shape[1] - 1
    return math.exp(total / max(1, count))
