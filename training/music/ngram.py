"""An interpolated n-gram baseline over the same tokens (Jelinek-Mercer smoothing).

p(w | h) = sum_k lambda_k * p_ML(w | last k-1 tokens), k = 1..n, plus a uniform floor; the
lambdas are picked on the validation split by a small grid. It sees no conditioning (meter,
mode, style), which the neural models do: that is part of what they are measured against.
"""
from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict

from generators.music_lib import vocab as V


class NGram:
    def __init__(self, order: int = 5) -> None:
        self.order = order
        self.counts: list[dict[tuple[int, ...], Counter]] = [defaultdict(Counter) for _ in range(order)]
        self.lambdas: tuple[float, ...] = tuple([1.0 / (order + 1)] * (order + 1))

    def fit(self, seqs: list[list[int]]) -> "NGram":
        for s in seqs:
            for t in range(1, len(s)):
                for k in range(self.order):
                    if t - k < 0:
                        break
                    self.counts[k][tuple(s[t - k:t])][s[t]] += 1
        self._totals = [{h: sum(c.values()) for h, c in level.items()} for level in self.counts]
        return self

    def _probs(self, s: list[int], t: int) -> list[float]:
        out = [1.0 / V.VOCAB_SIZE]
        for k in range(self.order):
            h = tuple(s[t - k:t]) if t - k >= 0 else None
            tot = self._totals[k].get(h, 0) if h is not None else 0
            out.append(self.counts[k][h][s[t]] / tot if tot else 0.0)
        return out

    def nll(self, seqs: list[list[int]], lambdas: tuple[float, ...] | None = None) -> float:
        lam = lambdas or self.lambdas
        total, n = 0.0, 0
        for s in seqs:
            for t in range(1, len(s)):
                p = sum(l * q for l, q in zip(lam, self._probs(s, t)))
                total -= math.log(p)
                n += 1
        return total / max(n, 1)

    def tune(self, valid: list[list[int]]) -> "NGram":
        """Pick interpolation weights on validation data by a coarse grid (numpy, vectorised)."""
        import numpy as np

        P = np.array([self._probs(s, t) for s in valid for t in range(1, len(s))])  # (N, order+1)
        grid = [0.5, 1, 2, 4, 8]
        best = (float("inf"), self.lambdas)
        for ws in itertools.product(grid, repeat=self.order):
            lam = np.array((0.01, *ws))
            lam = lam / lam.sum()
            nll = float(-np.log(P @ lam).mean())
            if nll < best[0]:
                best = (nll, tuple(float(x) for x in lam))
        self.lambdas = best[1]
        return self
