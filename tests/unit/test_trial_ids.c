/*
 * test_trial_ids.c — trial ids follow the weights' content, not their path:
 * the same file moved, copied under another name or reached through a link
 * gives the same ids; one byte changed gives new ids to the trials of that
 * model only; weights named for a model outside the grid are not read. The
 * digest the grid keeps is SHA-256 of the file (FIPS 180-4's "abc" vector
 * as the reference), and a file gone between loading the configuration and
 * building the grid is one error naming the configuration, the key and the
 * file. The augmentation's canonical text is pinned byte for byte (the text
 * format-1 trial ids were made from), with and without the view count.
 *
 * The ids of configurations without weights are pinned against earlier
 * builds by tests/mpi/check_ids.py (they depend on the data's fingerprint).
 *
 * usage: test_trial_ids SCRATCH_DIR SHARED_DATA_DIR
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config/config.h"
#include "config/grid.h"
#include "data/augment.h"
#include "util/sha256.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

static const char *CONFIG = "data:\n"
                            "  phantoms: {count: 64, size: 64, seed: 2}\n"
                            "  image_size: 48\n"
                            "grid:\n"
                            "  model: [resnet34, vgg16]\n"
                            "  epochs: [2, 4]\n"
                            "  batch_size: [8]\n"
                            "  clr:\n"
                            "    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}\n";

// SHA-256("abc"), FIPS 180-4 appendix B.1.
static const char *ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

typedef struct {
    char id[8][TRIAL_ID_HEX + 1];
    char model[8][32];
    size_t n;
    char vgg16_sha256[WEIGHTS_DIGEST_HEX + 1];
} Ids;

// Builds the grid of CONFIG plus `weights` (a YAML line, or "") and keeps
// its ids; -1 with err when loading or building fails.
static int ids_of(Ids *out, const char *scratch, const char *weights, CtError *err) {
    char path[4096], text[2048];
    snprintf(path, sizeof path, "%s/sweep.yaml", scratch);
    snprintf(text, sizeof text, "%s%s", CONFIG, weights);
    check_write_text(path, text);
    SweepConfig cfg;
    if (config_load(&cfg, path, err)) return -1;
    Grid g;
    int rc = grid_build(&g, &cfg, "fingerprint-of-test_trial_ids", 38, err);
    config_free(&cfg);
    if (rc) return -1;
    memset(out, 0, sizeof *out);
    for (size_t t = 0; t < g.n_trials && t < 8; t++) {
        snprintf(out->id[t], sizeof out->id[t], "%s", g.trials[t].id);
        snprintf(out->model[t], sizeof out->model[t], "%s", g.trials[t].model);
    }
    out->n = g.n_trials;
    snprintf(out->vgg16_sha256, sizeof out->vgg16_sha256, "%s", grid_weights_sha256(&g, "vgg16"));
    grid_free(&g);
    return 0;
}

static int same_ids(const Ids *a, const Ids *b) {
    if (a->n != b->n) return 0;
    for (size_t t = 0; t < a->n; t++)
        if (strcmp(a->id[t], b->id[t]) != 0) return 0;
    return 1;
}

// Replaces a file's content through a new file renamed over it (a new
// inode: the digest memo cannot mistake it for the old file, whatever the
// clock's resolution).
static void replace_file(const char *scratch, const char *path, const char *text) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/replace.tmp", scratch);
    check_write_text(tmp, text);
    if (rename(tmp, path) != 0) {
        perror(path);
        exit(2);
    }
}

static void test_weights(const char *scratch) {
    char a[4096], b[4096], copy[4096], link[4096], line[8192];
    snprintf(a, sizeof a, "%s/vgg16.safetensors", scratch);
    snprintf(b, sizeof b, "%s/moved.safetensors", scratch);
    snprintf(copy, sizeof copy, "%s/another-name.safetensors", scratch);
    snprintf(link, sizeof link, "%s/link.safetensors", scratch);
    unlink(b);
    unlink(link);
    check_write_text(a, "abc");
    check_write_text(copy, "abc");
    CtError err = {{0}};
    Ids none, at_a, moved, copied, linked, changed, other;
    CHECK(ids_of(&none, scratch, "", &err) == 0 && none.n == 4, "no weights: %s", err.msg);
    snprintf(line, sizeof line, "weights: {vgg16: %s}\n", a);
    CHECK(ids_of(&at_a, scratch, line, &err) == 0, "weights at %s: %s", a, err.msg);
    CHECK(strcmp(at_a.vgg16_sha256, ABC_SHA256) == 0, "vgg16 digest %s, want SHA-256(abc) %s", at_a.vgg16_sha256,
          ABC_SHA256);
    for (size_t t = 0; t < none.n; t++)
        CHECK(strcmp(none.id[t], at_a.id[t]) != 0, "trial %zu (%s): naming weights keeps id %s (format 2 must differ)",
              t, none.model[t], none.id[t]);

    CHECK(rename(a, b) == 0, "rename %s: %s", a, strerror(errno));
    snprintf(line, sizeof line, "weights: {vgg16: %s}\n", b);
    CHECK(ids_of(&moved, scratch, line, &err) == 0 && same_ids(&at_a, &moved), "moved weights: ids changed %s",
          err.msg);
    CHECK(rename(b, a) == 0, "rename %s back: %s", b, strerror(errno));
    snprintf(line, sizeof line, "weights: {vgg16: %s}\n", copy);
    CHECK(ids_of(&copied, scratch, line, &err) == 0 && same_ids(&at_a, &copied), "a copy under another name: ids "
          "changed %s", err.msg);
    CHECK(symlink(a, link) == 0, "symlink: %s", strerror(errno));
    snprintf(line, sizeof line, "weights: {vgg16: %s}\n", link);
    CHECK(ids_of(&linked, scratch, line, &err) == 0 && same_ids(&at_a, &linked), "through a link: ids changed %s",
          err.msg);

    // One byte: vgg16's trials get new ids, resnet34's (no weights) keep theirs.
    replace_file(scratch, a, "abd");
    snprintf(line, sizeof line, "weights: {vgg16: %s}\n", a);
    CHECK(ids_of(&changed, scratch, line, &err) == 0, "changed weights: %s", err.msg);
    for (size_t t = 0; t < at_a.n; t++) {
        int vgg = strcmp(at_a.model[t], "vgg16") == 0, same = strcmp(at_a.id[t], changed.id[t]) == 0;
        CHECK(vgg ? !same : same, "one byte of vgg16's weights: trial %zu (%s) id %s -> %s", t, at_a.model[t],
              at_a.id[t], changed.id[t]);
    }
    replace_file(scratch, a, "abc");

    // Weights of a model outside the grid: named (format 2), never read.
    snprintf(line, sizeof line, "weights: {vgg16: %s, vgg19: %s}\n", a, copy);
    CHECK(ids_of(&other, scratch, line, &err) == 0 && same_ids(&at_a, &other), "vgg19 outside the grid: ids "
          "changed %s", err.msg);
    replace_file(scratch, copy, "something else");
    CHECK(ids_of(&other, scratch, line, &err) == 0 && same_ids(&at_a, &other), "vgg19's content outside the grid: "
          "ids changed %s", err.msg);

    // Gone between loading the configuration and building the grid.
    char path[4096], want[9000];
    snprintf(path, sizeof path, "%s/sweep.yaml", scratch);
    snprintf(line, sizeof line, "%sweights: {vgg16: %s}\n", CONFIG, b);
    check_write_text(b, "abc");
    check_write_text(path, line);
    SweepConfig cfg;
    Grid g;
    CHECK(config_load(&cfg, path, &err) == 0, "config: %s", err.msg);
    unlink(b);
    err.msg[0] = '\0';
    CHECK(grid_build(&g, &cfg, "fp", 38, &err) == -1, "grid built without its weights file");
    snprintf(want, sizeof want, "%s: weights.vgg16: %s: cannot read (No such file or directory)", cfg.path, b);
    CHECK(strcmp(err.msg, want) == 0 && !strchr(err.msg, '\n'), "missing weights: '%s', want '%s'", err.msg, want);
    config_free(&cfg);
}

// The canonical text of the augmentation settings (the bytes format-1 ids hashed).
static void test_augment_text(void) {
    AugmentSpec s = augment_spec_default();
    s.rotate_deg = 10;
    s.rotate_prob = 0.5;
    s.flip_axis = AUGMENT_FLIP_UD;
    s.flip_prob = 0.25;
    s.zoom_min = 0.9;
    s.zoom_max = 1.1;
    s.zoom_prob = 0.3;
    s.noise_std = 0.1;
    s.noise_prob = 0.2;
    s.aug_views = 3;
    const char *want = "10,0.5,1,0.25,0.90000000000000002,1.1000000000000001,0.29999999999999999,"
                       "0.10000000000000001,0.20000000000000001";
    char with_views[256];
    snprintf(with_views, sizeof with_views, "%s,3", want);
    for (int v = 0; v < 2; v++) {
        Sha256 h;
        sha256_init(&h);
        augment_spec_hash(&h, &s, v);
        uint8_t got[32], ref[32];
        sha256_final(&h, got);
        const char *text = v ? with_views : want;
        sha256_buffer(text, strlen(text), ref);
        CHECK(memcmp(got, ref, 32) == 0, "augment_spec_hash (with_views %d) is not the text '%s'", v, text);
    }
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_trial_ids SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    CtError err = {{0}};
    if (ct_mkdirs(argv[1], &err)) {
        printf("FAIL cannot create %s: %s\n", argv[1], err.msg);
        return 2;
    }
    test_weights(argv[1]);
    test_augment_text();
    return check_summary();
}
