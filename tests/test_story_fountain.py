"""Fountain repair/validation/export, the story bible, beat sheets and the version tree (no model)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from generators.base import InvalidInput
from generators.story_lib import bible as bible_mod
from generators.story_lib import cowrite, fountain, tree

CAST = ["Mara Vance", "Jonah"]
MESSY = """```fountain
int. lighthouse - night

Mara climbs the stairs. The lamp is dark.

Mara: Is anyone up here?
JONAH
(whispering)
Only me.

THE WIND HOWLS.
The glass shakes.

JONAH

cut to:

... silence.
```"""


def test_module_import_is_light() -> None:
    code = ("import sys, generators.story; "
            "bad = [m for m in ('torch', 'numpy', 'gradio', 'transformers') if m in sys.modules]; "
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"generators.story imported {out.stdout.strip()}"


def test_repair_turns_a_messy_draft_into_the_intended_elements() -> None:
    fixed = fountain.repair(MESSY, CAST)
    assert fixed.text.startswith("INT. LIGHTHOUSE - NIGHT\n\n")
    assert "MARA VANCE\nIs anyone up here?" in fixed.text  # inline "Mara:" -> canonical cue + line
    assert "\n\nJONAH\n(whispering)\nOnly me." in fixed.text  # blank line put before the cue
    assert "!THE WIND HOWLS.\nThe glass shakes." in fixed.text  # caps action would parse as a cue
    assert "\n\nCUT TO:\n\n" in fixed.text
    assert "!... silence." in fixed.text  # a leading '.' would force a scene heading
    assert "```" not in fixed.text
    assert "JONAH\n\nCUT" not in fixed.text  # dangling cue with no dialogue dropped
    assert any("no dialogue" in c for c in fixed.changes)
    check = fountain.validate(fixed.text, fixed)
    assert check.valid, check.problems
    assert check.counts == {"headings": 1, "dialogue": 2, "transitions": 1, "action": 3}


def test_repair_is_idempotent_on_valid_fountain() -> None:
    once = fountain.repair(MESSY, CAST)
    twice = fountain.repair(once.text, CAST)
    assert twice.text == once.text
    assert twice.changes == []


def test_validate_catches_what_screenplain_reads_differently() -> None:
    # Repair promised one speech; an all-caps action paragraph makes screenplain read two.
    fixed = fountain.repair("INT. ROOM - DAY\n\nMARA\nHello.", CAST)
    broken = fixed.text + "\n\nTHE DOOR SLAMS.\nSilence."
    check = fountain.validate(broken, fixed)
    assert not check.valid and "speeches" in check.problems[0]
    assert not fountain.validate("").valid
    loop = "\n\n".join(["She runs to the door."] * 6)
    assert any("repeats" in p for p in fountain.validate(loop).problems)
    shouting = "INT. A - DAY\n\nMARA\nTHE FIRE IN THE MOUNTAINS, THERE WILL BE NO CARS TO TRACE THE LIGHT"
    assert "the draft is mostly capitals" in fountain.validate(shouting).problems
    # "| EXP. 1 |" is not a name: it must not become a cue
    assert fountain.repair("| EXP. 1 |\nShe waits.", CAST).text.startswith("!| EXP. 1 |")


def test_exports_markdown_and_html_page() -> None:
    fixed = fountain.repair(MESSY, CAST).text
    md = fountain.to_markdown(fixed, "The Keeper")
    assert md.startswith("# The Keeper\n\n### INT. LIGHTHOUSE - NIGHT")
    assert "**JONAH**: *(whispering)* Only me." in md
    page = fountain.to_html(fountain.title_page("The Keeper") + fixed)
    assert page.startswith("<!DOCTYPE html>") and "<title>The Keeper</title>" in page
    assert '<p class="character">JONAH</p>' in page and '<p class="parenthetical">(whispering)</p>' in page
    assert "<h6>INT. LIGHTHOUSE - NIGHT</h6>" in page and '<div class="transition">CUT TO:</div>' in page
    prose = fountain.markdown_to_html("# T\n\nShe ran.<script>x</script>", "T")
    assert "<h1>T</h1>" in prose and "<script>" not in prose


def test_bare_location_line_becomes_a_forced_heading() -> None:
    fixed = fountain.repair("LONDON - DAY\nMara pulls Jonah into the boat.", CAST)
    assert fixed.text.startswith(".LONDON - DAY\n\nMara pulls Jonah")
    check = fountain.validate(fixed.text, fixed)
    assert check.valid and check.counts["headings"] == 1 and check.counts["dialogue"] == 0
    assert fountain.repair(fixed.text, CAST).text == fixed.text
    assert fountain.ensure_heading(fixed.text, "INT. X - DAY") == (fixed.text, False)


def test_heading_helpers() -> None:
    assert fountain.heading_for("a lonely lighthouse at night") == "INT. LONELY LIGHTHOUSE - NIGHT"
    text, added = fountain.ensure_heading("Rain falls.", "EXT. PIER - DAY")
    assert added and text.startswith("EXT. PIER - DAY\n\nRain falls.")
    assert fountain.ensure_heading("EXT. PIER - DAY\n\nRain.", "INT. X - DAY") == ("EXT. PIER - DAY\n\nRain.", False)


BIBLE = {"title": "The Keeper", "logline": "A keeper rescues a stranger.", "setting": "a lighthouse",
         "characters": [{"name": "Mara", "traits": ["stubborn", "kind"], "goal": "keep the light"},
                        "Jonah: secretive, tired"], "structure": "save_the_cat"}


def test_bible_parses_and_beat_sheets_come_from_prompts() -> None:
    b = bible_mod.parse_bible(BIBLE)
    assert [c.cue for c in b.characters] == ["MARA", "JONAH"]
    assert b.characters[1].traits == ("secretive", "tired")
    assert len(b.beats) == 15 and b.beats[3].name == "Catalyst"
    assert b.beat("catalyst").name == "Catalyst" and b.beat("4").name == "Catalyst"
    assert len(bible_mod.parse_bible({"title": "x"}).beats) == 8  # three-act by default
    assert set(bible_mod.beat_sheets()) >= {"three_act", "save_the_cat"}
    assert b.next_beat([]).name == "Opening image"
    assert b.next_beat(["Opening image", "Theme stated"]).name == "Set-up"


@pytest.mark.parametrize("bad, words", [
    ({"title": "x" * 121}, "title is 121 characters; the limit is 120"),
    ({"notes": "y" * 9000}, "limit is 8000"),
    ({"villain": "z"}, "unknown field(s) villain"),
    ({"characters": [{"name": f"C{i}"} for i in range(13)]}, "13 characters; the limit is 12"),
    ({"characters": [{"name": "Mara"}, {"name": "MARA"}]}, "share the name MARA"),
    ({"characters": [{"name": "<b>"}]}, "must start with a letter"),
    ({"structure": "hero_journey"}, "unknown structure 'hero_journey'"),
    ({"characters": [{"name": "A", "traits": ["t"] * 9}]}, "9 traits; the limit is 8"),
])
def test_bible_errors_name_the_limit(bad: dict, words: str) -> None:
    with pytest.raises(InvalidInput, match=None) as err:
        bible_mod.parse_bible(bad)
    assert words in str(err.value)


def test_unknown_beat_and_finished_sheet() -> None:
    b = bible_mod.parse_bible(BIBLE)
    with pytest.raises(InvalidInput, match="unknown beat"):
        b.beat("Epilogue")
    with pytest.raises(InvalidInput, match="every beat"):
        b.next_beat(["Final image"])


def test_cowrite_plans_place_the_passage() -> None:
    b = bible_mod.parse_bible(BIBLE)
    kw = dict(bible=b, fmt="prose", prompt="", beat="", cursor=-1, selection_start=-1, selection_end=-1,
              tone="", action="", context_chars=3000)
    text = "One. Two. Three."
    p = cowrite.plan("continue", text, **{**kw, "cursor": 4})
    assert cowrite.apply(text, p, "NEW") == "One. NEW Two. Three."
    assert p.primer == "One."  # the answer starts with the paragraph before the cursor
    assert cowrite.apply("One", p, ", two") == "One, two"
    marked = cowrite.plan("continue", "[[beat: Opening]]\n\nINT. A - DAY\n\nRain.", **kw)
    assert "[[" not in str(marked.variables["context"]) and marked.primer == "Rain."
    p = cowrite.plan("regenerate", text, **{**kw, "selection_start": 5, "selection_end": 9})
    assert cowrite.apply(text, p, "Deux.") == "One. Deux. Three."
    with pytest.raises(InvalidInput, match="needs a tone"):
        cowrite.plan("rewrite", text, **{**kw, "selection_start": 0, "selection_end": 4})
    with pytest.raises(InvalidInput, match="not inside the text"):
        cowrite.plan("regenerate", text, **{**kw, "selection_start": 3, "selection_end": 99})
    p = cowrite.plan("turn", text, **{**kw, "action": "I wait"})
    assert cowrite.apply(text, p, "Nothing happens.") == "One. Two. Three.\n\n> **I wait**\n\nNothing happens."
    marked = "x\n\n" + bible_mod.beat_marker(b.beats[0], "fountain") + "\n\nINT. A - DAY"
    p = cowrite.plan("next_beat", marked, **{**kw, "fmt": "fountain"})
    assert p.beat is not None and p.beat.name == "Theme stated"
    assert p.prefix.startswith("INT. LIGHTHOUSE - DAY")


def test_version_tree_from_asset_parents() -> None:
    records = [("a", None, "scene"), ("b", "a", "continue"), ("c", "a", "branch"), ("d", "c", "turn"),
               ("e", "gone", "turn")]
    roots = tree.build(records)
    assert [r.id for r in roots] == ["a", "e"]
    assert [c.id for c in roots[0].children] == ["b", "c"]
    assert [(d, n.id) for d, n in roots[0].walk()] == [(0, "a"), (1, "b"), (1, "c"), (2, "d")]
    assert tree.lineage(records, "d") == ["a", "c", "d"]
