"""Video and audio: ffprobe opens every file cleanly, exiftool reads the MP4's XMP, `restore`
recovers the recipe from re-encoded and remuxed copies (FLAC, MP3, M4A, WebM) and says plainly
when metadata is not ours; hostile metadata gets a clear error fast; edited files are flagged."""
from __future__ import annotations

import json
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from generators.base import InvalidInput, Output, Result
from studio.assets import AssetStore, restore
from tests.roundtrip.conftest import BASE, make_wav, need

pytestmark = pytest.mark.roundtrip
TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def _one(outputs, name: str, suffix: str) -> Path:
    return next(p for p in outputs[name] if p.suffix == suffix)


def _ffmpeg(*args: str) -> None:
    subprocess.run([need("ffmpeg"), "-v", "error", "-y", *args], check=True, capture_output=True, timeout=120)


def test_ffprobe_opens_every_media_output(outputs) -> None:
    ffprobe = need("ffprobe")
    media = [p for paths in outputs.values() for p in paths if p.suffix in (".mp4", ".gif", ".wav", ".png")]
    assert {p.suffix for p in media} == {".mp4", ".gif", ".wav", ".png"}
    for path in media:
        done = subprocess.run([ffprobe, "-v", "error", "-show_format", "-of", "json", str(path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and not done.stderr.strip(), (path.name, done.stderr)


def test_mp4_carries_xmp_exiftool_reads(outputs) -> None:
    path = _one(outputs, "face", ".mp4")
    row = json.loads(subprocess.run([need("exiftool"), "-j", "-G1", str(path)], capture_output=True, text=True,
                                    check=True).stdout)[0]
    assert row["XMP-iptcExt:DigitalSourceType"] == TRAINED
    assert not any(k.endswith(":Warning") for k in row), row


def test_restore_from_reencoded_and_remuxed_copies(outputs, tmp_path) -> None:
    wav = _one(outputs, "music", ".wav")
    mp4 = _one(outputs, "face", ".mp4")
    copies = {"flac": ["-i", str(wav)], "mp3": ["-i", str(wav)], "m4a": ["-i", str(wav), "-c:a", "aac"],
              "webm": ["-i", str(mp4), "-c:v", "libvpx", "-b:v", "200k", "-an"],
              "mkv": ["-i", str(mp4), "-c", "copy"], "mov": ["-i", str(mp4), "-c", "copy"]}
    for ext, args in copies.items():
        out = tmp_path / f"copy.{ext}"
        _ffmpeg(*args, str(out))
        restored = restore(out)
        assert restored.generator == ("music" if args[1] == str(wav) else "face"), ext
        assert restored.source == "embedded"


def test_foreign_metadata_says_no_studio_provenance(tmp_path) -> None:
    src = make_wav(tmp_path / "a.wav")
    for ext, comment in (("mp4", "Shot on my phone"), ("flac", "{not json"), ("mp3", '{"generator": 1}'),
                         ("webm", "[1, 2, 3]")):
        out = tmp_path / f"phone.{ext}"
        if ext in ("mp4", "webm"):
            codec = ["-c:v", "libvpx"] if ext == "webm" else ["-c:v", "libx264"]
            _ffmpeg("-f", "lavfi", "-i", "color=c=black:s=32x32:d=0.2", *codec, "-metadata", f"comment={comment}",
                    str(out))
        else:
            _ffmpeg("-i", str(src), "-metadata", f"comment={comment}", str(out))
        with pytest.raises(InvalidInput, match="no studio provenance in this file"):
            restore(out)


def _png_with_chunk(key: bytes, text: bytes, kind: bytes = b"tEXt") -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    payload = key + b"\x00" + text
    chunk = struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    return data[:33] + chunk + data[33:]


@pytest.mark.timeout(30)  # a hang guard, not a speed claim (benchmarks/bench_restore.py measures that)
@pytest.mark.parametrize("case,payload,kind,message", [
    ("huge", b"{" + b'"a":"' + b"x" * 30_000_000 + b'"}', b"tEXt", "far larger"),
    ("not utf-8", b'{"generator": "\xff\xfe"}', b"iTXt", "not UTF-8"),
    ("bomb", b"[" * 200_000 + b"]" * 200_000, b"tEXt", "far larger|damaged"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, b"tEXt", "damaged"),
    ("zip bomb", b"\x00" + zlib.compress(b"{" + b" " * 50_000_000 + b"}", 9), b"zTXt", "far larger"),
    ("wrong types", b'{"format": "studio-provenance/1", "generator": "gan", "params": [1], "seed": 1}', b"tEXt",
     "params are not an object"),
    ("seed type", b'{"format": "studio-provenance/1", "generator": "gan", "params": {}, "seed": "7"}', b"tEXt",
     "seed is not a whole number"),
    ("not a record", b'"just a string"', b"tEXt", "not a JSON object"),
])
def test_hostile_png_metadata_gets_a_clear_error_fast(tmp_path, case, payload, kind, message) -> None:
    if kind == b"iTXt":
        payload = b"\x00\x00\x00\x00" + payload  # flag, method, empty language and translation
    path = tmp_path / f"{case.replace(' ', '-')}.png"
    path.write_bytes(_png_with_chunk(b"studio", payload, kind))
    with pytest.raises(InvalidInput, match=message):
        restore(path)


def test_svg_metadata_found_by_local_name_after_an_editor_resave(tmp_path) -> None:
    store = AssetStore(tmp_path / "out")
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><path d="M0 0L1 1"/></svg>'
    (path,) = store.write(Result(outputs=[Output(".svg", svg)]), {**BASE, "generator": "sketch",
                                                                    "params": {"a": "<b> & \"c\""}, "seed": 2})
    text = path.read_text()
    resaved = (text.replace("<svg ", '<svg:svg xmlns:svg="http://www.w3.org/2000/svg" ', 1)
               .replace("<metadata", "<svg:metadata").replace("</metadata>", "</svg:metadata>")
               .replace("</svg>", "</svg:svg>"))
    copy = tmp_path / "resaved.svg"
    copy.write_text(resaved)
    assert restore(copy).params == {"a": "<b> & \"c\""}


def test_edited_file_is_reported_not_trusted_blindly(tmp_path) -> None:
    store = AssetStore(tmp_path / "out")
    (path,) = store.write(Result(outputs=[Output(".abc", "X:1\nT:t\nK:C\nCDEF|\n")]),
                          {**BASE, "generator": "music", "params": {"bars": 1}, "seed": 4})
    assert restore(path).note is None
    path.write_text(path.read_text().replace("CDEF", "FEDC"))
    restored = restore(path)
    assert restored.generator == "music" and restored.source == "embedded"
    assert "changed after the studio wrote it" in restored.note


def test_a_large_but_real_record_still_restores(tmp_path) -> None:
    """A sketch's drawn-strokes input may be 2 MB of JSON; its record must still read back."""
    import numpy as np
    from PIL import Image

    strokes = json.dumps([[[i % 500, i % 300] for i in range(j, j + 400)] for j in range(0, 120_000, 400)])
    assert len(strokes) > 1_200_000
    store = AssetStore(tmp_path / "out")
    (path,) = store.write(Result(outputs=[Output(".png", Image.fromarray(np.zeros((8, 8, 3), np.uint8)))]),
                          {**BASE, "generator": "sketch", "params": {"strokes": strokes}, "seed": 6})
    path.with_name(path.name + ".json").unlink()
    assert restore(path).params["strokes"] == strokes
