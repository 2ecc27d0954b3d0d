/*
 * model_file.c — reading and checking the exported model file of
 * model_file.h: its metadata (with a small strict reader for the two JSON
 * values it holds, `classes` and `head`) and its head tensors.
 */
#include "train/model_file.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/models.h"

// ---- a strict reader for the metadata's small JSON values ----

typedef struct {
    const char *p;
} Js;

static void js_ws(Js *j) {
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r') j->p++;
}

static int js_lit(Js *j, char c) {
    js_ws(j);
    if (*j->p != c) return -1;
    j->p++;
    return 0;
}

// A string without escapes other than \" and \\ (class names, keys).
static int js_str(Js *j, char *out, size_t cap) {
    if (js_lit(j, '"')) return -1;
    size_t n = 0;
    while (*j->p && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            c = *j->p++;
            if (c != '"' && c != '\\') return -1;
        }
        if ((unsigned char)c < 0x20 || n + 1 >= cap) return -1;
        out[n++] = c;
    }
    if (*j->p != '"') return -1;
    j->p++;
    out[n] = 0;
    return 0;
}

static int js_num(Js *j, double *v) {
    js_ws(j);
    char *end;
    errno = 0;
    *v = strtod(j->p, &end);
    if (end == j->p || errno || !isfinite(*v)) return -1;
    j->p = end;
    return 0;
}

static int js_end(Js *j) {
    js_ws(j);
    return *j->p ? -1 : 0;
}

// ["negative", "positive"]: exactly two non-empty, distinct names.
static int parse_classes(const char *s, char classes[HEAD_CLASSES][64]) {
    Js j = {s};
    if (js_lit(&j, '[')) return -1;
    for (int i = 0; i < HEAD_CLASSES; i++) {
        if (i && js_lit(&j, ',')) return -1;
        if (js_str(&j, classes[i], sizeof classes[i]) || !classes[i][0]) return -1;
        for (const char *c = classes[i]; *c; c++)
            if (*c == ',' || *c == '"' || *c == '\n') return -1;  // each goes into a CSV field as is
    }
    if (js_lit(&j, ']') || js_end(&j) || strcmp(classes[0], classes[1]) == 0) return -1;
    return 0;
}

// {"hidden": [..], "dropout": p, "standardize": true|false}, keys in any order, all three.
static int parse_head(const char *s, HeadSpec *h) {
    Js j = {s};
    int seen = 0;
    if (js_lit(&j, '{')) return -1;
    for (int k = 0; k < 3; k++) {
        char key[32];
        if ((k && js_lit(&j, ',')) || js_str(&j, key, sizeof key) || js_lit(&j, ':')) return -1;
        if (strcmp(key, "hidden") == 0 && !(seen & 1)) {
            seen |= 1;
            if (js_lit(&j, '[')) return -1;
            js_ws(&j);
            h->n_hidden = 0;
            if (*j.p == ']') {
                j.p++;
                continue;
            }
            for (;;) {
                double v;
                if (h->n_hidden >= HEAD_MAX_HIDDEN || js_num(&j, &v) || v < 1 || v > 65536 || v != floor(v)) return -1;
                h->hidden[h->n_hidden++] = (size_t)v;
                js_ws(&j);
                if (*j.p == ']') {
                    j.p++;
                    break;
                }
                if (js_lit(&j, ',')) return -1;
            }
        } else if (strcmp(key, "dropout") == 0 && !(seen & 2)) {
            seen |= 2;
            if (js_num(&j, &h->dropout)) return -1;
        } else if (strcmp(key, "standardize") == 0 && !(seen & 4)) {
            seen |= 4;
            js_ws(&j);
            if (strncmp(j.p, "true", 4) == 0) h->standardize = 1, j.p += 4;
            else if (strncmp(j.p, "false", 5) == 0) h->standardize = 0, j.p += 5;
            else return -1;
        } else {
            return -1;
        }
    }
    return js_lit(&j, '}') || js_end(&j) ? -1 : 0;
}

// ---- metadata ----

static int parse_ll(const char *s, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static const char *meta(const SafeTensors *st, const char *key, CtError *err) {
    const char *v = st_metadata_get(st, key);
    if (!v) ct_errorf(err, "%s: metadata '%s' is missing (not a model written by ctsweep export?)", st->path, key);
    return v;
}

static int bad_meta(const SafeTensors *st, const char *key, const char *v, const char *expected, CtError *err) {
    return ct_errorf(err, "%s: metadata '%s' = '%.80s': expected %s", st->path, key, v, expected);
}

static int read_metadata(ModelFile *mf, const SafeTensors *st, CtError *err) {
    const char *v;
    long long n;
    if (!(v = meta(st, "format", err))) return -1;
    if (strcmp(v, MODEL_FILE_FORMAT) != 0) return bad_meta(st, "format", v, MODEL_FILE_FORMAT, err);
    if (!(v = meta(st, "model", err))) return -1;
    if (!model_is_known(v) || strlen(v) >= sizeof mf->model) return bad_meta(st, "model", v, model_names(), err);
    snprintf(mf->model, sizeof mf->model, "%s", v);
    if (!(v = meta(st, "image_size", err))) return -1;
    if (parse_ll(v, 1, 8192, &n)) return bad_meta(st, "image_size", v, "an integer from 1 to 8192", err);
    mf->image_size = (size_t)n;
    if (!(v = meta(st, "normalize", err))) return -1;
    if (norm_mode_parse(v, &mf->norm)) return bad_meta(st, "normalize", v, "imagenet or unit", err);
    if (!(v = meta(st, "classes", err))) return -1;
    if (parse_classes(v, mf->classes)) return bad_meta(st, "classes", v, "a JSON list of two distinct names", err);
    if (!(v = meta(st, "threshold", err))) return -1;
    char *end;
    mf->threshold = strtod(v, &end);
    if (!*v || *end || !(mf->threshold >= 0 && mf->threshold <= 1))
        return bad_meta(st, "threshold", v, "a probability in [0, 1]", err);
    if (!(v = meta(st, "epoch", err))) return -1;
    if (parse_ll(v, 1, 1LL << 40, &mf->epoch)) return bad_meta(st, "epoch", v, "a positive integer", err);
    if (!(v = meta(st, "epoch_kind", err))) return -1;
    if (strcmp(v, "selected") != 0 && strcmp(v, "final") != 0) return bad_meta(st, "epoch_kind", v, "selected or final", err);
    snprintf(mf->epoch_kind, sizeof mf->epoch_kind, "%s", v);
    if (!(v = meta(st, "trial_id", err))) return -1;
    snprintf(mf->trial_id, sizeof mf->trial_id, "%s", v);
    if (!(v = meta(st, "feature_store", err))) return -1;
    if (feature_store_parse(v, &mf->store)) return bad_meta(st, "feature_store", v, "fp32, fp16 or bf16", err);
    // Optional: the backbone's arithmetic and kernels the sweep ran (absent:
    // fp32 and auto), so predict computes what the sweep computed.
    mf->precision = PRECISION_FP32;
    mf->conv_algo = CONV_ALGO_AUTO;
    if ((v = st_metadata_get(st, "precision")) && precision_parse(v, &mf->precision))
        return bad_meta(st, "precision", v, "fp32, bf16, tf32 or fp16", err);
    if ((v = st_metadata_get(st, "conv_algo")) && conv_algo_parse(v, &mf->conv_algo))
        return bad_meta(st, "conv_algo", v, "auto, direct or winograd", err);
    if (!(v = meta(st, "unfreeze", err))) return -1;
    NNGraph g;
    if (model_build(&g, mf->model, err)) return -1;
    size_t cut;
    CtError cut_err = {{0}};
    int bad_unfreeze = parse_ll(v, 0, 64, &n) || model_cut_layer(&g, (int)n, &cut, &cut_err);
    size_t stages = g.n_stages;
    graph_free(&g);
    if (bad_unfreeze) {
        char expected[128];
        snprintf(expected, sizeof expected, "an integer from 0 to %zu (the stages of %s)", stages, mf->model);
        return bad_meta(st, "unfreeze", v, expected, err);
    }
    mf->unfreeze = (int)n;
    if (!(v = meta(st, "head", err))) return -1;
    memset(&mf->head, 0, sizeof mf->head);
    if (parse_head(v, &mf->head))
        return bad_meta(st, "head", v, "{\"hidden\":[...],\"dropout\":p,\"standardize\":true|false}", err);
    ModelShape ms;
    if (model_shape(mf->model, mf->image_size, mf->image_size, &ms, err)) return ct_error_prefix(err, "%s", st->path);
    mf->head.in_dim = ms.numel;
    if (head_spec_check(&mf->head, err)) return ct_error_prefix(err, "%s: metadata 'head'", st->path);
    return 0;
}

// ---- tensors ----

static int check_tensor(const SafeTensors *st, const char *name, size_t d0, size_t d1, size_t ndim, CtError *err) {
    const StTensor *t = st_find(st, name);
    if (!t) return ct_errorf(err, "%s: head tensor '%s' is missing", st->path, name);
    size_t want[2] = {d0, d1};
    if (t->dtype != ST_F32 || t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char have[96], exp[64];
        st_format_shape(have, sizeof have, t->shape, t->ndim);
        st_format_shape(exp, sizeof exp, want, ndim);
        return ct_errorf(err, "%s: head tensor '%s' is %s %s, expected F32 %s", st->path, name, t->dtype_name, have,
                         exp);
    }
    return 0;
}

static void head_dims(const HeadSpec *h, size_t *dim, size_t *n_lin) {
    *n_lin = h->n_hidden + 1;
    dim[0] = h->in_dim;
    for (size_t i = 0; i < h->n_hidden; i++) dim[i + 1] = h->hidden[i];
    dim[*n_lin] = HEAD_CLASSES;
}

static int check_head_tensors(const ModelFile *mf, const SafeTensors *st, CtError *err) {
    size_t dim[HEAD_MAX_HIDDEN + 2], n_lin;
    head_dims(&mf->head, dim, &n_lin);
    char name[48];
    for (size_t l = 0; l < n_lin; l++) {
        snprintf(name, sizeof name, "head.%zu.weight", l);
        if (check_tensor(st, name, dim[l + 1], dim[l], 2, err)) return -1;
        snprintf(name, sizeof name, "head.%zu.bias", l);
        if (check_tensor(st, name, dim[l + 1], 0, 1, err)) return -1;
    }
    snprintf(name, sizeof name, "head.%zu.weight", n_lin);
    if (st_find(st, name))
        return ct_errorf(err, "%s: tensor '%s' is one linear layer more than metadata 'head' describes", st->path,
                         name);
    if (!mf->head.standardize) {
        if (st_find(st, "head.standardize.mean"))
            return ct_errorf(err, "%s: tensor 'head.standardize.mean' present, but metadata 'head' has standardize false",
                             st->path);
        return 0;
    }
    if (check_tensor(st, "head.standardize.mean", dim[0], 0, 1, err)) return -1;
    if (st_find(st, "head.standardize.inv_std") && check_tensor(st, "head.standardize.inv_std", dim[0], 0, 1, err))
        return -1;
    return check_tensor(st, "head.standardize.std", dim[0], 0, 1, err);
}

int model_file_read(ModelFile *mf, const char *path, CtError *err) {
    memset(mf, 0, sizeof *mf);
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    int rc = read_metadata(mf, &st, err);
    if (rc == 0) rc = check_head_tensors(mf, &st, err);
    st_close(&st);
    return rc;
}

// The multipliers training used: head.standardize.inv_std when the file has
// it (ctsweep export writes it, so predict scores with the sweep's bits),
// else 1 / head.standardize.std. A constant training feature has inv_std 0,
// std +inf: it contributes 0 either way.
int model_file_read_standardize(const ModelFile *mf, const SafeTensors *st, float *mean, float *inv_std,
                                CtError *err) {
    size_t D = mf->head.in_dim;
    int have_inv = st_find(st, "head.standardize.inv_std") != NULL;
    if (st_read_f32(st, "head.standardize.mean", &D, 1, mean, err) ||
        st_read_f32(st, have_inv ? "head.standardize.inv_std" : "head.standardize.std", &D, 1, inv_std, err))
        return -1;
    for (size_t i = 0; i < D; i++) {
        if (!isfinite(mean[i]))
            return ct_errorf(err, "%s: head.standardize.mean: element %zu is not finite", st->path, i);
        if (have_inv) {
            if (!(inv_std[i] >= 0) || !isfinite(inv_std[i]))
                return ct_errorf(err, "%s: head.standardize.inv_std: element %zu is negative or not finite",
                                 st->path, i);
        } else {
            if (!(inv_std[i] > 0))
                return ct_errorf(err, "%s: head.standardize.std: element %zu is not positive", st->path, i);
            inv_std[i] = isinf(inv_std[i]) ? 0.0f : 1.0f / inv_std[i];
        }
    }
    return 0;
}

int model_file_load_head(const ModelFile *mf, const SafeTensors *st, Head *h, CtError *err) {
    char name[48];
    for (size_t l = 0; l < h->n_lin; l++) {
        size_t ws[2] = {h->dim[l + 1], h->dim[l]};
        snprintf(name, sizeof name, "head.%zu.weight", l);
        if (st_read_f32(st, name, ws, 2, h->w[l], err)) return -1;
        snprintf(name, sizeof name, "head.%zu.bias", l);
        if (st_read_f32(st, name, ws, 1, h->b[l], err)) return -1;
    }
    if (!mf->head.standardize) return 0;
    if (!h->mean) fatal("model_file_load_head: a head planned without standardisation");
    return model_file_read_standardize(mf, st, h->mean, h->inv_std, err);
}

int model_file_load_tail_standardize(const ModelFile *mf, const char *path, Tail *t, CtError *err) {
    if (!mf->head.standardize) return 0;
    SafeTensors st;
    if (st_open(&st, path, err)) return -1;
    float *mean = ct_malloc_array(t->feat, sizeof *mean), *inv = ct_malloc_array(t->feat, sizeof *inv);
    int rc = model_file_read_standardize(mf, &st, mean, inv, err);
    if (rc == 0) tail_set_standardize(t, mean, inv);
    free(mean);
    free(inv);
    st_close(&st);
    return rc;
}
