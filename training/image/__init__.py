"""Train the image generator's embedded default: a small pixel-space text-to-image diffusion
model on captioned KanjiVG glyphs, saved as a standard diffusers (DeepFloyd-IF-layout) folder."""
