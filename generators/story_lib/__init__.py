"""Helpers of the `story` generator (generators/story.py), one job per module.

bible.py     the story bible and beat sheets (data in prompts/story/beats/)
prompting.py Jinja prompt templates (prompts/story/) and the model's chat template
fountain.py  Fountain screenplay repair, validation, Markdown and HTML export
cowrite.py   co-writing modes: where the new passage goes and what the model reads
hierarchy.py Dramatron's levels: logline -> characters -> scene plan (place INT/EXT, who, what happens)
loading.py   model resolution, the embedded SmolLM2 GGUF -> safetensors cache, memory estimates
sampling.py  the sampling loop: seeded, streamed, stop strings, cancellable
tree.py      the version tree rebuilt from asset parents
Only loading.py and sampling.py import torch/transformers, and only inside functions.
"""
