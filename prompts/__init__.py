"""Data package `studio_prompts` in a built wheel (see generators/resources.py); no code."""
