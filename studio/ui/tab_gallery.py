"""The Gallery tab: every output the studio wrote (it survives restarts), filters, and restore.

Filter by generator, text, seed and rating; pick an output to see it with its provenance;
drop any studio output file (PNG, MIDI, SVG, ... carry their settings) to restore its
generator, params and seed, then run it again here (with progress and Cancel) or open it in its
generator's tab. Any two jobs can be compared side by side (studio/ui/gallery_compare.py). While
the tab is open it refreshes itself when the studio writes new outputs (a light timer that looks
at the output index's size and time and searches again only when they changed).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.cancellable import cancel_with_event
from studio.ui.context import UIContext
from studio.ui.form import IMAGE_SUFFIXES, OutputView
from studio.ui.gallery_compare import CompareView
from studio.ui.panel import error_update, job_error, job_progress, progress_html
from studio.ui.ws_common import Outcome, cancel_job, run_job

RATING_FILTERS = ["any", "rated", "3+ stars", "4+ stars", "5 stars", "thumbs up", "unrated"]
POLL_S = 3.0  # while the Gallery is open: how often it looks for new outputs (a file stat, no search)


@dataclass
class GalleryHandles:
    restored: gr.State  # {"generator", "params", "seed"} of the picked / dropped output
    open_button: gr.Button
    status: gr.Markdown
    handlers: dict[str, Any]
    refresh: tuple[Any, list[Any], list[Any]] | None = None  # (search, inputs, outputs): run when the tab opens
    timer: gr.Timer | None = None  # ticks only while the Gallery tab is open (app.py switches it)


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
                rerun_cancel = gr.Button("Cancel", variant="stop", size="sm", elem_id="gallery-rerun-cancel")
                open_button = gr.Button("Open in its tab", elem_id="gallery-open")
            rerun_progress = job_progress("gallery-rerun")
            rerun_error = job_error("gallery-rerun")
            with gr.Row():
                delete = gr.Button("Delete this job", variant="stop", size="sm", elem_id="gallery-delete")
                undo = gr.Button("Undo delete", size="sm", visible=False, elem_id="gallery-undo")
            status = gr.Markdown("", elem_id="gallery-status")
            rerun_view = OutputView(prefix="gallery-rerun", label="Re-run")
    compare = CompareView()
    restored = gr.State(None)
    records_state = gr.State([])
    rerun_job = gr.State(None)  # the re-run's job id (for Cancel)
    seen = gr.State(None)  # the output index's (size, mtime) at the last search
    timer = gr.Timer(POLL_S, active=False)
    deleted = gr.State(None)  # the job id the last delete moved to the trash (for Undo)

    def search(gen: str, needle: str, seed_value: str | None, wanted: str, picked: str | None = None,
               a: str | None = None, b: str | None = None,
               request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        """Filter the jobs; a picked job and the compared pair stay chosen while they are still listed."""
        from studio.ui.panel import parse_seed

        mark = _index_mark(ctx)  # before reading: an output written meanwhile shows at the next tick
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
        listed = {c[1] for c in choices}

        def keep(value: str | None) -> str | None:
            return value if value in listed else None

        return (f"{len(kept)} job(s)", images or None, rows or None,
                gr.update(choices=choices, value=keep(picked)), [j["main"] for j in kept],
                gr.update(choices=choices, value=keep(a)), gr.update(choices=choices, value=keep(b)), mark)

    search_inputs = [generator, text, seed, rating, pick, compare.a, compare.b]
    search_outputs = [summary, pictures, table, pick, records_state, compare.a, compare.b, seen]
    refresh.click(search, search_inputs, search_outputs, api_visibility="private")

    def poll() -> Any:
        """A timer tick: the output index's mark; the next step searches again only when it moved
        since the last search (a new or deleted output), and otherwise changes nothing on the page."""
        return _index_mark(ctx)

    def on_new_outputs(mark: Any, last: Any, gen: str, needle: str, seed_value: str | None, wanted: str,
                       picked: str | None, a: str | None, b: str | None,
                       request: gr.Request = None) -> Any:  # type: ignore[assignment]
        if mark is None or tuple(mark) == (tuple(last) if last else None):
            return [gr.skip()] * len(search_outputs)  # the last search already saw this index
        return search(gen, needle, seed_value, wanted, picked, a, b, request=request)

    live_mark = gr.State(None)
    timer.tick(poll, None, live_mark, queue=False, show_progress="hidden", api_visibility="private") \
        .then(on_new_outputs, [live_mark, seen, *search_inputs], search_outputs, queue=False,
              show_progress="hidden", api_visibility="private")

    def card_clicked(kept: list[dict], mode: bool, a: str | None, b: str | None, evt: gr.SelectData) -> Any:
        with_thumbs = [r for r in kept if _thumb_of(r)]
        index = int(evt.index)
        if not 0 <= index < len(with_thumbs):
            return gr.skip(), gr.skip(), gr.skip()
        path = with_thumbs[index]["path"]
        if not mode:
            return path, gr.skip(), gr.skip()
        if not a or a == path:  # first click (or A again): A
            return gr.skip(), path, gr.skip()
        if not b:
            return gr.skip(), gr.skip(), path
        return gr.skip(), b, path  # a third card: B becomes A, the new card B

    def load(path: str, request: gr.Request | None) -> dict[str, Any]:
        """A job's files and settings, if `path` is this studio's output and this viewer may see it."""
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
        return {"generator": got["generator"], "params": got["params"], "seed": got["seed"], "path": path,
                "files": [path, *siblings], "record": record}

    def show(path: str | None, request: gr.Request = None) -> list[Any]:  # type: ignore[assignment]
        if not path:
            return [*view.clear(), None, gr.update(visible=False)]
        job = load(path, request)
        state = {k: job[k] for k in ("generator", "params", "seed", "path")}
        return [*view.show(job["files"], job["record"]), state,
                gr.update(visible=True, value={k: state[k] for k in ("generator", "params", "seed")})]

    def compare_jobs(a: str | None, b: str | None, request: gr.Request = None) -> list[Any]:  # type: ignore[assignment]
        return compare.show(load(a, request) if a else None, load(b, request) if b else None)

    pick.change(show, pick, [*view.components, restored, restored_json], api_visibility="private")
    pictures.select(card_clicked, [records_state, compare.mode, compare.a, compare.b], [pick, compare.a, compare.b],
                    api_visibility="private")
    for side in (compare.a, compare.b):
        side.change(compare_jobs, [compare.a, compare.b], compare.outputs, api_visibility="private")

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
        out = dict(zip(search_outputs, search(gen, needle, seed_value, wanted, request=request)))
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
        out = dict(zip(search_outputs, search(gen, needle, seed_value, wanted, request=request)))
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

    def run_again(state: dict | None, request: gr.Request) -> Any:
        """Make the restored job again, with a moving progress bar; Cancel stops it."""
        if not state:
            message = "Pick an output or drop a studio file first."
            yield {rerun_progress: progress_html(0, f"not started: {message}", "failed"),
                   rerun_error: error_update(message)}
            return
        # One re-run at a time from this page: the button is off while it runs, back on however it
        # ends (refused, failed, cancelled or done).
        yield {rerun: gr.update(interactive=False)}
        outcome = Outcome()
        # a dropped file's provenance is whatever its author wrote: it passes the gate as remote input
        last: dict[Any, Any] = {}
        for update in run_job(ctx, request, state["generator"], state["params"], state["seed"], rerun_progress,
                              rerun_error, rerun_job, outcome):
            if last:
                yield last
            last = update
        if outcome.result is None:  # why, in place (the last update), with the button back on
            yield {**last, rerun: gr.update(interactive=True)}
            return
        if last:
            yield last
        result = outcome.result
        yield {status: f"Ran **{html.escape(state['generator'])}** again with seed {result.seed}.",
               rerun: gr.update(interactive=True),
               **dict(zip(rerun_view.components, rerun_view.show(result.assets, result.provenance)))}

    def cancel_rerun(job_id: str | None, request: gr.Request = None) -> str:  # type: ignore[assignment]
        return cancel_job(ctx, job_id, request)

    rerun_outputs = [status, rerun, rerun_progress, rerun_error, rerun_job, *rerun_view.components]
    rerun.click(cancel_with_event(run_again), restored, rerun_outputs, api_visibility="private",
                concurrency_id="gallery-rerun", concurrency_limit=ctx.concurrency_limit)
    rerun_cancel.click(cancel_rerun, rerun_job, rerun_progress, queue=False, api_visibility="private")
    return GalleryHandles(restored=restored, open_button=open_button, status=status,
                          handlers={"search": search, "show": show, "dropped": dropped, "run_again": run_again,
                                    "cancel_rerun": cancel_rerun, "delete": delete_job, "undo_delete": undo_delete,
                                    "compare": compare_jobs, "gallery_poll": poll, "on_new_outputs": on_new_outputs,
                                    "card_clicked": card_clicked},
                          refresh=(search, search_inputs, search_outputs), timer=timer)


def timer_switch(evt: gr.SelectData) -> Any:
    """A top-level tab was chosen: the Gallery's refresh timer runs only while the Gallery is shown."""
    return gr.Timer(active=evt.value == "Gallery")


def _index_mark(ctx: UIContext) -> tuple[int, int] | None:
    """The output index's (size, modification time): it changes whenever an output is written or deleted."""
    try:
        st = ctx.studio.assets.index_path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


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
