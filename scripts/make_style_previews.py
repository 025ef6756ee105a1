"""Writes the Style tab's preview swatches: each of the 26 built-in styles applied to one photo.

    python scripts/make_style_previews.py     # -> assets/style/previews/<style-name>.webp (~26 x 9 KB)

The photo is scikit-image's `coffee.png` (Rachel Michetti, CC0, courtesy of Pikolo Espresso Bar;
it ships with scikit-image), cut to a square. The styles run through the studio's own style generator (onnxruntime, CPU).
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "assets" / "style" / "previews"
SIDE = 160  # shown as thumbnails of ~110 px; WebP keeps each swatch around 5 KB


def main() -> int:
    import tempfile

    import skimage.data
    from PIL import Image

    from generators.style import STYLE_NAMES
    from studio.api import Studio
    from studio.config import Settings

    photo = Image.fromarray(skimage.data.coffee())
    side = min(photo.size)
    left = (photo.width - side) // 2
    photo = photo.crop((left, 0, left + side, side)).resize((SIDE * 2, SIDE * 2), Image.Resampling.LANCZOS)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "coffee.png"
        photo.save(source)
        with Studio(Settings(home=Path(tmp) / "home")) as studio:
            for name in STYLE_NAMES:
                result = studio.generate("style", {"image": str(source), "style": name, "max_side": SIDE * 2}, seed=0)
                with Image.open(result.assets[0]) as styled:
                    styled.convert("RGB").resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(
                        OUT / f"{name}.webp", quality=80, method=6)
                print(name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
