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
    if (tail_init(p->tail, ops, g, cut, &p->mf.head, p->max_batch, S, S, err)) {
        free(p->tail);
        p->tail = NULL;
        return ct_error_prefix(err, "%s", path);
    }
    p->tail->input_grad = 0;
    if (tail_load_safetensors(p->tail, g, path, err)) return -1;
    if (!p->mf.head.standardize) return 0;
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    float *mean = ct_malloc_array(p->tail->feat, sizeof *mean), *inv = ct_malloc_array(p->tail->feat, sizeof *inv);
    int rc = model_file_read_standardize(&p->mf, &st, mean, inv, err);
    if (rc == 0) tail_set_standardize(p->tail, mean, inv);
    free(mean);
    free(inv);
    st_close(&st);
    return rc;
}

int predictor_init(Predictor *p, const char *path, const ModelFile *mf, const BackendOptions *opt, size_t max_batch,
                   CtError *err) {
    memset(p, 0, sizeof *p);
    p->mf = *mf;
    p->max_batch = max_batch;
    NNGraph g;
    if (model_build(&g, mf->model, err)) return -1;
    size_t cut = 0;
    int rc = model_cut_layer(&g, mf->unfreeze, &cut, err);
    if (rc == 0) rc = predictor_prefix_create(&p->net, path, mf, cut, opt, max_batch, err);
    if (rc == 0) {
        p->dim = backend_net_output_numel(p->net);
        p->feat = ct_try_aligned_alloc(max_batch * p->dim, sizeof *p->feat);
        p->labels = ct_calloc(max_batch, 1);
        if (!p->feat) rc = ct_errorf(err, "out of memory for a batch of %zu images' features", max_batch);
    }
    if (rc == 0 && mf->unfreeze > 0) {
        rc = tail_create(p, path, &g, cut, opt, err);
    } else if (rc == 0) {
        // The head evaluates on host memory whatever the backend, as the sweep's does.
        if (p->dim != mf->head.in_dim)
            rc = ct_errorf(err, "%s: the backbone gives %zu values per image, the head reads %zu", path, p->dim,
                           mf->head.in_dim);
        if (rc == 0) rc = head_init(&p->head, &mf->head, max_batch, err);
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
    free(p->labels);
    head_free(&p->head);
    if (p->tail) {
        tail_free(p->tail);
        free(p->tail);
    }
    memset(p, 0, sizeof *p);
}

int predictor_run(Predictor *p, const float *x, size_t n, float *prob, CtError *err) {
    if (n == 0) return 0;
    if (n > p->max_batch) fatal("predictor_run: %zu images, planned for %zu", n, p->max_batch);
    if (backend_net_forward(p->net, x, n, p->feat, err)) return -1;
    feature_store_round(p->feat, n * p->dim, p->mf.store);
    if (!p->tail) {
        head_forward(&p->head, p->feat, n, 0, 0, 0);
        head_probs(&p->head, n, prob);
        return 0;
    }
    if (!tail_forward_host(p->tail, p->feat, n, 0, 0, 0, 0, err)) return -1;
    size_t correct;
    tail_evaluate_rows(p->tail, p->labels, n, &correct, prob);
    return p->tail->ops->check(err);
}
