"""Import direction and lazy heavy imports (ARCHITECTURE.md): generators -> torch/numpy/PIL/music
libs only; studio (but studio.ui) -> generators; only studio.ui imports gradio."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import generators

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "numpy", "gradio", "diffusers", "transformers", "onnxruntime", "music21", "PIL", "cv2")


def _loaded_after(code: str) -> dict:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_generators_package_and_api_import_nothing_heavy():
    assert _loaded_after("import generators") == []
    assert _loaded_after("import studio.api, studio.cli") == []


@pytest.mark.parametrize("name", sorted(generators.REGISTRY))
def test_each_registered_generator_module_imports_lazily(name):
    module = generators.REGISTRY[name].partition(":")[0]
    if not (ROOT / (module.replace(".", "/") + ".py")).exists() and not (ROOT / module.replace(".", "/")).is_dir():
        pytest.fail(f"{module} is registered but missing")
    assert _loaded_after(f"import {module}; {module}.{generators.REGISTRY[name].partition(':')[2]}.describe()") == []


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_import_direction():
    for path in (ROOT / "generators").rglob("*.py"):
        bad = _imports(path) & {"gradio", "studio"}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"
    for path in (ROOT / "studio").rglob("*.py"):
        if "ui" in path.relative_to(ROOT / "studio").parts[:1]:
            continue
        assert "gradio" not in _imports(path), f"{path.relative_to(ROOT)} imports gradio"
