"""The repeat measures the music benchmark reports side by side (training.music.metrics): written
vs played, any 4-bar window vs windows aligned at bars 1, 5, 9..., exact bars vs pitches only."""
from __future__ import annotations

from fractions import Fraction

from generators.music_lib import codec
from training.music import metrics

Q = Fraction(1)


def bar(*pitches: int, q: Fraction = Q) -> list[tuple[int | None, Fraction]]:
    return [(p, q) for p in pitches]


def tune(measures, form=()) -> codec.Tune:
    return codec.Tune("4/4", "C", "major", list(measures), form=list(form) or [""] * len(measures))


# an A part of four distinct bars under a repeat sign, then a B part of four other bars
A = [bar(60, 62, 64, 65), bar(67, 65, 64, 62), bar(60, 64, 67, 72), bar(72, 67, 64, 60)]
B = [bar(69, 67, 65, 64), bar(62, 64, 65, 67), bar(69, 71, 72, 71), bar(72, 72, 72, 72)]


def test_a_repeat_sign_makes_a_played_phrase_repeat_but_not_a_written_one():
    t = tune(A + B, ["|:", "", "", ":|", "", "", "", "||"])
    m = metrics.measure(t)
    assert m["repeated_bar_share"] == 0 and not m["repeated_4bar_phrase"]
    assert m["played_repeated_4bar_phrase"] and m["phrase_played_any_exact"]
    assert m["played_repeated_bar_share"] == 4 / 12
    assert m["phrase_played_aligned_exact"]  # the repeat starts at bar 1: aligned too


def test_aligned_windows_miss_a_phrase_that_comes_back_off_the_grid():
    # the A phrase written out again starting at bar 6 (index 5): any window finds it, the
    # aligned windows (bars 1, 5, 9) do not
    t = tune(A + [B[0]] + A)
    m = metrics.measure(t)
    assert m["phrase_written_any_exact"] and m["repeated_4bar_phrase"]
    assert not m["phrase_written_aligned_exact"]
    assert m["repeated_bar_share"] == 4 / 9


def test_pitch_only_ignores_rhythm_and_exact_does_not():
    dotted = [[(60, Fraction(3, 2)), (62, Fraction(1, 2)), (64, Q), (65, Q)]] + A[1:]
    t = tune(A + B + dotted)
    m = metrics.measure(t)
    assert not m["phrase_written_any_exact"]
    assert m["phrase_written_any_pitch"]
    assert m["bars_written_exact"] == 3 / 12 and m["bars_written_pitch"] == 4 / 12


def test_summary_reports_every_definition():
    rows = [metrics.measure(tune(A + B, ["|:", "", "", ":|", "", "", "", "||"])), metrics.measure(tune(A + B))]
    s = metrics.summarise(rows, ["major", "major"])
    assert set(s["definitions"]["repeated_4bar_phrase_share"]) == set(metrics.PHRASE_VARIANTS)
    assert s["definitions"]["repeated_4bar_phrase_share"]["played_any_exact"] == 0.5
    assert s["definitions"]["repeated_4bar_phrase_share"]["written_any_exact"] == 0.0
    assert s["played_repeated_4bar_phrase_share"] == 0.5
