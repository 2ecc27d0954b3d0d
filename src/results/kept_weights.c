/*
 * kept_weights.c — kept weights in memory and in trial files (kept_weights.h).
 */
#include "results/kept_weights.h"

#include <stdlib.h>
#include <string.h>

#include "results/h5io.h"

int keep_weights_parse(const char *s, KeepWeights *out) {
    if (strcmp(s, "selected") == 0) *out = KEEP_SELECTED;
    else if (strcmp(s, "final") == 0) *out = KEEP_FINAL;
    else if (strcmp(s, "both") == 0) *out = KEEP_BOTH;
    else if (strcmp(s, "none") == 0) *out = KEEP_NONE;
    else return -1;
    return 0;
}

const char *keep_weights_name(KeepWeights k) {
    return k == KEEP_SELECTED ? "selected" : k == KEEP_FINAL ? "final" : k == KEEP_BOTH ? "both" : "none";
}

const char *keep_kind_name(int kind) { return kind == KEEP_FINAL ? "final" : "selected"; }

void kept_weights_add(KeptWeights *w, const char *name, size_t ndim, const size_t *shape) {
    if (ndim == 0 || ndim > KEPT_MAX_DIMS) fatal("kept tensor %s: %zu dimensions", name, ndim);
    w->tensors = ct_realloc(w->tensors, (w->n_tensors + 1) * sizeof *w->tensors);
    KeptTensor *t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (size_t d = 0; d < ndim; d++) {
        t->shape[d] = shape[d];
        if (ct_mul_size(&t->numel, t->numel, shape[d])) fatal("kept tensor %s: size overflows", name);
    }
    t->offset = w->n_floats;
    w->n_floats += t->numel;
}

void kept_weights_free(KeptWeights *w) {
    free(w->tensors);
    free(w->data);
    memset(w, 0, sizeof *w);
}

const KeptTensor *kept_weights_find(const KeptWeights *w, const char *name) {
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0) return &w->tensors[i];
    return NULL;
}

// ---- trial files ----

int kept_weights_write_h5(hid_t f, const KeptWeights *w, CtError *err) {
    hid_t m = -1, g = -1;
    int rc = -1;
    const char *kind = keep_kind_name(w->kind);
    htri_t have = H5Lexists(f, "model", H5P_DEFAULT);
    h5_try(m = have > 0 ? H5Gopen2(f, "model", H5P_DEFAULT)
                        : H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
           "model");
    h5_try(g = H5Gcreate2(m, kind, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), kind);
    if (h5io_attr_i64(g, "epoch", (long long)w->epoch, err)) goto fail;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const KeptTensor *t = &w->tensors[i];
        hsize_t dims[KEPT_MAX_DIMS];
        for (size_t d = 0; d < t->ndim; d++) dims[d] = t->shape[d];
        if (h5io_write_array(g, t->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, (int)t->ndim, dims, w->data + t->offset,
                             err))
            goto fail;
    }
    rc = 0;
fail:
    if (g >= 0) H5Gclose(g);
    if (m >= 0) H5Gclose(m);
    if (rc) ct_error_prefix(err, "/model/%s", kind);
    return rc;
}

typedef struct {
    KeptWeights *w;
    hid_t g;
    int bad;
    char why[160];
} ReadCtx;

// Adds one dataset of the group to the table (first pass: shapes only).
static herr_t read_one(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    ReadCtx *c = data;
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
    if (d < 0) {
        snprintf(c->why, sizeof c->why, "%s is not a dataset", name);
        c->bad = 1;
        return 1;
    }
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    hsize_t dims[KEPT_MAX_DIMS];
    if (nd < 1 || nd > KEPT_MAX_DIMS || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4 ||
        strlen(name) >= sizeof c->w->tensors[0].name) {
        snprintf(c->why, sizeof c->why, "%s is not a float32 tensor of 1 to %d dimensions", name, KEPT_MAX_DIMS);
        c->bad = 1;
    } else {
        H5Sget_simple_extent_dims(s, dims, NULL);
        size_t shape[KEPT_MAX_DIMS];
        for (int k = 0; k < nd; k++) shape[k] = (size_t)dims[k];
        kept_weights_add(c->w, name, (size_t)nd, shape);
    }
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return c->bad ? 1 : 0;
}

int kept_weights_read_h5(hid_t f, int kind, KeptWeights *w, CtError *err) {
    memset(w, 0, sizeof *w);
    char path[32];
    snprintf(path, sizeof path, "model/%s", keep_kind_name(kind));
    if (H5Lexists(f, "model", H5P_DEFAULT) <= 0 || H5Lexists(f, path, H5P_DEFAULT) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return 1;
    }
    hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
    if (g < 0) return h5io_error(err, path);
    w->kind = kind;
    int64_t epoch = 0;
    ReadCtx c = {.w = w, .g = g};
    int rc = 0;
    if (h5io_read_attr_num(g, "epoch", H5T_NATIVE_INT64, &epoch) || epoch < 1) {
        rc = ct_errorf(err, "/%s: missing or invalid attribute epoch", path);
    } else {
        w->epoch = (size_t)epoch;
        H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, read_one, &c);
        if (c.bad) rc = ct_errorf(err, "/%s: %s", path, c.why);
    }
    if (rc == 0 && w->n_floats) {
        size_t bytes;
        w->data = ct_mul_size(&bytes, w->n_floats, sizeof *w->data) ? NULL : malloc(bytes);
        if (!w->data) rc = ct_errorf(err, "/%s: out of memory for %zu MiB", path, w->n_floats >> 18);
    }
    for (size_t i = 0; rc == 0 && i < w->n_tensors; i++) {
        const KeptTensor *t = &w->tensors[i];
        hid_t d = H5Dopen2(g, t->name, H5P_DEFAULT);
        if (d < 0 || H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w->data + t->offset) < 0)
            rc = ct_errorf(err, "/%s/%s: cannot be read", path, t->name);
        if (d >= 0) H5Dclose(d);
    }
    H5Gclose(g);
    if (rc) {
        H5Eclear2(H5E_DEFAULT);
        kept_weights_free(w);
    }
    return rc;
}
