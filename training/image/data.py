"""Captioned glyphs: KanjiVG drawings (PyPI `kanjivg`, CC BY-SA 3.0) joined with KANJIDIC2
English meanings and classical radicals (PyPI `jamdict-data`, EDRDG licence, CC BY-SA).

Each KanjiVG base file (e.g. 06c34.svg = U+6C34) is looked up by code point in KANJIDIC2's
`character` table; characters with no English meaning are skipped. The short caption is
"a character meaning '<up to three meanings>'" (lower-cased), e.g. "a character meaning 'water'".
The full caption names the classical radical first ("water radical. ...") and adds the character's parts from KanjiVG's element data (the top-level
components, each named by its own first KANJIDIC2 meaning, with its position):
"water radical. a character meaning 'lake', with water on the left and barbarian on the right".
Why: a meaning rarely says how a character is drawn (the first model, trained on meanings only,
learned to ignore them: its loss was the same with the right, a shuffled or an empty caption),
while the parts are what the glyph is made of, and the radical is usually one of them.
Glyphs are rasterised by the GAN's renderer (training.gan.data) at 64x64 and cached there.

Split: the GAN's (last 10% of the sha256 space of file names is held out), so held-out captions
and glyphs are never trained on, by either model.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.gan import data as glyph_data

SIZE = 64
STROKE_WIDTH = 6.0  # pen width in KanjiVG units (of 109), as the GAN's glyphs
MAX_MEANINGS = 3


@dataclass(frozen=True)
class Captioned:
    images: np.ndarray  # (N, S, S) float32, ink = 1
    captions: list[str]
    radicals: np.ndarray  # (N,) int, classical (Kangxi) radical number 1..214
    names: list[str]  # KanjiVG file names
    heldout: np.ndarray  # (N,) bool
    short: list[str]  # the caption without the parts ("a character meaning 'water'")

    def subset(self, mask: np.ndarray) -> "Captioned":
        idx = np.flatnonzero(mask)
        return Captioned(self.images[idx], [self.captions[i] for i in idx], self.radicals[idx],
                         [self.names[i] for i in idx], self.heldout[idx], [self.short[i] for i in idx])


def kanjidic_db() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("jamdict_data")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        if (Path(loc) / "jamdict.db").is_file():
            return Path(loc) / "jamdict.db"
    raise FileNotFoundError("KANJIDIC2 was not found; install it with `pip install jamdict-data`")


def kanjidic() -> dict[str, tuple[list[str], int]]:
    """character -> (English meanings in dictionary order, classical radical number)."""
    con = sqlite3.connect(f"file:{kanjidic_db()}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT c.literal, m.value FROM character c JOIN rm_group g ON g.cid = c.ID "
            "JOIN meaning m ON m.gid = g.ID WHERE m.m_lang = '' ORDER BY c.ID, g.ID, m.rowid").fetchall()
        rads = dict(con.execute("SELECT c.literal, r.value FROM character c JOIN radical r ON r.cid = c.ID "
                                "WHERE r.rad_type = 'classical'").fetchall())
    finally:
        con.close()
    out: dict[str, tuple[list[str], int]] = {}
    for ch, meaning in rows:
        entry = out.setdefault(ch, ([], int(rads.get(ch, 0) or 0)))
        if meaning not in entry[0]:
            entry[0].append(meaning)
    return out


def clean(meaning: str) -> str:
    # "(no. 47)"-style notes are dictionary bookkeeping, not meaning
    return re.sub(r"\s*\([^)]*\)", "", meaning).strip().lower()


def radical_name(number: int, dic: dict[str, tuple[list[str], int]]) -> str:
    """The classical radical's first KANJIDIC2 meaning ("water" for 85): the Kangxi Radicals
    block U+2F00.. lists them in order, and NFKC maps each to its ordinary character (水)."""
    import unicodedata

    if not 1 <= number <= 214:
        return ""
    ch = unicodedata.normalize("NFKC", chr(0x2F00 + number - 1))
    words = [clean(m) for m in (dic[ch][0] if ch in dic else []) if not _RADICAL_NO.search(m)]
    return words[0] if words else ""


def caption(meanings: list[str], parts: list[str] | None = None, radical: str = "") -> str:
    words = [clean(m) for m in meanings[:MAX_MEANINGS]]
    text = f"a character meaning '{', '.join(w for w in words if w)}'"
    if radical:
        # the radical first, at a fixed place: one word that says how the glyph is drawn, where
        # cross-attention finds it (the model trained on meaning + parts alone ignored the text)
        text = f"{radical} radical. {text}"
    if parts:
        text += ", with " + (parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1])
    return text


# KanjiVG kvg:position -> words; the "...c" positions are what sits inside a frame or a hook.
POSITIONS = {"left": "on the left", "right": "on the right", "top": "on top", "bottom": "below",
             "kamae": "around", "tare": "over the top left", "nyo": "along the bottom left",
             "middle": "in the middle", "tarec": "inside", "nyoc": "inside", "kamaec": "inside"}
_KVG = "{http://kanjivg.tagaini.net}"
_RADICAL_NO = re.compile(r"radical (number |no\.? )?\d+", re.I)


def parts(svg: Path, dic: dict[str, tuple[list[str], int]]) -> list[str]:
    """The top-level components of a KanjiVG glyph as words: ["water on the left", ...]. A part
    KANJIDIC2 has no meaning for (nor for its kvg:original) is left out; none -> []."""
    import xml.etree.ElementTree as ET

    root = ET.parse(svg).getroot()
    glyph = root[0][0]  # <g id="kvg:StrokePaths_..."><g id="kvg:06e56" kvg:element="湖">
    out: list[str] = []
    seen: set[str] = set()
    for g in glyph:
        if not g.tag.endswith("}g"):
            continue
        el = g.get(_KVG + "element") or ""
        if not el or el in seen:  # a part split in two (kvg:part="1", "2") is named once
            continue
        seen.add(el)
        for ch in (el, g.get(_KVG + "original") or ""):
            # radical variants (亻) are listed as "radical number 9": name them by the original (人)
            words = [clean(m) for m in (dic[ch][0] if ch in dic else []) if not _RADICAL_NO.search(m)]
            if words and words[0]:
                where = POSITIONS.get(g.get(_KVG + "position") or "")
                out.append(f"{words[0]} {where}" if where else words[0])
                break
    return out


def load(size: int = SIZE, limit: int | None = None) -> Captioned:
    glyphs = glyph_data.load_glyphs(size=size, stroke_width=STROKE_WIDTH, limit=limit)
    names = glyphs.train_names + glyphs.heldout_names
    images = np.concatenate([glyphs.train, glyphs.heldout])
    held = np.array([False] * len(glyphs.train_names) + [True] * len(glyphs.heldout_names))
    dic = kanjidic()
    folder = glyph_data.kanjivg_dir()
    keep, caps, shorts, rads = [], [], [], []
    for i, name in enumerate(names):
        ch = chr(int(name[:5], 16))
        if ch in dic and dic[ch][0]:
            keep.append(i)
            caps.append(caption(dic[ch][0], parts(folder / name, dic), radical_name(dic[ch][1], dic)))
            shorts.append(caption(dic[ch][0]))
            rads.append(dic[ch][1])
    idx = np.array(keep, dtype=np.int64)
    return Captioned(images[idx], caps, np.array(rads), [names[i] for i in idx], held[idx], shorts)
