"""The studio's browser app: tabs, shared wiring, the HTTP API, and a safe launch.

`create_app(studio)` builds the Gradio Blocks (Story, Image, Music, Sketch, Face, Gallery,
Feedback, System; generators no tab claims appear under "More"). Building reads only the
generators' schemas: no model loads before first paint. `launch(...)` serves it on 127.0.0.1
by default, refuses to expose it (share link or a non-loopback host) without auth unless told
`insecure=True`, serves files only from the studio's outputs folder, caps uploads and the queue,
keeps monitoring off, and fails within `share_timeout` seconds when a share link cannot be made.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any

import studio.ui  # noqa: F401  (turns Gradio's analytics off before gradio is imported)
import gradio as gr

from studio.ui import tab_face, tab_feedback, tab_gallery, tab_image, tab_music, tab_sketch, tab_story, tab_system
from studio.ui import tab_taste
from studio.ui.api_info_once import api_info_per_model
from studio.ui.app_once import served_app_only
from studio.ui.config_once import keep_component_config, release_component_config, reuse_component_config
from studio.ui.context import UIContext
from studio.ui.form import label_of
from studio.ui.generator_tab import build_generator_tab
from studio.ui.http_api import add_http_api
from studio.ui.launch import (DEFAULT_SHARE_TIMEOUT_S, LaunchError, check_exposure, is_loopback,
                              probe_share_server)
from studio.ui.panel import KIND_SUFFIXES, GeneratorPanel

GENERATOR_TABS = [("story", "Story", tab_story), ("image", "Image", tab_image), ("music", "Music", tab_music),
                  ("sketch", "Sketch", tab_sketch), ("face", "Face", tab_face)]
# Tabs not on the first screen: their generator panels are built per session when first opened
# (GeneratorPanel's open_on). The first tab and the plug-ins' "More" tab are built up front.
LAZY_TABS = frozenset({"image", "music", "sketch", "face"})
CSS = """
.studio-progress progress { width: 70%; height: 1em; vertical-align: middle; }
.studio-unavailable { border-left: 4px solid #d97706; padding-left: .6em; }
.studio-error { border-left: 4px solid #dc2626; padding-left: .6em; }
"""


# --------------------------------------------------------------------------------------------
# Building.
# --------------------------------------------------------------------------------------------
def create_app(studio: Any, *, feedback: Any = None, title: str = "Studio") -> gr.Blocks:
    """The Blocks app for `studio` (a `studio.api.Studio`). `feedback` defaults to its home's store."""
    lazy = None
    if feedback is None:  # opened on first use or after the first paint, not before it
        from studio.ui.lazy_feedback import LazyFeedback

        def open_store() -> Any:
            from studio.feedback import FeedbackStore

            return FeedbackStore.for_settings(studio.settings)

        feedback = lazy = LazyFeedback(open_store)
    ctx = UIContext(studio=studio, feedback=feedback, info={g["name"]: g for g in studio.generators()})
    if lazy is not None:
        ctx.when_painted(lazy.warm)
    keep = contextlib.ExitStack()  # closed after the Blocks' own exit: see config_once below
    # Gradio's FastAPI app is built once, by launch(), not also here (studio.ui.app_once); each
    # file-like data model is described once, not per component (studio.ui.api_info_once).
    with served_app_only(), api_info_per_model(), keep, gr.Blocks(title=title, analytics_enabled=False) as demo:
        # The queue is set up before any component: Gradio's queue() rebuilds the app and its whole
        # config, which costs nothing on an empty page but ~0.2 CPU-s on the finished one.
        demo.queue(default_concurrency_limit=1, max_size=studio.settings.max_queue)
        gr.Markdown(f"# {title}\nEvery output carries its settings; rate what you like, "
                    "and drop any output file into the Gallery to make it again.")
        with gr.Tabs() as tabs:
            ctx.tabs = tabs
            for tab_id, tab_title, module in GENERATOR_TABS:
                with gr.Tab(tab_title, id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    if tab_id in LAZY_TABS:  # its panels are built when a session first opens it
                        ctx.lazy_tabs[tab_id] = tab
                    module.build(ctx, tab_id)
            unclaimed = [name for name in sorted(ctx.info) if name not in ctx.claimed]
            if unclaimed:  # plug-ins and test generators: still reachable, never hidden
                with gr.Tab("More", id="more", elem_id="tab-more"):
                    build_generator_tab(ctx, "more", unclaimed)
            with gr.Tab("Gallery", id="gallery", elem_id="tab-gallery") as gallery_tab:
                gallery = tab_gallery.build(ctx)
            with gr.Tab("Feedback", id="feedback", elem_id="tab-feedback") as feedback_tab:
                fb_refresh, fb_inputs, fb_outputs = tab_feedback.build(ctx)
                tab_taste.build(ctx)  # the taste panel (studio/taste.py)
            with gr.Tab("System", id="system", elem_id="tab-system") as system_tab:
                sys_refresh, sys_inputs, sys_outputs = tab_system.build(ctx)
        ctx.handlers.update(feedback_refresh=fb_refresh, system_refresh=sys_refresh, **gallery.handlers)
        feedback_tab.select(fb_refresh, fb_inputs, fb_outputs, api_visibility="private")
        system_tab.select(sys_refresh, sys_inputs, sys_outputs, api_visibility="private")
        if gallery.refresh is not None:  # the Gallery fills itself when opened, no Search click needed
            gallery_tab.select(*gallery.refresh, api_visibility="private")
        if gallery.timer is not None:  # new outputs appear by themselves while the Gallery is open
            tabs.select(tab_gallery.timer_switch, None, gallery.timer, queue=False, api_visibility="private")
        _wire_send_to(ctx)
        _wire_open_in_tab(ctx, gallery)
        _api_endpoints(ctx)
        add_http_api(ctx)  # typed /run_<name> endpoints for remote programs (files in and out)
        demo.load(ctx.first_paint, None, None, queue=False, api_visibility="private")
        # The config Gradio builds as this block ends serves its next build there too (config_once).
        keep.enter_context(reuse_component_config(demo))
    demo.studio_context = ctx  # type: ignore[attr-defined]
    return demo


def _tab_updates(ctx: UIContext, name: str) -> dict[Any, Any]:
    tab_id, sub_id = ctx.tab_of[name]
    out: dict[Any, Any] = {ctx.tabs: gr.Tabs(selected=tab_id)}
    if sub_id is not None:
        out[ctx.sub_tabs[tab_id]] = gr.Tabs(selected=sub_id)
    return out


def _opened_with(panel: Any, state: dict[str, Any]) -> dict[Any, Any]:
    """Updates that build (if need be) and show a lazily built panel with `state` ({"params",
    maybe "seed"}); its tab is switched to by `_tab_updates`, its drawer (if any) opened here."""
    import time

    out = {panel.pending: {**state, "n": time.monotonic_ns()},  # a new value each time: its change fires
           panel.opened: True}
    if panel.drawer is not None:
        out[panel.drawer] = gr.Accordion(open=True)
    return out


def _lazy_outputs(panels: list[Any]) -> list[Any]:
    return [c for p in panels if p.lazy and p.available
            for c in (p.pending, p.opened, *([p.drawer] if p.drawer is not None else []))]


def _wire_send_to(ctx: UIContext) -> None:
    """Every panel's "Send to" lists every upload field of every generator; kinds are checked on send.

    A panel in a drawer not yet opened (`GeneratorPanel.lazy`) has no widgets to send to: the
    file goes to its `pending` state and the drawer opens, building the panel with it.
    """
    targets: dict[str, Any] = {}
    for p in ctx.panels.values():
        for gen, field, comp in p.file_targets():
            targets[f"{gen}:{field}"] = comp if not p.lazy else p
    if not targets:
        return
    choices = []
    for key in targets:
        gen, field = key.split(":", 1)
        title = (ctx.info.get(gen) or {}).get("title") or gen
        choices.append((f"{title} → {label_of(field)}", key))
    tab_outputs = [ctx.tabs, *ctx.sub_tabs.values()]
    outputs = [*(c for c in targets.values() if not isinstance(c, GeneratorPanel)),
               *_lazy_outputs(list(ctx.panels.values())), *tab_outputs]

    def make_send(status: Any) -> Any:
        def send(current: dict | None, target: str | None) -> dict[Any, Any]:
            # A refusal is a sentence beside the Send button: raising would put "Error" badges
            # on every upload field this event writes to, in every tab.
            def refuse(message: str) -> dict[Any, Any]:
                return {status: f"⚠️ {message}"}

            if not current:
                return refuse("Generate something first (or pick the A/B winner), then send it on.")
            if not target or target not in targets:
                return refuse("Pick where to send it.")
            gen, field = target.split(":", 1)
            kind = ctx.panels[gen].widget_of(field) or "file"
            suffixes = KIND_SUFFIXES.get(kind)
            paths = [p for p in current["paths"] if suffixes is None or Path(p).suffix.lower() in suffixes]
            if not paths:
                return refuse(f"This output has no {kind} file to send to {gen}.")
            into = targets[target]
            filled = _opened_with(into, {"params": {field: paths[0]}}) if isinstance(into, GeneratorPanel) \
                else {into: paths[0]}
            return {**filled, status: f"Sent to {label_of(field)} of {gen}.", **_tab_updates(ctx, gen)}
        return send

    def wire(view: Any) -> Any:
        """Wire one panel's Send (a built panel, or a lazily built one's PanelView in its render)."""
        view.send_target.choices = choices  # type: ignore[union-attr]
        send = make_send(view.send_status)
        view.send_button.click(send, [view.current, view.send_target],  # type: ignore[union-attr]
                               [*outputs, view.send_status], api_visibility="private")
        return send

    ctx.handlers["wire_send_button"] = wire
    for panel in ctx.panels.values():
        if panel.available and not panel.lazy:
            ctx.handlers["send"] = wire(panel)


def _wire_open_in_tab(ctx: UIContext, gallery: tab_gallery.GalleryHandles) -> None:
    """The Gallery's "Open in its tab": fill that generator's form and seed, then switch to it."""
    panels = [p for p in ctx.panels.values() if p.available]
    outputs: list[Any] = [gallery.status, ctx.tabs, *ctx.sub_tabs.values(), *_lazy_outputs(panels)]
    for p in panels:
        if not p.lazy:
            outputs += [*p.form.components, p.seed]  # type: ignore[union-attr]
    def open_in_tab(state: dict | None) -> dict[Any, Any]:
        if not state:
            raise gr.Error("Pick an output or drop a studio file first.")
        panel = ctx.panels.get(state["generator"])
        if panel is None or not panel.available:
            raise gr.Error(f"The {state['generator']} generator is not available in this studio.")
        params = {k: v for k, v in state["params"].items()
                  if not (panel.is_file_field(k) and not _inside(ctx, v))}
        if panel.lazy:  # its drawer opens with these settings (built now if this session never opened it)
            out = _opened_with(panel, {"params": params, "seed": state.get("seed")})
        else:
            out = dict(zip(panel.form.components, panel.form.to_values(params)))  # type: ignore[union-attr]
            out[panel.seed] = "" if state.get("seed") is None else str(state["seed"])
        out[gallery.status] = f"Loaded into the {state['generator']} tab."
        out.update(_tab_updates(ctx, state["generator"]))
        return out

    ctx.handlers["open_in_tab"] = open_in_tab
    gallery.open_button.click(open_in_tab, gallery.restored, outputs, api_visibility="private")


def _inside(ctx: UIContext, value: Any) -> bool:
    """A file the gate (studio.gate) would let a browser use: an output, upload or input folder file."""
    from generators.base import InvalidInput

    try:
        ctx.studio.gate.confine(value, "file")
    except InvalidInput:
        return False
    return True


def _api_endpoints(ctx: UIContext) -> None:
    """Studio-wide HTTP API endpoints (each generator has its own `generate_<name>`)."""
    def list_generators() -> list:
        """Every generator: name, title, description, whether it can run and why not."""
        return ctx.studio.generators()

    def describe(name: str) -> dict:
        """A generator's title, devices and the JSON schema of its parameters."""
        try:
            return ctx.studio.describe(name)
        except Exception as exc:  # noqa: BLE001
            raise gr.Error(str(exc)) from None

    def rate(path: str, stars: int | None = None, thumb: int | None = None, tags: str = "",
             comment: str = "", request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """Rate a studio output (path inside the outputs folder): stars 1-5, thumb 1/-1, tags, comment."""
        from generators.base import InvalidInput

        try:
            real = ctx.studio.assets.resolve(path)
            viewer = ctx.viewer(request)
            if viewer is not None and ctx.studio.assets.owner_of(real) != viewer:
                raise InvalidInput(f"{path!r} is not one of your outputs")  # settings.shared is off
            record = {**ctx.studio.restore(real)["record"], "path": str(real)}
            uid = ctx.feedback.rate(record, stars=stars, thumb=thumb, tags=tags, comment=comment,
                                    user=ctx.user(request), session=ctx.session(request))
        except InvalidInput as exc:
            raise gr.Error(str(exc)) from None
        return {"saved": True, "uid": uid}

    def feedback_summary(request: gr.Request = None) -> dict:  # type: ignore[assignment]
        """Counts, per-variant averages with confidence intervals, and the A/B ranking (the
        caller's own feedback unless the studio is shared)."""
        viewer = ctx.viewer(request)
        return {"counts": ctx.feedback.count(user=viewer), "summary": ctx.feedback.summary(user=viewer),
                "ranking": ctx.feedback.ranking(user=viewer)}

    gr.api(list_generators, api_name="generators", queue=False)
    gr.api(describe, api_name="describe", queue=False)
    gr.api(rate, api_name="rate")
    gr.api(feedback_summary, api_name="feedback_summary")


# --------------------------------------------------------------------------------------------
# Launching.
# --------------------------------------------------------------------------------------------
def launch(studio: Any, host: str | None = None, port: int | None = None, share: bool = False,
           auth: list[tuple[str, str]] | None = None, insecure: bool = False, *, block: bool = True,
           share_timeout: float = DEFAULT_SHARE_TIMEOUT_S, share_server: str | None = None,
           quiet: bool = False, feedback: Any = None) -> gr.Blocks:
    """Build and serve the app. With `block=False` return the running Blocks (tests, notebooks)."""
    settings = studio.settings
    host = host or settings.host
    port = settings.port if port is None else port
    check_exposure(host, share, auth, insecure)
    home = Path(settings.home).resolve()
    outputs = home / "outputs"
    outputs.mkdir(parents=True, exist_ok=True)
    uploads = home / "cache" / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(uploads)  # uploads stay in the studio home, not /tmp
    demo = create_app(studio, feedback=feedback)
    demo.studio_context.upload_dir = str(uploads)  # type: ignore[attr-defined]
    studio.gate.add_root(uploads)  # browser uploads are files remote callers may name
    from studio.uploads import UploadSweeper

    # Files Gradio copied there while building the page (style swatches) are the page's own,
    # not uploads: the sweep keeps them however old their copies are.
    static = frozenset(str(Path(p).resolve()) for files in demo.temp_file_sets
                       if files is not demo.upload_file_set for p in files)
    demo.studio_upload_sweeper = UploadSweeper(  # type: ignore[attr-defined]  # age and size limits
        uploads, max_age_s=float(getattr(settings, "upload_max_age_h", 24.0)) * 3600,
        max_total_bytes=int(getattr(settings, "upload_max_total_mb", 2048)) << 20, keep=static)
    blocked = [str(home / name) for name in ("feedback.db", "feedback.db-wal", "feedback.db-shm",
                                              "feedback.db.writelock", "exports", "studio.toml")]
    blocked.append(str(outputs / "index.jsonl"))  # every output's settings and owner: never served
    try:
        # Every queued run holds a worker thread while it waits on the session's queue; leave room
        # for cancel / rating events beside a full queue.
        max_threads = max(40, int(settings.max_queue) + int(getattr(settings, "workers", 1)) + 16)
        from starlette.middleware import Middleware

        from studio.ui import lazy_session
        from studio.ui.config_cache import ConfigCache
        from studio.ui.guard import StudioGuard
        from studio.ui.session_warmup import SessionWarmup

        lazy_session.install()  # a new session: 0.0004x the CPU, 0.1 MB not 2.3 (bench_concurrency --session-state)

        extra_hosts = [h for h in getattr(settings, "allowed_hosts", ())]
        if share:  # the tunnel forwards requests with the share link's host name
            tunnel = (share_server or "gradio.live").rsplit(":", 1)[0]
            extra_hosts += [tunnel, f"*.{tunnel}"]
        # An exposed studio (0.0.0.0 with auth) checks Host only when the operator names its hosts.
        guard = Middleware(StudioGuard, allowed_hosts=[*extra_hosts, host],
                           check_host=is_loopback(host) or bool(getattr(settings, "allowed_hosts", ())),
                           login_attempts=int(getattr(settings, "login_attempts", 10)),
                           max_body_bytes=(int(settings.max_upload_mb) + 1) << 20)
        keep_component_config(demo)  # launch() builds it twice more (studio.ui.config_once)
        demo.launch(server_name=host, server_port=port, auth=auth or None, share=False, max_threads=max_threads,
                    # Host/Origin/CSRF, browser cookie: studio.ui.guard; then many clients at once:
                    # new sessions built off the event loop, /config built once (session_warmup, config_cache)
                    app_kwargs={"middleware": [guard, Middleware(SessionWarmup), Middleware(ConfigCache)]},
                    prevent_thread_lock=True, allowed_paths=[str(outputs)], blocked_paths=blocked,
                    max_file_size=f"{int(settings.max_upload_mb)}mb", enable_monitoring=False,
                    ssr_mode=False, mcp_server=False, pwa=False, run_history=False, quiet=True,
                    show_error=True, css=CSS, footer_links=["api", "settings"],
                    # Gradio's self-check (one HEAD with a 3 s timeout, then "localhost is not
                    # accessible") failed 6 of 10 starts on a busy 2-core machine: the first page
                    # request builds the whole config. Binding errors still raise OSError above.
                    # Gradio 6.31 has no public switch for it (`_frontend` gates only that check).
                    _frontend=False,
                    auth_message="Studio: sign in with the user and password you gave --auth.")
        release_component_config(demo)
    except OSError as exc:
        release_component_config(demo)
        raise LaunchError(f"cannot listen on {host}:{port}: {exc}") from None
    from studio.ui.guard import put_first

    put_first(demo.server_app)  # in front of Gradio's CORS layer, whose headers rode on refusals
    if not quiet:  # our own words instead of Gradio's "set share=True in launch()"
        where = "this machine only" if is_loopback(host) else "reachable from other machines"
        print(f"* Studio running at {demo.local_url} ({where}; Ctrl-C to stop)", flush=True)
    if share:
        try:
            url = open_share_link(demo, timeout=share_timeout, server=share_server)
        except LaunchError:
            demo.close()
            raise
        print(f"* Public share link (password protected): {url}", flush=True)
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo


def _open_tunnel(demo: gr.Blocks, server: str | None) -> str:
    from gradio import networking

    if server:
        probe_share_server(server, timeout=5)
    return networking.setup_tunnel(local_host=demo.server_name, local_port=demo.server_port,
                                   share_token=demo.share_token, share_server_address=server,
                                   share_server_tls_certificate=None)


def open_share_link(demo: gr.Blocks, timeout: float = DEFAULT_SHARE_TIMEOUT_S, server: str | None = None) -> str:
    """Ask Gradio's tunnel for a public link, giving up after `timeout` seconds with a clear reason."""
    server = server or os.environ.get("GRADIO_SHARE_SERVER_ADDRESS") or None
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["url"] = _open_tunnel(demo, server)
        except BaseException as exc:  # noqa: BLE001 - reported below
            box["error"] = exc

    thread = threading.Thread(target=work, name="studio-share-link", daemon=True)
    thread.start()
    thread.join(timeout)
    advice = ("The studio did not start. Run it without --share (it is then only on this machine), "
              "or check the internet connection.")
    if thread.is_alive():
        raise LaunchError(f"could not create a share link within {timeout:.0f} s: the Gradio tunnel server "
                          f"did not answer (is this machine offline?). {advice}")
    if "error" in box:
        exc = box["error"]
        reason = str(exc) or type(exc).__name__
        if exc.__cause__ is not None:
            reason += f" ({exc.__cause__})"
        raise LaunchError(f"could not create a share link: {reason}. {advice}")
    url = str(box["url"]).replace("http://", "https://", 1) if not server else str(box["url"])
    demo.share_url = url
    demo.share = True
    return url
