# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython layer over ext/engine/wavernn.c. vocoder/engine.py is the public face."""

from libc.stdint cimport int32_t, int64_t, uint64_t
import numpy as np
cimport numpy as cnp
from vocoder._kernels cimport PackedMatrix, vk_bsmat

cnp.import_array()

cdef extern from "engine/wavernn.h":
    ctypedef struct vk_layer:
        vk_bsmat m
        const float *scales
        const float *bias
        int rows, cols, cols_padded
    ctypedef struct vk_model:
        int hidden, head, n_classes, subscale, horizon
        int n_features, hop, ctx_before, lookahead, cond_hidden
        int excitation, sample_rate
        float temperature
        const float *feat_mean
        const float *feat_std
        const float *cond1_w
        const float *cond1_b
        const float *cond2_w
        const float *cond2_b
        const float *in_w
        const float *sub_bias
        const float *exc_out_w
        vk_layer R, O1, O2, O3, O4
    ctypedef struct vk_engine:
        pass
    vk_engine *vk_engine_create(const vk_model *model, int level, uint64_t seed, int frame_capacity) nogil
    void vk_engine_destroy(vk_engine *e) nogil
    void vk_engine_reset(vk_engine *e, uint64_t seed) nogil
    void vk_engine_set_level(vk_engine *e, int level) nogil
    void vk_engine_set_temperature(vk_engine *e, float t) nogil
    int vk_engine_feed(vk_engine *e, const float *frames, int n) nogil
    void vk_engine_finish(vk_engine *e) nogil
    void vk_engine_render(vk_engine *e, float *out, int n) nogil
    int64_t vk_engine_latency(const vk_engine *e) nogil
    int64_t vk_engine_underrun_samples(const vk_engine *e) nogil
    int64_t vk_engine_generated(const vk_engine *e) nogil
    int64_t vk_engine_ready(const vk_engine *e) nogil
    void vk_engine_teacher_force(vk_engine *e, const float *features, int n_frames,
                                 const int32_t *cls_a, const int32_t *cls_b, int n,
                                 float *logits_a, float *logits_b) nogil


cdef const float *fptr(const float[::1] a):
    return &a[0]


cdef void set_layer(vk_layer *L, PackedMatrix pm, const float[::1] scales, const float[::1] bias,
                    int rows, int cols):
    L.m = pm.m
    L.scales = &scales[0]
    L.bias = &bias[0]
    L.rows = rows
    L.cols = cols
    L.cols_padded = pm.cols_padded


cdef class Engine:
    """Owns a vk_engine and keeps alive every array its model points into."""

    cdef vk_engine *e
    cdef vk_model model
    cdef object keep
    cdef readonly int n_features, n_classes, head

    def __cinit__(self):
        self.e = NULL

    def __init__(self, dict dense, dict layers, dict cfg, int level, uint64_t seed, int frame_capacity):
        # dense: name -> float32 C-contiguous array; layers: name -> (BlockSparseMatrix, scales, bias)
        self.keep = (dense, layers)
        cdef vk_model *m = &self.model
        m.hidden = cfg["hidden"]
        m.head = 0 if cfg["head"] == "dual" else 1
        m.n_classes = cfg["n_classes"]
        m.subscale = cfg["subscale"]
        m.horizon = cfg["horizon"]
        m.n_features = cfg["n_features"]
        m.hop = cfg["hop"]
        m.ctx_before = cfg["ctx_before"]
        m.lookahead = cfg["lookahead"]
        m.cond_hidden = cfg["cond_hidden"]
        m.temperature = cfg["temperature"]
        m.feat_mean = fptr(dense["feat_mean"])
        m.feat_std = fptr(dense["feat_std"])
        m.cond1_w = fptr(dense["cond1_w"])
        m.cond1_b = fptr(dense["cond1_b"])
        m.cond2_w = fptr(dense["cond2_w"])
        m.cond2_b = fptr(dense["cond2_b"])
        m.in_w = fptr(dense["in_w"])
        m.sub_bias = fptr(dense["sub_bias"])
        m.excitation = cfg["excitation"]
        m.sample_rate = cfg["sample_rate"]
        m.exc_out_w = fptr(dense["exc_out_w"]) if m.excitation else NULL
        cdef vk_layer *slots[5]
        slots[0] = &m.R; slots[1] = &m.O1; slots[2] = &m.O2; slots[3] = &m.O3; slots[4] = &m.O4
        for i, name in enumerate(("R", "O1", "O2", "O3", "O4")):
            mat = layers.get(name)
            if mat is None:
                mat = layers["O1"] if i == 3 else layers["O2"]  # unused by the mulaw head
            set_layer(slots[i], mat._m, mat.scales, mat.bias, mat.rows, mat.cols)
        self.n_features = m.n_features
        self.n_classes = m.n_classes
        self.head = m.head
        self.e = vk_engine_create(m, level, seed, frame_capacity)
        if self.e == NULL:
            raise MemoryError("could not allocate the engine's buffers")

    def __dealloc__(self):
        if self.e != NULL:
            vk_engine_destroy(self.e)
            self.e = NULL

    def reset(self, uint64_t seed):
        vk_engine_reset(self.e, seed)

    def set_level(self, int level):
        vk_engine_set_level(self.e, level)

    def set_temperature(self, float t):
        vk_engine_set_temperature(self.e, t)

    def feed(self, const float[:, ::1] frames):
        cdef int n = frames.shape[0]
        if n == 0:
            return 0
        with nogil:
            n = vk_engine_feed(self.e, &frames[0, 0], n)
        return n

    def finish(self):
        vk_engine_finish(self.e)

    def render(self, float[::1] out):
        if out.shape[0] == 0:
            return
        with nogil:
            vk_engine_render(self.e, &out[0], out.shape[0])

    @property
    def latency(self):
        return vk_engine_latency(self.e)

    @property
    def underrun_samples(self):
        return vk_engine_underrun_samples(self.e)

    @property
    def generated(self):
        return vk_engine_generated(self.e)

    @property
    def ready(self):
        return vk_engine_ready(self.e)

    def teacher_force(self, const float[:, ::1] features, const int32_t[::1] cls_a,
                      const int32_t[::1] cls_b, float[:, ::1] logits_a, float[:, ::1] logits_b):
        cdef int n = cls_a.shape[0]
        with nogil:
            vk_engine_teacher_force(self.e, &features[0, 0], features.shape[0], &cls_a[0],
                                    &cls_b[0], n, &logits_a[0, 0], &logits_b[0, 0])
