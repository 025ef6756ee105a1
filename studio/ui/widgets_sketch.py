"""The sketch canvas: the creator's pen strokes, drawn in the browser, as stroke JSON.

A small `<canvas>` inside a `gr.HTML` block; its script (run by Gradio's `js_on_load`, no
external script, works offline) records pointer strokes (mouse, pen or touch: pen down starts a
stroke, pen up ends it) with Undo and Clear, and writes them as JSON into the field's textbox
below it, so the ordinary submit path sends them:

    {"strokes": [[[x, y], ...], ...], "width": W, "height": H}   (canvas pixels, y down)

the format `generators.sketch_strokes.parse_drawing` reads. The textbox stays editable (paste a
drawing, e.g. a sketch output's .json); whatever it holds is redrawn on the canvas when it
changes, including when the Gallery restores an output's settings.
"""
from __future__ import annotations

import html
import itertools
from typing import Any

import gradio as gr

from studio.ui.form import Widget

CANVAS_PX = 384  # canvas side in canvas pixels (stroke coordinates); the page scales it to fit
_ids = itertools.count(1)

CSS = """
.studio-sketch { display: flex; flex-direction: column; gap: 6px; }
.studio-sketch canvas { width: min(100%, 384px); aspect-ratio: 1; background: #fff; border: 1px solid #9ca3af;
  border-radius: 6px; touch-action: none; cursor: crosshair; }
.studio-sketch .studio-sketch-bar { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.studio-sketch button { padding: 2px 10px; border: 1px solid #9ca3af; border-radius: 4px; background: #f3f4f6;
  color: #111827; cursor: pointer; }
.studio-sketch .studio-sketch-status { font-size: 0.85em; opacity: 0.8; }
"""

# `element` is this HTML block's root (set by Gradio). Plain string concatenation only: no `${`.
JS = r"""
const root = element.querySelector('.studio-sketch');
const canvas = root.querySelector('canvas');
const status = root.querySelector('.studio-sketch-status');
const pen = canvas.getContext('2d');
let strokes = [];   // [[[x, y], ...], ...] in canvas pixels
let current = null; // the stroke being drawn while the pen is down
let lastText = '';

function textbox() {
  return document.querySelector('#' + CSS.escape(root.dataset.target) + ' textarea');
}
function round1(v) { return Math.round(v * 10) / 10; }
function point(e) {
  const r = canvas.getBoundingClientRect();
  return [round1((e.clientX - r.left) * canvas.width / r.width),
          round1((e.clientY - r.top) * canvas.height / r.height)];
}
function redraw() {
  pen.clearRect(0, 0, canvas.width, canvas.height);
  pen.lineWidth = 3; pen.lineCap = 'round'; pen.lineJoin = 'round'; pen.strokeStyle = '#111';
  pen.fillStyle = '#111';
  for (const s of strokes) {
    if (s.length === 1) { pen.beginPath(); pen.arc(s[0][0], s[0][1], 1.5, 0, 2 * Math.PI); pen.fill(); continue; }
    pen.beginPath();
    s.forEach(function (p, i) { if (i === 0) pen.moveTo(p[0], p[1]); else pen.lineTo(p[0], p[1]); });
    pen.stroke();
  }
  const points = strokes.reduce(function (n, s) { return n + s.length; }, 0);
  status.textContent = strokes.length ? strokes.length + ' stroke(s), ' + points + ' point(s)' : 'empty canvas';
}
function write() {
  const text = strokes.length ? JSON.stringify({strokes: strokes, width: canvas.width, height: canvas.height}) : '';
  lastText = text;
  const box = textbox();
  if (!box) { status.textContent = 'cannot find the strokes box'; return; }
  box.value = text;
  box.dispatchEvent(new Event('input', {bubbles: true}));
}
function load(text) {
  text = text || '';
  if (text === lastText) return;
  lastText = text;
  if (!text.trim()) { strokes = []; redraw(); return; }
  try {
    let data = JSON.parse(text);
    if (data && !Array.isArray(data) && Array.isArray(data.drawings) && data.drawings.length === 1) data = data.drawings[0];
    const list = Array.isArray(data) ? data : (data && data.strokes);
    if (!Array.isArray(list)) throw new Error('no strokes');
    let sx = 1, sy = 1;
    if (data && !Array.isArray(data) && data.width > 0 && data.height > 0) {
      const k = Math.min(canvas.width / data.width, canvas.height / data.height);
      sx = k; sy = k;
    }
    strokes = list.filter(function (s) { return Array.isArray(s) && s.length; }).map(function (s) {
      return s.map(function (p) { return [round1(Number(p[0]) * sx), round1(Number(p[1]) * sy)]; });
    });
    redraw();
  } catch (err) {
    status.textContent = 'the strokes box does not hold stroke JSON; the canvas shows the last drawing';
  }
}
canvas.addEventListener('pointerdown', function (e) {
  if (e.pointerType === 'mouse' && e.button !== 0) return;
  e.preventDefault();
  canvas.setPointerCapture(e.pointerId);
  current = [point(e)];
  strokes.push(current);
  redraw();
});
canvas.addEventListener('pointermove', function (e) {
  if (!current) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of (events.length ? events : [e])) {
    const p = point(ev), q = current[current.length - 1];
    if (Math.abs(p[0] - q[0]) + Math.abs(p[1] - q[1]) >= 1) current.push(p);
  }
  redraw();
});
function penUp() { if (!current) return; current = null; write(); redraw(); }
canvas.addEventListener('pointerup', penUp);
canvas.addEventListener('pointercancel', penUp);
root.querySelector('.studio-sketch-undo').addEventListener('click', function () {
  if (current) return; strokes.pop(); write(); redraw();
});
root.querySelector('.studio-sketch-clear').addEventListener('click', function () {
  current = null; strokes = []; write(); redraw();
});
root.studioSketch = {load: load};
const box = textbox();
if (box && box.value) load(box.value); else redraw();
"""

# Runs in the browser whenever the textbox changes (typing, pasting, a restore from the Gallery).
CHANGE_JS = """(text) => {
  const el = document.querySelector('#%s-canvas .studio-sketch');
  if (el && el.studioSketch) el.studioSketch.load(text);
  return [];
}"""


def canvas_html(target_id: str, label: str) -> str:
    """The canvas block's markup; `target_id` is the elem_id of the textbox it writes to."""
    return (f'<div class="studio-sketch" data-target="{html.escape(target_id)}">'
            f'<div class="studio-sketch-bar"><strong>{html.escape(label)}</strong>'
            f'<span>draw with the mouse, a pen or a finger</span></div>'
            f'<canvas width="{CANVAS_PX}" height="{CANVAS_PX}" aria-label="{html.escape(label)} canvas"></canvas>'
            f'<div class="studio-sketch-bar"><button type="button" class="studio-sketch-undo">Undo stroke</button>'
            f'<button type="button" class="studio-sketch-clear">Clear</button>'
            f'<span class="studio-sketch-status">empty canvas</span></div></div>')


def sketch_widget(name: str, schema: dict[str, Any], label: str, info: str, elem_id: str | None) -> Widget:
    """A drawing canvas writing stroke JSON into the field's textbox (built in the current layout)."""
    target = elem_id or f"sketch-field-{next(_ids)}"
    default = schema.get("default")
    with gr.Group():
        gr.HTML(html_template=canvas_html(target, label), css_template=CSS, js_on_load=JS,
                elem_id=f"{target}-canvas", padding=True)
        box = gr.Textbox(value=default if isinstance(default, str) else "", lines=2, max_lines=6,
                         label=f"{label} (stroke JSON)",
                         info=f"{info} (drawn on the canvas above; you can also paste a drawing)".strip(),
                         elem_id=target)
    box.change(None, [box], None, js=CHANGE_JS % _css_id(target), queue=False, api_visibility="private")
    return Widget(box, kind="text")


def _css_id(elem_id: str) -> str:
    """The elem_id as a CSS id selector body (ids we make are word characters and dashes)."""
    if not all(c.isalnum() or c in "-_" for c in elem_id):
        raise ValueError(f"sketch canvas elem_id must be letters, digits, '-' or '_': {elem_id!r}")
    return elem_id

