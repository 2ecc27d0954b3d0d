/*
 * tail_driver.c — runs the trainable tail on inputs written by
 * check_tail.py, which compares its gradients and Adam steps with PyTorch
 * autograd and torch.optim.Adam.
 *
 * usage: tail_driver grads IN.h5 OUT.h5   one forward + backward
 *        tail_driver steps IN.h5 OUT.h5   Adam steps over batches
 * IN.h5 attributes: model, weights (safetensors with the tail and
 * head.<i>.* tensors), size (input px), unfreeze, batch, and for steps
 * lr_tail, lr_head, weight_decay, adamw, optionally conv_algo (direct when absent); datasets x (rows, cut numel) float32,
 * y (rows) uint8, hidden (int32), and for steps order (steps * batch) int32.
 * OUT.h5: grads: loss, logits, dx and one dataset per parameter gradient;
 * steps: loss (steps) and one dataset per parameter after the last step.
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "nn/models.h"
#include "train/adam.h"
#include "train/tail.h"

static void die(const char *what) {
    fprintf(stderr, "tail_driver: %s\n", what);
    exit(2);
}

static double attr_f64(hid_t f, const char *name) {
    double v = 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) die(name);
    H5Aclose(a);
    return v;
}

static void attr_str(hid_t f, const char *name, char *buf, size_t n) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0) die(name);
    hid_t t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    char *s = NULL;
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, &s) < 0) die(name);
    snprintf(buf, n, "%s", s);
    H5free_memory(s);
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
}

static void *read_all(hid_t f, const char *name, hid_t type, size_t elem, size_t *count) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) die(name);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    void *buf = malloc((size_t)n * elem + 1);
    if (H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) die(name);
    H5Sclose(s);
    H5Dclose(d);
    *count = (size_t)n;
    return buf;
}

static void write_all(hid_t f, const char *name, hid_t type, const void *buf, size_t n) {
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) die(name);
    H5Dclose(d);
    H5Sclose(s);
}

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "grads") != 0 && strcmp(argv[1], "steps") != 0))
        die("usage: tail_driver grads|steps IN.h5 OUT.h5");
    int steps_mode = strcmp(argv[1], "steps") == 0;
    hid_t in = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (in < 0) die(argv[2]);
    char model[32], weights[1024];
    attr_str(in, "model", model, sizeof model);
    attr_str(in, "weights", weights, sizeof weights);
    size_t size = (size_t)attr_f64(in, "size"), B = (size_t)attr_f64(in, "batch");
    int unfreeze = (int)attr_f64(in, "unfreeze");
    char algo_name[16] = "direct";  // optional attribute conv_algo: direct (default), auto, winograd
    if (H5Aexists(in, "conv_algo") > 0) attr_str(in, "conv_algo", algo_name, sizeof algo_name);
    ConvAlgo algo;
    if (conv_algo_parse(algo_name, &algo)) die("conv_algo");
    size_t nx, ny, nh;
    float *x = read_all(in, "x", H5T_NATIVE_FLOAT, sizeof(float), &nx);
    uint8_t *y = read_all(in, "y", H5T_NATIVE_UINT8, 1, &ny);
    int32_t *hidden = read_all(in, "hidden", H5T_NATIVE_INT32, sizeof(int32_t), &nh);

    CtError err = {{0}};
    NNGraph g;
    size_t cut;
    Tail t;
    HeadSpec hs = {0};
    hs.n_hidden = nh;
    for (size_t i = 0; i < nh; i++) hs.hidden[i] = (size_t)hidden[i];
    const BackendOps *ops = backend_ops_get(BACKEND_CPU, &err);
    if (!ops || model_build(&g, model, &err) || model_cut_layer(&g, unfreeze, &cut, &err) ||
        tail_init(&t, ops, &g, cut, &hs, B, size, size, algo, &err) || tail_load_safetensors(&t, &g, weights, &err)) {
        fprintf(stderr, "tail_driver: %s\n", err.msg);
        return 1;
    }
    if (nx != ny * t.in_numel) die("x does not match the cut's shape");
    fprintf(stderr, "tail_driver: %s unfreeze %d at %zu px: cut at layer %zu, input (%zu, %zu, %zu), %zu tail "
                    "layers, %zu parameters (%zu in the tail), %.1f MiB parameters + %.1f MiB activations\n",
            model, unfreeze, size, cut, t.in_shape.c, t.in_shape.h, t.in_shape.w, t.n_layers, t.n_params,
            t.n_tail_params, t.param_bytes / 1048576.0, t.work_bytes / 1048576.0);

    hid_t out = H5Fcreate(argv[3], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (out < 0) die(argv[3]);
    if (!steps_mode) {
        size_t n = ny;
        if (n > B) die("more rows than the batch");
        const float *logits = tail_forward(&t, x, n, 0, 0, 0, &err);
        tail_zero_grads(&t);
        double loss = logits ? tail_backward(&t, y, n, NULL, &err) / (double)n : -1;
        if (!logits || loss < 0) {
            fprintf(stderr, "tail_driver: %s\n", err.msg);
            return 1;
        }
        write_all(out, "loss", H5T_NATIVE_DOUBLE, &loss, 1);
        write_all(out, "logits", H5T_NATIVE_FLOAT, logits, 2 * n);
        write_all(out, "dx", H5T_NATIVE_FLOAT, t.dx, n * t.in_numel);
        for (size_t i = 0; i < t.n_tensors; i++)
            write_all(out, t.tensors[i].name, H5T_NATIVE_FLOAT, t.tensors[i].grad, t.tensors[i].numel);
    } else {
        size_t norder;
        int32_t *order = read_all(in, "order", H5T_NATIVE_INT32, sizeof(int32_t), &norder);
        size_t steps = norder / B;
        AdamSpec as;
        adam_spec_default(&as);
        as.weight_decay = attr_f64(in, "weight_decay");
        as.kind = attr_f64(in, "adamw") != 0 ? OPT_ADAMW : OPT_ADAM;
        double lr_tail = attr_f64(in, "lr_tail"), lr_head = attr_f64(in, "lr_head");
        float *xb = malloc(B * t.in_numel * sizeof(float));
        uint8_t *yb = malloc(B);
        double *loss = malloc(steps * sizeof *loss);
        for (size_t s = 0; s < steps; s++) {
            for (size_t k = 0; k < B; k++) {
                size_t r = (size_t)order[s * B + k];
                memcpy(xb + k * t.in_numel, x + r * t.in_numel, t.in_numel * sizeof(float));
                yb[k] = y[r];
            }
            tail_zero_grads(&t);
            if (!tail_forward(&t, xb, B, 1, 0, s, &err) || (loss[s] = tail_backward(&t, yb, B, NULL, &err)) < 0) {
                fprintf(stderr, "tail_driver: %s\n", err.msg);
                return 1;
            }
            loss[s] /= (double)B;
            tail_adam_step(&t, &as, lr_tail, lr_head);
        }
        write_all(out, "loss", H5T_NATIVE_DOUBLE, loss, steps);
        for (size_t i = 0; i < t.n_tensors; i++)
            write_all(out, t.tensors[i].name, H5T_NATIVE_FLOAT, t.tensors[i].param, t.tensors[i].numel);
        free(order), free(xb), free(yb), free(loss);
    }
    H5Fclose(out);
    H5Fclose(in);
    tail_free(&t);
    graph_free(&g);
    free(x), free(y), free(hidden);
    return 0;
}
