"""Every level's own code, run on this machine: AVX-VNNI, AVX-512 and AVX-512 VNNI too.

The other tests compare each level this CPU has with the plain C one. A CPU without
AVX-512 (this project's CI machine is a Zen 3) would leave those levels' files compiled
but never run, while the users who have them get their bits. setup.py's
VOCODER_EMULATE_ISA=1 compiles those files for AVX2 against SIMDe's portable
intrinsics (ext/simde_isa.h), which give the instructions' exact results, and offers
every level. This test builds that variant from a copy of the sources and runs the
level tests of the kernels, the elementwise operations and the engine against it:
each level's source, its lane orders, masks and tails, must give the plain C level's
bits. It checks our code, not the compiler's native AVX-512 code generation.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ALL_LEVELS = ["ref", "sse2", "avx2", "avxvnni", "avx512", "avx512vnni"]
# The tests run against the emulated build: each one compares every offered level with ref.
LEVEL_TESTS = [
    "tests/test_kernels.py",
    "tests/test_elementwise.py",
    "tests/test_engine.py::test_same_bits_on_every_level",
    "tests/test_voice.py::test_same_samples_on_every_level",
    "tests/test_voice_group.py::test_voices_at_different_rates_and_levels",
    "tests/test_preemphasis.py::test_same_bits_on_every_level_and_in_blocks",
]


def _simde_available() -> bool:
    cc = os.environ.get("CC", "cc")
    try:
        r = subprocess.run(
            [cc, "-mavx2", "-fsyntax-only", "-x", "c", "-"],
            input="#include <simde/x86/avx512.h>\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


pytestmark = [
    pytest.mark.skipif(os.uname().machine not in ("x86_64", "AMD64"), reason="x86 levels only"),
    pytest.mark.skipif(not _simde_available(), reason="SIMDe headers not found: apt-get install libsimde-dev"),
]


@pytest.fixture(scope="module")
def emulated_tree(tmp_path_factory):
    """A copy of the sources with the VOCODER_EMULATE_ISA=1 build made in place."""
    tree = tmp_path_factory.mktemp("emulated") / "src"
    skip = shutil.ignore_patterns("build", "*.so", "__pycache__", "*.egg-info", ".pytest_cache")
    tree.mkdir()
    shutil.copy2(REPO / "setup.py", tree)
    for d in ("ext", "vocoder", "tests", "presets"):
        if (REPO / d).is_dir():
            shutil.copytree(REPO / d, tree / d, ignore=skip)
    env = dict(os.environ, VOCODER_EMULATE_ISA="1")
    r = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "-q", "--parallel", "2"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, f"the emulated build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    return tree


def _run(tree, args, timeout):
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.pop("VOCODER_ISA", None)
    return subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_emulated_build_offers_every_level(emulated_tree):
    r = _run(
        emulated_tree,
        ["-c", "import vocoder, vocoder.kernels as k; print(vocoder.__file__); print(' '.join(k.available_levels()))"],
        120,
    )
    assert r.returncode == 0, r.stderr
    where, levels = r.stdout.split("\n")[:2]
    assert Path(where).resolve().is_relative_to(emulated_tree.resolve()), f"imported {where}, not the copy"
    assert levels.split() == ALL_LEVELS


def test_every_level_gives_the_plain_c_bits(emulated_tree):
    r = _run(emulated_tree, ["-m", "pytest", "-q", "-p", "no:cacheprovider", *LEVEL_TESTS], 1200)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, f"level tests failed on the emulated build:\n{tail}"
    summary = [line for line in tail.splitlines() if line.strip()][-1]
    assert " passed" in summary and "skipped" not in summary, summary
