/*
 * head.c — forward, loss and backward of the classifier head.
 * Gradient conventions: parameter gradients accumulate (+=), activation
 * gradients overwrite.
 */
#include "train/head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_linear.h"
#include "backend/cpu/cpu_ops.h"
#include "nn/models.h"
#include "util/rng.h"

// The model's default head from the registry; an unknown model gets a
// linear classifier (config and the features command refuse unknown names).
void head_spec_default(HeadSpec *s, const char *model, size_t in_dim) {
    memset(s, 0, sizeof *s);
    s->in_dim = in_dim;
    const ModelInfo *m = model_find(model);
    if (!m) return;
    s->n_hidden = m->head_n_hidden;
    memcpy(s->hidden, m->head_hidden, m->head_n_hidden * sizeof s->hidden[0]);
    s->dropout = m->head_dropout;
}

int head_spec_check(const HeadSpec *s, CtError *err) {
    if (s->in_dim == 0) return ct_errorf(err, "head: input dimension is 0");
    if (s->n_hidden > HEAD_MAX_HIDDEN) return ct_errorf(err, "head.hidden: at most %d layers", HEAD_MAX_HIDDEN);
    for (size_t i = 0; i < s->n_hidden; i++)
        if (s->hidden[i] == 0 || s->hidden[i] > 65536)
            return ct_errorf(err, "head.hidden[%zu] = %zu must be from 1 to 65536", i, s->hidden[i]);
    if (!(s->dropout >= 0 && s->dropout < 1)) return ct_errorf(err, "head.dropout = %g must be in [0, 1)", s->dropout);
    return 0;
}

// ---- memory ----

typedef struct {
    size_t off;
} Carver;

// Reserves n floats (64-byte aligned) and returns the offset in floats.
static int carve(Carver *c, size_t n, size_t *off) {
    size_t aligned = (n + 15) & ~(size_t)15;
    if (aligned < n || c->off + aligned < c->off) return -1;
    *off = c->off;
    c->off += aligned;
    return 0;
}

int head_init(Head *h, const HeadSpec *spec, size_t max_batch, CtError *err) {
    memset(h, 0, sizeof *h);
    if (head_spec_check(spec, err)) return -1;
    if (max_batch == 0) return ct_errorf(err, "head: batch size 0");
    h->spec = *spec;
    h->max_batch = max_batch;
    h->n_lin = spec->n_hidden + 1;
    h->dim[0] = spec->in_dim;
    for (size_t i = 0; i < spec->n_hidden; i++) h->dim[i + 1] = spec->hidden[i];
    h->dim[h->n_lin] = HEAD_CLASSES;

    // Sizes first, then one allocation carved into pointers.
    Carver c = {0};
    size_t o_params = 0, o_grads = 0, o_mean = 0, o_std = 0, o_h[HEAD_MAX_HIDDEN + 2] = {0},
           o_mask[HEAD_MAX_HIDDEN + 1] = {0}, o_dh[2] = {0};
    size_t np = 0, widest = 0, t;
    for (size_t l = 0; l < h->n_lin; l++) {
        if (ct_mul_size(&t, h->dim[l + 1], h->dim[l]) || np + t + h->dim[l + 1] < np)
            return ct_errorf(err, "head: parameter count overflows");
        np += t + h->dim[l + 1];
    }
    for (size_t l = 0; l <= h->n_lin; l++) widest = h->dim[l] > widest ? h->dim[l] : widest;
    h->n_params = np;
    int bad = carve(&c, np, &o_params) || carve(&c, np, &o_grads);
    if (spec->standardize) bad |= carve(&c, spec->in_dim, &o_mean) || carve(&c, spec->in_dim, &o_std);
    for (size_t l = 0; l <= h->n_lin && !bad; l++) {
        bad |= ct_mul_size(&t, max_batch, h->dim[l]) || carve(&c, t, &o_h[l]);
        if (l > 0 && l < h->n_lin) bad |= carve(&c, t, &o_mask[l]);
    }
    bad |= ct_mul_size(&t, max_batch, widest) || carve(&c, t, &o_dh[0]) || carve(&c, t, &o_dh[1]);
    if (bad) return ct_errorf(err, "head: workspace size overflows");
    float *base = ct_try_aligned_alloc(c.off, sizeof(float));
    if (!base) return ct_errorf(err, "head: out of memory for %zu MiB", c.off * sizeof(float) >> 20);
    memset(base, 0, c.off * sizeof(float));
    h->block = base;
    h->params = base + o_params;
    h->grads = base + o_grads;
    if (spec->standardize) {
        h->mean = base + o_mean;
        h->inv_std = base + o_std;
        for (size_t i = 0; i < spec->in_dim; i++) h->inv_std[i] = 1.0f;
    }
    size_t off = 0;
    for (size_t l = 0; l < h->n_lin; l++) {
        size_t nw = h->dim[l + 1] * h->dim[l];
        h->w[l] = h->params + off;
        h->gw[l] = h->grads + off;
        off += nw;
        h->b[l] = h->params + off;
        h->gb[l] = h->grads + off;
        off += h->dim[l + 1];
    }
    for (size_t l = 0; l <= h->n_lin; l++) {
        h->h[l] = base + o_h[l];
        if (l > 0 && l < h->n_lin) h->mask[l] = base + o_mask[l];
    }
    h->dh[0] = base + o_dh[0];
    h->dh[1] = base + o_dh[1];
    return 0;
}

void head_free(Head *h) {
    ct_aligned_free(h->block);
    memset(h, 0, sizeof *h);
}

size_t head_bytes(const Head *h) {
    size_t widest = 0;
    for (size_t l = 0; l <= h->n_lin; l++) widest = h->dim[l] > widest ? h->dim[l] : widest;
    size_t acts = 0;
    for (size_t l = 0; l <= h->n_lin; l++) acts += h->dim[l] * (l > 0 && l < h->n_lin ? 2 : 1);
    return sizeof(float) * (2 * h->n_params + (h->mean ? 2 * h->spec.in_dim : 0) + h->max_batch * (acts + 2 * widest));
}

void head_reset_params(Head *h, uint64_t seed) {
    for (size_t l = 0; l < h->n_lin; l++) {
        // kaiming_uniform_(a=sqrt(5)) and the bias rule both give +-1/sqrt(fan_in).
        double bound = 1.0 / sqrt((double)h->dim[l]);
        RngStream rs;
        rng_stream_init(&rs, seed, RNG_INIT_HEAD, (uint32_t)l, 0, 0);
        size_t nw = h->dim[l + 1] * h->dim[l];
        for (size_t i = 0; i < nw; i++) h->w[l][i] = (float)((2.0 * rng_uniform(&rs) - 1.0) * bound);
        for (size_t i = 0; i < h->dim[l + 1]; i++) h->b[l][i] = (float)((2.0 * rng_uniform(&rs) - 1.0) * bound);
    }
    head_zero_grads(h);
}

void head_stats_add(double *s, double *s2, const float *x, size_t n, size_t D) {
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < D; i++) {
            double v = x[r * D + i];
            s[i] += v;
            s2[i] += v * v;
        }
}

void head_stats_finish(const double *s, const double *s2, size_t n, size_t D, float *mean, float *inv_std) {
    for (size_t i = 0; i < D; i++) {
        double m = n ? s[i] / (double)n : 0.0;
        double var = n ? s2[i] / (double)n - m * m : 0.0;
        mean[i] = (float)m;
        // A constant feature carries nothing: map it to 0 rather than divide by 0.
        inv_std[i] = var > 1e-12 ? (float)(1.0 / sqrt(var)) : 0.0f;
    }
}

void head_fit_standardize(Head *h, const float *x, size_t n) {
    if (!h->mean) return;
    size_t D = h->spec.in_dim;
    double *s = ct_calloc(D, sizeof *s), *s2 = ct_calloc(D, sizeof *s2);
    head_stats_add(s, s2, x, n, D);
    head_stats_finish(s, s2, n, D, h->mean, h->inv_std);
    free(s);
    free(s2);
}

void head_zero_grads(Head *h) { memset(h->grads, 0, h->n_params * sizeof(float)); }

// ---- dropout ----

float head_dropout_scale(uint64_t seed, uint64_t iteration, uint32_t layer, size_t index, double p) {
    uint32_t key[2] = {(uint32_t)seed ^ (RNG_DROPOUT * 0x85EBCA6Bu), (uint32_t)(seed >> 32) ^ (RNG_DROPOUT * 0xC2B2AE35u)};
    uint32_t ctr[4] = {(uint32_t)iteration, (uint32_t)(iteration >> 32), layer, (uint32_t)(index / 4)};
    uint32_t out[4];
    rng_philox4x32(out, ctr, key);
    float u = (float)(out[index % 4] >> 8) * (1.0f / 16777216.0f);
    return u < (float)p ? 0.0f : (float)(1.0 / (1.0 - p));
}

// Masks for rows [row0, row0 + rows) of a (batch, width) activation; element
// e of the whole batch takes word e % 4 of Philox block e / 4.
static void dropout_masks(float *mask, size_t rows, size_t width, size_t row0, uint64_t seed, uint64_t iteration,
                          uint32_t layer, double p) {
    rng_dropout_masks(mask, rows, width, row0, seed, iteration, layer, p);
}

// ---- forward / backward ----

const float *head_forward(Head *h, const float *x, size_t n, int train, uint64_t seed, uint64_t iteration) {
    return head_forward_rows(h, x, n, 0, train, seed, iteration);
}

const float *head_forward_rows(Head *h, const float *x, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration) {
    size_t D = h->spec.in_dim;
    // h[0] holds the (standardised) input that backward reads.
    if (h->mean) {
        float *z = h->h[0];
        for (size_t r = 0; r < n; r++)
            for (size_t i = 0; i < D; i++) z[r * D + i] = (x[r * D + i] - h->mean[i]) * h->inv_std[i];
    } else {
        memcpy(h->h[0], x, n * D * sizeof(float));
    }
    for (size_t l = 0; l < h->n_lin; l++) {
        size_t I = h->dim[l], O = h->dim[l + 1];
        float *y = h->h[l + 1];
        cpu_linear_forward(y, h->h[l], h->w[l], h->b[l], n, I, O);
        if (l + 1 == h->n_lin) break;
        size_t m = n * O;
        for (size_t i = 0; i < m; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
        if (train && h->spec.dropout > 0) {
            dropout_masks(h->mask[l + 1], n, O, row0, seed, iteration, (uint32_t)(l + 1), h->spec.dropout);
            for (size_t i = 0; i < m; i++) y[i] *= h->mask[l + 1][i];
        } else {
            for (size_t i = 0; i < m; i++) h->mask[l + 1][i] = 1.0f;
        }
    }
    return h->h[h->n_lin];
}

double head_loss_backward(Head *h, const uint8_t *labels, size_t n, size_t *correct, int backward) {
    return head_loss_backward_shard(h, labels, n, n, correct, backward) / (double)n;
}

double head_loss_backward_shard(Head *h, const uint8_t *labels, size_t n, size_t batch_rows, size_t *correct,
                                int backward) {
    const float *logits = h->h[h->n_lin];
    float *d = h->dh[0];
    double loss = cpu_softmax_xent(d, correct, logits, labels, n, batch_rows);
    if (backward) {
        int cur = 0;
        for (size_t l = h->n_lin; l-- > 0;) {
            size_t I = h->dim[l], O = h->dim[l + 1];
            float *dy = h->dh[cur];
            cpu_linear_backward_params(h->gw[l], h->gb[l], dy, h->h[l], n, I, O);
            if (l == 0) break;  // the backbone is frozen: no gradient for the input
            float *dx = h->dh[1 - cur];
            cpu_linear_backward_input(dx, dy, h->w[l], n, I, O);
            // Through dropout and ReLU: h = relu(z) * mask, so dz = dh * mask where h > 0.
            const float *act = h->h[l], *mask = h->mask[l];
            size_t m = n * I;
            for (size_t i = 0; i < m; i++) dx[i] = act[i] > 0.0f ? dx[i] * mask[i] : 0.0f;
            cur = 1 - cur;
        }
    }
    return loss;
}

void head_probs(const Head *h, size_t n, float *p) {
    const float *logits = h->h[h->n_lin];
    for (size_t r = 0; r < n; r++) {
        float l0 = logits[2 * r], l1 = logits[2 * r + 1];
        float m = l0 > l1 ? l0 : l1;
        float e0 = expf(l0 - m), e1 = expf(l1 - m);
        p[r] = e1 / (e0 + e1);
    }
}
