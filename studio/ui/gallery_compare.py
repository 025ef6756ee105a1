"""The Gallery's compare view: any two jobs side by side, with what differs between them.

Pictures, players and scores of job A and job B sit in two columns (`OutputView`); above them a
table lists the settings that differ (generator, seed, each parameter) and, when both jobs wrote
text (a screenplay, an ABC tune), a line-by-line diff of it (difflib, escaped).
"""
from __future__ import annotations

import difflib
import html
import json
from pathlib import Path
from typing import Any

import gradio as gr

from studio.ui.form import TEXT_SUFFIXES, OutputView, _read_text


class CompareView:
    def __init__(self) -> None:
        gr.Markdown("### Compare two jobs\nTick the box, then click two cards (first is **A**, second **B**), "
                    "or choose them in the lists.")
        with gr.Row():
            self.mode = gr.Checkbox(label="Clicks on cards pick A and B", value=False,
                                    elem_id="gallery-compare-mode")
            self.a = gr.Dropdown(label="A", choices=[], elem_id="gallery-compare-a")
            self.b = gr.Dropdown(label="B", choices=[], elem_id="gallery-compare-b")
        self.diff = gr.HTML("", elem_id="gallery-compare-diff")
        with gr.Row(equal_height=False):
            with gr.Column():
                self.view_a = OutputView(prefix="gallery-cmp-a", label="A", provenance=False)
            with gr.Column():
                self.view_b = OutputView(prefix="gallery-cmp-b", label="B", provenance=False)

    @property
    def outputs(self) -> list[Any]:
        return [self.diff, *self.view_a.components, *self.view_b.components]

    def clear(self) -> list[Any]:
        return ["", *self.view_a.clear(), *self.view_b.clear()]

    def show(self, a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[Any]:
        """`a`, `b`: {"path", "files", "generator", "params", "seed"} of each job (or None)."""
        out = [diff_html(a, b) if a and b else ""]
        out += self.view_a.show(a["files"]) if a else self.view_a.clear()
        out += self.view_b.show(b["files"]) if b else self.view_b.clear()
        return out


def _settings(job: dict[str, Any]) -> dict[str, str]:
    flat = {"generator": str(job.get("generator")), "seed": str(job.get("seed"))}
    for key, value in sorted((job.get("params") or {}).items()):
        flat[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return flat


def _text(job: dict[str, Any]) -> list[str]:
    texts = [Path(p) for p in job["files"] if Path(p).suffix.lower() in TEXT_SUFFIXES]
    return "\n".join(_read_text(p) for p in texts).splitlines()


def diff_html(a: dict[str, Any], b: dict[str, Any]) -> str:
    """What differs between jobs A and B: a settings table, then a text diff when both wrote text."""
    sa, sb = _settings(a), _settings(b)
    rows = [(k, sa.get(k, "—"), sb.get(k, "—")) for k in dict.fromkeys([*sa, *sb]) if sa.get(k) != sb.get(k)]
    parts = [f"<p><b>A</b> {html.escape(Path(a['path']).name)} · <b>B</b> {html.escape(Path(b['path']).name)}</p>"]
    if rows:
        cells = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_short(x))}</td>"
                        f"<td>{html.escape(_short(y))}</td></tr>" for k, x, y in rows)
        parts.append('<table class="studio-compare-settings"><thead><tr><th>setting</th><th>A</th><th>B</th>'
                     f"</tr></thead><tbody>{cells}</tbody></table>")
    else:
        parts.append("<p>Same settings.</p>")
    ta, tb = _text(a), _text(b)
    if ta and tb:
        if ta == tb:
            parts.append("<p>Same text.</p>")
        else:
            table = difflib.HtmlDiff(wrapcolumn=60).make_table(ta, tb, "A", "B", context=True, numlines=2)
            parts.append(f'<div class="studio-compare-text" style="overflow-x:auto">{table}</div>')
    return "".join(parts)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"
