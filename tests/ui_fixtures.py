"""Small real generators and helper processes for the UI, launch and feedback tests.

`EchoWriter` writes a text file from its prompt (with progress steps, so cancel and progress
can be seen); `PixelPainter` paints a small random PNG from the job's seed; `PenPlotter` draws
the creator's canvas strokes (an `x-widget: "sketch"` field) as SVG and PNG. Both are real
`generators.base.Generator`s that the real `Studio` runs through its session manager.

Run as a script, this module is a feedback writer process for the durability tests:
    python tests/ui_fixtures.py writer DB_URL COUNT TAG   (prints "ACK <uid>" after each commit)
    python tests/ui_fixtures.py slow-export DB_URL OUT    (prints "STARTED", then exports slowly)
"""
from __future__ import annotations

import functools
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generators.base import (Generator, InvalidInput, Output, Params, Progress, Result, Rng,  # noqa: E402
                             param)
from generators.story import StoryWriter  # noqa: E402  (imports no model: the load is lazy)


@dataclass(frozen=True)
class EchoParams(Params):
    prompt: str = param("hello studio", "what to write back", max_length=200, widget="textarea")
    repeat: int = param(2, "how many times to write it", min=1, max=5)
    mood: str = param("calm", "a preset, so rankings have something to group by",
                      choices=("calm", "loud"))
    shout: bool = param(False, "upper-case the text")
    delay: float = param(0.0, "seconds to wait per step (to watch progress or cancel)", min=0.0, max=5.0)
    model: str = param("", "a load-time option, like a model id", load=True)

    def validate(self) -> None:
        super().validate()
        if not self.prompt.strip():
            raise InvalidInput("write a prompt first")


class EchoWriter(Generator):
    """Writes its prompt back, `repeat` times, with a seeded random suffix."""

    name = "echo"
    Params = EchoParams
    title = "Echo"
    description = "Writes your prompt back (a test generator)."
    devices = ("cpu",)

    def __init__(self, model: str = "") -> None:
        self.model = model
        self.loaded = False

    def load(self, device: Any, dtype: Any = None) -> None:
        self.loaded = True
        self.weights_sha256 = "0" * 64

    def unload(self) -> None:
        self.loaded = False

    def estimate_bytes(self) -> int:
        return 1 << 20

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        assert isinstance(params, EchoParams)
        lines = []
        for i in range(params.repeat):
            progress(i / params.repeat, f"line {i + 1} of {params.repeat}")
            if params.delay:
                end = time.monotonic() + params.delay
                while time.monotonic() < end:
                    progress.check()
                    time.sleep(0.02)
            text = params.prompt.upper() if params.shout else params.prompt
            line = f"{text} #{rng.python.randrange(10_000)}" + (f" ({self.model})" if self.model else "")
            progress.token(line + "\n")
            lines.append(line)
        progress(1.0, "done")
        body = "\n".join(lines) + "\n"
        return Result(outputs=[Output(".txt", body, role="text")], data={"text": body, "mood": params.mood})

    @classmethod
    def debug(cls) -> "EchoWriter":
        return cls()


@dataclass(frozen=True)
class PixelParams(Params):
    prompt: str = param("pixels", "a caption stored with the picture", max_length=100)
    size: int = param(16, "width and height in pixels", min=4, max=64)
    image: str = param("", "optional picture to tint (an upload)", widget="image")


class PixelPainter(Generator):
    """Paints a seeded random RGB picture (a test generator producing a PNG)."""

    name = "pixels"
    Params = PixelParams
    title = "Pixels"
    description = "Paints random pixels from the seed (a test generator)."
    devices = ("cpu",)

    def __init__(self) -> None:
        pass

    def load(self, device: Any, dtype: Any = None) -> None:
        self.weights_sha256 = "1" * 64

    def estimate_bytes(self) -> int:
        return 1 << 20

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        import numpy as np
        from PIL import Image

        assert isinstance(params, PixelParams)
        progress(0.5, "painting")
        pixels = rng.numpy.integers(0, 256, size=(params.size, params.size, 3), dtype=np.uint8)
        progress.preview(Image.fromarray(pixels // 2), "a darker first look")
        if params.image:
            with Image.open(params.image) as src:
                tint = np.asarray(src.convert("RGB").resize((params.size, params.size)))
            pixels = ((pixels.astype(np.uint16) + tint) // 2).astype(np.uint8)
        progress(1.0, "done")
        return Result(outputs=[Output(".png", Image.fromarray(pixels), role="image")], data={})


@dataclass(frozen=True)
class PenParams(Params):
    strokes: str = param("", "your drawing: JSON list of strokes, each a list of [x, y] canvas pixels, or "
                         "{\"strokes\":..., \"width\":, \"height\":}", widget="sketch", max_length=200_000)
    line: float = param(3.0, "line width in canvas pixels", min=0.5, max=20.0)

    def validate(self) -> None:
        super().validate()
        parse_strokes(self.strokes)


def parse_strokes(text: str) -> tuple[list[list[tuple[float, float]]], float, float]:
    """Stroke JSON -> (strokes, width, height); InvalidInput with a sentence when it is not that."""
    import json
    import math

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"strokes is not valid JSON: {exc.msg}") from None
    width = height = 256.0
    if isinstance(data, dict):
        width, height = data.get("width", width), data.get("height", height)
        data = data.get("strokes")
    if not isinstance(data, list) or not data:
        raise InvalidInput("strokes must be a non-empty list of strokes: draw something first")
    strokes = []
    for i, stroke in enumerate(data):
        if not isinstance(stroke, list) or not all(
                isinstance(p, list) and len(p) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in p)
                for p in stroke):
            raise InvalidInput(f"stroke {i + 1} must be a list of [x, y] number pairs")
        strokes.append([(float(x), float(y)) for x, y in stroke])
    return strokes, float(width), float(height)


class PenPlotter(Generator):
    """Draws the given strokes as an SVG and a PNG (a test generator for the sketch canvas)."""

    name = "pen"
    Params = PenParams
    title = "Pen"
    description = "Plots your canvas strokes (a test generator)."
    devices = ("cpu",)

    def __init__(self) -> None:
        pass

    def load(self, device: Any, dtype: Any = None) -> None:
        self.weights_sha256 = "2" * 64

    def estimate_bytes(self) -> int:
        return 1 << 20

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        from PIL import Image, ImageDraw

        assert isinstance(params, PenParams)
        strokes, width, height = parse_strokes(params.strokes)
        progress(0.5, "plotting")
        img = Image.new("RGB", (int(width), int(height)), "white")
        pen = ImageDraw.Draw(img)
        paths = []
        for s in strokes:
            pen.line(s if len(s) > 1 else s * 2, fill="black", width=max(1, round(params.line)))
            paths.append("M" + " L".join(f"{x:g} {y:g}" for x, y in s))
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:g}" height="{height:g}" '
               f'viewBox="0 0 {width:g} {height:g}"><path d="{" ".join(paths)}" fill="none" stroke="black" '
               f'stroke-width="{params.line:g}" stroke-linecap="round"/></svg>')
        progress(1.0, "done")
        return Result(outputs=[Output(".svg", svg, role="drawing"), Output(".png", img, role="image")],
                      data={"strokes": len(strokes), "points": sum(len(s) for s in strokes)})

    @classmethod
    def debug(cls) -> "PenPlotter":
        return cls()


@dataclass(frozen=True)
class ToneParams(Params):
    pitch: float = param(440.0, "the tone's pitch in Hz", min=50.0, max=2000.0)
    seconds: float = param(1.0, "how long it sounds", min=0.1, max=5.0)


class ToneWriter(Generator):
    """A sine tone as WAV plus a wide (1280 px) SVG score of it: audio and score results for the
    browser tests (waveform player, zoomable score, compare view) without a music model."""

    name = "tone"
    Params = ToneParams
    title = "Tone"
    description = "A sine tone with its score (a test generator)."
    devices = ("cpu",)

    def __init__(self) -> None:
        pass

    def load(self, device: Any, dtype: Any = None) -> None:
        self.weights_sha256 = "3" * 64

    def estimate_bytes(self) -> int:
        return 1 << 20

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        import io
        import math
        import wave

        assert isinstance(params, ToneParams)
        rate = 16_000
        n = int(rate * params.seconds)
        samples = bytearray()
        for i in range(n):
            fade = min(1.0, i / 800, (n - i) / 800)  # no clicks at the ends
            v = int(12_000 * fade * math.sin(2 * math.pi * params.pitch * i / rate))
            samples += v.to_bytes(2, "little", signed=True)
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(bytes(samples))
        y = 83 - round(12 * math.log2(params.pitch / 440.0))  # higher pitch, higher note
        staff = "".join(f'<line x1="10" x2="1270" y1="{60 + 8 * k}" y2="{60 + 8 * k}" stroke="black"/>'
                        for k in range(5))
        notes = "".join(f'<ellipse cx="{80 + 140 * k}" cy="{y}" rx="7" ry="5"/>' for k in range(9))
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="1280" height="166" viewBox="0 0 1280 166">'
               f'<rect width="1280" height="166" fill="white"/>{staff}{notes}</svg>')
        progress(1.0, "done")
        return Result(outputs=[Output(".wav", buf.getvalue(), role="audio"), Output(".svg", svg, role="score")],
                      data={"pitch": params.pitch})

    @classmethod
    def debug(cls) -> "ToneWriter":
        return cls()


class TinyStoryWriter(StoryWriter):
    """The real story generator with its in-memory tiny Llama (`StoryWriter.debug()`): fast, offline."""

    def __init__(self, model: str = "", quantize: str = "none", adapter: str = "") -> None:
        super().__init__(model="", quantize="none", adapter=adapter)
        self.model_ref = "debug:tiny-llama"

    @classmethod
    def missing(cls, cache_dir: Any = None) -> str | None:
        return None  # its model is built in memory: it never needs the embedded GGUF a fresh cache lacks

    def estimate_bytes(self) -> int:
        return 64 << 20  # 2 layers, 32 wide: a few MB with room to spare

    def load(self, device: Any, dtype: Any = None) -> None:
        if self._preloaded is None:  # built here, not in __init__: construction stays cheap
            self._preloaded = _tiny_llama()
        super().load(device, dtype)


@functools.lru_cache(maxsize=1)
def _tiny_llama() -> tuple[Any, Any]:
    """One tiny model per test process: the handler and browser tests' studios share it (it is
    only read; training its tokenizer takes seconds)."""
    from generators.story_lib.tiny import tiny_llama

    return tiny_llama()


REGISTRY = {"echo": EchoWriter, "pixels": PixelPainter}
# the browser test's studio: adds the canvas generator and the breeder (no weights: fast on CPU)
SKETCH_REGISTRY = {**REGISTRY, "pen": PenPlotter, "breeder": "generators.breeder:Breeder",
                   "story": TinyStoryWriter, "tone": ToneWriter,
                   "gan": "generators.gan:GlyphGAN"}  # the embedded 1.2 MB KanjiVG DCGAN
WORKSPACE_REGISTRY = {**REGISTRY, "breeder": "generators.breeder:Breeder", "story": TinyStoryWriter,
                      "gan": "generators.gan:GlyphGAN"}  # the embedded 1.2 MB KanjiVG DCGAN  # the workspaces' handler tests


def fake_record(i: int, *, generator: str = "echo", model: str = "", mood: str = "calm",
                path: str = "") -> dict[str, Any]:
    """An asset record shaped like `Studio.history()`'s, for feedback tests without a Studio."""
    import hashlib

    return {"sha256": hashlib.sha256(f"{generator}-{model}-{i}".encode()).hexdigest(), "generator": generator,
            "params": {"prompt": f"prompt {i}", "model": model, "mood": mood}, "seed": i,
            "weights_sha256": "0" * 64, "path": path or f"/outputs/{generator}-{i}.txt"}


# --------------------------------------------------------------------------------------------
# Helper processes for the durability tests.
# --------------------------------------------------------------------------------------------
def _writer(url: str, count: int, tag: str) -> int:
    from studio.feedback import FeedbackStore

    store = FeedbackStore(url)
    for i in range(count):
        uid = store.rate(fake_record(i), stars=1 + i % 5, thumb=1 if i % 2 else -1, tags=[tag],
                         comment=f"{tag} {i}", user=tag)
        sys.stdout.write(f"ACK {uid}\n")
        sys.stdout.flush()
    store.close()
    return 0


def _slow_export(url: str, out: str) -> int:
    from studio.feedback import FeedbackStore

    store = FeedbackStore(url)
    rows = store.iter_ratings

    def slow(**kwargs: Any):  # the real rows, slowly, so the parent can kill us midway
        for n, row in enumerate(rows(**kwargs)):
            if n == 1:
                sys.stdout.write("STARTED\n")
                sys.stdout.flush()
            time.sleep(0.05)
            yield row

    store.iter_ratings = slow  # type: ignore[method-assign]
    store.export_jsonl(out)
    return 0


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "writer":
        sys.exit(_writer(rest[0], int(rest[1]), rest[2]))
    if command == "slow-export":
        sys.exit(_slow_export(rest[0], rest[1]))
    sys.exit(f"unknown command {command!r}")
