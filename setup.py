"""Packages for the wheel; everything else is in pyproject.toml.

setup.py exists for one reason: pyproject.toml cannot combine package discovery with the two
data packages mapped from folders of another name. `assets/` and `prompts/` stay where the
training scripts and docs expect them, and install as `studio_assets` / `studio_prompts`
(found at run time through importlib.resources, see generators/resources.py).
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["studio", "studio.*", "generators", "generators.*", "training", "training.*"])
    + ["studio_assets", "studio_prompts"],
    package_dir={"studio_assets": "assets", "studio_prompts": "prompts"},
)
