/*
 * tail_layer.h — one planned layer of the trainable tail, shared by the
 * planner (tail.c) and the passes (tail_pass.c); not part of the tail's API.
 */
#ifndef CTSWEEP_TRAIN_TAIL_LAYER_H
#define CTSWEEP_TRAIN_TAIL_LAYER_H

#include "backend/backend_ops.h"
#include "nn/graph.h"

struct TailLayer {
    NNOpKind kind;
    char name[48], bn_name[48];
    int src, res;  // tensor indices: 0 the cut input, j + 1 tail layer j's output; res -1 for none
    int relu, has_bn;
    size_t cin, cout, k, stride, pad;
    NNShape in, out;
    size_t in_numel, out_numel;  // per image
    BackendConv *conv;
    BackendPool *pool;
    float *w, *b, *gamma;      // (cout, cin, k, k), (cout) conv bias or BN beta, (cout) BN gamma
    float *gw, *gb, *ggamma;   // their gradients
    float *mean, *var;         // (cout) frozen BN statistics (mean less any conv bias)
    float *wf, *bf;            // BN folded in: the weights the backend runs
};

#endif
