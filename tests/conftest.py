"""Shared fixtures: a studio in a temp home with the small test generators of tests/fakes.py."""
from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest

from studio.config import Settings


@pytest.fixture
def settings(tmp_path):
    return Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache")


@pytest.fixture
def fakes():
    from tests import fakes

    fakes.Steps.ran.clear()
    fakes.Steps.gate = None
    fakes.FlakyLoad.broken = True
    fakes.TinyImage.loads = fakes.TinyImage.unloads = 0
    return fakes


@pytest.fixture
def make_studio(tmp_path, fakes):
    """Build a Studio over the fake generators; every one made is closed after the test."""
    from studio.api import Studio

    made = []

    def make(**overrides):
        s = Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache", **overrides)
        studio = Studio(s, registry={"tiny": fakes.TinyImage, "steps": fakes.Steps, "oom": fakes.OOMer,
                                     "flaky": fakes.FlakyLoad})
        made.append(studio)
        return studio

    yield make
    for studio in made:
        studio.close()


@pytest.fixture
def weights(tmp_path, fakes):
    return fakes.write_weights(tmp_path / "tiny.safetensors")
