"""Captions of the embedded image model's training data (training/image/data.py): the meaning
from KANJIDIC2 plus the parts KanjiVG's element data names, on the real package files."""
from __future__ import annotations

import pytest

from training.image import data


@pytest.fixture(scope="module")
def dic() -> dict[str, tuple[list[str], int]]:
    return data.kanjidic()


def test_parts_name_each_component_by_its_meaning_and_position(dic) -> None:
    from training.gan.data import kanjivg_dir

    folder = kanjivg_dir()
    # 湖 'lake' = 氵 (a variant of 水 'water', KanjiVG's kvg:original) on the left + 胡 on the right
    lake = data.parts(folder / "06e56.svg", dic)
    assert lake[0] == "water on the left" and lake[1].endswith(" on the right") and len(lake) == 2
    # 休 'rest' = 亻 (KANJIDIC2 calls it "radical number 9": named by its original 人) + 木 'tree'
    assert data.parts(folder / "04f11.svg", dic) == ["person on the left", "tree on the right"]
    # 一 has no parts
    assert data.parts(folder / "04e00.svg", dic) == []


def test_caption_joins_meanings_and_parts() -> None:
    assert data.caption(["water"]) == "a character meaning 'water'"
    assert data.caption(["rest", "day off", "retire", "sleep"], ["person on the left", "tree on the right"]) == \
        "a character meaning 'rest, day off, retire', with person on the left and tree on the right"
    assert data.caption(["gate (no. 169)"], ["a", "b", "c"]) == "a character meaning 'gate', with a, b and c"


def test_radical_is_named_first_by_its_own_meaning(dic) -> None:
    # Kangxi radical 85 is 水 'water', 9 is 人 'person', 140 is 艸 'grass' (its "radical (no. 140)"
    # note is dictionary bookkeeping); numbers outside 1..214 have no name
    assert data.radical_name(85, dic) == "water"
    assert data.radical_name(9, dic) == "person"
    assert data.radical_name(140, dic) == "grass"
    assert data.radical_name(0, dic) == ""
    assert data.caption(["lake"], ["water on the left"], "water") == \
        "water radical. a character meaning 'lake', with water on the left"
