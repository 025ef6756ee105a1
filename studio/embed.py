"""Embed a provenance record inside an output file, and read it back, format by format.

Where a format has a standard place for text we use it, without re-encoding the content:
PNG `tEXt` chunks (key "studio", plus "parameters" in the AUTOMATIC1111 style so other tools
show it), a MIDI text meta event at time 0 of the first track, SVG `<metadata>`, a GIF comment
extension, a WAV `LIST/INFO/ICMT` chunk, the MP4 `comment` tag (remuxed by ffmpeg, no
re-encode) and a `/StudioProvenance` entry in a PDF's document information (pypdf). Other formats carry their provenance in the JSON sidecar only.
"""
from __future__ import annotations

import io
import json
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

from generators.base import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIDI_PREFIX = "studio-provenance:"
SVG_METADATA_ID = "studio-provenance"
GIF_PREFIX = b"studio-provenance:"
WAV_PREFIX = b"studio-provenance:"


def record_json(record: dict[str, Any]) -> str:
    """Compact ASCII JSON, safe inside XML text and latin-1 MIDI meta events."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# ---------------------------------------------------------------------------------- PNG
def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidInput("not a PNG file")
    out, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        out.append((kind, data[pos + 8:pos + 8 + length], pos))
        pos += 12 + length
    return out


def embed_png(data: bytes, record: dict[str, Any], parameters: str | None = None) -> bytes:
    """Insert tEXt chunks before IEND; pixel data is untouched."""
    chunks = _png_chunks(data)
    iend = next((pos for kind, _, pos in chunks if kind == b"IEND"), None)
    if iend is None:
        raise InvalidInput("PNG has no IEND chunk")
    extra = _png_chunk(b"tEXt", b"studio\x00" + record_json(record).encode("latin-1"))
    if parameters:
        extra += _png_chunk(b"tEXt", b"parameters\x00" + parameters.encode("latin-1", "replace"))
    return data[:iend] + extra + data[iend:]


def read_png(data: bytes) -> dict[str, Any] | None:
    for kind, payload, _ in _png_chunks(data):
        if kind == b"tEXt" and payload.startswith(b"studio\x00"):
            return json.loads(payload.split(b"\x00", 1)[1].decode("latin-1"))
    return None


def png_bytes(image: Any) -> bytes:
    """Encode a PIL image as PNG (lossless) so it can carry the record."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------- MIDI
def embed_midi(data: bytes, record: dict[str, Any]) -> bytes:
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidInput(f"generator produced an unreadable MIDI file: {exc}") from None
    if not midi.tracks:
        midi.tracks.append(mido.MidiTrack())
    midi.tracks[0].insert(0, mido.MetaMessage("text", text=MIDI_PREFIX + record_json(record), time=0))
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def read_midi(data: bytes) -> dict[str, Any] | None:
    import mido

    midi = mido.MidiFile(file=io.BytesIO(data))
    for track in midi.tracks:
        for msg in track:
            if msg.is_meta and msg.type == "text" and msg.text.startswith(MIDI_PREFIX):
                return json.loads(msg.text[len(MIDI_PREFIX):])
    return None


# ---------------------------------------------------------------------------------- SVG
_SVG_OPEN = re.compile(rb"<svg\b[^>]*?>", re.S)
_SVG_META = re.compile(rb'<metadata id="' + SVG_METADATA_ID.encode() + rb'">(.*?)</metadata>', re.S)


def embed_svg(data: bytes, record: dict[str, Any]) -> bytes:
    match = _SVG_OPEN.search(data)
    if match is None:
        raise InvalidInput("generator produced an SVG without an <svg> element")
    tag = match.group(0)
    if tag.endswith(b"/>"):  # an empty <svg/>: open it so metadata can go inside
        return data[:match.start()] + tag[:-2] + b">" + _svg_meta(record) + b"</svg>" + data[match.end():]
    return data[:match.end()] + _svg_meta(record) + data[match.end():]


def _svg_meta(record: dict[str, Any]) -> bytes:
    return f'<metadata id="{SVG_METADATA_ID}">{record_json(record)}</metadata>'.encode()


def read_svg(data: bytes) -> dict[str, Any] | None:
    match = _SVG_META.search(data)
    return json.loads(match.group(1).decode()) if match else None


# ---------------------------------------------------------------------------------- GIF
def _gif_header_end(data: bytes) -> int:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise InvalidInput("not a GIF file")
    flags = data[10]
    end = 13
    if flags & 0x80:  # global colour table present
        end += 3 * (2 ** ((flags & 0x07) + 1))
    return end


def embed_gif(data: bytes, record: dict[str, Any]) -> bytes:
    """Insert a Comment Extension right after the header and global colour table."""
    payload = GIF_PREFIX + record_json(record).encode("ascii")
    blocks = b"".join(bytes([len(payload[i:i + 255])]) + payload[i:i + 255] for i in range(0, len(payload), 255))
    end = _gif_header_end(data)
    return b"GIF89a" + data[6:end] + b"\x21\xfe" + blocks + b"\x00" + data[end:]


def read_gif(data: bytes) -> dict[str, Any] | None:
    pos = _gif_header_end(data)
    while pos < len(data) and data[pos] == 0x21:  # extensions come before the first image
        label = data[pos + 1]
        pos += 2
        payload = b""
        while pos < len(data) and data[pos]:
            size = data[pos]
            payload += data[pos + 1:pos + 1 + size]
            pos += 1 + size
        pos += 1
        if label == 0xFE and payload.startswith(GIF_PREFIX):
            return json.loads(payload[len(GIF_PREFIX):])
    # Not at the front: fall back to a search (some encoders put comments later).
    idx = data.find(b"\x21\xfe")
    while idx != -1:
        pos, payload = idx + 2, b""
        while pos < len(data) and data[pos]:
            payload += data[pos + 1:pos + 1 + data[pos]]
            pos += 1 + data[pos]
        if payload.startswith(GIF_PREFIX):
            return json.loads(payload[len(GIF_PREFIX):])
        idx = data.find(b"\x21\xfe", idx + 2)
    return None


# ---------------------------------------------------------------------------------- WAV
def embed_wav(data: bytes, record: dict[str, Any]) -> bytes:
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise InvalidInput("not a WAV file")
    text = WAV_PREFIX + record_json(record).encode("ascii") + b"\x00"
    if len(text) % 2:
        text += b"\x00"
    info = b"INFO" + b"ICMT" + struct.pack("<I", len(text)) + text
    chunk = b"LIST" + struct.pack("<I", len(info)) + info
    body = data[:struct.unpack("<I", data[4:8])[0] + 8]
    if len(body) % 2:
        body += b"\x00"
    out = body + chunk
    return out[:4] + struct.pack("<I", len(out) - 8) + out[8:]


def read_wav(data: bytes) -> dict[str, Any] | None:
    idx = data.find(b"ICMT")
    while idx != -1:
        (size,) = struct.unpack("<I", data[idx + 4:idx + 8])
        text = data[idx + 8:idx + 8 + size].rstrip(b"\x00")
        if text.startswith(WAV_PREFIX):
            return json.loads(text[len(WAV_PREFIX):])
        idx = data.find(b"ICMT", idx + 4)
    return None


# ---------------------------------------------------------------------------------- MP4
def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def embed_mp4(data: bytes, record: dict[str, Any], suffix: str = ".mp4") -> bytes:
    """Remux with a `comment` tag (stream copy: no re-encoding)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / f"out{suffix}"
        src.write_bytes(data)
        cmd = [_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy",
               "-metadata", f"comment={record_json(record)}", "-movflags", "+faststart", str(dst)]
        done = subprocess.run(cmd, capture_output=True, timeout=300)
        if done.returncode != 0:
            raise InvalidInput(f"could not tag the video: {done.stderr.decode(errors='replace')[-300:]}")
        return dst.read_bytes()


def read_mp4(path: Path) -> dict[str, Any] | None:
    cmd = [_ffmpeg(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"]
    done = subprocess.run(cmd, capture_output=True, timeout=60)
    for line in done.stdout.decode(errors="replace").splitlines():
        if line.startswith("comment="):
            return json.loads(line[len("comment="):].replace("\\=", "=").replace("\\;", ";")
                              .replace("\\#", "#").replace("\\\\", "\\"))
    return None


# ---------------------------------------------------------------------------------- PDF
PDF_KEY = "/StudioProvenance"


def embed_pdf(data: bytes, record: dict[str, Any]) -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError

    try:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    except (PdfReadError, ValueError) as exc:
        raise InvalidInput(f"not a PDF file: {exc}") from None
    writer.add_metadata({PDF_KEY: record_json(record)})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def read_pdf(data: bytes) -> dict[str, Any] | None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        meta = PdfReader(io.BytesIO(data)).metadata or {}
    except PdfReadError:
        return None
    text = meta.get(PDF_KEY)
    return json.loads(str(text)) if text else None


# ---------------------------------------------------------------------------------- dispatch
EMBEDDERS = {".png": "png", ".mid": "midi", ".midi": "midi", ".svg": "svg", ".gif": "gif",
             ".wav": "wav", ".mp4": "mp4", ".mov": "mp4", ".m4a": "mp4", ".pdf": "pdf"}


def embed(suffix: str, data: bytes, record: dict[str, Any], extra: dict[str, Any]) -> bytes:
    """Return `data` with the record embedded, or unchanged for formats without a text slot."""
    kind = EMBEDDERS.get(suffix)
    if kind == "png":
        return embed_png(data, record, extra.get("parameters"))
    if kind == "midi":
        return embed_midi(data, record)
    if kind == "svg":
        return embed_svg(data, record)
    if kind == "gif":
        return embed_gif(data, record)
    if kind == "wav":
        return embed_wav(data, record)
    if kind == "mp4":
        return embed_mp4(data, record, suffix)
    if kind == "pdf":
        return embed_pdf(data, record)
    return data


def read_embedded(path: Path) -> dict[str, Any] | None:
    """The record embedded in a studio output, or None if the file carries none."""
    kind = EMBEDDERS.get(path.suffix.lower())
    if kind is None:
        return None
    if kind == "mp4":
        return read_mp4(path)
    data = path.read_bytes()
    try:
        return {"png": read_png, "midi": read_midi, "svg": read_svg, "gif": read_gif, "wav": read_wav,
                "pdf": read_pdf}[kind](data)
    except (InvalidInput, ValueError, OSError, EOFError, IndexError, struct.error):
        return None
