"""render.musicxml_text beams through beams.py's pass: the MusicXML must be the bytes music21's
own beaming pass gives (beams, stems, notes, accidentals, bars, repeats), on tunes with pickups,
triplets, repeats and endings, compound and simple meters."""
from __future__ import annotations

import contextlib

import pytest

from generators.music_lib import beams, codec, render

TUNES = {
    "reel with pickup, repeats and endings": """X:1
T:Beams reel
M:4/4
L:1/8
K:D
|: A2 | d2 fd BdAF | G2 BG F2 AF |1 EFGA Bcde | f2 d2 d2 :|2 EFGA B/c/d ed | d6 ||
|: fg | a2 fa gfed | ^c2 Ac dcBA :|
""",
    "jig with triplet and accidentals": """X:2
T:Beams jig
M:6/8
L:1/8
K:Ador
A | e2 e edB | (3cBA G ABc | d2 =f ^fed | c3 A2 :|
""",
    "waltz": """X:3
T:Beams waltz
M:3/4
L:1/8
K:F
C2 | F2 A2 c2 | B/A/G/F/ E2 C2 | F6 |]
""",
}


def _xml(abc: str, ours: bool) -> str:
    saved = beams.fast_beams
    try:
        if not ours:
            beams.fast_beams = contextlib.nullcontext  # music21's own pass (render looks it up per call)
        return render.musicxml_text(abc, 73)
    finally:
        beams.fast_beams = saved


@pytest.mark.parametrize("name", sorted(TUNES))
def test_fast_beams_give_music21s_musicxml(name, monkeypatch):
    abc = TUNES[name]
    handled = []
    real = beams._beam_part
    monkeypatch.setattr(beams, "_beam_part", lambda *a: handled.append(real(*a)) or handled[-1])
    ours, theirs = _xml(abc, True), _xml(abc, False)
    assert handled == [True]  # our pass did beam this tune (not music21's fallback)
    assert "<beam number=\"1\">begin</beam>" in theirs  # the tunes do have beams to compare
    assert ours == theirs


def test_other_threads_and_streams_keep_music21s_pass():
    """Outside fast_beams() music21's makeBeams is its own (the patch is scoped to the parse)."""
    from music21 import converter

    with beams.fast_beams():
        pass
    score = converter.parse(TUNES["waltz"], format="abc")  # outside the block: music21's own pass
    assert any(n.beams.beamsList for n in score.recurse().notes)
    assert codec.parse_abc(TUNES["waltz"]).meter == "3/4"
