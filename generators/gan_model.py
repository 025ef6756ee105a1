"""DCGAN networks (Radford, Metz & Chintala, 2016) for small grayscale glyph images.

The generator maps a latent z ~ N(0, I) to a (1, S, S) image in [-1, 1] (ink = +1) through a
linear projection to 4x4 feature maps and transposed convolutions that double the side each
time; batch norm + ReLU inside, tanh at the end. The discriminator mirrors it with strided
convolutions, batch norm and LeakyReLU(0.2), ending in one logit. With the defaults
(z_dim 64, width 32, 32 px) G has ~0.30 M parameters and D ~0.17 M.

Weights are saved as safetensors with the architecture in the metadata ("config" JSON), so a
file alone is enough to rebuild the network.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

FORMAT = "studio-dcgan-v1"


@dataclass(frozen=True)
class GANConfig:
    z_dim: int = 64  # latent size
    width: int = 32  # channels of the last hidden layer; earlier layers double it
    image_size: int = 32  # output side in pixels; a power of two >= 8
    channels: int = 1  # 1 = grayscale

    def __post_init__(self) -> None:
        n = self.image_size
        if n < 8 or n & (n - 1):
            raise ValueError(f"image_size must be a power of two >= 8, got {n}")

    @property
    def n_up(self) -> int:
        """Number of 2x upsampling stages from 4x4 to image_size."""
        return int(math.log2(self.image_size)) - 2

    @classmethod
    def from_json(cls, text: str) -> "GANConfig":
        data = json.loads(text)
        return cls(**{k: int(data[k]) for k in ("z_dim", "width", "image_size", "channels")})

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


class DCGenerator(nn.Module):
    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        top = cfg.width * 2 ** (cfg.n_up - 1)  # channels at 4x4
        self.project = nn.Sequential(nn.Linear(cfg.z_dim, top * 16, bias=False),
                                     nn.BatchNorm1d(top * 16), nn.ReLU(inplace=True))
        layers: list[nn.Module] = []
        ch = top
        for _ in range(cfg.n_up - 1):  # 4 -> 8 -> ... -> S/2
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2),
                       nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1), nn.Tanh()]  # S/2 -> S
        self.body = nn.Sequential(*layers)
        self._top = top

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.project(z).view(z.shape[0], self._top, 4, 4)  # (B, top, 4, 4)
        return self.body(h)  # (B, C, S, S) in [-1, 1]


class DCDiscriminator(nn.Module):
    """spectral_norm: every layer's weight divided by its largest singular value (Miyato et al., 2018)
    instead of batch norm, which keeps D Lipschitz and its gradients useful at 64 px, where a
    plain DCGAN discriminator wins quickly. Only D changes; G (what ships) is the same network."""

    def __init__(self, cfg: GANConfig, spectral_norm: bool = False) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [sn(nn.Conv2d(cfg.channels, cfg.width, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        ch = cfg.width
        for _ in range(cfg.n_up - 1):  # S/2 -> ... -> 4
            if spectral_norm:
                layers += [sn(nn.Conv2d(ch, ch * 2, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
            else:
                layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2),
                           nn.LeakyReLU(0.2, True)]
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.head = sn(nn.Linear(ch * 16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).flatten(1)).squeeze(1)  # (B,) logits


def init_weights(module: nn.Module, gen: torch.Generator | None = None) -> None:
    """DCGAN's initialisation: N(0, 0.02) for conv/linear weights, N(1, 0.02) for BN scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # a spectrally normalised layer keeps its raw weight under parametrizations
            raw = (m.parametrizations.weight.original if nn.utils.parametrize.is_parametrized(m, "weight")
                   else m.weight)
            nn.init.normal_(raw, 0.0, 0.02, generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=gen)
            nn.init.zeros_(m.bias)


def save_with_config(net: nn.Module, path: str | Path, fmt: str, extra: dict[str, str] | None = None) -> None:
    """Write a module's state dict (weights + BN running stats), its format tag and its config
    (`net.cfg.to_json()`) in the safetensors metadata, so the file rebuilds itself."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    save_file(state, str(path), metadata={"format": fmt, "config": net.cfg.to_json(), **(extra or {})})


def load_with_config(path: str | Path, fmt: str, what: str, build: Callable[[str], nn.Module],
                     device: torch.device | str = "cpu") -> nn.Module:
    """Rebuild a module written by `save_with_config` (`build` makes it from the config JSON);
    ValueError naming `what` if the file is not of format `fmt`."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != fmt or "config" not in meta:
        raise ValueError(f"{Path(path).name} is not a studio {what} file "
                         f"(metadata format {meta.get('format')!r}, expected {fmt!r})")
    net = build(meta["config"])
    net.load_state_dict(load_file(str(path), device="cpu"), strict=True)
    return net.to(device).eval()


def save_generator(gen: DCGenerator, path: str | Path, extra: dict[str, str] | None = None) -> None:
    """Write G's state dict with its config in the metadata."""
    save_with_config(gen, path, FORMAT, extra)


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> DCGenerator:
    """Rebuild G from a safetensors file written by `save_generator`; ValueError if it is not one."""
    return load_with_config(path, FORMAT, "DCGAN generator",
                            lambda cfg: DCGenerator(GANConfig.from_json(cfg)), device)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
