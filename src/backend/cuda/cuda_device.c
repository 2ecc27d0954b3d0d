/*
 * cuda_device.c — device discovery and binding. The runtime has already
 * applied CUDA_VISIBLE_DEVICES (which Slurm sets per task when it binds
 * GPUs), so binding only has to spread local ranks over what is visible.
 */
#include "backend/cuda/cuda_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_common.h"

int cuda_device_count(char *why, size_t why_len) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        if (why && why_len) snprintf(why, why_len, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        return 0;
    }
    if (n <= 0) {
        if (why && why_len) snprintf(why, why_len, "cudaGetDeviceCount: 0 devices");
        return 0;
    }
    if (why && why_len) why[0] = '\0';
    return n;
}

int cuda_local_rank_from_env(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                       "PMI_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v) continue;
        char *end;
        long r = strtol(v, &end, 10);
        if (*end == '\0' && r >= 0 && r < (1L << 24)) return (int)r;
    }
    return -1;
}

static void format_uuid(char *out, size_t len, const unsigned char *b) {
    snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int cuda_device_describe(int device, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err) {
    if (device < 0) CUDA_RET(cudaGetDevice(&device), "current GPU");
    struct cudaDeviceProp prop;
    char what[64];
    snprintf(what, sizeof what, "GPU %d", device);
    CUDA_RET(cudaGetDeviceProperties(&prop, device), what);
    if (name && name_len) snprintf(name, name_len, "%s", prop.name);
    if (uuid && uuid_len) format_uuid(uuid, uuid_len, (const unsigned char *)prop.uuid.bytes);
    return 0;
}

int cuda_bind_local_rank(int local_rank, char *name, size_t name_len, char *uuid, size_t uuid_len, CtError *err) {
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    if (n == 0) {
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        ct_errorf(err, "no CUDA device visible (%s; CUDA_VISIBLE_DEVICES=%s)", why, cvd ? cvd : "(unset)");
        return -1;
    }
    int dev = (local_rank < 0 ? 0 : local_rank) % n;
    char what[96];
    snprintf(what, sizeof what, "binding local rank %d to GPU %d of %d visible", local_rank, dev, n);
    CUDA_RET(cudaSetDevice(dev), what);
    // Creating the context now surfaces an exclusive-process device taken by
    // another process here, not at the first allocation of a trial.
    CUDA_RET(cudaFree(NULL), what);
    if (cuda_device_describe(dev, name, name_len, uuid, uuid_len, err)) return -1;
    return dev;
}
