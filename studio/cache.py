"""The model cache: loaded generators kept resident under per-pool memory budgets.

Before a load, the generator's `estimate_bytes()` is reserved against its pool ("ram" or
"cuda:N"). Models that fit stay resident together; when a new one does not fit, the
least-recently-used models that no job is using (and that are not pinned) are unloaded first.
A model larger than the whole budget is refused up front with a clear message.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable

from generators.base import Generator, OutOfMemory
from studio.devices import free_memory


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.2f} GiB"


@dataclass
class CacheEntry:
    key: Hashable
    name: str
    generator: Generator
    device: Any  # torch.device
    pool: str
    nbytes: int
    load_s: float
    in_use: int = 0
    pinned: bool = False
    last_used: float = field(default_factory=time.monotonic)
    uses: int = 0

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "key": repr(self.key), "device": str(self.device), "pool": self.pool,
                "bytes": self.nbytes, "in_use": self.in_use, "pinned": self.pinned,
                "load_s": round(self.load_s, 4), "uses": self.uses}


class ModelCache:
    def __init__(self, budget_for: Callable[[str], int], wait_s: float = 60.0) -> None:
        self._budget_for = budget_for  # pool -> bytes, computed lazily (needs torch for cuda)
        self._budgets: dict[str, int] = {}
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()  # LRU order: oldest first
        self._loading: dict[Hashable, tuple[str, int]] = {}  # key -> (pool, reserved bytes)
        self._cond = threading.Condition(threading.RLock())
        self.wait_s = wait_s  # how long a load waits for busy models to be released

    # -- budgets -------------------------------------------------------------------------
    def budget(self, pool: str) -> int:
        with self._cond:
            if pool not in self._budgets:
                self._budgets[pool] = self._budget_for(pool)
            return self._budgets[pool]

    def used(self, pool: str) -> int:
        with self._cond:
            resident = sum(e.nbytes for e in self._entries.values() if e.pool == pool)
            return resident + sum(n for p, n in self._loading.values() if p == pool)

    # -- acquire / release ---------------------------------------------------------------
    def acquire(self, key: Hashable, name: str, make: Callable[[], Generator], device: Any, pool: str,
                load: Callable[[Generator], None]) -> tuple[CacheEntry, bool]:
        """The resident entry for `key` (hit) or a freshly loaded one (miss), marked in use."""
        deadline = time.monotonic() + self.wait_s
        generator: Generator | None = None
        with self._cond:
            while True:
                entry = self._entries.get(key)
                if entry is not None:
                    entry.in_use += 1
                    entry.uses += 1
                    entry.last_used = time.monotonic()
                    self._entries.move_to_end(key)
                    return entry, True
                if key in self._loading:  # another worker is loading the same model
                    self._wait(deadline, f"{name} is still loading")
                    continue
                if generator is None:
                    generator = make()
                need = max(0, int(generator.estimate_bytes()))
                budget = self.budget(pool)
                if need > budget:
                    raise OutOfMemory(f"{name} needs about {_gib(need)} but the {pool} budget is "
                                      f"{_gib(budget)}; raise the budget or choose a smaller model")
                if self.used(pool) + need > budget:
                    self._evict_until(pool, budget - need)
                if self.used(pool) + need > budget:
                    self._wait(deadline, f"not enough {pool} memory for {name}: other jobs hold the models")
                    continue
                self._loading[key] = (pool, need)
                break
        started = time.perf_counter()
        try:
            load(generator)
        except BaseException:
            with self._cond:
                del self._loading[key]
                self._cond.notify_all()
            raise
        entry = CacheEntry(key=key, name=name, generator=generator, device=device, pool=pool, nbytes=need,
                           load_s=time.perf_counter() - started, in_use=1, uses=1)
        with self._cond:
            del self._loading[key]
            self._entries[key] = entry
            self._cond.notify_all()
        return entry, False

    def _wait(self, deadline: float, why: str) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutOfMemory(why)
        self._cond.wait(timeout=min(remaining, 1.0))

    def release(self, entry: CacheEntry) -> None:
        with self._cond:
            entry.in_use = max(0, entry.in_use - 1)
            entry.last_used = time.monotonic()
            self._cond.notify_all()

    # -- eviction ------------------------------------------------------------------------
    def _evict_until(self, pool: str, target_used: int) -> int:
        freed = 0
        for key in list(self._entries):  # oldest first
            if self.used(pool) <= target_used:
                break
            entry = self._entries[key]
            if entry.pool == pool and entry.in_use == 0 and not entry.pinned:
                freed += self._drop(key)
        if freed:
            free_memory()
        return freed

    def _drop(self, key: Hashable) -> int:
        entry = self._entries.pop(key)
        try:
            entry.generator.unload()
        finally:
            self._cond.notify_all()
        return entry.nbytes

    def evict_unused(self, pool: str | None = None) -> int:
        """Unload every idle, unpinned model (in one pool, or all); returns bytes freed."""
        with self._cond:
            freed = sum(self._drop(k) for k, e in list(self._entries.items())
                        if (pool is None or e.pool == pool) and e.in_use == 0 and not e.pinned)
        free_memory()
        return freed

    def discard(self, entry: CacheEntry) -> None:
        """Drop a model whose state may be corrupt (after an OOM mid-run), even if pinned."""
        with self._cond:
            if self._entries.get(entry.key) is entry:
                self._drop(entry.key)
        free_memory()

    def unload(self, name: str) -> int:
        """Explicitly unload every idle instance of a generator; returns bytes freed."""
        with self._cond:
            freed = sum(self._drop(k) for k, e in list(self._entries.items()) if e.name == name and e.in_use == 0)
        free_memory()
        return freed

    def pin(self, name: str, pinned: bool = True) -> int:
        """Keep (or stop keeping) a generator's resident models from eviction; returns how many."""
        with self._cond:
            hits = [e for e in self._entries.values() if e.name == name]
            for e in hits:
                e.pinned = pinned
            return len(hits)

    def is_loaded(self, name: str) -> bool:
        with self._cond:
            return any(e.name == name for e in self._entries.values())

    def snapshot(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e.info() for e in self._entries.values()]

    def budgets(self) -> dict[str, dict[str, int]]:
        with self._cond:
            return {p: {"budget": b, "used": self.used(p)} for p, b in self._budgets.items()}

    def clear(self) -> None:
        with self._cond:
            for key in list(self._entries):
                self._drop(key)
        free_memory()
