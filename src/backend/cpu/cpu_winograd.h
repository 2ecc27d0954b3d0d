/*
 * cpu_winograd.h — Winograd F(4x4, 3x3) convolution for 3x3, stride 1,
 * pad 1 layers on AVX2+FMA CPUs, where oneDNN 2.6 has no Winograd kernel
 * (it has one for AVX-512 only).
 *
 * One image at a time (the frozen prefix) or the tiles of several images in
 * one list (the trainable tail: cpu_wino_create_batched), single-threaded,
 * on oneDNN's nChw8c layout (the one its AVX2 convolutions use, so no
 * reorder is needed around it in the prefix). Per block
 * of tiles: the input transform B^T d B of every 6x6 tile, then for each of
 * the 36 transformed positions a GEMM (tiles x C) . (C x K) by a 6x16
 * register-blocked micro-kernel, then the output transform A^T m A with
 * the bias, the residual (sum) and the ReLU fused into it. The weights are
 * transformed once, at creation, in double precision (G g G^T).
 *
 * Batch and thread invariance by construction: every output element is one
 * dot product over the input channels summed in the order 0..C-1, whatever
 * the tile blocking, the image's batch or the thread that runs it; the
 * tile blocking only chooses which outputs are computed together.
 *
 * Numerics: F(4,3)'s transforms (points 0, +-1, +-2, inf) cost some
 * precision against a direct convolution: ~1e-6 relative per layer, a few
 * 1e-6 over VGG16 (tests/unit/test_winograd.c and tests/torch).
 */
#ifndef CTSWEEP_BACKEND_CPU_WINOGRAD_H
#define CTSWEEP_BACKEND_CPU_WINOGRAD_H

#include <stddef.h>

typedef struct {
    size_t c, k, h, w;  // input channels, output channels, spatial size (in = out)
    size_t cp, kp;      // c rounded up to 8, k rounded up to 16
    size_t th, tw;      // tiles down and across: ceil(h / 4), ceil(w / 4)
    size_t tb;          // tiles per block (a multiple of 6)
    int sum, relu;      // post-ops: dst = relu(conv + bias + dst)
    int borrowed_u;     // u belongs to another plan (cpu_wino_share_weights)
    float *u;           // (36, kp / 16, cp, 16) transformed weights
    float *bias;        // (kp)
} CpuWino;

// Whether this CPU (cpuid) and oneDNN's ISA limit (ONEDNN_MAX_CPU_ISA)
// allow the AVX2+FMA kernel.
int cpu_wino_supported(void);

// Transforms the weights; NULL when out of memory.
CpuWino *cpu_wino_create(const float *weight,  // (k, c, 3, 3)
                         const float *bias,    // (k) or NULL
                         size_t c, size_t k, size_t h, size_t w, int sum, int relu);
size_t cpu_wino_weight_bytes(const CpuWino *p);
size_t cpu_wino_scratch_bytes(const CpuWino *p);
// Whether `--conv-algo auto` takes this kernel for a layer of that shape:
// never on AVX-512 (oneDNN's choice stands there), else a rule on shapes
// only, so that results never depend on timings.
int cpu_wino_auto(size_t c, size_t k, size_t h, size_t w);

// dst = relu(conv(src) + bias [+ dst]); src and dst in nChw8c, one image.
void cpu_wino_run(const CpuWino *p,
                  float *dst,        // (1, ceil(k / 8), h, w, 8)
                  const float *src,  // (1, ceil(c / 8), h, w, 8)
                  void *scratch);    // cpu_wino_scratch_bytes, 64-byte aligned
void cpu_wino_free(CpuWino *p);

// For training, where the weights change every step: a plan whose tile
// blocks span up to max_images images (their tiles form one list, so small
// layers such as ResNet's 7x7 fill the micro-kernel's rows and each panel
// of transformed weights serves many tiles; a tile's result is the same in
// any block, so the images grouped together change no bit), and whose
// weights are loaded in float by cpu_wino_weights, as often as they change.
// Needs k a multiple of 8. NULL when out of memory.
CpuWino *cpu_wino_create_batched(size_t c, size_t k, size_t h, size_t w, int sum, int relu, size_t max_images);
// G g G^T of every (output o, input i) channel pair, in float, where tap j
// of the pair is wt[o * lane_stride + i * chan_stride + (flip ? 8 - j : j)]:
// a convolution's weights (cout, cin, 3, 3) are lane_stride = cin * 9,
// chan_stride = 9; its backward data (a convolution of the output gradient
// with the weights transposed and turned by 180 degrees) 9, cout * 9, flip.
// The bias: set p->bias directly (zero after creation). Runs on the
// caller's OpenMP threads; bits do not depend on their number.
void cpu_wino_weights(CpuWino *p, const float *wt, size_t lane_stride, size_t chan_stride, int flip);
// Makes p use q's transformed-weight buffer instead of its own (same size
// required; returns 0 when not): for two plans never used at once, such as
// a layer's forward and backward data, each loading its weights first.
int cpu_wino_share_weights(CpuWino *p, CpuWino *q);
// cpu_wino_run for n <= max_images images, one after another in src and dst.
void cpu_wino_run_images(const CpuWino *p, float *dst, const float *src, size_t n, void *scratch);

// The AVX2+FMA implementation (cpu_winograd_avx2.c, its own compile flags).
void cpu_wino_run_avx2(const CpuWino *p, float *dst, const float *src, size_t n_images, float *scratch);
void cpu_wino_weights_avx2(CpuWino *p, const float *wt, size_t lane_stride, size_t chan_stride, int flip);

#endif
