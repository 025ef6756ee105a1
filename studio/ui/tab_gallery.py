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
    refresh: tuple[Any, list[Any], list[Any]] | None = None  # (search, inputs, outputs): run when the tab opens


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
    pictures = gr.Gallery(label="Jobs (one card each)", columns=6, height="auto", object_fit="contain",
                          allow_preview=False, elem_id="gallery-images")
    table = gr.Dataframe(headers=["created", "generator", "file", "files", "seed", "stars", "thumbs"],
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
            with gr.Row():
                delete = gr.Button("Delete this job", variant="stop", size="sm", elem_id="gallery-delete")
                undo = gr.Button("Undo delete", size="sm", visible=False, elem_id="gallery-undo")
            status = gr.Markdown("", elem_id="gallery-status")
            rerun_view = OutputView(prefix="gallery-rerun", label="Re-run")
    restored = gr.State(None)
    records_state = gr.State([])
    deleted = gr.State(None)  # the job id the last delete moved to the trash (for Undo)

    def search(gen: str, needle: str, seed_value: str | None, wanted: str,
               request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        from studio.ui.panel import parse_seed

        records = ctx.studio.history(generator=None if gen in (None, "", "all") else gen, text=needle or None,
                                     seed=parse_seed(seed_value), limit=500, user=ctx.viewer(request))
        jobs = _jobs(records)
        ratings = ctx.feedback.ratings_for(j["main"].get("sha256", "") for j in jobs)
        kept = [j for j in jobs if _passes(ratings.get(j["main"].get("sha256", "")), wanted)][:200]
        rows, images = [], []
        for j in kept:
            r = j["main"]
            rt = ratings.get(r.get("sha256", "")) or {}
            stars = f"{rt['mean']:.1f} ({rt['n']})" if rt.get("mean") is not None else ""
            thumbs = f"{rt.get('up', 0)}↑ {rt.get('down', 0)}↓" if rt else ""
            rows.append([r.get("created", ""), r.get("generator", ""), Path(r["path"]).name, len(j["files"]),
                         r.get("seed"), stars, thumbs])
            if j["thumb"]:
                images.append((j["thumb"], f"{r.get('generator')} · seed {r.get('seed')} · {len(j['files'])} file(s)"))
        choices = [(f"{Path(j['main']['path']).name} ({len(j['files'])} file(s))", j["main"]["path"]) for j in kept]
        return (f"{len(kept)} job(s)", images or None, rows or None,
                gr.update(choices=choices, value=None), [j["main"] for j in kept])

    search_inputs = [generator, text, seed, rating]
    search_outputs = [summary, pictures, table, pick, records_state]
    refresh.click(search, search_inputs, search_outputs, api_visibility="private")

    def card_clicked(kept: list[dict], evt: gr.SelectData) -> Any:
        with_thumbs = [r for r in kept if _thumb_of(r)]
        index = int(evt.index)
        return with_thumbs[index]["path"] if 0 <= index < len(with_thumbs) else gr.update()

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
    pictures.select(card_clicked, records_state, pick, api_visibility="private")

    def delete_job(path: str | None, gen: str, needle: str, seed_value: str | None, wanted: str,
                   request: gr.Request = None) -> dict[Any, Any]:  # type: ignore[assignment]
        """Files, sidecars and index lines of the picked job go to the trash; Undo brings them back."""
        from generators.base import StudioError

        if not path:
            return {status: "⚠️ Pick a job first (click its card or choose it in the list)."}
        try:
            gone = ctx.studio.delete(path, user=ctx.user(request))  # one's own outputs only
        except StudioError as exc:
            return {status: f"⚠️ Not deleted: {html.escape(str(exc))}"}
        out = dict(zip(search_outputs, search(gen, needle, seed_value, wanted, request)))
        out.update({status: f"Deleted job {gone['group']} ({len(gone['files'])} file(s)).", deleted: gone["group"],
                    undo: gr.update(visible=True), restored: None, **dict(zip(view.components, view.clear()))})
        return out

    def undo_delete(group: str | None, gen: str, needle: str, seed_value: str | None, wanted: str,
                    request: gr.Request = None) -> dict[Any, Any]:  # type: ignore[assignment]
        from generators.base import StudioError

        if not group:
            return {status: "Nothing to undo.", undo: gr.update(visible=False)}
        try:
            back = ctx.studio.undelete(group, user=ctx.user(request))
        except StudioError as exc:
            return {status: f"⚠️ Not restored: {html.escape(str(exc))}", undo: gr.update(visible=False)}
        out = dict(zip(search_outputs, search(gen, needle, seed_value, wanted, request)))
        out.update({status: f"Restored job {group} ({len(back)} file(s)).", deleted: None,
                    undo: gr.update(visible=False)})
        return out

    filters = [generator, text, seed, rating]
    changed = [*search_outputs, status, deleted, undo, restored, *view.components]
    delete.click(delete_job, [pick, *filters], changed, api_visibility="private")
    undo.click(undo_delete, [deleted, *filters], changed, api_visibility="private")

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
                          handlers={"search": search, "show": show, "dropped": dropped, "run_again": run_again,
                                    "delete": delete_job, "undo_delete": undo_delete},
                          refresh=(search, search_inputs, search_outputs))


def _thumb_of(record: dict[str, Any]) -> str | None:
    """A job's card picture: its first image, else an SVG drawing or score (siblings included)."""
    main = Path(record["path"])
    files = [main, *(main.with_name(n) for n in record.get("siblings") or [])]
    for suffixes in (IMAGE_SUFFIXES, (".svg",)):
        found = next((str(f) for f in files if f.suffix.lower() in suffixes and f.is_file()), None)
        if found:
            return found
    return None


def _jobs(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Asset records (one per file, newest first) -> one entry per job: main record, files, card picture."""
    jobs: dict[str, dict[str, Any]] = {}
    for r in records:
        key = str(r.get("group") or r["path"])
        job = jobs.setdefault(key, {"records": [], "files": []})
        job["records"].append(r)
        job["files"].append(r["path"])
    out = []
    for job in jobs.values():
        main = next((r for r in job["records"] if str(r.get("id", "")).endswith("-0")), job["records"][0])
        out.append({"main": main, "files": job["files"], "thumb": _thumb_of(main)})
    return out
