/*
 * master.c — the master: the queue of runs (longest first, a worker's
 * cached model preferred, failed runs retried elsewhere), the loop that
 * answers the workers' messages, the records it turns into the results
 * files (trial files, manifest, checkpoints), and the progress it prints.
 * It waits with MPI_Iprobe and a sleeping back-off, so it never spins a core
 * that a worker on the same node needs.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/folds.h"
#include "results/checkpoint.h"
#include "results/manifest.h"
#include "sweep/protocol.h"
#include "sweep/quiet_wait.h"
#include "sweep/sweep.h"
#include "sweep/sweep_internal.h"
#include "train/metrics.h"
#include "util/stopsig.h"

// Epoch records reach a run's trial files at most this many seconds after
// they arrive (CTSWEEP_TRIAL_FLUSH, default 5; 0 = every epoch), and always
// at a budget, a checkpoint and the run's end. Writing every trial file
// whole at every epoch (fsync, rename) caps the master at a few hundred
// epochs per second on a shared file system; batched, one write carries
// many epochs. A kill loses at most the epochs since the run's last write,
// which --resume would train again anyway (it continues from the run's
// checkpoint, and every checkpoint writes the run's trial files first).
static double trial_flush_every(void) {
    static double every = -1;
    if (every < 0) {
        const char *v = getenv("CTSWEEP_TRIAL_FLUSH");
        char *end;
        double d = v && v[0] ? strtod(v, &end) : 5.0;
        every = v && v[0] && (end == v || d < 0) ? 5.0 : d;
    }
    return every;
}

// ---- results ----

void trial_path(const Sweep *s, size_t t, char *buf, size_t n) {
    snprintf(buf, n, "%s/trials/%s.h5", s->outdir, s->grid.trials[t].id);
}

// A trial's val rows: its fold's (k-fold), else the val split's.
static const int64_t *trial_val_index(const Sweep *s, const GridTrial *t) {
    return t->fold >= 0 ? s->fold_val[t->fold] : s->index[SPLIT_VAL];
}

// An empty record sized for the trial's fold.
void trial_record_for(const Sweep *s, const GridTrial *t, TrialRecord *r) {
    trial_record_init(r, t->epochs, t->fold >= 0 ? s->fold_n_val[t->fold] : s->n_split[SPLIT_VAL],
                      s->n_split[SPLIT_TEST]);
}

// A results file that cannot be written (disk full, read-only file system,
// quota): every file is written under a new name and renamed into place, so
// what is on disk stays valid. The whole job stops at once with an exit code
// of its own, not the resume code: rerunning cannot help until someone frees
// space or restores write access (a requeue would loop); then --resume
// continues from there.
static _Noreturn void results_unwritable(const char *msg) {
    fprintf(stderr, "ctsweep: error: %s; the results on disk are intact: fix this and rerun with --resume (exit %d)\n",
            msg, SWEEP_EXIT_UNWRITABLE);
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, SWEEP_EXIT_UNWRITABLE);
    _exit(SWEEP_EXIT_UNWRITABLE);
}

void write_trial(Sweep *s, size_t t) {
    char path[4200];
    trial_path(s, t, path, sizeof path);
    CtError err = {{0}};
    const CheckpointRef *ck = s->ckpt && s->rec[t].status != TRIAL_DONE ? &s->ckpt[s->grid.trials[t].run] : NULL;
    if (trial_file_write(path, &s->grid.trials[t], &s->rec[t], trial_val_index(s, &s->grid.trials[t]),
                         s->index[SPLIT_TEST], ck, &err))
        results_unwritable(err.msg);
    TrialRecord *rec = &s->rec[t];
    for (int k = 0; k < 2 && rec->status == TRIAL_DONE; k++)  // on disk now, copied from there on rewrites
        if (rec->kept[k]) {
            kept_weights_free(rec->kept[k]);
            free(rec->kept[k]);
            rec->kept[k] = NULL;
        }
    s->manifest_dirty = 1;
    s->stats.file_writes++;
    if (s->trial_dirty) s->trial_dirty[t] = 0;
}

// Writes the run's trial files that hold records newer than their file.
static void flush_run(Sweep *s, size_t run) {
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++)
        if (s->trial_dirty && s->trial_dirty[gr->trials[k]]) write_trial(s, gr->trials[k]);
    if (s->flushed_at) s->flushed_at[run] = ct_now();
}

// The runs in flight whose records waited trial_flush_every (or all of them).
static void flush_waiting(Sweep *s, int all) {
    double now = ct_now();
    for (int k = 1; k < s->pool.size; k++) {
        long run = s->pool.run[k];
        if (run >= 0 && (all || now - s->flushed_at[run] >= trial_flush_every())) flush_run(s, (size_t)run);
    }
}

void write_manifest(Sweep *s, const char *state) {
    ManifestView m = {.cfg = &s->cfg, .ds = &s->ds, .grid = &s->grid, .records = s->rec, .created_utc = s->created,
                      .state = state, .merged_from = s->merged_from};
    CtError err = {{0}};
    if (manifest_write(s->outdir, &m, &err)) results_unwritable(err.msg);
    s->manifest_dirty = 0;
    s->stats.file_writes++;
    s->last_manifest = ct_now();
}

// ---- progress ----

// One live line on a terminal (rewritten in place twice a second), a plain
// line every 15 seconds otherwise (set CTSWEEP_PROGRESS=live or lines to choose).
// Under mpirun or srun a rank's stdout is a forwarding pseudo-terminal even
// when the user's is a file, so the live line is used only outside them,
// unless CTSWEEP_PROGRESS says live or lines.
static int progress_live(void) {
    const char *p = getenv("CTSWEEP_PROGRESS");
    if (p && strcmp(p, "live") == 0) return 1;
    if (p && strcmp(p, "lines") == 0) return 0;
    int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK") ||
                   getenv("SLURM_PROCID");
    return isatty(STDOUT_FILENO) && !launched;
}

static void progress(Sweep *s, int force) {
    int tty = progress_live();
    double now = ct_now(), every = tty ? 0.5 : 15.0;
    if (!force && now - s->last_progress < every) return;
    s->last_progress = now;
    size_t running = 0, total = s->grid.n_trials;
    double best = -1;
    for (size_t t = 0; t < total; t++) {
        running += s->rec[t].status == TRIAL_RUNNING;
        if (s->rec[t].best_val_acc > best) best = s->rec[t].best_val_acc;
    }
    size_t finished = s->n_done + s->n_failed, fresh = finished - s->n_skipped_done;
    double el = now - s->t_start, eta = fresh ? el / (double)fresh * (double)(total - finished) : -1;
    char eta_s[32];
    if (eta < 0) snprintf(eta_s, sizeof eta_s, "?");
    else snprintf(eta_s, sizeof eta_s, "%.0fs", eta);
    printf("%sprogress: %zu/%zu done, %zu running, %zu failed, best val acc %.3f, elapsed %.0fs, eta %s%s",
           tty ? "\r\033[K" : "", s->n_done, total, running, s->n_failed, best < 0 ? 0.0 : best, el, eta_s,
           tty ? "" : "\n");
    fflush(stdout);
    s->progress_shown = tty;
}

// Ends a live line before other output.
void progress_clear(Sweep *s) {
    if (s->progress_shown) printf("\r\033[K");
    s->progress_shown = 0;
}

// ---- the workers' reports ----

void master_epoch(Sweep *s, size_t run, const EpochRecord *r, const double *lr, size_t n_iters,
                         const float *vp, const float *tp, int rank) {
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++) {
        size_t t = gr->trials[k];
        TrialRecord *rec = &s->rec[t];
        if (rec->status == TRIAL_DONE || r->epoch > rec->budget) continue;
        rec->status = TRIAL_RUNNING;
        rec->rank = rank;
        trial_record_epoch(rec, r, lr, n_iters, vp, tp);
        s->trial_dirty[t] = 1;
    }
    s->manifest_dirty = 1;
    s->stats.epochs++;
    if (ct_now() - s->flushed_at[run] >= trial_flush_every()) flush_run(s, run);
    if (ct_now() - s->last_manifest > 2.0) write_manifest(s, "running");
    progress(s, 0);
}

void master_budget(Sweep *s, size_t run, size_t budget, const float *tp, int rank) {
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++) {
        size_t t = gr->trials[k];
        TrialRecord *rec = &s->rec[t];
        if (s->grid.trials[t].epochs != budget || rec->status == TRIAL_DONE) continue;
        progress_clear(s);
        (void)tp;  // the same as the budget epoch's row, recorded with the epoch
        trial_record_select(rec, s->test_labels);
        rec->status = TRIAL_DONE;
        rec->rank = rank;
        s->n_done++;
        write_trial(s, t);
        const GridTrial *g = &s->grid.trials[t];
        size_t total = s->grid.n_trials, finished = s->n_done + s->n_failed;
        double el = ct_now() - s->t_start;
        size_t new_done = finished - s->n_skipped_done;
        double eta = new_done ? el / (double)new_done * (double)(total - finished) : 0;
        char fold[24] = "";
        if (g->fold >= 0) snprintf(fold, sizeof fold, " fold %d", g->fold);
        printf("[%zu/%zu] %s %-8s b%-3zu %-11s e%-3zu%s best val %.3f @%zu  selected @%zu: test acc %.3f auc %.3f  | "
               "failed %zu, elapsed %.0fs, eta %.0fs\n",
               finished, total, g->id, g->model, g->batch_size, clr_mode_name(g->clr.mode), g->epochs, fold,
               rec->best_val_acc, rec->best_epoch, rec->selected_epoch, rec->test_acc, rec->test_auc, s->n_failed, el,
               eta);
        fflush(stdout);
    }
    flush_run(s, run);  // the run's other trials show their progress too
    if (s->ckpt[run].file[0]) master_drop_checkpoint(s, run);
    if (ct_now() - s->last_manifest > 2.0) write_manifest(s, "running");
}

void master_weights(Sweep *s, size_t run, size_t budget, KeptWeights *w) {
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++) {
        TrialRecord *rec = &s->rec[gr->trials[k]];
        if (s->grid.trials[gr->trials[k]].epochs != budget || rec->status == TRIAL_DONE) continue;
        int slot = w->kind == KEEP_FINAL ? 1 : 0;
        if (rec->kept[slot]) kept_weights_free(rec->kept[slot]);
        else rec->kept[slot] = ct_calloc(1, sizeof *rec->kept[slot]);
        *rec->kept[slot] = *w;
        memset(w, 0, sizeof *w);
        return;
    }
    kept_weights_free(w);  // a retried run's budget that an earlier attempt recorded
}

// A finished run's checkpoint is deleted (a VGG head's is ~208 MB with the
// selected epoch's copy; a large grid would keep hundreds of GB), once
// every trial file of the run says done and no longer points at it. A run
// with a failed trial keeps it, for --retry-failed.
void master_drop_checkpoint(Sweep *s, size_t run) {
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++)
        if (s->rec[gr->trials[k]].status != TRIAL_DONE) return;
    char path[4400];
    snprintf(path, sizeof path, "%s/checkpoints/%s.h5", s->outdir, s->grid.trials[gr->trials[0]].id);
    if (unlink(path) != 0 && errno != ENOENT) ct_warn("%s: cannot delete the finished run's checkpoint: %s", path, strerror(errno));
    s->ckpt[run].file[0] = '\0';
    buf_free(&s->resume_state[run]);
}

// The state a run starts from when it is assigned: its checkpoint, read now
// (never all at once). Without one (or when it cannot be read) the run
// starts again.
void master_take_checkpoint(Sweep *s, size_t run) {
    CheckpointRef *ck = &s->ckpt[run];
    const GridRun *gr = &s->grid.runs[run];
    buf_free(&s->resume_state[run]);
    if (ck->file[0]) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", s->outdir, ck->file);
        CtError err = {{0}};
        if (checkpoint_read(path, ck->epoch, ck->iteration, &s->resume_state[run], &err) != 0) {
            ct_warn("%s; run %zu starts again", err.msg, run);
            ck->file[0] = '\0';
            buf_free(&s->resume_state[run]);
        }
    }
    // Unfinished trials hold the epochs up to where the run starts (more
    // when a failed run is retried).
    size_t keep = ck->file[0] ? ck->epoch : 0;
    for (size_t k = 0; k < gr->n_trials; k++) {
        TrialRecord *rec = &s->rec[gr->trials[k]];
        if (rec->status == TRIAL_DONE || rec->epochs_done <= keep) continue;
        trial_record_truncate(rec, keep);
        write_trial(s, gr->trials[k]);
    }
}

// Writes a run's training state to OUT/checkpoints/<first trial id>.h5
// (atomically) and points the run's unfinished trial files at it.
void master_checkpoint(Sweep *s, size_t run, size_t epoch, size_t iter, const void *blob, size_t len) {
    const GridRun *gr = &s->grid.runs[run];
    CheckpointRef *ck = &s->ckpt[run];
    snprintf(ck->file, sizeof ck->file, "checkpoints/%s.h5", s->grid.trials[gr->trials[0]].id);
    ck->epoch = epoch;
    ck->iteration = iter;
    char dir[4200], path[4600];
    snprintf(dir, sizeof dir, "%s/checkpoints", s->outdir);
    snprintf(path, sizeof path, "%s/%s", s->outdir, ck->file);
    CtError err = {{0}};
    if (ct_mkdirs(dir, &err) || checkpoint_write(path, epoch, iter, blob, len, &err)) results_unwritable(err.msg);
    s->stats.file_writes++;
    for (size_t k = 0; k < gr->n_trials; k++)
        if (s->rec[gr->trials[k]].status != TRIAL_DONE) write_trial(s, gr->trials[k]);
    s->flushed_at[run] = ct_now();
}

// outcome: 1 done, 2 interrupted (its unfinished trials stay pending), 0 failed.
void master_end(Sweep *s, size_t run, int outcome, const char *error, double wall, uint64_t fwd,
                       uint64_t hits, const char *host, const char *device, int rank, int device_error) {
    const GridRun *gr = &s->grid.runs[run];
    int ok = outcome != 0;
    WorkerPool *p = &s->pool;
    // A failed run goes once more (sweep.retries) to another worker before
    // its trials are recorded failed: a fault of one node or GPU should not
    // cost the trial. It continues from its checkpoint, if it has one.
    if (outcome == 0 && s->size > 1 && !stopsig_requested() && p->attempts[run] < s->cfg.retries &&
        pool_others_active(p, rank) > 0) {
        p->attempts[run]++;
        p->avoid[run] = rank;
        progress_clear(s);
        ct_warn("run %zu (trial %s) failed on rank %d (%s%s): %s; trying it again on another worker (retry %zu of "
                "%zu)", run, s->grid.trials[gr->trials[0]].id, rank, host, device_error ? ", a device error" : "",
                error, p->attempts[run], s->cfg.retries);
        for (size_t k = 0; k < gr->n_trials; k++) {
            TrialRecord *rec = &s->rec[gr->trials[k]];
            if (rec->status == TRIAL_DONE) continue;
            rec->status = TRIAL_PENDING;
            write_trial(s, gr->trials[k]);
        }
        s->pending[run] = 1;
        return;
    }
    for (size_t k = 0; k < gr->n_trials; k++) {
        size_t t = gr->trials[k];
        TrialRecord *rec = &s->rec[t];
        if (p->attempts && p->attempts[run] && rec->status == TRIAL_DONE) continue;  // recorded by an earlier attempt
        rec->wall_seconds = wall;
        rec->forwards = fwd;
        rec->cache_hits = hits;
        rec->rank = rank;
        snprintf(rec->host, sizeof rec->host, "%s", host);
        snprintf(rec->device, sizeof rec->device, "%s", device);
        if (!ok && rec->status != TRIAL_DONE) {
            rec->status = TRIAL_FAILED;
            snprintf(rec->error, sizeof rec->error, "%s", error);
            s->n_failed++;
            progress_clear(s);
            ct_warn("trial %s failed: %s", s->grid.trials[t].id, error);
        }
        if (outcome == 2 && rec->status != TRIAL_DONE) {
            rec->status = TRIAL_PENDING;  // resumed later from the start of its run
            s->interrupted = 1;
        }
        write_trial(s, t);
    }
    if (ct_now() - s->last_manifest > 2.0) write_manifest(s, "running");
}

// ---- the queue ----

// Pending runs, the costliest first: one of the worker's cached model while
// there are any; else one of a model no other worker holds, so that each
// model's features are computed by one worker while there are models enough
// to go round; else any. model_of[k]: the model rank k last took (may be NULL).
static long pick_run_from(const Sweep *s, const char *pending, const char *model, char (*model_of)[32], int self,
                          int skip_avoided) {
    long best = -1, best_same = -1, best_free = -1;
    for (size_t i = 0; i < s->grid.n_runs; i++) {
        if (!pending[i]) continue;
        if (skip_avoided && s->pool.avoid && s->pool.avoid[i] == self) continue;
        const GridRun *r = &s->grid.runs[i];
        if (best < 0 || r->cost > s->grid.runs[best].cost) best = (long)i;
        if (model && strcmp(r->model, model) == 0 && (best_same < 0 || r->cost > s->grid.runs[best_same].cost))
            best_same = (long)i;
        int held = 0;
        for (int k = 0; model_of && k < s->size && !held; k++)
            held = k != self && strcmp(model_of[k], r->model) == 0;
        if (!held && (best_free < 0 || r->cost > s->grid.runs[best_free].cost)) best_free = (long)i;
    }
    return best_same >= 0 ? best_same : best_free >= 0 ? best_free : best;
}

// A retried run goes to another worker than the one it failed on, unless
// no other worker is left to take it.
long pick_run(const Sweep *s, const char *pending, const char *model, char (*model_of)[32], int self) {
    long r = pick_run_from(s, pending, model, model_of, self, 1);
    if (r < 0 && s->pool.avoid && pool_others_active(&s->pool, self) == 0)
        r = pick_run_from(s, pending, model, model_of, self, 0);
    return r;
}

// ---- the loop ----

// A busy worker silent for sweep.worker_timeout is hung (a GPU fault, a read
// stuck on a shared file system) or lost. Everything that arrived is already
// in the results, each file whole: the job ends with the resume code, so
// that Slurm requeues it and --resume continues.
static _Noreturn void master_worker_lost(Sweep *s, int rank) {
    progress_clear(s);
    flush_waiting(s, 1);
    write_manifest(s, "interrupted");
    long run = s->pool.run[rank];
    fprintf(stderr, "ctsweep: error: worker rank %d on %s sent nothing for %.0f s (sweep.worker_timeout) while training "
            "run %ld (trial %s): it is hung or lost; the results hold everything received: ending the job to be "
            "resumed (exit %d)\n", rank, s->hosts ? s->hosts[rank] : "?", ct_now() - s->pool.heard[rank], run,
            run >= 0 ? s->grid.trials[s->grid.runs[run].trials[0]].id : "-", SWEEP_EXIT_RESUME);
    fflush(NULL);
    MPI_Abort(MPI_COMM_WORLD, SWEEP_EXIT_RESUME);
    _exit(SWEEP_EXIT_RESUME);
}

void master_loop(Sweep *s, char *pending) {
    int workers = (s->size - 1) / (int)s->cfg.ranks_per_trial;  // group leaders
    char (*model_of)[32] = ct_calloc((size_t)s->size, sizeof *model_of);
    Buf b = {0};
    double backoff = 0.2, last_check = ct_now();
    for (int k = 1; k < s->size; k++) pool_heard(&s->pool, k, ct_now());
    while (workers > 0) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
        if (ct_now() - last_check > 1.0) {
            last_check = ct_now();
            int hung = pool_hung(&s->pool, last_check, s->cfg.worker_timeout), waiting = 0;
            // Not silent if its message waits here (the master itself was slow).
            if (hung > 0) MPI_Iprobe(hung, MPI_ANY_TAG, MPI_COMM_WORLD, &waiting, MPI_STATUS_IGNORE);
            if (hung > 0 && !waiting) master_worker_lost(s, hung);
            flush_waiting(s, 0);
        }
        if (!flag) {
            if (s->manifest_dirty && ct_now() - s->last_manifest > 2.0) write_manifest(s, "running");
            progress(s, 0);
            sleep_ms(backoff);
            backoff = backoff * 2 > 20 ? 20 : backoff * 2;
            continue;
        }
        backoff = 0.2;
        int count;
        MPI_Get_count(&st, MPI_BYTE, &count);
        buf_reset(&b);
        buf_put(&b, NULL, 0);
        if ((size_t)count > b.cap) {
            b.p = ct_realloc(b.p, (size_t)count);
            b.cap = (size_t)count;
        }
        MPI_Recv(b.p, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        Rd r;
        rd_init(&r, b.p, (size_t)count);
        int src = st.MPI_SOURCE;
        pool_heard(&s->pool, src, ct_now());
        if (st.MPI_TAG == MSG_ALIVE) {
            AliveMsg m;
            if (alive_msg_decode(&r, &m)) fatal("malformed ALIVE message from rank %d", src);
        } else if (st.MPI_TAG == MSG_EPOCH) {
            EpochMsg m;
            if (epoch_msg_decode(&r, &m) || m.run >= s->grid.n_runs) fatal("malformed EPOCH message from rank %d", src);
            // The start-up check makes the data sets equal; a difference here is a bug, never data to store.
            const TrialRecord *first = &s->rec[s->grid.runs[m.run].trials[0]];  // the run's fold's sizes
            if (m.n_val != first->n_val || m.n_test != first->n_test)
                fatal("EPOCH message from rank %d on %s: %zu val and %zu test probabilities, expected %zu and %zu",
                      src, s->hosts ? s->hosts[src] : "?", m.n_val, m.n_test, first->n_val, first->n_test);
            master_stats_delay(&s->stats, master_stats_clock() - m.sent_at);
            master_epoch(s, (size_t)m.run, &m.rec, m.lr, m.n_iters, m.val_prob, m.test_prob, src);
            epoch_msg_free(&m);
        } else if (st.MPI_TAG == MSG_BUDGET) {
            BudgetMsg m;
            if (budget_msg_decode(&r, &m) || m.run >= s->grid.n_runs)
                fatal("malformed BUDGET message from rank %d", src);
            if (m.n_test != s->n_split[SPLIT_TEST])
                fatal("BUDGET message from rank %d on %s holds %zu test probabilities; the data set has %zu test images",
                      src, s->hosts ? s->hosts[src] : "?", m.n_test, s->n_split[SPLIT_TEST]);
            master_budget(s, (size_t)m.run, (size_t)m.budget, m.test_prob, src);
            budget_msg_free(&m);
        } else if (st.MPI_TAG == MSG_WEIGHTS) {
            WeightsMsg m;
            if (weights_msg_decode(&r, &m) || m.run >= s->grid.n_runs)
                fatal("malformed WEIGHTS message from rank %d", src);
            master_weights(s, (size_t)m.run, (size_t)m.budget, &m.w);
        } else if (st.MPI_TAG == MSG_CHECKPOINT) {
            CheckpointMsg m;
            if (checkpoint_msg_decode(&r, &m) || m.run >= s->grid.n_runs)
                fatal("malformed CHECKPOINT message from rank %d", src);
            master_checkpoint(s, (size_t)m.run, (size_t)m.epoch, (size_t)m.iter, m.state, m.state_len);
        } else if (st.MPI_TAG == MSG_END) {
            EndMsg m;
            if (end_msg_decode(&r, &m) || (m.run != MSG_NO_RUN && m.run >= s->grid.n_runs))
                fatal("malformed END message from rank %d", src);
            if (m.run != MSG_NO_RUN) {
                size_t run = (size_t)m.run;
                int retire = pool_run_ended(&s->pool, src, m.outcome == 0, m.device_error != 0);
                if (retire) s->pool.gone[src] = 1;  // before master_end: its run is retried elsewhere
                master_end(s, run, m.outcome, m.error, m.wall, m.forwards, m.hits, m.host, m.device, src,
                           m.device_error);
                snprintf(model_of[src], sizeof model_of[src], "%s", s->grid.runs[run].model);
                if (retire) {
                    progress_clear(s);
                    ct_warn("rank %d on %s (%s) retired for the rest of the job: two runs in a row failed with "
                            "device errors (last: %s); its runs go to the other workers", src, m.host, m.device,
                            m.error);
                    model_of[src][0] = '\0';
                }
            }
            long next = stopsig_requested() || s->pool.gone[src]
                            ? -1
                            : pick_run(s, pending, model_of[src][0] ? model_of[src] : NULL, model_of, src);
            Buf out = {0};
            if (next >= 0) {
                pending[next] = 0;
                snprintf(model_of[src], sizeof model_of[src], "%s", s->grid.runs[next].model);
                master_take_checkpoint(s, (size_t)next);
                s->pool.run[src] = next;
                Buf *rs = &s->resume_state[next];
                assign_msg_encode(&(AssignMsg){.run = (uint64_t)next, .state = rs->p, .state_len = rs->n}, &out);
                MPI_Send(out.p, (int)out.n, MPI_BYTE, src, MSG_ASSIGN, MPI_COMM_WORLD);
                buf_free(rs);
            } else {
                stop_msg_encode(&(StopMsg){0}, &out);
                MPI_Send(out.p, (int)out.n, MPI_BYTE, src, MSG_STOP, MPI_COMM_WORLD);
                s->pool.gone[src] = 1;
                workers--;
            }
            buf_free(&out);
        } else {
            fatal("unexpected message tag %d from rank %d", st.MPI_TAG, src);
        }
    }
    buf_free(&b);
    free(model_of);
}

// Split rows of the data set and test labels, for the results.
void master_index(Sweep *s) {
    for (int sp = 0; sp < DATA_SPLITS; sp++) {
        s->n_split[sp] = s->ds.count[sp][0] + s->ds.count[sp][1];
        s->index[sp] = ct_calloc(s->n_split[sp] ? s->n_split[sp] : 1, sizeof(int64_t));
    }
    s->test_labels = ct_calloc(s->n_split[SPLIT_TEST] ? s->n_split[SPLIT_TEST] : 1, 1);
    size_t k[DATA_SPLITS] = {0};
    for (size_t i = 0; i < s->ds.n; i++) {
        int sp = s->ds.items[i].split;
        if (sp == SPLIT_TEST) s->test_labels[k[sp]] = s->ds.items[i].label != 0;
        s->index[sp][k[sp]++] = (int64_t)i;
    }
    for (size_t f = 0; f < s->ds.kfold; f++) {
        s->fold_n_val[f] = folds_count(&s->ds, (int)f, SPLIT_VAL);
        s->fold_val[f] = ct_calloc(s->fold_n_val[f] ? s->fold_n_val[f] : 1, sizeof(int64_t));
        size_t n = 0;
        for (size_t i = 0; i < s->ds.n; i++)
            if (folds_split_of(&s->ds.items[i], (int)f) == SPLIT_VAL) s->fold_val[f][n++] = (int64_t)i;
    }
}
