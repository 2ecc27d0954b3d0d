/*
 * resume.c — `ctsweep run --resume`: what an earlier run of the sweep left in
 * OUTDIR (finished trials kept, unfinished runs continued from their
 * checkpoints or started again), and the check that the configuration is
 * the stored one but for new grid values. merge.c reads its sources the
 * same way.
 */
#define _GNU_SOURCE
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results/h5io.h"
#include "results/id_format.h"
#include "sweep/sweep_internal.h"

// ---- taking over OUTDIR ----

// Takes over what an earlier run of this sweep left in OUT: finished trials
// are kept; a run with a checkpoint continues from it (its trials keep their
// records up to the checkpoint); other unfinished runs start again, which
// gives the same results (training is deterministic).
void master_resume(Sweep *s, char *pending, int retry_failed) {
    for (size_t t = 0; t < s->grid.n_trials; t++) {
        char path[4200];
        trial_path(s, t, path, sizeof path);
        if (!path_exists(path)) continue;
        TrialRecord r;
        trial_record_for(s, &s->grid.trials[t], &r);
        CheckpointRef ck;
        CtError err = {{0}};
        if (trial_file_read(path, &r, &ck, &err) != 0) {
            ct_warn("%s; the trial runs again", err.msg);
            trial_record_free(&r);
            continue;
        }
        int keep = r.status == TRIAL_DONE || (r.status == TRIAL_FAILED && !retry_failed);
        if (!keep && ck.file[0]) {
            r.status = TRIAL_PENDING;
            r.error[0] = '\0';
            s->ckpt[s->grid.trials[t].run] = ck;
            keep = 1;
        }
        if (!keep) {
            trial_record_free(&r);
            continue;
        }
        trial_record_free(&s->rec[t]);
        s->rec[t] = r;
        if (r.status == TRIAL_DONE) {
            s->n_done++;
            s->n_skipped_done++;
            // Restore the headline figures from the stored probabilities.
            trial_record_select(&s->rec[t], s->test_labels);
        } else if (r.status == TRIAL_FAILED) {
            s->n_failed++;
        }
    }
    for (size_t i = 0; i < s->grid.n_runs; i++) {
        const GridRun *gr = &s->grid.runs[i];
        int open = 0;
        for (size_t k = 0; k < gr->n_trials; k++) {
            TrialStatus st = s->rec[gr->trials[k]].status;
            open |= st != TRIAL_DONE && st != TRIAL_FAILED;
        }
        pending[i] = (char)open;
        if (!open && !s->merging) master_drop_checkpoint(s, i);  // one a kill left behind
        if (!open) continue;
        CheckpointRef *ck = &s->ckpt[i];
        if (ck->file[0]) {
            // A checkpoint serves the run only if every unfinished trial has
            // its records up to it and its budget still ahead of it (one taken
            // before a budget's report reached the results would skip it).
            for (size_t k = 0; k < gr->n_trials; k++) {
                const TrialRecord *rec = &s->rec[gr->trials[k]];
                if (rec->status != TRIAL_DONE &&
                    (rec->epochs_done < ck->epoch || s->grid.trials[gr->trials[k]].epochs <= ck->epoch))
                    ck->file[0] = '\0';
            }
            // Read when the run is assigned (master_take_checkpoint), not
            // here: thousands of checkpoints would not fit the master's memory.
            char path[4400];
            snprintf(path, sizeof path, "%s/%s", s->outdir, ck->file);
            if (ck->file[0] && !path_exists(path)) {
                ct_warn("%s: missing; run %zu starts again", path, i);
                ck->file[0] = '\0';
            }
        }
        size_t keep = ck->file[0] ? ck->epoch : 0;
        for (size_t k = 0; k < gr->n_trials; k++) {
            TrialRecord *rec = &s->rec[gr->trials[k]];
            if (rec->status == TRIAL_DONE) continue;
            if (rec->status == TRIAL_FAILED) s->n_failed--;
            rec->status = TRIAL_PENDING;
            rec->error[0] = '\0';
            trial_record_truncate(rec, keep);
        }
        if (ck->file[0] && !s->merging) printf("resume: run %zu continues from its checkpoint at epoch %zu, iteration %zu\n", i, ck->epoch,
                         ck->iteration);
    }
}

// ---- resuming: the stored configuration must match ----

static char *print_config(const SweepConfig *c) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) fatal("open_memstream failed");
    config_print(f, c);
    fclose(f);
    return text;
}

// Reads the manifest at path once; -1 when it does not open.
int stored_sweep_read(const char *path, StoredSweep *m) {
    memset(m, 0, sizeof *m);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f >= 0) {
        m->yaml = h5io_read_attr_str(f, "config_yaml");
        m->config_path = h5io_read_attr_str(f, "config_path");
        m->fingerprint = h5io_read_attr_str(f, "dataset_fingerprint");
        m->slice = h5io_read_attr_str(f, "slice");
        m->created = h5io_read_attr_str(f, "created_utc");
        m->merged_from = h5io_read_attr_str(f, "merged_from");
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    return f >= 0 ? 0 : -1;
}

void stored_sweep_free(StoredSweep *m) {
    free(m->yaml);
    free(m->config_path);
    free(m->fingerprint);
    free(m->slice);
    free(m->created);
    free(m->merged_from);
    memset(m, 0, sizeof *m);
}

// Compares the resolved configuration with the one stored in OUT/sweep.h5.
// Everything but the grid lists must be equal (new grid values only add
// trials). Differences are named in err.
int check_resume_config(Sweep *s, CtError *err) {
    char path[4200];
    snprintf(path, sizeof path, "%s/sweep.h5", s->outdir);
    StoredSweep st;
    if (stored_sweep_read(path, &st) || !st.yaml) {
        stored_sweep_free(&st);
        return ct_errorf(err, "%s: cannot read the stored configuration (config_yaml)", path);
    }
    // A slice's folder continues only as the same slice.
    char now[48];
    grid_slice_label(&s->grid, now, sizeof now);
    if (strcmp(st.slice ? st.slice : "", now) != 0) {
        if (st.slice) ct_errorf(err, "%s holds slice %s of the grid: resume it with --slice %s", path, st.slice, st.slice);
        else ct_errorf(err, "%s holds the whole grid: resume it without --slice", path);
        stored_sweep_free(&st);
        return -1;
    }
    SweepConfig old;
    CtError perr = {{0}};
    int rc = config_parse_stored(&old, st.config_path && st.config_path[0] ? st.config_path : path, st.yaml,
                                 strlen(st.yaml), &perr);
    stored_sweep_free(&st);
    if (rc) return ct_errorf(err, "%s: the stored configuration no longer loads (%s)", path, perr.msg);
    // The phantom root is resolved at run time; compare it as configured.
    if (!old.data_root_set) snprintf(old.data.root, sizeof old.data.root, "%s", s->cfg.data.root);
    char *a = print_config(&old), *b = print_config(&s->cfg);
    config_free(&old);
    int weights_same = id_format_weights_same(path, &s->grid);
    // Line by line outside the grid section (comments aside): name the
    // differing keys by their dotted path, from the indentation.
    char keys[768] = "";
    size_t nk = 0;
    char *sa = NULL, *sb = NULL;
    char *la = strtok_r(a, "\n", &sa), *lb = strtok_r(b, "\n", &sb);
    char path_keys[8][64] = {{0}};
    while (la || lb) {
        while (la && la[strspn(la, " ")] == '#') la = strtok_r(NULL, "\n", &sa);
        while (lb && lb[strspn(lb, " ")] == '#') lb = strtok_r(NULL, "\n", &sb);
        if (!la && !lb) break;
        const char *cur = la ? la : lb;
        size_t depth = strspn(cur, " ") / 2;
        if (depth < 8) {
            sscanf(cur + strspn(cur, " -"), "%63[^:]", path_keys[depth]);
            for (size_t d = depth + 1; d < 8; d++) path_keys[d][0] = '\0';
        }
        int in_grid = strcmp(path_keys[0], "grid") == 0 || strcmp(path_keys[0], "sweep") == 0;  // sweep: how, not what
        int moved = weights_same && strcmp(path_keys[0], "weights") == 0;  // the same content elsewhere
        if (!in_grid && !moved && (!la || !lb || strcmp(la, lb) != 0)) {
            if (nk < 8) {
                size_t used = strlen(keys);
                used += (size_t)snprintf(keys + used, sizeof keys - used, "%s", nk ? ", " : "");
                for (size_t d = 0; d <= depth && d < 8 && used < sizeof keys; d++)
                    used += (size_t)snprintf(keys + used, sizeof keys - used, "%s%s", d ? "." : "", path_keys[d]);
            }
            nk++;
        }
        la = la ? strtok_r(NULL, "\n", &sa) : NULL;
        lb = lb ? strtok_r(NULL, "\n", &sb) : NULL;
    }
    free(a);
    free(b);
    if (nk) return ct_errorf(err, "%s: --resume with a different configuration (%zu difference%s: %s); only new grid "
                             "values may be added", path, nk, nk > 1 ? "s" : "", keys);
    return id_format_check(path, &s->grid, &s->cfg, "resume", err);
}
