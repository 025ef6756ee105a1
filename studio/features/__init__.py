"""Feature vectors for studio outputs, one extractor per medium, for the taste model (studio.taste).

- text (story): MiniLM sentence embedding (all-MiniLM-L6-v2, Reimers & Gurevych 2019) + text statistics
- image (breeder, GAN, diffusion, style): the Magenta arbitrary-style predictor's 100-d style
  vector (Ghiasi et al., 2017) + colour and edge statistics
- music: symbolic features from the MIDI (pitch-class profile relative to the Krumhansl-Schmuckler
  key, interval histogram, range, density, repetition)
- sketch: stroke and shape statistics from the drawing's SVG paths

`FeatureExtractor` computes a vector for a file and caches it on disk by the file's sha256.
Heavy libraries (transformers, onnxruntime, mido) are imported only when a vector is computed.
"""
from __future__ import annotations

from studio.features.extractor import FEATURE_VERSION, KINDS, FeatureExtractor, kind_for

__all__ = ["FeatureExtractor", "FEATURE_VERSION", "KINDS", "kind_for"]
