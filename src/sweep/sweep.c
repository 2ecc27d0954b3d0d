/*
 * sweep.c — the sweep runtime: set-up shared by every rank (configuration,
 * data set, grid), the master's queue and records, the worker's trial loop,
 * and the messages between them.
 *
 * Messages (worker -> master): EPOCH (a run's epoch record, its learning
 * rates, val and test probabilities), BUDGET (test probabilities when an epoch
 * budget completes), END (the run finished or failed; also asks for more
 * work). Master -> worker: ASSIGN (a run index) or STOP. The master waits
 * with MPI_Iprobe and a sleeping back-off, so it never spins a core that
 * a worker on the same node needs; idle workers wait the same way.
 */
#define _GNU_SOURCE
#include "sweep/sweep.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data/folds.h"
#include "data/phantom.h"
#include "results/checkpoint.h"
#include "results/h5io.h"
#include "results/manifest.h"
#include "results/outdir_lock.h"
#include "results/trial_file.h"
#include "config/grid.h"
#include "results/id_format.h"
#include "sweep/outdir_claim.h"
#include "sweep/master_stats.h"
#include "sweep/placement.h"
#include "sweep/rank_check.h"
#include "sweep/worker_pool.h"
#include "train/metrics.h"
#include "train/trial.h"
#include "util/buf.h"
#include "util/stopsig.h"
#ifdef CTSWEEP_HAVE_CUDA
#include "backend/cuda/cuda_nccl.h"
#endif

// ---- signals ----

// SIGTERM, SIGUSR1 (Slurm's warning before the time limit) and SIGINT ask
// for a clean stop: workers stop at the next batch boundary, the master
// records what arrived and exits with SWEEP_EXIT_RESUME. A second SIGINT
// exits at once; the results stay valid because every file is replaced
// atomically. The signals are taken by a thread of their own (stopsig.h).
void sweep_install_signals(void) {
    if (stopsig_install()) ct_warn("could not start the signal thread: SIGTERM, SIGUSR1 and SIGINT end the run at once");
}

static int stop_requested(void *ctx) {
    (void)ctx;
    return stopsig_requested();
}

// TAG_ALIVE: a worker in a long backbone pass says it is alive (the master
// ends the job when a busy worker is silent for sweep.worker_timeout).
enum { TAG_EPOCH = 11, TAG_BUDGET = 12, TAG_END = 13, TAG_CKPT = 14, TAG_ALIVE = 15, TAG_ASSIGN = 21, TAG_STOP = 22 };

// Workers checkpoint a run at the first epoch end this long after the last
// checkpoint (CTSWEEP_CHECKPOINT_EVERY seconds, default 60; 0 = every
// epoch), and always when a signal stops them.
static double checkpoint_every(void) {
    const char *v = getenv("CTSWEEP_CHECKPOINT_EVERY");
    char *end;
    double d = v ? strtod(v, &end) : 60.0;
    return v && end != v && d >= 0 ? d : 60.0;
}

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

typedef struct {
    SweepConfig cfg;
    DataSet ds;
    ImageCache ic;
    Grid grid;
    int rank, size;
    char outdir[4096];
    OutdirClaim claim;  // what this run made in OUTDIR, undone when it is refused before training
    char host[64];
    // master
    TrialRecord *rec;
    int64_t *index[DATA_SPLITS];
    size_t n_split[DATA_SPLITS];
    int64_t *fold_val[DATA_MAX_FOLDS];  // k-fold: each fold's val rows (index[SPLIT_VAL] without k-fold)
    size_t fold_n_val[DATA_MAX_FOLDS];
    uint8_t *test_labels;
    char created[32];
    double t_start, cpu_start, last_manifest;  // cpu_start: the process's CPU seconds at t_start
    size_t n_done, n_failed, n_skipped_done;
    int interrupted;
    double last_progress;
    int progress_shown;
    CheckpointRef *ckpt;     // (n_runs) the latest checkpoint of each run
    Buf *resume_state;       // (n_runs) the state a resumed run starts from
    int manifest_dirty;
    char (*hosts)[64];        // (size) each rank's host, for messages that name a rank
    char *pending;            // (n_runs) runs still to hand out
    WorkerPool pool;          // the workers: busy, silent, retired; runs being retried
    char *trial_dirty;        // (n_trials) records newer than the trial's file
    double *flushed_at;       // (n_runs) when the run's trial files were last written
    MasterStats stats;
    int merging;              // sweep_merge: no resume messages
    const char *merged_from;  // sweep_merge: the source folders, one per line
    // worker
    FeatureCache *fc;
    char last_model[32];
    MPI_Comm group;  // the ranks that train one trial together (ranks_per_trial)
    int group_rank, group_size;
    char device[64];  // "cpu", or the bound GPU's name and UUID
    double last_alive;  // when this worker last told the master it is alive
    void *nccl;       // the group's NCCL communicator (CUDA groups of GPUs)
} Sweep;

// ---- shared set-up ----

static int path_exists(const char *p) {
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

static void remove_tree(const char *dir) { nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

// ---- waiting without spinning ----
// Open MPI's blocking calls poll at full speed: a rank with nothing to do
// (a worker waiting for work or for the end, the rest of a group waiting for
// its leader) would take a core from the ranks that train. These poll with a
// sleeping back-off instead, adding at most 2 ms of latency.

static void sleep_ms(double ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(fmod(ms, 1000.0) * 1e6)};
    nanosleep(&ts, NULL);
}

static void wait_quietly(MPI_Request *req) {
    double backoff = 0.02;
    for (;;) {
        int flag = 0;
        MPI_Test(req, &flag, MPI_STATUS_IGNORE);
        if (flag) return;
        sleep_ms(backoff);
        backoff = backoff * 2 > 2 ? 2 : backoff * 2;
    }
}

static void probe_quietly(int source, MPI_Comm comm, MPI_Status *st) {
    double backoff = 0.02;
    for (;;) {
        int flag = 0;
        MPI_Iprobe(source, MPI_ANY_TAG, comm, &flag, st);
        if (flag) return;
        sleep_ms(backoff);
        backoff = backoff * 2 > 2 ? 2 : backoff * 2;
    }
}

static void barrier_quietly(MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibarrier(comm, &req);
    wait_quietly(&req);
}

static void bcast_quietly(void *buf, int count, MPI_Datatype type, MPI_Comm comm) {
    MPI_Request req;
    MPI_Ibcast(buf, count, type, 0, comm, &req);
    wait_quietly(&req);
}

static int setup_data(Sweep *s, int dry_run, char *tmp_phantoms, CtError *err) {
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

static void run_budgets(const Sweep *s, const GridRun *run, size_t *budgets) {
    for (size_t k = 0; k < run->n_trials; k++) budgets[k] = s->grid.trials[run->trials[k]].epochs;
}

// ---- worker ----

typedef struct {
    Sweep *s;
    size_t run;
    size_t n_val, n_test;  // the run's fold's split sizes
    Buf buf;
    TrainState *st;
    double last_ckpt;
} WorkerCtx;

static void send_buf(Buf *b, int tag) {
    if (MPI_Send(b->p, (int)b->n, MPI_BYTE, 0, tag, MPI_COMM_WORLD) != MPI_SUCCESS) fatal("MPI_Send to the master failed");
}

// Forward declarations of the master's handlers (the one-rank path calls them directly).
static void master_epoch(Sweep *s, size_t run, const EpochRecord *r, const double *lr, size_t n_iters,
                         const float *vp, const float *tp, int rank);
static void master_budget(Sweep *s, size_t run, size_t budget, const float *tp, int rank);
static void master_checkpoint(Sweep *s, size_t run, size_t epoch, size_t iter, const void *blob, size_t len);
static void master_drop_checkpoint(Sweep *s, size_t run);
static void master_end(Sweep *s, size_t run, int ok, const char *error, double wall, uint64_t fwd, uint64_t hits,
                       const char *host, const char *device, int rank, int device_error);

// Sends (or, with one rank, records) the run's training state.
static void worker_checkpoint(WorkerCtx *w) {
    if (w->s->group_rank != 0) return;  // the group's ranks hold the same state
    Buf state = {0};
    train_state_save(w->st, &state);
    if (w->s->size == 1) {
        master_checkpoint(w->s, w->run, w->st->epoch, w->st->iter, state.p, state.n);
    } else {
        Buf *b = &w->buf;
        buf_reset(b);
        buf_put_u64(b, w->run);
        buf_put_u64(b, w->st->epoch);
        buf_put_u64(b, w->st->iter);
        buf_put_u64(b, state.n);
        buf_put(b, state.p, state.n);
        send_buf(b, TAG_CKPT);
    }
    buf_free(&state);
    w->last_ckpt = ct_now();
}

// Fault injection for tests: CTSWEEP_FAULT=<trial_id>:<epoch> makes the run
// holding that trial fail at the end of that epoch, before the epoch is
// reported, as a worker-side error would.
static int injected_fault(const Sweep *s, size_t run, size_t epoch, CtError *err) {
    const char *f = getenv("CTSWEEP_FAULT");
    if (!f) return 0;
    const GridRun *gr = &s->grid.runs[run];
    for (size_t k = 0; k < gr->n_trials; k++) {
        const char *id = s->grid.trials[gr->trials[k]].id;
        size_t n = strlen(id);
        if (strncmp(f, id, n) == 0 && f[n] == ':' && (size_t)atol(f + n + 1) == epoch)
            return ct_errorf(err, "injected fault (CTSWEEP_FAULT) at the end of epoch %zu, before it was recorded", epoch);
    }
    return 0;
}

// CTSWEEP_DEVICE_FAULT=<rank>: that rank's device is broken: every run it
// is given fails at once, before any backbone pass, as a broken GPU fails
// its first CUDA call (so the test does not race the other workers).
static int injected_device_fault(const Sweep *s, CtError *err) {
    const char *d = getenv("CTSWEEP_DEVICE_FAULT");
    if (d && atoi(d) == s->rank && s->size > 1)
        return ct_errorf(err, "CUDA: cudaStreamSynchronize failed: an illegal memory access was encountered "
                         "(injected by CTSWEEP_DEVICE_FAULT on rank %d)", s->rank);
    return 0;
}

static int w_on_epoch(void *ctx, const EpochRecord *r, const double *lr, size_t n_iters, const float *vp,
                      const float *tp, CtError *err) {
    WorkerCtx *w = ctx;
    if (injected_fault(w->s, w->run, r->epoch, err)) return -1;
    if (w->s->size == 1) {
        master_epoch(w->s, w->run, r, lr, n_iters, vp, tp, 0);
    } else if (w->s->group_rank == 0) {
        Buf *b = &w->buf;
        buf_reset(b);
        buf_put_u64(b, w->run);
        buf_put(b, r, sizeof *r);
        buf_put_u64(b, n_iters);
        buf_put(b, lr, n_iters * sizeof *lr);
        buf_put_u64(b, w->n_val);
        buf_put(b, vp, w->n_val * sizeof *vp);
        buf_put_u64(b, w->n_test);
        buf_put(b, tp, w->n_test * sizeof *tp);
        buf_put_f64(b, master_stats_clock());  // for the master's queueing delay
        send_buf(b, TAG_EPOCH);
    }
    return 0;
}

// Periodic checkpoints, at epoch ends once the epoch's budgets are reported
// (not after the last epoch: the run is then done).
static void w_epoch_reported(void *ctx, size_t epoch) {
    WorkerCtx *w = ctx;
    if (ct_now() - w->last_ckpt >= checkpoint_every() && epoch < w->st->total_iters / w->st->iters_per_epoch)
        worker_checkpoint(w);
}

static int w_on_budget(void *ctx, size_t budget, const float *tp, size_t best, double best_acc, CtError *err) {
    WorkerCtx *w = ctx;
    (void)err, (void)best, (void)best_acc;
    if (w->s->size == 1) {
        master_budget(w->s, w->run, budget, tp, 0);
        return 0;
    }
    if (w->s->group_rank != 0) return 0;
    Buf *b = &w->buf;
    buf_reset(b);
    buf_put_u64(b, w->run);
    buf_put_u64(b, budget);
    size_t nt = w->s->ds.count[SPLIT_TEST][0] + w->s->ds.count[SPLIT_TEST][1];
    buf_put_u64(b, nt);
    buf_put(b, tp, nt * sizeof *tp);
    send_buf(b, TAG_BUDGET);
    return 0;
}

static void group_allreduce_f32(void *ctx, float *buf, size_t n) {
    WorkerCtx *w = ctx;
#ifdef CTSWEEP_HAVE_CUDA
    if (w->s->nccl) {
        CtError err = {{0}};
        if (cuda_nccl_reserve(w->s->nccl, n, &err) || cuda_nccl_allreduce_host_f32(w->s->nccl, buf, n, &err))
            fatal("%s", err.msg);
        return;
    }
#endif
    if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, w->s->group) != MPI_SUCCESS)
        fatal("MPI_Allreduce of %zu gradients failed", n);
}

static void group_allreduce_f64(void *ctx, double *buf, size_t n) {
    WorkerCtx *w = ctx;
#ifdef CTSWEEP_HAVE_CUDA
    if (w->s->nccl) {
        CtError err = {{0}};
        if (cuda_nccl_reserve(w->s->nccl, n, &err) || cuda_nccl_allreduce_host_f64(w->s->nccl, buf, n, &err))
            fatal("%s", err.msg);
        return;
    }
#endif
    if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, w->s->group) != MPI_SUCCESS)
        fatal("MPI_Allreduce failed");
}

// Called before each batch of a backbone pass: tells the master now and then
// that this worker is alive (a pass over a large data set sends nothing
// else for minutes), and stops the pass on a signal when this worker trains
// alone (a data-parallel group's ranks must stop together, in the trainer).
static int worker_backbone_tick(void *ctx) {
    Sweep *s = ctx;
    double every = s->cfg.worker_timeout / 4 < 60 ? s->cfg.worker_timeout / 4 : 60;
    if (s->size > 1 && s->group_rank == 0 && ct_now() - s->last_alive >= every) {
        uint64_t v = 0;
        if (MPI_Send(&v, (int)sizeof v, MPI_BYTE, 0, TAG_ALIVE, MPI_COMM_WORLD) != MPI_SUCCESS)
            fatal("MPI_Send to the master failed");
        s->last_alive = ct_now();
    }
    return s->group_size == 1 && stopsig_requested();
}

// Reports how a run ended (outcome: 1 done, 2 interrupted, 0 failed with error).
static void worker_end(WorkerCtx *w, int outcome, const char *error, double wall, uint64_t fwd, uint64_t hits) {
    Sweep *s = w->s;
    if (s->size == 1) {
        master_end(s, w->run, outcome, error, wall, fwd, hits, s->host, s->device, 0, 0);
    } else if (s->group_rank == 0) {
        Buf *b = &w->buf;
        buf_reset(b);
        buf_put_u64(b, w->run);
        buf_put_u64(b, (uint64_t)outcome);
        buf_put_str(b, outcome == 0 ? error : "");
        buf_put_f64(b, wall);
        buf_put_u64(b, fwd);
        buf_put_u64(b, hits);
        buf_put_str(b, s->host);
        buf_put_str(b, s->device);
        buf_put_u64(b, outcome == 0 && pool_is_device_error(error));
        send_buf(b, TAG_END);
    }
}

// ---- simulated training (bench/master_scale) ----
// CTSWEEP_SIMULATE_EPOCH_MS=N: workers compute nothing and send a synthetic
// epoch (and budget reports) every N ms, so that the master's share of a
// sweep with hundreds of fast workers can be measured on one machine. The
// results are well-formed files of made-up numbers.
static double simulate_epoch_ms(void) {
    const char *v = getenv("CTSWEEP_SIMULATE_EPOCH_MS");
    return v && v[0] ? atof(v) : -1.0;
}

static void worker_simulate(Sweep *s, size_t run_index, double ms) {
    const GridRun *run = &s->grid.runs[run_index];
    size_t budgets[TRAIN_MAX_BUDGETS];
    run_budgets(s, run, budgets);
    size_t last = 0;
    for (size_t k = 0; k < run->n_trials; k++) last = budgets[k] > last ? budgets[k] : last;
    size_t n_train = folds_count(&s->ds, run->fold, SPLIT_TRAIN);
    size_t ipe = (n_train + run->batch_size - 1) / run->batch_size;
    size_t nv = folds_count(&s->ds, run->fold, SPLIT_VAL), nt = folds_count(&s->ds, run->fold, SPLIT_TEST);
    double *lr = ct_malloc_array(ipe ? ipe : 1, sizeof *lr);
    float *vp = ct_malloc_array(nv ? nv : 1, sizeof *vp), *tp = ct_malloc_array(nt ? nt : 1, sizeof *tp);
    for (size_t i = 0; i < ipe; i++) lr[i] = run->clr.base_lr;
    for (size_t i = 0; i < nv; i++) vp[i] = (float)((i * 37) % 100) / 100.0f;
    for (size_t i = 0; i < nt; i++) tp[i] = (float)((i * 53) % 100) / 100.0f;
    WorkerCtx w = {.s = s, .run = run_index, .n_val = nv, .n_test = nt};
    CtError err = {{0}};
    double t0 = ct_now();
    int outcome = 1;
    for (size_t e = 1; e <= last; e++) {
        if (stopsig_requested()) {
            outcome = 2;
            break;
        }
        sleep_ms(ms);
        EpochRecord r = {.epoch = e, .lr = run->clr.base_lr, .train_loss = 1.0 / (double)(e + 1), .train_acc = 0.5,
                         .val_loss = 1.0 / (double)(e + 1), .val_acc = 0.5 + 0.4 * (double)e / (double)last,
                         .val_auc = 0.5, .seconds = ms / 1000.0};
        w_on_epoch(&w, &r, lr, ipe, vp, tp, &err);
        for (size_t k = 0; k < run->n_trials; k++)
            if (budgets[k] == e) w_on_budget(&w, e, tp, e, r.val_acc, &err);
    }
    worker_end(&w, outcome, "", ct_now() - t0, 0, 0);
    buf_free(&w.buf);
    free(lr);
    free(vp);
    free(tp);
}

// Runs one run of the grid on this rank; reports through the hooks.
static void worker_run(Sweep *s, size_t run_index, const void *blob, size_t blob_len) {
    double sim = simulate_epoch_ms();
    if (sim >= 0) {
        worker_simulate(s, run_index, sim);
        return;
    }
    const SweepConfig *c = &s->cfg;
    const GridRun *run = &s->grid.runs[run_index];
    double t0 = ct_now();
    CtError err = {{0}};
    FeatureSpec fs;
    memset(&fs, 0, sizeof fs);
    snprintf(fs.model, sizeof fs.model, "%s", run->model);
    int mi = config_model_index(run->model);
    snprintf(fs.weights, sizeof fs.weights, "%s", mi >= 0 ? c->weights[mi] : "");
    snprintf(fs.weights_sha256, sizeof fs.weights_sha256, "%s", grid_weights_sha256(&s->grid, run->model));
    fs.backbone_seed = c->backbone_seed;
    fs.image_size = c->image_size;
    fs.norm = c->normalize;
    fs.aug = c->augment;
    fs.aug_seed = c->augment_seed;
    fs.backend = c->backend;
    fs.batch = c->feature_batch;
    fs.unfreeze = run->unfreeze;
    TrainSpec ts;
    memset(&ts, 0, sizeof ts);
    ts.tail = (TailSpec){.unfreeze = run->unfreeze, .backbone_lr_scale = c->backbone_lr_scale,
                         .weights = fs.weights, .backbone_seed = c->backbone_seed, .image_size = c->image_size,
                         .backend = c->backend.kind};
    snprintf(ts.tail.model, sizeof ts.tail.model, "%s", run->model);
    ts.head = c->head;
    if (!c->head_hidden_set || !c->head_dropout_set) {
        HeadSpec def;
        head_spec_default(&def, run->model, 0);
        if (!c->head_hidden_set) {
            memcpy(ts.head.hidden, def.hidden, sizeof def.hidden);
            ts.head.n_hidden = def.n_hidden;
        }
        if (!c->head_dropout_set) ts.head.dropout = def.dropout;
    }
    ts.adam = c->adam;
    ts.clr = run->clr;
    ts.batch_size = run->batch_size;
    ts.n_budgets = run->n_trials;
    run_budgets(s, run, ts.budgets);
    ts.seed = run->seed;
    FeatureStats before = fcache_stats(s->fc);
    TrainState st;
    memset(&st, 0, sizeof st);
    WorkerCtx w = {.s = s, .run = run_index, .st = &st, .last_ckpt = ct_now(),
                   .n_val = folds_count(&s->ds, run->fold, SPLIT_VAL), .n_test = folds_count(&s->ds, run->fold, SPLIT_TEST)};
    TrainHooks hooks = {.on_epoch = w_on_epoch, .on_budget = w_on_budget, .epoch_reported = w_epoch_reported,
                        .should_stop = stop_requested, .ctx = &w,
                        .dp_rank = s->group_rank, .dp_size = s->group_size,
                        .allreduce_f32 = group_allreduce_f32, .allreduce_f64 = group_allreduce_f64};
    // A CPU tail sums its gradients with the backend's MPI allreduce over the
    // group; a GPU tail through host memory (the group has no NCCL communicator).
    if (s->group_size > 1 && c->backend.kind == BACKEND_CPU) hooks.dp_comm = &s->group;
    TrialInputs in = {.cache = s->fc, .features = &fs, .ds = &s->ds, .images = &s->ic, .fold = run->fold};
    s->last_alive = ct_now();
    fcache_set_stop(s->fc, worker_backbone_tick, s);
    int rc = injected_device_fault(s, &err) ? -1 : trial_resume(&in, &st, &ts, &hooks, blob, blob_len, &err);
    if (rc < 0 && fcache_stopped(s->fc)) {
        rc = 1;  // stopped at a backbone batch: the run is interrupted, not failed
        if (st.iter > 0 && st.iter < st.total_iters) worker_checkpoint(&w);
    } else if (rc == 1) {
        worker_checkpoint(&w);  // stopped by a signal at a batch boundary
    }
    train_state_free(&st);
    trial_inputs_free(&in);
    snprintf(s->last_model, sizeof s->last_model, "%s", run->model);
    FeatureStats after = fcache_stats(s->fc);
    uint64_t fwd = after.forwards - before.forwards, hits = after.hits - before.hits;
    double wall = ct_now() - t0;
    int outcome = rc == 0 ? 1 : rc == 1 ? 2 : 0;  // done, interrupted, failed
    worker_end(&w, outcome, err.msg, wall, fwd, hits);
    buf_free(&w.buf);
}

// The group leader asks the master for work and passes each answer to the
// rest of its group (ranks_per_trial > 1), which trains the same run.
static void worker_loop(Sweep *s) {
    Buf in = {0};
    int leader = s->group_rank == 0;
    if (leader) {
        Buf b = {0};
        buf_put_u64(&b, UINT64_MAX);  // an empty END asks for work
        send_buf(&b, TAG_END);
        buf_free(&b);
    }
    for (;;) {
        uint64_t kind = 0, len = 0;
        if (leader) {
            MPI_Status stt;
            probe_quietly(0, MPI_COMM_WORLD, &stt);
            int count;
            MPI_Get_count(&stt, MPI_BYTE, &count);
            buf_reset(&in);
            if ((size_t)count > in.cap) {
                in.p = ct_realloc(in.p, (size_t)count);
                in.cap = (size_t)count;
            }
            MPI_Recv(in.p, count, MPI_BYTE, 0, stt.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            kind = (uint64_t)stt.MPI_TAG;
            len = (uint64_t)count;
        }
        if (s->group_size > 1) {
            uint64_t head[2] = {kind, len};
            bcast_quietly(head, 2, MPI_UINT64_T, s->group);
            kind = head[0];
            len = head[1];
            if (!leader && len > in.cap) {
                in.p = ct_realloc(in.p, (size_t)len);
                in.cap = (size_t)len;
            }
            if (len) bcast_quietly(in.p, (int)len, MPI_BYTE, s->group);
        }
        if (kind == TAG_STOP) break;
        Rd r;
        rd_init(&r, in.p, (size_t)len);
        uint64_t run = rd_u64(&r), blen = rd_u64(&r);
        const void *blob = blen ? rd_view(&r, (size_t)blen) : NULL;
        if (r.bad || run >= s->grid.n_runs) fatal("malformed ASSIGN message");
        worker_run(s, (size_t)run, blob, (size_t)blen);
    }
    buf_free(&in);
}

// ---- master ----

static void trial_path(const Sweep *s, size_t t, char *buf, size_t n) {
    snprintf(buf, n, "%s/trials/%s.h5", s->outdir, s->grid.trials[t].id);
}

// A trial's val rows: its fold's (k-fold), else the val split's.
static const int64_t *trial_val_index(const Sweep *s, const GridTrial *t) {
    return t->fold >= 0 ? s->fold_val[t->fold] : s->index[SPLIT_VAL];
}

// An empty record sized for the trial's fold.
static void trial_record_for(const Sweep *s, const GridTrial *t, TrialRecord *r) {
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

static void write_trial(Sweep *s, size_t t) {
    char path[4200];
    trial_path(s, t, path, sizeof path);
    CtError err = {{0}};
    const CheckpointRef *ck = s->ckpt && s->rec[t].status != TRIAL_DONE ? &s->ckpt[s->grid.trials[t].run] : NULL;
    if (trial_file_write(path, &s->grid.trials[t], &s->rec[t], trial_val_index(s, &s->grid.trials[t]),
                         s->index[SPLIT_TEST], ck, &err))
        results_unwritable(err.msg);
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

static void write_manifest(Sweep *s, const char *state) {
    ManifestView m = {.cfg = &s->cfg, .ds = &s->ds, .grid = &s->grid, .records = s->rec, .created_utc = s->created,
                      .state = state, .merged_from = s->merged_from};
    CtError err = {{0}};
    if (manifest_write(s->outdir, &m, &err)) results_unwritable(err.msg);
    s->manifest_dirty = 0;
    s->stats.file_writes++;
    s->last_manifest = ct_now();
}

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
static void progress_clear(Sweep *s) {
    if (s->progress_shown) printf("\r\033[K");
    s->progress_shown = 0;
}

static void master_epoch(Sweep *s, size_t run, const EpochRecord *r, const double *lr, size_t n_iters,
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

static void master_budget(Sweep *s, size_t run, size_t budget, const float *tp, int rank) {
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

// A finished run's checkpoint is deleted (a VGG head's is ~156 MB; a large
// grid would keep hundreds of GB), once every trial file of the run says
// done and no longer points at it. A run with a failed trial keeps it, for
// --retry-failed.
static void master_drop_checkpoint(Sweep *s, size_t run) {
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
static void master_take_checkpoint(Sweep *s, size_t run) {
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
static void master_checkpoint(Sweep *s, size_t run, size_t epoch, size_t iter, const void *blob, size_t len) {
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
static void master_end(Sweep *s, size_t run, int outcome, const char *error, double wall, uint64_t fwd,
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
static long pick_run(const Sweep *s, const char *pending, const char *model, char (*model_of)[32], int self) {
    long r = pick_run_from(s, pending, model, model_of, self, 1);
    if (r < 0 && s->pool.avoid && pool_others_active(&s->pool, self) == 0)
        r = pick_run_from(s, pending, model, model_of, self, 0);
    return r;
}

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

static void master_loop(Sweep *s, char *pending) {
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
        uint64_t run = rd_u64(&r);
        int src = st.MPI_SOURCE;
        pool_heard(&s->pool, src, ct_now());
        if (st.MPI_TAG == TAG_ALIVE) {
            continue;
        } else if (st.MPI_TAG == TAG_EPOCH) {
            EpochRecord rec;
            rd_get(&r, &rec, sizeof rec);
            uint64_t ni = rd_u64(&r);
            const double *lr = rd_view(&r, ni * sizeof(double));
            uint64_t nv = rd_u64(&r);
            const float *vp = rd_view(&r, nv * sizeof(float));
            uint64_t nt = rd_u64(&r);
            const float *tp = rd_view(&r, nt * sizeof(float));
            double sent_at = rd_f64(&r);
            if (r.bad || run >= s->grid.n_runs) fatal("malformed EPOCH message from rank %d", src);
            // The start-up check makes the data sets equal; a difference here is a bug, never data to store.
            const TrialRecord *first = &s->rec[s->grid.runs[run].trials[0]];  // the run's fold's sizes
            if (nv != first->n_val || nt != first->n_test)
                fatal("EPOCH message from rank %d on %s: %llu val and %llu test probabilities, expected %zu and %zu",
                      src, s->hosts ? s->hosts[src] : "?", (unsigned long long)nv, (unsigned long long)nt,
                      first->n_val, first->n_test);
            // Copy: the views may be unaligned.
            double *lrc = ct_malloc_array(ni ? ni : 1, sizeof *lrc);
            float *vpc = ct_malloc_array(nv ? nv : 1, sizeof *vpc);
            float *tpc = ct_malloc_array(nt ? nt : 1, sizeof *tpc);
            memcpy(lrc, lr, ni * sizeof *lrc);
            memcpy(vpc, vp, nv * sizeof *vpc);
            memcpy(tpc, tp, nt * sizeof *tpc);
            master_stats_delay(&s->stats, master_stats_clock() - sent_at);
            master_epoch(s, (size_t)run, &rec, lrc, (size_t)ni, vpc, tpc, src);
            free(lrc);
            free(vpc);
            free(tpc);
        } else if (st.MPI_TAG == TAG_BUDGET) {
            uint64_t budget = rd_u64(&r), nt = rd_u64(&r);
            const float *tp = rd_view(&r, nt * sizeof(float));
            if (r.bad || run >= s->grid.n_runs) fatal("malformed BUDGET message from rank %d", src);
            if (nt != s->n_split[SPLIT_TEST])
                fatal("BUDGET message from rank %d on %s holds %llu test probabilities; the data set has %zu test images",
                      src, s->hosts ? s->hosts[src] : "?", (unsigned long long)nt, s->n_split[SPLIT_TEST]);
            float *tpc = ct_malloc_array(nt ? nt : 1, sizeof *tpc);
            memcpy(tpc, tp, nt * sizeof *tpc);
            master_budget(s, (size_t)run, (size_t)budget, tpc, src);
            free(tpc);
        } else if (st.MPI_TAG == TAG_CKPT) {
            uint64_t epoch = rd_u64(&r), iter = rd_u64(&r), len = rd_u64(&r);
            const void *blob = rd_view(&r, (size_t)len);
            if (r.bad || run >= s->grid.n_runs) fatal("malformed CKPT message from rank %d", src);
            master_checkpoint(s, (size_t)run, (size_t)epoch, (size_t)iter, blob, (size_t)len);
        } else if (st.MPI_TAG == TAG_END) {
            if (run != UINT64_MAX) {
                uint64_t ok = rd_u64(&r);
                char error[512], host[64], device[64];
                rd_str(&r, error, sizeof error);
                double wall = rd_f64(&r);
                uint64_t fwd = rd_u64(&r), hits = rd_u64(&r);
                rd_str(&r, host, sizeof host);
                rd_str(&r, device, sizeof device);
                uint64_t device_error = rd_u64(&r);
                if (r.bad || run >= s->grid.n_runs) fatal("malformed END message from rank %d", src);
                int retire = pool_run_ended(&s->pool, src, ok == 0, device_error != 0);
                if (retire) s->pool.gone[src] = 1;  // before master_end: its run is retried elsewhere
                master_end(s, (size_t)run, (int)ok, error, wall, fwd, hits, host, device, src, (int)device_error);
                snprintf(model_of[src], sizeof model_of[src], "%s", s->grid.runs[run].model);
                if (retire) {
                    progress_clear(s);
                    ct_warn("rank %d on %s (%s) retired for the rest of the job: two runs in a row failed with "
                            "device errors (last: %s); its runs go to the other workers", src, host, device, error);
                    model_of[src][0] = '\0';
                }
            }
            long next = stopsig_requested() || s->pool.gone[src]
                            ? -1
                            : pick_run(s, pending, model_of[src][0] ? model_of[src] : NULL, model_of, src);
            if (next >= 0) {
                pending[next] = 0;
                snprintf(model_of[src], sizeof model_of[src], "%s", s->grid.runs[next].model);
                master_take_checkpoint(s, (size_t)next);
                s->pool.run[src] = next;
                Buf *rs = &s->resume_state[next];
                Buf out = {0};
                buf_put_u64(&out, (uint64_t)next);
                buf_put_u64(&out, rs->n);
                buf_put(&out, rs->p, rs->n);
                MPI_Send(out.p, (int)out.n, MPI_BYTE, src, TAG_ASSIGN, MPI_COMM_WORLD);
                buf_free(&out);
                buf_free(rs);
            } else {
                uint64_t v = 0;
                MPI_Send(&v, (int)sizeof v, MPI_BYTE, src, TAG_STOP, MPI_COMM_WORLD);
                s->pool.gone[src] = 1;
                workers--;
            }
        } else {
            fatal("unexpected message tag %d from rank %d", st.MPI_TAG, src);
        }
    }
    buf_free(&b);
    free(model_of);
}

// Split rows of the data set and test labels, for the results.
static void master_index(Sweep *s) {
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

// Takes over what an earlier run of this sweep left in OUT: finished trials
// are kept; a run with a checkpoint continues from it (its trials keep their
// records up to the checkpoint); other unfinished runs start again, which
// gives the same results (training is deterministic).
static void master_resume(Sweep *s, char *pending, int retry_failed) {
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

// What identifies a stored sweep: its manifest's root attributes, each NULL
// when absent or not one string.
typedef struct {
    char *yaml, *config_path, *fingerprint, *slice, *created, *merged_from;
    size_t slice_i, slice_n;  // the slice, parsed (by merge_sources)
} StoredSweep;

// Reads the manifest at path once; -1 when it does not open.
static int stored_sweep_read(const char *path, StoredSweep *m) {
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

static void stored_sweep_free(StoredSweep *m) {
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
static int check_resume_config(Sweep *s, CtError *err) {
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

// Everything a Sweep holds, and the Sweep.
static void sweep_free(Sweep *s) {
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
#ifdef CTSWEEP_HAVE_CUDA
    if (s->nccl) {
        CtError nerr = {{0}};
        if (cuda_nccl_free(s->nccl, &nerr)) fprintf(stderr, "ctsweep: warning: rank %d: %s\n", s->rank, nerr.msg);
    }
#endif
    if (s->group != MPI_COMM_NULL && s->group != 0) MPI_Comm_free(&s->group);
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
    int color = s->size == 1 ? 0 : s->rank == 0 ? MPI_UNDEFINED : (s->rank - 1) / (int)G;
    MPI_Comm_split(MPI_COMM_WORLD, color, s->rank, &s->group);
    s->group_rank = 0;
    s->group_size = 1;
    if (s->group != MPI_COMM_NULL) {
        MPI_Comm_rank(s->group, &s->group_rank);
        MPI_Comm_size(s->group, &s->group_size);
    }
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
#ifdef CTSWEEP_HAVE_CUDA
    if (s->cfg.backend.kind == BACKEND_CUDA && s->group_size > 1 && s->group != MPI_COMM_NULL && !a->dry_run) {
        CudaNccl *nc = NULL;
        int r = cuda_nccl_create(&nc, s->group, 0, NULL, &err);  // set-up 900 s, teardown 20 s
        if (r == CUDA_NCCL_SHARED_GPU) {
            if (s->group_rank == 0) ct_info("rank %d: %s; the group reduces with MPI", s->rank, err.msg);
            err.msg[0] = '\0';
        } else if (r != 0) {
            ok = 0;
        }
        s->nccl = nc;
    }
    if (!agree(ok)) goto fail;
#endif

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

// ---- merge ----

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
