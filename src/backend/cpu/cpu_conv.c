/*
 * cpu_conv.c — the CPU table's convolution and max pool: oneDNN forward,
 * backward-data and backward-weights primitives on plain NCHW / OIHW
 * memory, for training the tail.
 *
 * Thread-count and batch invariance as in cpu_net.c: every primitive is
 * created for ONE image while oneDNN sees ONE thread, and a batch is spread
 * over threads an image at a time, each thread with its own stream and
 * scratchpad (oneDNN runs a primitive serially inside a parallel region; each
 * thread also sets its own thread count to 1, so a team of one does too).
 * The weight and bias gradients, sums over the batch, are computed per chunk
 * of CONV_CHUNK images (one primitive planned for that many, a partial chunk
 * padded with zero images) into slots and added to the accumulators in chunk
 * order, a window of chunks at a time: the same arithmetic in the same order
 * on 1 thread or 64. A chunk rather than one image: the reduction over
 * 8 x 7 x 7 positions instead of 7 x 7 keeps oneDNN's GEMM deep enough, and
 * a batch of 32 takes 2 parallel regions per convolution instead of 16.
 *
 * Plain layouts keep the table's contract simple (the executor and the
 * tests hand it torchvision-shaped tensors); oneDNN's blocked layouts
 * remain the frozen prefix's (cpu_net.c).
 *
 * Winograd (BackendConvDesc.winograd, 3x3 stride-1 layers with channels in
 * multiples of 8, AVX2 CPUs): forward and backward data run the F(4,3)
 * kernel of cpu_winograd.h on groups of up to `wg` images whose tiles form
 * one list (ResNet's 7x7 layers have 4 tiles an image), reordered to and
 * from nChw8c around it. Its weights are transformed on every call, as
 * they change every step (in float: a few ms for 512 x 512 channels).
 * A tile's result does not depend on the tiles computed with it, so the
 * grouping, batch and thread count change no bit here either. The weight
 * gradients stay oneDNN's, per chunk as above.
 */
#include "backend/cpu/cpu_conv.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_dnnl.h"
#include "backend/cpu/cpu_winograd.h"

// Memory slots of a plan: one oneDNN memory object per slot and worker,
// pointed at the caller's buffers before each execution.
enum { S_X, S_W, S_B, S_Y, S_DW, S_DB, S_WS, S_XC, S_YC, S_SCR, N_SLOTS };

// Images per weight-gradient primitive call (fewer when the plan's batch is
// smaller): a constant, so the arithmetic never depends on the thread count.
#define CONV_CHUNK 8

typedef struct {
    dnnl_stream_t stream;
    void *scratch;
    dnnl_memory_t mem[N_SLOTS];
} Worker;

// What a convolution and a max pool plan share.
typedef struct {
    dnnl_engine_t eng;
    dnnl_memory_desc_t md[N_SLOTS];
    size_t scratch_bytes;
    size_t n_workers;
    Worker *wk;
} Plan;

struct BackendConv {
    Plan p;
    BackendConvDesc d;
    dnnl_primitive_t fwd, bwd_data, bwd_w;
    size_t x_numel, y_numel, w_numel;
    size_t chunk;  // images per weight-gradient call
    float *slots;  // (n_workers, w_numel + cout): per-chunk weight and bias gradients
    float *pad;    // (n_workers, chunk * (x_numel + y_numel)): a partial chunk with zero images after it
    CpuWino *wf, *wb;  // Winograd forward and backward data (sharing one weight buffer), or NULL
    size_t wg;         // images per Winograd call
    size_t wbuf_per;   // floats per worker in wbuf
    float *wbuf;       // (n_workers, wbuf_per): nChw8c input, output, scratch
};

struct BackendPool {
    Plan p;
    BackendPoolDesc d;
    dnnl_primitive_t fwd, bwd;
    size_t x_numel, y_numel, ws_bytes;
    unsigned char *ws;  // (max_batch, ws_bytes): argmax positions of the last forward
};

// ---- plans ----

static void md_plain(dnnl_memory_desc_t *md, size_t a, size_t b, size_t c, size_t d) {
    dnnl_dims_t dims = {(dnnl_dim_t)a, (dnnl_dim_t)b, (dnnl_dim_t)c, (dnnl_dim_t)d};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nchw);
}

static void md_vec(dnnl_memory_desc_t *md, size_t n, dnnl_data_type_t dt) {
    dnnl_dims_t dims = {(dnnl_dim_t)(n ? n : 1)};
    dnnl_memory_desc_init_by_tag(md, 1, dims, dt, dnnl_x);
}

static dnnl_primitive_attr_t attr_make(int sum, int relu) {
    dnnl_primitive_attr_t attr;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (sum || relu) {
        dnnl_post_ops_t po;
        dnnl_post_ops_create(&po);
        if (sum) dnnl_post_ops_append_sum(po, 1.0f);
        if (relu) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        dnnl_primitive_attr_set_post_ops(attr, po);
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

static void note_scratch(Plan *p, const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sz > p->scratch_bytes) p->scratch_bytes = sz;
}

// Workers, their streams, scratchpads and memory objects, once the
// primitives (and so the scratchpad size) are known.
// threads: the caller's thread count, read before it set oneDNN's to one
// for planning (after that omp_get_max_threads() says 1).
static int plan_workers(Plan *p, size_t max_batch, int caller_threads, CtError *err) {
    size_t threads = caller_threads > 0 ? (size_t)caller_threads : 1;
    p->n_workers = threads < max_batch ? threads : max_batch;
    if (p->n_workers == 0) p->n_workers = 1;
    p->wk = ct_calloc(p->n_workers, sizeof *p->wk);
    md_vec(&p->md[S_SCR], p->scratch_bytes, dnnl_u8);
    for (size_t t = 0; t < p->n_workers; t++) {
        Worker *w = &p->wk[t];
        DNNL_TRY(dnnl_stream_create(&w->stream, p->eng, dnnl_stream_default_flags), "CPU stream");
        w->scratch = ct_try_aligned_alloc(p->scratch_bytes ? p->scratch_bytes : 1, 1);
        if (!w->scratch) return ct_errorf(err, "out of memory for a %zu-byte scratchpad", p->scratch_bytes);
        for (int s = 0; s < N_SLOTS; s++) {
            if (p->md[s].ndims == 0) continue;
            DNNL_TRY(dnnl_memory_create(&w->mem[s], &p->md[s], p->eng, DNNL_MEMORY_NONE), "memory object");
        }
        dnnl_memory_set_data_handle(w->mem[S_SCR], w->scratch);
    }
    return 0;
fail:
    return -1;
}

static void plan_free(Plan *p) {
    if (p->wk)
        for (size_t t = 0; t < p->n_workers; t++) {
            Worker *w = &p->wk[t];
            for (int s = 0; s < N_SLOTS; s++)
                if (w->mem[s]) dnnl_memory_destroy(w->mem[s]);
            ct_aligned_free(w->scratch);
            if (w->stream) dnnl_stream_destroy(w->stream);
        }
    free(p->wk);
    if (p->eng) dnnl_engine_destroy(p->eng);
}

// Runs prim with worker w on the slots listed (DNNL_ARG_* and slot pairs),
// after pointing them at ptr[]. Returns the oneDNN status.
static dnnl_status_t run(Worker *w, dnnl_primitive_t prim, int nargs, const int *args, const int *slots,
                         void *const *ptr) {
    dnnl_exec_arg_t ea[8];
    for (int i = 0; i < nargs; i++) {
        if (slots[i] != S_SCR) dnnl_memory_set_data_handle(w->mem[slots[i]], ptr[i]);
        ea[i].arg = args[i];
        ea[i].memory = w->mem[slots[i]];
    }
    ea[nargs].arg = DNNL_ARG_SCRATCHPAD;
    ea[nargs].memory = w->mem[S_SCR];
    dnnl_status_t st = dnnl_primitive_execute(prim, w->stream, nargs + 1, ea);
    if (st == dnnl_success) st = dnnl_stream_wait(w->stream);
    return st;
}

// Right padding that makes oneDNN's size equation exact (PyTorch floors).
static dnnl_dim_t pad_right(size_t in, size_t out, size_t k, size_t stride, size_t pad) {
    return (dnnl_dim_t)((out - 1) * stride + k) - (dnnl_dim_t)in - (dnnl_dim_t)pad;
}

// ---- convolution ----

// Images per Winograd call: enough for about 48 tiles (a block's worth,
// cpu_winograd.c), at most 8 so that a batch still spreads over threads.
static size_t wino_group(const BackendConvDesc *d) {
    size_t tiles = ((d->out_h + 3) / 4) * ((d->out_w + 3) / 4), g = (48 + tiles - 1) / tiles;
    if (g > 8) g = 8;
    if (g > d->max_batch) g = d->max_batch;
    return g ? g : 1;
}

static int wino_plan(BackendConv *c, CtError *err) {
    const BackendConvDesc *d = &c->d;
    c->wg = wino_group(d);
    c->wf = cpu_wino_create_batched(d->cin, d->cout, d->out_h, d->out_w, d->residual, d->relu, c->wg);
    c->wb = cpu_wino_create_batched(d->cout, d->cin, d->in_h, d->in_w, 0, 0, c->wg);
    if (!c->wf || !c->wb) return ct_errorf(err, "out of memory for a Winograd convolution plan");
    cpu_wino_share_weights(c->wb, c->wf);
    size_t scr = cpu_wino_scratch_bytes(c->wf) > cpu_wino_scratch_bytes(c->wb) ? cpu_wino_scratch_bytes(c->wf)
                                                                              : cpu_wino_scratch_bytes(c->wb);
    c->wbuf_per = (c->wg * (c->x_numel + c->y_numel) + scr / sizeof(float) + 15) / 16 * 16;
    c->wbuf = ct_try_aligned_alloc(c->p.n_workers * c->wbuf_per, sizeof(float));
    if (!c->wbuf) return ct_errorf(err, "out of memory for Winograd buffers");
    return 0;
}

int cpu_conv_create(BackendConv **out, const BackendConvDesc *d, CtError *err) {
    *out = NULL;
    BackendConv *c = ct_calloc(1, sizeof *c);
    c->d = *d;
    Plan *p = &c->p;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL, cpd = NULL;
    dnnl_primitive_attr_t attr = NULL, plain = NULL;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);  // see the top
    DNNL_TRY(dnnl_engine_create(&p->eng, dnnl_cpu, 0), "CPU engine");
    md_plain(&p->md[S_X], 1, d->cin, d->in_h, d->in_w);
    md_plain(&p->md[S_Y], 1, d->cout, d->out_h, d->out_w);
    md_plain(&p->md[S_W], d->cout, d->cin, d->k, d->k);
    p->md[S_DW] = p->md[S_W];
    md_vec(&p->md[S_B], d->cout, dnnl_f32);
    p->md[S_DB] = p->md[S_B];
    dnnl_dims_t strides = {(dnnl_dim_t)d->stride, (dnnl_dim_t)d->stride};
    dnnl_dims_t padl = {(dnnl_dim_t)d->pad, (dnnl_dim_t)d->pad};
    dnnl_dims_t padr = {pad_right(d->in_h, d->out_h, d->k, d->stride, d->pad),
                        pad_right(d->in_w, d->out_w, d->k, d->stride, d->pad)};
    dnnl_convolution_desc_t cd;
    DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &p->md[S_X],
                                                &p->md[S_W], &p->md[S_B], &p->md[S_Y], strides, padl, padr),
             "convolution %zu->%zu %zux%zu forward", d->cin, d->cout, d->k, d->k);
    attr = attr_make(d->residual, d->relu);
    DNNL_TRY(dnnl_primitive_desc_create(&fpd, &cd, attr, p->eng, NULL), "convolution forward");
    DNNL_TRY(dnnl_primitive_create(&c->fwd, fpd), "convolution forward");
    plain = attr_make(0, 0);
    DNNL_TRY(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &p->md[S_X], &p->md[S_W],
                                                      &p->md[S_Y], strides, padl, padr),
             "convolution backward data");
    DNNL_TRY(dnnl_primitive_desc_create(&dpd, &cd, plain, p->eng, fpd), "convolution backward data");
    DNNL_TRY(dnnl_primitive_create(&c->bwd_data, dpd), "convolution backward data");
    c->chunk = d->max_batch < CONV_CHUNK ? (d->max_batch ? d->max_batch : 1) : CONV_CHUNK;
    md_plain(&p->md[S_XC], c->chunk, d->cin, d->in_h, d->in_w);
    md_plain(&p->md[S_YC], c->chunk, d->cout, d->out_h, d->out_w);
    DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &p->md[S_XC],
                                                &p->md[S_W], &p->md[S_B], &p->md[S_YC], strides, padl, padr),
             "convolution %zu->%zu %zux%zu forward of a chunk", d->cin, d->cout, d->k, d->k);
    DNNL_TRY(dnnl_primitive_desc_create(&cpd, &cd, plain, p->eng, NULL), "convolution forward of a chunk");
    DNNL_TRY(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &p->md[S_XC], &p->md[S_DW],
                                                         &p->md[S_DB], &p->md[S_YC], strides, padl, padr),
             "convolution backward weights");
    DNNL_TRY(dnnl_primitive_desc_create(&wpd, &cd, plain, p->eng, cpd), "convolution backward weights");
    DNNL_TRY(dnnl_primitive_create(&c->bwd_w, wpd), "convolution backward weights");
    note_scratch(p, fpd);
    note_scratch(p, dpd);
    note_scratch(p, wpd);
    c->x_numel = d->cin * d->in_h * d->in_w;
    c->y_numel = d->cout * d->out_h * d->out_w;
    c->w_numel = d->cout * d->cin * d->k * d->k;
    if (plan_workers(p, d->max_batch, saved, err)) goto fail;
    c->slots = ct_try_aligned_alloc(p->n_workers * (c->w_numel + d->cout), sizeof(float));
    c->pad = ct_try_aligned_alloc(p->n_workers * c->chunk * (c->x_numel + c->y_numel), sizeof(float));
    if (!c->slots || !c->pad) {
        ct_errorf(err, "out of memory for the weight-gradient slots");
        goto fail;
    }
    if (d->winograd && d->k == 3 && d->stride == 1 && d->pad == 1 && d->in_h == d->out_h && d->in_w == d->out_w &&
        d->cin % 8 == 0 && d->cout % 8 == 0 && cpu_wino_supported() && wino_plan(c, err))
        goto fail;
    dnnl_primitive_desc_destroy(cpd);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_attr_destroy(attr);
    dnnl_primitive_attr_destroy(plain);
    omp_set_num_threads(saved);
    *out = c;
    return 0;
fail:
    omp_set_num_threads(saved);
    if (cpd) dnnl_primitive_desc_destroy(cpd);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (plain) dnnl_primitive_attr_destroy(plain);
    cpu_conv_free(c);
    return -1;
}

void cpu_conv_free(BackendConv *c) {
    if (!c) return;
    if (c->fwd) dnnl_primitive_destroy(c->fwd);
    if (c->bwd_data) dnnl_primitive_destroy(c->bwd_data);
    if (c->bwd_w) dnnl_primitive_destroy(c->bwd_w);
    plan_free(&c->p);
    ct_aligned_free(c->slots);
    ct_aligned_free(c->pad);
    ct_aligned_free(c->wbuf);
    cpu_wino_free(c->wb);  // borrows wf's weights: first
    cpu_wino_free(c->wf);
    free(c);
}

// The loop every operation shares: images [0, n) over min(n, workers)
// threads, one image at a time, handed out dynamically (as cpu_net.c does):
// on a shared machine a static split left one thread spinning at the
// barrier while the other, preempted, finished its half (28% of a ResNet-34
// unfreeze-1 run's training samples were libgomp's wait loops). Which
// thread runs an image changes nothing in its result: every image is
// computed alone, into its own output or slot. The first failure is reported.
#define FOR_IMAGES(P, N, BODY)                                                                 \
    do {                                                                                       \
        int team_ = (int)((N) < (P)->n_workers ? (N) : (P)->n_workers);                       \
        dnnl_status_t bad_ = dnnl_success;                                                     \
        _Pragma("omp parallel num_threads(team_)") {                                           \
            omp_set_num_threads(1);                                                            \
            Worker *w = &(P)->wk[omp_get_thread_num()];                                        \
            _Pragma("omp for schedule(dynamic, 1)") for (size_t i = 0; i < (N); i++) {         \
                dnnl_status_t st = (BODY);                                                     \
                if (st != dnnl_success) {                                                      \
                    _Pragma("omp critical(cpu_conv_failure)") bad_ = st;                       \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        if (bad_ != dnnl_success) return ct_errorf(err, "oneDNN %s in %s", dnnl_status2str(bad_), __func__); \
    } while (0)

static dnnl_status_t conv_fwd_one(BackendConv *c, Worker *w, float *y, const float *x, const float *wt,
                                  const float *b, const float *res) {
    if (res) memcpy(y, res, c->y_numel * sizeof(float));  // the sum post-op adds the shortcut
    static const int args[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_BIAS, DNNL_ARG_DST};
    static const int slots[4] = {S_X, S_W, S_B, S_Y};
    void *ptr[4] = {(void *)x, (void *)wt, (void *)b, y};
    return run(w, c->fwd, 4, args, slots, ptr);
}

// ---- Winograd ----

// (c, hw) <-> nChw8c (c / 8, hw, 8), c a multiple of 8.
static void to_blocked(float *restrict dst, const float *restrict src, size_t ch, size_t hw) {
    for (size_t cb = 0; cb < ch / 8; cb++)
        for (size_t q = 0; q < hw; q++)
            for (size_t l = 0; l < 8; l++) dst[(cb * hw + q) * 8 + l] = src[(cb * 8 + l) * hw + q];
}

static void from_blocked(float *restrict dst, const float *restrict src, size_t ch, size_t hw) {
    for (size_t cb = 0; cb < ch / 8; cb++)
        for (size_t l = 0; l < 8; l++)
            for (size_t q = 0; q < hw; q++) dst[(cb * 8 + l) * hw + q] = src[(cb * hw + q) * 8 + l];
}

// out (n, och, hw) = plan(in (n, ich, hw) [+ res]) in groups of c->wg
// images, a group per thread at a time.
static void wino_images(BackendConv *c, CpuWino *wp, float *out, const float *in, const float *res, size_t ich,
                        size_t och, size_t hw, size_t n) {
    const size_t G = c->wg, groups = (n + G - 1) / G;
    int team = (int)(groups < c->p.n_workers ? groups : c->p.n_workers);
#pragma omp parallel num_threads(team)
    {
        float *bi = c->wbuf + (size_t)omp_get_thread_num() * c->wbuf_per, *bo = bi + G * ich * hw,
              *scr = bo + G * och * hw;
#pragma omp for schedule(dynamic, 1)
        for (size_t g = 0; g < groups; g++) {
            size_t i0 = g * G, m = n - i0 < G ? n - i0 : G;
            for (size_t i = 0; i < m; i++) {
                to_blocked(bi + i * ich * hw, in + (i0 + i) * ich * hw, ich, hw);
                if (res) to_blocked(bo + i * och * hw, res + (i0 + i) * och * hw, och, hw);
            }
            cpu_wino_run_images(wp, bo, bi, m, scr);
            for (size_t i = 0; i < m; i++) from_blocked(out + (i0 + i) * och * hw, bo + i * och * hw, och, hw);
        }
    }
}

int cpu_conv_forward(BackendConv *c, float *y, const float *x, const float *wt, const float *b, const float *res,
                     size_t n, CtError *err) {
    if (n > c->d.max_batch) return ct_errorf(err, "convolution: batch %zu over the plan's %zu", n, c->d.max_batch);
    if ((res != NULL) != (c->d.residual != 0)) fatal("cpu_conv_forward: residual given to a plan without one");
    if (c->wf) {
        cpu_wino_weights(c->wf, wt, c->d.cin * 9, 9, 0);
        memcpy(c->wf->bias, b, c->d.cout * sizeof(float));
        wino_images(c, c->wf, y, x, res, c->d.cin, c->d.cout, c->d.out_h * c->d.out_w, n);
        return 0;
    }
    FOR_IMAGES(&c->p, n, conv_fwd_one(c, w, y + i * c->y_numel, x + i * c->x_numel, wt, b,
                                      res ? res + i * c->y_numel : NULL));
    return 0;
}

static dnnl_status_t conv_bwd_data_one(BackendConv *c, Worker *w, float *dx, const float *dy, const float *wt) {
    static const int args[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST};
    static const int slots[3] = {S_X, S_W, S_Y};
    void *ptr[3] = {dx, (void *)wt, (void *)dy};
    return run(w, c->bwd_data, 3, args, slots, ptr);
}

int cpu_conv_backward_data(BackendConv *c, float *dx, const float *dy, const float *wt, size_t n, CtError *err) {
    if (n > c->d.max_batch) return ct_errorf(err, "convolution: batch %zu over the plan's %zu", n, c->d.max_batch);
    if (c->wb) {
        cpu_wino_weights(c->wb, wt, 9, c->d.cin * 9, 1);
        wino_images(c, c->wb, dx, dy, NULL, c->d.cout, c->d.cin, c->d.in_h * c->d.in_w, n);
        return 0;
    }
    FOR_IMAGES(&c->p, n, conv_bwd_data_one(c, w, dx + i * c->x_numel, dy + i * c->y_numel, wt));
    return 0;
}

// The weight and bias gradients of images [i0, i0 + m), m <= chunk, into
// slot: the chunk's primitive on the caller's buffers, or on a copy followed
// by zero images when the chunk is partial (a zero gradient adds nothing).
static dnnl_status_t conv_bwd_w_chunk(BackendConv *c, Worker *w, float *slot, float *pad, const float *dy,
                                      const float *x, size_t m) {
    if (m < c->chunk) {
        float *px = pad, *py = pad + c->chunk * c->x_numel;
        memcpy(px, x, m * c->x_numel * sizeof(float));
        memset(px + m * c->x_numel, 0, (c->chunk - m) * c->x_numel * sizeof(float));
        memcpy(py, dy, m * c->y_numel * sizeof(float));
        memset(py + m * c->y_numel, 0, (c->chunk - m) * c->y_numel * sizeof(float));
        x = px, dy = py;
    }
    static const int args[4] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_BIAS};
    static const int slots[4] = {S_XC, S_YC, S_DW, S_DB};
    void *ptr[4] = {(void *)x, (void *)dy, slot, slot + c->w_numel};
    return run(w, c->bwd_w, 4, args, slots, ptr);
}

// acc[e] += slot j's element off + e for j = 0 .. m-1 in that order: per
// element the same float additions as one running sum, but a block of
// elements at a time, slot by slot, so the inner loop is a plain vector add
// (one loop over weights and bias together, picking the accumulator per
// element, did not vectorise: 18% of a ResNet-34 layer4 run at 64 px).
static void add_slots(float *restrict acc, const float *restrict slots, size_t per, size_t m, size_t off,
                      size_t count) {
    enum { BLOCK = 2048 };  // 8 KiB of accumulators stay in L1 across the slots
    size_t n_blocks = (count + BLOCK - 1) / BLOCK;
#pragma omp parallel for schedule(static) if (count * m > ((size_t)1 << 16))
    for (size_t b = 0; b < n_blocks; b++) {
        size_t e0 = b * BLOCK, len = count - e0 < BLOCK ? count - e0 : BLOCK;
        float *a = acc + e0;
        for (size_t j = 0; j < m; j++) {
            const float *s = slots + j * per + off + e0;
            for (size_t e = 0; e < len; e++) a[e] += s[e];
        }
    }
}

int cpu_conv_backward_weights(BackendConv *c, float *dw, float *db, const float *dy, const float *x, size_t n,
                              CtError *err) {
    if (n > c->d.max_batch) return ct_errorf(err, "convolution: batch %zu over the plan's %zu", n, c->d.max_batch);
    const size_t per = c->w_numel + c->d.cout, T = c->p.n_workers, G = c->chunk;
    const size_t n_chunks = (n + G - 1) / G, pad_per = G * (c->x_numel + c->y_numel);
    for (size_t k0 = 0; k0 < n_chunks; k0 += T) {
        size_t m = n_chunks - k0 < T ? n_chunks - k0 : T;
        // Chunk k0 + j into slot j, on whichever thread ...
        FOR_IMAGES(&c->p, m,
                   conv_bwd_w_chunk(c, w, c->slots + i * per, c->pad + (size_t)omp_get_thread_num() * pad_per,
                                    dy + (k0 + i) * G * c->y_numel, x + (k0 + i) * G * c->x_numel,
                                    n - (k0 + i) * G < G ? n - (k0 + i) * G : G));
        // ... then added in chunk order, element by element.
        add_slots(dw, c->slots, per, m, 0, c->w_numel);
        add_slots(db, c->slots, per, m, c->w_numel, c->d.cout);
    }
    return 0;
}

// ---- max pool ----

int cpu_maxpool_create(BackendPool **out, const BackendPoolDesc *d, CtError *err) {
    *out = NULL;
    BackendPool *pl = ct_calloc(1, sizeof *pl);
    pl->d = *d;
    Plan *p = &pl->p;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    dnnl_primitive_attr_t attr = attr_make(0, 0);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    DNNL_TRY(dnnl_engine_create(&p->eng, dnnl_cpu, 0), "CPU engine");
    md_plain(&p->md[S_X], 1, d->c, d->in_h, d->in_w);
    md_plain(&p->md[S_Y], 1, d->c, d->out_h, d->out_w);
    dnnl_dims_t strides = {(dnnl_dim_t)d->stride, (dnnl_dim_t)d->stride};
    dnnl_dims_t kernel = {(dnnl_dim_t)d->k, (dnnl_dim_t)d->k};
    dnnl_dims_t padl = {(dnnl_dim_t)d->pad, (dnnl_dim_t)d->pad};
    dnnl_dims_t padr = {pad_right(d->in_h, d->out_h, d->k, d->stride, d->pad),
                        pad_right(d->in_w, d->out_w, d->k, d->stride, d->pad)};
    dnnl_pooling_desc_t pd;
    DNNL_TRY(dnnl_pooling_forward_desc_init(&pd, dnnl_forward_training, dnnl_pooling_max, &p->md[S_X], &p->md[S_Y],
                                            strides, kernel, padl, padr),
             "max pool %zux%zu forward", d->k, d->k);
    DNNL_TRY(dnnl_primitive_desc_create(&fpd, &pd, attr, p->eng, NULL), "max pool forward");
    DNNL_TRY(dnnl_primitive_create(&pl->fwd, fpd), "max pool forward");
    DNNL_TRY(dnnl_pooling_backward_desc_init(&pd, dnnl_pooling_max, &p->md[S_X], &p->md[S_Y], strides, kernel,
                                             padl, padr),
             "max pool backward");
    DNNL_TRY(dnnl_primitive_desc_create(&bpd, &pd, attr, p->eng, fpd), "max pool backward");
    DNNL_TRY(dnnl_primitive_create(&pl->bwd, bpd), "max pool backward");
    const dnnl_memory_desc_t *wsmd = dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
    if (!wsmd) {
        ct_errorf(err, "oneDNN max pool keeps no workspace");
        goto fail;
    }
    p->md[S_WS] = *wsmd;
    pl->ws_bytes = dnnl_memory_desc_get_size(wsmd);
    note_scratch(p, fpd);
    note_scratch(p, bpd);
    pl->x_numel = d->c * d->in_h * d->in_w;
    pl->y_numel = d->c * d->out_h * d->out_w;
    if (plan_workers(p, d->max_batch, saved, err)) goto fail;
    pl->ws = ct_try_aligned_alloc(d->max_batch, pl->ws_bytes ? pl->ws_bytes : 1);
    if (!pl->ws) {
        ct_errorf(err, "out of memory for the max pool's workspace");
        goto fail;
    }
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_attr_destroy(attr);
    omp_set_num_threads(saved);
    *out = pl;
    return 0;
fail:
    omp_set_num_threads(saved);
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_attr_destroy(attr);
    cpu_maxpool_free(pl);
    return -1;
}

void cpu_maxpool_free(BackendPool *pl) {
    if (!pl) return;
    if (pl->fwd) dnnl_primitive_destroy(pl->fwd);
    if (pl->bwd) dnnl_primitive_destroy(pl->bwd);
    plan_free(&pl->p);
    ct_aligned_free(pl->ws);
    free(pl);
}

static dnnl_status_t pool_fwd_one(BackendPool *pl, Worker *w, float *y, const float *x, void *ws) {
    static const int args[3] = {DNNL_ARG_SRC, DNNL_ARG_DST, DNNL_ARG_WORKSPACE};
    static const int slots[3] = {S_X, S_Y, S_WS};
    void *ptr[3] = {(void *)x, y, ws};
    return run(w, pl->fwd, 3, args, slots, ptr);
}

int cpu_maxpool_forward(BackendPool *pl, float *y, const float *x, size_t n, CtError *err) {
    if (n > pl->d.max_batch) return ct_errorf(err, "max pool: batch %zu over the plan's %zu", n, pl->d.max_batch);
    FOR_IMAGES(&pl->p, n, pool_fwd_one(pl, w, y + i * pl->y_numel, x + i * pl->x_numel, pl->ws + i * pl->ws_bytes));
    return 0;
}

static dnnl_status_t pool_bwd_one(BackendPool *pl, Worker *w, float *dx, const float *dy, void *ws) {
    static const int args[3] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_WORKSPACE};
    static const int slots[3] = {S_X, S_Y, S_WS};
    void *ptr[3] = {dx, (void *)dy, ws};
    return run(w, pl->bwd, 3, args, slots, ptr);
}

int cpu_maxpool_backward(BackendPool *pl, float *dx, const float *dy, size_t n, CtError *err) {
    if (n > pl->d.max_batch) return ct_errorf(err, "max pool: batch %zu over the plan's %zu", n, pl->d.max_batch);
    FOR_IMAGES(&pl->p, n,
               pool_bwd_one(pl, w, dx + i * pl->x_numel, dy + i * pl->y_numel, pl->ws + i * pl->ws_bytes));
    return 0;
}
