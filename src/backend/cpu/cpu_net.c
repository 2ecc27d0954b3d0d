/*
 * cpu_net.c — compiles a backbone graph into a sequence of oneDNN
 * primitives and runs it.
 *
 * Planning is symbolic first: every tensor gets the memory layout oneDNN
 * chose for the primitive that produces it, and a buffer from a pool reused
 * by lifetime (a tensor's buffer returns to the pool after its last reader).
 * A convolution whose source layout differs from the producer's gets a
 * reorder step in front; a ResNet shortcut is added by the convolution's sum
 * post-op, in place in the shortcut's buffer when that was its last use.
 * A DenseNet block is one buffer: its input and each layer's new channels
 * are written by their producers straight into their channel slices (see
 * PlanGroup), so its concatenations copy nothing; BatchNorm + ReLU is
 * oneDNN's batch normalization with the ReLU fused.
 * Buffers are allocated once the plan is known; weights are reordered into
 * oneDNN's preferred layout once at creation. Where oneDNN has no Winograd
 * kernel (below AVX-512), a 3x3 stride-1 convolution can be a step of our
 * own instead (cpu_winograd.h: nChw8c in and out, post-ops fused, weights
 * transformed at creation), run like the primitives, an image per thread.
 *
 * Batch invariance by construction. An image's features must not depend on
 * the batch it is computed in (its size, its other images, its position) nor
 * on the thread count: the feature cache, `ctsweep features`, every rank count
 * and every resume must see the same bits. oneDNN chooses a kernel's blocking
 * from the whole problem: its minibatch and the thread count it is created
 * with. On AVX-512 its Winograd kernel blocks the reduction over input
 * channels by a heuristic over (minibatch x tiles) and threads, so the same
 * image summed in another order when the batch changed (max |diff| ~1e-6 on
 * VGG16). So every primitive is planned for ONE image and created while
 * oneDNN sees ONE thread; a batch is spread over the threads an image at a
 * time, each thread running the same single-threaded primitives on buffers of
 * its own (oneDNN runs a primitive serially inside a parallel region). No
 * kernel choice and no summation order can then depend on the batch or the
 * threads, on any instruction set. Measured on a 2-core AVX2 EPYC,
 * bench/backbone batch 16 at 224 px: no slower than the batch-planned
 * version (see bench/README.md).
 */
#include "backend/cpu/cpu_net.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_dnnl.h"
#include "backend/cpu/cpu_ops.h"
#include "backend/cpu/cpu_winograd.h"
#include "backend/pool_plan.h"

#define MAX_ARGS 8
#define BUF_INPUT (-2)
#define BUF_OWNED (-1)
#define BUF_SCRATCH (-3)
#define BUF_FINAL (-4)

typedef struct {
    int arg;                // DNNL_ARG_*
    dnnl_memory_desc_t md;  // layout of the memory passed
    int buf;                // pool index, BUF_INPUT, BUF_OWNED (ptr), BUF_SCRATCH or BUF_FINAL
    size_t off;             // pool index: bytes into the buffer (a slice of a concatenation)
    void *ptr;              // BUF_OWNED: data
} ArgSpec;

typedef struct {
    dnnl_primitive_t prim;  // NULL for our own Winograd convolution
    CpuWino *wino;          // its plan: SRC and DST are spec[0] and spec[1]
    ArgSpec spec[MAX_ARGS];
    int nargs;
    char what[80];
} Step;

// What one thread needs to run the plan on one image: its own stream,
// activation buffers, scratchpad and the memory objects that point at them.
typedef struct {
    dnnl_stream_t stream;
    void **pool;          // n_pool buffers
    void *scratch;        // scratch_bytes
    float *input;         // (1, 3, h, w)
    float *final_plain;   // (1, fc, fh, fw)
    dnnl_memory_t *mems;  // n_mems
    size_t n_mems;
    dnnl_exec_arg_t *args;  // (n_steps, MAX_ARGS)
} CpuWorker;

typedef struct {
    dnnl_memory_desc_t md;
    int buf;       // pool index; BUF_INPUT for the network input
    size_t off;    // bytes into buf
    int last;      // index of the last layer that reads it
    int group;     // the concatenation buffer it lives in, -1 for none
    size_t choff;  // group: its first channel there
} TensorPlan;

// One buffer holding a chain of concatenations (a dense block): the block's
// input and every layer's new channels are written straight into their
// channel slices, so no concatenation copies anything. An image is planned
// alone (N = 1), so in a plain (nchw) or channel-blocked (nChw8c, nChw16c)
// layout the channels [c0, c1) of the buffer are one dense tensor of that
// layout at byte offset c0 * h * w * size, whenever c0 and c1 are multiples
// of the block.
typedef struct {
    size_t c, h, w;
    dnnl_format_tag_t tag;
    int buf;   // pool index once its first member is produced, -1 before, -100 after
    int last;  // the last layer reading any member
} PlanGroup;

struct CpuNet {
    dnnl_engine_t eng;
    dnnl_stream_t stream;  // for the weight reorders at creation
    size_t max_batch, h, w;
    Precision precision;
    // the final pooling, done in plain C on an NCHW copy
    NNOpKind final_kind;
    size_t fc, fh, fw, out_h, out_w, out_numel;
    Step *steps;
    size_t n_steps, cap_steps;
    size_t *pool_bytes;  // per worker
    int *pool_free;
    size_t n_pool;
    void **owned;  // weights, shared by the workers (read only)
    size_t n_owned, cap_owned, owned_bytes;
    size_t scratch_bytes;  // per worker
    PlanGroup *groups;     // while planning
    size_t n_groups;
    CpuWorker *workers;
    size_t n_workers;
    int verbose;
};

// ---- helpers ----

static void *owned_alloc(CpuNet *net, size_t bytes) {
    void *p = ct_try_aligned_alloc(bytes, 1);
    if (!p) return NULL;
    if (net->n_owned == net->cap_owned) {
        net->cap_owned = net->cap_owned ? 2 * net->cap_owned : 64;
        net->owned = ct_realloc(net->owned, net->cap_owned * sizeof *net->owned);
    }
    net->owned[net->n_owned++] = p;
    net->owned_bytes += bytes;
    return p;
}

static Step *step_push(CpuNet *net, dnnl_primitive_t prim, const char *what) {
    if (net->n_steps == net->cap_steps) {
        net->cap_steps = net->cap_steps ? 2 * net->cap_steps : 64;
        net->steps = ct_realloc(net->steps, net->cap_steps * sizeof *net->steps);
    }
    Step *s = &net->steps[net->n_steps++];
    memset(s, 0, sizeof *s);
    s->prim = prim;
    snprintf(s->what, sizeof s->what, "%s", what);
    return s;
}

static void step_arg_at(Step *s, int arg, const dnnl_memory_desc_t *md, int buf, size_t off, void *ptr) {
    if (s->nargs == MAX_ARGS) fatal("too many arguments for step %s", s->what);
    ArgSpec *a = &s->spec[s->nargs++];
    a->arg = arg;
    a->md = *md;
    a->buf = buf;
    a->off = off;
    a->ptr = ptr;
}

static void step_arg(Step *s, int arg, const dnnl_memory_desc_t *md, int buf, void *ptr) {
    step_arg_at(s, arg, md, buf, 0, ptr);
}

// The symbolic buffer pool (pool_plan.h); sizes are final only when planning ends.
static int pool_get(CpuNet *net, size_t bytes) {
    return pool_plan_get(&net->pool_bytes, &net->pool_free, &net->n_pool, bytes);
}

static void pool_put(CpuNet *net, int b) {
    if (b >= 0) net->pool_free[b] = 1;
}

static dnnl_data_type_t act_type(const CpuNet *net) {
    return net->precision == PRECISION_BF16 ? dnnl_bf16 : dnnl_f32;
}

// Adds a reorder step src(md, buf + soff) -> dst(md, buf + doff).
static int plan_reorder_at(CpuNet *net, const dnnl_memory_desc_t *smd, int sbuf, size_t soff,
                           const dnnl_memory_desc_t *dmd, int dbuf, size_t doff, void *dptr, const char *what,
                           CtError *err) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, smd, net->eng, dmd, net->eng, NULL), "reorder for %s",
             what);
    DNNL_TRY(dnnl_primitive_create(&prim, pd), "reorder for %s", what);
    dnnl_primitive_desc_destroy(pd);
    Step *s = step_push(net, prim, what);
    step_arg_at(s, DNNL_ARG_SRC, smd, sbuf, soff, NULL);
    step_arg_at(s, DNNL_ARG_DST, dmd, dbuf, doff, dptr);
    return 0;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    return -1;
}


// Reorders user data (plain layout) into a new owned buffer of layout dmd, now.
static void *reorder_now(CpuNet *net, const dnnl_memory_desc_t *umd, const void *data,
                         const dnnl_memory_desc_t *dmd, const char *what, CtError *err) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t src = NULL, dst = NULL;
    void *out = owned_alloc(net, dnnl_memory_desc_get_size(dmd));
    if (!out) {
        ct_errorf(err, "out of memory for the weights of %s", what);
        return NULL;
    }
    DNNL_TRY(dnnl_memory_create(&src, umd, net->eng, (void *)data), "weights of %s", what);
    DNNL_TRY(dnnl_memory_create(&dst, dmd, net->eng, out), "weights of %s", what);
    DNNL_TRY(dnnl_reorder_primitive_desc_create(&pd, umd, net->eng, dmd, net->eng, NULL), "weights of %s", what);
    DNNL_TRY(dnnl_primitive_create(&prim, pd), "weights of %s", what);
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    DNNL_TRY(dnnl_primitive_execute(prim, net->stream, 2, args), "weights of %s", what);
    DNNL_TRY(dnnl_stream_wait(net->stream), "weights of %s", what);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(dst);
    return out;
fail:
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    return NULL;
}

static void note_scratch(CpuNet *net, const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sz = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sz > net->scratch_bytes) net->scratch_bytes = sz;
}

static dnnl_primitive_attr_t make_attr(int sum, int relu) {
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t po;
    dnnl_primitive_attr_create(&attr);
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_post_ops_create(&po);
    if (sum) dnnl_post_ops_append_sum(po, 1.0f);
    if (relu) dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
    dnnl_primitive_attr_set_post_ops(attr, po);
    dnnl_post_ops_destroy(po);
    return attr;
}

// ---- concatenation buffers ----

static size_t dt_size(const CpuNet *net) { return net->precision == PRECISION_BF16 ? 2 : 4; }

static void tag_md(dnnl_memory_desc_t *md, size_t c, size_t h, size_t w, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {1, (dnnl_dim_t)c, (dnnl_dim_t)h, (dnnl_dim_t)w};
    dnnl_memory_desc_init_by_tag(md, 4, dims, dt, tag);
}

// Producers that can write into a slice of a concatenation buffer.
static int slice_producer(const NNGraph *g, int t) {
    if (t < 0) return 0;
    const NNLayer *l = &g->layers[t];
    return l->kind == NN_CONCAT || l->kind == NN_MAXPOOL || l->kind == NN_AVGPOOL ||
           (l->kind == NN_CONV && l->residual == NN_NONE);
}

// Assigns every chain of concatenations one buffer (its outermost
// concatenation's shape) and places in it, at their channel offsets, the
// inputs whose producers can write there. The layout: oneDNN's channel
// block on this CPU (8 on AVX2, 16 on AVX-512) when every slice starts and
// ends on a block, plain nchw otherwise.
static void plan_groups(CpuNet *net, const NNGraph *g, const NNShape *shapes, TensorPlan *tp) {
    for (size_t i = g->n_layers; i-- > 0;) {
        const NNLayer *l = &g->layers[i];
        if (l->kind != NN_CONCAT) continue;
        TensorPlan *o = &tp[i + 1];
        if (o->group < 0) {
            net->groups = ct_realloc(net->groups, (net->n_groups + 1) * sizeof *net->groups);
            net->groups[net->n_groups] = (PlanGroup){shapes[i].c, shapes[i].h, shapes[i].w, dnnl_nchw, -1, -1};
            o->group = (int)net->n_groups++;
            o->choff = 0;
        }
        int ins[2] = {l->src, l->src2};
        size_t offs[2] = {o->choff, o->choff + graph_tensor_channels(g, l->src)};
        for (int k = 0; k < 2; k++)
            if (slice_producer(g, ins[k]) && tp[ins[k] + 1].group < 0) {
                tp[ins[k] + 1].group = o->group;
                tp[ins[k] + 1].choff = offs[k];
            }
    }
    int isa = dnnl_get_effective_cpu_isa();
    size_t block = net->precision == PRECISION_BF16 || isa >= dnnl_cpu_isa_avx512_core ? 16
                   : isa >= dnnl_cpu_isa_avx                                             ? 8
                                                                                         : 0;
    for (size_t G = 0; G < net->n_groups; G++) {
        PlanGroup *pg = &net->groups[G];
        int aligned = block > 0;
        for (size_t t = 1; t <= g->n_layers; t++) {
            if (tp[t].group != (int)G) continue;
            size_t c = g->layers[t - 1].cout;
            aligned &= tp[t].choff % (block ? block : 1) == 0 && c % (block ? block : 1) == 0;
            if (tp[t].last > pg->last) pg->last = tp[t].last;
        }
        pg->tag = !aligned ? dnnl_nchw : block == 16 ? dnnl_nChw16c : dnnl_nChw8c;
    }
}

// The layout and place of group member t (tp[t]), allocating the group's
// buffer when t is the first of its members to be produced.
static void group_place(CpuNet *net, TensorPlan *t, size_t c) {
    PlanGroup *pg = &net->groups[t->group];
    if (pg->buf == -1) {
        dnnl_memory_desc_t full;
        tag_md(&full, pg->c, pg->h, pg->w, act_type(net), pg->tag);
        pg->buf = pool_get(net, dnnl_memory_desc_get_size(&full));
    }
    if (pg->buf < 0) fatal("concatenation buffer used after its last reader");
    tag_md(&t->md, c, pg->h, pg->w, act_type(net), pg->tag);
    t->buf = pg->buf;
    t->off = t->choff * pg->h * pg->w * dt_size(net);
}

// The source and destination of convolution l: a reorder of the source when
// the producer's layout is not psrc (into pool buffer *tmp, else -100), and
// the destination pre-filled with the shortcut when there is one.
static int plan_conv_io(CpuNet *net, const NNLayer *l, int li, TensorPlan *tp, const dnnl_memory_desc_t *psrc,
                        const dnnl_memory_desc_t *pdst, int *sbuf, size_t *soff, int *tmp, CtError *err) {
    const TensorPlan *in = l->src == NN_INPUT ? &tp[0] : &tp[l->src + 1];
    TensorPlan *out = &tp[li + 1];
    *sbuf = in->buf;
    *soff = in->off;
    *tmp = -100;
    if (!dnnl_memory_desc_equal(psrc, &in->md)) {
        *tmp = pool_get(net, dnnl_memory_desc_get_size(psrc));
        if (plan_reorder_at(net, &in->md, in->buf, in->off, psrc, *tmp, 0, NULL, l->name, err)) return -1;
        *sbuf = *tmp;
        *soff = 0;
    }
    out->md = *pdst;
    if (l->residual != NN_NONE) {
        TensorPlan *r = l->residual == NN_INPUT ? &tp[0] : &tp[l->residual + 1];
        if (r->last == li && r->buf >= 0 && r->group < 0 && dnnl_memory_desc_equal(&r->md, pdst)) {
            out->buf = r->buf;  // accumulate in place; the shortcut dies here
            r->buf = -100;
        } else {
            out->buf = pool_get(net, dnnl_memory_desc_get_size(pdst));
            if (plan_reorder_at(net, &r->md, r->buf, r->off, pdst, out->buf, 0, NULL, l->name, err)) return -1;
        }
    } else if (out->group < 0) {
        out->buf = pool_get(net, dnnl_memory_desc_get_size(pdst));
    }
    return 0;
}

// Our Winograd F(4,3) convolution (cpu_winograd.h) on nChw8c, where oneDNN
// has none: weights transformed once, the step runs it on the worker's
// scratchpad.
static int plan_wino(CpuNet *net, const NNLayer *l, int li, TensorPlan *tp, NNShape o, CtError *err) {
    const TensorPlan *in = l->src == NN_INPUT ? &tp[0] : &tp[l->src + 1];
    TensorPlan *out = &tp[li + 1];
    dnnl_memory_desc_t smd, dmd;
    tag_md(&smd, l->cin, (size_t)in->md.dims[2], (size_t)in->md.dims[3], dnnl_f32, dnnl_nChw8c);
    if (out->group >= 0) dmd = out->md;  // placed by plan_conv, nChw8c
    else tag_md(&dmd, l->cout, o.h, o.w, dnnl_f32, dnnl_nChw8c);
    CpuWino *wp = cpu_wino_create(l->weight, l->bias, l->cin, l->cout, o.h, o.w, l->residual != NN_NONE, l->relu);
    if (!wp) return ct_errorf(err, "out of memory for the Winograd weights of %s", l->name);
    int sbuf, tmp;
    size_t soff;
    if (plan_conv_io(net, l, li, tp, &smd, &dmd, &sbuf, &soff, &tmp, err)) {
        cpu_wino_free(wp);
        return -1;
    }
    Step *s = step_push(net, NULL, l->name);
    s->wino = wp;  // owned by the step from here on
    step_arg_at(s, DNNL_ARG_SRC, &smd, sbuf, soff, NULL);
    step_arg_at(s, DNNL_ARG_DST, &dmd, out->buf, out->off, NULL);
    net->owned_bytes += cpu_wino_weight_bytes(wp);
    if (cpu_wino_scratch_bytes(wp) > net->scratch_bytes) net->scratch_bytes = cpu_wino_scratch_bytes(wp);
    if (net->verbose)
        ct_info("  %-24s %4zu->%-4zu %zux%zu s%zu  %3zux%-3zu  ctsweep winograd F(4,3) avx2 (%zu tiles, %zu a block)",
                l->name, l->cin, l->cout, l->k, l->k, l->stride, o.h, o.w, wp->th * wp->tw, wp->tb);
    if (tmp != -100) pool_put(net, tmp);
    return 0;
}

// ---- planning ----

static int plan_conv(CpuNet *net, const NNLayer *l, int li, TensorPlan *tp, const NNShape *shapes,
                     const BackendOptions *opt, CtError *err) {
    const TensorPlan *in = l->src == NN_INPUT ? &tp[0] : &tp[l->src + 1];
    NNShape o = shapes[li];
    dnnl_data_type_t dt = act_type(net);
    dnnl_dims_t sdims = {1, (dnnl_dim_t)l->cin, in->md.dims[2], in->md.dims[3]};
    dnnl_dims_t wdims = {(dnnl_dim_t)l->cout, (dnnl_dim_t)l->cin, (dnnl_dim_t)l->k, (dnnl_dim_t)l->k};
    dnnl_dims_t bdims = {(dnnl_dim_t)l->cout};
    dnnl_dims_t ddims = {1, (dnnl_dim_t)l->cout, (dnnl_dim_t)o.h, (dnnl_dim_t)o.w};
    dnnl_dims_t strides = {(dnnl_dim_t)l->stride, (dnnl_dim_t)l->stride};
    dnnl_dims_t padl = {(dnnl_dim_t)l->pad, (dnnl_dim_t)l->pad};
    // Right padding that makes oneDNN's size equation exact (PyTorch floors).
    dnnl_dims_t padr = {(dnnl_dim_t)((o.h - 1) * l->stride + l->k) - in->md.dims[2] - (dnnl_dim_t)l->pad,
                        (dnnl_dim_t)((o.w - 1) * l->stride + l->k) - in->md.dims[3] - (dnnl_dim_t)l->pad};
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_memory_desc_init_by_tag(&smd, 4, sdims, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wmd, 4, wdims, dt, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bdims, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, dt, dnnl_format_tag_any);
    TensorPlan *out = &tp[li + 1];
    if (out->group >= 0) {
        group_place(net, out, l->cout);  // written straight into its slice
        dmd = out->md;
    }

    int has_res = l->residual != NN_NONE;
    dnnl_primitive_attr_t attr = make_attr(has_res, l->relu);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    int wino_ok = l->k == 3 && l->stride == 1 && net->precision == PRECISION_FP32;
    dnnl_status_t st = dnnl_unimplemented;
    if (opt->conv_algo != CONV_ALGO_DIRECT && wino_ok) {
        dnnl_convolution_desc_t cd;
        dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd, &smd, &wmd,
                                           &bmd, &dmd, strides, padl, padr);
        st = dnnl_primitive_desc_create(&pd, &cd, attr, net->eng, NULL);
        if (st != dnnl_success) pd = NULL;
    }
    // Where oneDNN has no Winograd kernel (below AVX-512), our own: for
    // `winograd` on every such layer, for `auto` by a rule on the shape.
    // (`auto` leaves a layer whose input channels fill no whole 8-channel
    // block, the image's 3, to the direct kernel.)
    if (st != dnnl_success && wino_ok && l->pad == 1 && cpu_wino_supported() &&
        (l->cin % 8 == 0 || opt->conv_algo == CONV_ALGO_WINOGRAD) &&
        (out->group < 0 || out->md.format_desc.blocking.inner_blks[0] == 8) &&
        (opt->conv_algo == CONV_ALGO_WINOGRAD ||
         (opt->conv_algo == CONV_ALGO_AUTO && cpu_wino_auto(l->cin, l->cout, o.h, o.w)))) {
        dnnl_primitive_attr_destroy(attr);
        return plan_wino(net, l, li, tp, o, err);
    }
    if (st != dnnl_success) {
        if (opt->conv_algo == CONV_ALGO_WINOGRAD && wino_ok) {
            dnnl_primitive_attr_destroy(attr);
            return ct_errorf(err, "%s: no Winograd convolution for this CPU (oneDNN's needs AVX-512, ctsweep's "
                             "AVX2+FMA)", l->name);
        }
        dnnl_convolution_desc_t cd;
        DNNL_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &smd,
                                                    &wmd, &bmd, &dmd, strides, padl, padr),
                 "convolution %s", l->name);
        st = dnnl_primitive_desc_create(&pd, &cd, attr, net->eng, NULL);
        if (st != dnnl_success) {
            pd = NULL;
            if (net->precision == PRECISION_BF16)
                ct_errorf(err, "%s: bf16 convolution is not supported on this CPU (oneDNN needs AVX-512)",
                          l->name);
            else
                ct_errorf(err, "%s: oneDNN cannot create the convolution (%s)", l->name, dnnl_status2str(st));
            goto fail;
        }
    }
    dnnl_primitive_attr_destroy(attr);
    attr = NULL;
    if (net->verbose) {
        const char *impl = NULL;
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        ct_info("  %-24s %4zu->%-4zu %zux%zu s%zu  %3zux%-3zu  %s", l->name, l->cin, l->cout, l->k, l->k,
                l->stride, o.h, o.w, impl ? impl : "?");
    }
    note_scratch(net, pd);
    const dnnl_memory_desc_t *psrc = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *pw = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *pb = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);

    // Weights: plain OIHW float32 -> oneDNN's layout and type, once.
    dnnl_memory_desc_t uw, ub;
    dnnl_memory_desc_init_by_tag(&uw, 4, wdims, dnnl_f32, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&ub, 1, bdims, dnnl_f32, dnnl_x);
    void *wbuf = reorder_now(net, &uw, l->weight, pw, l->name, err);
    if (!wbuf) goto fail;
    void *bbuf = reorder_now(net, &ub, l->bias, pb, l->name, err);
    if (!bbuf) goto fail;

    int sbuf, tmp;
    size_t soff;
    if (plan_conv_io(net, l, li, tp, psrc, pdst, &sbuf, &soff, &tmp, err)) goto fail;
    DNNL_TRY(dnnl_primitive_create(&prim, pd), "convolution %s", l->name);
    Step *s = step_push(net, prim, l->name);
    step_arg_at(s, DNNL_ARG_SRC, psrc, sbuf, soff, NULL);
    step_arg(s, DNNL_ARG_WEIGHTS, pw, BUF_OWNED, wbuf);
    step_arg(s, DNNL_ARG_BIAS, pb, BUF_OWNED, bbuf);
    step_arg_at(s, DNNL_ARG_DST, pdst, out->buf, out->off, NULL);
    const dnnl_memory_desc_t *smdp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smdp && dnnl_memory_desc_get_size(smdp) > 0) step_arg(s, DNNL_ARG_SCRATCHPAD, smdp, BUF_SCRATCH, NULL);
    dnnl_primitive_desc_destroy(pd);
    if (tmp != -100) pool_put(net, tmp);
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return -1;
}

// Max pooling (padding as -inf) or average pooling (no padding in our graphs).
static int plan_pool(CpuNet *net, const NNLayer *l, int li, TensorPlan *tp, const NNShape *shapes,
                     dnnl_alg_kind_t alg, CtError *err) {
    const TensorPlan *in = l->src == NN_INPUT ? &tp[0] : &tp[l->src + 1];
    NNShape o = shapes[li];
    dnnl_dims_t ddims = {1, (dnnl_dim_t)o.c, (dnnl_dim_t)o.h, (dnnl_dim_t)o.w};
    dnnl_dims_t strides = {(dnnl_dim_t)l->stride, (dnnl_dim_t)l->stride};
    dnnl_dims_t kernel = {(dnnl_dim_t)l->k, (dnnl_dim_t)l->k};
    dnnl_dims_t padl = {(dnnl_dim_t)l->pad, (dnnl_dim_t)l->pad};
    dnnl_dims_t padr = {(dnnl_dim_t)((o.h - 1) * l->stride + l->k) - in->md.dims[2] - (dnnl_dim_t)l->pad,
                        (dnnl_dim_t)((o.w - 1) * l->stride + l->k) - in->md.dims[3] - (dnnl_dim_t)l->pad};
    dnnl_memory_desc_t dmd;
    dnnl_memory_desc_init_by_tag(&dmd, 4, ddims, in->md.data_type, dnnl_format_tag_any);
    TensorPlan *out = &tp[li + 1];
    if (out->group >= 0) {
        group_place(net, out, o.c);
        dmd = out->md;
    }
    dnnl_pooling_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_primitive_attr_t attr = make_attr(0, 0);
    DNNL_TRY(dnnl_pooling_forward_desc_init(&desc, dnnl_forward_inference, alg, &in->md, &dmd, strides, kernel,
                                            padl, padr),
             "pooling %s", l->name);
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, net->eng, NULL), "pooling %s", l->name);
    dnnl_primitive_attr_destroy(attr);
    attr = NULL;
    note_scratch(net, pd);
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    out->md = *pdst;
    if (out->group < 0) out->buf = pool_get(net, dnnl_memory_desc_get_size(pdst));
    DNNL_TRY(dnnl_primitive_create(&prim, pd), "pooling %s", l->name);
    Step *s = step_push(net, prim, l->name);
    step_arg_at(s, DNNL_ARG_SRC, &in->md, in->buf, in->off, NULL);
    step_arg_at(s, DNNL_ARG_DST, pdst, out->buf, out->off, NULL);
    const dnnl_memory_desc_t *smdp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smdp && dnnl_memory_desc_get_size(smdp) > 0) step_arg(s, DNNL_ARG_SCRATCHPAD, smdp, BUF_SCRATCH, NULL);
    dnnl_primitive_desc_destroy(pd);
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return -1;
}

// DenseNet's BatchNorm + ReLU: oneDNN's inference batch normalization with
// mean 0, variance 1 and epsilon 0, so y = max(scale * x + shift, 0) with
// the scale and shift computed at load (nn/models.c).
static int plan_bn_relu(CpuNet *net, const NNLayer *l, int li, TensorPlan *tp, CtError *err) {
    const TensorPlan *in = l->src == NN_INPUT ? &tp[0] : &tp[l->src + 1];
    dnnl_batch_normalization_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_primitive_attr_t attr = make_attr(0, 0);
    DNNL_TRY(dnnl_batch_normalization_forward_desc_init(
                 &desc, dnnl_forward_inference, &in->md, 0.0f,
                 dnnl_use_global_stats | dnnl_use_scale | dnnl_use_shift | dnnl_fuse_norm_relu),
             "BatchNorm + ReLU %s", l->name);
    DNNL_TRY(dnnl_primitive_desc_create(&pd, &desc, attr, net->eng, NULL), "BatchNorm + ReLU %s", l->name);
    dnnl_primitive_attr_destroy(attr);
    attr = NULL;
    note_scratch(net, pd);
    dnnl_memory_desc_t cmd;
    dnnl_dims_t cdims = {(dnnl_dim_t)l->cout};
    dnnl_memory_desc_init_by_tag(&cmd, 1, cdims, dnnl_f32, dnnl_x);
    float *mean = owned_alloc(net, l->cout * sizeof(float));
    float *var = owned_alloc(net, l->cout * sizeof(float));
    float *scale = owned_alloc(net, l->cout * sizeof(float));
    float *shift = owned_alloc(net, l->cout * sizeof(float));
    if (!mean || !var || !scale || !shift) {
        ct_errorf(err, "out of memory for the parameters of %s", l->name);
        goto fail;
    }
    for (size_t c = 0; c < l->cout; c++) {
        mean[c] = 0.0f;
        var[c] = 1.0f;
    }
    memcpy(scale, l->weight, l->cout * sizeof(float));
    memcpy(shift, l->bias, l->cout * sizeof(float));
    const dnnl_memory_desc_t *pdst = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    TensorPlan *out = &tp[li + 1];
    out->md = *pdst;
    out->buf = pool_get(net, dnnl_memory_desc_get_size(pdst));
    DNNL_TRY(dnnl_primitive_create(&prim, pd), "BatchNorm + ReLU %s", l->name);
    Step *s = step_push(net, prim, l->name);
    step_arg_at(s, DNNL_ARG_SRC, &in->md, in->buf, in->off, NULL);
    step_arg(s, DNNL_ARG_MEAN, &cmd, BUF_OWNED, mean);
    step_arg(s, DNNL_ARG_VARIANCE, &cmd, BUF_OWNED, var);
    step_arg(s, DNNL_ARG_SCALE, &cmd, BUF_OWNED, scale);
    step_arg(s, DNNL_ARG_SHIFT, &cmd, BUF_OWNED, shift);
    step_arg(s, DNNL_ARG_DST, pdst, out->buf, NULL);
    const dnnl_memory_desc_t *smdp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (smdp && dnnl_memory_desc_get_size(smdp) > 0) step_arg(s, DNNL_ARG_SCRATCHPAD, smdp, BUF_SCRATCH, NULL);
    dnnl_primitive_desc_destroy(pd);
    return 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return -1;
}

// A concatenation is its group's buffer: nothing runs, except a copy into
// their slice for inputs whose producers could not write there themselves.
static int plan_concat(CpuNet *net, const NNGraph *g, const NNLayer *l, int li, TensorPlan *tp, CtError *err) {
    TensorPlan *out = &tp[li + 1];
    if (out->group < 0) fatal("concatenation %s has no buffer", l->name);
    group_place(net, out, l->cout);
    int ins[2] = {l->src, l->src2};
    size_t offs[2] = {out->choff, out->choff + graph_tensor_channels(g, l->src)};
    for (int k = 0; k < 2; k++) {
        const TensorPlan *in = ins[k] == NN_INPUT ? &tp[0] : &tp[ins[k] + 1];
        if (in->group == out->group) continue;
        TensorPlan slot = *out;
        slot.choff = offs[k];
        group_place(net, &slot, graph_tensor_channels(g, ins[k]));
        if (plan_reorder_at(net, &in->md, in->buf, in->off, &slot.md, slot.buf, slot.off, NULL, l->name, err))
            return -1;
    }
    return 0;
}

// Gives every worker its stream, pool, scratchpad, input and final buffers
// and one memory object per step argument.
static int materialize(CpuNet *net, CtError *err) {
    size_t n_args = 0;
    for (size_t i = 0; i < net->n_steps; i++) n_args += (size_t)net->steps[i].nargs;
    size_t in_bytes = 3 * net->h * net->w * sizeof(float);
    size_t final_bytes = net->fc * net->fh * net->fw * sizeof(float);
    net->workers = ct_calloc(net->n_workers, sizeof *net->workers);
    for (size_t t = 0; t < net->n_workers; t++) {
        CpuWorker *wk = &net->workers[t];
        dnnl_status_t st = dnnl_stream_create(&wk->stream, net->eng, dnnl_stream_default_flags);
        if (st != dnnl_success) return ct_errorf(err, "oneDNN %s: CPU stream", dnnl_status2str(st));
        wk->pool = ct_calloc(net->n_pool ? net->n_pool : 1, sizeof *wk->pool);
        for (size_t i = 0; i < net->n_pool; i++) {
            wk->pool[i] = ct_try_aligned_alloc(net->pool_bytes[i], 1);
            if (!wk->pool[i])
                return ct_errorf(err, "out of memory for activations (%zu MiB)", net->pool_bytes[i] >> 20);
        }
        if (net->scratch_bytes) {
            wk->scratch = ct_try_aligned_alloc(net->scratch_bytes, 1);
            if (!wk->scratch) return ct_errorf(err, "out of memory for the oneDNN scratchpad");
        }
        wk->input = ct_try_aligned_alloc(in_bytes, 1);
        wk->final_plain = ct_try_aligned_alloc(final_bytes, 1);
        if (!wk->input || !wk->final_plain) return ct_errorf(err, "out of memory for an image's buffers");
        wk->mems = ct_calloc(n_args ? n_args : 1, sizeof *wk->mems);
        wk->args = ct_calloc(net->n_steps * MAX_ARGS + 1, sizeof *wk->args);
        for (size_t i = 0; i < net->n_steps; i++) {
            Step *s = &net->steps[i];
            for (int a = 0; a < s->nargs; a++) {
                ArgSpec *sp = &s->spec[a];
                void *ptr = sp->buf >= 0 ? (void *)((char *)wk->pool[sp->buf] + sp->off)
                            : sp->buf == BUF_INPUT ? (void *)wk->input
                            : sp->buf == BUF_SCRATCH ? wk->scratch
                            : sp->buf == BUF_FINAL ? (void *)wk->final_plain
                                                   : sp->ptr;
                dnnl_memory_t m;
                st = dnnl_memory_create(&m, &sp->md, net->eng, ptr);
                if (st != dnnl_success)
                    return ct_errorf(err, "oneDNN %s: memory for %s", dnnl_status2str(st), s->what);
                wk->mems[wk->n_mems++] = m;
                wk->args[i * MAX_ARGS + (size_t)a].arg = sp->arg;
                wk->args[i * MAX_ARGS + (size_t)a].memory = m;
            }
        }
    }
    return 0;
}

int cpu_net_create(CpuNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                   const BackendOptions *opt, CtError *err) {
    *out = NULL;
    if (g->n_layers < 1) return ct_errorf(err, "%s: empty graph", g->model);
    const NNLayer *last = &g->layers[g->n_layers - 1];
    if (last->kind != NN_ADAPTIVE_AVGPOOL && last->kind != NN_GLOBAL_AVGPOOL)
        return ct_errorf(err, "%s: the CPU backend expects the graph to end in an average pool", g->model);
    if (max_batch == 0 || max_batch > (1u << 20)) return ct_errorf(err, "batch size %zu out of range", max_batch);
    if (opt->precision != PRECISION_FP32 && opt->precision != PRECISION_BF16)
        return ct_errorf(err, "precision %s is not available on the CPU backend (fp32, bf16)",
                         precision_name(opt->precision));

    NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
    TensorPlan *tp = ct_calloc(g->n_layers + 1, sizeof *tp);
    CpuNet *net = ct_calloc(1, sizeof *net);
    net->max_batch = max_batch;
    net->h = h;
    net->w = w;
    net->precision = opt->precision;
    net->verbose = opt->verbose;
    if (opt->threads > 0) omp_set_num_threads(opt->threads);
    // One worker per thread, no more than a batch can keep busy.
    size_t threads = (size_t)omp_get_max_threads();
    net->n_workers = threads < max_batch ? threads : max_batch;
    if (net->n_workers == 0) net->n_workers = 1;
    // The primitives are created while oneDNN sees one thread (see the top).
    int saved_threads = omp_get_max_threads();
    omp_set_num_threads(1);
    if (graph_infer_shapes(g, h, w, shapes, err)) goto fail;
    DNNL_TRY(dnnl_engine_create(&net->eng, dnnl_cpu, 0), "CPU engine");
    DNNL_TRY(dnnl_stream_create(&net->stream, net->eng, dnnl_stream_default_flags), "CPU stream");

    // Lifetimes: tp[0] is the input, tp[i + 1] the output of layer i.
    for (size_t i = 0; i <= g->n_layers; i++) {
        tp[i].last = -1;
        tp[i].group = -1;
    }
    for (size_t i = 0; i < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        tp[l->src + 1].last = (int)i;
        if (l->residual != NN_NONE) tp[l->residual + 1].last = (int)i;
        if (l->src2 != NN_NONE) tp[l->src2 + 1].last = (int)i;
    }
    plan_groups(net, g, shapes, tp);
    dnnl_dims_t idims = {1, 3, (dnnl_dim_t)h, (dnnl_dim_t)w};
    dnnl_memory_desc_init_by_tag(&tp[0].md, 4, idims, dnnl_f32, dnnl_nchw);
    tp[0].buf = BUF_INPUT;

    if (net->verbose)
        ct_info("%s plan for one image at %zux%zu (%s, oneDNN ISA %s), run by %zu threads an image each:",
                g->model, h, w, precision_name(opt->precision), cpu_net_isa_name(), net->n_workers);
    for (size_t i = 0; i + 1 < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        int rc = -1;
        if (l->kind == NN_CONV) rc = plan_conv(net, l, (int)i, tp, shapes, opt, err);
        else if (l->kind == NN_MAXPOOL) rc = plan_pool(net, l, (int)i, tp, shapes, dnnl_pooling_max, err);
        else if (l->kind == NN_AVGPOOL)
            rc = plan_pool(net, l, (int)i, tp, shapes, dnnl_pooling_avg_exclude_padding, err);
        else if (l->kind == NN_BN_RELU) rc = plan_bn_relu(net, l, (int)i, tp, err);
        else if (l->kind == NN_CONCAT) rc = plan_concat(net, g, l, (int)i, tp, err);
        else ct_errorf(err, "%s: layer %s: pooling to a fixed size must be the last layer", g->model, l->name);
        if (rc) goto fail;
        // Buffers whose tensor was last read by this layer go back to the
        // pool; a concatenation buffer when the last of its members was.
        for (size_t t = 0; t <= i + 1; t++)
            if (tp[t].last == (int)i && tp[t].buf >= 0 && tp[t].group < 0) {
                pool_put(net, tp[t].buf);
                tp[t].buf = -100;
            }
        for (size_t G = 0; G < net->n_groups; G++)
            if (net->groups[G].last == (int)i && net->groups[G].buf >= 0) {
                pool_put(net, net->groups[G].buf);
                net->groups[G].buf = -100;
            }
    }
    // The final pooling reads an NCHW float32 copy of its input.
    const TensorPlan *fin = last->src == NN_INPUT ? &tp[0] : &tp[last->src + 1];
    NNShape fs = last->src == NN_INPUT ? (NNShape){3, h, w} : shapes[last->src];
    net->final_kind = last->kind;
    net->fc = fs.c;
    net->fh = fs.h;
    net->fw = fs.w;
    net->out_h = shapes[g->n_layers - 1].h;
    net->out_w = shapes[g->n_layers - 1].w;
    net->out_numel = fs.c * net->out_h * net->out_w;
    dnnl_dims_t fdims = {1, (dnnl_dim_t)fs.c, (dnnl_dim_t)fs.h, (dnnl_dim_t)fs.w};
    dnnl_memory_desc_t fmd;
    dnnl_memory_desc_init_by_tag(&fmd, 4, fdims, dnnl_f32, dnnl_nchw);
    if (plan_reorder_at(net, &fin->md, fin->buf, fin->off, &fmd, BUF_FINAL, 0, NULL, last->name, err)) goto fail;
    if (materialize(net, err)) goto fail;
    omp_set_num_threads(saved_threads);
    if (net->verbose)
        ct_info("%s plan: %zu steps, weights %.1f MiB; per thread: activations %.1f MiB in %zu buffers, "
                "scratchpad %.1f MiB",
                g->model, net->n_steps, net->owned_bytes / 1048576.0,
                (cpu_net_bytes(net) - net->owned_bytes) / 1048576.0 / (double)net->n_workers -
                    net->scratch_bytes / 1048576.0,
                net->n_pool, net->scratch_bytes / 1048576.0);
    free(shapes);
    free(tp);
    *out = net;
    return 0;
fail:
    omp_set_num_threads(saved_threads);
    free(shapes);
    free(tp);
    cpu_net_free(net);
    return -1;
}

// ---- running ----

// Runs the whole plan on one image with worker wk. Returns the failing
// step's index, or -1.
static long run_one(CpuNet *net, CpuWorker *wk, const float *in, float *out, dnnl_status_t *st) {
    memcpy(wk->input, in, 3 * net->h * net->w * sizeof(float));
    for (size_t i = 0; i < net->n_steps; i++) {
        Step *s = &net->steps[i];
        if (s->wino) {
            // oneDNN's CPU stream has run every earlier step when execute returns.
            void *src = NULL, *dst = NULL;
            dnnl_memory_get_data_handle(wk->args[i * MAX_ARGS].memory, &src);
            dnnl_memory_get_data_handle(wk->args[i * MAX_ARGS + 1].memory, &dst);
            cpu_wino_run(s->wino, dst, src, wk->scratch);
            continue;
        }
        *st = dnnl_primitive_execute(s->prim, wk->stream, s->nargs, wk->args + i * MAX_ARGS);
        if (*st != dnnl_success) return (long)i;
    }
    *st = dnnl_stream_wait(wk->stream);
    if (*st != dnnl_success) return (long)net->n_steps;
    // Adaptive or global average pooling of the image's (fc, fh, fw) map.
    cpu_adaptive_avgpool_forward(out, wk->final_plain, 1, net->fc, net->fh, net->fw, net->out_h, net->out_w);
    return -1;
}

int cpu_net_forward(CpuNet *net, const float *in, size_t n, float *out, CtError *err) {
    if (n == 0) return 0;
    if (n > net->max_batch) return ct_errorf(err, "batch of %zu is larger than the plan's %zu", n, net->max_batch);
    const size_t per = 3 * net->h * net->w;
    int team = (int)(n < net->n_workers ? n : net->n_workers);
    long failed_step = -1;
    dnnl_status_t failed_st = dnnl_success;
    // Images go to threads dynamically: which thread runs an image changes
    // nothing in its result (same primitives, each thread's own buffers).
#pragma omp parallel num_threads(team)
    {
        CpuWorker *wk = &net->workers[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < n; i++) {
            long bad;
#pragma omp atomic read
            bad = failed_step;
            if (bad >= 0) continue;
            dnnl_status_t st;
            long step = run_one(net, wk, in + i * per, out + i * net->out_numel, &st);
            if (step >= 0) {
#pragma omp critical(cpu_net_failure)
                if (failed_step < 0) {
                    failed_st = st;
                    failed_step = step;
                }
            }
        }
    }
    if (failed_step >= 0)
        return ct_errorf(err, "oneDNN %s executing %s", dnnl_status2str(failed_st),
                         failed_step < (long)net->n_steps ? net->steps[failed_step].what : "the stream");
    return 0;
}

size_t cpu_net_output_numel(const CpuNet *net) { return net->out_numel; }

size_t cpu_net_bytes(const CpuNet *net) {
    size_t per_worker = net->scratch_bytes + 3 * net->h * net->w * sizeof(float) +
                        net->fc * net->fh * net->fw * sizeof(float);
    for (size_t i = 0; i < net->n_pool; i++) per_worker += net->pool_bytes[i];
    return net->owned_bytes + net->n_workers * per_worker;
}

const char *cpu_net_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "default";
    }
}

void cpu_net_free(CpuNet *net) {
    if (!net) return;
    for (size_t i = 0; i < net->n_steps; i++)
        if (net->steps[i].prim) dnnl_primitive_destroy(net->steps[i].prim);
        else cpu_wino_free(net->steps[i].wino);
    if (net->workers)
        for (size_t t = 0; t < net->n_workers; t++) {
            CpuWorker *wk = &net->workers[t];
            for (size_t i = 0; i < wk->n_mems; i++) dnnl_memory_destroy(wk->mems[i]);
            if (wk->pool)
                for (size_t i = 0; i < net->n_pool; i++) ct_aligned_free(wk->pool[i]);
            ct_aligned_free(wk->scratch);
            ct_aligned_free(wk->input);
            ct_aligned_free(wk->final_plain);
            if (wk->stream) dnnl_stream_destroy(wk->stream);
            free(wk->pool);
            free(wk->mems);
            free(wk->args);
        }
    for (size_t i = 0; i < net->n_owned; i++) ct_aligned_free(net->owned[i]);
    if (net->stream) dnnl_stream_destroy(net->stream);
    if (net->eng) dnnl_engine_destroy(net->eng);
    free(net->workers);
    free(net->groups);
    free(net->steps);
    free(net->owned);
    free(net->pool_bytes);
    free(net->pool_free);
    free(net);
}
