"""Break 4 of issue 12: cancel from every entry point reaches the studio job and frees its lane;
a job's time limit does not count its model load."""
from __future__ import annotations

import json
import time

import pytest


def _wait(predicate, limit_s: float = 20.0, step_s: float = 0.05) -> bool:
    """Poll `predicate` for at most `limit_s` (a bound, not a timed assertion)."""
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def _running_jobs(studio, generator: str) -> list:
    return [j for j in list(studio.session._lanes["cpu"].running) if j.generator == generator] \
        if "cpu" in studio.session._lanes else []


def test_gradio_client_cancel_stops_the_job_and_frees_the_lane(app, client) -> None:
    before = len(list(app.studio.assets.records()))
    # 5 lines x 5 s of cooperative work: 25 s if nothing stops it
    call = client.submit(json.dumps({"prompt": "long", "repeat": 5, "delay": 5.0}), 1, api_name="/generate_echo")
    assert _wait(lambda: bool(_running_jobs(app.studio, "echo")))
    [job] = _running_jobs(app.studio, "echo")
    call.cancel()
    assert _wait(lambda: job.done, limit_s=10)
    assert job.state == "cancelled"
    assert _wait(lambda: not _running_jobs(app.studio, "echo"), limit_s=10)  # the lane is free
    nxt = client.predict(json.dumps({"prompt": "next"}), 2, api_name="/generate_echo")
    assert nxt["assets"]
    assert len(list(app.studio.assets.records())) == before + 1  # the cancelled job wrote nothing


def test_cancel_reaches_a_typed_run_endpoint_too(app, client) -> None:
    """/run_<generator> (issue 13's typed API) is one more way in: its cancel must reach the job."""
    call = client.submit(prompt="long", repeat=5, delay=5.0, seed=3, api_name="/run_echo")
    assert _wait(lambda: bool(_running_jobs(app.studio, "echo")))
    [job] = _running_jobs(app.studio, "echo")
    call.cancel()
    assert _wait(lambda: job.done, limit_s=10)
    assert job.state == "cancelled"
    assert _wait(lambda: not _running_jobs(app.studio, "echo"), limit_s=10)  # the lane is free


def test_ui_cancel_button_stops_the_job(app, browser) -> None:
    fn = browser.fn_index("echo-run")
    data = browser.inputs_for(fn, **{"echo-prompt": "slow", "echo-repeat": 5, "echo-delay": 5.0,
                                     "echo-seed": "1"})
    event_id = browser.join(fn, data)
    stream = browser.messages()
    for msg in stream:  # until the job is running
        if msg.get("event_id") == event_id and msg.get("msg") == "process_generating":
            if _running_jobs(app.studio, "echo"):
                break
    [job] = _running_jobs(app.studio, "echo")
    # the page's own Cancel (reads this session's job id from its state)
    cancelled = browser.predict(browser.fn_index("echo-cancel"), [None])
    assert cancelled.status_code == 200 and "cancelled" in cancelled.text, cancelled.text
    assert _wait(lambda: job.done, limit_s=10) and job.state == "cancelled"


def test_gradio_cancel_route_reaches_a_ui_run(app, browser) -> None:
    fn = browser.fn_index("echo-run")
    data = browser.inputs_for(fn, **{"echo-prompt": "slow", "echo-repeat": 5, "echo-delay": 5.0,
                                     "echo-seed": "2"})
    event_id = browser.join(fn, data)
    stream = browser.messages()
    for msg in stream:
        if msg.get("event_id") == event_id and _running_jobs(app.studio, "echo"):
            break
    [job] = _running_jobs(app.studio, "echo")
    r = browser.http.post("/gradio_api/cancel", json={"session_hash": browser.session_hash, "fn_index": fn,
                                                       "event_id": event_id})
    assert r.status_code == 200
    assert _wait(lambda: job.done, limit_s=10) and job.state == "cancelled"


def test_time_limit_does_not_count_the_model_load(make_slow_loader) -> None:
    studio = make_slow_loader(load_s=1.0)
    job = studio.submit("slowload", {"work_s": 0.3}, timeout=0.8)  # load 1.0 s + work 0.3 s > 0.8 s
    assert job.result(timeout=30).assets
    assert job.telemetry["load_s"] >= 1.0
    stuck = studio.submit("slowload", {"work_s": 5.0}, timeout=0.5)  # the work itself runs over
    from generators.base import TimedOut

    with pytest.raises(TimedOut):
        stuck.result(timeout=30)


def test_a_generator_that_ignores_its_time_limit_does_not_hold_the_lane(make_studio) -> None:
    """Break 5's second half: the timeout was reported while the stuck call kept the lane."""
    studio = make_studio()
    stuck = studio.submit("steps", {"steps": 1, "step_s": 4.0, "check": False, "tag": "stuck"}, timeout=0.3)
    with pytest.raises(Exception, match="time limit"):
        stuck.result(timeout=30)
    quick = studio.submit("steps", {"steps": 1, "tag": "quick"})
    assert quick.result(timeout=30).data["text"].startswith("quick")
    lane = studio.session._lanes["cpu"]
    assert stuck in lane.running  # the stuck call is still going: the quick job did not wait for it
    assert _wait(lambda: stuck not in lane.running, limit_s=30)
    assert _wait(lambda: len(lane.threads) == 1, limit_s=5)  # the stuck worker retired; the lane is its size
    assert studio.generate("steps", {"steps": 1, "tag": "after"}).data["text"].startswith("after")


def test_closing_the_studio_stops_running_work(make_studio) -> None:
    """Ctrl-C in `studio generate` closes the studio: the running job must stop, not finish."""
    studio = make_studio()
    job = studio.submit("steps", {"steps": 2000, "step_s": 0.01, "tag": "long"})
    assert _wait(lambda: job.state == "running")
    studio.close()
    assert job.state == "cancelled"
    lane = studio.session._lanes["cpu"]
    assert _wait(lambda: not lane.running, limit_s=10)  # the worker left the generator at its next step
