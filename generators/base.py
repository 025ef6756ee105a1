"""The generator contract: every generator in the studio is a `Generator` with a `Params` class.

Modelled on magenta's `BaseSequenceGenerator` (lazy `initialize()`, one domain error type) and
audiocraft's `BaseGenModel` (documented generation parameters, a `debug()` model for unit tests).
This module imports no torch, numpy or gradio at import time: the registry and the CLI's
`--help` stay instant, and heavy work happens in `load()`.
"""
from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import json
import os
import random
import threading
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

if TYPE_CHECKING:  # pragma: no cover - typing only
    import numpy as np
    import torch


# --------------------------------------------------------------------------------------------
# Errors: one family, each with a sentence a creator understands.
# --------------------------------------------------------------------------------------------
class StudioError(Exception):
    """Base of every error the studio raises on purpose."""


class InvalidInput(StudioError, ValueError):
    """The request itself is wrong (a parameter, an upload, a prompt). Nothing was run."""


class GeneratorUnavailable(StudioError):
    """A generator cannot run right now (weights missing or failed to load), with the reason."""


class Cancelled(StudioError):
    """The job was cancelled by its owner before it finished."""


class TimedOut(Cancelled):
    """The job ran past its time limit and was stopped."""


class OutOfMemory(StudioError):
    """The job needed more memory than the device or the studio's budget had."""


# --------------------------------------------------------------------------------------------
# Params: frozen, validated, JSON round trip, JSON schema for UIs.
# --------------------------------------------------------------------------------------------
_MISSING = dataclasses.MISSING


def param(
    default: Any = _MISSING,
    help: str = "",
    *,
    min: float | None = None,
    max: float | None = None,
    choices: typing.Sequence[Any] | None = None,
    max_length: int | None = None,
    load: bool = False,
    widget: str | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A Params field with the metadata that validation, the JSON schema and the UI read.

    `load=True` marks a load-time option (which model to load, e.g. a Hugging Face id): it is
    passed to the generator's constructor and is part of the model-cache key, not per call.
    `widget` is a hint for the UI (e.g. "textarea", "image", "audio", "sketch").
    """
    meta = {"help": help, "min": min, "max": max, "choices": tuple(choices) if choices else None,
            "max_length": max_length, "load": load, "widget": widget}
    if default_factory is not None:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _optional_inner(tp: Any) -> tuple[bool, Any]:
    """(is_optional, inner type) for `X | None` / `Optional[X]`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def _coerce(value: Any, tp: Any, name: str) -> Any:
    """Convert JSON / CLI values into the annotated type, or raise InvalidInput."""
    optional, inner = _optional_inner(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if optional or value is None and inner is type(None):
            return None
        raise InvalidInput(f"{name} needs a value")
    origin = typing.get_origin(inner)
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return value.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise InvalidInput(f"{name} must be true or false, got {value!r}")
    if inner is int:
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if inner is float:
        if isinstance(value, bool):
            raise InvalidInput(f"{name} must be a number, got {value!r}")
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise InvalidInput(f"{name} must be a number, got {value!r}") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise InvalidInput(f"{name} must be a finite number, got {value!r}")
        return out
    if inner is str:
        if isinstance(value, str):
            return value
        raise InvalidInput(f"{name} must be text, got {type(value).__name__}")
    if origin in (tuple, list):
        args = typing.get_args(inner)
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                try:
                    value = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{name} is not a valid JSON list: {exc.msg}") from None
            else:
                value = [v for v in (s.strip() for s in text.split(",")) if v]
        if not isinstance(value, (list, tuple)):
            raise InvalidInput(f"{name} must be a list, got {type(value).__name__}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise InvalidInput(f"{name} must have {len(args)} items, got {len(value)}")
            return tuple(_coerce(v, a, f"{name}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{name}[{i}]") if item is not Any else v for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        key_t, val_t = typing.get_args(inner) or (str, Any)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{name} is not a valid JSON object: {exc.msg}") from None
        if not isinstance(value, Mapping):
            raise InvalidInput(f"{name} must be an object, got {type(value).__name__}")
        return {_coerce(k, key_t, f"{name} key"): (_coerce(v, val_t, f"{name}[{k}]") if val_t is not Any else v)
                for k, v in value.items()}
    if origin is typing.Literal:
        allowed = typing.get_args(inner)
        if value in allowed:
            return value
        raise InvalidInput(f"{name} must be one of {', '.join(map(str, allowed))}, got {value!r}")
    if inner is Any:
        return value
    raise TypeError(f"unsupported Params field type for {name}: {inner!r}")


def _schema_for(tp: Any) -> dict[str, Any]:
    optional, inner = _optional_inner(tp)
    origin = typing.get_origin(inner)
    if inner is bool:
        out: dict[str, Any] = {"type": "boolean"}
    elif inner is int:
        out = {"type": "integer"}
    elif inner is float:
        out = {"type": "number"}
    elif inner is str:
        out = {"type": "string"}
    elif origin in (tuple, list):
        args = [a for a in typing.get_args(inner) if a is not Ellipsis]
        out = {"type": "array"}
        if args:
            out["items"] = _schema_for(args[0])
    elif origin is dict:
        args = typing.get_args(inner)
        out = {"type": "object"}
        if len(args) == 2 and args[1] is not Any:
            out["additionalProperties"] = _schema_for(args[1])
    elif origin is typing.Literal:
        out = {"enum": list(typing.get_args(inner))}
    else:
        out = {}
    if optional:
        out = {"anyOf": [out, {"type": "null"}]}
    return out


@dataclass(frozen=True)
class Params:
    """Base of every generator's per-call parameters: a frozen, JSON-serialisable dataclass.

    Subclasses declare fields with `param(...)` and may override `validate()` for checks that
    span several fields (call `super().validate()` first). Never clamp silently: raise.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(value, hints[f.name], f.name)
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> None:
        """Check bounds and choices declared with `param(...)`; subclasses add cross-field checks."""
        for f in dataclasses.fields(self):
            meta = f.metadata
            value = getattr(self, f.name)
            if value is None:
                continue
            lo, hi = meta.get("min"), meta.get("max")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if lo is not None and value < lo or hi is not None and value > hi:
                    raise InvalidInput(f"{f.name} must be between {lo} and {hi}, got {value}")
            choices = meta.get("choices")
            if choices and value not in choices:
                raise InvalidInput(f"{f.name} must be one of: {', '.join(map(str, choices))}; got {value!r}")
            max_length = meta.get("max_length")
            if max_length is not None and hasattr(value, "__len__") and len(value) > max_length:
                raise InvalidInput(f"{f.name} is too long: {len(value)} > {max_length} "
                                   f"{'characters' if isinstance(value, str) else 'items'}")

    # -- (de)serialisation -----------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Params":
        """Build and validate from a JSON-like mapping; unknown keys are an error, not ignored."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"unknown parameter(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known)) or 'none'}")
        try:
            params = cls(**data)
        except TypeError as exc:  # a required field is missing
            raise InvalidInput(str(exc)) from None
        params.validate()
        return params

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Params":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"parameters are not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise InvalidInput("parameters must be a JSON object")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> "Params":
        merged = {**self.to_dict(), **changes}
        return type(self).from_dict(merged)

    def load_options(self) -> dict[str, Any]:
        """The fields marked `load=True`: constructor arguments and model-cache key."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("load")}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        props: dict[str, Any] = {}
        required: list[str] = []
        for f in dataclasses.fields(cls):
            meta = f.metadata
            prop = _schema_for(hints[f.name])
            if meta.get("help"):
                prop["description"] = meta["help"]
            if f.default is not _MISSING:
                prop["default"] = _jsonable(f.default)
            elif f.default_factory is not _MISSING:  # type: ignore[misc]
                prop["default"] = _jsonable(f.default_factory())  # type: ignore[misc]
            else:
                required.append(f.name)
            if meta.get("min") is not None:
                prop["minimum"] = meta["min"]
            if meta.get("max") is not None:
                prop["maximum"] = meta["max"]
            if meta.get("choices"):
                prop["enum"] = list(meta["choices"])
            if meta.get("max_length") is not None:
                prop["maxLength" if prop.get("type") == "string" else "maxItems"] = meta["max_length"]
            if meta.get("load"):
                prop["x-load"] = True
            if meta.get("widget"):
                prop["x-widget"] = meta["widget"]
            props[f.name] = prop
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object", "properties": props,
                                  "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    return value


# --------------------------------------------------------------------------------------------
# Outputs and results.
# --------------------------------------------------------------------------------------------
@dataclass
class Output:
    """One file a generator produced, still in memory. `studio.assets` names and writes it.

    `data` is bytes, text, or a PIL image (written as PNG with the provenance embedded).
    `suffix` picks the format and how provenance is embedded (".png", ".mid", ".svg", ...).
    `role` says what it is among a result's outputs ("image", "midi", "score", "preview"...).
    """

    suffix: str
    data: Any
    role: str = "main"
    label: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"parameters": "<A1111 text>"}

    def __post_init__(self) -> None:
        if not self.suffix.startswith("."):
            self.suffix = "." + self.suffix
        self.suffix = self.suffix.lower()


@dataclass
class Result:
    """What `generate()` returns: outputs, JSON data for API users, and provenance.

    Generators fill `outputs` and `data`; the session manager fills `provenance` (generator,
    params, seed, weights sha256, code version, parents, timings) and `assets` (written paths).
    """

    outputs: list[Output] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    assets: list[Path] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)  # sha256 or asset ids this came from

    @property
    def seed(self) -> int | None:
        return self.provenance.get("seed")

    @property
    def path(self) -> Path | None:
        """The first written asset (convenience for single-output generators)."""
        return self.assets[0] if self.assets else None


# --------------------------------------------------------------------------------------------
# Progress and cancellation: one object a generator calls, the session manager listens to.
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgressEvent:
    fraction: float  # 0..1 of this job
    message: str = ""
    kind: str = "progress"  # "progress" | "token" | "preview" | "state"
    data: Any = None  # a token string, a preview image, ...
    time: float = field(default_factory=time.time)


class Progress:
    """Report progress, stream tokens/previews, and learn of cancellation or timeout.

    Generators call `progress(fraction, message)` between steps and `progress.token(text)` for
    streaming; both raise `Cancelled` / `TimedOut` when the job should stop, so cancelling is
    cooperative and happens at the next step boundary.
    """

    def __init__(self, sink: Callable[[ProgressEvent], None] | None = None,
                 cancel: threading.Event | None = None, deadline: float | None = None) -> None:
        self._sink = sink
        self._cancel = cancel or threading.Event()
        self.deadline = deadline  # time.monotonic() value, or None
        self.fraction = 0.0

    @classmethod
    def none(cls) -> "Progress":
        """A Progress that reports nowhere (direct calls, benchmarks, tests)."""
        return cls()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise if the job was cancelled or ran out of time."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            self._cancel.set()
            raise TimedOut("the job ran past its time limit")
        if self._cancel.is_set():
            raise Cancelled("the job was cancelled")

    def _emit(self, event: ProgressEvent) -> None:
        if self._sink is not None:
            self._sink(event)

    def __call__(self, fraction: float, message: str = "") -> None:
        self.check()
        self.fraction = max(0.0, min(1.0, float(fraction)))
        self._emit(ProgressEvent(self.fraction, message))

    def token(self, text: str) -> None:
        """Stream a piece of generated text (story) as it is produced."""
        self.check()
        self._emit(ProgressEvent(self.fraction, "", kind="token", data=text))

    def preview(self, data: Any, message: str = "") -> None:
        """Stream an intermediate result (a partial image, a stroke list)."""
        self.check()
        self._emit(ProgressEvent(self.fraction, message, kind="preview", data=data))


# --------------------------------------------------------------------------------------------
# Random number generators, one set per job; the global RNGs are never touched.
# --------------------------------------------------------------------------------------------
class Rng:
    """Per-job random generators derived from one integer seed, created on first use.

    `rng.torch` is a `torch.Generator` on the job's device, `rng.numpy` a
    `numpy.random.Generator`, `rng.python` a `random.Random`. Generators must draw only from
    these, so the same seed gives the same output.
    """

    def __init__(self, seed: int, device: Any = "cpu") -> None:
        self.seed = int(seed)
        self.device = device
        self._torch: Any = None
        self._numpy: Any = None
        self._python: random.Random | None = None

    @property
    def torch(self) -> "torch.Generator":
        if self._torch is None:
            import torch

            self._torch = torch.Generator(device=self.device).manual_seed(self.seed)
        return self._torch

    def torch_cpu(self) -> "torch.Generator":
        """A CPU torch generator, for sampling that must match bytes across devices."""
        import torch

        return torch.Generator(device="cpu").manual_seed(self.seed)

    @property
    def numpy(self) -> "np.random.Generator":
        if self._numpy is None:
            import numpy as np

            self._numpy = np.random.default_rng(self.seed)
        return self._numpy

    @property
    def python(self) -> random.Random:
        if self._python is None:
            self._python = random.Random(self.seed)
        return self._python


# --------------------------------------------------------------------------------------------
# The generator itself.
# --------------------------------------------------------------------------------------------
class Generator(abc.ABC):
    """One kind of creative model. The session manager owns its device, memory and seeds.

    Lifecycle: `__init__` (cheap, no I/O) -> `load(device)` (the only heavy step) ->
    `generate(...)` any number of times -> `unload()`. `estimate_bytes()` must work before
    `load()` so the memory budget can be checked first.
    """

    name: ClassVar[str]
    Params: ClassVar[type[Params]]
    title: ClassVar[str] = ""  # human-readable name for the UI
    description: ClassVar[str] = ""
    # Devices this generator can use, best first; the session picks the first one present.
    devices: ClassVar[tuple[str, ...]] = ("cuda", "mps", "cpu")
    # Preferred torch CPU threads: batch-1 autoregressive decoding is faster on one thread on a
    # two-core machine (shared/OFFLINE.md); diffusion gains from two. None = the global setting.
    cpu_threads: ClassVar[int | None] = None

    # Modules a first load() imports (e.g. transformers' model code: ~3 s of Python imports on
    # these CPUs). The interactive studio imports them on a background thread at start-up.
    warm_modules: ClassVar[tuple[str, ...]] = ()

    weights_sha256: str | None = None  # set by load() when weights come from files
    # The studio's cache folder (the `cache_dir` setting), set by the session manager before
    # load(); None (a generator used on its own) means generators.paths.cache_root().
    cache_dir: "Path | None" = None

    def __init__(self, **load_options: Any) -> None:
        if load_options:
            raise InvalidInput(f"{self.name} takes no load options, got {', '.join(load_options)}")

    @abc.abstractmethod
    def load(self, device: "torch.device", dtype: "torch.dtype | None" = None) -> None:
        """Load weights onto `device`. Raise `GeneratorUnavailable` with a reason on failure."""

    def unload(self) -> None:
        """Drop every reference to weights so their memory can be freed."""

    @abc.abstractmethod
    def estimate_bytes(self) -> int:
        """Memory the loaded model will hold (weights + working set), before loading."""

    @abc.abstractmethod
    def generate(self, params: Params, *, rng: Rng, progress: Progress) -> Result:
        """Produce one result. Draw randomness only from `rng`; call `progress` between steps."""

    @classmethod
    def missing(cls, cache_dir: str | os.PathLike[str] | None = None) -> str | None:
        """Why the generator cannot run with its default load options (a shipped file absent
        from this install), found without loading anything; None when nothing is missing.
        `cache_dir` is the studio's cache (where fetched defaults live), as `load()` would get it."""
        return None

    @classmethod
    def debug(cls) -> "Generator":
        """A tiny randomly initialised instance for fast tests."""
        raise NotImplementedError(f"{cls.__name__} has no debug model")

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {"name": cls.name, "title": cls.title or cls.name, "description": cls.description,
                "devices": list(cls.devices), "params": cls.Params.json_schema()}


# --------------------------------------------------------------------------------------------
# Small shared helpers.
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, cached by (path, size, mtime) so reloading a big model re-hashes nothing."""
    st = os.stat(path)
    return _sha256_cached(os.fspath(path), st.st_size, st.st_mtime_ns)


def tree_sha256(paths: typing.Iterable[str | os.PathLike[str]]) -> str:
    """One hash over several weight files (a diffusers folder, a sharded checkpoint)."""
    digest = hashlib.sha256()
    for p in sorted(os.fspath(p) for p in paths):
        digest.update(Path(p).name.encode())
        digest.update(file_sha256(p).encode())
    return digest.hexdigest()
