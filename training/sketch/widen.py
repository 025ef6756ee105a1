"""Function-preserving widening of a Sketch-RNN decoder (Net2Net-style, Chen et al., 2016).

A bigger decoder trained from scratch costs ~4x per step on CPU and starts from nothing; this box
gives a run a few thousand steps, far fewer than the ~10k the shipped weights have had. Widening
instead copies a trained model into a wider one that computes exactly the same function at step 0:
the old units keep their weights, the new units get fresh input weights but nothing reads them yet
(their columns in the recurrent matrix and in the output layer start at zero) and their initial
state is zero. Training then grows the new units from there, so the run starts where the shipped
model is rather than at chance. Only the decoder widens; encoder and latent sizes stay.
"""
from __future__ import annotations

import torch

from generators.sketch_model import SketchConfig, SketchRNN


def widen_decoder(small: SketchRNN, dec_hidden: int, seed: int = 0) -> SketchRNN:
    """A copy of `small` whose decoder LSTM has `dec_hidden` units; same outputs for the same inputs."""
    old_h = small.cfg.dec_hidden
    if dec_hidden < old_h:
        raise ValueError(f"cannot widen a {old_h}-unit decoder to {dec_hidden} units")
    cfg = SketchConfig.from_dict({**small.cfg.to_dict(), "dec_hidden": dec_hidden})
    torch.manual_seed(seed)
    big = SketchRNN(cfg)
    state = big.state_dict()
    old = small.state_dict()
    for name, value in old.items():  # the encoder and mu/sigma heads are unchanged
        if not name.startswith(("decoder.", "fc_out.", "fc_init.")):
            state[name] = value.clone()
    new_h = dec_hidden
    # LSTM gates are stacked (i, f, g, o) along the first axis of every decoder weight and bias.
    w_ih, w_hh = state["decoder.weight_ih_l0"], state["decoder.weight_hh_l0"]
    for g in range(4):
        rows_new = slice(g * new_h, g * new_h + old_h)
        rows_old = slice(g * old_h, (g + 1) * old_h)
        w_ih[rows_new] = old["decoder.weight_ih_l0"][rows_old]
        w_hh[rows_new] = 0.0
        w_hh[rows_new, :old_h] = old["decoder.weight_hh_l0"][rows_old]
        for b in ("bias_ih_l0", "bias_hh_l0"):
            state[f"decoder.{b}"][rows_new] = old[f"decoder.{b}"][rows_old]
    w_hh[:, old_h:] = 0.0  # no old or new unit reads the new units' state yet ...
    state["fc_out.weight"].zero_()
    state["fc_out.weight"][:, :old_h] = old["fc_out.weight"]  # ... nor does the output layer
    state["fc_out.bias"] = old["fc_out.bias"].clone()
    if cfg.z_dim > 0:  # initial (h, c) = tanh(W z + b), chunked h | c: new units start at 0
        w, b = state["fc_init.weight"], state["fc_init.bias"]
        w.zero_()
        b.zero_()
        w[:old_h] = old["fc_init.weight"][:old_h]
        w[new_h:new_h + old_h] = old["fc_init.weight"][old_h:]
        b[:old_h] = old["fc_init.bias"][:old_h]
        b[new_h:new_h + old_h] = old["fc_init.bias"][old_h:]
    big.load_state_dict(state)
    return big
