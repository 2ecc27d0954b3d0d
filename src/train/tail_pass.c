/*
 * tail_pass.c — forward and backward passes of the trainable tail through
 * the backend's operation table, BatchNorm folding before the forward and
 * unfolding of its gradients after the backward (the table's bn ops), and
 * the table's error check at the end of each pass.
 *
 * A tensor read by two layers (a ResNet block's input feeds its first
 * convolution and its shortcut) gets the sum of both gradients: the first
 * contribution in reverse layer order is written in place, later ones go
 * through a scratch buffer and an add, always in the same order.
 */
#include "nn/models.h"
#include "train/tail.h"
#include "train/tail_layer.h"

// ---- BatchNorm ----

// The weights the backend runs: the BatchNorm folded into the convolution
// (its weights and statistics live in backend memory, so the backend folds).
static void fold_bn(const Tail *t, TailLayer *L) {
    t->ops->bn_fold(L->wf, L->bf, L->w, L->gamma, L->b, L->mean, L->var, L->cout, L->cin * L->k * L->k,
                    MODEL_BN_EPS);
}

// From the gradients of the folded weights (gwf, gbf) to those of w, gamma
// and beta.
static void unfold_bn_grads(const Tail *t, TailLayer *L, const float *gwf, const float *gbf) {
    t->ops->bn_unfold_grads(L->gw, L->ggamma, L->gb, gwf, gbf, L->w, L->gamma, L->mean, L->var, L->cout,
                            L->cin * L->k * L->k, MODEL_BN_EPS);
}

// ---- forward ----

static int layer_forward(Tail *t, TailLayer *L, size_t j, size_t n, CtError *err) {
    const BackendOps *ops = t->ops;
    const float *x = t->act[L->src];
    float *y = t->act[j + 1];
    switch (L->kind) {
    case NN_CONV:
        if (L->has_bn) fold_bn(t, L);
        return ops->conv_forward(L->conv, y, x, L->has_bn ? L->wf : L->w, L->has_bn ? L->bf : L->b,
                                 L->res >= 0 ? t->act[L->res] : NULL, n, err);
    case NN_MAXPOOL: return ops->maxpool_forward(L->pool, y, x, n, err);
    case NN_ADAPTIVE_AVGPOOL:
        ops->adaptive_avgpool_forward(y, x, n, L->in.c, L->in.h, L->in.w, L->out.h, L->out.w);
        return 0;
    case NN_GLOBAL_AVGPOOL: ops->global_avgpool_forward(y, x, n, L->in.c, L->in.h, L->in.w); return 0;
    default: break;  // tail_init refuses the others
    }
    return ct_errorf(err, "tail layer %s: unknown kind", L->name);
}

const float *tail_forward(Tail *t, const float *x, size_t n, int train, uint64_t seed, uint64_t iteration,
                          CtError *err) {
    return tail_forward_rows(t, x, n, 0, train, seed, iteration, err);
}

const float *tail_forward_rows(Tail *t, const float *x, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration, CtError *err) {
    const BackendOps *ops = t->ops;
    if (n == 0 || n > t->max_batch) {
        ct_errorf(err, "tail: batch of %zu rows (plan: 1 to %zu)", n, t->max_batch);
        return NULL;
    }
    t->act[0] = (float *)x;  // read only; kept for the weight gradients of the first layer
    for (size_t j = 0; j < t->n_layers; j++)
        if (layer_forward(t, &t->layers[j], j, n, err)) {
            ct_error_prefix(err, "tail layer %s", t->layers[j].name);
            return NULL;
        }
    if (t->hstd)
        ops->standardize_forward(t->hstd, t->act[t->n_layers], t->std_mean, t->std_inv, n, t->feat);
    t->dropout_on = train && t->head.dropout > 0;
    for (size_t l = 0; l < t->n_lin; l++) {
        size_t I = t->dim[l], O = t->dim[l + 1];
        float *y = t->hact[l + 1];
        ops->linear_forward(y, t->hact[l], t->hw[l], t->hb[l], n, I, O);
        if (l + 1 == t->n_lin) break;
        ops->relu_forward(y, y, n * O);
        if (t->dropout_on)
            ops->dropout_forward(y, t->hmask[l + 1], y, n, O, row0, seed, iteration, (uint32_t)(l + 1), t->head.dropout);
    }
    t->n_rows = n;
    if (ops->check(err)) return NULL;
    return t->hact[t->n_lin];
}

// ---- backward ----

// Where the gradient of tensor `ti` goes: its own buffer when nothing was
// written there yet in this pass, else the scratch buffer (then add_pending).
static float *grad_slot(Tail *t, int ti) { return t->fresh[ti] ? t->dact[ti] : t->tmp; }

static void grad_done(Tail *t, int ti, size_t count) {
    if (t->fresh[ti]) t->fresh[ti] = 0;
    else t->ops->add(t->dact[ti], t->dact[ti], t->tmp, count);
}

// params: parameter gradients too (0: the data gradients alone, for
// gradients with respect to activations).
static int layer_backward(Tail *t, TailLayer *L, size_t j, size_t n, int params, CtError *err) {
    const BackendOps *ops = t->ops;
    float *dy = t->dact[j + 1];
    const float *x = t->act[L->src];
    size_t nin = n * L->in_numel, nout = n * L->out_numel;
    int rc = 0, data = L->src != 0 || t->input_grad;  // the cut input's gradient only when asked for
    switch (L->kind) {
    case NN_CONV:
        if (L->relu) ops->relu_backward(dy, dy, t->act[j + 1], nout);  // dy is now the pre-ReLU gradient
        if (L->res >= 0) {
            if (t->fresh[L->res]) ops->copy(t->dact[L->res], dy, nout * sizeof(float));
            else ops->add(t->dact[L->res], t->dact[L->res], dy, nout);
            t->fresh[L->res] = 0;
        }
        if (params && L->has_bn) {
            ops->zero(t->gwf, L->cout * L->cin * L->k * L->k * sizeof(float));
            ops->zero(t->gbf, L->cout * sizeof(float));
            rc = ops->conv_backward_weights(L->conv, t->gwf, t->gbf, dy, x, n, err);
            if (rc == 0) unfold_bn_grads(t, L, t->gwf, t->gbf);
        } else if (params) {
            rc = ops->conv_backward_weights(L->conv, L->gw, L->gb, dy, x, n, err);
        }
        if (rc == 0 && data)
            rc = ops->conv_backward_data(L->conv, grad_slot(t, L->src), dy, L->has_bn ? L->wf : L->w, n, err);
        break;
    case NN_MAXPOOL:
        if (data) rc = ops->maxpool_backward(L->pool, grad_slot(t, L->src), dy, n, err);
        break;
    case NN_ADAPTIVE_AVGPOOL:
        if (data)
            ops->adaptive_avgpool_backward(grad_slot(t, L->src), dy, n, L->in.c, L->in.h, L->in.w, L->out.h,
                                           L->out.w);
        break;
    case NN_GLOBAL_AVGPOOL:
        if (data) ops->global_avgpool_backward(grad_slot(t, L->src), dy, n, L->in.c, L->in.h, L->in.w);
        break;
    default: return ct_errorf(err, "tail layer %s: unknown kind", L->name);  // tail_init refuses these
    }
    if (!data) return 0;
    if (rc) {
        ct_error_prefix(err, "tail layer %s backward", L->name);
        return -1;
    }
    grad_done(t, L->src, nin);
    return 0;
}

// The head's backward from the logits' gradient in t->hdh[0] (eval or
// training forward): parameter gradients when params; the gradient of the
// final pool's output into t->dact[t->n_layers] when upstream.
static void head_backward(Tail *t, size_t n, int params, int upstream) {
    const BackendOps *ops = t->ops;
    int cur = 0;
    for (size_t l = t->n_lin; l-- > 0;) {
        size_t I = t->dim[l], O = t->dim[l + 1];
        float *dy = t->hdh[cur];
        if (params) ops->linear_backward_params(t->hgw[l], t->hgb[l], dy, t->hact[l], n, I, O);
        if (l == 0 && !upstream) break;  // the head alone, nothing upstream
        float *dx = l == 0 ? t->dact[t->n_layers] : t->hdh[1 - cur];
        ops->linear_backward_input(dx, dy, t->hw[l], n, I, O);
        if (l == 0) {
            if (t->hstd) ops->standardize_backward(dx, dx, t->std_inv, n, t->feat);
            break;
        }
        // h = relu(z) * mask: dz = dh * mask where h > 0.
        ops->relu_backward(dx, dx, t->hact[l], n * I);
        if (t->dropout_on) ops->dropout_backward(dx, dx, t->hmask[l], n * I);
        cur = 1 - cur;
    }
}

double tail_backward(Tail *t, const uint8_t *labels, size_t batch_rows, size_t *correct, CtError *err) {
    const BackendOps *ops = t->ops;
    size_t n = t->n_rows;
    double loss = ops->softmax_xent(t->hdh[0], correct, t->hact[t->n_lin], labels, n, batch_rows);
    int upstream = t->n_tail_params > 0 || t->input_grad;
    head_backward(t, n, 1, upstream);
    if (!upstream) return ops->check(err) ? -1.0 : loss;
    for (size_t i = 0; i < t->n_layers; i++) t->fresh[i] = 1;
    t->fresh[t->n_layers] = 0;
    for (size_t j = t->n_layers; j-- > 0;)
        if (layer_backward(t, &t->layers[j], j, n, 1, err)) return -1.0;
    if (t->input_grad && t->fresh[0]) fatal("tail: nothing read the cut input");
    return ops->check(err) ? -1.0 : loss;
}

int tail_backward_logit(Tail *t, size_t cls, size_t stop, CtError *err) {
    const BackendOps *ops = t->ops;
    size_t n = t->n_rows;
    if (cls >= HEAD_CLASSES || stop >= t->n_layers) fatal("tail_backward_logit: class %zu, layer %zu", cls, stop);
    if (t->dropout_on) return ct_errorf(err, "tail: a gradient of a logit needs an eval forward");
    // d (sum of rows' logit cls) / d logits: one-hot rows, staged in the
    // host buffer the logits are read back through.
    float *onehot = t->logits_host;
    for (size_t r = 0; r < n * HEAD_CLASSES; r++) onehot[r] = r % HEAD_CLASSES == cls ? 1.0f : 0.0f;
    ops->upload(t->hdh[0], onehot, n * HEAD_CLASSES * sizeof *onehot);
    head_backward(t, n, 0, 1);
    for (size_t i = 0; i < t->n_layers; i++) t->fresh[i] = 1;
    t->fresh[t->n_layers] = 0;
    for (size_t j = t->n_layers; j-- > stop + 1;)
        if (layer_backward(t, &t->layers[j], j, n, 0, err)) return -1;
    if (t->fresh[stop + 1]) fatal("tail: no gradient reached layer %s", t->layers[stop].name);
    return ops->check(err);
}
