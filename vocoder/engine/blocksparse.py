"""The block-sparse int8 storage format, in numpy: packing, validation, quantization.

One format serves every ISA level (see docs/kernels.md):

* blocks of ``BLOCK_ROWS`` x ``BLOCK_COLS`` = 16 x 4 int8 weights, stored row-major
  (64 bytes: row ``r`` of the block is bytes ``4r .. 4r+3``), so one AVX-512 VNNI
  instruction covers a block and AVX2 / SSE2 cover halves / quarters of it;
* rows are padded to a multiple of 16 and columns to a multiple of 4 with zeros;
* per row-block (16 rows) ``row_ptr[rb] .. row_ptr[rb+1]`` indexes ``col_idx``, the
  block-column index (in units of 4 columns) of each stored block, strictly increasing;
* all-zero blocks are dropped.

The saturation rule (the same for every level): the AVX2 / AVX-512BW kernels feed
activations as unsigned bytes ``x + 128`` in ``[0, 255]`` to ``maddubs``, which adds
pairs of products into a saturating int16. For every row and every column pair
``(2k, 2k+1)`` the sum of the positive weights must be at most 128 and the sum of the
magnitudes of the negative weights at most 128; then no pair can saturate and every
level computes the exact integer product. :func:`quantize_rows` picks per-row scales
that satisfy the rule for any float matrix.

This module is pure numpy so the preset loader, the training exporter and the kernels
share one definition of "valid".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 16
BLOCK_COLS = 4
BLOCK_SIZE = BLOCK_ROWS * BLOCK_COLS
#: Largest logical dimension. Keeps every int32 accumulation exact:
#: |sum| <= 255 * 128 * 65536 < 2**31.
MAX_DIM = 65536
PAIR_LIMIT = 128


@dataclass(frozen=True)
class PackedBlocks:
    """A packed block-sparse int8 matrix (the arrays the kernels read)."""

    rows: int
    cols: int
    row_ptr: np.ndarray  # int32[row_blocks + 1]
    col_idx: np.ndarray  # int32[nnz_blocks]
    blocks: np.ndarray  # int8[nnz_blocks, 16, 4]

    @property
    def row_blocks(self) -> int:
        return padded(self.rows, BLOCK_ROWS) // BLOCK_ROWS

    @property
    def col_blocks(self) -> int:
        return padded(self.cols, BLOCK_COLS) // BLOCK_COLS

    @property
    def nnz_blocks(self) -> int:
        return int(self.col_idx.shape[0])

    def to_dense(self) -> np.ndarray:
        """The int8 matrix, ``rows x cols`` (padding removed)."""
        dense = np.zeros((self.row_blocks * BLOCK_ROWS, self.col_blocks * BLOCK_COLS), np.int8)
        for rb in range(self.row_blocks):
            for k in range(int(self.row_ptr[rb]), int(self.row_ptr[rb + 1])):
                c = int(self.col_idx[k]) * BLOCK_COLS
                dense[rb * BLOCK_ROWS : (rb + 1) * BLOCK_ROWS, c : c + BLOCK_COLS] = self.blocks[k]
        return dense[: self.rows, : self.cols]


def padded(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _check_dims(rows: int, cols: int, where: str) -> None:
    for name, n in (("rows", rows), ("cols", cols)):
        if not 1 <= n <= MAX_DIM:
            raise ValueError(f"{where}: {name}={n} is outside 1..{MAX_DIM}")


def saturation_violation(w: np.ndarray):
    """First (row, col) of a column pair that breaks the saturation rule, or None.

    ``col`` is the even column of the pair (2k, 2k+1).
    """
    w = np.asarray(w)
    rows, cols = w.shape
    wp = np.zeros((rows, padded(cols, 2)), np.int32)
    wp[:, :cols] = w
    pos = np.maximum(wp, 0)
    neg = np.maximum(-wp, 0)
    pos_pair = pos[:, 0::2] + pos[:, 1::2]
    neg_pair = neg[:, 0::2] + neg[:, 1::2]
    bad = (pos_pair > PAIR_LIMIT) | (neg_pair > PAIR_LIMIT)
    if not bad.any():
        return None
    r, k = np.argwhere(bad)[0]
    return int(r), int(2 * k)


def check_saturation(w: np.ndarray, where: str = "matrix") -> None:
    """Raise ValueError naming row and column if ``w`` breaks the saturation rule."""
    hit = saturation_violation(w)
    if hit is not None:
        r, c = hit
        a = int(w[r, c])
        b = int(w[r, c + 1]) if c + 1 < w.shape[1] else 0
        raise ValueError(
            f"{where}: weights at row {r}, columns {c} and {c + 1} ({a}, {b}) break the "
            f"saturation rule: per row, each column pair may hold at most {PAIR_LIMIT} of "
            f"positive and {PAIR_LIMIT} of negative weight (so AVX2's maddubs cannot "
            f"saturate). Quantize with vocoder.engine.blocksparse.quantize_rows, which picks "
            f"scales that obey it."
        )


def pack(w: np.ndarray, where: str = "matrix") -> PackedBlocks:
    """Pack a dense int8 matrix (checks dimensions and the saturation rule)."""
    if not isinstance(w, np.ndarray):
        raise TypeError(f"{where}: expected a numpy int8 array, got {type(w).__name__}")
    if w.dtype != np.int8:
        raise TypeError(f"{where}: expected dtype int8, got {w.dtype}")
    if w.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D matrix, got shape {w.shape}")
    rows, cols = w.shape
    _check_dims(rows, cols, where)
    check_saturation(w, where)
    rp, cp = padded(rows, BLOCK_ROWS), padded(cols, BLOCK_COLS)
    full = np.zeros((rp, cp), np.int8)
    full[:rows, :cols] = w
    tiles = full.reshape(rp // BLOCK_ROWS, BLOCK_ROWS, cp // BLOCK_COLS, BLOCK_COLS).transpose(0, 2, 1, 3)
    keep = tiles.any(axis=(2, 3))  # [row_blocks, col_blocks]
    counts = keep.sum(axis=1)
    row_ptr = np.zeros(rp // BLOCK_ROWS + 1, np.int32)
    np.cumsum(counts, out=row_ptr[1:])
    rb_idx, cb_idx = np.nonzero(keep)  # row-major order: sorted by row block, then column
    blocks = np.ascontiguousarray(tiles[rb_idx, cb_idx])
    return PackedBlocks(rows, cols, row_ptr, cb_idx.astype(np.int32), blocks)


def validate_packed(rows, cols, row_ptr, col_idx, blocks, where: str = "matrix") -> PackedBlocks:
    """Check every field of a packed matrix from an untrusted source.

    A matrix that passes can be handed to any kernel: every index is in range, the
    arrays have the dtypes and shapes the kernels assume, and the saturation rule
    holds. Errors name ``where`` and the field.
    """
    rows, cols = _as_dim(rows, f"{where}.rows"), _as_dim(cols, f"{where}.cols")
    _check_dims(rows, cols, where)
    row_blocks = padded(rows, BLOCK_ROWS) // BLOCK_ROWS
    col_blocks = padded(cols, BLOCK_COLS) // BLOCK_COLS
    row_ptr = _array(row_ptr, np.int32, 1, f"{where}.row_ptr")
    col_idx = _array(col_idx, np.int32, 1, f"{where}.col_idx")
    blocks = _array(blocks, np.int8, 3, f"{where}.blocks")
    if row_ptr.shape[0] != row_blocks + 1:
        raise ValueError(f"{where}.row_ptr: expected {row_blocks + 1} entries for {rows} rows, got {row_ptr.shape[0]}")
    nnz = col_idx.shape[0]
    if nnz > row_blocks * col_blocks:
        raise ValueError(
            f"{where}.col_idx: {nnz} blocks is more than the {row_blocks * col_blocks} a {rows}x{cols} matrix holds"
        )
    if blocks.shape != (nnz, BLOCK_ROWS, BLOCK_COLS):
        raise ValueError(f"{where}.blocks: expected shape ({nnz}, {BLOCK_ROWS}, {BLOCK_COLS}), got {blocks.shape}")
    if row_ptr[0] != 0 or row_ptr[-1] != nnz:
        raise ValueError(f"{where}.row_ptr: must start at 0 and end at the block count {nnz}")
    if np.any(np.diff(row_ptr.astype(np.int64)) < 0):
        raise ValueError(f"{where}.row_ptr: must not decrease")
    if nnz and (col_idx.min() < 0 or col_idx.max() >= col_blocks):
        raise ValueError(f"{where}.col_idx: block-column indices must lie in 0..{col_blocks - 1}")
    for rb in range(row_blocks):
        seg = col_idx[row_ptr[rb] : row_ptr[rb + 1]]
        if seg.size > 1 and np.any(np.diff(seg) <= 0):
            raise ValueError(f"{where}.col_idx: indices of row block {rb} must strictly increase")
    packed = PackedBlocks(rows, cols, row_ptr, col_idx, blocks)
    dense_full = np.zeros((row_blocks * BLOCK_ROWS, col_blocks * BLOCK_COLS), np.int8)
    if nnz:
        rb_of = np.repeat(np.arange(row_blocks), np.diff(row_ptr))
        t = dense_full.reshape(row_blocks, BLOCK_ROWS, col_blocks, BLOCK_COLS).transpose(0, 2, 1, 3)
        t[rb_of, col_idx] = blocks
    if dense_full[rows:].any() or dense_full[:, cols:].any():
        raise ValueError(f"{where}.blocks: padding rows/columns beyond {rows}x{cols} must be zero")
    check_saturation(dense_full[:rows, :cols], where)
    return packed


def quantize_rows(w: np.ndarray):
    """Quantize a float matrix to int8 with one scale per row, obeying the saturation rule.

    Returns ``(w_int8, scales)`` with ``w ~= w_int8 * scales[:, None]``. The scale of a
    row is the smallest that keeps every weight in [-127, 127] and every column pair
    within the rule, so a row loses at most one bit where two large weights sit side by
    side.
    """
    w = np.asarray(w, np.float64)
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ValueError("matrix holds NaN or infinite weights")
    rows, cols = w.shape
    wp = np.zeros((rows, padded(cols, 2)))
    wp[:, :cols] = w
    pos, neg = np.maximum(wp, 0), np.maximum(-wp, 0)
    pair = np.maximum(pos[:, 0::2] + pos[:, 1::2], neg[:, 0::2] + neg[:, 1::2]).max(axis=1)
    need = np.maximum(np.abs(w).max(axis=1) / 127.0, pair / (PAIR_LIMIT - 1.0))
    scales = np.where(need > 0, need, 1.0)
    q = np.clip(np.rint(w / scales[:, None]), -127, 127).astype(np.int8)
    # Rounding can still push a pair one step over the limit: shave it.
    while (hit := saturation_violation(q)) is not None:
        r, _ = hit
        scales[r] *= 1.01
        q[r] = np.clip(np.rint(w[r] / scales[r]), -127, 127).astype(np.int8)
    return q, scales.astype(np.float32)


def _as_dim(v, where: str) -> int:
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected an integer, got {v!r}") from None
    if n != v:
        raise ValueError(f"{where}: expected an integer, got {v!r}")
    return n


def _array(a, dtype, ndim: int, where: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{where}: expected a numpy array, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{where}: expected dtype {np.dtype(dtype).name}, got {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{where}: expected {ndim} dimensions, got shape {a.shape}")
    return np.ascontiguousarray(a)
