/*
 * test_fuzz_regress_safetensors.c — inputs fuzz_safetensors found that the
 * safetensors reader mishandled, replayed through the normal build (the
 * files themselves are in tests/fuzz/regress/safetensors/).
 *
 * A header without tensors ({} and metadata alone) is a valid file: it
 * opened, but the reader sorted its NULL tensor array with qsort, which
 * UndefinedBehaviorSanitizer reports (run this under
 * -DCTSWEEP_SANITIZE=address,undefined).
 *
 * usage: test_fuzz_regress_safetensors SCRATCH_DIR SHARED_DATA_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/safetensors.h"
#include "util/util.h"

#include "check.h"

// Writes the 8-byte header length, the header and no data; returns the path.
static char *write_header_only(const char *dir, const char *name, const char *json) {
    char *path = ct_asprintf("%s/%s.safetensors", dir, name);
    size_t n = strlen(json);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)n >> (8 * i));
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(len, 1, 8, f) != 8 || fwrite(json, 1, n, f) != n || fclose(f) != 0) {
        printf("FAIL cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static void check_no_tensors(const char *dir, const char *name, const char *json, size_t n_meta) {
    char *path = write_header_only(dir, name, json);
    SafeTensors st;
    CtError err = {{0}};
    int rc = st_open(&st, path, &err);
    CHECK(rc == 0, "%s: %s", name, err.msg);
    if (rc == 0) {
        CHECK(st.n_tensors == 0 && st.n_meta == n_meta, "%s: %zu tensors, %zu metadata", name, st.n_tensors,
              st.n_meta);
        CHECK(st_find(&st, "features.0.weight") == NULL, "%s: found a tensor", name);
        const char *const want[1] = {"conv1.weight"};
        CHECK(st_require(&st, want, 1, &err) != 0 && strstr(err.msg, "missing 1 of 1"), "%s: require: %s", name,
              err.msg);
        float x;
        size_t shape[1] = {1};
        CHECK(st_read_f32(&st, "conv1.weight", shape, 1, &x, &err) != 0 && strstr(err.msg, "missing tensor"),
              "%s: read: %s", name, err.msg);
        st_close(&st);
    }
    printf("ok   %s: no tensors\n", name);
    free(path);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s SCRATCH_DIR SHARED_DATA_DIR\n", argv[0]);
        return 2;
    }
    CtError err = {{0}};
    if (ct_mkdirs(argv[1], &err)) {
        printf("FAIL %s\n", err.msg);
        return 2;
    }
    check_no_tensors(argv[1], "empty_header", "{}      ", 0);  // regress/safetensors/empty_header_qsort_null
    check_no_tensors(argv[1], "metadata_only", "{\"__metadata__\":{\"format\":\"pt\"}}", 1);
    return check_summary();
}
