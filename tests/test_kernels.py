"""Kernels: exact against an int64 numpy reference on every level this CPU runs."""

import os
import subprocess
import sys

import numpy as np
import pytest

from vocoder.engine import blocksparse, kernels

LEVELS = kernels.available_levels()


def random_block_sparse(rng, rows, cols, density, low=-64, high=64):
    """Random int8 matrix keeping a `density` fraction of its 16x4 blocks (rule-safe range)."""
    rb, cb = -(-rows // 16), -(-cols // 4)
    keep = rng.random((rb, cb)) < density
    mask = np.repeat(np.repeat(keep, 16, axis=0), 4, axis=1)[:rows, :cols]
    w = rng.integers(low, high, (rows, cols)).astype(np.int8)
    return np.where(mask, w, 0).astype(np.int8)


def exact(w, x):
    return x.astype(np.int64) @ w.astype(np.int64).T


SHAPES = [(1, 1), (1, 7), (7, 1), (16, 4), (17, 5), (31, 33), (100, 3), (3, 100), (1152, 384), (257, 129)]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("density", [0.0, 0.1, 0.5, 1.0])
def test_matvec_and_matmul_exact(level, shape, density):
    rng = np.random.default_rng(hash((shape, density)) % 2**32)
    w = random_block_sparse(rng, *shape, density)
    m = kernels.BlockSparseMatrix.from_dense(w)
    x = rng.integers(-128, 128, shape[1]).astype(np.int8)
    got = m.matvec_int(x, level=level)
    assert got.dtype == np.int32 and got.shape == (shape[0],)
    np.testing.assert_array_equal(got, exact(w, x))
    for n in (1, 2, 3, 5, 8, 9, 16):
        X = rng.integers(-128, 128, (n, shape[1])).astype(np.int8)
        np.testing.assert_array_equal(m.matmul_int(X, level=level), exact(w, X))


def test_density_and_block_count():
    w = np.zeros((33, 9), np.int8)
    w[0, 0] = 1  # block (0, 0)
    w[32, 8] = -1  # block (2, 2)
    m = kernels.BlockSparseMatrix.from_dense(w)
    assert (m.rows, m.cols, m.nnz_blocks) == (33, 9, 2)
    assert m.density == pytest.approx(2 / (3 * 3))
    np.testing.assert_array_equal(m.to_dense(), w)


def test_empty_row_blocks_give_zero():
    w = np.zeros((48, 8), np.int8)
    w[20, 3] = 5  # only the middle row block has weights
    m = kernels.BlockSparseMatrix.from_dense(w)
    x = np.full(8, -7, np.int8)
    for level in LEVELS:
        np.testing.assert_array_equal(m.matvec_int(x, level=level), exact(w, x))


# Weights at the edge of the saturation rule: each column pair holds 128 of positive or
# negative weight. With activations at -128 and 127 these drive maddubs to +-32640.
EDGE_PAIRS = [(127, 1), (1, 127), (-128, 0), (0, -128), (-64, -64), (64, 64), (127, -128), (-128, 127)]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("pair", EDGE_PAIRS)
def test_adversarial_extremes_exact(level, pair):
    rows, cols = 37, 4099
    w = np.tile(np.array(pair, np.int8), (rows, -(-cols // 2)))[:, :cols].copy()
    m = kernels.BlockSparseMatrix.from_dense(w)
    for x_val in (-128, 127):
        x = np.full(cols, x_val, np.int8)
        np.testing.assert_array_equal(m.matvec_int(x, level=level), exact(w, x))
    x = np.where(np.arange(cols) % 2 == 0, -128, 127).astype(np.int8)
    np.testing.assert_array_equal(m.matvec_int(x, level=level), exact(w, x))
    X = np.stack([np.full(cols, v, np.int8) for v in (-128, 127, 0, -1)])
    np.testing.assert_array_equal(m.matmul_int(X, level=level), exact(w, X))


@pytest.mark.parametrize("level", LEVELS)
def test_longest_rows_exact(level):
    # 65536 columns of extreme values: the largest sums any accepted matrix can reach.
    cols = blocksparse.MAX_DIM
    w = np.tile(np.array([[127, 1], [-128, 0]], np.int8), (8, cols // 2))
    m = kernels.BlockSparseMatrix.from_dense(w)
    for x_val in (-128, 127):
        x = np.full(cols, x_val, np.int8)
        np.testing.assert_array_equal(m.matvec_int(x, level=level), exact(w, x))


@pytest.mark.parametrize("pair,bad_col", [((127, 2), 0), ((-128, -1), 0), ((100, 100), 0)])
def test_saturating_weights_rejected_naming_row_and_column(pair, bad_col):
    w = np.zeros((20, 10), np.int8)
    w[13, 6:8] = pair
    with pytest.raises(ValueError, match=r"row 13, columns 6 and 7"):
        kernels.BlockSparseMatrix.from_dense(w)


def test_quantize_rows_obeys_rule_and_approximates():
    rng = np.random.default_rng(3)
    wf = rng.normal(size=(64, 50))
    wf[5, 10:12] = [3.0, 3.0]  # a pair of large neighbours
    q, s = blocksparse.quantize_rows(wf)
    assert blocksparse.saturation_violation(q) is None
    kernels.BlockSparseMatrix.from_dense(q)
    err = np.abs(q * s[:, None] - wf).max(axis=1)
    assert np.all(err <= s * 0.5 + 1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (45, 77), (1152, 384)])
def test_float_form_identical_across_levels_and_close_to_float(shape):
    rng = np.random.default_rng(11)
    wf = rng.normal(size=shape) * (rng.random(shape) < 0.3)
    q, s = blocksparse.quantize_rows(wf)
    bias = rng.normal(size=shape[0]).astype(np.float32)
    m = kernels.BlockSparseMatrix.from_dense(q, scales=s, bias=bias)
    x = rng.normal(size=shape[1]).astype(np.float32)
    outs = [m.matvec(x, level=lv) for lv in LEVELS]
    for o in outs[1:]:
        assert o.tobytes() == outs[0].tobytes()
    want = (q * s[:, None]) @ x + bias
    tol = 0.02 * np.abs(q * s[:, None]).sum(axis=1) * np.abs(x).max() + 1e-5
    assert np.all(np.abs(outs[0] - want) <= tol)


def test_float_form_bad_values_stay_finite():
    q = np.full((20, 8), 60, np.int8)
    m = kernels.BlockSparseMatrix.from_dense(q, scales=np.full(20, 0.01, np.float32))
    for x in ([np.nan] * 8, [np.inf, -np.inf] * 4, [1e30, np.nan, 0, 0, 0, 0, 0, -1e30]):
        y = m.matvec(np.array(x, np.float32))
        assert np.all(np.isfinite(y))


def test_bad_arguments_raise_clear_errors():
    m = kernels.BlockSparseMatrix.from_dense(np.ones((8, 6), np.int8))
    with pytest.raises(TypeError, match="int8"):
        kernels.BlockSparseMatrix.from_dense(np.ones((8, 6), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        kernels.BlockSparseMatrix.from_dense(np.ones(8, np.int8))
    with pytest.raises(ValueError, match="rows=0"):
        kernels.BlockSparseMatrix.from_dense(np.ones((0, 4), np.int8))
    with pytest.raises(TypeError, match="int8"):
        m.matvec_int(np.ones(6, np.int16))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        m.matvec_int(np.ones(5, np.int8))
    with pytest.raises(ValueError, match="contiguous"):
        m.matvec_int(np.ones(12, np.int8)[::2])
    with pytest.raises(ValueError, match="1..16"):
        m.matmul_int(np.ones((17, 6), np.int8))
    with pytest.raises(ValueError, match="1..16"):
        m.matmul_int(np.ones((0, 6), np.int8))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        m.matmul_int(np.ones((2, 5), np.int8))
    with pytest.raises(ValueError, match="contiguous"):
        m.matmul_int(np.asfortranarray(np.ones((3, 6), np.int8)))
    with pytest.raises(TypeError, match="float32"):
        m.matvec(np.ones(6, np.float64))
    with pytest.raises(TypeError, match="numpy"):
        m.matvec_int([1, 2, 3, 4, 5, 6])
    with pytest.raises(ValueError, match="unknown kernel level"):
        m.matvec_int(np.ones(6, np.int8), level="neon")
    with pytest.raises(ValueError, match="scales"):
        kernels.BlockSparseMatrix.from_dense(np.ones((8, 6), np.int8), scales=np.ones(7))


def test_from_packed_validates_indices():
    p = blocksparse.pack(np.ones((32, 8), np.int8))
    col = p.col_idx.copy()
    col[0] = 2  # only block columns 0..1 exist
    with pytest.raises(ValueError, match="col_idx"):
        kernels.BlockSparseMatrix.from_packed(32, 8, p.row_ptr, col, p.blocks)
    rp = p.row_ptr.copy()
    rp[-1] += 1
    with pytest.raises(ValueError, match="row_ptr"):
        kernels.BlockSparseMatrix.from_packed(32, 8, rp, p.col_idx, p.blocks)
    m = kernels.BlockSparseMatrix.from_packed(32, 8, p.row_ptr, p.col_idx, p.blocks)
    np.testing.assert_array_equal(m.matvec_int(np.ones(8, np.int8)), np.full(32, 8))


def run_with_isa(value, code="from vocoder import kernels; print(kernels.active_level())"):
    env = dict(os.environ)
    env["VOCODER_ISA"] = value
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("level", LEVELS)
def test_env_var_forces_each_level(level):
    r = run_with_isa(level)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == level


def test_env_var_unavailable_level_lists_available():
    missing = [lv for lv in kernels.LEVELS if lv not in LEVELS]
    for value in missing[:1] + ["neon"]:
        r = run_with_isa(value)
        assert r.returncode != 0
        assert "VOCODER_ISA" in r.stderr
        assert ", ".join(LEVELS) in r.stderr


def test_best_level_chosen_by_default():
    env = {k: v for k, v in os.environ.items() if k != "VOCODER_ISA"}
    r = subprocess.run(
        [sys.executable, "-c", "from vocoder import kernels; print(kernels.active_level())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == LEVELS[-1]
    assert LEVELS[0] == "ref"
