/*
 * train_driver.c — runs ctsweep's learning-rate schedules and head training
 * steps on inputs written by check_training.py, which compares the outputs
 * with torch.optim.Adam + CyclicLR.
 *
 * usage: train_driver auc IN.h5 OUT.h5    (p, y -> auc)
 *        train_driver lr IN.h5 OUT.h5     (attrs: mode base_lr max_lr step_size gamma total)
 *        train_driver steps IN.h5 OUT.h5  (x, y, order, params + attrs, see check_training.py)
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "train/adam.h"
#include "train/clr.h"
#include "train/head.h"
#include "train/metrics.h"

static double attr_f64(hid_t f, const char *name) {
    double v = 0;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0 || H5Aread(a, H5T_NATIVE_DOUBLE, &v) < 0) {
        fprintf(stderr, "train_driver: attribute %s missing\n", name);
        exit(2);
    }
    H5Aclose(a);
    return v;
}

static void attr_str(hid_t f, const char *name, char *buf, size_t n) {
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    char *s = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (a < 0 || H5Aread(a, mt, &s) < 0) {
        fprintf(stderr, "train_driver: attribute %s missing\n", name);
        exit(2);
    }
    snprintf(buf, n, "%s", s);
    H5free_memory(s);
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
}

static void *read_all(hid_t f, const char *name, hid_t type, size_t elem, size_t *count) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) {
        fprintf(stderr, "train_driver: dataset %s missing\n", name);
        exit(2);
    }
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    void *buf = malloc((size_t)n * elem + 1);
    H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Sclose(s);
    H5Dclose(d);
    *count = (size_t)n;
    return buf;
}

static void write_all(hid_t f, const char *name, hid_t type, const void *buf, size_t n) {
    hsize_t dims[1] = {n};
    hid_t s = H5Screate_simple(1, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Dclose(d);
    H5Sclose(s);
}

static void read_clr(hid_t f, ClrSpec *c) {
    char mode[32];
    attr_str(f, "mode", mode, sizeof mode);
    memset(c, 0, sizeof *c);
    if (clr_mode_parse(mode, &c->mode)) {
        fprintf(stderr, "train_driver: bad mode %s\n", mode);
        exit(2);
    }
    c->base_lr = attr_f64(f, "base_lr");
    c->max_lr = attr_f64(f, "max_lr");
    c->step_size = attr_f64(f, "step_size");
    c->gamma = attr_f64(f, "gamma");
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "isa") == 0) {
        printf("%s\n", backend_cpu_isa());
        return 0;
    }
    if (argc != 4) {
        fprintf(stderr, "usage: train_driver lr|steps IN.h5 OUT.h5\n");
        return 2;
    }
    hid_t in = H5Fopen(argv[2], H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t out = H5Fcreate(argv[3], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (in < 0 || out < 0) {
        fprintf(stderr, "train_driver: cannot open files\n");
        return 2;
    }
    CtError err;
    if (strcmp(argv[1], "auc") == 0) {
        size_t n, ny;
        float *p = read_all(in, "p", H5T_NATIVE_FLOAT, sizeof(float), &n);
        uint8_t *y = read_all(in, "y", H5T_NATIVE_UINT8, 1, &ny);
        double auc = metrics_auc(p, y, n);
        write_all(out, "auc", H5T_NATIVE_DOUBLE, &auc, 1);
        free(p), free(y);
        H5Fclose(in);
        H5Fclose(out);
        return 0;
    }
    ClrSpec clr;
    read_clr(in, &clr);
    if (strcmp(argv[1], "lr") == 0) {
        size_t total = (size_t)attr_f64(in, "total");
        double *lr = malloc(total * sizeof *lr);
        for (size_t i = 0; i < total; i++) lr[i] = clr_lr_at(&clr, i, total);
        write_all(out, "lr", H5T_NATIVE_DOUBLE, lr, total);
        free(lr);
    } else {
        size_t nx, ny, norder, np, nh;
        float *x = read_all(in, "x", H5T_NATIVE_FLOAT, sizeof(float), &nx);
        uint8_t *y = read_all(in, "y", H5T_NATIVE_UINT8, 1, &ny);
        int32_t *order = read_all(in, "order", H5T_NATIVE_INT32, sizeof(int32_t), &norder);
        float *p0 = read_all(in, "params", H5T_NATIVE_FLOAT, sizeof(float), &np);
        int32_t *hidden = read_all(in, "hidden", H5T_NATIVE_INT32, sizeof(int32_t), &nh);
        size_t D = (size_t)attr_f64(in, "dim"), B = (size_t)attr_f64(in, "batch"), steps = norder / B;
        HeadSpec hs = {0};
        hs.in_dim = D;
        hs.n_hidden = nh;
        for (size_t i = 0; i < nh; i++) hs.hidden[i] = (size_t)hidden[i];
        hs.dropout = 0;
        AdamSpec as;
        adam_spec_default(&as);
        as.weight_decay = attr_f64(in, "weight_decay");
        as.kind = attr_f64(in, "adamw") != 0 ? OPT_ADAMW : OPT_ADAM;
        Head h;
        AdamState a;
        if (head_init(&h, &hs, B, &err) || adam_init(&a, &as, h.n_params) || h.n_params != np) {
            fprintf(stderr, "train_driver: setup failed (%s), params %zu vs %zu\n", err.msg, h.n_params, np);
            return 1;
        }
        memcpy(h.params, p0, np * sizeof(float));
        float *xb = malloc(B * D * sizeof(float));
        uint8_t *yb = malloc(B);
        double *loss = malloc(steps * sizeof *loss);
        for (size_t s = 0; s < steps; s++) {
            for (size_t k = 0; k < B; k++) {
                memcpy(xb + k * D, x + (size_t)order[s * B + k] * D, D * sizeof(float));
                yb[k] = y[order[s * B + k]];
            }
            head_forward(&h, xb, B, 1, 0, s);
            head_zero_grads(&h);
            loss[s] = head_loss_backward(&h, yb, B, NULL, 1);
            adam_step(&a, h.params, h.grads, clr_lr_at(&clr, s, steps));
        }
        write_all(out, "loss", H5T_NATIVE_DOUBLE, loss, steps);
        write_all(out, "params", H5T_NATIVE_FLOAT, h.params, np);
        (void)nx;
        (void)ny;
        free(x), free(y), free(order), free(p0), free(hidden), free(xb), free(yb), free(loss);
        head_free(&h);
        adam_free(&a);
    }
    H5Fclose(in);
    H5Fclose(out);
    return 0;
}
