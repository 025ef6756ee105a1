"""The purpose-built workspaces' event functions against a real Studio (no browser): fast."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from studio.api import Studio
from studio.config import Settings
from tests.ui_fixtures import WORKSPACE_REGISTRY


def request(session: str = "A") -> Any:
    return SimpleNamespace(session_hash=session, username=None)


def click(index: int) -> Any:
    return SimpleNamespace(index=index)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import create_app

    studio = Studio(Settings(home=tmp_path_factory.mktemp("ws-home")), registry=WORKSPACE_REGISTRY)
    demo = create_app(studio)
    yield demo.studio_context, studio
    studio.close()


def last(updates: Any) -> dict:
    updates = list(updates)
    return updates[-1]


def test_breeder_pick_breed_undo_and_go_back(app) -> None:
    ctx, studio = app
    ws = ctx.workspaces["breeder"]
    h = ws.handlers
    lineage = {"gens": [], "cur": -1}
    # Breeding before any grid is a sentence, not an error badge.
    assert "Make a grid first" in last(h["breed"](["1"], 0.5, 0.5, 2, 2, 32, "hsv", "none", "", lineage, request()))[ws.status]
    out = last(h["new_grid"](2, 2, 32, 4, "hsv", "none", "7", lineage, request()))
    lineage = out[ws.lineage]
    [gen] = lineage["gens"]
    assert len(gen["images"]) == 4 and all(Path(p).is_file() for p in gen["images"]) and gen["seed"] == 7
    assert [c for _, c in out[ws.grid]["value"]] == ["1", "2", "3", "4"] and out[ws.grid]["columns"] == 2
    assert "genomes" not in str(out[ws.status]).lower()
    # Click candidates 2 and 4 (and 4 again off and on): they are the picked parents.
    picked: list[str] = []
    for index in (1, 3, 3, 3):
        shown = h["toggle"](lineage, picked, click(index))
        picked = shown[ws.picked]["value"]
    assert picked == ["2", "4"] and [c for _, c in shown[ws.grid]["value"]] == ["1", "✓ 2 picked", "3", "✓ 4 picked"]
    assert "Pick at least one" in last(h["breed"]([], 0.5, 0.5, 2, 2, 32, "hsv", "none", "", lineage, request()))[ws.status]
    bred = last(h["breed"](picked, 0.3, 0.5, 2, 2, 32, "hsv", "none", "8", lineage, request()))
    lineage = bred[ws.lineage]
    assert len(lineage["gens"]) == 2 and lineage["cur"] == 1
    parents = {g["id"] for i, g in enumerate(lineage["gens"][0]["genomes"]) if str(i + 1) in picked}
    children = lineage["gens"][1]["genomes"]
    assert all(set(c["parents"]) <= parents and c["parents"] for c in children)  # bred from the picks only
    assert len(bred[ws.history]) == 2 and bred[ws.picked]["value"] == []
    # The child's file records its parents (provenance), as the studio writes it.
    record = studio.restore(lineage["gens"][1]["images"][0])["record"]
    assert record["params"]["mode"] == "breed" and len(record["params"]["genomes"]) == 2
    # Back to generation 1, then undo the newest.
    back = h["jump"](lineage, click(0))
    assert back[ws.lineage]["cur"] == 0 and back[ws.grid]["value"][0][0] == lineage["gens"][0]["images"][0]
    undone = h["undo"](lineage)
    assert len(undone[ws.lineage]["gens"]) == 1 and undone[ws.lineage]["cur"] == 0


def test_breeder_bad_seed_keeps_the_grid(app) -> None:
    ctx, _ = app
    ws = ctx.workspaces["breeder"]
    lineage = last(ws.handlers["new_grid"](1, 2, 16, 2, "gray", "none", "", {"gens": [], "cur": -1}, request()))[ws.lineage]
    updates = list(ws.handlers["breed"](["1"], 0.5, 0.5, 1, 2, 16, "gray", "none", "abc", lineage, request()))
    assert len(updates) == 1 and ws.grid not in updates[0] and ws.lineage not in updates[0]
    assert "whole number" in updates[0][ws.status] and 'data-state="failed"' in updates[0][ws.progress]
    full = last(ws.handlers["render"](["2"], 512, "gray", "none", lineage, request()))
    from PIL import Image

    assert Image.open(full[ws.full]["value"]).size == (512, 512)


def test_gan_pick_a_and_b_then_walk_and_mix(app) -> None:
    from PIL import Image

    ctx, studio = app
    ws = ctx.workspaces["gan"]
    h = ws.handlers
    assert "Pick two samples first" in last(h["walk"](4, 8, None, [], request()))[ws.status]
    out = last(h["sample"](4, 0.0, "3", None, request()))
    sheet = out[ws.sheet]
    assert len(sheet["images"]) == 4 and len(sheet["latents"]) == 4
    picked: list[int] = []
    for index in (2, 0):
        shown = h["toggle"](sheet, picked, click(index))
        picked = shown[ws.picked]
    assert picked == [2, 0] and [c for _, c in shown[ws.grid]] == ["B · 1", "2", "A · 3", "4"]
    walked = last(h["walk"](4, 8, sheet, picked, request()))
    gif = Path(walked[ws.result]["value"])
    assert gif.suffix == ".gif" and Image.open(gif).n_frames >= 4
    record = studio.restore(gif)["record"]
    assert record["params"]["latent_a"] == sheet["latents"][2]  # the clicked glyph's latent, never typed
    assert record["params"]["latent_b"] == sheet["latents"][0]
    mixed = last(h["mix"](0.5, sheet, picked, request()))
    assert Path(mixed[ws.result]["value"]).suffix == ".png" and mixed[ws.strip]["visible"] is False


BIBLE = ["The Keeper", "A lighthouse keeper hides a stranger from the storm.", "drama", "tender",
         "a lighthouse at night", [["Mara", "stubborn, kind", "keep the light burning"], ["Tom", "soaked", ""]],
         "three_act"]


def story_args(ws: Any, tree: dict, doc: str = "", prompt: str = "", bible: list | None = None,
               fmt: str = "fountain", seed: str = "5") -> list[Any]:
    return [tree, doc, *(bible or BIBLE), prompt, "(the next unwritten beat)", fmt, 24, 0.7, seed, request()]


def test_story_bible_form_write_continue_branch_and_go_back(app) -> None:
    ctx, studio = app
    ws = ctx.workspaces["story"]
    h = ws.handlers
    empty = {"versions": [], "cur": None}
    # A scene with nobody in the bible is refused in place, before any job.
    nobody = ["Untitled", "", "", "", "", [["", "", ""]], "three_act"]
    [refused] = list(h["write"](*story_args(ws, empty, bible=nobody)))
    assert "at least one character" in refused[ws.status] and ws.tree not in refused
    # A bible typed into the form: the scene uses its cast and its setting.
    out = last(h["write"](*story_args(ws, empty)))
    tree = out[ws.tree]
    [v1] = tree["versions"]
    assert v1["label"].startswith("v1 · beat") and v1["asset"]
    assert out[ws.doc] == v1["text"] and "INT. LIGHTHOUSE" in v1["text"].upper()
    record = studio.restore(studio.assets.resolve(v1["asset"]))["record"]
    assert record["params"]["bible"]["characters"][0] == {"name": "Mara", "traits": ["stubborn", "kind"],
                                                          "goal": "keep the light burning"}
    assert out[ws.preview].strip() and out[ws.preview] != v1["text"]  # the formatted page, shown once
    # The writer's own edit is kept as a version, and Continue starts from it.
    edited = v1["text"] + "\n\nMara lights the lamp."
    out = last(h["continue"](*story_args(ws, tree, doc=edited, fmt="prose")))
    tree = out[ws.tree]
    labels = [v["label"] for v in tree["versions"]]
    assert labels[1] == "v2 · your edits" and labels[2].startswith("v3 · continued")
    assert tree["versions"][2]["text"].startswith(edited) and tree["versions"][2]["parent"] == "v2"
    # Branch: two alternatives, siblings under the same parent.
    out = last(h["branch"](*story_args(ws, tree, doc=tree["versions"][2]["text"], fmt="prose")))
    tree = out[ws.tree]
    alts = [v for v in tree["versions"] if v["label"].startswith(("v4", "v5"))]
    assert len(alts) == 2 and {v["parent"] for v in alts} == {"v3"}
    choices = out[ws.versions]["choices"]
    assert [vid for _, vid in choices] == ["v1", "v2", "v3", "v4", "v5"]  # the tree, depth-first
    assert choices[4][0].startswith("      └ v5")  # indented under v3
    # Regenerate the current alternative: a new sibling of it.
    out = last(h["regenerate"](*story_args(ws, tree, doc=out[ws.doc], fmt="prose", seed="9")))
    tree = out[ws.tree]
    assert tree["versions"][-1]["parent"] == "v3" and tree["versions"][-1]["label"].startswith("v6 · continued")
    # Back to v1: its text returns to the document.
    back = h["pick_version"](tree, "v1", "The Keeper")
    assert back[ws.doc] == v1["text"] and back[ws.versions]["value"] == "v1"


def test_story_bible_export_import_and_bad_files(app, tmp_path: Path) -> None:
    import json

    ctx, _ = app
    ws = ctx.workspaces["story"]
    out = ws.handlers["export"](*BIBLE)
    data = json.loads(Path(out[ws.exported]["value"]).read_text())
    assert data["characters"][1] == {"name": "Tom", "traits": ["soaked"]} and data["structure"] == "three_act"
    data["structure"] = "save_the_cat"
    good = tmp_path / "bible.json"
    good.write_text(json.dumps(data))
    filled = ws.handlers["import"](str(good))
    assert filled[ws.title] == "The Keeper" and filled[ws.characters][0] == ["Mara", "stubborn, kind",
                                                                          "keep the light burning"]
    assert filled[ws.structure] == "save_the_cat" and "Catalyst" in filled[ws.beat]["choices"]
    for text, reason in (("not json at all", "not valid JSON"), ('["a list"]', "one JSON object"),
                         ('{"characters": [{"name": "9lives"}]}', "must start with a letter"),
                         ('{"hero": "x"}', "unknown field")):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        refused = ws.handlers["import"](str(bad))
        assert list(refused) == [ws.bible_status] and reason in refused[ws.bible_status]  # form untouched
    assert "no name" in ws.handlers["export"]("t", "", "", "", "", [["", "brave", ""]], "three_act")[ws.bible_status]


def test_story_cancel_keeps_the_partial_text(app, monkeypatch) -> None:
    import threading
    import time

    from generators.story_lib import engines, sampling

    # The tiny test model may draw its end-of-text token within a few words and finish before the
    # cancel arrives ("nothing to cancel"); without it the job runs on until it is cancelled.
    monkeypatch.setattr(engines.TorchEngine, "decoder", lambda self, prompt_ids, **kw: sampling.Decoder(
        self.model, self.tokenizer, prompt_ids, eos=set(), **kw))
    ctx, _ = app
    ws = ctx.workspaces["story"]
    updates: list[dict] = []
    args = story_args(ws, {"versions": [], "cur": None}, doc="Mara climbed the stairs.", fmt="prose")
    args[-4] = 1024  # long enough to be cancelled midway
    worker = threading.Thread(target=lambda: updates.extend(ws.handlers["continue"](*args)))
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(
            ws.doc in u and u[ws.doc] != "Mara climbed the stairs." for u in list(updates)):
        time.sleep(0.05)
    job_id = next(u[ws.job] for u in list(updates) if u.get(ws.job))
    assert 'data-state="cancelled"' in ws.handlers["cancel"](job_id, request())
    worker.join(timeout=60)
    final = updates[-1]
    typed, partial = final[ws.tree]["versions"]
    assert typed["label"] == "v1 · your edits" and partial["label"] == "v2 · continue (cancelled: partial)"
    assert partial["text"].startswith("Mara climbed the stairs.") and len(partial["text"]) > 24
    assert "kept" in final[ws.status]


def test_story_rewrite_selection_keeps_the_rest(app) -> None:
    ctx, _ = app
    ws = ctx.workspaces["story"]
    doc = "Mara climbed the stairs. The storm broke the window. Tom waited below."
    start = doc.index("The storm")
    end = start + len("The storm broke the window.")
    args = story_args(ws, {"versions": [], "cur": None}, doc=doc, fmt="prose")
    assert "Select a passage" in last(ws.handlers["rewrite"](*args[:-1], None, "noir", request()))[ws.status]
    assert "Give a tone" in last(ws.handlers["rewrite"](*args[:-1], [start, end], " ", request()))[ws.status]
    assert ws.handlers["selected"](click([start, end])) == [start, end]
    out = last(ws.handlers["rewrite"](*args[:-1], [start, end], "noir", request()))
    new = out[ws.tree]["versions"][-1]
    assert new["label"] == "v2 · rewritten (noir)" and new["parent"] == "v1"
    assert new["text"].startswith("Mara climbed the stairs.") and new["text"].rstrip().endswith("Tom waited below.")
    again = last(ws.handlers["regenerate"](*story_args(ws, out[ws.tree], doc=new["text"], fmt="prose", seed="3")))
    assert again[ws.tree]["versions"][-1]["label"] == "v3 · rewritten (noir)"  # the same rewrite, again
    assert again[ws.tree]["versions"][-1]["parent"] == "v1"


def test_first_paint_hooks_run_once_and_late_hooks_at_once(app) -> None:
    ctx, _ = app
    calls: list[str] = []
    ctx.when_painted(lambda: calls.append("warm"))
    assert calls == [] or ctx._painted  # waits for the page's load event
    ctx.first_paint()
    ctx.first_paint()
    ctx.when_painted(lambda: calls.append("late"))
    assert calls == ["warm", "late"]
