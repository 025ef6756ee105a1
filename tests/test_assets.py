"""Assets: server-chosen names, sidecars, provenance embedded per format, restore, atomic writes."""
from __future__ import annotations

import io
import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from generators.base import InvalidInput, Output, Result
from studio import embed
from studio.assets import AssetStore, restore

RECORD = {"generator": "demo", "params": {"prompt": "a <fox> & \"hen\" ]]>", "steps": 3}, "seed": 11,
          "weights_sha256": "ab" * 32, "parents": ["p1"], "timings": {"run_s": 0.1}}


def _png() -> Image.Image:
    return Image.fromarray((np.arange(64 * 48 * 3) % 251).astype("uint8").reshape(48, 64, 3))


def _midi() -> bytes:
    import mido

    mid = mido.MidiFile()
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=64, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=480)])
    mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.fromarray(np.full((8, 8, 3), i * 80, np.uint8)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


def _wav() -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, dtype="<i2").tobytes())
    return buf.getvalue()


def _mp4(tmp_path) -> bytes:
    import imageio

    path = tmp_path / "clip.mp4"
    frames = np.zeros((5, 32, 32, 3), dtype=np.uint8)
    imageio.mimwrite(path, list(frames), fps=5, codec="libx264", macro_block_size=16)
    return path.read_bytes()


def _pdf() -> bytes:
    from generators.story_lib.fountain import to_pdf

    return to_pdf("Title: Demo\n\nINT. ROOM - DAY\n\nA fox waits.\n")


@pytest.fixture
def store(tmp_path):
    return AssetStore(tmp_path / "outputs")


def test_every_format_round_trips_through_restore(store, tmp_path):
    svg = '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><path d="M0 0L5 5"/></svg>'
    outputs = [Output(".png", _png(), role="image", extra={"parameters": "a fox\nSteps: 3, Seed: 11"}),
               Output(".mid", _midi(), role="midi"), Output(".svg", svg, role="score"),
               Output(".gif", _gif(), role="animation"), Output(".wav", _wav(), role="audio"),
               Output(".mp4", _mp4(tmp_path), role="video"), Output(".pdf", _pdf(), role="pdf"),
               Output(".fountain", "INT. ROOM - DAY\n", role="script")]
    paths = store.write(Result(outputs=outputs), RECORD)
    assert len(paths) == 8
    for path in paths:
        assert path.parent.parent == store.root and path.name.startswith("demo-")
        restored = restore(path)
        assert (restored.generator, restored.params, restored.seed) == ("demo", RECORD["params"], 11)
        sidecar = json.loads(path.with_name(path.name + ".json").read_text())
        assert sidecar["ai_generated"] is True and sidecar["weights_sha256"] == "ab" * 32
        assert sidecar["sha256"] and sidecar["studio_version"] and len(sidecar["siblings"]) == 7
        if path.suffix != ".fountain":  # every binary format also carries it inside the file
            path.with_name(path.name + ".json").unlink()
            assert restore(path).params == RECORD["params"], path.suffix
            assert embed.read_embedded(path)["ai_generated"] is True


def test_embedded_files_still_open_in_their_own_tools(store, tmp_path):
    import mido
    import imageio

    svg = '<svg xmlns="http://www.w3.org/2000/svg"/>'
    png, mid, gif, wav, mp4, svg_path, pdf = store.write(Result(outputs=[
        Output(".png", _png()), Output(".mid", _midi()), Output(".gif", _gif()), Output(".wav", _wav()),
        Output(".mp4", _mp4(tmp_path)), Output(".svg", svg), Output(".pdf", _pdf())]), RECORD)
    image = Image.open(png)
    assert image.size == (64, 48)
    assert json.loads(image.text["studio"])["seed"] == 11
    assert np.array_equal(np.asarray(image), np.asarray(_png()))
    notes = [m for m in mido.MidiFile(mid).tracks[0] if m.type == "note_on"]
    assert len(notes) == 1
    assert Image.open(gif).n_frames == 3
    import wave

    with wave.open(str(wav)) as w:
        assert w.getnframes() == 800
    assert len(list(imageio.v3.imiter(mp4, plugin="FFMPEG"))) == 5
    import xml.etree.ElementTree as ET

    root = ET.parse(svg_path).getroot()
    meta = root.find("{http://www.w3.org/2000/svg}metadata")
    assert json.loads(meta.text)["params"]["prompt"] == RECORD["params"]["prompt"]
    from pypdf import PdfReader

    reader = PdfReader(pdf)
    assert reader.metadata.title == "Demo" and "A fox waits." in reader.pages[-1].extract_text()


def test_png_parameters_chunk_for_other_tools(store):
    (path,) = store.write(Result(outputs=[Output(".png", _png(), extra={"parameters": "a fox\nSteps: 3"})]), RECORD)
    text = Image.open(path).info["parameters"]  # .info without .load(): the chunk precedes the pixels
    assert text == "a fox\nSampler: demo, Seed: 11, Size: 64x48, Steps: 3"  # what A1111 readers need, added


def test_history_persists_and_filters(tmp_path):
    store = AssetStore(tmp_path / "out")
    store.write(Result(outputs=[Output(".txt", "one")]), {**RECORD, "seed": 1})
    store.write(Result(outputs=[Output(".txt", "two")]), {**RECORD, "generator": "other", "seed": 2})
    again = AssetStore(tmp_path / "out")  # a restart
    assert [r["seed"] for r in again.history()] == [2, 1]
    assert [r["seed"] for r in again.history(generator="demo")] == [1]
    assert [r["seed"] for r in again.history(seed=2)] == [2]
    assert len(again.history(text="FOX")) == 2 and again.history(text="zebra") == []


def test_failed_write_leaves_nothing_behind(store):
    bad = Result(outputs=[Output(".txt", "fine"), Output(".mid", b"not a midi file")])
    with pytest.raises(InvalidInput, match="MIDI"):
        store.write(bad, RECORD)
    leftovers = [p for p in store.root.rglob("*") if p.is_file() and p.name != "index.jsonl"]
    assert leftovers == []
    assert store.history() == []


def test_resolve_refuses_paths_outside_the_store(store, tmp_path):
    (path,) = store.write(Result(outputs=[Output(".txt", "x")]), RECORD)
    assert store.resolve(path) == path.resolve()
    (tmp_path / "secret.txt").write_text("no")
    for ref in ["../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd"]:
        with pytest.raises(InvalidInput):
            store.resolve(ref)


def test_restore_refuses_foreign_files(tmp_path):
    (tmp_path / "plain.png").write_bytes(embed.png_bytes(_png()))
    with pytest.raises(InvalidInput, match="no studio provenance"):
        restore(tmp_path / "plain.png")
    with pytest.raises(InvalidInput, match="no such file"):
        restore(tmp_path / "missing.png")


def test_index_read_from_the_end_gives_every_line_newest_first(tmp_path):
    """History reads the index backwards in blocks: no line may split, merge or go missing, at any
    block size, with multi-byte text and a crash-cut last line."""
    import random

    from studio.assets import _lines_from_end

    rng = random.Random(5)
    lines = [json.dumps({"i": i, "t": "café 一匹の猫" * rng.randint(0, 9)}, ensure_ascii=False) for i in range(60)]
    path = tmp_path / "index.jsonl"
    path.write_text("\n".join(lines) + "\n" + '{"cut sh', encoding="utf-8")
    for block in (1, 2, 7, 64, 1 << 16):
        assert list(_lines_from_end(path, block)) == ['{"cut sh', *reversed(lines)], block
    assert list(_lines_from_end(tmp_path / "none.jsonl")) == []


def test_history_skips_files_deleted_by_hand_and_stops_at_the_page(tmp_path):
    store = AssetStore(tmp_path / "out")
    made = [store.write(Result(outputs=[Output(".txt", f"n{i}")]), {**RECORD, "seed": i}) for i in range(5)]
    made[3][0].unlink()  # a creator deleted one in the file manager
    page = store.history(limit=2)
    assert [r["seed"] for r in page] == [4, 2]
    assert all(__import__("os").path.isfile(r["path"]) for r in page)


def test_owner_and_id_lookups_follow_appends_deletes_and_other_writers(tmp_path):
    store = AssetStore(tmp_path / "out")
    (a,) = store.write(Result(outputs=[Output(".txt", "a")]), {**RECORD, "seed": 1}, owner="ana")
    assert store.owner_of(a) == "ana"
    other = AssetStore(tmp_path / "out")  # a second studio process sharing the home appends
    (b,) = other.write(Result(outputs=[Output(".txt", "b")]), {**RECORD, "seed": 2}, owner="bo")
    assert store.owner_of(b) == "bo" and store.owner_of(a) == "ana"
    asset_id = json.loads(b.with_name(b.name + ".json").read_text())["id"]
    assert store.resolve(asset_id) == b
    group = store.delete(a)["group"]
    assert store.owner_of(a) is None  # gone from the index
    (c,) = store.write(Result(outputs=[Output(".txt", "c")]), {**RECORD, "seed": 3}, owner="cy")
    assert (store.owner_of(b), store.owner_of(c)) == ("bo", "cy")
    store.undelete(group)
    assert store.owner_of(a) == "ana"
