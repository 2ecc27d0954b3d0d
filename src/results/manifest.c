/*
 * manifest.c — writing sweep.h5 (see manifest.h).
 */
#include "results/manifest.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "results/h5io.h"
#include "results/id_format.h"

typedef struct {
    char trial_id[TRIAL_ID_HEX + 1];
    char model[16];
    int64_t batch_size, epochs;
    char clr_mode[16];
    double base_lr, max_lr, step_size, step_size_epochs, gamma, step_size_down;
    int64_t seed, fold, unfreeze;
    char status[8];
    const char *error;
    int64_t best_epoch, selected_epoch;
    double best_val_acc, test_acc, test_auc, wall_seconds;
    char host[64], device[64];
    int64_t epochs_done, rank, forwards, cache_hits;
} TrialRow;

static hid_t fixed_str(size_t n) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    return t;
}

static hid_t row_type(void) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(TrialRow));
    hid_t s17 = fixed_str(TRIAL_ID_HEX + 1), s16 = fixed_str(16), s8 = fixed_str(8), s64 = fixed_str(64);
    hid_t vs = H5Tcopy(H5T_C_S1);
    H5Tset_size(vs, H5T_VARIABLE);
    H5Tset_cset(vs, H5T_CSET_UTF8);
    H5Tinsert(t, "trial_id", HOFFSET(TrialRow, trial_id), s17);
    H5Tinsert(t, "model", HOFFSET(TrialRow, model), s16);
    H5Tinsert(t, "batch_size", HOFFSET(TrialRow, batch_size), H5T_NATIVE_INT64);
    H5Tinsert(t, "epochs", HOFFSET(TrialRow, epochs), H5T_NATIVE_INT64);
    H5Tinsert(t, "clr_mode", HOFFSET(TrialRow, clr_mode), s16);
    H5Tinsert(t, "base_lr", HOFFSET(TrialRow, base_lr), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "max_lr", HOFFSET(TrialRow, max_lr), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "step_size", HOFFSET(TrialRow, step_size), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "step_size_epochs", HOFFSET(TrialRow, step_size_epochs), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "step_size_down", HOFFSET(TrialRow, step_size_down), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "gamma", HOFFSET(TrialRow, gamma), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "seed", HOFFSET(TrialRow, seed), H5T_NATIVE_INT64);
    H5Tinsert(t, "fold", HOFFSET(TrialRow, fold), H5T_NATIVE_INT64);
    H5Tinsert(t, "unfreeze", HOFFSET(TrialRow, unfreeze), H5T_NATIVE_INT64);
    H5Tinsert(t, "status", HOFFSET(TrialRow, status), s8);
    H5Tinsert(t, "error", HOFFSET(TrialRow, error), vs);
    H5Tinsert(t, "best_epoch", HOFFSET(TrialRow, best_epoch), H5T_NATIVE_INT64);
    H5Tinsert(t, "best_val_acc", HOFFSET(TrialRow, best_val_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "selected_epoch", HOFFSET(TrialRow, selected_epoch), H5T_NATIVE_INT64);
    H5Tinsert(t, "test_acc", HOFFSET(TrialRow, test_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_auc", HOFFSET(TrialRow, test_auc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "wall_seconds", HOFFSET(TrialRow, wall_seconds), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "host", HOFFSET(TrialRow, host), s64);
    H5Tinsert(t, "device", HOFFSET(TrialRow, device), s64);
    H5Tinsert(t, "epochs_done", HOFFSET(TrialRow, epochs_done), H5T_NATIVE_INT64);
    H5Tinsert(t, "rank", HOFFSET(TrialRow, rank), H5T_NATIVE_INT64);
    H5Tinsert(t, "forwards", HOFFSET(TrialRow, forwards), H5T_NATIVE_INT64);
    H5Tinsert(t, "cache_hits", HOFFSET(TrialRow, cache_hits), H5T_NATIVE_INT64);
    H5Tclose(s17);
    H5Tclose(s16);
    H5Tclose(s8);
    H5Tclose(s64);
    H5Tclose(vs);
    return t;
}

void manifest_utc_now(char *buf, size_t n) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_u8(hid_t loc, const char *name, const uint8_t *v, size_t n, CtError *err) {
    hsize_t dims[1] = {n};
    return h5io_write_array(loc, name, H5T_NATIVE_UINT8, H5T_STD_U8LE, 1, dims, v, err);
}

static int write_dataset_group(hid_t f, const DataSet *ds, CtError *err) {
    hid_t g = -1;
    int rc = -1;
    const char **paths = ct_calloc(ds->n ? ds->n : 1, sizeof *paths), **group = ct_calloc(ds->n ? ds->n : 1, sizeof *group);
    uint8_t *label = ct_calloc(ds->n ? ds->n : 1, 1), *split = ct_calloc(ds->n ? ds->n : 1, 1);
    int32_t *fold = ct_calloc(ds->n ? ds->n : 1, sizeof *fold);
    for (size_t i = 0; i < ds->n; i++) {
        paths[i] = ds->items[i].path;
        group[i] = ds->items[i].group ? ds->items[i].group : ds->items[i].rel;
        fold[i] = ds->items[i].fold;
        label[i] = ds->items[i].label != 0;
        split[i] = (uint8_t)ds->items[i].split;
    }
    h5_try(g = H5Gcreate2(f, "dataset", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "dataset");
    if (h5io_attr_str(g, "root", ds->root, err) || h5io_write_strings(g, "path", paths, ds->n, err) ||
        write_u8(g, "label", label, ds->n, err) || write_u8(g, "split", split, ds->n, err) ||
        h5io_write_strings(g, "group", group, ds->n, err) ||
        h5io_write_array(g, "fold", H5T_NATIVE_INT32, H5T_STD_I32LE, 1, (hsize_t[1]){ds->n}, fold, err) ||
        h5io_write_strings(g, "skipped", (const char *const *)ds->skipped, ds->n_skipped, err))
        goto fail;
    rc = 0;
fail:
    if (g >= 0) H5Gclose(g);
    free(paths);
    free(group);
    free(fold);
    free(label);
    free(split);
    return rc;
}

static int write_trials(hid_t f, const ManifestView *m, CtError *err) {
    const Grid *gr = m->grid;
    TrialRow *rows = ct_calloc(gr->n_trials ? gr->n_trials : 1, sizeof *rows);
    for (size_t i = 0; i < gr->n_trials; i++) {
        const GridTrial *t = &gr->trials[i];
        const TrialRecord *r = &m->records[i];
        TrialRow *w = &rows[i];
        snprintf(w->trial_id, sizeof w->trial_id, "%s", t->id);
        snprintf(w->model, sizeof w->model, "%.15s", t->model);
        w->batch_size = (int64_t)t->batch_size;
        w->epochs = (int64_t)t->epochs;
        snprintf(w->clr_mode, sizeof w->clr_mode, "%.15s", clr_mode_name(t->clr.mode));
        w->base_lr = t->clr.base_lr;
        w->max_lr = t->clr.max_lr;
        w->step_size = t->clr.step_size;
        w->step_size_epochs = t->clr.step_size_epochs;
        w->step_size_down = t->clr.step_size_down;
        w->gamma = t->clr.gamma;
        w->seed = (int64_t)t->seed;
        w->fold = t->fold;
        w->unfreeze = t->unfreeze;
        snprintf(w->status, sizeof w->status, "%s", trial_status_name(r->status));
        w->error = r->error;
        w->best_epoch = (int64_t)r->best_epoch;
        w->best_val_acc = r->best_val_acc;
        w->selected_epoch = (int64_t)r->selected_epoch;
        w->test_acc = r->test_acc;
        w->test_auc = r->test_auc;
        w->wall_seconds = r->wall_seconds;
        snprintf(w->host, sizeof w->host, "%s", r->host);
        snprintf(w->device, sizeof w->device, "%s", r->device);
        w->epochs_done = (int64_t)r->epochs_done;
        w->rank = r->rank;
        w->forwards = (int64_t)r->forwards;
        w->cache_hits = (int64_t)r->cache_hits;
    }
    hid_t t = row_type(), s = -1, d = -1, g = -1;
    int rc = -1;
    hsize_t dims[1] = {gr->n_trials};
    h5_try(s = H5Screate_simple(1, dims, NULL), "trials");
    h5_try(d = H5Dcreate2(f, "trials", t, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "trials");
    if (gr->n_trials) h5_try(H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows), "trials");
    h5_try(g = H5Gcreate2(f, "trial", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), "trial");
    for (size_t i = 0; i < gr->n_trials; i++) {
        char target[64];
        snprintf(target, sizeof target, "trials/%s.h5", gr->trials[i].id);
        h5_try(H5Lcreate_external(target, "/", g, gr->trials[i].id, H5P_DEFAULT, H5P_DEFAULT), "trial link");
    }
    rc = 0;
fail:
    if (g >= 0) H5Gclose(g);
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    H5Tclose(t);
    free(rows);
    return rc;
}

int manifest_write(const char *outdir, const ManifestView *m, CtError *err) {
    char *path = ct_asprintf("%s/sweep.h5", outdir), *tmp = ct_asprintf("%s/sweep.h5.tmp", outdir);
    hid_t f = -1;
    int rc = -1;
    char now[32];
    manifest_utc_now(now, sizeof now);
    h5_try(f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), tmp);
    if (h5io_attr_i64(f, "schema_version", MANIFEST_SCHEMA_VERSION, err) ||
        h5io_attr_str(f, "config_yaml", m->cfg->yaml ? m->cfg->yaml : "", err) ||
        h5io_attr_str(f, "config_path", m->cfg->path, err) || h5io_attr_str(f, "created_utc", m->created_utc, err) ||
        h5io_attr_str(f, "updated_utc", now, err) || h5io_attr_str(f, "software_version", CTSWEEP_VERSION, err) ||
        h5io_attr_str(f, "dataset_fingerprint", m->ds->fingerprint, err) || h5io_attr_str(f, "state", m->state, err) ||
        write_dataset_group(f, m->ds, err) || write_trials(f, m, err))
        goto fail;
    char slice[48];
    grid_slice_label(m->grid, slice, sizeof slice);
    if (slice[0] && h5io_attr_str(f, "slice", slice, err)) goto fail;
    if (m->merged_from && h5io_attr_str(f, "merged_from", m->merged_from, err)) goto fail;
    if (id_format_write(f, m->grid, err)) goto fail;
    hid_t closing = f;
    f = -1;
    if (h5io_close_and_rename(closing, tmp, path, 1, err)) goto fail;
    rc = 0;
fail:
    if (f >= 0) H5Fclose(f);
    if (rc) unlink(tmp);
    free(path);
    free(tmp);
    return rc;
}
