/*
 * trial_file.c — writing and reading trial files (see trial_file.h).
 */
#include "results/trial_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/h5io.h"

// 2: /test/prob [epochs, n_test] (every epoch), fold, selected_epoch,
// unfreeze, backbone_lr_scale, cache_bytes_per_image.
#define SCHEMA_VERSION 2

static hid_t epoch_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(EpochRecord));
    H5Tinsert(t, "epoch", HOFFSET(EpochRecord, epoch), H5T_NATIVE_UINT64);
    H5Tinsert(t, "lr", HOFFSET(EpochRecord, lr), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "train_loss", HOFFSET(EpochRecord, train_loss), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "train_acc", HOFFSET(EpochRecord, train_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "val_loss", HOFFSET(EpochRecord, val_loss), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "val_acc", HOFFSET(EpochRecord, val_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "val_auc", HOFFSET(EpochRecord, val_auc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "seconds", HOFFSET(EpochRecord, seconds), H5T_NATIVE_DOUBLE);
    return t;
}

// A done trial's kept weights: those received for it, else those its
// previous file holds (a done trial's file is rewritten when its run ends).
static int write_model(hid_t f, const TrialRecord *r, const char *path, CtError *err) {
    hid_t old = -1;
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        int kind = k == 0 ? KEEP_SELECTED : KEEP_FINAL;
        if (r->kept[k]) {
            rc = kept_weights_write_h5(f, r->kept[k], err);
            continue;
        }
        if (old < 0 && access(path, F_OK) == 0) old = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        char name[32];
        snprintf(name, sizeof name, "model/%s", keep_kind_name(kind));
        if (old < 0 || H5Lexists(old, "model", H5P_DEFAULT) <= 0 || H5Lexists(old, name, H5P_DEFAULT) <= 0) continue;
        if (H5Lexists(f, "model", H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g < 0) rc = h5io_error(err, "model");
            else H5Gclose(g);
        }
        if (rc == 0 && H5Ocopy(old, name, f, name, H5P_DEFAULT, H5P_DEFAULT) < 0) rc = h5io_error(err, name);
    }
    if (old >= 0) H5Fclose(old);
    H5Eclear2(H5E_DEFAULT);
    return rc;
}

int trial_file_write(const char *path, const GridTrial *t, const TrialRecord *r, const int64_t *val_index,
                     const int64_t *test_index, const CheckpointRef *ckpt, CtError *err) {
    char *tmp = ct_asprintf("%s.tmp", path);
    hid_t f = -1, g = -1, et = -1;
    int rc = -1;
    h5_try(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp);
    if (h5io_attr_str(f, "trial_id", t->id, err) || h5io_attr_str(f, "model", t->model, err) ||
        h5io_attr_i64(f, "batch_size", (long long)t->batch_size, err) ||
        h5io_attr_i64(f, "epochs", (long long)t->epochs, err) ||
        h5io_attr_str(f, "clr_mode", clr_mode_name(t->clr.mode), err) ||
        h5io_attr_f64(f, "base_lr", t->clr.base_lr, err) || h5io_attr_f64(f, "max_lr", t->clr.max_lr, err) ||
        h5io_attr_f64(f, "step_size", t->clr.step_size, err) ||
        h5io_attr_f64(f, "step_size_epochs", t->clr.step_size_epochs, err) ||
        h5io_attr_f64(f, "step_size_down", t->clr.step_size_down, err) ||
        h5io_attr_f64(f, "gamma", t->clr.gamma, err) || h5io_attr_i64(f, "seed", (long long)t->seed, err) ||
        h5io_attr_str(f, "status", trial_status_name(r->status), err) || h5io_attr_str(f, "error", r->error, err) ||
        h5io_attr_i64(f, "fold", t->fold, err) || h5io_attr_i64(f, "unfreeze", t->unfreeze, err) ||
        h5io_attr_f64(f, "backbone_lr_scale", t->backbone_lr_scale, err) ||
        h5io_attr_i64(f, "cache_bytes_per_image", (long long)t->cache_bytes_per_image, err) ||
        h5io_attr_i64(f, "best_epoch", (long long)r->best_epoch, err) ||
        h5io_attr_i64(f, "selected_epoch", (long long)r->selected_epoch, err) ||
        h5io_attr_f64(f, "best_val_acc", r->best_val_acc, err) || h5io_attr_f64(f, "test_acc", r->test_acc, err) ||
        h5io_attr_f64(f, "test_auc", r->test_auc, err) || h5io_attr_f64(f, "wall_seconds", r->wall_seconds, err) ||
        h5io_attr_str(f, "host", r->host, err) || h5io_attr_str(f, "device", r->device, err) ||
        h5io_attr_i64(f, "rank", r->rank, err) || h5io_attr_i64(f, "forwards", (long long)r->forwards, err) ||
        h5io_attr_i64(f, "cache_hits", (long long)r->cache_hits, err) ||
        h5io_attr_i64(f, "iters_per_epoch", (long long)r->iters_per_epoch, err) ||
        h5io_attr_i64(f, "schema_version", SCHEMA_VERSION, err) ||
        h5io_attr_str(f, "software_version", CTSWEEP_VERSION, err))
        goto fail;
    et = epoch_type();
    hsize_t ne[1] = {r->epochs_done};
    if (h5io_write_array(f, "epochs", et, et, 1, ne, r->epochs, err)) goto fail;
    hsize_t nl[1] = {r->epochs_done * r->iters_per_epoch};
    if (h5io_write_array(f, "lr_trace", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, 1, nl, r->lr_trace, err)) goto fail;
    h5_try(g = H5Gcreate2(f, "val", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "val");
    hsize_t vp[2] = {r->epochs_done, r->n_val}, vi[1] = {r->n_val};
    if (h5io_write_array(g, "prob", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, vp, r->val_prob, err) ||
        h5io_write_array(g, "index", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, vi, val_index, err))
        goto fail;
    H5Gclose(g);
    h5_try(g = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "test");
    hsize_t tp[2] = {r->epochs_done, r->n_test}, ti[1] = {r->n_test};
    if (h5io_write_array(g, "prob", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, tp, r->test_prob, err) ||
        h5io_write_array(g, "index", H5T_NATIVE_INT64, H5T_STD_I64LE, 1, ti, test_index, err))
        goto fail;
    H5Gclose(g);
    g = -1;
    if (ckpt && ckpt->file[0]) {
        h5_try(g = H5Gcreate2(f, "checkpoint", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "checkpoint");
        if (h5io_attr_i64(g, "epoch", (long long)ckpt->epoch, err) ||
            h5io_attr_i64(g, "iteration", (long long)ckpt->iteration, err) ||
            h5io_attr_str(g, "file", ckpt->file, err))
            goto fail;
        H5Gclose(g);
        g = -1;
    }
    H5Tclose(et);
    et = -1;
    if (r->status == TRIAL_DONE && write_model(f, r, path, err)) goto fail;
    // A rename is atomic against kills; finished and failed trials are also
    // flushed to the disk against power loss (per-epoch updates are not: they
    // are rewritten within seconds anyway).
    hid_t closing = f;
    f = -1;
    if (h5io_close_and_rename(closing, tmp, path, r->status == TRIAL_DONE || r->status == TRIAL_FAILED, err))
        goto fail;
    rc = 0;
fail:
    if (et >= 0) H5Tclose(et);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    if (rc) unlink(tmp);
    free(tmp);
    if (rc) ct_error_prefix(err, "%s", path);
    return rc;
}

// Elements of a dataset whose storage is written (-1 when missing or when
// its shape claims more than was ever stored).
static hssize_t written_npoints(hid_t f, const char *name) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
    if (n > 0 && (H5Dget_space_status(d, &status) < 0 || status != H5D_SPACE_STATUS_ALLOCATED)) n = -1;
    if (s >= 0) H5Sclose(s);
    H5Dclose(d);
    return n;
}

// Reads a dataset of exactly `expect` elements into buf.
static int read_exact(hid_t f, const char *name, hid_t mem, void *buf, hsize_t expect) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return -1;
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    int rc = n == (hssize_t)expect ? 0 : -1;
    if (rc == 0 && n > 0 && H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) rc = -1;
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

// The checkpoint a trial names lives inside OUT (the writer names
// checkpoints/<id>.h5): resume must not follow a damaged name to an
// absolute path or up through "..", where a FIFO or device could block it.
static int inside_outdir(const char *p) {
    if (p[0] == '/') return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n + (e ? 1 : 0);
    }
    return 1;
}

int trial_file_read(const char *path, TrialRecord *r, CheckpointRef *ckpt, CtError *err) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return h5io_error(err, path);
    char status[32];
    int64_t ipe = 0, best = 0;
    memset(ckpt, 0, sizeof *ckpt);
    if (h5io_read_attr_text(f, "status", status, sizeof status) || trial_status_parse(status, &r->status) ||
        h5io_read_attr_num(f, "iters_per_epoch", H5T_NATIVE_INT64, &ipe) || ipe < 0) {
        H5Fclose(f);
        return ct_errorf(err, "%s: missing or invalid attributes (status, iters_per_epoch)", path);
    }
    int64_t version = 0;
    if (h5io_read_attr_num(f, "schema_version", H5T_NATIVE_INT64, &version) || version < SCHEMA_VERSION) {
        H5Fclose(f);
        H5Eclear2(H5E_DEFAULT);
        return ct_errorf(err, "%s: schema version %lld holds test probabilities of the final epoch only", path,
                         (long long)version);
    }
    h5io_read_attr_text(f, "error", r->error, sizeof r->error);
    h5io_read_attr_num(f, "best_epoch", H5T_NATIVE_INT64, &best);
    hid_t d = H5Dopen2(f, "epochs", H5P_DEFAULT);
    hssize_t ne = -1;
    if (d >= 0) {
        hid_t s = H5Dget_space(d);
        ne = H5Sget_simple_extent_npoints(s);
        H5Sclose(s);
        H5Dclose(d);
    }
    if (ne < 0 || (size_t)ne > r->budget) {
        H5Fclose(f);
        return ct_errorf(err, "%s: /epochs missing or longer than the trial's %zu epochs", path, r->budget);
    }
    size_t n = (size_t)ne, n_lr = 0, cap = 0;
    // iters_per_epoch sizes the learning-rate buffer (the whole budget):
    // trust it only as far as /lr_trace holds that many values per epoch.
    // Without epochs it says nothing; the first new epoch sets it.
    if (n == 0) ipe = 0;
    hssize_t have_lr = written_npoints(f, "lr_trace");
    if (ct_mul_size(&n_lr, n, (size_t)ipe) || ct_mul_size(&cap, r->budget, (size_t)ipe) || have_lr < 0 ||
        (size_t)have_lr != n_lr) {
        H5Fclose(f);
        H5Eclear2(H5E_DEFAULT);
        return ct_errorf(err, "%s: /lr_trace does not hold iters_per_epoch (%lld) values per epoch", path,
                         (long long)ipe);
    }
    hid_t et = epoch_type();
    free(r->lr_trace);
    r->iters_per_epoch = (size_t)ipe;
    r->lr_trace = ipe ? ct_calloc(cap, sizeof *r->lr_trace) : NULL;
    int rc = read_exact(f, "epochs", et, r->epochs, n) ||
             read_exact(f, "lr_trace", H5T_NATIVE_DOUBLE, r->lr_trace, n_lr) ||
             read_exact(f, "val/prob", H5T_NATIVE_FLOAT, r->val_prob, n * r->n_val) ||
             read_exact(f, "test/prob", H5T_NATIVE_FLOAT, r->test_prob, n * r->n_test);
    H5Tclose(et);
    if (rc == 0 && H5Lexists(f, "checkpoint", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(f, "checkpoint", H5P_DEFAULT);
        int64_t ce = 0, ci = 0;
        if (g < 0 || h5io_read_attr_num(g, "epoch", H5T_NATIVE_INT64, &ce) ||
            h5io_read_attr_num(g, "iteration", H5T_NATIVE_INT64, &ci) || h5io_read_attr_text(g, "file", ckpt->file, sizeof ckpt->file) ||
            ce < 0 || ci < 0 || !inside_outdir(ckpt->file))
            rc = -1;
        ckpt->epoch = (size_t)ce;
        ckpt->iteration = (size_t)ci;
        if (g >= 0) H5Gclose(g);
    }
    H5Fclose(f);
    if (rc) {
        H5Eclear2(H5E_DEFAULT);
        return ct_errorf(err, "%s: datasets do not match the trial (epochs, lr_trace, val/prob, test/prob)", path);
    }
    r->epochs_done = n;
    r->best_epoch = 0;
    r->best_val_acc = -1;
    for (size_t e = 0; e < n; e++)
        if (r->epochs[e].val_acc > r->best_val_acc) {
            r->best_val_acc = r->epochs[e].val_acc;
            r->best_epoch = e + 1;
        }
    (void)best;
    return 0;
}
