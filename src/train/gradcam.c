/*
 * gradcam.c — Grad-CAM of gradcam.h on the trainable tail's forward and
 * backward.
 */
#include "train/gradcam.h"

#include <stdlib.h>
#include <string.h>

#include "nn/models.h"
#include "train/predictor.h"
#include "train/tail_layer.h"

// The graph layer of the target: the last convolution, with a ReLU, after
// which only pools follow; -1 with err when the model has none such.
static int find_target(const NNGraph *g, size_t *layer, CtError *err) {
    size_t i = g->n_layers;
    while (i-- > 0) {
        NNOpKind k = g->layers[i].kind;
        if (k == NN_CONV) break;
        if (k != NN_MAXPOOL && k != NN_ADAPTIVE_AVGPOOL && k != NN_GLOBAL_AVGPOOL) {
            return ct_errorf(err, "%s: Grad-CAM needs a backbone that ends in a convolution + ReLU and pools "
                                  "(its layer %s is not one; DenseNet's final BatchNorm + ReLU has no backward here)",
                             g->model, g->layers[i].name);
        }
    }
    if (i >= g->n_layers || !g->layers[i].relu)
        return ct_errorf(err, "%s: Grad-CAM found no convolution + ReLU to take as its target", g->model);
    *layer = i;
    return 0;
}

int gradcam_init(GradCam *gc, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                 int own_prefix, CtError *err) {
    memset(gc, 0, sizeof *gc);
    gc->max_batch = max_batch;
    const BackendOps *ops = backend_ops_get(opt->kind, err);
    if (!ops) return -1;
    NNGraph g;
    if (model_build(&g, mf->model, err)) return -1;
    size_t cut = 0, target = 0;
    int rc = find_target(&g, &target, err);
    if (rc) ct_error_prefix(err, "%s", path);
    if (rc == 0) rc = model_cut_layer(&g, 1, &cut, err);
    if (rc == 0 && target < cut) rc = ct_errorf(err, "%s: the Grad-CAM target lies before the last stage", mf->model);
    size_t S = mf->image_size;
    if (rc == 0) {
        rc = tail_init(&gc->tail, ops, &g, cut, &mf->head, max_batch, S, S, mf->conv_algo, err);
        gc->tail_ok = rc == 0;
        if (rc) ct_error_prefix(err, "%s: Grad-CAM", path);
    }
    if (rc == 0) {
        gc->tail.input_grad = 0;
        gc->target = target - cut;
        const TailLayer *L = &gc->tail.layers[gc->target];
        gc->c = L->out.c, gc->h = L->out.h, gc->w = L->out.w;
        gc->in_numel = gc->tail.in_numel;
        rc = tail_load_safetensors(&gc->tail, &g, path, err);
    }
    if (rc == 0) rc = model_file_load_tail_standardize(mf, path, &gc->tail, err);
    if (rc == 0 && own_prefix) rc = predictor_prefix_create(&gc->net, path, mf, cut, opt, max_batch, err);
    if (rc == 0) {
        size_t per = gc->c * gc->h * gc->w;
        if (own_prefix) gc->xcut = ct_try_aligned_alloc(max_batch * gc->in_numel, sizeof(float));
        gc->act = ct_try_aligned_alloc(max_batch * per, sizeof(float));
        gc->grad = ct_try_aligned_alloc(max_batch * per, sizeof(float));
        if ((own_prefix && !gc->xcut) || !gc->act || !gc->grad) rc = ct_errorf(err, "out of memory for Grad-CAM's batch");
    }
    graph_free(&g);
    if (rc) gradcam_free(gc);
    return rc;
}

void gradcam_free(GradCam *gc) {
    backend_net_free(gc->net);
    if (gc->tail_ok) tail_free(&gc->tail);
    ct_aligned_free(gc->xcut);
    ct_aligned_free(gc->act);
    ct_aligned_free(gc->grad);
    memset(gc, 0, sizeof *gc);
}

int gradcam_run(GradCam *gc, const float *x, size_t n, float *cam, CtError *err) {
    if (n == 0) return 0;
    if (!gc->net || n > gc->max_batch) fatal("gradcam_run: %zu images, planned for %zu", n, gc->max_batch);
    if (backend_net_forward(gc->net, x, n, gc->xcut, err)) return -1;
    return gradcam_run_cut(gc, gc->xcut, n, gc->in_numel, cam, err);
}

int gradcam_run_cut(GradCam *gc, const float *xcut, size_t n, size_t dim, float *cam, CtError *err) {
    if (n == 0) return 0;
    if (n > gc->max_batch || dim != gc->in_numel)
        fatal("gradcam_run_cut: %zu rows of %zu, planned for %zu of %zu", n, dim, gc->max_batch, gc->in_numel);
    Tail *t = &gc->tail;
    if (!tail_forward_host(t, xcut, n, 0, 0, 0, 0, err)) return ct_error_prefix(err, "Grad-CAM forward");
    if (tail_backward_logit(t, 1, gc->target, err)) return ct_error_prefix(err, "Grad-CAM backward");
    const size_t C = gc->c, HW = gc->h * gc->w, per = C * HW;
    t->ops->download(gc->act, t->act[gc->target + 1], n * per * sizeof(float));
    t->ops->download(gc->grad, t->dact[gc->target + 1], n * per * sizeof(float));
    // alpha_k = mean over pixels of the gradient; CAM = ReLU(sum_k alpha_k A_k),
    // both sums in double.
    double *acc = ct_malloc_array(HW, sizeof *acc);
    for (size_t i = 0; i < n; i++) {
        const float *A = gc->act + i * per, *dA = gc->grad + i * per;
        memset(acc, 0, HW * sizeof *acc);
        for (size_t k = 0; k < C; k++) {
            double a = 0;
            for (size_t p = 0; p < HW; p++) a += dA[k * HW + p];
            a /= (double)HW;
            for (size_t p = 0; p < HW; p++) acc[p] += a * A[k * HW + p];
        }
        for (size_t p = 0; p < HW; p++) cam[i * HW + p] = acc[p] > 0 ? (float)acc[p] : 0.0f;
    }
    free(acc);
    return 0;
}
