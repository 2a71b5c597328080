/* The plugin host's real-time mixer; see host.h. */
#define _POSIX_C_SOURCE 200112L
#include "host.h"

#include <pthread.h>
#include <sched.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    vocoder_plugin_event q[VP_RING];
    uint32_t head, tail; /* head: consumer (audio), tail: producer (control) */
    int64_t dropped;
    vp_voice *cur, *old, *pending, *retired;
    int fade_pos; /* samples of the crossfade done; valid while old or a swap to NULL */
    int fading;
    uint32_t gain_bits; /* the gain's float bits (atomic) */
    float peak;
    int64_t cur_tag; /* cur's tag (-1: none), for the control side */
} vp_channel;

struct vp_host {
    int max_block, crossfade;
    float *a, *b; /* scratch, max_block each */
    vp_channel ch[VP_MAX_CHANNELS];
    int64_t times[VP_TIMES];
    uint64_t n_times;
    /* the paced clock */
    pthread_t clock;
    int clock_running, clock_stop, clock_rt, clock_block, clock_rate;
    int64_t clock_late;
    float *clock_buf;
};

vp_host *vp_host_create(int max_block, int crossfade)
{
    if (max_block < 1 || crossfade < 1) return NULL;
    vp_host *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->max_block = max_block;
    h->crossfade = crossfade;
    h->a = calloc((size_t)max_block, sizeof(float));
    h->b = calloc((size_t)max_block, sizeof(float));
    if (!h->a || !h->b) {
        vp_host_destroy(h);
        return NULL;
    }
    for (int c = 0; c < VP_MAX_CHANNELS; c++) {
        vp_host_set_gain(h, c, 1.0f);
        h->ch[c].cur_tag = -1;
    }
    return h;
}

void vp_host_destroy(vp_host *h)
{
    if (!h) return;
    vp_host_clock_stop(h);
    free(h->a);
    free(h->b);
    free(h);
}

int vp_host_send(vp_host *h, int c, const vocoder_plugin_event *ev)
{
    if (c < 0 || c >= VP_MAX_CHANNELS) return 0;
    vp_channel *ch = &h->ch[c];
    uint32_t tail = ch->tail;
    uint32_t head = __atomic_load_n(&ch->head, __ATOMIC_ACQUIRE);
    if (tail - head >= VP_RING) {
        __atomic_fetch_add(&ch->dropped, 1, __ATOMIC_RELAXED);
        return 0;
    }
    ch->q[tail & (VP_RING - 1)] = *ev;
    __atomic_store_n(&ch->tail, tail + 1, __ATOMIC_RELEASE);
    return 1;
}

/* The swap state machine, per channel:
 *   control posts `pending` (only when pending, old and retired are all empty and no fade runs);
 *   audio takes it at a block start: old = cur, cur = pending, fade over `crossfade` samples;
 *   at the end of the fade, audio moves old to `retired`; control collects it. */
int vp_host_swap(vp_host *h, int c, vp_voice *v)
{
    if (c < 0 || c >= VP_MAX_CHANNELS) return 0;
    vp_channel *ch = &h->ch[c];
    if (vp_host_swapping(h, c)) return 0;
    /* a posted NULL is told apart from "nothing posted" by the fading flag */
    __atomic_store_n(&ch->pending, v, __ATOMIC_RELAXED);
    __atomic_store_n(&ch->fading, 1, __ATOMIC_RELEASE);
    return 1;
}

int vp_host_swapping(vp_host *h, int c)
{
    vp_channel *ch = &h->ch[c];
    return __atomic_load_n(&ch->fading, __ATOMIC_ACQUIRE) != 0 ||
           __atomic_load_n(&ch->retired, __ATOMIC_ACQUIRE) != NULL;
}

vp_voice *vp_host_collect(vp_host *h, int c)
{
    if (c < 0 || c >= VP_MAX_CHANNELS) return NULL;
    return __atomic_exchange_n(&h->ch[c].retired, NULL, __ATOMIC_ACQ_REL);
}

void vp_host_set_gain(vp_host *h, int c, float gain)
{
    if (c < 0 || c >= VP_MAX_CHANNELS || !(gain >= 0.0f && gain <= 16.0f)) return;
    uint32_t bits;
    memcpy(&bits, &gain, sizeof(bits));
    __atomic_store_n(&h->ch[c].gain_bits, bits, __ATOMIC_RELAXED);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void render_voice(vp_voice *v, float *buf, int n)
{
    if (!v) {
        memset(buf, 0, sizeof(float) * (size_t)n);
        return;
    }
    v->d->render(v->inst, buf, (uint32_t)n);
    for (int i = 0; i < n; i++) { /* whatever a plugin gives, the mix gets finite samples */
        float x = buf[i];
        buf[i] = x == x ? (x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x)) : 0.0f;
    }
}

/* one slice (n <= max_block) of one channel, added into out */
static void channel_slice(vp_host *h, vp_channel *ch, float *out, int n)
{
    const uint32_t bits = __atomic_load_n(&ch->gain_bits, __ATOMIC_RELAXED);
    float gain;
    memcpy(&gain, &bits, sizeof(gain));
    float *a = h->a, *b = h->b, peak = ch->peak;
    if (!ch->cur && !ch->old) return;
    render_voice(ch->cur, a, n);
    if (ch->fading == 2) { /* crossfade from old (possibly NULL) to cur (possibly NULL) */
        render_voice(ch->old, b, n);
        for (int i = 0; i < n; i++) {
            float g = ch->fade_pos < h->crossfade ? (float)ch->fade_pos / (float)h->crossfade : 1.0f;
            a[i] = g * a[i] + (1.0f - g) * b[i];
            if (ch->fade_pos < h->crossfade) ch->fade_pos++;
        }
    }
    for (int i = 0; i < n; i++) {
        float x = gain * a[i];
        out[i] += x;
        x = fabsf(x);
        if (x > peak) peak = x;
    }
    ch->peak = peak;
}

void vp_host_render(vp_host *h, float *out, int n)
{
    const int64_t t0 = now_ns();
    if (n <= 0) return;
    memset(out, 0, sizeof(float) * (size_t)n);
    for (int c = 0; c < VP_MAX_CHANNELS; c++) {
        vp_channel *ch = &h->ch[c];
        /* a posted swap starts at this block boundary */
        if (__atomic_load_n(&ch->fading, __ATOMIC_ACQUIRE) == 1) {
            ch->old = ch->cur;
            ch->cur = __atomic_load_n(&ch->pending, __ATOMIC_RELAXED);
            ch->pending = NULL;
            ch->fade_pos = 0;
            ch->fading = 2;
            __atomic_store_n(&ch->cur_tag, ch->cur ? ch->cur->tag : -1, __ATOMIC_RELEASE);
        }
        /* events: to the current voice, offsets relative to this block */
        uint32_t head = ch->head;
        const uint32_t tail = __atomic_load_n(&ch->tail, __ATOMIC_ACQUIRE);
        for (; head != tail; head++) {
            vocoder_plugin_event *ev = &ch->q[head & (VP_RING - 1)];
            if (ch->cur) {
                if (ev->offset >= (uint32_t)n) ev->offset = (uint32_t)n - 1;
                if (!ch->cur->d->event(ch->cur->inst, ev)) __atomic_fetch_add(&ch->dropped, 1, __ATOMIC_RELAXED);
            }
        }
        __atomic_store_n(&ch->head, head, __ATOMIC_RELEASE);
        for (int done = 0; done < n;) {
            int m = n - done < h->max_block ? n - done : h->max_block;
            channel_slice(h, ch, out + done, m);
            done += m;
        }
        if (ch->fading == 2 && ch->fade_pos >= h->crossfade) {
            vp_voice *old = ch->old;
            ch->old = NULL;
            if (old) __atomic_store_n(&ch->retired, old, __ATOMIC_RELEASE);
            __atomic_store_n(&ch->fading, 0, __ATOMIC_RELEASE);
        }
    }
    for (int i = 0; i < n; i++) {
        float x = out[i];
        out[i] = x > 1.0f ? 1.0f : (x < -1.0f ? -1.0f : x);
    }
    const int64_t dt = now_ns() - t0;
    uint64_t k = __atomic_load_n(&h->n_times, __ATOMIC_RELAXED);
    __atomic_store_n(&h->times[k & (VP_TIMES - 1)], dt, __ATOMIC_RELAXED);
    __atomic_store_n(&h->n_times, k + 1, __ATOMIC_RELEASE);
}

int vp_host_times(vp_host *h, int64_t *ns, int max)
{
    uint64_t k = __atomic_load_n(&h->n_times, __ATOMIC_ACQUIRE);
    uint64_t have = k < VP_TIMES ? k : VP_TIMES;
    if ((uint64_t)max < have) have = (uint64_t)max;
    for (uint64_t i = 0; i < have; i++)
        ns[i] = __atomic_load_n(&h->times[(k - have + i) & (VP_TIMES - 1)], __ATOMIC_RELAXED);
    return (int)have;
}

int64_t vp_host_callbacks(const vp_host *h) { return (int64_t)__atomic_load_n(&h->n_times, __ATOMIC_ACQUIRE); }

int64_t vp_host_dropped(const vp_host *h, int c)
{
    return c < 0 || c >= VP_MAX_CHANNELS ? 0 : __atomic_load_n(&h->ch[c].dropped, __ATOMIC_RELAXED);
}

float vp_host_peak(vp_host *h, int c)
{
    if (c < 0 || c >= VP_MAX_CHANNELS) return 0.0f;
    float p = h->ch[c].peak; /* benign race: a display value */
    h->ch[c].peak = 0.0f;
    return p;
}

int64_t vp_host_current_tag(const vp_host *h, int c)
{
    if (c < 0 || c >= VP_MAX_CHANNELS) return -1;
    return __atomic_load_n(&h->ch[c].cur_tag, __ATOMIC_ACQUIRE);
}

/* ---------- the paced clock ---------- */

static void *clock_main(void *arg)
{
    vp_host *h = arg;
    struct sched_param sp;
    memset(&sp, 0, sizeof(sp));
    sp.sched_priority = sched_get_priority_min(SCHED_FIFO);
    __atomic_store_n(&h->clock_rt, pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0, __ATOMIC_RELEASE);
    int64_t start = now_ns(), frames = 0;
    while (!__atomic_load_n(&h->clock_stop, __ATOMIC_ACQUIRE)) {
        vp_host_render(h, h->clock_buf, h->clock_block);
        frames += h->clock_block;
        const int64_t due = start + frames * 1000000000 / h->clock_rate;
        const int64_t now = now_ns();
        if (now - due > (int64_t)h->clock_block * 1000000000 / h->clock_rate) {
            __atomic_fetch_add(&h->clock_late, 1, __ATOMIC_RELAXED);
            start = now;
            frames = 0;
            continue;
        }
        struct timespec ts;
        ts.tv_sec = (time_t)(due / 1000000000);
        ts.tv_nsec = (long)(due % 1000000000);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {}
    }
    return NULL;
}

int vp_host_clock_start(vp_host *h, int block, int rate)
{
    if (h->clock_running || block < 1 || block > h->max_block || rate < 1) return -1;
    h->clock_buf = calloc((size_t)block, sizeof(float));
    if (!h->clock_buf) return -1;
    h->clock_block = block;
    h->clock_rate = rate;
    h->clock_stop = 0;
    h->clock_rt = -1;
    if (pthread_create(&h->clock, NULL, clock_main, h) != 0) {
        free(h->clock_buf);
        h->clock_buf = NULL;
        return -1;
    }
    h->clock_running = 1;
    return 0;
}

void vp_host_clock_stop(vp_host *h)
{
    if (!h->clock_running) return;
    __atomic_store_n(&h->clock_stop, 1, __ATOMIC_RELEASE);
    pthread_join(h->clock, NULL);
    h->clock_running = 0;
    free(h->clock_buf);
    h->clock_buf = NULL;
}

int64_t vp_host_clock_late(const vp_host *h) { return __atomic_load_n(&h->clock_late, __ATOMIC_RELAXED); }

int vp_host_clock_realtime(const vp_host *h)
{
    return h->clock_running ? __atomic_load_n(&h->clock_rt, __ATOMIC_ACQUIRE) : -1;
}
