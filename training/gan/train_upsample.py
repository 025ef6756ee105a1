"""Train the learned 32 -> 64 px stage (generators/gan_upsample.py) on top of the shipped 32 px G.

    nice -n 5 timeout 45m python -m training.gan.train_upsample --minutes 35 --out /tmp/gan-up

Pairs: every training glyph rasterised at 32 px (the input; what the 32 px G imitates) and at
64 px (the target), the same KanjiVG strokes and pen width. The input is corrupted as generated
glyphs are (Gaussian noise, ink gamma, a light blur, stray 1-2 px specks that the target lacks)
so the stage cleans what G draws rather than only sharpening perfect rasters. Loss: per-pixel
binary cross-entropy of the 64 px ink. Only this stage trains; G stays as shipped.
Every --eval-every steps (and at the end) it measures what bench_gan measures at 64 px, on
--eval-samples glyphs of the shipped G passed through the stage, against the held-out glyphs
rasterised at 64 px: HOG MMD^2, connected ink regions and specks per glyph; next to today's
path (the same G samples upscaled 2x bicubic, as the generator does). The checkpoint with the
lowest HOG MMD^2 is kept (`upsampler.safetensors` in --out, every evaluated one as
`upsampler-<step>.safetensors`) with `training.json` beside it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from generators.gan_model import load_generator
from generators.gan_upsample import GlyphUpsampler, UpsamplerConfig, save_upsampler
from training.gan import evaluate
from training.gan.data import load_glyphs

ROOT = Path(__file__).resolve().parents[2]


def corrupt(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """x: (B, 1, S, S) ink in [0, 1] -> the same glyphs with generated-image faults."""
    b = x.shape[0]
    gamma = torch.empty(b, 1, 1, 1).uniform_(0.7, 1.4, generator=gen)
    x = x.clamp(0, 1) ** gamma
    blur = torch.rand(b, generator=gen) < 0.5  # a light 3x3 blur on half of them
    k = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16.0
    blurred = F.conv2d(x, k.view(1, 1, 3, 3), padding=1)
    x = torch.where(blur.view(b, 1, 1, 1), blurred, x)
    s = x.shape[-1]
    for i in range(b):  # 0-3 stray specks of 1 or 2 px
        for _ in range(int(torch.randint(0, 4, (1,), generator=gen))):
            r, c = (int(v) for v in torch.randint(1, s - 2, (2,), generator=gen))
            ink = float(torch.empty(1).uniform_(0.5, 1.0, generator=gen))
            x[i, 0, r, c] = max(float(x[i, 0, r, c]), ink)
            if torch.rand(1, generator=gen) < 0.5:
                x[i, 0, r, c + 1] = max(float(x[i, 0, r, c + 1]), ink)
    sigma = torch.empty(b, 1, 1, 1).uniform_(0.0, 0.08, generator=gen)
    return (x + sigma * torch.randn(x.shape, generator=gen)).clamp(0, 1)


@torch.no_grad()
def g_samples(path: Path, n: int, seed: int) -> torch.Tensor:
    """n untruncated 32 px samples of the generator at `path`, ink in [0, 1], as GlyphGAN draws them."""
    G = load_generator(path)
    gen = torch.Generator().manual_seed(seed)
    z = torch.empty(n, G.cfg.z_dim).normal_(generator=gen)
    return ((G(z) + 1) / 2).clamp(0, 1)


def bicubic_2x(ink: torch.Tensor) -> np.ndarray:
    """Today's 64 px path: each 32 px image upscaled 2x with PIL's bicubic filter, 8-bit, as GlyphGAN does."""
    from PIL import Image

    out = []
    for im in ink[:, 0].numpy():
        img = Image.fromarray(np.round(im * 255).astype(np.uint8))
        out.append(np.asarray(img.resize((img.width * 2, img.height * 2), Image.Resampling.BICUBIC), np.float32) / 255)
    return np.stack(out)


def measures(images: np.ndarray, held: np.ndarray, hog_held: np.ndarray) -> dict[str, float]:
    images = np.round(images * 255) / 255  # what a creator gets: 8-bit pixels
    comp = evaluate.components(images)
    return {"hog_mmd2_vs_heldout": round(evaluate.mmd_rbf(evaluate.hog_features(images[:len(held)]), hog_held), 4),
            "components_per_glyph": comp["components_per_glyph"], "specks_per_glyph": comp["specks_per_glyph"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.gan.train_upsample", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, default=ROOT / "assets" / "gan" / "generator.safetensors")
    ap.add_argument("--out", type=Path, default=Path("/tmp/gan-up"))
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-samples", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.monotonic()
    small, large = load_glyphs(32, 6.0), load_glyphs(64, 6.0)
    x32 = torch.from_numpy(small.train).unsqueeze(1)
    x64 = torch.from_numpy(large.train).unsqueeze(1)
    held, hog_held = large.heldout, evaluate.hog_features(large.heldout)
    fakes = g_samples(args.generator, args.eval_samples, args.seed + 1000)
    net = GlyphUpsampler(UpsamplerConfig(width=args.width, blocks=args.blocks))
    opt = torch.optim.Adam(net.parameters(), args.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    log = {"command": "python -m training.gan.train_upsample " + " ".join(argv if argv is not None else sys.argv[1:]),
           "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           "params": sum(p.numel() for p in net.parameters()),
           "reference": {"heldout_64px": {k: v for k, v in evaluate.components(held).items() if k != "glyphs"},
                         "today_bicubic_2x": measures(bicubic_2x(fakes), held, hog_held)},
           "evals": []}
    print(json.dumps(log["reference"]), flush=True)

    def run_eval(step: int) -> float:
        net.eval()
        with torch.no_grad():
            up = ((net(fakes * 2 - 1) + 1) / 2).clamp(0, 1)[:, 0].numpy()
        net.train()
        m = {"step": step, "minutes": round((time.monotonic() - t0) / 60, 2), **measures(up, held, hog_held)}
        log["evals"].append(m)
        print(json.dumps(m), flush=True)
        return m["hog_mmd2_vs_heldout"]

    best, step, acc = float("inf"), 0, 0.0
    while time.monotonic() - t0 < args.minutes * 60:
        idx = torch.randint(0, len(x32), (args.batch,), generator=gen)
        inp = corrupt(x32[idx].clone(), gen) * 2 - 1
        loss = F.binary_cross_entropy_with_logits(net.logits(inp), x64[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        acc += float(loss.detach())
        if step % 100 == 0:
            print(json.dumps({"step": step, "bce": round(acc / 100, 4)}), flush=True)
            acc = 0.0
        if step % args.eval_every == 0:
            score = run_eval(step)
            # every evaluated checkpoint too (40k parameters each), to choose by regions and specks later
            save_upsampler(net, args.out / f"upsampler-{step}.safetensors", extra={"step": str(step)})
            if score < best:
                best = score
                save_upsampler(net, args.out / "upsampler.safetensors", extra={"step": str(step)})
    score = run_eval(step)
    if score < best:
        save_upsampler(net, args.out / "upsampler.safetensors", extra={"step": str(step)})
    log["steps"], log["minutes"] = step, round((time.monotonic() - t0) / 60, 2)
    (args.out / "training.json").write_text(json.dumps(log, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
