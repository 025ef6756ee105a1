"""The Feedback tab: averages with confidence intervals, plots, A/B ranking, and exports.

Star means carry a 95% Student-t interval, thumbs-up shares a Wilson interval; A/B votes are
ranked with Bradley-Terry. Exports are written atomically into `<home>/exports/` (JSONL, CSV,
and `{prompt, chosen, rejected}` pairs for TRL's DPO trainer) and offered for download.
"""
from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.context import UIContext

SUMMARY_HEADERS = ["generator", "model", "preset", "ratings", "mean stars", "95% CI", "thumbs", "up share",
                   "95% CI (up)"]
RANK_HEADERS = ["rank", "variant", "strength (BT)", "wins", "votes"]


def _fmt(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f"{lo:.2f} – {hi:.2f}"


def build(ctx: UIContext) -> tuple[Any, list[Any], list[Any]]:
    """Build the tab; return (refresh function, its inputs, its outputs) for the app to re-run on select."""
    with gr.Row():
        refresh = gr.Button("Refresh", elem_id="feedback-refresh")
        generator = gr.Dropdown(["all", *sorted(ctx.info)], value="all", label="Generator for the ranking")
    counts = gr.Markdown("", elem_id="feedback-counts")
    summary = gr.Dataframe(headers=SUMMARY_HEADERS, interactive=False, elem_id="feedback-summary")
    plot = gr.BarPlot(x="variant", y="mean_stars", title="Mean stars per generator / model / preset",
                      y_lim=[0, 5], elem_id="feedback-plot")
    gr.Markdown("**A/B ranking** (Bradley-Terry from blind votes between different variants)")
    ranking = gr.Dataframe(headers=RANK_HEADERS, interactive=False, elem_id="feedback-ranking")
    with gr.Row():
        export_jsonl = gr.Button("Export JSONL")
        export_csv = gr.Button("Export CSV")
        export_dpo = gr.Button("Export DPO pairs")
    exported = gr.File(label="Export", interactive=False, elem_id="feedback-export")

    def refresh_all(gen: str, request: gr.Request = None) -> tuple[Any, ...]:  # type: ignore[assignment]
        import pandas as pd

        store = ctx.feedback
        viewer = ctx.viewer(request)  # a private studio shows each creator only their own feedback
        n = store.count(user=viewer)
        rows = store.summary(user=viewer)
        table = [[r["generator"], r["model"], r["preset"], r["n_stars"], _fmt(r["mean_stars"]),
                  _ci(r["stars_ci_low"], r["stars_ci_high"]), r["n_thumbs"], _fmt(r["thumbs_up_share"]),
                  _ci(r["up_ci_low"], r["up_ci_high"])] for r in rows]
        frame = pd.DataFrame([{"variant": "/".join(x for x in (r["generator"], r["model"], r["preset"]) if x),
                               "mean_stars": r["mean_stars"]} for r in rows if r["mean_stars"] is not None],
                             columns=["variant", "mean_stars"])
        ranks = store.ranking(generator=None if gen in (None, "", "all") else gen, user=viewer)
        rank_rows = [[r["rank"], r["variant"], f"{r['strength']:.3f}", r["wins"], r["games"]] for r in ranks]
        text = f"**{n['ratings']}** rating(s) · **{n['comparisons']}** A/B vote(s)"
        return text, table or None, frame, rank_rows or None

    outputs = [counts, summary, plot, ranking]
    refresh.click(refresh_all, generator, outputs, api_visibility="private")
    generator.change(refresh_all, generator, outputs, api_visibility="private")

    def exporter(kind: str):
        def run(request: gr.Request = None) -> str:  # type: ignore[assignment]
            home = Path(ctx.studio.settings.home)
            stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
            name = {"jsonl": f"feedback-{stamp}.jsonl", "csv": f"ratings-{stamp}.csv",
                    "dpo": f"dpo-pairs-{stamp}.jsonl"}[kind]
            target = home / "exports" / name
            write = {"jsonl": ctx.feedback.export_jsonl, "csv": ctx.feedback.export_csv,
                     "dpo": ctx.feedback.export_dpo}[kind]
            rows = write(target, user=ctx.viewer(request))  # private studio: only the caller's rows
            # Gradio serves only the outputs folder; hand the browser a copy from a temp folder.
            copy = Path(tempfile.mkdtemp(prefix="studio-export-")) / name
            shutil.copyfile(target, copy)
            gr.Info(f"Exported {rows} row(s) to {target}")
            return str(copy)
        return run

    export_jsonl.click(exporter("jsonl"), None, exported, api_visibility="private")
    export_csv.click(exporter("csv"), None, exported, api_visibility="private")
    export_dpo.click(exporter("dpo"), None, exported, api_visibility="private")
    ctx.handlers.update(export_jsonl=exporter("jsonl"), export_csv=exporter("csv"), export_dpo=exporter("dpo"))
    return refresh_all, [generator], outputs
