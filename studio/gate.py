"""The input gate: every request into a generator passes here once, before it is queued.

The session manager calls `Gate.check` from `submit`, so the browser UI, the HTTP API, the
gallery's "Run it again", `Studio.rerun`, send-to (a later run of the target's form) and the CLI
all get the same checks; an entry point never writes its own.

Who asks decides how much is allowed (`origin`):
- `"remote"` (a browser or an HTTP client): file parameters must resolve (real path, symlinks
  followed) to a regular file inside the studio's outputs, the upload folder, or a folder the
  operator lists in `input_dirs`; load-time options (which model or weights to open) must name
  something the studio lists (see `listed_models`) unless the operator sets `remote_models = "any"`.
- `"local"` (the Python API and the CLI, run by the person who owns the machine): file
  parameters and model paths are theirs to choose; the size bounds below still apply.

Cheap structural bounds on text inputs that a generator would hand to a slow parser (an ABC
primer) run here too, before anything is parsed, so a small request cannot buy minutes of CPU.
Audio and video files are sized from their container header (`generators.media_header`: length,
sample rate, channels, frame size and rate) for every caller, so a crafted header is refused
with a sentence before the job is queued, let alone decoded (generators check again, with their
own, possibly tighter, limits, before they decode).
"""
from __future__ import annotations

import dataclasses
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterable

from generators.base import InvalidInput, Params

LOCAL, REMOTE = "local", "remote"
ORIGINS = (LOCAL, REMOTE)
# x-widget kinds whose value is a path the generator opens (studio.ui.form shows them as uploads)
FILE_WIDGETS = ("image", "mask", "audio", "video", "midi", "file")
MEDIA_WIDGETS = ("audio", "video")  # sized from their header here (generators.media_header)
# An ABC primer may describe at most this many note/rest units of L: length per allowed bar, in
# total: 128 bars (the music generator's cap) of 64 units each covers 12/8 in sixteenths with
# room to spare, and is counted in microseconds where music21 would take minutes.
ABC_MAX_BARS = 128
ABC_UNITS_PER_BAR = 64
_ABC_NOTE = re.compile(r"([A-Ga-gzxZX])[,']*(\d*)(/*)(\d*)")


class Gate:
    """The checks for one studio (its settings, outputs folder and upload folders)."""

    def __init__(self, settings: Any, outputs_dir: Path) -> None:
        self.settings = settings
        self._roots: list[Path] = [Path(outputs_dir).resolve()]
        self._roots += [Path(p).expanduser().resolve() for p in getattr(settings, "input_dirs", ())]
        self._lock = threading.Lock()

    # -- file parameters -------------------------------------------------------------------
    def add_root(self, folder: str | os.PathLike[str]) -> None:
        """Also accept files under `folder` (the UI's upload folder, set when it launches)."""
        real = Path(folder).resolve()
        with self._lock:
            if real not in self._roots:
                self._roots.append(real)

    def roots(self) -> list[Path]:
        with self._lock:
            return list(self._roots)

    def confine(self, value: Any, what: str) -> str:
        """The real path of `value` if it is a regular file inside the studio's folders, else
        InvalidInput. The message never says whether the path exists (no existence oracle)."""
        refusal = InvalidInput(f"{what} must be a file uploaded to this studio or one of its outputs, "
                               "not a path elsewhere on the server")
        if not isinstance(value, (str, os.PathLike)) or "\x00" in str(value):
            raise refusal
        try:
            real = Path(os.path.realpath(os.fspath(value)))
        except (OSError, ValueError):
            raise refusal from None
        if not any(real.is_relative_to(root) for root in self.roots()):
            raise refusal
        if not real.is_file():  # inside our folders: saying "missing" reveals nothing outside
            raise InvalidInput(f"{what}: the file '{real.name}' is not in this studio (any more)")
        return str(real)

    # -- load-time options -----------------------------------------------------------------
    def listed_models(self, generator: str) -> set[str]:
        """What a remote caller may name as a load option: the studio-wide default for this
        generator, every entry of the operator's `model_dirs` folders (by path and by name), and
        every model already in the local Hugging Face cache (`owner/name`)."""
        names: set[str] = set()
        default = self.settings.default_model(generator)
        if default:
            names.add(default)
        for folder in getattr(self.settings, "model_dirs", ()):
            base = Path(folder).expanduser()
            try:
                entries = list(base.iterdir())
            except OSError:
                continue
            for entry in entries:
                if not entry.name.startswith("."):
                    names.update({str(entry), str(entry.resolve()), entry.name})
        names.update(cached_hub_ids())
        return names

    def check_load_option(self, generator: str, key: str, value: str, embedded: Iterable[str] = ()) -> None:
        if getattr(self.settings, "remote_models", "listed") == "any":
            return
        if value.strip() in set(embedded) or value.strip() in self.listed_models(generator):
            return
        raise InvalidInput(f"{key} {value!r} is not a model this studio offers; choose one it lists "
                           f"(the embedded default when empty), or ask whoever runs the studio to add it "
                           "(settings model_dirs or default_models)")

    # -- the one entry ---------------------------------------------------------------------
    def check(self, generator: str, params: Params, origin: str = LOCAL, cls: Any = None) -> Params:
        """`params` made safe to queue for a caller of `origin`, or InvalidInput. `cls` (the
        generator class) names its embedded models: `embedded_models`, else its module's EMBEDDED."""
        if origin not in ORIGINS:
            raise InvalidInput(f"origin must be one of {', '.join(ORIGINS)}, got {origin!r}")
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(params):
            meta, value = f.metadata, getattr(params, f.name)
            if origin == REMOTE and meta.get("widget") in FILE_WIDGETS and value not in (None, ""):
                real = self.confine(value, f.name)
                if real != value:
                    changes[f.name] = real  # what is opened later is what was checked now
            # a load option that is a file (a story adapter) was confined like any file above
            if origin == REMOTE and meta.get("load") and not meta.get("choices") and isinstance(value, str) \
                    and value.strip() and value != f.default and meta.get("widget") not in FILE_WIDGETS:
                self.check_load_option(generator, f.name, value, embedded_names(cls))
            if f.name == "primer_abc" and isinstance(value, str) and value.strip():
                check_abc_size(value)
            if meta.get("widget") in MEDIA_WIDGETS and isinstance(value, (str, os.PathLike)) and str(value):
                self.check_media_header(changes.get(f.name, value), meta["widget"], f.name)
        return params.replace(**changes) if changes else params


    def check_media_header(self, path: str | os.PathLike[str], kind: str, name: str) -> None:
        """Refuse an audio or video file whose header is over the studio's media limits. A file
        that is not there is left to the generator (it says so in its own words)."""
        from generators import media_header

        if not Path(path).is_file():
            return
        what = "the " + name.replace("_", " ")
        seconds = float(getattr(self.settings, "max_media_seconds", 600.0))
        if kind == "audio":
            media_header.check_audio(str(path), what, max_seconds=seconds)
        else:
            media_header.check_video(str(path), what, max_seconds=seconds)


def check_abc_size(text: str, max_bars: int = ABC_MAX_BARS) -> None:
    """Refuse ABC whose notes add up to more than `max_bars` long bars, counted without parsing."""
    units = 0.0
    budget = max_bars * ABC_UNITS_PER_BAR
    body = "\n".join(line for line in text.splitlines() if not re.match(r"^[A-Za-z]:", line.strip()))
    bars = body.count("|")
    if bars > 2 * max_bars + 8:  # "||", ":|" and repeats count twice at most
        raise InvalidInput(f"the ABC primer has about {bars} bar lines; up to {max_bars} bars are accepted")
    for m in _ABC_NOTE.finditer(body):
        letter, num, slashes, den = m.groups()
        if letter in "ZX":  # multi-measure rest: the number counts whole bars
            units += (int(num) if num else 1) * ABC_UNITS_PER_BAR
        else:
            length = float(num) if num else 1.0
            if slashes:
                length /= float(den) if den else 2.0 ** len(slashes)
            units += length
        if units > budget:
            raise InvalidInput(f"the ABC primer is longer than {max_bars} bars; shorten it and try again")


def embedded_names(cls: Any) -> tuple[str, ...]:
    """Names a generator ships weights for (e.g. music's 'lstm', sketch's 'kanji')."""
    if cls is None:
        return ()
    names = getattr(cls, "embedded_models", None)
    if names is None:
        import sys

        names = getattr(sys.modules.get(cls.__module__), "EMBEDDED", ())
    return tuple(str(n) for n in names)


def cached_hub_ids() -> Iterable[str]:
    """`owner/name` of every model folder in the local Hugging Face hub cache (no network)."""
    root = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not root:
        home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
        root = os.path.join(home, "hub")
    try:
        entries = os.listdir(root)
    except OSError:
        return []
    return [e[len("models--"):].replace("--", "/", 1) for e in entries if e.startswith("models--")]
