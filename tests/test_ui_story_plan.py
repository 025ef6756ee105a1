"""The Story workspace's plan panel (studio/ui/ws_story_plan.py) against a real Studio with the tiny
story model: tables in, a planned scene written into the document, one scene replaced."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from studio.api import Studio
from studio.config import Settings
from studio.ui.ws_story_plan import merge, plan_from_tables, tables_from_bible
from tests.ui_fixtures import WORKSPACE_REGISTRY

KEEPER = json.loads((Path(__file__).resolve().parents[1] / "prompts" / "bibles" / "the_keeper.json").read_text())
PLAN = [["Storm warning", "EXT", "rocky shore", "NIGHT", "Mara, Crane", "Mara finds Crane on the rocks."],
        ["The stranger", "INT", "keeper's cottage", "NIGHT", "Mara, Jonah", "Mara hides Jonah."]]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from studio.ui.app import create_app

    studio = Studio(Settings(home=tmp_path_factory.mktemp("plan-home")), registry=WORKSPACE_REGISTRY)
    demo = create_app(studio)
    yield demo.studio_context, studio
    studio.close()


def form(ws: Any) -> list[Any]:
    rows = [[c["name"], ", ".join(c["traits"]), c["goal"]] for c in KEEPER["characters"]]
    return [KEEPER["title"], KEEPER["logline"], KEEPER["genre"], KEEPER["tone"], KEEPER["setting"], rows, "three_act"]


def tables() -> list[Any]:
    beats, places, roles, _ = tables_from_bible(KEEPER)
    return [beats, places, roles, PLAN]


def test_tables_round_trip_a_bible_with_its_plan() -> None:
    beats, places, roles, scenes = tables_from_bible({**KEEPER, "scenes": []})
    assert roles == "Mara: protagonist, Crane: antagonist, Jonah: ally" and scenes == [[""] * 6]
    extra = plan_from_tables(beats, places, roles, PLAN)
    bible = merge({"characters": [{"name": "Mara", "traits": []}]}, extra)
    assert bible["characters"][0]["role"] == "protagonist" and bible["locations"][2] == {"name": "rocky shore",
                                                                                        "int_ext": "EXT"}
    assert bible["scenes"][0]["characters"] == ["Mara", "Crane"] and len(bible["beats"]) == 4


def test_write_a_planned_scene_then_replace_it(app) -> None:
    ctx, studio = app
    ws = ctx.workspaces["story"]
    h = ws.handlers
    req = SimpleNamespace(session_hash="P", username=None)
    empty = {"versions": [], "cur": None}
    args = [empty, "", *form(ws), *tables(), 2, "fountain", 24, 0.7, "3", req]
    out = list(h["plan_write"](*args))[-1]
    doc = out[ws.doc]
    assert "[[scene: 2]]\n\nINT. KEEPER'S COTTAGE - NIGHT\n\n" in doc
    assert "CRANE" not in doc  # Crane is not planned in scene 2
    assert out[ws.tree]["versions"][-1]["label"].startswith("v1 · scene 2")
    record = studio.restore(studio.assets.resolve(out[ws.tree]["versions"][-1]["asset"]))["record"]
    assert record["params"]["scene_number"] == 2 and record["params"]["bible"]["scenes"][1]["location"] == \
        "keeper's cottage"
    # scene 1 is not written yet: it goes at the end; writing scene 2 again replaces only its section
    args1 = [out[ws.tree], doc, *form(ws), *tables(), 1, "fountain", 24, 0.7, "4", req]
    out1 = list(h["plan_write"](*args1))[-1]
    doc1 = out1[ws.doc]
    assert doc1.startswith(doc) and "[[scene: 1]]\n\nEXT. ROCKY SHORE - NIGHT\n\n" in doc1
    again = list(h["plan_write"](*[out1[ws.tree], doc1, *form(ws), *tables(), 2, "fountain", 24, 0.7, "9",
                                   req]))[-1][ws.doc]
    assert again.count("[[scene: 2]]") == 1 and again != doc1
    assert again[again.index("[[scene: 1]]"):] == doc1[doc1.index("[[scene: 1]]"):]  # scene 1 is untouched
    # a bad cell is refused with the bible's own sentence, before any job
    bad = [empty, "", *form(ws), tables()[0], tables()[1], "", [["Storm warning", "EXT", "shore", "NIGHT", "Ghost",
                                                                  "x"]], 1, "fountain", 24, 0.7, "3", req]
    assert "not in the bible's cast" in list(h["plan_write"](*bad))[-1][ws.plan.status]
