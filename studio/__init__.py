"""Studio: a creator-side generative studio. The product around the generators in `generators/`."""
from __future__ import annotations

__version__ = "0.1.0"
