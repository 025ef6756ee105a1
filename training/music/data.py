"""Data for the music models: the music21 corpus, parsed once, cached, tokenised, split.

Sources (all shipped inside the `music21` package, per-work licence terms in its corpus folder):
every tune of O'Neill's 1850 (oneills1850), Ryan's Mammoth Collection (ryansMammoth), Aird's Airs
(airdsAirs) and the Essen folksong collection (essenFolksong), about 12.8k ABC tunes, plus the
soprano line of the Bach chorales (`bach`, the corpus's .mxl chorale files). `LIMITS` can cap a
collection at its first N tunes (file order) for quick runs. Each ABC file is split into tunes
at its `X:` lines and each tune is parsed on its own with music21, so one bad tune never loses a
file; tunes are parsed by a pool of worker processes (`STUDIO_MUSIC_PARSE_WORKERS`, default the
CPU count, at most 4). Tunes whose meter or key changes, or whose notes/durations fall outside
the vocabulary, are skipped and counted.

The split is fixed by a hash of (collection, file, tune index): 90% train, 5% validation, 5% test.
The cache lives in <studio cache>/music (generators/paths.py), keyed by music21's version;
parsed tunes are appended to a per-collection .partial file as they arrive, so an interrupted
parse resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from fractions import Fraction
from pathlib import Path
from typing import Iterator

from generators.music_lib import codec
from generators.music_lib import vocab as V

ABC_COLLECTIONS = {"oneill": "oneills1850", "ryan": "ryansMammoth", "aird": "airdsAirs",
                   "essen": "essenFolksong"}
# Tunes used per collection (first N in file order); absent = all. Parsing costs ~0.1 CPU-s per
# ABC tune and ~0.2 s per chorale, so the whole corpus is ~25 CPU-minutes, once.
LIMITS: dict[str, int] = {}
SPLITS = ("train", "valid", "test")


def cache_dir() -> Path:
    import music21

    from generators.paths import cache_path

    return cache_path("music", f"music21-{music21.__version__}-form1")  # form1: Tune.form marks


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


def _sources(style: str) -> list[tuple[str, str, str | None]]:
    """(cache key, path, ABC text of one tune or None for a whole file) for a collection."""
    from music21 import corpus

    if style == "bach":
        paths = sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl")
        return [(f"bach/{p.name}/0", str(p), None) for p in paths]
    folder = corpus_root() / ABC_COLLECTIONS[style]
    return [(f"{style}/{f.name}/{i}", str(f), text)
            for f in sorted(folder.glob("*.abc")) for i, text in iter_abc_tunes(f)]


def _soprano(score):
    """A chorale's melody: the part named Soprano (some files open with instrument parts)."""
    from music21 import stream

    for part in score.parts:
        if "soprano" in (part.partName or "").lower():
            out = stream.Score()
            out.insert(0, part)
            return out
    return score


def parse_one(source: tuple[str, str, str | None]) -> tuple[str, dict | None, str]:
    """Parse one tune in a worker process: (key, Tune JSON or None, reason it was skipped)."""
    from music21 import converter

    key, path, text = source
    try:
        if text is None:  # a chorale: melody only, key from the harmony (files give no mode)
            tune = codec.score_to_tune(_soprano(converter.parse(path)), estimate_key=True)
        else:
            tune = codec.score_to_tune(converter.parse(text, format="abc"))
        codec.tune_to_tokens(tune)  # raises if outside the vocabulary
        if tune.meter not in V.METERS:
            raise ValueError(f"meter {tune.meter}")
    except Exception as exc:  # noqa: BLE001 - count and skip any tune music21 cannot read
        return key, None, type(exc).__name__ + ": " + str(exc).split(" quarter")[0][:40]
    return key, tune.to_json(), ""


def parse_workers() -> int:
    return max(1, int(os.environ.get("STUDIO_MUSIC_PARSE_WORKERS") or min(4, os.cpu_count() or 1)))


def parse_collection(style: str, limit: int | None = None, log=print) -> list[dict]:
    """Parse one collection into Tune dicts, cached as JSONL (resumable through a .partial file
    that holds every tune parsed so far, kept or skipped, by key)."""
    limit = limit if limit is not None else LIMITS.get(style)
    out_path = cache_dir() / f"tunes_{style}-{limit or 'all'}.jsonl"
    if out_path.exists():
        return relabel([json.loads(l) for l in out_path.read_text().splitlines() if l.strip()])
    partial = cache_dir() / f"tunes_{style}.partial"
    done: dict[str, dict | None] = {}
    reasons: dict[str, str] = {}
    if partial.exists():
        for line in partial.read_text().splitlines():
            try:
                d = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
            done[d["id"]] = d.get("tune")
            reasons[d["id"]] = d.get("why", "")
    sources = _sources(style)
    if limit:
        sources = sources[:limit]
    todo = [src for src in sources if src[0] not in done]
    t0 = time.time()
    if todo:
        log(f"[{style}] parsing {len(todo)} of {len(sources)} tunes with {parse_workers()} processes")
        with partial.open("a") as sink:
            results = map(parse_one, todo)
            pool = None
            if parse_workers() > 1 and len(todo) > 20:
                import multiprocessing

                pool = multiprocessing.get_context("spawn").Pool(parse_workers())
                results = pool.imap(parse_one, todo, chunksize=8)
            try:
                for n, (key, tune, why) in enumerate(results, 1):
                    done[key], reasons[key] = tune, why
                    sink.write(json.dumps({"id": key, "tune": tune, "why": why} if tune is None
                                          else {"id": key, "tune": tune}) + "\n")
                    if n % 500 == 0:
                        sink.flush()
                        log(f"[{style}] {n}/{len(todo)} parsed ({time.time() - t0:.0f}s)")
            finally:
                if pool is not None:
                    pool.terminate()
    rows: list[dict] = []
    skipped: dict[str, int] = {}
    for key, _path, _text in sources:
        tune = done.get(key)
        if tune is None:
            why = reasons.get(key) or "unknown"
            skipped[why] = skipped.get(why, 0) + 1
            continue
        d = dict(tune)
        d.update(id=key, style=style, split=split_of(key))
        rows.append(d)
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(out_path)
    (cache_dir() / f"skipped_{style}-{limit or 'all'}.json").write_text(json.dumps(skipped, indent=1))
    log(f"[{style}] kept {len(rows)} of {len(sources)} ({time.time() - t0:.0f}s); skipped {sum(skipped.values())}")
    return relabel(rows)


def essen_mode(tune: dict) -> str:
    """The mode of an Essen tune over its K: tonic. The collection's ABC writes `K:` as the tonic
    only ("K: G" over a G minor tune, whose flats are written as accidentals), so music21 reads
    every Essen tune as major. The notes decide instead (durations summed per degree above the
    tonic): a minor third over a major one makes it minor-type, then the characteristic degree:
    dorian's major 6th over the minor 6th, mixolydian's flat 7th over the leading tone."""
    tonic = codec.tonic_pc(tune["tonic"])
    w = [0.0] * 12
    for measure in tune["measures"]:
        for p, q in measure:
            if p is not None:
                w[(p - tonic) % 12] += float(Fraction(q))
    if w[3] > w[4]:
        return "dorian" if w[9] > w[8] else "minor"
    return "mixolydian" if w[10] > w[11] else "major"


def relabel(rows: list[dict]) -> list[dict]:
    """Fix the modes of the Essen tunes (`essen_mode`); other collections' K: lines carry theirs."""
    for r in rows:
        if r.get("style") == "essen":
            r["mode"] = essen_mode(r)
    return rows


def apply_limits(spec: str) -> None:
    """"essen=2000, bach=100" -> LIMITS (the first N tunes of those collections)."""
    for item in filter(None, (x.strip() for x in spec.split(","))):
        style, _, n = item.partition("=")
        if style.strip() not in V.STYLES or not n.strip().isdigit():
            raise ValueError(f"a limit looks like 'essen=2000', got {item!r}")
        LIMITS[style.strip()] = int(n)


def shipped_limits() -> str:
    """The limits the embedded default model was trained with (its JSON), as a spec string."""
    info = json.loads((Path(__file__).resolve().parents[2] / "assets" / "music" / "lstm.json").read_text())
    return ", ".join(f"{k}={v}" for k, v in (info.get("data", {}).get("limits") or {}).items())


def load_tunes(styles: tuple[str, ...] = V.STYLES) -> list[dict]:
    rows: list[dict] = []
    for s in styles:
        rows.extend(parse_collection(s))
    return rows


def tokenised(rows: list[dict]) -> dict[str, list[tuple[list[int], int, int, int, list[int]]]]:
    """split -> [(token ids with <s>..</s>, meter index, mode index, style index, bar-position
    ids of each token (vocab.positions))]."""
    meters, modes = list(V.METERS), list(V.MODES)
    out: dict[str, list[tuple[list[int], int, int, int, list[int]]]] = {s: [] for s in SPLITS}
    for r in rows:
        tune = codec.Tune.from_json(r)
        toks = [V.BOS, *codec.tune_to_tokens(tune), V.EOS]
        out[r["split"]].append((V.encode(toks), meters.index(tune.meter), modes.index(tune.mode),
                                V.STYLES.index(r["style"]), V.positions(toks)))
    return out


if __name__ == "__main__":  # python -m training.music.data oneill ryan ...
    for s in sys.argv[1:] or V.STYLES:
        parse_collection(s)
