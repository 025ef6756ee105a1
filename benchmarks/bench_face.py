"""Face animation speed and memory, stage by stage, on scikit-image's 512x512 astronaut portrait.

Run: `python -m benchmarks.bench_face [--repeats 5]`. Writes benchmarks/results/face.json with:
- landmarks per 512x512 frame (target <= 50 ms): the full path (BlazeFace detection + FaceMesh with
  one ROI refinement), the video tracking path (FaceMesh from the previous landmarks), and the
  bare FaceMesh interpreter call as the floor; ratios full/floor and tracking/floor;
- a 5 s, 25 fps, 512x512 clip from all six presets through `FaceAnimator.generate`
  (target <= 5 s), with the generator's own per-stage timings (inputs, landmarks, motion,
  render = warp + lids/mouth + mark, encode = H.264 through ffmpeg);
- the warp alone, side by side on the same moved landmarks: our backward-mapped remap with the
  map on a 2-px grid (the default), on every pixel (step 1), and scikit-image's
  PiecewiseAffineTransform + warp over the same mesh, with ratios;
- peak-RSS growth of a 5 s clip, then of a 20 s clip after it (frames are streamed to ffmpeg, so
  the second should add ~nothing: memory does not grow with the clip length).
Wall-clock medians depend on how busy the shared machine is, so process CPU seconds and the load
average are recorded too.
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

RESULTS = Path(__file__).resolve().parent / "results" / "face.json"


def _timed(fn) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


def _median_ms(fn, n: int) -> tuple[float, float]:
    fn()
    wall, cpu = [], []
    for _ in range(n):
        w, c = _timed(fn)
        wall.append(w)
        cpu.append(c)
    return round(statistics.median(wall) * 1000, 2), round(statistics.median(cpu) * 1000, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import cv2
    import numpy as np
    from PIL import Image
    from skimage import data
    from skimage.transform import PiecewiseAffineTransform, warp

    from generators.base import Progress, Rng
    from generators.face_anim import FaceAnimator, FaceParams, _crop_box, _frame_source
    from generators.face_motion import Deformer
    from generators.face_render import MeshWarper

    tmp = Path(tempfile.mkdtemp(prefix="bench_face_"))
    img = data.astronaut()
    src_path = tmp / "astronaut.png"
    Image.fromarray(img).save(src_path)
    gen = FaceAnimator()
    gen.load("cpu")
    mesh = gen.mesh
    load_before = os.getloadavg()

    # -- memory: a 5 s and a 20 s clip -------------------------------------------------------------
    # first, in a fresh process state (ru_maxrss is a high-water mark): frames are streamed
    mem_params = FaceParams.from_dict({"image": str(src_path), "consent": True, "fps": 25, "size": 512,
                                       "presets": "blink,smile,nod,turn,breathe"})
    memory = {}
    for seconds in (5.0, 20.0):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        gen.generate(mem_params.replace(duration=seconds), rng=Rng(0), progress=Progress.none())
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        memory[f"peak_rss_growth_{int(seconds)}s_mb"] = round((after - before) / 2**20, 1)
    memory["estimate_bytes_mb"] = round(gen.estimate_bytes() / 2**20, 1)
    print("memory:", memory, flush=True)

    # -- landmarks -------------------------------------------------------------------------
    face = mesh(img)[0]
    crop = cv2.resize(img[50:242, 130:322], (192, 192)).astype(np.float32) / 255.0
    n = max(20, args.repeats * 6)
    full_ms, full_cpu = _median_ms(lambda: mesh(img), n)
    track_ms, track_cpu = _median_ms(lambda: mesh.track(img, face.landmarks), n)
    floor_ms, floor_cpu = _median_ms(lambda: mesh.landmark(crop), n)
    detect_ms, _ = _median_ms(lambda: mesh.detect(img), n)
    landmarks = {"full_ms": full_ms, "full_cpu_ms": full_cpu, "detector_ms": detect_ms,
                 "tracking_ms": track_ms, "tracking_cpu_ms": track_cpu,
                 "facemesh_invoke_ms": floor_ms, "facemesh_invoke_cpu_ms": floor_cpu,
                 "ratio_full_vs_invoke": round(full_ms / floor_ms, 2),
                 "ratio_tracking_vs_invoke": round(track_ms / floor_ms, 2),
                 "points": int(len(face.landmarks)), "meets_50ms_target": full_ms <= 50.0}
    print("landmarks:", landmarks, flush=True)

    # -- a 5 s, 25 fps, 512 px clip from presets ---------------------------------------------
    params = FaceParams.from_dict({"image": str(src_path), "consent": True, "duration": 5.0, "fps": 25,
                                   "size": 512, "presets": "blink,smile,brows,nod,turn,breathe"})
    runs = []
    for r in range(args.repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        res = gen.generate(params, rng=Rng(r), progress=Progress.none())
        w, c = time.perf_counter() - w0, time.process_time() - c0
        runs.append({"wall_s": w, "cpu_s": c, **{k: v for k, v in res.data["timings"].items()}})
    med = {k: round(statistics.median(run[k] for run in runs), 4) for k in runs[0]}
    clip = {"frames": 125, "size": 512, "fps": 25, "median": med, "all_wall_s": [round(x["wall_s"], 3) for x in runs],
            "ms_per_frame_render": round(med["render_s"] / 125 * 1000, 2),
            "ms_per_frame_encode": round(med["encode_s"] / 125 * 1000, 2),
            "meets_5s_target": med["wall_s"] <= 5.0}
    print("clip:", clip, flush=True)

    # -- the warp alone, three ways ------------------------------------------------------------
    src, lm = _frame_source(img, face.landmarks, _crop_box(img.shape, face.box, "face"), 512, "face")
    d = Deformer(lm)
    moved = d.apply(d.smile(1.0) + d.blink(1.0), pitch=0.08, yaw=0.15)
    fast, exact = MeshWarper(src, lm, step=2), MeshWarper(src, lm, step=1)
    fast_ms, _ = _median_ms(lambda: fast.warp(moved), n)
    exact_ms, _ = _median_ms(lambda: exact.warp(moved), n)
    pts_dst = exact.pts0.copy()
    pts_dst[:468] = moved[:, :2]

    def sk() -> np.ndarray:
        tform = PiecewiseAffineTransform.from_estimate(pts_dst, exact.pts0)  # output -> input, as warp() wants
        return warp(src, tform, output_shape=src.shape[:2], preserve_range=True).astype(np.uint8)

    w0 = time.perf_counter()
    ref = sk()
    sk_ms = round((time.perf_counter() - w0) * 1000, 1)
    ours = exact.warp(moved)
    fast_img = fast.warp(moved)
    inside = ref.sum(2) > 0  # skimage leaves pixels outside the mesh black
    warp_cmp = {"remap_step2_ms": fast_ms, "remap_step1_ms": exact_ms, "skimage_piecewise_affine_ms": sk_ms,
                "ratio_skimage_vs_step2": round(sk_ms / fast_ms, 1),
                "ratio_step1_vs_step2": round(exact_ms / fast_ms, 2),
                "mean_abs_diff_step1_vs_skimage": round(float(np.abs(ours.astype(int) - ref)[inside].mean()), 3),
                "mean_abs_diff_step2_vs_step1": round(float(np.abs(fast_img.astype(int) - ours).mean()), 3)}
    print("warp:", warp_cmp, flush=True)

    import ai_edge_litert

    result = {
        "benchmark": "face animation on the 512x512 astronaut: landmarks, 5 s preset clip, warp, memory",
        "command": "python -m benchmarks.bench_face " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "opencv": cv2.__version__,
                    "ai_edge_litert": getattr(ai_edge_litert, "__version__", "?"),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "landmarks": landmarks, "clip_5s_25fps_512": clip, "warp": warp_cmp, "memory": memory,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
