"""The three ways of making music with a token model: compose, continue a primer, infill bars.

- compose: folk-rnn sampling from <s> under the meter's grammar mask (Sturm et al., 2016).
- continue: the creator's own idea is fed as a prefix and the model carries on, in the spirit of
  Flow Machines (Pachet et al.): the output starts with the primer, token for token.
- infill: Coconet-like (Huang et al., 2017) rewriting of chosen bars while every other bar is kept
  token for token; see `decode` for the resampling that lets the left-to-right model hear the
  bars after the gap.
"""
from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import torch

from generators.base import GeneratorUnavailable
from generators.music_lib import decode
from generators.music_lib import vocab as V
from generators.music_lib.model import ModelConfig, build

INFILL_CANDIDATES = 8  # K draws per masked span, resampled by how well they lead into the rest


def load_model(path: Path) -> tuple[torch.nn.Module, ModelConfig]:
    """A model saved by training.music.train: fp16 safetensors with its config in the metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        cfg = ModelConfig(**json.loads(meta["config"]))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        model = build(cfg)
        model.load_state_dict(state)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise GeneratorUnavailable(f"cannot load music model {path}: {exc}") from exc
    if cfg.vocab != V.VOCAB_SIZE or cfg.n_meters != len(V.METERS) or cfg.n_modes != len(V.MODES) \
            or cfg.n_styles != len(V.STYLES):
        raise GeneratorUnavailable(f"{path} was trained with another vocabulary than this studio's")
    return model.eval(), cfg


def conditioning(model: torch.nn.Module, meter: str, mode: str, style_w: list[float]) -> torch.Tensor:
    m = torch.tensor([list(V.METERS).index(meter)])
    k = torch.tensor([V.MODES.index(mode)])
    w = torch.tensor([style_w], dtype=torch.float32)
    with torch.inference_mode():
        return model.cond(m, k, w)


def compose(model: Any, cond: torch.Tensor, meter: str, bars: int, n: int, *, temperature: float,
            top_k: int, gen: torch.Generator, on_step: Callable[[int], None] | None = None,
            end_on_tonic: bool = False) -> list[list[str]]:
    plan = [V.METERS[meter]] * bars
    return decode.sample_bars(model, cond, [V.BOS], [plan] * n, Fraction(0), temperature=temperature,
                              top_k=top_k, gen=gen, on_step=on_step, end_on_tonic=end_on_tonic)


def continue_primer(model: Any, cond: torch.Tensor, primer: list[str], meter: str, bars: int, n: int,
                    *, temperature: float, top_k: int, gen: torch.Generator,
                    on_step: Callable[[int], None] | None = None, end_on_tonic: bool = False
                    ) -> list[list[str]]:
    """Bodies that start with `primer` and go on for `bars` more full bars (after finishing the
    primer's last bar if it stopped part-way)."""
    L = V.METERS[meter]
    last = V.bars_of(primer)[-1] if primer else []
    done = V.bar_length(last)
    if done >= L or not primer:
        prefix, pos, plan = [V.BOS, *primer] + ([V.BAR] if primer else []), Fraction(0), [L] * bars
    else:
        prefix, pos, plan = [V.BOS, *primer], done, [L] * (bars + 1)
    new = decode.sample_bars(model, cond, prefix, [plan] * n, pos, temperature=temperature,
                             top_k=top_k, gen=gen, on_step=on_step, end_on_tonic=end_on_tonic)
    return [prefix[1:] + t for t in new]


def infill(model: Any, cond: torch.Tensor, body: list[str], masked: list[int], *, temperature: float,
           top_k: int, gen: torch.Generator, on_step: Callable[[int], None] | None = None) -> list[str]:
    """Rewrite the bars at `masked` (0-based), each keeping its original length."""
    bars = V.bars_of(body)
    spans: list[list[int]] = []
    for i in masked:
        if spans and spans[-1][-1] == i - 1:
            spans[-1].append(i)
        else:
            spans.append([i])
    for span in spans:
        prefix = [V.BOS]
        for b in bars[:span[0]]:
            prefix += b + [V.BAR]
        suffix: list[str] = []
        for b in bars[span[-1] + 1:]:
            suffix += [V.BAR] + b
        suffix.append(V.EOS)
        plan = [V.bar_length(bars[i]) for i in span]
        cands = decode.sample_bars(model, cond, prefix, [plan] * INFILL_CANDIDATES, Fraction(0),
                                   temperature=temperature, top_k=top_k, gen=gen, on_step=on_step)
        scores = decode.suffix_logprob(model, cond, prefix, cands, suffix)
        pick = int(torch.multinomial(torch.softmax(scores, dim=0), 1, generator=gen).item())
        new_bars = V.bars_of(cands[pick])
        for i, nb in zip(span, new_bars):
            bars[i] = nb
    out: list[str] = []
    for i, b in enumerate(bars):
        out += ([V.BAR] if i else []) + b
    return out
