"""The Pythons ragmesh supports are declared once and agree everywhere they are named."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def supported() -> list[tuple[int, int]]:
    """Every minor version `requires-python` admits (">=3.A,<3.B")."""
    spec = PYPROJECT["project"]["requires-python"]
    low, high = re.fullmatch(r">=3\.(\d+),<3\.(\d+)", spec).groups()
    return [(3, minor) for minor in range(int(low), int(high))]


def test_supported_versions_are_3_11_to_3_13():
    assert supported() == [(3, 11), (3, 12), (3, 13)]


def test_this_python_is_supported():
    assert sys.version_info[:2] in supported()


def test_ruff_checks_for_the_lowest_supported_python():
    major, minor = supported()[0]
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py{major}{minor}"


def test_classifiers_name_every_supported_python():
    named = {c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"] if c.count("::") == 2}
    assert named == {f"{major}.{minor}" for major, minor in supported()}
