"""Hierarchical co-writing after Dramatron (Mirowski et al., 2023): logline -> characters -> scene plan
-> each scene's action and dialogue.

Dramatron prompts a large model level by level, each level conditioned on the ones above it, and
lets the writer edit and regenerate any level on its own. The embedded model here is SmolLM2-135M,
which cannot be trusted to write a structured list, so each level is built the way guided Fountain
builds a scene (story_lib/guided.py): the studio holds the structure and asks the model small,
closed questions inside it.

- logline: one sentence, sampled after a short brief (title, genre, setting), ended at its first
  sentence end;
- characters: for each role (protagonist, antagonist, ally, ...) a first name (the first token must
  open a capitalised word; common words and names already used are drawn again), three traits and a
  goal that starts "<Name> wants to";
- scene plan: per beat, `per_beat` scenes, each: a location chosen among the setting's places by the
  model's log-probability (never the previous scene's place when there is another), so INT./EXT.
  comes from the place, not from luck; who is present: the cast named in the beat, then companions
  chosen by log-probability (a character absent from the last scenes gets a bonus, so the antagonist
  is not forgotten); and what happens: one sentence that starts with a present character's name.
  Day or night is chosen the same way;
- scenes are written by StoryWriter (mode 'scene' with `scene_number`): the plan's heading, only the
  characters the plan puts in the scene as speakers, each of them appearing before the scene ends.

Every choice draws from the job's seeded generators, so a seed gives the same plan.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from generators.base import GeneratorUnavailable, InvalidInput
from generators.story_lib.bible import Character, Location, ScenePlan, StoryBible

LEVELS = ("logline", "characters", "plan")
ROLES = ("protagonist", "antagonist", "ally", "mentor", "rival", "friend")
TRIES = 4  # drafts of a short answer before the level gives up with a clear error
ABSENT_BONUS = 1.0  # nats added to a character absent from the last two scenes, or a place not used yet
# Capitalised words that are not names: a model asked for a name often starts with these.
NOT_NAMES = {"The", "He", "She", "They", "It", "His", "Her", "Their", "A", "An", "I", "You", "We", "My", "Name",
             "Protagonist", "Antagonist", "Ally", "Mentor", "Rival", "Friend", "Hero", "Villain", "Character",
             "Story", "Title", "Mr", "Mrs", "Ms", "Dr", "Sir", "Lady", "Lord", "Captain", "King", "Queen", "This",
             "That", "In", "On", "At", "As", "And", "But", "So", "Yes", "No", "One", "Two", "Three", "Answer"}


@dataclass
class Asker:
    """What a level needs from the writer: a decoder for a question, the job's generators, and the
    sampling settings (temperature, top-p, ...) the creator chose."""

    decoder: Callable[[str, str, int], Any]  # (task text, answer prefix, max new tokens) -> sampling.Decoder
    settings: Any  # sampling.Settings
    generator: Any  # torch.Generator (token draws)
    rng: Any  # random.Random (choices among scored options)
    banned: Sequence[int]  # token ids a line may not start with (guided.banned_first_tokens)
    name_starts: Sequence[int]  # token ids a name may not start with (all but capitalised word starts)
    tokens: int = 0  # tokens sampled or scored, for the result's counts

    def line(self, task: str, prefix: str, *, limit: int, sentences: int = 0, stop: tuple[str, ...] = ("\n",),
             ban: Sequence[int] | None = None, ok: Callable[[str], bool] = lambda _t: True, what: str = "") -> str:
        """A short sampled answer after `prefix`, drawn again (up to TRIES) until `ok` accepts it."""
        from generators.story_lib import guided

        last = ""
        dec = self.decoder(task, prefix, limit * TRIES + 8)
        settings = replace(self.settings, max_new_tokens=limit, stop=stop, min_sentences=min(sentences, 1),
                           max_sentences=sentences)
        for _ in range(TRIES):
            got = dec.sample(settings, generator=self.generator, ban_first=self.banned if ban is None else ban)
            self.tokens += len(got.token_ids)
            text = re.sub(r"\s+", " ", got.text).strip()
            if sentences and got.finish == "length":
                text = guided._trim(text)
            last = text
            clean = not re.search(r"[\x00-\x1f\x7f\ufffd{}<>|\[\]]", text)  # no control bytes or markup
            if text and clean and ok(text) and not guided.PROMPT_LABEL_RE.search(text):
                return text
            dec.rewind(len(got.token_ids))
        raise GeneratorUnavailable(f"the model did not write a usable {what or 'answer'} in {TRIES} drafts "
                                   f"(last: {last[:60]!r}); try a higher temperature or edit it yourself")

    def choose(self, task: str, prefix: str, options: Sequence[str], bonus: Sequence[float] = ()) -> int:
        """One of `options` (continuations of `prefix`), drawn from the model's mean log-probability
        per token (plus `bonus`), sharpened by the temperature."""
        if len(options) == 1:
            return 0
        dec = self.decoder(task, prefix, 64)
        tok = dec.tokenizer
        cands = [list(tok(o, add_special_tokens=False)["input_ids"]) for o in options]
        scores = [s / len(c) for s, c in zip(dec.score(cands), cands)]
        self.tokens += sum(len(c) for c in cands)
        scores = [s + (bonus[i] if i < len(bonus) else 0.0) for i, s in enumerate(scores)]
        t = max(self.settings.temperature, 1e-3)
        weights = [math.exp((s - max(scores)) / t) for s in scores]
        return self.rng.choices(range(len(options)), weights=weights)[0]


# -- briefs (the small structured prompts each level reads) ---------------------------------------
def brief(bible: StoryBible, *, cast: bool = True) -> str:
    lines = [f"Title: {bible.title}" if bible.title else "", f"Genre: {bible.genre}" if bible.genre else "",
             f"Tone: {bible.tone}" if bible.tone else "", f"Setting: {bible.setting}" if bible.setting else "",
             f"Story: {bible.logline}" if bible.logline else ""]
    if cast and bible.characters:
        lines.append("Characters: " + "; ".join(describe(c) for c in bible.characters))
    return "\n".join(ln for ln in lines if ln)


def describe(c: Character) -> str:
    bits = [c.role] if c.role else []
    bits += list(c.traits)
    out = c.name + (f" ({', '.join(bits)})" if bits else "")
    return out + (f", wants {c.goal.rstrip('.')}" if c.goal else "")


# -- level 1: logline -----------------------------------------------------------------------------
def write_logline(ask: Asker, bible: StoryBible, prompt: str = "") -> str:
    task = (brief(bible, cast=True).replace(f"Story: {bible.logline}", "").strip()
            + (f"\nIdea: {prompt}" if prompt else "")
            + "\nWrite the logline: one sentence that says who the hero is, what they want and what stands "
              "in their way.")
    first = bible.characters[0].name if bible.characters else ""
    prefix = f"{first}, " if first else ""
    text = ask.line(task.strip(), prefix, limit=60, sentences=1, stop=(), what="logline",
                    ok=lambda t: len(t.split()) >= 6 and t.rstrip()[-1:] in ".!?")
    return (prefix + text).strip()


# -- level 2: characters --------------------------------------------------------------------------
def _is_name(text: str, used: set[str]) -> bool:
    """A capitalised first name, not a common word, not one already used."""
    return bool(re.fullmatch(r"[A-Z][a-z]{2,14}", text)) and text not in NOT_NAMES and text.lower() not in used


def write_characters(ask: Asker, bible: StoryBible, prompt: str = "", count: int = 3) -> tuple[Character, ...]:
    """`count` characters in ROLES order (protagonist, antagonist, ally, ...): name, traits, goal."""
    if not 1 <= count <= len(ROLES):
        raise InvalidInput(f"write 1 to {len(ROLES)} characters at a time, not {count}")
    roles = [c.role for c in bible.characters if c.role][:count]
    roles += [r for r in ROLES if r not in roles][:count - len(roles)]
    base = brief(bible, cast=False) + (f"\nIdea: {prompt}" if prompt else "")
    out: list[Character] = []
    used: set[str] = set()
    for role in roles:
        known = "".join(f"\nThe {c.role} is {c.name}." for c in out)
        name = ask.line(f"{base}{known}\nWhat is the first name of the story's {role}? Answer with the name only.",
                        "Name:", limit=4, stop=("\n", ",", ".", "!", "?", ";", ":"), ban=ask.name_starts,
                        ok=lambda t: _is_name(t.split()[0], used), what=f"name for the {role}").split()[0]
        used.add(name.lower())
        traits_text = ask.line(f"{base}\n{name} is the {role}. Give three words that describe {name}, "
                               "separated by commas.", f"{name} is", limit=16, what=f"traits of {name}",
                               ok=lambda t: len(_traits(t)) >= 2)
        goal = ask.line(f"{base}\n{name} ({role}; {', '.join(_traits(traits_text))}).\nIn one sentence, what "
                        f"does {name} want?", f"{name} wants to", limit=30, sentences=1, stop=("\n",),
                        what=f"goal of {name}", ok=lambda t: len(t.split()) >= 2)
        out.append(Character(name=name, traits=tuple(_traits(traits_text)), goal="to " + goal.rstrip(".") + ".",
                             role=role))
    return tuple(out)


def _traits(text: str) -> list[str]:
    """Up to three traits from an answer like 'a sweet, gentle soul who ...': each comma part's first
    one or two words, before a relative clause."""
    out = []
    for part in re.split(r",|\band\b|;", text):
        words = re.findall(r"[a-z][a-z\-]*", part.lower())
        words = [w for w in words if w not in {"very", "a", "an", "is", "was", "the", "and", "also"}]
        cut = next((i for i, w in enumerate(words) if w in {"who", "that", "which", "with", "but", "of"}), len(words))
        trait = " ".join(words[:min(cut, 2)])
        if re.fullmatch(r"[a-z][a-z\-]{2,20}(?: [a-z][a-z\-]{2,20})?", trait) and trait not in out \
                and not set(trait.split()) & set(ROLES):
            out.append(trait)
    return out[:3]


# -- level 3: the scene plan ----------------------------------------------------------------------
def named_in(text: str, cast: Sequence[Character]) -> list[str]:
    """Cast members named in a text (by name or first name), in cast order."""
    return [c.name for c in cast if re.search(rf"\b{re.escape(c.name.split()[0])}\b", text, re.IGNORECASE)]


def plan_scene(ask: Asker, bible: StoryBible, beat_index: int, before: Sequence[ScenePlan], prompt: str = "",
               *, scene_in_beat: int = 0, per_beat: int = 1) -> ScenePlan:
    """One scene of the plan for bible.beats[beat_index], after the scenes `before` it."""
    if not bible.characters:
        raise InvalidInput("the scene plan needs characters: write or add the cast first")
    beat = bible.beats[beat_index]
    places = list(bible.places())
    if not places:
        raise InvalidInput("the scene plan needs places: give the bible a setting or a list of locations")
    story = brief(bible) + (f"\nIdea: {prompt}" if prompt else "")
    task = (f"{story}\nBeat \"{beat.name}\": {beat.description}\n"
            + (f"Part {scene_in_beat + 1} of {per_beat} of this beat.\n" if per_beat > 1 else "")
            + "".join(f"Earlier: {s.what}\n" for s in before[-2:] if s.what))
    prev = before[-1].location.lower() if before else ""
    options = [p for p in places if p.name.lower() != prev] or places
    seen = {s.location.lower() for s in before}
    loc: Location = options[ask.choose(task + "Where does the next scene happen?", "The scene happens in the",
                                       [f" {p.name}." for p in options],
                                       [ABSENT_BONUS if p.name.lower() not in seen else 0.0 for p in options])]
    time = ("DAY", "NIGHT")[ask.choose(task + f"The scene is in the {loc.name}.", "It is", [" day.", " night."])]
    present = named_in(f"{beat.description} {prompt}", bible.characters)
    recent = {n for s in before[-2:] for n in s.characters}
    while len(present) < min(2, len(bible.characters)):
        others = [c for c in bible.characters if c.name not in present]
        lead = f"In this scene, {present[0]} is with" if present else "This scene is about"
        bonus = [ABSENT_BONUS if c.name not in recent else 0.0 for c in others]
        present.append(others[ask.choose(task + f"The scene is in the {loc.name}.", lead,
                                         [f" {c.name}." for c in others], bonus)].name)
    who = " and ".join(present)
    # A small question: the beat, the place and who is there (a long brief is parroted back).
    small = (f"Story: {bible.title}. {bible.setting}\n" + (f"Idea: {prompt}\n" if prompt else "")
             + (f"Before this: {before[-1].what}\n" if before and before[-1].what else "")
             + f"Next scene, in the {loc.name}, with {who}. What must happen: {beat.description}\n"
               "Describe this scene in one sentence.")
    what = ask.line(small, f"{present[0]}", limit=40, sentences=1, stop=("\n",), what="scene summary",
                    ok=lambda t: len(t.split()) >= 4 and not _parrots(t, bible.logline))
    return ScenePlan(beat=beat.name, location=loc.name, int_ext=loc.int_ext, time=time, characters=tuple(present),
                     what=f"{present[0]} {what}".strip())


def _parrots(text: str, source: str) -> bool:
    """Whether a text mostly repeats a source sentence (a small model copying its prompt)."""
    a, b = set(re.findall(r"[a-z]+", text.lower())), set(re.findall(r"[a-z]+", source.lower()))
    return bool(a) and len(a & b) / len(a) > 0.6


def plan_scenes(ask: Asker, bible: StoryBible, prompt: str = "", per_beat: int = 3,
                only: int = 0, progress: Callable[[float, str], None] = lambda _f, _m: None) -> tuple[ScenePlan, ...]:
    """The whole plan (per_beat scenes for each beat), or, with `only` = N, the bible's plan with
    scene N planned again and every other scene kept."""
    if only:
        current = list(bible.scenes)
        old = bible.scene(only)
        index = next((i for i, b in enumerate(bible.beats) if b.name.lower() == old.beat.lower()), 0)
        siblings = [s for s in current if s.beat.lower() == old.beat.lower()]
        new = plan_scene(ask, bible, index, current[:only - 1], prompt, scene_in_beat=siblings.index(old),
                         per_beat=len(siblings))
        current[only - 1] = new
        return tuple(current)
    if not 1 <= per_beat <= 4:
        raise InvalidInput(f"scenes_per_beat must be 1 to 4, got {per_beat}")
    total = len(bible.beats) * per_beat
    from generators.story_lib.bible import MAX_SCENES

    if total > MAX_SCENES:
        raise InvalidInput(f"{len(bible.beats)} beats x {per_beat} scenes is {total} scenes; the plan holds at "
                           f"most {MAX_SCENES}. Plan fewer scenes per beat")
    out: list[ScenePlan] = []
    for b in range(len(bible.beats)):
        for k in range(per_beat):
            progress(len(out) / total, f"planning scene {len(out) + 1} of {total}")
            out.append(plan_scene(ask, bible, b, out, prompt, scene_in_beat=k, per_beat=per_beat))
    return tuple(out)


def outline_markdown(bible: StoryBible) -> str:
    """The hierarchy as a page: logline, characters, the scene plan."""
    parts = [f"# {bible.title or 'Untitled'}", f"**Logline.** {bible.logline}" if bible.logline else ""]
    if bible.characters:
        parts.append("## Characters\n\n" + "\n".join(f"- **{c.name}**" + (f" ({c.role})" if c.role else "")
                                                     + (f": {', '.join(c.traits)}" if c.traits else "")
                                                     + (f". Wants {c.goal}" if c.goal else "")
                                                     for c in bible.characters))
    if bible.scenes:
        parts.append("## Scene plan\n\n" + "\n".join(
            f"{i}. **{s.heading}** ({s.beat}; {', '.join(s.characters)}): {s.what}"
            for i, s in enumerate(bible.scenes, 1)))
    return "\n\n".join(p for p in parts if p) + "\n"
