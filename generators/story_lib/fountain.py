"""Fountain screenplays: repair a language model's draft, validate it, export Markdown and HTML.

Fountain (fountain.io, John August & Stu Maschwitz, 2012) is plain-text screenplay markup:
scene headings (INT./EXT.), action, character cues in capitals, dialogue, parentheticals and
transitions (CUT TO:). Small models write something close to it but not quite ("Mara: hi",
lower-case headings, a cue with no line, an all-caps action line that a parser would read as a
cue). `repair()` rewrites such lines into valid Fountain and lists every change it made;
`validate()` parses the result with screenplain (the maintained Fountain parser and HTML
renderer on PyPI, whose ReportLab export also gives the PDF) and checks that the parser sees the same elements the repair intended, so a
draft that is still malformed is caught and regenerated rather than passed on.
"""
from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

HEADING_RE = re.compile(r"^\s*\.?\s*(INT\.?\s*/\s*EXT|EXT\.?\s*/\s*INT|I/E|INT|EXT|EST)\b[.\s]*(.*)$",
                        re.IGNORECASE)
TRANSITIONS = ("FADE IN:", "FADE OUT.", "FADE TO BLACK.", "CUT TO:", "SMASH CUT TO:", "MATCH CUT TO:",
               "DISSOLVE TO:", "CUT TO BLACK.", "JUMP CUT TO:", "FADE TO:")
INLINE_CUE_RE = re.compile(r"^\s*\**([A-Za-z][A-Za-z .'\-]{0,28}?)\**\s*(\([^)]{1,40}\))?\s*:\s+(\S.*)$")
EXTENSION_RE = re.compile(r"^(.*?)\s*(\((?:V\.O\.|O\.S\.|O\.C\.|CONT'D|CONT’D)\))?\s*$", re.IGNORECASE)
# "LONDON - DAY": a heading without INT./EXT.; Fountain writes it as a forced heading ".LONDON - DAY"
BARE_HEADING_RE = re.compile(r"^([A-Z0-9][A-Z0-9 .,'/&\-]{1,50}?)\s+[-–—]\s+(DAY|NIGHT|MORNING|EVENING|DAWN|DUSK|"
                             r"LATER|CONTINUOUS|MOMENTS LATER|SUNSET|SUNRISE)$", re.IGNORECASE)
FOUNTAIN_SPECIAL = ("!", "@", "~", ">", "=", "#", ".", "[[", "/*")
FENCE_RE = re.compile(r"^\s*```.*$")
EMPH_WRAP_RE = re.compile(r"^\s*(\*\*|__)(.+?)(\*\*|__)\s*$")


@dataclass
class Repair:
    """What `repair()` produced: the fixed text and a sentence for each change."""

    text: str
    changes: list[str] = field(default_factory=list)
    headings: int = 0
    cues: int = 0
    transitions: int = 0
    actions: int = 0


@dataclass
class Check:
    """What `validate()` found."""

    valid: bool
    problems: list[str]
    counts: dict[str, int]


def _norm_heading(match: re.Match[str]) -> str:
    prefix = re.sub(r"\s+", "", match.group(1).upper()).rstrip(".")
    prefix = {"INT/EXT": "INT./EXT.", "EXT/INT": "EXT./INT.", "I/E": "I/E"}.get(prefix.replace(".", ""),
                                                                             prefix + ".")
    rest = re.sub(r"\s+", " ", match.group(2).strip().strip("*").strip()).upper()
    return f"{prefix} {rest}".strip() if rest else ""


CUE_NAME_RE = re.compile(r"[A-Z][A-Z0-9 .'\-]*")


def _is_caps_name(text: str) -> bool:
    """Looks like a character cue: 1-4 capitalised words, starting with a letter, no end punctuation."""
    text = text.strip()
    return (0 < len(text.split()) <= 4 and len(text) <= 32 and bool(CUE_NAME_RE.fullmatch(text))
            and not text.endswith((".", "!", "?", ",", ";", ":")))


class _CastIndex:
    """Maps a name as a model wrote it ("mara", "Mara Vance") to the bible's canonical cue."""

    def __init__(self, names: Iterable[str]) -> None:
        self.by_key: dict[str, str] = {}
        for name in names:
            cue = name.strip().upper()
            if not cue:
                continue
            self.by_key[cue] = cue
            first = cue.split()[0]
            self.by_key.setdefault(first, cue)

    def lookup(self, raw: str) -> str | None:
        key = re.sub(r"\s+", " ", raw.strip().strip("*").strip()).upper()
        return self.by_key.get(key)


def repair(text: str, characters: Sequence[str] = ()) -> Repair:
    """Rewrite a model's draft into valid Fountain; every change is described in `changes`."""
    cast = _CastIndex(characters)
    out = Repair(text="")
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ").split("\n")
    lines: list[str] = []
    for line in raw_lines:
        if FENCE_RE.match(line):
            out.changes.append("removed a Markdown code fence")
            continue
        m = EMPH_WRAP_RE.match(line)
        if m:
            line = m.group(2)
        lines.append(line.rstrip())

    # Group into paragraphs (blank-line separated); Fountain's meaning depends on them.
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)

    blocks: list[list[str]] = []

    def add_action(action_lines: list[str]) -> None:
        first = action_lines[0]
        # screenplain (like the Fountain spec) reads a paragraph whose first line is in capitals
        # as a cue, and a first character from FOUNTAIN_SPECIAL as markup: force action.
        if not first.startswith("!") and (first.startswith(FOUNTAIN_SPECIAL)
                                          or (len(action_lines) > 1 and first.split("(")[0].isupper())):
            out.changes.append(f"forced {first[:30]!r} to read as action")
            action_lines = ["!" + first] + action_lines[1:]
        out.actions += 1
        blocks.append(action_lines)

    def add_dialogue(cue: str, speech: list[str]) -> None:
        if not any(s.strip() and not (s.startswith("(") and s.endswith(")")) for s in speech):
            out.changes.append(f"dropped the cue {cue!r}, which had no dialogue")
            return
        out.cues += 1
        blocks.append([cue] + speech)

    for para in paragraphs:
        kind: str | None = None  # "action" | "dialogue"
        cue = ""
        buf: list[str] = []

        def flush() -> None:
            nonlocal kind, buf
            if kind == "action" and buf:
                add_action(buf)
            elif kind == "dialogue":
                add_dialogue(cue, buf)
            kind, buf = None, []

        for idx, line in enumerate(para):
            has_next = idx + 1 < len(para)
            heading = HEADING_RE.match(line)
            norm = _norm_heading(heading) if heading and len(line) <= 80 else ""
            if norm:
                flush()
                if norm != line:
                    out.changes.append(f"normalised the scene heading {line[:40]!r}")
                out.headings += 1
                blocks.append([norm])
                continue
            bare = BARE_HEADING_RE.match(line.lstrip("."))
            if bare and (line.upper() == line or line.startswith(".")):
                flush()
                norm = f".{bare.group(1).strip().upper()} - {bare.group(2).upper()}"
                if norm != line:
                    out.changes.append(f"wrote {line[:40]!r} as a forced scene heading")
                out.headings += 1
                blocks.append([norm])
                continue
            upper = line.upper().strip()
            if upper in TRANSITIONS or (_is_caps_name(line.rstrip(":")) and upper.endswith(" TO:")):
                flush()
                norm = upper if upper.endswith("TO:") else "> " + upper
                if norm != line:
                    out.changes.append(f"normalised the transition {line[:30]!r}")
                out.transitions += 1
                blocks.append([norm])
                continue
            inline = INLINE_CUE_RE.match(line)
            if inline:
                name, paren, speech = inline.group(1), inline.group(2), inline.group(3)
                who = cast.lookup(name) or (name.strip().upper() if _is_caps_name(name.strip()) else None)
                if who:
                    flush()
                    out.changes.append(f"split the inline dialogue of {who} into cue and line")
                    kind, cue, buf = "dialogue", who, ([paren] if paren else []) + [speech.strip()]
                    continue
            ext = EXTENSION_RE.match(line)
            base, extension = (ext.group(1), ext.group(2)) if ext else (line, None)
            known = cast.lookup(base)
            if (known or _is_caps_name(base)) and not line.startswith(("!", ">", "(", "@")):
                if has_next:
                    flush()
                    who = (known or base.strip().upper()) + (" " + extension.upper() if extension else "")
                    if who != line:
                        out.changes.append(f"wrote the cue {line[:30]!r} as {who!r}")
                    elif idx > 0:
                        out.changes.append(f"put a blank line before the cue {who!r}")
                    kind, cue, buf = "dialogue", who, []
                    continue
                if known and kind is None:
                    out.changes.append(f"dropped the cue {known!r}, which had no dialogue")
                    continue
            if kind is None:
                kind = "action"
            buf.append(line)
        flush()

    out.text = "\n\n".join("\n".join(b) for b in blocks).strip() + ("\n" if blocks else "")
    return out


def parse(text: str) -> list[object]:
    """screenplain's elements (Slug, Action, Dialog, Transition, ...) for a Fountain body."""
    from screenplain.parsers.fountain import parse_body

    return parse_body(text.replace("\r\n", "\n").split("\n"))


def validate(text: str, expected: Repair | None = None) -> Check:
    """Parse with screenplain and check the draft is a usable scene.

    A draft is invalid when it is empty, when it repeats itself (a common small-model failure),
    or when screenplain reads different elements than `repair()` wrote (a malformed line).
    """
    from screenplain.types import Action, Dialog, DualDialog, Slug, Transition

    elements = parse(text)
    counts = {"headings": sum(isinstance(e, Slug) for e in elements),
              "dialogue": sum(isinstance(e, Dialog) for e in elements)
              + 2 * sum(isinstance(e, DualDialog) for e in elements),
              "transitions": sum(isinstance(e, Transition) for e in elements),
              "action": sum(isinstance(e, Action) for e in elements)}
    problems: list[str] = []
    if not text.strip() or not elements:
        problems.append("the draft is empty")
    if counts["dialogue"] + counts["action"] == 0 and text.strip():
        problems.append("the draft has no action and no dialogue")
    lines = [ln.strip().lower() for ln in text.split("\n") if len(ln.strip()) > 3]
    if lines:
        most = max(lines.count(ln) for ln in set(lines))
        if most >= 4 and most / len(lines) > 0.3:
            problems.append("the draft repeats the same line over and over")
    body = [ln for ln in text.split("\n") if ln.strip() and not HEADING_RE.match(ln)
            and not _is_caps_name(ln.split("(")[0]) and not ln.strip().endswith("TO:")]
    letters = [c for c in "".join(body) if c.isalpha()]
    if len(letters) >= 40 and sum(c.isupper() for c in letters) / len(letters) > 0.6:
        problems.append("the draft is mostly capitals")
    if expected is not None:
        if counts["headings"] != expected.headings:
            problems.append(f"the parser read {counts['headings']} scene headings, expected {expected.headings}")
        if counts["dialogue"] != expected.cues:
            problems.append(f"the parser read {counts['dialogue']} speeches, expected {expected.cues}")
        if counts["transitions"] != expected.transitions:
            problems.append(f"the parser read {counts['transitions']} transitions, expected {expected.transitions}")
    return Check(valid=not problems, problems=problems, counts=counts)


def ensure_heading(text: str, heading: str) -> tuple[str, bool]:
    """Put `heading` first when the scene does not start with one (a scene must say where it is)."""
    first = next((ln for ln in text.split("\n") if ln.strip()), "")
    if HEADING_RE.match(first) or re.match(r"^\.[^.\s]", first):  # INT./EXT. or a forced ".HEADING"
        return text, False
    return f"{heading}\n\n{text.lstrip()}", True


def heading_for(location: str, time_of_day: str = "DAY") -> str:
    """A scene heading from a free-text location ("a lighthouse at night" -> INT. LIGHTHOUSE - NIGHT)."""
    words = re.sub(r"[^A-Za-z0-9' ]+", " ", location).split()
    stop = {"a", "an", "the", "at", "in", "on", "of", "by", "near"}
    tod = time_of_day.upper()
    for w in words:
        if w.upper() in ("NIGHT", "DAY", "DAWN", "DUSK", "MORNING", "EVENING"):
            tod = w.upper()
    place = [w for w in words if w.lower() not in stop and w.upper() != tod][:4]
    return f"INT. {' '.join(place).upper() or 'UNKNOWN PLACE'} - {tod}"


def title_page(title: str, credit: str = "Written with Studio") -> str:
    """A Fountain title page block (key: value lines, then a blank line)."""
    title = re.sub(r"\s+", " ", title).strip()
    return f"Title: {title}\nCredit: {credit}\n\n" if title else ""


def to_markdown(text: str, title: str = "") -> str:
    """Markdown rendering of a Fountain body (headings, bold cues, italic parentheticals)."""
    from screenplain.types import Action, Dialog, DualDialog, Section, Slug, Transition

    parts: list[str] = [f"# {title}"] if title else []
    for el in parse(text):
        if isinstance(el, Slug):
            parts.append(f"### {el.line}")
        elif isinstance(el, Action):
            parts.append("  \n".join(str(ln) for ln in el.lines))
        elif isinstance(el, (Dialog, DualDialog)):
            for d in ([el.left, el.right] if isinstance(el, DualDialog) else [el]):
                speech = " ".join(f"*{t}*" if paren else str(t) for paren, t in d.blocks)
                parts.append(f"**{d.character}**: {speech}")
        elif isinstance(el, Transition):
            parts.append(f"*{el.line}*")
        elif isinstance(el, Section):
            parts.append(f"{'#' * min(6, el.level + 1)} {el.text}")
    return "\n\n".join(parts).strip() + "\n"


def to_html(fountain_text: str) -> str:
    """A formatted screenplay page (screenplain's HTML export with its screenplay CSS)."""
    from screenplain.export.html import convert
    from screenplain.parsers.fountain import parse as parse_document

    buf = io.StringIO()
    convert(parse_document(io.StringIO(fountain_text)), buf)
    page = buf.getvalue()
    title = re.search(r"^Title:\s*(.+)$", fountain_text, re.MULTILINE)
    if title:
        page = page.replace("<title>Screenplay</title>", f"<title>{html.escape(title.group(1))}</title>", 1)
    return page


def to_pdf(fountain_text: str) -> bytes:
    """A screenplay PDF (screenplain's ReportLab export: US Letter, Courier Prime, industry margins,
    title page from the Fountain title fields). Invariant mode leaves out the creation time, so
    the same script gives the same bytes."""
    import functools

    from screenplain.export.pdf import DocTemplate, to_pdf as render
    from screenplain.parsers.fountain import parse as parse_document

    buf = io.BytesIO()
    render(parse_document(io.StringIO(fountain_text)), buf,
           template_constructor=functools.partial(DocTemplate, invariant=1))
    return buf.getvalue()


def markdown_to_html(markdown_text: str, title: str = "Story") -> str:
    """A prose page: Markdown rendered by markdown-it-py, raw HTML in the text disabled."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).render(markdown_text)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>body{{max-width:40em;margin:2em auto;"
            "font-family:Georgia,serif;line-height:1.5}blockquote{color:#555}</style></head>"
            f"<body>\n{body}</body></html>\n")
