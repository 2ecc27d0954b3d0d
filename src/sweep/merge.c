/*
 * merge.c — `ctsweep merge`: one results folder from the folders of a
 * sweep's slices (or any runs of one configuration). Each trial file comes
 * from the folder where it got furthest, with its run's checkpoint when it
 * is unfinished; OUTDIR is then read as --resume reads it, so `ctsweep run
 * --resume` there finishes what no slice did.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "results/id_format.h"
#include "results/manifest.h"
#include "results/outdir_lock.h"
#include "sweep/sweep.h"
#include "sweep/sweep_internal.h"

static int merge_sources(StoredSweep *src, char *const *dirs, size_t n, CtError *err) {
    for (size_t i = 0; i < n; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/sweep.h5", dirs[i]);
        StoredSweep *m = &src[i];
        if (!path_exists(path)) return ct_errorf(err, "%s: no sweep.h5 here, not a ctsweep results folder", dirs[i]);
        stored_sweep_read(path, m);
        if (!m->yaml || !m->fingerprint)
            return ct_errorf(err, "%s: cannot read %s (see ctsweep validate %s)", path,
                             m->yaml ? "dataset_fingerprint" : "config_yaml", dirs[i]);
        if (m->slice && grid_slice_parse(m->slice, &m->slice_i, &m->slice_n))
            return ct_errorf(err, "%s: slice attribute '%s' is not I/N", path, m->slice);
        if (i == 0) continue;
        if (strcmp(m->yaml, src[0].yaml) != 0)
            return ct_errorf(err, "%s: its configuration differs from %s's; only folders of one sweep merge", dirs[i],
                             dirs[0]);
        if (strcmp(m->fingerprint, src[0].fingerprint) != 0)
            return ct_errorf(err, "%s: its data set (fingerprint %.16s) differs from %s's (%.16s)", dirs[i],
                             m->fingerprint, dirs[0], src[0].fingerprint);
        for (size_t j = 0; j < i; j++) {
            if (m->slice && src[j].slice && m->slice_n != src[j].slice_n)
                return ct_errorf(err, "%s holds slice %s but %s holds slice %s: slices of different splits", dirs[i],
                                 m->slice, dirs[j], src[j].slice);
            if (m->slice && src[j].slice && m->slice_i == src[j].slice_i)
                return ct_errorf(err, "%s and %s both hold slice %s", dirs[j], dirs[i], m->slice);
        }
    }
    return 0;
}

// How far a trial file got: done > failed > resumable from a checkpoint at
// a later epoch > nothing usable (-1: no file or unreadable).
static double trial_progress(const char *path, const GridTrial *t, const Sweep *s, CheckpointRef *ck) {
    if (!path_exists(path)) return -1.0;
    TrialRecord r;
    trial_record_for(s, t, &r);
    CtError err = {{0}};
    double p = -1.0;
    memset(ck, 0, sizeof *ck);
    if (trial_file_read(path, &r, ck, &err) != 0)
        ct_warn("%s; not merged", err.msg);
    else
        p = r.status == TRIAL_DONE ? 3.0 : r.status == TRIAL_FAILED ? 2.0 : ck->file[0] ? 1.0 - 1.0 / (2.0 + (double)ck->epoch) : 0.0;
    trial_record_free(&r);
    return p;
}

static int copy_file(const char *from, const char *to, CtError *err) {
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ct_read_file(from, &data, &len, SIZE_MAX, err);
    if (rc == 0) rc = ct_write_file_atomic(to, data, len, err);
    free(data);
    return rc;
}

int sweep_merge(const char *outdir, char *const *dirs, size_t n_dirs, int break_lock) {
    Sweep *s = ct_calloc(1, sizeof *s);
    StoredSweep *src = ct_calloc(n_dirs, sizeof *src);
    char tmp_phantoms[4096] = "", *merged_from = NULL, *pending = NULL;
    uint8_t *copied = NULL;
    size_t merged_len = 0;
    s->rank = 0;
    s->size = 1;
    s->merging = 1;
    snprintf(s->outdir, sizeof s->outdir, "%s", outdir);
    gethostname(s->host, sizeof s->host - 1);
    CtError err = {{0}};
    int code = SWEEP_EXIT_ERROR;
    if (merge_sources(src, dirs, n_dirs, &err)) goto fail;
    FILE *mf = open_memstream(&merged_from, &merged_len);
    if (!mf) fatal("open_memstream failed");
    char *out_real = realpath(outdir, NULL);
    for (size_t i = 0; i < n_dirs; i++) {
        char *real = realpath(dirs[i], NULL);
        int self = real && out_real && strcmp(real, out_real) == 0;
        fprintf(mf, "%s%s", i ? "\n" : "", real ? real : dirs[i]);
        free(real);
        if (self) ct_errorf(&err, "%s: OUTDIR cannot also be a source", dirs[i]);
    }
    free(out_real);
    fclose(mf);
    if (err.msg[0]) goto fail;
    s->merged_from = merged_from;
    // OUTDIR: new, or an earlier merge of the same sweep.
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/sweep.h5", outdir);
    if (path_exists(manifest)) {
        StoredSweep was;
        stored_sweep_read(manifest, &was);
        int ours = was.merged_from != NULL, same = was.yaml && strcmp(was.yaml, src[0].yaml) == 0;
        stored_sweep_free(&was);
        if (!ours || !same) {
            ct_errorf(&err, "%s already holds %s; choose another -o", outdir,
                      !ours ? "a sweep that ctsweep merge did not write" : "the merge of another sweep");
            goto fail;
        }
    }
    char trials[4200];
    snprintf(trials, sizeof trials, "%s/trials", outdir);
    if (ct_mkdirs(trials, &err) || outdir_lock(outdir, break_lock, &err)) goto fail;
    CtError perr = {{0}};
    if (config_parse(&s->cfg, src[0].config_path && src[0].config_path[0] ? src[0].config_path : dirs[0], src[0].yaml,
                     strlen(src[0].yaml), &perr)) {
        ct_errorf(&err, "%s/sweep.h5: the stored configuration no longer loads (%s)", dirs[0], perr.msg);
        goto fail;
    }
    if (setup_data(s, 0, tmp_phantoms, &err)) goto fail;
    if (strcmp(s->ds.fingerprint, src[0].fingerprint) != 0) {
        ct_errorf(&err, "%s: the data set has changed since the slices ran (fingerprint %.16s, theirs %.16s)",
                  s->ds.root, s->ds.fingerprint, src[0].fingerprint);
        goto fail;
    }
    image_cache_free(&s->ic);
    size_t n_train = s->ds.count[SPLIT_TRAIN][0] + s->ds.count[SPLIT_TRAIN][1];
    if (grid_build(&s->grid, &s->cfg, s->ds.fingerprint, n_train, &err)) goto fail;
    for (size_t i = 0; i < n_dirs; i++) {
        char src_manifest[4200];
        snprintf(src_manifest, sizeof src_manifest, "%s/sweep.h5", dirs[i]);
        if (id_format_check(src_manifest, &s->grid, &s->cfg, "merge", &err)) goto fail;
    }
    master_index(s);
    s->rec = ct_calloc(s->grid.n_trials, sizeof *s->rec);
    for (size_t t = 0; t < s->grid.n_trials; t++) trial_record_for(s, &s->grid.trials[t], &s->rec[t]);
    s->ckpt = ct_calloc(s->grid.n_runs, sizeof *s->ckpt);
    s->resume_state = ct_calloc(s->grid.n_runs, sizeof *s->resume_state);
    // The merged sweep was created when its first slice was.
    manifest_utc_now(s->created, sizeof s->created);
    for (size_t i = 0; i < n_dirs; i++)
        if (src[i].created && strcmp(src[i].created, s->created) < 0)
            snprintf(s->created, sizeof s->created, "%s", src[i].created);
    // Each trial from the folder where it got furthest; its run's
    // checkpoint with it, when the trial is unfinished.
    copied = ct_calloc(s->grid.n_runs, 1);
    size_t n_taken = 0;
    for (size_t t = 0; t < s->grid.n_trials; t++) {
        const GridTrial *gt = &s->grid.trials[t];
        double best = -1.0;
        size_t from = 0;
        CheckpointRef best_ck = {0};
        for (size_t i = 0; i < n_dirs; i++) {
            char path[4200];
            snprintf(path, sizeof path, "%s/trials/%s.h5", dirs[i], gt->id);
            CheckpointRef ck;
            double p = trial_progress(path, gt, s, &ck);
            if (p > best) {
                best = p;
                from = i;
                best_ck = ck;
            }
        }
        if (best < 0.0) continue;
        char path[4200], to[4200];
        snprintf(path, sizeof path, "%s/trials/%s.h5", dirs[from], gt->id);
        trial_path(s, t, to, sizeof to);
        if (copy_file(path, to, &err)) goto fail;
        n_taken++;
        if (best < 2.0 && best_ck.file[0] && !copied[gt->run]) {
            char ck_from[4400], ck_to[4400], ck_dir[4200];
            snprintf(ck_from, sizeof ck_from, "%s/%s", dirs[from], best_ck.file);
            snprintf(ck_to, sizeof ck_to, "%s/%s", outdir, best_ck.file);
            snprintf(ck_dir, sizeof ck_dir, "%s/checkpoints", outdir);
            if (ct_mkdirs(ck_dir, &err)) goto fail;
            // A checkpoint that cannot be copied only costs the run a restart.
            CtError cerr = {{0}};
            if (copy_file(ck_from, ck_to, &cerr) == 0) copied[gt->run] = 1;
            else ct_warn("%s; the run of trial %s starts again when resumed", cerr.msg, gt->id);
        }
    }
    // From here on OUTDIR is read as --resume reads it.
    pending = ct_calloc(s->grid.n_runs, 1);
    memset(pending, 1, s->grid.n_runs);
    master_resume(s, pending, 0);
    size_t n_pending = 0;
    for (size_t t = 0; t < s->grid.n_trials; t++)
        if (s->rec[t].status == TRIAL_PENDING) {
            write_trial(s, t);
            n_pending++;
        }
    write_manifest(s, n_pending ? "interrupted" : "done");
    printf("merged %zu folder(s): %zu trial files taken; %zu done, %zu failed, %zu pending of %zu trials -> %s/sweep.h5\n",
           n_dirs, n_taken, s->n_done, s->n_failed, n_pending, s->grid.n_trials, outdir);
    size_t n_slices = 0;
    for (size_t i = 0; i < n_dirs; i++)
        if (src[i].slice) n_slices = src[i].slice_n;
    if (n_slices) {
        char missing[512] = "";
        size_t nm = 0, used = 0;
        for (size_t k = 0; k < n_slices; k++) {
            int have = 0;
            for (size_t i = 0; i < n_dirs; i++) have |= src[i].slice && src[i].slice_i == k;
            if (have) continue;
            if (used + 24 < sizeof missing) used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%zu/%zu",
                                                                     nm ? ", " : "", k, n_slices);
            nm++;
        }
        if (nm) printf("slices not given: %s (%zu of %zu)\n", missing, nm, n_slices);
    }
    if (n_pending)
        printf("%zu trial(s) pending: merge again when the slices have finished, or run them here with "
               "`ctsweep run CONFIG -o %s --resume` (exit %d)\n",
               n_pending, outdir, SWEEP_EXIT_RESUME);
    code = n_pending ? SWEEP_EXIT_RESUME : s->n_failed ? SWEEP_EXIT_FAILED_TRIALS : SWEEP_EXIT_OK;
    goto done;
fail:
    fprintf(stderr, "ctsweep merge: error: %s\n", err.msg);
done:
    if (tmp_phantoms[0]) remove_tree(tmp_phantoms);
    outdir_lock_release();
    for (size_t i = 0; i < n_dirs; i++) stored_sweep_free(&src[i]);
    free(src);
    free(pending);
    free(copied);
    free(merged_from);
    s->merged_from = NULL;
    sweep_free(s);
    return code;
}

