/*
 * cuda_net.c — compiles a backbone graph into cuDNN convolutions and our
 * pooling kernels (cuda_net_kernels.cu), and runs it.
 *
 * Planning follows the CPU backend: every tensor gets a buffer from a pool
 * reused by lifetime (a buffer returns to the pool after its tensor's last
 * reader), all sizes are known before anything is allocated, and a single
 * allocation pass takes every block or none. With real buffers in place,
 * each convolution gets its algorithm (cuda_conv.c). A convolution followed
 * by ReLU is then run both ways on pseudo-random input: cuDNN's fused
 * conv + bias (+ shortcut) + ReLU, and the plain convolution followed by our
 * bias/residual/ReLU kernel; the fused form is kept only when cuDNN accepts
 * it and it agrees with the plain one, so an unsupported or misbehaving
 * fusion costs speed, never correctness. The workspace is sized to the
 * largest need of the chosen algorithms and shared by all of them; the
 * fusion check runs with that very workspace, not the larger one the
 * search was offered, so what it accepts is what runs. Without a shortcut
 * the fused call's zero-scaled residual reads a buffer of zeros kept for
 * the purpose (never the output's stale contents: 0 x NaN is NaN).
 *
 * DenseNet: a chain of concatenations (a dense block) is one NHWC buffer
 * of the block's final width, allocated at its first concatenation and
 * released after the last reader of any of its members. NHWC with a batch
 * makes a channel slice strided, so producers write their own packed
 * tensors and a concatenation copies only what is new (the block's input
 * once, then each layer's 32 channels) into its slice; the BatchNorm + ReLU
 * in front of each layer reads its prefix of the buffer in place, through a
 * row stride. Nothing else may read a concatenation.
 *
 * The legacy cuDNN API refuses tensors of 2^31 elements or more (VGG16 at
 * 224 px past 668 images): a larger batch is planned as pieces that fit
 * (gpu_batch_piece) and run one after another.
 */
#include "backend/cuda/cuda_net.h"

#include <cudnn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/cuda_conv.h"
#include "backend/cuda/cuda_device.h"
#include "backend/cuda/cuda_net_kernels.h"
#include "backend/gpu_rules.h"
#include "backend/pool_plan.h"

typedef struct {
    NNOpKind kind;          // NN_CONV, NN_MAXPOOL, NN_AVGPOOL, NN_BN_RELU or NN_CONCAT
    int layer;              // index in the graph
    char name[48];
    int src, dst, res;      // pool buffers; res -1: no shortcut
    size_t src_ld, src_ch;  // BN_RELU: row stride and first channel of its input in src
    // CONCAT: dst is the block's buffer (row stride dst_ld); each copy moves
    // c channels from buffer src (row stride ld, from channel ch) to channel at
    int n_copies;
    struct {
        int src;
        size_t c, ld, ch, at;
    } copy[2];
    size_t dst_ld;
    size_t cin, cout, k, stride, pad, ih, iw, oh, ow;
    int relu;
    int fused;              // conv: run as cudnnConvolutionBiasActivationForward
    int fused_bias_f32;     // the fused call takes the float32 bias
    int cached;             // the algorithm came from an earlier plan
    size_t w_off, b_off, bh_off;  // weights (storage type), bias f32, bias (storage type)
    cudnnTensorDescriptor_t xd, yd, bd, bd32;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    CudaConvChoice choice;
} Step;

typedef struct {
    int buf;       // pool index, -100 once released
    int last;      // last layer that reads the tensor
    int group;     // concatenation buffer (index in groups) it lives in, -1 for none
    size_t ld;     // channels from one pixel to the next (packed: its own)
    size_t ch;     // first channel in its buffer
} TensorPlan;

typedef struct {
    size_t c;  // channels of the block's buffer
    int buf;   // pool index, -1 before its first concatenation, -100 once released
    int last;  // the last layer reading any member
} PlanGroup;

struct CudaNet {
    int device;
    cudaStream_t stream;
    cudnnHandle_t cudnn;
    cudnnActivationDescriptor_t relu_desc;
    Precision precision;
    CudaDType dt;
    cudnnDataType_t cdt;
    size_t esize;
    size_t max_batch;    // the batch one piece runs (every tensor under 2^31 elements)
    size_t batch_limit;  // the largest batch the caller may pass, run in pieces of max_batch
    size_t h, w;
    ConvAlgo conv_algo_opt;
    int deterministic, verbose;
    char model[32];
    Step *steps;
    size_t n_steps;
    size_t n_pool;
    size_t *pool_bytes;
    int *pool_free;
    void **pool;
    int in_buf;     // NHWC input tensor
    float *d_in;    // (max_batch, 3, h, w) float32 as the caller gives it
    float *d_out;   // (max_batch, out_numel) float32
    void *weights;  // every convolution's weights and biases
    size_t weights_bytes;
    void *ws;
    size_t ws_bytes;
    void *zeros;  // the zero-scaled residual of fused convolutions without a shortcut
    size_t zeros_bytes;
    int final_buf;
    size_t fc, fh, fw, out_h, out_w, out_numel;
};

// ---- planning helpers ----

static int pool_get(CudaNet *net, size_t bytes) {
    return pool_plan_get(&net->pool_bytes, &net->pool_free, &net->n_pool, bytes);
}

static int tensor_bytes(size_t *out, const CudaNet *net, size_t c, size_t h, size_t w) {
    size_t dims[5] = {net->max_batch, c, h, w, net->esize};
    if (ct_mul_sizes(out, dims, 5)) return -1;
    return cuda_align_up(out, *out);
}

// Reserves bytes in the weight block; returns the offset.
static int weight_reserve(CudaNet *net, size_t bytes, size_t *off) {
    size_t a;
    if (cuda_align_up(&a, bytes) || net->weights_bytes + a < net->weights_bytes) return -1;
    *off = net->weights_bytes;
    net->weights_bytes += a;
    return 0;
}

static int launch_check(int e, const char *what, const char *layer, CtError *err) {
    if (e == 0) return 0;
    return ct_errorf(err, "%s: %s kernel failed to launch: %s", layer, what, cudaGetErrorString((cudaError_t)e));
}

// Symbolic plan: steps, pool sizes, weight offsets.
static int plan_layers(CudaNet *net, const NNGraph *g, const NNShape *shapes, CtError *err) {
    TensorPlan *tp = ct_calloc(g->n_layers + 1, sizeof *tp);
    net->steps = ct_calloc(g->n_layers, sizeof *net->steps);
    int rc = -1;
    PlanGroup *groups = NULL;
    size_t n_groups = 0;
    for (size_t i = 0; i <= g->n_layers; i++) {
        tp[i].last = -1;
        tp[i].buf = -100;
        tp[i].group = -1;
        tp[i].ld = i == 0 ? 3 : shapes[i - 1].c;
    }
    for (size_t i = 0; i < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        tp[l->src + 1].last = (int)i;
        if (l->residual != NN_NONE) tp[l->residual + 1].last = (int)i;
        if (l->src2 != NN_NONE) tp[l->src2 + 1].last = (int)i;
    }
    // Concatenation chains, outermost first: each chain one buffer.
    for (size_t i = g->n_layers; i-- > 0;) {
        const NNLayer *l = &g->layers[i];
        if (l->kind != NN_CONCAT) continue;
        TensorPlan *o = &tp[i + 1];
        if (o->group < 0) {
            groups = ct_realloc(groups, (n_groups + 1) * sizeof *groups);
            groups[n_groups] = (PlanGroup){shapes[i].c, -1, -1};
            o->group = (int)n_groups++;
            o->ch = 0;
        }
        o->ld = groups[o->group].c;
        if (l->src >= 0 && g->layers[l->src].kind == NN_CONCAT && tp[l->src + 1].group < 0) {
            tp[l->src + 1].group = o->group;
            tp[l->src + 1].ch = o->ch;
        }
    }
    for (size_t t = 1; t <= g->n_layers; t++)
        if (tp[t].group >= 0 && tp[t].last > groups[tp[t].group].last) groups[tp[t].group].last = tp[t].last;
    size_t bytes;
    if (tensor_bytes(&bytes, net, 3, net->h, net->w)) goto overflow;
    tp[0].buf = net->in_buf = pool_get(net, bytes);
    for (size_t i = 0; i + 1 < g->n_layers; i++) {
        const NNLayer *l = &g->layers[i];
        if (l->kind == NN_ADAPTIVE_AVGPOOL || l->kind == NN_GLOBAL_AVGPOOL) {
            ct_errorf(err, "%s: layer %s: pooling to a fixed size must be the last layer", g->model, l->name);
            goto done;
        }
        if (l->kind != NN_BN_RELU && l->kind != NN_CONCAT &&
            (tp[l->src + 1].group >= 0 || (l->residual != NN_NONE && tp[l->residual + 1].group >= 0))) {
            ct_errorf(err, "%s: layer %s reads a concatenation, which the CUDA backend gives only to a BatchNorm + "
                      "ReLU", g->model, l->name);
            goto done;
        }
        NNShape in = l->src == NN_INPUT ? (NNShape){3, net->h, net->w} : shapes[l->src];
        NNShape o = shapes[i];
        Step *s = &net->steps[net->n_steps++];
        s->kind = l->kind;
        s->layer = (int)i;
        snprintf(s->name, sizeof s->name, "%s", l->name);
        s->src = tp[l->src + 1].buf;
        s->res = l->residual != NN_NONE ? tp[l->residual + 1].buf : -1;
        s->cin = in.c;
        s->cout = o.c;
        s->k = l->k;
        s->stride = l->stride;
        s->pad = l->pad;
        s->ih = in.h;
        s->iw = in.w;
        s->oh = o.h;
        s->ow = o.w;
        s->relu = l->kind == NN_CONV && l->relu;
        s->src_ld = tp[l->src + 1].ld;
        s->src_ch = tp[l->src + 1].ch;
        if (l->kind == NN_BN_RELU && (weight_reserve(net, l->cout * sizeof(float), &s->w_off) ||
                                      weight_reserve(net, l->cout * sizeof(float), &s->b_off)))
            goto overflow;
        if (l->kind == NN_CONCAT) {
            TensorPlan *to = &tp[i + 1];
            PlanGroup *pg = &groups[to->group];
            if (pg->buf == -1) {
                if (tensor_bytes(&bytes, net, pg->c, o.h, o.w)) goto overflow;
                pg->buf = pool_get(net, bytes);
            }
            to->buf = s->dst = pg->buf;
            s->dst_ld = pg->c;
            int ins[2] = {l->src, l->src2};
            size_t at = to->ch;
            for (int k = 0; k < 2; k++) {
                const TensorPlan *from = &tp[ins[k] + 1];
                size_t c = ins[k] == NN_INPUT ? 3 : shapes[ins[k]].c;
                if (from->group != to->group) {
                    int j = s->n_copies++;
                    s->copy[j].src = from->buf;
                    s->copy[j].c = c;
                    s->copy[j].ld = from->ld;
                    s->copy[j].ch = from->ch;
                    s->copy[j].at = at;
                }
                at += c;
            }
            goto release;
        }
        if (l->kind == NN_CONV) {
            size_t wn, dims[5] = {l->cout, l->cin, l->k, l->k, net->esize};
            if (ct_mul_sizes(&wn, dims, 5) || weight_reserve(net, wn, &s->w_off) ||
                weight_reserve(net, l->cout * sizeof(float), &s->b_off) ||
                weight_reserve(net, l->cout * net->esize, &s->bh_off))
                goto overflow;
        }
        // The output never shares a buffer with the tensors this layer reads:
        // they are released only after it.
        if (tensor_bytes(&bytes, net, o.c, o.h, o.w)) goto overflow;
        s->dst = tp[i + 1].buf = pool_get(net, bytes);
    release:
        for (size_t t = 0; t <= i + 1; t++)
            if (tp[t].last == (int)i && tp[t].buf >= 0 && tp[t].group < 0) {
                net->pool_free[tp[t].buf] = 1;
                tp[t].buf = -100;
            }
        for (size_t G = 0; G < n_groups; G++)
            if (groups[G].last == (int)i && groups[G].buf >= 0) {
                net->pool_free[groups[G].buf] = 1;
                groups[G].buf = -100;
            }
    }
    const NNLayer *last = &g->layers[g->n_layers - 1];
    NNShape fs = last->src == NN_INPUT ? (NNShape){3, net->h, net->w} : shapes[last->src];
    if (tp[last->src + 1].group >= 0) {
        ct_errorf(err, "%s: the final pool reads a concatenation", g->model);
        goto done;
    }
    net->final_buf = tp[last->src + 1].buf;
    net->fc = fs.c;
    net->fh = fs.h;
    net->fw = fs.w;
    net->out_h = shapes[g->n_layers - 1].h;
    net->out_w = shapes[g->n_layers - 1].w;
    net->out_numel = fs.c * net->out_h * net->out_w;
    rc = 0;
    goto done;
overflow:
    ct_errorf(err, "%s: tensor sizes overflow for batch %zu at %zux%zu", g->model, net->max_batch, net->h, net->w);
done:
    free(groups);
    free(tp);
    return rc;
}

static int alloc_buffers(CudaNet *net, CtError *err) {
    size_t n_req = net->n_pool + 4, k = 0;
    CudaAllocReq *req = ct_calloc(n_req, sizeof *req);
    net->pool = ct_calloc(net->n_pool ? net->n_pool : 1, sizeof *net->pool);
    size_t in_bytes, out_bytes;
    size_t in_dims[4] = {net->max_batch, 3, net->h, net->w}, out_dims[3] = {net->max_batch, net->out_numel, 4};
    if (ct_mul_sizes(&in_bytes, in_dims, 4) || ct_mul_size(&in_bytes, in_bytes, sizeof(float)) ||
        ct_mul_sizes(&out_bytes, out_dims, 3)) {
        free(req);
        return ct_errorf(err, "%s: input or output size overflows", net->model);
    }
    req[k++] = (CudaAllocReq){(void **)&net->d_in, in_bytes, "the input batch"};
    req[k++] = (CudaAllocReq){(void **)&net->d_out, out_bytes, "the output features"};
    req[k++] = (CudaAllocReq){&net->weights, net->weights_bytes, "the backbone weights"};
    for (size_t i = 0; i < net->n_pool; i++) req[k++] = (CudaAllocReq){&net->pool[i], net->pool_bytes[i], "activations"};
    char context[64];
    snprintf(context, sizeof context, "batch %zu", net->max_batch);
    int rc = cuda_alloc_all(req, k, context, err);
    free(req);
    if (rc) return ct_error_prefix(err, "%s backbone plan", net->model);
    // Rows past a partial batch are computed too; keep them finite.
    for (size_t i = 0; i < net->n_pool; i++)
        CUDA_RET(cudaMemsetAsync(net->pool[i], 0, net->pool_bytes[i], net->stream), "clearing activations");
    return 0;
}

// Weights OIHW float32 -> OHWI (cuDNN's NHWC filter layout) in the storage type.
static int upload_weights(CudaNet *net, const NNGraph *g, CtError *err) {
    size_t max_w = 0;
    for (size_t i = 0; i < net->n_steps; i++) {
        const Step *s = &net->steps[i];
        size_t n = s->kind == NN_CONV ? s->cout * s->cin * s->k * s->k : 0;
        if (n > max_w) max_w = n;
    }
    float *host = ct_malloc_array(max_w ? max_w : 1, sizeof(float));
    float *stage = NULL;
    int rc = -1;
    if (net->dt != CUDA_DT_F32 && cuda_alloc((void **)&stage, max_w * sizeof(float), "weight staging", NULL, err))
        goto fail;
    for (size_t i = 0; i < net->n_steps; i++) {
        const Step *s = &net->steps[i];
        if (s->kind == NN_BN_RELU) {  // scale and shift in float32, whatever the storage type
            const NNLayer *l = &g->layers[s->layer];
            char *base = (char *)net->weights;
            CUDA_TRY(cudaMemcpyAsync(base + s->w_off, l->weight, s->cout * sizeof(float), cudaMemcpyHostToDevice,
                                     net->stream),
                     s->name);
            CUDA_TRY(cudaMemcpyAsync(base + s->b_off, l->bias, s->cout * sizeof(float), cudaMemcpyHostToDevice,
                                     net->stream),
                     s->name);
            continue;
        }
        if (s->kind != NN_CONV) continue;
        const NNLayer *l = &g->layers[s->layer];
        size_t O = s->cout, I = s->cin, K = s->k;
        for (size_t o = 0; o < O; o++)
            for (size_t ci = 0; ci < I; ci++)
                for (size_t y = 0; y < K; y++)
                    for (size_t x = 0; x < K; x++)
                        host[((o * K + y) * K + x) * I + ci] = l->weight[((o * I + ci) * K + y) * K + x];
        char *base = (char *)net->weights;
        size_t n = O * I * K * K;
        CUDA_TRY(cudaMemcpyAsync(base + s->b_off, l->bias, O * sizeof(float), cudaMemcpyHostToDevice, net->stream),
                 s->name);
        if (net->dt == CUDA_DT_F32) {
            CUDA_TRY(cudaMemcpyAsync(base + s->w_off, host, n * sizeof(float), cudaMemcpyHostToDevice, net->stream),
                     s->name);
            CUDA_TRY(cudaMemcpyAsync(base + s->bh_off, l->bias, O * sizeof(float), cudaMemcpyHostToDevice,
                                     net->stream),
                     s->name);
        } else {
            CUDA_TRY(cudaMemcpyAsync(stage, host, n * sizeof(float), cudaMemcpyHostToDevice, net->stream), s->name);
            if (launch_check(cuda_k_convert(base + s->w_off, net->dt, stage, n, net->stream), "weight conversion",
                             s->name, err))
                goto fail;
            if (launch_check(cuda_k_convert(base + s->bh_off, net->dt, (const float *)(base + s->b_off), O,
                                            net->stream),
                             "bias conversion", s->name, err))
                goto fail;
        }
        // host and stage are reused by the next layer.
        CUDA_TRY(cudaStreamSynchronize(net->stream), s->name);
    }
    rc = 0;
fail:
    free(host);
    cuda_free(stage);
    return rc;
}

static int make_descriptors(CudaNet *net, Step *s, CtError *err) {
    const char *what = s->name;
    int n = (int)net->max_batch;
    CUDNN_RET(cudnnCreateTensorDescriptor(&s->xd), what);
    CUDNN_RET(cudnnCreateTensorDescriptor(&s->yd), what);
    CUDNN_RET(cudnnCreateTensorDescriptor(&s->bd), what);
    CUDNN_RET(cudnnCreateTensorDescriptor(&s->bd32), what);
    CUDNN_RET(cudnnCreateFilterDescriptor(&s->wd), what);
    CUDNN_RET(cudnnCreateConvolutionDescriptor(&s->cd), what);
    CUDNN_RET(cudnnSetTensor4dDescriptor(s->xd, CUDNN_TENSOR_NHWC, net->cdt, n, (int)s->cin, (int)s->ih, (int)s->iw),
              what);
    CUDNN_RET(cudnnSetTensor4dDescriptor(s->yd, CUDNN_TENSOR_NHWC, net->cdt, n, (int)s->cout, (int)s->oh, (int)s->ow),
              what);
    CUDNN_RET(cudnnSetTensor4dDescriptor(s->bd, CUDNN_TENSOR_NCHW, net->cdt, 1, (int)s->cout, 1, 1), what);
    CUDNN_RET(cudnnSetTensor4dDescriptor(s->bd32, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)s->cout, 1, 1), what);
    CUDNN_RET(cudnnSetFilter4dDescriptor(s->wd, net->cdt, CUDNN_TENSOR_NHWC, (int)s->cout, (int)s->cin, (int)s->k,
                                         (int)s->k),
              what);
    // PyTorch's convolution is a cross-correlation; accumulate in float32.
    CUDNN_RET(cudnnSetConvolution2dDescriptor(s->cd, (int)s->pad, (int)s->pad, (int)s->stride, (int)s->stride, 1, 1,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
              what);
    CUDNN_RET(cudnnSetConvolutionMathType(s->cd, cuda_conv_math_for(net->precision)), what);
    int on, oc, oh, ow;
    CUDNN_RET(cudnnGetConvolution2dForwardOutputDim(s->cd, s->xd, s->wd, &on, &oc, &oh, &ow), what);
    if (on != n || oc != (int)s->cout || oh != (int)s->oh || ow != (int)s->ow)
        return ct_errorf(err, "%s: cuDNN output shape %dx%dx%dx%d differs from the graph's %dx%zux%zux%zu", what, on,
                         oc, oh, ow, n, s->cout, s->oh, s->ow);
    return 0;
}

// ---- running one step ----

static int conv_plain(CudaNet *net, const Step *s, void *y, CtError *err) {
    const float one = 1.0f, zero = 0.0f;
    const char *base = (const char *)net->weights;
    CUDNN_RET(cudnnConvolutionForward(net->cudnn, &one, s->xd, net->pool[s->src], s->wd, base + s->w_off, s->cd,
                                      s->choice.algo, net->ws, net->ws_bytes, &zero, s->yd, y),
              s->name);
    size_t count = net->max_batch * s->cout * s->oh * s->ow;
    return launch_check(cuda_k_bias_act(y, s->res >= 0 ? net->pool[s->res] : NULL, (const float *)(base + s->b_off),
                                        net->dt, count, s->cout, s->relu, net->stream),
                        "bias/residual/ReLU", s->name, err);
}

// y = ReLU(conv(x) + shortcut + bias) in one cuDNN call; returns the status.
static cudnnStatus_t conv_fused(CudaNet *net, const Step *s, void *y, int bias_f32) {
    const float one = 1.0f, zero = 0.0f;
    const char *base = (const char *)net->weights;
    // Without a shortcut, z is a buffer of zeros scaled by zero: cuDNN may
    // read z whatever its scale, and y's stale contents could hold NaN.
    const void *z = s->res >= 0 ? net->pool[s->res] : net->zeros;
    return cudnnConvolutionBiasActivationForward(
        net->cudnn, &one, s->xd, net->pool[s->src], s->wd, base + s->w_off, s->cd, s->choice.algo, net->ws,
        net->ws_bytes, s->res >= 0 ? &one : &zero, s->yd, z, bias_f32 ? s->bd32 : s->bd,
        base + (bias_f32 ? s->b_off : s->bh_off), net->relu_desc, s->yd, y);
}

static int run_step(CudaNet *net, const Step *s, CtError *err) {
    const size_t rows = net->max_batch * s->oh * s->ow;
    char *base = (char *)net->weights;
    switch (s->kind) {
    case NN_AVGPOOL:
        return launch_check(cuda_k_avgpool(net->pool[s->dst], net->pool[s->src], net->dt, net->max_batch, s->cin,
                                           s->ih, s->iw, s->oh, s->ow, s->k, s->stride, net->stream),
                            "average pool", s->name, err);
    case NN_BN_RELU:
        return launch_check(cuda_k_bn_relu(net->pool[s->dst], (char *)net->pool[s->src] + s->src_ch * net->esize,
                                           net->dt, rows, s->cout, s->src_ld, (const float *)(base + s->w_off),
                                           (const float *)(base + s->b_off), net->stream),
                            "BatchNorm + ReLU", s->name, err);
    case NN_CONCAT:
        for (int k = 0; k < s->n_copies; k++)
            if (launch_check(cuda_k_copy_channels((char *)net->pool[s->dst] + s->copy[k].at * net->esize, s->dst_ld,
                                                  (char *)net->pool[s->copy[k].src] + s->copy[k].ch * net->esize,
                                                  s->copy[k].ld, net->dt, rows, s->copy[k].c, net->stream),
                             "concatenation", s->name, err))
                return -1;
        return 0;
    default: break;
    }
    if (s->kind == NN_MAXPOOL)
        return launch_check(cuda_k_maxpool(net->pool[s->dst], net->pool[s->src], net->dt, net->max_batch, s->cin,
                                           s->ih, s->iw, s->oh, s->ow, s->k, s->stride, s->pad, net->stream),
                            "max-pool", s->name, err);
    if (!s->fused) return conv_plain(net, s, net->pool[s->dst], err);
    cudnnStatus_t st = conv_fused(net, s, net->pool[s->dst], s->fused_bias_f32);
    if (st != CUDNN_STATUS_SUCCESS)
        return cudnn_fail(err, (int)st, "cudnnConvolutionBiasActivationForward", s->name);
    return 0;
}

// ---- algorithm choice and the fusion check ----

static float fused_tolerance(Precision p) {
    switch (p) {
    case PRECISION_FP32: return 1e-4f;
    case PRECISION_TF32: return 1e-2f;
    case PRECISION_FP16: return 2e-2f;
    default: return 5e-2f;
    }
}

// Runs s plain into dst and fused into probe on random input; keeps the
// fused form when cuDNN accepts it and the two agree.
static int try_fusion(CudaNet *net, Step *s, void *probe, float *diff, CtError *err) {
    size_t in_count = net->max_batch * s->cin * s->ih * s->iw, count = net->max_batch * s->cout * s->oh * s->ow;
    if (launch_check(cuda_k_fill_random(net->pool[s->src], net->dt, in_count, 11u + (uint32_t)s->layer, net->stream),
                     "random fill", s->name, err))
        return -1;
    if (s->res >= 0 && launch_check(cuda_k_fill_random(net->pool[s->res], net->dt, count, 7u, net->stream),
                                    "random fill", s->name, err))
        return -1;
    if (conv_plain(net, s, net->pool[s->dst], err)) return -1;
    const char *why = NULL;
    cudnnStatus_t st = CUDNN_STATUS_NOT_SUPPORTED;
    for (int bias_f32 = net->dt == CUDA_DT_F32; bias_f32 < 2 && st != CUDNN_STATUS_SUCCESS; bias_f32++) {
        st = conv_fused(net, s, probe, bias_f32);
        s->fused_bias_f32 = bias_f32;
    }
    if (st != CUDNN_STATUS_SUCCESS) {
        why = cudnnGetErrorString(st);
    } else {
        float d[2];
        CUDA_RET(cudaMemsetAsync(diff, 0, 2 * sizeof(float), net->stream), s->name);
        if (launch_check(cuda_k_max_diff(diff, probe, net->pool[s->dst], net->dt, count, net->stream),
                         "fusion check", s->name, err))
            return -1;
        CUDA_RET(cudaMemcpyAsync(d, diff, sizeof d, cudaMemcpyDeviceToHost, net->stream), s->name);
        CUDA_RET(cudaStreamSynchronize(net->stream), s->name);
        float rel = d[1] > 0 ? d[0] / d[1] : d[0];
        if (rel <= fused_tolerance(net->precision)) {
            s->fused = 1;
            return 0;
        }
        why = "result differs from the unfused convolution";
        ct_warn("%s: %s: cuDNN's fused convolution differs from conv + bias + ReLU by %.3g (relative); using "
                "the unfused form", net->model, s->name, (double)rel);
    }
    if (net->verbose) ct_info("  %s: not fused (%s)", s->name, why);
    return 0;
}

static void conv_key(CudaConvKey *key, const CudaNet *net, const Step *s) {
    memset(key, 0, sizeof *key);
    key->device = net->device;
    key->n = (int)net->max_batch;
    key->c = (int)s->cin;
    key->h = (int)s->ih;
    key->w = (int)s->iw;
    key->k = (int)s->cout;
    key->r = (int)s->k;
    key->stride = (int)s->stride;
    key->pad = (int)s->pad;
    key->dtype = (int)net->cdt;
    key->precision = (int)net->precision;
    key->deterministic = net->deterministic;
    key->conv_algo = (int)net->conv_algo_opt;
}

// The fusion check's buffers: an output to compare with (the size of the
// largest conv + ReLU output) and the zeros of the fused calls without a
// shortcut. A device too short for them runs every convolution unfused.
static void alloc_fusion_buffers(CudaNet *net, void **probe, float **diff) {
    size_t probe_bytes = 0, zeros_bytes = 0, free_b = 0, total_b = 0;
    *probe = NULL;
    *diff = NULL;
    // CTSWEEP_CUDA_FUSE=0 keeps every convolution unfused (for comparison,
    // or should a cuDNN version be slow to build its fused kernels).
    const char *fuse_env = getenv("CTSWEEP_CUDA_FUSE");
    if (fuse_env && strcmp(fuse_env, "0") == 0) return;
    for (size_t i = 0; i < net->n_steps; i++) {
        const Step *s = &net->steps[i];
        if (s->kind != NN_CONV || !s->relu) continue;
        size_t b = net->pool_bytes[s->dst];
        if (b > probe_bytes) probe_bytes = b;
        if (s->res < 0 && b > zeros_bytes) zeros_bytes = b;
    }
    if (!probe_bytes || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return;
    if (probe_bytes + zeros_bytes < free_b / 2 && cuda_alloc(probe, probe_bytes, "fusion check", NULL, NULL) == 0 &&
        cuda_alloc((void **)diff, 2 * sizeof(float), "fusion check", NULL, NULL) == 0 &&
        (!zeros_bytes || (cuda_alloc(&net->zeros, zeros_bytes, "fusion zeros", NULL, NULL) == 0 &&
                          cudaMemsetAsync(net->zeros, 0, zeros_bytes, net->stream) == cudaSuccess))) {
        net->zeros_bytes = zeros_bytes;
        return;
    }
    cuda_free(*probe);
    cuda_free(*diff);
    cuda_free(net->zeros);
    *probe = NULL;
    *diff = NULL;
    net->zeros = NULL;
    if (net->verbose) ct_info("  not enough GPU memory to check fusion: all unfused");
}

static int choose_algorithms(CudaNet *net, CtError *err) {
    void *probe = NULL;
    float *diff = NULL;
    alloc_fusion_buffers(net, &probe, &diff);
    size_t free_b = 0, total_b = 0;
    CUDA_RET(cudaMemGetInfo(&free_b, &total_b), "querying GPU memory");
    size_t cap = gpu_search_workspace(free_b);
    while (cap >= ((size_t)1 << 20) && cuda_alloc(&net->ws, cap, "workspace", NULL, NULL) != 0) cap /= 2;
    if (!net->ws) cap = 0;
    net->ws_bytes = cap;
    size_t *needs = ct_calloc(net->n_steps ? net->n_steps : 1, sizeof *needs);
    int rc = -1;
    // Pass 1: each convolution's algorithm, searched with the large workspace.
    for (size_t i = 0; i < net->n_steps; i++) {
        Step *s = &net->steps[i];
        if (s->kind != NN_CONV) continue;
        if (make_descriptors(net, s, err)) goto done;
        CudaConvKey key;
        conv_key(&key, net, s);
        if (cuda_conv_choose(net->cudnn, &key, s->xd, net->pool[s->src], s->wd, (char *)net->weights + s->w_off, s->cd,
                             s->yd, net->pool[s->dst], net->ws, cap, &s->choice, &s->cached, s->name, err))
            goto done;
        needs[i] = s->choice.ws_bytes;
    }
    // The search workspace goes back; the run's takes its place, and the
    // fusion check (pass 2) runs with it exactly as the forward pass will.
    cuda_free(net->ws);
    net->ws = NULL;
    net->ws_bytes = 0;
    size_t need = gpu_run_workspace(needs, net->n_steps);
    char context[64];
    snprintf(context, sizeof context, "batch %zu", net->max_batch);
    if (need && cuda_alloc(&net->ws, need, "the convolution workspace", context, err)) {
        ct_error_prefix(err, "%s backbone plan", net->model);
        goto done;
    }
    net->ws_bytes = need;
    for (size_t i = 0; i < net->n_steps && probe; i++) {
        Step *s = &net->steps[i];
        if (s->kind == NN_CONV && s->relu && (s->res >= 0 || net->zeros) && try_fusion(net, s, probe, diff, err))
            goto done;
    }
    rc = 0;
done:
    free(needs);
    cuda_free(probe);
    cuda_free(diff);
    // The zeros stay only for the fused convolutions without a shortcut.
    int keep_zeros = 0;
    for (size_t i = 0; i < net->n_steps; i++) keep_zeros |= net->steps[i].fused && net->steps[i].res < 0;
    if (!keep_zeros || rc) {
        cuda_free(net->zeros);
        net->zeros = NULL;
        net->zeros_bytes = 0;
    }
    return rc;
}

// ---- the interface ----

static void print_plan(const CudaNet *net) {
    ct_info("%s plan for batch %zu at %zux%zu (%s%s) on GPU %d:", net->model, net->max_batch, net->h, net->w,
            precision_name(net->precision), net->deterministic ? ", deterministic" : "", net->device);
    if (net->batch_limit > net->max_batch)
        ct_info("  batches up to %zu run in pieces of %zu (cuDNN's legacy API takes under 2^31 elements a tensor)",
                net->batch_limit, net->max_batch);
    for (size_t i = 0; i < net->n_steps; i++) {
        const Step *s = &net->steps[i];
        if (s->kind == NN_MAXPOOL || s->kind == NN_AVGPOOL) {
            ct_info("  %-24s %s %zux%zu s%zu  %3zux%-3zu", s->name, s->kind == NN_MAXPOOL ? "max-pool" : "avg-pool",
                    s->k, s->k, s->stride, s->oh, s->ow);
            continue;
        }
        if (s->kind == NN_BN_RELU || s->kind == NN_CONCAT) {
            ct_info("  %-24s %s %4zu ch  %3zux%-3zu%s", s->name, s->kind == NN_BN_RELU ? "BN + ReLU" : "concat",
                    s->cout, s->oh, s->ow, s->kind == NN_CONCAT && s->n_copies == 1 ? " (new channels copied)" : "");
            continue;
        }
        char t[32] = "";
        if (s->choice.ms >= 0) snprintf(t, sizeof t, " %.3f ms", (double)s->choice.ms);
        ct_info("  %-24s %4zu->%-4zu %zux%zu s%zu  %3zux%-3zu  %s math %d ws %.1f MiB%s%s%s", s->name, s->cin,
                s->cout, s->k, s->k, s->stride, s->oh, s->ow, cuda_conv_algo_name(s->choice.algo),
                (int)s->choice.math, s->choice.ws_bytes / 1048576.0, t, s->fused ? " fused" : "",
                s->cached ? " (cached)" : "");
    }
    size_t acts = 0;
    for (size_t i = 0; i < net->n_pool; i++) acts += net->pool_bytes[i];
    ct_info("%s plan: %zu steps, weights %.1f MiB, activations %.1f MiB in %zu buffers, workspace %.1f MiB, "
            "fusion zeros %.1f MiB",
            net->model, net->n_steps, net->weights_bytes / 1048576.0, acts / 1048576.0, net->n_pool,
            net->ws_bytes / 1048576.0, net->zeros_bytes / 1048576.0);
}

int cuda_net_create(CudaNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                    const BackendOptions *opt, CtError *err) {
    *out = NULL;
    if (g->n_layers < 1) return ct_errorf(err, "%s: empty graph", g->model);
    const NNLayer *last = &g->layers[g->n_layers - 1];
    if (last->kind != NN_ADAPTIVE_AVGPOOL && last->kind != NN_GLOBAL_AVGPOOL)
        return ct_errorf(err, "%s: the CUDA backend expects the graph to end in an average pool", g->model);
    if (max_batch == 0 || max_batch > (1u << 16)) return ct_errorf(err, "batch size %zu out of range", max_batch);
    if (h > (1u << 15) || w > (1u << 15)) return ct_errorf(err, "input %zux%zu is too large", h, w);
    char why[256];
    if (cuda_device_count(why, sizeof why) == 0)
        return ct_errorf(err, "backend 'cuda': no CUDA device visible (%s)", why);

    CudaNet *net = ct_calloc(1, sizeof *net);
    NNShape *shapes = ct_calloc(g->n_layers, sizeof *shapes);
    snprintf(net->model, sizeof net->model, "%s", g->model);
    net->max_batch = max_batch;
    net->h = h;
    net->w = w;
    net->precision = opt->precision;
    net->conv_algo_opt = opt->conv_algo;
    net->deterministic = opt->deterministic;
    net->verbose = opt->verbose;
    net->final_buf = -1;
    switch (opt->precision) {
    case PRECISION_FP32:
    case PRECISION_TF32: net->dt = CUDA_DT_F32, net->cdt = CUDNN_DATA_FLOAT; break;
    case PRECISION_FP16: net->dt = CUDA_DT_F16, net->cdt = CUDNN_DATA_HALF; break;
    case PRECISION_BF16: net->dt = CUDA_DT_BF16, net->cdt = CUDNN_DATA_BFLOAT16; break;
    default:
        ct_errorf(err, "unknown precision %d", (int)opt->precision);
        goto fail;
    }
    net->esize = cuda_dtype_size(net->dt);
    if (graph_infer_shapes(g, h, w, shapes, err)) goto fail;
    // Every cuDNN tensor stays under 2^31 elements: a larger batch runs in pieces.
    const char *largest = "";
    size_t per_image = gpu_graph_image_elems(g, shapes, h, w, &largest);
    net->batch_limit = max_batch;
    net->max_batch = gpu_batch_piece(max_batch, per_image, GPU_LEGACY_MAX_ELEMS);
    if (net->max_batch == 0) {
        ct_errorf(err, "%s at %zux%zu: tensor %s holds %zu elements for one image, more than cuDNN's limit of 2^31 - 1 "
                  "a tensor; use a smaller image size", g->model, h, w, largest, per_image);
        goto fail;
    }

    CUDA_TRY(cudaGetDevice(&net->device), "the CUDA backend");
    struct cudaDeviceProp prop;
    CUDA_TRY(cudaGetDeviceProperties(&prop, net->device), "the CUDA backend");
    // The kernels are built for compute capability 8.0 and later (sm_80, sm_90).
    if (prop.major < 8) {
        ct_errorf(err, "backend 'cuda': GPU %d (%s) has compute capability %d.%d; this build needs 8.0 or later",
                  net->device, prop.name, prop.major, prop.minor);
        goto fail;
    }
    CUDA_TRY(cudaStreamCreateWithFlags(&net->stream, cudaStreamNonBlocking), "the backbone stream");
    CUDNN_TRY(cudnnCreate(&net->cudnn), "the cuDNN handle");
    CUDNN_TRY(cudnnSetStream(net->cudnn, net->stream), "the cuDNN handle");
    CUDNN_TRY(cudnnCreateActivationDescriptor(&net->relu_desc), "the ReLU descriptor");
    CUDNN_TRY(cudnnSetActivationDescriptor(net->relu_desc, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
              "the ReLU descriptor");

    if (plan_layers(net, g, shapes, err)) goto fail;
    if (alloc_buffers(net, err)) goto fail;
    if (upload_weights(net, g, err)) goto fail;
    if (choose_algorithms(net, err)) goto fail;
    CUDA_TRY(cudaStreamSynchronize(net->stream), "planning the backbone");
    if (net->verbose) print_plan(net);
    free(shapes);
    *out = net;
    return 0;
fail:
    free(shapes);
    cuda_net_free(net);
    return -1;
}

// Enqueues one piece of n <= max_batch images.
static int forward_piece(CudaNet *net, const float *in, size_t n, float *out, CtError *err) {
    size_t per = 3 * net->h * net->w;
    CUDA_RET(cudaMemcpyAsync(net->d_in, in, n * per * sizeof(float), cudaMemcpyHostToDevice, net->stream),
             "copying the input batch to the GPU");
    // A partial batch runs at full size: the rows past n hold stale data
    // whose outputs are not copied back (each image's result is its own).
    if (launch_check(cuda_k_nchw_to_nhwc(net->pool[net->in_buf], net->dt, net->d_in, n, 3, net->h, net->w,
                                         net->stream),
                     "input layout", "input", err))
        return -1;
    for (size_t i = 0; i < net->n_steps; i++)
        if (run_step(net, &net->steps[i], err)) return -1;
    if (launch_check(cuda_k_avgpool_to_nchw(net->d_out, net->pool[net->final_buf], net->dt, n, net->fc, net->fh,
                                            net->fw, net->out_h, net->out_w, net->stream),
                     "average pool", "avgpool", err))
        return -1;
    CUDA_RET(cudaMemcpyAsync(out, net->d_out, n * net->out_numel * sizeof(float), cudaMemcpyDeviceToHost,
                             net->stream),
             "copying the features from the GPU");
    return 0;
}

int cuda_net_forward(CudaNet *net, const float *in, size_t n, float *out, CtError *err) {
    if (n == 0) return 0;
    if (n > net->batch_limit)
        return ct_errorf(err, "batch of %zu is larger than the plan's %zu", n, net->batch_limit);
    CUDA_RET(cudaSetDevice(net->device), "the backbone's GPU");
    // The pieces share the plan's buffers; the stream orders them.
    for (size_t off = 0; off < n; off += net->max_batch) {
        size_t m = n - off < net->max_batch ? n - off : net->max_batch;
        if (forward_piece(net, in + off * 3 * net->h * net->w, m, out + off * net->out_numel, err)) return -1;
    }
    cudaError_t e = cudaStreamSynchronize(net->stream);
    if (e != cudaSuccess)
        return ct_errorf(err, "%s forward pass failed on GPU %d: %s (run with CUDA_LAUNCH_BLOCKING=1 to find the layer)",
                         net->model, net->device, cudaGetErrorString(e));
    return 0;
}

size_t cuda_net_output_numel(const CudaNet *net) { return net->out_numel; }

size_t cuda_net_bytes(const CudaNet *net) {
    size_t b = net->weights_bytes + net->ws_bytes + net->zeros_bytes +
               net->max_batch * 3 * net->h * net->w * sizeof(float) + net->max_batch * net->out_numel * sizeof(float);
    for (size_t i = 0; i < net->n_pool; i++) b += net->pool_bytes[i];
    return b;
}

void cuda_net_free(CudaNet *net) {
    if (!net) return;
    if (net->stream) (void)cudaStreamSynchronize(net->stream);
    for (size_t i = 0; i < net->n_steps; i++) {
        Step *s = &net->steps[i];
        if (s->xd) cudnnDestroyTensorDescriptor(s->xd);
        if (s->yd) cudnnDestroyTensorDescriptor(s->yd);
        if (s->bd) cudnnDestroyTensorDescriptor(s->bd);
        if (s->bd32) cudnnDestroyTensorDescriptor(s->bd32);
        if (s->wd) cudnnDestroyFilterDescriptor(s->wd);
        if (s->cd) cudnnDestroyConvolutionDescriptor(s->cd);
    }
    if (net->pool)
        for (size_t i = 0; i < net->n_pool; i++) cuda_free(net->pool[i]);
    cuda_free(net->d_in);
    cuda_free(net->d_out);
    cuda_free(net->weights);
    cuda_free(net->ws);
    cuda_free(net->zeros);
    if (net->relu_desc) cudnnDestroyActivationDescriptor(net->relu_desc);
    if (net->cudnn) cudnnDestroy(net->cudnn);
    if (net->stream) (void)cudaStreamDestroy(net->stream);
    free(net->steps);
    free(net->pool);
    free(net->pool_bytes);
    free(net->pool_free);
    free(net);
}
