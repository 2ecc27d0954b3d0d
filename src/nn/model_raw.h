/*
 * model_raw.h — a backbone's parameters exactly as torchvision names and
 * shapes them, unfolded: per convolution its weight (cout, cin, k, k), its
 * bias when torchvision's has one, and its BatchNorm's weight, bias,
 * running_mean and running_var (cout each); per DenseNet BatchNorm + ReLU
 * the same four. Read from a safetensors file (as the sweep loaded it) or
 * drawn as model_init_random draws the seeded random backbone (identity
 * BatchNorm), so that `ctsweep export` writes the backbone the sweep ran,
 * loadable into torchvision.models.<model>() and by model_load_safetensors.
 * No classifier tensors (classifier.*, fc.*): the trained head replaces
 * them.
 */
#ifndef CTSWEEP_NN_MODEL_RAW_H
#define CTSWEEP_NN_MODEL_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "nn/graph.h"
#include "nn/safetensors.h"
#include "util/util.h"

typedef struct {
    char name[96];
    size_t ndim, shape[4];
    float *data;  // owned
} RawTensor;

typedef struct {
    RawTensor *t;
    size_t n;
} RawTensors;

// Every backbone tensor of g in graph order, from st (NULL: the seeded
// random backbone of `seed`). Errors name the tensor.
int model_raw_tensors(const NNGraph *g, const SafeTensors *st, uint64_t seed, RawTensors *out, CtError *err);
RawTensor *model_raw_find(RawTensors *r, const char *name);
void model_raw_free(RawTensors *r);

#endif
