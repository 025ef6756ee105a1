"""The built wheel works on its own: packaged data found through importlib.resources, console
script installed, each cheap generator runs once from a venv outside the checkout.

The fresh venv reuses the project venv's installed dependencies (a .pth line appends its
site-packages; the studio itself comes only from the wheel, installed --no-deps), so this
stays fast and needs no network.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a wheel build must not copy: virtualenvs, VCS data, build leftovers, outputs of tests.
_IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                 "test-artifacts", "node_modules", "tests", "benchmarks")

RUN_SCRIPT = r'''
import json, os, sys
from pathlib import Path
import generators, studio
from generators.resources import assets_dir, prompts_dir
from studio.api import Studio
from studio.config import Settings

out = {"studio_file": studio.__file__, "generators_file": generators.__file__,
       "assets": str(assets_dir()), "prompts": str(prompts_dir()), "runs": {}}
home = Path(os.environ["STUDIO_HOME"])
with Studio(Settings(home=home, cache_dir=home / "cache")) as s:
    out["list"] = {r["name"]: r["available"] for r in s.generators()}
    jobs = {"breeder": {"rows": 2, "cols": 2, "width": 64, "height": 64}, "gan": {"count": 4}, "sketch": {"candidates": 1},
            "music": {"bars": 4}}
    for name, params in jobs.items():
        result = s.generate(name, params, seed=3)
        out["runs"][name] = [Path(p).name for p in result.assets]
    out["restored"] = s.restore(result.assets[0])["generator"]
from generators.story_lib.bible import load_beat_sheet
out["three_act_beats"] = len(load_beat_sheet("three_act"))
import studio.weights as weights
out["weights_recorded"] = len(weights.manifest())  # the hash manifest ships beside the weights
print("RESULT " + json.dumps(out))
'''


def _site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src") / "studio"
    shutil.copytree(ROOT, src, ignore=_IGNORE)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", "-w", str(dist), str(src)], check=True, capture_output=True)
    (whl,) = dist.glob("studio-*.whl")
    return whl


@pytest.mark.packaging
def test_wheel_carries_the_data_every_generator_needs(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("studio_assets/gan/generator.safetensors", "studio_assets/music/lstm.safetensors",
                   "studio_assets/sketch/kanji.safetensors", "studio_assets/face/face_landmark.tflite",
                   "studio_prompts/story/beats/three_act.json", "studio_prompts/story/system.j2",
                   "studio/migrations/env.py", "studio/migrations/versions/0001_initial.py"):
        assert needed in names, needed


@pytest.mark.packaging
def test_installed_wheel_runs_generators_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    fresh_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                check=True, capture_output=True, text=True).stdout.strip()
    # the dependencies only: a plain path line, so the project venv's editable-install hook
    # (a .pth inside that folder) is NOT run and the checkout stays invisible
    Path(fresh_site, "project-deps.pth").write_text(_site_packages() + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STUDIO_CONFIG")}
    env.update(STUDIO_HOME=str(tmp_path / "home"), STUDIO_CACHE_DIR=str(tmp_path / "cache"),
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    helped = subprocess.run([str(venv / "bin" / "studio"), "--help"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=120)  # the console script the wheel installs
    assert helped.returncode == 0 and "fetch" in helped.stdout, helped.stderr
    done = subprocess.run([str(py), "-c", RUN_SCRIPT], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.split("RESULT ", 1)[1])
    for name in ("breeder", "gan", "sketch", "music", "face"):  # `studio list` would say "ready"
        assert out["list"][name], name
    for key in ("studio_file", "generators_file", "assets", "prompts"):
        assert out[key].startswith(fresh_site), (key, out[key])  # from the wheel, not the checkout
    assert out["assets"].endswith("studio_assets") and out["prompts"].endswith("studio_prompts")
    assert out["runs"]["breeder"][0].endswith(".png") and out["runs"]["gan"][0].endswith(".png")
    assert any(n.endswith(".svg") for n in out["runs"]["sketch"])
    assert any(n.endswith(".mid") for n in out["runs"]["music"]) and any(n.endswith(".wav") for n in out["runs"]["music"])
    assert out["restored"] == "music"
    assert out["three_act_beats"] > 3  # story's templates and beat sheets ship too
    assert out["weights_recorded"] >= 5  # so an installed copy still refuses corrupt weights


def test_list_does_not_say_ready_when_shipped_files_are_missing(make_studio, monkeypatch, tmp_path) -> None:
    import generators.gan as gan
    import generators.music as music
    from studio.api import Studio
    from studio.config import Settings

    monkeypatch.setattr(gan, "DEFAULT_WEIGHTS", tmp_path / "gone" / "generator.safetensors")
    monkeypatch.setattr(music, "EMBEDDED", {"lstm": tmp_path / "gone" / "lstm.safetensors"})
    with Studio(Settings(home=tmp_path / "home", cache_dir=tmp_path / "cache")) as s:
        rows = {r["name"]: r for r in s.generators()}
    assert not rows["gan"]["available"] and "generator.safetensors" in rows["gan"]["reason"]
    assert not rows["music"]["available"] and "lstm.safetensors" in rows["music"]["reason"]
    assert rows["breeder"]["available"]


def test_story_says_how_to_fetch_its_model_when_absent(monkeypatch, tmp_path) -> None:
    from generators.story import StoryWriter
    from generators.story_lib import loading

    monkeypatch.setattr(loading, "GGUF_PACKAGE", "no_such_package_xyz")
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert "studio fetch story" in (StoryWriter.missing() or "")
