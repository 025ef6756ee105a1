"""The Gallery tab: every output the studio wrote (it survives restarts), filters, and restore.

Filter by generator, text, seed and rating; pick an output to see it with its provenance;
drop any studio output file (PNG, MIDI, SVG, ... carry their settings) to restore its
generator, params and seed, then run it again here or open it in its generator's tab.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.context import UIContext
from studio.ui.form import IMAGE_SUFFIXES, OutputView

RATING_FILTERS = ["any", "rated", "3+ stars", "4+ stars", "5 stars", "thumbs up", "unrated"]


@dataclass
class GalleryHandles:
    restored: gr.State  # {"generator", "params", "seed"} of the picked / dropped output
    open_button: gr.Button
    status: gr.Markdown
    handlers: dict[str, Any]


def _passes(rating: dict[str, Any] | None, wanted: str) -> bool:
    if wanted == "any":
        return True
    if wanted == "unrated":
        return not rating
    if not rating:
        return False
    mean = rating.get("mean")
    if wanted == "rated":
        return True
    if wanted == "thumbs up":
        return rating.get("up", 0) > rating.get("down", 0)
    floor = {"3+ stars": 3, "4+ stars": 4, "5 stars": 5}[wanted]
    return mean is not None and mean >= floor - 1e-9


def build(ctx: UIContext) -> GalleryHandles:
    names = sorted(ctx.info)
    with gr.Row():
        generator = gr.Dropdown(["all", *names], value="all", label="Generator", elem_id="gallery-generator")
        text = gr.Textbox(label="Text in settings or file name", elem_id="gallery-text")
        seed = gr.Textbox(label="Seed", placeholder="any", elem_id="gallery-seed")
        rating = gr.Dropdown(RATING_FILTERS, value="any", label="Rating", elem_id="gallery-rating")
        refresh = gr.Button("Search", elem_id="gallery-search")
    summary = gr.Markdown("", elem_id="gallery-summary")
    pictures = gr.Gallery(label="Images", columns=6, height="auto", elem_id="gallery-images")
    table = gr.Dataframe(headers=["created", "generator", "file", "seed", "stars", "thumbs"],
                         interactive=False, wrap=True, elem_id="gallery-table")
    pick = gr.Dropdown(label="Open an output", choices=[], elem_id="gallery-pick")
    with gr.Row():
        with gr.Column():
            view = OutputView(prefix="gallery-view", label="Picked")
        with gr.Column():
            drop = gr.File(label="Drop any studio output file to restore its settings", type="filepath",
                           elem_id="gallery-drop")
            restored_json = gr.JSON(label="Restored settings", visible=False)
            with gr.Row():
                rerun = gr.Button("Run it again", elem_id="gallery-rerun")
                open_button = gr.Button("Open in its tab", elem_id="gallery-open")
            status = gr.Markdown("", elem_id="gallery-status")
            rerun_view = OutputView(prefix="gallery-rerun", label="Re-run")
    restored = gr.State(None)
    records_state = gr.State([])

    def search(gen: str, needle: str, seed_value: str | None, wanted: str,
               request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        from studio.ui.panel import parse_seed

        records = ctx.studio.history(generator=None if gen in (None, "", "all") else gen, text=needle or None,
                                     seed=parse_seed(seed_value), limit=500, user=ctx.viewer(request))
        ratings = ctx.feedback.ratings_for(r.get("sha256", "") for r in records)
        kept = [r for r in records if _passes(ratings.get(r.get("sha256", "")), wanted)][:200]
        rows, images = [], []
        for r in kept:
            rt = ratings.get(r.get("sha256", "")) or {}
            stars = f"{rt['mean']:.1f} ({rt['n']})" if rt.get("mean") is not None else ""
            thumbs = f"{rt.get('up', 0)}↑ {rt.get('down', 0)}↓" if rt else ""
            rows.append([r.get("created", ""), r.get("generator", ""), Path(r["path"]).name, r.get("seed"),
                         stars, thumbs])
            if Path(r["path"]).suffix.lower() in IMAGE_SUFFIXES:
                images.append((r["path"], f"{r.get('generator')} · seed {r.get('seed')}"))
        choices = [(f"{Path(r['path']).name}", r["path"]) for r in kept]
        return (f"{len(kept)} output(s)", images or None, rows or None,
                gr.update(choices=choices, value=None), kept)

    search_inputs = [generator, text, seed, rating]
    search_outputs = [summary, pictures, table, pick, records_state]
    refresh.click(search, search_inputs, search_outputs, api_visibility="private")

    def show(path: str | None, request: gr.Request = None) -> list[Any]:  # type: ignore[assignment]
        if not path:
            return [*view.clear(), None, gr.update(visible=False)]
        viewer = ctx.viewer(request)
        try:  # an output of this studio (not any server file), and this viewer's unless shared
            path = str(ctx.studio.assets.resolve(path))
        except Exception as exc:  # noqa: BLE001 - InvalidInput: "not a studio output"
            raise gr.Error(str(exc)) from None
        if viewer is not None and ctx.studio.assets.owner_of(path) != viewer:
            raise gr.Error("That output is not one of yours.")
        try:
            got = ctx.studio.restore(path)
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(str(exc)) from None
        record = got.get("record") or {}
        siblings = [str(Path(path).with_name(n)) for n in record.get("siblings", [])]
        state = {"generator": got["generator"], "params": got["params"], "seed": got["seed"], "path": path}
        return [*view.show([path, *siblings], record), state,
                gr.update(visible=True, value={k: state[k] for k in ("generator", "params", "seed")})]

    pick.change(show, pick, [*view.components, restored, restored_json], api_visibility="private")

    def dropped(path: str | None) -> tuple[Any, Any, str]:
        if not path:
            return None, gr.update(visible=False), ""
        try:
            got = ctx.studio.restore(path)
        except Exception as exc:  # noqa: BLE001 - InvalidInput: "carries no studio provenance"
            raise gr.Error(str(exc)) from None
        state = {"generator": got["generator"], "params": got["params"], "seed": got["seed"], "path": path}
        shown = {k: state[k] for k in ("generator", "params", "seed")}
        return state, gr.update(visible=True, value=shown), \
            f"Restored **{html.escape(got['generator'])}** settings, seed {got['seed']}."

    drop.change(dropped, drop, [restored, restored_json, status], api_visibility="private")

    def run_again(state: dict | None, request: gr.Request) -> list[Any]:
        if not state:
            raise gr.Error("Pick an output or drop a studio file first.")
        from generators.base import StudioError

        try:
            # a dropped file's provenance is whatever its author wrote: it passes the gate as remote input
            job = ctx.submit(state["generator"], state["params"], state["seed"], request)
            result = job.result()
        except StudioError as exc:
            raise gr.Error(str(exc)) from None
        return [f"Ran **{html.escape(state['generator'])}** again with seed {result.seed}.",
                *rerun_view.show(result.assets, result.provenance)]

    rerun.click(run_again, restored, [status, *rerun_view.components], api_visibility="private",
                concurrency_id="gallery-rerun", concurrency_limit=ctx.concurrency_limit)
    return GalleryHandles(restored=restored, open_button=open_button, status=status,
                          handlers={"search": search, "show": show, "dropped": dropped, "run_again": run_again})
