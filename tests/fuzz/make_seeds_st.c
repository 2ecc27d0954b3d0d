/*
 * make_seeds_st.c — writes the seed corpus of fuzz_safetensors into a
 * folder: small valid files of each convertible dtype (F32, F16 with
 * subnormals, infinities and NaN, BF16) with __metadata__, files mixing the
 * other dtypes (sub-byte F4 and F6 included), empty and scalar tensors,
 * escapes and unknown fields in the header, gaps between tensors, and one
 * file each with every tensor name VGG16 and ResNet-34 load (tiny shapes),
 * so that st_require passes. The names come from model_build, so they follow
 * src/nn/models.c. Generated, so the corpus is neither downloaded nor
 * committed.
 *
 * usage: make_seeds_st DIR   (DIR must exist)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/graph.h"
#include "nn/models.h"
#include "util/util.h"

static int g_count;
static const char *g_dir;

// ---- a small safetensors writer ----

typedef struct {
    char *json;  // the header being built, "{" ... without the closing brace
    size_t json_len, json_cap;
    uint8_t *data;
    size_t data_len, data_cap;
    int n_entries;
} StWriter;

static void grow(void **p, size_t *cap, size_t need) {
    if (need <= *cap) return;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    *p = realloc(*p, c);
    if (!*p) exit(1);
    *cap = c;
}

static void json_put(StWriter *w, const char *s) {
    size_t n = strlen(s);
    grow((void **)&w->json, &w->json_cap, w->json_len + n + 1);
    memcpy(w->json + w->json_len, s, n + 1);
    w->json_len += n;
}

static void writer_init(StWriter *w) {
    memset(w, 0, sizeof *w);
    json_put(w, "{");
}

static void entry_sep(StWriter *w) {
    if (w->n_entries++) json_put(w, ",");
}

// name is written as given: it may hold JSON escapes.
static void add_tensor(StWriter *w, const char *name, const char *dtype, const size_t *shape, size_t ndim,
                       const void *bytes, size_t nbytes, size_t gap, const char *extra) {
    char buf[512];
    entry_sep(w);
    size_t begin = w->data_len + gap;
    snprintf(buf, sizeof buf, "\"%s\":{\"dtype\":\"%s\",\"shape\":[", name, dtype);
    json_put(w, buf);
    for (size_t i = 0; i < ndim; i++) {
        snprintf(buf, sizeof buf, "%s%zu", i ? "," : "", shape[i]);
        json_put(w, buf);
    }
    snprintf(buf, sizeof buf, "],\"data_offsets\":[%zu,%zu]%s%s}", begin, begin + nbytes, extra ? "," : "",
             extra ? extra : "");
    json_put(w, buf);
    grow((void **)&w->data, &w->data_cap, begin + nbytes);
    for (size_t i = w->data_len; i < begin; i++) w->data[i] = 0xA5;  // a gap
    if (nbytes) memcpy(w->data + begin, bytes, nbytes);
    w->data_len = begin + nbytes;
}

static void add_metadata(StWriter *w, const char *pairs) {
    entry_sep(w);
    json_put(w, "\"__metadata__\":{");
    json_put(w, pairs);
    json_put(w, "}");
}

// Closes the header (padded with spaces to a multiple of 8, as the
// reference writer does) and writes the file.
static void writer_finish(StWriter *w, const char *name) {
    json_put(w, "}");
    while (w->json_len % 8) json_put(w, " ");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)w->json_len >> (8 * i));
    if (!f || fwrite(len, 1, 8, f) != 8 || fwrite(w->json, 1, w->json_len, f) != w->json_len ||
        (w->data_len && fwrite(w->data, 1, w->data_len, f) != w->data_len) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds_st: cannot write %s\n", path);
        exit(1);
    }
    free(w->json);
    free(w->data);
    g_count++;
}

// ---- value encodings ----

static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

// ---- seeds ----

static void seed_f32(void) {
    StWriter w;
    writer_init(&w);
    uint8_t a[6 * 4], b[3 * 4];
    for (int i = 0; i < 6; i++) put_f32(a + 4 * i, (float)i * 0.5f - 1.0f);
    put_f32(b, 1e-38f);
    put_f32(b + 4, -3.4e38f);
    put_f32(b + 8, 0.0f);
    add_metadata(&w, "\"format\":\"pt\",\"note\":\"f32 seed\"");
    add_tensor(&w, "features.0.weight", "F32", (size_t[]){2, 3}, 2, a, sizeof a, 0, NULL);
    add_tensor(&w, "features.0.bias", "F32", (size_t[]){3}, 1, b, sizeof b, 0, NULL);
    writer_finish(&w, "f32_meta.safetensors");
}

static void seed_f16(void) {
    // Zero, negative zero, the smallest and largest subnormals, one, the
    // largest normal, infinities, quiet and signalling NaN.
    static const uint16_t h[10] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00,
                                   0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7d01};
    uint8_t d[20];
    for (int i = 0; i < 10; i++) put_u16(d + 2 * i, h[i]);
    StWriter w;
    writer_init(&w);
    add_tensor(&w, "bn1.running_var", "F16", (size_t[]){2, 5}, 2, d, sizeof d, 0, NULL);
    add_tensor(&w, "bn1.weight", "F16", (size_t[]){1}, 1, d + 8, 2, 4, NULL);
    add_metadata(&w, "\"format\":\"pt\"");
    writer_finish(&w, "f16_specials.safetensors");
}

static void seed_bf16(void) {
    static const uint16_t h[6] = {0x3f80, 0xbf80, 0x0001, 0x7f80, 0x7fc0, 0x4049};
    uint8_t d[12];
    for (int i = 0; i < 6; i++) put_u16(d + 2 * i, h[i]);
    StWriter w;
    writer_init(&w);
    add_metadata(&w, "\"format\":\"pt\",\"framework\":\"torch\",\"k\\u00e9y\":\"v\\u00e9\\ud83d\\ude00\"");
    add_tensor(&w, "conv1.weight", "BF16", (size_t[]){1, 2, 1, 3}, 4, d, sizeof d, 0, NULL);
    writer_finish(&w, "bf16.safetensors");
}

static void seed_mixed(void) {
    uint8_t d[64];
    for (int i = 0; i < 64; i++) d[i] = (uint8_t)(i * 37 + 11);
    StWriter w;
    writer_init(&w);
    add_tensor(&w, "num_batches_tracked", "I64", (size_t[]){1}, 1, d, 8, 0, NULL);
    add_tensor(&w, "mask", "BOOL", (size_t[]){3}, 1, d, 3, 0, NULL);
    add_tensor(&w, "u8", "U8", (size_t[]){2, 2}, 2, d, 4, 0, NULL);
    add_tensor(&w, "f4", "F4", (size_t[]){4}, 1, d, 2, 0, NULL);
    add_tensor(&w, "f6", "F6_E2M3", (size_t[]){4}, 1, d, 3, 0, NULL);
    add_tensor(&w, "f8", "F8_E4M3", (size_t[]){2}, 1, d, 2, 0, NULL);
    add_tensor(&w, "c64", "C64", (size_t[]){1}, 1, d, 8, 0, NULL);
    add_tensor(&w, "f64", "F64", (size_t[]){1}, 1, d, 8, 0, NULL);
    add_tensor(&w, "i32", "I32", (size_t[]){1}, 1, d, 4, 0, NULL);
    add_tensor(&w, "empty", "F32", (size_t[]){0, 7}, 2, d, 0, 0, NULL);
    add_tensor(&w, "scalar", "F32", NULL, 0, d, 4, 0, "\"extra\":{\"x\":[1,-2.5e3,{\"y\":null}],\"t\":true}");
    add_tensor(&w, "esc\\\"aped\\\\\\/\\n\\u0041", "F16", (size_t[]){1}, 1, d, 2, 0, NULL);
    add_tensor(&w, "\\u00e9t\\u00e9", "BF16", (size_t[]){1, 1, 1, 1, 1, 1, 1, 1}, 8, d, 2, 0, NULL);
    writer_finish(&w, "mixed.safetensors");
}

static void seed_small(void) {
    StWriter w;
    writer_init(&w);
    writer_finish(&w, "empty_header.safetensors");
    writer_init(&w);
    add_metadata(&w, "");
    writer_finish(&w, "empty_metadata.safetensors");
    uint8_t d[8] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    writer_init(&w);
    // Gaps before and between tensors, entries out of data order.
    add_tensor(&w, "b", "F32", (size_t[]){1}, 1, d + 4, 4, 16, NULL);
    add_tensor(&w, "a", "F32", (size_t[]){1}, 1, d, 4, 8, NULL);
    add_metadata(&w, "\"format\":\"np\"");
    writer_finish(&w, "gaps.safetensors");
}

// Every tensor model_load_safetensors reads for `model`, each one element
// (so the names pass st_require and the shapes differ), dtypes in turn.
static void seed_model(const char *model) {
    NNGraph g;
    CtError err = {{0}};
    if (model_build(&g, model, &err)) {
        fprintf(stderr, "make_seeds_st: %s\n", err.msg);
        exit(1);
    }
    static const char *const bn_parts[4] = {"weight", "bias", "running_mean", "running_var"};
    static const char *const dtypes[3] = {"F32", "F16", "BF16"};
    uint8_t one[4];
    put_f32(one, 1.0f);
    StWriter w;
    writer_init(&w);
    add_metadata(&w, "\"format\":\"pt\"");
    size_t k = 0;
    for (size_t i = 0; i < g.n_layers; i++) {
        const NNLayer *l = &g.layers[i];
        if (l->kind != NN_CONV) continue;
        char name[112];
        for (int p = -1; p < 4; p++) {
            if (p < 0) snprintf(name, sizeof name, "%s.weight", l->name);
            else if (!l->bn_name[0] && p == 0) snprintf(name, sizeof name, "%s.bias", l->name);
            else if (!l->bn_name[0]) break;
            else snprintf(name, sizeof name, "%s.%s", l->bn_name, bn_parts[p]);
            const char *dt = dtypes[k++ % 3];
            add_tensor(&w, name, dt, (size_t[]){1}, 1, dt[0] == 'F' && dt[1] == '3' ? one : one + 2,
                       dt[1] == '3' ? 4 : 2, 0, NULL);
        }
    }
    graph_free(&g);
    char file[64];
    snprintf(file, sizeof file, "%s_names.safetensors", model);
    writer_finish(&w, file);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds_st DIR\n");
        return 2;
    }
    g_dir = argv[1];
    seed_f32();
    seed_f16();
    seed_bf16();
    seed_mixed();
    seed_small();
    seed_model("vgg16");
    seed_model("resnet34");
    printf("make_seeds_st: %d seeds in %s\n", g_count, g_dir);
    return 0;
}
