/*
 * fuzz_safetensors.c — libFuzzer target over the safetensors weight reader:
 * the input is a whole .safetensors file, handed to st_open through a memfd
 * ("/proc/self/fd/N"), so nothing touches the disk. Any crash, sanitizer
 * report, leak or hang is a bug in src/nn/safetensors.c.
 *
 * An opened file is then used as models.c uses it: st_require against the
 * tensor names of VGG16 and ResNet-34 (taken from model_build, so they
 * follow the topologies), st_read_f32 of each of those tensors with the
 * model's shape, st_read_f32 of every tensor with its own declared shape
 * (compared with an independent conversion), a shape one dimension off,
 * st_find and st_metadata_get. make_seeds_st.c writes the seeds.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "nn/graph.h"
#include "nn/models.h"
#include "nn/safetensors.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Floats read from one tensor at most: the reader itself bounds tensors by
// the file, this keeps a future change from costing gigabytes here.
#define READ_CAP ((size_t)16 << 20)

typedef struct {
    char name[112];
    size_t shape[4], ndim;
} Wanted;

typedef struct {
    Wanted *t;
    size_t n;
    const char **names;
} Model;

static Model g_models[2];
static FILE *g_null;

static void want(Model *m, const char *name, const size_t *shape, size_t ndim) {
    m->t = ct_realloc(m->t, (m->n + 1) * sizeof *m->t);
    Wanted *w = &m->t[m->n++];
    snprintf(w->name, sizeof w->name, "%s", name);
    memcpy(w->shape, shape, ndim * sizeof *shape);
    w->ndim = ndim;
}

// The tensors model_load_safetensors reads, with their shapes.
static void model_tensors(Model *m, const char *model) {
    NNGraph g;
    CtError err = {{0}};
    if (model_build(&g, model, &err)) {
        fprintf(stderr, "fuzz_safetensors: %s\n", err.msg);
        abort();
    }
    static const char *const bn_parts[4] = {"weight", "bias", "running_mean", "running_var"};
    for (size_t i = 0; i < g.n_layers; i++) {
        const NNLayer *l = &g.layers[i];
        if (l->kind != NN_CONV) continue;
        char name[112];
        size_t w[4] = {l->cout, l->cin, l->k, l->k}, c[1] = {l->cout};
        snprintf(name, sizeof name, "%s.weight", l->name);
        want(m, name, w, 4);
        if (!l->bn_name[0]) {
            snprintf(name, sizeof name, "%s.bias", l->name);
            want(m, name, c, 1);
            continue;
        }
        for (int p = 0; p < 4; p++) {
            snprintf(name, sizeof name, "%s.%s", l->bn_name, bn_parts[p]);
            want(m, name, c, 1);
        }
    }
    graph_free(&g);
    m->names = ct_malloc_array(m->n, sizeof *m->names);
    for (size_t i = 0; i < m->n; i++) m->names[i] = m->t[i].name;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    model_tensors(&g_models[0], "vgg16");
    model_tensors(&g_models[1], "resnet34");
    g_null = fopen("/dev/null", "w");
    if (!g_null) abort();
    return 0;
}

// ---- an independent conversion, to compare st_read_f32 with ----

static float ref_f16(uint16_t h) {
    int s = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);
    else if (e == 31) v = m ? NAN : INFINITY;
    else v = ldexpf((float)(m + 1024), e - 25);
    return s ? -v : v;
}

static float ref_value(const uint8_t *p, StDtype dt, size_t i) {
    if (dt == ST_F32) {
        float f;
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&f, &u, 4);
        return f;
    }
    uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    if (dt == ST_F16) return ref_f16(h);
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) && signbit(a) == signbit(b);
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;
}

// ---- the target ----

static void check_tensor(const SafeTensors *st, const StTensor *t) {
    if (t->begin > t->end || t->end > st->data_len) abort();  // validated ranges only
    if (st_find(st, t->name) != t) abort();
    CtError err = {{0}};
    if (t->numel > READ_CAP) return;
    float *dst = ct_malloc_array(t->numel ? t->numel : 1, sizeof *dst);
    int rc = st_read_f32(st, t->name, t->shape, t->ndim, dst, &err);
    if ((rc == 0) != (t->dtype != ST_OTHER)) abort();  // F32, F16, BF16 read; others refused
    if (rc == 0) {
        const uint8_t *p = st->data + t->begin;
        for (size_t i = 0; i < t->numel; i++)
            if (!same_float(dst[i], ref_value(p, t->dtype, i))) abort();
    }
    // One dimension more, or the last one off by one: refused, and the
    // destination is not touched (it is one element long).
    size_t shape[ST_MAX_DIMS + 1];
    memcpy(shape, t->shape, t->ndim * sizeof *shape);
    float one;
    if (t->ndim < ST_MAX_DIMS) {
        shape[t->ndim] = 1;
        if (st_read_f32(st, t->name, shape, t->ndim + 1, &one, &err) == 0) abort();
    }
    if (t->ndim > 0) {
        shape[t->ndim - 1] += 1;
        if (st_read_f32(st, t->name, shape, t->ndim, &one, &err) == 0) abort();
    }
    free(dst);
}

static void check_model(const SafeTensors *st, const Model *m) {
    CtError err = {{0}};
    size_t missing = st_find_missing(st, m->names, m->n, NULL, 0);
    if ((st_require(st, m->names, m->n, &err) == 0) != (missing == 0)) abort();
    for (size_t i = 0; i < m->n; i++) {
        const StTensor *t = st_find(st, m->t[i].name);
        if (!t) continue;
        size_t numel = 1;
        for (size_t d = 0; d < m->t[i].ndim; d++) numel *= m->t[i].shape[d];
        if (numel > READ_CAP) continue;
        // Reading succeeds only with the model's exact shape (and then the
        // tensor's data is in the file); otherwise dst must stay untouched.
        float *dst = ct_malloc_array(t->numel == numel && numel ? numel : 1, sizeof *dst);
        int rc = st_read_f32(st, m->t[i].name, m->t[i].shape, m->t[i].ndim, dst, &err);
        if (rc == 0 && t->numel != numel) abort();
        free(dst);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
    if (fd < 0) abort();
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    SafeTensors st;
    CtError err = {{0}};
    int rc = st_open(&st, path, &err);
    close(fd);
    if (rc) {
        // A refusal is one line that names the file.
        if (strncmp(err.msg, path, strlen(path)) != 0 || strchr(err.msg, '\n')) abort();
        return 0;
    }
    for (size_t i = 0; i < st.n_tensors; i++) {
        if (i && strcmp(st.tensors[i - 1].name, st.tensors[i].name) >= 0) abort();  // sorted, unique
        check_tensor(&st, &st.tensors[i]);
    }
    for (size_t m = 0; m < 2; m++) check_model(&st, &g_models[m]);
    for (size_t i = 0; i < st.n_meta; i++) {
        const char *v = st_metadata_get(&st, st.meta_keys[i]);
        if (!v || strcmp(v, st.meta_values[i]) != 0) abort();
    }
    st_print(&st, g_null);
    st_metadata_get(&st, "");
    if (st_find(&st, "") && st.n_tensors == 0) abort();
    st_close(&st);
    return 0;
}
