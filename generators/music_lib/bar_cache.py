"""Written repeats: a one-parameter bar cache over the model (a cache language model, Kuhn & De
Mori 1990; Grave et al. 2017's neural cache, at the level of whole bars).

Real tunes write a bar they already wrote (O'Neill: 26% of bars), but a left-to-right model gives
an exact copy little probability, so plain sampling writes almost none. Wherever a bar may start
(free decoding, after the first bar, the bar's opening marks still to come), the cache reweights
the model's own distribution over what comes next:

    p'(x) = p(x) * beta / Z   if x starts with the notes of an earlier bar c (c is in the cache)
    p'(x) = p(x) / Z          otherwise,        Z = 1 + (beta - 1) * S,  S = sum_c p(c)

where p(c) is the model's probability of writing c's notes here (one batched pass over the
candidates from the row's state, the grammar's lengths, range and shortest note respected). The
model still decides which earlier bar fits and how well: beta only scales the mass it already
gives to copies. Sampling p' exactly: with probability (beta - 1) S / Z copy a candidate drawn in
proportion to p(c), else draw from the model as usual (it may copy by itself). After the copied
notes the bar line is the model's choice again.

beta is not tuned by hand: `training.music.bar_cache` fits it by maximum likelihood on the
validation split's real tunes (a 1-D problem) and writes it to assets/music/bar_cache.json, keyed
by the weights' sha256; a model without a fitted beta decodes with beta = 1 (no cache).
"""
from __future__ import annotations

import copy
import functools
import json
from typing import Any

import torch

from generators.music_lib import vocab as V
from generators.resources import assets_dir

MAX_CANDIDATES = 24  # distinct earlier bars scored at a bar start (the most recent ones)
FITTED = assets_dir("music", "bar_cache.json")


def fitted_beta(weights_sha256: str | None) -> float:
    """The beta fitted for these weights (assets/music/bar_cache.json), else 1.0 (no cache)."""
    if not weights_sha256:
        return 1.0
    try:
        table = json.loads(FITTED.read_text())
    except (OSError, ValueError):
        return 1.0
    entry = table.get("models", {}).get(weights_sha256)
    return float(entry["beta"]) if entry else 1.0


@functools.lru_cache(maxsize=1)
def max_share() -> float:
    """The cap on a tune's share of bars that repeat an earlier bar (bar_cache.json: the 95th
    percentile of the training split's tunes), past which no copy is offered."""
    try:
        return float(json.loads(FITTED.read_text())["max_repeated_share"])
    except (OSError, ValueError, KeyError):
        return 1.0


def candidates(row: Any, cap: float = 1.0) -> list[tuple[str, ...]]:
    """Earlier bars (notes and durations) this row may write next, most recent last; none once
    `cap` of its bars repeat an earlier one. Why a cap: beta is fitted on real prefixes, but on
    its own draws the model expects more copies after each copy (it learned that tunes which
    repeat, repeat), so a few tunes ran away (6 distinct bars in 17) and their keys blurred."""
    lengths = row.copy_lengths()
    if not lengths or row.bars_repeated >= cap * max(1, row.bars_written):
        return []
    ok = row.__dict__.setdefault("_copyable", {})  # bar -> within range and shortest note (fixed per row)
    out = []
    for bar, length in row.seen.items():
        if length not in lengths:
            continue
        if bar not in ok:
            ok[bar] = _copyable(bar, row)
        if ok[bar]:
            out.append(bar)
    return out[-MAX_CANDIDATES:]


def _copyable(bar: tuple[str, ...], row: Any) -> bool:
    lo, hi = row.pitches if row.pitches is not None else (V.PITCH_MIN, V.PITCH_MAX)
    if any(V.DUR_OF_TOKEN[t] < row.min_dur for t in bar[1::2]):
        return False
    return not any(V.is_pitch(t) and not lo <= V.pitch_of(t) <= hi for t in bar[0::2])


def candidate_logprobs(model: Any, logits: torch.Tensor, state: dict[str, Any], b: int,
                       tracker: V.Positions, cands: list[tuple[str, ...]], temperature: float) -> torch.Tensor:
    """log p(c) for each candidate bar c, written from row b's state (`logits`: the model's
    output for row b's next token): (K,)."""
    K = len(cands)
    first = torch.log_softmax(logits.float() / temperature, dim=-1)[[V.TOKEN_ID[c[0]] for c in cands]]
    L = max(len(c) for c in cands)
    ids = torch.full((K, L - 1), V.TOKEN_ID[V.PAD], dtype=torch.long)
    target = torch.full((K, L - 1), V.TOKEN_ID[V.PAD], dtype=torch.long)
    feats = torch.zeros((K, L - 1), dtype=torch.long)
    mask = torch.zeros((K, L - 1))
    for k, c in enumerate(cands):
        tr = copy.copy(tracker)
        ids[k, :len(c) - 1] = torch.tensor([V.TOKEN_ID[t] for t in c[:-1]])
        feats[k, :len(c) - 1] = torch.tensor([tr.push(t) for t in c[:-1]])
        target[k, :len(c) - 1] = torch.tensor([V.TOKEN_ID[t] for t in c[1:]])
        mask[k, :len(c) - 1] = 1
    rows = model.rows(state, torch.full((K,), b, dtype=torch.long))
    pos = feats if getattr(model.cfg, "positions", False) else None
    with torch.backends.mkldnn.flags(enabled=True):  # several steps at once: oneDNN is ~3x faster here
        out = torch.log_softmax(model.run(ids, rows, pos).float() / temperature, dim=-1)
    rest = (out.gather(2, target[..., None])[..., 0] * mask).sum(dim=1)
    return first + rest


def copy_probability(logp: torch.Tensor, beta: float) -> float:
    """Chance of copying a candidate (beyond the model's own copies): (beta - 1) S / Z."""
    s = float(torch.exp(torch.logsumexp(logp, dim=0)).clamp(max=1.0))
    return (beta - 1.0) * s / (1.0 + (beta - 1.0) * s)


def maybe_copy(model: Any, logits: torch.Tensor, state: dict[str, Any], b: int, row: Any, beta: float,
               temperature: float, gen: torch.Generator) -> list[str]:
    """The notes of an earlier bar for row b to write now, or [] to let the model draw."""
    if beta <= 1.0:
        return []
    cands = candidates(row, max_share())
    if not cands:
        return []
    logp = candidate_logprobs(model, logits, state, b, row.tracker, cands, temperature)
    if float(torch.rand((), generator=gen)) >= copy_probability(logp, beta):
        return []
    pick = int(torch.multinomial(torch.softmax(logp, dim=0), 1, generator=gen).item())
    return list(cands[pick])


def log_gain(beta: float, in_cache: list[bool], mass: list[float]) -> float:
    """Sum over bar starts of log p'(x)/p(x) for real continuations: what the cache adds to a
    tune's log-likelihood (nats). in_cache: the real next bar is a candidate; mass: S there."""
    import math

    return sum((math.log(beta) if r else 0.0) - math.log(1.0 + (beta - 1.0) * s) for r, s in zip(in_cache, mass))

