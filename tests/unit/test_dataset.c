/*
 * test_dataset.c — the data set index: the official COVID-CT split, seeded
 * stratified splits, split-file parsing (CRLF, no final newline, blank
 * lines), unsafe and missing entries, and the fingerprint.
 *
 * usage: test_dataset SCRATCH_DIR SHARED_DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"

// Scratch paths are short; a truncated one would fail the test loudly anyway.
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "check.h"

static int no_duplicates(const DataSet *ds) {
    for (size_t i = 0; i < ds->n; i++)
        for (size_t j = i + 1; j < ds->n; j++)
            if (strcmp(ds->items[i].rel, ds->items[j].rel) == 0) return 0;
    return 1;
}

static void test_official(const char *covid) {
    DataSpec spec;
    data_spec_default(&spec, covid);
    spec.split = DATA_SPLIT_FILES;
    DataSet ds;
    CtError err = {{0}};
    int rc = dataset_open(&ds, &spec, &err);
    CHECK(rc == 0, "official split: %s", err.msg);
    if (rc) return;
    size_t want[3][2] = {{234, 191}, {58, 60}, {105, 98}};  // [split][negative, positive]
    for (int s = 0; s < 3; s++)
        for (int l = 0; l < 2; l++)
            CHECK(ds.count[s][l] == want[s][l], "official %s %s: %zu, want %zu", split_name(s),
                  l ? "COVID" : "NonCOVID", ds.count[s][l], want[s][l]);
    CHECK(ds.n == 746, "official: %zu images, want 746", ds.n);
    CHECK(no_duplicates(&ds), "official: an image is in two splits");
    rc = dataset_fingerprint(&ds, &err);
    CHECK(rc == 0 && strlen(ds.fingerprint) == 64, "fingerprint: %s", err.msg);
    char fp1[65];
    memcpy(fp1, ds.fingerprint, 65);
    dataset_free(&ds);
    dataset_open(&ds, &spec, &err);
    dataset_fingerprint(&ds, &err);
    CHECK(strcmp(fp1, ds.fingerprint) == 0, "fingerprint not stable");
    dataset_free(&ds);
    // The same images split by fractions have another fingerprint.
    spec.split = DATA_SPLIT_FRACTIONS;
    dataset_open(&ds, &spec, &err);
    dataset_fingerprint(&ds, &err);
    CHECK(strcmp(fp1, ds.fingerprint) != 0, "fingerprint ignores the split");
    printf("ok   official split 191/60/98 + 234/58/105, fingerprint %.16s...\n", fp1);
    dataset_free(&ds);
}

static void test_fractions(const char *covid) {
    DataSpec spec;
    data_spec_default(&spec, covid);
    DataSet a, b, c;
    CtError err = {{0}};
    CHECK(dataset_open(&a, &spec, &err) == 0, "fractions: %s", err.msg);
    CHECK(dataset_open(&b, &spec, &err) == 0, "fractions: %s", err.msg);
    spec.seed = 7;
    CHECK(dataset_open(&c, &spec, &err) == 0, "fractions: %s", err.msg);
    // Stratified: each class split 0.8 / 0.1 / 0.1 to the nearest image.
    size_t per_class[2] = {397, 349};
    for (int l = 0; l < 2; l++) {
        size_t n = per_class[l];
        size_t tr = (size_t)(0.8 * n + 0.5), va = (size_t)(0.1 * n + 0.5);
        CHECK(a.count[0][l] == tr && a.count[1][l] == va && a.count[2][l] == n - tr - va,
              "class %d: %zu/%zu/%zu, want %zu/%zu/%zu", l, a.count[0][l], a.count[1][l], a.count[2][l], tr, va,
              n - tr - va);
    }
    int same = a.n == b.n, differ = 0;
    for (size_t i = 0; i < a.n && i < c.n; i++) {
        same &= a.items[i].split == b.items[i].split && strcmp(a.items[i].rel, b.items[i].rel) == 0;
        differ += a.items[i].split != c.items[i].split;
    }
    CHECK(same, "fraction split differs between two runs with one seed");
    CHECK(differ > 50, "seed 0 and seed 7 give nearly the same split (%d differ)", differ);
    CHECK(no_duplicates(&a), "fractions: duplicate image");
    printf("ok   fraction split stratified, stable for a seed, %d of %zu assignments differ across seeds\n", differ,
           a.n);
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
}

static void make_tree(const char *root) {
    char p[4096];
    mkdir(root, 0755);
    snprintf(p, sizeof p, "%s/CT_COVID", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/CT_NonCOVID", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/splits", root);
    mkdir(p, 0755);
    const char *files[] = {"CT_COVID/a.png", "CT_COVID/b.png", "CT_COVID/c d.png", "CT_NonCOVID/x.jpg",
                           "CT_NonCOVID/y.jpg", "CT_NonCOVID/.hidden"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", root, files[i]);
        check_write_text(p, files[i]);
    }
}

static void write_split(const char *root, const char *name, const char *text) {
    char p[4096];
    snprintf(p, sizeof p, "%s/splits/%s", root, name);
    check_write_text(p, text);
}

static int open_split(const char *root, CtError *err, DataSet *ds) {
    DataSpec spec;
    data_spec_default(&spec, root);
    spec.split = DATA_SPLIT_FILES;
    return dataset_open(ds, &spec, err);
}

static void test_split_files(const char *scratch) {
    char root[4096];
    snprintf(root, sizeof root, "%s/tree", scratch);
    make_tree(root);
    // CRLF, no final newline, blank lines, a name with a space.
    write_split(root, "trainCT_COVID.txt", "a.png\r\n\r\nc d.png");
    write_split(root, "valCT_COVID.txt", "b.png\n");
    write_split(root, "testCT_COVID.txt", "");
    write_split(root, "trainCT_NonCOVID.txt", "x.jpg\r\n");
    write_split(root, "valCT_NonCOVID.txt", "\n");
    write_split(root, "testCT_NonCOVID.txt", "y.jpg");
    DataSet ds;
    CtError err = {{0}};
    int rc = open_split(root, &err, &ds);
    CHECK(rc == 0, "split files: %s", err.msg);
    if (rc == 0) {
        CHECK(ds.n == 5, "split files: %zu items, want 5", ds.n);
        CHECK(ds.count[0][1] == 2 && ds.count[1][1] == 1 && ds.count[2][0] == 1 && ds.count[0][0] == 1,
              "split files: wrong counts");
        // Order: classes as configured (NonCOVID first), names sorted.
        CHECK(strcmp(ds.items[0].rel, "CT_NonCOVID/x.jpg") == 0 && ds.items[0].label == 0, "order: %s",
              ds.items[0].rel);
        CHECK(strcmp(ds.items[3].rel, "CT_COVID/b.png") == 0 && ds.items[3].split == SPLIT_VAL, "order: %s",
              ds.items[3].rel);
        dataset_free(&ds);
    }
    struct {
        const char *file, *text, *want;
    } bad[] = {
        {"valCT_COVID.txt", "b.png\nmissing.png\n", "missing.png"},
        {"valCT_COVID.txt", "../CT_NonCOVID/x.jpg\n", "unsafe"},
        {"valCT_COVID.txt", "/etc/passwd\n", "unsafe"},
        {"valCT_COVID.txt", "a.png\n", "listed in the train split"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_split(root, bad[i].file, bad[i].text);
        rc = open_split(root, &err, &ds);
        CHECK(rc != 0 && strstr(err.msg, bad[i].want) && strstr(err.msg, bad[i].file),
              "bad split %zu: rc %d, message '%s' lacks '%s'", i, rc, err.msg, bad[i].want);
        if (rc == 0) dataset_free(&ds);
        else printf("ok   refused: %s\n", err.msg);
    }
    write_split(root, "valCT_COVID.txt", "b.png\n");
    char p[4096];
    snprintf(p, sizeof p, "%s/splits/testCT_NonCOVID.txt", root);
    remove(p);
    rc = open_split(root, &err, &ds);
    CHECK(rc != 0 && strstr(err.msg, "testCT_NonCOVID.txt"), "missing split file: %s", err.msg);
    if (rc == 0) dataset_free(&ds);
    else printf("ok   refused: %s\n", err.msg);
    // Class folders must stay inside the root.
    DataSpec spec;
    data_spec_default(&spec, root);
    snprintf(spec.classes[0].folder, sizeof spec.classes[0].folder, "../outside");
    rc = dataset_open(&ds, &spec, &err);
    CHECK(rc != 0 && strstr(err.msg, "../outside"), "escaping class folder accepted: %s", err.msg);
    // Fingerprint changes with one byte of content.
    data_spec_default(&spec, root);
    dataset_open(&ds, &spec, &err);
    dataset_fingerprint(&ds, &err);
    char fp[65];
    memcpy(fp, ds.fingerprint, 65);
    dataset_free(&ds);
    snprintf(p, sizeof p, "%s/CT_COVID/a.png", root);
    check_write_text(p, "CT_COVID/a.pnG");
    dataset_open(&ds, &spec, &err);
    dataset_fingerprint(&ds, &err);
    CHECK(strcmp(fp, ds.fingerprint) != 0, "fingerprint ignores content");
    dataset_free(&ds);
}

static void test_safe_paths(void) {
    struct {
        const char *p;
        int ok;
    } t[] = {{"a.png", 1}, {"sub/a.png", 1}, {"a..b.png", 1}, {"", 0},        {"/abs", 0},
             {"..", 0},    {"a/../b", 0},    {"./a", 0},       {"a//b", 0},   {"a\\b", 0},
             {"a\nb", 0},  {"..a", 1}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        CHECK(dataset_path_is_safe(t[i].p) == t[i].ok, "dataset_path_is_safe(\"%s\") != %d", t[i].p, t[i].ok);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_dataset SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    mkdir(argv[1], 0755);
    char covid[4096];
    snprintf(covid, sizeof covid, "%s/covid-ct", argv[2]);
    test_safe_paths();
    test_official(covid);
    test_fractions(covid);
    test_split_files(argv[1]);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
