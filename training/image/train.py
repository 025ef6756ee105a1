"""Train the image generator's embedded default: text-to-image diffusion on captioned kanji.

    nice -n 5 python -m training.image.train --minutes 55        # writes assets/image/kanji-glyphs-64/

Method: a pixel-space DDPM (Ho et al. 2020) with the cosine noise schedule (Nichol & Dhariwal
2021) at 64x64, the layout of DeepFloyd IF stage I (a text-conditioned pixel UNet); the UNet is
diffusers' `UNet2DConditionModel` cross-attending to the token features of the cut-down MiniLM
(training.image.text_encoder), standardised per dimension (training.image.standardize), and
predicting v (Salimans & Ho 2022; the shipped model predicted epsilon up to step 6,203: see
assets/image/TRAINING.md). The caption is dropped 10% of the time so one model gives both the
conditional and the unconditional prediction: classifier-free guidance (Ho & Salimans 2022).
AdamW with warm-up, an EMA of the weights (what is saved). Sampling uses DPM-Solver++ (Lu et al.
2022), 20 steps.

Every `--eval-every` steps: the diffusion loss (MSE of what the UNet predicts) of the EMA model on
a fixed batch of held-out glyphs (captions never trained on) and of training glyphs, with the same
timesteps and noise, next to the trivial baseline that predicts zero (loss = mean squared noise =
~1.0); and the same held-out glyphs with another radical's caption. Like-for-like losses of saved
pipelines whatever they predict: `python -m training.image.compare FOLDER...`.

Outputs in --out, a standard diffusers folder that `DiffusionPipeline.from_pretrained` loads as
an `IFPipeline`: model_index.json, unet/, text_encoder/, tokenizer/, scheduler/ (fp16
safetensors, upcast at load). Beside it (assets/image/): training.json, samples.png and TRAINING.md.
The full state (model, EMA, optimiser) goes to the studio cache for `--resume`.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from training.image import data as cap_data
from training.image import standardize as std
from training.image import text_encoder as te

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "assets" / "image" / "kanji-glyphs-64"
NUM_TRAIN_TIMESTEPS = 1000
CAPTIONS = "radical + meaning + parts"  # recorded with each evaluation (steps 0-2,799: meaning; -3,357: + parts)
HIGH_T = 500  # the gap with shuffled captions is also measured at t >= HIGH_T, where the caption decides the layout
TOP_T = 900  # ... and at t >= TOP_T, where at 64 px the noisy image no longer shows the layout


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m training.image.train", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the pipeline folder to write")
    ap.add_argument("--minutes", type=float, default=55.0, help="wall-clock budget for training")
    ap.add_argument("--steps", type=int, default=1_000_000, help="maximum optimiser steps")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=6e-4)
    ap.add_argument("--warmup", type=int, default=100, help="linear learning-rate warm-up steps")
    ap.add_argument("--lr-final", type=float, default=1.0,
                    help="learning-rate multiplier reached at the end of --minutes, decaying linearly in "
                         "wall-clock time from 1 (e.g. 0.1 for a closing anneal; 1 = constant)")
    ap.add_argument("--ema", type=float, default=0.998, help="EMA decay of the weights (saved model)")
    ap.add_argument("--drop", type=float, default=0.1, help="caption dropout for classifier-free guidance")
    ap.add_argument("--short", type=float, default=0.25,
                    help="share of steps that see the caption without its parts, so that a bare "
                         "\"a character meaning '...'\" prompt stays in distribution")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N glyph files (smoke tests)")
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--eval-n", type=int, default=192, help="images in each loss evaluation")
    ap.add_argument("--save-every-min", type=float, default=10.0, help="write the pipeline this often")
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--resume", action="store_true", help="continue from the cached training state")
    ap.add_argument("--regrow", action="store_true",
                    help="with --resume: start the pooled-caption pathway afresh (new optimiser state)")
    ap.add_argument("--t-min", type=int, default=0,
                    help="train on timesteps t_min..999 only: the noise levels where the caption decides "
                         "the layout (at low noise the glyph is already fixed by the noisy image)")
    ap.add_argument("--top-share", type=float, default=0.5,
                    help="share of each batch drawn from timesteps --top-min..999 (the rest uniform; 0.5 made "
                         "the shipped model read its caption, 0 = uniform): at 64 px "
                         "the layout is still readable in the noisy image down to SNR ~0.02 (t ~900: an 8x8 "
                         "block average has 64x the SNR), so only the top noise levels leave the layout, "
                         "and so the radical, to the caption")
    ap.add_argument("--top-min", type=int, default=900)
    ap.add_argument("--snr-gamma", type=float, default=0.0,
                    help="Min-SNR-gamma loss weighting (Hang et al. 2023), e.g. 5: the epsilon loss at "
                         "timestep t is weighted min(1, gamma / SNR(t)), so the low-noise steps (where the "
                         "caption cannot matter) no longer dominate the gradient; 0 = uniform")
    ap.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                    help="train on caption features centred and scaled per dimension (training.image."
                         "standardize), folded into the saved text encoder; a state trained on raw features "
                         "is carried over exactly (cross-attention) and its pooled pathway restarted")
    ap.add_argument("--prediction", choices=("epsilon", "v_prediction"), default=None,
                    help="what the UNet predicts (default: what the resumed state used, else v). "
                         "v = sqrt(abar) eps - sqrt(1 - abar) x0 (Salimans & Ho 2022): at high noise it is "
                         "the clean image, so the loss there measures the layout, which the caption decides; "
                         "an epsilon error at high noise is scaled down by the SNR (0.006 at t 950)")
    ap.add_argument("--state", default="train_state.pt",
                    help="the training-state file in the studio cache (another name: a separate experiment)")
    ap.add_argument("--cond-lr", type=float, default=1.0,
                    help="learning-rate multiplier for the caption pathways (cross-attention, pooled caption)")
    args = ap.parse_args(argv)
    # checked before any data or model is loaded, each with the reason
    if not 0.0 <= args.top_share <= 1.0:
        ap.error(f"--top-share is a share of each batch, between 0 and 1; got {args.top_share}")
    if not args.t_min <= args.top_min < NUM_TRAIN_TIMESTEPS:
        ap.error(f"--top-min must lie in --t-min..{NUM_TRAIN_TIMESTEPS - 1} ({args.t_min}..); got {args.top_min}")
    if not 0.0 < args.lr_final <= 1.0:
        ap.error(f"--lr-final is the multiplier the learning rate decays to, in (0, 1]; got {args.lr_final}")
    return args


def make_unet():
    from diffusers import UNet2DConditionModel

    # out_channels 6: IFPipeline splits the output into noise (trained) and a learned-variance
    # half, which it ignores with a fixed-variance scheduler; only the noise half is trained.
    # Four levels 64/32/16/8 px; cheap convolutions at full resolution (16 channels), attention
    # (self + cross to the caption) only at 16 and 8 px where it is affordable on a CPU.
    # addition_embed_type "text" (as DeepFloyd IF stage I): the caption, attention-pooled, is
    # also added to the timestep embedding, so it reaches every ResNet block at every size. Why:
    # after 2,799 steps of cross-attention alone the model's loss was the same with the right,
    # a shuffled or an empty caption; a global pathway is how class-conditional UNets learn fast.
    unet = UNet2DConditionModel(
        sample_size=cap_data.SIZE, in_channels=3, out_channels=6, layers_per_block=1,
        block_out_channels=(16, 32, 64, 96),
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        cross_attention_dim=384, attention_head_dim=4, norm_num_groups=8,
        addition_embed_type="text", addition_embed_type_num_heads=8)
    small_text_embedding(unet)
    return unet


def small_text_embedding(unet, gain: float = 0.1) -> None:
    """Start the pooled-caption pathway small (its last LayerNorm's scale 0.1, shift 0), so adding
    it to a trained model barely changes it. Not zero: with a zero scale the layer below gets no
    gradient, and 140 steps moved the scale only to ~4e-4."""
    with torch.no_grad():
        unet.add_embedding.norm2.weight.fill_(gain)
        unet.add_embedding.norm2.bias.zero_()


def make_schedulers(prediction: str = "epsilon"):
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

    train = DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                          prediction_type=prediction, variance_type="fixed_small", clip_sample=True)
    # Sampling: DPM-Solver++ 2M; dynamic thresholding (Imagen) keeps guided pixels in range.
    sample = DPMSolverMultistepScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2",
                                         prediction_type=prediction, algorithm_type="dpmsolver++",
                                         thresholding=True, dynamic_thresholding_ratio=0.995,
                                         sample_max_value=1.0)
    return train, sample


def to_pixels(ink: np.ndarray) -> torch.Tensor:
    """(N, S, S) ink in [0, 1] -> (N, 3, S, S) in [-1, 1]: black ink on white paper, RGB."""
    x = torch.from_numpy(1.0 - 2.0 * ink).float()[:, None]
    return x.expand(-1, 3, -1, -1).contiguous()


def caption_features(model, tok, captions: list[str]) -> torch.Tensor:
    """Token features of `captions` (+ the empty caption last), cached on disk by content."""
    from generators.paths import cache_path

    key = hashlib.sha256(json.dumps([te.LAYERS, te.VOCAB, te.POSITIONS, captions]).encode()).hexdigest()[:16]
    path = cache_path("image_train") / f"captions_{key}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)
    feats = te.encode(model, tok, captions + [""])
    torch.save(feats, path)
    return feats


def diffusion_loss(unet, sched, x0, emb, t, noise, snr_gamma: float = 0.0) -> torch.Tensor:
    xt = sched.add_noise(x0, noise, t)
    pred = unet(xt, t, encoder_hidden_states=emb.float()).sample[:, :x0.shape[1]]
    v = sched.config.prediction_type == "v_prediction"
    target = sched.get_velocity(x0, noise, t) if v else noise
    if not snr_gamma:
        return F.mse_loss(pred, target)
    ac = sched.alphas_cumprod[t]
    snr = ac / (1 - ac)
    # Min-SNR-gamma: min(1, gamma / SNR) on the epsilon loss, min(SNR, gamma) / (SNR + 1) on v's
    w = torch.clamp(snr, max=snr_gamma) / (snr + 1) if v else torch.clamp(snr_gamma / snr, max=1.0)
    return ((pred - target).pow(2).mean((1, 2, 3)) * w).sum() / w.sum()


@torch.no_grad()
def eval_loss(unet, sched, x0: torch.Tensor, emb: torch.Tensor, seed: int, batch: int = 32,
              t_min: int = 0) -> float:
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(t_min, NUM_TRAIN_TIMESTEPS, (len(x0),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    total = 0.0
    for i in range(0, len(x0), batch):
        s = slice(i, i + batch)
        total += float(diffusion_loss(unet, sched, x0[s], emb[s], t[s], noise[s])) * len(x0[s])
    return total / len(x0)


def evaluate(ema, sched, step: int, ev_he, ev_tr, ev_sh, baseline: float) -> dict[str, float]:
    he = eval_loss(ema, sched, *ev_he, seed=1234)
    tr = eval_loss(ema, sched, *ev_tr, seed=1234)
    sh = eval_loss(ema, sched, *ev_sh, seed=1234)
    hi = eval_loss(ema, sched, *ev_he, seed=1235, t_min=HIGH_T)
    hi_sh = eval_loss(ema, sched, *ev_sh, seed=1235, t_min=HIGH_T)
    top = eval_loss(ema, sched, *ev_he, seed=1236, t_min=TOP_T)
    top_sh = eval_loss(ema, sched, *ev_sh, seed=1236, t_min=TOP_T)
    print(f"eval step {step}: held-out {he:.4f} (with shuffled captions {sh:.4f}) train {tr:.4f} "
          f"zero-noise baseline {baseline:.4f}; t>={HIGH_T}: held-out {hi:.5f} shuffled {hi_sh:.5f}; "
          f"t>={TOP_T}: {top:.5f} shuffled {top_sh:.5f}", flush=True)
    return {"step": step, "heldout": he, "heldout_shuffled": sh, "train": tr, "baseline": baseline,
            "heldout_high_t": hi, "heldout_high_t_shuffled": hi_sh, "heldout_top_t": top,
            "heldout_top_t_shuffled": top_sh, "captions": CAPTIONS,
            "loss_of": sched.config.prediction_type}


def zero_noise_baseline(x0: torch.Tensor, seed: int) -> float:
    g = torch.Generator().manual_seed(seed)
    torch.randint(0, NUM_TRAIN_TIMESTEPS, (len(x0),), generator=g)
    return float(torch.randn(x0.shape, generator=g).pow(2).mean())


def save_pipeline(out: Path, ema, text_model, tok, sample_sched) -> None:
    """Write the diffusers folder atomically (a sibling temp folder, then a rename)."""
    from diffusers import IFPipeline

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = IFPipeline(tokenizer=tok, text_encoder=copy.deepcopy(text_model).half(),
                      unet=copy.deepcopy(ema).half(), scheduler=sample_sched, safety_checker=None,
                      feature_extractor=None, watermarker=None, requires_safety_checker=False)
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def save_samples(ema, text_model, tok, sample_sched, captions: list[str], path: Path) -> None:
    from diffusers import IFPipeline
    from PIL import Image

    pipe = IFPipeline(tokenizer=tok, text_encoder=text_model, unet=ema, scheduler=sample_sched,
                      safety_checker=None, feature_extractor=None, watermarker=None,
                      requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    gens = [torch.Generator().manual_seed(i) for i in range(len(captions))]
    imgs = pipe(captions, num_inference_steps=20, guidance_scale=5.0, generator=gens,
                output_type="pil").images
    cols = 8
    rows = (len(imgs) + cols - 1) // cols
    grid = Image.new("RGB", (cols * 64, rows * 64), "white")
    for i, im in enumerate(imgs):
        grid.paste(im.convert("RGB"), ((i % cols) * 64, (i // cols) * 64))
    grid.save(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t_start = time.time()
    from generators.paths import cache_path

    state_path = cache_path("image_train") / args.state
    enc_dir = cache_path("image_train") / "text_encoder_build"
    text_model, tok = te.build(enc_dir / "text_encoder", enc_dir / "tokenizer")

    ds = cap_data.load(limit=args.limit)
    train, held = ds.subset(~ds.heldout), ds.subset(ds.heldout)
    feats = caption_features(text_model, tok, ds.captions)
    empty = feats[-1:]
    tr_idx, he_idx = np.flatnonzero(~ds.heldout), np.flatnonzero(ds.heldout)
    x_tr, x_he = to_pixels(train.images), to_pixels(held.images)
    e_tr, e_he = feats[tr_idx], feats[he_idx]
    s_tr = caption_features(text_model, tok, ds.short)[tr_idx] if args.short > 0 else None
    st = torch.load(state_path, weights_only=False) if args.resume and state_path.is_file() else None  # our cache file
    stats = st.get("text_stats") if st else None  # (mu, sigma) the state was trained with, if any
    if stats is None and args.standardize:
        stats = std.fit(e_tr)  # training captions only: held-out captions stay unseen
    if stats is not None:
        mu, sigma = stats
        empty, e_tr, e_he = (std.apply(f, mu, sigma) for f in (empty, e_tr, e_he))
        s_tr = std.apply(s_tr, mu, sigma) if s_tr is not None else None
        std.fold_into_encoder(text_model, mu, sigma)  # what is saved computes the same features
        print("caption features standardised per dimension (folded into the text encoder)", flush=True)
    print(f"data: {len(x_tr)} train / {len(x_he)} held-out captioned glyphs; caption features "
          f"{tuple(feats.shape)} ({time.time() - t_start:.0f}s)", flush=True)
    del feats

    unet = make_unet()
    prediction = args.prediction or (st.get("prediction", "epsilon") if st else "v_prediction")
    train_sched, sample_sched = make_schedulers(prediction)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    cond = [p for n, p in unet.named_parameters() if n.startswith("add_embedding.") or ".attn2." in n]
    rest = [p for n, p in unet.named_parameters() if not (n.startswith("add_embedding.") or ".attn2." in n)]
    opt = torch.optim.AdamW([{"params": rest}, {"params": cond}], lr=args.lr, weight_decay=0.0)
    step, elapsed_before, sessions = 0, 0.0, 1
    warm_from = 0  # the step the optimiser state started at (its learning-rate warm-up counts from it)
    curve: list[dict[str, float]] = []
    evals: list[dict[str, float]] = []
    if st is not None:
        if args.regrow:
            for k in ("unet", "ema"):
                st[k] = {n: v for n, v in st[k].items() if not n.startswith("add_embedding.")}
        pooled_missing = not any(k.startswith("add_embedding.") for k in st["unet"])
        unet.load_state_dict(st["unet"], strict=not pooled_missing)
        ema.load_state_dict(st["ema"], strict=not pooled_missing)
        fresh: list[str] = []  # why the optimiser state starts afresh (its warm-up counts from here)
        if pooled_missing:  # a state from before the pooled-caption pathway: it starts small
            fresh.append("added the pooled-caption pathway (small at start)")
        if stats is not None and st.get("text_stats") is None:  # raw-feature state -> standardised features
            for m in (unet, ema):
                std.carry_unet(m, *stats)
            fresh.append("carried the UNet over to standardised caption features")
        if prediction != st.get("prediction", "epsilon"):  # the output changes meaning
            fresh.append(f"the UNet now predicts {prediction} (was {st.get('prediction', 'epsilon')})")
        if not fresh and len(st["opt"]["param_groups"]) != len(opt.param_groups):
            fresh.append("parameter groups changed")  # a state from before the caption pathways' own rate
        if fresh:
            print("; ".join(fresh) + ": new optimiser state", flush=True)
        else:
            opt.load_state_dict(st["opt"])
        step, elapsed_before, sessions = st["step"], st["elapsed"], st["sessions"] + 1
        warm_from = step if fresh else st.get("warm_from", 0)
        curve, evals = st["curve"], st["evals"]
        print(f"resumed at step {step} ({elapsed_before / 60:.1f} min trained)", flush=True)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"unet {n_params:,} parameters", flush=True)

    ev_n = min(args.eval_n, len(x_he))
    ev_he = (x_he[:ev_n], e_he[:ev_n])
    ev_tr = (x_tr[:ev_n], e_tr[:ev_n])
    # the same held-out glyphs with each other's captions: equal loss = the caption is ignored.
    # Rolled by half the batch, not by 1: glyph files are in code-point order, and Unicode orders
    # kanji by radical, so a neighbour's caption usually names the same radical and parts.
    ev_sh = (x_he[:ev_n], torch.roll(e_he[:ev_n], ev_n // 2, 0))
    baseline = zero_noise_baseline(ev_he[0], 1234)
    if args.resume and step:  # where this session starts, on its own captions
        evals.append(evaluate(ema, train_sched, step, ev_he, ev_tr, ev_sh, baseline))
    rng = np.random.default_rng(args.seed + step)
    t0 = time.time()
    last_save = time.time()
    budget = args.minutes * 60
    stop_reason = "step limit"

    def write_all() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_pipeline(args.out, ema, text_model, tok, sample_sched)
        torch.save({"unet": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step,
                    "elapsed": elapsed_before + time.time() - t0, "sessions": sessions, "warm_from": warm_from, "curve": curve,
                    "evals": evals, "text_stats": stats,
                    "prediction": prediction}, state_path)
        log = {"command": "python -m training.image.train " + " ".join(argv if argv is not None else sys.argv[1:]),
               "steps": step, "minutes": (elapsed_before + time.time() - t0) / 60, "sessions": sessions,
               "stop_reason": stop_reason, "unet_parameters": n_params, "batch": args.batch, "lr": args.lr,
               "ema": args.ema, "lr_final": args.lr_final, "caption_dropout": args.drop, "short_caption_share": args.short,
               "t_min": args.t_min, "top_share": args.top_share, "top_min": args.top_min, "cond_lr": args.cond_lr, "snr_gamma": args.snr_gamma, "train_glyphs": len(x_tr),
               "heldout_glyphs": len(x_he), "eval_images": ev_n, "zero_noise_baseline": baseline,
               "text_encoder": {"layers": te.LAYERS, "vocab": te.VOCAB, "positions": te.POSITIONS,
                                "standardized": stats is not None},
               "prediction": prediction,
               "machine": f"{platform.machine()} CPU, torch {torch.__version__}, {args.threads} thread(s), "
                          f"load average at end {os.getloadavg()[0]:.1f}",
               "curve": curve, "evals": evals}
        (args.out.parent / "training.json").write_text(json.dumps(log, indent=1), encoding="utf-8")

    while step < args.steps:
        if time.time() - t0 > budget:
            stop_reason = "time budget"
            break
        idx = rng.integers(0, len(x_tr), args.batch)
        x0 = x_tr[idx]
        emb = e_tr[idx].clone()
        if s_tr is not None:
            short = torch.from_numpy(rng.random(args.batch) < args.short)
            emb[short] = s_tr[idx][short]
        drop = torch.from_numpy(rng.random(args.batch) < args.drop)
        emb[drop] = empty
        t = torch.randint(args.t_min, NUM_TRAIN_TIMESTEPS, (args.batch,))
        top = torch.from_numpy(rng.random(args.batch) < args.top_share)
        t[top] = torch.randint(args.top_min, NUM_TRAIN_TIMESTEPS, (int(top.sum()),))
        noise = torch.randn_like(x0)
        warm = min(1.0, (step - warm_from + 1) / args.warmup)
        warm *= 1.0 - (1.0 - args.lr_final) * min(1.0, (time.time() - t0) / budget)
        opt.param_groups[0]["lr"] = args.lr * warm
        opt.param_groups[1]["lr"] = args.lr * args.cond_lr * warm
        loss = diffusion_loss(unet, train_sched, x0, emb, t, noise, args.snr_gamma)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        step += 1
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        if step % args.log_every == 0:
            curve.append({"step": step, "loss": float(loss.detach()), "min": (elapsed_before + time.time() - t0) / 60})
            print(f"step {step} loss {float(loss.detach()):.4f} {(time.time() - t0) / step if not args.resume else 0:.2f}s/step",
                  flush=True)
        if step % args.eval_every == 0:
            evals.append(evaluate(ema, train_sched, step, ev_he, ev_tr, ev_sh, baseline))
        if time.time() - last_save > args.save_every_min * 60:
            write_all()
            last_save = time.time()
            print(f"saved pipeline at step {step}", flush=True)
    if not evals or evals[-1]["step"] != step:
        evals.append(evaluate(ema, train_sched, step, ev_he, ev_tr, ev_sh, baseline))
    write_all()
    save_samples(ema, text_model, tok, sample_sched, held.captions[:32], args.out.parent / "samples.png")
    from training.image import report

    report.write(args.out.parent / "training.json", args.out.parent / "TRAINING.md")
    print(f"wrote {args.out} ({stop_reason}, {step} steps)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
