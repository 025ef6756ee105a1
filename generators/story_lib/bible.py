"""The story bible: what a writers' room keeps on the wall, and what every prompt is conditioned on.

After ScriptBook (Hollywood-style story understanding from characters with traits, style and
theme, and structure): title, logline, genre and tone, characters with traits and goals, the
setting, and a beat sheet picked from the templates in prompts/story/beats/ (three-act after
Syd Field, or Blake Snyder's Save the Cat!). Pure Python: validation only, no model.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from generators.base import InvalidInput
from generators.resources import prompts_dir

PROMPTS_DIR = prompts_dir("story")
BEATS_DIR = PROMPTS_DIR / "beats"

MAX_BIBLE_CHARS = 8000  # the whole bible as JSON; it goes into every prompt
MAX_CHARACTERS = 12
LIMITS = {"title": 120, "logline": 400, "genre": 80, "tone": 80, "setting": 600, "notes": 1000,
          "name": 40, "trait": 40, "goal": 300, "beat_name": 60, "beat_description": 300}
MAX_TRAITS = 8
MAX_BEATS = 30
BIBLE_KEYS = ("title", "logline", "genre", "tone", "setting", "characters", "structure", "beats", "notes")


@dataclass(frozen=True)
class Character:
    name: str
    traits: tuple[str, ...] = ()
    goal: str = ""

    @property
    def cue(self) -> str:
        """The name as a Fountain character cue."""
        return self.name.upper()


@dataclass(frozen=True)
class Beat:
    name: str
    description: str = ""
    act: int = 0


@dataclass(frozen=True)
class StoryBible:
    title: str = ""
    logline: str = ""
    genre: str = ""
    tone: str = ""
    setting: str = ""
    characters: tuple[Character, ...] = ()
    structure: str = "three_act"
    beats: tuple[Beat, ...] = field(default_factory=tuple)
    notes: str = ""

    @property
    def empty(self) -> bool:
        return not (self.title or self.logline or self.setting or self.characters or self.notes)

    def beat(self, name_or_number: str) -> Beat:
        """A beat by name (case-insensitive) or by 1-based number."""
        key = name_or_number.strip()
        if key.isdigit():
            index = int(key) - 1
            if 0 <= index < len(self.beats):
                return self.beats[index]
            raise InvalidInput(f"beat {key} does not exist: the {self.structure} sheet has "
                               f"beats 1 to {len(self.beats)}")
        for b in self.beats:
            if b.name.lower() == key.lower():
                return b
        raise InvalidInput(f"unknown beat {key!r}; this beat sheet has: "
                           + ", ".join(b.name for b in self.beats))

    def next_beat(self, written: list[str]) -> Beat:
        """The beat after the last one already written (the first when none is)."""
        if not written:
            return self.beats[0]
        last = self.beat(written[-1])
        index = self.beats.index(last)
        if index + 1 >= len(self.beats):
            raise InvalidInput(f"every beat of the {self.structure} sheet is written (the last was "
                               f"{last.name!r}); pick a beat to rewrite instead")
        return self.beats[index + 1]

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "logline": self.logline, "genre": self.genre, "tone": self.tone,
                "setting": self.setting, "structure": self.structure, "notes": self.notes,
                "characters": [{"name": c.name, "traits": list(c.traits), "goal": c.goal}
                               for c in self.characters],
                "beats": [{"name": b.name, "description": b.description, "act": b.act} for b in self.beats]}


def beat_sheets() -> dict[str, Path]:
    """Beat-sheet templates by name (file stem in prompts/story/beats/)."""
    return {p.stem: p for p in sorted(BEATS_DIR.glob("*.json"))}


def load_beat_sheet(structure: str) -> tuple[Beat, ...]:
    sheets = beat_sheets()
    if structure not in sheets:
        raise InvalidInput(f"unknown structure {structure!r}; choose one of: {', '.join(sheets)}")
    data = json.loads(sheets[structure].read_text(encoding="utf-8"))
    return tuple(Beat(b["name"], b.get("description", ""), int(b.get("act", 0))) for b in data["beats"])


def _text(data: Mapping[str, Any], key: str, where: str = "story bible", limit_key: str | None = None) -> str:
    value = data.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"the {where}'s {key} must be text, got {type(value).__name__}")
    value = re.sub(r"[ \t]+", " ", value).strip()
    limit = LIMITS[limit_key or key]
    if len(value) > limit:
        raise InvalidInput(f"the {where}'s {key} is {len(value)} characters; the limit is {limit}")
    return value


def _character(item: Any, index: int) -> Character:
    where = f"character {index + 1}"
    if isinstance(item, str):  # "Mara: stubborn, kind" or just "Mara"
        name, _, traits = item.partition(":")
        item = {"name": name, "traits": [t for t in (s.strip() for s in traits.split(",")) if t]}
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where} must be an object with name, traits and goal")
    unknown = sorted(set(item) - {"name", "traits", "goal"})
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {', '.join(unknown)}; use name, traits, goal")
    name = _text(item, "name", where)
    if not name:
        raise InvalidInput(f"{where} needs a name")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9 .'\-]*", name):
        raise InvalidInput(f"{where}'s name {name!r} must start with a letter and use letters, digits, "
                           "spaces, dots, apostrophes or hyphens (it becomes a screenplay cue)")
    traits = item.get("traits", ())
    if isinstance(traits, str):
        traits = [t.strip() for t in traits.split(",") if t.strip()]
    if not isinstance(traits, (list, tuple)):
        raise InvalidInput(f"{where}'s traits must be a list of words")
    if len(traits) > MAX_TRAITS:
        raise InvalidInput(f"{where} has {len(traits)} traits; the limit is {MAX_TRAITS}")
    clean = tuple(_text({"trait": t}, "trait", where) for t in traits)
    return Character(name=name, traits=tuple(t for t in clean if t), goal=_text(item, "goal", where))


def parse_bible(data: Mapping[str, Any] | None) -> StoryBible:
    """Validate a bible given as JSON-like data; every limit broken is named in the error."""
    data = dict(data or {})
    size = len(json.dumps(data, ensure_ascii=False))
    if size > MAX_BIBLE_CHARS:
        raise InvalidInput(f"the story bible is {size} characters as JSON; the limit is {MAX_BIBLE_CHARS}")
    unknown = sorted(set(data) - set(BIBLE_KEYS))
    if unknown:
        raise InvalidInput(f"the story bible has unknown field(s) {', '.join(unknown)}; "
                           f"known: {', '.join(BIBLE_KEYS)}")
    chars = data.get("characters") or []
    if not isinstance(chars, (list, tuple)):
        raise InvalidInput("the story bible's characters must be a list")
    if len(chars) > MAX_CHARACTERS:
        raise InvalidInput(f"the story bible has {len(chars)} characters; the limit is {MAX_CHARACTERS}")
    characters = tuple(_character(c, i) for i, c in enumerate(chars))
    cues = [c.cue for c in characters]
    dupes = sorted({c for c in cues if cues.count(c) > 1})
    if dupes:
        raise InvalidInput(f"two characters share the name {dupes[0]}; names must be unique")
    structure = data.get("structure") or "three_act"
    if not isinstance(structure, str):
        raise InvalidInput("the story bible's structure must be the name of a beat sheet")
    custom = data.get("beats")
    if custom:
        if not isinstance(custom, (list, tuple)):
            raise InvalidInput("the story bible's beats must be a list")
        if len(custom) > MAX_BEATS:
            raise InvalidInput(f"the story bible has {len(custom)} beats; the limit is {MAX_BEATS}")
        beats = []
        for i, b in enumerate(custom):
            b = {"name": b} if isinstance(b, str) else b
            if not isinstance(b, Mapping):
                raise InvalidInput(f"beat {i + 1} must be a name or an object with name and description")
            name = _text(b, "name", f"beat {i + 1}", "beat_name")
            if not name:
                raise InvalidInput(f"beat {i + 1} needs a name")
            beats.append(Beat(name, _text(b, "description", f"beat {i + 1}", "beat_description"),
                              int(b.get("act", 0) or 0)))
        beat_tuple = tuple(beats)
        structure = structure if structure in beat_sheets() else "custom"
    else:
        beat_tuple = load_beat_sheet(structure)
    return StoryBible(title=_text(data, "title"), logline=_text(data, "logline"), genre=_text(data, "genre"),
                      tone=_text(data, "tone"), setting=_text(data, "setting"), characters=characters,
                      structure=structure, beats=beat_tuple, notes=_text(data, "notes"))


BEAT_MARK_RE = re.compile(r"\[\[beat:\s*([^\]]+?)\s*\]\]|<!--\s*beat:\s*(.+?)\s*-->")


def beat_marker(beat: Beat, fmt: str) -> str:
    """An invisible marker that records which beat a passage was written for."""
    return f"[[beat: {beat.name}]]" if fmt == "fountain" else f"<!-- beat: {beat.name} -->"


def written_beats(text: str) -> list[str]:
    """Beat names marked in a document, in order."""
    return [(m.group(1) or m.group(2)).strip() for m in BEAT_MARK_RE.finditer(text)]
