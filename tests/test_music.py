"""The music generator: tokeniser round trip, training, seeds, infill, continuation, files, bad input."""
from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path

import pytest

from generators.base import InvalidInput, Progress, Rng
from generators.music import MusicComposer, MusicParams
from generators.music_lib import codec
from generators.music_lib import vocab as V

SIMPLE_ABC = """X:1
T:Test jig
M:6/8
L:1/8
K:G
D|GAG GBd|edB dBG|FAF DEF|GBA G2:|
"""


@pytest.fixture(scope="module")
def gen():
    import torch

    torch.set_num_threads(1)
    g = MusicComposer.debug()
    g.load(torch.device("cpu"))
    return g


def run(g, seed=123, **kw):
    return g.generate(MusicParams(**kw), rng=Rng(seed), progress=Progress.none())


def out(result, suffix, i=0):
    return [o for o in result.outputs if o.suffix == suffix][i]


# --- tokeniser ----------------------------------------------------------------------------------
def _corpus_tunes(n_per: int):
    from training.music import data

    root = data.corpus_root()
    files = [root / "oneills1850" / "0001-0050.abc", root / "essenFolksong" / "altdeu10.abc",
             root / "airdsAirs" / "book1.abc"]
    texts = [t for f in files for _, t in list(data.iter_abc_tunes(f))[:n_per]]
    texts += [p.read_text() for p in sorted((root / "ryansMammoth").glob("*.abc"))[:n_per]]
    return texts


def test_tokeniser_round_trip_on_corpus_tunes():
    """ABC -> music21 -> tokens -> our ABC -> music21: same meter, key, bars, pitches, durations."""
    from music21 import converter

    checked = 0
    for text in _corpus_tunes(6):
        try:
            tune = codec.score_to_tune(converter.parse(text, format="abc"))
            body = codec.tune_to_tokens(tune)
        except ValueError:
            continue  # outside the vocabulary (counted by the data pipeline), not a round-trip case
        back = codec.tokens_to_tune(body, tune.meter, tune.tonic, tune.mode)
        again = codec.score_to_tune(converter.parse(codec.tune_to_abc(back), format="abc"))
        assert (again.meter, again.tonic, again.mode) == (tune.meter, tune.tonic, tune.mode)
        assert again.measures == tune.measures
        assert codec.tune_to_tokens(again) == body
        checked += 1
    assert checked >= 18


def test_bach_chorale_melody_is_the_soprano_line_in_its_estimated_key():
    """The `bach` style: a chorale's Soprano part (bwv1.6 opens with horn and oboe parts), with
    tonic and mode estimated from all four voices, tokenised like a folk tune."""
    from music21 import converter, corpus

    from training.music import data

    key, tune, why = data.parse_one(("bach/bwv1.6.mxl/0", str(corpus.getWork("bwv1.6")), None))
    assert tune is not None, why
    score = converter.parse(corpus.getWork("bwv1.6"))
    soprano = next(p for p in score.parts if p.partName == "Soprano")
    first = next(iter(soprano.recurse().notes))
    assert tune["measures"][0][0][0] == first.pitch.midi
    assert (tune["meter"], tune["tonic"], tune["mode"]) == ("4/4", "F", "major")
    assert codec.tune_to_tokens(codec.Tune.from_json(tune))
    assert "bach" in V.STYLES and data.split_of(key) in data.SPLITS


def test_key_signatures_and_spelling():
    assert codec.key_signature("D", "major") == {**{l: 0 for l in "CDEFGAB"}, "F": 1, "C": 1}
    assert codec.key_signature("D", "dorian") == {l: 0 for l in "CDEFGAB"}
    assert codec.key_signature("A", "dorian")["F"] == 1 and codec.key_signature("A", "mixolydian")["G"] == 0
    assert codec.key_signature("G", "minor")["B"] == -1 and codec.key_signature("G", "minor")["E"] == -1
    assert codec.spell(66, codec.key_signature("D", "major")) == ("F", 1, 4)
    assert codec.spell(70, codec.key_signature("F", "major")) == ("B", -1, 4)


def test_style_mixture_parsing():
    assert V.parse_style("oneill") == {"oneill": 1.0}
    assert V.parse_style("oneill:3, essen:1") == {"oneill": 0.75, "essen": 0.25}
    for bad in ("", "jazz", "oneill:-1", "oneill:x", "oneill:nan"):
        with pytest.raises(ValueError):
            V.parse_style(bad)


# --- training ---------------------------------------------------------------------------------
def _toy_rows(n: int = 12):
    """Token rows of simple programmatic tunes (scales and arpeggios in 6/8): no parsing needed."""
    import random

    rnd = random.Random(0)
    rows = []
    for _ in range(n):
        measures = []
        for _ in range(8):
            root = rnd.choice([62, 64, 66, 67, 69])
            step = rnd.choice([1, 2])
            measures.append([(root + step * k, Fraction(1, 2)) for k in range(5)] + [(root, Fraction(1, 2))])
        tune = codec.Tune("6/8", "D", "major", measures)
        toks = [V.BOS, *codec.tune_to_tokens(tune), V.EOS]
        rows.append((V.encode(toks), list(V.METERS).index("6/8"), V.MODES.index("major"), 0, V.positions(toks)))
    return rows


def test_tiny_model_trains_and_loss_falls():
    import torch
    from training.music import train

    torch.set_num_threads(1)
    rows = _toy_rows()
    splits = {"train": rows, "valid": rows[:3], "test": rows[:3]}
    s = train.Settings(max_steps=30, batch=4, seq=48, eval_every=10, minutes=2, max_len=128)
    for kind in ("lstm", "transformer"):
        model, info = train.train_one(kind, splits, s, log=lambda *_: None,
                                      hyper={"d_model": 32, "n_layers": 1, "n_heads": 2, "lr": 1e-2})
        first, last = info["history"][0]["valid_nll"], info["history"][-1]["valid_nll"]
        assert last < first, info["history"]
        assert last < first - 0.5 and last < torch.log(torch.tensor(float(V.VOCAB_SIZE))).item() - 1.0


# --- generation -------------------------------------------------------------------------------
def test_same_seed_same_bytes_and_other_seed_differs(gen):
    a = run(gen, seed=7, bars=4, audio=False, score=False)
    b = run(gen, seed=7, bars=4, audio=False, score=False)
    c = run(gen, seed=8, bars=4, audio=False, score=False)
    assert out(a, ".mid").data == out(b, ".mid").data and a.data["abc"] == b.data["abc"]
    assert a.data["abc"] != c.data["abc"]


@pytest.mark.parametrize("meter", ["6/8", "3/4", "2/2", "9/8"])
def test_every_bar_has_the_meters_length(gen, meter):
    from music21 import converter

    r = run(gen, meter=meter, bars=6, key="Bb", scale="dorian", audio=False, score=False)
    tune = codec.score_to_tune(converter.parse(r.data["abc"][0], format="abc"))
    assert tune.meter == meter and len(tune.measures) >= 6  # at least the bars asked, to a part's end
    # whole bars, or a pickup closed by its complement at each part's end (V.bars_in_meter)
    assert V.bars_in_meter(codec.tune_to_tokens(tune), V.METERS[meter])


def test_continuation_starts_with_the_primer(gen):
    r = run(gen, action="continue", primer_abc=SIMPLE_ABC, bars=4, audio=False, score=False)
    primer_bars = codec.abc_bar_texts(codec.tune_to_abc(codec.parse_abc(SIMPLE_ABC)))
    got = codec.abc_bar_texts(r.data["abc"][0])
    assert got[:5] == primer_bars[:5]
    # the primer closes with the creator's repeat (its last 2.5 beats complete the pickup): it is
    # kept, and at least 4 new bars follow
    assert len(got) >= len(primer_bars) + 4
    assert V.REPEAT_END in codec.parse_abc(r.data["abc"][0]).marks(4)
    assert r.data["key"] == "G major" and r.data["meter"] == "6/8"


def test_continuation_finishes_a_half_bar(gen):
    r = run(gen, action="continue", primer_abc="X:1\nM:4/4\nL:1/8\nK:D\nDEFG ABcd|e2f2\n", bars=2,
            audio=False, score=False)
    tune = codec.parse_abc(r.data["abc"][0])
    assert len(tune.measures) >= 4 and all(sum(q for _, q in m) == 4 for m in tune.measures)
    assert tune.measures[1][:2] == [(76, 1), (78, 1)]


def test_infill_keeps_unmasked_bars_byte_identical(gen):
    piece = run(gen, seed=3, bars=8, audio=False, score=False).data["abc"][0]
    r = run(gen, seed=4, action="infill", primer_abc=piece, infill_bars="3-4, 7", audio=False, score=False,
            candidates=2)
    before = codec.abc_bar_texts(piece)
    for abc in r.data["abc"]:
        after = codec.abc_bar_texts(abc)
        assert len(after) == len(before) >= 8
        for i in [i for i in range(len(before)) if i not in (2, 3, 6)]:
            assert after[i] == before[i]
    assert r.data["infilled_bars"] == [3, 4, 7]
    assert any(codec.abc_bar_texts(a)[2:4] != before[2:4] for a in r.data["abc"])


def test_outputs_open_in_their_libraries(gen, tmp_path):
    import pretty_midi
    from music21 import converter
    from PIL import Image

    r = run(gen, bars=4, instrument=40, tempo=100, candidates=2)
    assert sorted({o.suffix for o in r.outputs}) == [".abc", ".mid", ".musicxml", ".png", ".svg", ".wav"]
    assert len(r.outputs) == 12 and len(r.data["abc"]) == 2
    mid = tmp_path / "a.mid"
    mid.write_bytes(out(r, ".mid").data)
    pm = pretty_midi.PrettyMIDI(str(mid))
    assert pm.instruments[0].program == 40 and len(pm.instruments[0].notes) > 0
    assert pm.time_signature_changes[0].numerator == 6
    xml = tmp_path / "a.musicxml"
    xml.write_text(out(r, ".musicxml").data)
    score = converter.parse(str(xml))
    assert len(score.parts[0].getElementsByClass("Measure")) == len(codec.parse_abc(out(r, ".abc").data).measures) >= 4
    assert codec.parse_abc(out(r, ".abc").data).meter == "6/8"
    with wave.open(io.BytesIO(out(r, ".wav").data)) as w:
        assert w.getframerate() == 22050 and w.getnframes() > 22050 * 4 * 1.8 * 0.9
    assert out(r, ".svg").data.lstrip().startswith(("<svg", "<?xml")) and "</svg>" in out(r, ".svg").data
    assert isinstance(out(r, ".png").data, Image.Image)


def test_midi_primer_is_read(gen, tmp_path):
    from generators.music_lib import render

    tune = codec.parse_abc("X:1\nM:3/4\nL:1/8\nK:G\nG2 AB c2|d4 B2|c2 BA G2|A6|\n")
    mid = tmp_path / "p.mid"
    mid.write_bytes(render.midi_bytes(tune, 100, 0))
    c = run(gen, action="continue", primer_midi=str(mid), bars=2, audio=False, score=False)
    assert c.data["source_bars"] == 4 and c.data["meter"] == "3/4"
    got = codec.parse_abc(c.data["abc"][0])
    assert got.measures[:4] == tune.measures and len(got.measures) >= 6


def test_loads_a_model_folder_written_by_training(tmp_path):
    import torch
    from generators.base import GeneratorUnavailable
    from generators.music_lib.model import ModelConfig, build
    from training.music.train import save

    cfg = ModelConfig(kind="transformer", vocab=V.VOCAB_SIZE, n_meters=len(V.METERS), n_modes=len(V.MODES),
                      n_styles=len(V.STYLES), d_model=16, n_layers=1, n_heads=2, max_len=32)
    model = build(cfg)
    with torch.no_grad():  # untrained: keep its notes within an octave so a register fits them
        for i in V.PITCH_IDS:
            model.head.bias[i] -= 0 if 0 <= V.pitch_of(V.TOKENS[i]) <= 12 else 8.0
    save(model, {"config": cfg.to_json()}, tmp_path / "tiny")
    g = MusicComposer(model=str(tmp_path / "tiny"))
    assert g.estimate_bytes() > 0
    g.load(torch.device("cpu"))
    assert len(g.weights_sha256) == 64
    r = run(g, bars=5, meter="3/4", audio=False, score=False, style="ryan:1, essen:1")
    assert len(codec.parse_abc(r.data["abc"][0]).measures) >= 5  # > 32 tokens: the window slides
    assert r.data["style_weights"] == {"ryan": 0.5, "essen": 0.5}
    with pytest.raises(GeneratorUnavailable):
        MusicComposer(model=str(tmp_path / "missing.safetensors")).load(torch.device("cpu"))


# --- bad input: InvalidInput before any model work ----------------------------------------------
class _NoModel:
    def __getattr__(self, name):
        raise AssertionError("the model was used before the input was checked")


@pytest.fixture
def guarded():
    g = MusicComposer.debug()
    g._model = _NoModel()
    return g


def _midi_file(tmp_path: Path, name: str, *, type_: int = 1, ticks_gap: int = 0, notes: int = 4) -> str:
    import mido

    mid = mido.MidiFile(type=type_)
    for _ in range(2 if type_ == 2 else 1):
        tr = mido.MidiTrack()
        for i in range(notes):
            tr.append(mido.Message("note_on", note=60 + i % 12, velocity=80, time=ticks_gap if i == notes - 1 else 0))
            tr.append(mido.Message("note_off", note=60 + i % 12, velocity=0, time=480))
        mid.tracks.append(tr)
    path = tmp_path / name
    mid.save(str(path))
    return str(path)


@pytest.mark.parametrize("case", ["garbage_abc", "no_notes_abc", "two_tunes", "five_four", "seven_eight",
                                  "corrupt_midi", "huge_midi", "type2_midi", "hours_midi", "missing_midi",
                                  "both_primers", "no_primer", "bad_bars", "bars_outside", "compose_with_primer",
                                  "bad_style", "bad_temperature"])
def test_bad_input_is_refused_before_model_work(guarded, tmp_path, case):
    kw: dict = {}
    if case == "garbage_abc":
        kw = dict(action="continue", primer_abc="this is not music at all")
    elif case == "no_notes_abc":
        kw = dict(action="continue", primer_abc="X:1\nM:4/4\nK:C\n")
    elif case == "two_tunes":
        kw = dict(action="continue", primer_abc=SIMPLE_ABC + "\n" + SIMPLE_ABC.replace("X:1", "X:2"))
    elif case == "five_four":
        kw = dict(action="continue", primer_abc="X:1\nM:5/4\nL:1/4\nK:C\nCDEFG|ABcde|\n")
    elif case == "seven_eight":
        kw = dict(action="infill", infill_bars="1", primer_abc="X:1\nM:7/8\nL:1/8\nK:C\nCDEFGAB|cdefgab|\n")
    elif case == "corrupt_midi":
        p = tmp_path / "c.mid"
        p.write_bytes(b"MThd\x00\x00\x00\x06garbage" + bytes(range(200)))
        kw = dict(action="continue", primer_midi=str(p))
    elif case == "huge_midi":
        p = tmp_path / "h.mid"
        p.write_bytes(b"MThd" + b"\x00" * (2 << 20))
        kw = dict(action="continue", primer_midi=str(p))
    elif case == "type2_midi":
        kw = dict(action="continue", primer_midi=_midi_file(tmp_path, "t2.mid", type_=2))
    elif case == "hours_midi":
        kw = dict(action="continue", primer_midi=_midi_file(tmp_path, "long.mid", ticks_gap=480 * 2 * 60 * 60 * 2))
    elif case == "missing_midi":
        kw = dict(action="continue", primer_midi=str(tmp_path / "nope.mid"))
    elif case == "both_primers":
        kw = dict(action="continue", primer_abc=SIMPLE_ABC, primer_midi=_midi_file(tmp_path, "b.mid"))
    elif case == "no_primer":
        kw = dict(action="infill", infill_bars="1")
    elif case == "bad_bars":
        kw = dict(action="infill", primer_abc=SIMPLE_ABC, infill_bars="two")
    elif case == "bars_outside":
        kw = dict(action="infill", primer_abc=SIMPLE_ABC, infill_bars="3-40")
    elif case == "compose_with_primer":
        kw = dict(primer_abc=SIMPLE_ABC)
    elif case == "bad_style":
        kw = dict(style="oneill:1, polka:2")
    elif case == "bad_temperature":
        with pytest.raises(InvalidInput):
            MusicParams.from_dict({"temperature": 9})
        return
    with pytest.raises(InvalidInput) as err:
        run(guarded, **kw)
    assert len(str(err.value)) > 15


@pytest.mark.real
@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_embedded_models_compose_a_clean_tune(model):
    import torch
    from music21 import converter

    g = MusicComposer(model=model)
    g.load(torch.device("cpu"))
    assert g.weights_sha256 and len(g.weights_sha256) == 64
    r = run(g, bars=8, audio=False, score=False, key="G", scale="major", meter="6/8", model=model)
    tune = codec.score_to_tune(converter.parse(r.data["abc"][0], format="abc"))
    assert len(tune.measures) >= 8 and V.bars_in_meter(codec.tune_to_tokens(tune), Fraction(3))
    assert tune.measures[-1][-1][0] % 12 == 7  # ends on G


def test_end_on_tonic_redraws_the_last_bar_never_squeezes_it(gen):
    """A tune whose last bar does not end on a held tonic gets that bar redrawn by the model;
    the other bars stay, and no duration is shortened to make room."""
    import torch

    from generators.music_lib import compose

    cond = compose.conditioning(gen._model, "2/4", "minor", V.style_vector({"oneill": 1.0}))
    redrawn = 0
    for seed in range(12):  # the untrained debug model finds a tonic ending in 64 draws for about half
        g = torch.Generator().manual_seed(seed)
        body = compose.compose(gen._model, cond, "2/4", 4, 1, temperature=1.0, top_k=0, gen=g,
                               min_dur=Fraction(1, 4), drafts=1)[0]
        new, did = compose.end_on_tonic(gen._model, cond, body, "2/4", temperature=1.0, top_k=0, gen=g,
                                        min_dur=Fraction(1, 4))
        units, new_units = V.units_of(body), V.units_of(new)
        assert new_units[:-1] == units[:-1] and len(new_units) == len(units)
        assert new_units[-1][-1] == units[-1][-1]  # same bar line
        assert all(V.DUR_OF_TOKEN[t] >= Fraction(1, 4) for t in new if t in V.DUR_OF_TOKEN)
        assert compose.ends_well(new, "2/4") or not did
        if did:
            redrawn += 1
            assert not compose.ends_well(body, "2/4") and new != body
    assert redrawn >= 4
