"""Shared helpers for benchmarks: timing, medians and the JSON result file."""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_s": statistics.median(ordered), "p10_s": ordered[len(ordered) // 10],
            "p90_s": ordered[(len(ordered) * 9) // 10], "n": len(ordered)}


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write benchmarks/results/<name>.json atomically, with the machine it ran on."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version()}, **result}
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1, sort_keys=True))
    os.replace(tmp, path)
    print(json.dumps(result, indent=1, sort_keys=True))
    return path
