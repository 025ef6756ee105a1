"""Files from a Tune: MIDI (pretty_midi), MusicXML (music21), WAV (tinysoundfont + the
TimGM6mb General MIDI soundfont bundled with pretty_midi), score SVG (verovio) and a piano-roll PNG.
"""
from __future__ import annotations

import io
import wave
from fractions import Fraction
from pathlib import Path
from typing import Any

from generators.music_lib import codec
from generators.music_lib.codec import Tune

SAMPLE_RATE = 22050
MAJOR_KEY_NUMBER = {"major": 0, "mixolydian": 0, "minor": 12, "dorian": 12}


def note_events(tune: Tune, tempo: int) -> list[tuple[float, float, int]]:
    """(start s, end s, midi pitch) for every note as played (repeats and endings taken, as
    abc2midi does); rests only advance time."""
    sec_per_q = 60.0 / tempo
    t = Fraction(0)
    out: list[tuple[float, float, int]] = []
    for index in codec.played_order(tune):
        for p, q in tune.measures[index]:
            if p is not None:
                out.append((float(t) * sec_per_q, float(t + q) * sec_per_q, p))
            t += q
    return out


def midi_bytes(tune: Tune, tempo: int, program: int, title: str = "") -> bytes:
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=float(tempo))
    num, den = (int(x) for x in tune.meter.split("/"))
    pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    key_number = (codec.tonic_pc(tune.tonic) + MAJOR_KEY_NUMBER[tune.mode]) % 12 + \
        (12 if MAJOR_KEY_NUMBER[tune.mode] else 0)
    pm.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))
    inst = pretty_midi.Instrument(program=program, name=title[:60] or "melody")
    for start, end, pitch in note_events(tune, tempo):
        inst.notes.append(pretty_midi.Note(velocity=90, pitch=pitch, start=start, end=end))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def soundfont_path() -> Path:
    import pretty_midi

    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"


def wav_bytes(tune: Tune, tempo: int, program: int, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Render the melody with a GM soundfont to 16-bit stereo WAV."""
    import numpy as np
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(str(soundfont_path()))
    synth.program_select(0, sfid, 0, program)
    events: list[tuple[float, int, int]] = []  # (time, 0=off/1=on, pitch): offs first at a tie
    for start, end, pitch in note_events(tune, tempo):
        events.append((start, 1, pitch))
        events.append((end - 0.01, 0, pitch))
    events.sort()
    chunks: list[Any] = []
    now = 0
    for t, kind, pitch in events:
        frame = int(round(t * sample_rate))
        if frame > now:
            chunks.append(np.frombuffer(synth.generate_simple(frame - now), dtype=np.float32).copy())
            now = frame
        if kind:
            synth.noteon(0, pitch, 90)
        else:
            synth.noteoff(0, pitch)
    tail = int(1.0 * sample_rate)  # let the last note ring out
    chunks.append(np.frombuffer(synth.generate_simple(tail), dtype=np.float32).copy())
    audio = np.concatenate(chunks) if chunks else np.zeros(2, dtype=np.float32)
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def musicxml_text(abc: str, program: int | None = None) -> str:
    """MusicXML of an ABC tune, through music21's parser and exporter: composer "Studio
    (AI-generated)", the GM instrument, bars numbered from 1, and the same bytes every time."""
    import re

    from music21 import converter, instrument, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from generators.music_lib.beams import fast_beams

    with fast_beams():  # music21's own beaming without its per-bar context searches (beams.py)
        score = converter.parse(abc, format="abc")
    score.metadata.composer = "Studio (AI-generated)"  # music21 would write "Music21"
    for part in score.parts:
        measures = list(part.getElementsByClass(stream.Measure))
        # music21 numbers an ABC tune's first bar 0 even when it is full (no pickup)
        if measures and measures[0].number == 0 and measures[0].barDuration.quarterLength <= \
                measures[0].duration.quarterLength:
            for m in measures:
                m.number += 1
        if program is not None:
            part.insert(0, instrument.instrumentFromMidiProgram(program))
    exporter = GeneralObjectExporter(score)
    # music21's ABC reader already gives measures, beams, clef and accidentals: the exporter's
    # own makeNotation pass (a deep copy, then padding, beaming and accidentals again) took ~40% of
    # this function and changed nothing but hidden rests padding the pickup bars (same notes,
    # durations, accidentals shown, bar numbers, repeats and endings on 30 held-out tunes)
    # (notes music21 cannot write as one MusicXML note, e.g. 5/8, still need that pass to tie them)
    exporter.makeNotation = any(n.duration.type == "complex" for n in score.recurse().notesAndRests) \
        or not all(part.getElementsByClass(stream.Measure) for part in score.parts)
    if not exporter.makeNotation:  # the one part of that pass the reader leaves undone: triplet brackets
        from music21.stream.makeNotation import makeTupletBrackets

        for part in score.parts:
            for m in part.getElementsByClass(stream.Measure):
                makeTupletBrackets(m, inPlace=True)
    xml = exporter.parse().decode("utf-8")
    # reproducible bytes: no export date, and music21's random part/instrument ids made sequential
    xml = re.sub(r"\s*<encoding-date>[^<]*</encoding-date>", "", xml)
    ids: dict[str, str] = {}
    for found in re.findall(r'id="([A-Z]?[0-9a-f]{16,})"', xml):
        ids.setdefault(found, f"{found[0] if found[0].isupper() else 'X'}{len(ids) + 1}")
    for old_id, new_id in ids.items():
        xml = xml.replace(f'"{old_id}"', f'"{new_id}"')
    return xml


def score_svg(musicxml: str, width_px: int = 1600) -> str:
    """Engrave the whole piece on one SVG page with verovio."""
    import verovio

    tk = verovio.toolkit()
    tk.setOptions({"xmlIdSeed": 1,  # fixed element ids: the same score gives the same SVG bytes
                   "pageWidth": width_px * 2, "pageHeight": 60000, "adjustPageHeight": True,
                   "scale": 40, "footer": "none", "header": "auto", "breaks": "auto"})
    if not tk.loadData(musicxml):
        raise RuntimeError("verovio could not read the MusicXML")
    return tk.renderToSVG(1)


def piano_roll(tune: Tune, tempo: int, height: int = 240, px_per_s: int = 60) -> Any:
    """A piano-roll PIL image: time across, pitch up, bar lines in grey."""
    from PIL import Image, ImageDraw

    notes = note_events(tune, tempo)
    sec_per_q = 60.0 / tempo
    played = [tune.measures[i] for i in codec.played_order(tune)]  # the notes as note_events plays them
    total = float(sum(q for m in played for _, q in m)) * sec_per_q
    pitches = [p for _, _, p in notes] or [60]
    lo, hi = min(pitches) - 2, max(pitches) + 2
    row = max(2, height // (hi - lo + 1))
    W, H = max(64, int(total * px_per_s) + 20), row * (hi - lo + 1) + 20
    img = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(img)
    for p in range(lo, hi + 1):  # black-key rows shaded like a keyboard
        if p % 12 in (1, 3, 6, 8, 10):
            y = 10 + (hi - p) * row
            d.rectangle([0, y, W, y + row - 1], fill=(238, 238, 242))
    t = Fraction(0)
    for m in played:
        x = 10 + int(float(t) * sec_per_q * px_per_s)
        d.line([x, 0, x, H], fill=(170, 170, 170))
        t += sum((q for _, q in m), Fraction(0))
    for start, end, p in notes:
        y = 10 + (hi - p) * row
        d.rectangle([10 + int(start * px_per_s), y, 10 + max(int(end * px_per_s) - 1, int(start * px_per_s) + 1),
                     y + row - 1], fill=(40, 90, 200), outline=(20, 40, 120))
    return img
