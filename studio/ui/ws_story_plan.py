"""The Story workspace's plan: Dramatron's hierarchy (logline -> characters -> scene plan -> scenes)
shown as tables a creator edits, each level written again on its own, one scene at a time.

Under the bible form: the beats (name, what happens), the places (name, INT/EXT), the cast's roles,
and the scene plan as a table (beat, INT/EXT, place, time, who is there, what happens). Buttons
write the logline, the characters or the whole plan again (the other levels are kept), plan one
scene again, write one planned scene into the document (it replaces that scene where the
document has it) or all of them in order. No JSON is typed anywhere; the bible's own checks
(generators/story_lib/bible.py) speak for bad cells. This file only calls `studio.api` through
the workspace's `run_job`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator

import gradio as gr

from studio.ui.panel import parse_seed, progress_html
from studio.ui.ws_common import Outcome, run_job

if TYPE_CHECKING:
    from studio.ui.ws_story import StoryWorkspace

BEAT_HEADERS = ["Beat", "What happens in it"]
PLACE_HEADERS = ["Place", "INT/EXT"]
SCENE_HEADERS = ["Beat", "INT/EXT", "Place", "Time", "Who is there", "What happens"]
LEVELS = {"logline": "the logline", "characters": "the characters", "plan": "the scene plan"}


def _rows(table: Any) -> list[list[str]]:
    rows = table.values.tolist() if hasattr(table, "values") else list(table or [])
    out = []
    for row in rows:
        cells = [("" if c is None else str(c)).strip() for c in row]
        if any(cells):
            out.append(cells)
    return out


def plan_from_tables(beats: Any, places: Any, roles: str, scenes: Any) -> dict[str, Any]:
    """The plan tables as bible fields (beats, locations, scenes) and {name: role}."""
    extra: dict[str, Any] = {}
    beat_rows = _rows(beats)
    if beat_rows:
        extra["beats"] = [{"name": r[0], "description": (r + [""])[1]} for r in beat_rows]
    place_rows = _rows(places)
    if place_rows:
        extra["locations"] = [{"name": r[0], "int_ext": ((r + ["INT"])[1] or "INT").upper()} for r in place_rows]
    scene_rows = _rows(scenes)
    if scene_rows:
        extra["scenes"] = [{"beat": r[0], "int_ext": (r[1] or "INT").upper(), "location": r[2],
                            "time": (r[3] or "DAY").upper(),
                            "characters": [n.strip() for n in r[4].split(",") if n.strip()], "what": r[5]}
                           for r in (row + [""] * 6 for row in scene_rows)]
    cast_roles = {}
    for part in (roles or "").split(","):
        name, sep, role = part.partition(":")
        if sep and name.strip() and role.strip():
            cast_roles[name.strip()] = role.strip().lower()
    extra["roles"] = cast_roles
    return extra


def tables_from_bible(bible: dict[str, Any]) -> tuple[list[list[str]], list[list[str]], str, list[list[str]]]:
    """A bible's plan as the tables' values (beats, places, roles, scenes)."""
    beats = [[b.get("name", ""), b.get("description", "")] for b in bible.get("beats") or [] if isinstance(b, dict)]
    places = []
    for p in bible.get("locations") or []:
        places.append([p, ""] if isinstance(p, str) else [p.get("name", ""), p.get("int_ext", "INT")])
    roles = ", ".join(f"{c['name']}: {c['role']}" for c in bible.get("characters") or []
                      if isinstance(c, dict) and c.get("role"))
    scenes = [[s.get("beat", ""), s.get("int_ext", "INT"), s.get("location", ""), s.get("time", "DAY"),
               ", ".join(s.get("characters") or []), s.get("what", "")] for s in bible.get("scenes") or []]
    return beats or [["", ""]], places or [["", ""]], roles, scenes or [[""] * 6]


def merge(bible: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The form's bible with the plan tables: custom beats, places, roles on the cast, the scene plan."""
    out = dict(bible)
    for key in ("beats", "locations", "scenes"):
        if extra.get(key):
            out[key] = extra[key]
    roles = extra.get("roles") or {}
    if roles and out.get("characters"):
        out["characters"] = [{**c, "role": roles[c["name"]]} if c["name"] in roles else c for c in out["characters"]]
    return out


class PlanPanel:
    """Built inside the workspace's bible column; wired by the workspace."""

    def __init__(self, ws: "StoryWorkspace") -> None:
        self.ws = ws
        p = "story-ws-plan"
        # Closed at first: a closed accordion's widgets are not drawn until it opens, and its three
        # tables were ~9% of the browser's CPU to the first usable page (issue #14 start-up; the
        # values are kept and sent while it is closed). It sits below the bible form, off a
        # 1366x768 screen, so opening it costs the creator one click on its visible title.
        with gr.Accordion("Plan: logline → characters → scenes", open=False, elem_id=p):
            gr.Markdown("Write any level again on its own; the others stay. Edit any cell: the next move "
                        "starts from what the tables say.")
            with gr.Row():
                self.logline_btn = gr.Button("↻ Logline", size="sm", elem_id=f"{p}-logline")
                self.cast_btn = gr.Button("↻ Characters", size="sm", elem_id=f"{p}-characters")
                self.plan_btn = gr.Button("↻ Scene plan", size="sm", elem_id=f"{p}-plan")
            self.roles = gr.Textbox(label="Roles (Name: role, ... e.g. Mara: protagonist, Crane: antagonist)",
                                    elem_id=f"{p}-roles")
            self.beats = gr.Dataframe(value=[["", ""]], headers=BEAT_HEADERS, type="array", datatype="str",
                                      column_count=2, interactive=True, elem_id=f"{p}-beats",
                                      label="Beats (empty = the beat sheet above)")
            self.places = gr.Dataframe(value=[["", ""]], headers=PLACE_HEADERS, type="array", datatype="str",
                                       column_count=2, interactive=True, elem_id=f"{p}-places",
                                       label="Places (INT or EXT; empty = taken from the setting)")
            self.per_beat = gr.Slider(1, 4, value=1, step=1, label="Scenes per beat", elem_id=f"{p}-per-beat")
            self.scenes = gr.Dataframe(value=[[""] * 6], headers=SCENE_HEADERS, type="array", datatype="str",
                                       column_count=6, interactive=True, wrap=True, elem_id=f"{p}-scenes",
                                       label="Scene plan (row n = scene n)")
            with gr.Row():
                self.number = gr.Number(value=1, minimum=1, maximum=40, precision=0, label="Scene",
                                        elem_id=f"{p}-number", min_width=80)
                self.replan_btn = gr.Button("↻ Plan this scene", size="sm", elem_id=f"{p}-replan")
                self.scene_btn = gr.Button("Write this scene", size="sm", variant="primary", elem_id=f"{p}-write")
                self.all_btn = gr.Button("Write all scenes", size="sm", elem_id=f"{p}-write-all")
            self.export_btn = gr.Button("Export bible + plan (JSON)", size="sm", elem_id=f"{p}-export")
            self.status = gr.Markdown("", elem_id=f"{p}-status")

    # -- levels -------------------------------------------------------------------------------
    def _bible(self, values: list[Any], beats: Any, places: Any, roles: str, scenes: Any) -> dict[str, Any]:
        from studio.ui.ws_story import bible_from_form, check_bible

        bible = merge(bible_from_form(*values), plan_from_tables(beats, places, roles, scenes))
        problem = check_bible(bible)
        if problem:
            raise ValueError(problem)
        return bible

    def level(self, level: str, title: str, logline: str, genre: str, tone: str, setting: str, characters: Any,
              structure: str, beats: Any, places: Any, roles: str, scenes: Any, per_beat: float, number: float,
              temperature: float, seed_text: str, request: gr.Request | None,
              one_scene: bool = False) -> Iterator[dict[Any, Any]]:
        """Write one level again (mode logline | characters | plan); the tables show the new bible."""
        ws = self.ws
        try:
            bible = self._bible([title, logline, genre, tone, setting, characters, structure], beats, places,
                                roles, scenes)
            seed = parse_seed(seed_text)
        except (ValueError, gr.Error) as exc:
            message = exc.message if isinstance(exc, gr.Error) else str(exc)
            yield {ws.progress: progress_html(0, f"not started: {message}", "failed"), self.status: message}
            return
        params: dict[str, Any] = {"mode": level, "bible": bible, "temperature": float(temperature),
                                  "scenes_per_beat": int(per_beat)}
        if one_scene:
            params["scene_number"] = int(number or 1)
        outcome = Outcome()
        yield from run_job(ws.ctx, request, "story", params, seed, ws.progress, ws.error, ws.job, outcome)
        if outcome.result is None:
            return
        new = outcome.result.data["bible"]
        what = f"the plan of scene {int(number)}" if one_scene else LEVELS[level]
        yield {**self.show(new),
               self.status: f"Wrote {what} (seed {outcome.result.seed}); the other levels are as they were."}

    def show(self, bible: dict[str, Any]) -> dict[Any, Any]:
        """A bible into the form and the plan tables."""
        from studio.ui.ws_story import form_from_bible

        ws = self.ws
        beats, places, roles, scenes = tables_from_bible(bible)
        values = form_from_bible(bible)
        return {ws.logline: values[1], ws.characters: values[5], self.roles: roles, self.beats: beats,
                self.places: places, self.scenes: scenes}

    # -- scenes -------------------------------------------------------------------------------
    def write(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
              characters: Any, structure: str, beats: Any, places: Any, roles: str, scenes: Any, number: float,
              fmt: str, length: float, temperature: float, seed_text: str,
              request: gr.Request | None) -> Iterator[dict[Any, Any]]:
        """Write planned scene `number` into the document (replacing it where it is already written)."""
        ws = self.ws
        try:
            bible = self._bible([title, logline, genre, tone, setting, characters, structure], beats, places,
                                roles, scenes)
        except ValueError as exc:
            yield {self.status: str(exc)}
            return
        n = int(number or 1)
        if not 1 <= n <= len(bible.get("scenes") or []):
            yield {self.status: f"Plan the scenes first: the plan has {len(bible.get('scenes') or [])} scene(s)."}
            return
        yield from ws._go(request, "scene", tree, doc or "", [title, logline, genre, tone, setting, characters,
                                                              structure], "", "", fmt, length, temperature,
                          seed_text, extra={"scene_number": n}, bible_override=bible)

    def write_all(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
                  characters: Any, structure: str, beats: Any, places: Any, roles: str, scenes: Any, number: float,
                  fmt: str, length: float, temperature: float, seed_text: str,
                  request: gr.Request | None) -> Iterator[dict[Any, Any]]:
        """Every planned scene in order, each a version on top of the one before."""
        total = len(_rows(scenes))
        for n in range(1, total + 1):
            last: dict[Any, Any] = {}
            for update in self.write(tree, doc, title, logline, genre, tone, setting, characters, structure, beats,
                                     places, roles, scenes, n, fmt, length, temperature, seed_text, request):
                last = update
                yield update
            if self.ws.tree not in last or self.ws.doc not in last:
                return  # refused, failed or cancelled: the status says why
            tree, doc = last[self.ws.tree], last[self.ws.doc]

    def wire(self) -> None:
        ws = self.ws
        bible = [ws.title, ws.logline, ws.genre, ws.tone, ws.setting, ws.characters, ws.structure]
        tables = [self.beats, self.places, self.roles, self.scenes]
        common = dict(concurrency_id=ws.ctx.device_group("story"), concurrency_limit=ws.ctx.concurrency_limit,
                      api_visibility="private")
        level_out = [ws.progress, ws.error, ws.job, ws.logline, ws.characters, *tables, self.status]
        level_in = [*bible, *tables, self.per_beat, self.number, ws.temperature, ws.seed]
        for button, level, one in ((self.logline_btn, "logline", False), (self.cast_btn, "characters", False),
                                   (self.plan_btn, "plan", False), (self.replan_btn, "plan", True)):
            button.click(self._level_event(level, one), level_in, level_out, **common)
        scene_in = [ws.tree, ws.doc, *bible, *tables, self.number, ws.format, ws.length, ws.temperature, ws.seed]
        scene_out = [ws.progress, ws.error, ws.doc, ws.preview, ws.versions, ws.tree, ws.status, ws.job, self.status]
        self.scene_btn.click(self._write_event, scene_in, scene_out, **common)
        self.all_btn.click(self._write_all_event, scene_in, scene_out, **common)
        ws.import_btn.upload(self.imported, ws.import_btn, tables, queue=False, api_visibility="private")
        self.export_btn.click(self.export, [*bible, *tables], [ws.exported, self.status], queue=False,
                              api_visibility="private")
        ws.handlers.update({"plan_level": self.level, "plan_write": self.write, "plan_write_all": self.write_all,
                            "plan_import": self.imported, "plan_export": self.export})

    # Gradio passes the request to a parameter annotated gr.Request: explicit signatures, no *args.
    def _level_event(self, level: str, one: bool) -> Any:
        def event(title: str, logline: str, genre: str, tone: str, setting: str, characters: Any, structure: str,
                  beats: Any, places: Any, roles: str, scenes: Any, per_beat: float, number: float,
                  temperature: float, seed_text: str, request: gr.Request) -> Iterator[dict[Any, Any]]:
            yield from self.level(level, title, logline, genre, tone, setting, characters, structure, beats, places,
                                  roles, scenes, per_beat, number, temperature, seed_text, request, one_scene=one)
        return event

    def _write_event(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
                     characters: Any, structure: str, beats: Any, places: Any, roles: str, scenes: Any,
                     number: float, fmt: str, length: float, temperature: float, seed_text: str,
                     request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self.write(tree, doc, title, logline, genre, tone, setting, characters, structure, beats, places,
                              roles, scenes, number, fmt, length, temperature, seed_text, request)

    def _write_all_event(self, tree: dict, doc: str, title: str, logline: str, genre: str, tone: str, setting: str,
                         characters: Any, structure: str, beats: Any, places: Any, roles: str, scenes: Any,
                         number: float, fmt: str, length: float, temperature: float, seed_text: str,
                         request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self.write_all(tree, doc, title, logline, genre, tone, setting, characters, structure, beats,
                                  places, roles, scenes, number, fmt, length, temperature, seed_text, request)

    def export(self, title: str, logline: str, genre: str, tone: str, setting: str, characters: Any,
               structure: str, beats: Any, places: Any, roles: str, scenes: Any) -> dict[Any, Any]:
        """The bible with its plan as a JSON file (the workspace's import reads it back, tables too)."""
        import json
        import tempfile
        from pathlib import Path

        try:
            bible = self._bible([title, logline, genre, tone, setting, characters, structure], beats, places, roles,
                                scenes)
        except ValueError as exc:
            return {self.status: f"⚠️ {exc}"}
        name = "".join(c if c.isalnum() else "-" for c in (title or "story").lower()).strip("-") or "story"
        path = Path(tempfile.mkdtemp(prefix="studio-bible-")) / f"{name}-bible.json"
        path.write_text(json.dumps(bible, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return {self.ws.exported: gr.update(value=str(path), visible=True),
                self.status: f"Exported the bible with {len(bible.get('scenes') or [])} planned scene(s)."}

    def imported(self, upload: Any) -> dict[Any, Any]:
        """An imported bible's plan into the tables (the form's fields are the workspace's import)."""
        import json
        from pathlib import Path

        from studio.ui.ws_story import MAX_IMPORT_BYTES, check_bible

        path = Path(upload if isinstance(upload, str) else getattr(upload, "name", "") or "")
        try:
            if path.stat().st_size > MAX_IMPORT_BYTES:
                return {}
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            return {}  # the workspace's import says what is wrong
        if not isinstance(data, dict) or check_bible(data):
            return {}
        beats, places, roles, scenes = tables_from_bible(data)
        return {self.beats: beats, self.places: places, self.roles: roles, self.scenes: scenes}
