"""Helpers of the `music` generator: vocabulary, ABC codec, models, constrained decoding, rendering.

Modules here may import torch/numpy/music21 at module level; `generators.music` imports them
only inside function bodies.
"""
