# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Cython layer over ext/engine/wavernn.c. vocoder/engine/wavernn.py is the public face."""

from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint64_t
import numpy as np
cimport numpy as cnp
from vocoder._kernels cimport PackedMatrix, vk_bsmat, vk_isa_table, vk_isa_tables

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
        float temperature_unvoiced
        float preemphasis
        float highpass_hz
        int predictor
        float ltp_gain
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
    int64_t vk_excitation_selfcheck(int sample_rate, int hop) nogil
    int64_t vk_engine_underrun_samples(const vk_engine *e) nogil
    int64_t vk_engine_generated(const vk_engine *e) nogil
    int64_t vk_engine_ready(const vk_engine *e) nogil
    ctypedef struct vk_batch:
        pass
    void vk_batch_destroy(vk_batch *g) nogil
    void vk_engine_teacher_force(vk_engine *e, const float *features, int n_frames,
                                 const int32_t *cls_a, const int32_t *cls_b, int n,
                                 float *logits_a, float *logits_b) nogil


cdef extern from "engine/predict.h":
    enum: VK_PRED_ORDER
    ctypedef struct vk_pred_setup:
        pass
    ctypedef struct vk_pred_frame:
        float lpc[16]
        float tap[4]
        int32_t lag
    int vk_pred_setup_init(vk_pred_setup *su, int sample_rate, int n_env, double preemphasis, double ltp_gain) nogil
    void vk_pred_frame_from_features(const vk_pred_setup *su, const float *raw, vk_pred_frame *out) nogil
    double vk_pred_reflection(const vk_pred_setup *su, const float *raw, double *k) nogil
    void vk_mulaw_table(int q, float *table) nogil
    int vk_pred_run(const vk_pred_setup *su, const float *features, int nf, int n_frames, int hop, int q,
                    const float *target, const int32_t *noise, const int32_t *cls_in, int n,
                    int32_t *cls_out, int32_t *in_s, int32_t *in_p, int32_t *in_e, float *pred_out,
                    float *signal_out) nogil

cdef extern from "engine/singer.h":
    enum:
        VK_MAX_ONSET
        VK_MAX_CODA
        VK_EVENT_DELAY
        VK_EV_NOTE
        VK_EV_GLIDE
        VK_EV_RELEASE
        VK_EV_BEND
        VK_EV_CC
        VK_EV_PANIC
        VK_EV_ONSET
    ctypedef struct vk_voice_event:
        int32_t type, offset
        float note, value
        int32_t cc
        int16_t nucleus, n_onset, n_coda
        int16_t onset[12]
        int16_t coda[8]
        int64_t time
    ctypedef struct vk_phoneset:
        int n_phonemes, n_env, sil
        const float *envelopes
        const float *voicing
        const int32_t *frames
    ctypedef struct vk_singer_params:
        double vibrato_rate, vibrato_depth, vibrato_delay, vibrato_attack, vibrato_release, mod_depth
        double portamento_tau, bend_range, transition_tau, voicing_tau, gain_tau, velocity_db, cc_db
    ctypedef struct vk_singer:
        pass
    vk_singer *vk_singer_create(const vk_phoneset *ph, const vk_singer_params *p, int hop, int sample_rate)
    void vk_singer_destroy(vk_singer *s) nogil
    void vk_singer_reset(vk_singer *s) nogil
    int vk_singer_push(vk_singer *s, const vk_voice_event *ev) nogil
    void vk_singer_frame(vk_singer *s, float *out) nogil
    int64_t vk_singer_frame_index(const vk_singer *s) nogil
    int vk_singer_n_pending(const vk_singer *s) nogil
    int vk_singer_free(const vk_singer *s) nogil

cdef extern from "engine/voice.h":
    ctypedef struct vk_voice:
        pass
    vk_voice *vk_voice_create(const vk_model *model, const vk_phoneset *ph, const vk_singer_params *params,
                              int level, uint64_t seed,
                              int device_rate) nogil
    void vk_voice_destroy(vk_voice *v) nogil
    void vk_voice_reset(vk_voice *v, uint64_t seed) nogil
    void vk_voice_set_level(vk_voice *v, int level) nogil
    int vk_voice_push(vk_voice *v, const vk_voice_event *ev) nogil
    void vk_voice_render(vk_voice *v, float *out, int n) nogil
    int64_t vk_voice_latency(const vk_voice *v) nogil
    int64_t vk_voice_dropped(const vk_voice *v) nogil
    int64_t vk_voice_underrun(const vk_voice *v) nogil
    int64_t vk_voice_position(const vk_voice *v) nogil
    const float *vk_voice_last_frame(const vk_voice *v) nogil
    int vk_voice_same_model(const vk_voice *a, const vk_voice *b) nogil
    vk_batch *vk_voice_batch_create(const vk_voice *like) nogil
    void vk_voice_render_group(vk_batch *g, vk_voice *const *vs, int nv, float *const *outs, int n) nogil


cdef extern from "plugin/wavernn_plugin.h":
    ctypedef struct vocoder_plugin_descriptor:
        pass
    ctypedef struct vocoder_plugin_instance:
        pass
    const vocoder_plugin_descriptor *vk_wavernn_plugin_descriptor()
    vocoder_plugin_instance *vk_wavernn_plugin_wrap(vk_voice *v)

from cpython.pycapsule cimport PyCapsule_New


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


cdef void fill_model(vk_model *m, dict dense, dict layers, dict cfg) except *:
    """Point a vk_model at the preset's arrays (the caller keeps them alive)."""
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
    m.temperature_unvoiced = cfg.get("temperature_unvoiced", cfg["temperature"])
    m.preemphasis = cfg.get("preemphasis", 0.0)
    m.highpass_hz = cfg.get("highpass_hz", 20.0)
    m.predictor = 1 if cfg.get("predictor", "none") != "none" else 0
    m.ltp_gain = cfg.get("ltp_gain", 0.0)
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
        fill_model(&self.model, dense, layers, cfg)
        cdef vk_model *m = &self.model
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


# the command kinds of vocoder.singer's planner
EV_NOTE, EV_GLIDE, EV_RELEASE, EV_BEND, EV_CC, EV_PANIC, EV_ONSET = (
    VK_EV_NOTE, VK_EV_GLIDE, VK_EV_RELEASE, VK_EV_BEND, VK_EV_CC, VK_EV_PANIC, VK_EV_ONSET)
EVENT_DELAY = VK_EVENT_DELAY
MAX_ONSET, MAX_CODA = VK_MAX_ONSET, VK_MAX_CODA


cdef void fill_params(vk_singer_params *p, dict d) except *:
    p.vibrato_rate = d["vibrato_rate"]
    p.vibrato_depth = d["vibrato_depth"]
    p.vibrato_delay = d["vibrato_delay"]
    p.vibrato_attack = d["vibrato_attack"]
    p.vibrato_release = d["vibrato_release"]
    p.mod_depth = d["mod_depth"]
    p.portamento_tau = d["portamento_tau"]
    p.bend_range = d["bend_range"]
    p.transition_tau = d["transition_tau"]
    p.voicing_tau = d["voicing_tau"]
    p.gain_tau = d["gain_tau"]
    p.velocity_db = d["velocity_db"]
    p.cc_db = d["cc_db"]


cdef void fill_event(vk_voice_event *ev, int kind, int offset, int64_t time, float note, float value, int cc,
                     int nucleus, onset, coda) except *:
    ev.type = kind
    ev.offset = offset
    ev.time = time
    ev.note = note
    ev.value = value
    ev.cc = cc
    ev.nucleus = nucleus
    ev.n_onset = min(len(onset), VK_MAX_ONSET)
    ev.n_coda = min(len(coda), VK_MAX_CODA)
    cdef int i
    for i in range(VK_MAX_ONSET):
        ev.onset[i] = onset[i] if i < ev.n_onset else 0
    for i in range(VK_MAX_CODA):
        ev.coda[i] = coda[i] if i < ev.n_coda else 0


cdef void fill_phoneset(vk_phoneset *ph, const float[:, ::1] env, const float[::1] voi, const int32_t[::1] fr,
                        int sil) except *:
    if voi.shape[0] != env.shape[0] or fr.shape[0] != env.shape[0] or env.shape[0] < 1:
        raise ValueError("the phone set's tables disagree in length")
    ph.n_phonemes = env.shape[0]
    ph.n_env = env.shape[1]
    ph.sil = sil
    ph.envelopes = &env[0, 0]
    ph.voicing = &voi[0]
    ph.frames = &fr[0]


cdef class SingerCore:
    """Owns a vk_singer (ext/engine/singer.c) alone, for vocoder.singer.Singer (render):
    the same code and parameters a Voice runs, frames out instead of audio."""

    cdef vk_singer *s
    cdef object keep
    cdef readonly int n_features, hop

    def __cinit__(self):
        self.s = NULL

    def __init__(self, envelopes, voicing, frames, int sil, dict params, int hop, int sample_rate):
        cdef vk_phoneset ph
        cdef vk_singer_params p
        cdef const float[:, ::1] env = envelopes
        cdef const float[::1] voi = voicing
        cdef const int32_t[::1] fr = frames
        fill_phoneset(&ph, env, voi, fr, sil)
        fill_params(&p, params)
        self.keep = (envelopes, voicing, frames)
        self.n_features = 2 + env.shape[1]
        self.hop = hop
        self.s = vk_singer_create(&ph, &p, hop, sample_rate)
        if self.s == NULL:
            raise ValueError("could not create the singer (out of memory, or a bad phone set)")

    def __dealloc__(self):
        if self.s != NULL:
            vk_singer_destroy(self.s)
            self.s = NULL

    def reset(self):
        vk_singer_reset(self.s)

    def push(self, int64_t time, int kind, float note=0, float value=0, int cc=0, int nucleus=0,
             onset=(), coda=()):
        """Queue a command at model sample ``time``; False when the queue is full."""
        cdef vk_voice_event ev
        fill_event(&ev, kind, 0, time, note, value, cc, nucleus, onset, coda)
        return bool(vk_singer_push(self.s, &ev))

    def frames(self, int n):
        out = np.empty((max(n, 0), self.n_features), np.float32)
        cdef float[:, ::1] o = out
        cdef int i
        with nogil:
            for i in range(n):
                vk_singer_frame(self.s, &o[i, 0])
        return out

    @property
    def frame_index(self):
        return vk_singer_frame_index(self.s)

    @property
    def pending(self):
        return vk_singer_n_pending(self.s)

    @property
    def free(self):
        return bool(vk_singer_free(self.s))


cdef class VoiceCore:
    """Owns a vk_voice (engine + singer + resampler); vocoder/hosts/voice.py is the face.

    push is the producer side (one thread at a time: the GIL serialises Python
    callers); render is the consumer and releases the GIL."""

    cdef vk_voice *v
    cdef vk_model model
    cdef vk_phoneset ph
    cdef object keep
    cdef readonly int n_env

    def __cinit__(self):
        self.v = NULL

    def __init__(self, dict dense, dict layers, dict cfg, envelopes, voicing, frames, int sil, dict params,
                 int level, uint64_t seed, int device_rate):
        cdef const float[:, ::1] env = envelopes
        cdef const float[::1] voi = voicing
        cdef const int32_t[::1] fr = frames
        cdef vk_singer_params p
        self.keep = (dense, layers, envelopes, voicing, frames)
        fill_model(&self.model, dense, layers, cfg)
        fill_phoneset(&self.ph, env, voi, fr, sil)
        fill_params(&p, params)
        self.n_env = env.shape[1]
        self.v = vk_voice_create(&self.model, &self.ph, &p, level, seed, device_rate)
        if self.v == NULL:
            raise MemoryError("could not create the voice (out of memory, or features are not f0, voicing, "
                              "envelope bands matching the phone set)")

    def __dealloc__(self):
        if self.v != NULL:
            vk_voice_destroy(self.v)
            self.v = NULL

    def reset(self, uint64_t seed):
        vk_voice_reset(self.v, seed)

    def set_level(self, int level):
        vk_voice_set_level(self.v, level)

    def push(self, int offset, int kind, float note=0, float value=0, int cc=0, int nucleus=0, onset=(), coda=()):
        """Queue a singer command ``offset`` device samples into the next render; False when dropped."""
        cdef vk_voice_event ev
        fill_event(&ev, kind, offset, 0, note, value, cc, nucleus, onset, coda)
        return bool(vk_voice_push(self.v, &ev))

    def render(self, float[::1] out):
        cdef int n = out.shape[0]
        if n == 0:
            return
        with nogil:
            vk_voice_render(self.v, &out[0], n)

    @property
    def latency(self):
        return vk_voice_latency(self.v)

    @property
    def dropped(self):
        return vk_voice_dropped(self.v)

    @property
    def underrun(self):
        return vk_voice_underrun(self.v)

    @property
    def position(self):
        return vk_voice_position(self.v)

    def plugin_capsules(self):
        """(descriptor, instance) PyCapsules ("vocoder_plugin_descriptor", "vocoder_plugin_instance")
        of the built-in plugin (ext/plugin/wavernn_plugin.c) around this voice, for the plugin
        host (vocoder/_plugin.pyx). The caller frees the instance with the descriptor's destroy
        and keeps this object alive until then; render and push are then the plugin's."""
        cdef vocoder_plugin_instance *inst = vk_wavernn_plugin_wrap(self.v)
        if inst == NULL:
            raise MemoryError("could not wrap the voice as a plugin instance")
        return (PyCapsule_New(<void *>vk_wavernn_plugin_descriptor(), "vocoder_plugin_descriptor", NULL),
                PyCapsule_New(<void *>inst, "vocoder_plugin_instance", NULL))

    def last_frame(self):
        cdef const float *f = vk_voice_last_frame(self.v)
        return np.array([f[i] for i in range(2 + self.n_env)], np.float32)


DEF MAX_GROUP = 16  # VK_MAX_BATCH


def same_model(VoiceCore a, VoiceCore b):
    """True when the two voices' engines hold identical weights (they may share a batch)."""
    return bool(vk_voice_same_model(a.v, b.v))


cdef class VoiceGroupCore:
    """Renders up to 16 VoiceCores built on the same model with one batched engine step
    per sample (vk_voice_render_group); vocoder/hosts/voice.py's VoiceGroup is the face.

    The scratch for the mix is allocated here, so render() allocates nothing."""

    cdef vk_batch *g
    cdef vk_voice *vs[MAX_GROUP]
    cdef float *outs[MAX_GROUP]
    cdef readonly int n_voices, max_block
    cdef float[:, ::1] scratch
    cdef object keep

    def __cinit__(self):
        self.g = NULL

    def __init__(self, cores, int max_block=1024):
        cores = list(cores)
        if not 1 <= len(cores) <= MAX_GROUP:
            raise ValueError(f"a voice group holds 1 to {MAX_GROUP} voices, got {len(cores)}")
        cdef int k
        cdef VoiceCore c
        for k in range(len(cores)):
            c = <VoiceCore?>cores[k]
            self.vs[k] = c.v
            if k and not vk_voice_same_model(self.vs[0], c.v):
                raise ValueError(f"voice {k} is not built on the same preset as voice 0; "
                                 "only voices on one preset can share a batched engine step")
        self.n_voices = len(cores)
        self.max_block = max_block
        self.keep = cores
        self.scratch = np.zeros((len(cores), max_block), np.float32)
        for k in range(len(cores)):
            self.outs[k] = &self.scratch[k, 0]
        self.g = vk_voice_batch_create(self.vs[0])
        if self.g == NULL:
            raise MemoryError("could not allocate the voice group's scratch")

    def __dealloc__(self):
        if self.g != NULL:
            vk_batch_destroy(self.g)
            self.g = NULL

    def render_mix(self, float[::1] out):
        """out[:] = the sum of the voices (in slices of max_block)."""
        cdef int n = out.shape[0], done = 0, m, k, i
        cdef float s
        with nogil:
            while done < n:
                m = n - done if n - done < self.max_block else self.max_block
                vk_voice_render_group(self.g, self.vs, self.n_voices, self.outs, m)
                for i in range(m):
                    s = 0.0
                    for k in range(self.n_voices):
                        s = s + self.outs[k][i]
                    out[done + i] = s
                done += m

    def render_each(self, float[:, ::1] outs):
        """outs[k, :] = voice k's samples."""
        cdef int n = outs.shape[1], k
        cdef float *ptrs[MAX_GROUP]
        if outs.shape[0] != self.n_voices:
            raise ValueError(f"outs must have one row per voice ({self.n_voices}), got {outs.shape[0]}")
        if n == 0:
            return
        for k in range(self.n_voices):
            ptrs[k] = &outs[k, 0]
        with nogil:
            vk_voice_render_group(self.g, self.vs, self.n_voices, ptrs, n)


# ---- the engine's fused elementwise functions, for tests (every level must give the
# bits of the plain C version, and the same as the unfused functions they replace) ----

def elementwise_quantize_max(int level, const float[::1] x, int n_padded, float maxabs):
    """(scale, bytes[n_padded]) from ``level``'s quantiser given max |x| (quantize_max)."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef uint8_t[::1] xu = np.empty(max(n_padded, 1), np.uint8)
    cdef float xs
    with nogil:
        xs = f.quantize_max(&x[0] if x.shape[0] else NULL, x.shape[0], n_padded, &xu[0], maxabs)
    return xs, np.asarray(xu)[:n_padded]


def elementwise_dequantize_relu(int level, const int32_t[::1] acc, const float[::1] row_scale, float x_scale,
                                bias, w0, w1, float e0, float e1):
    """(y, max y) from ``level``'s fused hidden-layer output (bias, w0/w1: None or float32[rows])."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef int rows = acc.shape[0]
    cdef float[::1] y = np.empty(max(rows, 1), np.float32)
    cdef const float[::1] b, a0, a1
    cdef const float *bp = NULL
    cdef const float *p0 = NULL
    cdef const float *p1 = NULL
    cdef float m
    if bias is not None:
        b = bias
        bp = &b[0]
    if w0 is not None:
        a0 = w0
        a1 = w1
        p0 = &a0[0]
        p1 = &a1[0]
    with nogil:
        m = f.dequantize_relu(&acc[0], &row_scale[0], x_scale, bp, p0, p1, e0, e1, &y[0], rows)
    return np.asarray(y)[:rows], m


def elementwise_sample_acc(int level, const int32_t[::1] acc, const float[::1] row_scale, float x_scale, bias,
                           float t, const float[::1] noise, uint64_t key):
    """(class, logits) from ``level``'s sampler fed with an output layer's accumulators."""
    cdef const vk_isa_table *f = vk_isa_tables[level]
    cdef int n = acc.shape[0]
    cdef float[::1] y = np.empty(max(n, 1), np.float32)
    cdef const float[::1] b
    cdef const float *bp = NULL
    cdef int c
    if bias is not None:
        b = bias
        bp = &b[0]
    with nogil:
        c = f.sample_acc(&acc[0], &row_scale[0], x_scale, bp, &y[0], n, t, &noise[0], key)
    return c, np.asarray(y)[:n]


def _excitation_selfcheck(int sample_rate, int hop):
    """Test hook: how many output floats of the engine's SSE2 excitation differ from its
    scalar loop over a sweep of pitches (0: the same bits; -1: bad arguments)."""
    return vk_excitation_selfcheck(sample_rate, hop)


cdef class Predictor:
    """The compiled predictor of ext/engine/predict.h (docs/model.md, "Prediction"):
    vocoder/engine/predict.py is the face."""
    cdef vk_pred_setup su
    cdef readonly int sample_rate, n_env

    def __init__(self, int sample_rate, int n_env, double preemphasis, double ltp_gain):
        if vk_pred_setup_init(&self.su, sample_rate, n_env, preemphasis, ltp_gain):
            raise ValueError(f"predictor: bad settings (rate {sample_rate}, {n_env} envelope bands, "
                             f"pre-emphasis {preemphasis}, pitch gain {ltp_gain})")
        self.sample_rate = sample_rate
        self.n_env = n_env

    def frames(self, const float[:, ::1] features):
        """(lpc [n, 16], taps [n, 4], lag [n]) of every frame."""
        cdef int n = features.shape[0], i, k
        if features.shape[1] != self.n_env + 2:
            raise ValueError(f"features have {features.shape[1]} columns, the predictor wants {self.n_env + 2}")
        lpc = np.zeros((n, 16), np.float32)
        taps = np.zeros((n, 4), np.float32)
        lag = np.zeros(n, np.int32)
        cdef float[:, ::1] L = lpc
        cdef float[:, ::1] T = taps
        cdef int32_t[::1] G = lag
        cdef vk_pred_frame fr
        for i in range(n):
            vk_pred_frame_from_features(&self.su, &features[i, 0], &fr)
            for k in range(16):
                L[i, k] = fr.lpc[k]
            for k in range(4):
                T[i, k] = fr.tap[k]
            G[i] = fr.lag
        return lpc, taps, lag

    def reflection(self, const float[::1] frame):
        """(reflection coefficients [16], final error / R[0]) of one frame's Levinson run."""
        if frame.shape[0] != self.n_env + 2:
            raise ValueError(f"a frame has {frame.shape[0]} values, the predictor wants {self.n_env + 2}")
        k = np.zeros(16, np.float64)
        cdef double[::1] kv = k
        cdef double err = vk_pred_reflection(&self.su, &frame[0], &kv[0])
        return k, err

    def run(self, const float[:, ::1] features, int hop, int n_classes, target=None, noise=None, classes=None):
        """A whole signal through the predictor (vk_pred_run). With ``target`` (float32
        [n], the signal the network should make) returns the target classes and uses them
        plus ``noise`` (int32 [n] class offsets, optional); else uses ``classes``.
        Returns dict(target, in_s, in_p, in_e, pred, signal)."""
        cdef const float[::1] tg
        cdef const int32_t[::1] nz
        cdef const int32_t[::1] cl
        cdef const float *tp = NULL
        cdef const int32_t *np_ = NULL
        cdef const int32_t *cp = NULL
        cdef int n, r
        if features.shape[1] != self.n_env + 2 or features.shape[0] < 1:
            raise ValueError(f"features must be [frames >= 1, {self.n_env + 2}]")
        if target is not None:
            tg = np.ascontiguousarray(target, np.float32)
            n = tg.shape[0]
            tp = &tg[0] if n else NULL
            if noise is not None:
                nz = np.ascontiguousarray(noise, np.int32)
                if nz.shape[0] != n:
                    raise ValueError("noise must have one value per sample")
                np_ = &nz[0] if n else NULL
        elif classes is not None:
            cl = np.ascontiguousarray(classes, np.int32)
            n = cl.shape[0]
            cp = &cl[0] if n else NULL
        else:
            raise ValueError("give target (training) or classes (teacher forcing)")
        out = {k: np.zeros(n, np.int32) for k in ("target", "in_s", "in_p", "in_e")}
        out["pred"] = np.zeros(n, np.float32)
        out["signal"] = np.zeros(n, np.float32)
        if n == 0:
            return out
        cdef int32_t[::1] o_t = out["target"]
        cdef int32_t[::1] o_s = out["in_s"]
        cdef int32_t[::1] o_p = out["in_p"]
        cdef int32_t[::1] o_e = out["in_e"]
        cdef float[::1] o_pr = out["pred"]
        cdef float[::1] o_sg = out["signal"]
        with nogil:
            r = vk_pred_run(&self.su, &features[0, 0], features.shape[1], features.shape[0], hop, n_classes,
                            tp, np_, cp, n, &o_t[0], &o_s[0], &o_p[0], &o_e[0], &o_pr[0], &o_sg[0])
        if r:
            raise ValueError(f"predictor run: bad sizes (hop {hop}, {n_classes} classes)")
        return out


def mulaw_table(int n_classes):
    """The engine's mu-law decode table (float32, [n_classes])."""
    if not 2 <= n_classes <= 1024:
        raise ValueError("n_classes must be 2..1024")
    t = np.zeros(n_classes, np.float32)
    cdef float[::1] tv = t
    vk_mulaw_table(n_classes, &tv[0])
    return t


cdef extern from "engine/resample.h":
    ctypedef struct vk_resampler:
        pass
    ctypedef void (*vk_resample_source)(void *ctx, float *buf, int n) noexcept nogil
    vk_resampler *vk_resampler_create(int in_rate, int out_rate) nogil
    void vk_resampler_destroy(vk_resampler *r) nogil
    void vk_resampler_pull(vk_resampler *r, float *out, int n, vk_resample_source src, void *ctx) nogil
    double vk_resampler_delay(const vk_resampler *r) nogil


cdef struct _array_source:
    const float *x
    int64_t n, pos


cdef void _from_array(void *ctx, float *buf, int n) noexcept nogil:
    # the input, then silence past its end (flushes the filter's tail)
    cdef _array_source *s = <_array_source *> ctx
    cdef int i
    for i in range(n):
        buf[i] = s.x[s.pos] if s.pos < s.n else 0.0
        s.pos += 1


def resample(const float[::1] x, int in_rate, int out_rate):
    """``x`` (float32) from ``in_rate`` to ``out_rate`` with the live voices' resampler
    (ext/engine/resample.c), its group delay removed to the nearest output sample:
    ``ceil(len(x) * out_rate / in_rate)`` samples, sample ``i`` at time ``i / out_rate``."""
    cdef int64_t n_in = x.shape[0]
    if in_rate == out_rate:
        return np.array(x, np.float32)
    cdef vk_resampler *r = vk_resampler_create(in_rate, out_rate)
    if r == NULL:
        raise ValueError(f"resample: rates must be 1..384000 Hz, got {in_rate} -> {out_rate}")
    cdef int64_t n_out = (n_in * out_rate + in_rate - 1) // in_rate
    cdef int64_t skip = <int64_t> (vk_resampler_delay(r) + 0.5)
    out = np.empty(n_out + skip, np.float32)
    cdef float[::1] o = out
    cdef _array_source src
    src.x = &x[0] if n_in > 0 else NULL
    src.n = n_in
    src.pos = 0
    cdef int64_t done = 0, m
    with nogil:
        while done < n_out + skip:
            m = min(n_out + skip - done, <int64_t> 1 << 20)
            vk_resampler_pull(r, &o[done], <int> m, _from_array, &src)
            done += m
        vk_resampler_destroy(r)
    return out[skip:]
