"""The folk-rnn-style token vocabulary (Sturm et al., 2016), transposed to a C tonic.

A tune is a header of conditioning values (meter, mode, style) plus a body of tokens:

    P<n>   a note, n semitones above C4 after the tune was transposed so its tonic is C
    R      a rest
    D<q>   the duration of the note or rest just before, in quarter notes ("D1/2", "D3")
    |      a bar line
    </s>   end of tune                      (<s> starts, <pad> pads)

Every note/rest is followed by exactly one duration token, so a bar's length is the sum of its
duration tokens and a grammar mask can force every bar to the meter's length. Like folk-rnn v2,
tunes are transposed to a common tonic (C) so the model learns scale degrees; the requested key
is applied when the tune is written out. Meter, mode and style are not tokens: they condition
the model as embeddings (style as a weighted mixture, as in DeepJ, Mao et al. 2018).
Pure Python: no torch/numpy here.
"""
from __future__ import annotations

from fractions import Fraction

PAD, BOS, EOS, BAR, REST = "<pad>", "<s>", "</s>", "|", "R"
PITCH_MIN, PITCH_MAX = -15, 30  # semitones around C4 after transposing the tonic to C
DURATIONS: tuple[Fraction, ...] = tuple(Fraction(x) for x in (
    "1/16", "1/8", "1/6", "3/16", "1/4", "1/3", "3/8", "1/2", "2/3", "3/4", "7/8", "1", "5/4", "4/3", "3/2", "7/4",
    "2", "5/2", "3", "7/2", "4", "9/2", "6"))

# Meters the model knows, with the bar length in quarter notes.
METERS: dict[str, Fraction] = {
    "2/4": Fraction(2), "3/4": Fraction(3), "4/4": Fraction(4), "2/2": Fraction(4),
    "3/8": Fraction(3, 2), "6/8": Fraction(3), "9/8": Fraction(9, 2), "12/8": Fraction(6),
    "6/4": Fraction(6), "3/2": Fraction(6)}
MODES: tuple[str, ...] = ("major", "minor", "dorian", "mixolydian")
# Styles = the corpus collection a tune came from (music21 corpus names in parentheses).
STYLES: tuple[str, ...] = ("oneill", "ryan", "aird", "essen", "bach")
STYLE_HELP = {"oneill": "O'Neill's Music of Ireland (1850 tunes, oneills1850)",
              "ryan": "Ryan's Mammoth Collection (ryansMammoth)",
              "aird": "Aird's Airs (airdsAirs)",
              "essen": "Essen folksong collection, German songs (essenFolksong)",
              "bach": "J. S. Bach chorale melodies, the soprano line (bach)"}


def dur_token(q: Fraction) -> str:
    return f"D{q.numerator}" if q.denominator == 1 else f"D{q.numerator}/{q.denominator}"


def pitch_token(p: int) -> str:
    return f"P{p}"


TOKENS: tuple[str, ...] = (PAD, BOS, EOS, BAR, REST,
                           *(pitch_token(p) for p in range(PITCH_MIN, PITCH_MAX + 1)),
                           *(dur_token(d) for d in DURATIONS))
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
DUR_OF_TOKEN: dict[str, Fraction] = {dur_token(d): d for d in DURATIONS}
DUR_IDS: tuple[int, ...] = tuple(TOKEN_ID[dur_token(d)] for d in DURATIONS)
PITCH_IDS: tuple[int, ...] = tuple(TOKEN_ID[pitch_token(p)] for p in range(PITCH_MIN, PITCH_MAX + 1))
VOCAB_SIZE = len(TOKENS)


def is_pitch(tok: str) -> bool:
    return tok.startswith("P")


def pitch_of(tok: str) -> int:
    return int(tok[1:])


def encode(tokens: list[str]) -> list[int]:
    return [TOKEN_ID[t] for t in tokens]


def decode(ids: list[int]) -> list[str]:
    return [TOKENS[i] for i in ids]


def bars_of(body: list[str]) -> list[list[str]]:
    """Split a body (no <s>/</s>) at bar lines; a trailing unfinished bar is kept."""
    bars: list[list[str]] = [[]]
    for tok in body:
        if tok == BAR:
            bars.append([])
        else:
            bars[-1].append(tok)
    if not bars[-1]:
        bars.pop()
    return bars


def bar_length(bar: list[str]) -> Fraction:
    return sum((DUR_OF_TOKEN[t] for t in bar if t in DUR_OF_TOKEN), Fraction(0))


def parse_style(spec: str) -> dict[str, float]:
    """"oneill" or "oneill:0.6, essen:0.4" -> normalised weights over STYLES (DeepJ mixture).

    Raises ValueError with a readable message; weights must be positive numbers.
    """
    weights: dict[str, float] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, _, w = part.partition(":")
        name = name.strip().lower()
        if name not in STYLES:
            raise ValueError(f"unknown style {name!r}; styles are {', '.join(STYLES)}")
        try:
            value = float(w) if w.strip() else 1.0
        except ValueError:
            raise ValueError(f"style weight {w!r} for {name} is not a number") from None
        if not value > 0 or value != value or value == float("inf"):
            raise ValueError(f"style weight for {name} must be a positive number, got {w}")
        weights[name] = weights.get(name, 0.0) + value
    if not weights:
        raise ValueError("style is empty; name one of " + ", ".join(STYLES))
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def style_vector(weights: dict[str, float]) -> list[float]:
    return [weights.get(s, 0.0) for s in STYLES]
