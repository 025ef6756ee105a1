"""Music and text formats: mido sees no text event (nothing for notation programs to show as a
lyric) but our FF 7F event; music21 reads composer, instrument and bars from 1; abc2midi and
abcm2ps take the .abc with its % comment; screenplain parses the .fountain with its boneyard."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from generators.base import Output, Result
from studio import embed
from studio.assets import AssetStore, restore
from tests.roundtrip.conftest import BASE, need

pytestmark = pytest.mark.roundtrip


def _one(outputs, name: str, suffix: str) -> Path:
    return next(p for p in outputs[name] if p.suffix == suffix)


def _embedded_only(path: Path, tmp_path: Path) -> Path:
    """A copy without its sidecar, as a file shared on its own travels."""
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    return copy


def test_midi_provenance_is_a_sequencer_event_not_text(outputs, tmp_path) -> None:
    import mido

    path = _one(outputs, "music", ".mid")
    midi = mido.MidiFile(path)
    metas = [m for track in midi.tracks for m in track if m.is_meta]
    assert not any(m.type in ("text", "lyrics") and "studio" in getattr(m, "text", "") for m in metas)
    seq = [m for m in metas if m.type == "sequencer_specific"]
    assert len(seq) == 1 and seq[0].data[0] == embed.MIDI_MANUFACTURER
    assert sum(1 for t in midi.tracks for m in t if m.type == "note_on") > 0
    assert restore(_embedded_only(path, tmp_path)).generator == "music"


def test_musicxml_reads_in_music21_with_composer_instrument_and_bar_one(outputs, tmp_path) -> None:
    from music21 import converter, instrument, stream

    path = _one(outputs, "music", ".musicxml")
    score = converter.parse(path)
    assert score.metadata.composer == "Studio (AI-generated)"
    part = score.parts[0]
    assert part.getInstrument() is not None and part.getInstrument().midiProgram is not None
    assert isinstance(part.getInstrument(), instrument.Instrument)
    numbers = [m.number for m in part.getElementsByClass(stream.Measure)]
    assert numbers[0] == 1 and numbers == list(range(1, len(numbers) + 1))
    assert restore(_embedded_only(path, tmp_path)).generator == "music"


def _tool_messages(exe: str, path: Path) -> str:
    done = subprocess.run([exe, path.name], capture_output=True, text=True, timeout=60, cwd=path.parent)
    return done.stdout + done.stderr


def test_abc_comment_changes_nothing_for_abc2midi_and_abcm2ps(outputs, tmp_path) -> None:
    """The tools' own complaints about a debug model's tune are not ours to judge: the file with
    our comment must give exactly what the same tune without it gives."""
    import mido

    path = _embedded_only(_one(outputs, "music", ".abc"), tmp_path)
    text = path.read_text()
    assert text.count("% " + embed.PREFIX) == 1
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours, bare = tmp_path / "a" / "tune.abc", tmp_path / "b" / "tune.abc"
    ours.write_text(text)
    bare.write_text("".join(line for line in text.splitlines(keepends=True) if embed.PREFIX not in line))
    for tool in ("abc2midi", "abcm2ps"):
        assert _tool_messages(need(tool), ours) == _tool_messages(need(tool), bare), tool
    subprocess.run([need("abc2midi"), str(path), "-o", str(tmp_path / "from-abc.mid")], capture_output=True,
                   timeout=60)
    assert any(m.type == "note_on" for t in mido.MidiFile(tmp_path / "from-abc.mid").tracks for m in t)
    assert restore(path).generator == "music"


def test_score_svg_and_wav_restore_without_sidecar(outputs, tmp_path) -> None:
    for suffix in (".svg", ".wav", ".png"):
        assert restore(_embedded_only(_one(outputs, "music", suffix), tmp_path)).generator == "music", suffix


def test_strokes_json_carries_the_record(outputs, tmp_path) -> None:
    path = _embedded_only(_one(outputs, "sketch", ".json"), tmp_path)
    doc = json.loads(path.read_text())
    assert doc[embed.JSON_KEY]["generator"] == "sketch"
    assert restore(path).generator == "sketch"


def test_fountain_boneyard_is_invisible_to_screenplain(tmp_path) -> None:
    from screenplain.parsers import fountain

    script = "Title: Demo\n\nINT. KITCHEN - NIGHT\n\nA fox waits.\n\nFOX\nHello */ there.\n"
    store = AssetStore(tmp_path / "out")
    params = {"prompt": "a fox */ in a kitchen"}  # a comment terminator inside the record stays escaped
    (path,) = store.write(Result(outputs=[Output(".fountain", script, role="script")]),
                          {**BASE, "generator": "story", "params": params, "seed": 3})
    text = path.read_text()
    assert text.startswith(script.rstrip("\n"))
    import io

    screenplay = fountain.parse(io.StringIO(text))
    words = " ".join(str(getattr(p, "lines", p)) for p in screenplay.paragraphs)
    assert "studio-provenance" not in words and "fox waits" in words
    path.with_name(path.name + ".json").unlink()
    assert restore(path).params == params


def test_story_pages_carry_the_record_invisibly(tmp_path) -> None:
    from markdown_it import MarkdownIt

    from generators.story_lib.fountain import to_html

    store = AssetStore(tmp_path / "out")
    script = "Title: Demo\n\nINT. KITCHEN - NIGHT\n\nA fox waits.\n"
    md = "# Demo\n\nA fox -- waits.\n"
    params = {"prompt": "a fox --> a hen </script> <!-- x"}
    html_path, md_path = store.write(Result(outputs=[Output(".html", to_html(script)), Output(".md", md)]),
                                     {**BASE, "generator": "story", "params": params, "seed": 3})
    rendered = MarkdownIt().render(md_path.read_text())
    assert "studio-provenance" not in rendered.replace("<!--", "").split("-->")[-1]
    assert "A fox -- waits." in md_path.read_text()
    page = html_path.read_text()
    assert page.count("</script>") == 1 and "A fox waits." in page
    for path in (html_path, md_path):
        path.with_name(path.name + ".json").unlink()
        assert restore(path).params == params, path.suffix


def test_musescore_imports_the_midi_without_a_lyric(outputs, tmp_path) -> None:
    """MuseScore showed the old text-event record as a lyric on bar 1; FF 7F it ignores."""
    mid = _embedded_only(_one(outputs, "music", ".mid"), tmp_path)
    out = tmp_path / "from-midi.musicxml"
    done = subprocess.run([need("mscore3"), "-o", str(out), str(mid)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.is_file(), done.stdout + done.stderr
    xml = out.read_text()
    assert "<note" in xml and "<lyric " not in xml and "studio-provenance" not in xml


def test_large_stroke_file_still_restores(tmp_path) -> None:
    """Only the record is size-capped, not the drawing around it (a 3 MB stroke file is fine; the cap is for the record)."""
    doc = {"format": "studio-sketch/1", "drawings": [{"strokes": [[[i, i + 1] for i in range(200_000)]]}]}
    store = AssetStore(tmp_path / "out")
    (path,) = store.write(Result(outputs=[Output(".json", json.dumps(doc, separators=(",", ":")), role="strokes")]),
                          {**BASE, "generator": "sketch", "params": {"candidates": 1}, "seed": 8})
    assert path.stat().st_size > 1_000_000
    path.with_name(path.name + ".json").unlink()
    assert restore(path).seed == 8
    assert json.loads(path.read_text())["drawings"] == doc["drawings"]
