"""Sampling under a grammar mask, and infilling by resampling (Coconet-style, Huang et al. 2017).

The mask enforces the token grammar (a note or rest is always followed by a duration) and the
meter: a duration is allowed only if the bar can still be filled exactly with the durations in
the vocabulary, a bar line only when the bar is full, and the end only after the planned number
of bars. So every generated bar has exactly the meter's length by construction (a constrained
decoder; the model is not trusted to count).

Infill: a left-to-right model cannot see the future, so for each run of masked bars we draw K
candidates from p(bars | prefix) and pick one with probability proportional to
p(suffix | prefix, candidate) -- importance resampling towards p(bars | prefix, suffix).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable

import torch

from generators.music_lib import vocab as V

UNIT = Fraction(1, 48)
DUR_UNITS = [int(d / UNIT) for d in V.DURATIONS]
_MAX_UNITS = int(Fraction(12) / UNIT)


def _reachable() -> list[bool]:
    ok = [False] * (_MAX_UNITS + 1)
    ok[0] = True
    for n in range(1, _MAX_UNITS + 1):
        ok[n] = any(u <= n and ok[n - u] for u in DUR_UNITS)
    return ok


REACHABLE = _reachable()


@dataclass
class RowState:
    """Where one sequence stands: position in its bar, which planned bar, what comes next."""

    plan: list[Fraction]  # lengths of the bars still to write (the first may be partly written)
    pos: Fraction = Fraction(0)
    expect_dur: bool = False
    done: bool = False
    tokens: list[str] = field(default_factory=list)
    end_on_tonic: bool = False  # the last note of the last bar must be the tonic (C after transposing)

    def allowed(self) -> list[int]:
        target = self.plan[0]
        if self.expect_dur:
            left = int((target - self.pos) / UNIT)
            ok = [V.DUR_IDS[i] for i, u in enumerate(DUR_UNITS) if u <= left and REACHABLE[left - u]]
            last = self.tokens[-1] if self.tokens else ""
            if self.end_on_tonic and len(self.plan) == 1 and not (V.is_pitch(last) and V.pitch_of(last) % 12 == 0):
                # this note may not close the piece: keep durations that leave room for another
                not_final = [t for t in ok if DUR_UNITS[V.DUR_IDS.index(t)] < left]
                ok = not_final or ok
            return ok
        if self.pos == target:
            return [V.TOKEN_ID[V.BAR]]
        if self.end_on_tonic and len(self.plan) == 1:
            left = int((target - self.pos) / UNIT)
            if not any(u < left and REACHABLE[left - u] for u in DUR_UNITS):  # this note must be the last
                return [i for i in V.PITCH_IDS if V.pitch_of(V.TOKENS[i]) % 12 == 0]
        return [V.TOKEN_ID[V.REST], *V.PITCH_IDS]

    def push(self, tok: str) -> None:
        self.tokens.append(tok)
        if tok == V.BAR:
            self.pos = Fraction(0)
            self.plan.pop(0)  # the placeholder of the bar just closed
        elif tok in V.DUR_OF_TOKEN:
            self.pos += V.DUR_OF_TOKEN[tok]
            self.expect_dur = False
            if self.pos == self.plan[0]:
                self.plan.pop(0)
                if not self.plan:
                    self.done = True
                else:
                    self.plan.insert(0, self.pos)  # the full bar waits for its bar line
        else:
            self.expect_dur = True


def _pick(logits: torch.Tensor, allowed: list[int], temperature: float, top_k: int,
          gen: torch.Generator) -> int:
    if len(allowed) == 1:
        return allowed[0]
    idx = torch.tensor(allowed)
    z = logits[idx].float() / temperature
    if 0 < top_k < len(allowed):
        kth = torch.topk(z, top_k).values[-1]
        z = torch.where(z >= kth, z, torch.full_like(z, float("-inf")))
    p = torch.softmax(z, dim=0)
    return int(idx[torch.multinomial(p, 1, generator=gen)].item())


def sample_bars(model: Any, cond: torch.Tensor, prefix: list[str], plans: list[list[Fraction]],
                start_pos: Fraction, *, temperature: float, top_k: int, gen: torch.Generator,
                on_step: Callable[[int], None] | None = None, end_on_tonic: bool = False
                ) -> list[list[str]]:
    """Continue `prefix` (tokens from <s>) in B rows, each row filling the bars of its plan.

    `start_pos` is how far the prefix's last, unfinished bar already is (0 after a bar line).
    Returns the new tokens of each row (bar lines between planned bars included, none after).
    One token per row per step, so all rows stay aligned (finished rows are fed padding).
    """
    # oneDNN makes one-step LSTM calls 5-7x slower on CPU (shared/OFFLINE.md)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        return _sample_bars(model, cond, prefix, plans, start_pos, temperature=temperature,
                            top_k=top_k, gen=gen, on_step=on_step, end_on_tonic=end_on_tonic)


def _sample_bars(model: Any, cond: torch.Tensor, prefix: list[str], plans: list[list[Fraction]],
                 start_pos: Fraction, *, temperature: float, top_k: int, gen: torch.Generator,
                 on_step: Callable[[int], None] | None, end_on_tonic: bool) -> list[list[str]]:
    B = len(plans)
    cond = cond.expand(B, -1) if cond.shape[0] == 1 else cond
    rows = [RowState(list(p), pos=start_pos, end_on_tonic=end_on_tonic) for p in plans]
    if prefix and (V.is_pitch(prefix[-1]) or prefix[-1] == V.REST):
        for r in rows:
            r.expect_dur = True
    prefix_ids = torch.tensor([V.encode(prefix)] * B, dtype=torch.long)
    logits, state = model.prime(prefix_ids, cond)  # the whole prefix in one pass
    steps = 0
    while not all(r.done for r in rows):
        nxt = []
        for b, r in enumerate(rows):
            if r.done:
                nxt.append(V.TOKEN_ID[V.PAD])
                continue
            tok_id = _pick(logits[b], r.allowed(), temperature, top_k, gen)
            r.push(V.TOKENS[tok_id])
            nxt.append(tok_id)
        steps += 1
        if on_step is not None:
            on_step(steps)
        if all(r.done for r in rows):
            break
        logits, state = model.step(torch.tensor(nxt, dtype=torch.long), state)
    return [r.tokens for r in rows]


@torch.inference_mode()
def suffix_logprob(model: Any, cond: torch.Tensor, prefix: list[str], middles: list[list[str]],
                   suffix: list[str]) -> torch.Tensor:
    """log p(suffix | prefix + middle) for each candidate middle: (K,)."""
    seqs = [V.encode(prefix + m + suffix) for m in middles]
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), V.TOKEN_ID[V.PAD], dtype=torch.long)
    mask = torch.zeros((len(seqs), T - 1))
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
        start = len(prefix) + len(middles[i]) - 1  # predicting suffix[0] from the token before
        mask[i, start:len(s) - 1] = 1
    max_len = getattr(model.cfg, "max_len", T) if model.cfg.kind == "transformer" else T
    if T - 1 > max_len:  # a transformer sees at most max_len tokens: drop the oldest context
        ids, mask = ids[:, T - 1 - max_len:], mask[:, T - 1 - max_len:]
    with torch.backends.mkldnn.flags(enabled=False):
        logits = model(ids[:, :-1], cond.expand(len(seqs), -1))
    lp = torch.log_softmax(logits.float(), dim=-1).gather(2, ids[:, 1:, None])[..., 0]
    return (lp * mask).sum(dim=1)
