/*
 * test_fuzz_regress_results.c — damaged results files of the kinds
 * fuzz_results makes, replayed through the normal build: each file is
 * written by the project's writers, damaged through the HDF5 API, and read
 * as `--resume` and `ctsweep validate` read it. The readers must refuse (or
 * report) the damage, without reading past a variable or allocating what a
 * file merely claims.
 *
 *  - An attribute holding an array where one value belongs (checkpoint
 *    @epoch, trial @status / @iters_per_epoch / @epochs): H5Aread wrote every
 *    element into one variable (AddressSanitizer: stack-buffer-overflow in
 *    checkpoint_read; regress/results/checkpoint_epoch_array).
 *  - A dataset whose shape claims 2^40 elements that were never written
 *    (chunked, nothing stored): checkpoint /state and the manifest's /trials
 *    were allocated at their claimed size (a fatal out-of-memory).
 *  - A trial's @iters_per_epoch of 2^40: the learning-rate buffer was
 *    allocated as budget x iters_per_epoch before /lr_trace was looked at.
 *  - A trial's /checkpoint@file naming a path outside OUT (absolute, or up
 *    through ".."), which resume followed (a FIFO there blocks it), and a
 *    negative /checkpoint@epoch.
 *
 * usage: test_fuzz_regress_results SCRATCH_DIR SHARED_DATA_DIR
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/grid.h"
#include "data/dataset.h"
#include "results/checkpoint.h"
#include "results/h5io.h"
#include "results/manifest.h"
#include "results/trial_file.h"
#include "results/validate.h"
#include "util/buf.h"

#include "check.h"

#define BUDGET 3
#define N_VAL 2
#define N_TEST 2
#define IPE 4
#define ID "0123456789abcdef"

static char *g_dir;
static FILE *g_out;

// ---- writing ----

static void write_checkpoint(const char *path) {
    uint8_t state[64];
    for (size_t i = 0; i < sizeof state; i++) state[i] = (uint8_t)i;
    CtError err = {{0}};
    if (checkpoint_write(path, 2, 2 * IPE, state, sizeof state, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(2);
    }
}

static void write_trial(const char *path, size_t epochs_done) {
    GridTrial t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", ID);
    snprintf(t.model, sizeof t.model, "resnet34");
    t.batch_size = 8;
    t.epochs = BUDGET;
    t.clr.mode = CLR_TRIANGULAR;
    t.clr.base_lr = 1e-4;
    t.clr.max_lr = 1e-3;
    t.clr.step_size = 2;
    t.clr.gamma = 1;
    TrialRecord r;
    trial_record_init(&r, BUDGET, N_VAL, N_TEST);
    for (size_t e = 1; e <= epochs_done; e++) {
        EpochRecord er = {.epoch = e, .lr = 1e-3, .val_acc = 0.5};
        double lr[IPE] = {1e-4, 2e-4, 3e-4, 4e-4};
        float prob[N_VAL] = {0.25f, 0.75f}, tprob[N_TEST] = {0.4f, 0.6f};
        trial_record_epoch(&r, &er, lr, IPE, prob, tprob);
    }
    r.status = epochs_done == BUDGET ? TRIAL_DONE : TRIAL_RUNNING;
    const uint8_t labels[N_TEST] = {0, 1};
    if (r.status == TRIAL_DONE) trial_record_select(&r, labels);
    int64_t vi[N_VAL] = {0, 1}, ti[N_TEST] = {2, 3};
    CheckpointRef ck = {.epoch = 2, .iteration = 2 * IPE, .file = "checkpoints/" ID ".h5"};
    CtError err = {{0}};
    if (trial_file_write(path, &t, &r, vi, ti, &ck, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(2);
    }
    trial_record_free(&r);
}

static void write_manifest(const char *dir) {
    SweepConfig cfg;
    config_init(&cfg);
    DataSet ds;
    memset(&ds, 0, sizeof ds);
    ds.root = (char *)"/nonexistent";
    Grid g;
    memset(&g, 0, sizeof g);
    GridTrial t;
    memset(&t, 0, sizeof t);
    snprintf(t.id, sizeof t.id, "%s", ID);
    snprintf(t.model, sizeof t.model, "resnet34");
    t.epochs = BUDGET;
    g.trials = &t;
    g.n_trials = 1;
    TrialRecord r;
    trial_record_init(&r, BUDGET, N_VAL, N_TEST);
    ManifestView m = {.cfg = &cfg, .ds = &ds, .grid = &g, .records = &r, .created_utc = "x", .state = "done"};
    CtError err = {{0}};
    if (manifest_write(dir, &m, &err)) {
        printf("FAIL %s\n", err.msg);
        exit(2);
    }
    trial_record_free(&r);
}

// ---- damage, through the HDF5 API ----

// Replaces obj@name by an attribute of three values of its kind (int64 or
// variable-length string).
static void attr_array(const char *path, const char *obj, const char *name, int strings) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL), t;
    int64_t iv[3] = {2, 2, 2};
    const char *sv[3] = {"done", "done", "done"};
    if (strings) {
        t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, H5T_VARIABLE);
    } else {
        t = H5Tcopy(H5T_NATIVE_INT64);
    }
    H5Adelete_by_name(f, obj, name, H5P_DEFAULT);
    hid_t a = H5Acreate_by_name(f, obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(a >= 0 && H5Awrite(a, t, strings ? (const void *)sv : (const void *)iv) >= 0, "%s: cannot damage %s@%s",
          path, obj, name);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

static void attr_i64(const char *path, const char *name, int64_t v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    CtError err = {{0}};
    CHECK(h5io_attr_i64(f, name, v, &err) == 0, "%s: %s", path, err.msg);
    H5Fclose(f);
}

// Replaces a dataset by one of 2^40 elements of type t that were never
// written (chunked: nothing is stored).
static void huge_dataset(const char *path, const char *name, hid_t t) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)1 << 40}, max[1] = {H5S_UNLIMITED}, chunk[1] = {64};
    hid_t sp = H5Screate_simple(1, dims, max), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, chunk);
    H5Ldelete(f, name, H5P_DEFAULT);
    hid_t d = H5Dcreate2(f, name, t, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    CHECK(d >= 0, "%s: cannot make a huge /%s", path, name);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Fclose(f);
}

// ---- reading ----

static int read_trial(const char *path, TrialRecord *r, CheckpointRef *ck, CtError *err) {
    trial_record_init(r, BUDGET, N_VAL, N_TEST);
    return trial_file_read(path, r, ck, err);
}

static void test_checkpoint(void) {
    char *path = ct_asprintf("%s/checkpoints/%s.h5", g_dir, ID);
    Buf b = {0};
    CtError err = {{0}};
    write_checkpoint(path);
    CHECK(checkpoint_read(path, 2, 2 * IPE, &b, &err) == 0 && b.n == 64, "good checkpoint: %s", err.msg);
    attr_array(path, "/", "epoch", 0);  // regress/results/checkpoint_epoch_array
    CHECK(checkpoint_read(path, 2, 2 * IPE, &b, &err) != 0, "checkpoint with @epoch [3] read");
    printf("ok   checkpoint @epoch as an array: refused\n");
    write_checkpoint(path);
    huge_dataset(path, "state", H5T_NATIVE_UINT8);
    CHECK(checkpoint_read(path, 2, 2 * IPE, &b, &err) != 0 && strstr(err.msg, "not fully written"),
          "checkpoint with an unwritten /state of 2^40 bytes: %s", err.msg);
    printf("ok   checkpoint /state claiming 2^40 bytes: refused (%s)\n", err.msg);
    buf_free(&b);
    free(path);
}

static void test_trial(void) {
    char *path = ct_asprintf("%s/trials/%s.h5", g_dir, ID);
    TrialRecord r;
    CheckpointRef ck;
    CtError err = {{0}};
    write_trial(path, 2);
    CHECK(read_trial(path, &r, &ck, &err) == 0 && r.epochs_done == 2 && r.iters_per_epoch == IPE &&
              r.lr_trace[2 * IPE - 1] == 4e-4 && ck.epoch == 2,
          "good trial: %s", err.msg);
    trial_record_free(&r);

    static const struct {
        const char *name;
        int strings;
    } arrays[] = {{"status", 1}, {"iters_per_epoch", 0}, {"error", 1}};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) {
        write_trial(path, 2);
        attr_array(path, "/", arrays[i].name, arrays[i].strings);
        int rc = read_trial(path, &r, &ck, &err);
        // error is informative only: an array there is ignored.
        CHECK(strcmp(arrays[i].name, "error") == 0 ? rc == 0 && r.error[0] == '\0' : rc != 0,
              "trial with @%s [3]: rc %d", arrays[i].name, rc);
        trial_record_free(&r);
        printf("ok   trial @%s as an array: %s\n", arrays[i].name, rc ? "refused" : "ignored");
    }
    write_trial(path, 2);
    attr_array(path, "checkpoint", "epoch", 0);
    CHECK(read_trial(path, &r, &ck, &err) != 0, "trial with /checkpoint@epoch [3] read");
    trial_record_free(&r);
    printf("ok   trial /checkpoint@epoch as an array: refused\n");

    // The checkpoint a trial names stays inside OUT, at a real position.
    static const char *const outside[] = {"/dev/stdin", "../../../../../../dev/stdin", "checkpoints/../../x.h5"};
    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        write_trial(path, 2);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "checkpoint", H5P_DEFAULT);
        CHECK(h5io_attr_str(g, "file", outside[i], &err) == 0, "%s", err.msg);
        H5Gclose(g);
        H5Fclose(f);
        CHECK(read_trial(path, &r, &ck, &err) != 0, "trial naming the checkpoint %s read", outside[i]);
        trial_record_free(&r);
    }
    write_trial(path, 2);
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = H5Gopen2(f, "checkpoint", H5P_DEFAULT);
        CHECK(h5io_attr_i64(g, "epoch", -1, &err) == 0, "%s", err.msg);
        H5Gclose(g);
        H5Fclose(f);
    }
    CHECK(read_trial(path, &r, &ck, &err) != 0, "trial with /checkpoint@epoch -1 read");
    trial_record_free(&r);
    printf("ok   trial naming a checkpoint outside OUT, or at epoch -1: refused\n");

    write_trial(path, 2);
    attr_i64(path, "iters_per_epoch", (int64_t)1 << 40);
    CHECK(read_trial(path, &r, &ck, &err) != 0 && strstr(err.msg, "iters_per_epoch"),
          "trial with @iters_per_epoch 2^40: %s", err.msg);
    trial_record_free(&r);
    printf("ok   trial @iters_per_epoch 2^40: refused (%s)\n", err.msg);

    // Without epochs, iters_per_epoch sizes nothing: a wrong one is ignored.
    write_trial(path, 0);
    attr_i64(path, "iters_per_epoch", INT64_MAX);
    CHECK(read_trial(path, &r, &ck, &err) == 0 && r.epochs_done == 0 && r.iters_per_epoch == 0 && !r.lr_trace,
          "pending trial with @iters_per_epoch 2^63-1: %s", err.msg);
    trial_record_free(&r);
    printf("ok   trial without epochs, @iters_per_epoch 2^63-1: read, ignored\n");

    write_trial(path, 2);
    huge_dataset(path, "lr_trace", H5T_NATIVE_DOUBLE);
    attr_i64(path, "iters_per_epoch", (int64_t)1 << 39);  // 2 epochs x 2^39 = the claimed 2^40
    CHECK(read_trial(path, &r, &ck, &err) != 0, "trial with an unwritten /lr_trace of 2^40 read");
    trial_record_free(&r);
    printf("ok   trial /lr_trace claiming 2^40 values: refused\n");
    free(path);
}

static void test_validate(void) {
    char *trial = ct_asprintf("%s/trials/%s.h5", g_dir, ID), *manifest = ct_asprintf("%s/sweep.h5", g_dir);
    int n = 0;
    write_trial(trial, BUDGET);
    write_manifest(g_dir);
    int problems = validate_outdir(g_dir, stdout, &n);
    CHECK(problems == 0 && n == 2, "the written directory: %d problems in %d files", problems, n);
    attr_array(trial, "/", "epochs", 0);
    attr_array(trial, "/", "status", 1);
    attr_array(trial, "/", "trial_id", 1);
    problems = validate_outdir(g_dir, g_out, &n);
    CHECK(problems >= 2, "trial with @epochs, @status, @trial_id as arrays: %d problems", problems);
    printf("ok   validate: trial attributes as arrays: %d problems\n", problems);

    write_trial(trial, BUDGET);
    hid_t row = H5Tcreate(H5T_COMPOUND, 24);
    hid_t s17 = H5Tcopy(H5T_C_S1), s8 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s17, 17);
    H5Tset_size(s8, 8);
    H5Tinsert(row, "trial_id", 0, s17);
    H5Tinsert(row, "status", 16, s8);
    huge_dataset(manifest, "trials", row);
    problems = validate_outdir(g_dir, g_out, &n);
    CHECK(problems >= 1, "manifest with an unwritten /trials of 2^40 rows: %d problems", problems);
    printf("ok   validate: /trials claiming 2^40 rows: %d problems, nothing allocated\n", problems);
    H5Tclose(row);
    H5Tclose(s17);
    H5Tclose(s8);
    free(trial);
    free(manifest);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR SHARED_DATA_DIR\n", argv[0]);
        return 2;
    }
    h5io_init();
    g_dir = argv[1];
    CtError err = {{0}};
    char *t = ct_asprintf("%s/trials", g_dir), *c = ct_asprintf("%s/checkpoints", g_dir);
    if (ct_mkdirs(t, &err) || ct_mkdirs(c, &err)) {
        printf("FAIL %s\n", err.msg);
        return 2;
    }
    free(t);
    free(c);
    g_out = fopen("/dev/null", "w");
    test_checkpoint();
    test_trial();
    test_validate();
    fclose(g_out);
    return check_summary();
}
