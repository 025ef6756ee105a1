"""Checking a creator's primer / source piece (ABC text or MIDI upload) before any model work.

Everything here raises `InvalidInput` with a sentence a creator understands: a MIDI that is not
MIDI, too big, type 2, hours long or empty; ABC that music21 cannot read; a meter, a note range or
a rhythm the model's vocabulary cannot express. Nothing is clamped or cut silently.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from generators.base import InvalidInput
from generators.music_lib import codec
from generators.music_lib import vocab as V
from generators.music_lib.codec import Tune

MAX_MIDI_BYTES = 1 << 20  # 1 MiB: a melody is a few KB
MAX_MIDI_SECONDS = 15 * 60
MAX_MIDI_NOTES = 5000
MAX_SOURCE_BARS = 128


def load_midi(path: str) -> Tune:
    import mido

    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"the MIDI file {p.name!r} was not found")
    size = p.stat().st_size
    if size > MAX_MIDI_BYTES:
        raise InvalidInput(f"the MIDI file is {size / 1e6:.1f} MB; melodies up to "
                           f"{MAX_MIDI_BYTES // (1 << 20)} MB are accepted")
    try:
        mid = mido.MidiFile(str(p))
        seconds = mid.length
    except Exception as exc:  # mido raises OSError, EOFError, ValueError, KeyError... on bad data
        raise InvalidInput(f"the file is not a readable MIDI file ({type(exc).__name__}: {exc})") from None
    if mid.type == 2:
        raise InvalidInput("this is a type-2 MIDI file (independent sequences); export it as type 0 or 1")
    if seconds > MAX_MIDI_SECONDS:
        raise InvalidInput(f"the MIDI file lasts {seconds / 60:.0f} minutes; primers up to "
                           f"{MAX_MIDI_SECONDS // 60} minutes are accepted")
    n_notes = sum(1 for tr in mid.tracks for m in tr if m.type == "note_on" and m.velocity > 0)
    if n_notes == 0:
        raise InvalidInput("the MIDI file has no notes")
    if n_notes > MAX_MIDI_NOTES:
        raise InvalidInput(f"the MIDI file has {n_notes} notes; up to {MAX_MIDI_NOTES} are accepted")
    from music21 import converter

    try:
        score = converter.parse(str(p), format="midi")
        tune = codec.score_to_tune(score)
    except Exception as exc:  # music21 errors on odd files: say so plainly
        raise InvalidInput(f"the MIDI file could not be turned into a melody: {exc}") from None
    return tune


def load_source(abc: str, midi_path: str) -> Tune:
    """The primer or piece to infill, from exactly one of ABC text or a MIDI path, checked."""
    if abc.strip() and midi_path.strip():
        raise InvalidInput("give the primer either as ABC text or as a MIDI file, not both")
    if not abc.strip() and not midi_path.strip():
        raise InvalidInput("continuing or infilling needs a piece: type ABC text or upload a MIDI file")
    tune = codec.parse_abc(abc) if abc.strip() else load_midi(midi_path)
    check_tune(tune)
    return tune


def check_tune(tune: Tune) -> None:
    if tune.meter not in V.METERS:
        raise InvalidInput(f"the piece is in {tune.meter}; the model can continue "
                           f"{', '.join(V.METERS)} only")
    if len(tune.measures) > MAX_SOURCE_BARS:
        raise InvalidInput(f"the piece has {len(tune.measures)} bars; up to {MAX_SOURCE_BARS} are accepted "
                           "(trim it to the part you want to work on)")
    bar = V.METERS[tune.meter]
    for i, m in enumerate(tune.measures):
        length = sum((q for _, q in m), Fraction(0))
        if length > bar:
            raise InvalidInput(f"bar {i + 1} lasts {float(length):g} quarter notes but a {tune.meter} bar "
                               f"holds {float(bar):g}; fix the bar lines")
    try:
        codec.tune_to_tokens(tune)
    except ValueError as exc:
        raise InvalidInput(f"the piece has something the model cannot write: {exc} (MIDI is read on a "
                           "16th-note and triplet grid)") from None


def parse_bar_list(text: str, n_bars: int) -> list[int]:
    """"3-4, 7" -> [2, 3, 6] (0-based), checked against the piece's bar count."""
    out: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
            else:
                a = b = int(part)
        except ValueError:
            raise InvalidInput(f"infill_bars must look like '3-4, 7'; {part!r} is not a bar number or range") from None
        if a > b:
            raise InvalidInput(f"infill_bars range {part!r} runs backwards")
        if a < 1 or b > n_bars:
            raise InvalidInput(f"infill_bars {part!r} is outside the piece, which has bars 1-{n_bars}")
        out.update(range(a - 1, b))
    if not out:
        raise InvalidInput("infilling needs infill_bars, e.g. '3-4, 7'")
    return sorted(out)
