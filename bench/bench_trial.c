/*
 * bench_trial.c — one whole trial on COVID-CT's official split, timed end
 * to end, the number bench/trial sets beside PyTorch's naive loop
 * (bench/torch_trial.py): index and fingerprint, image cache, backbone
 * features through the feature cache (val and test once, training once per
 * augmentation view), head training with Adam and a triangular CLR stepped
 * per iteration, val and test evaluation each epoch.
 *
 * The backbone is seeded random (no pretrained weights here); the head is
 * the model's default with standardisation on (random-backbone features
 * need it to learn, see DESIGN.md). With augmentation on, aug_views equals
 * the epoch count, so every epoch trains on a fresh view as the naive loop
 * does and the cache saves only the val/test forwards and the decodes.
 *
 * --unfreeze N (default 0, the head alone): fine-tuning as `grid.unfreeze`
 * runs it in a sweep: the backbone is cut before its last N stages, the
 * frozen prefix's activations at the cut are cached once per image and
 * view, and the last N stages train with the head from the cache (Adam at
 * --backbone-lr-scale times the schedule's LR for them, BatchNorm frozen).
 * The "features" timed apart are then those activations.
 *
 * usage: bench_trial MODEL [--size 224] [--epochs 3] [--batch 32] [--aug on|off]
 *            [--threads 2] [--root ../shared/data/covid-ct] [--feature-batch 32]
 *            [--unfreeze 0] [--backbone-lr-scale 0.1]
 *        bench_trial MODEL --head-only [--batch 32] [--iters 50] [--threads 2]
 *        bench_trial MODEL --tail-only [--size 224] [--unfreeze 1] [--batch 32] [--iters 50] [--threads 2]
 * --conv-algo auto|direct|winograd (default auto, as train.conv_algo) in
 * every mode: the prefix's convolutions and the tail's (Winograd there for
 * its 3x3 stride-1 layers on AVX2 CPUs unless direct).
 * MODEL: vgg16, vgg19 or resnet34. Prints key=value pairs on one line
 * (epoch_seconds, the trainer's train + val seconds of each epoch, and
 * epoch_wall_seconds, comma-separated); progress goes to stderr.
 *
 * epoch_wall_seconds: wall time from one epoch's report to the next, so it
 * holds everything an epoch costs, the test evaluation included, as
 * PyTorch's side times its epochs; the first runs from the first feature
 * request (after the image cache) and so also holds the backbone or prefix
 * pass over every image and the standardisation statistics.
 * cache_bytes_per_image: one cached row (features or the activations at the
 * cut, fp32), cache_mib that times every image; feature_mib: what the
 * feature cache holds at the end (fcache_used_bytes).
 *
 * --head-only: forward + backward + Adam of the model's default head (no
 * standardisation, as PyTorch's side) on random features of the model's
 * feature size (VGG 25088, ResNet 512), rows cycling through 425 of them,
 * after 3 warm-up iterations; samples/s.
 * --tail-only: forward + backward + Adam of the last --unfreeze stages (default
 * 1) and the head on random post-ReLU activations at the cut (rows cycling
 * through 425, the training split's size), after 2 warm-up iterations:
 * what a fine-tuning epoch spends per training batch once the prefix is
 * cached; images/s and the CPU seconds of the timed iterations.
 */
#include <omp.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <math.h>

#include "backend/backend_ops.h"
#include "nn/models.h"
#include "train/tail.h"
#include "train/trial.h"
#include "util/rng.h"

typedef struct {
    double epoch_s[1024];
    double epoch_wall[1024];  // see the top
    double t_last;            // when the previous epoch was reported (or the features were first asked for)
    size_t n_epochs;
    double val_acc, test_acc;
    const TrialInputs *in;
} Log;

static int on_epoch(void *ctx, const EpochRecord *r, const double *lr, size_t n_iters, const float *vp, const float *tp,
                    CtError *err) {
    (void)tp;
    Log *log = ctx;
    (void)lr, (void)n_iters, (void)vp, (void)err;
    double now = ct_now();
    if (log->n_epochs < sizeof log->epoch_s / sizeof log->epoch_s[0]) {
        log->epoch_wall[log->n_epochs] = now - log->t_last;
        log->epoch_s[log->n_epochs++] = r->seconds;
    }
    log->t_last = now;
    log->val_acc = r->val_acc;
    fprintf(stderr, "bench_trial: epoch %zu  train loss %.4f acc %.3f  val acc %.3f auc %.3f  %.2f s\n", r->epoch,
            r->train_loss, r->train_acc, r->val_acc, r->val_auc, r->seconds);
    return 0;
}

static int on_budget(void *ctx, size_t budget, const float *tp, size_t best, double best_acc, CtError *err) {
    Log *log = ctx;
    (void)budget, (void)best, (void)best_acc, (void)err;
    const TrialInputs *in = log->in;
    size_t correct = 0;
    for (size_t i = 0; i < in->data.n_test; i++) correct += (tp[i] > 0.5f) == (in->data.y_test[i] != 0);
    log->test_acc = in->data.n_test ? (double)correct / (double)in->data.n_test : 0;
    return 0;
}

// User + system CPU seconds of this process so far; bench/trial sets them
// against the machine's busy time to see how much others used.
static double cpu_seconds(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

// ---- head only: forward + backward + Adam on random features ----

static int head_only(const char *model, size_t batch, int iters, int threads) {
    size_t dim = strncmp(model, "vgg", 3) == 0 ? 512 * 7 * 7 : 512;
    size_t rows = 425;  // the training split's size
    CtError err = {{0}};
    HeadSpec hs;
    head_spec_default(&hs, model, dim);
    hs.standardize = 0;  // PyTorch's side has none either
    Head h;
    AdamState adam;
    AdamSpec as;
    adam_spec_default(&as);
    if (head_init(&h, &hs, batch, &err)) {
        fprintf(stderr, "bench_trial: %s\n", err.msg);
        return 1;
    }
    if (adam_init(&adam, &as, h.n_params)) {
        fprintf(stderr, "bench_trial: out of memory for Adam\n");
        return 1;
    }
    head_reset_params(&h, 5);
    float *x = ct_malloc_array(rows * dim, sizeof(float));
    uint8_t *y = ct_malloc(rows);
    RngStream rs;
    rng_stream_init(&rs, 1, 98, 0, 0, 0);
    for (size_t i = 0; i < rows * dim; i++) x[i] = (float)rng_normal(&rs);
    for (size_t i = 0; i < rows; i++) y[i] = (uint8_t)rng_below(&rs, 2);
    omp_set_num_threads(threads);
    int warmup = 3;
    double t0 = 0;
    size_t r0 = 0;
    for (int it = -warmup; it < iters; it++) {
        if (it == 0) t0 = ct_now();
        if (r0 + batch > rows) r0 = 0;
        head_forward(&h, x + r0 * dim, batch, 1, 5, (uint64_t)(it + warmup));
        head_zero_grads(&h);
        size_t correct;
        head_loss_backward(&h, y + r0, batch, &correct, 1);
        adam_step(&adam, h.params, h.grads, 1e-4);
        r0 += batch;
    }
    double t = ct_now() - t0;
    printf("mode=head_only model=%s dim=%zu batch=%zu threads=%d iters=%d params=%zu seconds=%.3f "
           "samples_per_s=%.1f cpu_seconds=%.2f\n",
           model, dim, batch, threads, iters, h.n_params, t, (double)iters * (double)batch / t, cpu_seconds());
    free(x);
    free(y);
    adam_free(&adam);
    head_free(&h);
    return 0;
}

// ---- tail only: the trainable tail's training step on random activations ----

// Forward + backward + Adam of the last `unfreeze` stages and the head on
// random cut activations (rows cycling through 425), what a fine-tuning
// epoch spends per training batch after the prefix pass; images/s.
static int tail_only(const char *model, size_t size, int unfreeze, size_t batch, int iters, int threads,
                     ConvAlgo algo) {
    CtError err = {{0}};
    const BackendOps *ops = backend_ops_get(BACKEND_CPU, &err);
    NNGraph g;
    size_t cut = 0;
    if (!ops || model_build(&g, model, &err)) goto fail;
    if (model_cut_layer(&g, unfreeze, &cut, &err)) goto fail_graph;
    HeadSpec hs;
    head_spec_default(&hs, model, 1);
    hs.standardize = 0;  // PyTorch's side has none either
    Tail t;
    if (tail_init(&t, ops, &g, cut, &hs, batch, size, size, algo, &err)) goto fail_graph;
    tail_init_random(&t, &g, 3);
    tail_reset_head(&t, 5);
    t.input_grad = 0;  // as the trainer: no gradient at the cut
    size_t rows = 425, dim = t.in_numel;
    float *x = ct_malloc_array(rows * dim, sizeof(float));
    uint8_t *y = ct_malloc(rows);
    RngStream rs;
    rng_stream_init(&rs, 1, 98, 0, 0, 0);
    for (size_t i = 0; i < rows * dim; i++) x[i] = fmaxf(0.0f, (float)rng_normal(&rs));  // post-ReLU
    for (size_t i = 0; i < rows; i++) y[i] = (uint8_t)rng_below(&rs, 2);
    omp_set_num_threads(threads);
    AdamSpec as;
    adam_spec_default(&as);
    int warmup = 2;
    double t0 = 0, c0 = 0;
    size_t r0 = 0;
    for (int it = -warmup; it < iters; it++) {
        if (it == 0) t0 = ct_now(), c0 = cpu_seconds();
        if (r0 + batch > rows) r0 = 0;
        size_t correct;
        tail_zero_grads(&t);
        if (!tail_forward_host(&t, x + r0 * dim, batch, 0, 1, 5, (uint64_t)(it + warmup), &err) ||
            tail_backward(&t, y + r0, batch, &correct, &err) < 0) {
            free(x), free(y), tail_free(&t);
            goto fail_graph;
        }
        tail_adam_step(&t, &as, 1e-5, 1e-4);
        r0 += batch;
    }
    double secs = ct_now() - t0;
    printf("mode=tail_only model=%s size=%zu unfreeze=%d cut_numel=%zu batch=%zu threads=%d iters=%d params=%zu "
           "seconds=%.3f images_per_s=%.2f cpu_seconds=%.2f\n",
           model, size, unfreeze, dim, batch, threads, iters, t.n_params, secs, (double)iters * (double)batch / secs,
           cpu_seconds() - c0);
    free(x);
    free(y);
    tail_free(&t);
    graph_free(&g);
    return 0;
fail_graph:
    graph_free(&g);
fail:
    fprintf(stderr, "bench_trial: %s\n", err.msg);
    return 1;
}

// ---- the trial ----

int main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: bench_trial MODEL [--size S] [--epochs E] [--batch B] [--aug on|off] [--threads T] "
                        "[--root DIR] [--feature-batch FB] [--unfreeze N] [--backbone-lr-scale S] | MODEL --head-only [--batch B] [--iters N] [--threads T] | MODEL --tail-only [--size S] [--unfreeze N] [--batch B] [--iters N] [--threads T]; any: [--conv-algo auto|direct|winograd]\n");
        return 2;
    }
    const char *model = argv[1];
    size_t size = 224, epochs = 3, batch = 32, fbatch = 32;
    int aug = 1, threads = 2, head_only_mode = 0, tail_only_mode = 0, iters = 50, unfreeze = 0;
    double lr_scale = 0.1;
    ConvAlgo algo = CONV_ALGO_AUTO;
    char root[4096];
    snprintf(root, sizeof root, "%s", "../shared/data/covid-ct");
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--head-only")) { head_only_mode = 1; continue; }
        if (!strcmp(a, "--tail-only")) { tail_only_mode = 1; continue; }
        if (!v) { fprintf(stderr, "bench_trial: %s needs a value\n", a); return 2; }
        i++;
        if (!strcmp(a, "--size")) size = (size_t)atol(v);
        else if (!strcmp(a, "--epochs")) epochs = (size_t)atol(v);
        else if (!strcmp(a, "--batch")) batch = (size_t)atol(v);
        else if (!strcmp(a, "--feature-batch")) fbatch = (size_t)atol(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--iters")) iters = atoi(v);
        else if (!strcmp(a, "--conv-algo")) {
            if (conv_algo_parse(v, &algo)) { fprintf(stderr, "bench_trial: --conv-algo auto|direct|winograd\n"); return 2; }
        }
        else if (!strcmp(a, "--unfreeze")) unfreeze = atoi(v);
        else if (!strcmp(a, "--backbone-lr-scale")) lr_scale = atof(v);
        else if (!strcmp(a, "--root")) snprintf(root, sizeof root, "%s", v);
        else if (!strcmp(a, "--aug")) {
            if (strcmp(v, "on") && strcmp(v, "off")) { fprintf(stderr, "bench_trial: --aug on|off\n"); return 2; }
            aug = !strcmp(v, "on");
        } else { fprintf(stderr, "bench_trial: unknown option %s\n", a); return 2; }
    }
    if (strcmp(model, "vgg16") && strcmp(model, "vgg19") && strcmp(model, "resnet34")) {
        fprintf(stderr, "bench_trial: model %s: expected vgg16, vgg19 or resnet34\n", model);
        return 2;
    }
    if (size == 0 || epochs == 0 || batch == 0 || fbatch == 0 || threads < 1 || iters < 1) {
        fprintf(stderr, "bench_trial: size, epochs, batch, feature-batch, threads and iters must be positive\n");
        return 2;
    }
    if (unfreeze < 0 || !(lr_scale >= 0)) {
        fprintf(stderr, "bench_trial: unfreeze and backbone-lr-scale must not be negative\n");
        return 2;
    }
    if (epochs > 1024) {
        fprintf(stderr, "bench_trial: at most 1024 epochs\n");
        return 2;
    }
    if (head_only_mode) return head_only(model, batch, iters, threads);
    if (tail_only_mode) return tail_only(model, size, unfreeze ? unfreeze : 1, batch, iters, threads, algo);
    omp_set_num_threads(threads);

    CtError err = {{0}};
    double t_start = ct_now();
    DataSpec spec;
    data_spec_default(&spec, root);
    spec.split = DATA_SPLIT_FILES;
    DataSet ds;
    if (dataset_open(&ds, &spec, &err) || dataset_fingerprint(&ds, &err)) goto error;
    double t_index = ct_now() - t_start;

    double t = ct_now();
    ImageCache ic;
    ImageLimits lim;
    image_limits_default(&lim);
    if (image_cache_build(&ic, &ds, size, &lim, BAD_IMAGE_ERROR, &err)) goto error;
    double t_cache = ct_now() - t;

    FeatureSpec fs;
    memset(&fs, 0, sizeof fs);
    snprintf(fs.model, sizeof fs.model, "%s", model);
    fs.backbone_seed = 1;
    fs.image_size = size;
    fs.norm = NORM_IMAGENET;
    fs.aug = augment_spec_default();
    if (aug) {
        fs.aug.rotate_deg = 15;
        fs.aug.rotate_prob = 0.5;
        fs.aug.flip_axis = AUGMENT_FLIP_LR;
        fs.aug.flip_prob = 0.5;
        fs.aug.zoom_min = 0.9;
        fs.aug.zoom_max = 1.1;
        fs.aug.zoom_prob = 0.5;
        fs.aug.noise_std = 0.01;
        fs.aug.noise_prob = 0.5;
        fs.aug.aug_views = (uint32_t)epochs;
    }
    if (augment_spec_validate(&fs.aug, &err)) goto error;
    fs.aug_seed = 3;
    backend_options_default(&fs.backend);
    fs.backend.threads = threads;
    fs.backend.conv_algo = algo;
    fs.batch = fbatch;
    fs.unfreeze = unfreeze;  // the cut is checked against the model when the prefix is planned

    TrainSpec ts;
    memset(&ts, 0, sizeof ts);
    head_spec_default(&ts.head, model, 0);
    ts.head.standardize = 1;
    adam_spec_default(&ts.adam);
    ts.clr.mode = CLR_TRIANGULAR;
    ts.clr.base_lr = 1e-4;
    ts.clr.max_lr = 1e-3;
    ts.clr.step_size_epochs = 2;
    ts.batch_size = batch;
    ts.budgets[0] = epochs;
    ts.n_budgets = 1;
    ts.seed = 5;
    // As the sweep's worker fills it (src/sweep/sweep.c, worker_run).
    ts.tail = (TailSpec){.unfreeze = unfreeze, .backbone_lr_scale = lr_scale, .weights = fs.weights,
                         .conv_algo = fs.backend.conv_algo,
                         .backbone_seed = fs.backbone_seed, .image_size = size, .backend = fs.backend.kind};
    snprintf(ts.tail.model, sizeof ts.tail.model, "%s", model);

    FeatureCache *fc = fcache_create(0, FSTORE_FP32);
    TrialInputs in = {.cache = fc, .features = &fs, .ds = &ds, .images = &ic};
    Log log = {.in = &in};
    TrainHooks hooks = {.on_epoch = on_epoch, .on_budget = on_budget, .ctx = &log};
    // The features trial_train asks for first, requested here one by one so
    // their cost shows apart; the trial then finds them in the cache, so the
    // total work is the same. The first request also builds the backbone
    // plan (random weights, reorders, primitives).
    double t_feat[DATA_SPLITS];
    static const int order[DATA_SPLITS] = {SPLIT_VAL, SPLIT_TEST, SPLIT_TRAIN};
    size_t row_dim = 0;
    log.t_last = ct_now();
    for (int k = 0; k < DATA_SPLITS; k++) {
        const float *x;
        size_t n;
        t = ct_now();
        if (fcache_get(fc, &fs, &ds, &ic, order[k], 0, &x, &n, &row_dim, &err)) goto error;
        t_feat[order[k]] = ct_now() - t;
    }
    TrainState st;
    t = ct_now();
    int rc = trial_train(&in, &st, &ts, &hooks, &err);
    double t_trial = ct_now() - t;
    double t_total = ct_now() - t_start;
    if (rc) goto error;

    FeatureStats fst = fcache_stats(fc);
    size_t naive = epochs * ds.n;  // the naive loop runs every image through the backbone each epoch
    double steady = 0;  // mean wall seconds of epochs 2..E
    for (size_t e = 1; e < log.n_epochs; e++) steady += log.epoch_wall[e] / (double)(log.n_epochs - 1);
    printf("mode=trial model=%s size=%zu epochs=%zu batch=%zu aug=%s unfreeze=%d backbone_lr_scale=%g threads=%d "
           "n_train=%zu n_val=%zu n_test=%zu seconds_total=%.2f seconds_index=%.2f seconds_cache_build=%.2f "
           "seconds_features_val=%.2f seconds_features_test=%.2f seconds_features_train_view0=%.2f seconds_train=%.2f "
           "forwards=%llu forwards_naive=%zu hits=%llu misses=%llu feature_mib=%.1f epoch_seconds=",
           model, size, epochs, batch, aug ? "on" : "off", unfreeze, lr_scale, threads, in.data.n_train,
           in.data.n_val, in.data.n_test, t_total, t_index, t_cache, t_feat[SPLIT_VAL],
           t_feat[SPLIT_TEST], t_feat[SPLIT_TRAIN], t_trial, (unsigned long long)fst.forwards, naive,
           (unsigned long long)fst.hits, (unsigned long long)fst.misses, fcache_used_bytes(fc) / 1048576.0);
    for (size_t e = 0; e < log.n_epochs; e++) printf("%s%.2f", e ? "," : "", log.epoch_s[e]);
    printf(" epoch_wall_seconds=");
    for (size_t e = 0; e < log.n_epochs; e++) printf("%s%.2f", e ? "," : "", log.epoch_wall[e]);
    printf(" first_epoch_seconds=%.2f steady_epoch_seconds=%.2f cache_bytes_per_image=%zu cache_mib=%.1f",
           log.epoch_wall[0], log.n_epochs > 1 ? steady : 0.0, row_dim * sizeof(float),
           (double)row_dim * sizeof(float) * (double)ds.n / 1048576.0);
    printf(" val_acc=%.4f test_acc=%.4f peak_rss_mib=%.1f cpu_seconds=%.2f\n", log.val_acc, log.test_acc,
           ct_peak_rss_bytes() / 1048576.0, cpu_seconds());
    train_state_free(&st);
    trial_inputs_free(&in);
    fcache_free(fc);
    image_cache_free(&ic);
    dataset_free(&ds);
    return 0;
error:
    fprintf(stderr, "bench_trial: %s\n", err.msg);
    return 1;
}
