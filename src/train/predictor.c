/*
 * predictor.c — the evaluation path of the sweep (feature_cache.c's
 * backbone pass, trainer.c's evaluate and evaluate_tail) for the images of
 * `ctsweep predict`.
 */
#include "train/predictor.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"

int predictor_prefix_create(BackendNet **net, const char *path, const ModelFile *mf, size_t cut,
                            const BackendOptions *opt, size_t max_batch, CtError *err) {
    NNGraph g;
    if (model_create(&g, mf->model, path, 0, err)) return -1;
    if (cut + 1 < g.n_layers && model_prefix(&g, cut, mf->image_size, mf->image_size, err)) {
        graph_free(&g);
        return ct_error_prefix(err, "%s: %s frozen prefix", path, mf->model);
    }
    size_t batch = max_batch;
    if (opt->kind == BACKEND_CPU && batch < (size_t)omp_get_max_threads()) batch = (size_t)omp_get_max_threads();
    int rc = backend_net_create(net, &g, batch, mf->image_size, mf->image_size, opt, err);
    graph_free(&g);
    if (rc) return ct_error_prefix(err, "%s: %s backbone", path, mf->model);
    return 0;
}

// The trainable tail of a model trained with unfrozen stages: its layers,
// head and standardisation from the file, in eval mode.
static int tail_create(Predictor *p, const char *path, const NNGraph *g, size_t cut, const BackendOptions *opt,
                       CtError *err) {
    const BackendOps *ops = backend_ops_get(opt->kind, err);
    if (!ops) return -1;
    p->tail = ct_calloc(1, sizeof *p->tail);
    size_t S = p->mf.image_size;
    if (tail_init(p->tail, ops, g, cut, &p->mf.head, p->eval_rows, S, S, p->mf.conv_algo, err)) {
        free(p->tail);
        p->tail = NULL;
        return ct_error_prefix(err, "%s", path);
    }
    p->tail->input_grad = 0;
    if (tail_load_safetensors(p->tail, g, path, err)) return -1;
    return model_file_load_tail_standardize(&p->mf, path, p->tail, err);
}

int predictor_init(Predictor *p, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                   size_t eval_rows, CtError *err) {
    memset(p, 0, sizeof *p);
    p->mf = *mf;
    p->max_batch = max_batch;
    p->eval_rows = eval_rows;
    NNGraph g;
    if (model_build(&g, mf->model, err)) return -1;
    size_t cut = 0;
    int rc = model_cut_layer(&g, mf->unfreeze, &cut, err);
    if (rc == 0) rc = predictor_prefix_create(&p->net, path, mf, cut, opt, max_batch, err);
    if (rc == 0) {
        p->dim = backend_net_output_numel(p->net);
        p->feat = ct_try_aligned_alloc(max_batch * p->dim, sizeof *p->feat);
        p->rows = ct_try_aligned_alloc(eval_rows * p->dim, sizeof *p->rows);
        p->labels = ct_calloc(eval_rows, 1);
        if (!p->feat || !p->rows) rc = ct_errorf(err, "out of memory for %zu and %zu images' features", max_batch, eval_rows);
    }
    if (rc == 0 && mf->unfreeze > 0) {
        rc = tail_create(p, path, &g, cut, opt, err);
    } else if (rc == 0) {
        // The head evaluates on host memory whatever the backend, as the sweep's does.
        if (p->dim != mf->head.in_dim)
            rc = ct_errorf(err, "%s: the backbone gives %zu values per image, the head reads %zu", path, p->dim,
                           mf->head.in_dim);
        if (rc == 0) rc = head_init(&p->head, &mf->head, eval_rows, err);
        if (rc == 0) {
            SafeTensors st;
            rc = st_open(&st, path, err);
            if (rc == 0) {
                rc = model_file_load_head(mf, &st, &p->head, err);
                st_close(&st);
            }
        }
    }
    graph_free(&g);
    if (rc) predictor_free(p);
    return rc;
}

void predictor_free(Predictor *p) {
    backend_net_free(p->net);
    ct_aligned_free(p->feat);
    ct_aligned_free(p->rows);
    free(p->labels);
    head_free(&p->head);
    if (p->tail) {
        tail_free(p->tail);
        free(p->tail);
    }
    memset(p, 0, sizeof *p);
}

// The pending rows through the head or the tail, as trainer.c's evaluate
// and evaluate_tail run a group of rows.
static int evaluate(Predictor *p, float *prob, CtError *err) {
    size_t n = p->pending;
    if (n == 0) return 0;
    float *out = prob + p->done;
    if (!p->tail) {
        head_forward(&p->head, p->rows, n, 0, 0, 0);
        head_probs(&p->head, n, out);
    } else {
        if (!tail_forward_host(p->tail, p->rows, n, 0, 0, 0, 0, err)) return -1;
        size_t correct;
        tail_evaluate_rows(p->tail, p->labels, n, &correct, out);
        if (p->tail->ops->check(err)) return -1;
    }
    p->done += n;
    p->pending = 0;
    return 0;
}

int predictor_add(Predictor *p, const float *x, size_t n, float *prob, CtError *err) {
    if (n == 0) return 0;
    if (n > p->max_batch) fatal("predictor_add: %zu images, planned for %zu", n, p->max_batch);
    if (backend_net_forward(p->net, x, n, p->feat, err)) return -1;
    feature_store_round(p->feat, n * p->dim, p->mf.store);
    for (size_t i = 0; i < n; i++) {
        memcpy(p->rows + p->pending * p->dim, p->feat + i * p->dim, p->dim * sizeof(float));
        if (++p->pending == p->eval_rows && evaluate(p, prob, err)) return -1;
    }
    return 0;
}

int predictor_finish(Predictor *p, float *prob, CtError *err) { return evaluate(p, prob, err); }
