"""Write assets/image/TRAINING.md from the training.json that `training.image.train` leaves."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def write(log_path: Path = ROOT / "assets" / "image" / "training.json",
          out: Path = ROOT / "assets" / "image" / "TRAINING.md") -> Path:
    log = json.loads(log_path.read_text(encoding="utf-8"))
    ev = log["evals"]
    last = ev[-1]
    best = min(ev, key=lambda e: e["heldout"])
    rows = "\n".join(f"| {e['step']} | {e['train']:.4f} | {e['heldout']:.4f} | {e['baseline']:.4f} |"
                     for e in ev)
    te = log["text_encoder"]
    bench_path = ROOT / "benchmarks" / "results" / "image.json"
    bench = ""
    if bench_path.is_file():
        b = json.loads(bench_path.read_text(encoding="utf-8"))
        fid = b["frechet_distance_to_real_heldout"]
        weak = b["conditioning"]["guidance_5"]["accuracy"] < 3 * b["classes"]["chance"]
        # only what the numbers below show; how the samples look is for a person to judge from samples.png
        state = (f"At {log['steps']} steps the caption has no measurable effect yet: generated glyphs are "
                 "labelled with the prompt's radical no more often than chance. ") if weak else ""
        bench = f"""
## Sampled images (benchmarks/results/image.json, {b['when']})

{state}A radical classifier ({b['classes']['k']}
classes, {b['classifier_accuracy_real_heldout']:.2f} accurate on real held-out glyphs) labels
images drawn from held-out captions correctly {b['conditioning']['guidance_1']['accuracy']:.2f} of
the time at guidance 1 and {b['conditioning']['guidance_5']['accuracy']:.2f} at guidance 5, against
chance {b['classes']['chance']:.2f} (target was 3x chance). Frechet distance on its features to real
held-out glyphs: generated {fid['generated_guidance_5']:.0f}, class-mean image
{fid['baseline_class_mean_image']:.0f}, GAN {fid.get('baseline_gan_unconditional_32px_upscaled', float('nan')):.0f},
real training glyphs {fid['reference_real_training_glyphs']:.1f}. Held-out diffusion loss by
evaluation: {' -> '.join(f"{e['heldout']:.3f}" for e in ev)}; more training: `studio train image
--resume --minutes N`.
"""
    out.write_text(f"""# Image default model: kanji-glyphs-64

Written by `python -m training.image.report` from `training.json` (rerun after training).

* Data: {log['train_glyphs']} training / {log['heldout_glyphs']} held-out KanjiVG glyphs with
  KANJIDIC2 English meanings as captions ("a character meaning 'water'"), 64x64 grayscale (as
  RGB), pen width 6 of 109 units. Held-out = the GAN's split (last 10% of the sha256 space of
  file names): their captions and images are never trained on. Licences: `NOTICE.md`.
* Model: pixel-space DDPM at 64x64 (cosine schedule, 1000 steps, epsilon prediction) with a
  diffusers `UNet2DConditionModel` of {log['unet_parameters']:,} parameters cross-attending to
  the token features of MiniLM cut to {te['layers']} layers / {te['vocab']} word pieces; caption
  dropout {log['caption_dropout']} for classifier-free guidance. AdamW lr {log['lr']} (100-step
  warm-up), batch {log['batch']}, EMA {log['ema']} (the EMA weights are saved). Sampling:
  DPM-Solver++ 2M with dynamic thresholding. Saved as a diffusers `IFPipeline` folder (fp16).
* Run: {log['steps']} steps in {log['minutes']:.1f} min ({log['sessions']} session(s); the last stopped by
  {log['stop_reason']}) on {log['machine']} (a 2-core machine shared with ~6 agents'
  jobs; load average 8-15 during the run, so this process had a fifth to a third of one core:
  3.2 s/step at the start, ~7-10 s/step later; on a free core ~1 s/step, from 1.9 s at batch 32 timed before the run).
* Command: `nice -n 5 {log['command']}` (`studio train image` runs the same; add `--resume` to
  continue from the cached state for another budget of minutes).

## Evaluation: diffusion loss (epsilon MSE) of the EMA model

Fixed batch of {log['eval_images']} glyphs per set, the same timesteps and noise for every row.
Baseline: predicting zero noise (loss = mean squared noise, ~1.0).

| step | train glyphs | held-out glyphs (unseen captions) | zero-noise baseline |
|---|---|---|---|
{rows}

Final held-out loss {last['heldout']:.4f} = {last['heldout'] / last['baseline']:.1%} of the baseline
(best {best['heldout']:.4f} at step {best['step']}). Conditioning, fidelity and speed of the
sampled images: `benchmarks/bench_image.py` -> `benchmarks/results/image.json`.
Held-out samples (guidance 5, 20 steps): `samples.png`.
{bench}""", encoding="utf-8")
    return out


if __name__ == "__main__":
    print(write(*(Path(a) for a in sys.argv[1:])))
