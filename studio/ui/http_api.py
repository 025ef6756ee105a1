"""Typed HTTP endpoints for remote programs: `/run_<generator>`, one per available generator.

Each endpoint's inputs are built from the generator's parameter schema, one typed component
per parameter (a `gr.File` for every file parameter, so `gradio_client.handle_file(...)` sends
a local file; numbers, booleans, choices and text as such), plus `seed`. It reports progress
through `gr.Progress` (the client's `job.status().progress_data`) and returns the written
files as `gr.File` outputs, which a client on another machine downloads into its own folder,
plus a JSON summary with no server-local paths (file names and the portable record only).

Every run goes through `studio.api.Studio.submit`, the same entry as the UI, CLI and Python
API, so the studio's input gate applies here too; nothing here reads a file itself.

    from gradio_client import Client, handle_file
    client = Client("http://127.0.0.1:7860/")
    files, info = client.predict(image=handle_file("me.png"), consent=True, seed=7, api_name="/run_face")
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

import gradio as gr

from studio.ui.cancellable import call_cancellable
from studio.ui.form import FILE_WIDGETS

SEED_HELP = "an integer for a repeatable result; empty or -1 for a random seed (returned in the summary)"


def add_http_api(ctx: Any) -> None:
    """Register `/run_<name>` for every generator that can run here (call inside the Blocks)."""
    with gr.Column(visible=False):  # the components exist for the API only; nothing is shown
        for name, info in sorted(ctx.info.items()):
            if not info.get("available", True):
                continue
            schema = ctx.describe(name)
            if schema is None:
                continue
            _endpoint(ctx, name, schema)


def _component(key: str, prop: dict[str, Any]) -> tuple[gr.components.Component, Any]:
    """The typed input for one parameter, and the default a client may leave out."""
    label, info = key, (prop.get("description") or "")[:200]
    default = prop.get("default")
    if prop.get("x-widget") in FILE_WIDGETS:
        return gr.File(label=label, type="filepath", file_count="single"), None
    kind = prop.get("type")
    if isinstance(kind, list):  # Optional[...] shows as ["integer", "null"]
        kind = next((k for k in kind if k != "null"), None)
    if "enum" in prop:
        return gr.Dropdown(choices=list(prop["enum"]), value=default, label=label, info=info), default
    if kind == "boolean":
        return gr.Checkbox(value=bool(default), label=label, info=info), bool(default)
    if kind == "integer":
        return gr.Number(value=default, precision=0, label=label, info=info), default
    if kind == "number":
        return gr.Number(value=default, label=label, info=info), default
    if kind == "string":
        return gr.Textbox(value=default or "", label=label, info=info), default or ""
    return gr.JSON(value=default, label=label), default  # lists and objects


def _endpoint(ctx: Any, name: str, schema: dict[str, Any]) -> None:
    props: dict[str, dict[str, Any]] = schema.get("params", {}).get("properties", {})
    keys, inputs, defaults = [], [], []
    for key, prop in props.items():
        component, default = _component(key, prop)
        keys.append(key)
        inputs.append(component)
        defaults.append(default)
    seed_box = gr.Number(value=None, precision=0, label="seed", info=SEED_HELP)
    files_out = gr.File(label="files", file_count="multiple")
    summary_out = gr.JSON(label="summary")
    trigger = gr.Button(visible=False)
    file_keys = {k for k in keys if props[k].get("x-widget") in FILE_WIDGETS}

    async def run(progress: gr.Progress = gr.Progress(), request: gr.Request = None,  # type: ignore[assignment]
                  *values: Any) -> tuple[list[str], dict[str, Any]]:
        *param_values, seed = values
        params = {}
        for key, value in zip(keys, param_values):
            if value is None or (key in file_keys and value == ""):
                continue  # left out: the generator's default applies
            if isinstance(value, float) and props[key].get("type") == "integer" and value.is_integer():
                value = int(value)
            params[key] = value
        # a coroutine, so gradio_client's job.cancel() (or a dropped client) reaches the studio job
        return await call_cancellable(_run, ctx, name, params, seed, progress, request)

    # Gradio reads parameter names (the client's keyword arguments) and defaults from the
    # signature; the real function takes the values positionally after progress and request.
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("progress", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=gr.Progress()),
         inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                           annotation=gr.Request)]
        + [inspect.Parameter(k, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d) for k, d in zip(keys, defaults)]
        + [inspect.Parameter("seed", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)])
    run.__annotations__ = {"request": gr.Request}
    run.__doc__ = (f"Run the {name} generator with typed parameters (see /describe for ranges); files go "
                   f"in with handle_file(). Returns the written files (downloaded by the client) and a "
                   f"summary: seed, file names, provenance.")
    trigger.click(run, [*inputs, seed_box], [files_out, summary_out], api_name=f"run_{name}",
                  concurrency_id=ctx.device_group(name), concurrency_limit=ctx.concurrency_limit,
                  show_progress="full")


def _run(ctx: Any, name: str, params: dict[str, Any], seed: Any, progress: Callable[..., Any],
         request: Any) -> tuple[list[str], dict[str, Any]]:
    from generators.base import Cancelled, StudioError
    from studio.embed import portable

    if seed in (None, "", -1):
        seed = None
    else:
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise gr.Error(f"seed must be a whole number, got {seed!r}") from None
    try:  # remote input: the gate confines its file and model parameters like any browser's
        job = ctx.submit(name, params, seed, request)
    except StudioError as exc:  # InvalidInput (the gate's sentence), QueueFull, GeneratorUnavailable
        raise gr.Error(str(exc)) from None
    progress(0.0, desc="queued")
    for event in job.events():
        if event.kind == "progress":
            progress(max(0.0, min(1.0, float(event.fraction))), desc=event.message or name)
    try:
        result = job.result()
    except Cancelled as exc:
        raise gr.Error(f"Stopped: {exc}") from None
    except StudioError as exc:
        raise gr.Error(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - a generator bug: say so, keep the server up
        raise gr.Error(f"The {name} generator failed: {type(exc).__name__}: {exc}") from None
    paths = [str(p) for p in result.assets]
    summary = {"generator": name, "seed": result.seed, "job_id": job.id, "files": [Path(p).name for p in paths],
               "data": portable(_jsonable(result.data)),
               "provenance": portable({k: v for k, v in _jsonable(result.provenance).items() if k != "assets"})}
    return paths, summary


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
