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
          "name": 40, "trait": 40, "goal": 300, "role": 40, "beat_name": 60, "beat_description": 300,
          "location": 60, "what": 300}
MAX_TRAITS = 8
MAX_BEATS = 30
MAX_LOCATIONS = 20
MAX_SCENES = 40  # the scene plan (story_lib/hierarchy.py): a feature runs ~40-60 scenes, a short ~12
BIBLE_KEYS = ("title", "logline", "genre", "tone", "setting", "characters", "structure", "beats", "notes",
              "locations", "scenes")
TIMES = ("DAY", "NIGHT", "DAWN", "DUSK", "MORNING", "EVENING", "CONTINUOUS", "LATER")


@dataclass(frozen=True)
class Character:
    name: str
    traits: tuple[str, ...] = ()
    goal: str = ""
    role: str = ""  # "protagonist", "antagonist", "ally", ... (Dramatron's character level)

    @property
    def cue(self) -> str:
        """The name as a Fountain character cue."""
        return self.name.upper()


@dataclass(frozen=True)
class Location:
    """A place of the setting; interior or exterior decides the scene heading's INT./EXT."""

    name: str
    exterior: bool = False

    @property
    def int_ext(self) -> str:
        return "EXT" if self.exterior else "INT"


@dataclass(frozen=True)
class ScenePlan:
    """One scene of the beat-by-beat plan (Dramatron's plot level): where, who, what happens."""

    beat: str
    location: str
    int_ext: str = "INT"  # "INT" | "EXT"
    time: str = "DAY"
    characters: tuple[str, ...] = ()  # names from the bible's cast; only they speak in the scene
    what: str = ""  # what happens, one or two sentences

    @property
    def heading(self) -> str:
        place = re.sub(r"\s+", " ", re.sub(r"[^A-Za-z0-9' \-]+", " ", self.location)).strip().upper()
        return f"{self.int_ext}. {place} - {self.time}"

    def to_dict(self) -> dict[str, Any]:
        return {"beat": self.beat, "location": self.location, "int_ext": self.int_ext, "time": self.time,
                "characters": list(self.characters), "what": self.what}


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
    locations: tuple[Location, ...] = ()  # empty: taken from the setting (places())
    scenes: tuple[ScenePlan, ...] = ()  # the scene plan, once written or planned

    def places(self) -> tuple[Location, ...]:
        """The locations a scene may be set in: the bible's list, else the setting's places."""
        return self.locations or locations_from_setting(self.setting or self.title)

    def character(self, name: str) -> Character:
        for c in self.characters:
            if c.name.lower() == name.strip().lower():
                return c
        raise InvalidInput(f"{name!r} is not in the bible's cast ({', '.join(c.name for c in self.characters)})")

    def scene(self, number: int) -> ScenePlan:
        """A planned scene by 1-based number."""
        if not self.scenes:
            raise InvalidInput("the bible has no scene plan yet: plan the scenes first (mode 'plan')")
        if not 1 <= number <= len(self.scenes):
            raise InvalidInput(f"scene {number} is not in the plan; it has scenes 1 to {len(self.scenes)}")
        return self.scenes[number - 1]

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
        out: dict[str, Any] = {
            "title": self.title, "logline": self.logline, "genre": self.genre, "tone": self.tone,
            "setting": self.setting, "structure": self.structure, "notes": self.notes,
            "characters": [{"name": c.name, "traits": list(c.traits), "goal": c.goal,
                            **({"role": c.role} if c.role else {})} for c in self.characters],
            "beats": [{"name": b.name, "description": b.description, "act": b.act} for b in self.beats]}
        if self.locations:
            out["locations"] = [{"name": loc.name, "int_ext": loc.int_ext} for loc in self.locations]
        if self.scenes:
            out["scenes"] = [sc.to_dict() for sc in self.scenes]
        return out


# Words that put a place outdoors (EXT.); anything else is a room or a building (INT.).
OUTDOOR_WORDS = {"island", "beach", "shore", "street", "road", "forest", "woods", "harbour", "harbor", "dock",
                 "docks", "pier", "garden", "field", "fields", "sea", "deck", "cliff", "cliffs", "roof", "rooftop",
                 "yard", "courtyard", "square", "park", "river", "lake", "mountain", "hill", "desert", "valley",
                 "bridge", "alley", "plaza", "market", "camp", "coast", "jetty", "orchard", "meadow", "outside",
                 "outdoors", "sky", "city", "town", "village", "ridge", "trail", "platform", "runway", "port"}


def guess_exterior(name: str) -> bool:
    """Whether a free-text place is outdoors, from its last noun-like words (a 'garden shed' is inside)."""
    words = re.findall(r"[a-z]+", name.lower())
    return bool(words) and words[-1] in OUTDOOR_WORDS


def locations_from_setting(setting: str) -> tuple[Location, ...]:
    """Places named in a free-text setting: 'a lighthouse on a rocky island; the keeper's cottage and
    the harbour' -> lighthouse, rocky island, keeper's cottage, harbour (INT/EXT guessed)."""
    parts = re.split(r"[;,.:]|\band\b|\bwith\b|\bon\b|\bnear\b|\bat\b|\bin\b|\bby\b|\boff\b",
                     setting, flags=re.IGNORECASE)
    out: list[Location] = []
    for part in parts:
        words = [w for w in re.findall(r"[A-Za-z0-9'\-]+", part)
                 if w.lower() not in {"a", "an", "the", "of", "its", "their", "his", "her"}
                 and w.upper() not in TIMES]
        name = " ".join(words[-3:]).strip()
        if name and name.lower() not in {loc.name.lower() for loc in out}:
            out.append(Location(name.lower(), guess_exterior(name)))
    return tuple(out[:MAX_LOCATIONS])


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
    unknown = sorted(set(item) - {"name", "traits", "goal", "role"})
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {', '.join(unknown)}; use name, traits, goal, role")
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
    return Character(name=name, traits=tuple(t for t in clean if t), goal=_text(item, "goal", where),
                     role=_text(item, "role", where).lower())


def _int_ext(value: Any, where: str) -> str:
    key = str(value or "INT").strip().upper().rstrip(".")
    if key not in ("INT", "EXT"):
        raise InvalidInput(f"{where}'s int_ext must be INT (inside) or EXT (outside), got {value!r}")
    return key


def _location(item: Any, index: int) -> Location:
    where = f"location {index + 1}"
    if isinstance(item, str):  # "EXT. HARBOUR" or "harbour"
        m = re.match(r"^\s*(INT|EXT)\.?\s+(.+)$", item, re.IGNORECASE)
        item = {"name": m.group(2), "int_ext": m.group(1)} if m else {"name": item, "int_ext": (
            "EXT" if guess_exterior(item) else "INT")}
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where} must be a place name or an object with name and int_ext")
    unknown = sorted(set(item) - {"name", "int_ext"})
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {', '.join(unknown)}; use name, int_ext")
    name = _text(item, "name", where, "location")
    if not re.search(r"[A-Za-z]", name):
        raise InvalidInput(f"{where} needs a name")
    return Location(name, _int_ext(item.get("int_ext"), where) == "EXT")


def _scene(item: Any, index: int, cast: tuple[Character, ...], beats: tuple[Beat, ...]) -> ScenePlan:
    where = f"scene {index + 1} of the plan"
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where} must be an object with beat, location, int_ext, time, characters, what")
    unknown = sorted(set(item) - {"beat", "location", "int_ext", "time", "characters", "what"})
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {', '.join(unknown)}; "
                           "use beat, location, int_ext, time, characters, what")
    beat = _text(item, "beat", where, "beat_name")
    if beat and beat.lower() not in {b.name.lower() for b in beats}:
        raise InvalidInput(f"{where}'s beat {beat!r} is not on the beat sheet ({', '.join(b.name for b in beats)})")
    location = _text(item, "location", where)
    if not re.search(r"[A-Za-z]", location):
        raise InvalidInput(f"{where} needs a location")
    time = _text({"location": item.get("time") or "DAY"}, "location", where).upper()
    if time not in TIMES:
        raise InvalidInput(f"{where}'s time must be one of {', '.join(TIMES)}, got {time!r}")
    names = item.get("characters") or []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, (list, tuple)):
        raise InvalidInput(f"{where}'s characters must be a list of names from the cast")
    by_name = {c.name.lower(): c.name for c in cast}
    present = []
    for n in names:
        if not isinstance(n, str) or n.strip().lower() not in by_name:
            raise InvalidInput(f"{where} names {n!r}, who is not in the bible's cast "
                               f"({', '.join(c.name for c in cast) or 'no characters yet'})")
        if by_name[n.strip().lower()] not in present:
            present.append(by_name[n.strip().lower()])
    return ScenePlan(beat=beat, location=location, int_ext=_int_ext(item.get("int_ext"), where), time=time,
                     characters=tuple(present), what=_text(item, "what", where))


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
    places = data.get("locations") or []
    if not isinstance(places, (list, tuple)):
        raise InvalidInput("the story bible's locations must be a list")
    if len(places) > MAX_LOCATIONS:
        raise InvalidInput(f"the story bible has {len(places)} locations; the limit is {MAX_LOCATIONS}")
    plan = data.get("scenes") or []
    if not isinstance(plan, (list, tuple)):
        raise InvalidInput("the story bible's scenes must be a list")
    if len(plan) > MAX_SCENES:
        raise InvalidInput(f"the scene plan has {len(plan)} scenes; the limit is {MAX_SCENES}")
    return StoryBible(title=_text(data, "title"), logline=_text(data, "logline"), genre=_text(data, "genre"),
                      tone=_text(data, "tone"), setting=_text(data, "setting"), characters=characters,
                      structure=structure, beats=beat_tuple, notes=_text(data, "notes"),
                      locations=tuple(_location(p, i) for i, p in enumerate(places)),
                      scenes=tuple(_scene(sc, i, characters, beat_tuple) for i, sc in enumerate(plan)))


BEAT_MARK_RE = re.compile(r"\[\[beat:\s*([^\]]+?)\s*\]\]|<!--\s*beat:\s*(.+?)\s*-->")


def beat_marker(beat: Beat, fmt: str) -> str:
    """An invisible marker that records which beat a passage was written for."""
    return f"[[beat: {beat.name}]]" if fmt == "fountain" else f"<!-- beat: {beat.name} -->"


def written_beats(text: str) -> list[str]:
    """Beat names marked in a document, in order."""
    return [(m.group(1) or m.group(2)).strip() for m in BEAT_MARK_RE.finditer(text)]
