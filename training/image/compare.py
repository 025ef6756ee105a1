"""Held-out losses of saved image pipelines, like for like, whatever each one predicts.

    python -m training.image.compare assets/image/kanji-glyphs-64 /tmp/run/kanji-glyphs-64

Each folder is loaded as `DiffusionPipeline.from_pretrained` loads it (its own text encoder, so
standardised and raw caption features are each read by the UNet trained on them). On the same
held-out glyphs, timesteps and noise, every model's output is turned into a noise estimate and
a clean-image estimate (epsilon and v predictions are both linear in the noisy image), and this
prints the epsilon MSE over all timesteps (the training loss of an epsilon model) and the clean-
image MSE at t >= 500, where the caption decides the layout; each with the right captions and
with another radical's caption (rolled by half the batch): right < other = the caption is read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from training.image import data as cap_data
from training.image import text_encoder as te
from training.image import train as T


@torch.no_grad()
def losses(folder: str, x0: torch.Tensor, captions: list[str], seed: int = 1234, batch: int = 32) -> dict[str, float]:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(folder, dtype=torch.float32, local_files_only=True)
    unet, pred_type = pipe.unet.eval(), pipe.scheduler.config.prediction_type
    sched, _ = T.make_schedulers(pred_type)
    feats = te.encode(pipe.text_encoder, pipe.tokenizer, captions).float()
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, T.NUM_TRAIN_TIMESTEPS, (len(x0),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    out: dict[str, float] = {}
    for name, emb in (("right", feats), ("other", torch.roll(feats, len(feats) // 2, 0))):
        eps_se, x0_se, hi = [], [], []
        for i in range(0, len(x0), batch):
            s = slice(i, i + batch)
            xt = sched.add_noise(x0[s], noise[s], t[s])
            pred = unet(xt, t[s], encoder_hidden_states=emb[s]).sample[:, :x0.shape[1]]
            ac = sched.alphas_cumprod[t[s]].view(-1, 1, 1, 1)
            if pred_type == "v_prediction":
                eps = ac.sqrt() * pred + (1 - ac).sqrt() * xt
                x0_hat = ac.sqrt() * xt - (1 - ac).sqrt() * pred
            else:
                eps = pred
                x0_hat = (xt - (1 - ac).sqrt() * pred) / ac.sqrt()
            eps_se.append((eps - noise[s]).pow(2).mean((1, 2, 3)))
            x0_se.append((x0_hat.clamp(-1, 1) - x0[s]).pow(2).mean((1, 2, 3)))
            hi.append(t[s] >= T.HIGH_T)
        e, x, h = torch.cat(eps_se), torch.cat(x0_se), torch.cat(hi)
        out[f"eps_mse_{name}"] = float(e.mean())
        out[f"x0_mse_t500_{name}"] = float(x[h].mean())
    out["x0_gap_t500"] = out["x0_mse_t500_other"] / out["x0_mse_t500_right"] - 1
    out["prediction"] = pred_type  # type: ignore[assignment]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.image.compare", description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--n", type=int, default=384, help="held-out glyphs")
    args = ap.parse_args(argv)
    for f in args.folders:  # before the glyphs are loaded
        if not (Path(f) / "model_index.json").is_file():
            ap.error(f"{f} is not a diffusers pipeline folder (it has no model_index.json)")
    torch.set_num_threads(1)
    ds = cap_data.load()
    held = ds.subset(ds.heldout)
    idx = np.arange(min(args.n, len(held.captions)))
    x0 = T.to_pixels(held.images[idx])
    res = {f: losses(f, x0, [held.captions[i] for i in idx]) for f in args.folders}
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
