/*
 * make_seeds_config.c — writes the seed corpus and the dictionary of
 * fuzz_config. Seeds: the shipped configurations (sweep/demo.yaml,
 * sweep/covid-ct.yaml, and covid-ct.yaml with its weights section
 * uncommented), the CONFIG of tests/mpi/check_sweep.py, and variants that
 * reach every key, every choice and the tree fuzz_config makes (class
 * folders, split files, weights). The dictionary holds each key and choice
 * of src/config/config_table.c, read from its `.path = "..."` rows and
 * *_CHOICES lists, so it follows the table. Generated from the repository,
 * so the corpus is neither downloaded nor committed.
 *
 * usage: make_seeds_config REPO_ROOT SEED_DIR DICT_FILE   (SEED_DIR must exist)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_count, g_failed;
static const char *g_dir;

static void write_seed(const char *name, const char *text, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(text, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds_config: cannot write %s\n", path);
        exit(1);
    }
    g_count++;
}

static char *read_text(const char *root, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "make_seeds_config: cannot read %s\n", path);
        g_failed++;
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) s = realloc(s, cap *= 2);
    }
    fclose(f);
    if (!s) exit(1);
    s[n] = 0;
    return s;
}

// Replaces every occurrence of `from` by `to` (a new string).
static char *replace_all(const char *s, const char *from, const char *to) {
    size_t nf = strlen(from), nt = strlen(to), n = 0;
    for (const char *p = s; (p = strstr(p, from)) != NULL; p += nf) n++;
    char *out = malloc(strlen(s) + n * nt + 1), *w = out;
    if (!out) exit(1);
    for (const char *p = s;;) {
        const char *q = strstr(p, from);
        if (!q) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(q - p));
        w += q - p;
        memcpy(w, to, nt);
        w += nt;
        p = q + nf;
    }
    return out;
}

static void seed_text(const char *name, const char *text) { write_seed(name, text, strlen(text)); }

// The shipped configurations, verbatim and with the commented weights on.
static void seeds_shipped(const char *root) {
    char *demo = read_text(root, "sweep/demo.yaml");
    if (demo) seed_text("demo.yaml", demo);
    char *covid = read_text(root, "sweep/covid-ct.yaml");
    if (covid) {
        seed_text("covid-ct.yaml", covid);
        char *a = replace_all(covid, "# weights:", "weights:");
        char *b = replace_all(a, "#   vgg", "  vgg");
        char *c = replace_all(b, "#   resnet34", "  resnet34");
        seed_text("covid-ct-weights.yaml", c);
        free(a);
        free(b);
        free(c);
    }
    free(demo);
    free(covid);
    // tests/mpi/check_sweep.py: CONFIG = """...%s...""" (the %s adds keys).
    char *py = read_text(root, "tests/mpi/check_sweep.py");
    const char *open = py ? strstr(py, "CONFIG = \"\"\"") : NULL;
    const char *body = open ? open + strlen("CONFIG = \"\"\"") : NULL;
    const char *close = body ? strstr(body, "\"\"\"") : NULL;
    if (close) {
        char *cfg = strndup(body, (size_t)(close - body));
        char *plain = replace_all(cfg, "%s", "");
        char *more = replace_all(cfg, "%s", "ranks_per_trial: 2\n");
        seed_text("check_sweep.yaml", plain);
        seed_text("check_sweep_more.yaml", more);
        free(cfg);
        free(plain);
        free(more);
    } else if (py) {
        fprintf(stderr, "make_seeds_config: no CONFIG = \"\"\"...\"\"\" in tests/mpi/check_sweep.py\n");
        g_failed++;
    }
    free(py);
}

// Variants over the tree fuzz_config makes under its config folder
// (TMP/repo/sweep): data/, w.safetensors, ../weights/.
static void seeds_variants(void) {
    seed_text("every_key.yaml",
              "data:\n"
              "  root: data\n"
              "  classes: {neg: 0, pos: 1, \"pos/sub\": 1}\n"
              "  split: {files: splits}\n"
              "  image_size: 96\n"
              "  normalize: unit\n"
              "  augment: {rotate_deg: 12.5, rotate_prob: 0.25, flip: ud, flip_prob: 0.75, zoom: [0.8, 1.25],\n"
              "            zoom_prob: 0.125, noise_std: 0.03, noise_prob: 0.2}\n"
              "  aug_views: 3\n"
              "  augment_seed: 7\n"
              "  on_bad_image: skip\n"
              "  max_width: 4000\n"
              "  max_height: 3000\n"
              "  max_decoded_mb: 512\n"
              "weights:\n"
              "  vgg16: w.safetensors\n"
              "  vgg19: ../weights/vgg19.safetensors\n"
              "  resnet34: ../weights/resnet34.safetensors\n"
              "head: {hidden: [64, 32], dropout: 0.25, standardize: true}\n"
              "train: {optimizer: adamw, weight_decay: 0.01, beta1: 0.85, beta2: 0.995, eps: 1.0e-7,\n"
              "        feature_cache_mb: 2048, feature_store: bf16, backend: cuda, precision: tf32, threads: 3,\n"
              "        feature_batch: 8, backbone_seed: 11}\n"
              "grid:\n"
              "  model: [resnet34, vgg16, vgg19]\n"
              "  epochs: [5, 1]\n"
              "  batch_size: [8, 4096]\n"
              "  clr:\n"
              "    - {mode: triangular2, base_lr: 2.0e-4, max_lr: 3.0e-3, step_size: 10, step_size_down: 20}\n"
              "    - {mode: step, base_lr: 0.01, max_lr: 0.1, step_size: 100, gamma: 0.5}\n"
              "    - {mode: cosine, base_lr: 1e-5, max_lr: 0.001}\n"
              "    - {mode: constant, base_lr: 0.001}\n"
              "    - {mode: exp_range, base_lr: 1e-4, max_lr: 1e-3, step_size_epochs: 2.5, gamma: 0.9999}\n"
              "    - {mode: triangular, base_lr: 1e-4, max_lr: 1e-3, step_size_epochs: 4}\n"
              "  seed: [3, 18446744073709551615]\n"
              "ranks_per_trial: 2\n");
    seed_text("block_style.yaml",
              "data:\n"
              "  root: ./data/\n"
              "  classes:\n"
              "    CT_NonCOVID: 0\n"
              "    CT_COVID: 1\n"
              "  split: files\n"
              "  augment:\n"
              "    zoom:\n"
              "      - 0.5\n"
              "      - 2\n"
              "head:\n"
              "  hidden: []\n"
              "  dropout: 0\n"
              "train:\n"
              "  precision: fp16\n"
              "  feature_store: fp16\n"
              "grid:\n"
              "  model:\n"
              "    - vgg19\n"
              "  epochs:\n"
              "    - 100000\n"
              "  batch_size:\n"
              "    - 1\n"
              "  clr:\n"
              "    - mode: constant\n"
              "      base_lr: 10\n"
              "  seed:\n"
              "    - 0\n"
              "    - 1\n");
    seed_text("anchors.yaml",
              "%YAML 1.2\n"
              "---\n"
              "data: {phantoms: {count: 10, size: 16, seed: 18446744073709551615},\n"
              "       split: {fractions: [0.5, 0.25, 0.25], seed: 2}}\n"
              "head: &h {standardize: false}\n"
              "grid:\n"
              "  model: [&m vgg16]\n"
              "  epochs: [&n 2, 3]\n"
              "  batch_size: [*n]\n"
              "  clr: [&c {mode: constant, base_lr: 0.01}]\n"
              "  seed: [!!int 4]\n"
              "...\n");
    seed_text("split_lists.yaml",
              "data: {root: data, classes: {neg: 0, pos: 1}, split: {files: lists},\n"
              "       max_decoded_mb: 1048576, max_width: 1, max_height: 1048576}\n"
              "train: {threads: 4096, feature_cache_mb: 0, backend: cpu, optimizer: adam}\n"
              "grid: {model: [resnet34], epochs: [1], batch_size: [1],\n"
              "       clr: [{mode: triangular, base_lr: 0.5, max_lr: 1e12, step_size_epochs: 1e6,\n"
              "              step_size_down: 1e9}]}\n");
    seed_text("quoted.yaml",
              "\"data\": {\"root\": 'data', 'classes': {\"CT_COVID\": 1, CT_NonCOVID: 0}}\n"
              "grid: {\"model\": ['resnet34'], epochs: [16], batch_size: [+8],\n"
              "  clr: [{mode: \"step\", step_size: 1, gamma: 1.0}], seed: [-0]}\n");
    seed_text("minimal.yaml",
              "grid: {model: [vgg16], epochs: [1], batch_size: [1], clr: [{mode: constant}]}\n");
    seed_text("errors.yaml",
              "data:\n  root: data\n  phantoms: {count: 9}\n  classes: {../x: 0, pos: 2}\n"
              "grid:\n  model: [vgg16, vgg16]\n  epochs: []\n  batch_size: 4097\n  clr: [{mode: bogus}]\n");
    seed_text("duplicate.yaml",
              "grid: {model: [vgg16], epochs: [1], batch_size: [1], clr: [{mode: constant}]}\n"
              "grid: {}\n---\ndata: {}\n");
}

// The dictionary: YAML tokens, then every key and choice of the table.
static void write_dict(const char *root, const char *dict_path) {
    FILE *out = fopen(dict_path, "w");
    if (!out) {
        fprintf(stderr, "make_seeds_config: cannot write %s\n", dict_path);
        exit(1);
    }
    static const char *const yaml[] = {": ", "- ", "{", "}", "[", "]", ", ", "\\x0a  ", "&a ", "*a", "!!str ",
                                       "!!int ", "---", "...", "~", "null", "true", "false", "1e-4", ".5",
                                       "18446744073709551616", "-1", "0x1F", "\\\"", "'", "#", "|", ">", "? "};
    for (size_t i = 0; i < sizeof yaml / sizeof yaml[0]; i++) fprintf(out, "\"%s\"\n", yaml[i]);
    char *table = read_text(root, "src/config/config_table.c");
    size_t words = 0;
    for (const char *p = table; p && (p = strstr(p, ".path = \"")) != NULL;) {
        p += strlen(".path = \"");
        const char *end = strchr(p, '"');
        if (!end) break;
        // "grid.clr[].mode" -> grid, clr, mode (each a key, then ':').
        char path[128];
        snprintf(path, sizeof path, "%.*s", (int)(end - p), p);
        for (char *tok = strtok(path, ".[]"); tok; tok = strtok(NULL, ".[]")) {
            if (strcmp(tok, "*") == 0) continue;
            fprintf(out, "\"%s: \"\n", tok);
            words++;
        }
        p = end;
    }
    // The weights.<model> rows come from the registry's MODEL_NAMES(X) X(vgg16) ... line.
    char *models = read_text(root, "src/nn/models.h");
    const char *line = models ? strstr(models, "#define MODEL_NAMES(X)") : NULL;
    const char *eol = line ? strchr(line, '\n') : NULL;
    for (const char *p = line ? line + strlen("#define MODEL_NAMES(X)") : NULL; p && eol && p < eol;) {
        const char *open = strstr(p, "X(");
        if (!open || open > eol) break;
        open += 2;
        const char *end = strchr(open, ')');
        if (!end || end > eol) break;
        fprintf(out, "\"%.*s\"\n\"%.*s: \"\n", (int)(end - open), open, (int)(end - open), open);
        words += 2;
        p = end;
    }
    free(models);
    // static const char *const X_CHOICES[] = {"a", "b", NULL};
    for (const char *p = table; p && (p = strstr(p, "_CHOICES[] = {")) != NULL;) {
        p += strlen("_CHOICES[] = {");
        const char *end = strchr(p, '}');
        if (!end) break;
        for (const char *q = p; q < end && (q = strchr(q, '"')) != NULL && q < end;) {
            const char *e = strchr(q + 1, '"');
            if (!e || e > end) break;
            fprintf(out, "\"%.*s\"\n", (int)(e - q - 1), q + 1);
            words++;
            q = e + 1;
        }
        p = end;
    }
    free(table);
    // What fuzz_config's tree holds.
    static const char *const tree[] = {"data", "CT_COVID", "CT_NonCOVID", "splits", "lists", "pos", "neg",
                                       "w.safetensors", "../weights/vgg16.safetensors",
                                       "../../shared/data/covid-ct", "not_a_folder", "/", ".."};
    for (size_t i = 0; i < sizeof tree / sizeof tree[0]; i++) fprintf(out, "\"%s\"\n", tree[i]);
    if (fclose(out) != 0 || words < 40) {
        fprintf(stderr, "make_seeds_config: the dictionary has only %zu table words\n", words);
        g_failed++;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: make_seeds_config REPO_ROOT SEED_DIR DICT_FILE\n");
        return 2;
    }
    g_dir = argv[2];
    seeds_shipped(argv[1]);
    seeds_variants();
    write_dict(argv[1], argv[3]);
    printf("make_seeds_config: %d seeds in %s, dictionary %s\n", g_count, g_dir, argv[3]);
    return g_failed ? 1 : 0;
}
