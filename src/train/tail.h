/*
 * tail.h — the trainable tail: the backbone's layers from the cut
 * (model_cut_layer: the last `unfreeze` stages) to its final average pool,
 * then the classifier head, trained forward and backward through a
 * backend's operation table (backend_ops.h) from activations at the cut.
 *
 * Parameters are torchvision's own: a convolution's weight and bias (VGG),
 * or its weight and its BatchNorm's weight and bias (ResNet), the running
 * statistics frozen (BatchNorm in inference mode, as PyTorch computes a
 * model whose BN layers stay in eval()). The BatchNorm is folded into the
 * convolution before each forward and its gradients are unfolded after the
 * backward; Adam steps the torchvision parameters, so steps match
 * torch.optim.Adam on the same model. Then the head: Linear -> ReLU ->
 * Dropout per hidden size, Linear to 2 logits, softmax cross-entropy.
 *
 * Memory (llm.c): parameters, gradients and Adam moments of tail and head
 * in one block, in that order (tail layers, then head W0, b0, W1, b1, ...);
 * activations, their gradients and the folded weights in a second; both
 * sized for max_batch at creation; nothing is allocated per step. Both
 * blocks are the backend's memory (device memory on a GPU): every pointer
 * in Tail and TailTensor that names a tensor points there, except
 * logits_host; the host side below moves data across.
 * Gradient conventions: parameter gradients accumulate (tail_zero_grads
 * clears them), the gradient at the cut input is overwritten.
 */
#ifndef CTSWEEP_TRAIN_TAIL_H
#define CTSWEEP_TRAIN_TAIL_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend_ops.h"
#include "nn/graph.h"
#include "train/adam.h"
#include "train/head.h"
#include "util/buf.h"
#include "util/util.h"

// A named parameter tensor: torchvision's name ("features.24.weight",
// "layer4.0.bn1.bias") or "head.<linear index>.weight|bias".
typedef struct {
    char name[64];
    float *param, *grad;  // views into the parameter block: backend memory (ops->download to read)
    size_t numel;
    size_t ndim, shape[4];  // torchvision's shape: (cout, cin, k, k), (cout), (out, in)
} TailTensor;

typedef struct TailLayer TailLayer;

typedef struct {
    const BackendOps *ops;
    size_t cut;           // first graph layer of the tail
    size_t max_batch;
    NNShape in_shape;     // at the cut
    size_t in_numel;      // per image
    size_t feat;          // head input per image (the final pool's output)
    TailLayer *layers;    // graph layers [cut, n_layers)
    size_t n_layers;
    // the head
    HeadSpec head;
    size_t n_lin, dim[HEAD_MAX_HIDDEN + 2];
    float *hw[HEAD_MAX_HIDDEN + 1], *hb[HEAD_MAX_HIDDEN + 1];
    float *hgw[HEAD_MAX_HIDDEN + 1], *hgb[HEAD_MAX_HIDDEN + 1];
    float *hact[HEAD_MAX_HIDDEN + 2];   // hact[0] is the final pool's output; hact[n_lin] the logits
    float *hmask[HEAD_MAX_HIDDEN + 1];  // dropout scales of the last training forward
    float *hdh[2];                      // ping-pong activation gradients
    float *std_mean, *std_inv;          // head.standardize: (feat) each, fixed by tail_fit_standardize
    float *hstd;                        // (max_batch, feat): the standardised head input
    int dropout_on;                     // the last forward applied dropout
    int input_grad;                     // backward computes dx (1 after tail_init; training from a cache needs none)
    size_t n_rows;                      // rows of the last forward
    // parameters
    TailTensor *tensors;
    size_t n_tensors;
    size_t n_params, n_tail_params;  // all; the tail's (the first n_tail_params)
    float *params, *grads, *m, *v;   // (n_params) each, one block
    uint64_t adam_steps;
    float *xin;     // (max_batch, in_numel): the input of tail_forward_host, in backend memory
    float *logits_host;  // (max_batch, 2): the last logits read back
    float *dx;      // (max_batch, in_numel): gradient at the cut input after tail_backward
    float **act;    // act[j + 1]: output of tail layer j; act[0] the cut input of the last forward
    float **dact;   // the same tensors' gradients
    float *tmp;     // (max_batch, widest tensor): a second contribution to a gradient
    float *gwf, *gbf;  // a folded convolution's weight and bias gradients
    int winograd;   // BackendConvDesc.winograd of its convolutions
    int *fresh;     // per tensor: its gradient is not written yet in this backward
    void *param_block, *work_block;
    size_t param_bytes, work_bytes;
} Tail;

// Plans graph layers [cut, n_layers) and the head for inputs of (n <=
// max_batch, in_shape) where the network input is (3, h, w). The graph must
// end in its average pool; head->in_dim is set from it. Parameters zero.
// conv_algo: CONV_ALGO_DIRECT keeps every convolution direct; auto and
// winograd let the backend use a Winograd kernel where it has one for a
// layer (BackendConvDesc.winograd).
int tail_init(Tail *t, const BackendOps *ops, const NNGraph *g, size_t cut, const HeadSpec *head, size_t max_batch,
              size_t h, size_t w, ConvAlgo conv_algo, CtError *err);
void tail_free(Tail *t);
// Parameters are written through host staging and the backend's upload, so
// these work on any backend.
// Tail parameters from a safetensors file with torchvision names; head
// tensors "head.<i>.weight|bias" too when the file has them (else unchanged).
int tail_load_safetensors(Tail *t, const NNGraph *g, const char *path, CtError *err);
// Tail parameters as model_init_random draws them (seeded He-normal,
// identity BatchNorm); head as torch.nn.Linear's default (head_reset_params).
void tail_init_random(Tail *t, const NNGraph *g, uint64_t seed);
void tail_reset_head(Tail *t, uint64_t seed);
// The tensor of that name, or NULL. Its param and grad point into the
// backend's memory (device memory on a GPU): read and write them through
// t->ops->download / upload, never directly.
const TailTensor *tail_find_tensor(const Tail *t, const char *name);

// Forward over n rows of cut activations x (n, in_numel) in backend
// memory, kept in the tail for backward (x must stay valid until then).
// train: dropout with masks keyed by (seed, iteration). Returns the logits
// (n, 2) in backend memory, or NULL with err (a backend's failure too).
const float *tail_forward(Tail *t, const float *x, size_t n, int train, uint64_t seed, uint64_t iteration,
                          CtError *err);
// The same for rows [row0, row0 + n) of a larger batch (a data-parallel
// shard): dropout masks are those of the whole batch's rows.
const float *tail_forward_rows(Tail *t, const float *x, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration, CtError *err);
// Softmax cross-entropy of the last forward against labels; the gradient of
// (sum of losses) / batch_rows accumulated into every parameter's gradient,
// t->dx (backend memory) overwritten with that of the cut input (unless
// t->input_grad is 0). labels are host memory. Returns the sum of losses
// (negative with err on a backend failure).
double tail_backward(Tail *t, const uint8_t *labels, size_t batch_rows, size_t *correct, CtError *err);
// Grad-CAM's gradient: after an eval forward, d (sum over rows of logit
// cls) / d (output of tail layer stop) into t->dact[stop + 1] (backend
// memory, (n, out_numel of layer stop)), through the head and the tail
// layers after `stop`; data gradients only, parameter gradients untouched.
int tail_backward_logit(Tail *t, size_t cls, size_t stop, CtError *err);
void tail_zero_grads(Tail *t);
// One Adam/AdamW step: tail parameters at lr_tail, head at lr_head.
void tail_adam_step(Tail *t, const AdamSpec *spec, double lr_tail, double lr_head);

// ---- the host side: what the trainer uses ----
// Memory given to and taken from these is host memory; parameters, moments
// and activations stay in the backend's.

// Rows x_host (n, in_numel) into the tail's input buffer, then
// tail_forward_rows. Returns the logits in backend memory, or NULL with err.
const float *tail_forward_host(Tail *t, const float *x_host, size_t n, size_t row0, int train, uint64_t seed,
                               uint64_t iteration, CtError *err);
// After an eval forward of n rows: the sum of the rows' losses, the count
// of rows whose argmax is the label, and P(class 1) of each row into prob.
double tail_evaluate_rows(Tail *t, const uint8_t *labels, size_t n, size_t *correct, float *prob);
// head.standardize: the statistics of the head's input (the final pool's
// output under the tail's current parameters, in eval mode) over rows x_host
// (n, in_numel), fixed from then on as head_fit_standardize fixes a head's.
int tail_fit_standardize(Tail *t, const float *x_host, size_t n, CtError *err);
// head.standardize from stored statistics (host memory, (feat) each): the
// mean and the inverse std the forward multiplies by.
void tail_set_standardize(Tail *t, const float *mean, const float *inv_std);
// Every parameter finite.
int tail_params_finite(const Tail *t);
// Parameters, Adam moments and step, for checkpoints; and back into a tail
// planned alike (errors say what does not match).
void tail_state_save(const Tail *t, Buf *out);
// n floats of backend memory at src appended to out (downloaded in chunks
// from a device).
void tail_put_host(const Tail *t, Buf *out, const float *src, size_t n);
int tail_state_load(Tail *t, Rd *r, CtError *err);

#endif
