"""Compare Sketch-RNN weight files on the held-out (test) characters, as the benchmark measures them.

    nice -n 5 python -m training.sketch.compare assets/sketch/kanji.safetensors /tmp/sk/W/kanji.best.safetensors

For each file: the reconstruction share (z = mu, temperature 0.1, closest to its own input among
all test drawings; benchmarks/bench_sketch.py's measure) for decoding seeds 0..--seeds-1, since
one seed moves the share by several points at these levels; the mean rank of the own input
(0 = nearest, 0.5 = chance); unconditional strokes per drawing over the real mean and the share
with stacked duplicate strokes at temperatures 0.1 and 0.4 (the other shipping conditions).
Prints one JSON line per file; used to decide whether retrained weights ship.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


def measure(path: Path, test: list[np.ndarray], index, seeds: int, draws: int) -> dict:
    from generators.sketch_metrics import reconstruction_ranks, rows_to_strokes, stacked_duplicates
    from generators.sketch_model import load_model

    net = load_model(path)
    t0 = time.perf_counter()
    out: dict = {"weights": str(path), "dec_hidden": net.cfg.dec_hidden, "shares": [], "mean_ranks": []}
    for seed in range(seeds):
        ranks = np.array(reconstruction_ranks(net, test, index, temperature=0.1, seed=seed))
        out["shares"].append(round(float((ranks == 0).mean()), 4))
        out["mean_ranks"].append(round(float(ranks.mean()) / (len(test) - 1), 4))
    out["share_mean"] = round(float(np.mean(out["shares"])), 4)
    out["mean_rank"] = round(float(np.mean(out["mean_ranks"])), 4)
    real = float(np.mean([d[:, 2].sum() for d in test]))
    gen = torch.Generator().manual_seed(0)
    for tau in (0.1, 0.4):
        z = torch.randn(draws, net.cfg.z_dim, generator=gen)
        rows = net.sample(z, batch=draws, max_steps=net.cfg.max_len, temperature=tau, generator=gen)
        drawn = [rows_to_strokes(r, net.cfg.scale_factor) for r in rows]
        out[f"strokes_ratio_{tau}"] = round(float(np.mean([len(d) for d in drawn])) / real, 3)
        out[f"duplicates_{tau}"] = round(float(np.mean([stacked_duplicates(d) for d in drawn if d])), 4)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.sketch.compare", description=__doc__.splitlines()[0])
    p.add_argument("weights", nargs="+", type=Path)
    p.add_argument("--dataset", default="kanji")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--draws", type=int, default=200)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from generators.sketch_metrics import ChamferIndex
    from generators.sketch_strokes import stroke3_to_strokes
    from training.sketch.data import load_split

    test = load_split(args.dataset, "test").drawings
    index = ChamferIndex([stroke3_to_strokes(d) for d in test])
    for path in args.weights:
        print(json.dumps(measure(path, test, index, args.seeds, args.draws)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
