/*
 * model_raw.c — a backbone's unfolded torchvision parameters (model_raw.h).
 */
#include "nn/model_raw.h"

#include <stdlib.h>
#include <string.h>

#include "nn/models.h"

static RawTensor *add(RawTensors *r, const char *prefix, const char *suffix, size_t ndim, const size_t *shape) {
    r->t = ct_realloc(r->t, (r->n + 1) * sizeof *r->t);
    RawTensor *t = &r->t[r->n++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s.%s", prefix, suffix);
    t->ndim = ndim;
    size_t numel = 1;
    for (size_t d = 0; d < ndim; d++) numel *= (t->shape[d] = shape[d]);
    t->data = ct_malloc_array(numel ? numel : 1, sizeof *t->data);
    return t;
}

static const char *const BN_PARTS[4] = {"weight", "bias", "running_mean", "running_var"};

// A BatchNorm's four tensors from bn (4, c).
static void add_bn(RawTensors *r, const char *bn_name, const float *bn, size_t c) {
    for (int i = 0; i < 4; i++) memcpy(add(r, bn_name, BN_PARTS[i], 1, &c)->data, bn + (size_t)i * c, c * sizeof(float));
}

int model_raw_tensors(const NNGraph *g, const SafeTensors *st, uint64_t seed, RawTensors *out, CtError *err) {
    memset(out, 0, sizeof *out);
    int rc = 0;
    float *bias = NULL, *bn = NULL;
    for (size_t i = 0; i < g->n_layers && rc == 0; i++) {
        const NNLayer *l = &g->layers[i];
        size_t c = l->cout;
        bias = ct_realloc(bias, c * sizeof *bias);
        bn = ct_realloc(bn, 4 * c * sizeof *bn);
        if (l->kind == NN_CONV) {
            RawTensor *w = add(out, l->name, "weight", 4, (const size_t[4]){l->cout, l->cin, l->k, l->k});
            char bname[112];
            snprintf(bname, sizeof bname, "%s.bias", l->name);
            // torchvision's convolution has a bias (VGG), or the file gives one
            int has_bias = (!l->bn_name[0] && !l->bias_free) || (st && st_find(st, bname));
            if (st) rc = model_read_conv_raw(l, st, w->data, bias, bn, err);
            else model_init_conv_raw(g, i, seed, w->data, bias, bn);
            if (rc) break;
            if (has_bias) memcpy(add(out, l->name, "bias", 1, &c)->data, bias, c * sizeof(float));
            if (l->bn_name[0]) add_bn(out, l->bn_name, bn, c);
        } else if (l->kind == NN_BN_RELU) {
            for (int p = 0; p < 4 && rc == 0; p++) {
                char tname[112];
                snprintf(tname, sizeof tname, "%s.%s", l->bn_name, BN_PARTS[p]);
                if (st) rc = st_read_f32(st, tname, &c, 1, bn + (size_t)p * c, err);
                else
                    for (size_t o = 0; o < c; o++) bn[(size_t)p * c + o] = p == 0 || p == 3 ? 1.0f : 0.0f;
            }
            if (rc == 0) add_bn(out, l->bn_name, bn, c);
        }
    }
    free(bias);
    free(bn);
    if (rc) model_raw_free(out);
    return rc;
}

RawTensor *model_raw_find(RawTensors *r, const char *name) {
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->t[i].name, name) == 0) return &r->t[i];
    return NULL;
}

void model_raw_free(RawTensors *r) {
    for (size_t i = 0; i < r->n; i++) free(r->t[i].data);
    free(r->t);
    memset(r, 0, sizeof *r);
}
