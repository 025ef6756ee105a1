"""Sketch-RNN quality and speed: `python -m benchmarks.bench_sketch` -> benchmarks/results/sketch.json.

Quality: held-out (test split) reconstruction loss L_R (= L_s + L_p, the paper's definition,
normalised by N_max) and L_KL of each embedded VAE, side by side with the decoder-only LSTM
baseline (no latent code) trained on the same data, as differences (L_R is a log density and
can be negative, so ratios would mislead). For the VAE, L_R is reported with
z = mu and with z ~ q(z|x). L_KL is averaged over latent dimensions (as in the paper's code), so
the fair comparison is per sketch, in nats: the VAE's -ELBO (L_R(z~q) * N_max + L_KL * z_dim, an
upper bound on its negative log-likelihood) against the baseline's L_R * N_max.

Speed: completing a partial sketch (the first half of a held-out drawing's strokes, in a 255 px
canvas) with 1 and with 8 candidates, batched, against the issue's budgets (150 ms / 500 ms):
the drawing step alone (`SketchRNN.draw`) and the full `generate` (SVGs, PNG, JSON, .npz;
with and without the GIF), median of repeated runs on one CPU thread. 8 candidates drawn one at
a time are timed too, to show what batching buys.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from benchmarks.common import write_result
from generators.base import Progress, Rng
from generators.sketch_model import load_model
from generators.sketch_rnn import ASSETS, SketchRNN
from generators.sketch_strokes import FRAME, stroke3_to_strokes
from training.sketch.data import load_dataset
from training.sketch.train import evaluate

BUDGET_MS = {1: 150.0, 8: 500.0}


def quality(dataset: str) -> dict:
    test = load_dataset(dataset)["test"].drawings
    vae = load_model(ASSETS / f"{dataset}.safetensors")
    base = load_model(ASSETS / f"{dataset}-baseline.safetensors")
    v, b = evaluate(vae, test), evaluate(base, test)
    n_max, z_dim = vae.cfg.max_len, vae.cfg.z_dim
    vae_bound = v["l_r_sampled"] * n_max + v["l_kl"] * z_dim  # -ELBO: L_R over N_max steps + KL over z dims
    base_nll = b["l_r"] * n_max
    return {
        "test_sketches": len(test),
        "vae": {k: round(x, 4) for k, x in v.items()},
        "baseline_decoder_only": {k: round(x, 4) for k, x in b.items() if k != "l_kl"},
        # L_R is a log density (nats per N_max step) and can be negative, so a ratio means nothing:
        # the comparison is a difference (negative = the VAE is better).
        "vae_l_r_minus_baseline": round(v["l_r"] - b["l_r"], 4),
        "vae_l_r_plus_kl_minus_baseline": round(v["l_r"] + v["l_kl"] - b["l_r"], 4),
        # Per sketch, in nats: the VAE's -ELBO (an upper bound on its NLL) against the baseline's NLL.
        "per_sketch_nats": {"vae_neg_elbo": round(vae_bound, 2), "baseline_nll": round(base_nll, 2),
                            "difference": round(vae_bound - base_nll, 2), "n_max": n_max, "z_dim": z_dim},
    }


def partial_sketch(dataset: str, index: int = 0) -> str:
    """The first half (at least one) of a held-out drawing's strokes, in a 255 px canvas."""
    s3 = load_dataset(dataset)["test"].drawings[index]
    strokes = stroke3_to_strokes(s3, origin=(FRAME / 2, FRAME / 2))
    half = strokes[:max(1, len(strokes) // 2)]
    return json.dumps({"strokes": [[[round(float(x), 1), round(float(y), 1)] for x, y in s] for s in half],
                       "width": FRAME, "height": FRAME})


def timed(fn, repeats: int) -> dict:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1), "runs": repeats}


def speed(dataset: str, repeats: int) -> dict:
    g = SketchRNN(model=dataset)
    g.load(torch.device("cpu"))
    strokes = partial_sketch(dataset)
    out: dict = {"partial_points": sum(len(s) for s in json.loads(strokes)["strokes"])}
    for n in (1, 8):
        params = SketchRNN.Params.from_dict({"model": dataset, "mode": "complete", "strokes": strokes,
                                             "candidates": n, "temperature": 0.4, "size": 256})
        no_gif = params.replace(animate=False)
        draw = timed(lambda: g.draw(params, rng=Rng(1), progress=Progress.none()), repeats)
        full = timed(lambda: g.generate(no_gif, rng=Rng(1), progress=Progress.none()), repeats)
        with_gif = timed(lambda: g.generate(params, rng=Rng(1), progress=Progress.none()), max(3, repeats // 2))
        points = [d.info["new_points"] for d in g.draw(params, rng=Rng(1), progress=Progress.none())]
        out[f"candidates_{n}"] = {
            "budget_ms": BUDGET_MS[n], "draw": draw, "generate_no_gif": full, "generate_with_gif": with_gif,
            "new_points_per_candidate": points,
            "ratio_draw_to_budget": round(draw["median_ms"] / BUDGET_MS[n], 3),
            "ratio_generate_no_gif_to_budget": round(full["median_ms"] / BUDGET_MS[n], 3)}
    one = SketchRNN.Params.from_dict({"model": dataset, "mode": "complete", "strokes": strokes, "candidates": 1,
                                      "temperature": 0.4})

    def eight_one_at_a_time() -> None:
        for seed in range(8):
            g.draw(one, rng=Rng(seed), progress=Progress.none())

    seq = timed(eight_one_at_a_time, max(3, repeats // 2))
    out["eight_sequential_draw"] = seq
    out["ratio_batched_8_to_sequential_8"] = round(out["candidates_8"]["draw"]["median_ms"] / seq["median_ms"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["kanji", "hershey"])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    result = {"torch": torch.__version__, "threads": args.threads, "load_average_before": list(os.getloadavg()),
              "datasets": {}}
    for ds in args.datasets:
        result["datasets"][ds] = {"quality": quality(ds), "speed": speed(ds, args.repeats)}
    result["load_average_after"] = list(os.getloadavg())
    print(f"wrote {write_result('sketch', result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
