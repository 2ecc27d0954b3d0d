/*
 * test_cuda_device.c — GPU binding: the launcher's local rank read from
 * the environment (checked without a GPU too), binding local ranks round
 * robin over the visible devices, and the name/UUID recorded per trial.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>

#include "gpu_test.h"

static void test_env(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID",
                                       "PMI_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK"};
    for (size_t i = 0; i < 5; i++) unsetenv(vars[i]);
    CHECK(cuda_local_rank_from_env() == -1, "local rank without a launcher: %d", cuda_local_rank_from_env());
    setenv("SLURM_LOCALID", "3", 1);
    CHECK(cuda_local_rank_from_env() == 3, "SLURM_LOCALID=3 read as %d", cuda_local_rank_from_env());
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);  // Open MPI's answer comes first
    CHECK(cuda_local_rank_from_env() == 1, "OMPI_COMM_WORLD_LOCAL_RANK=1 read as %d", cuda_local_rank_from_env());
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "x", 1);  // garbage is ignored
    CHECK(cuda_local_rank_from_env() == 3, "a malformed local rank was not skipped");
    for (size_t i = 0; i < 5; i++) unsetenv(vars[i]);
    printf("ok   local rank from the launcher's environment\n");
}

int main(void) {
    test_env();
    int skip = gpu_require(1);
    if (skip) {
        printf("%d passed before the skip\n", g_pass);
        return g_fail ? 1 : skip;
    }
    char why[256];
    int n = cuda_device_count(why, sizeof why);
    for (int r = 0; r < n + 2; r++) {
        char name[256] = "", uuid[64] = "";
        CtError err = {{0}};
        int dev = cuda_bind_local_rank(r, name, sizeof name, uuid, sizeof uuid, &err);
        int cur = -1;
        cudaGetDevice(&cur);
        CHECK(dev == r % n, "local rank %d bound to %d, want %d (%s)", r, dev, r % n, err.msg);
        CHECK(cur == dev, "current device %d after binding to %d", cur, dev);
        CHECK(name[0] != '\0', "empty device name");
        CHECK(strncmp(uuid, "GPU-", 4) == 0 && strlen(uuid) == 40, "UUID '%s' is not GPU-xxxxxxxx-xxxx-...", uuid);
        printf("ok   local rank %d -> GPU %d: %s %s\n", r, dev, name, uuid);
    }
    return check_summary();
}
