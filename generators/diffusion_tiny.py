"""Tiny random Stable Diffusion pipelines built from configs, for tests and `Diffusion.debug()`.

The same recipe diffusers' own fast tests use (`tests/pipelines/stable_diffusion/
test_stable_diffusion.py: get_dummy_components`): a UNet with `block_out_channels=(4, 8)`, a
two-block `AutoencoderKL`, a 2-layer `CLIPTextModel` of width 32. Their tokenizer comes from
"hf-internal-testing/tiny-random-clip" on the hub, which this machine cannot reach, so the
tokenizer here is a byte-level CLIP BPE built offline: the 256 byte symbols (each also with the
"</w>" end-of-word suffix) plus a few merges. Saved with `save_pretrained`, the folder loads
exactly like a real diffusers model folder. Imports torch/diffusers/transformers: use lazily.
"""
from __future__ import annotations

from pathlib import Path

import torch


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP `bytes_to_unicode`: one printable character per byte value."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, n = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + n))
            n += 1
    return chars


def tiny_clip_tokenizer(max_length: int = 77):  # -> transformers.CLIPTokenizer
    """A working CLIP tokenizer with a ~520-token vocabulary, built with no downloads."""
    from transformers import CLIPTokenizer

    symbols = _byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(s, len(vocab))
    merges = [("a", "t</w>"), ("c", "at</w>"), ("o", "g</w>"), ("d", "og</w>"), ("e", "d</w>")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def build_tiny_sd(folder: str | Path, *, seed: int = 0, sample_size: int = 32, inpainting: bool = False):
    """Build a tiny random StableDiffusionPipeline, save it to `folder`, and return the pipeline.

    `inpainting=True` builds a dedicated inpainting model instead (a 9-channel UNet: latents,
    mask, masked-image latents) saved as a StableDiffusionInpaintPipeline.
    `sample_size` is in latent pixels; images are 8x larger per side only with a 4-block VAE, so
    with this 2-block VAE (scale factor 2) the natural image size is 2 * sample_size.
    """
    with torch.random.fork_rng(devices=[]):  # seeded random init without touching the global RNG
        torch.manual_seed(seed)
        return _build(folder, sample_size, inpainting)


def _build(folder: str | Path, sample_size: int, inpainting: bool):
    from diffusers import (AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=sample_size, in_channels=9 if inpainting else 4,
        out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
        norm_num_groups=2, attention_head_dim=2)
    vae = AutoencoderKL(
        block_out_channels=(4, 8), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4,
        norm_num_groups=2, sample_size=sample_size * 2)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        bos_token_id=0, eos_token_id=2, hidden_size=32, intermediate_size=37, layer_norm_eps=1e-05,
        num_attention_heads=4, num_hidden_layers=2, pad_token_id=1, vocab_size=1000,
        projection_dim=32))
    tokenizer = tiny_clip_tokenizer()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipeline_class = StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline
    pipe = pipeline_class(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return pipe
