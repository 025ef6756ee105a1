"""Sketch-RNN: vector drawings as pen strokes (Ha & Eck, 2018, "A Neural Representation of Sketch
Drawings", arXiv:1704.03477).

A sequence-to-sequence VAE over stroke-5 pen data draws from scratch, completes the creator's
partial drawing (several candidates, batched), encodes a drawing and decodes variations of it,
and interpolates between two drawings in latent space. Embedded defaults are trained in
`training/sketch/` on KanjiVG characters (`kanji`). The Hershey-glyph model was retired (its
drawings were not letter-like; the numbers are in assets/sketch/TRAINING.md): `hershey` says so.
Outputs: one SVG per drawing, a PNG sheet, a pen-replay GIF, the raw strokes as JSON (which
the `strokes` field accepts back) and stroke-5 arrays as .npz.

This module imports no torch or numpy at import time; the network lives in
`generators.sketch_model`, formats in `generators.sketch_strokes`, drawing in `generators.sketch_render`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generators.base import (Generator, GeneratorUnavailable, InvalidInput, Output, Params, Progress, Result,
                             Rng, file_sha256, param)
from generators.resources import assets_dir

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    import torch

    from generators.sketch_model import SketchRNN as SketchNet
    from generators.sketch_render import SketchOut
    from generators.sketch_strokes import Drawing

ASSETS = assets_dir("sketch")
EMBEDDED = ("kanji",)
#: Embedded models that were withdrawn, with the reason a creator is told.
RETIRED = {"hershey": "the Hershey-glyph model was retired: it drew loops and scribbles, not letters (1 of 60 "
                      "held-out glyphs reconstructed; see assets/sketch/TRAINING.md). Use 'kanji', or train "
                      "your own with: python -m training.sketch.train --dataset hershey"}
MODES = ("draw", "complete", "vary", "interpolate")


@dataclass(frozen=True)
class SketchParams(Params):
    model: str = param("", "which model: 'kanji' (KanjiVG characters), a local .safetensors file or folder, "
                           "or a Hugging Face id; empty = kanji", load=True)
    mode: str = param("draw", "draw from scratch, complete your strokes, vary your drawing, or interpolate "
                              "between two drawings", choices=MODES)
    strokes: str = param("", "your drawing (complete, vary, interpolate): JSON list of strokes, each a list "
                             "of [x, y] canvas pixels, or {\"strokes\":..., \"width\":, \"height\":}",
                         widget="sketch", max_length=2_000_000)
    strokes_b: str = param("", "the second drawing, for interpolate", widget="sketch", max_length=2_000_000)
    candidates: int = param(4, "how many drawings at once (interpolate: steps, both ends included)",
                            min=1, max=16)
    temperature: float = param(0.4, "randomness of the pen: low is tidy, high is wild", min=0.05, max=1.5)
    max_points: int = param(150, "most points the model may add to each drawing", min=5, max=500)
    simplify: float = param(2.0, "Ramer-Douglas-Peucker tolerance for your strokes, in the model's "
                                 "255-unit frame (0 = use every point)", min=0.0, max=20.0)
    size: int = param(512, "PNG side in pixels, per drawing", min=64, max=2048)
    stroke_width: float = param(4.0, "line width in the 255-unit frame", min=0.5, max=20.0)
    animate: bool = param(True, "also write a GIF that replays the pen")

    def validate(self) -> None:
        super().validate()
        if self.mode == "interpolate" and self.candidates < 2:
            raise InvalidInput("interpolate needs at least 2 steps (candidates >= 2)")


class SketchRNN(Generator):
    name = "sketch"
    Params = SketchParams
    title = "Sketch"
    description = ("Sketch-RNN (Ha & Eck, 2018): draws, completes, varies and interpolates pen drawings; "
                   "trained on KanjiVG characters.")
    devices = ("cpu",)  # a 0.6M-parameter LSTM stepping point by point: the CPU is faster than a launch
    cpu_threads = 1

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        absent = [f"{ref}.safetensors" for ref in EMBEDDED if not (ASSETS / f"{ref}.safetensors").is_file()]
        return f"embedded sketch weights missing from {ASSETS}: {', '.join(absent)}" if absent else None

    def __init__(self, model: str = "") -> None:
        self.model_ref = model.strip()
        self._net: SketchNet | None = None
        self._debug_config: dict[str, Any] | None = None

    # ---- loading -------------------------------------------------------------------------
    def _weights_path(self) -> Path:
        ref = self.model_ref or "kanji"
        if ref in EMBEDDED:
            path = ASSETS / f"{ref}.safetensors"
            if not path.exists():
                raise GeneratorUnavailable(f"the embedded {ref} model is missing ({path}); "
                                           f"train it with: python -m training.sketch.train --dataset {ref}")
            return path
        path = Path(os.path.expanduser(ref))
        if ref in RETIRED and not path.exists():
            raise GeneratorUnavailable(RETIRED[ref])
        if path.is_file():
            return path
        if path.is_dir():
            preferred = path / "model.safetensors"
            found = [preferred] if preferred.exists() else sorted(path.glob("*.safetensors"))
            if len(found) != 1:
                raise GeneratorUnavailable(f"{ref} must hold one Sketch-RNN .safetensors file "
                                           f"(or model.safetensors), found {len(found)}")
            return found[0]
        from generators.hub import is_hub_id

        if is_hub_id(ref):
            return self._from_hub(ref)
        raise GeneratorUnavailable(f"no sketch model {ref!r}: use 'kanji', a local "
                                   ".safetensors file or folder, or a Hugging Face id")

    @staticmethod
    def _from_hub(repo_id: str) -> Path:
        """A Hugging Face repo holding model.safetensors (+ config.json) in this studio's format."""
        from generators import hub

        return hub.file(repo_id, "model.safetensors", also=["config.json"], what="sketch model")

    def load(self, device: "torch.device", dtype: "torch.dtype | None" = None) -> None:
        import torch

        # RDP for the creator's strokes; skimage imports lazily and slowly, so pay for it here.
        from skimage.measure import approximate_polygon  # noqa: F401

        from generators.sketch_model import SketchConfig, SketchRNN as Net, load_model

        if self._debug_config is not None:
            with torch.random.fork_rng(devices=[]):  # fixed tiny weights without touching global RNG state
                torch.manual_seed(0)
                self._net = Net(SketchConfig(**self._debug_config)).to(device).eval()
            self.weights_sha256 = None
            return
        path = self._weights_path()
        try:
            self._net = load_model(path, device)
        except Exception as exc:
            raise GeneratorUnavailable(f"could not load Sketch-RNN weights from {path.name}: {exc}") from None
        self.weights_sha256 = file_sha256(path)

    def unload(self) -> None:
        self._net = None

    def estimate_bytes(self) -> int:
        if self._debug_config is not None:
            return 1 << 20
        try:
            weights = self._weights_path().stat().st_size
        except (GeneratorUnavailable, OSError):
            weights = 4 << 20
        return weights + (32 << 20)  # weights plus a small working set (16 candidates x 500 steps)

    @classmethod
    def debug(cls) -> "SketchRNN":
        gen = cls()
        gen._debug_config = {"enc_hidden": 16, "dec_hidden": 32, "z_dim": 8, "n_mixtures": 3,
                             "max_len": 60, "scale_factor": 40.0, "dataset": "debug"}
        return gen

    @property
    def net(self) -> "SketchNet":
        if self._net is None:
            raise GeneratorUnavailable("the sketch model is not loaded; call load() first")
        return self._net

    # ---- generation ----------------------------------------------------------------------
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        if not isinstance(params, SketchParams):
            raise InvalidInput(f"sketch takes SketchParams, got {type(params).__name__}")
        drawings = self.draw(params, rng=rng, progress=progress)
        return self._result(drawings, params, rng, progress)

    def draw(self, params: SketchParams, *, rng: Rng, progress: Progress) -> list["SketchOut"]:
        """The drawings alone (strokes in canvas units), no files: what `generate` renders."""
        import torch

        from generators.sketch_strokes import parse_drawing

        params.validate()
        net = self.net
        cfg = net.cfg
        # Validate every input before model work.
        first = second = None
        if params.mode in ("complete", "vary", "interpolate"):
            first = parse_drawing(params.strokes, "strokes")
        if params.mode == "interpolate":
            second = parse_drawing(params.strokes_b, "strokes_b")
        if params.mode in ("vary", "interpolate") and cfg.z_dim == 0:
            raise InvalidInput(f"{params.mode} needs a model with a latent code; this one is decoder-only")
        progress(0.05, "reading strokes")
        prep_a = self._prepare(first, params) if first is not None else None
        prep_b = self._prepare(second, params) if second is not None else None

        device = net.fc_out.weight.device
        gen = rng.torch
        n = params.candidates
        z = None
        prefix = None
        with torch.inference_mode():
            if params.mode == "draw":
                if cfg.z_dim:
                    z = torch.randn(n, cfg.z_dim, generator=gen, device=device)
            elif params.mode == "complete":
                prefix = prep_a["stroke5"]
                if cfg.z_dim:
                    z = self._posterior(prep_a["stroke5"], n, gen, params.temperature)
            elif params.mode == "vary":
                z = self._posterior(prep_a["stroke5"], n, gen, params.temperature)
            else:
                mu_a = self._encode(prep_a["stroke5"])
                mu_b = self._encode(prep_b["stroke5"])
                t = torch.linspace(0.0, 1.0, n, device=device)
                z = slerp(mu_a, mu_b, t)
            progress(0.2, "drawing")
            new_rows = net.sample(z, batch=n, max_steps=params.max_points, temperature=params.temperature,
                                  generator=gen, prefix=prefix, shared_noise=params.mode == "interpolate")
        progress(0.7, "rendering")
        return [self._to_canvas(rows, params, first, prep_a) for rows in new_rows]

    def _prepare(self, drawing: "Drawing", params: SketchParams) -> dict[str, Any]:
        """Canvas strokes -> the model's space: fit the frame, simplify, stroke-5 in model units."""
        import numpy as np
        import torch

        from generators.sketch_strokes import simplify, strokes_to_stroke3

        cfg = self.net.cfg
        scale, centre = drawing.frame_transform()
        framed = [(s - centre) * scale for s in drawing.strokes]
        simple = simplify(framed, params.simplify)
        s3 = strokes_to_stroke3(simple)
        if len(s3) > cfg.max_len:
            raise InvalidInput(f"your drawing has {len(s3)} points after simplification; this model reads at "
                               f"most {cfg.max_len}. Raise 'simplify' or draw less")
        s5 = np.zeros((len(s3), 5), dtype=np.float32)
        s5[:, :2] = s3[:, :2] / cfg.scale_factor
        s5[:, 3] = s3[:, 2]
        s5[:, 2] = 1.0 - s3[:, 2]
        return {"scale": scale, "centre": centre, "stroke5": torch.from_numpy(s5), "points_in": len(s3)}

    def _encode(self, s5: "torch.Tensor") -> "torch.Tensor":
        import torch

        net = self.net
        x = s5.to(net.fc_out.weight.device)[None].clone()
        x[0, -1, 2:] = torch.tensor([0.0, 0.0, 1.0])  # the encoder saw finished drawings: end with p3
        mu, _ = net.encode(x, torch.tensor([len(s5)]))
        return mu[0]

    def _posterior(self, s5: "torch.Tensor", n: int, gen: "torch.Generator", temperature: float) -> "torch.Tensor":
        """n draws of z ~ q(z | drawing), the spread scaled by sqrt(temperature)."""
        import torch

        net = self.net
        x = s5.to(net.fc_out.weight.device)[None].clone()
        x[0, -1, 2:] = torch.tensor([0.0, 0.0, 1.0])
        mu, sigma_hat = net.encode(x, torch.tensor([len(s5)]))
        eps = torch.randn(n, net.cfg.z_dim, generator=gen, device=mu.device)
        return mu + torch.exp(sigma_hat / 2) * eps * temperature ** 0.5

    def _to_canvas(self, rows: "np.ndarray", params: SketchParams, first: "Drawing | None",
                   prep: dict[str, Any] | None) -> "SketchOut":
        """New stroke-5 rows (model units) -> a drawing in canvas units."""
        import numpy as np

        from generators.sketch_render import SketchOut
        from generators.sketch_strokes import FRAME, stroke3_to_strokes, stroke5_to_stroke3

        cfg = self.net.cfg
        s3 = stroke5_to_stroke3(rows).astype(np.float64)
        s3[:, :2] *= cfg.scale_factor  # frame units
        ended = bool(len(rows) and rows[-1, 4] > 0.5)
        info = {"new_points": int(len(s3)), "ended": ended}
        if first is None or prep is None:  # drawn from scratch: the frame is the canvas
            strokes = stroke3_to_strokes(s3, origin=(FRAME / 2, FRAME / 2))
            return SketchOut(strokes, FRAME, FRAME, info=info)
        scale, centre = prep["scale"], prep["centre"]
        s3[:, :2] /= scale
        if first.width and first.height:
            canvas = {"width": first.width, "height": first.height}
        else:  # no canvas size: the frame, mapped back around the drawing
            half = FRAME / (2 * scale)
            canvas = {"width": 2 * half, "height": 2 * half, "left": float(centre[0] - half),
                      "top": float(centre[1] - half), "canvas_known": False}
        if params.mode == "complete":
            tail = stroke3_to_strokes(s3, origin=first.strokes[-1][-1])
            return SketchOut([s.copy() for s in first.strokes] + tail, user_strokes=len(first.strokes),
                             info=info, **canvas)
        return SketchOut(stroke3_to_strokes(s3, origin=centre), info=info, **canvas)

    def _result(self, drawings: list["SketchOut"], params: SketchParams, rng: Rng, progress: Progress) -> Result:
        from generators.sketch_render import to_gif, to_json, to_npz, to_png, to_svg

        cfg = self.net.cfg
        model_name = "debug" if self._debug_config is not None else self.model_ref or "kanji"
        outputs = []
        for i, d in enumerate(drawings):
            # stroke widths are given in the 255-unit frame; a canvas unit is view/255 of that
            width = params.stroke_width * max(d.width, d.height) / 255.0
            outputs.append(Output(".svg", to_svg(d, width, f"Sketch-RNN {model_name} {params.mode} {i + 1}"),
                                  role="drawing", label=f"drawing {i + 1}"))
        progress(0.8, "rendering PNG")
        px_width = params.stroke_width * max(drawings[0].width, drawings[0].height) / 255.0
        a1111 = (f"Sketch-RNN {model_name}, mode: {params.mode}, temperature: {params.temperature}, "
                 f"candidates: {params.candidates}, Seed: {rng.seed}, Model hash: {(self.weights_sha256 or 'debug')[:10]}")
        outputs.append(Output(".png", to_png(drawings, params.size, px_width), role="image",
                              label="all drawings" if len(drawings) > 1 else "drawing",
                              extra={"parameters": a1111}))
        if params.animate:
            progress(0.9, "animating")
            outputs.append(Output(".gif", to_gif(drawings, min(params.size, 256), px_width), role="animation",
                                  label="pen replay"))
        meta = {"model": model_name, "mode": params.mode, "seed": rng.seed, "scale_factor": cfg.scale_factor}
        outputs.append(Output(".json", to_json(drawings, meta), role="strokes", label="strokes (JSON)"))
        outputs.append(Output(".npz", to_npz(drawings, cfg.scale_factor), role="stroke5", label="stroke-5 arrays"))
        progress(1.0, "done")
        data = {"mode": params.mode, "model": model_name,
                "drawings": [{"strokes": len(d.strokes), "user_strokes": d.user_strokes, **d.info} for d in drawings]}
        return Result(outputs=outputs, data=data)


def slerp(a: "torch.Tensor", b: "torch.Tensor", t: "torch.Tensor") -> "torch.Tensor":
    """Spherical interpolation between latent vectors a and b (paper sec. 4.2), for each t -> (len(t), z)."""
    import torch

    cos = torch.clamp((a / a.norm()) @ (b / b.norm()), -1.0, 1.0)
    omega = torch.arccos(cos)
    if float(omega) < 1e-4:  # nearly parallel: linear is the same thing
        return a[None] * (1 - t[:, None]) + b[None] * t[:, None]
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so)[:, None] * a[None] + (torch.sin(t * omega) / so)[:, None] * b[None]
