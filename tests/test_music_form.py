"""Music form: repeat signs, endings and part ends through ABC, music21, tokens and the decoder;
register; ABC that abc2midi and abcm2ps read without a warning."""
from __future__ import annotations

import re
import shutil
import subprocess
from fractions import Fraction

import pytest

from generators.base import InvalidInput, Progress, Rng
from generators.music import MusicComposer, MusicParams
from generators.music_lib import codec, compose, decode, register
from generators.music_lib import vocab as V

REEL = """X:1
T:Form test
M:4/4
L:1/8
K:D
|: A2 | d2 d2 f2 f2 | a4 a4 | g2 g2 e2 e2 |1 d6 A2 :|2 d8 ||
f4 f4 | a8 | b8 | a8 :|
"""


from tests.test_music import gen  # noqa: E402,F401  (the debug composer, loaded once per module)


def test_form_marks_survive_abc_music21_and_tokens():
    tune = codec.parse_abc(REEL)
    body = codec.tune_to_tokens(tune)
    for mark in (V.REPEAT_START, V.REPEAT_END, V.ENDING1, V.ENDING2):
        assert mark in body, mark
    # a part end that no repeat follows stays a ||
    two_parts = codec.parse_abc(REEL.replace(":|2 d8 ||", "|2 d8 ||").replace("|1 d6 A2", "d6 A2")
                                .replace("a8 :|", "a8 |]"))
    assert V.PART_END in codec.tune_to_tokens(two_parts)[:-1]
    # |: opens the tune, the first ending closes with :|, the second follows it at once
    assert body[0] == V.REPEAT_START
    i = body.index(V.ENDING2)
    assert body[i - 1] == V.REPEAT_END and body[body.index(V.ENDING1):i].count(V.REPEAT_END) == 1
    back = codec.tokens_to_tune(body, tune.meter, tune.tonic, tune.mode)
    assert back.measures == tune.measures and form_of(back) == form_of(tune)
    again = codec.parse_abc(codec.tune_to_abc(back))  # our ABC, read by music21
    assert codec.tune_to_tokens(again) == body
    # the B part has no |: in the source: the writer adds one (abc2midi repeats from the last |:)
    assert V.REPEAT_START in again.marks(6)


def test_musicxml_carries_repeats_and_endings():
    from generators.music_lib import render

    xml = render.musicxml_text(codec.tune_to_abc(codec.parse_abc(REEL)))
    assert xml.count('<repeat direction="backward"') == 2 and '<repeat direction="forward"' in xml
    assert '<ending number="1"' in xml and '<ending number="2"' in xml


def test_musicxml_keeps_triplet_brackets_and_ties_long_notes():
    """The writer skips music21's second notation pass (render.musicxml_text); triplets still get
    their brackets, and a note no single MusicXML note can carry (5/8) is still tied."""
    from music21 import converter

    from generators.music_lib import render

    xml = render.musicxml_text("X:1\nT:t\nM:2/4\nL:1/8\nK:D\n(3ABc d2 | e2 f2 | g4 |]\n")
    assert len(re.findall(r'<tuplet[^>]*type="start"', xml)) == 1
    assert len(re.findall(r'<tuplet[^>]*type="stop"', xml)) == 1
    notes = converter.parse(xml, format="musicxml").flatten().notes
    assert [n.nameWithOctave for n in notes][:4] == ["A4", "B4", "C#5", "D5"]
    xml = render.musicxml_text("X:1\nT:t\nM:4/4\nL:1/8\nK:D\nA8 | f5 g3 |]\n")
    assert '<tie type="start"' in xml


def test_corpus_tunes_keep_their_repeats_through_our_abc():
    from music21 import converter

    from training.music import data

    checked = 0
    path = data.corpus_root() / "oneills1850" / "0001-0050.abc"
    for _i, text in data.iter_abc_tunes(path):
        if ":|" not in text:
            continue
        try:
            tune = codec.score_to_tune(converter.parse(text, format="abc"))
            body = codec.tune_to_tokens(tune)
        except ValueError:
            continue
        if V.REPEAT_END not in body:
            continue  # music21 read no repeat (a ':|' in a text field, or bars it could not build)
        assert codec.tune_to_tokens(codec.parse_abc(codec.tune_to_abc(tune))) == body
        checked += 1
    assert checked >= 3


def test_played_order_takes_repeats_and_endings():
    tune = codec.parse_abc(REEL)
    # pickup, A part, first ending, back to the pickup, second ending; B part twice
    assert codec.played_order(tune) == [0, 1, 2, 3, 4, 0, 1, 2, 3, 5, 6, 7, 8, 9, 6, 7, 8, 9]


@pytest.mark.skipif(not (shutil.which("abc2midi") and shutil.which("abcm2ps")),
                    reason="needs Debian's abcmidi and abcm2ps")
def test_written_abc_passes_abc2midi_and_abcm2ps(tmp_path):
    abc = codec.tune_to_abc(codec.parse_abc(REEL.replace("|: A2 | ", "| ").replace("|1 d6 A2", "|1 d8")))
    assert abc_tool_complaints(abc, tmp_path) == []


def abc_tool_complaints(abc: str, tmp_path) -> list[str]:
    """Warnings and errors abc2midi and abcm2ps print for this ABC."""
    src = tmp_path / "t.abc"
    src.write_text(abc)
    a = subprocess.run(["abc2midi", str(src), "-o", str(tmp_path / "t.mid")], capture_output=True, text=True)
    b = subprocess.run(["abcm2ps", str(src), "-O", str(tmp_path / "t.ps")], capture_output=True, text=True)
    assert a.returncode == 0 and b.returncode == 0, (a.stderr, b.stderr)
    lines = (a.stdout + a.stderr + b.stdout + b.stderr).splitlines()
    return [l for l in lines if "warning" in l.lower() or "error" in l.lower()]


def test_positions_count_bars_of_a_part_and_onsets():
    toks = [V.BOS, "P0", "D1", "P2", "D1/2", V.BAR, "P4", "D3", V.PART_END, V.REPEAT_START, "P0", "D1"]
    pos = V.positions(toks)
    bar = [p // V.POS_STEPS for p in pos]
    onset = [p % V.POS_STEPS for p in pos]
    assert onset[2] == 12 and onset[4] == 18 and onset[5] == 0  # after D1, after D1/2, after |
    assert bar[5] == 1 and bar[8] == 0 and bar[9] == 0  # second bar; a part ends; a repeat opens


def test_decoder_grammar_form_and_length(gen):
    import torch

    cond = compose.conditioning(gen._model, "6/8", "major", V.style_vector({"oneill": 1.0}))
    g = torch.Generator().manual_seed(0)
    bodies = compose.compose(gen._model, cond, "6/8", 8, 6, temperature=1.0, top_k=0, gen=g,
                             min_dur=Fraction(1, 4))
    for body in bodies:
        units = V.units_of(body)
        assert units[-1][-1] in (V.PART_END, V.REPEAT_END)  # ends at the end of a part
        assert all(u[-1] in V.CLOSES for u in units)
        assert V.bars_in_meter(body, Fraction(3))  # whole bars, or a pickup and its complements
        assert all(V.DUR_OF_TOKEN[t] >= Fraction(1, 4) for t in body if t in V.DUR_OF_TOKEN)
        for i, t in enumerate(body):
            if t == V.ENDING2:
                assert body[i - 1] == V.REPEAT_END
        # the tune ends at the first part end once 8 bars are written (a pickup and its
        # complement count as one bar), and never after max_bars_for(8)
        r = decode.RowState(Fraction(3))
        ends = []
        for t in body:
            r.push(t)
            if t in (V.PART_END, V.REPEAT_END) and not r.ending_open and not r.need_ending2:
                ends.append(r.counted)
        assert 8 <= ends[-1] <= compose.max_bars_for(8) and [e for e in ends if e >= 8] == [ends[-1]]


def test_pickup_grammar_as_the_corpus_writes_it():
    """A first bar of at most half a bar is a pickup; the tune's parts then close on its
    complement only, and each next part opens with a pickup of the same length; the length
    control counts a pickup and its complement as one bar and forces the close on the complement."""
    ids = lambda *toks: {V.TOKEN_ID[t] for t in toks}  # noqa: E731
    def at(*toks: str) -> decode.RowState:
        r = decode.RowState(Fraction(3), min_bars=2, max_bars=3)
        r.replay(list(toks))
        return r

    r = at("P0", "D1")
    assert ids(V.BAR) <= set(r.allowed())  # a pickup of a quarter (6/8: at most 3/2)
    r = at("P0", "D2")
    assert not ids(V.BAR) & set(r.allowed())  # more than half a bar is no pickup
    r = at("P0", "D1/2", V.BAR, "P0", "D3", V.BAR, "P0", "D2", "P2", "D1/2")
    assert ids(V.PART_END, V.REPEAT_END) <= set(r.allowed())  # 5/2: the complement of 1/2
    assert r.counted == 1 and r.pickup == Fraction(1, 2)
    r = at("P0", "D1/2", V.BAR, "P0", "D3")
    assert set(r.allowed()) == ids(V.BAR)  # a whole bar never closes a part of a pickup tune
    r.push(V.BAR)
    assert not ids(V.REPEAT_START, V.ENDING1) & set(r.allowed())  # a repeat opens only with a part
    r = at("P0", "D1/2", V.BAR, "P0", "D2", "P2", "D1/2", V.PART_END)
    assert r.need_pickup and r.target == Fraction(1, 2) and not ids(V.ENDING1) & set(r.allowed())
    assert ids(V.REPEAT_START) <= set(r.allowed())
    r = at("P0", "D1/2", V.BAR, "P0", "D3", V.BAR, "P0", "D3", V.BAR)
    assert r.target == Fraction(5, 2)  # the third counted bar reaches max_bars: close on the complement
    r = at("P0", "D1/2", V.BAR, "P0", "D3", V.BAR, "P0", "D3", V.BAR, "P0", "D5/2")
    assert set(r.allowed()) == ids(V.PART_END, V.REPEAT_END)
    r.push(V.PART_END)
    assert r.forced and r.final


def test_bars_in_meter_accepts_pickups_and_refuses_broken_bars():
    full, half = ["P0", "D3"], ["P0", "D3/2"]
    pick, comp = ["P0", "D1/2"], ["P0", "D5/2"]
    ok = [*pick, V.BAR, *full, V.BAR, *comp, V.PART_END, *pick, V.BAR, *full, V.BAR, *comp, V.PART_END]
    assert V.bars_in_meter(ok, Fraction(3)) and V.bars_in_meter([*full, V.BAR, *full, V.PART_END], Fraction(3))
    assert not V.bars_in_meter([*full, V.BAR, *half, V.BAR, *full, V.PART_END], Fraction(3))
    assert not V.bars_in_meter([*pick, V.BAR, *full, V.BAR, *comp, V.PART_END, *full, V.PART_END],
                               Fraction(3))  # the next part must open with the pickup again
    assert not V.bars_in_meter([*pick, V.BAR, *full, V.BAR, *half, V.PART_END], Fraction(3))
    # read back from ABC, a `||` before `|:` is a plain bar line: the repeat still ends the part
    assert V.bars_in_meter([*pick, V.BAR, *comp, V.BAR, V.REPEAT_START, *pick, V.BAR, *comp, V.REPEAT_END],
                           Fraction(3))


def test_drafts_the_model_ended_itself_are_preferred():
    rows = [decode.RowState(Fraction(3)) for _ in range(4)]
    rows[0].forced = True
    bodies = [["P0", "D3", V.PART_END], ["P2", "D3", V.PART_END], ["P0", "D3", V.PART_END],
              ["P4", "D3", V.PART_END]]
    # per group of two: the first draft the model closed itself; with prefer_tonic, the first
    # of those that also ends on a held tonic
    assert compose.select(rows, bodies, 2, "6/8", prefer_tonic=False) == [bodies[1], bodies[2]]
    assert compose.select(rows, bodies, 1, "6/8", prefer_tonic=False) == [bodies[1]]
    assert compose.select(rows, bodies, 1, "6/8", prefer_tonic=True) == [bodies[2]]


def test_row_state_refuses_ending_without_first_ending():
    r = decode.RowState(Fraction(3))
    r.replay(["P0", "D3", V.BAR])
    assert V.TOKEN_ID[V.ENDING2] not in r.allowed() and V.TOKEN_ID[V.ENDING1] in r.allowed()
    r.replay(["P0", "D3", V.BAR, V.ENDING1, "P0", "D3", V.REPEAT_END])
    assert r.allowed() == [V.TOKEN_ID[V.ENDING2]]


def test_row_state_closes_an_open_repeat_before_a_new_one_or_a_part_end():
    r = decode.RowState(Fraction(3), max_bars=4)
    r.replay([V.REPEAT_START, "P0", "D3"])
    assert V.TOKEN_ID[V.PART_END] not in r.allowed() and V.TOKEN_ID[V.REPEAT_END] in r.allowed()
    r.replay([V.REPEAT_START, "P0", "D3", V.BAR])
    assert V.TOKEN_ID[V.REPEAT_START] not in r.allowed()
    r.replay([V.REPEAT_START, "P0", "D3", V.BAR, "P0", "D3", V.BAR, "P0", "D3", V.BAR, "P0", "D3"])
    assert r.allowed() == [V.TOKEN_ID[V.REPEAT_END]]  # the last bar allowed must close the repeat


def test_register_picks_the_octave_inside_both_ranges():
    # a tune spanning C4..A5 relative to its tonic, asked for in G
    rel = [0, 4, 7, 12, 19, 21]
    assert register.choose_shift(rel, 7, 55, 88, 72) == -5  # G3..E5: the only octave inside 55-88
    assert register.choose_shift(rel, 7, 62, 96, 80) == 7  # G4..E6 once the low G3 is out of range
    assert register.choose_shift(rel, 7, 60, 70, 65) is None  # 21 semitones never fit in 10
    assert register.INSTRUMENT_RANGE[40] == (55, 103) and register.INSTRUMENT_RANGE[73] == (60, 96)


def test_generated_notes_sit_in_the_style_and_instrument_range(gen):
    for instrument in (40, 73, 109):
        r = gen.generate(MusicParams(bars=4, instrument=instrument, audio=False, score=False, style="oneill"),
                         rng=Rng(instrument), progress=Progress.none())
        lo, hi, _ = register.allowed_range({"oneill": 1.0}, instrument)
        low, high = r.data["range"]["notes"][0]
        assert lo <= low <= high <= hi
        pitches = [p for m in codec.parse_abc(r.data["abc"][0]).measures for p, _ in m if p is not None]
        assert lo <= min(pitches) and max(pitches) <= hi


def test_instrument_outside_the_style_is_refused(gen):
    with pytest.raises(InvalidInput, match="instrument 47"):
        gen.generate(MusicParams(instrument=47, style="bach", audio=False, score=False), rng=Rng(0),
                     progress=Progress.none())


def test_infill_keeps_every_bar_line_and_repeat_sign(gen):
    r = gen.generate(MusicParams(action="infill", primer_abc=REEL, infill_bars="2-3, 8", audio=False, score=False),
                     rng=Rng(5), progress=Progress.none())
    before, after = codec.parse_abc(REEL), codec.parse_abc(r.data["abc"][0])
    assert form_of(after) == form_of(before) and len(after.measures) == len(before.measures)
    for i in (0, 3, 4, 5, 6, 8, 9):
        assert after.measures[i] == before.measures[i]


def test_continue_keeps_the_primers_form(gen):
    r = gen.generate(MusicParams(action="continue", primer_abc=REEL, bars=4, audio=False, score=False),
                     rng=Rng(2), progress=Progress.none())
    got = codec.parse_abc(r.data["abc"][0])
    before = codec.parse_abc(REEL)
    assert got.measures[:10] == before.measures and form_of(got)[:len(form_of(before)) - 1] == form_of(before)[:-1]
    assert len(got.measures) >= 14


def form_of(tune: codec.Tune) -> list[str]:
    """The bar lines and form marks of a tune, as its tokens write them."""
    return [t for t in codec.tune_to_tokens(tune) if t in V.CLOSES or t in V.OPENS]
