"""Block-sparse int8 matrix-vector kernels, one per x86 level, picked at import.

The levels, lowest first: ``ref`` (portable C), ``sse2``, ``avx2``, ``avxvnni`` (AVX2
with the 256-bit VNNI of CPUs without AVX-512), ``avx512`` and ``avx512vnni``. At
import the best level this CPU *and* OS can run is chosen (CPUID and XGETBV). Set the
environment variable ``VOCODER_ISA`` to force a lower one, e.g. to test every level on
one machine::

    VOCODER_ISA=sse2 python -c "from vocoder import kernels; print(kernels.active_level())"

Every level returns the exact integer product, so results are bit-identical across
levels. A matrix is accepted only if it obeys the saturation rule (see
:mod:`vocoder.engine.blocksparse`); the rule is the same for every level.

Example::

    import numpy as np
    from vocoder.engine import kernels
    w = np.random.default_rng(0).integers(-60, 60, (1152, 384)).astype(np.int8)
    m = kernels.BlockSparseMatrix.from_dense(w)
    y = m.matvec_int(np.ones(384, np.int8))          # int32[1152], exact
"""

from __future__ import annotations

import os

import numpy as np

from .. import _kernels
from .blocksparse import BLOCK_COLS, BLOCK_ROWS, PackedBlocks, pack, padded, validate_packed

LEVELS = _kernels.LEVEL_NAMES
MAX_BATCH = _kernels.MAX_BATCH
ENV_VAR = "VOCODER_ISA"


# Read once, at import: CPUID traps to the hypervisor in a VM (about 7 us each), so no
# per-call path may ask the CPU again (issue 15 measured 35-50 us per kernel call).
_CPU_FLAGS = tuple(_kernels.cpu_flags())
_AVAILABLE = tuple(LEVELS[i] for i in _kernels.cpu_levels())


def cpu_flags() -> list[str]:
    """CPU features found by CPUID, plus the register states the OS enabled (XGETBV); read at import."""
    return list(_CPU_FLAGS)


def available_levels() -> list[str]:
    """Levels this CPU and OS can run, lowest first, e.g. ``['ref', 'sse2', 'avx2']``; read at import."""
    return list(_AVAILABLE)


def _choose_level() -> str:
    have = available_levels()
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if not forced:
        return have[-1]
    if forced not in LEVELS:
        raise RuntimeError(
            f"{ENV_VAR}={forced!r} is not a kernel level; known levels: {', '.join(LEVELS)}. "
            f"This CPU runs: {', '.join(have)}."
        )
    if forced not in have:
        raise RuntimeError(
            f"{ENV_VAR}={forced!r}: this CPU (or OS) cannot run that level. "
            f"Levels available here: {', '.join(have)}. Unset {ENV_VAR} to use the best one."
        )
    return forced


_ACTIVE = _choose_level()


def active_level() -> str:
    """The level chosen at import (the best available, or the one VOCODER_ISA forced)."""
    return _ACTIVE


def _level_index(level) -> int:
    if level is None:
        level = _ACTIVE
    if not isinstance(level, str) or level not in LEVELS:
        raise ValueError(f"unknown kernel level {level!r}; known levels: {', '.join(LEVELS)}")
    if level not in _AVAILABLE:
        raise ValueError(f"kernel level {level!r} is not available on this CPU; available: {', '.join(_AVAILABLE)}")
    return LEVELS.index(level)


def _check_vector(x, dtype, length: int, what: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{what}: expected a numpy array, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{what}: expected dtype {np.dtype(dtype).name}, got {x.dtype}")
    if x.ndim != 1 or x.shape[0] != length:
        raise ValueError(f"{what}: expected shape ({length},), got {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{what}: array must be C-contiguous (use np.ascontiguousarray)")
    return x


def _offset_bytes(x_int8: np.ndarray, cols_padded: int) -> np.ndarray:
    """int8 activations -> the kernels' offset-binary bytes (x + 128), zero-padded."""
    xu = np.full(x_int8.shape[:-1] + (cols_padded,), 128, np.uint8)
    xu[..., : x_int8.shape[-1]] = x_int8.view(np.uint8) ^ 0x80
    return xu


class BlockSparseMatrix:
    """An int8 matrix packed in 16x4 blocks, multiplied by any kernel level.

    Build one with :meth:`from_dense` (or :meth:`from_packed` for arrays read from a
    file). ``scales`` (one per row) and ``bias`` are used by the float form
    :meth:`matvec`; the integer forms ignore them.
    """

    def __init__(self, packed: PackedBlocks, scales=None, bias=None):
        self.packed = packed
        self.rows, self.cols = packed.rows, packed.cols
        self.rows_padded = padded(self.rows, BLOCK_ROWS)
        self.cols_padded = padded(self.cols, BLOCK_COLS)
        self.scales = self._row_vector(scales, 1.0, "scales")
        self.bias = self._row_vector(bias, 0.0, "bias")
        row_sums = packed.blocks.astype(np.int32).sum(axis=2)  # [nnz, 16]
        sums = np.zeros((packed.row_blocks, BLOCK_ROWS), np.int32)
        rb_of = np.repeat(np.arange(packed.row_blocks), np.diff(packed.row_ptr))
        np.add.at(sums, rb_of, row_sums)
        self._m = _kernels.PackedMatrix(
            packed.row_ptr, packed.col_idx, packed.blocks, sums.reshape(-1), self.cols_padded
        )

    def _row_vector(self, v, fill: float, what: str) -> np.ndarray:
        if v is None:
            return np.full(self.rows, fill, np.float32)
        v = np.asarray(v, dtype=np.float32)
        if v.shape != (self.rows,):
            raise ValueError(f"{what}: expected shape ({self.rows},), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{what}: every value must be finite")
        return np.ascontiguousarray(v)

    @classmethod
    def from_dense(cls, w, scales=None, bias=None) -> BlockSparseMatrix:
        """Pack a dense int8 matrix; all-zero 16x4 blocks are dropped.

        Raises TypeError for a non-int8 array and ValueError naming the row and column
        of weights that break the saturation rule.
        """
        return cls(pack(w, "weights"), scales, bias)

    @classmethod
    def from_packed(
        cls, rows, cols, row_ptr, col_idx, blocks, scales=None, bias=None, where: str = "matrix"
    ) -> BlockSparseMatrix:
        """Build from packed arrays of an untrusted source, validating every field."""
        return cls(validate_packed(rows, cols, row_ptr, col_idx, blocks, where), scales, bias)

    @property
    def nnz_blocks(self) -> int:
        return self.packed.nnz_blocks

    @property
    def density(self) -> float:
        """Stored blocks over all blocks of the padded matrix."""
        return self.nnz_blocks / (self.packed.row_blocks * self.packed.col_blocks)

    @property
    def weight_bytes(self) -> int:
        """Bytes a single product reads for weights and indices."""
        return self.nnz_blocks * (BLOCK_ROWS * BLOCK_COLS + 4) + 4 * (self.packed.row_blocks + 1)

    def to_dense(self) -> np.ndarray:
        return self.packed.to_dense()

    def matvec_int(self, x, level=None) -> np.ndarray:
        """``W @ x`` for int8 ``x`` of shape (cols,), exact, as int32[rows]."""
        lv = _level_index(level)
        x = _check_vector(x, np.int8, self.cols, "x")
        y = np.empty(self.rows_padded, np.int32)
        self._m.gemv(lv, _offset_bytes(x, self.cols_padded), y)
        return y[: self.rows]

    def matmul_int(self, x, level=None) -> np.ndarray:
        """``x @ W.T`` for int8 ``x`` of shape (N, cols), 1 <= N <= 16: int32[N, rows].

        The batched kernel loads each weight block once for a group of vectors.
        """
        lv = _level_index(level)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x: expected a numpy array, got {type(x).__name__}")
        if x.dtype != np.int8:
            raise TypeError(f"x: expected dtype int8, got {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.cols:
            raise ValueError(f"x: expected shape (N, {self.cols}), got {x.shape}")
        if not 1 <= x.shape[0] <= MAX_BATCH:
            raise ValueError(f"x: batch N={x.shape[0]} is outside 1..{MAX_BATCH}")
        if not x.flags.c_contiguous:
            raise ValueError("x: array must be C-contiguous (use np.ascontiguousarray)")
        y = np.empty((x.shape[0], self.rows_padded), np.int32)
        self._m.gemm(lv, _offset_bytes(x, self.cols_padded), y)
        return y[:, : self.rows]

    def matvec(self, x, level=None) -> np.ndarray:
        """Float form: quantise ``x`` once (scale absmax/127), multiply, then apply the
        per-row scales and add the bias: float32[rows]. NaN in x counts as 0.

        The float steps run in shared code, so every level gives the same bits.
        """
        lv = _level_index(level)
        x = _check_vector(x, np.float32, self.cols, "x")
        y = np.empty(self.rows, np.float32)
        self._m.matvec_float(lv, x, self.scales, self.bias, y)
        return y

    def time_calls(self, level, batch: int = 1, calls: int = 200, repeats: int = 51, seed: int = 0):
        """Nanoseconds per kernel call, one value per repeat (the benchmark's clock).

        Timed in C around ``calls`` back-to-back calls, so Python is not measured.
        """
        lv = _level_index(level)
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch={batch} is outside 1..{MAX_BATCH}")
        rng = np.random.default_rng(seed)
        xu = np.ascontiguousarray(rng.integers(0, 256, (batch, self.cols_padded)).astype(np.uint8))
        return self._m.time_calls(lv, xu, calls, repeats)

    def __repr__(self) -> str:
        return (
            f"BlockSparseMatrix({self.rows}x{self.cols}, {self.nnz_blocks} blocks of "
            f"{BLOCK_ROWS}x{BLOCK_COLS}, density {self.density:.3f})"
        )
