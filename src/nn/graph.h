/*
 * graph.h — a frozen backbone as a list of layers, independent of any
 * backend. nn/models.c builds VGG and ResNet graphs; a backend compiles a
 * graph for one input shape into something it can run.
 *
 * Tensors are numbered by the layer that produces them; NN_INPUT is the
 * network input (N, 3, H, W). Convolutions carry their weights with any
 * BatchNorm already folded in, an optional residual tensor that is added
 * before the ReLU (ResNet's shortcut), and a ReLU flag. DenseNet adds three
 * operations: a BatchNorm + ReLU that precedes a convolution (a ReLU sits
 * between them, so it cannot be folded into its weights), the channel
 * concatenation of a dense block (a backend may plan a block's
 * concatenations as slices of one buffer) and a 2x2 average pool.
 */
#ifndef CTSWEEP_NN_GRAPH_H
#define CTSWEEP_NN_GRAPH_H

#include <stddef.h>

#include "util/util.h"

#define NN_INPUT (-1)
#define NN_NONE (-2)

typedef enum {
    NN_CONV = 0,         // conv (+ bias) (+ residual) (+ ReLU)
    NN_MAXPOOL,          // max pooling, padding ignored (as -inf)
    NN_ADAPTIVE_AVGPOOL, // PyTorch AdaptiveAvgPool2d((out_h, out_w)); the graph's last layer
    NN_GLOBAL_AVGPOOL,   // mean over H, W and flatten to (N, C); the graph's last layer
    NN_BN_RELU,          // y = max(x * scale[c] + shift[c], 0): eval-mode BatchNorm + ReLU
    NN_CONCAT,           // channels of src, then channels of src2
    NN_AVGPOOL,          // k x k average pooling, stride, no padding
} NNOpKind;

typedef struct {
    NNOpKind kind;
    char name[48];    // weight prefix, e.g. "features.28", "layer3.2.conv2"
    char bn_name[48]; // CONV: BatchNorm folded into it at load ("" = none); BN_RELU: its BatchNorm
    int src;          // producing layer index or NN_INPUT
    int src2;         // CONCAT: the second input (its channels come after src's), else NN_NONE
    int residual;     // CONV: layer index / NN_INPUT added before ReLU, or NN_NONE
    int relu;         // CONV: apply ReLU last
    int bias_free;    // CONV: torchvision's has neither bias nor BatchNorm (bias stays 0)
    size_t cin, cout; // channels in and out (pools: equal)
    size_t k, stride, pad;  // square kernel, stride, symmetric padding
    size_t out_h, out_w;    // ADAPTIVE_AVGPOOL target size
    float *weight;    // CONV: (cout, cin, k, k); BN_RELU: scale (cout); owned by the graph
    float *bias;      // CONV, BN_RELU: (cout) bias or shift, owned by the graph
} NNLayer;

#define NN_MAX_STAGES 8

// A named stage of a backbone (VGG "block3", ResNet "layer2"): the layers
// [first, end), consecutive, every input from outside it being the output of
// layer first - 1 (or the network input), so a cut between stages is one tensor.
typedef struct {
    char name[16];
    size_t first, end;
} NNStage;

typedef struct {
    char model[32];
    NNLayer *layers;
    size_t n_layers, cap_layers;
    size_t in_channels;  // 3
    NNStage stages[NN_MAX_STAGES];  // in order; the final pool belongs to none
    size_t n_stages;
} NNGraph;

// Shape of a tensor for a given input size.
typedef struct {
    size_t c, h, w;
} NNShape;

void graph_init(NNGraph *g, const char *model);
void graph_free(NNGraph *g);
// Appends a layer and returns its index. Conv weights are allocated (zeroed)
// here; the caller fills them.
int graph_add_conv(NNGraph *g, const char *name, int src, size_t cin, size_t cout, size_t k,
                   size_t stride, size_t pad, int relu);
int graph_add_maxpool(NNGraph *g, const char *name, int src, size_t k, size_t stride, size_t pad);
int graph_add_adaptive_avgpool(NNGraph *g, const char *name, int src, size_t out_h, size_t out_w);
int graph_add_global_avgpool(NNGraph *g, const char *name, int src);
int graph_add_avgpool(NNGraph *g, const char *name, int src, size_t k, size_t stride);
// BatchNorm (parameters under bn, loaded as scale and shift) then ReLU.
int graph_add_bn_relu(NNGraph *g, const char *name, const char *bn, int src);
int graph_add_concat(NNGraph *g, const char *name, int src, int src2);

// Per-layer output shapes for an input of (3, h, w) into shapes[n_layers].
// Returns -1 with err when the input is too small for the network.
int graph_infer_shapes(const NNGraph *g, size_t h, size_t w, NNShape *shapes, CtError *err);
// Channels of a tensor (NN_INPUT included).
size_t graph_tensor_channels(const NNGraph *g, int t);
// Multiply-accumulates of one image's forward pass at (h, w) (0 on error).
double graph_macs(const NNGraph *g, size_t h, size_t w);
// Number of elements of one image's output (e.g. 512*7*7), 0 on error.
size_t graph_output_numel(const NNGraph *g, size_t h, size_t w);

#endif
