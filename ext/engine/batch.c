/* Several engines on one model, stepped together: one batched kernel call per matrix
 * for all their lanes. */
#include <stdlib.h>
#include <string.h>

#include "wavernn_internal.h"

struct vk_batch {
    int xu_stride, acc_stride; /* those of the engines it serves */
    vk_scratch s;
};

vk_batch *vk_batch_create(const vk_engine *like)
{
    vk_batch *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->xu_stride = like->xu_stride;
    g->acc_stride = like->acc_stride;
    g->s.xu = vk_wr_alloc((size_t)VK_MAX_BATCH * like->xu_stride);
    g->s.acc = vk_wr_alloc(sizeof(int32_t) * VK_MAX_BATCH * like->acc_stride);
    g->s.acc_r = vk_wr_alloc(sizeof(int32_t) * VK_MAX_BATCH * like->acc_stride);
    g->s.xscale = vk_wr_alloc(sizeof(float) * VK_MAX_BATCH);
    g->s.xscale_r = vk_wr_alloc(sizeof(float) * VK_MAX_BATCH);
    if (!g->s.xu || !g->s.acc || !g->s.xscale || !g->s.acc_r || !g->s.xscale_r) {
        vk_batch_destroy(g);
        return NULL;
    }
    return g;
}

void vk_batch_destroy(vk_batch *g)
{
    if (!g) return;
    free(g->s.xu);
    free(g->s.acc);
    free(g->s.xscale);
    free(g->s.acc_r);
    free(g->s.xscale_r);
    free(g);
}

static int same_floats(const float *a, const float *b, int64_t n)
{
    return a == b || (a && b && memcmp(a, b, sizeof(float) * (size_t)n) == 0);
}

static int same_layer(const vk_layer *a, const vk_layer *b)
{
    if (a->rows != b->rows || a->cols != b->cols || a->cols_padded != b->cols_padded ||
        a->m.row_blocks != b->m.row_blocks || a->m.col_blocks != b->m.col_blocks)
        return 0;
    if (a->rows == 0) return 1;
    const int64_t nnz = a->m.row_ptr[a->m.row_blocks];
    if (nnz != b->m.row_ptr[b->m.row_blocks]) return 0;
    return (a->m.row_ptr == b->m.row_ptr ||
            !memcmp(a->m.row_ptr, b->m.row_ptr, sizeof(int32_t) * (size_t)(a->m.row_blocks + 1))) &&
           (a->m.col_idx == b->m.col_idx || !memcmp(a->m.col_idx, b->m.col_idx, sizeof(int32_t) * (size_t)nnz)) &&
           (a->m.blocks == b->m.blocks || !memcmp(a->m.blocks, b->m.blocks, (size_t)nnz * 64)) &&
           same_floats(a->scales, b->scales, a->rows) && same_floats(a->bias, b->bias, a->rows);
}

int vk_engine_same_model(const vk_engine *a, const vk_engine *b)
{
    const vk_model *x = &a->m, *y = &b->m;
    if (x->hidden != y->hidden || x->head != y->head || x->n_classes != y->n_classes || x->subscale != y->subscale ||
        x->horizon != y->horizon || x->n_features != y->n_features || x->hop != y->hop ||
        x->ctx_before != y->ctx_before || x->lookahead != y->lookahead || x->cond_hidden != y->cond_hidden ||
        x->excitation != y->excitation || x->sample_rate != y->sample_rate)
        return 0;
    const int H = a->n_hidden, nf = a->n_features, ch = x->cond_hidden;
    return same_floats(x->feat_mean, y->feat_mean, nf) && same_floats(x->feat_std, y->feat_std, nf) &&
           same_floats(x->cond1_w, y->cond1_w, (int64_t)ch * a->ctx_frames * nf) &&
           same_floats(x->cond1_b, y->cond1_b, ch) && same_floats(x->cond2_w, y->cond2_w, (int64_t)3 * H * ch) &&
           same_floats(x->cond2_b, y->cond2_b, 3 * H) && same_floats(x->in_w, y->in_w, (int64_t)3 * H * a->n_in) &&
           same_floats(x->sub_bias, y->sub_bias, (int64_t)a->n_subscale * 3 * H) &&
           (a->n_excitation == 0 || same_floats(x->exc_out_w, y->exc_out_w, (int64_t)H * a->n_excitation)) &&
           same_layer(&x->R, &y->R) && same_layer(&x->O1, &y->O1) && same_layer(&x->O2, &y->O2) &&
           same_layer(&x->O3, &y->O3) && same_layer(&x->O4, &y->O4);
}

int64_t vk_engine_buffered(const vk_engine *e) { return e->pending_zeros + (e->frontier - e->delivered); }

int vk_engine_step_group(vk_batch *g, vk_engine *const *es, int n)
{
    vk_lane ln[VK_MAX_BATCH];
    vk_engine *owners[VK_MAX_BATCH];
    int nl = 0, stepped = 0;
    for (int k = 0; k < n; k++) {
        vk_engine *e = es[k];
        if (!vk_wr_step_ready(e, e->step)) continue;
        stepped++;
        if (e->n_subscale != 1 || e->xu_stride != g->xu_stride ||
            e->acc_stride != g->acc_stride) { /* subscale engines batch their own lanes */
            vk_wr_run_step(e);
            continue;
        }
        if (nl == VK_MAX_BATCH) {
            vk_wr_step_lanes(owners[0], ln, nl, &g->s, NULL, NULL, NULL, NULL);
            for (int j = 0; j < nl; j++) vk_wr_finish_lanes(owners[j], &ln[j], 1);
            nl = 0;
        }
        vk_wr_prepare_lanes(e, &ln[nl]);
        owners[nl++] = e;
    }
    if (nl) {
        vk_wr_step_lanes(owners[0], ln, nl, &g->s, NULL, NULL, NULL, NULL);
        for (int j = 0; j < nl; j++) vk_wr_finish_lanes(owners[j], &ln[j], 1);
    }
    return stepped;
}
