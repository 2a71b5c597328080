# cython: language_level=3, boundscheck=False, wraparound=False
"""The plugin host's compiled side: loading voice plugins (ext/plugin/vocoder_plugin.h)
from shared libraries, their instances, and the real-time mixer (ext/plugin/host.c).
vocoder/hosts/plugins.py is the public face (discovery, probing in a subprocess)."""

from libc.stdint cimport int16_t, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset, strncpy

cdef extern from "string.h" nogil:
    size_t strnlen(const char *s, size_t maxlen)
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
import numpy as np

cdef extern from "dlfcn.h" nogil:
    void *dlopen(const char *filename, int flag)
    void *dlsym(void *handle, const char *symbol)
    char *dlerror()
    int RTLD_NOW
    int RTLD_LOCAL

cdef extern from "plugin/vocoder_plugin.h":
    enum:
        VOCODER_PLUGIN_ABI_VERSION
        VOCODER_PLUGIN_MAX_ONSET
        VOCODER_PLUGIN_MAX_CODA
        VOCODER_PLUGIN_SYLLABLE
        VOCODER_EV_NOTE_ON
        VOCODER_EV_NOTE_OFF
        VOCODER_EV_BEND
        VOCODER_EV_CC
        VOCODER_EV_LYRIC
        VOCODER_EV_PANIC
        VOCODER_EVF_PLAN
        VOCODER_EVF_LEGATO
    ctypedef struct vocoder_plugin_event:
        uint32_t type, offset, flags
        int32_t cc
        float note, value
        int16_t nucleus, n_onset, n_coda, reserved
        int16_t onset[12]
        int16_t coda[8]
        char syllable[32]
    ctypedef struct vocoder_plugin_config:
        uint32_t struct_size, sample_rate
        uint64_t seed
        const char *preset_path
        const void *preset_data
        uint64_t preset_size
        uint32_t max_block, reserved
    ctypedef struct vocoder_plugin_instance:
        pass
    ctypedef struct vocoder_plugin_descriptor:
        uint32_t abi_version, struct_size
        const char *id
        const char *name
        const char *version
        vocoder_plugin_instance *(*instantiate)(const vocoder_plugin_config *config, char *error, uint32_t error_size) nogil
        void (*destroy)(vocoder_plugin_instance *inst) nogil
        int (*event)(vocoder_plugin_instance *inst, const vocoder_plugin_event *ev) nogil
        void (*render)(vocoder_plugin_instance *inst, float *out, uint32_t n) nogil
        uint32_t (*latency)(const vocoder_plugin_instance *inst) nogil
    ctypedef const vocoder_plugin_descriptor *(*vocoder_plugin_entry_fn)() nogil

cdef extern from "plugin/host.h" nogil:
    enum:
        VP_MAX_CHANNELS
        VP_TIMES
    ctypedef struct vp_host:
        pass
    ctypedef struct vp_voice:
        const vocoder_plugin_descriptor *d
        vocoder_plugin_instance *inst
        int64_t tag
    vp_host *vp_host_create(int max_block, int crossfade)
    void vp_host_destroy(vp_host *h)
    int vp_host_send(vp_host *h, int ch, const vocoder_plugin_event *ev)
    int vp_host_swap(vp_host *h, int ch, vp_voice *v)
    vp_voice *vp_host_collect(vp_host *h, int ch)
    int vp_host_swapping(vp_host *h, int ch)
    void vp_host_set_gain(vp_host *h, int ch, float gain)
    void vp_host_render(vp_host *h, float *out, int n)
    int vp_host_times(vp_host *h, int64_t *ns, int max)
    int64_t vp_host_callbacks(const vp_host *h)
    int64_t vp_host_dropped(const vp_host *h, int ch)
    float vp_host_peak(vp_host *h, int ch)
    int64_t vp_host_current_tag(const vp_host *h, int ch)
    int vp_host_clock_start(vp_host *h, int block, int rate)
    void vp_host_clock_stop(vp_host *h)
    int64_t vp_host_clock_late(const vp_host *h)
    int vp_host_clock_realtime(const vp_host *h)

ABI_VERSION = VOCODER_PLUGIN_ABI_VERSION
MAX_CHANNELS = VP_MAX_CHANNELS
ENTRY_SYMBOL = "vocoder_plugin_entry"
EV_NOTE_ON, EV_NOTE_OFF, EV_BEND, EV_CC, EV_LYRIC, EV_PANIC = (
    VOCODER_EV_NOTE_ON, VOCODER_EV_NOTE_OFF, VOCODER_EV_BEND, VOCODER_EV_CC, VOCODER_EV_LYRIC, VOCODER_EV_PANIC)
EVF_PLAN, EVF_LEGATO = VOCODER_EVF_PLAN, VOCODER_EVF_LEGATO


class PluginError(Exception):
    """A plugin library or instance refused; the message names it."""


cdef str _cstr(const char *s, str what, str where):
    if s == NULL:
        raise PluginError(f"{where}: the descriptor's {what} is NULL")
    cdef bytes b = s[:strnlen(s, 256)]
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise PluginError(f"{where}: the descriptor's {what} is not UTF-8") from None


cdef class Descriptor:
    """A plugin's descriptor, checked: from a loaded library or the built-in voice."""

    cdef const vocoder_plugin_descriptor *d
    cdef readonly str path, id, name, version
    cdef readonly int abi_version
    cdef object keep

    def __cinit__(self):
        self.d = NULL

    cdef void _check(self) except *:
        cdef const vocoder_plugin_descriptor *d = self.d
        where = self.path
        if d.abi_version != VOCODER_PLUGIN_ABI_VERSION:
            raise PluginError(f"{where}: plugin ABI version {d.abi_version}, this host speaks "
                              f"{VOCODER_PLUGIN_ABI_VERSION}; rebuild the plugin against this vocoder_plugin.h")
        if d.struct_size < sizeof(vocoder_plugin_descriptor):
            raise PluginError(f"{where}: descriptor struct_size {d.struct_size} is smaller than "
                              f"{sizeof(vocoder_plugin_descriptor)} (an incomplete descriptor)")
        self.abi_version = d.abi_version
        self.id = _cstr(d.id, "id", where)
        self.name = _cstr(d.name, "name", where)
        self.version = _cstr(d.version, "version", where)
        if not self.id or any(not (c.isascii() and (c.isalnum() or c in "._-")) for c in self.id):
            raise PluginError(f"{where}: plugin id {self.id!r} must be non-empty [A-Za-z0-9._-]")
        for fn, ok in (("instantiate", d.instantiate != NULL), ("destroy", d.destroy != NULL),
                       ("event", d.event != NULL), ("render", d.render != NULL), ("latency", d.latency != NULL)):
            if not ok:
                raise PluginError(f"{where}: plugin {self.id!r} has no {fn} function (NULL in its descriptor)")

    def instantiate(self, int sample_rate, preset_path=None, preset_data=None, uint64_t seed=0,
                    int max_block=8192):
        """A new instance; raises PluginError with the plugin's own message on failure."""
        cdef vocoder_plugin_config c
        cdef char err[512]
        cdef bytes pb = None
        cdef const unsigned char[::1] data
        cdef vocoder_plugin_instance *inst
        if not 8000 <= sample_rate <= 384000:
            raise ValueError(f"sample_rate must be in 8000..384000, got {sample_rate}")
        memset(&c, 0, sizeof(c))
        memset(err, 0, sizeof(err))
        c.struct_size = sizeof(vocoder_plugin_config)
        c.sample_rate = sample_rate
        c.seed = seed
        c.max_block = max_block
        if preset_path is not None:
            pb = str(preset_path).encode("utf-8")
            c.preset_path = pb
        if preset_data is not None:
            data = preset_data
            if data.shape[0]:
                c.preset_data = &data[0]
                c.preset_size = data.shape[0]
        with nogil:
            inst = self.d.instantiate(&c, err, sizeof(err))
        if inst == NULL:
            err[sizeof(err) - 1] = 0
            msg = (<bytes>err).decode("utf-8", "replace") or "no message"
            raise PluginError(f"plugin {self.id!r} ({self.path}): instantiate failed: {msg}")
        i = Instance()
        i._set(self, inst, None)
        return i

    def __repr__(self):
        return f"Descriptor({self.id!r}, {self.name!r}, version {self.version!r}, abi {self.abi_version}, {self.path})"


def load_library(path):
    """dlopen ``path``, find ``vocoder_plugin_entry``, check the descriptor. The library
    stays loaded for the life of the process (no dlclose: nothing may run code that is gone)."""
    cdef bytes p = str(path).encode()
    cdef void *h
    cdef void *sym
    cdef const vocoder_plugin_descriptor *d
    h = dlopen(p, RTLD_NOW | RTLD_LOCAL)
    if h == NULL:
        e = dlerror()
        raise PluginError(f"{path}: cannot load: {(<bytes>e).decode('utf-8', 'replace') if e != NULL else '?'}")
    dlerror()
    sym = dlsym(h, b"vocoder_plugin_entry")
    if sym == NULL:
        raise PluginError(f"{path}: no symbol 'vocoder_plugin_entry' (not a vocoder voice plugin, or not exported)")
    d = (<vocoder_plugin_entry_fn>sym)()
    if d == NULL:
        raise PluginError(f"{path}: vocoder_plugin_entry() returned NULL")
    desc = Descriptor()
    desc.d = d
    desc.path = str(path)
    desc._check()
    return desc


def builtin_descriptor(capsule):
    """The Descriptor behind a "vocoder_plugin_descriptor" capsule (the built-in voice)."""
    if not PyCapsule_IsValid(capsule, "vocoder_plugin_descriptor"):
        raise TypeError("not a vocoder_plugin_descriptor capsule")
    desc = Descriptor()
    desc.d = <const vocoder_plugin_descriptor *>PyCapsule_GetPointer(capsule, "vocoder_plugin_descriptor")
    desc.path = "(built in)"
    desc._check()
    return desc


def wrap_instance(Descriptor desc, capsule, keep):
    """An Instance around a "vocoder_plugin_instance" capsule made by ``desc``'s library;
    ``keep`` is held until the instance is destroyed (the object that owns the voice)."""
    if not PyCapsule_IsValid(capsule, "vocoder_plugin_instance"):
        raise TypeError("not a vocoder_plugin_instance capsule")
    i = Instance()
    i._set(desc, <vocoder_plugin_instance *>PyCapsule_GetPointer(capsule, "vocoder_plugin_instance"), keep)
    return i


cdef void fill_event(vocoder_plugin_event *e, int kind, int offset, float note, float value, int cc, int flags,
                     int nucleus, onset, coda, syllable) except *:
    cdef int i
    cdef bytes s
    memset(e, 0, sizeof(vocoder_plugin_event))
    e.type = kind
    e.offset = offset if offset > 0 else 0
    e.note = note
    e.value = value
    e.cc = cc
    e.flags = flags
    e.nucleus = nucleus
    e.n_onset = min(len(onset), VOCODER_PLUGIN_MAX_ONSET)
    e.n_coda = min(len(coda), VOCODER_PLUGIN_MAX_CODA)
    for i in range(e.n_onset):
        e.onset[i] = onset[i]
    for i in range(e.n_coda):
        e.coda[i] = coda[i]
    if syllable:
        s = syllable.encode("utf-8")[:VOCODER_PLUGIN_SYLLABLE - 1]
        while True:  # never cut a UTF-8 sequence in half
            try:
                s.decode("utf-8")
                break
            except UnicodeDecodeError:
                s = s[:len(s) - 1]
        strncpy(e.syllable, s, VOCODER_PLUGIN_SYLLABLE - 1)


cdef class Instance:
    """One plugin instance. Alone (not on a Host) its event/render may be called from
    one thread; on a Host, the Host's audio thread owns them."""

    cdef vp_voice *v
    cdef readonly Descriptor descriptor
    cdef object keep
    cdef public bint attached

    def __cinit__(self):
        self.v = NULL
        self.attached = False

    cdef void _set(self, Descriptor desc, vocoder_plugin_instance *inst, keep) except *:
        self.v = <vp_voice *>malloc(sizeof(vp_voice))
        if self.v == NULL:
            desc.d.destroy(inst)
            raise MemoryError()
        self.v.d = desc.d
        self.v.inst = inst
        self.v.tag = id(self)
        self.descriptor = desc
        self.keep = keep

    @property
    def tag(self):
        return self.v.tag if self.v != NULL else -1

    @property
    def latency(self):
        if self.v == NULL:
            raise ValueError("the instance is closed")
        return self.v.d.latency(self.v.inst)

    def event(self, int kind, int offset=0, float note=0, float value=0, int cc=0, int flags=0, int nucleus=0,
              onset=(), coda=(), syllable=""):
        cdef vocoder_plugin_event e
        if self.v == NULL or self.attached:
            raise ValueError("the instance is closed or on a host (send events through the host)")
        fill_event(&e, kind, offset, note, value, cc, flags, nucleus, onset, coda, syllable)
        return bool(self.v.d.event(self.v.inst, &e))

    def render(self, float[::1] out):
        cdef uint32_t n = out.shape[0]
        if self.v == NULL or self.attached:
            raise ValueError("the instance is closed or on a host")
        if n == 0:
            return
        with nogil:
            self.v.d.render(self.v.inst, &out[0], n)

    def close(self):
        if self.attached:
            raise ValueError("the instance is still on a host; swap it out and collect it first")
        if self.v != NULL:
            self.v.d.destroy(self.v.inst)
            free(self.v)
            self.v = NULL
        self.keep = None

    def __dealloc__(self):
        if self.v != NULL and not self.attached:
            self.v.d.destroy(self.v.inst)
            free(self.v)
            self.v = NULL


cdef class Host:
    """Up to 16 channels of instances mixed in real time (ext/plugin/host.c).

    Control methods (send, swap, collect, stats) from one thread at a time; render
    from the audio thread (it releases the GIL and allocates nothing)."""

    cdef vp_host *h
    cdef readonly int max_block, crossfade
    cdef dict attached   # tag -> Instance: keeps instances alive while the mixer may use them
    cdef int64_t[::1] tbuf
    cdef bint dead

    def __cinit__(self):
        self.h = NULL
        self.dead = False

    def __init__(self, int max_block=4096, int crossfade=480):
        self.h = vp_host_create(max_block, crossfade)
        if self.h == NULL:
            raise MemoryError("could not create the plugin host")
        self.max_block = max_block
        self.crossfade = crossfade
        self.attached = {}
        self.tbuf = np.zeros(VP_TIMES, np.int64)

    def __dealloc__(self):
        if self.h != NULL:
            vp_host_clock_stop(self.h)
            vp_host_destroy(self.h)
            self.h = NULL

    cdef int _ch(self, int ch) except -1:
        if not 0 <= ch < VP_MAX_CHANNELS:
            raise ValueError(f"channel must be 0..{VP_MAX_CHANNELS - 1}, got {ch}")
        return ch

    def send(self, int ch, int kind, int offset=0, float note=0, float value=0, int cc=0, int flags=0,
             int nucleus=0, onset=(), coda=(), syllable=""):
        """Queue an event for channel ch's voice; False when dropped (queue full)."""
        cdef vocoder_plugin_event e
        self._ch(ch)
        fill_event(&e, kind, offset, note, value, cc, flags, nucleus, onset, coda, syllable)
        return bool(vp_host_send(self.h, ch, &e))

    def swap(self, int ch, Instance inst=None):
        """Post ``inst`` (None: silence) as channel ch's voice from the next block on.
        False while the previous swap on ch is unfinished (collect, then try again)."""
        self._ch(ch)
        if inst is not None and (inst.v == NULL or inst.attached):
            raise ValueError("the instance is closed or already on a host")
        if not vp_host_swap(self.h, ch, inst.v if inst is not None else NULL):
            return False
        if inst is not None:
            inst.attached = True
            self.attached[inst.v.tag] = inst
        return True

    def swapping(self, int ch):
        self._ch(ch)
        return bool(vp_host_swapping(self.h, ch))

    def collect(self, int ch):
        """The Instance channel ch has let go of (its fade is over), detached, or None."""
        self._ch(ch)
        cdef vp_voice *v = vp_host_collect(self.h, ch)
        if v == NULL:
            return None
        inst = self.attached.pop(v.tag)
        inst.attached = False
        return inst

    def set_gain(self, int ch, float gain):
        vp_host_set_gain(self.h, self._ch(ch), gain)

    def render(self, float[::1] out):
        cdef int n = out.shape[0]
        if n == 0:
            return
        if self.dead:
            out[:] = 0
            return
        with nogil:
            vp_host_render(self.h, &out[0], n)

    def times_ns(self):
        """The latest callback durations in ns (up to 16384), oldest first."""
        cdef int k = vp_host_times(self.h, &self.tbuf[0], VP_TIMES)
        return np.array(self.tbuf[:k])

    @property
    def callbacks(self):
        return vp_host_callbacks(self.h)

    def dropped(self, int ch):
        return vp_host_dropped(self.h, self._ch(ch))

    def peak(self, int ch):
        return vp_host_peak(self.h, self._ch(ch))

    def current_tag(self, int ch):
        return vp_host_current_tag(self.h, self._ch(ch))

    def clock_start(self, int block, int rate):
        """Render block samples into nothing every block/rate s from a C thread (no audio device)."""
        if self.dead or vp_host_clock_start(self.h, block, rate) != 0:
            raise RuntimeError(f"could not start the clock thread (block {block} must be 1..{self.max_block})")

    def clock_stop(self):
        with nogil:
            vp_host_clock_stop(self.h)

    @property
    def clock_late(self):
        return vp_host_clock_late(self.h)

    @property
    def clock_realtime(self):
        cdef int r = vp_host_clock_realtime(self.h)
        return None if r < 0 else bool(r)

    def release_all(self):
        """After the audio has stopped: every instance the mixer held, detached (the mixer
        must not be rendered again)."""
        self.clock_stop()
        self.dead = True
        out = list(self.attached.values())
        for i in out:
            i.attached = False
        self.attached.clear()
        return out
