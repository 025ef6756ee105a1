"""Dynamic int8 for the story model's CPU path, built without `quantize_dynamic`'s load cost.

`torch.ao.quantization.quantize_dynamic` makes every quantised Linear by constructing a
full-size module around an empty weight, prepacking that placeholder, then quantising the real
weight through an observer and prepacking it again: on SmolLM2-135M that is 1.5-2 s of a load
whose fp32 part takes 0.6 s. Here each chosen projection is quantised with the same arithmetic as
the observer `per_channel_dynamic_qconfig` uses (per output channel, symmetric, qint8, zero
point 0) and prepacked once, on two threads, so the modules and the numbers are the ones
`quantize_dynamic` produces (tests/test_story.py compares them) in about a fifth of the time.

Measured on SmolLM2-135M (benchmarks/bench_story.py, 512 held-out tokens): quantising every
nn.Linear raised perplexity 3.0x, almost all of it from mlp.down_proj (its inputs carry large
activation outliers; 2.4x alone), then lm_head (+9%), gate/up (+7%), attention (+3.5%).
q/k/v/gate/up outside the first and last two layers costs +0.5%, so that is the int8 set.
"""
from __future__ import annotations

import os
import re
from typing import Any

from generators.base import InvalidInput

INT8_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
QUANTIZE_THREADS = 2


def int8_targets(model: Any) -> list[str]:
    """Names of the nn.Linear projections that `quantize` converts (empty for other architectures)."""
    import torch

    n_layers = int(getattr(getattr(model, "config", None), "num_hidden_layers", 0) or 0)
    edge = 2 if n_layers >= 8 else 0
    chosen = []
    for name, module in model.named_modules():
        layer = re.search(r"layers\.(\d+)\.", name)
        if (isinstance(module, torch.nn.Linear) and name.endswith(INT8_PROJECTIONS) and layer
                and edge <= int(layer.group(1)) < n_layers - edge):
            chosen.append(name)
    return chosen


def quantized_linear(linear: Any) -> Any:
    """A dynamic int8 Linear equal to what quantize_dynamic(per_channel_dynamic_qconfig) makes."""
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    weight = linear.weight.detach().float()
    # PerChannelMinMaxObserver, qint8, per_channel_symmetric: scale = max|w| / ((127 - -128) / 2),
    # floored at float32 eps; zero point 0.
    amax = torch.maximum(-weight.amin(dim=1).clamp(max=0), weight.amax(dim=1).clamp(min=0))
    scale = (amax / 127.5).clamp(min=torch.finfo(torch.float32).eps)
    zero = torch.zeros(weight.shape[0], dtype=torch.long)
    # round(w * (1/scale)) is FBGEMM's own rounding (bit-identical to torch.quantize_per_channel,
    # checked in tests/test_story.py) at a quarter of its cost, which converts scales to double.
    q = torch.round(weight * (1.0 / scale)[:, None]).clamp_(-128, 127).to(torch.int8)
    qweight = torch._make_per_channel_quantized_tensor(q, scale.double(), zero, 0)
    # Built at 1x1 so the constructor's placeholder weight costs nothing; the real one replaces it.
    q = DynamicLinear(1, 1, bias_=linear.bias is not None, dtype=torch.qint8)
    q.set_weight_bias(qweight, None if linear.bias is None else linear.bias.detach().float())
    q.in_features, q.out_features = linear.in_features, linear.out_features
    return q


def quantize(model: Any, inplace: bool = False) -> Any:
    """The model with its `int8_targets` swapped for dynamic int8 Linears (a copy unless inplace)."""
    import copy
    import warnings

    chosen = int8_targets(model)
    if not chosen:
        raise InvalidInput("int8 quantisation supports Llama-style models (q/k/v/gate/up projections); "
                           "use quantize='none' for this model")
    if not inplace:
        model = copy.deepcopy(model)
    from concurrent.futures import ThreadPoolExecutor

    # Packing is a batch job like reading a prompt: two threads take ~55% of one's time (the
    # ops release the GIL); the modules are swapped in on this thread.
    workers = min(QUANTIZE_THREADS, os.cpu_count() or 1)
    with warnings.catch_warnings():  # torch 2.13 marks its quantised tensors deprecated; pinned here
        warnings.simplefilter("ignore")
        with ThreadPoolExecutor(workers, thread_name_prefix="studio-int8") as pool:
            packed = list(pool.map(lambda n: quantized_linear(model.get_submodule(n)), chosen))
    for name, q in zip(chosen, packed):
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, q)
    return model
