"""Symbolic music features from a MIDI file (all tracks, drums left out).

Key: Krumhansl-Schmuckler key finding (Krumhansl & Kessler 1982 profiles) on the duration-
weighted pitch-class histogram; the histogram is then rotated to the found tonic so "minor" or
"dorian" look alike in any key. Intervals: histogram of melodic steps between successive onsets.
Also range, register, density (notes per beat), durations, rests and n-gram repetition
(cf. the jSymbolic feature families, McKay & Fujinaga 2006).
"""
from __future__ import annotations

import io
import math
from pathlib import Path

from generators.base import InvalidInput

MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
INTERVAL_BINS = (0, 1, 2, 3, 4, 5, 7, 12)  # |step| upper edges; larger leaps share the last bin
MAX_MIDI_BYTES = 4_000_000


def notes(data: bytes) -> list[tuple[float, float, int]]:
    """(onset beats, duration beats, pitch) of every note, sorted by onset then pitch."""
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise InvalidInput(f"cannot read this MIDI file: {exc}") from None
    tpb = midi.ticks_per_beat or 480
    out: list[tuple[float, float, int]] = []
    for track in midi.tracks:
        tick, open_notes = 0, {}
        for msg in track:
            tick += msg.time
            if msg.type not in ("note_on", "note_off") or msg.channel == 9:
                continue
            key = (msg.channel, msg.note)
            if msg.type == "note_on" and msg.velocity > 0:
                open_notes.setdefault(key, tick)
            elif key in open_notes:
                start = open_notes.pop(key)
                out.append((start / tpb, max(tick - start, 1) / tpb, msg.note))
    return sorted(out)


def _corr(a: list[float], b: tuple[float, ...]) -> float:
    ma, mb = sum(a) / 12, sum(b) / 12
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    den = math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))
    return num / den if den > 0 else 0.0


def key_of(pc: list[float]) -> tuple[int, bool, float, float]:
    """(tonic pitch class, is_minor, best major correlation, best minor correlation)."""
    maj = [_corr(pc[t:] + pc[:t], MAJOR) for t in range(12)]
    mnr = [_corr(pc[t:] + pc[:t], MINOR) for t in range(12)]
    bmaj, bmin = max(range(12), key=maj.__getitem__), max(range(12), key=mnr.__getitem__)
    minor = mnr[bmin] > maj[bmaj]
    return (bmin if minor else bmaj), minor, maj[bmaj], mnr[bmin]


def features(path: Path) -> list[float]:
    if path.stat().st_size > MAX_MIDI_BYTES:
        raise InvalidInput(f"{path.name} is larger than {MAX_MIDI_BYTES // 1_000_000} MB; not a studio tune")
    ns = notes(path.read_bytes())
    if len(ns) < 2:
        raise InvalidInput(f"{path.name} has fewer than two notes; nothing to learn from")
    pc = [0.0] * 12
    for _, dur, p in ns:
        pc[p % 12] += dur
    total = sum(pc)
    pc = [x / total for x in pc]
    tonic, minor, cmaj, cmin = key_of(pc)
    rel = pc[tonic:] + pc[:tonic]
    # melody line: the highest note at each onset
    line: dict[float, int] = {}
    for onset, _, p in ns:
        line[onset] = max(line.get(onset, 0), p)
    pitches = [line[t] for t in sorted(line)]
    steps = [b - a for a, b in zip(pitches, pitches[1:])]
    hist = [0.0] * (len(INTERVAL_BINS) + 1)
    for s in steps:
        hist[next((i for i, edge in enumerate(INTERVAL_BINS) if abs(s) <= edge), len(INTERVAL_BINS))] += 1
    hist = [h / max(1, len(steps)) for h in hist]
    up = sum(1 for s in steps if s > 0) / max(1, len(steps))
    onsets = sorted(line)
    span = max(ns[-1][0] + ns[-1][1] - ns[0][0], 1e-6)
    durs = [d for _, d, _ in ns]
    mean_d = sum(durs) / len(durs)
    sounding = sum(durs) / span
    grams = [tuple(steps[i:i + 4]) for i in range(max(0, len(steps) - 3))]
    repetition = 1 - len(set(grams)) / len(grams) if grams else 0.0
    mean_p = sum(pitches) / len(pitches)
    sd_p = math.sqrt(sum((p - mean_p) ** 2 for p in pitches) / len(pitches))
    return [*rel, float(minor), cmaj, cmin, cmin - cmaj, *hist, up,
            (max(pitches) - min(pitches)) / 24.0, (mean_p - 60) / 12.0, sd_p / 6.0,
            len(onsets) / span, math.log(mean_d + 1e-3), math.sqrt(sum((d - mean_d) ** 2 for d in durs) / len(durs)),
            min(1.0, sounding), repetition, sum(1 for x in pc if x > 0.01) / 12.0, math.log1p(span)]
