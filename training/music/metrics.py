"""Form, ending, register and mode measures of one tune, the same for real and generated tunes.

A tune here is a `codec.Tune` at its real pitches. Bars are compared as written (a part under a
repeat sign is written once), so "repeats an earlier bar" means the writer or the model wrote
the same bar twice; the `played_` numbers expand repeats and endings first, as a player would.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

from generators.music_lib import codec
from generators.music_lib import vocab as V

SIXTEENTH = Fraction(1, 4)
# Each mode's characteristic degree and the degree it replaces (semitones above the tonic):
# mixolydian's flat 7th against the leading tone, dorian's raised 6th against the flat 6th,
# minor's flat 6th against the raised 6th, major's leading tone against the flat 7th.
CHARACTERISTIC = {"mixolydian": (10, 11), "dorian": (9, 8), "minor": (8, 9), "major": (11, 10)}


def _bar_key(bar: list[tuple[int | None, Fraction]], pitch_only: bool = False) -> tuple:
    return tuple(p for p, _q in bar) if pitch_only else tuple(bar)


def played(tune: codec.Tune) -> codec.Tune:
    """The tune as played: repeats and endings written out (codec.played_order)."""
    return codec.Tune(tune.meter, tune.tonic, tune.mode, [tune.measures[i] for i in codec.played_order(tune)])


def repeated_bar_share(tune: codec.Tune, pitch_only: bool = False) -> float:
    seen: set[tuple] = set()
    rep = 0
    for bar in tune.measures:
        k = _bar_key(bar, pitch_only)
        rep += k in seen
        seen.add(k)
    return rep / max(1, len(tune.measures))


def has_repeated_phrase(tune: codec.Tune, n: int = 4, aligned: bool = False, pitch_only: bool = False) -> bool:
    """Some n consecutive bars come back later, not overlapping their first appearance; with
    `aligned`, only phrases starting at bars 1, n+1, 2n+1... are compared (a pickup counts as a bar)."""
    keys = [_bar_key(b, pitch_only) for b in tune.measures]
    first: dict[tuple, int] = {}
    for i in range(0, len(keys) - n + 1, n if aligned else 1):
        k = tuple(keys[i:i + n])
        if k in first and i - first[k] >= n:
            return True
        first.setdefault(k, i)
    return False


# The definitions the benchmark reports side by side (bench_music "phrase_definitions"):
# (written or played) x (any 4-bar window or windows aligned at bars 1, 5, 9...) x (exact bars,
# or pitches only). Which one the real figures came from is worked out in the benchmark.
PHRASE_VARIANTS = {f"{form}_{window}_{match}": (form == "played", window == "aligned", match == "pitch")
                   for form in ("written", "played") for window in ("any", "aligned") for match in ("exact", "pitch")}


def notes(tune: codec.Tune) -> list[tuple[int, Fraction]]:
    return [(p, q) for m in tune.measures for p, q in m if p is not None]


def last_note(tune: codec.Tune) -> tuple[int, Fraction] | None:
    ns = notes(tune)
    return ns[-1] if ns else None


def degree_counts(tune: codec.Tune) -> dict[int, int]:
    t = codec.tonic_pc(tune.tonic)
    out: dict[int, int] = {}
    for p, _q in notes(tune):
        d = (p - t) % 12
        out[d] = out.get(d, 0) + 1
    return out


def measure(tune: codec.Tune, lo: int | None = None, hi: int | None = None) -> dict[str, Any]:
    """The per-tune numbers the benchmark averages; lo/hi: the style's range (MIDI)."""
    ns = notes(tune)
    pitches = [p for p, _ in ns]
    last = last_note(tune)
    marks = [m for i in range(len(tune.measures)) for m in tune.marks(i)]
    char, other = CHARACTERISTIC[tune.mode]
    deg = degree_counts(tune)
    out = {
        "bars": len(tune.measures),
        "repeated_bar_share": repeated_bar_share(tune),
        "repeated_4bar_phrase": has_repeated_phrase(tune),
        "played_repeated_bar_share": repeated_bar_share(played(tune)),
        "played_repeated_4bar_phrase": has_repeated_phrase(played(tune)),
        "ends_on_tonic": last is not None and (last[0] - codec.tonic_pc(tune.tonic)) % 12 == 0,
        "last_note_quarters": float(last[1]) if last else 0.0,
        "last_note_le_64th": last is not None and last[1] <= Fraction(1, 16),
        "notes": len(ns),
        "notes_shorter_than_16th": sum(q < SIXTEENTH for _p, q in ns),
        "range_semitones": (max(pitches) - min(pitches)) if pitches else 0,
        "repeat_signs": sum(m in (V.REPEAT_END,) for m in marks),
        "endings": sum(m in (V.ENDING1, V.ENDING2) for m in marks),
        "characteristic": deg.get(char, 0), "replaced": deg.get(other, 0),
    }
    as_played = played(tune)
    for name, (is_played, aligned, pitch_only) in PHRASE_VARIANTS.items():
        t = as_played if is_played else tune
        out[f"phrase_{name}"] = has_repeated_phrase(t, 4, aligned, pitch_only)
        if not aligned:
            out[f"bars_{name.replace('_any', '')}"] = repeated_bar_share(t, pitch_only)
    if lo is not None and hi is not None:
        out["notes_outside_style_range"] = sum(not lo <= p <= hi for p in pitches)
    return out


def summarise(rows: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Averages over tunes (note shares are pooled over all notes)."""
    n = max(1, len(rows))
    all_notes = max(1, sum(r["notes"] for r in rows))
    out: dict[str, Any] = {
        "tunes": len(rows),
        "repeated_bar_share": round(sum(r["repeated_bar_share"] for r in rows) / n, 4),
        "repeated_4bar_phrase_share": round(sum(r["repeated_4bar_phrase"] for r in rows) / n, 4),
        "played_repeated_bar_share": round(sum(r["played_repeated_bar_share"] for r in rows) / n, 4),
        "played_repeated_4bar_phrase_share": round(sum(r["played_repeated_4bar_phrase"] for r in rows) / n, 4),
        "ends_on_tonic_share": round(sum(r["ends_on_tonic"] for r in rows) / n, 4),
        "last_note_quarters_median": sorted(r["last_note_quarters"] for r in rows)[len(rows) // 2] if rows else 0,
        "last_note_le_64th_tunes": sum(r["last_note_le_64th"] for r in rows),
        "notes_shorter_than_16th_share": round(sum(r["notes_shorter_than_16th"] for r in rows) / all_notes, 4),
        "range_semitones_mean": round(sum(r["range_semitones"] for r in rows) / n, 2),
        "tunes_with_repeat_sign_share": round(sum(r["repeat_signs"] > 0 for r in rows) / n, 4),
        "tunes_with_endings_share": round(sum(r["endings"] > 0 for r in rows) / n, 4),
        "bars_mean": round(sum(r["bars"] for r in rows) / n, 2),
    }
    if rows and "phrase_written_any_exact" in rows[0]:
        out["definitions"] = {
            "repeated_4bar_phrase_share": {name: round(sum(r[f"phrase_{name}"] for r in rows) / n, 4)
                                           for name in PHRASE_VARIANTS},
            "repeated_bar_share": {k[5:]: round(sum(r[k] for r in rows) / n, 4)
                                   for k in rows[0] if k.startswith("bars_")}}
    if rows and "notes_outside_style_range" in rows[0]:
        out["notes_outside_style_range_share"] = round(
            sum(r["notes_outside_style_range"] for r in rows) / all_notes, 4)
    by_mode: dict[str, dict[str, float]] = {}
    for mode in sorted(set(modes)):
        sel = [r for r, m in zip(rows, modes) if m == mode]
        c = sum(r["characteristic"] for r in sel)
        o = sum(r["replaced"] for r in sel)
        by_mode[mode] = {"tunes": len(sel),
                         "tunes_preferring_characteristic": round(
                             sum(r["characteristic"] > r["replaced"] for r in sel) / max(1, len(sel)), 3),
                         "characteristic_note_rate": round(c / max(1, c + o), 3)}
    out["characteristic_degree_by_mode"] = by_mode
    return out
