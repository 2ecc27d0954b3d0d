/*
 * cpu_net.h — the CPU backend's backbone plan: oneDNN primitives created
 * once per shape for one image (batch invariance, see cpu_net.c), layouts
 * chosen by oneDNN (format_tag::any), ReLU and the residual add fused as
 * post-ops, weights reordered once and shared, activation buffers shared by
 * lifetime within each thread's own pool.
 */
#ifndef CTSWEEP_BACKEND_CPU_NET_H
#define CTSWEEP_BACKEND_CPU_NET_H

#include "backend/backend.h"

typedef struct CpuNet CpuNet;

int cpu_net_create(CpuNet **out, const NNGraph *g, size_t max_batch, size_t h, size_t w,
                   const BackendOptions *opt, CtError *err);
int cpu_net_forward(CpuNet *net, const float *in, size_t n, float *out, CtError *err);
size_t cpu_net_output_numel(const CpuNet *net);
size_t cpu_net_bytes(const CpuNet *net);
void cpu_net_free(CpuNet *net);
// The instruction set oneDNN dispatches to on this CPU, after
// ONEDNN_MAX_CPU_ISA ("avx2", "avx512_core_bf16", ...).
const char *cpu_net_isa_name(void);

#endif
