"""Studio settings: one place, read from `STUDIO_*` environment variables and an optional TOML file.

Precedence (highest first): explicit keyword arguments, environment (`STUDIO_<FIELD>`), the
TOML file (`STUDIO_CONFIG`, else `<home>/studio.toml`), the defaults below.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from generators.base import InvalidInput

_GIB = 1 << 30


def _default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "studio"


def _default_cache() -> Path:
    from generators.paths import default_cache_root

    return default_cache_root()


def parse_bytes(text: str | int | float) -> int:
    """'6GB', '512 MiB', '2g', '1e9' -> bytes. Accepts plain numbers as bytes."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return int(text)
    s = str(text).strip().lower().replace(" ", "")
    units = {"tib": 1 << 40, "tb": 10**12, "t": 1 << 40, "gib": _GIB, "gb": 10**9, "g": _GIB,
             "mib": 1 << 20, "mb": 10**6, "m": 1 << 20, "kib": 1 << 10, "kb": 10**3, "k": 1 << 10, "b": 1}
    for unit, scale in units.items():
        if s.endswith(unit):
            number = s[: -len(unit)]
            break
    else:
        number, scale = s, 1
    try:
        return int(float(number) * scale)
    except ValueError:
        raise InvalidInput(f"cannot read {text!r} as a memory size (try '6GB' or '512MiB')") from None


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=_default_home)  # outputs, feedback database, logs
    cache_dir: Path = field(default_factory=_default_cache)  # converted models, preprocessed data
    device: str = "auto"  # "auto" picks cuda, then mps, then cpu; or name one ("cpu", "cuda:1")
    dtype: str = "auto"  # "auto": fp16 on cuda, fp32 on cpu (bf16 is 11-14x slower on these CPUs)
    torch_threads: int = 0  # 0 = each generator's measured preference (1 for decoding, 2 for diffusion)
    ram_budget: int = 0  # bytes of RAM models may hold; 0 = 60% of physical memory
    vram_budget: int = 0  # bytes of GPU memory models may hold; 0 = 90% of the device's total
    max_queue: int = 64  # queued jobs beyond this are refused at once, never silently dropped
    workers: int = 1  # jobs running at once per device; 1 keeps a 2-core CPU or one GPU unshared
    job_timeout_s: float = 600.0  # a job running longer is stopped with a clear message
    history_size: int = 1000  # summaries of finished jobs kept for the System tab
    host: str = "127.0.0.1"  # never 0.0.0.0 by default
    port: int = 7860
    database_url: str = ""  # "" = SQLite at <home>/feedback.db; or postgresql+psycopg://...
    max_upload_mb: int = 50  # uploads larger than this are refused before decoding
    # audio/video whose header says it is longer than this is refused at submit, before decoding
    # (generators may allow less: the face animator takes 120 s); rate, channel and frame-size
    # limits are generators.media_header's
    max_media_seconds: float = 600.0
    extra_generators: tuple[str, ...] = ()  # "name=module:Class" plug-ins added to the registry
    # "name=model" pairs: the model a generator loads when a request names none (e.g.
    # "image=/models/sd-turbo"), so a studio can be set up once instead of per request.
    default_models: tuple[str, ...] = ()
    # -- what browser and HTTP callers may reach (studio.gate) --------------------------------
    input_dirs: tuple[str, ...] = ()  # folders besides outputs/uploads whose files remote callers may use
    model_dirs: tuple[str, ...] = ()  # folders whose entries remote callers may name as a model/weights
    remote_models: str = "listed"  # "listed": only models the studio lists; "any": any path or hub id
    # "private": each browser / login sees its own outputs, history and ratings; "shared": everyone's
    shared: str = "private"
    upload_max_age_h: float = 24.0  # uploads older than this are deleted (checked at start and hourly)
    upload_max_total_mb: int = 2048  # and the oldest go first while the folder is larger than this
    allowed_hosts: tuple[str, ...] = ()  # extra Host names a loopback studio answers (e.g. behind a proxy)
    login_attempts: int = 10  # failed logins per client address per 10 minutes before refusing

    # Where jobs run: "local" (threads in this process), "ray" (start a local Ray instance:
    # loopback only, no dashboard) or "ray://host:port" (join a Ray cluster). studio/backends.
    backend: str = "local"
    ray_replicas: int = 1  # Ray actors per loaded model; jobs go to the least busy one
    # Autoscaling between bounds: when every replica of a model is busy, another is started, up to
    # this many (0: stay at ray_replicas); a surplus replica idle for ray_scale_down_s is let go.
    ray_replicas_max: int = 0
    ray_scale_down_s: float = 60.0
    ray_gpu_fraction: float = 1.0  # GPU share each CUDA generator's actor asks Ray for (0.5: two per GPU)
    ray_num_cpus: int = 0  # CPUs a local Ray instance offers; 0 = every core
    ray_object_store: int = 256 << 20  # bytes of shared memory a local Ray instance may hold

    def default_model(self, generator: str) -> str | None:
        for spec in self.default_models:
            name, sep, model = spec.partition("=")
            if sep and name.strip() == generator:
                return model.strip()
        return None

    @classmethod
    def load(cls, file: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> "Settings":
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = Path(file) if file else (Path(env["STUDIO_CONFIG"]) if env.get("STUDIO_CONFIG") else None)
        home_hint = overrides.get("home") or env.get("STUDIO_HOME")
        if path is None:
            candidate = Path(home_hint or _default_home()) / "studio.toml"
            path = candidate if candidate.is_file() else None
        if path is not None:
            try:
                values.update(tomllib.loads(Path(path).read_text()))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise InvalidInput(f"cannot read settings file {path}: {exc}") from None
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise InvalidInput(f"unknown setting(s) in {path}: {', '.join(unknown)}")
        for name in names:
            key = f"STUDIO_{name.upper()}"
            if key in env:
                values[name] = env[key]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Settings":
        hints = typing.get_type_hints(cls)
        out: dict[str, Any] = {}
        for name, raw in values.items():
            tp = hints[name]
            try:
                if name in ("ram_budget", "vram_budget", "ray_object_store"):
                    out[name] = parse_bytes(raw)
                elif tp is Path:
                    out[name] = Path(raw).expanduser()
                elif tp is int:
                    out[name] = int(raw)
                elif tp is float:
                    out[name] = float(raw)
                elif typing.get_origin(tp) is tuple:
                    items = raw.split(",") if isinstance(raw, str) else list(raw)
                    out[name] = tuple(s.strip() for s in items if s.strip())
                else:
                    out[name] = str(raw)
            except InvalidInput:
                raise
            except (TypeError, ValueError):
                raise InvalidInput(f"setting {name} has a bad value: {raw!r}") from None
        settings = cls(**out)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.max_queue < 1:
            raise InvalidInput("max_queue must be at least 1")
        if self.max_media_seconds <= 0:
            raise InvalidInput("max_media_seconds must be positive")
        if self.workers < 1:
            raise InvalidInput("workers must be at least 1")
        if self.job_timeout_s <= 0:
            raise InvalidInput("job_timeout_s must be positive")
        if not 0 <= self.torch_threads <= 256:
            raise InvalidInput("torch_threads must be between 0 and 256")
        if self.remote_models not in ("listed", "any"):
            raise InvalidInput("remote_models must be 'listed' or 'any'")
        if self.shared not in ("private", "shared"):
            raise InvalidInput("shared must be 'private' or 'shared'")
        if self.upload_max_age_h <= 0 or self.upload_max_total_mb <= 0 or self.login_attempts < 1:
            raise InvalidInput("upload_max_age_h, upload_max_total_mb and login_attempts must be positive")
        if self.dtype not in ("auto", "float32", "float16", "bfloat16"):
            raise InvalidInput("dtype must be auto, float32, float16 or bfloat16")
        if self.backend not in ("local", "ray") and not self.backend.startswith("ray://"):
            raise InvalidInput(f"backend must be local, ray or ray://host:port, got {self.backend!r}")
        if self.ray_replicas < 1 or self.ray_num_cpus < 0 or not 0 < self.ray_gpu_fraction <= 1:
            raise InvalidInput("ray_replicas must be at least 1, ray_num_cpus 0 or more, "
                               "and ray_gpu_fraction above 0 and at most 1")
        if self.ray_replicas_max and self.ray_replicas_max < self.ray_replicas:
            raise InvalidInput(f"ray_replicas_max ({self.ray_replicas_max}) must be 0 (no autoscaling) or at "
                               f"least ray_replicas ({self.ray_replicas})")
        if self.ray_scale_down_s <= 0:
            raise InvalidInput("ray_scale_down_s must be positive")

    @property
    def outputs_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def feedback_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'feedback.db'}"

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)
