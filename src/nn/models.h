/*
 * models.h — the model registry and its ImageNet backbones exactly as torchvision defines
 * them (VGG16, VGG19: the conv stack with its max-pools and the adaptive
 * average pool to 7x7; ResNet-18/34: basic blocks, ResNet-50: bottleneck
 * blocks, with downsample and the global average pool; DenseNet-121/169:
 * dense blocks, transitions and the final BatchNorm + ReLU), their weights
 * from safetensors with BatchNorm folded into the convolutions where it
 * follows one, or a seeded He-normal initialisation when no weights are
 * given.
 */
#ifndef CTSWEEP_NN_MODELS_H
#define CTSWEEP_NN_MODELS_H

#include <stdint.h>

#include "nn/graph.h"
#include "nn/safetensors.h"
#include "util/util.h"

#define MODEL_BN_EPS 1e-5

// ---- the registry ----

// The registry's models in row order: the one list of their names. The
// configuration's weights.<model> keys are generated from it, so a row added
// to nn/models.c brings its key with it. New models go at the end: a model's
// row is its slot in SweepConfig.weights.
#define MODEL_NAMES(X) X(vgg16) X(vgg19) X(resnet34) X(resnet18) X(resnet50) X(densenet121) X(densenet169)
#define MODEL_INDEX_ROW(m) MODEL_INDEX_##m,
enum { MODEL_NAMES(MODEL_INDEX_ROW) MODEL_INDEX_COUNT };

// One row per model. Its named stages come with the built graph
// (NNGraph.stages: VGG "block1".."block5", each ending at its max pool;
// ResNet "stem", "layer1".."layer4"; DenseNet "stem", "denseblock1".."denseblock4"
// each with the transition after it); the graph's last layer, the final
// average pool, belongs to no stage and always runs in the trainable tail.
typedef struct {
    const char *name;
    void (*build)(NNGraph *g);
    size_t head_hidden[4];  // default head: hidden sizes, then 2 logits
    size_t head_n_hidden;
    double head_dropout;
    const char *output;  // the backbone output, in words
} ModelInfo;

size_t model_count(void);
const ModelInfo *model_at(size_t i);        // NULL past the end
const ModelInfo *model_find(const char *name);  // NULL when unknown
int model_is_known(const char *name);
// "vgg16, vgg19, resnet34", for error messages and --help.
const char *model_names(void);

// Output shape and cost of one image at (h, w), from the graph.
typedef struct {
    size_t c, h, w, numel;  // resnet: (512, 1, 1) flattened to 512
    double macs;            // multiply-accumulates of the backbone's forward pass
} ModelShape;
int model_shape(const char *name, size_t h, size_t w, ModelShape *out, CtError *err);

// Index of a named stage in g->stages, -1 when it has none of that name.
int model_stage_find(const NNGraph *g, const char *stage);
// The first layer of the trainable tail when the last `unfreeze` stages train:
// g->n_layers - 1 (the final pool alone) for 0, 0 when every stage trains. The
// tail's input is the output of layer cut - 1 (the image when cut is 0).
// Returns -1 with err when unfreeze is negative or exceeds the stage count.
int model_cut_layer(const NNGraph *g, int unfreeze, size_t *cut, CtError *err);

// The frozen prefix of g for a tail that starts at layer `cut`: layers
// [cut, n_layers) are dropped and an identity pool (adaptive average pool to
// its input's own size: each window one element, so the output equals the
// input bit for bit) is appended, so a backend runs the prefix as it runs a
// whole backbone and its output is the activation at the cut, flattened
// (c, h, w). cut 0 leaves the identity pool alone: the preprocessed image.
// cut == n_layers - 1 (unfreeze 0) leaves g unchanged.
int model_prefix(NNGraph *g, size_t cut, size_t h, size_t w, CtError *err);

// Multiply-accumulates of one image's forward pass through the trainable
// tail of `unfreeze` stages (0: the final pool alone, about nothing), and
// the values per image at its cut (what the cache holds: for 0 the features).
int model_tail_cost(const char *name, int unfreeze, size_t h, size_t w, double *macs, size_t *cut_numel,
                    CtError *err);

// ---- graphs and weights ----

// Builds the topology (weights zero). Returns -1 with err for an unknown model.
int model_build(NNGraph *g, const char *name, CtError *err);
// Loads weights from a safetensors file with torchvision/timm tensor names;
// classifier/fc tensors are ignored. Errors name the file and tensor.
int model_load_safetensors(NNGraph *g, const char *path, CtError *err);
// torchvision's own parametrisation of convolution l, unfolded, as the
// trainable tail trains it: weight (cout, cin, k, k); bias (cout), 0 when the
// convolution has none; bn (4, cout) gamma, beta, running mean, running var,
// read only when l has a BatchNorm (bn may be NULL otherwise).
int model_read_conv_raw(const NNLayer *l, const SafeTensors *st, float *weight, float *bias, float *bn,
                        CtError *err);
// The same parameters as model_init_random draws them, before folding
// (BatchNorm identity).
void model_init_conv_raw(const NNGraph *g, size_t layer, uint64_t seed, float *weight, float *bias, float *bn);
// Folds eval-mode BatchNorm bn (4, cout) into weight (cout, per) and bias
// (cout) in place, as loading does (scale in double).
void model_fold_bn(float *weight, float *bias, const float *bn, size_t cout, size_t per);
// Seeded He-normal (fan_out, as torchvision initialises these models) with
// identity BatchNorm folded in; bias zero.
void model_init_random(NNGraph *g, uint64_t seed);
// Builds, then loads `weights` or, when it is NULL or empty, initialises
// randomly with a loud warning on stderr.
int model_create(NNGraph *g, const char *name, const char *weights, uint64_t seed, CtError *err);

#endif
