"""ABC <-> tokens, through music21 (Cuthbert & Ariza, 2010) for reading and a small writer.

Reading: music21 parses ABC (or MIDI / MusicXML) into a score; `score_to_tune` keeps the top line
as (MIDI pitch or None, quarter-length) events per measure plus meter, tonic and mode.
`tune_to_tokens` transposes the tonic to C and emits the vocabulary of `vocab.py`.
Writing: `tokens_to_abc` spells every note in the requested key and writes ABC 2.1 text one bar
at a time; each bar's text depends only on that bar's tokens and the key, so untouched bars of
an infilled piece come out byte-identical.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from generators.base import InvalidInput
from generators.music_lib import vocab as V

LETTERS = "CDEFGAB"
NATURAL_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
MODE_ABC = {"major": "", "minor": "m", "dorian": "dor", "mixolydian": "mix"}
# Semitones from the tonic of each mode to its relative major's tonic.
MODE_TO_MAJOR = {"major": 0, "minor": 3, "dorian": -2, "mixolydian": -7}
# Major keys by number of sharps (positive) or flats (negative).
MAJOR_BY_PC_NAME = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F#": 6, "C#": 7,
                    "F": -1, "Bb": -2, "Eb": -3, "Ab": -4, "Db": -5, "Gb": -6, "Cb": -7}
SHARP_ORDER, FLAT_ORDER = "FCGDAEB", "BEADGCF"
TONICS = ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B")


@dataclass
class Tune:
    """One monophonic tune: meter, key and per-measure events (midi pitch or None for rest)."""

    meter: str
    tonic: str  # "D", "Bb", "F#"
    mode: str  # one of vocab.MODES
    measures: list[list[tuple[int | None, Fraction]]] = field(default_factory=list)
    title: str = ""
    # Form marks per measure (parallel to `measures`, "" when none): a space-separated subset of
    # "|:" (a repeat starts before it), "|1"/"|2" (a first/second ending starts with it),
    # ":|" (a repeat ends after it) and "||" (a part ends after it). Empty list = no marks known.
    form: list[str] = field(default_factory=list)

    def marks(self, i: int) -> set[str]:
        return set(self.form[i].split()) if i < len(self.form) else set()

    def to_json(self) -> dict[str, Any]:
        d = {"meter": self.meter, "tonic": self.tonic, "mode": self.mode, "title": self.title,
             "measures": [[[p, str(q)] for p, q in m] for m in self.measures]}
        if any(self.form):
            d["form"] = list(self.form)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Tune":
        return cls(d["meter"], d["tonic"], d["mode"],
                   [[(p, Fraction(q)) for p, q in m] for m in d["measures"]], d.get("title", ""),
                   list(d.get("form") or []))


def tonic_pc(tonic: str) -> int:
    pc = NATURAL_PC[tonic[0].upper()]
    for ch in tonic[1:]:
        pc += 1 if ch == "#" else -1 if ch in "b-" else 0
    return pc % 12


def tonic_shift(tonic: str) -> int:
    """Semitones from C up/down to the tonic, in [-6, 5]: the transposition applied on output."""
    pc = tonic_pc(tonic)
    return pc if pc <= 5 else pc - 12


def normalise_tonic(name: str) -> str:
    """music21 names ("B-", "F#") -> ABC-ish names ("Bb", "F#")."""
    return name[0].upper() + name[1:].replace("-", "b")


def key_signature(tonic: str, mode: str) -> dict[str, int]:
    """Letter -> alteration (+1 sharp, -1 flat) of the key signature of tonic+mode."""
    major_pc = (tonic_pc(tonic) + MODE_TO_MAJOR[mode]) % 12
    # pick the relative major with the fewest accidentals, preferring the tonic's own spelling
    flats_pref = "b" in tonic or tonic == "F" and mode == "major"
    candidates = [(n, k) for n, k in MAJOR_BY_PC_NAME.items() if tonic_pc(n) == major_pc]
    candidates.sort(key=lambda nk: (abs(nk[1]), (nk[1] > 0) == flats_pref))
    sharps = candidates[0][1]
    if abs(sharps) == 6:  # F#/Gb: follow the tonic's spelling
        sharps = -6 if "b" in tonic else 6
    sig = {letter: 0 for letter in LETTERS}
    order = SHARP_ORDER if sharps > 0 else FLAT_ORDER
    for letter in order[:abs(sharps)]:
        sig[letter] = 1 if sharps > 0 else -1
    return sig


def spell(midi: int, sig: dict[str, int]) -> tuple[str, int, int]:
    """(letter, alteration, octave) for a MIDI pitch in a key signature."""
    pc = midi % 12
    options = []
    for letter in LETTERS:
        alter = (pc - NATURAL_PC[letter] + 6) % 12 - 6
        if -1 <= alter <= 1:
            options.append((letter, alter))
    flat_key = any(a < 0 for a in sig.values())
    def rank(opt: tuple[str, int]) -> tuple[int, int]:
        letter, alter = opt
        if alter == sig[letter]:
            return (0, 0)
        if alter == 0:
            return (1, 0)
        return (2, 0 if (alter < 0) == flat_key else 1)
    letter, alter = min(options, key=rank)
    octave = (midi - alter) // 12 - 1
    return letter, alter, octave


def _abc_len(units: Fraction) -> str:
    if units == 1:
        return ""
    if units.denominator == 1:
        return str(units.numerator)
    if units.numerator == 1:
        return f"/{units.denominator}"
    return f"{units.numerator}/{units.denominator}"


def _abc_pitch(midi: int, sig: dict[str, int], state: dict[str, int], explicit: set[str]) -> str:
    letter, alter, octave = spell(midi, sig)
    need = alter != sig[letter] or letter in explicit or state.get(f"{letter}{octave}", sig[letter]) != alter
    acc = ""
    if need:
        acc = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}[alter]
        explicit.add(letter)
    state[f"{letter}{octave}"] = alter
    name = letter if octave <= 4 else letter.lower()
    marks = "," * (4 - octave) if octave < 4 else "'" * (octave - 5) if octave > 5 else ""
    return acc + name + marks


def beat_of(meter: str) -> Fraction:
    """The beat notes are beamed by: a dotted quarter in compound meters, else a quarter."""
    num, den = (int(x) for x in meter.split("/"))
    return Fraction(3, 2) if den == 8 and num % 3 == 0 else Fraction(1)


def bar_to_abc(bar: list[tuple[int | None, Fraction]], sig: dict[str, int], beat: Fraction = Fraction(1)) -> str:
    """One bar of events as ABC with L:1/8; triplet runs become (3:2:n groups; a space after
    each beat so notes are beamed beat by beat."""
    state: dict[str, int] = {}
    explicit: set[str] = set()
    out: list[str] = []
    pos = Fraction(0)
    i = 0
    while i < len(bar):
        j = i
        while j < len(bar) and bar[j][1].denominator % 3 == 0:
            j += 1
        if j > i:  # a run of tuplet notes, written in groups of at most three: (3:2:n
            for g in range(i, j, 3):
                group = bar[g:min(g + 3, j)]
                out.append(f"(3:2:{len(group)}")
                for p, q in group:
                    units = q * 2 * Fraction(3, 2)
                    out.append(("z" if p is None else _abc_pitch(p, sig, state, explicit)) + _abc_len(units))
                    pos += q
                out.append(" ")
            i = j
            continue
        p, q = bar[i]
        out.append(("z" if p is None else _abc_pitch(p, sig, state, explicit)) + _abc_len(q * 2))
        pos += q
        if pos % beat == 0:
            out.append(" ")
        i += 1
    return re.sub(" +", " ", "".join(out)).strip()


def canonical_marks(tune: Tune) -> list[set[str]]:
    """Each measure's form marks as tokens and ABC write them: the final bar's `||` is implied;
    a section that ends in `:|` (or holds a first ending) opens with `|:`, since abc2midi and
    abcm2ps repeat from the last `|:` and warn when there is none. Old, unmarked tunes: no marks."""
    marks = [tune.marks(i) - {V.PART_END} if i == len(tune.measures) - 1 else tune.marks(i)
             for i in range(len(tune.measures))]
    start, in_ending = 0, False
    for i, m in enumerate(marks):
        if V.REPEAT_START in m:
            start = i
        if (V.ENDING1 in m or V.REPEAT_END in m and not in_ending) and \
                not marks[start] & {V.REPEAT_START, V.ENDING1, V.ENDING2}:
            marks[start] = marks[start] | {V.REPEAT_START}
        if V.ENDING1 in m:
            in_ending = True  # until the second ending: its :| closes the first ending
        elif V.ENDING2 in m:
            in_ending = False
        if m & {V.REPEAT_END, V.PART_END} and not in_ending:
            start = i + 1
    return marks


def _close_of(marks: list[set[str]], i: int) -> str:
    """The bar line after measure i, canonical: `:|` ends a repeat; `||` ends a part unless the
    next bar opens a repeat or an ending (those mark it already); the last bar closes with `||`
    or `:|`."""
    if V.REPEAT_END in marks[i]:
        return V.REPEAT_END
    if i == len(marks) - 1:
        return V.PART_END
    if V.PART_END in marks[i] and not marks[i + 1] & set(V.OPENS):
        return V.PART_END
    return V.BAR


def _opens_of(marks: list[set[str]], i: int) -> list[str]:
    """Opening marks of measure i: `|:`, or a first/second ending (never both: ABC has no bar
    line for that, so a repeat start wins)."""
    if V.REPEAT_START in marks[i]:
        return [V.REPEAT_START]
    return [t for t in (V.ENDING1, V.ENDING2) if t in marks[i]][:1]


def played_order(tune: Tune) -> list[int]:
    """Measure indices in the order a player plays them: a `:|` goes back once to the last `|:`
    (or the part's start), and the second time through, a first ending gives way to the second."""
    n = len(tune.measures)
    marks = canonical_marks(tune) if n else []
    order: list[int] = []
    start, i, second_pass = 0, 0, False
    repeated: set[int] = set()
    while i < n:
        m = marks[i]
        if second_pass and V.ENDING1 in m:
            j = next((k for k in range(i + 1, n) if V.ENDING2 in marks[k]), None)
            if j is not None:
                i, second_pass = j, False
                continue
        if V.REPEAT_START in m and not second_pass:
            start = i
        order.append(i)
        if V.REPEAT_END in m and i not in repeated:
            repeated.add(i)
            i, second_pass = start, True
            continue
        if m & {V.REPEAT_END, V.PART_END}:
            start, second_pass = i + 1, False
        i += 1
    return order


# ABC for (bar line, opening mark): written as one bar-line symbol that abc2midi, abcm2ps and
# music21 all read back as the same marks.
_ABC_SEP = {("|", ""): "|", ("||", ""): "||", (":|", ""): ":|",
            ("|", "|:"): "|:", ("||", "|:"): "|:", (":|", "|:"): "::",
            ("|", "|1"): "|1", ("||", "|1"): "|1", (":|", "|1"): ":|1",
            ("|", "|2"): "|2", ("||", "|2"): "|2", (":|", "|2"): ":|2"}


def tune_to_abc(tune: Tune, *, title: str = "", tempo: int | None = None, index: int = 1,
                bars_per_line: int = 4) -> str:
    """Write a Tune as one ABC 2.1 tune (X:, T:, M:, L:1/8, Q:, K: and the bars, with its repeat
    signs, first/second endings and double bars)."""
    sig = key_signature(tune.tonic, tune.mode)
    beat = beat_of(tune.meter)
    bars = [bar_to_abc(m, sig, beat) for m in tune.measures]
    lines = [f"X:{index}", f"T:{title or tune.title or 'Untitled'}", f"M:{tune.meter}", "L:1/8"]
    if tempo:
        lines.append(f"Q:1/4={tempo}")
    # abcm2ps breaks the lines itself by width: our 4-bar lines of few notes drew "Line underfull"
    lines.append("%%continueall")
    lines.append(f"K:{tune.tonic}{MODE_ABC[tune.mode]}")
    body: list[str] = []
    marks = canonical_marks(tune) if tune.measures else []
    line = "|: " if marks and _opens_of(marks, 0) == [V.REPEAT_START] else ""
    # lines of `bars_per_line` bars' worth of music (a pickup and its complement share a line's
    # room): abcm2ps warns "Line underfull" when a line is much shorter than the others
    bar_len = V.METERS.get(tune.meter) or sum((q for _p, q in tune.measures[0]), Fraction(0)) or Fraction(1)
    line_len = Fraction(0)
    for i, text in enumerate(bars):
        close = _close_of(marks, i)
        if i == len(bars) - 1:
            line += text + (" :|" if close == V.REPEAT_END else " |]")
            body.append(line)
            break
        opens = _opens_of(marks, i + 1)
        line += text + " " + _ABC_SEP[(close, opens[0] if opens else "")]
        line_len += sum((q for _p, q in tune.measures[i]), Fraction(0))
        if line_len >= bars_per_line * bar_len:
            body.append(line)
            line, line_len = "", Fraction(0)
        else:
            line += " "
    return "\n".join(lines + body) + "\n"


_ABC_BAR_RE = re.compile(r"::|:\|[12]?|\|[12:\]|]?|\|")


def abc_bar_texts(abc: str) -> list[str]:
    """The bar texts of an ABC body written by `tune_to_abc` (for tests and infill checks)."""
    body = "\n".join(line for line in abc.splitlines() if not re.match(r"^([A-Za-z]:|%)", line))
    return [b.strip() for b in _ABC_BAR_RE.split(body.replace("\n", " ")) if b.strip()]


# ---------------------------------------------------------------------------------------------
# Tune <-> tokens
# ---------------------------------------------------------------------------------------------
def tune_to_tokens(tune: Tune) -> list[str]:
    """Body tokens (no <s>/</s>) with the tonic transposed to C: each bar is its opening mark
    (`|:`, `|1`, `|2`), its notes and its bar line (`|`, `||` or `:|`; the last bar closes with
    `||` or `:|`). Raises ValueError if a note or duration is outside the vocabulary."""
    shift = -tonic_shift(tune.tonic)
    out: list[str] = []
    marks = canonical_marks(tune)
    for m_i, measure in enumerate(tune.measures):
        out += _opens_of(marks, m_i)
        for p, q in measure:
            if p is None:
                out.append(V.REST)
            else:
                rel = p + shift - 60
                if not V.PITCH_MIN <= rel <= V.PITCH_MAX:
                    raise ValueError(f"pitch {p} outside the model's range")
                out.append(V.pitch_token(rel))
            tok = V.dur_token(q)
            if tok not in V.DUR_OF_TOKEN:
                raise ValueError(f"duration {q} quarter notes is not in the vocabulary")
            out.append(tok)
        out.append(_close_of(marks, m_i))
    return out


def tokens_to_tune(body: list[str], meter: str, tonic: str, mode: str, title: str = "",
                   shift: int | None = None) -> Tune:
    """Inverse of `tune_to_tokens` for a well-formed body (notes always followed by a duration).
    `shift` is the transposition from the C-tonic tokens (default: `tonic_shift(tonic)`)."""
    shift = tonic_shift(tonic) if shift is None else shift
    measures: list[list[tuple[int | None, Fraction]]] = []
    form: list[str] = []
    for unit in V.units_of(body):
        events: list[tuple[int | None, Fraction]] = []
        marks: list[str] = []
        pending: int | None | str = "none"
        for tok in unit:
            if tok in V.OPENS or tok in (V.PART_END, V.REPEAT_END):
                marks.append(tok)
            elif tok == V.REST:
                pending = None
            elif V.is_pitch(tok):
                pending = V.pitch_of(tok) + 60 + shift
            elif tok in V.DUR_OF_TOKEN:
                if pending == "none":
                    continue
                events.append((pending, V.DUR_OF_TOKEN[tok]))  # type: ignore[arg-type]
                pending = "none"
        if events:
            measures.append(events)
            form.append(" ".join(sorted(set(marks))))
        elif marks and form:  # marks on an empty bar belong to the bar before
            form[-1] = " ".join(sorted(set(form[-1].split()) | set(marks)))
    return Tune(meter, tonic, mode, measures, title, _canonical_form(form))


def _canonical_form(form: list[str]) -> list[str]:
    """The final bar's `||` is implied (every tune ends with one): drop it, so ABC, music21 and
    tokens give the same marks; [] when a tune has no marks at all."""
    if form and V.PART_END in form[-1].split():
        form = form[:-1] + [" ".join(m for m in form[-1].split() if m != V.PART_END)]
    return form if any(form) else []


# ---------------------------------------------------------------------------------------------
# music21 -> Tune
# ---------------------------------------------------------------------------------------------
def _meter_name(ts: Any) -> str:
    return f"{ts.numerator}/{ts.denominator}"


def score_to_tune(score: Any, *, estimate_key: bool = False) -> Tune:
    """The top line of a music21 score as a Tune. Raises ValueError when it is not one."""
    from music21 import chord, key, meter, note, stream

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    part = parts[0]
    tss = list(part.recurse().getElementsByClass(meter.TimeSignature))
    if not tss:
        tss = list(score.recurse().getElementsByClass(meter.TimeSignature))
    if not tss:
        raise ValueError("no meter (M: field or time signature)")
    # music21 gives short bars (pickups, bars split at a repeat) time signatures of their own:
    # the tune's meter is the one governing most measures; a second one over >2 bars is a change.
    counts: dict[str, int] = {}
    current = _meter_name(tss[0])
    for m in part.getElementsByClass(stream.Measure):
        if m.timeSignature is not None:
            current = _meter_name(m.timeSignature)
        counts[current] = counts.get(current, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: -kv[1]) or [(current, 1)]
    if len(ranked) > 1 and ranked[1][1] > 2:
        raise ValueError(f"the meter changes inside the tune ({', '.join(sorted(counts))})")
    meter_name = ranked[0][0]
    keys = list(part.recurse().getElementsByClass(key.KeySignature)) or \
        list(score.recurse().getElementsByClass(key.KeySignature))
    if estimate_key or not keys:
        k = score.analyze("key")
        tonic, mode = normalise_tonic(k.tonic.name), k.mode
    else:
        sharps = {k.sharps for k in keys}
        if len(sharps) > 1:
            raise ValueError("the key changes inside the tune")
        k0 = keys[0]
        if isinstance(k0, key.Key) and k0.mode in V.MODES:
            tonic, mode = normalise_tonic(k0.tonic.name), k0.mode
        elif isinstance(k0, key.Key) and k0.mode in ("major", "minor", "dorian", "mixolydian"):
            tonic, mode = normalise_tonic(k0.tonic.name), k0.mode
        else:
            k1 = k0.asKey("major")
            tonic, mode = normalise_tonic(k1.tonic.name), "major"
    if mode not in V.MODES:
        raise ValueError(f"mode {mode} is not supported")
    measures: list[list[tuple[int | None, Fraction]]] = []
    ms = list(part.getElementsByClass(stream.Measure))
    if not ms and part.flatten().notesAndRests:  # music21 builds no bars when ABC has no final bar line
        ms = list(part.flatten().notesAndRests.stream().makeMeasures(tss[0]).getElementsByClass(stream.Measure))
    if not ms:
        raise ValueError("no notes")
    form: list[str] = []
    left = _left_marks(score, ms)
    carry: set[str] = set()  # marks of a measure without notes move to the next one
    for m_i, m in enumerate(ms):
        voices = list(m.voices)
        src = voices[0] if voices else m
        events: list[tuple[int | None, Fraction]] = []
        for el in src.notesAndRests:
            q = Fraction(el.quarterLength).limit_denominator(48)
            if q == 0 or el.duration.isGrace:
                continue
            if isinstance(el, note.Rest):
                p = None
            elif isinstance(el, chord.Chord):
                p = max(x.midi for x in el.pitches)
            else:
                p = el.pitch.midi
            events.append((p, q))
        marks = carry | left[m_i]
        right = _right_marks(m)
        if events:
            measures.append(events)
            form.append(" ".join(sorted(marks)))
            carry = set()
            if right:
                form[-1] = " ".join(sorted(set(form[-1].split()) | right))
        else:
            carry = marks
            if right and form:  # an empty bar that closes a repeat closes the previous one
                form[-1] = " ".join(sorted(set(form[-1].split()) | right))
    if not measures:
        raise ValueError("no notes")
    return Tune(meter_name, tonic, mode, measures, form=_canonical_form(form))


def _right_marks(m: Any) -> set[str]:
    """":|" for an end-repeat bar line after the measure, "||" for a double/final one."""
    from music21 import bar

    rb = m.rightBarline
    if isinstance(rb, bar.Repeat) and rb.direction == "end":
        return {":|"}
    if rb is not None and rb.type in ("double", "final", "light-light", "light-heavy", "heavy-light",
                                      "heavy-heavy", "heavy"):
        return {"||"}
    return set()


def _left_marks(score: Any, ms: list[Any]) -> list[set[str]]:
    """Per measure: "|:" when a repeat starts there, "|1"/"|2" when a first/second ending does."""
    from music21 import bar, spanner

    out: list[set[str]] = [set() for _ in ms]
    index = {id(m): i for i, m in enumerate(ms)}
    for i, m in enumerate(ms):
        lb = m.leftBarline
        if isinstance(lb, bar.Repeat) and lb.direction == "start":
            out[i].add("|:")
        elif i and isinstance(ms[i - 1].rightBarline, bar.Repeat) and ms[i - 1].rightBarline.direction == "start":
            out[i].add("|:")
    for sp in score.recurse().getElementsByClass(spanner.RepeatBracket):
        spanned = [index[id(x)] for x in sp.getSpannedElements() if id(x) in index]
        if not spanned:
            continue
        numbers = [int(n) for n in re.findall(r"\d+", str(sp.number or "1"))] or [1]
        out[min(spanned)].add("|1" if numbers[0] == 1 else "|2")
    return out


def parse_abc(text: str) -> Tune:
    """Parse one ABC tune into a Tune, or raise InvalidInput with a readable reason."""
    from music21 import converter

    if not re.search(r"^\s*K:", text, re.M):
        raise InvalidInput("the ABC text has no K: (key) line; an ABC tune needs X:, M:, K: headers "
                           "and then the notes")
    if len(re.findall(r"^\s*X:", text, re.M)) > 1:
        raise InvalidInput("the ABC text holds several tunes (several X: lines); give one tune")
    try:
        score = converter.parse(text, format="abc")
    except Exception as exc:  # music21 raises many kinds of errors on malformed ABC
        raise InvalidInput(f"the ABC text could not be read: {exc}") from None
    try:
        return score_to_tune(score)
    except ValueError as exc:
        raise InvalidInput(f"the ABC tune cannot be used: {exc}") from None
