"""Session-manager overhead and cold-load cost, as ratios measured side by side in one run.

1. A warm model: median wall time of a job through `Studio.generate` (validation, fair queue,
   worker hand-off, RNG set-up, provenance) minus a direct `generator.generate` call.
   Target: <= 1 ms per job. A second figure includes writing an output file with its sidecar.
2. A cold load of a safetensors model through the model cache against plain
   `safetensors.torch.load_file` of the same file, both copying the tensors out of the lazy
   memory map as loading into a module does. Target: ratio <= 1.1.

Run: `.venv/bin/python benchmarks/bench_session.py [--jobs 300] [--loads 15] [--mb 64]`.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import summary, timed, write_result  # noqa: E402
from generators.base import (Generator, Output, Params, Progress, Result, Rng, file_sha256,  # noqa: E402
                             param)


@dataclass(frozen=True)
class BenchParams(Params):
    weights: str = param("", "safetensors file", load=True)
    write: bool = param(False, "return an output file too")


class BenchModel(Generator):
    """Loads a safetensors file; generate() does a small fixed amount of tensor work."""

    name = "bench"
    Params = BenchParams
    devices = ("cpu",)
    cpu_threads = 1

    def __init__(self, weights: str = "") -> None:
        self.weights = weights
        self.state = None

    def estimate_bytes(self) -> int:
        return Path(self.weights).stat().st_size

    def load(self, device, dtype=None) -> None:
        self.state = materialised_load(self.weights)
        self.weights_sha256 = file_sha256(self.weights)

    def unload(self) -> None:
        self.state = None

    def generate(self, params: BenchParams, *, rng: Rng, progress: Progress) -> Result:
        import torch

        x = torch.randn(64, 64, generator=rng.torch)
        value = float((x @ x).sum())
        progress(1.0, "done")
        outputs = [Output(".txt", f"{value}\n", role="text")] if params.write else []
        return Result(outputs=outputs, data={"value": value})


def materialised_load(path: str) -> dict:
    """safetensors maps the file lazily; copying each tensor is what loading into a model costs."""
    from safetensors.torch import load_file

    return {k: v.clone() for k, v in load_file(path).items()}


def make_weights(path: Path, megabytes: int) -> Path:
    import torch
    from safetensors.torch import save_file

    n = megabytes * (1 << 20) // 4 // 8
    save_file({f"w{i}": torch.randn(n) for i in range(8)}, str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=300)
    ap.add_argument("--loads", type=int, default=30)
    ap.add_argument("--mb", type=int, default=64)
    args = ap.parse_args(argv)

    import torch
    from studio.api import Studio
    from studio.config import Settings

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        weights = make_weights(tmp_path / "model.safetensors", args.mb)
        studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", torch_threads=1),
                        registry={"bench": BenchModel})
        params = {"weights": str(weights)}
        direct = BenchModel(str(weights))
        direct.load(torch.device("cpu"))
        parsed = BenchParams(weights=str(weights))
        studio.generate("bench", params, seed=0)  # warm the cache, the worker and torch

        direct_s, studio_s, studio_write_s = [], [], []
        for i in range(args.jobs):  # interleaved, so machine noise hits all three alike
            direct_s.append(timed(lambda: direct.generate(parsed, rng=Rng(i), progress=Progress.none())))
            studio_s.append(timed(lambda: studio.generate("bench", params, seed=i)))
            studio_write_s.append(timed(lambda: studio.generate("bench", {**params, "write": True}, seed=i)))

        # A cold job's whole wall time minus a warm job's median is what loading through the
        # cache costs: the estimate, the budget check, the load itself and the bookkeeping.
        warm_median = summary(studio_s)["median_s"]
        plain_s, cached_s = [], []
        pool = ThreadPoolExecutor(max_workers=1)
        for i in range(args.loads):  # both start with nothing resident; the order alternates
            studio.unload("bench")
            # Plain loads also run on one long-lived thread, as the session's worker does: glibc
            # keeps a per-thread arena, and reusing freed pages there is far cheaper than new ones.
            plain = lambda: plain_s.append(pool.submit(timed, lambda: materialised_load(str(weights))).result())  # noqa: E731
            cached = lambda: cached_s.append(  # noqa: E731
                timed(lambda: studio.generate("bench", params, seed=0)) - warm_median)
            for step in ((plain, cached) if i % 2 == 0 else (cached, plain)):
                step()
                studio.unload("bench")
        studio.close()
        pool.shutdown()

    d, s, w = summary(direct_s), summary(studio_s), summary(studio_write_s)
    p, c = summary(plain_s), summary(cached_s)
    overhead_ms = (s["median_s"] - d["median_s"]) * 1000
    result = {
        "warm_job": {"direct": d, "studio": s, "studio_with_file": w,
                     "overhead_ms_median": overhead_ms,
                     "overhead_with_file_ms_median": (w["median_s"] - d["median_s"]) * 1000,
                     "target_overhead_ms": 1.0, "meets_target": overhead_ms <= 1.0},
        "cold_load": {"plain_safetensors": p, "through_cache": c, "megabytes": args.mb,
                      "ratio_median": c["median_s"] / p["median_s"], "target_ratio": 1.1,
                      "meets_target": c["median_s"] / p["median_s"] <= 1.1},
    }
    write_result("session", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
