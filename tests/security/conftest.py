"""One studio for the whole attack suite, launched on 127.0.0.1 without auth (the default way a
creator runs it), with small real generators from tests/ui_fixtures.py and tests/fakes.py."""
from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from generators.base import Generator, GeneratorUnavailable, Output, Params, Progress, Result, Rng, param


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class PickyParams(Params):
    weights: str = param("", "a weights file; empty = the built-in one", load=True, max_length=1000)
    text: str = param("ok", "what to write", max_length=100)


class PickyLoader(Generator):
    """Loads its built-in 'weights' fine; a weights file that is not 'GOOD' fails to load."""

    name = "picky"
    Params = PickyParams
    devices = ("cpu",)

    def __init__(self, weights: str = "") -> None:
        self.weights = weights

    def estimate_bytes(self) -> int:
        return 1 << 10

    def load(self, device: Any, dtype: Any = None) -> None:
        if self.weights and Path(self.weights).read_bytes()[:4] != b"GOOD":
            raise GeneratorUnavailable(f"{Path(self.weights).name} is not a weights file")
        self.weights_sha256 = "3" * 64

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        assert isinstance(params, PickyParams)
        progress(1.0, "done")
        return Result(outputs=[Output(".txt", params.text, role="text")])


@dataclass(frozen=True)
class MaskParams(Params):
    image: str = param("", "the picture", widget="image")
    mask: str = param("", "where to repaint", widget="mask")


class Masker(Generator):
    """Reports the mask's size: a test generator with the inpainting mask editor."""

    name = "masker"
    Params = MaskParams
    devices = ("cpu",)

    def estimate_bytes(self) -> int:
        return 1 << 10

    def load(self, device: Any, dtype: Any = None) -> None:
        self.weights_sha256 = "4" * 64

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        from generators.image_io import load_mask

        assert isinstance(params, MaskParams)
        size = load_mask(params.mask, size=(8, 8)).size if params.mask else None
        return Result(outputs=[Output(".txt", f"mask {size}", role="text")])


@dataclass
class App:
    demo: Any
    studio: Any
    home: Path
    url: str
    models: Path


@pytest.fixture(scope="package")
def app(tmp_path_factory: pytest.TempPathFactory):
    from studio.api import Studio
    from studio.config import Settings
    from studio.ui.app import launch
    from tests import fakes
    from tests.ui_fixtures import REGISTRY

    home = tmp_path_factory.mktemp("sec-home")
    models = tmp_path_factory.mktemp("sec-models")
    (models / "good.bin").write_bytes(b"GOOD weights")
    (models / "broken.bin").write_bytes(b"junk")
    registry = {**REGISTRY, "steps": fakes.Steps, "picky": PickyLoader, "masker": Masker,
                "music": "generators.music:MusicComposer", "gan": "generators.gan:GlyphGAN"}
    settings = Settings(home=home, cache_dir=home / "cache", max_upload_mb=5, max_queue=16,
                        model_dirs=(str(models),))
    studio = Studio(settings, registry=registry)
    demo = launch(studio, port=free_port(), block=False, quiet=True)
    yield App(demo=demo, studio=studio, home=home, url=demo.local_url.rstrip("/"), models=models)
    demo.close()
    studio.close()


@pytest.fixture
def browser(app):
    from tests.security.raw import Browser

    b = Browser(app.url)
    yield b
    b.close()


@pytest.fixture
def secret(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server file outside the studio that no request may read: a real PNG, to be a useful target."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("server-private")
    path = folder / "private.png"
    Image.new("RGB", (8, 8), (201, 13, 77)).save(path)
    return path


@dataclass(frozen=True)
class SlowLoadParams(Params):
    work_s: float = param(0.1, "seconds of cooperative work", min=0.0, max=60.0)


class SlowLoader(Generator):
    """Takes `load_s` to load (like a model coming off disk), then works in small steps."""

    name = "slowload"
    Params = SlowLoadParams
    devices = ("cpu",)
    load_s = 1.0

    def estimate_bytes(self) -> int:
        return 1 << 10

    def load(self, device: Any, dtype: Any = None) -> None:
        import time

        time.sleep(self.load_s)

    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        import time

        assert isinstance(params, SlowLoadParams)
        end = time.monotonic() + params.work_s
        while time.monotonic() < end:
            progress(0.5, "working")
            time.sleep(0.02)
        return Result(outputs=[Output(".txt", "worked", role="text")])


@pytest.fixture
def make_slow_loader(tmp_path):
    from studio.api import Studio
    from studio.config import Settings

    made = []

    def make(load_s: float) -> Any:
        cls = type("SlowLoaderN", (SlowLoader,), {"load_s": load_s})
        studio = Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache"),
                        registry={"slowload": cls})
        made.append(studio)
        return studio

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="package")
def client(app):
    """One gradio_client for the suite (building one fetches the page config: ~1 s each)."""
    from gradio_client import Client

    return Client(app.url, verbose=False, download_files=False)
