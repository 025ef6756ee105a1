"""Sampling under a grammar mask, and infilling by resampling (Coconet-style, Huang et al. 2017).

The mask enforces the token grammar, not the music: a note or rest is always followed by a
duration; a duration is allowed only if the bar can still be filled exactly with the allowed
durations (none shorter than the corpus's shortest for the meter); a bar line only when the bar
is full; opening marks only at a bar's start (`|2` only right after the `:|` that closes a first
ending; a `|:` is closed by `:|` before another `|:`, a `||` or the end, as abc2midi
requires). Pickups, as the corpus writes them (78% of O'Neill's tunes open with one and close
each part on its complement): the tune's first bar may end early (at most half a bar) as a
pickup; a part may then close on the complement (bar - pickup), and the next part opens with a
pickup of the same length, so played through, every bar is whole. The models were trained on
these bars; forcing only whole bars kept them out of the states where they close a part. Form is the model's: it chooses `|`, `||` or `:|`, repeats and endings. Length control
counts bars (a pickup and its complement count as one) and parts: the tune may end only at the end of a part (`||` or `:|`, no ending left
open) once `min_bars` bars are written, and does end at the first such point; past `max_bars`
the next bar line must close the part.

Infill: a left-to-right model cannot see the future, so for each run of masked bars we gather
candidates -- K draws from p(bars | prefix) plus the piece's other bars of the same length, so a
bar that repeats elsewhere can come back -- and pick one with probability proportional to
p(bars, suffix | prefix): sampling p(bars | prefix, suffix) restricted to the candidates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any, Callable

import torch

from generators.music_lib import vocab as V

UNIT = Fraction(1, 48)
DUR_UNITS = [int(d / UNIT) for d in V.DURATIONS]
_MAX_UNITS = int(Fraction(12) / UNIT)
ID = V.TOKEN_ID
NOTE_IDS = [ID[V.REST], *V.PITCH_IDS]


@lru_cache(maxsize=32)
def _reachable(min_units: int) -> tuple[bool, ...]:
    """reachable[n]: n units can be filled exactly with durations of at least min_units."""
    ok = [False] * (_MAX_UNITS + 1)
    ok[0] = True
    units = [u for u in DUR_UNITS if u >= min_units]
    for n in range(1, _MAX_UNITS + 1):
        ok[n] = any(u <= n and ok[n - u] for u in units)
    return tuple(ok)


@dataclass
class RowState:
    """Where one sequence stands in the grammar.

    Free mode (compose / continue): bars of `bar_len`, the model picks bar lines and marks.
    Fixed mode (infill): `fixed` lists (opening marks, length, bar line) per bar to write, and
    the row stops after the last of them.
    """

    bar_len: Fraction
    min_bars: int = 1
    max_bars: int = 64
    fixed: list[tuple[list[str], Fraction, str]] | None = None
    min_dur: Fraction = Fraction(0)  # no note or rest shorter than this
    pitches: tuple[int, int] | None = None  # lowest and highest note token allowed (register)
    pos: Fraction = Fraction(0)
    expect_dur: bool = False
    done: bool = False
    final: bool = False  # the tune's last bar line is written: </s> next
    bars_done: int = 0
    opens_here: list[str] = field(default_factory=list)  # marks already opening the current bar
    ending_open: bool = False  # a |1 is open and its :| not yet written
    need_ending2: bool = False  # the :| of a first ending was just written: |2 must follow
    repeat_open: bool = False  # a |: is written and its :| not yet: no second |:, no || (ABC)
    pickup: Fraction = Fraction(0)  # the tune's pickup (its first bar, when short)
    need_pickup: bool = False  # a part closed on the pickup's complement: the next bar is a pickup
    counted: int = 0  # bars for the length control: a pickup and its complement count as one
    forced: bool = False  # the length control closed the part (max_bars), not the model
    tokens: list[str] = field(default_factory=list)  # tokens written by this row (not the prefix)
    tracker: V.Positions = field(default_factory=V.Positions)
    # the notes of every bar written so far, prefix included (content -> its length, first-seen
    # order), and of the current bar: the candidates a bar may copy (bar_cache)
    seen: dict[tuple[str, ...], Fraction] = field(default_factory=dict)
    current: list[str] = field(default_factory=list)
    bars_written: int = 0  # bars with notes so far (prefix included) ...
    bars_repeated: int = 0  # ... and how many of them repeat an earlier bar as written
    queue: list[str] = field(default_factory=list)  # tokens of a copied bar still to write

    def __post_init__(self) -> None:
        self.min_units = int(self.min_dur / UNIT)
        self.reach = _reachable(self.min_units)
        self.note_ids = NOTE_IDS if self.pitches is None else [ID[V.REST]] + [
            i for i in V.PITCH_IDS if self.pitches[0] <= V.pitch_of(V.TOKENS[i]) <= self.pitches[1]]

    @property
    def target(self) -> Fraction:
        if self.fixed:
            return self.fixed[0][1]
        if self.need_pickup:
            return self.pickup
        if self.pickup and self.counted + 1 >= self.max_bars:  # the part must close: on the complement
            return self.bar_len - self.pickup
        return self.bar_len

    def replay(self, prefix: list[str]) -> None:
        """Bring the state to the end of an existing prefix (after <s>), checking nothing."""
        for tok in prefix:
            if tok != V.BOS:
                self._advance(tok)
        self.tokens = []

    def allowed(self) -> list[int]:
        if self.final:
            return [ID[V.EOS]]
        target = self.target
        if self.expect_dur:
            left = int((target - self.pos) / UNIT)
            return [V.DUR_IDS[i] for i, u in enumerate(DUR_UNITS)
                    if self.min_units <= u <= left and self.reach[left - u]]
        if self.pos >= target:
            return [ID[t] for t in self._closes()]
        if self.need_ending2:
            return [ID[V.ENDING2]]
        if self.pos == 0 and self.fixed is None:
            return self.note_ids + [ID[t] for t in self._opens()]
        if self.pos == 0 and self.fixed and len(self.opens_here) < len(self.fixed[0][0]):
            return [ID[self.fixed[0][0][len(self.opens_here)]]]
        return self.note_ids + [ID[t] for t in self._early_closes()]

    def copy_lengths(self) -> set[Fraction]:
        """Lengths an earlier bar copied here may have: empty unless a free-mode bar is about
        to start (its opening marks may still come) after at least one whole bar."""
        if self.fixed is not None or self.final or self.expect_dur or self.pos != 0 or self.bars_done == 0 \
                or self.need_ending2 or self.queue:
            return set()
        if self.need_pickup:
            return {self.pickup}
        out = {self.target}
        if self.pickup and self.target == self.bar_len:  # a part may close on the complement
            out.add(self.bar_len - self.pickup)
        return out

    def _early_closes(self) -> list[str]:
        """Bar lines before the bar is whole: the tune's pickup, or a part closing on the
        pickup's complement (free mode only; see the module docstring)."""
        if self.fixed is not None or self.pos == 0 or self.need_pickup:
            return []
        if self.bars_done == 0 and self.pos <= self.bar_len / 2:
            return [V.BAR]
        if self.pickup and self.pos == self.bar_len - self.pickup:
            return self._part_closes()
        return []

    def _part_closes(self) -> list[str]:
        # abc2midi: a |: must be closed by :| before a || or the end
        return [V.REPEAT_END] if self.repeat_open or self.ending_open else [V.PART_END, V.REPEAT_END]

    def _opens(self) -> list[str]:
        if self.need_ending2:
            return [V.ENDING2]
        if self.opens_here:
            return []
        out = []
        # in a tune with a pickup a repeat starts only with a part (at its pickup): the repeat
        # comes back to it right after the part's complement
        starts_part = not self.pickup or self.need_pickup
        if not self.ending_open and not self.repeat_open and starts_part:
            out.append(V.REPEAT_START)
            if self.bars_done and not self.pickup:  # (a tune with a pickup has none: see _closes)
                out.append(V.ENDING1)
        return out

    def _closes(self) -> list[str]:
        if self.fixed:
            return [self.fixed[0][2]]
        if self.need_ending2 or self.need_pickup:  # (the first cannot happen: a bar starts with |2 then)
            return [V.BAR]
        if self.pickup:  # a tune with a pickup closes its parts on the complement only (_early_closes),
            # so that played through, with its repeats, every bar is whole (abc2midi checks it)
            return self._part_closes() if self.pos < self.bar_len else [V.BAR]
        if self.counted + 1 >= self.max_bars:
            return self._part_closes()
        if self.ending_open or self.repeat_open:  # a first ending closes with :| (or runs on a bar)
            return [V.BAR, V.REPEAT_END]
        return [V.BAR, V.PART_END, V.REPEAT_END]

    def push(self, tok: str) -> int:
        """Write one token; returns its bar-position id (the model's next input feature)."""
        self.tokens.append(tok)
        feat = self._advance(tok)
        if self.fixed is not None and tok in V.CLOSES:
            self.fixed.pop(0)
            if not self.fixed:
                self.done = True
        return feat

    def _advance(self, tok: str) -> int:
        if tok == V.EOS:
            self.done = True
        elif tok in V.CLOSES:
            if self.current:
                self.bars_written += 1
                self.bars_repeated += tuple(self.current) in self.seen
                self.seen.setdefault(tuple(self.current), self.pos)
                self.current = []
            if self.fixed is None and tok in (V.PART_END, V.REPEAT_END) and self.counted + 1 >= self.max_bars:
                self.forced = True
            short = self.pos < self.bar_len
            if self.bars_done == 0 and short:
                self.pickup = self.pos
            pickup_bar = self.need_pickup or (self.bars_done == 0 and short)
            self.counted += 0 if pickup_bar else 1
            self.need_pickup = bool(self.pickup) and short and not pickup_bar \
                and tok in (V.PART_END, V.REPEAT_END) and not self.ending_open
            self.bars_done += 1
            self.pos = Fraction(0)
            self.opens_here = []
            if tok == V.REPEAT_END:
                self.repeat_open = False
            if tok == V.REPEAT_END and self.ending_open:
                self.ending_open, self.need_ending2 = False, True
            part_end = tok in (V.PART_END, V.REPEAT_END) and not self.ending_open and not self.need_ending2
            if self.fixed is None and part_end and self.counted >= self.min_bars:
                self.final = True
        elif tok in V.OPENS:
            self.opens_here.append(tok)
            if tok == V.REPEAT_START:
                self.repeat_open = True
            if tok == V.ENDING1:
                self.ending_open = True
            elif tok == V.ENDING2:
                self.need_ending2 = False
        elif tok in V.DUR_OF_TOKEN:
            self.pos += V.DUR_OF_TOKEN[tok]
            self.expect_dur = False
            self.current.append(tok)
        else:
            self.expect_dur = True
            self.current.append(tok)
        return self.tracker.push(tok)


@lru_cache(maxsize=4096)
def _mask_row(allowed: tuple[int, ...]) -> torch.Tensor:
    """0 at the allowed ids, -inf elsewhere: added to the logits. The grammar offers a few
    hundred distinct allowed sets, so building each once (not a fresh mask per row per step)
    takes most of the per-token Python and tensor overhead out of sampling."""
    row = torch.full((V.VOCAB_SIZE,), float("-inf"))
    row[list(allowed)] = 0.0
    return row


def _pick_batch(logits: torch.Tensor, drawn: list[tuple[int, list[int]]], temperature: float, top_k: int,
                gen: torch.Generator) -> list[int]:
    """One draw per (row, allowed ids), all in one masked softmax (temperature, then top-k among
    the allowed ids)."""
    if len(drawn) == 1:
        b, a = drawn[0]
        z = (logits[b:b + 1].float() / temperature) + _mask_row(tuple(a))
    else:
        rows = torch.tensor([b for b, _a in drawn])
        z = (logits[rows].float() / temperature) + torch.stack([_mask_row(tuple(a)) for _b, a in drawn])
    if top_k > 0:
        kth = torch.topk(z, min(top_k, z.shape[1])).values[:, -1:]
        z = torch.where(z >= kth, z, torch.full_like(z, float("-inf")))
    return torch.multinomial(torch.softmax(z, dim=1), 1, generator=gen)[:, 0].tolist()


def _pos_tensor(model: Any, feats: list[list[int]]) -> torch.Tensor | None:
    return torch.tensor(feats, dtype=torch.long) if getattr(model.cfg, "positions", False) else None


def sample(model: Any, cond: torch.Tensor, prefix: list[str], rows: list[RowState], *,
           temperature: float, top_k: int, gen: torch.Generator,
           on_step: Callable[[int], None] | None = None, copy_boost: float = 1.0) -> list[list[str]]:
    """Continue `prefix` (tokens from <s>) in len(rows) rows, each under its own RowState
    (already replayed over the prefix). Returns each row's new tokens, </s> excluded.
    One token per row per step, so all rows stay aligned (finished rows are fed padding).
    copy_boost > 1: where a bar may start, earlier bars are written with their model probability
    times copy_boost (bar_cache); their notes are then fed one per step like drawn tokens."""
    from generators.music_lib import bar_cache

    # oneDNN makes one-step LSTM calls 5-7x slower on CPU (shared/OFFLINE.md)
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        B = len(rows)
        if cond.shape[0] == 1:  # every row shares the prefix: read it once, then copy the state
            logits, state = model.prime(torch.tensor([V.encode(prefix)], dtype=torch.long), cond,
                                        _pos_tensor(model, [V.positions(prefix)]))
            index = torch.zeros(B, dtype=torch.long)
            logits, state = logits[index], model.rows(state, index)
        else:
            logits, state = model.prime(torch.tensor([V.encode(prefix)] * B, dtype=torch.long), cond,
                                        _pos_tensor(model, [V.positions(prefix)] * B))
        steps = 0
        while True:
            nxt, feats = [ID[V.PAD]] * B, [0] * B
            drawn: list[tuple[int, list[int]]] = []  # rows whose token is drawn: one batched draw
            for b, r in enumerate(rows):
                if r.done:
                    continue
                if copy_boost > 1.0 and not r.queue and r.copy_lengths():
                    r.queue = bar_cache.maybe_copy(model, logits[b], state, b, r, copy_boost, temperature, gen)
                allowed = r.allowed()
                if r.queue and ID[r.queue[0]] in allowed:
                    nxt[b] = ID[r.queue.pop(0)]
                elif len(allowed) == 1:
                    r.queue, nxt[b] = [], allowed[0]
                else:
                    r.queue = []
                    drawn.append((b, allowed))
            if drawn:
                for (b, _a), tok_id in zip(drawn, _pick_batch(logits, drawn, temperature, top_k, gen)):
                    nxt[b] = tok_id
            for b, r in enumerate(rows):
                if not r.done:
                    feats[b] = r.push(V.TOKENS[nxt[b]])
            steps += 1
            if on_step is not None:
                on_step(steps)
            if all(r.done for r in rows):
                break
            logits, state = model.step(torch.tensor(nxt, dtype=torch.long), state,
                                       _pos_tensor(model, feats))
    return [[t for t in r.tokens if t != V.EOS] for r in rows]


@torch.inference_mode()
def continuation_logprob(model: Any, cond: torch.Tensor, prefix: list[str],
                         continuations: list[list[str]]) -> torch.Tensor:
    """log p(continuation | prefix) for each candidate continuation: (K,)."""
    seqs = [prefix + c for c in continuations]
    T = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), ID[V.PAD], dtype=torch.long)
    feats = torch.zeros((len(seqs), T), dtype=torch.long)
    mask = torch.zeros((len(seqs), T - 1))
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(V.encode(s))
        feats[i, :len(s)] = torch.tensor(V.positions(s))
        mask[i, len(prefix) - 1:len(s) - 1] = 1  # predicting continuation[0] from the token before
    max_len = getattr(model.cfg, "max_len", T) if model.cfg.kind == "transformer" else T
    if T - 1 > max_len:  # a transformer sees at most max_len tokens: drop the oldest context
        ids, feats, mask = ids[:, T - 1 - max_len:], feats[:, T - 1 - max_len:], mask[:, T - 1 - max_len:]
    pos = feats[:, :-1] if getattr(model.cfg, "positions", False) else None
    with torch.backends.mkldnn.flags(enabled=False):
        logits = model(ids[:, :-1], cond.expand(len(seqs), -1), pos)
    lp = torch.log_softmax(logits.float(), dim=-1).gather(2, ids[:, 1:, None])[..., 0]
    return (lp * mask).sum(dim=1)
