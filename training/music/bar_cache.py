"""Fit the bar cache's beta (generators/music_lib/bar_cache.py) by maximum likelihood on real tunes.

For every bar start of every validation tune (the same points where the decoder may copy), the
model gives S, its probability of writing any earlier bar (the candidates) next, and we note
whether the tune really writes one. The cache changes the tune's log-likelihood by
sum [r log beta - log(1 + (beta - 1) S)], concave in log beta: beta is its maximiser (golden-section
search on log beta). The same sum on the test split, over the test tokens, is the held-out NLL
change per token the cache brings (the model's own NLL is unchanged).

    python -m training.music.bar_cache [--model lstm] [--limits "essen=2453, bach=128"] [--skip-test] [--max-tunes N]
    # writes assets/music/bar_cache.json (beta per weights sha256, with the numbers)
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time


def bar_starts(model, row) -> tuple[list[bool], list[float], int]:
    """(real bar is a candidate, S) at each bar start of one tokenised tune, and its token count."""
    import torch

    from generators.music_lib import bar_cache, decode
    from generators.music_lib import vocab as V

    ids, meter, mode, style, pos = row
    toks = V.decode(ids)
    cond = model.cond(torch.tensor([meter]), torch.tensor([mode]),
                      torch.nn.functional.one_hot(torch.tensor([style]), len(V.STYLES)).float())
    state_row = decode.RowState(V.METERS[list(V.METERS)[meter]], min_bars=10 ** 6, max_bars=10 ** 6)
    use_pos = getattr(model.cfg, "positions", False)
    logits, state = model.prime(torch.tensor([ids[:1]]), cond, torch.tensor([pos[:1]]) if use_pos else None)
    hits, masses = [], []
    for t in range(1, len(toks)):
        cands = bar_cache.candidates(state_row)
        if cands:
            logp = bar_cache.candidate_logprobs(model, logits[0], state, 0, state_row.tracker, cands, 1.0)
            hits.append(any(tuple(toks[t:t + len(c)]) == c for c in cands))
            masses.append(min(1.0, float(torch.exp(torch.logsumexp(logp, dim=0)))))
        if toks[t] == V.EOS:
            break
        state_row.push(toks[t])
        logits, state = model.step(torch.tensor([ids[t]]), state, torch.tensor([pos[t]]) if use_pos else None)
    return hits, masses, len(ids) - 1


def collect(model, rows) -> tuple[list[bool], list[float], int]:
    import torch

    hits, masses, tokens = [], [], 0
    with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=False):
        for row in rows:
            h, m, n = bar_starts(model, row)
            hits += h
            masses += m
            tokens += n
    return hits, masses, tokens


def fit_beta(hits: list[bool], masses: list[float]) -> float:
    from generators.music_lib.bar_cache import log_gain

    lo, hi = 0.0, math.log(1e4)  # log beta in [0, 9.2]: beta >= 1 (a cache never penalises copies)
    g = (math.sqrt(5) - 1) / 2
    for _ in range(80):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if log_gain(math.exp(a), hits, masses) < log_gain(math.exp(b), hits, masses):
            lo = a
        else:
            hi = b
    return math.exp((lo + hi) / 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.music.bar_cache")
    ap.add_argument("--model", default="lstm", help="an embedded model name")
    ap.add_argument("--limits", default=None, help="corpus limits (default: the shipped model's)")
    ap.add_argument("--skip-test", action="store_true", help="fit only; no held-out NLL change on the test split")
    ap.add_argument("--max-tunes", type=int, default=0, help="fit on at most this many validation (and test) "
                    "tunes, taken evenly through the split (0 = all): bounds the cost on a busy machine")
    ap.add_argument("--weights", default="", help="a .safetensors file to fit for (default: the embedded model's)")
    args = ap.parse_args(argv)
    import torch

    from generators.base import file_sha256
    from generators.music import EMBEDDED
    from generators.music_lib import bar_cache
    from generators.music_lib.compose import load_model
    from training.music import data as D

    torch.set_num_threads(1)
    D.apply_limits(args.limits if args.limits is not None else D.shipped_limits())
    splits = D.tokenised(D.load_tunes())
    if args.max_tunes:
        splits = {k: v[::max(1, len(v) // args.max_tunes)][:args.max_tunes] for k, v in splits.items()}
    from pathlib import Path

    weights = Path(args.weights) if args.weights else EMBEDDED[args.model]
    model, _cfg = load_model(weights)
    t0 = time.time()
    vh, vm, vt = collect(model, splits["valid"])
    beta = fit_beta(vh, vm)
    entry = {"model": args.model, "beta": round(beta, 3), "fitted_on": "valid", "limits": dict(D.LIMITS),
             "valid_tunes": len(splits["valid"]),
             "valid_bar_starts": len(vh), "valid_real_copies": round(sum(vh) / len(vh), 4),
             "valid_model_copy_mass_mean": round(sum(vm) / len(vm), 4),
             "valid_nll_change_per_token": round(-bar_cache.log_gain(beta, vh, vm) / vt, 4)}
    if not args.skip_test:
        th, tm, tt = collect(model, splits["test"])
        entry.update({"test_bar_starts": len(th), "test_real_copies": round(sum(th) / len(th), 4),
                      "test_model_copy_mass_mean": round(sum(tm) / len(tm), 4), "test_tokens": tt,
                      "test_nll_change_per_token": round(-bar_cache.log_gain(beta, th, tm) / tt, 4)})
    entry["seconds"] = round(time.time() - t0, 1)
    try:
        table = json.loads(bar_cache.FITTED.read_text())
    except (OSError, ValueError):
        table = {"about": "bar cache beta per model weights (sha256), fitted by training.music.bar_cache",
                 "models": {}}
    table["models"][file_sha256(weights)] = entry
    bar_cache.FITTED.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(entry, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
