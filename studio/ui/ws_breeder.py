"""The Breeder workspace: Picbreeder's loop as clicks (Secretan et al., 2008).

A grid of candidates; click the ones you like (they become parents), Breed, and the next
generation grows from them. Every generation stays in a history strip (click one to go back
to it), Undo drops the newest, and a single pick renders full size. Genomes travel in the
session's state from one result to the next: the creator never sees or types their JSON.
The schema form stays below as "every setting" for anything this workspace does not show.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from studio.ui.cancellable import cancel_with_event
from studio.ui.context import UIContext
from studio.ui.form import _role
from studio.ui.panel import job_error, job_progress, parse_seed, progress_html
from studio.ui.ws_common import Outcome, run_job

GENERATOR = "breeder"
SIZES = [96, 128, 192, 256, 384]  # candidate side in pixels: small is quick, big shows detail
RENDER_SIZES = [512, 768, 1024, 2048]


def _generation(result: Any, label: str) -> dict[str, Any]:
    """What the workspace keeps of one grid: genomes, candidate images, the grid picture."""
    paths = [Path(p) for p in result.assets]
    grid = next((str(p) for p in paths if _role(p) == "grid"), None)
    images = [str(p) for p in paths if _role(p) != "grid"]
    cols = (result.data.get("grid") or {}).get("cols") or 1
    return {"genomes": result.data["genomes"], "images": images, "grid": grid or images[0], "cols": cols,
            "seed": result.seed, "label": label}


def _captions(gen: dict[str, Any], picked: list[str]) -> list[tuple[str, str]]:
    return [(path, f"✓ {i + 1} picked" if str(i + 1) in picked else str(i + 1))
            for i, path in enumerate(gen["images"])]


class BreederWorkspace:
    """Builds the workspace inside the current layout; `handlers` are its plain event functions."""

    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        p = "breeder-ws"
        gr.Markdown("Click the candidates you like, then **Breed**: the next grid grows from them. "
                    "Go back to any generation in the history strip.")
        with gr.Row():
            with gr.Column(scale=3):
                self.progress = job_progress(p)
                self.error = job_error(p)
                self.grid = gr.Gallery(label="Candidates (click to pick or unpick)", columns=3, height="auto",
                                       allow_preview=False, object_fit="contain", elem_id=f"{p}-grid",
                                       elem_classes=["studio-pick-grid"])
                self.picked = gr.CheckboxGroup(choices=[], value=[], label="Picked parents",
                                               elem_id=f"{p}-picked")
                self.status = gr.Markdown("", elem_id=f"{p}-status")
            with gr.Column(scale=1, min_width=240):
                with gr.Row():
                    self.new_btn = gr.Button("New random grid", elem_id=f"{p}-new")
                    self.breed_btn = gr.Button("Breed", variant="primary", elem_id=f"{p}-breed")
                with gr.Row():
                    self.undo_btn = gr.Button("Undo", size="sm", elem_id=f"{p}-undo")
                    self.clear_btn = gr.Button("Clear picks", size="sm", elem_id=f"{p}-clear")
                self.mutation = gr.Slider(0, 1, value=0.5, step=0.05, label="How far children stray",
                                          elem_id=f"{p}-mutation")
                self.crossover = gr.Slider(0, 1, value=0.5, step=0.05, label="Mix two parents (chance)",
                                           elem_id=f"{p}-crossover")
                with gr.Row():
                    self.rows = gr.Dropdown([1, 2, 3, 4, 5, 6], value=3, label="Rows", elem_id=f"{p}-rows")
                    self.cols = gr.Dropdown([1, 2, 3, 4, 5, 6], value=3, label="Columns", elem_id=f"{p}-cols")
                self.size = gr.Dropdown(SIZES, value=192, label="Candidate size (px)", elem_id=f"{p}-size")
                self.color = gr.Radio(["hsv", "rgb", "gray"], value="hsv", label="Colour", elem_id=f"{p}-color")
                self.symmetry = gr.Dropdown(self._choices("symmetry"), value="none", label="Symmetry",
                                            elem_id=f"{p}-symmetry")
                self.complexity = gr.Slider(0, 30, value=4, step=1, label="Busyness of a new grid",
                                            elem_id=f"{p}-complexity")
                self.seed = gr.Textbox(label="Seed", placeholder="random", elem_id=f"{p}-seed")
                with gr.Accordion("Render one pick full size", open=False):
                    self.render_size = gr.Dropdown(RENDER_SIZES, value=512, label="Side (px)",
                                                   elem_id=f"{p}-render-size")
                    self.render_btn = gr.Button("Render the pick", elem_id=f"{p}-render")
                    self.full = gr.Image(label="Full size", type="filepath", interactive=False, visible=False,
                                         elem_id=f"{p}-full")
        self.history = gr.Gallery(label="History (click to go back to a generation)", columns=8, height=180,
                                  allow_preview=False, fit_columns=False, object_fit="contain", elem_id=f"{p}-history",
                                  elem_classes=["studio-history"])
        self.lineage = gr.State({"gens": [], "cur": -1})
        self._wire()

    def _choices(self, field: str) -> list[str]:
        """A field's choices, from the generator's schema (the workspace imports no generator)."""
        props = (self.ctx.describe(GENERATOR) or {}).get("params", {}).get("properties", {})
        return list(props.get(field, {}).get("enum") or ["none"])

    # -- showing ----------------------------------------------------------------------------
    def _show(self, lineage: dict[str, Any], picked: list[str], message: str = "") -> dict[Any, Any]:
        gens, cur = lineage["gens"], lineage["cur"]
        if cur < 0:
            return {self.grid: None, self.picked: gr.update(choices=[], value=[]), self.history: None,
                    self.lineage: lineage, self.status: message}
        gen = gens[cur]
        n = len(gen["images"])
        cols = max(1, min(6, round(len(gen["images"]) ** 0.5))) if "cols" not in gen else gen["cols"]
        return {self.grid: gr.update(value=_captions(gen, picked), columns=cols),
                self.picked: gr.update(choices=[str(i + 1) for i in range(n)], value=picked),
                self.history: [(g["grid"], f"{i + 1}: {g['label']}") for i, g in enumerate(gens)],
                self.lineage: lineage,
                self.status: message or f"Generation {cur + 1} of {len(gens)} ({gen['label']}, seed {gen['seed']}); "
                                        f"{len(picked)} picked."}

    # -- handlers ---------------------------------------------------------------------------
    def _run(self, request: gr.Request | None, params: dict[str, Any], seed_text: str, lineage: dict[str, Any],
             label: str) -> Iterator[dict[Any, Any]]:
        try:
            seed = parse_seed(seed_text)
        except gr.Error as exc:
            yield {self.progress: progress_html(0, f"not started: {exc.message}", "failed"),
                   self.status: exc.message}
            return
        outcome = Outcome()
        yield from run_job(self.ctx, request, GENERATOR, params, seed, self.progress, self.error, None, outcome)
        if outcome.result is None:
            return  # the reason is shown; the grid on screen stays as it was
        gens = [*lineage["gens"], _generation(outcome.result, label)]
        yield self._show({"gens": gens, "cur": len(gens) - 1}, [])

    def new_grid(self, rows: int, cols: int, size: int, complexity: float, color: str, symmetry: str,
                 seed_text: str, lineage: dict[str, Any], request: gr.Request) -> Iterator[dict[Any, Any]]:
        params = {"mode": "random", "rows": int(rows), "cols": int(cols), "width": int(size), "height": int(size),
                  "complexity": int(complexity), "color": color, "symmetry": symmetry}
        yield from self._run(request, params, seed_text, lineage, "random")

    def breed(self, picked: list[str], mutation: float, crossover: float, rows: int, cols: int, size: int,
              color: str, symmetry: str, seed_text: str, lineage: dict[str, Any],
              request: gr.Request) -> Iterator[dict[Any, Any]]:
        if lineage["cur"] < 0:
            yield {self.status: "Make a grid first (New random grid), then pick the ones you like."}
            return
        if not picked:
            yield {self.status: "Pick at least one candidate first: click it in the grid."}
            return
        gen = lineage["gens"][lineage["cur"]]
        order = sorted({int(p) for p in picked})
        params = {"mode": "breed", "genomes": [gen["genomes"][i - 1] for i in order], "mutation": float(mutation),
                  "crossover": float(crossover), "rows": int(rows), "cols": int(cols), "width": int(size),
                  "height": int(size), "color": color, "symmetry": symmetry}
        label = f"from {', '.join(map(str, order))} of gen {lineage['cur'] + 1}"
        yield from self._run(request, params, seed_text, lineage, label)

    def toggle(self, lineage: dict[str, Any], picked: list[str], evt: gr.SelectData) -> dict[Any, Any]:
        if lineage["cur"] < 0:
            return {}
        key = str(int(evt.index) + 1)
        picked = [p for p in picked if p != key] if key in picked else sorted([*picked, key], key=int)
        return self._show(lineage, picked)

    def picks_changed(self, lineage: dict[str, Any], picked: list[str]) -> dict[Any, Any]:
        return self._show(lineage, sorted(picked or [], key=int)) if lineage["cur"] >= 0 else {}

    def undo(self, lineage: dict[str, Any]) -> dict[Any, Any]:
        gens = lineage["gens"]
        if not gens:
            return {self.status: "Nothing to undo yet."}
        gens = gens[:-1]
        return self._show({"gens": gens, "cur": len(gens) - 1}, [], "" if gens else "Back to an empty grid.")

    def jump(self, lineage: dict[str, Any], evt: gr.SelectData) -> dict[Any, Any]:
        index = int(evt.index)
        if not 0 <= index < len(lineage["gens"]):
            return {}
        return self._show({"gens": lineage["gens"], "cur": index}, [])

    def render(self, picked: list[str], side: int, color: str, symmetry: str, lineage: dict[str, Any],
               request: gr.Request) -> Iterator[dict[Any, Any]]:
        if lineage["cur"] < 0 or len(picked) != 1:
            yield {self.status: "Pick exactly one candidate to render it full size."}
            return
        genome = lineage["gens"][lineage["cur"]]["genomes"][int(picked[0]) - 1]
        outcome = Outcome()
        params = {"mode": "render", "genomes": [genome], "width": int(side), "height": int(side),
                  "color": color, "symmetry": symmetry}
        yield from run_job(self.ctx, request, GENERATOR, params, None, self.progress, self.error, None, outcome)
        if outcome.result is not None:
            yield {self.full: gr.update(value=str(outcome.result.assets[0]), visible=True),
                   self.status: f"Rendered candidate {picked[0]} at {side}x{side}."}

    # -- wiring -----------------------------------------------------------------------------
    def _wire(self) -> None:
        shown = [self.grid, self.picked, self.history, self.lineage, self.status]
        run_out = [self.progress, self.error, *shown]
        group = self.ctx.device_group(GENERATOR)
        common = dict(concurrency_id=group, concurrency_limit=self.ctx.concurrency_limit, api_visibility="private")
        self.new_btn.click(cancel_with_event(self.new_grid), [self.rows, self.cols, self.size, self.complexity, self.color,
                                           self.symmetry, self.seed, self.lineage], run_out, **common)
        self.breed_btn.click(cancel_with_event(self.breed), [self.picked, self.mutation, self.crossover, self.rows, self.cols, self.size,
                                          self.color, self.symmetry, self.seed, self.lineage], run_out, **common)
        self.grid.select(self.toggle, [self.lineage, self.picked], shown, queue=False, api_visibility="private")
        self.picked.input(self.picks_changed, [self.lineage, self.picked], shown, queue=False,
                          api_visibility="private")
        self.clear_btn.click(lambda lin: self.picks_changed(lin, []), self.lineage, shown, queue=False,
                             api_visibility="private")
        self.undo_btn.click(self.undo, self.lineage, shown, queue=False, api_visibility="private")
        self.history.select(self.jump, self.lineage, shown, queue=False, api_visibility="private")
        self.render_btn.click(cancel_with_event(self.render), [self.picked, self.render_size, self.color, self.symmetry, self.lineage],
                              [self.progress, self.error, self.full, self.status], **common)
        self.handlers = {"new_grid": self.new_grid, "breed": self.breed, "toggle": self.toggle, "undo": self.undo,
                         "jump": self.jump, "render": self.render, "picks_changed": self.picks_changed}


def build(ctx: UIContext) -> BreederWorkspace:
    return BreederWorkspace(ctx)
