"""The taste panel (inside the Feedback tab): what the studio has learned from this creator's ratings.

Per generator: how many ratings and votes, whether best-of-N reranks yet (and why not), the
model's held-out accuracy with its interval, the outputs it likes and dislikes most, a plot of
the model's utility against the creator's own ratings, and a reset (ratings stay stored; the
model stops using them). Everything comes from `studio.taste` through the Studio; the user is
the request's user, so a creator only ever sees their own taste.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.context import UIContext

TASTE_GENERATORS = ("music", "breeder", "sketch", "story", "gan", "image", "style")
LEARNED_HEADERS = ["", "output", "model utility", "your rating (stars)"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def _stars(score: float | None) -> str:
    return "" if score is None else f"{score + 3:.1f}"


def build(ctx: UIContext) -> None:
    names = [g for g in TASTE_GENERATORS if g in ctx.info] or sorted(ctx.info)
    with gr.Accordion("Your taste (what best-of-N learns from your ratings)", open=False, elem_id="taste-panel"):
        with gr.Row():
            generator = gr.Dropdown(names, value=names[0] if names else None, label="Generator",
                                    elem_id="taste-generator")
            refresh = gr.Button("Refresh taste", elem_id="taste-refresh")
            reset = gr.Button("Reset my taste for this generator", variant="stop", elem_id="taste-reset")
        status = gr.Markdown("", elem_id="taste-status")
        learned = gr.Dataframe(headers=LEARNED_HEADERS, interactive=False, elem_id="taste-learned")
        liked = gr.Gallery(label="Liked most by the model", columns=5, height=180, elem_id="taste-liked")
        plot = gr.ScatterPlot(x="your rating", y="model utility", title="Model utility against your ratings",
                              elem_id="taste-plot")

    def panel(gen: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        import pandas as pd

        empty = pd.DataFrame(columns=["your rating", "model utility"])
        if not gen:
            return "Pick a generator.", None, [], empty
        taste = ctx.studio.taste
        user = ctx.user(request)
        st = taste.status(user, gen)
        lines = [f"**{gen}** · {st['n_ratings']} rating(s) · {st['n_votes']} A/B vote(s) · "
                 f"{st['n_rated_outputs']} rated output(s)",
                 f"Best-of-N reranking: **{'on' if st['ready'] else 'off'}** — {st['reason']}"]
        if st.get("cv_accuracy") is not None:
            lo, hi = st["cv_ci"]
            lines.append(f"Held-out accuracy (which of two outputs you rated higher): **{st['cv_accuracy']:.0%}** "
                         f"(95% CI {lo:.0%}–{hi:.0%}, {st['cv_pairs']} held-out pairs; chance is 50%) · "
                         f"model `{st['version']}`")
        if not st["ready"] or not st.get("version"):
            return "\n\n".join(lines), None, [], empty
        model = taste.model(user, gen)
        top = model.learned(k=5)
        rows = [["liked", Path(r["path"]).name, f"{r['utility']:+.2f}", _stars(r["rating_score"])] for r in top["liked"]]
        rows += [["disliked", Path(r["path"]).name, f"{r['utility']:+.2f}", _stars(r["rating_score"])]
                 for r in top["disliked"]]
        images = [r["path"] for r in top["liked"] if r["path"].lower().endswith(IMAGE_SUFFIXES) and Path(r["path"]).is_file()]
        utility = model.Z @ model.coef
        frame = pd.DataFrame([{"your rating": s + 3, "model utility": float(u)}
                              for s, u in zip(model.item_scores, utility) if s is not None])
        return "\n\n".join(lines), rows, images, frame

    def do_reset(gen: str | None, request: gr.Request | None = None) -> tuple[Any, ...]:
        if gen:
            ctx.studio.taste.reset(ctx.user(request), gen)
            gr.Info(f"Your taste for {gen} was reset; your ratings stay stored but are no longer used.")
        return panel(gen, request)

    outputs = [status, learned, liked, plot]
    refresh.click(panel, generator, outputs, api_visibility="private")
    generator.change(panel, generator, outputs, api_visibility="private")
    reset.click(do_reset, generator, outputs, api_visibility="private")
    ctx.handlers.update(taste_panel=panel, taste_reset=do_reset)
