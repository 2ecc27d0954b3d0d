/*
 * fuzz_config.c — libFuzzer target over the sweep configuration reader: the
 * input is YAML text, parsed and validated by config_parse as the file
 * TMP/repo/sweep/fuzz.yaml. Any crash, sanitizer report, leak or hang is a
 * bug in src/config/ (or in libfyaml, on input we let through).
 *
 * A configuration that is accepted must survive the round trip that
 * `--resume` relies on: config_print's text parses again, and prints and
 * resolves to the same configuration; anything else aborts.
 *
 * Relative paths resolve against the config's folder, so a temporary tree
 * (made once, removed at exit) holds what the seeds name: the data root of
 * sweep/covid-ct.yaml (../../shared/data/covid-ct, with class folders and
 * split files), a data/ folder with more classes and splits, and weights
 * files (../weights/<model>.safetensors, w.safetensors).
 * make_seeds_config.c writes the seeds and the dictionary.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "fuzz_tmp.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);
const char *__asan_default_options(void);

// libfyaml 0.7.12 leaks the buffer its atom iterator grows for a scalar of
// many chunks (a quoted key with many '' escapes, say) in
// fy_atom_iter_chunk_next, whichever text accessor asks: not ours to fix,
// so that leak alone is suppressed. libfyaml has no frame pointers, so the
// allocation stacks are unwound the slow way, to reach that function.
const char *__lsan_default_suppressions(void) { return "leak:fy_atom_iter_chunk_next\n"; }
const char *__asan_default_options(void) { return "fast_unwind_on_malloc=0"; }

static char g_tmp[256];
static char g_name[512];
static int g_verbose;  // CTSWEEP_FUZZ_VERBOSE=1: say why each input was refused (to check seeds)

static void make_dir(const char *rel) {
    char *path = ct_asprintf("%s/%s", g_tmp, rel);
    CtError err = {{0}};
    if (ct_mkdirs(path, &err)) {
        fprintf(stderr, "fuzz_config: %s\n", err.msg);
        abort();
    }
    free(path);
}

static void make_file(const char *rel, const char *text) {
    char *path = ct_asprintf("%s/%s", g_tmp, rel);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "fuzz_config: cannot write %s\n", path);
        abort();
    }
    free(path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fuzz_tmp_make("fuzz_config", g_tmp, sizeof g_tmp);
    static const char *const dirs[] = {
        "repo/sweep",
        "repo/weights",
        "shared/data/covid-ct/CT_COVID",
        "shared/data/covid-ct/CT_NonCOVID",
        "shared/data/covid-ct/splits",
        "repo/sweep/data/CT_COVID",
        "repo/sweep/data/CT_NonCOVID",
        "repo/sweep/data/neg",
        "repo/sweep/data/pos",
        "repo/sweep/data/pos/sub",
        "repo/sweep/data/splits",
        "repo/sweep/data/lists",
    };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) make_dir(dirs[i]);
    static const char *const files[] = {
        "repo/weights/vgg16.safetensors",
        "repo/weights/vgg19.safetensors",
        "repo/weights/resnet34.safetensors",
        "repo/sweep/w.safetensors",
        "shared/data/covid-ct/splits/trainCT_COVID.txt",
        "shared/data/covid-ct/splits/valCT_COVID.txt",
        "shared/data/covid-ct/splits/testCT_COVID.txt",
        "repo/sweep/data/splits/trainpos.txt",
        "repo/sweep/data/lists/trainneg.txt",
        "repo/sweep/data/not_a_folder",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) make_file(files[i], "a.png\n");
    snprintf(g_name, sizeof g_name, "%s/repo/sweep/fuzz.yaml", g_tmp);
    const char *v = getenv("CTSWEEP_FUZZ_VERBOSE");
    g_verbose = v && v[0] && strcmp(v, "0") != 0;
    return 0;
}

static char *print_to_string(const SweepConfig *cfg) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) abort();
    config_print(f, cfg);
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SweepConfig *cfg = malloc(sizeof *cfg), *back = malloc(sizeof *back);
    if (!cfg || !back) abort();
    CtError err = {{0}};
    if (config_parse(cfg, g_name, (const char *)data, size, &err) != 0) {
        // A refusal is one line, "FILE:LINE: KEY: what".
        if (strncmp(err.msg, g_name, strlen(g_name)) != 0 || err.msg[strlen(g_name)] != ':' ||
            strchr(err.msg, '\n')) {
            fprintf(stderr, "fuzz_config: a refusal that is not one line \"FILE:LINE: KEY: what\":\n%s\n", err.msg);
            abort();
        }
        if (g_verbose) fprintf(stderr, "refused: %s\n", err.msg);
        config_free(cfg);
        free(cfg);
        free(back);
        return 0;
    }
    if (g_verbose) fprintf(stderr, "accepted\n");
    char *t1 = print_to_string(cfg);
    CtError err2 = {{0}};
    if (config_parse(back, g_name, t1, strlen(t1), &err2) != 0) {
        fprintf(stderr, "fuzz_config: the printed configuration does not parse: %s\n--- printed:\n%s---\n",
                err2.msg, t1);
        abort();
    }
    char *t2 = print_to_string(back);
    if (strcmp(t1, t2) != 0) {
        fprintf(stderr, "fuzz_config: the printed configuration prints differently\n--- first:\n%s--- second:\n%s---\n",
                t1, t2);
        abort();
    }
    // What the text cannot show must agree too (as tests/unit/test_config.c checks).
    if (memcmp(&back->data, &cfg->data, sizeof back->data) != 0 ||
        memcmp(back->weights, cfg->weights, sizeof back->weights) != 0 ||
        memcmp(back->clr, cfg->clr, sizeof back->clr) != 0 || back->n_clr != cfg->n_clr ||
        back->data_root_set != cfg->data_root_set || back->head_hidden_set != cfg->head_hidden_set ||
        back->head_dropout_set != cfg->head_dropout_set) {
        fprintf(stderr, "fuzz_config: the printed configuration resolves differently\n--- printed:\n%s---\n", t1);
        abort();
    }
    free(t1);
    free(t2);
    config_free(back);
    config_free(cfg);
    free(back);
    free(cfg);
    return 0;
}
