/*
 * test_data_check.c — the checks that refuse a data set no classifier can be
 * judged on: a class missing from a split or from a fold's train or val
 * (hand-made fold arrays), identical files across splits and folds (error,
 * warn, ignore) and within one (a warning with the count), the warnings for
 * small evaluation sets, the printed table, and the DataSet adapter on real
 * folders: an empty class folder, an empty folder beside a full one of the
 * same label, a class whose every image was skipped as bad, and the COVID-CT
 * official split (which holds no identical files).
 *
 * usage: test_data_check SCRATCH_DIR SHARED_DATA_DIR
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_check.h"
#include "data/image_cache.h"
#include "data/phantom.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "check.h"

static const char *const CLASS_NAMES[2] = {"CT_NonCOVID", "CT_COVID"};

// ---- capturing ct_warn ----

static char g_stderr_path[4096];
static int g_saved_stderr = -1;

static void capture_begin(void) {
    fflush(stderr);
    g_saved_stderr = dup(2);
    int fd = open(g_stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || g_saved_stderr < 0) {
        perror(g_stderr_path);
        exit(2);
    }
    dup2(fd, 2);
    close(fd);
}

// What went to stderr since capture_begin (the caller frees it).
static char *capture_end(void) {
    fflush(stderr);
    dup2(g_saved_stderr, 2);
    close(g_saved_stderr);
    FILE *f = fopen(g_stderr_path, "rb");
    char *s = calloc(1, 1 << 16);
    if (f) {
        size_t n = fread(s, 1, (1 << 16) - 1, f);
        s[n] = 0;
        fclose(f);
    }
    return s;
}

// ---- a hand-made data set ----

#define MAX_N 256

typedef struct {
    int cls[MAX_N], split[MAX_N], fold[MAX_N];
    uint8_t content[MAX_N][32];
    char names[MAX_N][32];
    const char *name[MAX_N];
    DataCheckInput in;
} Toy;

// per[c][s] images of class c in split s, each with distinct content.
static void toy_init(Toy *t, const size_t per[2][DATA_SPLITS]) {
    memset(t, 0, sizeof *t);
    size_t n = 0;
    for (int c = 0; c < 2; c++)
        for (int s = 0; s < DATA_SPLITS; s++)
            for (size_t k = 0; k < per[c][s]; k++, n++) {
                if (n >= MAX_N) abort();
                t->cls[n] = c;
                t->split[n] = s;
                t->fold[n] = -1;
                t->content[n][0] = (uint8_t)n;
                t->content[n][1] = 0xA5;
                snprintf(t->names[n], sizeof t->names[n], "%s/%s%zu.png", CLASS_NAMES[c], split_name(s), k);
                t->name[n] = t->names[n];
            }
    t->in = (DataCheckInput){.n = n,
                             .cls = t->cls,
                             .split = t->split,
                             .content = (const uint8_t(*)[32])t->content,
                             .name = t->name,
                             .n_classes = 2,
                             .class_name = CLASS_NAMES};
}

// Index of the k-th image of class c in split s.
static size_t toy_at(const Toy *t, int c, int s, size_t k) {
    for (size_t i = 0; i < t->in.n; i++)
        if (t->cls[i] == c && t->split[i] == s && k-- == 0) return i;
    abort();
}

// ---- every class in every split ----

static void test_classes(void) {
    CtError err = {{0}};
    DataCheckReport rep;
    Toy t;
    size_t ok[2][DATA_SPLITS] = {{20, 10, 12}, {18, 11, 10}};
    toy_init(&t, ok);
    capture_begin();
    int rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    char *out = capture_end();
    CHECK(rc == 0 && rep.few_cells == 0 && rep.cross_sets == 0, "a sound split refused: %s", err.msg);
    CHECK(out[0] == 0, "a sound split with 10+ per class warned: %s", out);
    free(out);

    struct {
        size_t per[2][DATA_SPLITS];
        const char *want;
    } bad[] = {
        // An empty class folder: nothing anywhere; val is named first.
        {{{0, 0, 0}, {20, 5, 5}},
         "data: class CT_NonCOVID has 0 images in val (train 0, val 0, test 0); AUC and accuracy would be meaningless"},
        // A class in train only (split files that list it nowhere else).
        {{{20, 5, 5}, {40, 0, 0}},
         "data: class CT_COVID has 0 images in val (train 40, val 0, test 0); AUC and accuracy would be meaningless"},
        {{{20, 5, 0}, {20, 5, 5}},
         "data: class CT_NonCOVID has 0 images in test (train 20, val 5, test 0); AUC and accuracy would be "
         "meaningless"},
        {{{20, 5, 5}, {0, 5, 5}},
         "data: class CT_COVID has 0 images in train (train 0, val 5, test 5); the classifier would never see it"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        toy_init(&t, bad[i].per);
        err.msg[0] = 0;
        capture_begin();
        rc = data_check_run(&t.in, DUPLICATE_ERROR, NULL, &err);
        free(capture_end());
        CHECK(rc == -1 && strcmp(err.msg, bad[i].want) == 0, "case %zu: rc %d, message\n  '%s'\nwant\n  '%s'", i, rc,
              err.msg, bad[i].want);
    }
    printf("ok   a class missing from train, val or test is refused naming it, the split and the counts\n");

    // Small evaluation sets: one warning naming each cell under 10.
    size_t few[2][DATA_SPLITS] = {{20, 6, 12}, {20, 10, 3}};
    toy_init(&t, few);
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    out = capture_end();
    const char *want = "ctsweep: warning: data: fewer than 10 images of a class in val or test: CT_NonCOVID val 6; "
                       "CT_COVID test 3; intervals will be wide\n";
    CHECK(rc == 0 && rep.few_cells == 2 && strcmp(out, want) == 0,
          "few: rc %d, %zu cells, stderr\n  '%s'\nwant\n  '%s'", rc, rep.few_cells, out, want);
    free(out);
}

// ---- k-fold: every fold's train and val ----

static void test_folds(void) {
    CtError err = {{0}};
    DataCheckReport rep;
    Toy t;
    // 12 + 12 train/val images in 3 folds, 4 + 4 in test.
    size_t per[2][DATA_SPLITS] = {{12, 0, 4}, {12, 0, 4}};
    toy_init(&t, per);
    for (int c = 0; c < 2; c++)
        for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, c, SPLIT_TRAIN, k)] = (int)(k % 3);
    t.in.fold = t.fold;
    t.in.n_folds = 3;
    size_t count[2][DATA_SPLITS];
    int counts_ok = 1;
    for (long f = 0; f < 3; f++) {
        data_check_count(&t.in, f, count);
        for (int c = 0; c < 2; c++)
            counts_ok &= count[c][SPLIT_TRAIN] == 8 && count[c][SPLIT_VAL] == 4 && count[c][SPLIT_TEST] == 4;
    }
    data_check_count(&t.in, -1, count);
    counts_ok &= count[0][SPLIT_TRAIN] == 12 && count[0][SPLIT_VAL] == 0 && count[1][SPLIT_TEST] == 4;
    CHECK(counts_ok, "fold counts: fold f's val is its 4 images, its train the other 8, test 4");
    capture_begin();
    int rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    char *out = capture_end();
    // 3 folds' val and the test set, 2 classes: every cell has 4.
    const char *want = "ctsweep: warning: data: fewer than 10 images of a class in val or test: CT_NonCOVID val "
                       "(fold 0) 4, val (fold 1) 4, val (fold 2) 4, test 4; CT_COVID val (fold 0) 4, val (fold 1) 4, "
                       "val (fold 2) 4, test 4; intervals will be wide\n";
    CHECK(rc == 0 && rep.few_cells == 8 && strcmp(out, want) == 0, "folds: rc %d (%s), stderr\n  '%s'\nwant\n  '%s'",
          rc, err.msg, out, want);
    free(out);

    // Fold 1 holds no CT_COVID image: its val lacks the class.
    for (size_t k = 0; k < 12; k++) {
        size_t i = toy_at(&t, 1, SPLIT_TRAIN, k);
        if (t.fold[i] == 1) t.fold[i] = 2;
    }
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, NULL, &err);
    free(capture_end());
    want = "data: class CT_COVID has 0 images in val of fold 1 (fold 1: train 12, val 0, test 4); AUC and accuracy "
           "would be meaningless";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "fold val: '%s'\nwant '%s'", err.msg, want);
    // Every CT_NonCOVID train/val image in fold 0: fold 0's train lacks it
    // (and folds 1 and 2 lack it in val; fold 0 comes first).
    for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, 1, SPLIT_TRAIN, k)] = (int)(k % 3);
    for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, 0, SPLIT_TRAIN, k)] = 0;
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, NULL, &err);
    free(capture_end());
    want = "data: class CT_NonCOVID has 0 images in train of fold 0 (fold 0: train 0, val 12, test 4); the classifier "
           "would never see it";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "fold train: '%s'\nwant '%s'", err.msg, want);
    // Without a test image of a class, every fold lacks it in test. Two folds.
    t.in.n_folds = 2;
    for (int c = 0; c < 2; c++)
        for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, c, SPLIT_TRAIN, k)] = (int)(k % 2);
    for (size_t k = 0; k < 4; k++) t.split[toy_at(&t, 1, SPLIT_TEST, 0)] = SPLIT_TRAIN;
    for (size_t i = 0; i < t.in.n; i++)
        if (t.cls[i] == 1 && t.split[i] == SPLIT_TRAIN && t.fold[i] < 0) t.fold[i] = 0;
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, NULL, &err);
    free(capture_end());
    want = "data: class CT_COVID has 0 images in test (fold 0: train 6, val 10, test 0); AUC and accuracy would be "
           "meaningless";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "fold test: '%s'\nwant '%s'", err.msg, want);
    printf("ok   k-fold: a class missing from a fold's train or val, or from test, is refused naming the fold\n");
}

// ---- identical files ----

static void test_duplicates(void) {
    CtError err = {{0}};
    DataCheckReport rep;
    Toy t;
    size_t per[2][DATA_SPLITS] = {{20, 10, 10}, {20, 10, 10}};
    toy_init(&t, per);
    // A val image copied into test under another name.
    size_t v = toy_at(&t, 1, SPLIT_VAL, 2), te = toy_at(&t, 1, SPLIT_TEST, 7);
    memcpy(t.content[te], t.content[v], 32);
    const char *want = "data: CT_COVID/val2.png (val) and CT_COVID/test7.png (test) have identical content: leakage "
                       "between splits (1 set of identical files across splits); set data.on_duplicate: warn to run "
                       "anyway";
    capture_begin();
    int rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    char *out = capture_end();
    CHECK(rc == -1 && strcmp(err.msg, want) == 0 && rep.cross_sets == 1 && out[0] == 0,
          "val/test copy: rc %d '%s'\nwant '%s'\nstderr '%s'", rc, err.msg, want, out);
    free(out);
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_WARN, &rep, &err);
    out = capture_end();
    want = "ctsweep: warning: data: CT_COVID/val2.png (val) and CT_COVID/test7.png (test) have identical content: "
           "leakage between splits (1 set of identical files across splits; data.on_duplicate: warn)\n";
    CHECK(rc == 0 && rep.cross_sets == 1 && strcmp(out, want) == 0, "warn: rc %d, stderr '%s'\nwant '%s'", rc, out,
          want);
    free(out);
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_IGNORE, &rep, &err);
    out = capture_end();
    CHECK(rc == 0 && rep.cross_sets == 0 && out[0] == 0, "ignore: rc %d, stderr '%s'", rc, out);
    free(out);

    // Two train images and a third copy in train: within one split, 2 extra
    // copies; a different label across splits is named.
    toy_init(&t, per);
    size_t a = toy_at(&t, 0, SPLIT_TRAIN, 3), b = toy_at(&t, 0, SPLIT_TRAIN, 9), c = toy_at(&t, 1, SPLIT_TRAIN, 0);
    memcpy(t.content[b], t.content[a], 32);
    memcpy(t.content[c], t.content[a], 32);
    size_t d = toy_at(&t, 1, SPLIT_TEST, 1), e = toy_at(&t, 0, SPLIT_VAL, 4);
    memcpy(t.content[d], t.content[e], 32);
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_WARN, &rep, &err);
    out = capture_end();
    want = "ctsweep: warning: data: CT_NonCOVID/val4.png (val) and CT_COVID/test1.png (test) have identical content "
           "and different classes (CT_NonCOVID, CT_COVID): leakage between splits (1 set of identical files across "
           "splits; data.on_duplicate: warn)\n"
           "ctsweep: warning: data: 2 images are identical to another of the same split (train 2, val 0, test 0), "
           "e.g. CT_NonCOVID/train3.png and CT_NonCOVID/train9.png (train): each copy counts again\n";
    CHECK(rc == 0 && rep.within[SPLIT_TRAIN] == 2 && rep.cross_sets == 1 && strcmp(out, want) == 0,
          "within: rc %d, within %zu, stderr\n'%s'\nwant\n'%s'", rc, rep.within[SPLIT_TRAIN], out, want);
    free(out);
    // Within one split alone is never an error.
    memcpy(t.content[d], (uint8_t[32]){0xEE}, 32);
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    out = capture_end();
    CHECK(rc == 0 && rep.within[SPLIT_TRAIN] == 2 && rep.cross_sets == 0 && strstr(out, "2 images are identical"),
          "within under error: rc %d '%s', stderr '%s'", rc, err.msg, out);
    free(out);

    // k-fold: a copy in another fold leaks (it is val where the other is
    // train); in the same fold it is a copy within a split.
    size_t kf[2][DATA_SPLITS] = {{12, 0, 10}, {12, 0, 10}};
    toy_init(&t, kf);
    for (int cl = 0; cl < 2; cl++)
        for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, cl, SPLIT_TRAIN, k)] = (int)(k % 2);
    t.in.fold = t.fold;
    t.in.n_folds = 2;
    memcpy(t.content[toy_at(&t, 1, SPLIT_TRAIN, 5)], t.content[toy_at(&t, 1, SPLIT_TRAIN, 0)], 32);  // folds 0, 1
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    free(capture_end());
    want = "data: CT_COVID/train0.png (fold 0) and CT_COVID/train5.png (fold 1) have identical content: leakage "
           "between splits (1 set of identical files across splits); set data.on_duplicate: warn to run anyway";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "folds: '%s'\nwant '%s'", err.msg, want);
    toy_init(&t, kf);
    for (int cl = 0; cl < 2; cl++)
        for (size_t k = 0; k < 12; k++) t.fold[toy_at(&t, cl, SPLIT_TRAIN, k)] = (int)(k % 2);
    t.in.fold = t.fold;
    t.in.n_folds = 2;
    memcpy(t.content[toy_at(&t, 1, SPLIT_TRAIN, 4)], t.content[toy_at(&t, 1, SPLIT_TRAIN, 0)], 32);  // both fold 0
    capture_begin();
    rc = data_check_run(&t.in, DUPLICATE_ERROR, &rep, &err);
    out = capture_end();
    CHECK(rc == 0 && rep.cross_sets == 0 && rep.within[SPLIT_TRAIN] == 1 &&
              strstr(out, "e.g. CT_COVID/train0.png and CT_COVID/train4.png (fold 0)"),
          "same fold: rc %d '%s', stderr '%s'", rc, err.msg, out);
    free(out);
    printf("ok   identical files: across splits or folds an error (or a warning), within one a warning with the "
           "count\n");
}

// ---- the table ----

static void test_table(void) {
    Toy t;
    size_t per[2][DATA_SPLITS] = {{20, 6, 12}, {18, 10, 3}};
    toy_init(&t, per);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    data_check_print_table(f, &t.in);
    fclose(f);
    const char *want = "data: images per class and split\n"
                       "  class          train     val    test\n"
                       "  CT_NonCOVID       20       6      12\n"
                       "  CT_COVID          18      10       3\n"
                       "  total             38      16      15\n";
    CHECK(strcmp(buf, want) == 0, "table:\n%s\nwant\n%s", buf, want);
    free(buf);
    size_t kf[2][DATA_SPLITS] = {{12, 0, 4}, {9, 0, 5}};
    toy_init(&t, kf);
    for (int c = 0; c < 2; c++)
        for (size_t k = 0; k < kf[c][0]; k++) t.fold[toy_at(&t, c, SPLIT_TRAIN, k)] = (int)(k % 3);
    t.in.fold = t.fold;
    t.in.n_folds = 3;
    f = open_memstream(&buf, &len);
    data_check_print_table(f, &t.in);
    fclose(f);
    want = "data: images per class, fold and split (a fold's val is its own images, its train the other folds')\n"
           "  fold  class          train     val    test\n"
           "  0     CT_NonCOVID        8       4       4\n"
           "  0     CT_COVID           6       3       5\n"
           "  0     total             14       7       9\n"
           "  1     CT_NonCOVID        8       4       4\n"
           "  1     CT_COVID           6       3       5\n"
           "  1     total             14       7       9\n"
           "  2     CT_NonCOVID        8       4       4\n"
           "  2     CT_COVID           6       3       5\n"
           "  2     total             14       7       9\n";
    CHECK(strcmp(buf, want) == 0, "fold table:\n%s\nwant\n%s", buf, want);
    free(buf);
    DuplicatePolicy p;
    CHECK(duplicate_policy_parse("error", &p) == 0 && p == DUPLICATE_ERROR && duplicate_policy_parse("warn", &p) == 0 &&
              p == DUPLICATE_WARN && duplicate_policy_parse("ignore", &p) == 0 && p == DUPLICATE_IGNORE &&
              duplicate_policy_parse("skip", &p) == -1,
          "duplicate_policy_parse");
    printf("ok   table of images per class and split, and per fold\n");
}

// ---- real folders through the DataSet ----

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

static int check_tree(const DataSpec *spec, DuplicatePolicy policy, DataCheckReport *rep, CtError *err) {
    DataSet ds;
    if (dataset_open(&ds, spec, err)) return -2;
    if (dataset_fingerprint(&ds, err)) {
        dataset_free(&ds);
        return -2;
    }
    capture_begin();
    int rc = data_check_dataset(&ds, spec, policy, rep, err);
    free(capture_end());
    dataset_free(&ds);
    return rc;
}

static void test_dataset_folders(const char *scratch) {
    char root[4096], p[4200];
    snprintf(root, sizeof root, "%s/tree", scratch);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);  // a fresh tree on every run
    const char *dirs[] = {"", "/CT_COVID", "/CT_NonCOVID", "/Other"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s%s", root, dirs[i]);
        mkdir(p, 0755);
    }
    // 10 COVID images with distinct content; CT_NonCOVID empty.
    for (int k = 0; k < 10; k++) {
        snprintf(p, sizeof p, "%s/CT_COVID/c%d.png", root, k);
        char text[32];
        snprintf(text, sizeof text, "covid %d", k);
        check_write_text(p, text);
    }
    DataSpec spec;
    data_spec_default(&spec, root);
    CtError err = {{0}};
    int rc = check_tree(&spec, DUPLICATE_ERROR, NULL, &err);
    const char *want = "data: class CT_NonCOVID has 0 images in val (train 0, val 0, test 0); AUC and accuracy would "
                       "be meaningless";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "empty folder: rc %d '%s'", rc, err.msg);
    for (int k = 0; k < 10; k++) {
        snprintf(p, sizeof p, "%s/CT_NonCOVID/n%d.png", root, k);
        char text[32];
        snprintf(text, sizeof text, "noncovid %d", k);
        check_write_text(p, text);
    }
    DataCheckReport rep;
    rc = check_tree(&spec, DUPLICATE_ERROR, &rep, &err);
    CHECK(rc == 0 && rep.few_cells == 4, "filled: rc %d '%s', %zu few cells", rc, err.msg, rep.few_cells);
    // A third folder sharing label 0, empty: refused by name; the label is "CT_NonCOVID+Other".
    spec.classes[2] = (DataClass){.folder = "Other", .label = 0};
    spec.n_classes = 3;
    rc = check_tree(&spec, DUPLICATE_ERROR, NULL, &err);
    want = "data: class folder Other has 0 images (train 0, val 0, test 0); fill it or remove it from data.classes";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "empty folder of a shared label: rc %d '%s'", rc, err.msg);
    // A copy of a COVID image filed under Other: in one split or in two, the pair is found.
    snprintf(p, sizeof p, "%s/Other/copy.png", root);
    check_write_text(p, "covid 3");
    rc = check_tree(&spec, DUPLICATE_WARN, &rep, &err);
    CHECK(rc == 0 && rep.cross_sets + rep.within[0] + rep.within[1] + rep.within[2] == 1,
          "copy across folders: rc %d '%s', %zu across, within %zu/%zu/%zu", rc, err.msg, rep.cross_sets,
          rep.within[0], rep.within[1], rep.within[2]);
    printf("ok   DataSet: an empty class folder refused (alone or beside another of its label); copies found\n");
}

// Every image of a class skipped as bad (on_bad_image: skip) leaves the class empty.
static void test_all_skipped(const char *scratch) {
    char root[4096], p[4200];
    snprintf(root, sizeof root, "%s/skipped", scratch);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    CtError err = {{0}};
    if (phantom_write_set(root, 40, 3, 32, &err)) {
        CHECK(0, "phantoms: %s", err.msg);
        return;
    }
    snprintf(p, sizeof p, "%s/CT_NonCOVID", root);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            char f[4600];
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            check_write_text(f, "not an image\n");
        }
    if (d) closedir(d);
    DataSpec spec;
    data_spec_default(&spec, root);
    DataSet ds;
    ImageCache ic;
    ImageLimits lim;
    image_limits_default(&lim);
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "skipped: %s", err.msg);
    if (rc) return;
    capture_begin();
    rc = image_cache_build(&ic, &ds, 32, &lim, BAD_IMAGE_SKIP, &err);
    free(capture_end());
    CHECK(rc == 0 && ds.n == 20 && ds.n_skipped == 20, "skip: rc %d (%s), %zu kept, %zu skipped", rc, err.msg, ds.n,
          ds.n_skipped);
    rc = dataset_fingerprint(&ds, &err);
    capture_begin();
    rc = rc ? rc : data_check_dataset(&ds, &spec, DUPLICATE_ERROR, NULL, &err);
    free(capture_end());
    const char *want = "data: class CT_NonCOVID has 0 images in val (train 0, val 0, test 0); AUC and accuracy would "
                       "be meaningless";
    CHECK(rc == -1 && strcmp(err.msg, want) == 0, "every image of a class skipped: rc %d '%s'", rc, err.msg);
    image_cache_free(&ic);
    dataset_free(&ds);
    printf("ok   a class whose every image was skipped as bad is refused\n");
}

static void test_covid_ct(const char *shared) {
    DataSpec spec;
    char root[4096];
    snprintf(root, sizeof root, "%s/covid-ct", shared);
    data_spec_default(&spec, root);
    spec.split = DATA_SPLIT_FILES;
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "COVID-CT: %s", err.msg);
    if (rc) return;
    rc = dataset_fingerprint(&ds, &err);
    CHECK(rc == 0, "COVID-CT fingerprint: %s", err.msg);
    DataCheckReport rep;
    capture_begin();
    rc = data_check_dataset(&ds, &spec, DUPLICATE_ERROR, &rep, &err);
    char *out = capture_end();
    // The official split: no identical files at all, 58 to 105 per class and split.
    CHECK(rc == 0 && rep.cross_sets == 0 && rep.within[0] + rep.within[1] + rep.within[2] == 0 && rep.few_cells == 0 &&
              out[0] == 0,
          "COVID-CT official split: rc %d '%s', %zu across, stderr '%s'", rc, err.msg, rep.cross_sets, out);
    free(out);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    data_check_print_dataset(f, &ds, &spec);
    fclose(f);
    const char *want = "data: images per class and split\n"
                       "  class          train     val    test\n"
                       "  CT_NonCOVID      234      58     105\n"
                       "  CT_COVID         191      60      98\n"
                       "  total            425     118     203\n";
    CHECK(strcmp(buf, want) == 0, "COVID-CT table:\n%s", buf);
    free(buf);
    dataset_free(&ds);
    printf("ok   COVID-CT official split passes under on_duplicate: error (no identical files)\n");
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_data_check SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    snprintf(g_stderr_path, sizeof g_stderr_path, "%s/stderr.txt", argv[1]);
    test_classes();
    test_folds();
    test_duplicates();
    test_table();
    test_dataset_folders(argv[1]);
    test_all_skipped(argv[1]);
    test_covid_ct(argv[2]);
    return check_summary();
}
