"""Standardised caption features (training.image.standardize), on tiny random models built from
configs: the map folded into the text encoder equals the map applied to its output, and a UNet
trained on raw features is carried over exactly (cross-attention) to the standardised ones."""
from __future__ import annotations

import copy

import torch

from training.image import standardize as std


def tiny_bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=16)
    return BertModel(cfg).eval()


def tiny_unet(pooled: bool):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=16, in_channels=3, out_channels=6, layers_per_block=1, block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, attention_head_dim=2,
        norm_num_groups=4, **({"addition_embed_type": "text", "addition_embed_type_num_heads": 4} if pooled else {})
    ).eval()


def test_fit_centres_and_scales_every_dimension() -> None:
    feats = torch.randn(6, 10, 32) * torch.linspace(0.5, 4, 32) + torch.linspace(-3, 3, 32)
    mu, sigma = std.fit(feats)
    z = std.apply(feats, mu, sigma).reshape(-1, 32)
    assert torch.allclose(z.mean(0), torch.zeros(32), atol=1e-5)
    assert torch.allclose(z.std(0), torch.ones(32), atol=1e-4)


def test_folding_into_the_encoder_equals_applying_to_its_output() -> None:
    bert = tiny_bert()
    ids = torch.randint(5, 64, (3, 12))
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # padded, as the pipeline's prompts are
    with torch.no_grad():
        raw = bert(ids, attention_mask=mask)[0]
    mu, sigma = std.fit(raw)
    std.fold_into_encoder(bert, mu, sigma)
    with torch.no_grad():
        folded = bert(ids, attention_mask=mask)[0]
    assert torch.allclose(folded, std.apply(raw, mu, sigma), atol=1e-4)
    assert folded.reshape(-1, 32).mean(0).abs().max() < 1e-4  # these tokens are what it was fitted on


def test_carried_unet_computes_the_same_on_standardised_features() -> None:
    unet = tiny_unet(pooled=False)
    feats = torch.randn(2, 7, 32) * 2 + torch.linspace(-3, 3, 32)  # anisotropic, like BERT's
    mu, sigma = std.fit(feats)
    carried = copy.deepcopy(unet)
    std.carry_unet(carried, mu, sigma)
    x, t = torch.randn(2, 3, 16, 16), torch.tensor([10, 900])
    with torch.no_grad():
        before = unet(x, t, encoder_hidden_states=feats).sample
        after = carried(x, t, encoder_hidden_states=std.apply(feats, mu, sigma)).sample
        unchanged = carried(x, t, encoder_hidden_states=feats).sample
    assert torch.allclose(before, after, atol=1e-5)
    assert not torch.allclose(before, unchanged, atol=1e-3)  # the weights did change


def test_pooled_pathway_restarts_small_and_keeps_its_offset() -> None:
    unet = tiny_unet(pooled=True)
    with torch.no_grad():
        unet.add_embedding.norm2.bias.fill_(0.3)
        unet.add_embedding.proj.weight.fill_(1.0)
    std.carry_unet(unet, torch.zeros(32), torch.ones(32), pooled_gain=0.1)
    emb = unet.add_embedding
    assert torch.all(emb.norm2.weight == 0.1) and torch.all(emb.norm2.bias == 0.3)
    assert not torch.all(emb.proj.weight == 1.0)  # re-initialised
