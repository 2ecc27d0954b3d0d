/*
 * sweep.c — `ctsweep run`: the set-up every rank shares (configuration,
 * OUTDIR, worker groups, threads and GPUs, data set, grid), then the
 * master's loop on rank 0 (master.c) and the workers' on the others
 * (worker.c); with one rank, that rank runs both in turn. The messages
 * between them are in protocol.c; --resume in resume.c; `ctsweep merge` in
 * merge.c.
 */
#define _GNU_SOURCE
#include "sweep/sweep.h"

#include <errno.h>
#include <ftw.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/phantom.h"
#include "results/manifest.h"
#include "results/outdir_lock.h"
#include "sweep/placement.h"
#include "sweep/quiet_wait.h"
#include "sweep/rank_check.h"
#include "sweep/sweep_internal.h"
#include "util/stopsig.h"

// ---- signals ----

// SIGTERM, SIGUSR1 (Slurm's warning before the time limit) and SIGINT ask
// for a clean stop: workers stop at the next batch boundary, the master
// records what arrived and exits with SWEEP_EXIT_RESUME. A second SIGINT
// exits at once; the results stay valid because every file is replaced
// atomically. The signals are taken by a thread of their own (stopsig.h).
void sweep_install_signals(void) {
    if (stopsig_install()) ct_warn("could not start the signal thread: SIGTERM, SIGUSR1 and SIGINT end the run at once");
}

// ---- shared set-up ----

int path_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

// Removes a generated phantom folder (dry runs leave nothing behind),
// without a shell: children would inherit the blocked stop signals.
static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)ftw;
    if ((type == FTW_DP ? rmdir(path) : unlink(path)) != 0) ct_warn("could not remove %s: %s", path, strerror(errno));
    return 0;
}

void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

int setup_data(Sweep *s, int dry_run, char *tmp_phantoms, CtError *err) {
    SweepConfig *c = &s->cfg;
    if (!c->data_root_set) {
        snprintf(c->data.root, sizeof c->data.root, "%.4000s/phantoms", s->outdir);
        // A dry run lists trial ids without writing to OUTDIR: phantoms go to a
        // temporary folder (ids depend on relative paths and contents only).
        if (dry_run && !path_exists(c->data.root)) {
            const char *t = getenv("TMPDIR");
            snprintf(tmp_phantoms, 4096, "%s/ctsweep-phantoms-XXXXXX", t && t[0] ? t : "/tmp");
            if (s->rank == 0 && !mkdtemp(tmp_phantoms)) return ct_errorf(err, "%s: %s", tmp_phantoms, strerror(errno));
            bcast_quietly(tmp_phantoms, 4096, MPI_CHAR, MPI_COMM_WORLD);
            snprintf(c->data.root, sizeof c->data.root, "%s", tmp_phantoms);
        }
        if (s->rank == 0 && (!path_exists(c->data.root) || tmp_phantoms[0])) {
            ct_info("generating %zu phantom images (%zu px, seed %llu) in %s", c->phantoms_count, c->phantoms_size,
                    (unsigned long long)c->phantoms_seed, c->data.root);
            if (phantom_write_set(c->data.root, c->phantoms_count, c->phantoms_seed, c->phantoms_size, err))
                return -1;
        }
        barrier_quietly(MPI_COMM_WORLD);
    }
    if (dataset_open(&s->ds, &c->data, err)) return -1;
    // Every rank decodes with the same policy and so leaves out the same images.
    if (image_cache_build(&s->ic, &s->ds, c->image_size, &c->limits, c->on_bad_image, err)) return -1;
    if (dataset_fingerprint(&s->ds, err)) return -1;
    return 0;
}

// ---- entry ----

static double process_cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)ru.ru_stime.tv_usec;
}

static int agree(int ok) {
    int all = 0;
    MPI_Request req;
    MPI_Iallreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req);
    wait_quietly(&req);
    return all;
}

void sweep_free(Sweep *s) {
    if (s->rec)
        for (size_t t = 0; t < s->grid.n_trials; t++) trial_record_free(&s->rec[t]);
    free(s->rec);
    if (s->resume_state)
        for (size_t i = 0; i < s->grid.n_runs; i++) buf_free(&s->resume_state[i]);
    free(s->resume_state);
    free(s->ckpt);
    free(s->hosts);
    free(s->trial_dirty);
    free(s->flushed_at);
    pool_free(&s->pool);
    for (int sp = 0; sp < DATA_SPLITS; sp++) free(s->index[sp]);
    for (size_t f = 0; f < DATA_MAX_FOLDS; f++) free(s->fold_val[f]);
    free(s->test_labels);
    fcache_free(s->fc);
    placement_group_free(&s->group, &s->nccl, s->rank);
    grid_free(&s->grid);
    image_cache_free(&s->ic);
    dataset_free(&s->ds);
    config_free(&s->cfg);
    free(s);
}

int sweep_main(const SweepArgs *a) {
    Sweep *s = ct_calloc(1, sizeof *s);
    char tmp_phantoms[4096] = "";
    MPI_Comm_rank(MPI_COMM_WORLD, &s->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s->size);
    ct_log_set_rank(s->rank, s->size);
    snprintf(s->outdir, sizeof s->outdir, "%s", a->outdir);
    gethostname(s->host, sizeof s->host - 1);
    CtError err = {{0}};
    int code = SWEEP_EXIT_ERROR;
    int ok = config_load(&s->cfg, a->config_path, &err) == 0;
    if (!agree(ok)) goto fail;
    // An existing sweep is only continued with --resume; nothing is touched otherwise.
    char manifest[4200];
    snprintf(manifest, sizeof manifest, "%s/sweep.h5", s->outdir);
    ok = 1;
    if (!a->dry_run && path_exists(manifest) && !a->resume) {
        ct_errorf(&err, "%s already holds a sweep (sweep.h5); use --resume to continue it or choose another -o",
                  s->outdir);
        ok = 0;
    }
    if (ok && !a->dry_run && s->rank == 0) {
        char trials[4200];
        snprintf(trials, sizeof trials, "%s/trials", s->outdir);
        outdir_claim_note(&s->claim, s->outdir);
        ok = ct_mkdirs(trials, &err) == 0 && outdir_lock(s->outdir, a->break_lock, &err) == 0;
        s->claim.held = ok;
    }
    if (!agree(ok)) goto fail;
    // Worker groups of ranks_per_trial ranks train one trial data-parallel.
    size_t G = s->cfg.ranks_per_trial ? s->cfg.ranks_per_trial : 1;
    if (G > 1 && (s->size < 2 || (size_t)(s->size - 1) % G != 0)) {
        ct_errorf(&err, "%s: ranks_per_trial %zu needs the %d worker rank(s) (all ranks but the master) to form "
                  "whole groups", a->config_path, G, s->size - 1);
        ok = 0;
    }
    if (!agree(ok)) goto fail;
    placement_group(&s->group, &s->group_rank, &s->group_size, s->rank, s->size, G);
    // Threads and GPUs: by the rank's place on its node. A group of GPU
    // workers reduces its gradients through NCCL.
    NodePlace place;
    placement_node(&place, s->rank, s->size);
    placement_threads(&place, &s->cfg);
    if (!a->dry_run) ok = placement_bind_gpu(&place, s->rank, s->size, &s->cfg, a->config_path, s->host, s->device,
                                             sizeof s->device, &err) == 0;
    else snprintf(s->device, sizeof s->device, "cpu");
    placement_free(&place);
    if (!agree(ok)) goto fail;
    if (!a->dry_run && placement_group_nccl(&s->nccl, s->group, s->group_rank, s->group_size, s->rank, &s->cfg, &err))
        ok = 0;
    if (!agree(ok)) goto fail;

    ok = setup_data(s, a->dry_run, tmp_phantoms, &err) == 0;
    if (!agree(ok)) goto fail;
    // Every rank must have read the same data set (a stale copy on one node
    // would change its counts): the master compares every rank's summary.
    {
        RankData mine;
        rank_data_of(&mine, &s->ds, s->host);
        RankData *all = s->rank == 0 ? ct_calloc((size_t)s->size, sizeof *all) : NULL;
        MPI_Request req;
        MPI_Igather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
        wait_quietly(&req);
        if (s->rank == 0) {
            ok = rank_data_compare(all, s->size, &err) == 0;
            s->hosts = ct_calloc((size_t)s->size, sizeof *s->hosts);
            for (int k = 0; k < s->size; k++) snprintf(s->hosts[k], sizeof s->hosts[k], "%s", all[k].host);
        }
        free(all);
        if (!agree(ok)) goto fail;
    }
    // A data set no classifier can be judged on (a class missing from a
    // split, one file in two splits) is refused before anything trains.
    if (s->rank == 0) ok = data_check_dataset(&s->ds, &s->cfg.data, s->cfg.on_duplicate, NULL, &err) == 0;
    if (!agree(ok)) goto fail;
    size_t n_train = s->ds.count[SPLIT_TRAIN][0] + s->ds.count[SPLIT_TRAIN][1];
    ok = grid_build(&s->grid, &s->cfg, s->ds.fingerprint, n_train, &err) == 0;
    size_t full_runs = s->grid.n_runs;
    if (ok && a->n_slices) grid_slice(&s->grid, a->slice, a->n_slices);
    if (ok && a->resume && !a->dry_run && s->rank == 0 && path_exists(manifest)) ok = check_resume_config(s, &err) == 0;
    if (!agree(ok)) goto fail;
    if (s->rank == 0) {
        if (a->dry_run) {
            grid_print(stdout, &s->grid);
            code = SWEEP_EXIT_OK;
            goto done;
        }
        printf("ctsweep %s: %zu trials in %zu runs on %d rank(s), data %s (%zu images: train %zu, val %zu, test %zu, "
               "%zu skipped), fingerprint %.16s\n",
               CTSWEEP_VERSION, s->grid.n_trials, s->grid.n_runs, s->size, s->ds.root, s->ds.n, n_train,
               s->ds.count[SPLIT_VAL][0] + s->ds.count[SPLIT_VAL][1],
               s->ds.count[SPLIT_TEST][0] + s->ds.count[SPLIT_TEST][1], s->ds.n_skipped, s->ds.fingerprint);
        data_check_print_dataset(stdout, &s->ds, &s->cfg.data);
        if (s->grid.n_slices)
            printf("slice %zu/%zu: %zu of the grid's %zu runs (merge the slices' folders with ctsweep merge)\n",
                   s->grid.slice, s->grid.n_slices, s->grid.n_runs, full_runs);
        printf("---- resolved configuration ----\n");
        config_print(stdout, &s->cfg);
        printf("--------------------------------\n");
        fflush(stdout);
    } else if (a->dry_run) {
        code = SWEEP_EXIT_OK;
        goto done;
    }
    if (s->rank == 0) {
        master_index(s);
        s->rec = ct_calloc(s->grid.n_trials, sizeof *s->rec);
        for (size_t t = 0; t < s->grid.n_trials; t++) trial_record_for(s, &s->grid.trials[t], &s->rec[t]);
        s->ckpt = ct_calloc(s->grid.n_runs ? s->grid.n_runs : 1, sizeof *s->ckpt);
        s->resume_state = ct_calloc(s->grid.n_runs ? s->grid.n_runs : 1, sizeof *s->resume_state);
        manifest_utc_now(s->created, sizeof s->created);
        s->t_start = ct_now();
        s->cpu_start = process_cpu_seconds();
        char *pending = ct_calloc(s->grid.n_runs ? s->grid.n_runs : 1, 1);
        memset(pending, 1, s->grid.n_runs);
        s->pending = pending;
        pool_init(&s->pool, s->size, (int)G, s->grid.n_runs);
        s->trial_dirty = ct_calloc(s->grid.n_trials ? s->grid.n_trials : 1, 1);
        s->flushed_at = ct_calloc(s->grid.n_runs ? s->grid.n_runs : 1, sizeof *s->flushed_at);
        if (a->resume) {
            master_resume(s, pending, a->retry_failed);
            if (s->n_skipped_done) printf("resume: %zu trials already done\n", s->n_skipped_done);
        }
        // Files of finished trials (kept by --resume) are never rewritten.
        for (size_t t = 0; t < s->grid.n_trials; t++)
            if (s->rec[t].status == TRIAL_PENDING) write_trial(s, t);
        write_manifest(s, "running");
        if (s->size == 1) {
            s->fc = fcache_create(s->cfg.feature_cache_mb << 20, s->cfg.feature_store);
            long r;
            while (!stopsig_requested() && (r = pick_run(s, pending, s->last_model[0] ? s->last_model : NULL, NULL, 0)) >= 0) {
                pending[r] = 0;
                master_take_checkpoint(s, (size_t)r);
                worker_run(s, (size_t)r, s->resume_state[r].n ? s->resume_state[r].p : NULL, s->resume_state[r].n);
                buf_free(&s->resume_state[r]);
            }
        } else {
            image_cache_free(&s->ic);  // the master trains nothing
            master_loop(s, pending);
        }
        progress_clear(s);
        int signalled = stopsig_requested() || s->interrupted, stopped = signalled;
        for (size_t i = 0; i < s->grid.n_runs; i++) stopped |= pending[i];
        free(pending);
        s->pending = NULL;
        write_manifest(s, stopped ? "interrupted" : "done");
        if (stopped) {
            printf("sweep stopped %s: %zu done, %zu failed of %zu trials; run again with --resume (exit %d)\n",
                   signalled ? "by a signal" : "with runs left, every worker retired", s->n_done, s->n_failed,
                   s->grid.n_trials, SWEEP_EXIT_RESUME);
            code = SWEEP_EXIT_RESUME;
        } else {
            // The queue's share: from the first assignment to the last record.
            double cpu = process_cpu_seconds() - s->cpu_start;
            double wall = ct_now() - s->t_start;
            printf("sweep done: %zu done, %zu failed of %zu trials in %.1f s (%.1f trials/s); master process CPU "
                   "%.1f s (%.0f%% of one core) -> %s/sweep.h5\n",
                   s->n_done, s->n_failed, s->grid.n_trials, wall, (double)(s->n_done + s->n_failed) / wall, cpu,
                   100.0 * cpu / wall, s->outdir);
            code = s->n_failed ? SWEEP_EXIT_FAILED_TRIALS : SWEEP_EXIT_OK;
        }
        // The master's own load (bench/master_scale reads this line).
        double wall = ct_now() - s->t_start, cpu = process_cpu_seconds() - s->cpu_start;
        MasterStats *ms = &s->stats;
        printf("master: %llu epoch messages in %.1f s (%.0f/s), %llu file writes (%.0f/s), epoch message queueing "
               "delay median %.1f ms, p99 %.1f ms, max %.1f ms; CPU %.0f%% of one core\n",
               (unsigned long long)ms->epochs, wall, (double)ms->epochs / wall, (unsigned long long)ms->file_writes,
               (double)ms->file_writes / wall, 1e3 * master_stats_quantile(ms, 0.5),
               1e3 * master_stats_quantile(ms, 0.99), 1e3 * ms->delay_max, 100.0 * cpu / wall);
    } else {
        s->fc = fcache_create(s->cfg.feature_cache_mb << 20, s->cfg.feature_store);
        worker_loop(s);
        code = SWEEP_EXIT_OK;
    }
    // Every rank leaves with the master's verdict; from here on a signal
    // (mpirun cleaning up after a rank's error exit) ends the process.
    bcast_quietly(&code, 1, MPI_INT, MPI_COMM_WORLD);
    stopsig_make_fatal();
    goto done;
fail:
    if (s->rank == 0) {
        fprintf(stderr, "ctsweep: error: %s\n", err.msg[0] ? err.msg : "failed on another rank");
        outdir_lock_release();          // the owner record goes too, before the folder is emptied
        outdir_claim_undo(&s->claim);  // refused before training: OUTDIR as it was
    }
    code = SWEEP_EXIT_ERROR;
done:
    barrier_quietly(MPI_COMM_WORLD);
    if (tmp_phantoms[0] && s->rank == 0) remove_tree(tmp_phantoms);
    outdir_lock_release();
    sweep_free(s);
    return code;
}
