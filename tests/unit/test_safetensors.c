/*
 * test_safetensors.c — the safetensors reader against crafted files.
 *
 * Weight files come from the internet, so the reader must read good files
 * exactly (F32, F16 with subnormals/inf/nan, BF16, metadata) and turn every
 * kind of damage into one clear error instead of a crash. Each case writes a
 * file into the scratch directory argv[1], opens it and checks the outcome;
 * the last case mutates a good file byte by byte to look for crashes (run it
 * under -DCTSWEEP_SANITIZE=address,undefined).
 */
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nn/safetensors.h"
#include "util/util.h"

static const char *g_dir;
static int g_pass, g_fail;

// ---- harness ----

static void report(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(int ok, const char *name, const char *fmt, ...) {
    printf("%s %s", ok ? "PASS" : "FAIL", name);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        printf(": ");
        vprintf(fmt, ap);
        va_end(ap);
    }
    printf("\n");
    ok ? g_pass++ : g_fail++;
}

// Case names become file names: anything but [A-Za-z0-9] turns into '_'.
static char *path_for(const char *name) {
    char *base = ct_strdup(name);
    for (char *c = base; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) *c = '_';
    char *path = ct_asprintf("%s/%s.safetensors", g_dir, base);
    free(base);
    return path;
}

static void write_raw(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

// Writes an 8-byte little-endian header length (hlen, normally strlen(json)),
// the header and the data section; returns the path (caller frees).
static char *write_st_len(const char *name, uint64_t hlen, const char *json, const void *data, size_t data_len) {
    size_t jl = strlen(json);
    size_t total = 8 + jl + data_len;
    uint8_t *buf = ct_malloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, json, jl);
    if (data_len) memcpy(buf + 8 + jl, data, data_len);
    char *path = path_for(name);
    write_raw(path, buf, total);
    free(buf);
    return path;
}

static char *write_st(const char *name, const char *json, const void *data, size_t data_len) {
    return write_st_len(name, strlen(json), json, data, data_len);
}

// True when msg contains every word of the NULL-terminated list.
static int has_words(const char *msg, va_list ap) {
    const char *w;
    while ((w = va_arg(ap, const char *)))
        if (!strstr(msg, w)) return 0;
    return 1;
}

// Opening path must fail with a message naming the file and holding words.
static void expect_open_error(const char *name, const char *path, ...) {
    SafeTensors st;
    CtError err = {{0}};
    int rc = st_open(&st, path, &err);
    va_list ap;
    va_start(ap, path);
    int words = has_words(err.msg, ap);
    va_end(ap);
    int ok = rc == -1 && words && strstr(err.msg, path) && !strchr(err.msg, '\n') && st.tensors == NULL &&
             st.file == NULL;
    report(ok, name, "%s", rc == 0 ? "opened, expected an error" : err.msg);
    if (rc == 0) st_close(&st);
}

static void expect_json_error(const char *name, const char *json, const char *word) {
    char *path = write_st(name, json, NULL, 0);
    expect_open_error(name, path, word, (const char *)NULL);
    free(path);
}

// ---- little-endian data builders ----

static void put_f32(uint8_t *p, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(u >> (8 * i));
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static int same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t x, y;
    memcpy(&x, &a, 4);
    memcpy(&y, &b, 4);
    return x == y;  // bitwise, so -0 differs from +0
}

// ---- the good file ----

static const float F32_VALS[6] = {0.0f, 1.0f, -2.5f, 3.25e10f, 1e-40f /* subnormal */, -0.0f};
static const uint16_t F16_BITS[11] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00,
                                      0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00};
static const uint16_t BF16_BITS[4] = {0x3f80, 0xc049, 0x7f80, 0x0001};

static float f16_expected(int i) {
    switch (i) {
    case 0: return 0.0f;
    case 1: return -0.0f;
    case 2: return ldexpf(1.0f, -24);  // smallest subnormal
    case 3: return ldexpf(1023.0f, -24);  // largest subnormal
    case 4: return ldexpf(1.0f, -14);  // smallest normal
    case 5: return 1.0f;
    case 6: return -2.0f;
    case 7: return 65504.0f;
    case 8: return INFINITY;
    case 9: return -INFINITY;
    default: return NAN;
    }
}

static const float BF16_EXPECTED[4] = {1.0f, -3.140625f, INFINITY, 0.0f /* set at run time */};

// Header offsets: a [0,24) f32; h [24,46) f16; b [46,54) bf16; i [54,70) i64;
// s [70,74) f32 scalar; e [74,74) empty.
static const char GOOD_JSON[] =
    "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9 \\\"q\\\" \\ud83d\\ude00\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"h\":{\"dtype\":\"F16\",\"shape\":[11],\"data_offsets\":[24,46],\"extra\":[1,{\"x\":null},-2.5e3,true]},"
    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[46,54]},"
    "\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[54,70]},"
    "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[70,74]},"
    "\"e\" : { \"shape\" : [ 0 , 5 ] , \"dtype\" : \"F32\" , \"data_offsets\" : [ 74 , 74 ] }"
    "}        ";

static size_t good_data(uint8_t *d) {
    memset(d, 0, 74);
    for (int i = 0; i < 6; i++) put_f32(d + 4 * i, F32_VALS[i]);
    for (int i = 0; i < 11; i++) put_u16(d + 24 + 2 * i, F16_BITS[i]);
    for (int i = 0; i < 4; i++) put_u16(d + 46 + 2 * i, BF16_BITS[i]);
    d[54] = 7;
    put_f32(d + 70, 42.0f);
    return 74;
}

static void test_good(void) {
    uint8_t data[74];
    size_t n = good_data(data);
    char *path = write_st("good", GOOD_JSON, data, n);
    SafeTensors st;
    CtError err = {{0}};
    if (st_open(&st, path, &err)) {
        report(0, "good: open", "%s", err.msg);
        free(path);
        return;
    }
    report(st.n_tensors == 6, "good: six tensors", "%zu", st.n_tensors);

    float a[6];
    size_t sa[2] = {2, 3};
    int ok = st_read_f32(&st, "a", sa, 2, a, &err) == 0;
    for (int i = 0; ok && i < 6; i++) ok = same_float(a[i], F32_VALS[i]);
    report(ok, "good: F32 exact (incl. subnormal, -0)", ok ? NULL : "%s", err.msg);

    float h[11];
    size_t sh[1] = {11};
    ok = st_read_f32(&st, "h", sh, 1, h, &err) == 0;
    int bad = -1;
    for (int i = 0; ok && i < 11; i++)
        if (!same_float(h[i], f16_expected(i))) ok = 0, bad = i;
    report(ok, "good: F16 exact (subnormal, inf, nan, 65504)", ok ? NULL : "element %d = %g (%s)", bad,
           bad >= 0 ? (double)h[bad] : 0.0, err.msg);

    float b[4], bexp[4];
    memcpy(bexp, BF16_EXPECTED, sizeof bexp);
    bexp[3] = ldexpf(1.0f, -133);  // bf16 0x0001: the smallest subnormal
    size_t sb[2] = {2, 2};
    ok = st_read_f32(&st, "b", sb, 2, b, &err) == 0;
    for (int i = 0; ok && i < 4; i++) ok = same_float(b[i], bexp[i]);
    report(ok, "good: BF16 exact", ok ? NULL : "%s", err.msg);

    float s = 0;
    ok = st_read_f32(&st, "s", NULL, 0, &s, &err) == 0 && s == 42.0f;
    report(ok, "good: scalar", ok ? NULL : "%s", err.msg);

    size_t se[2] = {0, 5};
    ok = st_read_f32(&st, "e", se, 2, NULL, &err) == 0;
    report(ok, "good: empty tensor", ok ? NULL : "%s", err.msg);

    const char *fmt = st_metadata_get(&st, "format"), *note = st_metadata_get(&st, "note");
    ok = fmt && strcmp(fmt, "pt") == 0 && note && strcmp(note, "caf\xc3\xa9 \"q\" \xf0\x9f\x98\x80") == 0 &&
         !st_metadata_get(&st, "nope");
    report(ok, "good: __metadata__ with escapes", "format=%s note=%s", fmt ? fmt : "(null)", note ? note : "(null)");

    const StTensor *t = st_find(&st, "i");
    ok = t && t->dtype == ST_OTHER && strcmp(t->dtype_name, "I64") == 0 && t->numel == 2 && t->begin == 54;
    report(ok, "good: I64 listed", NULL);

    // Unsupported dtype on read: names tensor and dtype.
    float iv[2];
    size_t si[1] = {2};
    ok = st_read_f32(&st, "i", si, 1, iv, &err) == -1 && strstr(err.msg, "'i'") && strstr(err.msg, "I64") &&
         strstr(err.msg, path);
    report(ok, "read: unsupported dtype I64", "%s", err.msg);

    // Missing tensors.
    ok = st_read_f32(&st, "features.0.weight", sa, 2, a, &err) == -1 && strstr(err.msg, "missing") &&
         strstr(err.msg, "'features.0.weight'") && strstr(err.msg, path);
    report(ok, "read: missing tensor", "%s", err.msg);
    const char *req[] = {"a", "fc.weight", "h", "fc.bias", "x1", "x2", "x3"};
    const char *miss[2];
    size_t nm = st_find_missing(&st, req, 7, miss, 2);
    ok = nm == 5 && strcmp(miss[0], "fc.weight") == 0 && strcmp(miss[1], "fc.bias") == 0;
    ok = ok && st_require(&st, req, 7, &err) == -1 && strstr(err.msg, "'fc.weight'") && strstr(err.msg, "'fc.bias'") &&
         strstr(err.msg, "1 more") && strstr(err.msg, "missing 5 of 7");
    ok = ok && st_require(&st, req, 1, &err) == 0 && st_require(&st, req + 2, 1, &err) == 0;
    report(ok, "require: missing list", "%s", err.msg);

    // Wrong shapes requested.
    size_t wrong[2] = {3, 2};
    ok = st_read_f32(&st, "a", wrong, 2, a, &err) == -1 && strstr(err.msg, "'a'") && strstr(err.msg, "[2,3]") &&
         strstr(err.msg, "[3,2]");
    report(ok, "read: wrong shape (same numel)", "%s", err.msg);
    size_t wrong3[3] = {2, 3, 1};
    ok = st_read_f32(&st, "a", wrong3, 3, a, &err) == -1 && strstr(err.msg, "[2,3,1]");
    report(ok, "read: wrong rank", "%s", err.msg);

    // Listing.
    char *lpath = ct_asprintf("%s/list.txt", g_dir);
    FILE *f = fopen(lpath, "w+");
    char listing[512] = {0};
    if (f) {
        st_print(&st, f);
        rewind(f);
        size_t got = fread(listing, 1, sizeof listing - 1, f);
        listing[got] = '\0';
        fclose(f);
    }
    ok = strcmp(listing, "a F32 [2,3]\nb BF16 [2,2]\ne F32 [0,5]\nh F16 [11]\ni I64 [2]\ns F32 []\n") == 0;
    report(ok, "list: st_print", ok ? NULL : "got\n%s", listing);
    free(lpath);

    st_close(&st);
    st_close(&st);  // idempotent
    ok = st_read_f32(&st, "a", sa, 2, a, &err) == -1 && strstr(err.msg, "not open") &&
         st_require(&st, req, 1, &err) == -1 && st_find(&st, "a") == NULL;
    report(ok, "closed handle: errors, no crash", "%s", err.msg);
    free(path);
}

static void test_shape_message(void) {
    uint8_t *data = ct_calloc(64 * 27, 4);
    char *path = write_st("vgg_shape",
                          "{\"features.0.weight\":{\"dtype\":\"F32\",\"shape\":[64,3,3,3],\"data_offsets\":[0,6912]}}",
                          data, 64 * 27 * 4);
    SafeTensors st;
    CtError err = {{0}};
    int ok = st_open(&st, path, &err) == 0;
    if (ok) {
        float *dst = ct_malloc(64 * 75 * sizeof(float));
        size_t want[4] = {64, 3, 5, 5};
        ok = st_read_f32(&st, "features.0.weight", want, 4, dst, &err) == -1 &&
             strstr(err.msg, "'features.0.weight'") && strstr(err.msg, "[64,3,3,3]") &&
             strstr(err.msg, "[64,3,5,5]") && strstr(err.msg, path);
        free(dst);
        st_close(&st);
    }
    report(ok, "read: wrong shape message", "%s", err.msg);
    free(path);
    free(data);
}

// ---- damaged files ----

static void test_truncated(void) {
    char *p = path_for("short5");
    write_raw(p, "\x10\0\0\0\0", 5);
    expect_open_error("truncated: 5-byte file", p, "truncated", "8-byte", (const char *)NULL);
    free(p);
    p = path_for("empty");
    write_raw(p, "", 0);
    expect_open_error("truncated: empty file", p, "truncated", (const char *)NULL);
    free(p);

    uint8_t data[74];
    good_data(data);
    p = write_st("good_for_cut", GOOD_JSON, data, sizeof data);
    uint8_t *whole;
    size_t len;
    CtError err;
    if (ct_read_file(p, &whole, &len, 1 << 20, &err)) {
        report(0, "truncated: reread", "%s", err.msg);
        free(p);
        return;
    }
    char *cut = path_for("cut_header");
    write_raw(cut, whole, 8 + 40);
    expect_open_error("truncated: header cut", cut, "past the end", (const char *)NULL);
    write_raw(cut, whole, len - 3);
    expect_open_error("truncated: data cut", cut, "outside the data section", (const char *)NULL);
    free(cut);
    free(whole);
    free(p);

    char *missing = ct_asprintf("%s/does-not-exist.safetensors", g_dir);
    expect_open_error("open: no such file", missing, "cannot open", (const char *)NULL);
    expect_open_error("open: a directory", g_dir, "not a regular file", (const char *)NULL);
    free(missing);
}

static void test_header_length(void) {
    char *p = write_st_len("hlen_past_end", 1000, "{}", NULL, 0);
    expect_open_error("header length past end", p, "header length 1000", "past the end", (const char *)NULL);
    free(p);
    p = write_st_len("hlen_2p63", (uint64_t)1 << 63, "{}", NULL, 0);
    expect_open_error("header length 2^63", p, "9223372036854775808", "larger than the limit", (const char *)NULL);
    free(p);
    p = write_st_len("hlen_max", UINT64_MAX, "{}", NULL, 0);
    expect_open_error("header length 2^64-1", p, "18446744073709551615", "larger than the limit", (const char *)NULL);
    free(p);
    p = write_st_len("hlen_100mb", 100 * 1000 * 1000 + 1, "{}", NULL, 0);
    expect_open_error("header length > 100 MB", p, "100000001", "larger than the limit", (const char *)NULL);
    free(p);
    p = write_st_len("hlen_100mb_exact", 100 * 1000 * 1000, "{}", NULL, 0);
    expect_open_error("header length = 100 MB, past end", p, "past the end", (const char *)NULL);
    free(p);
}

static void test_offsets(void) {
    uint8_t d[64] = {0};
    char *p;
    p = write_st("off_outside", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,32]}}", d, 24);
    expect_open_error("offsets outside data", p, "'w'", "outside the data section", (const char *)NULL);
    free(p);
    p = write_st("off_end_before_begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,8]}}", d, 24);
    expect_open_error("offsets end < begin", p, "'w'", "end before", (const char *)NULL);
    free(p);
    p = write_st("off_size_mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", d, 24);
    expect_open_error("size mismatch with shape", p, "'w'", "size mismatch", "[2,3]", (const char *)NULL);
    free(p);
    p = write_st("off_overlap",
                 "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"v\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[12,20]}}",
                 d, 24);
    expect_open_error("overlapping tensors", p, "'w'", "'v'", "overlap", (const char *)NULL);
    free(p);
    p = write_st("off_huge", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[18446744073709551600,18446744073709551615]}}", d, 24);
    expect_open_error("offsets near 2^64", p, "'w'", (const char *)NULL);
    free(p);
    p = write_st("shape_overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,16]}}", d, 24);
    expect_open_error("shape product overflow", p, "'w'", "too many elements", (const char *)NULL);
    free(p);
    p = write_st("bytes_overflow", "{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,16]}}", d, 24);
    expect_open_error("byte size overflow", p, "'w'", "too large", (const char *)NULL);
    free(p);
}

static void test_json(void) {
    expect_json_error("json: unclosed object", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]}", "header ends");
    expect_json_error("json: trailing comma", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0]},}", "invalid JSON");
    expect_json_error("json: trailing comma in array", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,0]}}", "invalid JSON");
    expect_json_error("json: single quotes", "{'w':{}}", "invalid JSON");
    expect_json_error("json: unterminated string", "{\"w", "unterminated string");
    expect_json_error("json: bad escape", "{\"w\\x\":{}}", "bad escape");
    expect_json_error("json: lone surrogate", "{\"\\ud800\":{}}", "surrogate");
    expect_json_error("json: bad \\u digit", "{\"\\u12g4\":{}}", "hex digit");
    expect_json_error("json: \\u0000 in name", "{\"a\\u0000b\":{}}", "\\u0000");
    expect_json_error("json: raw newline in string", "{\"a\nb\":{}}", "control character");
    expect_json_error("json: leading zero", "{\"w\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", "leading zero");
    expect_json_error("json: integer overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}", "overflows");
    expect_json_error("json: negative shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-3],\"data_offsets\":[0,4]}}", "negative");
    expect_json_error("json: float in shape", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", "non-integer");
    expect_json_error("json: shape not array", "{\"w\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", "must be an array");
    expect_json_error("json: NaN literal", "{\"w\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,4]}}", "invalid JSON");
    expect_json_error("json: bare word", "{\"w\":{\"x\":nul}}", "invalid JSON");
    expect_json_error("json: missing colon", "{\"w\" {}}", "expected ':'");
    expect_json_error("json: not an object", "[1,2]", "not a JSON object");
    expect_json_error("json: empty header", "", "not a JSON object");
    expect_json_error("json: trailing garbage", "{} x", "trailing characters");
    expect_json_error("json: two objects", "{}{}", "trailing characters");
    expect_json_error("json: too deep",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0],"
                      "\"x\":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}}",
                      "nesting deeper");
    expect_json_error("json: tensor entry not object", "{\"w\":[1]}", "must be an object");
    expect_json_error("json: missing dtype", "{\"w\":{\"shape\":[],\"data_offsets\":[0,0]}}", "lacks \"dtype\"");
    expect_json_error("json: unknown dtype", "{\"w\":{\"dtype\":\"Q8\",\"shape\":[],\"data_offsets\":[0,0]}}", "unknown dtype 'Q8'");
    expect_json_error("json: three offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0,0]}}", "data_offsets");
    expect_json_error("json: nine dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", "more than 8");
    expect_json_error("json: metadata value not string", "{\"__metadata__\":{\"k\":1}}", "must be a string");
    expect_json_error("json: duplicate metadata", "{\"__metadata__\":{},\"__metadata__\":{}}", "duplicate key");
    expect_json_error("json: duplicate metadata key", "{\"__metadata__\":{\"k\":\"a\",\"j\":\"c\",\"k\":\"b\"}}", "duplicate key 'k'");
    expect_json_error("json: duplicate field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"dtype\":\"F16\",\"data_offsets\":[0,0]}}", "duplicate key 'dtype'");
    expect_json_error("json: duplicate key in unknown field", "{\"w\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,0],\"x\":{\"a\":1,\"\\u0061\":2}}}", "duplicate key 'a'");
    expect_json_error("json: duplicate tensor name",
                      "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"v\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                      "duplicate tensor name 'w'");
}

static void test_garbage(void) {
    expect_json_error("utf8: invalid byte", "{\"w\xff\":{}}", "not valid UTF-8");
    expect_json_error("utf8: overlong", "{\"\xc0\xaf\":{}}", "not valid UTF-8");
    expect_json_error("utf8: encoded surrogate", "{\"\xed\xa0\x80\":{}}", "not valid UTF-8");
    expect_json_error("utf8: cut sequence", "{\"\xe2\x82", "not valid UTF-8");
    uint8_t junk[256];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    junk[0] = 200, junk[1] = junk[2] = junk[3] = junk[4] = junk[5] = junk[6] = junk[7] = 0;  // header length 200
    char *p = path_for("garbage");
    write_raw(p, junk, sizeof junk);
    expect_open_error("garbage bytes", p, (const char *)NULL);
    free(p);
}

// Every truncation and many single-byte mutations of the good file must open
// or fail cleanly; under ASan/UBSan this is where crashes would show.
static void test_mutations(void) {
    uint8_t data[74];
    size_t dl = good_data(data);
    size_t jl = strlen(GOOD_JSON), len = 8 + jl + dl;
    uint8_t *good = ct_malloc(len), *buf = ct_malloc(len);
    for (int i = 0; i < 8; i++) good[i] = (uint8_t)((uint64_t)jl >> (8 * i));
    memcpy(good + 8, GOOD_JSON, jl);
    memcpy(good + 8 + jl, data, dl);
    char *p = path_for("mutant");
    static const uint8_t values[] = {0, '"', '\\', '{', '}', '[', ']', ',', ':', '-', '9', 'e', 0x80, 0xff, ' '};
    size_t opened = 0, failed = 0, bad_msgs = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        write_raw(p, good, cut);
        SafeTensors st;
        CtError err = {{0}};
        if (st_open(&st, p, &err) == 0) opened++, st_close(&st);
        else failed++, bad_msgs += !strstr(err.msg, p);
    }
    // Single-byte mutations keep the length, so patch the file in place.
    write_raw(p, good, len);
    int fd = open(p, O_WRONLY);
    if (fd < 0) {
        report(0, "mutations", "cannot open %s", p);
        goto done;
    }
    for (size_t pos = 0; pos < len; pos++) {
        for (size_t v = 0; v <= sizeof values; v++) {
            uint8_t byte = v < sizeof values ? values[v] : good[pos];  // the last pass restores the byte
            if (pwrite(fd, &byte, 1, (off_t)pos) != 1) {
                report(0, "mutations", "cannot write %s", p);
                close(fd);
                goto done;
            }
            if (v == sizeof values) break;
            SafeTensors st;
            CtError err = {{0}};
            if (st_open(&st, p, &err) == 0) {
                opened++;
                float tmp[16];
                size_t sh[2] = {2, 3};
                st_read_f32(&st, "a", sh, 2, tmp, &err);  // must not crash, whatever it returns
                st_close(&st);
            } else {
                failed++;
                bad_msgs += !strstr(err.msg, p) || err.msg[0] == '\0';
            }
        }
    }
    close(fd);
    report(bad_msgs == 0, "mutations: no crash, every error names the file", "%zu opened, %zu rejected", opened,
           failed);
done:
    free(p);
    free(good);
    free(buf);
}

static void test_format_shape(void) {
    char buf[64];
    size_t s[3] = {64, 3, 3};
    st_format_shape(buf, sizeof buf, s, 3);
    int ok = strcmp(buf, "[64,3,3]") == 0;
    st_format_shape(buf, sizeof buf, NULL, 0);
    ok = ok && strcmp(buf, "[]") == 0;
    char small[8];
    st_format_shape(small, sizeof small, s, 3);
    ok = ok && strlen(small) == 7 && strcmp(small + 4, "...") == 0;
    report(ok, "format_shape", "%s / %s", buf, small);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    g_dir = argv[1];
    CtError err;
    if (ct_mkdirs(g_dir, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    test_good();
    test_shape_message();
    test_format_shape();
    test_truncated();
    test_header_length();
    test_offsets();
    test_json();
    test_garbage();
    test_mutations();
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
