/*
 * cmd_features.c — `ctsweep features`: runs a frozen backbone (or, with
 * --model identity, only the preprocessing) over a list of images and
 * writes /features and /paths to an HDF5 file. The file is written under a
 * temporary name and renamed at the end, so an error never leaves a partial
 * file behind nor damages an existing one.
 */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "cli/commands.h"
#include "data/preprocess.h"
#include "nn/models.h"
#include "results/h5io.h"

typedef struct {
    const char *model;
    const char *weights;
    const char *output;
    size_t image_size;
    size_t batch;
    NormMode norm;
    uint64_t seed;
    BackendOptions backend;
} FeaturesArgs;

// The model list and each model's output come from the registry.
static void features_usage(FILE *f) {
    fprintf(f,
            "usage: ctsweep features --model M --image-size S -o OUT.h5 [options] IMAGE...\n"
            "  --model M            %s, or identity (the preprocessed input)\n"
            "  --weights FILE       safetensors weights (torchvision/timm names); without it a seeded\n"
            "                       random backbone is used, with a warning\n"
            "  --image-size S       images are resized to S x S (PIL bilinear, antialiased)\n"
            "  --normalize N        imagenet (default) or unit\n"
            "  --batch B            images per forward pass (default 16)\n"
            "  --threads T          compute threads (default: all cores)\n"
            "  --precision P        fp32 (default) or bf16\n"
            "  --conv-algo A        auto (default), direct or winograd\n"
            "  --seed N             seed of the random backbone (default 0)\n"
            "  -v, --verbose        print the compiled plan\n"
            "  -o, --output FILE    the HDF5 file to write: /features (float32, n by the model's\n"
            "                       output) and /paths; per image:\n",
            model_names());
    int width = (int)strlen("identity");
    for (size_t i = 0; i < model_count(); i++)
        if ((int)strlen(model_at(i)->name) > width) width = (int)strlen(model_at(i)->name);
    for (size_t i = 0; i < model_count(); i++)
        fprintf(f, "                         %-*s %s\n", width, model_at(i)->name, model_at(i)->output);
    fprintf(f, "                         %-*s (3, S, S), the preprocessed input\n", width, "identity");
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out) {
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-' || v < lo || v > hi) return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_args(int argc, char **argv, FeaturesArgs *a, int *first_image) {
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},     {"weights", required_argument, 0, 'w'},
        {"image-size", required_argument, 0, 's'}, {"normalize", required_argument, 0, 'n'},
        {"batch", required_argument, 0, 'b'},     {"threads", required_argument, 0, 't'},
        {"precision", required_argument, 0, 'p'}, {"conv-algo", required_argument, 0, 'a'},
        {"seed", required_argument, 0, 'S'},      {"output", required_argument, 0, 'o'},
        {"verbose", no_argument, 0, 'v'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    a->batch = 16;
    a->norm = NORM_IMAGENET;
    backend_options_default(&a->backend);
    optind = 1;
    int c;
    size_t v;
    while ((c = getopt_long(argc, argv, "o:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'w': a->weights = optarg; break;
        case 'o': a->output = optarg; break;
        case 'v': a->backend.verbose = 1; break;
        case 's':
            if (parse_size(optarg, 1, 8192, &a->image_size)) {
                fprintf(stderr, "ctsweep features: --image-size '%s': expected an integer from 1 to 8192\n", optarg);
                return -1;
            }
            break;
        case 'b':
            if (parse_size(optarg, 1, 4096, &a->batch)) {
                fprintf(stderr, "ctsweep features: --batch '%s': expected an integer from 1 to 4096\n", optarg);
                return -1;
            }
            break;
        case 't':
            if (parse_size(optarg, 1, 4096, &v)) {
                fprintf(stderr, "ctsweep features: --threads '%s': expected a positive integer\n", optarg);
                return -1;
            }
            a->backend.threads = (int)v;
            break;
        case 'S':
            if (parse_size(optarg, 0, SIZE_MAX, &v)) {
                fprintf(stderr, "ctsweep features: --seed '%s': expected a non-negative integer\n", optarg);
                return -1;
            }
            a->seed = v;
            break;
        case 'n':
            if (norm_mode_parse(optarg, &a->norm)) {
                fprintf(stderr, "ctsweep features: --normalize '%s': expected imagenet or unit\n", optarg);
                return -1;
            }
            break;
        case 'p':
            if (precision_parse(optarg, &a->backend.precision)) {
                fprintf(stderr, "ctsweep features: --precision '%s': expected fp32 or bf16\n", optarg);
                return -1;
            }
            break;
        case 'a':
            if (conv_algo_parse(optarg, &a->backend.conv_algo)) {
                fprintf(stderr, "ctsweep features: --conv-algo '%s': expected auto, direct or winograd\n", optarg);
                return -1;
            }
            break;
        case 'h': features_usage(stdout); exit(CT_EXIT_OK);
        default: features_usage(stderr); return -1;
        }
    }
    const char *missing = !a->model ? "--model" : !a->image_size ? "--image-size" : !a->output ? "-o" : NULL;
    if (missing) {
        fprintf(stderr, "ctsweep features: %s is required\n", missing);
        return -1;
    }
    if (optind >= argc) {
        fprintf(stderr, "ctsweep features: no images given\n");
        return -1;
    }
    if (strcmp(a->model, "identity") != 0 && !model_is_known(a->model)) {
        fprintf(stderr, "ctsweep features: --model '%s': expected %s or identity\n", a->model, model_names());
        return -1;
    }
    *first_image = optind;
    return 0;
}

// Loads images [i0, i0 + n) into x (n, 3, S, S) in parallel; on failure
// returns -1 with err for the lowest failing index.
static int load_batch(float *x, char **paths, size_t n, const FeaturesArgs *a, CtError *err) {
    const size_t per = 3 * a->image_size * a->image_size;
    ImageLimits lim;
    image_limits_default(&lim);
    long first_bad = -1;
    CtError *errs = ct_calloc(n, sizeof *errs);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i++) {
        if (preprocess_load_tensor(x + i * per, paths[i], a->image_size, a->norm, &lim, &errs[i])) {
#pragma omp critical
            if (first_bad < 0 || (long)i < first_bad) first_bad = (long)i;
        }
    }
    if (first_bad >= 0) *err = errs[first_bad];
    free(errs);
    return first_bad >= 0 ? -1 : 0;
}

int cmd_features(int argc, char **argv) {
    FeaturesArgs a;
    int first;
    if (parse_args(argc, argv, &a, &first)) return CT_EXIT_USAGE;
    char **paths = argv + first;
    size_t n_images = (size_t)(argc - first);
    int identity = strcmp(a.model, "identity") == 0;
    CtError err = {{0}};
    NNGraph g = {0};
    BackendNet *net = NULL;
    float *x = NULL, *y = NULL;
    hid_t file = -1, dset = -1;
    char *tmp = ct_asprintf("%s.tmp.%ld", a.output, (long)getpid());
    int ok = 0;
    size_t S = a.image_size, per_in = 3 * S * S, per_out = per_in;
    size_t dims[4] = {n_images, 3, S, S};
    int ndim = 4;
    if (a.backend.threads > 0) omp_set_num_threads(a.backend.threads);

    if (!identity) {
        if (model_create(&g, a.model, a.weights, a.seed, &err)) goto done;
        NNShape *shapes = ct_calloc(g.n_layers, sizeof *shapes);
        int rc = graph_infer_shapes(&g, S, S, shapes, &err);
        NNShape o = rc == 0 ? shapes[g.n_layers - 1] : (NNShape){0, 0, 0};
        int global = g.layers[g.n_layers - 1].kind == NN_GLOBAL_AVGPOOL;
        free(shapes);
        if (rc) goto done;
        if (backend_net_create(&net, &g, a.batch < n_images ? a.batch : n_images, S, S, &a.backend, &err)) {
            ct_error_prefix(&err, "%s", a.model);
            goto done;
        }
        graph_free(&g);
        per_out = backend_net_output_numel(net);
        // ResNet's global pool gives (n, C); VGG's adaptive pool (n, C, 7, 7).
        dims[1] = o.c;
        dims[2] = o.h;
        dims[3] = o.w;
        ndim = global ? 2 : 4;
    }
    size_t batch = a.batch < n_images ? a.batch : n_images;
    x = ct_try_aligned_alloc(batch * per_in, sizeof(float));
    y = identity ? x : ct_try_aligned_alloc(batch * per_out, sizeof(float));
    if (!x || !y) {
        ct_errorf(&err, "out of memory for a batch of %zu images", batch);
        goto done;
    }
    file = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        h5io_error(&err, tmp);
        goto done;
    }
    dset = h5io_create_f32(file, "features", dims, ndim, batch, &err);
    if (dset < 0) goto done;
    if (h5io_write_strings(file, "paths", (const char *const *)paths, n_images, &err)) goto done;
    if (h5io_attr_str(file, "model", a.model, &err) || h5io_attr_i64(file, "image_size", (long long)S, &err) ||
        h5io_attr_str(file, "normalize", norm_mode_name(a.norm), &err) ||
        h5io_attr_str(file, "weights", a.weights ? a.weights : "", &err) ||
        h5io_attr_str(file, "software_version", CTSWEEP_VERSION, &err))
        goto done;
    double t0 = ct_now();
    for (size_t i0 = 0; i0 < n_images; i0 += batch) {
        size_t n = n_images - i0 < batch ? n_images - i0 : batch;
        if (load_batch(x, paths + i0, n, &a, &err)) goto done;
        if (!identity && backend_net_forward(net, x, n, y, &err)) goto done;
        if (h5io_write_rows_f32(dset, i0, n, per_out, y, &err)) {
            ct_error_prefix(&err, "%s", a.output);
            goto done;
        }
    }
    double dt = ct_now() - t0;
    H5Dclose(dset);
    dset = -1;
    if (H5Fclose(file) < 0) {
        file = -1;
        h5io_error(&err, a.output);
        goto done;
    }
    file = -1;
    if (rename(tmp, a.output) != 0) {
        ct_errorf(&err, "%s: cannot rename the finished file into place", a.output);
        goto done;
    }
    ct_info("features: %zu images, %s at %zux%zu, %.2f s (%.1f images/s) -> %s", n_images, a.model, S, S, dt,
            dt > 0 ? n_images / dt : 0.0, a.output);
    ok = 1;
done:
    if (!ok) fprintf(stderr, "ctsweep: error: %s\n", err.msg);
    if (dset >= 0) H5Dclose(dset);
    if (file >= 0) H5Fclose(file);
    if (!ok) unlink(tmp);
    free(tmp);
    if (y != x) ct_aligned_free(y);
    ct_aligned_free(x);
    backend_net_free(net);
    graph_free(&g);
    return ok ? CT_EXIT_OK : CT_EXIT_ERROR;
}
