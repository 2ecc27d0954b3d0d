/*
 * learn_check.c — the training engine on real data, end to end: data set
 * index, image cache, seeded random backbone features, head training.
 *
 *   covid: official COVID-CT split, ResNet-34 at 112 px, 15 epochs,
 *          standardised features: val accuracy > 0.5 and train loss falls.
 *   phantom: a generated phantom set, 80/10/10 split: val accuracy >= 0.9.
 *   determinism: the same trial with 1 and 2 threads, and with the feature
 *          cache off, gives bit-identical metrics and probabilities.
 *
 * usage: learn_check covid|phantom|determinism SCRATCH SHARED_DATA
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "data/phantom.h"
#include "train/trial.h"

typedef struct {
    EpochRecord rec[64];
    size_t n;
    float *val_prob[64];
    size_t n_val;
    float *test_prob;
    size_t n_test;
} Log;

static int on_epoch(void *ctx, const EpochRecord *r, const double *lr, size_t n_iters, const float *vp, const float *tp,
                    CtError *err) {
    (void)tp;
    Log *log = ctx;
    (void)lr, (void)n_iters, (void)err;
    log->rec[log->n] = *r;
    log->val_prob[log->n] = malloc(log->n_val * sizeof(float));
    memcpy(log->val_prob[log->n], vp, log->n_val * sizeof(float));
    log->n++;
    printf("  epoch %2zu  lr %.2e  train loss %.4f acc %.3f  val loss %.4f acc %.3f auc %.3f  %.2fs\n", r->epoch, r->lr,
           r->train_loss, r->train_acc, r->val_loss, r->val_acc, r->val_auc, r->seconds);
    return 0;
}

static int on_budget(void *ctx, size_t budget, const float *tp, size_t best, double best_acc, CtError *err) {
    Log *log = ctx;
    (void)err;
    free(log->test_prob);
    log->test_prob = malloc((log->n_test ? log->n_test : 1) * sizeof(float));
    memcpy(log->test_prob, tp, log->n_test * sizeof(float));
    printf("  budget %zu: best val acc %.3f at epoch %zu\n", budget, best_acc, best);
    return 0;
}

static void log_free(Log *l) {
    for (size_t i = 0; i < l->n; i++) free(l->val_prob[i]);
    free(l->test_prob);
    memset(l, 0, sizeof *l);
}

typedef struct {
    DataSet ds;
    ImageCache ic;
    FeatureSpec fs;
    TrainSpec ts;
} Setup;

static int setup(Setup *s, const char *root, DataSplitKind split, size_t size, size_t epochs, CtError *err) {
    memset(s, 0, sizeof *s);
    DataSpec spec;
    data_spec_default(&spec, root);
    spec.split = split;
    if (dataset_open(&s->ds, &spec, err) || dataset_fingerprint(&s->ds, err)) return -1;
    ImageLimits lim;
    image_limits_default(&lim);
    if (image_cache_build(&s->ic, &s->ds, size, &lim, BAD_IMAGE_ERROR, err)) return -1;
    snprintf(s->fs.model, sizeof s->fs.model, "resnet34");
    s->fs.backbone_seed = 1;
    s->fs.image_size = size;
    s->fs.norm = NORM_IMAGENET;
    s->fs.aug = augment_spec_default();
    backend_options_default(&s->fs.backend);
    s->fs.batch = 32;
    head_spec_default(&s->ts.head, "resnet34", 0);
    s->ts.head.standardize = 1;
    adam_spec_default(&s->ts.adam);
    s->ts.clr.mode = CLR_TRIANGULAR;
    s->ts.clr.base_lr = 1e-4;
    s->ts.clr.max_lr = 1e-3;
    s->ts.clr.step_size_epochs = 2;
    s->ts.batch_size = 32;
    s->ts.budgets[0] = epochs;
    s->ts.n_budgets = 1;
    s->ts.seed = 5;
    return 0;
}

static int run(Setup *s, FeatureCache *fc, Log *log, CtError *err) {
    TrialInputs in = {.cache = fc, .features = &s->fs, .ds = &s->ds, .images = &s->ic};
    log->n_val = s->ds.count[SPLIT_VAL][0] + s->ds.count[SPLIT_VAL][1];
    log->n_test = s->ds.count[SPLIT_TEST][0] + s->ds.count[SPLIT_TEST][1];
    TrainHooks hooks = {.on_epoch = on_epoch, .on_budget = on_budget, .ctx = log};
    TrainState st;
    int rc = trial_train(&in, &st, &s->ts, &hooks, err);
    train_state_free(&st);
    trial_inputs_free(&in);
    return rc;
}

static void teardown(Setup *s) {
    image_cache_free(&s->ic);
    dataset_free(&s->ds);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: learn_check covid|phantom|determinism SCRATCH SHARED_DATA\n");
        return 2;
    }
    const char *what = argv[1];
    printf("oneDNN ISA: %s (ONEDNN_MAX_CPU_ISA=%s)\n", backend_cpu_isa(),
           getenv("ONEDNN_MAX_CPU_ISA") ? getenv("ONEDNN_MAX_CPU_ISA") : "unset");
    char root[4096];
    CtError err = {{0}};
    Setup s;
    int fail = 0;
    if (strcmp(what, "phantom") == 0 || strcmp(what, "determinism") == 0) {
        snprintf(root, sizeof root, "%s/phantoms", argv[2]);
        if (phantom_write_set(root, 300, 3, 128, &err)) {
            fprintf(stderr, "learn_check: %s\n", err.msg);
            return 1;
        }
    } else {
        snprintf(root, sizeof root, "%s/covid-ct", argv[3]);
    }
    int covid = strcmp(what, "covid") == 0;
    size_t epochs = strcmp(what, "determinism") == 0 ? 4 : 15;
    if (setup(&s, root, covid ? DATA_SPLIT_FILES : DATA_SPLIT_FRACTIONS, covid ? 112 : 96, epochs, &err)) {
        fprintf(stderr, "learn_check: %s\n", err.msg);
        return 1;
    }
    if (strcmp(what, "determinism") == 0) {
        s.ts.head.dropout = 0.3;  // masks must be deterministic too
        Log a = {0}, b = {0}, c = {0};
        FeatureCache *fc1 = fcache_create(0, FSTORE_FP32);
        omp_set_num_threads(2);
        printf("2 threads, cache on:\n");
        if (run(&s, fc1, &a, &err)) goto error;
        omp_set_num_threads(1);
        printf("1 thread, same cache:\n");
        if (run(&s, fc1, &b, &err)) goto error;
        FeatureCache *fc0 = fcache_create(1, FSTORE_FP32);  // 1-byte budget: nothing is kept
        omp_set_num_threads(2);
        printf("2 threads, cache off:\n");
        if (run(&s, fc0, &c, &err)) goto error;
        FeatureStats st0 = fcache_stats(fc0), st1 = fcache_stats(fc1);
        printf("cache on: %llu forwards, %llu hits; cache off: %llu forwards, %llu uncached\n",
               (unsigned long long)st1.forwards, (unsigned long long)st1.hits, (unsigned long long)st0.forwards,
               (unsigned long long)st0.uncached);
        Log *logs[2] = {&b, &c};
        for (int k = 0; k < 2; k++) {
            Log *o = logs[k];
            int same = o->n == a.n;
            for (size_t e = 0; same && e < a.n; e++) {
                same &= memcmp(&a.rec[e].train_loss, &o->rec[e].train_loss, 5 * sizeof(double)) == 0;
                same &= memcmp(a.val_prob[e], o->val_prob[e], a.n_val * sizeof(float)) == 0;
            }
            same &= memcmp(a.test_prob, o->test_prob, a.n_test * sizeof(float)) == 0;
            printf("%s %s: metrics and probabilities %s\n", same ? "ok  " : "FAIL",
                   k == 0 ? "1 vs 2 threads" : "cache off vs on", same ? "bit-identical" : "DIFFER");
            fail += !same;
        }
        int hits_ok = st1.hits > 0 && st1.forwards < st0.forwards;
        printf("%s the second run reused the cache\n", hits_ok ? "ok  " : "FAIL");
        fail += !hits_ok;
        log_free(&a), log_free(&b), log_free(&c);
        fcache_free(fc0);
        fcache_free(fc1);
    } else {
        Log a = {0};
        FeatureCache *fc = fcache_create(0, FSTORE_FP32);
        if (run(&s, fc, &a, &err)) goto error;
        const EpochRecord *first = &a.rec[0], *last = &a.rec[a.n - 1];
        double best = 0;
        for (size_t e = 0; e < a.n; e++) best = a.rec[e].val_acc > best ? a.rec[e].val_acc : best;
        if (covid) {
            int ok1 = last->val_acc > 0.5, ok2 = last->train_loss < first->train_loss;
            printf("%s covid: final val acc %.3f > 0.5 (best %.3f)\n", ok1 ? "ok  " : "FAIL", last->val_acc, best);
            printf("%s covid: train loss falls %.4f -> %.4f\n", ok2 ? "ok  " : "FAIL", first->train_loss,
                   last->train_loss);
            fail += !ok1 + !ok2;
        } else {
            int ok = last->val_acc >= 0.9;
            printf("%s phantom: final val acc %.3f >= 0.9 (best %.3f)\n", ok ? "ok  " : "FAIL", last->val_acc, best);
            fail += !ok;
        }
        log_free(&a);
        fcache_free(fc);
    }
    teardown(&s);
    printf("%d passed, %d failed\n", fail ? 0 : 1, fail ? 1 : 0);
    return fail ? 1 : 0;
error:
    fprintf(stderr, "learn_check: %s\n", err.msg);
    return 1;
}
