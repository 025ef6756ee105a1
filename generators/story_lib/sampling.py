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

    @property
    def tokens(self) -> int:
        return len(self.token_ids)


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


class Decoder:
    """One model reading and writing one text on one KV cache: forced text (`feed`), sampled text
    (`sample`), the log-probability of candidate continuations (`score`) and taking tokens back
    (`rewind`), so a caller can lay out a structure (a screenplay's cues) and let the model write
    inside it without re-reading the prompt for every piece.

    `ids` is the whole text so far; the cache holds its first `read` tokens. A sampled token is
    read lazily, when the next one is needed, so a generation that ends costs no extra pass.
    An engine supplies two things: `_forward` (read tokens into the cache, return their logits)
    and `_crop` (forget all but the first tokens); this class is the transformers engine, and
    story_lib/engines.py has the ONNX Runtime GenAI one. Sampling, stop strings and streaming are
    shared, so every engine samples the same distribution from the job's own seeded generator.
    """

    def __init__(self, model: Any, tokenizer: Any, prompt_ids: Sequence[int], *, max_len: int,
                 cache: str = "dynamic", check: Callable[[], None] = lambda: None,
                 eos: set[int] | None = None) -> None:
        import torch

        self.model, self.tokenizer, self.check = model, tokenizer, check
        self.device = self._device()
        self.eos = eos if eos is not None else eos_ids(model, tokenizer)
        self.prompt_tokens = len(prompt_ids)
        self.ids = torch.tensor([list(prompt_ids)], dtype=torch.long, device=self.device)
        self.read = 0
        self.logits: Any = None  # the model's scores for the token after ids, once all are read
        self.start = time.perf_counter()
        self._open(cache, max_len)
        with prefill_threads(self.device):
            self._sync()

    # -- the engine's part (transformers here) ------------------------------------------------
    def _device(self) -> Any:
        return next(self.model.parameters()).device

    def _open(self, cache: str, max_len: int) -> None:
        self.kv = new_cache(self.model, cache, max_len)

    def _forward(self, token_ids: Sequence[int], every: bool = False) -> Any:
        """Read tokens into the cache; logits (float, [n, vocab]) for every one, or the last only."""
        import torch

        new = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=new, cache=self.kv, use_cache=True, logits_to_keep=0 if every else 1)
        return out.logits[0].float()

    def _crop(self, keep: int) -> None:
        """Forget all but the first `keep` tokens of the cache (transformers 5 crops from the end)."""
        extra = self.read_in_cache() - keep
        if extra > 0:
            self.kv.crop(-extra)

    def read_in_cache(self) -> int:
        return int(self.kv.get_seq_length())

    # -- shared ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        """Read the tokens of `ids` the cache has not seen yet."""
        if self.read >= self.ids.shape[1]:
            return
        logits = self._forward(self.ids[0, self.read:].tolist())
        self.read = self.ids.shape[1]
        self.logits = logits[-1:].float()

    def _append(self, token_ids: Sequence[int]) -> None:
        import torch

        new = torch.tensor([list(token_ids)], dtype=torch.long, device=self.device)
        self.ids = torch.cat([self.ids, new], dim=1)

    def feed(self, token_ids: Sequence[int]) -> None:
        """Append tokens the model did not choose (they are read, not sampled)."""
        if token_ids:
            self._append(token_ids)
            self._sync()

    def rewind(self, n_tokens: int) -> None:
        """Take back the last n tokens of the text."""
        if n_tokens <= 0:
            return
        self.ids = self.ids[:, :-n_tokens]
        keep = self.ids.shape[1] - 1  # the last kept token is read again for fresh logits
        if self.read > keep:
            self._crop(keep)
            self.read = keep
        self._sync()

    def score(self, candidates: Sequence[Sequence[int]]) -> list[float]:
        """Total log-probability of each candidate continuation; the text itself is unchanged."""
        import torch

        self._sync()
        first = torch.log_softmax(self.logits[0], dim=-1)
        scores = []
        for cand in candidates:
            total = float(first[cand[0]])
            if len(cand) > 1:
                logp = torch.log_softmax(self._forward(list(cand[:-1]), every=True), dim=-1)
                total += float(logp[torch.arange(len(cand) - 1), torch.tensor(cand[1:])].sum())
                self._crop(self.read)
            scores.append(total)
        return scores

    def sample(self, settings: Settings, *, generator: Any, on_text: Callable[[str], None] = lambda _t: None,
               ban_first: Sequence[int] = ()) -> Sampled:
        """Sample up to `settings.max_new_tokens` tokens, streaming text, stopping at EOS or a stop
        string (the tokens up to the stop stay in the text; `text` is cut before it); `ban_first`
        are token ids the first token may not be (e.g. list markers)."""
        import torch

        start = time.perf_counter()
        procs = processors(settings)
        stops = tuple(s for s in settings.stop if s)
        hold = max((len(s) for s in stops), default=1) - 1
        new: list[int] = []
        text, emitted, finish, first = "", 0, "length", None
        with torch.inference_mode():
            for step in range(settings.max_new_tokens):
                self._sync()
                logits = self.logits
                if step == 0 and ban_first:
                    logits = logits.clone()
                    logits[:, list(ban_first)] = float("-inf")
                scores = procs(self.ids, logits)
                if settings.temperature > 0:
                    token = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
                else:
                    token = torch.argmax(scores, dim=-1, keepdim=True)
                tok = int(token)
                if first is None:
                    first = time.perf_counter() - (self.start or start)
                    self.start = 0.0  # time to first token counts the prompt pass once
                if tok in self.eos:
                    finish = "eos"
                    break
                new.append(tok)
                self._append([tok])
                text = self.tokenizer.decode(new, skip_special_tokens=True)
                cut = _find_stop(text, stops, max(0, emitted - hold - 1))
                if cut is not None:
                    text, finish = text[:cut], "stop"
                    break
                ready = len(text) - hold
                if ready > emitted and not text.endswith("\ufffd"):
                    on_text(text[emitted:ready])
                    emitted = ready
                self.check()
        if len(text) > emitted:
            on_text(text[emitted:])
        return Sampled(text=text, token_ids=new, finish=finish, prompt_tokens=self.prompt_tokens,
                       seconds=time.perf_counter() - start, first_token_seconds=first)


def sample(model: Any, tokenizer: Any, prompt_ids: Sequence[int], settings: Settings, *,
           generator: Any, on_text: Callable[[str], None] = lambda _t: None,
           check: Callable[[], None] = lambda: None, cache: str = "dynamic") -> Sampled:
    """Sample up to `settings.max_new_tokens` tokens after `prompt_ids`; see the module docstring."""
    start = time.perf_counter()
    decoder = Decoder(model, tokenizer, prompt_ids, max_len=len(prompt_ids) + settings.max_new_tokens + 1,
                      cache=cache, check=check)
    got = decoder.sample(settings, generator=generator, on_text=on_text)
    got.seconds = time.perf_counter() - start
    return got


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
