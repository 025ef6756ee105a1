"""Music generator quality and speed, against the held-out split's real tunes; JSON in
benchmarks/results/music.json.

    python -m benchmarks.bench_music [--samples 100] [--bars 16] [--models lstm,transformer] [--name music]
        [--skip-nll] [--baseline COMMIT] [--speed-only]

1. Held-out NLL per token (nats) on the test split of training.music.data (never trained on,
   never used for checkpoint choice) for the embedded models (fp16 weights run in fp32) and for
   the interpolated 5-gram baseline fitted on the same train split.
2. The same form / ending / register / mode numbers (training.music.metrics) for the test
   split's real tunes and for N tunes per model at the default settings (requested meter/key
   cycling over CONDITIONS, style O'Neill, flute): share of bars repeating an earlier bar, share
   of tunes with a repeated 4-bar phrase, share ending on the tonic, last-note duration, 64th
   endings, notes shorter than a 16th, range and share of notes outside the style's range,
   characteristic degree per mode. Generated tunes are measured on music21's reading of the ABC
   written, so an unreadable ABC counts as invalid. "Unforced" endings come from the same draws
   with end_on_tonic off (the model's own last bar, never redrawn).
   Also: key match (music21's default key estimate, analyze("key"), which uses the Aarden-Essen
   weights, against the request; dorian counts as minor, mixolydian as major, as the estimator
   knows only those two; Krumhansl-Kessler beside it), the same estimators' ceiling on real
   training-split tunes per mode (`key_ceiling`), whether the MIDI has
   the played notes, and whether abc2midi and abcm2ps read the ABC without a warning.
3. Speed of one 32-bar tune through every stage (sample, convert to ABC+MIDI, MusicXML, SVG,
   WAV, PNG), median of 6 seeds after a warm-up, one torch thread, each in a child process;
   `total_with_files_s` adds writing every output file as the studio does (studio.assets:
   PNG encoding, provenance embedded, sidecars, fsync; `write_files_s`), the target's measure;
   `cpu_total_with_files_s` is the CPU time of the same (what it costs on a core of its own: the
   machine is shared, so wall time also counts waiting for a core);
   with --baseline COMMIT that commit's code (git archive) runs the same seeds, interleaved in
   rounds of three, and `current_over_baseline` gives the ratios (--speed-only: just this part).
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import write_result

CONDITIONS = [("6/8", "D", "major"), ("4/4", "G", "major"), ("2/4", "A", "minor"), ("3/4", "E", "minor"),
              ("2/2", "D", "mixolydian"), ("6/8", "A", "dorian"), ("9/8", "G", "major"), ("4/4", "C", "major"),
              ("3/4", "F", "major"), ("2/4", "Bb", "major")]
STYLE = "oneill"
TARGETS = {"repeated_bar_share": ">= 0.15", "played_repeated_4bar_phrase_share": ">= 0.35",
           "unforced_ends_on_tonic_share": ">= 0.60", "last_note_le_64th_tunes": "== 0",
           "notes_outside_style_range_share": "<= 0.02", "key_match_share": ">= 0.85",
           "nll_below_ngram": "true", "total_32_bars_s": "<= 1.5"}
# Which definitions the targets use, and why (the real figures: "~24%" of bars repeat an
# earlier bar, "~48%" of tunes repeat a 4-bar phrase; each "definitions" block has all variants).
DEFINITIONS = (
    "Repeated bars: as written (a part under a repeat sign counted once), exact bars - the only "
    "variant near the issue's ~24% on the held-out tunes (written 21.5% all styles / 25.8% O'Neill; "
    "the codec in use when the issue was filed, music21's own bars, gives the same 21.7% on the 309 "
    "folk test tunes; played 36-41%). Repeated 4-bar phrase: as played (repeats and endings written "
    "out), any 4-bar window, exact bars, non-overlapping - the only variant near the issue's ~48% "
    "(played 52.5% / 55.7%; as written 13.9% / 17.5%, also with the old codec 14.2%; windows "
    "aligned at bars 1, 5, 9... 5.4% written, 20.6% played; pitch-only moves each by <= 3 points). "
    "No one variant gives both figures, so each target uses the variant that reproduces its own "
    "figure; chosen to reproduce the issue's real numbers, not for the model's. "
    "repeated_4bar_phrase_share (as written) is reported beside it. Key match: music21's default "
    "key estimate (analyze('key'): the Aarden-Essen weights, made from folk melodies) against the "
    "requested key, dorian read as minor and mixolydian as major; krumhansl_key_match_share is a "
    "second estimator (Krumhansl-Kessler weights) for real and generated tunes alike, not a target.")


def nll_numbers(splits) -> dict:
    import torch

    from generators.music import EMBEDDED
    from generators.music_lib.compose import load_model
    from training.music.ngram import NGram
    from training.music.train import evaluate

    seqs = {k: [r[0] for r in v] for k, v in splits.items()}
    t = time.perf_counter()
    ng = NGram(5).fit(seqs["train"]).tune(seqs["valid"][:300])
    out = {"test_tunes": len(seqs["test"]), "test_tokens": sum(len(s) - 1 for s in seqs["test"]),
           "ngram5_test_nll": round(ng.nll(seqs["test"]), 4), "ngram_fit_s": round(time.perf_counter() - t, 1)}
    for kind, path in EMBEDDED.items():
        try:
            model, cfg = load_model(path)
        except Exception as exc:  # noqa: BLE001 - a model that does not load is reported, not fatal
            out[f"{kind}_test_nll"] = f"not loaded: {exc}"
            continue
        with torch.no_grad():
            out[f"{kind}_test_nll"] = round(evaluate(model, splits["test"], cfg.max_len), 4)
        out[f"{kind}_vs_ngram_ratio"] = round(out[f"{kind}_test_nll"] / out["ngram5_test_nll"], 3)
    return out


def real_tunes(rows: list[dict]) -> dict:
    """The measures on the test split's real tunes, each against its own style's range."""
    from generators.music_lib import codec, register
    from training.music import metrics

    ranges = register.stats()["style_range"]
    out = {}
    for label, sel in (("all_styles", rows), (STYLE, [r for r in rows if r["style"] == STYLE])):
        tunes = [codec.Tune.from_json(r) for r in sel]
        measured = [metrics.measure(t, ranges[r["style"]]["low"], ranges[r["style"]]["high"])
                    for t, r in zip(tunes, sel)]
        out[label] = metrics.summarise(measured, [t.mode for t in tunes])
        out[label].update(real_key_match(tunes))
    return out


def real_key_match(tunes: list) -> dict:
    """How often music21's key estimate matches the real tunes' own key signature, per mode, read
    the same way as the generated tunes (our ABC, parsed by music21): the estimator's own ceiling,
    e.g. for dorian tunes, which it often calls the relative major."""
    from music21 import converter

    from generators.music_lib import codec

    by_mode: dict[str, list[int]] = {}
    ks: dict[str, list[int]] = {}
    for t in tunes:
        score = converter.parse(codec.tune_to_abc(t), format="abc")
        by_mode.setdefault(t.mode, []).append(int(key_matches(score.analyze("key"), t.tonic, t.mode)[0]))
        ks.setdefault(t.mode, []).append(int(key_matches(score.analyze("key.krumhansl"), t.tonic, t.mode)[0]))
    hits = [x for v in by_mode.values() for x in v]
    return {"key_match_share": round(sum(hits) / max(1, len(hits)), 3),
            "krumhansl_key_match_share": round(sum(x for v in ks.values() for x in v) / max(1, len(hits)), 3),
            "krumhansl_key_match_share_by_mode": {m: round(sum(v) / len(v), 3) for m, v in sorted(ks.items())},
            "key_match_share_by_mode": {m: round(sum(v) / len(v), 3) for m, v in sorted(by_mode.items())},
            "tunes_by_mode": {m: len(v) for m, v in sorted(by_mode.items())}}


def key_ceiling(train_rows: list[dict], per_mode: int = 80) -> dict:
    """The key estimators on more real tunes than the test split holds per mode (its O'Neill
    part has 1 dorian and 1 mixolydian tune): up to `per_mode` training-split tunes per mode,
    O'Neill alone and all folk styles, read the same way as generated tunes. The estimator's own
    ceiling per mode, so a generated mode can be judged against real tunes of that mode."""
    from generators.music_lib import codec

    out = {}
    for label, sel in (("oneill", [r for r in train_rows if r["style"] == STYLE]),
                       ("folk_styles", [r for r in train_rows if r["style"] != "bach"])):
        tunes = []
        for mode in ("major", "minor", "dorian", "mixolydian"):
            of_mode = [r for r in sel if r["mode"] == mode]
            # evenly through the split (rows come grouped by collection), not its first tunes
            tunes += [codec.Tune.from_json(r) for r in of_mode[::max(1, len(of_mode) // per_mode)][:per_mode]]
        out[label] = real_key_match(tunes)
    return out


def key_matches(estimated, tonic: str, mode: str) -> tuple[bool, bool]:
    from generators.music_lib import codec

    want = "minor" if mode in ("minor", "dorian") else "major"
    tonic_ok = codec.tonic_pc(codec.normalise_tonic(estimated.tonic.name)) == codec.tonic_pc(tonic)
    return tonic_ok and estimated.mode == want, tonic_ok


def abc_tools_clean(abc: str) -> bool | None:
    """True when abc2midi and abcm2ps read the ABC without a warning or error; None without them."""
    if not (shutil.which("abc2midi") and shutil.which("abcm2ps")):
        return None
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "t.abc"
        src.write_text(abc)
        a = subprocess.run(["abc2midi", str(src), "-o", str(Path(d) / "t.mid")], capture_output=True, text=True)
        b = subprocess.run(["abcm2ps", str(src), "-O", str(Path(d) / "t.ps")], capture_output=True, text=True)
    text = (a.stdout + a.stderr + b.stdout + b.stderr).lower()
    return a.returncode == 0 and b.returncode == 0 and "warning" not in text and "error" not in text


def sample_quality(model_name: str, n: int, bars: int, end_on_tonic: bool = True) -> dict:
    import pretty_midi
    import torch
    from music21 import converter

    from generators.base import Progress, Rng
    from generators.music import MusicComposer, MusicParams
    from generators.music_lib import codec, compose, register
    from generators.music_lib import vocab as V
    from training.music import metrics

    g = MusicComposer(model=model_name)
    g.load(torch.device("cpu"))
    lo, hi, _ = register.style_range({STYLE: 1.0})
    valid = key_ok = tonic_ok = clean = redrawn = forced = 0
    by_mode: dict[str, list[int]] = {}
    ks_ok, ks_by_mode = 0, {}
    measured, modes, sample_s, failures = [], [], [], []
    for i in range(n):
        meter, tonic, mode = CONDITIONS[i % len(CONDITIONS)]
        p = MusicParams(meter=meter, key=tonic, scale=mode, bars=bars, audio=False, score=False, model=model_name,
                        end_on_tonic=end_on_tonic, style=STYLE)
        t = time.perf_counter()
        try:
            r = g.generate(p, rng=Rng(1000 + i), progress=Progress.none())
        except Exception as exc:  # noqa: BLE001 - a refused draw (register) is counted, not fatal
            failures.append(f"{type(exc).__name__}: {exc}"[:200])
            continue
        sample_s.append(time.perf_counter() - t)
        abc = r.data["abc"][0]
        mid = next(o.data for o in r.outputs if o.suffix == ".mid")
        try:
            tune = codec.parse_abc(abc)
            pm = pretty_midi.PrettyMIDI(io.BytesIO(mid))
            played = sum(1 for j in codec.played_order(tune) for p_, _q in tune.measures[j] if p_ is not None)
            ok = played == sum(len(inst.notes) for inst in pm.instruments) > 0
            ok = ok and V.bars_in_meter(codec.tune_to_tokens(tune), V.METERS[meter])  # whole, or pickups
        except Exception:  # noqa: BLE001 - any failure to parse counts as invalid
            ok = False
        if not ok:
            continue
        valid += 1
        redrawn += bool(r.data["ending_redrawn"][0])
        forced += compose.forced_end(codec.tune_to_tokens(tune), meter, bars)
        measured.append(metrics.measure(tune, lo, hi))
        modes.append(mode)
        clean += bool(abc_tools_clean(abc))
        score = converter.parse(abc, format="abc")
        both, t_ok = key_matches(score.analyze("key"), tonic, mode)
        ks = key_matches(score.analyze("key.krumhansl"), tonic, mode)[0]
        ks_ok += ks
        ks_by_mode.setdefault(mode, []).append(int(ks))
        key_ok += both
        tonic_ok += t_ok
        by_mode.setdefault(mode, []).append(int(both))
    out = {"model": model_name, "tunes": n, "bars_requested": bars, "temperature": 1.0, "style": STYLE,
           "end_on_tonic": end_on_tonic, "valid_share": valid / n, "refused": failures,
           "abc_tools_clean_share": round(clean / n, 3), "key_match_share": key_ok / n,
           "tonic_match_share": tonic_ok / n,
           "key_match_share_by_requested_mode": {m: round(sum(v) / len(v), 3) for m, v in by_mode.items()},
           "krumhansl_key_match_share": ks_ok / n,
           "krumhansl_key_match_share_by_requested_mode": {m: round(sum(v) / len(v), 3)
                                                        for m, v in ks_by_mode.items()},
           "ending_redrawn_share": round(redrawn / max(1, valid), 3),
           "length_forced_end_share": round(forced / max(1, valid), 3),
           "median_generate_s_no_render": round(statistics.median(sample_s), 4) if sample_s else None}
    out.update(metrics.summarise(measured, modes))
    return out


SPEED_CHILD = """
import json, sys, tempfile, time, torch
torch.set_num_threads(1)
from generators.base import Progress, Rng
from generators.music import MusicComposer, MusicParams
from studio.assets import AssetStore
g = MusicComposer(model=sys.argv[1]); g.load(torch.device("cpu"))
p = MusicParams(bars=32, meter="4/4", key="G", model=sys.argv[1])
tmp = tempfile.TemporaryDirectory()
store = AssetStore(tmp.name)
record = {"generator": "music", "params": p.to_dict(), "seed": 0}
store.write(g.generate(p, rng=Rng(0), progress=Progress.none()), record)  # warm-up: imports, soundfont, verovio
runs = []
for seed in json.loads(sys.argv[2]):
    cpu = time.process_time()  # CPU seconds of this process: what the run costs on a free core
    r = g.generate(p, rng=Rng(seed), progress=Progress.none())
    t = time.perf_counter()
    store.write(r, {**record, "seed": seed})  # the files as the studio writes them (PNG encoded, provenance)
    w = time.perf_counter() - t
    runs.append({**r.data["timings"], "write_files_s": w, "total_with_files_s": r.data["timings"]["total_s"] + w,
                 "cpu_total_with_files_s": time.process_time() - cpu, "bars": r.data["bars"][0]})
tmp.cleanup()
print("RUNS " + json.dumps(runs))
"""


def _speed_child(root: Path, model_name: str, seeds: list[int]) -> list[dict]:
    import json

    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", SPEED_CHILD, model_name, json.dumps(seeds)], cwd=root, env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RUNS "))[5:])


def speed(model_name: str, runs: int = 6, baseline: str = "") -> dict:
    """One 32-bar tune through every stage, median over `runs` seeds; with `baseline` (a git
    commit), the same seeds through that commit's code too, the two interleaved in rounds of
    three so the machine's load falls on both alike: ratios from one run."""
    root = Path(__file__).resolve().parents[1]
    trees = {"current": root}
    tmp = None
    if baseline:
        tmp = tempfile.TemporaryDirectory()
        archive = subprocess.run(["git", "-C", str(root), "archive", baseline, "generators", "studio", "assets/music"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp.name], input=archive, check=True)
        trees["baseline"] = Path(tmp.name)
    timings: dict[str, list[dict]] = {k: [] for k in trees}
    seeds = list(range(1, runs + 1))
    for chunk in range(0, runs, 3):
        for name, tree in trees.items():
            timings[name] += _speed_child(tree, model_name, seeds[chunk:chunk + 3])
    if tmp is not None:
        tmp.cleanup()
    out: dict = {"model": model_name, "bars_requested": 32, "runs": runs, "seeds": seeds}
    for name, rs in timings.items():
        med = {k: round(statistics.median(r[k] for r in rs if k in r), 4) for k in rs[0] if k != "bars"}
        out[name] = {"median_stage_s": med, "bars_written": [r["bars"] for r in rs]}
    out["median_stage_s"] = out["current"]["median_stage_s"]
    out["total_le_1_5_s"] = out["median_stage_s"]["total_with_files_s"] <= 1.5
    if baseline:
        out["baseline_commit"] = baseline
        base = out["baseline"]["median_stage_s"]
        out["current_over_baseline"] = {k: round(v / base[k], 3) for k, v in out["median_stage_s"].items()
                                        if base.get(k)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_music")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--bars", type=int, default=16)
    ap.add_argument("--models", default="lstm,transformer", help="the first is the default model")
    ap.add_argument("--skip-nll", action="store_true", help="skip the held-out NLL numbers")
    ap.add_argument("--baseline", default="", help="a git commit whose code is timed beside this one "
                    "(interleaved, same seeds): speed ratios from one run")
    ap.add_argument("--speed-only", action="store_true", help="only the speed numbers")
    ap.add_argument("--speed-runs", type=int, default=6, help="seeds in the speed stage (a multiple of 3)")
    ap.add_argument("--name", default="music", help="results file: benchmarks/results/<name>.json "
                    "(run one model per process side by side: --models transformer --name music_transformer)")
    args = ap.parse_args(argv)
    import torch

    from training.music import data as D

    torch.set_num_threads(1)
    D.apply_limits(D.shipped_limits())  # the corpus the shipped models were trained and split on
    rows = D.load_tunes()
    if args.speed_only:
        result: dict = {"speed": {m: speed(m, runs=args.speed_runs, baseline=args.baseline)
                                  for m in args.models.split(",")}}
        write_result(args.name, result)
        return 0
    result = {"targets": TARGETS, "definitions": DEFINITIONS, "corpus_limits": dict(D.LIMITS),
              "real_test_split": real_tunes([r for r in rows if r["split"] == "test"]),
              "real_train_key_ceiling": key_ceiling([r for r in rows if r["split"] == "train"]),
              "samples": {}, "unforced": {}, "speed": {}}
    if not args.skip_nll:
        result["nll_per_token"] = nll_numbers(D.tokenised(rows))
    for m in args.models.split(","):
        result["samples"][m] = sample_quality(m, args.samples, args.bars)
        result["unforced"][m] = sample_quality(m, args.samples, args.bars, end_on_tonic=False)
        result["speed"][m] = speed(m, runs=args.speed_runs, baseline=args.baseline)
    result["notes"] = ("bar lengths hold by construction (grammar-masked decoding); samples use the default "
                       "end_on_tonic (last bar redrawn by the model until it ends on a held tonic), 'unforced' "
                       "the same draws without it; machine shared by other jobs, so timings are upper bounds. "
                       "Which repeat definitions the targets use and why: 'definitions'")
    write_result(args.name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
