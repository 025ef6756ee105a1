"""Inference engines for the story model: transformers (any Hugging Face causal LM, any device) and
ONNX Runtime GenAI with int8 weights (the CPU default, for the model families its builder converts).

Both give the same `Decoder` contract (sampling.Decoder: feed, sample, score, rewind), so guided
Fountain, stop strings, candidate scoring and rewinding work on either. Tokens are always sampled
here, in Python, from the engine's logits with transformers' own logits processors and the job's
seeded torch.Generator, so a seed means the same thing on every engine.

Chosen by measurement on this 2-core machine (SmolLM2-135M, one thread, CPU seconds, the machine
under load ~10; `python -m benchmarks.bench_story --only-variants` measures the ONNX rows side by
side in one run, the others are older runs of the same benchmark). Perplexity is read token by
token; "prompt KL" is how far (nats) the next-token distribution after a prompt read in one
batched pass is from fp32's, worst of four prompts (111-257 tokens):

| engine (weights) | decode tok/CPU-s | 256-token prompt | perplexity vs fp32 | prompt KL |
|---|---|---|---|---|
| transformers + torch dynamic int8 (retired) | ~9-14 | ~0.5 s | +0.4% | |
| CTranslate2 4.8.5 int8 | 52 | 0.28 s | not measured | |
| ORT GenAI 0.18 builder int8, blocks of 32 (previous default) | 41.2 | 0.99 s | +0.31% | 0.010 |
| ... with the LM head pruned to the last prompt position | 48.2 | 0.83 s | +0.31% | 0.010 |
| ... int8, blocks of 128, pruned (default) | 49.1 | 0.67 s | +1.84% | 0.025 |
| ... int4 asymmetric, blocks of 32, LM head int8, pruned | 57.6 | 0.97 s | +15.6% (fails) | 0.89 |
| ... int4 symmetric, accuracy 4 (earlier run) | 55 | 1.1 s | +34% (fails) | |
| builder fp32, pruned + ORT dynamic int8 per channel (onnx_quant.py) | 57.6 | 0.24 s | +1.40% | 1.34 (fails) |
| OpenVINO 2026.4 on the builder's int8 graph, made stateful (one ad hoc run) | 26-29 | 0.15 s for 111 | not measured | |
| GGUF's own Q4_1 exactly: 4-bit blocks of 32 + block-sum correction (gguf_nbits.py) | 42-50 | 1.06 s | +0.34% | 0.006 |
| ... with float zero points instead (not prepacked by ONNX Runtime 1.32) | 3.0 | 1.2 s | -0.06% | 0.0015 |

The last two rows come from a later --only-variants run at load 6-11, in which the default made
42.9 tok/CPU-s and 0.64 s (42-50: that run and an ad hoc one, where the default made 47); on two
threads the default's 256-token prompt took 1.02 CPU-s, 2.8 s wall on the loaded machine.

The default is the builder's int8 (MatMulNBits at accuracy level 4: int8 dot products, the
activations quantised per token and block) in blocks of 128 with the LM head pruned: ~20% faster
decoding and ~30% less prompt time than the previous default, within 2% perplexity. ONNX
Runtime's dynamic int8 reads a prompt 3x faster still, on MLAS's int8 GEMM, but one activation
scale serves a whole prompt pass, and the first token's huge activations leave the other tokens a
few levels: the distribution after a prompt drifts up to 1.3 nats from fp32's (token by token,
where each step has its own scale, it looks fine, which is why perplexity alone missed it).
The Python side of a decode step (logits copy, top-k sampling, detokenising) is ~5% of it
(cProfile); the rest is ONNX Runtime: the int8 matmuls ~60%, the LM head (49152 x 576) ~15%,
GroupQueryAttention ~20% (per-head fp32 GEMMs).

Against llama.cpp on the same GGUF (benchmarks/results/story.json, vs_llama_cpp), like for like:
decode of 48 tokens after the same 111-token prompt, llama.cpp's faster of its repacked and plain
Q4_1 paths, interleaved in one run, wall time: 0.825x at one thread (a second run: 0.898; single
repeats range 0.5-1.04 on this machine at load 5-14), 1.49x at two; against llama.cpp's
empty-context decode (no prompt to attend over; not like for like) 0.82x and 1.73x. The studio reads
a 256-token prompt 3.4x faster than llama.cpp here: its batched pass cannot use repacked weights on
this machine (ggml's AMX tile kernels fault with SIGILL). llama.cpp reads 4.5-bit weights where
these read 8. The GGUF's exact Q4_1 weights in MatMulNBits (gguf_nbits.py: 4-bit blocks of 32 plus
a block-sum correction for Q4_1's float minimum) are closer to fp32 (perplexity +0.34%, prompt KL
0.006 vs the default's 0.025) and decode about as fast (within the runs' noise), but read a prompt
1.6x slower (1.06 vs 0.64 CPU-s): the correction adds 18 small ops per layer, and ONNX Runtime's
4-bit kernels are slower than its 8-bit ones for a prompt's many rows here, so it is not the default;
float zero points (zp = -m/d) are not prepacked by ONNX Runtime 1.32 and dequantise every
matrix on every call. int4 from the builder is faster but not the same weights: it re-quantises the
GGUF's Q4_1 values (scale and float minimum per 32) to int4 with an integer zero point, and the
perplexity shows it.

CTranslate2 is the faster engine, but its Python API cannot serve the studio's contract:
sampling draws from a thread-local mt19937 that is seeded once per worker thread
(`set_random_seed` only reaches threads not yet started), so a job's seed cannot be honoured, and
there is no handle on the KV cache, so feeding laid-out text, rewinding a rejected draft and
scoring cue candidates would each re-read the scene (score_batch re-reads the whole prompt).
ONNX Runtime GenAI has exactly the contract: `append_tokens` (a batched prompt pass),
`get_logits`, `rewind_to` (exact: tests compare it with a fresh pass), and sampling stays ours.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Sequence

from generators.story_lib import sampling

ENGINES = ("transformers", "onnxruntime")


class TorchEngine:
    """A transformers model on its device."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.eos = sampling.eos_ids(model, tokenizer)
        self.n_ctx = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self.precision = str(next(model.parameters()).dtype).replace("torch.", "")

    def decoder(self, prompt_ids: Sequence[int], *, max_len: int, check: Callable[[], None] = lambda: None,
                cache: str = "dynamic") -> sampling.Decoder:
        return sampling.Decoder(self.model, self.tokenizer, prompt_ids, max_len=max_len, cache=cache, check=check,
                                eos=self.eos)

    def perplexity(self, token_ids: Sequence[int], window: int = 512) -> float:
        return sampling.perplexity(self.model, token_ids, window)


class OrtDecoder(sampling.Decoder):
    """sampling.Decoder on an onnxruntime_genai.Generator (its KV cache is the generator's state)."""

    def _device(self) -> Any:
        import torch

        return torch.device("cpu")

    def _open(self, cache: str, max_len: int) -> None:
        import onnxruntime_genai as og

        params = og.GeneratorParams(self.model)
        # The KV buffer is allocated for max_length up front (past_present_share_buffer), so ask
        # for what this text needs, not the model's whole context.
        params.set_search_options(max_length=max_len, do_sample=False)
        self.gen = og.Generator(self.model, params)
        self.max_len = max_len

    def _forward(self, token_ids: Sequence[int], every: bool = False) -> Any:
        import numpy as np
        import torch

        if self.read + len(token_ids) > self.max_len:
            from generators.base import InvalidInput

            raise InvalidInput(f"the text grew past the {self.max_len} tokens this request allowed for")
        if not every:  # one batched pass (the prompt); the generator keeps only the last logits
            self.gen.append_tokens(np.asarray(token_ids, dtype=np.int32))
            return torch.from_numpy(np.array(self.gen.get_logits(), dtype=np.float32).reshape(1, -1))
        rows = []
        for t in token_ids:  # scoring: the logits after each token
            self.gen.append_tokens(np.asarray([t], dtype=np.int32))
            rows.append(np.array(self.gen.get_logits(), dtype=np.float32).reshape(-1))
        return torch.from_numpy(np.stack(rows))

    def _crop(self, keep: int) -> None:
        if keep < self.gen.token_count():
            self.gen.rewind_to(keep)


class OrtEngine:
    """An ONNX Runtime GenAI model folder (genai_config.json, model.onnx) with a transformers
    tokenizer; one intra-op thread by default (batch-1 decoding, shared/OFFLINE.md)."""

    name = "onnxruntime"

    def __init__(self, folder: Path, tokenizer: Any, threads: int = 1) -> None:
        import onnxruntime_genai as og

        self.folder, self.tokenizer = Path(folder), tokenizer
        config = og.Config(str(self.folder))
        config.clear_providers()  # CPU
        opts = {"intra_op_num_threads": int(threads), "inter_op_num_threads": 1}
        config.overlay(json.dumps({"model": {"decoder": {"session_options": opts}}}))
        self.model = og.Model(config)
        genai = json.loads((self.folder / "genai_config.json").read_text())["model"]
        eos = genai.get("eos_token_id")
        self.eos = set(eos if isinstance(eos, list) else [eos]) | sampling.eos_ids(None, tokenizer)
        self.n_ctx = int(genai.get("context_length") or 0)
        self.precision = json.loads((self.folder / "studio_meta.json").read_text()).get("precision", "int8") \
            if (self.folder / "studio_meta.json").is_file() else "int8"
        self.config = _Config(self.n_ctx)

    def decoder(self, prompt_ids: Sequence[int], *, max_len: int, check: Callable[[], None] = lambda: None,
                cache: str = "dynamic") -> OrtDecoder:
        return OrtDecoder(self.model, self.tokenizer, prompt_ids, max_len=max_len, check=check, eos=self.eos)

    def perplexity(self, token_ids: Sequence[int], window: int = 512) -> float:
        """As sampling.perplexity (non-overlapping windows), token by token: the generator keeps
        only the last position's logits."""
        import math

        import torch

        total, count = 0.0, 0
        for i in range(0, len(token_ids) - 1, window):
            chunk = list(token_ids[i:i + window + 1])
            if len(chunk) < 2:
                break
            dec = OrtDecoder(self.model, self.tokenizer, chunk[:1], max_len=len(chunk) + 1, eos=self.eos)
            logits = torch.cat([dec.logits, dec._forward(chunk[1:-1], every=True)]) if len(chunk) > 2 else dec.logits
            total += float(torch.nn.functional.cross_entropy(logits, torch.tensor(chunk[1:]), reduction="sum"))
            count += len(chunk) - 1
        return math.exp(total / max(1, count))


class _Config:
    """What the generator reads of a model config (its context length)."""

    def __init__(self, n_ctx: int) -> None:
        self.max_position_embeddings = n_ctx
