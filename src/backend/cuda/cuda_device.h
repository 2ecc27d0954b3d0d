/*
 * cuda_device.h — which GPU a process uses and how it is named in the
 * results: the number of visible devices (CUDA_VISIBLE_DEVICES and Slurm's
 * per-task binding already applied by the runtime), binding a worker to a
 * device by its local rank on the node, and the device's name and UUID
 * (nvidia-smi's "GPU-xxxxxxxx-..." form) for the trial records.
 */
#ifndef CTSWEEP_BACKEND_CUDA_DEVICE_H
#define CTSWEEP_BACKEND_CUDA_DEVICE_H

#include <stddef.h>

#include "util/util.h"

#ifdef __cplusplus
extern "C" {
#endif

// Visible CUDA devices; 0 when there is none, with the runtime's reason
// (e.g. "cudaGetDeviceCount: no CUDA-capable device is detected") in why.
int cuda_device_count(char *why, size_t why_len);

// The launcher's idea of this process's rank on its node (Open MPI, Slurm,
// MPICH/Hydra, MVAPICH), or -1 when no launcher says. MPI_Comm_split_type
// with MPI_COMM_TYPE_SHARED is the better source when MPI is up.
int cuda_local_rank_from_env(void);

// Binds this process to device local_rank mod (visible devices): with one
// device visible per task (Slurm --gpus-per-task, --gpu-bind, or a per-rank
// CUDA_VISIBLE_DEVICES) that is always device 0; with all of a node's
// devices visible, consecutive local ranks take consecutive devices.
// Writes the device's name and UUID (either may be NULL) and returns the
// device index, or -1 with err (no device visible, or the device cannot be
// used: exclusive-process mode taken by another process, a driver error).
int cuda_bind_local_rank(int local_rank, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err);

// Name and UUID of a device (-1: the current one). Returns 0 or -1 with err.
int cuda_device_describe(int device, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err);

#ifdef __cplusplus
}
#endif

#endif
