"""Register: which octave a tune is written in, from the style's real range and the instrument's.

The models write pitches relative to a C tonic; the requested key fixes the pitch class of the
transposition but not its octave. The decoder is first limited to the notes that fit at a
planned octave (`planned_shift`); then `choose_shift` tries every octave of the requested tonic
and keeps the one whose notes all lie inside the style's range (measured per style from the
training split: `assets/music/stats.json`, written by `python -m training.music.stats`) and the
instrument's playable range (`INSTRUMENT_RANGE`, per General MIDI program), preferring the
octave whose median note is nearest the style's median. None when no octave fits: the caller
redraws the tune or refuses it, and never writes it out of range.
"""
from __future__ import annotations

import json
from functools import lru_cache

from generators.resources import assets_dir

STATS = assets_dir("music", "stats.json")  # packaged as studio_assets in a wheel (generators/resources.py)

# Playable MIDI ranges (lowest, highest) per General MIDI program: the usual written ranges of
# the acoustic instruments (orchestration tables), a piano-like range for synths and effects.
_FAMILY = [(21, 108), (48, 96), (36, 96), (40, 88), (28, 67), (40, 96), (36, 96), (40, 82),
           (48, 88), (60, 96), (36, 96), (36, 96), (36, 96), (48, 84), (48, 84), (36, 96)]
_PROGRAM = {
    6: (29, 89), 7: (29, 89),  # harpsichord, clavinet
    8: (60, 108), 9: (79, 108), 10: (60, 96), 11: (53, 89), 12: (45, 96), 13: (65, 108),
    14: (60, 77), 15: (48, 84),  # celesta .. dulcimer
    21: (53, 89), 22: (60, 84), 23: (53, 89),  # accordion, harmonica, bandoneon
    40: (55, 103), 41: (48, 91), 42: (36, 76), 43: (28, 67), 44: (40, 96), 45: (28, 96),
    46: (23, 103), 47: (40, 57),  # violin, viola, cello, contrabass, tremolo, pizzicato, harp, timpani
    48: (28, 96), 49: (28, 96), 52: (48, 81), 53: (48, 81), 54: (48, 84), 55: (48, 72),
    56: (52, 82), 57: (40, 72), 58: (28, 58), 59: (52, 82), 60: (34, 77), 61: (40, 82),
    64: (56, 87), 65: (49, 81), 66: (44, 76), 67: (36, 69), 68: (58, 91), 69: (52, 81),
    70: (34, 75), 71: (50, 91),  # saxes, oboe, cor anglais, bassoon, clarinet
    72: (74, 108), 73: (60, 96), 74: (72, 98), 75: (60, 96), 76: (60, 84), 77: (55, 84),
    78: (74, 98), 79: (60, 84),  # piccolo, flute, recorder, pan flute, bottle, shakuhachi, whistle, ocarina
    104: (48, 77), 105: (48, 84), 106: (50, 79), 107: (55, 91), 108: (60, 84), 109: (67, 81),
    110: (55, 103), 111: (60, 84),  # sitar, banjo, shamisen, koto, kalimba, bagpipe, fiddle, shanai
}
INSTRUMENT_RANGE: dict[int, tuple[int, int]] = {p: _PROGRAM.get(p, _FAMILY[p // 8]) for p in range(128)}


@lru_cache(maxsize=1)
def stats() -> dict:
    """Corpus statistics written by training.music.stats (style ranges, shortest values...)."""
    return json.loads(STATS.read_text())


def style_range(weights: dict[str, float]) -> tuple[int, int, float]:
    """(lowest, highest, median) MIDI note of a style or mixture: the union of the ranges of the
    styles in the mixture, the weighted median."""
    ranges = stats()["style_range"]
    lo = min(ranges[s]["low"] for s in weights)
    hi = max(ranges[s]["high"] for s in weights)
    med = sum(w * ranges[s]["median"] for s, w in weights.items())
    return lo, hi, med


def allowed_range(weights: dict[str, float], program: int) -> tuple[int, int, float]:
    lo, hi, med = style_range(weights)
    ilo, ihi = INSTRUMENT_RANGE[program]
    return max(lo, ilo), min(hi, ihi), med


def planned_shift(weights: dict[str, float], tonic_pc: int, median: float) -> int:
    """The octave to write a new tune in before it is drawn: the one that puts the style's median
    note token (where the model writes in that style) nearest the style's median pitch. The
    decoder then allows only the note tokens that land inside the range at this shift, so the
    tune fits by construction instead of being drawn and thrown away."""
    ranges = stats()["style_range"]
    token_median = sum(w * ranges[s]["token_median"] for s, w in weights.items())
    return min(range(tonic_pc - 36, tonic_pc + 37, 12), key=lambda sh: abs(60 + token_median + sh - median))


def choose_shift(rel_pitches: list[int], tonic_pc: int, lo: int, hi: int, median: float) -> int | None:
    """The transposition (semitones added to 60 + relative pitch) that puts every note inside
    [lo, hi], keeps the tonic's pitch class, and brings the tune's median nearest `median`."""
    if not rel_pitches:
        return tonic_pc if tonic_pc <= 5 else tonic_pc - 12
    ps = sorted(rel_pitches)
    mid = ps[len(ps) // 2]
    best: tuple[float, int] | None = None
    for shift in range(tonic_pc - 36, tonic_pc + 37, 12):
        if 60 + ps[0] + shift < lo or 60 + ps[-1] + shift > hi:
            continue
        cost = abs(60 + mid + shift - median)
        if best is None or cost < best[0]:
            best = (cost, shift)
    return None if best is None else best[1]


def shortest(meter: str) -> "Fraction":
    """The shortest note value the corpus uses regularly in this meter (see stats.json)."""
    from fractions import Fraction

    return Fraction(stats()["min_duration"].get(meter, "0"))
