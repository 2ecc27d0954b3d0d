/*
 * test_folds.c — groups and folds: group ids from a pattern and from a CSV
 * file (quotes, CRLF, header; missing, conflicting and malformed rows), a
 * grouped fraction split, k-fold folds stratified within one image per
 * class per fold (on a synthetic set and on COVID-CT's official pool), no
 * group in two of train/val/test in any fold, the same folds for the same
 * seed and others for another, and a group straddling two split files
 * (an error naming the group and both files, or a warning).
 *
 * usage: test_folds SCRATCH_DIR SHARED_DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/folds.h"
#include "data/groups.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "check.h"

// Patients per class and their slices: neg/nNN-sK.png (label 0) and
// pos/pNN-sK.png (label 1), 1 to 4 slices each.
#define N_NEG 20
#define N_POS 17
static size_t slices_of(int pos, int patient) { return (size_t)((patient * 7 + pos * 3) % 4) + 1; }

static void make_set(const char *root) {
    char p[4096];
    mkdir(root, 0755);
    for (int pos = 0; pos < 2; pos++) {
        snprintf(p, sizeof p, "%s/%s", root, pos ? "pos" : "neg");
        mkdir(p, 0755);
        for (int k = 0; k < (pos ? N_POS : N_NEG); k++)
            for (size_t s = 0; s < slices_of(pos, k); s++) {
                snprintf(p, sizeof p, "%s/%s/%c%02d-s%zu.png", root, pos ? "pos" : "neg", pos ? 'p' : 'n', k, s);
                check_write_text(p, "x");
            }
    }
}

static void spec_for(DataSpec *spec, const char *root) {
    data_spec_default(spec, root);
    snprintf(spec->classes[0].folder, sizeof spec->classes[0].folder, "neg");
    snprintf(spec->classes[1].folder, sizeof spec->classes[1].folder, "pos");
}

static const char *PATTERN = "^[a-z]+/([np][0-9]+)-s[0-9]+\\.png$";

// The group id the names above encode, e.g. "p07".
static void expected_group(const char *rel, char *out, size_t cap) { snprintf(out, cap, "%.3s", rel + 4); }

// Each group plays one role (train, val or test) in every fold.
static int groups_whole(const DataSet *ds, int fold) {
    for (size_t i = 0; i < ds->n; i++)
        for (size_t j = i + 1; j < ds->n; j++)
            if (strcmp(ds->items[i].group, ds->items[j].group) == 0 &&
                folds_split_of(&ds->items[i], fold) != folds_split_of(&ds->items[j], fold))
                return 0;
    return 1;
}

// Per fold and label, the val counts differ by at most one.
static int stratified(const DataSet *ds, size_t K, size_t *spread) {
    size_t cnt[DATA_MAX_FOLDS][2] = {{0}};
    for (size_t i = 0; i < ds->n; i++)
        if (ds->items[i].fold >= 0) cnt[ds->items[i].fold][ds->items[i].label != 0]++;
    *spread = 0;
    for (int l = 0; l < 2; l++) {
        size_t lo = SIZE_MAX, hi = 0;
        for (size_t f = 0; f < K; f++) {
            if (cnt[f][l] < lo) lo = cnt[f][l];
            if (cnt[f][l] > hi) hi = cnt[f][l];
        }
        if (hi - lo > *spread) *spread = hi - lo;
    }
    return *spread <= 1;
}

static void test_pattern(const char *root) {
    DataSpec spec;
    spec_for(&spec, root);
    spec.groups = DATA_GROUPS_PATTERN;
    snprintf(spec.group_pattern, sizeof spec.group_pattern, "%s", PATTERN);
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "pattern groups: %s", err.msg);
    if (rc) return;
    size_t bad = 0;
    for (size_t i = 0; i < ds.n; i++) {
        char want[16];
        expected_group(ds.items[i].rel, want, sizeof want);
        bad += strcmp(ds.items[i].group, want) != 0;
    }
    CHECK(bad == 0, "pattern groups: %zu images with the wrong group", bad);
    // The grouped fraction split keeps groups whole and each split near its
    // share of each label (within one group, 4 images).
    CHECK(groups_whole(&ds, -1), "grouped fraction split divides a group");
    size_t total[2] = {0, 0};
    for (size_t i = 0; i < ds.n; i++) total[ds.items[i].label != 0]++;
    for (int s = 0; s < DATA_SPLITS; s++)
        for (int l = 0; l < 2; l++) {
            double want = spec.fractions[s] * (double)total[l], got = (double)ds.count[s][l];
            CHECK(got >= want - 4 && got <= want + 4, "grouped split %s label %d: %g images, want %g +- 4",
                  split_name(s), l, got, want);
        }
    dataset_free(&ds);

    // An image the pattern does not match, and a pattern without a group.
    snprintf(spec.group_pattern, sizeof spec.group_pattern, "^neg/(n[0-9]+)-");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "does not match pos/p00-s0.png"), "unmatched image: %s", err.msg);
    CHECK(groups_pattern_check("n[0-9]+", &err) != 0 && strstr(err.msg, "no capture group"), "no group: %s", err.msg);
    CHECK(groups_pattern_check("(n[0-9]+", &err) != 0 && strstr(err.msg, "regular expression"), "bad regex: %s",
          err.msg);
    char *g = groups_match("-(p[0-9]+)-", "CT_COVID/2020.01.24.919183-p27-132.png");
    CHECK(g && strcmp(g, "p27") == 0, "groups_match: %s", g ? g : "(null)");
    free(g);
}

static void test_csv(const char *root, const char *scratch) {
    DataSpec spec;
    spec_for(&spec, root);
    spec.groups = DATA_GROUPS_FILE;
    snprintf(spec.group_file, sizeof spec.group_file, "%s/groups.csv", scratch);
    // Every image, the header, CRLF, a quoted path and a quoted group.
    FILE *f = fopen(spec.group_file, "wb");
    fprintf(f, "path,group\r\n");
    for (int pos = 0; pos < 2; pos++)
        for (int k = 0; k < (pos ? N_POS : N_NEG); k++)
            for (size_t s = 0; s < slices_of(pos, k); s++) {
                if (k == 3 && s == 0) fprintf(f, "\"%s/%c%02d-s%zu.png\",\"%c%02d\"\r\n", pos ? "pos" : "neg",
                                              pos ? 'p' : 'n', k, s, pos ? 'p' : 'n', k);
                else fprintf(f, "%s/%c%02d-s%zu.png,%c%02d\r\n", pos ? "pos" : "neg", pos ? 'p' : 'n', k, s,
                             pos ? 'p' : 'n', k);
            }
    fclose(f);
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "CSV groups: %s", err.msg);
    if (rc == 0) {
        size_t bad = 0;
        for (size_t i = 0; i < ds.n; i++) {
            char want[16];
            expected_group(ds.items[i].rel, want, sizeof want);
            bad += strcmp(ds.items[i].group, want) != 0;
        }
        CHECK(bad == 0, "CSV groups: %zu images with the wrong group", bad);
        dataset_free(&ds);
    }
    // A missing image, a conflicting row, a malformed row.
    check_write_text(spec.group_file, "neg/n00-s0.png,n00\n");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "groups.csv: no row for neg/n01-s0.png"), "missing row: %s", err.msg);
    check_write_text(spec.group_file, "neg/n00-s0.png,n00\nneg/n00-s0.png,n01\n");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "groups.csv:2: neg/n00-s0.png is given group 'n01' here and 'n00' on line 1"),
          "conflicting rows: %s", err.msg);
    check_write_text(spec.group_file, "neg/n00-s0.png,n00,extra\n");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "groups.csv:1: expected two columns"), "three columns: %s", err.msg);
    check_write_text(spec.group_file, "\"neg/n00-s0.png,n00\n");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "groups.csv:1: expected two columns"), "open quote: %s", err.msg);
}

static void fold_vector(const DataSet *ds, int *out) {
    for (size_t i = 0; i < ds->n; i++) out[i] = ds->items[i].fold;
}

static void test_kfold(const char *root) {
    DataSpec spec;
    spec_for(&spec, root);
    spec.kfold = 4;
    spec.seed = 7;
    DataSet ds;
    CtError err = {{0}};
    // Each image its own group: within one image per class per fold.
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0 && ds.kfold == 4, "kfold without groups: %s", err.msg);
    if (rc) return;
    size_t spread;
    CHECK(stratified(&ds, 4, &spread), "kfold without groups: per-class spread %zu > 1", spread);
    size_t test_folds = 0, pooled = 0;
    for (size_t i = 0; i < ds.n; i++) {
        test_folds += ds.items[i].split == SPLIT_TEST && ds.items[i].fold != -1;
        pooled += ds.items[i].split != SPLIT_TEST;
    }
    CHECK(test_folds == 0, "%zu test images have a fold", test_folds);
    size_t n_val = 0;
    for (int f = 0; f < 4; f++) n_val += folds_count(&ds, f, SPLIT_VAL);
    CHECK(n_val == pooled, "every pooled image validates once: %zu of %zu", n_val, pooled);
    int *a = ct_malloc_array(ds.n, sizeof *a), *b = ct_malloc_array(ds.n, sizeof *b);
    fold_vector(&ds, a);
    size_t n = ds.n;
    dataset_free(&ds);
    dataset_open(&ds, &spec, &err);
    fold_vector(&ds, b);
    CHECK(ds.n == n && memcmp(a, b, n * sizeof *a) == 0, "same seed, different folds");
    dataset_free(&ds);
    spec.seed = 8;
    dataset_open(&ds, &spec, &err);
    fold_vector(&ds, b);
    CHECK(ds.n == n && memcmp(a, b, n * sizeof *a) != 0, "another seed, the same folds");
    dataset_free(&ds);
    free(a);
    free(b);

    // Grouped: no group in two of train, val and test in any fold.
    spec.groups = DATA_GROUPS_PATTERN;
    snprintf(spec.group_pattern, sizeof spec.group_pattern, "%s", PATTERN);
    for (uint64_t seed = 0; seed < 5; seed++) {
        spec.seed = seed;
        rc = dataset_open(&ds, &spec, &err);
        CHECK(rc == 0, "grouped kfold seed %llu: %s", (unsigned long long)seed, err.msg);
        if (rc) continue;
        for (int f = 0; f < 4; f++)
            CHECK(groups_whole(&ds, f), "seed %llu fold %d divides a group", (unsigned long long)seed, f);
        for (int f = 0; f < 4; f++)
            CHECK(folds_count(&ds, f, SPLIT_VAL) > 0 && folds_count(&ds, f, SPLIT_TRAIN) > 0,
                  "seed %llu fold %d has an empty train or val", (unsigned long long)seed, f);
        dataset_free(&ds);
    }
    // More folds than groups in train+val.
    spec.kfold = 40;
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "kfold 40 needs at least 40 groups"), "too many folds: %s", err.msg);
}

static void test_covid_kfold(const char *covid) {
    DataSpec spec;
    data_spec_default(&spec, covid);
    spec.split = DATA_SPLIT_FILES;
    spec.kfold = 5;
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "COVID-CT 5-fold: %s", err.msg);
    if (rc) return;
    size_t spread;
    CHECK(stratified(&ds, 5, &spread), "COVID-CT 5-fold: per-class spread %zu > 1", spread);
    // The official test split stays the test split.
    CHECK(ds.count[SPLIT_TEST][0] == 105 && ds.count[SPLIT_TEST][1] == 98, "COVID-CT test split changed");
    CHECK(groups_whole(&ds, 0), "5-fold divides an image");
    dataset_free(&ds);
}

static void test_straddle(const char *root) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/splits", root);
    mkdir(dir, 0755);
    // Patient n00 has slices s0 and s1 (slices_of(0, 0) = 1: s0 only), so use n01.
    char p[4200];
    snprintf(p, sizeof p, "%s/trainneg.txt", dir);
    check_write_text(p, "n01-s0.png\nn02-s0.png\n");
    snprintf(p, sizeof p, "%s/valneg.txt", dir);
    check_write_text(p, "n03-s0.png\n");
    snprintf(p, sizeof p, "%s/testneg.txt", dir);
    check_write_text(p, "n01-s1.png\nn04-s0.png\n");
    snprintf(p, sizeof p, "%s/trainpos.txt", dir);
    check_write_text(p, "p01-s0.png\n");
    snprintf(p, sizeof p, "%s/valpos.txt", dir);
    check_write_text(p, "p02-s0.png\n");
    snprintf(p, sizeof p, "%s/testpos.txt", dir);
    check_write_text(p, "p03-s0.png\n");
    DataSpec spec;
    spec_for(&spec, root);
    spec.split = DATA_SPLIT_FILES;
    spec.groups = DATA_GROUPS_PATTERN;
    snprintf(spec.group_pattern, sizeof spec.group_pattern, "%s", PATTERN);
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    char want_a[4300], want_b[4300];
    snprintf(want_a, sizeof want_a, "%s/trainneg.txt (neg/n01-s0.png)", dir);
    snprintf(want_b, sizeof want_b, "%s/testneg.txt (neg/n01-s1.png)", dir);
    CHECK(rc != 0 && strstr(err.msg, "group 'n01' is in two splits") && strstr(err.msg, want_a) &&
              strstr(err.msg, want_b),
          "straddling group: %s", err.msg);
    spec.on_straddle = DATA_STRADDLE_WARN;
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0 && ds.n == 8, "on_straddle warn: rc %d, %zu images, %s", rc, ds.n, rc ? err.msg : "");
    if (rc == 0) dataset_free(&ds);
    // Without groups each image is its own group: nothing straddles.
    spec.on_straddle = DATA_STRADDLE_ERROR;
    spec.groups = DATA_GROUPS_NONE;
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "split files without groups: %s", err.msg);
    if (rc == 0) dataset_free(&ds);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_folds SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    char root[4096], covid[4096];
    snprintf(root, sizeof root, "%s/set", argv[1]);
    snprintf(covid, sizeof covid, "%s/covid-ct", argv[2]);
    make_set(root);
    test_pattern(root);
    test_csv(root, argv[1]);
    test_kfold(root);
    test_covid_kfold(covid);
    test_straddle(root);
    return check_summary();
}
