# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Thin Cython layer over ext/kernels: CPU detection, the per-level tables and a packed
matrix the kernels can read. Argument checking lives in vocoder/engine/kernels.py; everything
here assumes checked, contiguous arrays of the right dtype and size."""

from libc.stdint cimport int8_t, uint8_t, int32_t, uint32_t, int64_t, uint64_t
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
import numpy as np
cimport numpy as cnp

cnp.import_array()

cdef extern from "cpu_detect.h":
    uint32_t vk_cpu_flags() nogil
    uint32_t vk_cpu_levels() nogil

LEVEL_NAMES = tuple(vk_isa_tables[i].name.decode() for i in range(VK_LEVEL_COUNT))
MAX_BATCH = VK_MAX_BATCH

_FLAG_NAMES = ("sse2", "ssse3", "sse4.1", "avx", "fma", "avx2", "avxvnni", "avx512f",
               "avx512bw", "avx512vl", "avx512vnni", "os_ymm_state", "os_zmm_state")


def cpu_flags():
    """Names of the CPU features found (CPUID) and register states enabled (XGETBV)."""
    cdef uint32_t f = vk_cpu_flags()
    return [name for i, name in enumerate(_FLAG_NAMES) if f & (1u << i)]


def cpu_levels():
    """Indices of the levels this CPU and OS can run, lowest first."""
    cdef uint32_t lv = vk_cpu_levels()
    return [i for i in range(VK_LEVEL_COUNT) if lv & (1u << i)]


cdef inline double now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1e9 + ts.tv_nsec


def _aligned(n, dtype, align=64):
    """A zeroed 1-D array whose data starts on an ``align``-byte boundary."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.zeros(n * itemsize + align, np.uint8)
    off = (-raw.ctypes.data) % align
    return raw[off:off + n * itemsize].view(dtype)


cdef class PackedMatrix:
    """Kernel-side view of a validated block-sparse matrix (owns aligned copies)."""

    def __init__(self, row_ptr, col_idx, blocks, row_sums, int cols_padded):
        self.row_ptr = np.ascontiguousarray(row_ptr, np.int32)
        self.col_idx = np.ascontiguousarray(col_idx, np.int32)
        nnz = self.col_idx.shape[0]
        self.blocks = _aligned(max(nnz, 1) * 64, np.int8)
        self.blocks[: nnz * 64] = np.asarray(blocks, np.int8).reshape(-1)
        self.row_sums = _aligned(row_sums.shape[0], np.int32)
        self.row_sums[:] = row_sums
        cdef const int32_t[::1] rp = self.row_ptr
        cdef const int32_t[::1] ci = self.col_idx if nnz else np.zeros(1, np.int32)
        cdef int8_t[::1] bl = self.blocks
        cdef int32_t[::1] rs = self.row_sums
        if not nnz:
            self.col_idx = np.asarray(ci)
        self.m.row_blocks = rp.shape[0] - 1
        self.m.row_ptr = &rp[0]
        self.m.col_idx = &ci[0]
        self.m.blocks = &bl[0]
        self.m.row_sums = &rs[0]
        self.rows_padded = self.m.row_blocks * 16
        self.cols_padded = cols_padded
        self.m.col_blocks = cols_padded // 4

    def gemv(self, int level, const uint8_t[::1] xu, int32_t[::1] y):
        cdef vk_gemv_fn fn = vk_isa_tables[level].sparse_gemv
        with nogil:
            fn(&self.m, &xu[0], &y[0])

    def gemm(self, int level, const uint8_t[:, ::1] xu, int32_t[:, ::1] y):
        cdef vk_gemm_fn fn = vk_isa_tables[level].sparse_gemm
        cdef int batch = xu.shape[0]
        with nogil:
            fn(&self.m, batch, &xu[0, 0], xu.shape[1], &y[0, 0], y.shape[1])

    def matvec_float(self, int level, const float[::1] x, const float[::1] scales,
                     const float[::1] bias, float[::1] y):
        """Quantise x once, multiply, then scale and add bias (the level's quantiser and
        dequantiser: the same bits on every level)."""
        cdef const vk_isa_table *t = vk_isa_tables[level]
        cdef uint8_t[::1] xu = np.empty(self.cols_padded, np.uint8)
        cdef int32_t[::1] acc = np.empty(self.rows_padded, np.int32)
        cdef float xs
        cdef int rows = y.shape[0]
        with nogil:
            xs = t.quantize(&x[0], x.shape[0], self.cols_padded, &xu[0])
            t.sparse_gemv(&self.m, &xu[0], &acc[0])
            t.dequantize(&acc[0], &scales[0], xs, &bias[0], &y[0], rows)

    def time_calls(self, int level, const uint8_t[:, ::1] xu, int calls, int repeats):
        """ns per call for each of ``repeats`` runs of ``calls`` back-to-back calls.

        One vector uses the gemv kernel, several the batched gemm kernel.
        """
        cdef vk_gemv_fn gemv = vk_isa_tables[level].sparse_gemv
        cdef vk_gemm_fn gemm = vk_isa_tables[level].sparse_gemm
        cdef int batch = xu.shape[0]
        cdef int32_t[:, ::1] y = _aligned(batch * self.rows_padded, np.int32).reshape(batch, self.rows_padded)
        cdef double[::1] out = np.empty(repeats, np.float64)
        cdef int r, i
        cdef double t0
        with nogil:
            for r in range(repeats):
                t0 = now_ns()
                if batch == 1:
                    for i in range(calls):
                        gemv(&self.m, &xu[0, 0], &y[0, 0])
                else:
                    for i in range(calls):
                        gemm(&self.m, batch, &xu[0, 0], xu.shape[1], &y[0, 0], y.shape[1])
                out[r] = (now_ns() - t0) / calls
        return np.asarray(out)


# ---- the engine's per-level elementwise functions, for tests (every level must give
# the bits of the plain C / baseline version on any input, NaN and inf included) ----

NOISE_SIZE = VK_NOISE_SIZE


def elementwise_quantize(int level, const float[::1] x, int n_padded):
    """(scale, bytes[n_padded]) from the engine's quantiser of ``level``."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef uint8_t[::1] xu = np.empty(max(n_padded, 1), np.uint8)
    cdef float xs
    with nogil:
        xs = f.quantize(&x[0] if x.shape[0] else NULL, x.shape[0], n_padded, &xu[0])
    return xs, np.asarray(xu)[:n_padded]


def elementwise_dequantize(int level, const int32_t[::1] acc, const float[::1] row_scale, float x_scale, bias):
    """y from the engine's dequantiser of ``level`` (bias None or float32[rows])."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef int rows = acc.shape[0]
    cdef float[::1] y = np.empty(max(rows, 1), np.float32)
    cdef const float[::1] b
    cdef const float *bp = NULL
    if bias is not None:
        b = bias
        bp = &b[0]
    with nogil:
        f.dequantize(&acc[0], &row_scale[0], x_scale, bp, &y[0], rows)
    return np.asarray(y)[:rows]


def elementwise_sample(int level, const float[::1] logits, float t, const float[::1] noise, uint64_t key):
    """The class the engine's sampler of ``level`` draws (noise: NOISE_SIZE entries)."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef int c
    with nogil:
        c = f.sample(&logits[0], logits.shape[0], t, &noise[0], key)
    return c
