"""UI start-up: seconds from the `studio ui` command to a page a creator can use (target <= 6 s).

    python -m benchmarks.bench_ui_start [--runs 3]     # writes benchmarks/results/ui_start.json
    python -m benchmarks.bench_ui_start --runs 2 --baseline /path/to/older/checkout

With --baseline, the same start is timed from that checkout too (its `studio` package on
PYTHONPATH, same venv, runs interleaved under the same load), and the JSON gets before/after
ratios from this one run: the way to show what a start-up change bought on a shared machine.

Each run starts `STUDIO_HOME=<fresh temp> python -m studio.cli ui --port <free>` as a new process and
records, from the moment the command is started:
  http_s    the first HTTP 200 from the page's address;
  usable_s  Debian chromium (Playwright; /usr/bin/chromium) has drawn the first tab's workspace and
            its Write button is enabled: the moment a click would do something.
  server_cpu_s  CPU seconds the server process used up to that moment (all its threads; the
                model warm-up imports start once the page is served, so they are part of it);
  server_cpu_at_http_s  the same at the first HTTP 200;
  components, config_bytes  the page's size, read after the timing: the components in its config
                (what every start builds, every /config sends and every session's state holds) and
                the bytes of `GET /config` uncompressed.
The 1-minute load average is recorded beside each run: on a shared, busy machine every wall-clock
number stretches, so compare runs taken under similar load (the target is for an idle machine);
the server's CPU seconds do not stretch with the load and approximate an idle machine's wall time.
Starts that fail (Gradio's own 3-second localhost check gives up under heavy load) are listed.

The server runs as `make run` runs it on a creator's machine: Python writes and reuses its bytecode
cache (`__pycache__`, git-ignored) even when the calling shell sets PYTHONDONTWRITEBYTECODE (agent
and CI shells do; without the cache every start compiles again the 68 studio and generator modules
it loads, 686 KB of source: 0.25 CPU-s measured at load ~11). One untimed start per checkout comes
first, so the timed ones all start alike (bytecode written, files in the page cache), as a
creator's second and later starts do.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `studio bench ui_start` runs this file as a script
    sys.path.insert(0, str(ROOT))

from benchmarks.common import write_result  # noqa: E402

TARGET_S = 6.0
CHROMIUM = "/usr/bin/chromium"
READY = "#story-ws-write:not([disabled]), #story-run:not([disabled])"  # Story's first move, drawn, enabled
TIMEOUT_S = 180.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, start: float, proc: subprocess.Popen) -> float:
    while time.perf_counter() - start < TIMEOUT_S:
        if proc.poll() is not None:
            raise RuntimeError(f"studio ui exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(0.05)
    raise TimeoutError("no HTTP 200 within the timeout")


def one_run(browser, root: Path = ROOT) -> dict[str, float]:
    port = _free_port()
    home = Path(tempfile.mkdtemp(prefix="studio-bench-ui-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # see the module doc
    env.update(STUDIO_HOME=str(home), PYTHONPATH=str(root))
    load = os.getloadavg()[0]
    start = time.perf_counter()
    log = open(home / "ui.log", "wb")  # noqa: SIM115 - closed below, read on failure
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "ui", "--port", str(port)],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        http_s = _wait_http(url, start, proc)
        http_cpu_s = _cpu_seconds(proc.pid)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(url)
        page.wait_for_selector(READY, timeout=TIMEOUT_S * 1000)
        usable_s = time.perf_counter() - start
        cpu_s = _cpu_seconds(proc.pid)
        page.close()
        components, config_bytes = _page_size(url)
    except Exception:
        log.flush()
        print((home / "ui.log").read_text(errors="replace")[-3000:], file=sys.stderr)
        raise
    finally:
        log.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(home, ignore_errors=True)
    return {"http_s": round(http_s, 3), "usable_s": round(usable_s, 3), "server_cpu_at_http_s": round(http_cpu_s, 3),
            "server_cpu_s": round(cpu_s, 3), "components": components, "config_bytes": config_bytes,
            "load_1min": round(load, 2)}


def _page_size(url: str) -> tuple[int, int]:
    """(components in the page's config, bytes of GET /config uncompressed), read after the timing."""
    import json

    with urllib.request.urlopen(url + "config", timeout=60) as r:  # urllib asks for no gzip
        body = r.read()
    return len(json.loads(body).get("components", [])), len(body)


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) the server process has used so far (Linux /proc).

    On a busy shared machine wall time stretches with the load; the CPU the start-up needed does
    not, and on an idle machine the wall time is about this (the start is mostly one thread).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {f"median_{k}": round(statistics.median(r[k] for r in runs), 3)
            for k in ("http_s", "usable_s", "server_cpu_at_http_s", "server_cpu_s", "components", "config_bytes",
                      "load_1min")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--baseline", type=Path, default=None,
                    help="an older checkout to time alongside (before/after ratios from one run)")
    ap.add_argument("--baseline-label", default="",
                    help="what the baseline is (e.g. 'git archive 4257430'), recorded in the JSON")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    roots = {"current": ROOT}
    if args.baseline is not None:
        roots["baseline"] = args.baseline.resolve()
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in roots}
    failures: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        for name in roots:  # untimed: writes the bytecode cache, fills the page cache (module doc)
            try:
                one_run(browser, roots[name])
            except (RuntimeError, TimeoutError) as exc:
                failures.append(f"{name} (warm-up): {exc}")
        for i in range(args.runs):
            order = list(roots) if i % 2 == 0 else list(reversed(roots))  # neither side always first
            for name in order:
                for _attempt in range(2):  # one retry: e.g. Gradio's own localhost check timing out
                    try:
                        runs[name].append(one_run(browser, roots[name]))
                        print(name, runs[name][-1], flush=True)
                        break
                    except (RuntimeError, TimeoutError) as exc:
                        failures.append(f"{name}: {exc}")
        browser.close()
    if not runs["current"]:
        raise SystemExit(f"no run reached a usable page: {failures}")
    now = _summary(runs["current"])
    usable = now["median_usable_s"]
    result = {"target_s": TARGET_S, "runs": runs["current"], **now,
              "usable_over_target": round(usable / TARGET_S, 3), "cpus": os.cpu_count(),
              "failed_starts": failures, "load_avg_at_end": [round(x, 2) for x in os.getloadavg()],
              "bytecode_cache": "written and reused, after one untimed start per checkout (module doc)"}
    if runs.get("baseline"):
        before = _summary(runs["baseline"])
        result["baseline"] = {"checkout": str(roots["baseline"]), "label": args.baseline_label,
                              "runs": runs["baseline"], **before}
        result["after_over_before"] = {k: round(now[f"median_{k}"] / before[f"median_{k}"], 3)
                                       for k in ("http_s", "usable_s", "server_cpu_at_http_s", "server_cpu_s",
                                                 "components", "config_bytes")}
    write_result("ui_start", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
