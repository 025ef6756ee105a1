"""The GAN workspace: sample a grid of glyphs, click two (A and B), walk or mix between them.

Latent interpolation (White, 2016, "Sampling Generative Networks": slerp keeps the walk on the
Gaussian shell). The latents of every sample stay in the session's state, so picking a glyph
sends its latent on; the creator never copies the 64 numbers by hand.
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

GENERATOR = "gan"


def _captions(sheet: dict[str, Any], picked: list[int]) -> list[tuple[str, str]]:
    names = {i: "AB"[n] for n, i in enumerate(picked)}
    return [(path, f"{names[i]} · {i + 1}" if i in names else str(i + 1)) for i, path in enumerate(sheet["images"])]


class GANWorkspace:
    def __init__(self, ctx: UIContext) -> None:
        self.ctx = ctx
        p = "gan-ws"
        gr.Markdown("**Sample** a sheet of glyphs, click one for **A** and one for **B**, then walk from A "
                    "to B or mix them.")
        with gr.Row():
            with gr.Column(scale=3):
                self.progress = job_progress(p)
                self.error = job_error(p)
                self.grid = gr.Gallery(label="Samples (click: first pick is A, second is B)", columns=8,
                                       height="auto", allow_preview=False, object_fit="contain",
                                       elem_id=f"{p}-grid")
                self.status = gr.Markdown("", elem_id=f"{p}-status")
                self.result = gr.Image(label="Result", type="filepath", interactive=False, visible=False,
                                       elem_id=f"{p}-result")
                self.strip = gr.Image(label="A to B, frame by frame", type="filepath", interactive=False,
                                      visible=False, elem_id=f"{p}-strip")
            with gr.Column(scale=1, min_width=240):
                # Compact, buttons first: on a 1366x768 screen every move is on the first screen.
                self.sample_btn = gr.Button("Sample", variant="primary", elem_id=f"{p}-sample")
                with gr.Row():
                    self.count = gr.Dropdown([4, 8, 16, 32, 64], value=16, label="How many", min_width=90,
                                             elem_id=f"{p}-count")
                    self.seed = gr.Textbox(label="Seed", placeholder="random", min_width=90, elem_id=f"{p}-seed")
                self.truncation = gr.Slider(0, 4, value=0, step=0.1, label="Tidier (truncation; 0 = off)",
                                            elem_id=f"{p}-truncation")
                with gr.Row():
                    self.walk_btn = gr.Button("Walk A → B", min_width=90, elem_id=f"{p}-walk")
                    self.mix_btn = gr.Button("Mix A and B", min_width=90, elem_id=f"{p}-mix-run")
                self.mix = gr.Slider(0, 1, value=0.5, step=0.05, label="Mix (0 = A, 1 = B)", elem_id=f"{p}-mix")
                with gr.Row():
                    self.frames = gr.Slider(2, 60, value=16, step=1, label="Frames A → B", min_width=90,
                                            elem_id=f"{p}-frames")
                    self.fps = gr.Slider(1, 30, value=8, step=1, label="Frames per second", min_width=90,
                                         elem_id=f"{p}-fps")
        self.sheet = gr.State(None)  # {"latents": [...], "images": [...], "seed": int}
        self.picked = gr.State([])  # indices: [A] or [A, B]
        self._wire()

    def _show(self, sheet: dict[str, Any] | None, picked: list[int], message: str = "") -> dict[Any, Any]:
        if not sheet:
            return {self.status: message or "Sample a sheet first."}
        names = ", ".join(f"{'AB'[n]} = {i + 1}" for n, i in enumerate(picked)) or "nothing picked yet"
        return {self.grid: _captions(sheet, picked), self.sheet: sheet, self.picked: picked,
                self.status: message or f"{len(sheet['images'])} samples (seed {sheet['seed']}); {names}."}

    def sample(self, count: int, truncation: float, seed_text: str, sheet: dict | None,
               request: gr.Request) -> Iterator[dict[Any, Any]]:
        try:
            seed = parse_seed(seed_text)
        except gr.Error as exc:
            yield {self.progress: progress_html(0, f"not started: {exc.message}", "failed"), self.status: exc.message}
            return
        outcome = Outcome()
        params = {"mode": "sample", "count": int(count), "truncation": float(truncation)}
        yield from run_job(self.ctx, request, GENERATOR, params, seed, self.progress, self.error, None, outcome)
        if outcome.result is None:
            return
        r = outcome.result
        images = [str(p) for p in r.assets if _role(Path(p)) != "grid"]
        yield self._show({"latents": r.data["latents"], "images": images, "seed": r.seed}, [])

    def toggle(self, sheet: dict | None, picked: list[int], evt: gr.SelectData) -> dict[Any, Any]:
        if not sheet:
            return {}
        i = int(evt.index)
        if i in picked:
            picked = [p for p in picked if p != i]
        elif len(picked) < 2:
            picked = [*picked, i]
        else:
            picked = [picked[0], i]  # a third click replaces B
        return self._show(sheet, picked)

    def _between(self, mode: str, extra: dict[str, Any], sheet: dict | None, picked: list[int],
                 request: gr.Request) -> Iterator[dict[Any, Any]]:
        if not sheet or len(picked) != 2:
            yield {self.status: "Pick two samples first: click one for A, then one for B."}
            return
        params = {"mode": mode, "latent_a": sheet["latents"][picked[0]], "latent_b": sheet["latents"][picked[1]],
                  **extra}
        outcome = Outcome()
        yield from run_job(self.ctx, request, GENERATOR, params, None, self.progress, self.error, None, outcome)
        if outcome.result is None:
            return
        paths = [Path(p) for p in outcome.result.assets]
        main = next((p for p in paths if _role(p) in ("animation", "image")), paths[0])
        strip = next((p for p in paths if _role(p) == "strip"), None)
        yield {self.result: gr.update(value=str(main), visible=True),
               self.strip: gr.update(value=str(strip) if strip else None, visible=strip is not None),
               self.status: f"{'Walked' if mode == 'interpolate' else 'Mixed'} from {picked[0] + 1} (A) "
                            f"to {picked[1] + 1} (B)."}

    def walk(self, frames: float, fps: float, sheet: dict | None, picked: list[int],
             request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self._between("interpolate", {"frames": int(frames), "fps": float(fps)}, sheet, picked, request)

    def mix_ab(self, mix: float, sheet: dict | None, picked: list[int],
               request: gr.Request) -> Iterator[dict[Any, Any]]:
        yield from self._between("mix", {"mix": float(mix)}, sheet, picked, request)

    def _wire(self) -> None:
        shown = [self.grid, self.sheet, self.picked, self.status]
        common = dict(concurrency_id=self.ctx.device_group(GENERATOR), concurrency_limit=self.ctx.concurrency_limit,
                      api_visibility="private")
        self.sample_btn.click(cancel_with_event(self.sample), [self.count, self.truncation, self.seed, self.sheet],
                              [self.progress, self.error, *shown], **common)
        self.grid.select(self.toggle, [self.sheet, self.picked], shown, queue=False, api_visibility="private")
        out = [self.progress, self.error, self.result, self.strip, self.status]
        self.walk_btn.click(cancel_with_event(self.walk), [self.frames, self.fps, self.sheet, self.picked], out, **common)
        self.mix_btn.click(cancel_with_event(self.mix_ab), [self.mix, self.sheet, self.picked], out, **common)
        self.handlers = {"sample": self.sample, "toggle": self.toggle, "walk": self.walk, "mix": self.mix_ab}


def build(ctx: UIContext) -> GANWorkspace:
    return GANWorkspace(ctx)
