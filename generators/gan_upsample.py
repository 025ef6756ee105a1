"""A learned 32 -> 64 px stage on top of the 32 px glyph generator (issue #17: 64 px output).

Three bounded attempts at a 64 px DCGAN collapsed on this CPU budget (assets/gan/TRAINING-64px.md).
This stage keeps the shipped 32 px generator, which already lays glyphs out well, and adds what
it lacks: 64 px strokes. It is a small residual convolutional network at 32 px whose last layer
emits 4 channels rearranged into a 64 px image (sub-pixel convolution, Shi et al., 2016), added
to a bilinear upscale of the input; the sum is a logit of ink. It is trained on pairs of the same
KanjiVG glyph rasterised at 32 and at 64 px (training/gan/train_upsample.py), with the 32 px input
corrupted the way generated glyphs are (noise, blur, stray specks), so it learns to draw the
64 px strokes a 32 px glyph stands for and to drop specks a real glyph would not have.
Weights: safetensors with the architecture in the metadata, like the generator's.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from generators.gan_model import load_with_config, save_with_config

FORMAT = "studio-glyph-upsampler-v1"


@dataclass(frozen=True)
class UpsamplerConfig:
    width: int = 32  # feature channels
    blocks: int = 3  # residual blocks at the input resolution
    factor: int = 2  # output side / input side

    @classmethod
    def from_json(cls, text: str) -> "UpsamplerConfig":
        data = json.loads(text)
        return cls(**{k: int(data[k]) for k in ("width", "blocks", "factor")})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class _Block(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(F.relu(self.a(x)))


class GlyphUpsampler(nn.Module):
    """(B, 1, S, S) in [-1, 1] (ink = +1) -> (B, 1, factor*S, factor*S) in [-1, 1]."""

    def __init__(self, cfg: UpsamplerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.head = nn.Conv2d(1, cfg.width, 3, padding=1)
        self.blocks = nn.Sequential(*[_Block(cfg.width) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(cfg.width, cfg.factor ** 2, 3, padding=1)
        self.shuffle = nn.PixelShuffle(cfg.factor)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        skip = F.interpolate(x, scale_factor=self.cfg.factor, mode="bilinear", align_corners=False)
        h = self.blocks(F.relu(self.head(x)))
        return self.shuffle(self.tail(h)) + 3.0 * skip  # 3 * [-1, 1]: a confident start from the upscale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.logits(x) / 2)  # = 2 * sigmoid(logit) - 1


def save_upsampler(net: GlyphUpsampler, path: str | Path, extra: dict[str, str] | None = None) -> None:
    save_with_config(net, path, FORMAT, extra)


def load_upsampler(path: str | Path, device: torch.device | str = "cpu") -> GlyphUpsampler:
    """Rebuild the stage from a file written by `save_upsampler`; ValueError if it is not one."""
    return load_with_config(path, FORMAT, "glyph upsampler",
                            lambda cfg: GlyphUpsampler(UpsamplerConfig.from_json(cfg)), device)
