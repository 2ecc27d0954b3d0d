/*
 * cmd_status.c — `ctsweep status OUTDIR`: the trial table of a sweep, while
 * it runs (the manifest is replaced atomically, so a reader never sees a
 * half-written one) and after.
 */
#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "results/h5io.h"
#include "results/outdir_lock.h"
#include "results/selection.h"

typedef struct {
    char id[17], model[16], clr_mode[16], status[8];
    int64_t batch_size, epochs, epochs_done, selected_epoch, fold, unfreeze;
    double best_val_acc, test_acc, test_auc;
} Row;

static void str_member(hid_t t, const char *name, size_t off, size_t n) {
    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, n);
    H5Tinsert(t, name, off, s);
    H5Tclose(s);
}

static void fmt_metric(char *buf, size_t n, double v) {
    if (v < 0 || isnan(v)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.3f", v);
}

int cmd_status(int argc, char **argv) {
    if (argc != 2 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc == 2 ? stdout : stderr, "usage: ctsweep status OUTDIR\n");
        return argc == 2 ? CT_EXIT_OK : CT_EXIT_USAGE;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/sweep.h5", argv[1]);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    CtError err = {{0}};
    if (f < 0) {
        h5io_error(&err, path);
        fprintf(stderr, "ctsweep: error: %s\n", err.msg);
        return CT_EXIT_ERROR;
    }
    hid_t d = H5Dopen2(f, "trials", H5P_DEFAULT);
    if (d < 0) {
        fprintf(stderr, "ctsweep: error: %s: no /trials table\n", path);
        H5Fclose(f);
        return CT_EXIT_ERROR;
    }
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(Row));
    str_member(t, "trial_id", HOFFSET(Row, id), sizeof((Row *)0)->id);
    str_member(t, "model", HOFFSET(Row, model), sizeof((Row *)0)->model);
    str_member(t, "clr_mode", HOFFSET(Row, clr_mode), sizeof((Row *)0)->clr_mode);
    str_member(t, "status", HOFFSET(Row, status), sizeof((Row *)0)->status);
    H5Tinsert(t, "batch_size", HOFFSET(Row, batch_size), H5T_NATIVE_INT64);
    H5Tinsert(t, "epochs", HOFFSET(Row, epochs), H5T_NATIVE_INT64);
    H5Tinsert(t, "epochs_done", HOFFSET(Row, epochs_done), H5T_NATIVE_INT64);
    H5Tinsert(t, "best_val_acc", HOFFSET(Row, best_val_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_acc", HOFFSET(Row, test_acc), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_auc", HOFFSET(Row, test_auc), H5T_NATIVE_DOUBLE);
    // Version 2 manifests add the selected epoch and the fold.
    hid_t ft = H5Dget_type(d);
    int has_selected = ft >= 0 && H5Tget_member_index(ft, "selected_epoch") >= 0;
    int has_fold = ft >= 0 && H5Tget_member_index(ft, "fold") >= 0;
    int has_unfreeze = ft >= 0 && H5Tget_member_index(ft, "unfreeze") >= 0;
    if (ft >= 0) H5Tclose(ft);
    if (has_selected) H5Tinsert(t, "selected_epoch", HOFFSET(Row, selected_epoch), H5T_NATIVE_INT64);
    if (has_fold) H5Tinsert(t, "fold", HOFFSET(Row, fold), H5T_NATIVE_INT64);
    if (has_unfreeze) H5Tinsert(t, "unfreeze", HOFFSET(Row, unfreeze), H5T_NATIVE_INT64);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    Row *rows = calloc(n > 0 ? (size_t)n : 1, sizeof *rows);
    int rc = CT_EXIT_OK;
    if (n > 0 && H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        h5io_error(&err, path);
        fprintf(stderr, "ctsweep: error: %s\n", err.msg);
        rc = CT_EXIT_ERROR;
    } else {
        size_t count[4] = {0};
        int folds = 0, tails = 0;
        for (hssize_t i = 0; has_fold && i < n; i++) folds |= rows[i].fold >= 0;
        for (hssize_t i = 0; has_unfreeze && i < n; i++) tails |= rows[i].unfreeze > 0;
        printf("%-16s  %-8s %s%5s  %-11s %6s  %s%-7s %5s  %8s %3s %8s %6s\n", "trial", "model",
               tails ? "unfreeze " : "", "batch", "schedule", "epochs", folds ? "fold  " : "", "status", "epoch",
               "best val", "sel", "test acc", "auc");
        for (hssize_t i = 0; i < n; i++) {
            Row *r = &rows[i];
            char bv[16], ta[16], au[16], sel[24] = "-", fold[24] = "", unfreeze[24] = "";
            fmt_metric(bv, sizeof bv, r->best_val_acc);
            fmt_metric(ta, sizeof ta, r->test_acc);
            fmt_metric(au, sizeof au, r->test_auc);
            if (has_selected && r->selected_epoch > 0) snprintf(sel, sizeof sel, "%lld", (long long)r->selected_epoch);
            if (folds) snprintf(fold, sizeof fold, "%4lld  ", (long long)r->fold);
            if (tails) snprintf(unfreeze, sizeof unfreeze, "%8lld ", (long long)r->unfreeze);
            printf("%-16.16s  %-8.16s %s%5lld  %-11.16s %6lld  %s%-7.8s %5lld  %8s %3s %8s %6s\n", r->id, r->model,
                   unfreeze, (long long)r->batch_size, r->clr_mode, (long long)r->epochs, fold, r->status,
                   (long long)r->epochs_done, bv, sel, ta, au);
            const char *st[4] = {"pending", "running", "done", "failed"};
            for (int k = 0; k < 4; k++)
                if (strncmp(r->status, st[k], 8) == 0) count[k]++;
        }
        char state[32], updated[32];
        if (h5io_read_attr_text(f, "state", state, sizeof state)) snprintf(state, sizeof state, "state unreadable");
        if (h5io_read_attr_text(f, "updated_utc", updated, sizeof updated)) snprintf(updated, sizeof updated, "?");
        // A manifest that says running while no process holds the lock was
        // left by a run that was killed: resume it.
        char holder[400] = "";
        if (strcmp(state, "running") == 0 && !outdir_lock_held(argv[1], holder, sizeof holder))
            snprintf(state, sizeof state, "stopped (killed?)");
        if (has_selected)
            printf("sel: the selected epoch (%s); test acc and auc are at that epoch\n", SELECTION_RULE);
        else
            printf("test acc and auc are at each trial's final epoch (a schema version 1 sweep)\n");
        printf("%lld trials: %zu done, %zu running, %zu pending, %zu failed; sweep %s (updated %s)\n", (long long)n,
               count[2], count[1], count[0], count[3], state, updated);
        if (strcmp(state, "running") == 0 && holder[0]) printf("held by %s\n", holder);
        if (strncmp(state, "stopped", 7) == 0)
            printf("no ctsweep run holds %s/.lock: run the sweep again with --resume to finish it\n", argv[1]);
    }
    free(rows);
    H5Sclose(s);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    return rc;
}
