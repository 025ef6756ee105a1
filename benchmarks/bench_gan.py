"""Glyph GAN: training curves, a sample grid, memorisation check, quality vs truncation, speed.

    python -m benchmarks.bench_gan          # writes benchmarks/results/gan.json and gan_samples.png

Memorisation: for N samples, the L2 distance (pixels in [0, 1]) to the nearest training glyph,
against two references drawn from real data: held-out glyphs -> training set, and training
glyphs -> the rest of the training set (leave-one-out). A GAN that copied its training images
would show sample distances near 0, far below both references. Quality: squared MMD on HOG
descriptors to the held-out glyphs (see training/gan/evaluate.py) for untruncated and truncated
sampling, with a per-pixel Bernoulli baseline and the training set as references. Clean strokes
(issue #17): connected ink regions and isolated specks per glyph at 64 px, samples against held-out
glyphs (training/gan/evaluate.py `components`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from benchmarks.common import RESULTS, write_result
from generators.base import Progress, Rng
from generators.gan import DEFAULT_WEIGHTS, GANParams, GlyphGAN
from training.gan import evaluate
from training.gan.data import load_glyphs


def _samples(g: GlyphGAN, n: int, truncation: float, seed: int, scale: int = 1) -> np.ndarray:
    out = []
    for i in range(0, n, 64):
        r = g.generate(GANParams.from_dict({"count": min(64, n - i), "truncation": truncation, "scale": scale,
                                            "invert": False}), rng=Rng(seed + i), progress=Progress.none())
        imgs = [o for o in r.outputs if o.role == "image"]
        out += [np.asarray(o.data, dtype=np.float32) / 255.0 for o in imgs]
    return np.stack(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=640)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    g = GlyphGAN()
    g.load("cpu")
    native = g.native_size  # 64 with the learned 32 -> 64 px stage, else the generator's own side
    glyphs = load_glyphs(native, 6.0)
    rng = np.random.default_rng(0)

    # -- memorisation: nearest-neighbour distances ------------------------------------------
    samples = _samples(g, args.samples, 0.0, 1000)
    held = glyphs.heldout
    loo_idx = rng.choice(len(glyphs.train), size=len(held), replace=False)
    mask = np.ones(len(glyphs.train), bool)
    mask[loo_idx] = False
    nn = {
        "sample_to_train": evaluate.summary(evaluate.nn_distances(samples, glyphs.train)),
        "heldout_to_train": evaluate.summary(evaluate.nn_distances(held, glyphs.train)),
        "train_to_rest_of_train": evaluate.summary(evaluate.nn_distances(glyphs.train[loo_idx], glyphs.train[mask])),
    }
    s_nn = evaluate.nn_distances(samples, glyphs.train)
    h_nn = evaluate.nn_distances(held, glyphs.train)
    nn["fraction_of_samples_closer_than_heldout_p05"] = float((s_nn < np.quantile(h_nn, 0.05)).mean())
    nn["median_ratio_sample_over_heldout"] = round(float(np.median(s_nn) / np.median(h_nn)), 3)

    # -- quality vs truncation ----------------------------------------------------------------
    hog_held = evaluate.hog_features(held)
    quality = {}
    for t in (0.0, 1.0, 0.5):
        s = samples[: len(held)] if t == 0.0 else _samples(g, len(held), t, 2000)
        pairwise = np.sqrt(evaluate.sq_dists(s[:200], s[:200])[np.triu_indices(200, 1)])
        quality[f"truncation_{t:g}"] = {"hog_mmd2_vs_heldout": round(evaluate.mmd_rbf(evaluate.hog_features(s), hog_held), 4),
                                        "mean_pairwise_l2 (diversity)": round(float(pairwise.mean()), 3),
                                        "mean_ink": round(float(s.mean()), 4)}
    train_ref = glyphs.train[rng.choice(len(glyphs.train), size=len(held), replace=False)]
    ref_pairs = np.sqrt(evaluate.sq_dists(train_ref[:200], train_ref[:200])[np.triu_indices(200, 1)])
    quality["reference_training_glyphs"] = {
        "hog_mmd2_vs_heldout": round(evaluate.mmd_rbf(evaluate.hog_features(train_ref), hog_held), 4),
        "mean_pairwise_l2 (diversity)": round(float(ref_pairs.mean()), 3),
        "mean_ink": round(float(train_ref.mean()), 4)}
    quality["baseline_pixel_bernoulli"] = {
        "hog_mmd2_vs_heldout": round(evaluate.mmd_rbf(
            evaluate.hog_features(evaluate.pixel_baseline(glyphs.train, len(held), rng)), hog_held), 4)}
    base = quality["baseline_pixel_bernoulli"]["hog_mmd2_vs_heldout"]
    for row in quality.values():
        row["ratio_to_baseline"] = round(row["hog_mmd2_vs_heldout"] / base, 4) if base else None

    # -- clean strokes at 64 px (issue #17): connected ink regions and isolated specks per glyph, of
    # the images a creator gets at 64 px (a model under 64 px native is upscaled by the generator)
    # against held-out glyphs rasterised at 64 px.
    side = 64
    up = max(1, side // native)
    at_side = _samples(g, args.samples, 0.0, 3000, scale=up)
    held_side = load_glyphs(side, 6.0).heldout
    strokes = {"size_px": side, "native_px": native, "upscaled_by": up,
               "samples": evaluate.components(at_side), "heldout": evaluate.components(held_side),
               # HOG MMD at 64 px too, so models of different native sizes compare on the same images
               "hog_mmd2_vs_heldout": round(evaluate.mmd_rbf(evaluate.hog_features(at_side[:len(held_side)]),
                                                             evaluate.hog_features(held_side)), 4)}
    for k in ("components_per_glyph", "specks_per_glyph"):
        real = strokes["heldout"][k]
        strokes[f"{k}_ratio_to_real"] = round(strokes["samples"][k] / real, 3) if real else None
        strokes[f"{k}_within_20_percent"] = abs(strokes["samples"][k] - real) <= 0.2 * real

    # -- speed ------------------------------------------------------------------------------
    def timed(params: dict, repeats: int = 5) -> float:
        p = GANParams.from_dict(params)
        ts = []
        for s in range(repeats):
            t0 = time.perf_counter()
            g.generate(p, rng=Rng(s), progress=Progress.none())
            ts.append(time.perf_counter() - t0)
        return round(statistics.median(ts), 4)

    speed = {"sample_16_grid_s": timed({"count": 16}), "sample_64_grid_s": timed({"count": 64}),
             "interpolate_16_frames_gif_s": timed({"mode": "interpolate", "frames": 16})}
    speed["ratio_64_over_16"] = round(speed["sample_64_grid_s"] / speed["sample_16_grid_s"], 3)

    # -- sample grid + training curves --------------------------------------------------------
    grid = g.generate(GANParams.from_dict({"count": 64, "scale": 3}), rng=Rng(0), progress=Progress.none())
    RESULTS.mkdir(parents=True, exist_ok=True)
    grid_path = RESULTS / "gan_samples.png"
    grid.outputs[0].data.save(grid_path)
    log = json.loads((DEFAULT_WEIGHTS.parent / "training.json").read_text())
    curve = log.get("curve", [])
    stride = max(1, len(curve) // 40)
    report = {
        "command": "python -m benchmarks.bench_gan",
        "torch": f"{torch.__version__}, 1 thread; a 2-core machine shared with other jobs",
        "weights_sha256": g.weights_sha256,
        "model": log.get("config"),
        "upsampler_64px": None if g.upsampler is None else g.upsampler.cfg.to_json(),
        "trained_steps": log.get("steps"), "train_wall_s": log.get("wall_s"),
        "n_samples": args.samples, "n_train": len(glyphs.train), "n_heldout": len(held),
        "nearest_neighbour_l2": nn,
        "quality": quality,
        "strokes_64px": strokes,
        "speed": speed,
        "sample_grid": str(grid_path.relative_to(grid_path.parents[2])),
        "training_curve": curve[::stride] + ([curve[-1]] if curve and curve[-1] not in curve[::stride] else []),
        "training_evals": [{k: v for k, v in e.items() if "mmd2" in k or k == "step"} for e in log.get("evals", [])],
    }
    write_result("gan", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
