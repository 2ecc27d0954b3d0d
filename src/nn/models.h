/*
 * models.h — the three ImageNet backbones exactly as torchvision defines
 * them (VGG16, VGG19: the conv stack with its max-pools and the adaptive
 * average pool to 7x7; ResNet-34: basic blocks with downsample and the global
 * average pool), their weights from safetensors with BatchNorm folded into
 * the convolutions, or a seeded He-normal initialisation when no weights are
 * given.
 */
#ifndef CTSWEEP_NN_MODELS_H
#define CTSWEEP_NN_MODELS_H

#include <stdint.h>

#include "nn/graph.h"
#include "util/util.h"

#define MODEL_BN_EPS 1e-5

// Known model names: "vgg16", "vgg19", "resnet34".
int model_is_known(const char *name);
// Builds the topology (weights zero). Returns -1 with err for an unknown model.
int model_build(NNGraph *g, const char *name, CtError *err);
// Loads weights from a safetensors file with torchvision/timm tensor names;
// classifier/fc tensors are ignored. Errors name the file and tensor.
int model_load_safetensors(NNGraph *g, const char *path, CtError *err);
// Seeded He-normal (fan_out, as torchvision initialises these models) with
// identity BatchNorm folded in; bias zero.
void model_init_random(NNGraph *g, uint64_t seed);
// Builds, then loads `weights` or, when it is NULL or empty, initialises
// randomly with a loud warning on stderr.
int model_create(NNGraph *g, const char *name, const char *weights, uint64_t seed, CtError *err);

#endif
