"""The package's shape: the public names, one version, every stage shipped."""

import importlib
import re

import pytest

import vocoder

from helpers import REPO


def test_every_public_name_resolves():
    for name in vocoder.__all__:
        assert getattr(vocoder, name) is not None, name
    # the names of the flat layout, still reachable as attributes
    for old, new in [
        ("presets", "vocoder.engine.presets"),
        ("render", "vocoder.hosts.render"),
        ("events", "vocoder.score.events"),
        ("lyrics", "vocoder.score.lyrics"),
        ("reference", "vocoder.engine.reference"),
        ("blocksparse", "vocoder.engine.blocksparse"),
    ]:
        assert getattr(vocoder, old) is importlib.import_module(new), old


def test_kernels_is_one_module_under_both_names():
    import vocoder.kernels as short
    from vocoder import kernels
    from vocoder.engine import kernels as staged

    assert short is kernels is staged is vocoder.kernels
    assert kernels.active_level() in kernels.available_levels()


def test_the_version_is_written_once():
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    assert re.fullmatch(r"\d+\.\d+\.\d+", vocoder.__version__)
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "vocoder._version.__version__"}


def test_every_folder_of_the_package_is_a_package():
    """find_packages ships only folders with an __init__.py: a stage without one would be
    missing from an installed copy while the tests, run from the checkout, still pass."""
    for folder in (REPO / "vocoder").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), folder
