"""Co-writing modes: what the model reads, and where its passage lands in the document.

The lesson of Sunspring vs It's No Game (Sharp & Goodwin, 2016-17): a network writing a whole
film alone produced nonsense, while the same kind of model used in places, with people around it,
worked. So every mode here edits a document a writer owns, at a place the writer chose:

  scene      write the scene for a chosen beat of the beat sheet, appended at the end; with a scene
             number, the planned scene (story_lib/hierarchy.py): it replaces that scene where the
             document already has it, so one scene is regenerated and the others stay
  next_beat  the same, for the beat after the last one written (beats are marked in the text)
  continue   continue from the cursor; text after the cursor stays after the new passage
  regenerate replace the selection with a new passage written from the text before it
  branch     like continue, several alternatives from one parent (the version tree grows)
  rewrite    retell the selection in another tone
  turn       interactive narrative (AI Dungeon): the player's action, then the story's answer
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from generators.base import InvalidInput
from generators.story_lib.bible import Beat, StoryBible, beat_marker, written_beats
from generators.story_lib.fountain import heading_for

MODES = ("scene", "next_beat", "continue", "regenerate", "branch", "rewrite", "turn")


@dataclass(frozen=True)
class Plan:
    mode: str
    template: str  # prompts/story/<template>
    variables: dict[str, object]
    start: int  # the new passage replaces document[start:end]
    end: int
    lead: str  # text put before the passage (separators, beat marker, the player's action)
    prefix: str  # start of the model's answer; it begins the passage
    beat: Beat | None
    context_chars: int  # characters of the document the model actually reads
    primer: str = ""  # start of the model's answer that is already in the text (continue mid-paragraph)


def _selection(text: str, start: int, end: int, mode: str) -> tuple[int, int]:
    if start < 0 or end < 0:
        raise InvalidInput(f"{mode} needs a selection: set selection_start and selection_end")
    if not start < end <= len(text):
        raise InvalidInput(f"the selection {start}..{end} is not inside the text (0..{len(text)}), "
                           "or it is empty")
    return start, end


NOTE_RE = re.compile(r"\[\[.*?\]\]\n*|<!--.*?-->\n*", re.DOTALL)
SECTION_RE = re.compile(r"\[\[(?:scene|beat):[^\]]*\]\]|<!--\s*(?:scene|beat):.*?-->")


def scene_marker(number: int, fmt: str) -> str:
    """An invisible marker for a planned scene: regenerating scene N replaces its section."""
    return f"[[scene: {number}]]" if fmt == "fountain" else f"<!-- scene: {number} -->"


def scene_span(text: str, number: int) -> tuple[int, int] | None:
    """Where planned scene `number` is in the document: from its marker to the next scene or beat
    marker (trailing blank lines excluded), or None when it is not written yet."""
    m = re.search(rf"\[\[scene:\s*{number}\s*\]\]|<!--\s*scene:\s*{number}\s*-->", text)
    if m is None:
        return None
    nxt = SECTION_RE.search(text, m.end())
    end = len(text[:nxt.start()].rstrip()) if nxt else len(text.rstrip())
    return m.start(), end


def written_scenes(text: str) -> list[int]:
    """Planned scene numbers marked in a document, in order."""
    found = re.findall(r"\[\[scene:\s*(\d+)\s*\]\]|<!--\s*scene:\s*(\d+)\s*-->", text)
    return [int(a or b) for a, b in found]


def _primer(context: str, chars: int = 300) -> str:
    """The last paragraph before the cursor (at most `chars`, from a word start): the model's answer
    starts with it, so an instruction-tuned model continues the text instead of commenting on it."""
    para = context.rstrip("\n").rsplit("\n\n", 1)[-1]
    if len(para) > chars:
        para = para[-chars:]
        para = para[para.find(" ") + 1:] if " " in para else para
    return para


def _tail(text: str, chars: int) -> str:
    """The last `chars` characters of the text as the model reads it (beat markers and notes
    removed), starting at a paragraph or line break when one is near."""
    text = NOTE_RE.sub("", text)
    if len(text) <= chars:
        return text
    cut = text[-chars:]
    nl = cut.find("\n")
    return cut[nl + 1:] if 0 <= nl < chars // 4 else cut


def plan(mode: str, text: str, *, bible: StoryBible, fmt: str, prompt: str, beat: str, cursor: int,
         selection_start: int, selection_end: int, tone: str, action: str, context_chars: int,
         scene_number: int = 0) -> Plan:
    """Decide the prompt variables and the edit for one co-writing request."""
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    sep = "\n\n" if text.strip() else ""
    if mode == "scene" and scene_number:
        if beat:
            raise InvalidInput("give a beat or a scene number, not both (the plan says which beat a scene is for)")
        planned = bible.scene(scene_number)
        chosen = bible.beat(planned.beat) if planned.beat else None
        span = scene_span(text, scene_number)
        start, end = span if span else (len(text), len(text))
        context = _tail(text[:start].rstrip(), context_chars)
        lead = ("\n\n" if text[:start].strip() else "") + scene_marker(scene_number, fmt) + "\n\n"
        if span:
            start = len(text[:start].rstrip())
        prefix = planned.heading + "\n\n" if fmt == "fountain" else ""
        cast = [bible.character(n) for n in planned.characters]
        return Plan(mode, "task_plan_scene.j2", {"scene": planned, "number": scene_number, "beat": chosen,
                                                 "cast": cast, "context": context, "prompt": prompt, "fmt": fmt},
                    start, end, lead, prefix, chosen, len(context))
    if mode in ("scene", "next_beat"):
        if mode == "next_beat":
            if beat:
                raise InvalidInput("next_beat picks the beat itself; leave beat empty or use mode 'scene'")
            chosen = bible.next_beat(written_beats(text))
        else:
            chosen = bible.beat(beat) if beat else bible.next_beat(written_beats(text))
        context = _tail(text.rstrip(), context_chars)
        lead = sep + beat_marker(chosen, fmt) + "\n\n"
        # Start the answer with a scene heading: small models then keep to screenplay form.
        prefix = heading_for(bible.setting or bible.title) + "\n\n" if fmt == "fountain" else ""
        return Plan(mode, "task_scene.j2", {"beat": chosen, "context": context, "prompt": prompt, "fmt": fmt},
                    len(text), len(text), lead, prefix, chosen, len(context))
    if mode in ("continue", "branch"):
        at = len(text) if cursor < 0 else cursor
        if at > len(text):
            raise InvalidInput(f"the cursor {cursor} is past the end of the text ({len(text)} characters)")
        if not text[:at].strip() and not prompt and bible.empty:
            raise InvalidInput(f"{mode} needs text before the cursor, a prompt, or a story bible to start from")
        context = _tail(text[:at], context_chars)
        after = NOTE_RE.sub("", text[at:at + 400]).strip()
        return Plan(mode, "task_continue.j2", {"context": context, "after": after, "prompt": prompt, "fmt": fmt},
                    at, at, "", "", None, len(context), _primer(context))
    if mode == "regenerate":
        s, e = _selection(text, selection_start, selection_end, mode)
        context = _tail(text[:s], context_chars)
        after = NOTE_RE.sub("", text[e:e + 400]).strip()
        if not context.strip() and not prompt and bible.empty:
            raise InvalidInput("regenerate needs text before the selection, a prompt, or a story bible")
        return Plan(mode, "task_continue.j2", {"context": context, "after": after, "prompt": prompt, "fmt": fmt},
                    s, e, "", "", None, len(context), _primer(context))
    if mode == "rewrite":
        s, e = _selection(text, selection_start, selection_end, mode)
        if not tone.strip():
            raise InvalidInput("rewrite needs a tone, e.g. 'comic', 'noir', 'tender'")
        selection = text[s:e]
        if len(selection) > context_chars:
            raise InvalidInput(f"the selection is {len(selection)} characters; rewrite takes at most "
                               f"{context_chars} (raise context_chars or select less)")
        return Plan(mode, "task_rewrite.j2", {"selection": selection, "tone": tone.strip(), "prompt": prompt,
                                              "fmt": fmt}, s, e, "", "", None, len(selection))
    # turn
    if not action.strip():
        raise InvalidInput("turn needs the player's action, e.g. 'I open the cellar door'")
    context = _tail(text.rstrip(), context_chars)
    shown = action.strip()
    lead = sep + (f"!> {shown}" if fmt == "fountain" else f"> **{shown}**") + "\n\n"
    # A prose answer starts "You": the narrator tells the player's character what happens (AI Dungeon's
    # second person), which keeps a small model on the action instead of a first-person diary.
    return Plan(mode, "task_turn.j2", {"context": context, "action": shown, "you": second_person(shown),
                                       "prompt": prompt, "fmt": fmt},
                len(text), len(text), lead, "You" if fmt == "prose" else "", None, len(context))


PERSON = {"i": "you", "i'm": "you're", "i've": "you've", "i'll": "you'll", "i'd": "you'd", "me": "you",
          "my": "your", "mine": "yours", "myself": "yourself", "am": "are", "we": "you", "our": "your", "us": "you"}


def second_person(action: str) -> str:
    """The player's action as the narrator tells it: 'I open my bag' -> 'you open your bag'."""
    text = re.sub(r"\bI(['’](?:m|ve|ll|d))\b", lambda m: PERSON["i" + m.group(1).lower().replace("’", "'")],
                  action.strip().rstrip(".!"))
    words = re.split(r"([^\w']+)", text)
    out = [PERSON.get(w.lower(), w) if re.match(r"\w", w) else w for w in words]
    text = "".join(out)
    return text if text.lower().startswith("you") else "you " + text[:1].lower() + text[1:]


def apply(text: str, p: Plan, passage: str) -> str:
    """The document after the edit: text before, the lead, the passage, text after."""
    before, after = text[:p.start], text[p.end:]
    inline = p.mode in ("continue", "branch", "regenerate", "rewrite")
    if inline and before and not before[-1].isspace() and passage and not passage[0].isspace() \
            and passage[0] not in ",.;:!?'’)]":
        passage = " " + passage
    joined = before + p.lead + passage
    if after and not after.startswith(("\n", " ")) and passage and not passage.endswith(("\n", " ")):
        joined += " " if inline and "\n" not in passage else "\n"
    return joined + after
