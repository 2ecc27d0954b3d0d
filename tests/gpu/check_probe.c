/*
 * check_probe.c — what tests/gpu/check.sh asks of a machine before it builds
 * anything: whether a CUDA device is visible, and which CUDA each of the
 * runtime, cuDNN and NCCL libraries it found was built for. Everything is
 * reached through dlopen, so it needs no CUDA headers, compiles with any C
 * compiler in a fraction of a second and answers on a machine without a
 * driver (then: no device, and why).
 *
 *   check_probe devices     "N D.d": N visible devices, the driver's CUDA version;
 *                           "0 REASON" when there is none
 *   check_probe cudart LIB  "V.v": the runtime's version
 *   check_probe cudnn LIB   "X.Y.Z V.v": cuDNN's version, the CUDA it was built for
 *   check_probe nccl LIB    "X.Y.Z V.v": NCCL's version, the CUDA it was built for
 *                           (from the "NCCL version ...+cudaV.v" string it carries)
 *
 * Exit 0 with that line, or 1 with "? REASON" on stdout.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void *open_lib(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) printf("? %s\n", dlerror());
    return h;
}

static void *sym(void *h, const char *name) {
    void *f = dlsym(h, name);
    if (!f) printf("? %s\n", dlerror());
    return f;
}

// The CUDA version as the runtime encodes it (1000 * major + 10 * minor).
static void print_cuda(int v) { printf("%d.%d", v / 1000, (v % 1000) / 10); }

static int probe_devices(void) {
    typedef int (*init_fn)(unsigned);
    typedef int (*count_fn)(int *);
    typedef int (*str_fn)(int, const char **);
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        printf("0 no NVIDIA driver: %s\n", dlerror());
        return 0;
    }
    init_fn cu_init = (init_fn)dlsym(h, "cuInit");
    count_fn cu_count = (count_fn)dlsym(h, "cuDeviceGetCount");
    count_fn cu_driver = (count_fn)dlsym(h, "cuDriverGetVersion");
    str_fn cu_name = (str_fn)dlsym(h, "cuGetErrorName");
    str_fn cu_str = (str_fn)dlsym(h, "cuGetErrorString");
    if (!cu_init || !cu_count) {
        printf("0 libcuda.so.1 lacks cuInit or cuDeviceGetCount\n");
        return 0;
    }
    int driver = 0;
    if (cu_driver) cu_driver(&driver);
    int r = cu_init(0), n = 0;
    if (r == 0) r = cu_count(&n);
    if (r != 0) {
        const char *name = "?", *text = "?";
        if (cu_name) cu_name(r, &name);
        if (cu_str) cu_str(r, &text);
        printf("0 cuInit: %s (%s)\n", name, text);
        return 0;
    }
    if (n <= 0) {
        printf("0 cuDeviceGetCount: 0 devices\n");
        return 0;
    }
    printf("%d ", n);
    print_cuda(driver);
    printf("\n");
    return 0;
}

static int probe_cudart(const char *path) {
    void *h = open_lib(path);
    if (!h) return 1;
    int (*get)(int *) = (int (*)(int *))sym(h, "cudaRuntimeGetVersion");
    int v = 0;
    if (!get || get(&v) != 0) {
        if (get) printf("? cudaRuntimeGetVersion failed\n");
        return 1;
    }
    print_cuda(v);
    printf("\n");
    return 0;
}

static int probe_cudnn(const char *path) {
    void *h = open_lib(path);
    if (!h) return 1;
    size_t (*ver)(void) = (size_t (*)(void))sym(h, "cudnnGetVersion");
    size_t (*rt)(void) = ver ? (size_t (*)(void))sym(h, "cudnnGetCudartVersion") : NULL;
    if (!ver || !rt) return 1;
    size_t v = ver(), c = rt();
    // cuDNN 9 numbers itself 10000 * major + 100 * minor + patch (8: 1000 * major).
    if (v >= 90000) printf("%zu.%zu.%zu ", v / 10000, (v % 10000) / 100, v % 100);
    else printf("%zu.%zu.%zu ", v / 1000, (v % 1000) / 100, v % 100);
    print_cuda((int)c);
    printf("\n");
    return 0;
}

// NCCL says which CUDA it was built for only in its version banner.
static int banner_cuda(const char *path, char *out, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        const char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m != MAP_FAILED) {
            const char *key = "NCCL version ";
            const char *p = memmem(m, (size_t)st.st_size, key, strlen(key));
            const char *end = m + st.st_size;
            while (p && rc) {
                const char *q = p + strlen(key);
                while (q < end && q < p + 64 && *q && *q != '+') q++;
                if (q + 5 < end && memcmp(q, "+cuda", 5) == 0) {
                    size_t n = 0;
                    q += 5;
                    while (q < end && n + 1 < len && ((*q >= '0' && *q <= '9') || *q == '.')) out[n++] = *q++;
                    out[n] = '\0';
                    if (n) rc = 0;
                }
                p = memmem(p + 1, (size_t)(end - p - 1), key, strlen(key));
            }
            munmap((void *)m, (size_t)st.st_size);
        }
    }
    close(fd);
    return rc;
}

static int probe_nccl(const char *path) {
    void *h = open_lib(path);
    if (!h) return 1;
    int (*get)(int *) = (int (*)(int *))sym(h, "ncclGetVersion");
    int v = 0;
    if (!get || get(&v) != 0) {
        if (get) printf("? ncclGetVersion failed\n");
        return 1;
    }
    char cuda[32];
    if (banner_cuda(path, cuda, sizeof cuda)) {
        printf("? %s carries no \"NCCL version ...+cudaX.Y\" banner\n", path);
        return 1;
    }
    // NCCL 2.9 and later: 10000 * major + 100 * minor + patch.
    printf("%d.%d.%d %s\n", v / 10000, (v % 10000) / 100, v % 100, cuda);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "devices") == 0) return probe_devices();
    if (argc == 3 && strcmp(argv[1], "cudart") == 0) return probe_cudart(argv[2]);
    if (argc == 3 && strcmp(argv[1], "cudnn") == 0) return probe_cudnn(argv[2]);
    if (argc == 3 && strcmp(argv[1], "nccl") == 0) return probe_nccl(argv[2]);
    fprintf(stderr, "usage: check_probe devices | cudart LIB | cudnn LIB | nccl LIB\n");
    return 2;
}
