"""Breeder speed: a 3x3 grid of 256x256 CPPN candidates must take <= 1 s (issue 7).

    python -m benchmarks.bench_breeder            # writes benchmarks/results/breeder.json

Times the whole `Breeder.generate` call (genomes, rendering, PIL images, grid, parameters text)
for a fresh grid and for a bred grid, cold (first call in the process, imports included) and
warm (median of repeats), and a high-resolution export; each against the 1 s target as a ratio.
"""
from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import write_result
from generators.base import Progress, Rng
from generators.breeder import Breeder, BreederParams

TARGET_S = 1.0


def _time(gen: Breeder, params: BreederParams, seed: int) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = gen.generate(params, rng=Rng(seed), progress=Progress.none())
    return time.perf_counter() - t0, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)

    gen = Breeder()
    gen.load("cpu")
    grid = BreederParams.from_dict({"mode": "random", "rows": 3, "cols": 3, "width": 256, "height": 256})
    cold_s, first = _time(gen, grid, 0)
    random_s = [_time(gen, grid, s)[0] for s in range(1, args.repeats + 1)]
    parents = first.data["genomes"][:2]  # type: ignore[attr-defined]
    bred = BreederParams.from_dict({"mode": "breed", "genomes": parents, "width": 256, "height": 256})
    breed_s = [_time(gen, bred, s)[0] for s in range(args.repeats)]
    sym = grid.replace(symmetry="radial-6")
    sym_s = [_time(gen, sym, s)[0] for s in range(args.repeats)]
    render = BreederParams.from_dict({"mode": "render", "genomes": parents[:1], "width": 2048, "height": 2048})
    render_s = [_time(gen, render, 0)[0] for _ in range(2)]

    def row(samples: list[float]) -> dict[str, float]:
        med = statistics.median(samples)
        return {"median_s": round(med, 4), "min_s": round(min(samples), 4), "max_s": round(max(samples), 4),
                "ratio_to_1s_target": round(med / TARGET_S, 3)}

    report = {
        "command": "python -m benchmarks.bench_breeder",
        "note": "shared 2-core machine; wall-clock, single process, numpy float32",
        "target": "3x3 grid of 256x256 candidates in <= 1 s",
        "grid_3x3_256_random_cold_first_call_s": round(cold_s, 4),
        "grid_3x3_256_random_warm": row(random_s),
        "grid_3x3_256_breed_warm": row(breed_s),
        "grid_3x3_256_radial6_warm": row(sym_s),
        "render_2048x2048": row(render_s),
        "genome_sizes": [{"nodes": len(g["nodes"]), "connections": len(g["connections"])} for g in parents],
        "meets_target": statistics.median(random_s) <= TARGET_S and statistics.median(breed_s) <= TARGET_S,
    }
    write_result("breeder", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
