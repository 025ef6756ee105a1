"""Sketch-RNN network (Ha & Eck, 2018, "A Neural Representation of Sketch Drawings", arXiv:1704.03477).

A sequence-to-sequence VAE over stroke-5 sequences:

* encoder: bidirectional LSTM over the sketch; its two final hidden states (2 * enc_hidden) map
  to mu and sigma-hat of a Gaussian latent z (z_dim), sampled with the reparameterisation trick.
* decoder: an LSTM whose initial state is tanh(W z + b); each step reads [S_{i-1}, z] and emits
  a mixture of `n_mixtures` bivariate Gaussians for (dx, dy) plus 3 pen-state logits.
* loss: L_R = L_s (offset NLL over the real points) + L_p (pen-state cross entropy over all
  N_max steps), both divided by N_max; L_KL with a floor (kl_min) and an annealed weight.

`z_dim = 0` gives the paper's decoder-only (unconditional) model, our baseline.
Sampling is batched (several candidates at once) and steps the LSTM with `torch.lstm_cell`,
which avoids oneDNN's slow per-step path on CPU.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass
class SketchConfig:
    enc_hidden: int = 128  # per direction of the bidirectional encoder
    dec_hidden: int = 256  # decoder LSTM width
    z_dim: int = 64  # latent size; 0 = decoder-only baseline
    n_mixtures: int = 20  # Gaussian mixture components per step (paper: 20)
    max_len: int = 100  # N_max: longest training sequence (stroke-5 rows)
    dropout: float = 0.1  # on decoder outputs during training
    scale_factor: float = 1.0  # data offsets are divided by this (std of training offsets)
    dataset: str = ""  # what the model was trained on, for display

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SketchConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class MixtureParams:
    """Decoder outputs for each step: (..., M) mixture terms and (..., 3) pen logits."""

    pi_logits: Tensor
    mu_x: Tensor
    mu_y: Tensor
    sigma_x: Tensor
    sigma_y: Tensor
    rho: Tensor
    pen_logits: Tensor


class SketchRNN(nn.Module):
    def __init__(self, cfg: SketchConfig) -> None:
        super().__init__()
        self.cfg = cfg
        z = cfg.z_dim
        if z > 0:
            self.encoder = nn.LSTM(5, cfg.enc_hidden, batch_first=True, bidirectional=True)
            self.fc_mu = nn.Linear(2 * cfg.enc_hidden, z)
            self.fc_sigma = nn.Linear(2 * cfg.enc_hidden, z)
            self.fc_init = nn.Linear(z, 2 * cfg.dec_hidden)
        self.decoder = nn.LSTM(5 + z, cfg.dec_hidden, batch_first=True)
        self.fc_out = nn.Linear(cfg.dec_hidden, 6 * cfg.n_mixtures + 3)
        self.dropout = nn.Dropout(cfg.dropout)

    # ---- encoder -------------------------------------------------------------------------
    def encode(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x: (B, T, 5) stroke-5 without the start token; lengths: (B,) -> mu, sigma_hat (B, z)."""
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.encoder(packed)  # h: (2, B, enc_hidden)
        h = torch.cat([h[0], h[1]], dim=-1)
        return self.fc_mu(h), self.fc_sigma(h)

    def initial_state(self, z: Tensor | None, batch: int) -> tuple[Tensor, Tensor]:
        if z is None or self.cfg.z_dim == 0:
            zeros = torch.zeros(batch, self.cfg.dec_hidden, device=self.fc_out.weight.device)
            return zeros, zeros.clone()
        h, c = torch.tanh(self.fc_init(z)).chunk(2, dim=-1)
        return h.contiguous(), c.contiguous()

    # ---- decoder -------------------------------------------------------------------------
    def mixture(self, y: Tensor) -> MixtureParams:
        m = self.cfg.n_mixtures
        pi, mx, my, sx, sy, rho, pen = torch.split(y, [m, m, m, m, m, m, 3], dim=-1)
        return MixtureParams(pi, mx, my, torch.exp(sx.clamp(-10, 10)), torch.exp(sy.clamp(-10, 10)),
                             torch.tanh(rho) * 0.9999, pen)

    def decode(self, inputs: Tensor, z: Tensor | None) -> Tensor:
        """inputs: (B, T, 5) = [S0, S1..S_{T-1}] -> raw outputs (B, T, 6M + 3)."""
        batch, steps, _ = inputs.shape
        h0, c0 = self.initial_state(z, batch)
        if z is not None and self.cfg.z_dim > 0:
            inputs = torch.cat([inputs, z[:, None, :].expand(batch, steps, -1)], dim=-1)
        out, _ = self.decoder(inputs, (h0[None], c0[None]))
        return self.fc_out(self.dropout(out))

    # ---- loss ----------------------------------------------------------------------------
    def loss(self, x: Tensor, lengths: Tensor, *, sample_z: bool = True,
             kl_weight: float = 0.5, kl_min: float = 0.2, norm_len: int | None = None,
             enc_x: Tensor | None = None, enc_lengths: Tensor | None = None,
             input_dropout: float = 0.0) -> dict[str, Tensor]:
        """x: (B, T, 5) padded stroke-5 (no start token); lengths: real rows per sketch.

        Returns L_R (= L_s + L_p), L_s, L_p, L_KL and the weighted total. Both reconstruction
        terms are divided by `norm_len` (default N_max), as in the paper.
        enc_x / enc_lengths: what the encoder reads instead of x (training on partial drawings,
        so that the code of a creator's first strokes predicts the whole drawing).
        input_dropout: share of decoder input rows zeroed (training only), so the decoder must
        lean on z rather than on the previous pen move alone (Bowman et al., 2016).
        """
        batch, steps, _ = x.shape
        norm = float(norm_len or self.cfg.max_len)
        z = None
        kl = x.new_zeros(())
        if self.cfg.z_dim > 0:
            if enc_x is None:
                mu, sigma_hat = self.encode(x, lengths)
            else:
                mu, sigma_hat = self.encode(enc_x, lengths if enc_lengths is None else enc_lengths)
            if sample_z:
                z = mu + torch.exp(sigma_hat / 2) * torch.randn_like(mu)
            else:
                z = mu
            kl = -0.5 * torch.mean(1 + sigma_hat - mu.pow(2) - torch.exp(sigma_hat))
        start = x.new_zeros(batch, 1, 5)
        start[..., 2] = 1.0
        inputs = torch.cat([start, x[:, :-1]], dim=1)
        if input_dropout > 0:
            keep = (torch.rand(batch, steps, 1, device=x.device) >= input_dropout).float()
            keep[:, 0] = 1.0  # the start token stays
            inputs = inputs * keep
        p = self.mixture(self.decode(inputs, z))
        log_gauss = bivariate_log_prob(x[..., 0:1], x[..., 1:2], p)  # (B, T, M)
        log_mix = torch.logsumexp(F.log_softmax(p.pi_logits, dim=-1) + log_gauss, dim=-1)  # (B, T)
        mask = (torch.arange(steps, device=x.device)[None, :] < lengths[:, None]).float()
        l_s = -(log_mix * mask).sum() / (norm * batch)
        pen_target = x[..., 2:].argmax(dim=-1)
        l_p = F.cross_entropy(p.pen_logits.reshape(-1, 3), pen_target.reshape(-1), reduction="sum") / (norm * batch)
        l_r = l_s + l_p
        total = l_r + kl_weight * torch.clamp(kl, min=kl_min) if self.cfg.z_dim > 0 else l_r
        return {"loss": total, "l_r": l_r, "l_s": l_s, "l_p": l_p, "l_kl": kl}

    # ---- sampling ------------------------------------------------------------------------
    @torch.inference_mode()
    def sample(self, z: Tensor | None, *, batch: int, max_steps: int, temperature: float,
               generator: torch.Generator, prefix: Tensor | None = None,
               shared_noise: bool = False, drop_duplicates: bool = True) -> list[np.ndarray]:
        """Draw `batch` sequences; returns the NEW stroke-5 rows of each (the prefix excluded).

        prefix: (P, 5) stroke-5 rows the decoder reads first (a partial sketch). z: (batch, z)
        or None. shared_noise: every candidate uses the same random draws (for interpolation).
        Generation stops at a p3 row or after `max_steps` new rows.
        drop_duplicates: remove new strokes that retrace an earlier one (the decoder's stacked
        duplicates at low temperature; sketch_metrics.drop_stacked_strokes).
        """
        cfg = self.cfg
        device = self.fc_out.weight.device
        h, c = self.initial_state(z, batch)
        w_ih, w_hh = self.decoder.weight_ih_l0, self.decoder.weight_hh_l0
        b_ih, b_hh = self.decoder.bias_ih_l0, self.decoder.bias_hh_l0

        def step(s: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
            inp = s if z is None or cfg.z_dim == 0 else torch.cat([s, z], dim=-1)
            h, c = torch.lstm_cell(inp, (h, c), w_ih, w_hh, b_ih, b_hh)
            return self.fc_out(h), h, c

        s = torch.zeros(batch, 5, device=device)
        s[:, 2] = 1.0
        y, h, c = step(s, h, c)
        if prefix is not None and len(prefix):
            for row in prefix.to(device):
                y, h, c = step(row.expand(batch, 5), h, c)
        tau = float(temperature)
        rows = torch.zeros(max_steps, batch, 5)
        done = torch.zeros(batch, dtype=torch.bool)
        lengths = torch.full((batch,), max_steps, dtype=torch.long)
        noise_batch = 1 if shared_noise else batch
        for t in range(max_steps):
            p = self.mixture(y)
            u = torch.rand(noise_batch, 2, generator=generator, device=device).expand(batch, 2)
            e = torch.randn(noise_batch, 2, generator=generator, device=device).expand(batch, 2)
            pi = F.softmax(p.pi_logits / tau, dim=-1)
            k = torch.searchsorted(pi.cumsum(-1), u[:, :1].contiguous()).clamp_(max=cfg.n_mixtures - 1)
            mx, my = p.mu_x.gather(1, k)[:, 0], p.mu_y.gather(1, k)[:, 0]
            sx, sy = p.sigma_x.gather(1, k)[:, 0], p.sigma_y.gather(1, k)[:, 0]
            rho = p.rho.gather(1, k)[:, 0]
            sq = math.sqrt(tau)
            dx = mx + sx * sq * e[:, 0]
            dy = my + sy * sq * (rho * e[:, 0] + torch.sqrt(1 - rho * rho) * e[:, 1])
            pen = F.softmax(p.pen_logits / tau, dim=-1)
            q = torch.searchsorted(pen.cumsum(-1), u[:, 1:].contiguous()).clamp_(max=2)[:, 0]
            s = torch.zeros(batch, 5, device=device)
            s[:, 0], s[:, 1] = dx, dy
            s[torch.arange(batch), 2 + q] = 1.0
            rows[t] = s.cpu()
            ended = (q == 2) & ~done
            lengths[ended] = t + 1
            done |= ended
            if bool(done.all()):
                break
            y, h, c = step(s, h, c)
        out = rows.permute(1, 0, 2).numpy()
        drawn = [out[b, :int(lengths[b])].copy() for b in range(batch)]
        if drop_duplicates:
            from generators.sketch_metrics import drop_stacked_strokes

            before = None if prefix is None else prefix.detach().cpu().numpy()
            drawn = [drop_stacked_strokes(r, before) for r in drawn]
        return drawn


def bivariate_log_prob(x: Tensor, y: Tensor, p: MixtureParams) -> Tensor:
    """log N(x, y | mu, sigma, rho) for each mixture component (paper eq. 2 / Graves 2013)."""
    zx = (x - p.mu_x) / p.sigma_x
    zy = (y - p.mu_y) / p.sigma_y
    one_m_rho2 = 1 - p.rho ** 2
    zz = zx ** 2 + zy ** 2 - 2 * p.rho * zx * zy
    return (-zz / (2 * one_m_rho2) - torch.log(2 * math.pi * p.sigma_x * p.sigma_y)
            - 0.5 * torch.log(one_m_rho2))


# --------------------------------------------------------------------------------------------
# Weights on disk: one .safetensors file, the config in its metadata.
# --------------------------------------------------------------------------------------------
def save_model(model: SketchRNN, path: str | Path, extra: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    meta = {"config": json.dumps(model.cfg.to_dict()), "format": "studio-sketch-rnn/1", **(extra or {})}
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod(0o644)
    tmp.replace(path)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> SketchRNN:
    """Load a studio Sketch-RNN .safetensors (config in metadata, or config.json beside it)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "config" in meta:
        cfg_data = json.loads(meta["config"])
    elif (path.parent / "config.json").exists():
        cfg_data = json.loads((path.parent / "config.json").read_text())
    else:
        raise ValueError(f"{path.name} has no Sketch-RNN config (metadata 'config' or config.json)")
    model = SketchRNN(SketchConfig.from_dict(cfg_data))
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.to(device).eval()
