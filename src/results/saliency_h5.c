/*
 * saliency_h5.c — the Grad-CAM file of saliency_h5.h: an extendible,
 * chunked /cam dataset grown by each batch.
 */
#include "results/saliency_h5.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/h5io.h"

int saliency_h5_create(SaliencyH5 *s, const char *dir, size_t h, size_t w, const char *model, CtError *err) {
    memset(s, 0, sizeof *s);
    s->file = s->cam = -1;
    s->h = h, s->w = w;
    s->path = ct_asprintf("%s/saliency.h5", dir);
    s->tmp = ct_asprintf("%s.tmp.%ld", s->path, (long)getpid());
    hsize_t dims[3] = {0, h, w}, maxd[3] = {H5S_UNLIMITED, h, w}, chunk[3] = {1, h, w};
    hid_t space = -1, dcpl = -1;
    s->file = H5Fcreate(s->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (s->file < 0) return h5io_error(err, s->tmp);
    h5_try(space = H5Screate_simple(3, dims, maxd), s->path);
    h5_try(dcpl = H5Pcreate(H5P_DATASET_CREATE), s->path);
    h5_try(H5Pset_chunk(dcpl, 3, chunk), s->path);
    h5_try(s->cam = H5Dcreate2(s->file, "cam", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), s->path);
    H5Sclose(space);
    H5Pclose(dcpl);
    if (h5io_attr_str(s->file, "model", model, err) ||
        h5io_attr_str(s->file, "method", "Grad-CAM of the positive logit (Selvaraju et al. 2017)", err) ||
        h5io_attr_str(s->file, "software_version", CTSWEEP_VERSION, err))
        return -1;
    return 0;
fail:
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return -1;
}

int saliency_h5_append(SaliencyH5 *s, const float *cam, size_t n, CtError *err) {
    if (n == 0) return 0;
    hsize_t size[3] = {s->rows + n, s->h, s->w}, start[3] = {s->rows, 0, 0}, count[3] = {n, s->h, s->w};
    hid_t fs = -1, ms = -1;
    h5_try(H5Dset_extent(s->cam, size), s->path);
    h5_try(fs = H5Dget_space(s->cam), s->path);
    h5_try(H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL), s->path);
    h5_try(ms = H5Screate_simple(3, count, NULL), s->path);
    h5_try(H5Dwrite(s->cam, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, cam), s->path);
    H5Sclose(ms);
    H5Sclose(fs);
    s->rows += n;
    return 0;
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return -1;
}

int saliency_h5_finish(SaliencyH5 *s, const char *const *paths, size_t n, CtError *err) {
    if (n != s->rows) fatal("saliency_h5_finish: %zu paths for %zu rows", n, s->rows);
    if (h5io_write_strings(s->file, "paths", paths, n, err)) return -1;
    H5Dclose(s->cam);
    s->cam = -1;
    hid_t f = s->file;
    s->file = -1;
    if (h5io_close_and_rename(f, s->tmp, s->path, 0, err)) {
        unlink(s->tmp);
        return -1;
    }
    free(s->tmp);
    s->tmp = NULL;
    return 0;
}

void saliency_h5_abort(SaliencyH5 *s) {
    if (s->cam >= 0) H5Dclose(s->cam);
    if (s->file >= 0) H5Fclose(s->file);
    if (s->tmp) unlink(s->tmp);
    free(s->tmp);
    free(s->path);
    memset(s, 0, sizeof *s);
    s->file = s->cam = -1;
}
