/*
 * checkpoint.c — checkpoint files (see checkpoint.h).
 */
#include "results/checkpoint.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "results/h5io.h"

int checkpoint_write(const char *path, size_t epoch, size_t iteration, const void *state, size_t len, CtError *err) {
    char *tmp = ct_asprintf("%s.tmp", path);
    hid_t f = -1;
    int rc = -1;
    hsize_t dims[1] = {len};
    h5_try(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp);
    if (h5io_write_array(f, "state", H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, dims, state, err) ||
        h5io_attr_i64(f, "epoch", (long long)epoch, err) || h5io_attr_i64(f, "iteration", (long long)iteration, err))
        goto fail;
    hid_t closing = f;
    f = -1;
    if (h5io_close_and_rename(closing, tmp, path, 1, err)) goto fail;
    rc = 0;
fail:
    if (f >= 0) H5Fclose(f);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

int checkpoint_read(const char *path, size_t epoch, size_t iteration, Buf *out, CtError *err) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return h5io_error(err, path);
    int64_t e = -1, it = -1;
    int have = h5io_read_attr_num(f, "epoch", H5T_NATIVE_INT64, &e) == 0 && h5io_read_attr_num(f, "iteration", H5T_NATIVE_INT64, &it) == 0;
    int rc = -1;
    hid_t d = H5Dopen2(f, "state", H5P_DEFAULT);
    if (!have || e != (int64_t)epoch || it != (int64_t)iteration || d < 0) {
        ct_errorf(err, "%s: checkpoint is at epoch %lld iteration %lld, the trial files expect %zu/%zu", path,
                  (long long)e, (long long)it, epoch, iteration);
    } else {
        hid_t s = H5Dget_space(d);
        hssize_t n = H5Sget_simple_extent_npoints(s);
        H5Sclose(s);
        // The size comes from the file: only storage that was written is
        // read, so a shape that claims terabytes is not allocated for.
        H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
        H5Dget_space_status(d, &status);
        buf_reset(out);
        buf_put(out, NULL, 0);
        if (n > 0 && status != H5D_SPACE_STATUS_ALLOCATED) {
            ct_errorf(err, "%s: /state is not fully written", path);
        } else if (n > 0) {
            out->p = ct_realloc(out->p, (size_t)n);
            out->cap = (size_t)n;
            if (H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->p) >= 0) {
                out->n = (size_t)n;
                rc = 0;
            } else {
                h5io_error(err, path);
            }
        } else {
            ct_errorf(err, "%s: empty checkpoint", path);
        }
    }
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}
