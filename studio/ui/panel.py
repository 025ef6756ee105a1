"""One generator's panel: form, seed, run / cancel, live progress, outputs, feedback, blind A/B.

The run handler is a Python generator: it submits a job to the session manager and yields a
progress bar, queue position and streamed text from `job.events()` until the job ends. Cancel
cancels only the job this browser session started (the session manager checks the owner).
Feedback is saved through `studio.feedback`; the panel says "saved" only after the commit.
"""
from __future__ import annotations

import html
import json
import secrets
import time
from pathlib import Path
from typing import Any, Iterator

import gradio as gr

from studio.ui.cancellable import cancel_with_event
from studio.ui.context import UIContext
from studio.ui.form import FILE_WIDGETS, IMAGE_SUFFIXES, AUDIO_SUFFIXES, VIDEO_SUFFIXES, Form, OutputView, label_of
from studio.ui.form import widgets as widgets_of_form

STAR_CHOICES = ["1", "2", "3", "4", "5"]
THUMB_CHOICES = [("👍 up", "up"), ("👎 down", "down")]
KIND_SUFFIXES = {"image": IMAGE_SUFFIXES, "mask": IMAGE_SUFFIXES, "audio": AUDIO_SUFFIXES, "video": VIDEO_SUFFIXES,
                 "midi": (".mid", ".midi")}
UPDATE_EVERY_S = 0.15  # at most this often a progress update goes to the browser
API_POLL_S = 0.05  # how often an HTTP API call looks whether its job finished (cheap: a flag read)


def progress_html(fraction: float, message: str, state: str, position: int | None = None,
                  eta: float | None = None) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    extra = ""
    if state == "queued" and position is not None:
        extra = f" · queue position {position + 1}" + (f" · about {eta:.0f} s" if eta else "")
    text = html.escape(f"{message or state}{extra}")
    return (f'<div class="studio-progress" data-state="{state}" data-fraction="{fraction:.3f}">'
            f'<progress value="{pct:.0f}" max="100"></progress> <span>{pct:.0f}% · {text}</span></div>')


def job_progress(prefix: str) -> Any:
    """A job's progress bar, idle until a job starts (`#<prefix>-progress`)."""
    return gr.HTML(progress_html(0, "ready", "idle"), elem_id=f"{prefix}-progress")


def job_error(prefix: str) -> Any:
    """The hidden in-place error note where a job's output goes (`#<prefix>-error`; see error_update)."""
    return gr.Markdown("", visible=False, elem_id=f"{prefix}-error", elem_classes=["studio-error"])


def error_update(message: str | None) -> Any:
    """The in-place error note where the output goes: shown with `message`, hidden with None."""
    if not message:
        return gr.update(value="", visible=False)
    return gr.update(value=f"**Could not make this:** {html.escape(message)}", visible=True)


def parse_seed(value: Any) -> int | None:
    """The seed box: empty or "random" -> None (the studio picks one and shows it), else an integer."""
    text = "" if value is None else str(value).strip()
    if text.lower() in ("", "random", "none"):
        return None
    try:
        seed = int(text)
    except ValueError:
        raise gr.Error(f"The seed must be a whole number, or empty for a random one; got {text!r}.") from None
    if seed < 0:
        raise gr.Error(f"The seed must be 0 or more; got {seed}.")
    return seed


def record_for(ctx: UIContext, path: str | Path) -> dict[str, Any]:
    """The provenance record of a written output (sidecar), with its path."""
    restored = ctx.studio.restore(path)
    return {**restored["record"], "path": str(path)}


class PanelView:
    """One browser session's widgets of a lazily built panel (same attribute names as the panel's)."""

    def __init__(self) -> None:
        self.form: Form | None = None
        self.seed: Any = None
        self.send_target: Any = None
        self.send_button: Any = None
        self.send_status: Any = None
        self.current: Any = None
        self.handlers: dict[str, Any] = {}
        self.components: dict[str, Any] = {}


class GeneratorPanel:
    """Builds one generator's widgets inside the current layout and wires its events."""

    def __init__(self, ctx: UIContext, name: str, *, open_on: Any = (), drawer: Any = None) -> None:
        self.ctx = ctx
        self.name = name
        # Given `open_on` (event listeners such as a tab's select or a drawer's expand), the widgets
        # are built per browser session the first time one fires (see `_build_lazily`); until then
        # form, seed, send_* and current stay None here and `pending` / `opened` are what other
        # tabs write to. `drawer`: the closed gr.Accordion it sits in, opened along with it.
        self.open_on = list(open_on)
        self.drawer = drawer
        self.schema: dict[str, Any] | None = None  # the params' JSON schema, once it can run here
        self.pending: gr.State | None = None  # {"params": {...}, "seed": ..., "n": nonce} to show on open
        self.opened: gr.State | None = None  # True once this session opened it (its tab or drawer)
        self.form: Form | None = None
        self.send_target: gr.Dropdown | None = None
        self.send_button: gr.Button | None = None
        self.send_status: gr.Markdown | None = None
        self.current: gr.State | None = None
        self.seed: gr.Textbox | None = None
        self.handlers: dict[str, Any] = {}
        self.components: dict[str, Any] = {}
        ctx.panels[name] = self
        ctx.claimed.add(name)
        self._build()

    @property
    def available(self) -> bool:
        return self.schema is not None

    @property
    def lazy(self) -> bool:
        return bool(self.open_on)

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        ctx, name = self.ctx, self.name
        info = ctx.info.get(name)
        described = ctx.describe(name) if info is not None else None
        title = (described or {}).get("title") or (info or {}).get("title") or name
        gr.Markdown(f"### {html.escape(title)}\n{html.escape((described or {}).get('description') or '')}")
        if info is None:
            gr.Markdown(f"**The `{name}` generator has not landed in this studio yet.**",
                        elem_classes=["studio-unavailable"])
            return
        if described is None or not info.get("available", True):
            reason = ctx.info.get(name, {}).get("reason") or "it cannot run right now"
            gr.Markdown(f"**`{name}` is not available:** {html.escape(str(reason))}",
                        elem_classes=["studio-unavailable"])
            return
        self.schema = described["params"]
        self._register_api()
        if self.lazy:
            self._build_lazily()
        else:
            self._build_ui(self)

    def _build_lazily(self) -> None:
        """The panel's widgets, built for a session the first time it shows them.

        A page visit shows one tab; most never open "Every setting". Building every panel's ~100
        components up front cost every start, every /config and every session's state (issue
        #14, start-up). An `open_on` event (its tab selected, its drawer expanded, or a Send /
        Open-in-tab aimed at it) sets `opened`, whose change renders the panel once with any
        `pending` values; later `pending` changes fill the built form.
        """
        self.pending = gr.State(None)
        self.opened = gr.State(False)
        for listener in self.open_on:
            # Queued: Gradio reports a State's change (which triggers the render) only from queued events.
            listener(lambda: True, None, self.opened, concurrency_limit=None, api_visibility="private")

        @gr.render(inputs=[self.pending], triggers=[self.opened.change], concurrency_limit=None)
        def _render(pending: dict | None) -> None:
            view = PanelView()
            self._build_ui(view, pending)
            form = view.form
            n_fields = len(form.components)

            def apply(state: dict | None) -> list[Any]:
                if not state:
                    return [gr.update() for _ in range(n_fields + 1)]
                seed = state.get("seed", ...)
                return [*form.to_values(state.get("params") or {}),
                        gr.update() if seed is ... else ("" if seed is None else str(seed))]

            self.pending.change(apply, self.pending, [*form.components, view.seed], concurrency_limit=None,
                                api_visibility="private")
            wire = self.ctx.handlers.get("wire_send_button")
            if wire is not None:
                wire(view)

    def _build_ui(self, v: Any, pending: dict | None = None) -> None:
        """The panel's widgets and events, kept on `v` (the panel itself, or a per-session PanelView)."""
        ctx, name = self.ctx, self.name
        params = (pending or {}).get("params") or None
        seed_value = (pending or {}).get("seed")
        seed_text = "" if seed_value is None else str(seed_value)
        with gr.Row():
            with gr.Column(scale=1):
                # Generate above the form: a long form (the diffusion model's) never pushes it off
                # a 1366x768 screen.
                with gr.Row():
                    run_btn = gr.Button("Generate", variant="primary", elem_id=f"{name}-run")
                    cancel_btn = gr.Button("Cancel", variant="stop", elem_id=f"{name}-cancel")
                v.form = Form(self.schema, prefix=name, values=params)
                with gr.Row():
                    # A textbox, not gr.Number: an empty Number reaches the server as 0, not "random".
                    v.seed = gr.Textbox(label="Seed", placeholder="random", value=seed_text,
                                        elem_id=f"{name}-seed", scale=3)
                    random_btn = gr.Button("🎲 Random", size="sm", scale=1)
                    reuse_btn = gr.Button("↺ Reuse last", size="sm", scale=1)
                ab_mode = gr.Checkbox(label="Blind A/B: make two and pick the better",
                                      value=False, elem_id=f"{name}-ab")
                with gr.Row():
                    # Varying a setting (same seed) is what fills the A/B ranking; the seed alone
                    # compares two draws of one variant.
                    ab_field = gr.Dropdown([("another seed", ""), *((label_of(f.name), f.name)
                                                                   for f in v.form.fields if f.kind != "file")],
                                           value="", label="B differs in", scale=1, elem_id=f"{name}-ab-field")
                    ab_value = gr.Textbox(label="B's value", placeholder="e.g. 0.9, loud, true", scale=1,
                                          elem_id=f"{name}-ab-value")
            with gr.Column(scale=1):
                progress = job_progress(name)
                live = gr.Textbox(label="Live", visible=False, lines=6, max_lines=20, interactive=False,
                                  elem_id=f"{name}-live")
                preview = gr.Image(label="Preview", visible=False, interactive=False, type="pil",
                                   elem_id=f"{name}-preview")
                error_box = job_error(name)
                view = OutputView(prefix=name)
                with gr.Row():
                    v.send_target = gr.Dropdown(label="Send the main output to", choices=[], scale=3,
                                                   elem_id=f"{name}-send-target")
                    v.send_button = gr.Button("Send", size="sm", scale=1, elem_id=f"{name}-send")
                v.send_status = gr.Markdown("", elem_id=f"{name}-send-status")
                with gr.Group(visible=False) as fb_group:
                    gr.Markdown("**Rate this output**")
                    stars = gr.Radio(STAR_CHOICES, label="Stars", elem_id=f"{name}-stars")
                    thumb = gr.Radio(THUMB_CHOICES, label="Thumb", elem_id=f"{name}-thumb")
                    tags = gr.Textbox(label="Tags (comma separated)", elem_id=f"{name}-tags")
                    comment = gr.Textbox(label="Comment", lines=2, elem_id=f"{name}-comment")
                    save_fb = gr.Button("Save rating", elem_id=f"{name}-save-rating")
                    fb_status = gr.Markdown("", elem_id=f"{name}-rating-status")
                with gr.Group(visible=False) as ab_group:
                    gr.Markdown("**Blind A/B**: which is better? (settings are revealed after your vote)")
                    with gr.Row():
                        with gr.Column():
                            view_1 = OutputView(prefix=f"{name}-ab1", label="Output 1")
                        with gr.Column():
                            view_2 = OutputView(prefix=f"{name}-ab2", label="Output 2")
                    with gr.Row():
                        vote_1 = gr.Button("1 is better", elem_id=f"{name}-vote-1")
                        vote_tie = gr.Button("Tie", elem_id=f"{name}-vote-tie")
                        vote_2 = gr.Button("2 is better", elem_id=f"{name}-vote-2")
                    ab_status = gr.Markdown("", elem_id=f"{name}-ab-status")

        job_state = gr.State("")
        last_seed = gr.State(None)
        v.current = gr.State(None)  # {"record": main record, "paths": [...]}
        ab_pair = gr.State(None)  # [record shown as 1, record shown as 2]
        form = v.form

        random_btn.click(lambda: "", None, v.seed, api_visibility="private", queue=False)
        reuse_btn.click(lambda s: "" if s is None else str(s), last_seed, v.seed, api_visibility="private",
                        queue=False)

        run_outputs = [progress, live, preview, error_box, run_btn, *view.components, fb_group, fb_status, ab_group, *view_1.components,
                       *view_2.components, ab_status, job_state, last_seed, v.current, ab_pair,
                       stars, thumb, tags, comment]

        def run(request: gr.Request, *args: Any) -> Iterator[dict[Any, Any]]:
            n = len(form.components)
            values, (seed_value, ab_on, *ab) = list(args[:n]), args[n:]
            ab_key, ab_text = (list(ab) + ["", ""])[:2]
            user = ctx.user(request)
            jobs: list[Any] = []
            try:  # everything that can refuse the request happens before the screen changes
                params = form.to_params(values)
                seed = parse_seed(seed_value)
                if ab_on and ab_key:  # B changes one setting; both share one seed
                    params_b = {**params, ab_key: form.coerce(ab_key, ab_text)}
                    if params_b == params:
                        raise gr.Error(f"B's {label_of(ab_key)} is the same as A's; give B a different value.")
                    seed = secrets.randbelow(2**31) if seed is None else seed
                    jobs.append(self._submit(params, seed, request))
                    jobs.append(self._submit(params_b, seed, request))
                else:
                    jobs.append(self._submit(params, seed, request))
                    if ab_on:
                        jobs.append(self._submit(params, None if seed is None else seed + 1, request))
            except gr.Error as exc:
                for job in jobs:
                    job.cancel(user)
                # The earlier result stays on screen; only the status says why nothing started.
                yield {progress: progress_html(0, f"not started: {exc.message}", "failed"),
                       error_box: error_update(exc.message)}
                return
            yield {progress: progress_html(0, "submitting", "queued"), live: gr.update(value="", visible=False),
                   preview: gr.update(value=None, visible=False), error_box: error_update(None),
                   fb_group: gr.update(visible=False), ab_group: gr.update(visible=False),
                   fb_status: "", ab_status: "", job_state: jobs[0].id, run_btn: gr.update(interactive=False),
                   **dict(zip(view.components, view.clear()))}
            budget = params.get("max_new_tokens") if isinstance(params.get("max_new_tokens"), int) else None
            text = ""
            try:
                tokens = 0
                last_sent = 0.0
                for index, job in enumerate(jobs):
                    if len(jobs) > 1:
                        yield {job_state: job.id}
                    reported = 0.0
                    for update in _follow(job):
                        kind, payload = update
                        if kind == "token":
                            text += payload
                            tokens += 1
                            out: dict[Any, Any] = {live: gr.update(value=text, visible=True)}
                            now = time.monotonic()
                            if budget and now - last_sent >= UPDATE_EVERY_S:
                                # Streamed text moves the bar even when the generator reports
                                # progress only per draft: one token event is about one token.
                                last_sent = now
                                frac = max(reported, min(0.95, tokens / (budget * len(jobs))))
                                out[progress] = progress_html(frac, f"writing · {tokens} token(s)", "running")
                            yield out
                        elif kind == "preview":
                            yield {preview: gr.update(value=payload, visible=True)}
                        else:
                            frac, msg, state, pos, eta = payload
                            reported = frac
                            if len(jobs) > 1:
                                frac, msg = (index + frac) / len(jobs), f"{index + 1} of {len(jobs)}: {msg}"
                            if budget and tokens and state == "running":
                                frac = max(frac, min(0.95, tokens / (budget * len(jobs))))
                            yield {progress: progress_html(frac, msg, state, pos, eta)}
                try:
                    results = [_outcome(job) for job in jobs]
                except gr.Error as exc:
                    # Where the output was, the reason; no stale "done" or 100% stays behind.
                    yield {progress: progress_html(0, f"failed: {exc.message}", "failed"),
                           error_box: error_update(exc.message), preview: gr.update(visible=False),
                           run_btn: gr.update(interactive=True)}
                    return
            finally:
                for job in jobs:
                    if not job.done:  # the browser went away or Gradio cancelled the event
                        try:
                            job.cancel(user)
                        except Exception:  # noqa: BLE001
                            pass
            if any(r is None for r in results):
                kept = " (the streamed text is kept above)" if text else ""
                yield {progress: progress_html(0, f"cancelled{kept}", "cancelled"), preview: gr.update(visible=False),
                       run_btn: gr.update(interactive=True)}
                return
            records = [[record_for(ctx, p) for p in r.assets] for r in results]
            done = {progress: progress_html(1, f"done · seed {results[0].seed}", "done"),
                    preview: gr.update(visible=False), run_btn: gr.update(interactive=True),
                    last_seed: results[0].seed, stars: None, thumb: None, tags: "", comment: ""}
            if len(results) == 1:
                result = results[0]
                done.update(dict(zip(view.components, view.show(result.assets, result.provenance))))
                done[fb_group] = gr.update(visible=bool(records[0]))
                done[v.current] = {"record": records[0][0], "paths": [str(p) for p in result.assets]} \
                    if records[0] else None
            else:
                order = [0, 1] if secrets.randbelow(2) == 0 else [1, 0]
                shown = [results[i] for i in order]
                done.update(dict(zip(view_1.components, view_1.show(shown[0].assets, None))))
                done.update(dict(zip(view_2.components, view_2.show(shown[1].assets, None))))
                done[ab_group] = gr.update(visible=True)
                done[ab_pair] = [records[i][0] for i in order] if all(records) else None
                done[v.current] = None
            yield done

        # cancel_with_event: Gradio's cancel (the page's Cancel, a closed page, /gradio_api/cancel)
        # reaches the studio jobs this run started.
        run_event = run_btn.click(cancel_with_event(run), [*form.components, v.seed, ab_mode, ab_field, ab_value], run_outputs,
                                  concurrency_id=ctx.device_group(name),
                                  concurrency_limit=ctx.concurrency_limit, api_visibility="private")
        # However the run ends (error, closed tab, cancelled event), Generate comes back.
        run_event.then(lambda: gr.update(interactive=True), None, run_btn, queue=False, api_visibility="private")

        def cancel(job_id: str, request: gr.Request) -> str:
            job = ctx.job(job_id)
            if job is None or job.done:
                return progress_html(0, "nothing to cancel", "idle")
            try:
                job.cancel(ctx.user(request))
            except Exception as exc:  # PermissionDenied: not this session's job
                raise gr.Error(str(exc)) from None
            return progress_html(0, "cancelled", "cancelled")

        cancel_btn.click(cancel, job_state, progress, queue=False, api_visibility="private")

        def save_rating(current: dict | None, star: str | None, th: str | None, tag_text: str, text: str,
                        request: gr.Request) -> str:
            if not current:
                raise gr.Error("Generate something first, then rate it.")
            from generators.base import InvalidInput

            try:
                uid = ctx.feedback.rate(current["record"], stars=int(star) if star else None,
                                        thumb={"up": 1, "down": -1}.get(th or ""), tags=tag_text,
                                        comment=text or "", user=ctx.user(request),
                                        session=ctx.session(request))
            except InvalidInput as exc:
                raise gr.Error(str(exc)) from None
            # Only now, with the commit returned, does the creator see "saved".
            return f"✅ Rating saved (#{uid[:8]})."

        save_fb.click(save_rating, [v.current, stars, thumb, tags, comment], fb_status,
                      api_visibility="private")

        def vote(winner: str) -> Any:
            def handler(pair: list | None, request: gr.Request) -> Any:
                if not pair:
                    return "⚠️ Make an A/B pair first (tick Blind A/B and generate).", None, gr.update(), gr.update()
                from generators.base import InvalidInput

                try:
                    uid = ctx.feedback.compare(pair[0], pair[1], winner, user=ctx.user(request),
                                               session=ctx.session(request))
                except InvalidInput as exc:  # e.g. both made the very same file
                    return f"⚠️ Not saved: {exc}.", pair, gr.update(), gr.update()
                reveal = "; ".join(f"{i + 1}: seed {r.get('seed')}{_differences(r, pair[1 - i])}, "
                                   f"{Path(str(r.get('path'))).name}" for i, r in enumerate(pair))
                if winner == "tie":
                    return f"✅ Vote saved (#{uid[:8]}). {reveal}", None, None, gr.update(visible=False)
                # The winner is now "the output": it can be rated below and sent on.
                won = pair[0 if winner == "a" else 1]
                main = Path(str(won["path"]))
                paths = [str(main), *(str(main.with_name(n)) for n in won.get("siblings") or [])]
                note = f"✅ Vote saved (#{uid[:8]}). {reveal}. The winner can now be rated and sent on."
                return note, None, {"record": won, "paths": paths}, gr.update(visible=True)
            return handler

        for button, winner in ((vote_1, "a"), (vote_tie, "tie"), (vote_2, "b")):
            button.click(vote(winner), ab_pair, [ab_status, ab_pair, v.current, fb_group],
                         api_visibility="private")

        v._run_event = run_event
        # The plain functions behind the events, for tests and for embedding in other apps.
        v.handlers = {"run": run, "cancel": cancel, "save_rating": save_rating, "vote": vote,
                      "generate": self._api_generate}
        v.components = {"progress": progress, "live": live, "preview": preview, "error": error_box,
                        "run_btn": run_btn, "view": view, "view_1": view_1, "view_2": view_2,
                        "fb_group": fb_group, "fb_status": fb_status, "ab_group": ab_group,
                        "ab_status": ab_status, "job": job_state, "last_seed": last_seed,
                        "current": v.current, "ab_pair": ab_pair}
        # What the creator edits. Built up front, Gradio makes a widget editable because an event
        # reads it; in a gr.render it left most of them disabled, so say it outright.
        for comp in [*form.components, v.seed, ab_mode, ab_field, ab_value, stars, thumb, tags, comment,
                     v.send_target]:
            if getattr(comp, "interactive", False) is None:
                comp.interactive = True

    def _register_api(self) -> None:
        """The HTTP API: one stable `generate_<name>` endpoint, whether or not the widgets exist yet."""
        ctx, name = self.ctx, self.name

        async def api_generate(params_json: str = "{}", seed: int | None = None,
                               request: gr.Request = None) -> dict:  # type: ignore[assignment]
            # A coroutine, not a thread: when the caller cancels (gradio_client's job.cancel(), a
            # closed connection), Gradio cancels this task, the wait below raises CancelledError,
            # and the studio job is cancelled with it, freeing its lane. A thread blocked in
            # job.result() would never hear of it.
            import asyncio

            try:
                params = json.loads(params_json or "{}")
            except json.JSONDecodeError as exc:
                raise gr.Error(f"params_json is not valid JSON: {exc.msg}") from None
            if not isinstance(params, dict):
                raise gr.Error("params_json must be a JSON object")
            job = self._submit(params, None if seed in (None, "", -1) else int(seed), request)
            try:
                while not job.done:
                    await asyncio.sleep(API_POLL_S)
            except asyncio.CancelledError:
                job.cancel(job.user)  # on behalf of its owner, whose request this is
                raise
            result = _outcome(job, raise_cancelled=True)
            return {"generator": name, "seed": result.seed, "job_id": job.id,
                    "assets": [str(p) for p in result.assets], "data": _client_safe(_jsonable(result.data)),
                    "provenance": _client_safe(_jsonable(result.provenance))}

        api_generate.__name__ = f"generate_{name}"
        api_generate.__doc__ = (f"Run the {name} generator. params_json: a JSON object of its parameters "
                                f"(see the studio's describe); seed: an integer, or -1 / empty for random. "
                                f"Returns the written files, data and provenance (an object with a "
                                f"\"path\" key, like the GAN's params, comes as {{\"json\": text}} so clients "
                                f"do not mistake it for a file).")
        gr.api(api_generate, api_name=f"generate_{name}", concurrency_id=ctx.device_group(name),
               concurrency_limit=ctx.concurrency_limit)
        self._api_generate = api_generate

    # -- helpers -----------------------------------------------------------------------------
    def _submit(self, params: dict[str, Any], seed: int | None, request: Any) -> Any:
        from generators.base import StudioError

        try:  # the gate (studio.gate) confines file and model parameters for every UI caller
            return self.ctx.submit(self.name, params, seed, request)
        except StudioError as exc:  # InvalidInput, QueueFull, GeneratorUnavailable: a sentence
            raise gr.Error(str(exc)) from None

    def file_targets(self) -> list[tuple[str, str, gr.components.Component | None]]:
        """(generator, field, component) of every upload this panel takes (component None while
        a lazily built panel has no widgets: see `pending`)."""
        if self.form is not None:
            return [(self.name, f.name, f.component) for f in self.form.file_fields()]
        if self.lazy and self.schema is not None:
            return [(self.name, n, None) for n in self.schema.get("properties", {}) if self.is_file_field(n)]
        return []

    def widget_of(self, field: str) -> str | None:
        """The field's `x-widget` in the params schema (what kind of file it takes)."""
        return ((self.schema or {}).get("properties", {}).get(field) or {}).get("x-widget")

    def is_file_field(self, field: str) -> bool:
        if self.form is not None:
            f = self.form.field(field)
            return bool(f and f.kind == "file")
        from studio.ui.pickers import picker  # a picker (or specialised widget) is not an upload

        widget = self.widget_of(field)
        return widget in FILE_WIDGETS and picker(self.name, field) is None and widget not in widgets_of_form()


def _follow(job: Any) -> Iterator[tuple[str, Any]]:
    """Progress / token updates of a job until it ends, throttled, with its queue position."""
    seen = 0
    last = 0.0
    fraction, message = 0.0, ""
    while True:
        index = 0
        for event in job.events(timeout=0.5):
            index += 1
            if index <= seen:
                continue  # events() replays from the start when re-entered
            seen = index
            if event.kind == "token" and isinstance(event.data, str):
                yield "token", event.data
            elif event.kind == "preview" and _is_picture(event.data):
                yield "preview", event.data
            elif event.kind in ("progress", "state"):
                fraction, message = event.fraction, event.message
                now = time.monotonic()
                if now - last >= UPDATE_EVERY_S or event.kind == "state":
                    last = now
                    yield "progress", (fraction, message, job.state, job.position, job.eta_s)
        if job.done:
            return
        yield "progress", (fraction, message, job.state, job.position, job.eta_s)


def _differences(record: dict[str, Any], other: dict[str, Any]) -> str:
    """", model=big" for the settings where `record` differs from `other` (the A/B reveal)."""
    mine, theirs = record.get("params") or {}, other.get("params") or {}
    keys = [k for k in mine if mine.get(k) != theirs.get(k)]
    return "".join(f", {k}={mine[k]!r}" for k in keys[:3])


def _is_picture(data: Any) -> bool:
    """A preview the Preview image can show: a PIL image or an HxW(xC) array."""
    if hasattr(data, "save") and hasattr(data, "mode"):
        return True
    shape = getattr(data, "shape", None)
    return shape is not None and len(shape) in (2, 3)


def _outcome(job: Any, raise_cancelled: bool = False) -> Any:
    """The job's Result; None if it was cancelled; every other error as a gr.Error sentence."""
    from generators.base import Cancelled, StudioError, TimedOut

    try:
        return job.result()
    except TimedOut as exc:
        raise gr.Error(f"Stopped: {exc}") from None
    except Cancelled as exc:
        if raise_cancelled:
            raise gr.Error(f"Cancelled: {exc}") from None
        return None
    except StudioError as exc:
        raise gr.Error(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a generator bug: say so, keep the studio up
        raise gr.Error(f"The {job.generator} generator failed: {type(exc).__name__}: {exc}") from None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _client_safe(value: Any) -> Any:
    """`value` with every object that has a string "path" key sent as JSON text instead.

    gradio_client (download_files=True, its default) takes any such object for a file and tries
    to download it: GAN provenance `{"params": {"path": "slerp", ...}}` crashed it. Such objects
    come back as {"json": "<the object as JSON>"}; everything else is unchanged."""
    if isinstance(value, dict):
        if isinstance(value.get("path"), str):
            return {"json": json.dumps(value, sort_keys=True)}
        return {k: _client_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_client_safe(v) for v in value]
    return value
