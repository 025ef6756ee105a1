"""Embed a provenance record inside an output file, and read it back, format by format.

Where a format has a standard place for text we use it, without re-encoding the content:
- PNG: `iTXt` chunks (UTF-8) placed right after IHDR, before the image data, so readers that
  stop at the first IDAT (PIL without `.load()`, exiftool) see them: key "studio" (the record),
  "parameters" (AUTOMATIC1111 text that sd-parsers and A1111-style tools read) and an XMP packet
  carrying IPTC `DigitalSourceType = trainedAlgorithmicMedia`.
- MIDI: a sequencer-specific meta event (FF 7F) at time 0 of the first track: notation
  programs ignore it, unlike a text event (MuseScore showed that as a lyric).
- SVG `<metadata>`, MusicXML `<miscellaneous-field>`, GIF comment extension, WAV `LIST/INFO/ICMT`,
  MP4 `comment` (remuxed by ffmpeg, no re-encode) plus an XMP `uuid` box, PDF document info.
- Text formats: a boneyard `/* ... */` at the end of .fountain, a `%` comment line in .abc,
  a top-level "studio_provenance" key in a stroke .json object, a JSON data block in the
  <head> of .html, an HTML comment at the end of .md.

Reading is bounded: a record larger than MAX_RECORD_BYTES, not UTF-8, not valid JSON or nested
too deep raises `InvalidInput` with a sentence, never a raw decoder error; metadata that is not
ours (a phone's MP4 comment) reads as "no record".
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import os
import re
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

from generators.base import InvalidInput

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PREFIX = "studio-provenance:"
MIDI_PREFIX = PREFIX
SVG_METADATA_ID = "studio-provenance"
GIF_PREFIX = PREFIX.encode()
WAV_PREFIX = PREFIX.encode()
FORMAT_PREFIX = "studio-provenance/"
MAX_RECORD_BYTES = 8_000_000  # records are a few kB, up to ~2 MB with a drawn-strokes input; beyond: not ours
MIDI_MANUFACTURER = 0x7D  # the MIDI "non-commercial / educational" ID, free for anyone to use
XMP_KEY = b"XML:com.adobe.xmp"
MP4_XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")  # Adobe's XMP box id for MP4
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
PORTABLE_HINT = "inputs are named by file name and sha256, never by local path"


def record_json(record: dict[str, Any]) -> str:
    """Compact ASCII JSON, safe inside XML text, Fountain boneyards and latin-1 meta events."""
    text = json.dumps(record, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("*/", "*\\/"))


# ---------------------------------------------------------------------------------- portable
def _sha256_file(path: Path) -> str | None:
    from generators.base import file_sha256 as cached_sha256  # cached by path, size and mtime

    try:
        return cached_sha256(path)
    except OSError:
        return None


_ABS_PATH = re.compile(r"(?<![\w:/.])(?:~|/(?:home|root|tmp|Users|mnt|media|opt|srv|var|work|data|private))"
                       r"(?:/[^\s,:;/\"']+)+")


def portable(value: Any) -> Any:
    """The record as it may leave this machine: every absolute path becomes its file name
    (plus the file's sha256 when it is a file), so shared outputs carry no local folders."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, str) and len(value) < 4096 and value.startswith(("/", "~")) and "\n" not in value:
        path = Path(value).expanduser()
        if path.is_file():
            sha = _sha256_file(path)
            return f"{path.name} (sha256 {sha})" if sha else path.name
        return path.name
    if isinstance(value, str) and ("/" in value or "~" in value):  # paths inside longer text
        return _ABS_PATH.sub(lambda m: Path(m.group(0)).name, value)
    return value


# ---------------------------------------------------------------------------------- parsing
def parse_record(payload: str | bytes, where: str) -> dict[str, Any]:
    """A studio record from text found in a file; a clear InvalidInput for anything hostile."""
    size = len(payload)
    if size > MAX_RECORD_BYTES:
        raise InvalidInput(f"the studio record in this {where} is over {MAX_RECORD_BYTES // 1000} kB, far larger "
                           "than any the studio writes; it was not read")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"the studio record in this {where} is not UTF-8 text; it is damaged") from None
    try:
        record = json.loads(payload)
    except (ValueError, RecursionError):  # JSONDecodeError, huge ints, nesting bombs
        raise InvalidInput(f"the studio record in this {where} is damaged (not valid JSON)") from None
    if not isinstance(record, dict):
        raise InvalidInput(f"the studio record in this {where} is not a JSON object")
    return record


def maybe_record(text: str | bytes, where: str) -> dict[str, Any] | None:
    """A record from a free-text slot (a comment tag) that other programs also use: None when
    the text is not ours, so foreign metadata never looks like a damaged record."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = text.strip()
    if text.startswith(PREFIX):
        return parse_record(text[len(PREFIX):], where)
    if text.startswith("{") and f'"format":"{FORMAT_PREFIX}' in text[:MAX_RECORD_BYTES].replace(" ", ""):
        return parse_record(text, where)  # older studio files: bare JSON in the comment
    return None


# ---------------------------------------------------------------------------------- XMP
def xmp_packet(record: dict[str, Any]) -> bytes:
    """XMP with IPTC DigitalSourceType (trainedAlgorithmicMedia) and the tool that made it."""
    tool = html.escape(f"Studio {record.get('studio_version', '')} ({record.get('generator', '')})".strip())
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'xmlns:xmp="http://ns.adobe.com/xap/1.0/">'
            f'<Iptc4xmpExt:DigitalSourceType>{DIGITAL_SOURCE_TYPE}</Iptc4xmpExt:DigitalSourceType>'
            f'<xmp:CreatorTool>{tool}</xmp:CreatorTool>'
            '</rdf:Description></rdf:RDF></x:xmpmeta>\n<?xpacket end="r"?>').encode("utf-8")


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


def _itxt(key: bytes, text: bytes) -> bytes:
    """An uncompressed iTXt chunk: keyword, NUL, flag 0, method 0, no language, no translation."""
    return _png_chunk(b"iTXt", key + b"\x00\x00\x00\x00\x00" + text)


_OURS = (b"studio", b"parameters", XMP_KEY)


def _text_chunk(kind: bytes, payload: bytes) -> tuple[bytes, bytes] | None:
    """(keyword, raw text) of a tEXt/iTXt/zTXt chunk, decompressing at most MAX_RECORD_BYTES."""
    key, sep, rest = payload.partition(b"\x00")
    if not sep:
        return None
    if kind == b"tEXt":
        return key, rest
    if kind == b"zTXt":
        return key, _inflate(rest[1:])
    if kind == b"iTXt" and len(rest) >= 2:
        flag, body = rest[0], rest[2:]
        _lang, _, body = body.partition(b"\x00")
        _trans, _, body = body.partition(b"\x00")
        return key, _inflate(body) if flag else body
    return None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_RECORD_BYTES + 1)  # a zip bomb stops here
    except zlib.error:
        raise InvalidInput("a compressed text chunk in this PNG is damaged") from None
    return out


def embed_png(data: bytes, record: dict[str, Any], parameters: str | None = None) -> bytes:
    """Insert iTXt chunks (record, A1111 parameters, XMP) right after IHDR; pixels untouched."""
    chunks = _png_chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise InvalidInput("PNG has no IHDR chunk")
    width, height = struct.unpack(">II", chunks[0][1][:8])
    extra = _itxt(b"studio", record_json(record).encode("utf-8"))
    extra += _itxt(b"parameters", a1111_complete(parameters, record, (width, height)).encode("utf-8"))
    extra += _itxt(XMP_KEY, xmp_packet(record))
    kept = []
    for kind, payload, pos in chunks[1:]:
        if kind in (b"tEXt", b"iTXt", b"zTXt") and payload.partition(b"\x00")[0] in _OURS:
            continue  # re-embedding replaces, never duplicates
        kept.append(data[pos:pos + 12 + len(payload)])
    ihdr_end = chunks[0][2] + 12 + len(chunks[0][1])
    return data[:ihdr_end] + extra + b"".join(kept)


def read_png(data: bytes) -> dict[str, Any] | None:
    for kind, payload, _ in _png_chunks(data):
        if kind in (b"tEXt", b"iTXt", b"zTXt"):
            if not payload.startswith(b"studio\x00"):
                continue
            parsed = _text_chunk(kind, payload)
            if parsed is not None:
                text = parsed[1]
                if kind == b"tEXt":  # older studio files wrote latin-1 tEXt
                    text = text.decode("latin-1").encode("utf-8")
                return parse_record(text, "PNG")
        if kind == b"IEND":
            break
    return None


_A1111_SETTINGS = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model", "Model hash"}


def a1111_complete(parameters: str | None, record: dict[str, Any], size: tuple[int, int]) -> str:
    """A1111 text every A1111 reader parses: they need Steps, Sampler and Seed on the settings
    line, so a generator without a sampler names itself and a one-pass generator says Steps: 1."""
    text = (parameters or "").strip()
    lines = text.split("\n") if text else []
    last = lines[-1] if lines else ""
    keys = {item.split(":", 1)[0].strip() for item in last.split(",") if ":" in item}
    is_settings = bool(keys & _A1111_SETTINGS)
    params = record.get("params") if isinstance(record.get("params"), dict) else {}
    add = []
    if "Steps" not in keys:
        add.append(f"Steps: {params.get('steps', 1)}")
    if "Sampler" not in keys:
        add.append(f"Sampler: {_a1111_value(params.get('sampler') or record.get('generator') or 'studio')}")
    if "Seed" not in keys and record.get("seed") is not None:
        add.append(f"Seed: {record['seed']}")
    if "Size" not in keys:
        add.append(f"Size: {size[0]}x{size[1]}")
    if not add:
        return text
    if is_settings:
        lines[-1] = ", ".join(add) + ", " + last
    else:
        if not lines:  # no text from the generator: its prompt, else the output's label
            prompt = params.get("prompt")
            label = record.get("label")
            lines = [prompt if isinstance(prompt, str) and prompt else str(label or record.get("generator", ""))]
        lines.append(", ".join(add))
    return "\n".join(lines)


def _a1111_value(value: Any) -> str:
    return re.sub(r"[,:\n]+", " ", str(value)).strip()


def png_bytes(image: Any) -> bytes:
    """Encode a PIL image as PNG (lossless, no time chunk) so it can carry the record."""
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
    payload = [MIDI_MANUFACTURER, *(PREFIX + record_json(record)).encode("ascii")]
    midi.tracks[0].insert(0, mido.MetaMessage("sequencer_specific", data=payload, time=0))
    buf = io.BytesIO()
    midi.save(file=buf)
    return buf.getvalue()


def read_midi(data: bytes) -> dict[str, Any] | None:
    import mido

    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:
        raise InvalidInput(f"this MIDI file cannot be read: {exc}") from None
    for track in midi.tracks:
        for msg in track:
            if not msg.is_meta:
                continue
            if msg.type == "sequencer_specific":
                raw = bytes(msg.data)
                if raw[:1] == bytes([MIDI_MANUFACTURER]) and raw[1:].startswith(PREFIX.encode()):
                    return parse_record(raw[1 + len(PREFIX):], "MIDI file")
            elif msg.type == "text" and msg.text.startswith(MIDI_PREFIX):  # older studio files
                return parse_record(msg.text[len(MIDI_PREFIX):], "MIDI file")
    return None


# ---------------------------------------------------------------------------------- SVG, MusicXML
_SVG_OPEN = re.compile(rb"<svg\b[^>]*?>", re.S)
# by local name: an editor may re-save <metadata> as <svg:metadata> with a namespace prefix
_SVG_META = re.compile(rb"<(?:[\w.-]+:)?metadata\b[^>]*\bid=[\"']" + SVG_METADATA_ID.encode()
                       + rb"[\"'][^>]*>(.*?)</(?:[\w.-]+:)?metadata\s*>", re.S)


def embed_svg(data: bytes, record: dict[str, Any]) -> bytes:
    data = _SVG_META.sub(b"", data)
    match = _SVG_OPEN.search(data)
    if match is None:
        raise InvalidInput("generator produced an SVG without an <svg> element")
    tag = match.group(0)
    if tag.endswith(b"/>"):  # an empty <svg/>: open it so metadata can go inside
        return data[:match.start()] + tag[:-2] + b">" + _svg_meta(record) + b"</svg>" + data[match.end():]
    return data[:match.end()] + _svg_meta(record) + data[match.end():]


def _svg_meta(record: dict[str, Any]) -> bytes:
    return f'<metadata id="{SVG_METADATA_ID}">{record_json(record)}</metadata>'.encode()


def _xml_text(raw: bytes) -> str:
    text = raw.decode("utf-8", "strict") if len(raw) <= MAX_RECORD_BYTES else ""
    text = re.sub(r"^\s*<!\[CDATA\[(.*)\]\]>\s*$", r"\1", text, flags=re.S)
    return html.unescape(text)


def read_svg(data: bytes) -> dict[str, Any] | None:
    match = _SVG_META.search(data)
    if match is None:
        return None
    if len(match.group(1)) > MAX_RECORD_BYTES:
        return parse_record(match.group(1), "SVG")  # raises: too large
    try:
        return parse_record(_xml_text(match.group(1)), "SVG")
    except UnicodeDecodeError:
        raise InvalidInput("the studio record in this SVG is not UTF-8 text; it is damaged") from None


_MXL_FIELD = re.compile(rb'<miscellaneous-field name="' + SVG_METADATA_ID.encode() + rb'">(.*?)</miscellaneous-field>', re.S)


def embed_musicxml(data: bytes, record: dict[str, Any]) -> bytes:
    """A `<miscellaneous-field>` in `<identification>`, where MusicXML keeps free metadata."""
    data = _MXL_FIELD.sub(b"", data)
    field = (f'<miscellaneous-field name="{SVG_METADATA_ID}">{record_json(record)}</miscellaneous-field>').encode()
    if b"<miscellaneous>" in data:
        return data.replace(b"<miscellaneous>", b"<miscellaneous>" + field, 1)
    misc = b"<miscellaneous>" + field + b"</miscellaneous>"
    if b"</identification>" in data:
        return data.replace(b"</identification>", misc + b"</identification>", 1)
    match = re.search(rb"<score-partwise\b[^>]*>|<score-timewise\b[^>]*>", data)
    if match is None:
        raise InvalidInput("generator produced MusicXML without a score element")
    ident = b"<identification>" + misc + b"</identification>"
    # <identification> belongs after work/movement titles; before <defaults>/<part-list> is valid
    anchor = re.search(rb"<defaults\b|<credit\b|<part-list\b", data[match.end():])
    at = match.end() + (anchor.start() if anchor else 0)
    return data[:at] + ident + data[at:]


def read_musicxml(data: bytes) -> dict[str, Any] | None:
    match = _MXL_FIELD.search(data)
    return parse_record(_xml_text(match.group(1)), "MusicXML file") if match else None


# ---------------------------------------------------------------------------------- text formats
_BONEYARD = re.compile(r"/\*\s*" + re.escape(PREFIX) + r"(.*?)\*/", re.S)
_ABC_LINE = re.compile(r"^%\s*" + re.escape(PREFIX) + r"(.*)$", re.M)


def embed_fountain(data: bytes, record: dict[str, Any]) -> bytes:
    """A Fountain boneyard (`/* ... */`, ignored by every Fountain reader) at the end."""
    text = _BONEYARD.sub("", data.decode("utf-8")).rstrip("\n")
    return (text + f"\n\n/* {PREFIX}{record_json(record)} */\n").encode("utf-8")


def _read_text_block(data: bytes, block: re.Pattern[str], what: str) -> dict[str, Any] | None:
    """The record inside the first `block` (group 1) of a text file, or None if there is none."""
    match = block.search(data.decode("utf-8", "replace"))
    return parse_record(match.group(1).strip(), what) if match else None


def read_fountain(data: bytes) -> dict[str, Any] | None:
    return _read_text_block(data, _BONEYARD, "Fountain file")


def embed_abc(data: bytes, record: dict[str, Any]) -> bytes:
    """A `%` comment line (ABC comments are ignored by abc2midi, abcm2ps and music21)."""
    text = _ABC_LINE.sub("", data.decode("utf-8")).rstrip("\n")
    return (text + f"\n% {PREFIX}{record_json(record)}\n").encode("utf-8")


def read_abc(data: bytes) -> dict[str, Any] | None:
    return _read_text_block(data, _ABC_LINE, "ABC file")


_HTML_SCRIPT = re.compile(r'<script type="application/json" id="' + SVG_METADATA_ID + r'">(.*?)</script>\n?', re.S)
_MD_COMMENT = re.compile(r"<!--\s*" + re.escape(PREFIX) + r"(.*?)-->\n?", re.S)


def embed_html(data: bytes, record: dict[str, Any]) -> bytes:
    """A JSON data block in <head> (record_json escapes '<', so it cannot close the script)."""
    text = _HTML_SCRIPT.sub("", data.decode("utf-8"))
    block = f'<script type="application/json" id="{SVG_METADATA_ID}">{record_json(record)}</script>\n'
    match = re.search(r"</head\s*>", text, re.I) or re.search(r"<body\b", text, re.I)
    at = match.start() if match else 0
    return (text[:at] + block + text[at:]).encode("utf-8")


def read_html(data: bytes) -> dict[str, Any] | None:
    return _read_text_block(data, _HTML_SCRIPT, "HTML page")


def embed_markdown(data: bytes, record: dict[str, Any]) -> bytes:
    """An HTML comment at the end: Markdown renderers drop it. '--' is escaped inside."""
    text = _MD_COMMENT.sub("", data.decode("utf-8")).rstrip("\n")
    payload = record_json(record).replace("--", "-\\u002d")
    return (text + f"\n\n<!-- {PREFIX}{payload} -->\n").encode("utf-8")


def without_record(text: str) -> str:
    """A Markdown or Fountain output's text without the provenance block embedded in it (what the
    creator reads; taste features and DPO pairs must not learn from the record's JSON)."""
    return _BONEYARD.sub("", _MD_COMMENT.sub("", text)).rstrip()


def read_markdown(data: bytes) -> dict[str, Any] | None:
    return _read_text_block(data, _MD_COMMENT, "Markdown file")


JSON_KEY = "studio_provenance"
MAX_JSON_FILE_BYTES = 16 * MAX_RECORD_BYTES  # a stroke file with many drawings, not a bomb


def embed_json(data: bytes, record: dict[str, Any]) -> bytes:
    """Stroke files and other JSON objects: a top-level key; JSON that is not an object is left alone."""
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    if not isinstance(doc, dict):
        return data
    doc[JSON_KEY] = record
    if data.lstrip()[:2] == b"{\n":  # keep the writer's layout: indented stays indented
        return json.dumps(doc, indent=1, ensure_ascii=False).encode("utf-8")
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def read_json(data: bytes) -> dict[str, Any] | None:
    if len(data) > MAX_JSON_FILE_BYTES:
        raise InvalidInput("this JSON file is too large to read a studio record from")
    try:  # the document may be large (many strokes); only the record inside is size-capped
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidInput("this JSON file is damaged (not valid JSON)") from None
    if not isinstance(doc, dict):
        return None
    rec = doc.get(JSON_KEY)
    if rec is None:
        return None
    if not isinstance(rec, dict):
        raise InvalidInput(f"the {JSON_KEY!r} entry of this JSON file is not an object")
    return rec


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


def _gif_comment(data: bytes, pos: int) -> tuple[bytes, int]:
    payload = bytearray()
    while pos < len(data) and data[pos]:
        payload += data[pos + 1:pos + 1 + data[pos]]
        pos += 1 + data[pos]
        if len(payload) > MAX_RECORD_BYTES:
            break
    return bytes(payload), pos + 1


def read_gif(data: bytes) -> dict[str, Any] | None:
    pos = _gif_header_end(data)
    while pos < len(data) and data[pos] == 0x21:  # extensions come before the first image
        label = data[pos + 1]
        payload, pos = _gif_comment(data, pos + 2)
        if label == 0xFE and payload.startswith(GIF_PREFIX):
            return parse_record(payload[len(GIF_PREFIX):], "GIF")
    # Not at the front: fall back to a search (some encoders put comments later).
    idx = data.find(b"\x21\xfe")
    while idx != -1:
        payload, _ = _gif_comment(data, idx + 2)
        if payload.startswith(GIF_PREFIX):
            return parse_record(payload[len(GIF_PREFIX):], "GIF")
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
        text = data[idx + 8:idx + 8 + min(size, MAX_RECORD_BYTES + 1)].rstrip(b"\x00")
        if text.startswith(WAV_PREFIX):
            return parse_record(text[len(WAV_PREFIX):], "WAV file")
        idx = data.find(b"ICMT", idx + 4)
    return None


# ---------------------------------------------------------------------------------- MP4
def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def embed_mp4(data: bytes, record: dict[str, Any], suffix: str = ".mp4") -> bytes:
    """Remux with a `comment` tag (stream copy: no re-encoding), then append an XMP box."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / f"in{suffix}", Path(tmp) / f"out{suffix}"
        src.write_bytes(data)
        # bitexact: no muxer version string; map_metadata -1: no creation_time carried over
        cmd = [_ffmpeg(), "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy", "-map_metadata", "-1",
               "-fflags", "+bitexact", "-metadata", f"comment={PREFIX}{record_json(record)}",
               "-movflags", "+faststart", str(dst)]
        done = subprocess.run(cmd, capture_output=True, timeout=300)
        if done.returncode != 0:
            raise InvalidInput(f"could not tag the video: {done.stderr.decode(errors='replace')[-300:]}")
        out = dst.read_bytes()
    if suffix in (".mp4", ".mov", ".m4a"):
        xmp = xmp_packet(record)
        out += struct.pack(">I", 8 + 16 + len(xmp)) + b"uuid" + MP4_XMP_UUID + xmp
    return out


def read_media_tags(path: Path) -> dict[str, Any] | None:
    """The record from a video/audio container's comment-like tags (ffmpeg's metadata dump)."""
    cmd = [_ffmpeg(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise InvalidInput("reading this file's tags took too long; it may be damaged") from None
    text = done.stdout.decode("utf-8", "replace")
    # ffmetadata escapes '=', ';', '#', '\\' and newlines with a backslash; values may span lines
    for match in re.finditer(r"^(comment|description|synopsis|ICMT|COMMENT|DESCRIPTION)=((?:[^\n\\]|\\.)*)$",
                             text, re.M | re.S):
        value = re.sub(r"\\(.)", r"\1", match.group(2), flags=re.S)
        record = maybe_record(value, "file's comment tag")
        if record is not None:
            return record
    return None


read_mp4 = read_media_tags


def read_mutagen(path: Path) -> dict[str, Any] | None:
    """FLAC/MP3/M4A/Ogg copies (re-encoded by ffmpeg keep the comment): their tags via mutagen."""
    import mutagen

    try:
        audio = mutagen.File(path)
    except mutagen.MutagenError as exc:
        raise InvalidInput(f"this file's tags cannot be read: {exc}") from None
    if audio is None or audio.tags is None:
        return None
    for key, value in audio.tags.items():
        values = getattr(value, "text", value)
        for item in values if isinstance(values, (list, tuple)) else [values]:
            if isinstance(item, (str, bytes)):
                record = maybe_record(item, f"file's {str(key)[:20]} tag")
                if record is not None:
                    return record
    return None


# ---------------------------------------------------------------------------------- PDF
PDF_KEY = "/StudioProvenance"
_PDF_EPOCH = "D:20000101000000Z"  # fixed dates: the same recipe gives the same bytes


def embed_pdf(data: bytes, record: dict[str, Any]) -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PdfReadError
    from pypdf.generic import ArrayObject, ByteStringObject, NameObject, TextStringObject

    try:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    except (PdfReadError, ValueError) as exc:
        raise InvalidInput(f"not a PDF file: {exc}") from None
    writer.add_metadata({PDF_KEY: record_json(record), "/Producer": "Studio",
                         "/CreationDate": _PDF_EPOCH, "/ModDate": _PDF_EPOCH})
    info = writer._info.get_object() if writer._info is not None else None  # noqa: SLF001
    if info is not None:
        info[NameObject("/Producer")] = TextStringObject("Studio")
    # the file ID is random by default; derive it from the content instead
    digest = hashlib.md5(data + record_json(record).encode(), usedforsecurity=False).digest()
    writer._ID = ArrayObject([ByteStringObject(digest), ByteStringObject(digest)])  # noqa: SLF001
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def read_pdf(data: bytes) -> dict[str, Any] | None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        meta = PdfReader(io.BytesIO(data)).metadata or {}
    except (PdfReadError, ValueError) as exc:
        raise InvalidInput(f"this PDF cannot be read: {exc}") from None
    text = meta.get(PDF_KEY)
    return parse_record(str(text), "PDF") if text else None


# ---------------------------------------------------------------------------------- dispatch
EMBEDDERS = {".png": "png", ".mid": "midi", ".midi": "midi", ".svg": "svg", ".gif": "gif",
             ".wav": "wav", ".mp4": "mp4", ".mov": "mp4", ".m4a": "mp4", ".pdf": "pdf",
             ".musicxml": "musicxml", ".fountain": "fountain", ".abc": "abc", ".json": "json",
             ".html": "html", ".md": "markdown"}
# copies made elsewhere (re-encoded or remuxed): read only
READERS = {**EMBEDDERS, ".webm": "media", ".mkv": "media", ".m4v": "media", ".flac": "mutagen",
           ".mp3": "mutagen", ".ogg": "mutagen", ".opus": "mutagen", ".aac": "media"}
MAX_READ_BYTES = 512 * 1024**2  # files read whole into memory for parsing


# What stays in the sidecar and index only: times, ids drawn at write time, who ran it. Keeping
# them out of the file gives the same bytes for the same seed + params + weights + device.
VOLATILE = ("created", "id", "group", "file", "job_id", "timings", "user", "siblings", "sha256", "bytes")


def file_record(record: dict[str, Any]) -> dict[str, Any]:
    """The record as embedded in a file: portable (no local paths) and free of volatile fields."""
    return portable({k: v for k, v in record.items() if k not in VOLATILE})


def embed(suffix: str, data: bytes, record: dict[str, Any], extra: dict[str, Any]) -> bytes:
    """Return `data` with the file record embedded, or unchanged for formats without a slot."""
    kind = EMBEDDERS.get(suffix)
    if kind is None:
        return data
    record = file_record(record)
    if kind == "png":
        return embed_png(data, record, portable(extra.get("parameters")))
    if kind == "mp4":
        return embed_mp4(data, record, suffix)
    return {"midi": embed_midi, "svg": embed_svg, "gif": embed_gif, "wav": embed_wav, "pdf": embed_pdf,
            "musicxml": embed_musicxml, "fountain": embed_fountain, "abc": embed_abc,
            "json": embed_json, "html": embed_html, "markdown": embed_markdown}[kind](data, record)


def read_embedded(path: Path) -> dict[str, Any] | None:
    """The record embedded in a file; None if it carries none. A damaged or hostile record
    raises InvalidInput with a sentence (never a raw decoder error)."""
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        return None
    if kind in ("mp4", "media"):
        return read_media_tags(path)
    if kind == "mutagen":
        return read_mutagen(path)
    if path.stat().st_size > MAX_READ_BYTES:
        raise InvalidInput(f"{path.name} is too large to look for a studio record in")
    data = path.read_bytes()
    reader = {"png": read_png, "midi": read_midi, "svg": read_svg, "gif": read_gif, "wav": read_wav,
              "pdf": read_pdf, "musicxml": read_musicxml, "fountain": read_fountain, "abc": read_abc,
              "json": read_json, "html": read_html, "markdown": read_markdown}[kind]
    try:
        return reader(data)
    except InvalidInput:
        raise
    except (ValueError, OSError, EOFError, IndexError, KeyError, struct.error, RecursionError):
        return None  # a file too damaged to walk carries no record we can trust


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    return _sha256_file(Path(path))
