"""`restore` on hostile metadata must answer in under a second (issue 13): time each case.

    python -m benchmarks.bench_restore            # writes benchmarks/results/restore.json

Cases: a 30 MB record in a PNG tEXt chunk, a zTXt zip bomb (50 MB inflated), a nesting bomb,
non-UTF-8 bytes, an MP4 whose comment is a phone's ("Shot on my phone"), and a good PNG as the
baseline. Each: median of repeats, and its ratio to the 1 s target.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

from benchmarks.common import write_result
from generators.base import InvalidInput
from studio.assets import restore
from tests.roundtrip.test_media_restore import _png_with_chunk

TARGET_S = 1.0


def _cases(folder: Path) -> dict[str, Path]:
    import imageio_ffmpeg

    files = {
        "huge_30MB": _png_with_chunk(b"studio", b'{"a":"' + b"x" * 30_000_000 + b'"}'),
        "zip_bomb_50MB": _png_with_chunk(b"studio", b"\x00" + zlib.compress(b"{" + b" " * 50_000_000 + b"}", 9),
                                         b"zTXt"),
        "nesting_bomb": _png_with_chunk(b"studio", b"[" * 400_000 + b"]" * 400_000),
        "not_utf8": _png_with_chunk(b"studio", b"\x00\x00\x00\x00" + b'{"g": "\xff"}', b"iTXt"),
        "good_png": _png_with_chunk(b"studio", b'{"format": "studio-provenance/1", "generator": "gan", '
                                               b'"params": {}, "seed": 1}'),
    }
    out = {}
    for name, data in files.items():
        out[name] = folder / f"{name}.png"
        out[name].write_bytes(data)
    out["phone_mp4"] = folder / "phone.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    "color=c=black:s=32x32:d=0.2", "-metadata", "comment=Shot on my phone", str(out["phone_mp4"])],
                   check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    result: dict[str, dict[str, float | str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in _cases(Path(tmp)).items():
            samples, answer = [], ""
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                try:
                    answer = f"ok: {restore(path).generator}"
                except InvalidInput as exc:
                    answer = f"InvalidInput: {exc}"
                samples.append(time.perf_counter() - t0)
            median = statistics.median(samples)
            result[name] = {"median_s": round(median, 4), "ratio_to_target": round(median / TARGET_S, 4),
                            "answer": answer[:160]}
            print(f"{name:<14} {median * 1000:8.1f} ms  {answer[:100]}")
    write_result("restore", {"target_s": TARGET_S, "cases": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
