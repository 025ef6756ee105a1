"""Co-writing modes: what the model reads, and where its passage lands in the document.

The lesson of Sunspring vs It's No Game (Sharp & Goodwin, 2016-17): a network writing a whole
film alone produced nonsense, while the same kind of model used in places, with people around it,
worked. So every mode here edits a document a writer owns, at a place the writer chose:

  scene      write the scene for a chosen beat of the beat sheet, appended at the end
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
         selection_start: int, selection_end: int, tone: str, action: str, context_chars: int) -> Plan:
    """Decide the prompt variables and the edit for one co-writing request."""
    if mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    sep = "\n\n" if text.strip() else ""
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
    return Plan(mode, "task_turn.j2", {"context": context, "action": shown, "prompt": prompt, "fmt": fmt},
                len(text), len(text), lead, "", None, len(context))


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
