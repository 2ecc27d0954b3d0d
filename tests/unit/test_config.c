/*
 * test_config.c — the sweep configuration: the two shipped configurations
 * (sweep/demo.yaml, sweep/covid-ct.yaml) parse to the values they state;
 * config_print's output parses back to the same configuration; the help
 * names every key of the table; and each bad configuration in the table
 * below is refused with one line "FILE:LINE: KEY: what".
 *
 * The repository root comes from __FILE__, which CMake passes as an
 * absolute path.
 *
 * usage: test_config SCRATCH_DIR SHARED_DATA_DIR
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "config/config_table.h"

#pragma GCC diagnostic ignored "-Wformat-truncation"

#include "check.h"

static void make_dir(const char *path) {
    CtError err = {{0}};
    if (ct_mkdirs(path, &err)) {
        printf("FAIL cannot create %s: %s\n", path, err.msg);
        exit(2);
    }
}

// Not inlined: GCC otherwise mistakes the returned stream buffer for a local.
__attribute__((noinline)) static char *print_to_string(const SweepConfig *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print(f, cfg);
    fclose(f);
    return buf;
}

// config_print's text without its "# read from" line, which names the file.
static void drop_source_line(char *s) {
    char *p = strstr(s, "# read from ");
    if (!p) return;
    size_t start = (size_t)(p - s), end = start;
    while (s[end] && s[end] != '\n') end++;
    if (s[end]) end++;
    memmove(s + start, s + end, strlen(s + end) + 1);
}

// Prints cfg, parses the text back under name, prints again: the two texts
// and the main fields must agree.
static void check_round_trip(const char *label, const SweepConfig *cfg, const char *name) {
    char *t1 = print_to_string(cfg);
    SweepConfig back;
    CtError err = {{0}};
    int rc = config_parse(&back, name, t1, strlen(t1), &err);
    CHECK(rc == 0, "%s round trip: %s\n--- printed:\n%s---", label, err.msg, t1);
    if (rc == 0) {
        char *t2 = print_to_string(&back);
        drop_source_line(t1);
        drop_source_line(t2);
        CHECK(strcmp(t1, t2) == 0, "%s round trip: printed texts differ\n--- first:\n%s--- second:\n%s---", label, t1,
              t2);
        CHECK(memcmp(&back.data, &cfg->data, sizeof back.data) == 0, "%s round trip: data spec differs", label);
        CHECK(memcmp(back.weights, cfg->weights, sizeof back.weights) == 0, "%s round trip: weights differ", label);
        CHECK(memcmp(back.clr, cfg->clr, sizeof back.clr) == 0 && back.n_clr == cfg->n_clr,
              "%s round trip: clr differs", label);
        CHECK(back.data_root_set == cfg->data_root_set && back.head_hidden_set == cfg->head_hidden_set &&
                  back.head_dropout_set == cfg->head_dropout_set && back.n_seeds == cfg->n_seeds &&
                  back.seeds[back.n_seeds - 1] == cfg->seeds[cfg->n_seeds - 1] &&
                  back.limits.max_decoded_bytes == cfg->limits.max_decoded_bytes &&
                  back.augment.zoom_max == cfg->augment.zoom_max && back.adam.eps == cfg->adam.eps,
              "%s round trip: fields differ", label);
        printf("ok   %s: config_print parses back to the same configuration\n", label);
        free(t2);
        config_free(&back);
    }
    free(t1);
}

// ---- the shipped configurations ----

static void test_demo(const char *repo, const char *scratch) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/sweep/demo.yaml", repo);
    SweepConfig cfg;
    CtError err = {{0}};
    int rc = config_load(&cfg, path, &err);
    CHECK(rc == 0, "demo.yaml: %s", err.msg);
    if (rc) return;
    CHECK(!cfg.data_root_set && cfg.phantoms_count == 200 && cfg.phantoms_size == 112 && cfg.phantoms_seed == 1,
          "demo: phantoms %zu %zu %llu", cfg.phantoms_count, cfg.phantoms_size, (unsigned long long)cfg.phantoms_seed);
    CHECK(cfg.image_size == 80 && cfg.data.split == DATA_SPLIT_FRACTIONS && cfg.data.fractions[0] == 0.8,
          "demo: image size %zu, split %d", cfg.image_size, (int)cfg.data.split);
    CHECK(cfg.augment.aug_views == 2 && cfg.augment.rotate_prob > 0 && cfg.augment.zoom_min == 0.95,
          "demo: augmentation (views %u)", cfg.augment.aug_views);
    CHECK(cfg.n_models == 3 && strcmp(cfg.models[0], "vgg16") == 0 && strcmp(cfg.models[2], "resnet34") == 0,
          "demo: models");
    CHECK(cfg.n_batch_sizes == 2 && cfg.batch_sizes[0] == 16 && cfg.batch_sizes[1] == 32, "demo: batch sizes");
    CHECK(cfg.n_epochs == 2 && cfg.epochs[0] == 3 && cfg.epochs[1] == 6, "demo: epochs");
    CHECK(cfg.n_clr == 2 && cfg.clr[0].mode == CLR_TRIANGULAR && cfg.clr[1].mode == CLR_EXP_RANGE &&
              cfg.clr[1].gamma == 0.999 && cfg.clr[0].base_lr == 1e-4 && cfg.clr[0].step_size_epochs == 1,
          "demo: clr");
    CHECK(cfg.n_seeds == 1 && cfg.seeds[0] == 0 && cfg.ranks_per_trial == 1, "demo: seeds, ranks");
    CHECK(cfg.head.standardize && !cfg.head_hidden_set && !cfg.head_dropout_set, "demo: head");
    CHECK(!cfg.weights[0][0] && !cfg.weights[1][0] && !cfg.weights[2][0], "demo: weights given");
    HeadSpec h;
    config_head_spec(&h, &cfg, "vgg16", 25088);
    CHECK(h.n_hidden == 3 && h.hidden[0] == 512 && h.dropout == 0.5 && h.standardize == 1, "demo: vgg16 head");
    config_head_spec(&h, &cfg, "resnet34", 512);
    CHECK(h.n_hidden == 2 && h.hidden[0] == 256 && h.dropout == 0.0, "demo: resnet34 head");
    // The verbatim text is kept for the results.
    uint8_t *text;
    size_t len;
    ct_read_file(path, &text, &len, 1 << 20, &err);
    CHECK(cfg.yaml && strlen(cfg.yaml) == len && memcmp(cfg.yaml, text, len) == 0, "demo: yaml not verbatim");
    free(text);
    printf("ok   sweep/demo.yaml: 120 phantoms at 64 px, 3 x 2 x 2 x 2 grid\n");
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s/demo-printed.yaml", scratch);
    check_round_trip("demo.yaml", &cfg, name);
    config_free(&cfg);
}

static void test_covid(const char *repo, const char *shared, const char *scratch) {
    char path[PATH_MAX], want[PATH_MAX + 32], *real;
    snprintf(want, sizeof want, "%s/covid-ct", shared);
    real = realpath(want, NULL);
    if (!real) {
        printf("skip sweep/covid-ct.yaml: %s is missing\n", want);
        return;
    }
    snprintf(path, sizeof path, "%s/sweep/covid-ct.yaml", repo);
    SweepConfig cfg;
    CtError err = {{0}};
    int rc = config_load(&cfg, path, &err);
    CHECK(rc == 0, "covid-ct.yaml: %s", err.msg);
    if (rc == 0) {
        CHECK(cfg.data_root_set && strcmp(cfg.data.root, real) == 0, "covid-ct: root %s, want %s", cfg.data.root,
              real);
        CHECK(cfg.data.split == DATA_SPLIT_FILES && strcmp(cfg.data.split_dir, "splits") == 0, "covid-ct: split");
        CHECK(cfg.data.n_classes == 2 && cfg.data.classes[1].label == 1 &&
                  strcmp(cfg.data.classes[1].folder, "CT_COVID") == 0,
              "covid-ct: classes");
        CHECK(cfg.image_size == 224 && cfg.n_models == 3 && cfg.n_batch_sizes == 3 && cfg.n_clr == 3 &&
                  cfg.n_epochs == 4 && cfg.epochs[3] == 40 && cfg.batch_sizes[2] == 64,
              "covid-ct: grid");
        CHECK(cfg.clr[1].mode == CLR_TRIANGULAR2 && cfg.clr[2].mode == CLR_EXP_RANGE, "covid-ct: clr modes");
        CHECK(cfg.augment.rotate_deg == 15 && cfg.augment.flip_prob == 0.5 && cfg.augment.zoom_max == 1.1 &&
                  cfg.augment.noise_std == 0.01,
              "covid-ct: augmentation");
        CHECK(!cfg.head.standardize && !cfg.weights[0][0], "covid-ct: head / weights");
        CHECK(cfg.on_bad_image == BAD_IMAGE_ERROR && cfg.on_duplicate == DUPLICATE_ERROR, "covid-ct: data policies");
        printf("ok   sweep/covid-ct.yaml: official split, 224 px, 3 x 3 x 3 x 4 grid\n");
        char name[PATH_MAX];
        snprintf(name, sizeof name, "%s/covid-printed.yaml", scratch);
        check_round_trip("covid-ct.yaml", &cfg, name);
        config_free(&cfg);
    }
    free(real);
}

// ---- every key given, none at its default ----

static const char *FULL =
    "data:\n"
    "  root: ds\n"
    "  classes: {neg: 0, \"pos itive\": 1, more_pos: 1}\n"
    "  split: {files: my-splits, kfold: 5, seed: 9}\n"
    "  groups: {file: groups.csv, on_straddle: warn}\n"
    "  image_size: 96\n"
    "  normalize: unit\n"
    "  augment: {rotate_deg: 12.5, rotate_prob: 0.25, flip: ud, flip_prob: 0.75, zoom: [0.8, 1.25],\n"
    "            zoom_prob: 0.125, noise_std: 0.03, noise_prob: 0.2}\n"
    "  aug_views: 3\n"
    "  augment_seed: 7\n"
    "  on_bad_image: skip\n"
    "  on_duplicate: warn\n"
    "  max_width: 4000\n"
    "  max_height: 3000\n"
    "  max_decoded_mb: 512\n"
    "weights:\n"
    "  vgg16: w/vgg16.safetensors\n"
    "  resnet34: w/resnet34.safetensors\n"
    "head: {hidden: [64, 32], dropout: 0.25, standardize: true}\n"
    "train: {optimizer: adamw, weight_decay: 0.01, beta1: 0.85, beta2: 0.995, eps: 1.0e-7,\n"
    "        feature_cache_mb: 2048, feature_store: bf16, backend: cuda, precision: tf32, threads: 3,\n"
    "        feature_batch: 8, backbone_seed: 11}\n"
    "grid:\n"
    "  model: [resnet34, vgg16]\n"
    "  epochs: [5, 1]\n"
    "  batch_size: [8]\n"
    "  clr:\n"
    "    - {mode: triangular2, base_lr: 2.0e-4, max_lr: 3.0e-3, step_size: 10, step_size_down: 20}\n"
    "    - {mode: step, base_lr: 0.01, max_lr: 0.1, step_size: 100, gamma: 0.5}\n"
    "    - {mode: cosine, base_lr: 1e-5, max_lr: 0.001}\n"
    "    - {mode: constant, base_lr: 0.001}\n"
    "  seed: [3, 18446744073709551615]\n"
    "ranks_per_trial: 2\n";

static void test_full(const char *scratch) {
    char dir[PATH_MAX], p[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/full", scratch);
    const char *subdirs[] = {"ds/neg", "ds/pos itive", "ds/more_pos", "ds/my-splits", "w"};
    for (int i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, subdirs[i]);
        make_dir(p);
    }
    snprintf(p, sizeof p, "%s/w/vgg16.safetensors", dir);
    check_write_text(p, "");
    snprintf(p, sizeof p, "%s/w/resnet34.safetensors", dir);
    check_write_text(p, "");
    snprintf(p, sizeof p, "%s/groups.csv", dir);
    check_write_text(p, "path,group\n");
    snprintf(p, sizeof p, "%s/full.yaml", dir);
    check_write_text(p, FULL);
    SweepConfig cfg;
    CtError err = {{0}};
    int rc = config_load(&cfg, p, &err);
    CHECK(rc == 0, "full: %s", err.msg);
    if (rc) return;
    char *real = realpath(dir, NULL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/ds", real);
    CHECK(cfg.data_root_set && strcmp(cfg.data.root, want) == 0, "full: root %s", cfg.data.root);
    snprintf(want, sizeof want, "%s/w/vgg16.safetensors", real);
    CHECK(strcmp(config_weights(&cfg, "vgg16"), want) == 0 && !cfg.weights[1][0], "full: weights %s",
          cfg.weights[0]);
    free(real);
    CHECK(cfg.data.n_classes == 3 && strcmp(cfg.data.classes[1].folder, "pos itive") == 0 &&
              cfg.data.classes[2].label == 1,
          "full: classes");
    CHECK(cfg.data.split == DATA_SPLIT_FILES && strcmp(cfg.data.split_dir, "my-splits") == 0 && cfg.data.kfold == 5 &&
              cfg.data.seed == 9,
          "full: split");
    CHECK(cfg.data.groups == DATA_GROUPS_FILE && strstr(cfg.data.group_file, "/full/groups.csv") &&
              cfg.data.group_file[0] == '/' && cfg.data.on_straddle == DATA_STRADDLE_WARN,
          "full: groups %s", cfg.data.group_file);
    CHECK(cfg.normalize == NORM_UNIT && cfg.on_bad_image == BAD_IMAGE_SKIP && cfg.on_duplicate == DUPLICATE_WARN &&
              cfg.augment_seed == 7, "full: data");
    CHECK(cfg.augment.flip_axis == AUGMENT_FLIP_UD && cfg.augment.zoom_min == 0.8 && cfg.augment.zoom_max == 1.25 &&
              cfg.augment.aug_views == 3 && cfg.augment.noise_prob == 0.2,
          "full: augment");
    CHECK(cfg.limits.max_width == 4000 && cfg.limits.max_height == 3000 &&
              cfg.limits.max_decoded_bytes == (size_t)512 << 20,
          "full: limits");
    CHECK(cfg.head_hidden_set && cfg.head.n_hidden == 2 && cfg.head.hidden[1] == 32 && cfg.head_dropout_set &&
              cfg.head.dropout == 0.25 && cfg.head.standardize,
          "full: head");
    CHECK(cfg.adam.kind == OPT_ADAMW && cfg.adam.weight_decay == 0.01 && cfg.adam.beta1 == 0.85 &&
              cfg.adam.eps == 1e-7 && cfg.feature_cache_mb == 2048 && cfg.feature_store == FSTORE_BF16 &&
              cfg.backend.kind == BACKEND_CUDA && cfg.backend.precision == PRECISION_TF32 &&
              cfg.backend.threads == 3 && cfg.feature_batch == 8 && cfg.backbone_seed == 11,
          "full: train");
    CHECK(cfg.n_models == 2 && cfg.n_epochs == 2 && cfg.epochs[0] == 5 && cfg.n_clr == 4 &&
              cfg.clr[0].step_size_down == 20 && cfg.clr[1].mode == CLR_STEP && cfg.clr[1].gamma == 0.5 &&
              cfg.clr[2].mode == CLR_COSINE && cfg.clr[3].mode == CLR_CONSTANT && cfg.n_seeds == 2 &&
              cfg.seeds[1] == UINT64_MAX && cfg.ranks_per_trial == 2,
          "full: grid");
    HeadSpec h;
    config_head_spec(&h, &cfg, "vgg16", 25088);
    CHECK(h.n_hidden == 2 && h.hidden[0] == 64 && h.dropout == 0.25 && h.in_dim == 25088, "full: head spec");
    printf("ok   every key set to a non-default value\n");
    snprintf(p, sizeof p, "%s/elsewhere/printed.yaml", scratch);  // absolute paths: any folder works
    check_round_trip("every key", &cfg, p);
    config_free(&cfg);
}

// Accepted variants: scalar split, aliases, an empty weights section.
static void test_variants(const char *scratch) {
    static const char *const ok[] = {
        "weights:\n# vgg16: x.safetensors\ngrid:\n  model: [vgg16]\n  epochs: [&n 2]\n  batch_size: [*n]\n"
        "  clr: [{mode: constant, base_lr: 0.01}]\n",
        "data: {split: fractions, image_size: 2048}\ngrid: {model: [vgg19], epochs: [1], batch_size: [4096],\n"
        "  clr: [{mode: exp_range, step_size_epochs: 0.5, gamma: 1}]}\n",
        "data:\n  split: {seed: 5}\ngrid: {model: [vgg19], epochs: [1], batch_size: [1],\n"
        "  clr: [{mode: step, step_size: 3, gamma: 0.1}, {mode: step, step_size: 3, gamma: 0.2}]}\n",
        "data:\n  split: {fractions: [0.7, 0.15, 0.15], seed: 2, kfold: 3}\n  groups: {pattern: '-(p[0-9]+)-'}\n"
        "grid: {model: [vgg19], epochs: [1], batch_size: [1], clr: [{mode: constant}]}\n",
    };
    char name[PATH_MAX];
    snprintf(name, sizeof name, "%s/ok.yaml", scratch);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        SweepConfig cfg;
        CtError err = {{0}};
        int rc = config_parse(&cfg, name, ok[i], strlen(ok[i]), &err);
        CHECK(rc == 0, "variant %zu: %s", i, err.msg);
        if (rc == 0) {
            if (i == 0) CHECK(cfg.batch_sizes[0] == 2 && !cfg.weights[0][0], "variant 0: alias");
            if (i == 2) CHECK(cfg.data.seed == 5 && cfg.data.split == DATA_SPLIT_FRACTIONS, "variant 2: split seed");
            if (i == 3)
                CHECK(cfg.data.kfold == 3 && cfg.data.groups == DATA_GROUPS_PATTERN &&
                          strcmp(cfg.data.group_pattern, "-(p[0-9]+)-") == 0 && cfg.data.kfold == 3,
                      "variant 3: kfold and groups");
            check_round_trip("variant", &cfg, name);
        }
        config_free(&cfg);
    }
    printf("ok   %zu accepted variants\n", sizeof ok / sizeof ok[0]);
}

static void test_help(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    config_print_help(f);
    fclose(f);
    size_t missing = 0;
    for (size_t i = 0; i < config_n_keys; i++) {
        char want[160];
        snprintf(want, sizeof want, "\n%s: ", config_keys[i].path);
        if (!strstr(buf, want) && strncmp(buf, want + 1, strlen(want + 1)) != 0) {
            missing++;
            printf("FAIL help does not list %s\n", config_keys[i].path);
        }
    }
    CHECK(missing == 0, "help misses %zu keys", missing);
    CHECK(strstr(buf, "data.image_size: an integer in [32, 2048]; default 224") != NULL,
          "help: data.image_size line");
    CHECK(strstr(buf, "grid.clr: a list of mappings") && strstr(buf, "required"), "help: grid.clr");
    printf("ok   help lists all %zu keys with type and default\n", config_n_keys);
    free(buf);
}

// ---- bad configurations ----

// A valid grid, 6 lines, appended where a case needs the rest to be valid.
#define GRID_OK                                                      \
    "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16]\n" \
    "  clr:\n    - {mode: triangular, step_size: 4}\n"

typedef struct {
    const char *what;
    const char *yaml;
    int line;
    const char *key;
    const char *says;  // a part of the message, or NULL
} BadCase;

static const BadCase BAD[] = {
    {"unknown top-level key", "grdi:\n  model: [vgg16]\n", 1, "grdi", "unknown key"},
    {"unknown nested key", "data:\n  augment:\n    rotat: 10\n" GRID_OK, 3, "data.augment.rotat", "unknown key"},
    {"dotted key", "data.image_size: 64\n", 1, "data.image_size", "unknown key"},
    {"string for a number", "data:\n  image_size: big\n", 2, "data.image_size", "expected an integer"},
    {"list for a scalar", "data:\n  image_size: [64]\n", 2, "data.image_size", "got a list"},
    {"mapping for a list", "grid:\n  model: {a: 1}\n", 2, "grid.model", "expected a list"},
    {"quoted number", "data:\n  image_size: \"64\"\n", 2, "data.image_size", "quoted"},
    {"float for an integer", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16, 16.5]\n", 4,
     "grid.batch_size[1]", "not an integer"},
    {"no value", "data:\n  image_size:\n" GRID_OK, 2, "data.image_size", "no value"},
    {"empty list", "grid:\n  model: [vgg16]\n  epochs: []\n", 3, "grid.epochs", "empty list"},
    {"max_lr below base_lr",
     "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16]\n  clr:\n"
     "    - {mode: triangular, step_size: 4}\n"
     "    - mode: triangular\n      base_lr: 1.0e-4\n      max_lr: 1.0e-5\n      step_size: 4\n",
     9, "grid.clr[1].max_lr", "1e-05 is below base_lr 0.0001"},
    {"batch size 0", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [0]\n", 4, "grid.batch_size[0]",
     "outside"},
    {"batch size too large", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [4097]\n", 4,
     "grid.batch_size[0]", "[1, 4096]"},
    {"missing weights file", "weights:\n  vgg16: nothere.safetensors\n" GRID_OK, 2, "weights.vgg16",
     "nothere.safetensors"},
    {"weights is a folder", "weights:\n  vgg19: .\n" GRID_OK, 2, "weights.vgg19", "not a regular file"},
    {"bad enum", "data:\n  normalize: foo\n", 2, "data.normalize", "imagenet, unit"},
    {"bad duplicate policy", "data:\n  on_duplicate: skip\n", 2, "data.on_duplicate", "error, warn, ignore"},
    {"duplicate key", "data:\n  image_size: 64\n  image_size: 96\n", 3, "data.image_size", "line 2"},
    {"duplicate section", GRID_OK "grid:\n  model: [vgg19]\n", 7, "grid", "duplicate key"},
    {"duplicate grid value", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16, 32, 16]\n", 4,
     "grid.batch_size[2]", "grid.batch_size[0]"},
    {"duplicate schedule",
     "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16]\n  clr:\n"
     "    - {mode: triangular, step_size: 4}\n    - {step_size: 4}\n",
     7, "grid.clr[1]", "repeats"},
    {"duplicate model", "grid:\n  model: [vgg16, resnet34, vgg16]\n", 2, "grid.model[2]", "repeats"},
    {"unknown model", "grid:\n  model: [vgg11]\n", 2, "grid.model[0]", "unknown model"},
    {"negative epochs", "grid:\n  model: [vgg16]\n  epochs: [-3]\n", 3, "grid.epochs[0]", "outside"},
    {"negative seed", "grid:\n  seed: [-1]\n", 2, "grid.seed[0]", "out of range"},
    {"seed too large", "grid:\n  seed: [18446744073709551616]\n", 2, "grid.seed[0]", "out of range"},
    {"fractions not summing to 1", "data:\n  split: {fractions: [0.8, 0.1, 0.2], seed: 1}\n", 2,
     "data.split.fractions", "sum to 1"},
    {"two fractions", "data:\n  split: {fractions: [0.8, 0.2]}\n", 2, "data.split.fractions", "exactly 3"},
    {"groups without a source", "data:\n  groups: {on_straddle: warn}\n" GRID_OK, 2, "data.groups", "needs pattern"},
    {"groups pattern and file", "data:\n  groups: {pattern: '(a)', file: /etc/passwd}\n" GRID_OK, 2, "data.groups.file",
     "not both"},
    {"groups file missing", "data:\n  groups: {file: x.csv}\n", 2, "data.groups.file", "No such file"},
    {"groups pattern without a capture", "data:\n  groups: {pattern: 'p[0-9]+'}\n", 2, "data.groups.pattern",
     "no capture group"},
    {"groups pattern not a regex", "data:\n  groups: {pattern: '(p[0-9]+'}\n", 2, "data.groups.pattern",
     "not an extended regular expression"},
    {"groups on_straddle", "data:\n  groups: {pattern: '(a)', on_straddle: maybe}\n", 2,
     "data.groups.on_straddle", "error, warn"},
    {"kfold 1", "data:\n  split: {fractions: [0.8, 0.1, 0.1], kfold: 1}\n", 2, "data.split.kfold", "[2, 100]"},
    {"files and fractions", "data:\n  root: ds\n  split: {files: splits, fractions: [0.8, 0.1, 0.1]}\n", 3, "data.split",
     "not both"},
    {"files and seed without kfold", "data:\n  root: ds\n  split: {files: splits, seed: 1}\n", 3, "data.split",
     "give kfold too"},
    {"bad split", "data:\n  split: random\n", 2, "data.split", "random"},
    {"root missing", "data:\n  root: no/such/folder\n", 2, "data.root", "no/such/folder"},
    {"root is a file", "data:\n  root: afile\n", 2, "data.root", "not a folder"},
    {"class folder missing", "data:\n  root: ds\n  classes: {CT_NonCOVID: 0, CT_COVID: 1, other: 1}\n" GRID_OK, 3,
     "data.classes", "other"},
    {"split files folder missing", "data:\n  root: ds\n  split: files\n" GRID_OK, 3, "data.split", "splits"},
    {"split files without root", "data:\n  split: files\n" GRID_OK, 2, "data.split", "data.root"},
    {"root and phantoms", "data:\n  root: ds\n  phantoms: {count: 50}\n" GRID_OK, 3, "data.phantoms", "not both"},
    {"one label only", "data:\n  classes: {a: 0, b: 0}\n", 2, "data.classes", "0 (negative) and 1"},
    {"label 2", "data:\n  classes: {a: 0, b: 2}\n", 2, "data.classes.b", "outside"},
    {"duplicate class", "data:\n  classes: {a: 0, b: 1, a: 1}\n", 2, "data.classes.a", "duplicate"},
    {"custom classes on phantoms", "data:\n  classes: {neg: 0, pos: 1}\n" GRID_OK, 2, "data.classes", "phantoms"},
    {"invalid YAML: unclosed list", "data:\n  image_size: 64\n  normalize: [unit\n", 4, "yaml", NULL},
    {"invalid YAML: tab", "data:\n\timage_size: 64\n", 2, "yaml", "tab"},
    {"invalid YAML: nested mapping", "data:\n  image_size: 64\n  normalize: a: b\n", 3, "yaml", NULL},
    {"two documents", GRID_OK "---\ngrid: {}\n", 8, "yaml", "second document"},
    {"top level is a list", "- data\n- grid\n", 1, "(document)", "expected a mapping"},
    {"alias without anchor", "data:\n  image_size: *size\n", 2, "data.image_size", "alias"},
    {"probability above 1", "data:\n  augment: {rotate_prob: 1.5}\n", 2, "data.augment.rotate_prob", "[0, 1]"},
    {"probability below 0", "data:\n  augment:\n    noise_prob: -0.1\n", 3, "data.augment.noise_prob", "[0, 1]"},
    {"zoom reversed", "data:\n  augment: {zoom: [1.1, 0.9]}\n", 2, "data.augment.zoom", "minimum"},
    {"zoom zero", "data:\n  augment: {zoom: [0, 1]}\n", 2, "data.augment.zoom[0]", "(0, 10]"},
    {"bad flip", "data:\n  augment: {flip: diagonal}\n", 2, "data.augment.flip", "lr, ud"},
    {"aug_views 0", "data:\n  aug_views: 0\n", 2, "data.aug_views", "outside"},
    {"not a boolean", "head:\n  standardize: yes\n", 2, "head.standardize", "true or false"},
    {"too many hidden layers", "head:\n  hidden: [8, 8, 8, 8, 8, 8, 8, 8]\n", 2, "head.hidden", "at most 7"},
    {"dropout 1", "head:\n  dropout: 1\n", 2, "head.dropout", "[0, 1)"},
    {"nan", "train:\n  beta1: .nan\n", 2, "train.beta1", "expected a number"},
    {"infinity", "train:\n  weight_decay: 1e999\n", 2, "train.weight_decay", "expected a number"},
    {"eps 0", "train:\n  eps: 0\n", 2, "train.eps", "(0, 1]"},
    {"bad backend", "train:\n  backend: tpu\n", 2, "train.backend", "cpu, cuda"},
    {"section is a scalar", "train: fast\n", 1, "train", "expected a mapping"},
    {"missing grid", "data:\n  image_size: 64\n", 1, "grid", "required"},
    {"missing grid.clr", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16]\n", 1, "grid.clr", "required"},
    {"unfreeze past the stages",
     "grid:\n  model: [resnet50]\n  epochs: [2]\n  batch_size: [16]\n  unfreeze: [6]\n"
     "  clr:\n    - {mode: triangular, step_size: 4}\n",
     5, "grid.unfreeze", "6 stages, but resnet50 has 5 (stem, layer1, layer2, layer3, layer4)"},
    {"unfreeze a DenseNet stage",
     "grid:\n  model: [resnet50, densenet121]\n  epochs: [2]\n  batch_size: [16]\n  unfreeze: [0, 1]\n"
     "  clr:\n    - {mode: triangular, step_size: 4}\n",
     5, "grid.unfreeze", "densenet121 cannot unfreeze stages: the trainable tail has no backward for its layer "
     "features.denseblock4.denselayer1.norm1"},
    {"empty file", "", 1, "grid", "required"},
    {"schedule is not a mapping", "grid:\n  model: [vgg16]\n  epochs: [2]\n  batch_size: [16]\n  clr: [triangular]\n",
     5, "grid.clr[0]", "expected a mapping"},
    {"unknown schedule key", "grid:\n  clr:\n    - {mode: triangular, stepsize: 4}\n", 3, "grid.clr[0].stepsize",
     "unknown key"},
    {"bad schedule mode", "grid:\n  clr:\n    - {mode: linear}\n", 3, "grid.clr[0].mode", "triangular"},
    {"cyclic without step size", "grid:\n  clr:\n    - {mode: triangular2, base_lr: 1e-4}\n", 3,
     "grid.clr[0].step_size", "step_size_epochs"},
    {"exp_range without gamma", "grid:\n  clr:\n    - {mode: exp_range, step_size: 8}\n", 3, "grid.clr[0].gamma",
     "needs gamma"},
    {"gamma above 1", "grid:\n  clr:\n    - {mode: exp_range, step_size: 8, gamma: 1.5}\n", 3,
     "grid.clr[0].gamma", "(0, 1]"},
    {"step_size below 1", "grid:\n  clr:\n    - {mode: triangular, step_size: 0.5}\n", 3,
     "grid.clr[0].step_size", "below 1"},
    {"both step sizes", "grid:\n  clr:\n    - {mode: triangular, step_size: 8,\n       step_size_epochs: 2}\n", 4,
     "grid.clr[0].step_size_epochs", "not both"},
    {"base_lr 0", "grid:\n  clr:\n    - {mode: constant, base_lr: 0}\n", 3, "grid.clr[0].base_lr", "(0, 10]"},
    {"ranks_per_trial 0", "ranks_per_trial: 0\n", 1, "ranks_per_trial", "outside"},
    {"image_size too small", "data:\n  image_size: 16\n", 2, "data.image_size", "[32, 2048]"},
};

static void test_bad(const char *scratch) {
    char dir[PATH_MAX], p[PATH_MAX + 64], name[PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/bad", scratch);
    snprintf(p, sizeof p, "%s/ds/CT_COVID", dir);
    make_dir(p);
    snprintf(p, sizeof p, "%s/ds/CT_NonCOVID", dir);
    make_dir(p);
    snprintf(p, sizeof p, "%s/afile", dir);
    check_write_text(p, "x");
    snprintf(name, sizeof name, "%s/bad.yaml", dir);
    size_t n = sizeof BAD / sizeof BAD[0], passed = 0;
    for (size_t i = 0; i < n; i++) {
        const BadCase *b = &BAD[i];
        SweepConfig cfg;
        CtError err = {{0}};
        int rc = config_parse(&cfg, name, b->yaml, strlen(b->yaml), &err);
        char want[PATH_MAX + 256];
        snprintf(want, sizeof want, "%s:%d: %s: ", name, b->line, b->key);
        int ok = rc == -1 && strncmp(err.msg, want, strlen(want)) == 0 && !strchr(err.msg, '\n') &&
                 (!b->says || strstr(err.msg, b->says)) && cfg.yaml == NULL;
        // Show the message without the scratch folder.
        const char *shown = strncmp(err.msg, dir, strlen(dir)) == 0 ? err.msg + strlen(dir) + 1 : err.msg;
        if (ok) {
            passed++;
            printf("ok   %-28s %s\n", b->what, shown);
        } else {
            printf("FAIL %-28s rc %d, got \"%s\", want \"%s...%s\"\n", b->what, rc, err.msg, want,
                   b->says ? b->says : "");
        }
        CHECK(ok, "bad config: %s", b->what);
        config_free(&cfg);
    }
    printf("ok   %zu of %zu bad configurations refused as expected\n", passed, n);
    // A file that does not exist names itself.
    SweepConfig cfg;
    CtError err = {{0}};
    snprintf(p, sizeof p, "%s/missing.yaml", dir);
    CHECK(config_load(&cfg, p, &err) == -1 && strstr(err.msg, "missing.yaml"), "missing file: %s", err.msg);
    config_free(&cfg);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_config SCRATCH_DIR SHARED_DATA_DIR\n");
        return 2;
    }
    const char *scratch = argv[1], *shared = argv[2];
    make_dir(scratch);
    // The repository root: __FILE__ is <root>/tests/unit/test_config.c.
    char repo[PATH_MAX];
    snprintf(repo, sizeof repo, "%s", __FILE__);
    char *cut = strstr(repo, "/tests/unit/test_config.c");
    if (cut) *cut = 0;
    else snprintf(repo, sizeof repo, ".");

    test_demo(repo, scratch);
    test_covid(repo, shared, scratch);
    test_full(scratch);
    test_variants(scratch);
    test_help();
    test_bad(scratch);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
