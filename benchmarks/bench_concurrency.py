"""Many remote programs at once: N gradio_client clients against one studio (issue #12, break 9).

    python -m benchmarks.bench_concurrency [--clients 40] [--label after]
        # writes benchmarks/results/concurrency.json (one entry per --label, others kept)

The studio runs as its own process (`python -m studio.cli ui`, the shipped registry, a fresh
home), so the clients' threads do not share its interpreter. Each of N threads builds a
`gradio_client.Client` (which downloads the page config and the API description) and runs one
cheap job, a 1x1 grid of 8x8 Picbreeder pictures through `/run_breeder`, all released together.
Recorded:
  ok / failed           clients whose job returned / raised (with the first few errors, and
                        how many failures were the studio's "busy" sentence, not a time-out);
  client_s  p50 / p95   seconds to build the Client;
  join_s    p50 / p95   seconds of the `POST /gradio_api/queue/join` request (gradio_client
                        gives it httpx's default 5 s timeout: past that the job is lost);
  total_s   p50 / p95   seconds from release to the job's result;
  config_bytes          `/config` as served raw, and with `Accept-Encoding: gzip` (what the wire
                        carries for a browser or httpx, which both ask for gzip);
  clients_cpu_s         CPU seconds the clients' own process spent (gradio_client makes a fresh
                        TLS context for every request, ~0.2 s each: with 40 threads in one
                        process that is seconds of client-side work, beside the server's);
  server_cpu_s          CPU seconds the studio process spent during the run;
  load_1min             the machine's load average when the run started: on a shared machine
                        compare runs taken under similar load.
`--session-state` instead measures, in this process on the real page, what one new Gradio
session costs with Gradio's eager SessionState and with the studio's lazy one
(studio.ui.lazy_session): CPU seconds and traced MB per session, rounds interleaved.
One warm-up job runs first (the breeder's first load imports torch: start-up, not concurrency).
To measure the code before a change, run this file from a checkout of that commit
(`git archive <commit> | tar -x -C /tmp/old`, copy this file in, `--label before`).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `studio bench concurrency` runs this file as a script
    sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, write_result  # noqa: E402

BUSY_WORDS = ("busy", "queue is full")  # a full queue answers at once with one of these, not a time-out
START_TIMEOUT_S = 240.0
JOB = {"mode": "random", "rows": 1, "cols": 1, "width": 8, "height": 8, "seed": 1}  # milliseconds of work


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, proc: subprocess.Popen) -> None:
    import httpx

    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"studio ui exited with {proc.returncode}")
        try:
            if httpx.get(url + "/config", timeout=30).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the studio did not answer in time")


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], 3)


def _cpu_seconds(pid: int | None) -> float | None:
    """utime + stime of a process (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config_bytes(url: str) -> dict[str, int]:
    import httpx

    raw = httpx.get(url + "/config", headers={"Accept-Encoding": "identity"}, timeout=60)
    with httpx.stream("GET", url + "/config", headers={"Accept-Encoding": "gzip"}, timeout=60) as r:
        wire = sum(len(chunk) for chunk in r.iter_raw())
        encoding = r.headers.get("content-encoding", "identity")
    return {"raw": len(raw.content), "served": wire, "served_encoding": encoding}


def warm_up(url: str) -> None:
    """One job first: the breeder's first load (torch's import) is start-up cost, not concurrency."""
    from gradio_client import Client

    Client(url, verbose=False, download_files=False).predict(**JOB, api_name="/run_breeder")


def run_clients(url: str, n: int) -> dict[str, Any]:
    """N threads, each one Client and one job, released together."""
    import httpx
    from gradio_client import client as gc_client
    from gradio_client import Client

    joins: list[float] = []  # gradio_client posts from its helper threads: one list, not per thread
    real_post = httpx.post

    def timed_post(target: Any, *args: Any, **kwargs: Any) -> Any:  # times queue/join per thread
        start = time.perf_counter()
        try:
            return real_post(target, *args, **kwargs)
        finally:
            if "/queue/join" in str(target):
                joins.append(time.perf_counter() - start)

    gc_client.httpx.post = timed_post  # the module gradio_client's Client posts through
    rows: list[dict[str, Any]] = []
    lock = threading.Lock()
    gate = threading.Barrier(n)

    def one() -> None:
        row: dict[str, Any] = {}
        gate.wait()
        start = time.perf_counter()
        try:
            client = Client(url, verbose=False, download_files=False)
            row["client_s"] = time.perf_counter() - start
            client.predict(**JOB, api_name="/run_breeder")
            row["ok"] = True
        except Exception as exc:  # noqa: BLE001 - recorded
            row["ok"] = False
            where = getattr(getattr(exc, "_request", None), "url", None)  # httpx errors name their request
            row["error"] = f"{type(exc).__name__}: {exc}" + (f" ({where.path})" if where is not None else "")
        row["total_s"] = time.perf_counter() - start
        with lock:
            rows.append(row)

    cpu = time.process_time()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    gc_client.httpx.post = real_post
    cpu = time.process_time() - cpu
    failed = [r for r in rows if not r["ok"]]
    key = lambda k: joins if k == "join_s" else [r[k] for r in rows if k in r]  # noqa: E731
    return {"clients": n, "ok": n - len(failed), "failed": len(failed),
            "failed_busy": sum(any(w in r["error"].lower() for w in BUSY_WORDS) for r in failed),
            "errors": sorted({r["error"] for r in failed})[:5],
            "client_s": {"p50": _pct(key("client_s"), .5), "p95": _pct(key("client_s"), .95)},
            "join_s": {"p50": _pct(key("join_s"), .5), "p95": _pct(key("join_s"), .95),
                       "over_5s": sum(v > 5 for v in key("join_s"))},
            "total_s": {"p50": _pct(key("total_s"), .5), "p95": _pct(key("total_s"), .95)},
            "clients_cpu_s": round(cpu, 2)}  # the clients' own CPU (this process), beside the server's


def session_state_cost(sessions: int = 10, rounds: int = 3) -> dict[str, Any]:
    """CPU-s and MB per new session of the real page: Gradio's eager state against the lazy one."""
    import tracemalloc

    from gradio import state_holder

    from studio.api import Studio
    from studio.config import Settings
    from studio.ui import lazy_session
    from studio.ui.app import create_app

    home = Path(tempfile.mkdtemp(prefix="studio-bench-session-"))
    studio = Studio(Settings(home=home))
    try:
        demo = create_app(studio)
        lazy = lazy_session.lazy_session_class()
        assert lazy is not None, "Gradio's SessionState changed shape"
        eager = lazy.__mro__[1]
        runs: dict[str, list[tuple[float, float]]] = {"eager": [], "lazy": []}
        for _ in range(rounds):
            for name, cls in (("eager", eager), ("lazy", lazy)):
                tracemalloc.start()
                cpu = time.process_time()
                kept = [cls(demo) for _ in range(sessions)]
                cpu = time.process_time() - cpu
                size = tracemalloc.get_traced_memory()[0]
                tracemalloc.stop()
                del kept
                runs[name].append((cpu / sessions, size / sessions / 1e6))
        out: dict[str, Any] = {"blocks": len(demo.blocks), "sessions_per_round": sessions, "rounds": rounds}
        for name, rows in runs.items():
            out[name] = {"cpu_s": round(statistics.median(r[0] for r in rows), 4),
                         "mb": round(statistics.median(r[1] for r in rows), 3)}
        out["cpu_ratio_lazy_over_eager"] = round(out["lazy"]["cpu_s"] / out["eager"]["cpu_s"], 4)
        out["mb_ratio_lazy_over_eager"] = round(out["lazy"]["mb"] / out["eager"]["mb"], 4)
        out["load_1min"] = round(os.getloadavg()[0], 2)
        return out
    finally:
        studio.close()
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--label", default="current", help="name of this run in the result file (e.g. before, after)")
    parser.add_argument("--url", help="an already running studio (default: start one)")
    parser.add_argument("--session-state", action="store_true",
                        help="measure one new session's state, eager vs lazy, instead of clients")
    args = parser.parse_args(argv)
    path = RESULTS / "concurrency.json"
    previous_all: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    if args.session_state:
        cost = session_state_cost()
        write_result("concurrency", {"command": "python -m benchmarks.bench_concurrency --clients N --label L",
                                     "runs": previous_all.get("runs", {}), "session_state": cost,
                                     "session_state_command": "python -m benchmarks.bench_concurrency --session-state"})
        return 0
    home = Path(tempfile.mkdtemp(prefix="studio-bench-conc-"))
    proc = None
    try:
        url = args.url.rstrip("/") if args.url else None
        if url is None:
            port = _free_port()
            env = {**os.environ, "STUDIO_HOME": str(home), "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
            log = open(home / "ui.log", "wb")  # noqa: SIM115 - lives as long as the server
            proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "ui", "--port", str(port)],
                                    cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}"
            _wait_up(url, proc)
            time.sleep(5)  # let the start-up warm-up imports finish
        load = os.getloadavg()[0]
        sizes = config_bytes(url)
        warm_up(url)
        server_cpu = _cpu_seconds(proc.pid if proc else None)
        run = run_clients(url, args.clients)
        if server_cpu is not None:
            run["server_cpu_s"] = round(_cpu_seconds(proc.pid) - server_cpu, 2)  # type: ignore[arg-type, operator]
        run.update(config_bytes=sizes, load_1min=round(load, 2))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(home, ignore_errors=True)
    previous = previous_all.get("runs", {})
    previous[args.label] = run
    extra = {k: v for k, v in previous_all.items() if k.startswith("session_state")}
    write_result("concurrency", {"command": "python -m benchmarks.bench_concurrency --clients N --label L",
                                 "runs": previous, **extra})
    return 0 if run["failed"] == run["failed_busy"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
