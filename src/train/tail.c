/*
 * tail.c — planning, memory and parameters of the trainable tail (the
 * forward and backward passes are in tail_pass.c).
 */
#include "train/tail.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "nn/safetensors.h"
#include "train/tail_layer.h"
#include "util/rng.h"

// ---- memory layout ----

// Walks every array of a block in a fixed order: the first pass (base NULL)
// sums sizes with overflow checks, the second carves pointers. Each array
// starts 64-byte aligned.
typedef struct {
    float *base;
    size_t off;
    int overflow;
} Carver;

static float *carve(Carver *c, size_t a, size_t b) {
    size_t n;
    if (ct_mul_size(&n, a, b) || n > SIZE_MAX / 8) {
        c->overflow = 1;
        return NULL;
    }
    size_t aligned = (n + 15) & ~(size_t)15;
    float *p = c->base ? c->base + c->off : NULL;
    if (c->off + aligned < c->off) c->overflow = 1;
    c->off += aligned;
    return p;
}

static void add_tensor(Tail *t, const char *name, const char *suffix, float *param, float *grad, size_t numel,
                       size_t ndim, const size_t *shape) {
    TailTensor *tt = &t->tensors[t->n_tensors++];
    snprintf(tt->name, sizeof tt->name, "%s.%s", name, suffix);
    tt->param = param;
    tt->grad = grad;
    tt->numel = numel;
    tt->ndim = ndim;
    for (size_t d = 0; d < ndim; d++) tt->shape[d] = shape[d];
}

// The parameter block: params, grads, m, v, each laid out alike.
static void layout_params(Tail *t, Carver *c) {
    float *blk[4];
    size_t n = 0;
    for (size_t j = 0; j < t->n_layers; j++) {
        TailLayer *L = &t->layers[j];
        if (L->kind == NN_CONV) n += L->cout * L->cin * L->k * L->k + (L->has_bn ? 2 : 1) * L->cout;
    }
    t->n_tail_params = n;
    for (size_t l = 0; l < t->n_lin; l++) n += t->dim[l + 1] * t->dim[l] + t->dim[l + 1];
    t->n_params = n;
    for (int i = 0; i < 4; i++) blk[i] = carve(c, n ? n : 1, 1);
    if (!c->base) return;
    t->params = blk[0], t->grads = blk[1], t->m = blk[2], t->v = blk[3];
    size_t off = 0;
    t->n_tensors = 0;
    for (size_t j = 0; j < t->n_layers; j++) {
        TailLayer *L = &t->layers[j];
        if (L->kind != NN_CONV) continue;
        size_t nw = L->cout * L->cin * L->k * L->k;
        L->w = t->params + off, L->gw = t->grads + off;
        add_tensor(t, L->name, "weight", L->w, L->gw, nw, 4, (const size_t[4]){L->cout, L->cin, L->k, L->k});
        off += nw;
        if (L->has_bn) {
            L->gamma = t->params + off, L->ggamma = t->grads + off;
            add_tensor(t, L->bn_name, "weight", L->gamma, L->ggamma, L->cout, 1, &L->cout);
            off += L->cout;
        }
        L->b = t->params + off, L->gb = t->grads + off;
        add_tensor(t, L->has_bn ? L->bn_name : L->name, "bias", L->b, L->gb, L->cout, 1, &L->cout);
        off += L->cout;
    }
    for (size_t l = 0; l < t->n_lin; l++) {
        char name[32];
        snprintf(name, sizeof name, "head.%zu", l);
        size_t nw = t->dim[l + 1] * t->dim[l];
        t->hw[l] = t->params + off, t->hgw[l] = t->grads + off;
        add_tensor(t, name, "weight", t->hw[l], t->hgw[l], nw, 2, (const size_t[2]){t->dim[l + 1], t->dim[l]});
        off += nw;
        t->hb[l] = t->params + off, t->hgb[l] = t->grads + off;
        add_tensor(t, name, "bias", t->hb[l], t->hgb[l], t->dim[l + 1], 1, &t->dim[l + 1]);
        off += t->dim[l + 1];
    }
}

// The work block: frozen statistics, folded weights, activations and their
// gradients, the head's workspace.
static void layout_work(Tail *t, Carver *c) {
    const size_t B = t->max_batch;
    size_t widest = t->in_numel, wmax = 1, cmax = 1;
    for (size_t j = 0; j < t->n_layers; j++) {
        TailLayer *L = &t->layers[j];
        if (L->out_numel > widest) widest = L->out_numel;
        if (L->kind != NN_CONV) continue;
        size_t nw = L->cout * L->cin * L->k * L->k;
        if (nw > wmax) wmax = nw;
        if (L->cout > cmax) cmax = L->cout;
        if (L->has_bn) {
            float *st = carve(c, 2, L->cout), *wf = carve(c, nw, 1), *bf = carve(c, L->cout, 1);
            if (c->base) L->mean = st, L->var = st + L->cout, L->wf = wf, L->bf = bf;
        }
    }
    float *gwf = carve(c, wmax, 1), *gbf = carve(c, cmax, 1), *tmp = carve(c, B, widest);
    float *dx = carve(c, B, t->in_numel), *xin = carve(c, B, t->in_numel);
    if (c->base) t->gwf = gwf, t->gbf = gbf, t->tmp = tmp, t->dx = dx, t->xin = xin;
    for (size_t j = 0; j < t->n_layers; j++) {
        TailLayer *L = &t->layers[j];
        float *a = carve(c, B, L->out_numel), *d = carve(c, B, L->out_numel);
        if (c->base) t->act[j + 1] = a, t->dact[j + 1] = d;
    }
    if (c->base) t->dact[0] = t->dx;
    size_t hw = 0;
    for (size_t l = 0; l <= t->n_lin; l++) hw = t->dim[l] > hw ? t->dim[l] : hw;
    for (size_t l = 1; l <= t->n_lin; l++) {
        float *a = carve(c, B, t->dim[l]), *mk = l < t->n_lin ? carve(c, B, t->dim[l]) : NULL;
        if (c->base) t->hact[l] = a, t->hmask[l] = mk;
    }
    float *d0 = carve(c, B, hw), *d1 = carve(c, B, hw);
    if (c->base) t->hdh[0] = d0, t->hdh[1] = d1, t->hact[0] = t->act[t->n_layers];
    if (t->head.standardize) {
        float *mean = carve(c, t->feat, 1), *inv = carve(c, t->feat, 1), *z = carve(c, B, t->feat);
        if (c->base) t->std_mean = mean, t->std_inv = inv, t->hstd = z, t->hact[0] = z;
    }
}

// ---- planning ----

// Tail tensor index of graph tensor `src` (0 = the cut input), -1 when it
// lies inside the frozen prefix other than at the cut.
static int tensor_of(size_t cut, int src) {
    if (src == NN_INPUT) return cut == 0 ? 0 : -1;
    if ((size_t)src + 1 == cut) return 0;
    if ((size_t)src < cut) return -1;
    return (int)((size_t)src - cut) + 1;
}

static int plan_layer(Tail *t, TailLayer *L, const NNLayer *gl, const NNShape *in, const NNShape *out, CtError *err) {
    L->kind = gl->kind;
    snprintf(L->name, sizeof L->name, "%s", gl->name);
    snprintf(L->bn_name, sizeof L->bn_name, "%s", gl->bn_name);
    L->has_bn = gl->bn_name[0] != 0;
    L->relu = gl->relu;
    L->cin = gl->cin, L->cout = gl->cout, L->k = gl->k, L->stride = gl->stride, L->pad = gl->pad;
    L->in = *in, L->out = *out;
    L->in_numel = in->c * in->h * in->w;
    L->out_numel = out->c * out->h * out->w;
    switch (gl->kind) {
    case NN_CONV: {
        BackendConvDesc d = {.cin = gl->cin, .cout = gl->cout, .k = gl->k, .stride = gl->stride, .pad = gl->pad,
                             .in_h = in->h, .in_w = in->w, .out_h = out->h, .out_w = out->w, .relu = gl->relu,
                             .residual = L->res >= 0, .max_batch = t->max_batch, .winograd = t->winograd};
        return t->ops->conv_create(&L->conv, &d, err);
    }
    case NN_MAXPOOL: {
        BackendPoolDesc d = {.c = in->c, .k = gl->k, .stride = gl->stride, .pad = gl->pad, .in_h = in->h,
                             .in_w = in->w, .out_h = out->h, .out_w = out->w, .max_batch = t->max_batch};
        return t->ops->maxpool_create(&L->pool, &d, err);
    }
    case NN_ADAPTIVE_AVGPOOL:
    case NN_GLOBAL_AVGPOOL: return 0;
    default: break;  // DenseNet's BatchNorm + ReLU, concatenation and average pool have no backward
    }
    return ct_errorf(err, "the trainable tail cannot train layer %s (no backward for its operation)", gl->name);
}

int tail_init(Tail *t, const BackendOps *ops, const NNGraph *g, size_t cut, const HeadSpec *head, size_t max_batch,
              size_t h, size_t w, ConvAlgo conv_algo, CtError *err) {
    memset(t, 0, sizeof *t);
    t->winograd = conv_algo != CONV_ALGO_DIRECT;
    t->ops = ops;
    t->cut = cut;
    t->input_grad = 1;
    t->max_batch = max_batch;
    if (max_batch == 0) return ct_errorf(err, "tail: batch size 0");
    if (g->n_layers == 0 || cut >= g->n_layers)
        return ct_errorf(err, "%s: cut at layer %zu of %zu", g->model, cut, g->n_layers);
    NNOpKind last = g->layers[g->n_layers - 1].kind;
    if (last != NN_ADAPTIVE_AVGPOOL && last != NN_GLOBAL_AVGPOOL)
        return ct_errorf(err, "%s: the graph must end in its average pool", g->model);
    NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
    if (graph_infer_shapes(g, h, w, shapes, err)) {
        free(shapes);
        return -1;
    }
    t->in_shape = cut == 0 ? (NNShape){g->in_channels, h, w} : shapes[cut - 1];
    t->in_numel = t->in_shape.c * t->in_shape.h * t->in_shape.w;
    t->n_layers = g->n_layers - cut;
    t->layers = ct_calloc(t->n_layers, sizeof *t->layers);
    t->act = ct_calloc(t->n_layers + 1, sizeof *t->act);
    t->dact = ct_calloc(t->n_layers + 1, sizeof *t->dact);
    t->fresh = ct_calloc(t->n_layers + 1, sizeof *t->fresh);
    int rc = 0;
    for (size_t j = 0; j < t->n_layers && rc == 0; j++) {
        const NNLayer *gl = &g->layers[cut + j];
        TailLayer *L = &t->layers[j];
        L->src = tensor_of(cut, gl->src);
        L->res = gl->residual == NN_NONE ? -1 : tensor_of(cut, gl->residual);
        if (L->src < 0 || (gl->residual != NN_NONE && L->res < 0)) {
            rc = ct_errorf(err, "%s: layer %s reads a frozen tensor other than the cut's; cut between stages",
                           g->model, gl->name);
            break;
        }
        const NNShape *in = L->src == 0 ? &t->in_shape : &shapes[cut + (size_t)L->src - 1];
        rc = plan_layer(t, L, gl, in, &shapes[cut + j], err);
        if (rc) ct_error_prefix(err, "tail layer %s", gl->name);
    }
    free(shapes);
    if (rc) {
        tail_free(t);
        return -1;
    }
    // The head reads the final pool's output, flattened.
    t->feat = t->layers[t->n_layers - 1].out_numel;
    t->head = *head;
    t->head.in_dim = t->feat;
    if (head_spec_check(&t->head, err)) {
        tail_free(t);
        return -1;
    }
    t->n_lin = t->head.n_hidden + 1;
    t->dim[0] = t->feat;
    for (size_t i = 0; i < t->head.n_hidden; i++) t->dim[i + 1] = t->head.hidden[i];
    t->dim[t->n_lin] = HEAD_CLASSES;
    size_t max_tensors = 2 * t->n_lin;
    for (size_t j = 0; j < t->n_layers; j++) max_tensors += 3;
    t->tensors = ct_calloc(max_tensors, sizeof *t->tensors);

    // Sizes first, then one allocation per block carved into pointers.
    Carver cp = {0}, cw = {0};
    layout_params(t, &cp);
    layout_work(t, &cw);
    if (cp.overflow || cw.overflow) {
        tail_free(t);
        return ct_errorf(err, "tail: memory size overflows");
    }
    t->param_bytes = cp.off * sizeof(float);
    t->work_bytes = cw.off * sizeof(float);
    t->param_block = ops->alloc(t->param_bytes);
    t->work_block = ops->alloc(t->work_bytes);
    if (!t->param_block || !t->work_block) {
        size_t p = t->param_bytes >> 20, wb = t->work_bytes >> 20;
        tail_free(t);
        return ct_errorf(err, "tail: out of memory for %zu MiB of parameters and %zu MiB of activations", p, wb);
    }
    t->logits_host = ct_calloc(max_batch * HEAD_CLASSES, sizeof *t->logits_host);
    cp = (Carver){.base = t->param_block};
    cw = (Carver){.base = t->work_block};
    layout_params(t, &cp);
    layout_work(t, &cw);
    return 0;
}

void tail_free(Tail *t) {
    if (t->layers)
        for (size_t j = 0; j < t->n_layers; j++) {
            if (t->layers[j].conv) t->ops->conv_free(t->layers[j].conv);
            if (t->layers[j].pool) t->ops->maxpool_free(t->layers[j].pool);
        }
    if (t->param_block) t->ops->free(t->param_block);
    if (t->work_block) t->ops->free(t->work_block);
    free(t->layers);
    free(t->act);
    free(t->dact);
    free(t->fresh);
    free(t->tensors);
    free(t->logits_host);
    memset(t, 0, sizeof *t);
}

// ---- parameters ----

const TailTensor *tail_find_tensor(const Tail *t, const char *name) {
    for (size_t i = 0; i < t->n_tensors; i++)
        if (strcmp(t->tensors[i].name, name) == 0) return &t->tensors[i];
    return NULL;
}

// The graph layer behind tail layer j (its name and shape, not its weights).
static const NNLayer *graph_layer(const Tail *t, const NNGraph *g, size_t j) { return &g->layers[t->cut + j]; }

// Parameters are written through host staging buffers and the backend's
// upload: the parameter and work blocks are backend memory.

int tail_load_safetensors(Tail *t, const NNGraph *g, const char *path, CtError *err) {
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    const BackendOps *ops = t->ops;
    int rc = 0;
    float *w = NULL, *bias = NULL, *bn = NULL;
    for (size_t j = 0; j < t->n_layers && rc == 0; j++) {
        TailLayer *L = &t->layers[j];
        if (L->kind != NN_CONV) continue;
        size_t nw = L->cout * L->cin * L->k * L->k, fb = L->cout * sizeof(float);
        w = ct_realloc(w, nw * sizeof *w);
        bias = ct_realloc(bias, fb);
        bn = ct_realloc(bn, 4 * fb);
        rc = model_read_conv_raw(graph_layer(t, g, j), &st, w, bias, bn, err);
        if (rc) continue;
        ops->upload(L->w, w, nw * sizeof *w);
        if (!L->has_bn) {
            ops->upload(L->b, bias, fb);
            continue;
        }
        // The tail trains gamma and beta; a convolution bias before the
        // BatchNorm stays frozen (torchvision's ResNets have none), inside
        // the running mean.
        float *mean = bn + 2 * L->cout;
        for (size_t o = 0; o < L->cout; o++) mean[o] -= bias[o];
        ops->upload(L->gamma, bn, fb);
        ops->upload(L->b, bn + L->cout, fb);
        ops->upload(L->mean, mean, fb);
        ops->upload(L->var, bn + 3 * L->cout, fb);
    }
    for (size_t l = 0; l < t->n_lin && rc == 0; l++) {
        char name[48];
        snprintf(name, sizeof name, "head.%zu.weight", l);
        if (!st_find(&st, name)) continue;
        size_t ws[2] = {t->dim[l + 1], t->dim[l]}, bs[1] = {t->dim[l + 1]};
        w = ct_realloc(w, ws[0] * ws[1] * sizeof *w);
        bias = ct_realloc(bias, bs[0] * sizeof *bias);
        rc = st_read_f32(&st, name, ws, 2, w, err);
        snprintf(name, sizeof name, "head.%zu.bias", l);
        if (rc == 0) rc = st_read_f32(&st, name, bs, 1, bias, err);
        if (rc) break;
        ops->upload(t->hw[l], w, ws[0] * ws[1] * sizeof *w);
        ops->upload(t->hb[l], bias, bs[0] * sizeof *bias);
    }
    free(w);
    free(bias);
    free(bn);
    st_close(&st);
    if (rc == 0) rc = ops->check(err);
    if (rc) ct_error_prefix(err, "tail of %s", g->model);
    return rc;
}

void tail_init_random(Tail *t, const NNGraph *g, uint64_t seed) {
    const BackendOps *ops = t->ops;
    for (size_t j = 0; j < t->n_layers; j++) {
        TailLayer *L = &t->layers[j];
        if (L->kind != NN_CONV) continue;
        size_t nw = L->cout * L->cin * L->k * L->k, fb = L->cout * sizeof(float);
        float *w = ct_malloc_array(nw, sizeof *w), *bias = ct_malloc_array(L->cout, sizeof *bias);
        if (!L->has_bn) {
            model_init_conv_raw(g, t->cut + j, seed, w, bias, NULL);
            ops->upload(L->w, w, nw * sizeof *w);
            ops->upload(L->b, bias, fb);
            free(w);
            free(bias);
            continue;
        }
        // gamma, beta, running mean and variance; a bias the convolution may
        // draw is not trained (and is 0 for torchvision's ResNets).
        float *bn = ct_malloc_array(4 * L->cout, sizeof *bn);
        model_init_conv_raw(g, t->cut + j, seed, w, bias, bn);
        ops->upload(L->w, w, nw * sizeof *w);
        ops->upload(L->gamma, bn, fb);
        ops->upload(L->b, bn + L->cout, fb);
        ops->upload(L->mean, bn + 2 * L->cout, fb);
        ops->upload(L->var, bn + 3 * L->cout, fb);
        free(w);
        free(bias);
        free(bn);
    }
    tail_reset_head(t, seed);
}

void tail_reset_head(Tail *t, uint64_t seed) {
    size_t most = 0;
    for (size_t l = 0; l < t->n_lin; l++)
        if (t->dim[l + 1] * (t->dim[l] + 1) > most) most = t->dim[l + 1] * (t->dim[l] + 1);
    float *h = ct_malloc_array(most ? most : 1, sizeof *h);
    for (size_t l = 0; l < t->n_lin; l++) {
        // kaiming_uniform_(a=sqrt(5)) and the bias rule both give +-1/sqrt(fan_in),
        // from the head's own streams (head_reset_params draws the same).
        double bound = 1.0 / sqrt((double)t->dim[l]);
        RngStream rs;
        rng_stream_init(&rs, seed, RNG_INIT_HEAD, (uint32_t)l, 0, 0);
        size_t nw = t->dim[l + 1] * t->dim[l], nb = t->dim[l + 1];
        for (size_t i = 0; i < nw + nb; i++) h[i] = (float)((2.0 * rng_uniform(&rs) - 1.0) * bound);
        t->ops->upload(t->hw[l], h, nw * sizeof *h);
        t->ops->upload(t->hb[l], h + nw, nb * sizeof *h);
    }
    free(h);
}

void tail_zero_grads(Tail *t) { t->ops->zero(t->grads, t->n_params * sizeof(float)); }

void tail_adam_step(Tail *t, const AdamSpec *spec, double lr_tail, double lr_head) {
    t->adam_steps++;
    BackendAdamStep s = {.lr = lr_tail, .beta1 = spec->beta1, .beta2 = spec->beta2, .eps = spec->eps,
                         .weight_decay = spec->weight_decay, .adamw = spec->kind == OPT_ADAMW,
                         .step = t->adam_steps};
    size_t nt = t->n_tail_params, nh = t->n_params - nt;
    if (nt) t->ops->adam_step(&s, t->params, t->grads, t->m, t->v, nt);
    s.lr = lr_head;
    t->ops->adam_step(&s, t->params + nt, t->grads + nt, t->m + nt, t->v + nt, nh);
}

// ---- the host side ----

const float *tail_forward_host(Tail *t, const float *x_host, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration, CtError *err) {
    if (n == 0 || n > t->max_batch) {
        ct_errorf(err, "tail: batch of %zu rows (plan: 1 to %zu)", n, t->max_batch);
        return NULL;
    }
    t->ops->upload(t->xin, x_host, n * t->in_numel * sizeof(float));
    return tail_forward_rows(t, t->xin, n, row0, train, seed, iteration, err);
}

double tail_evaluate_rows(Tail *t, const uint8_t *labels, size_t n, size_t *correct, float *prob) {
    // The loss through the backend's own softmax cross-entropy (its gradient
    // lands in scratch), the probabilities from the logits read back.
    const float *logits = t->hact[t->n_lin];
    double loss = t->ops->softmax_xent(t->hdh[0], correct, logits, labels, n, n);
    t->ops->download(t->logits_host, logits, n * HEAD_CLASSES * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        float l0 = t->logits_host[2 * r], l1 = t->logits_host[2 * r + 1];
        float m = l0 > l1 ? l0 : l1;
        float e0 = expf(l0 - m), e1 = expf(l1 - m);
        prob[r] = e1 / (e0 + e1);
    }
    return loss;
}

// The parameter block's four arrays (params, grads, m, v) through host
// memory a chunk at a time.
#define TAIL_CHUNK ((size_t)1 << 20)

int tail_fit_standardize(Tail *t, const float *x_host, size_t n, CtError *err) {
    if (!t->std_mean) return 0;
    size_t D = t->feat;
    double *s = ct_calloc(D, sizeof *s), *s2 = ct_calloc(D, sizeof *s2);
    float *f = ct_malloc_array(t->max_batch * D, sizeof *f);
    // The plain final-pool output: identity statistics while it is read.
    float *mean = ct_calloc(D, sizeof *mean), *inv = ct_malloc_array(D, sizeof *inv);
    for (size_t i = 0; i < D; i++) inv[i] = 1.0f;
    t->ops->upload(t->std_mean, mean, D * sizeof(float));
    t->ops->upload(t->std_inv, inv, D * sizeof(float));
    int rc = 0;
    for (size_t r0 = 0; r0 < n && rc == 0; r0 += t->max_batch) {
        size_t m = n - r0 < t->max_batch ? n - r0 : t->max_batch;
        if (!tail_forward_host(t, x_host + r0 * t->in_numel, m, 0, 0, 0, 0, err)) {
            rc = -1;
            break;
        }
        t->ops->download(f, t->act[t->n_layers], m * D * sizeof(float));
        head_stats_add(s, s2, f, m, D);
    }
    if (rc == 0) {
        head_stats_finish(s, s2, n, D, mean, inv);
        t->ops->upload(t->std_mean, mean, D * sizeof(float));
        t->ops->upload(t->std_inv, inv, D * sizeof(float));
    }
    free(s);
    free(s2);
    free(f);
    free(mean);
    free(inv);
    return rc;
}

void tail_set_standardize(Tail *t, const float *mean, const float *inv_std) {
    if (!t->std_mean) fatal("tail_set_standardize: the head does not standardise");
    t->ops->upload(t->std_mean, mean, t->feat * sizeof(float));
    t->ops->upload(t->std_inv, inv_std, t->feat * sizeof(float));
}

int tail_params_finite(const Tail *t) {
    float *h = ct_malloc_array(TAIL_CHUNK, sizeof *h);
    int ok = 1;
    for (size_t i = 0; i < t->n_params && ok; i += TAIL_CHUNK) {
        size_t m = t->n_params - i < TAIL_CHUNK ? t->n_params - i : TAIL_CHUNK;
        t->ops->download(h, t->params + i, m * sizeof(float));
        for (size_t k = 0; k < m; k++)
            if (!isfinite(h[k])) {
                ok = 0;
                break;
            }
    }
    free(h);
    return ok;
}

void tail_put_host(const Tail *t, Buf *out, const float *src, size_t n) {
    if (t->ops->host_memory) {
        buf_put(out, src, n * sizeof *src);
        return;
    }
    float *h = ct_malloc_array(TAIL_CHUNK, sizeof *h);
    for (size_t i = 0; i < n; i += TAIL_CHUNK) {
        size_t m = n - i < TAIL_CHUNK ? n - i : TAIL_CHUNK;
        t->ops->download(h, src + i, m * sizeof(float));
        buf_put(out, h, m * sizeof(float));
    }
    free(h);
}

static void get_device(const Tail *t, Rd *r, float *dst, size_t n) {
    const void *p = rd_view(r, n * sizeof(float));
    if (p) t->ops->upload(dst, p, n * sizeof(float));
}

#define TAIL_STATE_MAGIC 0x4c494154u  // "TAIL"

void tail_state_save(const Tail *t, Buf *out) {
    buf_put_u64(out, TAIL_STATE_MAGIC);
    buf_put_u64(out, t->n_params);
    buf_put_u64(out, t->n_tail_params);
    buf_put_u64(out, t->adam_steps);
    tail_put_host(t, out, t->params, t->n_params);
    tail_put_host(t, out, t->m, t->n_params);
    tail_put_host(t, out, t->v, t->n_params);
}

int tail_state_load(Tail *t, Rd *r, CtError *err) {
    if (rd_u64(r) != TAIL_STATE_MAGIC) return ct_errorf(err, "checkpoint: no trainable-tail state");
    uint64_t n = rd_u64(r), nt = rd_u64(r);
    if (n != t->n_params || nt != t->n_tail_params)
        return ct_errorf(err, "checkpoint: %llu parameters (%llu in unfrozen stages), the tail has %zu (%zu)",
                         (unsigned long long)n, (unsigned long long)nt, t->n_params, t->n_tail_params);
    uint64_t steps = rd_u64(r);
    if (r->bad || r->n - r->off < 3 * n * sizeof(float)) return ct_errorf(err, "checkpoint: truncated tail state");
    t->adam_steps = steps;
    get_device(t, r, t->params, n);
    get_device(t, r, t->m, n);
    get_device(t, r, t->v, n);
    return 0;
}
