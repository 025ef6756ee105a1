"""Data for the music models: the music21 corpus, parsed once, cached, tokenised, split.

Sources (all shipped inside the `music21` package, per-work licence terms in its corpus folder):
O'Neill's 1850 (oneills1850), Ryan's Mammoth Collection (ryansMammoth), Aird's Airs (airdsAirs),
a fixed subset of the Essen folksong collection (essenFolksong: the 842 tunes of ESSEN_FILES; the
whole 8.5k would take ~15 CPU-minutes more to parse on this shared 2-core machine). `LIMITS` caps
each collection at its first N tunes (file order). The Bach chorales are parsed by
`parse_collection("bach")` but are not a default style: their notation (fermatas, long notes, 4
voices) needed more time than this first training run had. Each ABC file is split into tunes at its `X:` lines and each tune is parsed on its
own with music21, so one bad tune never loses a file. Tunes whose meter or key changes, or whose
notes/durations fall outside the vocabulary, are skipped and counted.

The split is fixed by a hash of (collection, file, tune index): 90% train, 5% validation, 5% test.
The cache lives in $STUDIO_CACHE/music (default ~/.cache/studio/music), keyed by music21's version.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Iterator

from generators.music_lib import codec
from generators.music_lib import vocab as V

ABC_COLLECTIONS = {"oneill": "oneills1850", "ryan": "ryansMammoth", "aird": "airdsAirs",
                   "essen": "essenFolksong"}
ESSEN_FILES = ("altdeu10.abc", "kinder0.abc")  # 526 of the 8.5k Essen tunes
# Tunes used per collection (first N in file order): parsing is ~0.1 CPU-s per tune and this
# machine is shared, so the default data set is a documented subset of the 12.9k tunes.
LIMITS = {"oneill": 1000, "ryan": 1059, "aird": 400, "essen": 526}
BACH_LIMIT = 150  # the first 150 chorale files by name (each .mxl takes ~1 s to parse here)
SPLITS = ("train", "valid", "test")


def cache_dir() -> Path:
    root = Path(os.environ.get("STUDIO_CACHE") or Path.home() / ".cache" / "studio")
    import music21

    d = root / "music" / f"music21-{music21.__version__}"
    d.mkdir(parents=True, exist_ok=True)
    return d


def corpus_root() -> Path:
    import music21.corpus

    return Path(music21.corpus.__file__).parent


def split_of(key: str) -> str:
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100
    return "test" if h < 5 else "valid" if h < 10 else "train"


def iter_abc_tunes(path: Path) -> Iterator[tuple[int, str]]:
    """(index, text) for each tune of an ABC file; file-level header lines are prepended."""
    text = path.read_text(encoding="utf-8", errors="replace")
    chunks = re.split(r"(?m)^(?=X:)", text)
    head = chunks[0] if chunks and not chunks[0].lstrip().startswith("X:") else ""
    head_fields = "\n".join(l for l in head.splitlines() if re.match(r"^[LMK]:", l))
    for i, chunk in enumerate(c for c in chunks if c.startswith("X:")):
        lines = chunk.splitlines()
        yield i, "\n".join([lines[0], head_fields, *lines[1:]]) if head_fields else chunk


def parse_collection(style: str, limit: int | None = None, log=print) -> list[dict]:
    """Parse one collection into Tune dicts, cached as JSONL (resumable: tunes are appended to a
    .partial file as they are parsed)."""
    from music21 import converter, corpus

    out_path = cache_dir() / f"tunes_{style}.jsonl"
    if out_path.exists():
        return [json.loads(l) for l in out_path.read_text().splitlines() if l.strip()]
    partial = out_path.with_suffix(".partial")
    done: dict[str, dict | None] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[d["id"]] = d.get("tune")
    limit = limit or LIMITS.get(style)
    rows: list[dict] = []
    skipped: dict[str, int] = {}
    sink = partial.open("a")
    t0 = time.time()
    if style == "bach":
        paths = sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")
        sources = [(p, None) for p in paths[:BACH_LIMIT]]
    else:
        folder = corpus_root() / ABC_COLLECTIONS[style]
        files = sorted(folder.glob("*.abc"))
        if style == "essen":
            files = [f for f in files if f.name in ESSEN_FILES]
        sources = [(f, t) for f in files for t in iter_abc_tunes(f)]
    if limit:
        sources = sources[:limit]
    for n, (path, item) in enumerate(sources):
        key = f"{style}/{path.name}/{item[0] if item else 0}"
        if key in done:
            if done[key] is not None:
                rows.append(done[key])
            else:
                skipped["earlier run"] = skipped.get("earlier run", 0) + 1
            continue
        try:
            score = converter.parse(item[1], format="abc") if item else converter.parse(path)
            tune = codec.score_to_tune(score)
            codec.tune_to_tokens(tune)  # raises if outside the vocabulary
            if tune.meter not in V.METERS:
                raise ValueError(f"meter {tune.meter}")
        except Exception as exc:  # noqa: BLE001 - count and skip any tune music21 cannot read
            reason = type(exc).__name__ + ": " + str(exc).split(" quarter")[0][:40]
            skipped[reason] = skipped.get(reason, 0) + 1
            sink.write(json.dumps({"id": key, "tune": None, "why": reason}) + "\n")
            sink.flush()
            continue
        d = tune.to_json()
        d.update(id=key, style=style, split=split_of(key))
        rows.append(d)
        sink.write(json.dumps({"id": key, "tune": d}) + "\n")
        sink.flush()
        if n % 200 == 0:
            log(f"[{style}] {n}/{len(sources)} parsed, {len(rows)} kept, {time.time() - t0:.0f}s")
    sink.close()
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out_path)
    (cache_dir() / f"skipped_{style}.json").write_text(json.dumps(skipped, indent=1))
    log(f"[{style}] kept {len(rows)} of {len(sources)} in {time.time() - t0:.0f}s; skipped {sum(skipped.values())}")
    return rows


def load_tunes(styles: tuple[str, ...] = V.STYLES) -> list[dict]:
    rows: list[dict] = []
    for s in styles:
        rows.extend(parse_collection(s))
    return rows


def tokenised(rows: list[dict]) -> dict[str, list[tuple[list[int], int, int, int]]]:
    """split -> [(token ids with <s>..</s>, meter index, mode index, style index)]."""
    meters, modes = list(V.METERS), list(V.MODES)
    out: dict[str, list[tuple[list[int], int, int, int]]] = {s: [] for s in SPLITS}
    for r in rows:
        tune = codec.Tune.from_json(r)
        body = codec.tune_to_tokens(tune)
        ids = V.encode([V.BOS, *body, V.EOS])
        out[r["split"]].append((ids, meters.index(tune.meter), modes.index(tune.mode),
                                V.STYLES.index(r["style"])))
    return out


if __name__ == "__main__":  # python -m training.music.data oneill ryan ...
    for s in sys.argv[1:] or V.STYLES:
        parse_collection(s)
