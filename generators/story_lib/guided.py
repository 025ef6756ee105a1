"""Guided Fountain: the studio lays out a scene's elements, the model writes inside them.

Asked for "a screenplay scene", a 135M model writes numbered summaries, first-person prose and
invented speakers about as often as a scene; repair can make that valid Fountain but not a
scene. So the scene is built one Fountain element at a time (grammar-constrained decoding, at
the level of screenplay elements rather than tokens):

- the scene heading is given (the answer's prefix, from the bible's setting);
- action paragraphs and dialogue lines are sampled one line each (a line ends the element); their
  first token may not open a list, a heading, markup, a shouted title or an empty line, a
  "Name:" label is dropped, and a draft that is still no line (a title, a colon label, a speech
  that opens as narration) is taken back and drawn again, up to LINE_TRIES times. Each line is
  streamed when it is kept, so the stream never shows a draft that was thrown away;
- who speaks is the model's choice among the bible's cast: each cue line "NAME" is scored by its
  log-probability in context and one is sampled from those scores (the last speaker is left out
  only when no action line came between, so two characters do not simply alternate), so
  characters stay named and consistent;
- after a line of dialogue an action paragraph follows with probability ACTION_SHARE, drawn from
  the job's seeded RNG, so the same seed lays out the same scene.

- a planned scene (story_lib/hierarchy.py) speaks only with the cast the plan puts in it, each of
  them speaks or is named before the scene ends, and its opening action is the draft that keeps
  closest to the plan's words.

The model chooses every word and every speaker; the studio guarantees the form.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

ACTION_SHARE = 0.3  # after dialogue; screenplay pages run roughly a third action, two thirds dialogue
ACTION_TOKENS = 64  # longest action paragraph
LINE_TRIES = 3  # drafts of a line before it is left out
DIALOGUE_TOKENS = 48  # longest speech
# A first token that starts one of these is not an action line or a speech.
BANNED_START_RE = re.compile(r"^\s*($|[0-9#*\-•>\[\]{}<|=_~`/\\:(\"'“”.…]|INT\b|EXT\b|Scene\b|Chapter\b)")
# Two or more capitals and nothing else: the start of a cue, a heading or a shouted title, not of
# an action line or a speech.
CAPS_START_RE = re.compile(r"^\s*(?:[A-Z]{2,}|[B-HJ-NP-Z])$")  # a lone capital (not I, A, O) starts a
# shouted word ("J" + "ONES"): words that start a sentence come whole from the tokenizer
# "Mara: Hello." / "Narrator: ..." inside a line: the speaker is already laid out, so drop the label.
LABEL_RE = re.compile(r"^\s*\**[A-Z][A-Za-z0-9.'\-]*(?: [A-Za-z0-9][A-Za-z0-9.'\-]*){0,2}\**\s*(?:\([^)]{0,30}\))?\s*:\s+(?=\S)")
SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)]?(?=\s|$)")


@dataclass
class Written:
    """A guided scene: the text (after the prefix) and how it was made."""

    text: str
    tokens: int = 0  # new tokens, sampled or laid out, thrown-away drafts included
    finish: str = "length"
    elements: list[str] = field(default_factory=list)  # "action" | "dialogue:<CUE>"
    seconds: float = 0.0
    first_token_seconds: float | None = None


def banned_first_tokens(tokenizer: Any, eos: set[int]) -> list[int]:
    """Token ids that may not open an action line or a speech (decoding the whole vocabulary once)."""
    vocab = len(tokenizer)
    pieces = tokenizer.batch_decode([[i] for i in range(vocab)], skip_special_tokens=False)
    banned = [i for i, piece in enumerate(pieces) if BANNED_START_RE.match(piece) or CAPS_START_RE.match(piece)]
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    return sorted(set(banned) | special | set(eos))


# Past-tense verbs without -ed that open narration ("She felt her heart sink").
IRREGULAR_PAST = ("was", "were", "had", "felt", "took", "said", "saw", "went", "came", "made", "knew", "thought",
                  "stood", "sat", "ran", "held", "gave", "told", "heard", "left", "began", "kept", "got", "found",
                  "brought", "fell", "put", "let", "met", "led", "spoke", "drew", "threw", "grew", "woke", "wore",
                  "could", "would", "did", "didn't", "wasn't", "couldn't", "wouldn't", "hadn't", "seemed", "smiled")
# A speech line that is really narration: he/she/they, his/her/their + noun, or a cast name, then a
# verb in the past tense or in the third person ("She felt", "Her eyes widened", "Mara turns away"),
# or a line that carries its own speech tag ("..., she said").
PRONOUN_SUBJECT = r"(?:He|She|They|It|His \w+|Her \w+|Their \w+|The (?:man|woman|girl|boy|old man|old woman))"
SPEECH_TAG_RE = re.compile(r"[,.!?][\"'”’]?\s+(?:he|she|they|[A-Z][a-z]+)\s+"
                           r"(?:said|says|asked|asks|replied|replies|whispered|whispers|shouted|shouts|muttered|mutters|cried|cries)\b")
# Prompt text a line may not repeat (the plan's labels, the instructions): no prompt leaks out.
PROMPT_LABEL_RE = re.compile(r"\b(?:in this scene|place|what happens|who is there|characters?|logline)\s*:|"
                             r"\b(?:what happens|who is there|beat \"|only \w+ (?:and \w+ )?speak|"
                             r"scene \d+ of|here'?s how|you could write|(?:short|next) scene|"
                             r"the story so far|screenplay|fountain|logline|in one sentence|as an ai|"
                             r"the player|this scenario)\b", re.IGNORECASE)


def narrates(line: str, names: Sequence[str] = ()) -> bool:
    """Whether a line written under a cue is third-person narration rather than speech."""
    subjects = "|".join([PRONOUN_SUBJECT, *(re.escape(n) for n in names if n)])
    verb = rf"(?:[a-z]+ed|[a-z]+[^s\W]s|{'|'.join(IRREGULAR_PAST)})"
    if re.match(rf"^(?:{subjects})\s+(?:\w+ly\s+)?{verb}\b", line):
        return True
    return bool(SPEECH_TAG_RE.search(line))


# A heading or a slug-like fragment inside a line ("TRAILER - DAWN", "EXT. DOCK"): not an action line.
SLUG_IN_LINE_RE = re.compile(r"\b(?:INT|EXT)\.|\s-\s(?:DAY|NIGHT|DAWN|DUSK|MORNING|EVENING|LATER|CONTINUOUS)\b")


def narrates_past(line: str, names: Sequence[str] = ()) -> bool:
    """An action line told in the past tense ("She turned to face him"): screenplay action is present."""
    subjects = "|".join([PRONOUN_SUBJECT, *(re.escape(n) for n in names if n)])
    past = re.compile(rf"^(?:As (?:he|she|they) \w+,?\s*)?(?:{subjects})\s+(?:\w+ly\s+)?"
                      rf"(?:[a-z]+ed|{'|'.join(IRREGULAR_PAST)})\b")
    return any(past.match(sentence) for sentence in re.split(r"(?<=[.!?])\s+", line.strip()))


def usable(kind: str, line: str, names: Sequence[str] = ()) -> bool:
    """Whether a drafted line can stand as an action paragraph or a speech: it has lower-case
    words (not a shouted title or a cue), does not end in a colon (a label) and repeats no prompt
    text; an action line has at least three words; a speech does not narrate ("She felt her
    heart sink", "Mara turns away", "..., he said")."""
    if not re.search(r"[a-z]", line) or line.rstrip().endswith(":") or PROMPT_LABEL_RE.search(line):
        return False
    if kind == "action":
        return len(line.split()) >= 3 and not SLUG_IN_LINE_RE.search(line) and not narrates_past(line, names)
    if re.sub(r"[^\w ]", "", line).strip().lower() in {n.lower() for n in names}:
        return False  # a name alone is not a speech
    letters = [c for c in line if c.isalpha()]
    if len(letters) >= 8 and sum(c.isupper() for c in letters) > 0.6 * len(letters):
        return False  # shouted in capitals: a cue or a title, not a speech
    return not narrates(line, names)


TOPIC_DRAFTS = 3  # drafts of a planned scene's opening action, the one closest to the plan kept
TOPIC_STOP = {"that", "this", "with", "from", "into", "their", "there", "they", "them", "then", "than", "what",
              "when", "where", "which", "while", "about", "after", "before", "must", "have", "has", "been",
              "will", "would", "could", "should", "your", "over", "under", "until", "between"}


def _stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in TOPIC_STOP}


def overlap(line: str, topic: str) -> int:
    """How many of a topic's content words (by 5-letter stem) a line uses."""
    return len(_stems(line) & _stems(topic))


def _trim(text: str) -> str:
    """A line cut by its token limit ends at its last full sentence, where it has one."""
    text = text.strip()
    ends = list(SENTENCE_END_RE.finditer(text))
    if ends and ends[-1].end() < len(text):
        return text[:ends[-1].end()]
    return text


def write_scene(decoder: Any, settings: Any, cues: Sequence[str], *, generator: Any, rng: Any,
                banned: Sequence[int], on_text: Callable[[str], None] = lambda _t: None,
                must_appear: bool = False, topic: str = "") -> Written:
    """Write a scene after the decoder's prompt within settings.max_new_tokens tokens.

    `decoder` is a sampling.Decoder whose prompt ends where the scene's first element starts;
    `cues` are the cast's cue names (upper case); `rng` is a random.Random for the layout.
    `must_appear` (a planned scene: `cues` are the characters the plan puts in it): the scene does
    not end before each of them has spoken or been named in an action line, and when the budget
    left is only enough for the speeches still owed, the next speaker is one who owes one.
    `topic` (the planned beat and what happens): the opening action line is the best of
    TOPIC_DRAFTS usable drafts by the words it shares with the topic (later action lines the best
    of two), so the scene opens on its beat and keeps to it.
    """
    from dataclasses import replace

    tok = decoder.tokenizer
    encode = lambda s: list(tok(s, add_special_tokens=False)["input_ids"])  # noqa: E731
    start = time.perf_counter()
    out = Written(text="")
    budget = settings.max_new_tokens
    cue_ids = [encode(c + "\n") for c in cues]
    names = [c.title() for c in cues]  # "MARA" -> "Mara", as narration would write it
    last_speaker: str | None = None
    kind = "action"
    owed = set(cues) if must_appear else set()  # planned characters not yet seen in the scene

    spent = [0]  # tokens sampled or laid out, drafts that were thrown away included

    def lay_out(text: str) -> None:
        decoder.feed(encode(text))
        out.text += text
        on_text(text)

    def write_line(kind: str, limit: int, best_of: int = 1) -> str:
        """One sampled line the form accepts (up to LINE_TRIES drafts), cleaned, in the text the
        model reads and streamed whole; "" when no draft was usable. With best_of > 1, that many
        usable drafts are written and the one sharing most words with `topic` is kept."""
        if best_of > 1:
            drafts: list[tuple[str, Any]] = []
            for _ in range(LINE_TRIES + best_of - 1):
                got = decoder.sample(replace(settings, max_new_tokens=limit, stop=("\n",)), generator=generator,
                                     ban_first=banned)
                if out.first_token_seconds is None:
                    out.first_token_seconds = got.first_token_seconds
                out.tokens += len(got.token_ids)  # drafts cost time, but only the kept one uses the budget
                line = LABEL_RE.sub("", re.sub(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]", "", got.text).strip(), count=1)
                line = _trim(line) if got.finish == "length" else line
                decoder.rewind(len(got.token_ids))
                if usable(kind, line, names):
                    drafts.append((line, got))
                    if len(drafts) >= best_of:
                        break
            if not drafts:
                return ""
            line, got = max(drafts, key=lambda d: overlap(d[0], topic))  # the first of equals
            spent[0] += len(got.token_ids)
            out.tokens -= len(got.token_ids)
            out.finish = "eos" if got.finish == "eos" else out.finish
            decoder.feed(encode(line + "\n\n"))
            on_text(line)
            return line
        for _ in range(LINE_TRIES):
            got = decoder.sample(replace(settings, max_new_tokens=limit, stop=("\n",)), generator=generator,
                                 ban_first=banned)
            if out.first_token_seconds is None:
                out.first_token_seconds = got.first_token_seconds
            spent[0] += len(got.token_ids)
            # control bytes out first (as story.CONTROL_RE does to the passage), so the streamed line
            # and the passage are stripped alike
            line = LABEL_RE.sub("", re.sub(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]", "", got.text).strip(), count=1)
            if got.finish == "length":
                line = _trim(line)
            if usable(kind, line, names):
                break
            decoder.rewind(len(got.token_ids))
        else:
            return ""
        if got.finish == "eos":
            out.finish = "eos"
        if got.finish == "stop" and line == got.text:  # as written: lay out the rest of "\n\n"
            newlines = tok.decode(got.token_ids[-1:]).count("\n")
            decoder.feed(encode("\n" * (2 - newlines)) if newlines < 2 else [])
        else:  # the model reads the line as it is kept
            decoder.rewind(len(got.token_ids))
            decoder.feed(encode(line + "\n\n"))
        on_text(line)
        return line

    def reserve() -> int:  # tokens kept back for the planned characters still owed a line
        return len(owed) * (DIALOGUE_TOKENS // 2 + 4)

    # A planned character still owed a line gets it even past the budget (at most one speech each).
    while spent[0] < budget - 8 or owed:
        remaining = budget - spent[0]
        if owed:  # room for one more speech
            remaining = max(remaining, DIALOGUE_TOKENS // 2 + len(max(cue_ids, key=len, default=[])))
        if owed and spent[0] >= budget - 8 - reserve():
            kind = "dialogue"  # the budget left goes to the planned characters still owed a line
        if kind == "action":
            drafts = (TOPIC_DRAFTS if not out.elements else 2) if topic else 1  # the opening most of all
            line = write_line("action", min(ACTION_TOKENS, max(8, remaining - reserve())), drafts)
            if line:
                owed -= {c for c, n in zip(cues, names) if re.search(rf"\b{re.escape(n)}\b", line, re.IGNORECASE)}
                out.elements.append("action")
                last_speaker = None  # after action the same character may speak again: no forced alternation
        else:
            options = [i for i, c in enumerate(cues) if c != last_speaker or len(cues) == 1]
            if owed and spent[0] >= budget - 8 - reserve():  # the plan's cast first
                options = [i for i in options if cues[i] in owed] or [i for i, c in enumerate(cues) if c in owed]
            scores = decoder.score([cue_ids[i] for i in options])
            temperature = max(settings.temperature, 1e-3)
            weights = [math.exp((s - max(scores)) / temperature) for s in scores]
            pick = options[rng.choices(range(len(options)), weights=weights)[0]]
            last_speaker = cues[pick]
            owed.discard(cues[pick])
            lay_out(cues[pick] + "\n")
            spent[0] += len(cue_ids[pick])
            line = write_line("dialogue", min(DIALOGUE_TOKENS, remaining - len(cue_ids[pick])))
            if not line:  # a cue needs a line under it
                line = "..."
                decoder.feed(encode(line + "\n\n"))
                on_text(line)
            out.elements.append("dialogue:" + cues[pick])
        if line:
            out.text += line + "\n\n"
            on_text("\n\n")
        if out.finish == "eos" and len(out.elements) >= 2 and not owed:
            break  # the model ended the scene
        out.finish = "length"
        kind = "action" if kind == "dialogue" and rng.random() < ACTION_SHARE or not cues else "dialogue"
    out.tokens += spent[0]  # tokens sampled or laid out, thrown-away drafts included
    out.text = out.text.rstrip("\n")
    out.seconds = time.perf_counter() - start
    return out
