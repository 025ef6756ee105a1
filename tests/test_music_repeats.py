"""Written repeats (the bar cache, generators/music_lib/bar_cache.py) and the Essen mode labels."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest

from generators.base import Progress, Rng
from generators.music import MusicComposer, MusicParams
from generators.music_lib import bar_cache, codec, decode
from generators.music_lib import vocab as V
from tests.music_fixtures import shipped  # noqa: F401 - a pytest fixture, shared

BAR_A = ["P0", "D1", "P2", "D1", "P4", "D1", "P5", "D1"]
BAR_B = ["P7", "D2", "P4", "D2"]
PICKUP = ["P7", "D1"]


def test_copy_rule_samples_the_reweighted_model_exactly():
    """p'(copy c) = beta p(c) / Z with Z = 1 + (beta - 1) S: copying with (beta - 1) S / Z and
    otherwise drawing from the model gives exactly that."""
    import torch

    logp = torch.log(torch.tensor([0.06, 0.04]))  # S = 0.1
    beta = 10.0
    a = bar_cache.copy_probability(logp, beta)
    z = 1 + (beta - 1) * 0.1
    assert a == pytest.approx(0.9 / z)
    # total chance of c0: forced copy share + the model's own draw when not forced
    assert a * 0.6 + (1 - a) * 0.06 == pytest.approx(beta * 0.06 / z)
    assert bar_cache.copy_probability(logp, 1.0) == 0.0
    # the fit's objective: a copy gains log beta - log Z, a fresh bar loses log Z
    assert bar_cache.log_gain(beta, [True, False], [0.1, 0.1]) == pytest.approx(math.log(beta) - 2 * math.log(z))


def test_candidates_are_earlier_bars_the_grammar_allows_here():
    r = decode.RowState(Fraction(4), min_bars=8, max_bars=12, pitches=(0, 12))
    r.replay(BAR_A + ["|"] + BAR_B + ["|"] + ["P14", "D4", "|"])
    assert bar_cache.candidates(r) == [tuple(BAR_A), tuple(BAR_B)]  # P14 is outside the range
    r.push("P0")  # inside a bar: no copy starts here
    assert bar_cache.candidates(r) == []
    # a tune with a pickup: after a part closes on the complement, only the pickup's length fits
    p = decode.RowState(Fraction(4), min_bars=8, max_bars=12)
    p.replay(PICKUP + ["|"] + BAR_A + ["|"] + ["P4", "D3", "||"])
    assert p.need_pickup and bar_cache.candidates(p) == [tuple(PICKUP)]
    # the cap: once this share of the tune's bars repeat an earlier bar, no copy is offered
    q = decode.RowState(Fraction(4), min_bars=8, max_bars=12)
    q.replay(BAR_A + ["|"] + BAR_A + ["|"])
    assert (q.bars_written, q.bars_repeated) == (2, 1)
    assert bar_cache.candidates(q, cap=0.6) == [tuple(BAR_A)] and bar_cache.candidates(q, cap=0.5) == []
    assert 0.3 < bar_cache.max_share() < 0.6  # measured on the training corpus (bar_cache.json)


def _written_repeats(g, seeds=range(4)) -> float:
    from training.music import metrics

    shares = []
    for s in seeds:
        p = MusicParams(meter="6/8", key="D", scale="major", bars=16, audio=False, score=False)
        r = g.generate(p, rng=Rng(300 + s), progress=Progress.none())
        shares.append(metrics.repeated_bar_share(codec.parse_abc(r.data["abc"][0])))
    return sum(shares) / len(shares)


@pytest.mark.real
def test_written_repeats_come_from_the_trained_model(shipped):
    """The shipped weights have a fitted beta and, with it, write earlier bars again (real O'Neill
    tunes: about a quarter of their bars); untrained weights of the same shape under the same
    beta give copies almost no probability, so they write few: the copies are the model's choice."""
    import torch

    from generators.music_lib.model import build

    assert shipped.copy_boost > 1.5
    assert _written_repeats(shipped) >= 0.15  # 0.26 when written
    untrained = MusicComposer(model="lstm")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        untrained._model = build(shipped._model.cfg).eval()
    untrained.copy_boost = shipped.copy_boost
    assert _written_repeats(untrained) < 0.1  # 0.03 when written (0.015 without the cache)


PRIMER = """X:1
T:Primer
M:6/8
L:1/8
K:D
|: A | dfa agf | ecA ABc | dfa agf | edc d2 :|
"""


@pytest.mark.real
def test_a_continued_tune_can_bring_back_the_primers_bars(shipped):
    """Continuing an A part, the model may write the primer's own bars again (issue #16: a
    continued A part may repeat): over three seeds, some continuation holds a primer bar."""
    primer = codec.parse_abc(PRIMER)
    own = {tuple(m) for m in primer.measures}
    back = 0
    for s in range(3):
        p = MusicParams(action="continue", primer_abc=PRIMER, bars=8, audio=False, score=False)
        r = shipped.generate(p, rng=Rng(400 + s), progress=Progress.none())
        tune = codec.parse_abc(r.data["abc"][0])
        assert [tuple(m) for m in tune.measures[:len(primer.measures)]] == [tuple(m) for m in primer.measures]
        back += any(tuple(m) in own for m in tune.measures[len(primer.measures):])
    assert back >= 1


def test_essen_modes_come_from_the_notes():
    """Essen's ABC writes `K:` as the tonic only, so music21 reads every tune as major; the notes
    over that tonic decide: Ritter Ulrich (K: E, every F, G, C and D natural written out) is minor."""
    from training.music import data

    f = data.corpus_root() / "essenFolksong" / "altdeu10.abc"
    text = next(t for i, t in data.iter_abc_tunes(f) if i == 6)
    assert "Ritter Ulrich" in text and "K: E" in text
    _key, tune, _why = data.parse_one(("essen/altdeu10.abc/6", str(f), text))
    assert tune["mode"] == "major"  # music21's reading
    row = dict(tune, style="essen")
    assert data.relabel([row])[0]["mode"] == "minor" and row["tonic"] == "E"

    def tune_of(degrees: list[int]) -> dict:
        return {"tonic": "D", "measures": [[[62 + d, "1"] for d in degrees]]}

    assert data.essen_mode(tune_of([0, 2, 4, 5, 7, 11, 0])) == "major"
    assert data.essen_mode(tune_of([0, 2, 4, 5, 7, 10, 0])) == "mixolydian"
    assert data.essen_mode(tune_of([0, 2, 3, 5, 7, 9, 0])) == "dorian"
    assert data.essen_mode(tune_of([0, 2, 3, 5, 7, 8, 11, 0])) == "minor"
