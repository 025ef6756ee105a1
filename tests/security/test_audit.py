"""An offline dependency audit: installed versions against the pinned advisory list.

See advisories.toml for what it covers and what it does not (it is a floor, not a live feed).
"""
from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

LIST = Path(__file__).with_name("advisories.toml")
MUST_COVER = ("gradio", "pillow", "torch")  # what the issue names: the list must speak for them


def _advisories() -> list[dict]:
    return tomllib.loads(LIST.read_text())["advisory"]


def test_the_list_is_well_formed_and_covers_the_exposed_packages() -> None:
    rows = _advisories()
    for row in rows:
        assert {"package", "id", "affected", "summary"} <= set(row), row
        SpecifierSet(row["affected"])  # a valid PEP 440 range
    assert set(MUST_COVER) <= {r["package"] for r in rows}


def test_no_installed_package_is_in_an_affected_range() -> None:
    hits = []
    for row in _advisories():
        try:
            installed = Version(version(row["package"]))
        except PackageNotFoundError:
            continue
        # base_version drops local tags such as torch's "+cpu"
        if SpecifierSet(row["affected"]).contains(Version(installed.base_version), prereleases=True):
            hits.append(f"{row['package']} {installed} is affected by {row['id']}: {row['summary']}")
    assert not hits, "\n".join(hits)


def test_the_check_would_catch_an_old_version() -> None:
    row = next(r for r in _advisories() if r["id"] == "CVE-2025-32434")
    assert SpecifierSet(row["affected"]).contains(Version("2.5.1"))
    assert not SpecifierSet(row["affected"]).contains(Version("2.13.0"))
