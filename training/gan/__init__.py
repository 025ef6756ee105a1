"""Train the GAN generator's embedded default (a DCGAN on rasterised KanjiVG glyphs)."""
