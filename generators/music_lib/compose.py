"""The three ways of making music with a token model: compose, continue a primer, infill bars.

- compose: folk-rnn sampling from <s> under the grammar mask (Sturm et al., 2016); the model
  writes the form (bar lines, repeats, endings) and the length control ends the tune at the
  first part end after the requested number of bars.
- continue: the creator's own idea is fed as a prefix and the model carries on, in the spirit of
  Flow Machines (Pachet et al.): the output starts with the primer, token for token, and its form
  goes on (an A part may close with a repeat, its first ending gets a second).
- infill: Coconet-like (Huang et al., 2017) rewriting of chosen bars while every other bar, and
  every bar line and repeat sign, is kept token for token; see `decode` for the resampling that
  lets the left-to-right model hear the bars after the gap.
- endings: with `end_on_tonic`, a tune whose last bar does not end on a held tonic gets that last
  bar redrawn by the model (rejection sampling of the last bar); durations are never squeezed.
"""
from __future__ import annotations

import copy
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
ENDING_CANDIDATES = 16  # last bars drawn per round when the tune must end on the tonic
ENDING_ROUNDS = 4
# Drafts per tune, at most (drawn in waves, `in_waves`): the first whose part the model closed
# itself (not the length control at max_bars) is kept, and with prefer_tonic the first that also
# ends on a held tonic: rejection sampling of whole tunes, conditioned on the requested length.
# (MusicComposer passes prefer_tonic=False: `end_on_tonic` redraws just the last bar instead.)
FORM_DRAWS = 4
OLD_VOCAB = 74  # models trained before the form tokens existed: ids 0..73 of today's vocabulary


def load_model(path: Path) -> tuple[torch.nn.Module, ModelConfig]:
    """A model saved by training.music.train: fp16 safetensors with its config in the metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        cfg = ModelConfig(**json.loads(meta["config"]))
        state = {k: v.float() for k, v in load_file(str(path)).items()}
        if "emb.weight" in state:  # saved before the bar-position input existed
            state["emb.tok.weight"] = state.pop("emb.weight")
        model = build(cfg)
        model.load_state_dict(state)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise GeneratorUnavailable(f"cannot load music model {path}: {exc}") from exc
    if cfg.vocab != V.VOCAB_SIZE or cfg.n_meters != len(V.METERS) or cfg.n_modes != len(V.MODES) \
            or cfg.n_styles != len(V.STYLES):
        raise GeneratorUnavailable(f"{path} was trained with another vocabulary than this studio's "
                                   "(models from before the form tokens need retraining: "
                                   "`studio train music`)")
    return model.eval(), cfg


def conditioning(model: torch.nn.Module, meter: str, mode: str, style_w: list[float]) -> torch.Tensor:
    m = torch.tensor([list(V.METERS).index(meter)])
    k = torch.tensor([V.MODES.index(mode)])
    w = torch.tensor([style_w], dtype=torch.float32)
    with torch.inference_mode():
        return model.cond(m, k, w)


def max_bars_for(bars: int) -> int:
    """The most bars a tune asked for `bars` may take to reach the end of its part."""
    return bars + max(4, bars // 2)


def forced_end(body: list[str], meter: str, bars: int) -> bool:
    """Whether the length control, not the model, closed this composed tune's last part (it
    reached max_bars_for(bars) bars)."""
    r = decode.RowState(V.METERS[meter], min_bars=bars, max_bars=max_bars_for(bars))
    r.replay(body)
    return r.forced


def select(rows: list[decode.RowState], bodies: list[list[str]], n: int, meter: str,
           prefer_tonic: bool) -> list[list[str]]:
    """n bodies out of n groups of drafts: in each group the first the model ended itself (and,
    with prefer_tonic, that ends well), else the first draft."""
    size = len(rows) // n
    out = []
    for g in range(n):
        group = list(range(g * size, (g + 1) * size))
        rank = lambda i: (not rows[i].forced, prefer_tonic and ends_well(bodies[i], meter))  # noqa: E731
        out.append(bodies[max(group, key=rank)])  # max keeps the first of equals
    return out


def compose(model: Any, cond: torch.Tensor, meter: str, bars: int, n: int, *, temperature: float,
            top_k: int, gen: torch.Generator, on_step: Callable[[int], None] | None = None,
            min_dur: Fraction = Fraction(0), pitches: tuple[int, int] | None = None,
            drafts: int | None = None, prefer_tonic: bool = False, copy_boost: float = 1.0) -> list[list[str]]:
    """n bodies of at least `bars` bars, each ending at the end of a part (`select`); copy_boost:
    the bar cache's beta (bar_cache, 1 = off)."""
    template = decode.RowState(V.METERS[meter], min_bars=bars, max_bars=max_bars_for(bars), min_dur=min_dur,
                               pitches=pitches)
    return in_waves(model, cond, [], template, n, meter, prefer_tonic, drafts or FORM_DRAWS,
                    dict(temperature=temperature, top_k=top_k, gen=gen, on_step=on_step, copy_boost=copy_boost))


def in_waves(model: Any, cond: torch.Tensor, prefix: list[str], template: decode.RowState, n: int, meter: str,
             prefer_tonic: bool, drafts: int, sample_kw: dict[str, Any]) -> list[list[str]]:
    """n bodies (prefix + new tokens), each the first of up to `drafts` drafts with the best rank
    (`select`'s rule: ended by the model, and with prefer_tonic ending well). Drafts are drawn in
    waves, one per tune still without a best-ranked draft, so a tune whose first draft is
    already the one `select` would keep costs one draft, not `drafts` (the same choice)."""
    top = (True, prefer_tonic)
    best: list[tuple[tuple[bool, bool], list[str]] | None] = [None] * n
    todo = list(range(n))
    for _wave in range(drafts):
        rows = [copy.deepcopy(template) for _ in todo]
        new = decode.sample(model, cond, [V.BOS, *prefix], rows, **sample_kw)
        for g, r, body in zip(todo, rows, new):
            body = prefix + body
            rank = (not r.forced, prefer_tonic and ends_well(body, meter))
            if best[g] is None or rank > best[g][0]:  # ties keep the earlier draft, as select does
                best[g] = (rank, body)
        todo = [g for g in todo if best[g][0] != top]
        if not todo:
            break
    return [b[1] for b in best]


def primer_prefix(primer: list[str], tune_ends_here: bool) -> list[str]:
    """The primer as a prefix to continue: its last bar line is left to the model (it may close
    the part, repeat it, or run on) unless the creator wrote a repeat there."""
    if primer and primer[-1] in V.CLOSES and not (primer[-1] == V.REPEAT_END and tune_ends_here):
        return primer[:-1]
    return list(primer)


def continue_primer(model: Any, cond: torch.Tensor, primer: list[str], meter: str, bars: int, n: int,
                    *, temperature: float, top_k: int, gen: torch.Generator,
                    on_step: Callable[[int], None] | None = None, min_dur: Fraction = Fraction(0),
                    keep_final_repeat: bool = True, pitches: tuple[int, int] | None = None,
                    drafts: int | None = None, prefer_tonic: bool = False,
                    copy_boost: float = 1.0) -> list[list[str]]:
    """Bodies that start with `primer` (a body from `codec.tune_to_tokens`) and go on for at
    least `bars` more bars, to the end of a part (after finishing the primer's last bar if it
    stopped part-way)."""
    prefix = primer_prefix(primer, keep_final_repeat)
    probe = decode.RowState(V.METERS[meter])
    probe.replay(prefix)
    start = probe.counted + (1 if probe.pos > 0 or (prefix and prefix[-1] in V.DUR_OF_TOKEN) else 0)
    template = decode.RowState(V.METERS[meter], min_bars=start + bars, max_bars=start + max_bars_for(bars),
                               min_dur=min_dur, pitches=pitches)
    template.replay(prefix)
    return in_waves(model, cond, prefix, template, n, meter, prefer_tonic, drafts or FORM_DRAWS,
                    dict(temperature=temperature, top_k=top_k, gen=gen, on_step=on_step, copy_boost=copy_boost))


def ends_well(body: list[str], meter: str) -> bool:
    """The last sounding note is the tonic (C after transposing), starts on a beat (a quarter,
    or a dotted quarter in compound meters) and lasts at least a quarter note; only rests may
    follow it."""
    from generators.music_lib.codec import beat_of

    units = V.bars_of(body)
    if not units:
        return False
    events: list[tuple[str, Fraction, Fraction]] = []  # (pitch/rest token, onset, duration)
    onset = Fraction(0)
    pending = ""
    for tok in units[-1]:
        if tok in V.DUR_OF_TOKEN:
            events.append((pending, onset, V.DUR_OF_TOKEN[tok]))
            onset += V.DUR_OF_TOKEN[tok]
        else:
            pending = tok
    notes = [e for e in events if e[0] != V.REST]
    if not notes:
        return False
    tok, on, dur = notes[-1]
    return V.pitch_of(tok) % 12 == 0 and on % beat_of(meter) == 0 and dur >= 1


def end_on_tonic(model: Any, cond: torch.Tensor, body: list[str], meter: str, *, temperature: float,
                 top_k: int, gen: torch.Generator, min_dur: Fraction = Fraction(0),
                 protect: int = 0, pitches: tuple[int, int] | None = None) -> tuple[list[str], bool]:
    """(body, redrawn): if the last bar does not end well (`ends_well`), the model redraws that
    bar (same opening marks, same bar line) until one of its draws does; the first such draw
    wins, which samples the model's last bars conditioned on ending on the tonic. After
    ENDING_ROUNDS rounds without one, the model's own ending stays. The first `protect` bars
    (a primer) are never redrawn."""
    if ends_well(body, meter):
        return body, False
    units = V.units_of(body)
    if len(units) <= protect or not units:
        return body, False
    last = units[-1]
    opens = [t for t in last if t in V.OPENS]
    close = last[-1] if last and last[-1] in V.CLOSES else V.PART_END
    head = [t for u in units[:-1] for t in u] + opens
    length = V.bar_length(last)
    for _ in range(ENDING_ROUNDS):
        template = decode.RowState(V.METERS[meter], fixed=[([], length, close)], min_dur=min_dur, pitches=pitches)
        template.replay(head)
        rows = [copy.deepcopy(template) for _k in range(ENDING_CANDIDATES)]
        for cand in decode.sample(model, cond, [V.BOS, *head], rows, temperature=temperature,
                                  top_k=top_k, gen=gen):
            if ends_well(head + cand, meter):
                return head + cand, True
    return body, False


def infill(model: Any, cond: torch.Tensor, body: list[str], masked: list[int], *, temperature: float,
           top_k: int, gen: torch.Generator, on_step: Callable[[int], None] | None = None,
           min_dur: Fraction = Fraction(0), pitches: tuple[int, int] | None = None) -> list[str]:
    """Rewrite the notes of the bars at `masked` (0-based), each keeping its length, its opening
    marks and its bar line."""
    units = V.units_of(body)
    spans: list[list[int]] = []
    for i in masked:
        if spans and spans[-1][-1] == i - 1:
            spans[-1].append(i)
        else:
            spans.append([i])
    for span in spans:
        prefix = [V.BOS] + [t for u in units[:span[0]] for t in u]
        suffix = [t for u in units[span[-1] + 1:] for t in u] + [V.EOS]
        fixed = [([t for t in units[i] if t in V.OPENS], V.bar_length(units[i]),
                  units[i][-1] if units[i][-1] in V.CLOSES else V.PART_END) for i in span]
        template = decode.RowState(fixed[0][1], fixed=[(o, n, c) for o, n, c in fixed],
                                   min_dur=min_dur, pitches=pitches)
        template.replay(prefix[1:])
        rows = [copy.deepcopy(template) for _ in range(INFILL_CANDIDATES)]
        cands = decode.sample(model, cond, prefix, rows, temperature=temperature, top_k=top_k, gen=gen,
                              on_step=on_step)
        cands += _copies(units, span, fixed)
        distinct = list({tuple(c): c for c in cands}.values())
        scores = decode.continuation_logprob(model, cond, prefix, [c + suffix for c in distinct])
        pick = int(torch.multinomial(torch.softmax(scores, dim=0), 1, generator=gen).item())
        new_units = V.units_of(distinct[pick])
        for i, nu in zip(span, new_units):
            units[i] = nu
    return [t for u in units for t in u]


def _copies(units: list[list[str]], span: list[int], fixed: list[tuple[list[str], Fraction, str]]
            ) -> list[list[str]]:
    """Candidate fillings made of the piece's own bars (outside the span, same lengths), so a
    bar that repeats elsewhere can be restored: every run of len(span) consecutive bars."""
    out = []
    k = len(span)
    for s in range(len(units) - k + 1):
        if s <= span[-1] and s + k - 1 >= span[0]:
            continue  # overlaps the masked bars
        run = units[s:s + k]
        if [V.bar_length(u) for u in run] != [f[1] for f in fixed]:
            continue
        cand: list[str] = []
        for (opens, _n, close), u in zip(fixed, run):
            cand += opens + [t for t in u if t not in V.OPENS and t not in V.CLOSES] + [close]
        out.append(cand)
    return out
