"""The `studio` command, run as a creator would (a subprocess), with a test generator plugged in."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def studio(*args, home, extra="steps=tests.fakes:Steps", timeout=120):
    env = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_EXTRA_GENERATORS": extra,
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "studio.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_help_lists_commands(tmp_path):
    out = studio("--help", home=tmp_path)
    assert out.returncode == 0
    for word in ("ui", "list", "info", "generate", "restore", "train", "bench"):
        assert word in out.stdout


def test_global_options_before_the_command_keep_its_options(tmp_path):
    """`studio --home X ui --port P` once read X as the command and refused --port."""
    from studio.cli import command_of

    assert command_of(["--home", "/h", "--device", "cpu", "ui", "--port", "7"]) == "ui"
    assert command_of(["--home", "ui", "list"]) == "list" and command_of(["--help"]) is None
    out = studio("--home", str(tmp_path / "h"), "ui", "--port", "7861", "--help", home=tmp_path)
    assert out.returncode == 0 and "--port" in out.stdout, out.stderr


def test_list_and_info(tmp_path):
    out = studio("list", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    names = {row["name"] for row in json.loads(out.stdout)}
    assert "steps" in names
    info = studio("info", "steps", home=tmp_path)
    assert info.returncode == 0 and "steps = 3 [1..10000]" in info.stdout


def test_generate_writes_files_and_restores(tmp_path):
    out = studio("generate", "steps", "--set", "tag=hello", "--set", "steps=2", "--seed", "9", "--out",
                 str(tmp_path / "copy"), "--json", home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["seed"] == 9 and result["data"]["text"].startswith("hello")
    copied = Path(result["assets"][0])
    assert copied.parent == tmp_path / "copy" and copied.read_text().startswith("hello")
    back = studio("restore", str(copied), home=tmp_path / "home")
    assert json.loads(back.stdout) == {"generator": "steps", "params": {"check": True, "step_s": 0.01,
                                                                        "steps": 2, "tag": "hello"}, "seed": 9}


@pytest.mark.parametrize("args, words", [
    (("generate", "steps", "--set", "steps=0"), "steps must be between"),
    (("generate", "steps", "--set", "nonsense"), "--set takes key=value"),
    (("generate", "steps", "--set", "colour=red"), "unknown parameter"),
    (("generate", "nope"), "unknown generator"),
    (("generate", "steps", "--params", "{not json"), "not valid JSON"),
    (("generate", "steps", "--seed", "abc"), "invalid int"),
    (("info", "nope"), "unknown generator"),
    (("frobnicate",), "invalid choice"),
    (("train", "nope"), "no trainer named"),
    (("list", "--bogus"), "unrecognised arguments"),
])
def test_bad_arguments_exit_2_with_a_clear_message(tmp_path, args, words):
    out = studio(*args, home=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert words in out.stderr
    assert "Traceback" not in out.stderr


def test_generation_failure_exit_1(tmp_path):
    out = studio("generate", "steps", "--set", "steps=400", "--set", "step_s=0.01", "--timeout", "0.2",
                 home=tmp_path)
    assert out.returncode == 1 and "time limit" in out.stderr


def test_unavailable_generator_exit_3(tmp_path):
    out = studio("generate", "flaky", home=tmp_path, extra="flaky=tests.fakes:FlakyLoad")
    assert out.returncode == 3 and "corrupt" in out.stderr
