"""Hierarchical co-writing (story_lib/hierarchy.py, after Dramatron): the plan's data, one planned
scene written on the tiny model, and level regeneration on the real embedded model (a few dozen
tokens)."""
from __future__ import annotations

import copy
import json

import pytest
import torch

from generators.base import InvalidInput, Progress, Rng
from generators.resources import prompts_dir
from generators.story import StoryParams, StoryWriter, mentions
from generators.story_lib import cowrite, guided
from generators.story_lib.bible import locations_from_setting, parse_bible

BIBLES = sorted(prompts_dir("bibles").glob("*.json"))
KEEPER = json.loads((prompts_dir("bibles") / "the_keeper.json").read_text())
PLAN = [{"beat": "Storm warning", "location": "rocky shore", "int_ext": "EXT", "time": "NIGHT",
         "characters": ["Mara", "Crane"], "what": "Mara finds Crane on the rocks with a lantern."},
        {"beat": "The stranger", "location": "keeper's cottage", "int_ext": "INT", "time": "NIGHT",
         "characters": ["Mara", "Jonah"], "what": "Mara hides Jonah under the stairs."}]


@pytest.fixture(scope="module")
def tiny() -> StoryWriter:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    g = StoryWriter.debug()
    g.load(torch.device("cpu"))
    yield g
    torch.set_num_threads(before)


def test_shipped_bibles_have_a_cast_with_an_antagonist_places_and_four_beats() -> None:
    assert len(BIBLES) == 3
    for path in BIBLES:
        b = parse_bible(json.loads(path.read_text()))
        assert b.logline and b.setting and len(b.characters) >= 3 and len(b.beats) == 4
        assert "antagonist" in {c.role for c in b.characters}
        assert {p.int_ext for p in b.places()} == {"INT", "EXT"}


def test_plan_data_headings_and_clear_errors() -> None:
    b = parse_bible({**KEEPER, "scenes": PLAN})
    assert [s.heading for s in b.scenes] == ["EXT. ROCKY SHORE - NIGHT", "INT. KEEPER'S COTTAGE - NIGHT"]
    assert parse_bible(b.to_dict()) == b  # the plan survives a round trip (export, import)
    places = {p.name: p.int_ext for p in locations_from_setting("a lighthouse on a rocky island; the harbour "
                                                                  "and the keeper's cottage")}
    assert places == {"lighthouse": "INT", "rocky island": "EXT", "harbour": "EXT", "keeper's cottage": "INT"}
    for bad, words in [({"characters": ["Mara", "Ghost"]}, "not in the bible's cast"),
                       ({"int_ext": "OUT"}, r"INT \(inside\) or EXT"), ({"beat": "Finale"}, "not on the beat sheet"),
                       ({"time": "NOON"}, "time must be one of")]:
        with pytest.raises(InvalidInput, match=words):
            parse_bible({**KEEPER, "scenes": [{**PLAN[0], **bad}]})
    with pytest.raises(InvalidInput, match="scene 3 is not in the plan"):
        StoryParams(mode="scene", scene_number=3, bible={**KEEPER, "scenes": PLAN}).validate()
    with pytest.raises(InvalidInput, match="no scene plan yet"):
        StoryParams(mode="scene", scene_number=1, bible=KEEPER).validate()


def test_regenerating_a_planned_scene_replaces_only_its_section() -> None:
    b = parse_bible({**KEEPER, "scenes": PLAN})
    doc = ("[[scene: 1]]\n\nEXT. ROCKY SHORE - NIGHT\n\nOld one.\n\n"
           "[[scene: 2]]\n\nINT. KEEPER'S COTTAGE - NIGHT\n\nTwo.")
    kw = dict(bible=b, fmt="fountain", prompt="", beat="", cursor=-1, selection_start=-1, selection_end=-1, tone="",
              action="", context_chars=3000)
    p1 = cowrite.plan("scene", doc, scene_number=1, **kw)
    assert p1.prefix == "EXT. ROCKY SHORE - NIGHT\n\n" and p1.beat.name == "Storm warning"
    new = cowrite.apply(doc, p1, p1.prefix + "New one.")
    assert new == doc.replace("Old one.", "New one.")
    p2 = cowrite.plan("scene", doc, scene_number=2, **kw)
    assert "Old one." in p2.variables["context"]  # scene 2 reads scene 1 before it
    assert cowrite.apply(doc, p2, p2.prefix + "Three.").endswith("NIGHT\n\nThree.")
    assert cowrite.written_scenes(new) == [1, 2]


def test_speech_that_narrates_is_redrawn_and_turn_helpers() -> None:
    for line in ["She felt her emotions melting.", "Her eyes widened.", "Mara turns away.", "Run, he said."]:
        assert guided.narrates(line, ["Mara"]) and not guided.usable("dialogue", line, ["Mara"])
    for line in ["He is here. Run!", "She's gone. Mara, listen.", "They are coming for the light."]:
        assert guided.usable("dialogue", line, ["Mara"])
    assert not guided.usable("dialogue", "Jonah.", ["Jonah"])  # a name alone is no speech
    assert not guided.usable("action", "Mara, the keeper, TRAILER - DAWN", ["Mara"])
    assert not guided.usable("action", "Mara climbs. She turned to face him.", ["Mara"])
    assert not guided.usable("action", "What happens: Mara hides Jonah.", ["Mara"])  # prompt text
    assert not guided.usable("action", "In this scene: Mara (protagonist, brave). She waits.", ["Mara"])
    assert cowrite.second_person("I'm opening my bag") == "you're opening your bag"
    assert mentions("I open the cellar door", "The door creaks.") and mentions("I light the lamp", "It lights up.")
    assert not mentions("I open the cellar door", "Rain falls on the sea.")


def test_planned_scene_has_the_plan_heading_and_only_its_cast(tiny: StoryWriter) -> None:
    bible = {**KEEPER, "scenes": PLAN}
    for n, seed in ((1, 3), (2, 4)):
        r = tiny.generate(StoryParams(mode="scene", scene_number=n, bible=bible, max_new_tokens=90),
                          rng=Rng(seed), progress=Progress.none())
        planned = PLAN[n - 1]
        assert r.data["passage"].startswith(parse_bible(bible).scenes[n - 1].heading + "\n\n")
        speakers = {e.split(":", 1)[1] for e in r.data["layout"] if e.startswith("dialogue:")}
        cast = {c.upper() for c in planned["characters"]}
        assert speakers <= cast  # the third character (not in this scene) never speaks
        named = {c.upper() for c in planned["characters"] if c in r.data["passage"].split("\n\n", 1)[1]}
        assert cast <= speakers | named  # every planned character speaks or acts
        assert f"[[scene: {n}]]" in r.data["text"]


@pytest.mark.real
def test_levels_regenerate_on_their_own_with_the_embedded_model() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        g = StoryWriter()
        g.load(torch.device("cpu"))
        bible = copy.deepcopy(KEEPER)
        bible["beats"] = bible["beats"][:2]
        r = g.generate(StoryParams(mode="plan", bible=bible, scenes_per_beat=1), rng=Rng(2),
                       progress=Progress.none())
        planned = r.data["bible"]
        places = {p["name"]: p["int_ext"] for p in KEEPER["locations"]}
        assert len(planned["scenes"]) == 2
        for sc, beat in zip(planned["scenes"], bible["beats"]):
            assert sc["beat"] == beat["name"] and places[sc["location"]] == sc["int_ext"]  # INT/EXT from the setting
            assert len(sc["characters"]) >= 2 and sc["characters"][0] in sc["what"]
        assert planned["scenes"][0]["location"] != planned["scenes"][1]["location"]
        assert "Mara" in planned["scenes"][0]["characters"]  # named in the beat
        # plan scene 2 again: scene 1, the logline and the cast stay as they were
        again = g.generate(StoryParams(mode="plan", scene_number=2, bible=planned), rng=Rng(9),
                           progress=Progress.none()).data["bible"]
        assert again["scenes"][0] == planned["scenes"][0] and again["scenes"][1] != planned["scenes"][1]
        assert {k: again[k] for k in ("logline", "characters", "beats")} == \
            {k: planned[k] for k in ("logline", "characters", "beats")}
        # a new logline keeps the plan and the cast
        line = g.generate(StoryParams(mode="logline", bible=again), rng=Rng(4), progress=Progress.none()).data["bible"]
        assert line["logline"] != again["logline"] and line["logline"].rstrip()[-1] in ".!?"
        assert line["scenes"] == again["scenes"] and line["characters"] == again["characters"]
    finally:
        torch.set_num_threads(before)
