"""Standardised caption features: the text encoder's output centred and scaled per dimension.

Why: MiniLM's token features are anisotropic, as BERT features are. Over the training captions
each of the 384 dimensions has a mean far from zero (three carry means of 3-4, token norms ~12),
and the mean-pooled features of two different captions have cosine 0.95; with the common mean
removed, ~0. So the part of the input that tells one caption from another is a few percent of
what the UNet's caption pathways receive, which makes learning to read it badly conditioned
(LeCun et al. 1998, "Efficient BackProp": centre and scale the inputs). After 6,203 steps on the
raw features the model drew the radical at chance and had turned its pooled-caption pathway down.

How, without leaving the standard pipeline folder: BERT ends in a LayerNorm with a per-dimension
scale w and shift b, so z -> (z - mu) / sigma folds into it (w / sigma, (b - mu) / sigma). The
saved text encoder is then still a plain `BertModel` that `DiffusionPipeline.from_pretrained`
loads; only its last two vectors differ from MiniLM's.

A UNet trained on the raw features can be carried over exactly. For each cross-attention layer,
keys and values are linear in the caption features (no bias): W z = (W diag sigma) z' + W mu. The
constant key W_k mu adds the same number to every score of a query, which softmax ignores; the
constant value W_v mu passes through the attention weights (they sum to 1) and is folded into
the output projection's bias. The pooled-caption pathway starts with a LayerNorm of the raw
features and cannot be carried over; it is restarted small (its contribution had been turned
down to a mean scale of 0.055 anyway).
"""
from __future__ import annotations

import torch


@torch.no_grad()
def fit(features: torch.Tensor, eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-dimension mean and standard deviation over every token position of (N, L, D)
    features (padding included: the UNet reads all L positions)."""
    flat = features.reshape(-1, features.shape[-1]).float()
    mu = flat.mean(0)
    sigma = flat.std(0).clamp_min(eps)
    return mu, sigma


@torch.no_grad()
def fold_into_encoder(text_model, mu: torch.Tensor, sigma: torch.Tensor) -> None:
    """Make the BertModel's output (z - mu) / sigma by rewriting its last LayerNorm's affine."""
    ln = text_model.encoder.layer[-1].output.LayerNorm
    ln.weight.copy_(ln.weight.float() / sigma)
    ln.bias.copy_((ln.bias.float() - mu) / sigma)


@torch.no_grad()
def apply(features: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The same map on already computed features (same dtype out)."""
    return ((features.float() - mu) / sigma).to(features.dtype)


@torch.no_grad()
def carry_unet(unet, mu: torch.Tensor, sigma: torch.Tensor, pooled_gain: float = 0.1) -> None:
    """Rewrite a UNet trained on raw features so that on standardised features its
    cross-attention computes exactly what it did; restart the pooled-caption pathway small."""
    from diffusers.models.attention_processor import Attention

    for name, mod in unet.named_modules():
        if not (isinstance(mod, Attention) and name.endswith("attn2")):
            continue
        const_v = mod.to_v.weight.float() @ mu  # (inner,)
        mod.to_k.weight.mul_(sigma)
        mod.to_v.weight.mul_(sigma)
        out = mod.to_out[0]
        out.bias.add_(out.weight.float() @ const_v)
    emb = getattr(unet, "add_embedding", None)
    if emb is not None:
        fresh = type(emb)(emb.norm1.normalized_shape[0], emb.norm2.normalized_shape[0],
                          num_heads=emb.pool.num_heads)
        bias = emb.norm2.bias.clone()  # the caption-independent offset the model relies on
        emb.load_state_dict(fresh.state_dict())
        emb.norm2.weight.fill_(pooled_gain)
        emb.norm2.bias.copy_(bias)
