"""Train the GAN generator's embedded default: a DCGAN on 32x32 KanjiVG glyphs.

    nice -n 10 python -m training.gan.train --minutes 15          # writes assets/gan/

Method: DCGAN (Radford et al., 2016) with the non-saturating loss, Adam(2e-4, betas 0.5/0.999),
an exponential moving average of G's weights (Karras et al., 2018) whose batch-norm statistics
are re-estimated before saving ("standing statistics", Brock et al., 2019). Every `--eval-every`
steps it measures squared MMD between 1,000 samples and the held-out glyphs, next to two
references (a held-out-sized slice of the training set, and a per-pixel Bernoulli baseline),
and the nearest-training-image distance of samples against that of held-out glyphs.

Outputs in --out: generator.safetensors (EMA G, config in the metadata), training.json (curves
and evaluation), samples.png (an 8x8 grid), TRAINING.md (how it was made, the numbers). The full
training state (G, D, EMA, optimisers) goes to the studio cache so `--resume` can continue.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from generators.gan_model import (DCDiscriminator, DCGenerator, GANConfig, count_params,
                                  init_weights, save_generator)
from training.gan import data as glyph_data
from training.gan import evaluate

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "assets" / "gan"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.gan.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for weights and logs")
    ap.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget for training")
    ap.add_argument("--steps", type=int, default=100_000, help="maximum optimiser steps")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--z-dim", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--size", type=int, default=32, help="image side in pixels")
    ap.add_argument("--stroke-width", type=float, default=6.0, help="pen width in KanjiVG units (of 109)")
    ap.add_argument("--spectral-norm", action="store_true",
                    help="spectral normalisation in D instead of batch norm (Miyato et al., 2018)")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="start G from a generator file: every tensor whose name and shape match is copied "
                         "(e.g. the 32 px model's first stages into a 64 px G of half the width)")
    ap.add_argument("--real-label", type=float, default=0.9, help="one-sided label smoothing target")
    ap.add_argument("--ema", type=float, default=0.999, help="EMA decay of G's weights")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N glyphs (smoke tests)")
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--eval-samples", type=int, default=640)
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--resume", action="store_true",
                    help="continue from the saved training state (G, D, EMA, optimisers, step)")
    ap.add_argument("--state", type=Path, default=None,
                    help="training-state file; default <studio cache>/gan/train_state_<size>px.pt")
    return ap.parse_args(argv)


def batches(images: np.ndarray, batch: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless shuffled epochs of (B, 1, S, S) tensors scaled to [-1, 1]."""
    x = torch.from_numpy(images).unsqueeze(1) * 2.0 - 1.0
    while True:
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x) - batch + 1, batch):
            yield x[order[i:i + batch]]


def train_step(G: DCGenerator, D: DCDiscriminator, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real: torch.Tensor, gen: torch.Generator,
               real_label: float = 0.9) -> dict[str, float]:
    """One DCGAN step (D then G) with the non-saturating loss; returns the losses.

    `real_label` < 1 is one-sided label smoothing (Salimans et al., 2016): sparse glyph images
    are easy to tell apart, and without it D wins within a few hundred steps.
    """
    n = real.shape[0]
    z = torch.randn(n, G.cfg.z_dim, generator=gen)
    fake = G(z)
    logit_real, logit_fake = D(real), D(fake.detach())
    loss_d = (F.binary_cross_entropy_with_logits(logit_real, torch.full_like(logit_real, real_label))
              + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    logit_gen = D(fake)
    loss_g = F.binary_cross_entropy_with_logits(logit_gen, torch.ones_like(logit_gen))
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_d": loss_d.detach().item(), "loss_g": loss_g.detach().item(),
            "d_real": torch.sigmoid(logit_real.detach()).mean().item(), "d_fake": torch.sigmoid(logit_fake.detach()).mean().item()}


@torch.no_grad()
def ema_update(ema: DCGenerator, G: DCGenerator, decay: float) -> None:
    for pe, p in zip(ema.parameters(), G.parameters()):
        pe.lerp_(p, 1.0 - decay)


@torch.no_grad()
def standing_stats(G: DCGenerator, gen: torch.Generator, n_batches: int = 16, batch: int = 256) -> DCGenerator:
    """A copy of G whose batch-norm running statistics are averaged over fresh samples."""
    out = copy.deepcopy(G)
    for m in out.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    out.train()
    for _ in range(n_batches):
        out(torch.randn(batch, out.cfg.z_dim, generator=gen))
    return out.eval()


@torch.no_grad()
def sample_images(G: DCGenerator, n: int, gen: torch.Generator) -> np.ndarray:
    G.eval()
    out = [G(torch.randn(min(500, n - i), G.cfg.z_dim, generator=gen)) for i in range(0, n, 500)]
    return ((torch.cat(out)[:, 0] + 1.0) / 2.0).clamp(0, 1).numpy()


@torch.no_grad()
def d_loss_on(D: DCDiscriminator, images: np.ndarray) -> float:
    """Discriminator BCE on real images labelled real (train vs held-out shows D overfitting)."""
    D.eval()
    x = torch.from_numpy(images[:2000]).unsqueeze(1) * 2.0 - 1.0
    logits = D(x)
    D.train()
    return float(F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))


def evaluate_generator(G: DCGenerator, D: DCDiscriminator, glyphs: glyph_data.GlyphSet, n: int,
                       seed: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    samples = sample_images(G, n, gen)
    held = glyphs.heldout
    train_ref = glyphs.train[rng.choice(len(glyphs.train), size=min(len(held), len(glyphs.train)), replace=False)]
    baseline = evaluate.pixel_baseline(glyphs.train, len(held), rng)
    hog_held = evaluate.hog_features(held)
    nn_sample = evaluate.nn_distances(samples, glyphs.train)
    nn_held = evaluate.nn_distances(held, glyphs.train)
    return {
        "hog_mmd2_samples_vs_heldout": evaluate.mmd_rbf(evaluate.hog_features(samples[: len(held)]), hog_held),
        "hog_mmd2_train_vs_heldout": evaluate.mmd_rbf(evaluate.hog_features(train_ref), hog_held),
        "hog_mmd2_pixel_baseline_vs_heldout": evaluate.mmd_rbf(evaluate.hog_features(baseline), hog_held),
        "mmd2_samples_vs_heldout": evaluate.mmd_rbf(samples[: len(held)], held),
        "mmd2_train_vs_heldout": evaluate.mmd_rbf(train_ref, held),
        "mmd2_pixel_baseline_vs_heldout": evaluate.mmd_rbf(baseline, held),
        "nn_dist_sample_to_train": evaluate.summary(nn_sample),
        "nn_dist_heldout_to_train": evaluate.summary(nn_held),
        "d_loss_real_train": d_loss_on(D, glyphs.train),
        "d_loss_real_heldout": d_loss_on(D, held),
        "components_samples": evaluate.components(samples),
        "components_heldout": evaluate.components(held),
        "mean_ink_samples": float(samples.mean()),
        "mean_ink_heldout": float(held.mean()),
    }


def save_grid(images: np.ndarray, path: Path, cols: int = 8) -> None:
    from PIL import Image

    rows = int(np.ceil(len(images) / cols))
    s = images.shape[-1]
    grid = np.zeros((rows * (s + 2) + 2, cols * (s + 2) + 2), np.float32)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[2 + r * (s + 2): 2 + r * (s + 2) + s, 2 + c * (s + 2): 2 + c * (s + 2) + s] = im
    img = Image.fromarray(np.round((1.0 - grid) * 255).astype(np.uint8))  # black ink on white
    img.resize((img.width * 3, img.height * 3), Image.Resampling.NEAREST).save(path)


def _atomic_json(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def write_training_md(log: dict[str, Any], path: Path) -> None:
    ev = log["final_eval"]
    ns, nh = ev["nn_dist_sample_to_train"], ev["nn_dist_heldout_to_train"]
    a = log["args"]
    text = f"""# GAN default weights: DCGAN on KanjiVG glyphs

Written by `python -m training.gan.train` (do not edit by hand; rerun to regenerate).

* Data: {log['data']['train']} training / {log['data']['heldout']} held-out KanjiVG glyphs
  (PyPI `kanjivg`, CC BY-SA 3.0), rasterised to {a['size']}x{a['size']} grayscale, pen width
  {a['stroke_width']} of 109 units. Held-out = last 10% of the sha256 space of file names.
* Model: DCGAN, z {a['z_dim']}, G {log['params']['generator']:,} parameters,
  D {log['params']['discriminator']:,}{' (spectral norm, no batch norm)' if a.get('spectral_norm') else ''};
  Adam lr {a['lr']}, batch {a['batch']}, real-label smoothing {a['real_label']}.
* Run: {log['steps']} steps in {log['wall_s'] / 60:.1f} min on {log['machine']}
  ({a['threads']} torch thread, `nice -n 10`, a 2-core machine shared with other jobs), in
  {len(log['sessions'])} session(s); the last stopped by {log['stopped_by']}.
  EMA decay min(step / (step + 10), {a['ema']}).
* Command: `{log['command']}`
* Continue training later (another budget of minutes on top): add `--resume`.

## Evaluation ({a['eval_samples']} samples, EMA generator, standing BN statistics)

Squared MMD (RBF kernel, median bandwidth; lower = closer to the held-out glyphs), on HOG
descriptors (headline) and on raw pixels:

| set vs held-out glyphs | HOG MMD^2 | pixel MMD^2 |
|---|---|---|
| GAN samples | {ev['hog_mmd2_samples_vs_heldout']:.4f} | {ev['mmd2_samples_vs_heldout']:.4f} |
| baseline: per-pixel Bernoulli | {ev['hog_mmd2_pixel_baseline_vs_heldout']:.4f} | {ev['mmd2_pixel_baseline_vs_heldout']:.4f} |
| reference: training glyphs | {ev['hog_mmd2_train_vs_heldout']:.4f} | {ev['mmd2_train_vs_heldout']:.4f} |

Nearest-training-image L2 distance (memorisation check; pixels in [0, 1]):

| | p05 | median | p95 |
|---|---|---|---|
| GAN sample -> train | {ns['p05']:.2f} | {ns['median']:.2f} | {ns['p95']:.2f} |
| held-out glyph -> train | {nh['p05']:.2f} | {nh['median']:.2f} | {nh['p95']:.2f} |

Connected ink regions per glyph (threshold 0.5, 8-connected; specks = regions of at most 2 px),
at {a['size']} px: samples {ev['components_samples']['components_per_glyph']:.2f} regions and
{ev['components_samples']['specks_per_glyph']:.2f} specks, held-out glyphs
{ev['components_heldout']['components_per_glyph']:.2f} and {ev['components_heldout']['specks_per_glyph']:.2f}.

Discriminator loss on real images labelled real: train {ev['d_loss_real_train']:.3f},
held-out {ev['d_loss_real_heldout']:.3f}. Curves: `training.json` (`curve`, `evals`).
Sample grid: `samples.png`.
"""
    path.write_text(text)


def warm_start(G: DCGenerator, path: Path) -> list[str]:
    """Copy into G every tensor of the generator file at `path` whose name and shape match.

    A 64 px G of width w shares its projection and first stages with a 32 px G of width 2w (same
    channels at 4x4, 8x8 and 16x16), so a trained 32 px model gives the coarse layout and the new
    stages learn the finer strokes (as in progressive growing, Karras et al., 2018)."""
    from safetensors.torch import load_file

    source = load_file(str(path))
    own = G.state_dict()
    copied = [k for k, v in source.items() if k in own and own[k].shape == v.shape]
    G.load_state_dict({**own, **{k: source[k] for k in copied}})
    return copied


def _state_path(args: argparse.Namespace) -> Path:
    return args.state or glyph_data.cache_dir() / "gan" / f"train_state_{args.size}px.pt"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    gen = torch.Generator().manual_seed(args.seed)
    glyphs = glyph_data.load_glyphs(args.size, args.stroke_width, limit=args.limit)
    print(f"data: {len(glyphs.train)} train / {len(glyphs.heldout)} held-out glyphs "
          f"({time.monotonic() - t0:.1f} s)", flush=True)
    cfg = GANConfig(z_dim=args.z_dim, width=args.width, image_size=args.size)
    G, D = DCGenerator(cfg), DCDiscriminator(cfg, spectral_norm=args.spectral_norm)
    init_weights(G, gen)
    init_weights(D, gen)
    if args.init_from is not None and not args.resume:
        copied = warm_start(G, args.init_from)
        print(f"G starts from {args.init_from}: {len(copied)} tensors copied", flush=True)
    ema = copy.deepcopy(G)
    opt_g = torch.optim.Adam(G.parameters(), args.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), args.lr, betas=(0.5, 0.999))
    args.out.mkdir(parents=True, exist_ok=True)
    command = "nice -n 10 python -m training.gan.train " + " ".join(argv if argv is not None else sys.argv[1:])
    log: dict[str, Any] = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "command": command,
        "config": asdict(cfg), "params": {"generator": count_params(G), "discriminator": count_params(D)},
        "data": {"source": "kanjivg", "train": len(glyphs.train), "heldout": len(glyphs.heldout)},
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}", "curve": [], "evals": [],
        "sessions": [],
    }
    step = 0
    state_path = _state_path(args)
    if args.resume:
        if not state_path.is_file():
            print(f"no training state to resume at {state_path}", file=sys.stderr)
            return 2
        state = torch.load(state_path, weights_only=True)
        if state["log"]["config"] != asdict(cfg):
            print(f"the saved state is for {state['log']['config']}, not {asdict(cfg)}", file=sys.stderr)
            return 2
        G.load_state_dict(state["G"])
        D.load_state_dict(state["D"])
        ema.load_state_dict(state["ema"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        gen.set_state(state["gen"])
        step = int(state["step"])
        log = {**state["log"], "args": log["args"], "command": state["log"]["command"] + " ; " + command}
        print(f"resumed at step {step}", flush=True)
    session_start = step

    def checkpoint() -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        torch.save({"G": G.state_dict(), "D": D.state_dict(), "ema": ema.state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "gen": gen.get_state(),
                    "step": step, "log": log}, tmp)
        os.replace(tmp, state_path)

    budget = args.minutes * 60.0
    it = batches(glyphs.train, min(args.batch, len(glyphs.train)), gen)
    acc: dict[str, float] = {}
    stopped_by = "step limit"
    while step < args.steps:
        if time.monotonic() - t0 > budget:
            stopped_by = "time budget"
            break
        G.train()
        D.train()
        losses = train_step(G, D, opt_g, opt_d, next(it), gen, args.real_label)
        # EMA with a warm-up ramp: averages over roughly the last tenth of training, capped at
        # --ema, so a short run is not dominated by its noisy first steps.
        ema_update(ema, G, min(args.ema, step / (step + 10.0)))
        for b_src, b_dst in zip(G.buffers(), ema.buffers()):
            b_dst.copy_(b_src)
        step += 1
        for k, v in losses.items():
            acc[k] = acc.get(k, 0.0) + v
        if step % args.log_every == 0:
            row = {"step": step, "time_s": round(time.monotonic() - t0, 1),
                   **{k: round(v / args.log_every, 4) for k, v in acc.items()}}
            log["curve"].append(row)
            acc = {}
            print(json.dumps(row), flush=True)
        if step % args.eval_every == 0:
            final = standing_stats(ema, torch.Generator().manual_seed(args.seed + 1))
            ev = {"step": step, **evaluate_generator(final, D, glyphs, args.eval_samples, args.seed + 2)}
            log["evals"].append(ev)
            print(json.dumps({k: ev[k] for k in ("step", "hog_mmd2_samples_vs_heldout", "mmd2_samples_vs_heldout")}),
                  flush=True)
            save_generator(final, args.out / "generator.tmp.safetensors")
            os.replace(args.out / "generator.tmp.safetensors", args.out / "generator.safetensors")
            log["steps"] = step
            _atomic_json(log, args.out / "training.json")
            checkpoint()
    final = standing_stats(ema, torch.Generator().manual_seed(args.seed + 1))
    log["sessions"].append({"steps": step - session_start, "wall_s": round(time.monotonic() - t0, 1),
                            "stopped_by": stopped_by, "command": command})
    log["steps"] = step
    log["stopped_by"] = stopped_by
    log["final_eval"] = {"step": step, **evaluate_generator(final, D, glyphs, args.eval_samples, args.seed + 2)}
    log["wall_s"] = round(sum(s["wall_s"] for s in log["sessions"]), 1)
    save_generator(final, args.out / "generator.tmp.safetensors",
                   extra={"trained_steps": str(step), "data": "kanjivg", "license": "CC-BY-SA-3.0 (training data)"})
    os.replace(args.out / "generator.tmp.safetensors", args.out / "generator.safetensors")
    save_grid(sample_images(final, 64, torch.Generator().manual_seed(args.seed + 3)), args.out / "samples.png")
    _atomic_json(log, args.out / "training.json")
    write_training_md(log, args.out / "TRAINING.md")
    checkpoint()
    print(json.dumps({"steps": step, "wall_s": log["wall_s"], **{k: v for k, v in log["final_eval"].items()
                                                                 if "mmd2" in k}}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
