"""The programmatic API. The browser UI, the CLI and the HTTP API all call `Studio`.

    >>> from studio.api import Studio
    >>> studio = Studio()
    >>> result = studio.generate("breeder", {"mode": "random"}, seed=7)
    >>> result.assets[0]          # the written PNG, provenance embedded
    >>> studio.restore(result.assets[0])   # generator, params, seed back

Importing this module imports neither gradio nor torch.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

from generators.base import Generator, GeneratorUnavailable, InvalidInput, Params, Result, StudioError
from studio.assets import AssetStore, restore
from studio.config import Settings
from studio.jobs import Job, PermissionDenied, QueueFull
from studio.session import SessionManager

__all__ = ["Studio", "Job", "Result", "Settings", "StudioError", "InvalidInput", "QueueFull",
           "PermissionDenied", "GeneratorUnavailable"]


class Studio:
    def __init__(self, settings: Settings | None = None, *,
                 registry: Mapping[str, str | type[Generator]] | None = None) -> None:
        self.settings = settings or Settings.load()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.assets = AssetStore(self.settings.outputs_dir)
        self.assets.sweep()  # finish or undo output writes a crash interrupted (studio.assets)
        self.session = SessionManager(self.settings, registry=registry, assets=self.assets)
        self.gate = self.session.gate  # the input checks every submit passes (studio.gate)
        self._taste: Any = None  # studio.taste.Taste, opened on first use (feedback DB + feature models)
        self._adapters: Any = None  # studio.adapters.Adapters (story adapters per user)

    # -- discovery -----------------------------------------------------------------------
    def generators(self) -> list[dict[str, Any]]:
        """Every registered generator with whether it can run now, and why not."""
        out = []
        for name in sorted(self.session.registry):
            entry: dict[str, Any] = {"name": name, "title": name, "description": "", "available": True,
                                     "reason": None, "loaded": self.session.cache.is_loaded(name)}
            try:
                cls = self.session.generator_class(name)
                entry.update(title=cls.title or name, description=cls.description)
                # a shipped file absent from this install: say so before a job fails (only when the
                # generator would load its shipped default, not a model the settings name)
                missing = None if self.settings.default_model(name) else cls.missing(self.settings.cache_dir)
                if missing:
                    entry.update(available=False, reason=missing)
            except StudioError as exc:
                entry.update(available=False, reason=str(exc))
            from studio import weights

            # `studio list` probes embedded weights, not just imports; but only those the
            # generator would load: a configured model of the creator's own replaces them
            uses_embedded = entry["available"] and not self.settings.default_model(name)
            damaged = weights.problems(name) if uses_embedded else []
            if damaged:
                entry.update(available=False, reason="; ".join(damaged))
            if name in self.session.unavailable:
                entry.update(available=False, reason=self.session.unavailable[name])
            out.append(entry)
        return out

    def describe(self, name: str) -> dict[str, Any]:
        """Title, description, devices and the JSON schema of the generator's parameters."""
        return self.session.generator_class(name).describe()

    # -- generating ----------------------------------------------------------------------
    def submit(self, name: str, params: Params | Mapping[str, Any] | None = None, *, seed: int | None = None,
               user: str | None = None, parents: list[str] | None = None, timeout: float | None = None,
               origin: str = "local", provenance: Mapping[str, Any] | None = None) -> Job:
        """Queue a job and return at once; iterate `job.events()`, then `job.result()`.

        `origin="remote"` for anything a browser or HTTP client sent: file parameters must then
        be uploads or outputs and models ones the studio lists (`studio.gate`).
        `provenance` adds keys to every output's record; a plain call records that no taste
        model chose it (`{"taste": {"setting": "off"}}`; see `best_of`).
        """
        provenance = {"taste": {"setting": "off", "best_of": None, "model": None}, **(provenance or {})}
        if name == "story":  # the creator's chosen story adapter, unless the request names one (studio.adapters)
            params, adapter = self.adapters.apply(user, params, origin)
            provenance = {**provenance, "adapter": adapter}  # None: the base model
        return self.session.submit(name, params, seed=seed, user=user, parents=parents, timeout=timeout,
                                   origin=origin, provenance=provenance)

    def generate(self, name: str, params: Params | Mapping[str, Any] | None = None, *, seed: int | None = None,
                 user: str | None = None, parents: list[str] | None = None,
                 timeout: float | None = None, origin: str = "local") -> Result:
        """Run one job to completion and return its Result (files in `result.assets`)."""
        return self.submit(name, params, seed=seed, user=user, parents=parents, timeout=timeout,
                           origin=origin).result()

    # -- taste (studio/taste.py) ------------------------------------------------------------
    @property
    def taste(self) -> Any:
        """Per-user taste models learned from the feedback store (`studio.taste.Taste`)."""
        if self._taste is None:
            from studio.feedback import FeedbackStore
            from studio.taste import Taste

            self._taste = Taste(FeedbackStore.for_settings(self.settings), self.settings.home,
                                outputs_root=self.assets.root)
        return self._taste

    @property
    def adapters(self) -> Any:
        """Per-user story adapters trained from ratings (`studio.adapters.Adapters`)."""
        if self._adapters is None:
            from studio.adapters import Adapters

            self._adapters = Adapters(self)
        return self._adapters

    def train_adapter(self, *, user: str | None = None, name: str = "my taste",
                      options: Mapping[str, Any] | None = None) -> Job:
        """Queue "train from my ratings": DPO on a LoRA over this user's story preference pairs."""
        return self.adapters.train(user, name=name, options=options)

    def best_of(self, name: str, params: Mapping[str, Any] | None = None, *, n: int = 8, keep: int = 1,
                seed: int | None = None, user: str | None = None, taste: str = "auto",
                timeout: float | None = None) -> dict[str, Any]:
        """N candidates, the `keep` best by this user's taste model (with scores and why)."""
        from studio.taste import best_of

        return best_of(self, name, params, n=n, keep=keep, seed=seed, user=user, taste=taste, timeout=timeout)

    # -- outputs -------------------------------------------------------------------------
    def history(self, *, generator: str | None = None, text: str | None = None, seed: int | None = None,
                limit: int = 100, user: str | None = None) -> list[dict[str, Any]]:
        """Asset records, newest first; they persist across restarts. With `user`, only theirs."""
        return self.assets.history(generator=generator, text=text, seed=seed, limit=limit, owner=user)

    def restore(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Generator, params and seed of any studio output file, ready to run again."""
        return restore(path).as_dict()

    def delete(self, path: str | os.PathLike[str], *, user: str | None = None) -> dict[str, Any]:
        """Delete the job that wrote this output (all its files, sidecars, index lines); undoable.

        With `user`, only that user's own outputs can be deleted (the browser always passes one)."""
        if user is not None and self.assets.owner_of(path) != user:
            raise PermissionDenied("only the creator who made an output can delete it")
        return self.assets.delete(path)

    def undelete(self, group: str, *, user: str | None = None) -> list[str]:
        """Undo `delete`: the job's files come back, with their history entries. With `user`,
        only a job of that user's own."""
        if user is not None and self.assets.trashed_owner(group) != user:
            raise PermissionDenied("only the creator who deleted a job can bring it back")
        return [str(p) for p in self.assets.undelete(group)]

    def rerun(self, path: str | os.PathLike[str], *, user: str | None = None, origin: str = "remote",
              **changes: Any) -> Result:
        """Run a studio output's generation again (same seed unless `seed=` is given).

        The provenance comes from a file anyone could have crafted (a downloaded PNG naming
        ~/.ssh/id_rsa as its style image), so by default it passes the gate as remote input: its
        files must be studio outputs or uploads. `origin="local"` trusts it like your own call."""
        restored = restore(path)
        seed = changes.pop("seed", restored.seed)
        params = {**restored.params, **changes}
        parent = restored.record.get("id")  # only sidecars carry ids; embedded records are id-free
        return self.generate(restored.generator, params, seed=seed, user=user,
                             parents=[parent] if parent else [], origin=origin)

    # -- control -------------------------------------------------------------------------
    def unload(self, name: str) -> int:
        return self.session.cache.unload(name)

    def pin(self, name: str, pinned: bool = True) -> int:
        return self.session.cache.pin(name, pinned)

    def status(self) -> dict[str, Any]:
        status = self.session.status()
        status.update(home=str(self.settings.home), outputs=str(self.assets.root),
                      workers=self.settings.workers)
        return status

    def close(self) -> None:
        self.session.close()
        if self._taste is not None:
            self._taste.feedback.close()

    def __enter__(self) -> "Studio":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
