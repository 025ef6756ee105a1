"""The UI's event functions against a real Studio: streaming progress, cancel, rating, A/B, gallery."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from studio.api import Studio
from studio.config import Settings
from tests.ui_fixtures import REGISTRY


def request(session: str, username: str | None = None) -> Any:
    return SimpleNamespace(session_hash=session, username=username)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import create_app

    studio = Studio(Settings(home=tmp_path_factory.mktemp("handlers-home")), registry=REGISTRY)
    demo = create_app(studio)
    yield demo.studio_context, studio
    studio.close()


def run_all(panel, values: list[Any], seed: Any, ab: bool, who: str = "A") -> list[dict]:
    return list(panel.handlers["run"](request(who), *values, seed, ab))


ECHO = ["streamed words", 3, "calm", False, 0.0, ""]  # prompt, repeat, mood, shout, delay, model


def test_run_streams_progress_and_tokens_then_shows_the_output(app) -> None:
    ctx, _ = app
    panel = ctx.panels["echo"]
    c = panel.components
    updates = run_all(panel, ECHO, 11, False)
    progress = [u[c["progress"]] for u in updates if c["progress"] in u]
    assert 'data-state="queued"' in progress[0] and 'data-state="done"' in progress[-1]
    assert any('data-state="running"' in p for p in progress)
    live = [u[c["live"]]["value"] for u in updates if c["live"] in u and u[c["live"]].get("value")]
    assert live and live[-1].count("streamed words") == 3  # tokens arrived one line at a time
    final = updates[-1]
    text_box = c["view"].text
    assert "streamed words #" in final[text_box]["value"] and final[text_box]["visible"]
    assert final[c["fb_group"]]["visible"] is True and final[c["last_seed"]] == 11
    record = final[c["current"]]["record"]
    assert record["generator"] == "echo" and len(record["sha256"]) == 64 and record["seed"] == 11
    assert final[c["view"].provenance]["value"]["seed"] == 11


def test_rating_is_saved_only_through_the_store(app) -> None:
    import gradio as gr

    ctx, _ = app
    panel = ctx.panels["echo"]
    current = run_all(panel, ECHO, 5, False)[-1][panel.components["current"]]
    before = ctx.feedback.count()["ratings"]
    status = panel.handlers["save_rating"](current, "5", "up", "crisp", "good", request("A"))
    assert status.startswith("✅ Rating saved")
    assert ctx.feedback.count()["ratings"] == before + 1
    [row] = [r for r in ctx.feedback.iter_ratings() if r["comment"] == "good"]
    assert row["asset_sha256"] == current["record"]["sha256"] and row["seed"] == 5
    assert row["user_id"] == "session:A" and row["session_id"] == "A" and row["thumb"] == 1
    with pytest.raises(gr.Error, match="give stars"):
        panel.handlers["save_rating"](current, None, None, "", "", request("A"))
    with pytest.raises(gr.Error, match="Generate something first"):
        panel.handlers["save_rating"](None, "3", None, "", "", request("A"))


def test_blind_ab_makes_two_and_records_the_vote(app) -> None:
    ctx, _ = app
    panel = ctx.panels["echo"]
    c = panel.components
    final = run_all(panel, ECHO, 40, True)[-1]
    pair = final[c["ab_pair"]]
    assert final[c["ab_group"]]["visible"] is True and final[c["current"]] is None
    assert sorted(r["seed"] for r in pair) == [40, 41]
    assert final[c["view_1"].provenance]["visible"] is False  # blind until the vote
    status, cleared, current, _ = panel.handlers["vote"]("tie")(pair, request("A"))
    assert status.startswith("✅ Vote saved") and cleared is None and current is None
    [vote] = list(ctx.feedback.iter_comparisons())
    assert vote["winner"] == "tie" and {vote["a_seed"], vote["b_seed"]} == {40, 41}
    # A winner becomes the panel's output: it can be rated and sent on.
    pair = run_all(panel, ECHO, 50, True)[-1][c["ab_pair"]]
    status, _, current, fb = panel.handlers["vote"]("b")(pair, request("A"))
    assert current["record"] == pair[1] and current["paths"][0] == pair[1]["path"] and fb["visible"]
    assert panel.handlers["save_rating"](current, "4", None, "", "winner", request("A")).startswith("✅")


def test_cancel_stops_only_your_own_job(app) -> None:
    import gradio as gr

    ctx, _ = app
    panel = ctx.panels["echo"]
    c = panel.components
    slow = ["slow", 5, "calm", False, 2.0, ""]
    updates: list[dict] = []
    worker = threading.Thread(target=lambda: updates.extend(panel.handlers["run"](request("A"), *slow, 1, False)))
    worker.start()
    deadline = time.monotonic() + 30
    while not any(u.get(c["job"]) for u in list(updates)) and time.monotonic() < deadline:
        time.sleep(0.05)
    job_id = next(u[c["job"]] for u in list(updates) if u.get(c["job"]))
    with pytest.raises(gr.Error, match="only the user who started a job"):
        panel.handlers["cancel"](job_id, request("B"))
    assert ctx.job(job_id).state in ("queued", "running")
    assert 'data-state="cancelled"' in panel.handlers["cancel"](job_id, request("A"))
    worker.join(timeout=30)
    assert not worker.is_alive()
    assert ctx.job(job_id).state == "cancelled"
    assert 'data-state="cancelled"' in updates[-1][c["progress"]]


def test_bad_input_is_a_sentence_in_place_and_keeps_the_result(app) -> None:
    ctx, _ = app
    panel = ctx.panels["echo"]
    c = panel.components

    def refused(values: list[Any], seed: Any, match: str) -> None:
        [only] = run_all(panel, values, seed, False)  # one update: nothing on screen is cleared
        assert set(only) == {c["progress"], c["error"]}
        assert 'data-state="failed"' in only[c["progress"]] and "not started" in only[c["progress"]]
        assert 'data-fraction="0.000"' in only[c["progress"]]  # no stale 100% done
        assert only[c["error"]]["visible"] and match in only[c["error"]]["value"]

    refused(["   ", 1, "calm", False, 0.0, ""], "", "write a prompt first")
    refused(ECHO, "abc", "whole number")
    refused(["x", 9, "calm", False, 0.0, ""], "", "repeat must be between")
    # A good run afterwards hides the note again and shows its own result.
    updates = run_all(panel, ECHO, 2, False)
    assert updates[0][c["error"]]["visible"] is False and 'data-state="done"' in updates[-1][c["progress"]]


def test_generate_is_disabled_while_its_job_runs(app) -> None:
    ctx, _ = app
    panel = ctx.panels["echo"]
    c = panel.components
    updates = run_all(panel, ECHO, 4, False)
    states = [u[c["run_btn"]]["interactive"] for u in updates if c["run_btn"] in u]
    assert states == [False, True]


def test_a_failing_job_shows_why_where_the_output_was(app, tmp_path: Path) -> None:
    """A text file named .png: the job fails, the reason replaces the output, no "done" stays."""
    ctx, _ = app
    panel = ctx.panels["pixels"]
    c = panel.components
    fake = tmp_path / "not-a-picture.png"
    fake.write_text("just words")
    updates = run_all(panel, ["tint", 8, str(fake)], 1, False)
    last = updates[-1]
    assert 'data-state="failed"' in last[c["progress"]] and 'data-fraction="0.000"' in last[c["progress"]]
    assert last[c["error"]]["visible"] and "Could not make this" in last[c["error"]]["value"]
    # (The input gate may refuse it before a job starts; either way Generate is usable again.)
    assert last.get(c["run_btn"], {"interactive": True})["interactive"] is True
    assert not any('data-state="done"' in u.get(c["progress"], "") for u in updates)


def test_gallery_filters_restores_and_reruns(app, tmp_path: Path) -> None:
    ctx, studio = app
    panel = ctx.panels["pixels"]
    updates = run_all(panel, ["a red square", 8, None], 77, False)
    previews = [u[panel.components["preview"]] for u in updates if panel.components["preview"] in u]
    assert any(p.get("visible") and hasattr(p.get("value"), "mode") for p in previews)  # the live preview
    assert previews[-1]["visible"] is False  # hidden once the result shows
    final = updates[-1]
    png = Path(final[panel.components["current"]]["paths"][0])
    h = ctx.handlers
    summary, images, rows, pick, kept = h["search"]("pixels", "red square", "77", "any")[:5]
    assert summary == "1 job(s)" and rows[0][1] == "pixels" and rows[0][4] == 77 and rows[0][3] == 1
    assert images[0][0] == str(png) and pick["choices"][0][1] == str(png)
    assert h["search"]("pixels", "red square", "77", "4+ stars")[0] == "0 job(s)"
    ctx.feedback.rate({**studio.restore(png)["record"], "path": str(png)}, stars=5)
    assert h["search"]("pixels", "red square", "77", "4+ stars")[0] == "1 job(s)"
    # drop a copy of the file (no sidecar: the settings come from the PNG itself)
    copy = tmp_path / "dropped.png"
    copy.write_bytes(png.read_bytes())
    state, shown, note = h["dropped"](str(copy))
    assert state["generator"] == "pixels" and state["seed"] == 77 and state["params"]["prompt"] == "a red square"
    steps = list(h["run_again"](state, request("A")))  # progress moves, then the result shows
    assert any('data-state="running"' in v or 'data-state="queued"' in v
               for u in steps for v in u.values() if isinstance(v, str))
    assert 'data-state="done"' in "".join(v for v in steps[-2].values() if isinstance(v, str))
    again = [u for u in steps[-1].values() if isinstance(u, dict) and isinstance(u.get("value"), list)]
    rerun_png = Path(again[0]["value"][0])
    assert rerun_png != png and rerun_png.read_bytes() != b""
    from PIL import Image

    assert list(Image.open(rerun_png).getdata()) == list(Image.open(png).getdata())  # same seed, same pixels
    opened = h["open_in_tab"](state)
    assert opened[panel.seed] == "77"
    assert opened[panel.form.field("prompt").component]["value"] == "a red square"
    assert opened[ctx.tabs].selected == "more"


def test_send_to_puts_the_image_into_another_generators_upload(app) -> None:
    import gradio as gr

    ctx, _ = app
    pixels = ctx.panels["pixels"]
    current = run_all(pixels, ["to send", 8, None], 3, False)[-1][pixels.components["current"]]
    sent = ctx.handlers["send"](current, "pixels:image")
    assert sent[pixels.form.field("image").component] == current["paths"][0]
    echo_current = run_all(ctx.panels["echo"], ECHO, 3, False)[-1][ctx.panels["echo"].components["current"]]
    refused = ctx.handlers["send"](echo_current, "pixels:image")
    assert len(refused) == 1 and "no image file" in next(iter(refused.values()))  # a note, no Error badges
    assert "Generate something first" in next(iter(ctx.handlers["send"](None, "pixels:image").values()))


def test_feedback_tab_counts_ranks_and_exports(app) -> None:
    ctx, studio = app
    text, table, frame, ranks = ctx.handlers["feedback_refresh"]("all")
    n = ctx.feedback.count()
    assert f"**{n['ratings']}** rating(s)" in text and f"**{n['comparisons']}** A/B vote(s)" in text
    assert any(row[0] == "echo" for row in table)
    assert "variant" in frame.columns
    for kind in ("jsonl", "csv", "dpo"):
        path = Path(ctx.handlers[f"export_{kind}"]())
        assert path.is_file()
        assert (Path(studio.settings.home) / "exports" / path.name).read_bytes() == path.read_bytes()
    lines = [json.loads(s) for s in Path(ctx.handlers["export_jsonl"]()).read_text().splitlines()]
    assert sum(1 for l in lines if l["type"] == "rating") == n["ratings"]
    # A private studio: another browser sees and exports none of these ratings.
    stranger = request("someone-else")
    text, *_ = ctx.handlers["feedback_refresh"]("all", stranger)
    assert "**0** rating(s)" in text and "**0** A/B vote(s)" in text
    assert Path(ctx.handlers["export_jsonl"](stranger)).read_text() == ""


def test_output_view_picks_a_widget_per_file_kind(tmp_path: Path) -> None:
    import gradio as gr

    from studio.ui.form import OutputView

    files = {name: tmp_path / name for name in ("a.png", "b.wav", "c.mp4", "d.svg", "e.fountain", "f.mid")}
    for path in files.values():
        path.write_bytes(b"x")
    files["e.fountain"].write_text("INT. STUDIO - NIGHT")
    with gr.Blocks():
        view = OutputView(prefix="t")
    gallery, audio, video, svg, text, downloads, provenance = view.show(list(files.values()), {"seed": 1})
    assert gallery["value"] == [str(files["a.png"])] and audio["value"] == str(files["b.wav"])
    assert video["value"] == str(files["c.mp4"])
    assert f'src="gradio_api/file={files["d.svg"]}"' in svg["value"] and svg["visible"]
    assert text["value"] == "INT. STUDIO - NIGHT"
    assert len(downloads["value"]) == 6 and str(files["f.mid"]) in downloads["value"]
    assert provenance["value"] == {"seed": 1} and provenance["visible"]


def test_ab_can_vary_any_setting_and_the_ranking_fills(tmp_path: Path) -> None:
    from studio.ui.app import create_app

    (tmp_path / "models" / "big").mkdir(parents=True)  # a model the operator offers (model_dirs)
    studio = Studio(Settings(home=tmp_path / "home", model_dirs=(str(tmp_path / "models"),)), registry=REGISTRY)
    try:
        _vary_model(create_app(studio).studio_context)
    finally:
        studio.close()


def _vary_model(ctx: Any) -> None:
    panel = ctx.panels["echo"]
    c = panel.components
    before = len(ctx.feedback.ranking(generator="echo"))
    final = run_all_ab(panel, ECHO, 21, "model", "big")[-1]
    pair = final[c["ab_pair"]]
    assert [r["seed"] for r in pair] == [21, 21]  # one seed: only the setting differs
    assert sorted(r["params"]["model"] for r in pair) == ["", "big"]
    status, *_ = panel.handlers["vote"]("a")(pair, request("A"))
    assert "model='big'" in status  # the reveal names the difference
    ranking = ctx.feedback.ranking(generator="echo")
    assert len(ranking) >= max(2, before) and any("model=big" in str(r) for r in ranking)
    # A value of the wrong type, or no difference at all, is a sentence before any job.
    [refused] = run_all_ab(panel, ECHO, 1, "repeat", "many")
    assert "must be a number" in refused[c["error"]]["value"]
    [same] = run_all_ab(panel, ECHO, 1, "mood", "calm")
    assert "same as A&#x27;s" in same[c["error"]]["value"]  # (escaped for the page)


def run_all_ab(panel, values: list[Any], seed: Any, field: str, value: str) -> list[dict]:
    return list(panel.handlers["run"](request("A"), *values, seed, True, field, value))


def test_gallery_one_card_per_job_delete_and_undo(app) -> None:
    ctx, studio = app
    h = ctx.handlers
    pen = ctx.panels["pixels"]
    current = run_all(pen, ["to delete", 8, None], 909, False)[-1][pen.components["current"]]
    main = Path(current["paths"][0])
    summary, images, rows, pick, kept = h["search"]("pixels", "to delete", "909", "any")[:5]
    assert summary == "1 job(s)" and len(images) == 1
    index = studio.assets.index_path
    assert main.name in index.read_text()
    stranger = h["delete"](str(main), "pixels", "to delete", "909", "any", request("B"))
    assert any(isinstance(v, str) and "only the creator" in v for v in stranger.values()) and main.exists()
    out = h["delete"](str(main), "pixels", "to delete", "909", "any", request("A"))
    status = next(v for v in out.values() if isinstance(v, str) and v.startswith("Deleted job"))
    assert "1 file(s)" in status and not main.exists()
    assert not main.with_name(main.name + ".json").exists() and main.name not in index.read_text()
    assert h["search"]("pixels", "to delete", "909", "any")[0] == "0 job(s)"
    trash = studio.assets.root / ".trash"
    [job_dir] = list(trash.iterdir())
    stranger = h["undo_delete"](job_dir.name, "pixels", "to delete", "909", "any", request("B"))
    assert any(isinstance(v, str) and "only the creator" in v for v in stranger.values()) and not main.exists()
    back = h["undo_delete"](job_dir.name, "pixels", "to delete", "909", "any", request("A"))
    assert any(isinstance(v, str) and v.startswith("Restored job") for v in back.values())
    assert main.is_file() and main.with_name(main.name + ".json").is_file() and main.name in index.read_text()
    assert h["search"]("pixels", "to delete", "909", "any")[0] == "1 job(s)" and studio.restore(main)["seed"] == 909
    refused = h["delete"](None, "all", "", "", "any")
    assert "Pick a job first" in next(iter(refused.values()))


def test_gallery_compares_two_jobs_and_refreshes_on_new_outputs(app) -> None:
    ctx, studio = app
    h = ctx.handlers
    pen = ctx.panels["pixels"]
    first = Path(run_all(pen, ["compare me", 8, None], 5, False)[-1][pen.components["current"]]["paths"][0])
    out = h["search"]("pixels", "compare me", "", "any")
    seen = out[-1]
    assert h["gallery_poll"]() == seen  # nothing new since the search
    assert h["on_new_outputs"](h["gallery_poll"](), seen, "pixels", "compare me", "", "any", None, None, None)[0] \
        == {"__type__": "update"}  # (skipped)
    second = Path(run_all(pen, ["compare me too", 8, None], 6, False)[-1][pen.components["current"]]["paths"][0])
    moved = h["gallery_poll"]()
    assert moved != seen
    fresh = h["on_new_outputs"](moved, seen, "pixels", "compare me", "", "any", str(first), None, None)
    assert fresh[0] == "2 job(s)" and fresh[3]["value"] == str(first)  # new job listed, the pick kept
    kept = fresh[4]
    # compare mode: the first card clicked is A, the second B
    evt = lambda i: SimpleNamespace(index=i)  # noqa: E731
    picks = [r["path"] for r in kept]
    assert h["card_clicked"](kept, True, None, None, evt(0))[1] == picks[0]
    assert h["card_clicked"](kept, True, picks[0], None, evt(1))[2] == picks[1]
    assert h["card_clicked"](kept, False, None, None, evt(1))[0] == picks[1]
    diff, *views = h["compare"](str(first), str(second), request("A"))
    assert "compare me too" in diff and "seed" in diff and ">5<" in diff and ">6<" in diff
    images_a, images_b = views[0], views[6]
    assert images_a["value"] == [str(first)] and images_b["value"] == [str(second)]
    import gradio as gr

    with pytest.raises(gr.Error, match="not one of yours"):
        h["compare"](str(first), str(second), request("B"))


def test_gallery_run_again_can_be_cancelled(app) -> None:
    ctx, _ = app
    h = ctx.handlers
    state = {"generator": "echo", "params": {"prompt": "slow again", "repeat": 5, "delay": 2.0}, "seed": 3}
    updates: list[dict] = []
    worker = threading.Thread(target=lambda: updates.extend(h["run_again"](state, request("A"))))
    worker.start()
    deadline = time.monotonic() + 30
    ids = []
    while not ids and time.monotonic() < deadline:  # wait for the job id the Cancel button uses
        ids = [v for u in list(updates) for v in u.values() if isinstance(v, str) and ctx.job(v) is not None]
        time.sleep(0.05)
    assert ids, "the re-run never reported its job"
    assert 'data-state="cancelled"' in h["cancel_rerun"](ids[0], request("A"))
    worker.join(timeout=30)
    assert not worker.is_alive() and ctx.job(ids[0]).state == "cancelled"
    assert 'data-state="cancelled"' in "".join(v for v in updates[-1].values() if isinstance(v, str))
    assert not any("Ran **echo** again" in str(v) for u in updates for v in u.values())
