"""music21's beaming pass for a parsed ABC tune, without its per-measure context searches.

music21's ABC reader ends with `Part.makeBeams`, which asks every measure for its time signature
and every beam group for its clef through `getContextByClass`; each such call rebuilds a tree of
the part, and on a 32-bar tune that was ~60% of `render.musicxml_text`. Here the same pass runs
with the time signature and clef carried forward bar by bar (one part, measures in order: what
the ABC reader builds), using music21's own `TimeSignature.getBeams` and
`Clef.getStemDirectionForPitches`, so the beams and stems are those music21 would set (the
MusicXML bytes are compared with music21's own pass in tests/test_music_beams.py). Anything
this does not cover (voices, several clefs in a bar, no time signature) goes to music21's pass.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

_LOCAL = threading.local()  # the part being parsed on this thread, if any
_PATCH_LOCK = threading.Lock()
_ORIGINAL: Any = None


def _fast_make_beams(s: Any, *, inPlace: bool = False, setStemDirections: bool = True,  # noqa: N803
                     failOnNoTimeSignature: bool = False) -> Any:
    """Drop-in for music21.stream.makeNotation.makeBeams: our pass for an ABC tune parsed inside
    `fast_beams()` on this thread, music21's own for every other call."""
    if not getattr(_LOCAL, "active", False) or not inPlace or not _beam_part(s, setStemDirections):
        return _ORIGINAL(s, inPlace=inPlace, setStemDirections=setStemDirections,
                         failOnNoTimeSignature=failOnNoTimeSignature)
    return None


def _beam_part(part: Any, set_stems: bool) -> bool:
    """Beam `part` in place as makeNotation.makeBeams would; False (nothing changed) if it is not
    the simple case handled here."""
    from music21 import beam, clef, meter, stream
    from music21.common.numberTools import opFrac

    measures = list(part.getElementsByClass(stream.Measure))
    if not measures or any(m.hasVoices() for m in measures):
        return False
    # the time signature and clef in force in each measure, carried forward (the reader puts
    # them at offset 0 of the measure where they change; a clef elsewhere: music21's pass)
    ts = measures[0].timeSignature or measures[0].getContextByClass(meter.TimeSignature)
    cl = measures[0].getContextByClass(clef.Clef)
    plan = []
    for m in measures:
        clefs = list(m.getElementsByClass(clef.Clef))
        if len(clefs) > 1 or any(c.offset != 0 for c in clefs):
            return False
        ts = m.timeSignature or ts
        cl = clefs[0] if clefs else cl
        plan.append((m, ts, cl))
    for m, t, c in plan:
        if t is None:
            continue
        notes = m.notesAndRests.stream()
        if len(notes) <= 1:
            continue
        durs = []
        for n in list(notes):
            if n.duration.isGrace:
                notes.remove(n)
                continue
            durs.append(n.duration)
        dur_sum = opFrac(opFrac(sum([d.quarterLength for d in durs])))
        bar_ql = t.barDuration.quarterLength
        if dur_sum > bar_ql:
            continue
        offset: Any = 0.0
        if m.paddingLeft != 0.0:
            offset = opFrac(m.paddingLeft)
        elif m.paddingRight != 0.0:
            pass
        elif notes.highestTime < bar_ql:
            offset = bar_ql - notes.highestTime
        beams = t.getBeams(notes, measureStartOffset=offset)
        for i, n in enumerate(notes):
            n.beams = beams[i] if beams[i] is not None else beam.Beams()
    if set_stems:
        _set_stems(part, plan)
    part.streamStatus.beams = True
    return True


def _set_stems(part: Any, plan: list) -> None:
    """makeNotation.setStemDirectionForBeamGroups with the clef of each group's first measure."""
    from music21.stream.makeNotation import iterateBeamGroups

    clef_of = {id(n): c for m, _t, c in plan for n in m.notes}
    for group in iterateBeamGroups(part, skipNoBeams=True, recurse=True):
        c = clef_of.get(id(group[0]))
        if c is None:
            continue
        directions = {n.stemDirection for n in group if n.stemDirection in ("up", "down", "unspecified")}
        consistent = "unspecified" not in directions and len(directions) < 2
        pitches = [p for n in group for p in n.pitches]
        if not pitches:
            continue
        direction = c.getStemDirectionForPitches(pitches)
        for n in group:
            if n.stemDirection in ("up", "down") and consistent:
                continue
            if n.stemDirection in ("up", "down", "unspecified"):
                n.stemDirection = direction


@contextlib.contextmanager
def fast_beams() -> Iterator[None]:
    """Within this block, music21's ABC reader on this thread beams through `_beam_part`."""
    global _ORIGINAL
    from music21.stream import makeNotation

    with _PATCH_LOCK:
        if _ORIGINAL is None:
            _ORIGINAL = makeNotation.makeBeams
            makeNotation.makeBeams = _fast_make_beams  # other threads' calls still reach the original
    _LOCAL.active = True
    try:
        yield
    finally:
        _LOCAL.active = False
