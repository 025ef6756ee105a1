"""Keep Gradio from rewriting its own type-stub files on every import (about 1.8 CPU-s of start-up).

Gradio 6's `ComponentMeta` calls `gradio.component_meta.create_or_modify_pyi` for every component
class it defines: it reads the class's source file, parses it with `ast`, renders a Jinja
template and compares (sometimes rewrites) a `.pyi` file beside it in site-packages. Those stubs
are for Gradio's own developers' editors; the running app never reads them. Measured here
(2 cores): `import gradio` 3.6-4.1 CPU-s with it, 1.9-2.1 without.

There is no public switch, so a one-shot import hook replaces that function with a no-op as soon
as `gradio.component_meta` has run, before any component class exists. If Gradio was imported
before this module, or a later Gradio renames the function, nothing changes (only the time).
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any

TARGET = "gradio.component_meta"


def _no_stub(*_args: Any, **_kwargs: Any) -> None:
    return None


class _SkipStubs(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        sys.meta_path.remove(self)  # one shot
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            if hasattr(module, "create_or_modify_pyi"):
                module.create_or_modify_pyi = _no_stub

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install() -> None:
    if TARGET in sys.modules or any(isinstance(f, _SkipStubs) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _SkipStubs())
