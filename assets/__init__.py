"""Data package `studio_assets` in a built wheel (see generators/resources.py); no code."""
