"""The Story workspace: a writer's document with a story bible, not a 25-field form.

Left, the story bible as a form (title, logline, genre, tone, setting, a table of characters
with traits and goals, a beat-sheet picker) with JSON import and export. Right, the screenplay
as one editable document (Fountain source; a rendered preview in the next tab, so each scene
is shown once) and the co-writing moves on it: write the next beat, continue, regenerate,
branch. Every result is a version in a tree (parent -> children); clicking a version brings
it back. Cancel keeps the streamed words as a "partial" version. The creator's own edits to
the document are what the next request continues from (recorded as an "edited" version).
Co-writing modes as in `generators/story_lib/cowrite.py`; this file only calls `studio.api`.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from studio.ui.cancellable import cancel_with_event
from studio.ui.context import UIContext
from studio.ui.panel import job_error, job_progress, parse_seed, progress_html
from studio.ui.ws_common import Outcome, cancel_job, run_job
from studio.ui.ws_story_plan import PlanPanel

GENERATOR = "story"
NEXT_BEAT = "(the next unwritten beat)"
CHAR_HEADERS = ["Name", "Traits (comma separated)", "Goal"]
BIBLE_TEXT_FIELDS = ("title", "logline", "genre", "tone", "setting")
MAX_IMPORT_BYTES = 64_000  # a bible is at most 8,000 characters as JSON; anything far bigger is not one


def _bible_lib() -> Any:
    from generators.story_lib import bible  # pure Python validation and beat sheets: no model

    return bible


def beat_sheets() -> list[str]:
    return list(_bible_lib().beat_sheets())


def beat_names(structure: str) -> list[str]:
    try:
        return [b.name for b in _bible_lib().load_beat_sheet(structure)]
    except Exception:  # noqa: BLE001 - an unknown sheet simply has no beats to pick
        return []


def bible_from_form(title: str, logline: str, genre: str, tone: str, setting: str, characters: Any,
                    structure: str) -> dict[str, Any]:
    """The form's values as the story generator's `bible` (validated there, in its own words)."""
    bible: dict[str, Any] = {k: (v or "").strip() for k, v in zip(BIBLE_TEXT_FIELDS, (title, logline, genre, tone,
                                                                                     setting)) if (v or "").strip()}
    rows = characters.values.tolist() if hasattr(characters, "values") else list(characters or [])
    cast = []
    for n, row in enumerate(rows):
        cells = [("" if c is None else str(c)).strip() for c in list(row) + ["", "", ""]][:3]
        name, traits, goal = cells
        if not any(cells):
            continue
        if not name:
            raise ValueError(f"character row {n + 1} has traits or a goal but no name")
        person: dict[str, Any] = {"name": name, "traits": [t.strip() for t in traits.split(",") if t.strip()]}
        if goal:
            person["goal"] = goal
        cast.append(person)
    if cast:
        bible["characters"] = cast
    if structure:
        bible["structure"] = structure
    return bible


def form_from_bible(bible: dict[str, Any]) -> list[Any]:
    """A bible (e.g. imported JSON) -> the form's values, in `bible_from_form`'s argument order."""
    rows = []
    for c in bible.get("characters") or []:
        if isinstance(c, str):
            name, _, traits = c.partition(":")
            rows.append([name.strip(), traits.strip(), ""])
        else:
            traits = c.get("traits") or []
            rows.append([c.get("name", ""), traits if isinstance(traits, str) else ", ".join(traits),
                         c.get("goal", "")])
    return [*(bible.get(k, "") or "" for k in BIBLE_TEXT_FIELDS), rows or [["", "", ""]],
            bible.get("structure") or "three_act"]


def check_bible(bible: dict[str, Any]) -> str | None:
    """The generator's own sentence for what is wrong with a bible, or None."""
    from generators.base import InvalidInput

    try:
        _bible_lib().parse_bible(bible)
    except InvalidInput as exc:
        return str(exc)
    return None


def preview(text: str, title: str = "") -> str:
    """The document as a formatted page (Fountain -> Markdown), for the Preview tab."""
    if not text.strip():
        return "*Nothing written yet.*"
    from generators.story_lib import fountain

    return fountain.to_markdown(text, title)


# -- the version tree (plain data in the session's state) -----------------------------------------
def _tree_choices(tree: dict[str, Any]) -> list[tuple[str, str]]:
    versions = tree["versions"]
    children: dict[str | None, list[dict]] = {}
    for v in versions:
        children.setdefault(v["parent"], []).append(v)
    out: list[tuple[str, str]] = []

    def walk(parent: str | None, depth: int) -> None:
        for v in children.get(parent, []):
            out.append((f"{'  ' * depth}{'└ ' if depth else ''}{v['label']}", v["id"]))
            walk(v["id"], depth + 1)

    walk(None, 0)
    return out


def _add(tree: dict[str, Any], text: str, parent: str | None, label: str, **extra: Any) -> dict[str, Any]:
    vid = f"v{len(tree['versions']) + 1}"
    version = {"id": vid, "parent": parent, "label": f"{vid} · {label}", "text": text, **extra}
    return {"versions": [*tree["versions"], version], "cur": vid}


def _get(tree: dict[str, Any], vid: str | None) -> dict[str, Any] | None:
    return next((v for v in tree["versions"] if v["id"] == vid), None)


class StoryWorkspace:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        p = "story-ws"
        sheets = beat_sheets()
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("#### Story bible")
                self.title = gr.Textbox(label="Title", elem_id=f"{p}-title")
                self.logline = gr.Textbox(label="Logline (the story in one sentence)", lines=2, elem_id=f"{p}-logline")
                with gr.Row():
                    self.genre = gr.Textbox(label="Genre", elem_id=f"{p}-genre")
                    self.tone = gr.Textbox(label="Tone", elem_id=f"{p}-tone")
                self.setting = gr.Textbox(label="Setting", lines=2, elem_id=f"{p}-setting")
                self.characters = gr.Dataframe(value=[["", "", ""]], headers=CHAR_HEADERS, type="array",
                                               datatype="str", column_count=3, interactive=True,
                                               label="Characters (add rows with the + below the table)",
                                               elem_id=f"{p}-characters")
                with gr.Row():
                    self.structure = gr.Dropdown(sheets, value="three_act" if "three_act" in sheets else None,
                                                 label="Beat sheet", elem_id=f"{p}-structure")
                    self.beat = gr.Dropdown([NEXT_BEAT, *beat_names("three_act")], value=NEXT_BEAT,
                                            label="Beat to write", elem_id=f"{p}-beat")
                with gr.Row():
                    self.import_btn = gr.UploadButton("Import bible (JSON)", file_types=[".json"], size="sm",
                                                      elem_id=f"{p}-import")
                    self.export_btn = gr.Button("Export bible (JSON)", size="sm", elem_id=f"{p}-export")
                self.exported = gr.File(label="Exported bible", visible=False, interactive=False,
                                        elem_id=f"{p}-exported")
                self.bible_status = gr.Markdown("", elem_id=f"{p}-bible-status")
                self.plan = PlanPanel(self)  # the hierarchy: logline, characters, beats, places, scene plan
            with gr.Column(scale=3, min_width=420):
                self.prompt = gr.Textbox(label="What should happen (optional)", lines=2, elem_id=f"{p}-prompt")
                small = {"size": "sm", "min_width": 100}  # one row of buttons: the document starts higher
                with gr.Row():
                    self.write_btn = gr.Button("Write the beat", variant="primary", **small, elem_id=f"{p}-write")
                    self.continue_btn = gr.Button("Continue", **small, elem_id=f"{p}-continue")
                    self.regen_btn = gr.Button("Regenerate", **small, elem_id=f"{p}-regenerate")
                    self.branch_btn = gr.Button("Branch ×2", **small, elem_id=f"{p}-branch")
                    self.rewrite_btn = gr.Button("Rewrite selection", **small, elem_id=f"{p}-rewrite")
                    self.cancel_btn = gr.Button("Cancel", variant="stop", **small, elem_id=f"{p}-cancel")
                self.progress = job_progress(p)
                self.error = job_error(p)
                with gr.Tabs():
                    with gr.Tab("Script", id="story-ws-script"):
                        self.doc = gr.Textbox(label="The document (edit freely; the next move starts from it)",
                                              lines=18, max_lines=60, elem_id=f"{p}-doc")
                    with gr.Tab("Preview", id="story-ws-preview-tab"):
                        self.preview = gr.Markdown("*Nothing written yet.*", elem_id=f"{p}-preview")
                self.versions = gr.Radio([], label="Versions (branch tree: click one to go back to it)",
                                         elem_id=f"{p}-versions")
                self.status = gr.Markdown("", elem_id=f"{p}-status")
                # How the next move writes: below the document, which is what a writer looks at
                # (at 1366x768 these above it pushed the document off the first screen).
                with gr.Row():
                    self.format = gr.Radio([("Screenplay (Fountain)", "fountain"), ("Prose", "prose")],
                                           value="fountain", label="Form", elem_id=f"{p}-format")
                    self.length = gr.Slider(16, 1024, value=200, step=8, label="Longest passage (tokens)",
                                            elem_id=f"{p}-length")
                    self.temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Wildness (temperature)",
                                                 elem_id=f"{p}-temperature")
                    self.seed = gr.Textbox(label="Seed", placeholder="random", elem_id=f"{p}-seed", min_width=90)
                self.rewrite_tone = gr.Textbox(label="Tone for Rewrite selection (e.g. noir, comic, tender)",
                                               elem_id=f"{p}-tone-rw")
                from studio.ui import ws_story_adapter  # "Train from my ratings" (its own file)

                self.adapter = ws_story_adapter.build(ctx)
        self.tree = gr.State({"versions": [], "cur": None})
        self.job = gr.State("")
        self.selection = gr.State(None)  # [start, end] of the text selected in the document
        self._wire()

    # -- showing ----------------------------------------------------------------------------
    def _show(self, tree: dict[str, Any], message: str, title: str = "") -> dict[Any, Any]:
        cur = _get(tree, tree["cur"])
        text = cur["text"] if cur else ""
        return {self.tree: tree, self.doc: text, self.preview: preview(text, title),
                self.versions: gr.update(choices=_tree_choices(tree), value=tree["cur"]),
                self.status: message}

    # -- running ----------------------------------------------------------------------------
    def _go(self, request: gr.Request | None, mode: str, tree: dict[str, Any], doc: str, bible_values: list[Any],
            prompt: str, beat: str, fmt: str, length: float, temperature: float, seed_text: str,
            base: dict[str, Any] | None = None, extra: dict[str, Any] | None = None,
            bible_override: dict[str, Any] | None = None) -> Iterator[dict[Any, Any]]:
        title = bible_values[0] or ""
        try:
            bible = bible_override or bible_from_form(*bible_values)  # the plan panel's bible carries the plan
            seed = parse_seed(seed_text)
        except (ValueError, gr.Error) as exc:
            message = exc.message if isinstance(exc, gr.Error) else str(exc)
            yield {self.progress: progress_html(0, f"not started: {message}", "failed"), self.status: message}
            return
        problem = check_bible(bible)
        if problem is None and fmt == "fountain" and mode in ("scene",) and not bible.get("characters"):
            problem = "add at least one character to the bible: a screenplay scene needs someone to speak"
        if problem:
            yield {self.progress: progress_html(0, f"not started: {problem}", "failed"), self.status: problem}
            return
        # The creator's own edits are kept as a version before anything is written after them.
        if base is None:
            cur = _get(tree, tree["cur"])
            if doc.strip() and (cur is None or cur["text"] != doc):
                tree = _add(tree, doc, tree["cur"], "your edits", mode="edit")
            parent_id, text = tree["cur"], doc
        else:
            parent_id, text = base["parent"], base["text"]
        params: dict[str, Any] = {"mode": mode, "format": fmt, "prompt": prompt.strip(), "bible": bible,
                                  "text": text, "max_new_tokens": int(length), "temperature": float(temperature)}
        if mode == "scene" and beat and beat != NEXT_BEAT:
            params["beat"] = beat
        if mode == "branch":
            params["alternatives"] = 2
        params.update(extra or {})
        parent_version = _get(tree, parent_id)
        if parent_version and parent_version.get("asset"):
            params["parent"] = parent_version["asset"]
        outcome = Outcome()
        lead = "\n\n" if text.strip() else ""

        def streamed(words: str) -> dict[Any, Any]:
            if mode == "rewrite":  # the new wording replaces the selection when it is done
                return {}
            return {self.doc: text.rstrip("\n") + lead + words if mode == "scene" else text + words}

        yield from run_job(self.ctx, request, GENERATOR, params, seed, self.progress, self.error, self.job, outcome,
                           on_token=streamed)
        request_info = {"mode": mode, "prompt": prompt, "beat": beat, "text": text, "parent": parent_id,
                        "extra": extra or {}}
        if outcome.result is None:
            if outcome.cancelled and outcome.text.strip():
                partial = streamed(outcome.text)[self.doc]
                tree = _add(tree, partial, parent_id, f"{mode} (cancelled: partial)", mode=mode,
                            request=request_info)
                yield self._show(tree, "Cancelled: the words written so far are kept as a version.", title)
            elif outcome.error:
                yield {self.doc: text, self.tree: tree,
                       self.versions: gr.update(choices=_tree_choices(tree), value=tree["cur"])}
            return
        r = outcome.result
        asset = _asset_id(self.ctx, r.assets[0]) if r.assets else None
        docs = r.data.get("alternatives") or [r.data["text"]]
        what = {"scene": f"scene {extra['scene_number']}" if (extra or {}).get("scene_number")
                else f"beat {r.data.get('beat') or ''}".strip(), "continue": "continued",
                "branch": "branch", "regenerate": "regenerated",
                "rewrite": f"rewritten ({(extra or {}).get('tone', '')})"}.get(mode, mode)
        for i, document in enumerate(docs):
            label = f"{what}{f' {i + 1}' if len(docs) > 1 else ''}"
            tree = _add(tree, document, parent_id, label, mode=mode, asset=asset, seed=r.seed, request=request_info)
        if len(docs) > 1:  # show the first alternative; the others are its siblings in the tree
            tree = {**tree, "cur": tree["versions"][-len(docs)]["id"]}
        unknown = r.data.get("unknown_characters") or []
        note = f" New names the model used: {', '.join(unknown)}." if unknown else ""
        yield self._show(tree, f"Written ({what}, seed {r.seed}).{note}", title)

    def write(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
              characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
              temperature: float, seed_text: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self._move("scene", tree, doc, title, logline, genre, tone, setting, characters, structure,
                              prompt, beat, fmt, length, temperature, seed_text, request)

    def cont(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
              characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
              temperature: float, seed_text: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self._move("continue", tree, doc, title, logline, genre, tone, setting, characters, structure,
                              prompt, beat, fmt, length, temperature, seed_text, request)

    def branch(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
              characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
              temperature: float, seed_text: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self._move("branch", tree, doc, title, logline, genre, tone, setting, characters, structure,
                              prompt, beat, fmt, length, temperature, seed_text, request)

    def _move(self, mode: str, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
              characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
              temperature: float, seed_text: str, request: gr.Request | None) -> Iterator[dict[Any, Any]]:
        values = [title, logline, genre, tone, setting, characters, structure]
        yield from self._go(request, mode, tree, doc or "", values, prompt or "", beat, fmt, length, temperature,
                            seed_text)

    def regenerate(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
                   characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
                   temperature: float, seed_text: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
        """The request that made this version, again (a new seed): a sibling in the tree."""
        cur = _get(tree, tree["cur"])
        if cur is None or not cur.get("request"):
            yield {self.status: "Write something first; Regenerate writes the current version's passage again."}
            return
        req = cur["request"]
        mode = "continue" if req["mode"] == "branch" else req["mode"]
        values = [title, logline, genre, tone, setting, characters, structure]
        yield from self._go(request, mode, tree, doc or "", values, req["prompt"], req["beat"], fmt, length,
                            temperature, seed_text, base={"parent": req["parent"], "text": req["text"]},
                            extra=req.get("extra") or None)

    def rewrite(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
                characters: Any, structure: str, prompt: str, beat: str, fmt: str, length: float,
                temperature: float, seed_text: str, selection: list[int] | None, new_tone: str,
                request: gr.Request) -> Iterator[dict[Any, Any]]:
        """Retell the selected passage in another tone (the rest of the document stays)."""
        doc = doc or ""
        if not selection or not 0 <= selection[0] < selection[1] <= len(doc):
            yield {self.status: "Select a passage in the document first (drag over it), then Rewrite selection."}
            return
        if not (new_tone or "").strip():
            yield {self.status: "Give a tone for the rewrite, e.g. noir, comic or tender."}
            return
        values = [title, logline, genre, tone, setting, characters, structure]
        yield from self._go(request, "rewrite", tree, doc, values, prompt or "", beat, fmt, length, temperature,
                            seed_text, extra={"selection_start": int(selection[0]), "selection_end": int(selection[1]),
                                              "tone": new_tone.strip()})

    def selected(self, evt: gr.SelectData) -> list[int] | None:
        index = evt.index if isinstance(evt.index, (list, tuple)) else None
        return [int(index[0]), int(index[1])] if index and index[1] > index[0] else None

    def pick_version(self, tree: dict, vid: str, title: str) -> dict[Any, Any]:
        if _get(tree, vid) is None:
            return {}
        tree = {**tree, "cur": vid}
        return self._show(tree, f"Back to {_get(tree, vid)['label']}.", title)

    def cancel(self, job_id: str, request: gr.Request) -> str:
        return cancel_job(self.ctx, job_id, request)

    def refresh_preview(self, doc: str, title: str) -> str:
        return preview(doc or "", title or "")

    # -- bible import / export --------------------------------------------------------------
    def export(self, title: str, logline: str, genre: str, tone: str, setting: str, characters: Any,
               structure: str) -> dict[Any, Any]:
        try:
            bible = bible_from_form(title, logline, genre, tone, setting, characters, structure)
        except ValueError as exc:
            return {self.bible_status: f"⚠️ {exc}"}
        problem = check_bible(bible)
        if problem:
            return {self.bible_status: f"⚠️ {problem}"}
        name = "".join(c if c.isalnum() else "-" for c in (title or "story").lower()).strip("-") or "story"
        path = Path(tempfile.mkdtemp(prefix="studio-bible-")) / f"{name}-bible.json"
        path.write_text(json.dumps(bible, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return {self.exported: gr.update(value=str(path), visible=True),
                self.bible_status: f"Exported {len(bible.get('characters', []))} character(s)."}

    def import_bible(self, upload: Any) -> dict[Any, Any]:
        path = Path(upload if isinstance(upload, str) else getattr(upload, "name", "") or "")
        fields = [self.title, self.logline, self.genre, self.tone, self.setting, self.characters, self.structure]
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                raise ValueError(f"the file is {path.stat().st_size} bytes; a story bible is at most "
                                 f"{MAX_IMPORT_BYTES} (8,000 characters of JSON)")
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("the file must hold one JSON object with title, setting, characters, ...")
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            reason = f"not valid JSON ({exc.msg})" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return {self.bible_status: f"⚠️ Not imported: {reason}. The form is unchanged."}
        problem = check_bible(data)
        if problem:
            return {self.bible_status: f"⚠️ Not imported: {problem}. The form is unchanged."}
        values = form_from_bible(data)
        out: dict[Any, Any] = dict(zip(fields, values))
        out[self.beat] = gr.update(choices=[NEXT_BEAT, *beat_names(values[-1])], value=NEXT_BEAT)
        out[self.bible_status] = f"Imported {path.name}."
        return out

    def structure_changed(self, structure: str) -> Any:
        return gr.update(choices=[NEXT_BEAT, *beat_names(structure)], value=NEXT_BEAT)

    # -- wiring -----------------------------------------------------------------------------
    def _wire(self) -> None:
        bible = [self.title, self.logline, self.genre, self.tone, self.setting, self.characters, self.structure]
        inputs = [self.tree, self.doc, *bible, self.prompt, self.beat, self.format, self.length, self.temperature,
                  self.seed]
        outputs = [self.progress, self.error, self.doc, self.preview, self.versions, self.tree, self.status, self.job]
        common = dict(concurrency_id=self.ctx.device_group(GENERATOR), concurrency_limit=self.ctx.concurrency_limit,
                      api_visibility="private")
        buttons = [self.write_btn, self.continue_btn, self.regen_btn, self.branch_btn]
        for button, fn in zip(buttons, (self.write, self.cont, self.regenerate, self.branch)):
            # One move at a time: the moves are off while one runs, back on however it ends.
            button.click(lambda: [gr.update(interactive=False)] * 4, None, buttons, queue=False,
                         api_visibility="private") \
                .then(cancel_with_event(fn), inputs, outputs, **common) \
                .then(lambda: [gr.update(interactive=True)] * 4, None, buttons, queue=False, api_visibility="private")
        self.rewrite_btn.click(lambda: [gr.update(interactive=False)] * 4, None, buttons, queue=False,
                               api_visibility="private") \
            .then(cancel_with_event(self.rewrite), [*inputs, self.selection, self.rewrite_tone], outputs, **common) \
            .then(lambda: [gr.update(interactive=True)] * 4, None, buttons, queue=False, api_visibility="private")
        self.doc.select(self.selected, None, self.selection, queue=False, api_visibility="private")
        self.cancel_btn.click(self.cancel, self.job, self.progress, queue=False, api_visibility="private")
        self.versions.input(self.pick_version, [self.tree, self.versions, self.title],
                            [self.tree, self.doc, self.preview, self.versions, self.status], queue=False,
                            api_visibility="private")
        self.doc.blur(self.refresh_preview, [self.doc, self.title], self.preview, queue=False, api_visibility="private")
        self.export_btn.click(self.export, bible, [self.exported, self.bible_status], queue=False,
                              api_visibility="private")
        self.import_btn.upload(self.import_bible, self.import_btn, [*bible, self.beat, self.bible_status],
                               queue=False, api_visibility="private")
        self.structure.input(self.structure_changed, self.structure, self.beat, queue=False, api_visibility="private")
        self.handlers = {"write": self.write, "continue": self.cont, "regenerate": self.regenerate,
                         "rewrite": self.rewrite, "selected": self.selected,
                         "branch": self.branch, "pick_version": self.pick_version, "cancel": self.cancel,
                         "export": self.export, "import": self.import_bible, "preview": self.refresh_preview}
        self.plan.wire()


def _asset_id(ctx: UIContext, path: Any) -> str | None:
    """The studio's id of a written file (recorded as the next request's parent)."""
    try:
        return ctx.studio.restore(path)["record"].get("id")
    except Exception:  # noqa: BLE001 - provenance is a bonus here, never a reason to fail
        return None


def build(ctx: UIContext) -> StoryWorkspace:
    return StoryWorkspace(ctx)
