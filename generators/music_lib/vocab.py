"""The folk-rnn-style token vocabulary (Sturm et al., 2016), transposed to a C tonic.

A tune is a header of conditioning values (meter, mode, style) plus a body of tokens:

    P<n>   a note, n semitones above C4 after the tune was transposed so its tonic is C
    R      a rest
    D<q>   the duration of the note or rest just before, in quarter notes ("D1/2", "D3")
    |      a bar line                       ||  a part ends     :|  a repeat ends here
    |:     a repeat starts                  |1 |2  a first / second ending starts
    </s>   end of tune                      (<s> starts, <pad> pads)

Form, as in folk-rnn: every bar is [opening marks] notes [closing bar line], the last bar closes
with `||` or `:|` before `</s>`, so AABB tunes with first and second endings are sequences the
model can learn and write. Bar positions are not tokens but a feature of each token computed from
the sequence (`Positions`): which bar of the current part and where in the bar the next event
starts; the models add an embedding of it to every input.

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
PART_END, REPEAT_END, REPEAT_START, ENDING1, ENDING2 = "||", ":|", "|:", "|1", "|2"
CLOSES = (BAR, PART_END, REPEAT_END)  # bar lines: end the bar before them
OPENS = (REPEAT_START, ENDING1, ENDING2)  # marks that open the bar after them
FORM_TOKENS = (PART_END, REPEAT_END, REPEAT_START, ENDING1, ENDING2)
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


# Form tokens come last so the first 74 ids are those of the vocabulary before form existed.
TOKENS: tuple[str, ...] = (PAD, BOS, EOS, BAR, REST,
                           *(pitch_token(p) for p in range(PITCH_MIN, PITCH_MAX + 1)),
                           *(dur_token(d) for d in DURATIONS), *FORM_TOKENS)
TOKEN_ID: dict[str, int] = {t: i for i, t in enumerate(TOKENS)}
DUR_OF_TOKEN: dict[str, Fraction] = {dur_token(d): d for d in DURATIONS}
DUR48_OF_TOKEN: dict[str, int] = {t: int(d * 48) for t, d in DUR_OF_TOKEN.items()}
assert all(d * 48 == int(d * 48) for d in DURATIONS)
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


def units_of(body: list[str]) -> list[list[str]]:
    """Split a body (no <s>/</s>) into whole bars, each [opening marks] notes [bar line];
    a trailing unfinished bar (no bar line yet) is kept as the last unit."""
    units: list[list[str]] = [[]]
    for tok in body:
        units[-1].append(tok)
        if tok in CLOSES:
            units.append([])
    if not units[-1]:
        units.pop()
    return units


def bars_of(body: list[str]) -> list[list[str]]:
    """The note/rest/duration tokens of each bar (form marks dropped)."""
    return [[t for t in u if t not in CLOSES and t not in OPENS] for u in units_of(body)]


# Bar-position feature: (bar of the part, onset in the bar) after each token, as one id.
POS_BARS = 16  # bars 0..15 of a part; later bars share the last id
POS_STEPS = 73  # onsets 0..71 in twelfths of a quarter (6 quarters, the longest bar); 72 = later
POS_IDS = POS_BARS * POS_STEPS


class Positions:
    """Tracks where the next event starts: the bar's index within its part (a part starts at
    the tune's start and after `||`, `:|` or `|:`; a second ending restarts at the first
    ending's bar) and the onset within the bar. Pure and incremental, so training and sampling
    compute the same feature."""

    def __init__(self) -> None:
        self.bar = 0
        self.onset = 0  # in 48ths of a quarter (every duration is a whole number of them): ints are fast
        self.ending_bar = 0
        self.after_close = True

    def push(self, tok: str) -> int:
        if tok in CLOSES:
            self.onset = 0
            self.bar = 0 if tok in (PART_END, REPEAT_END) else self.bar + 1
            self.after_close = True
        elif tok == REPEAT_START:
            self.bar = 0
        elif tok == ENDING1:
            self.ending_bar = self.bar
        elif tok == ENDING2:
            self.bar = self.ending_bar
        elif tok in DUR48_OF_TOKEN:
            self.onset += DUR48_OF_TOKEN[tok]
        return self.feature()

    def feature(self) -> int:
        step = min(self.onset // 4, POS_STEPS - 1)  # twelfths of a quarter
        return min(self.bar, POS_BARS - 1) * POS_STEPS + step


def positions(tokens: list[str]) -> list[int]:
    """The position feature after each token of a sequence (from <s> on)."""
    tracker = Positions()
    return [tracker.push(t) for t in tokens]


def bar_length(bar: list[str]) -> Fraction:
    return sum((DUR_OF_TOKEN[t] for t in bar if t in DUR_OF_TOKEN), Fraction(0))


def bars_in_meter(body: list[str], bar_len: Fraction) -> bool:
    """Every bar is whole, except as the corpus writes pickups: the first bar may be a pickup of at
    most half a bar, a part may then close (`||`, `:|` or the tune's end) on its complement, and
    the bar after such a close is a pickup again, so played through, the bars add up."""
    units = units_of(body)
    pickup, after_short_close = Fraction(0), False
    for i, u in enumerate(units):
        n = bar_length(u)
        # a part ends at `||`, `:|`, the tune's end, or where a repeat opens (ABC writes `||` before
        # `|:` as a plain `|:`, so a tune read back from ABC has `|` there)
        closes_part = i == len(units) - 1 or u[-1] in (PART_END, REPEAT_END) or REPEAT_START in units[i + 1]
        if after_short_close:
            if n != pickup:
                return False
            after_short_close = False
        elif i == 0 and 0 < n <= bar_len / 2 and len(units) > 1:
            pickup = n
        elif n == bar_len:
            continue
        elif pickup and n == bar_len - pickup and closes_part and ENDING1 not in u:
            after_short_close = i < len(units) - 1
        else:
            return False
    return True


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
