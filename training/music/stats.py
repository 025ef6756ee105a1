"""Corpus statistics the generator decodes with, measured on the training split only:

- `style_range`: per style, the MIDI notes between the 0.1st and 99.9th percentile of every note
  written (at the tunes' own pitch) and the median: the register a generated tune must sit in;
  `token_median`, the median note token (relative to the C tonic) the model writes in the style.
- `min_duration`: per meter, the shortest note value that makes up at least 0.1% of the notes
  (`shortest_seen` is the absolute shortest, usually one stray ornament): no generated note is
  shorter.
- `mode_degrees`: per mode, how often tunes prefer the mode's characteristic degree
  (training.music.metrics.CHARACTERISTIC), for the benchmark to compare with.

    python -m training.music.stats [LIMITS]   # writes assets/music/stats.json
    (on the tunes the shipped model was trained on: LIMITS, default the limits in
    assets/music/lstm.json, e.g. "essen=2453, bach=128")
"""
from __future__ import annotations

import json
import sys
from fractions import Fraction
from pathlib import Path

OUT = Path(__file__).resolve().parents[2] / "assets" / "music" / "stats.json"
MIN_SHARE = 0.001


def compute(rows: list[dict]) -> dict:
    from generators.music_lib import codec
    from training.music import metrics

    train = [r for r in rows if r["split"] == "train"]
    by_style: dict[str, list[int]] = {}
    rel_by_style: dict[str, list[int]] = {}
    durs: dict[str, dict[Fraction, int]] = {}
    per_mode: dict[str, list[dict]] = {}
    for r in train:
        tune = codec.Tune.from_json(r)
        ps = [p for m in tune.measures for p, _q in m if p is not None]
        by_style.setdefault(r["style"], []).extend(ps)
        shift = codec.tonic_shift(tune.tonic)
        rel_by_style.setdefault(r["style"], []).extend(p - 60 - shift for p in ps)
        d = durs.setdefault(tune.meter, {})
        for m in tune.measures:
            for p, q in m:
                if p is not None:
                    d[q] = d.get(q, 0) + 1
        per_mode.setdefault(tune.mode, []).append(metrics.measure(tune))
    ranges = {}
    for style, ps in sorted(by_style.items()):
        ps.sort()
        rel = sorted(rel_by_style[style])
        ranges[style] = {"low": ps[int(0.001 * (len(ps) - 1))], "high": ps[int(0.999 * (len(ps) - 1))],
                         "median": ps[len(ps) // 2], "notes": len(ps), "lowest_seen": ps[0],
                         "highest_seen": ps[-1], "token_median": rel[len(rel) // 2]}
    min_dur, seen = {}, {}
    for meter, d in sorted(durs.items()):
        total = sum(d.values())
        regular = [q for q, c in d.items() if c / total >= MIN_SHARE]
        min_dur[meter] = str(min(regular))
        seen[meter] = str(min(d))
    modes = {}
    for mode, ms in sorted(per_mode.items()):
        c = sum(x["characteristic"] for x in ms)
        o = sum(x["replaced"] for x in ms)
        modes[mode] = {"tunes": len(ms),
                       "tunes_preferring_characteristic": round(
                           sum(x["characteristic"] > x["replaced"] for x in ms) / len(ms), 3),
                       "characteristic_note_rate": round(c / max(1, c + o), 3)}
    return {"source": "training split of training.music.data", "style_range": ranges,
            "min_duration": min_dur, "min_duration_rule": f"shortest value with >= {MIN_SHARE:.1%} of the meter's notes",
            "shortest_seen": seen, "mode_degrees": modes}


def main() -> int:
    from training.music import data as D

    D.apply_limits(sys.argv[1] if len(sys.argv) > 1 else D.shipped_limits())
    result = compute(D.load_tunes())
    result["limits"] = dict(D.LIMITS)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
