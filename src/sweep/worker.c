/*
 * worker.c — a worker rank: it asks the master for runs, trains each (the
 * feature cache, the trainer, checkpoints), and reports every epoch, epoch
 * budget, checkpoint and ending through the protocol's messages. A group of
 * ranks_per_trial ranks trains one run data-parallel: its leader talks to
 * the master and passes each assignment to the rest. With one rank the
 * reports go to the master's handlers directly.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ops.h"
#include "data/folds.h"
#include "sweep/protocol.h"
#include "sweep/quiet_wait.h"
#include "sweep/sweep_internal.h"
#include "train/keep.h"
#include "train/trial.h"
#include "util/stopsig.h"

// ---- helpers ----

static int stop_requested(void *ctx) {
    (void)ctx;
    return stopsig_requested();
}

// Workers checkpoint a run at the first epoch end this long after the last
// checkpoint (CTSWEEP_CHECKPOINT_EVERY seconds, default 60; 0 = every
// epoch), and always when a signal stops them.
static double checkpoint_every(void) {
    const char *v = getenv("CTSWEEP_CHECKPOINT_EVERY");
    char *end;
    double d = v ? strtod(v, &end) : 60.0;
    return v && end != v && d >= 0 ? d : 60.0;
}

static void run_budgets(const Sweep *s, const GridRun *run, size_t *budgets) {
    for (size_t k = 0; k < run->n_trials; k++) budgets[k] = s->grid.trials[run->trials[k]].epochs;
}

// ---- reports ----

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

// Sends (or, with one rank, records) the run's training state.
static void worker_checkpoint(WorkerCtx *w) {
    if (w->s->group_rank != 0) return;  // the group's ranks hold the same state
    Buf state = {0};
    train_state_save(w->st, &state);
    if (w->s->size == 1) {
        master_checkpoint(w->s, w->run, w->st->epoch, w->st->iter, state.p, state.n);
    } else {
        CheckpointMsg m = {.run = w->run, .epoch = w->st->epoch, .iter = w->st->iter, .state = state.p,
                           .state_len = state.n};
        buf_reset(&w->buf);
        checkpoint_msg_encode(&m, &w->buf);
        send_buf(&w->buf, MSG_CHECKPOINT);
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
        EpochMsg m = {.run = w->run, .rec = *r, .n_iters = n_iters, .n_val = w->n_val, .n_test = w->n_test,
                      .lr = lr, .val_prob = vp, .test_prob = tp,
                      .sent_at = master_stats_clock()};  // for the master's queueing delay
        buf_reset(&w->buf);
        epoch_msg_encode(&m, &w->buf);
        send_buf(&w->buf, MSG_EPOCH);
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

// The budget's kept weights (train.keep_weights), each kind its own
// message, before the BUDGET that makes the trial done: the group's leader
// sends them (its ranks hold the same weights).
static int send_weights(WorkerCtx *w, size_t budget, CtError *err) {
    const TrainState *st = w->st;
    for (int kind = KEEP_SELECTED; st && kind <= KEEP_FINAL; kind <<= 1) {
        if (!(st->keep & kind)) continue;
        if (kind == KEEP_SELECTED && (st->sel_lost || !st->sel_epoch || !st->sel)) {
            ct_warn("run %zu: the selected epoch's weights were not in the checkpoint it resumed from; the trial at "
                    "budget %zu keeps no selected weights", w->run, budget);
            continue;
        }
        WeightsMsg m = {.run = w->run, .budget = budget};
        train_keep_table(st, &m.w);
        m.w.kind = kind;
        m.w.epoch = kind == KEEP_SELECTED ? st->sel_epoch : st->epoch;
        m.w.data = kind == KEEP_SELECTED ? st->sel : NULL;
        buf_reset(&w->buf);
        weights_msg_encode(&m, &w->buf);
        if (!m.w.data) train_keep_put(st, &w->buf);  // the final weights, straight into the message
        free(m.w.tensors);
        if (w->buf.n > (size_t)INT_MAX)
            return ct_errorf(err, "the %s weights (%zu MiB) do not fit one MPI message: set train.keep_weights: none",
                             keep_kind_name(kind), w->buf.n >> 20);
        if (w->s->size > 1) {
            send_buf(&w->buf, MSG_WEIGHTS);
        } else {
            Rd r;  // one rank: the master's handler directly, through the same bytes
            rd_init(&r, w->buf.p, w->buf.n);
            WeightsMsg d;
            if (weights_msg_decode(&r, &d)) fatal("WEIGHTS message does not decode");
            master_weights(w->s, w->run, budget, &d.w);
        }
        buf_free(&w->buf);  // the weights' size; the next messages are small
    }
    return 0;
}

static int w_on_budget(void *ctx, size_t budget, const float *tp, size_t best, double best_acc, CtError *err) {
    WorkerCtx *w = ctx;
    (void)best, (void)best_acc;
    if (w->s->group_rank == 0 && send_weights(w, budget, err)) return -1;
    if (w->s->size == 1) {
        master_budget(w->s, w->run, budget, tp, 0);
        return 0;
    }
    if (w->s->group_rank != 0) return 0;
    size_t nt = w->s->ds.count[SPLIT_TEST][0] + w->s->ds.count[SPLIT_TEST][1];
    BudgetMsg m = {.run = w->run, .budget = budget, .n_test = nt, .test_prob = tp};
    buf_reset(&w->buf);
    budget_msg_encode(&m, &w->buf);
    send_buf(&w->buf, MSG_BUDGET);
    return 0;
}

// ---- data-parallel groups ----

static void group_allreduce_f32(void *ctx, float *buf, size_t n) {
    WorkerCtx *w = ctx;
    if (w->s->nccl) {
        CtError err = {{0}};
        if (backend_group_allreduce_host(w->s->nccl, buf, n, 0, &err)) fatal("%s", err.msg);
        return;
    }
    // Host memory: the CPU backend's allreduce over the group's communicator
    // (the one a CPU tail's gradients take through TrainHooks.dp_comm), so
    // the MPI reduction of gradients lives in the backend.
    CtError err = {{0}};
    const BackendOps *cpu = backend_ops_get(BACKEND_CPU, &err);
    if (!cpu || cpu->allreduce_sum(&w->s->group, buf, n, &err)) fatal("%s", err.msg);
}

static void group_allreduce_f64(void *ctx, double *buf, size_t n) {
    WorkerCtx *w = ctx;
    if (w->s->nccl) {
        CtError err = {{0}};
        if (backend_group_allreduce_host(w->s->nccl, buf, n, 1, &err)) fatal("%s", err.msg);
        return;
    }
    if (MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, w->s->group) != MPI_SUCCESS)
        fatal("MPI_Allreduce failed");
}

// ---- backbone passes ----

// Called before each batch of a backbone pass: tells the master now and then
// that this worker is alive (a pass over a large data set sends nothing
// else for minutes), and stops the pass on a signal when this worker trains
// alone (a data-parallel group's ranks must stop together, in the trainer).
static int worker_backbone_tick(void *ctx) {
    Sweep *s = ctx;
    double every = s->cfg.worker_timeout / 4 < 60 ? s->cfg.worker_timeout / 4 : 60;
    if (s->size > 1 && s->group_rank == 0 && ct_now() - s->last_alive >= every) {
        Buf b = {0};
        alive_msg_encode(&(AliveMsg){0}, &b);
        send_buf(&b, MSG_ALIVE);
        buf_free(&b);
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
        EndMsg m = {.run = w->run, .outcome = outcome, .wall = wall, .forwards = fwd, .hits = hits,
                    .device_error = outcome == 0 && pool_is_device_error(error)};
        snprintf(m.error, sizeof m.error, "%s", outcome == 0 ? error : "");
        snprintf(m.host, sizeof m.host, "%s", s->host);
        snprintf(m.device, sizeof m.device, "%s", s->device);
        buf_reset(&w->buf);
        end_msg_encode(&m, &w->buf);
        send_buf(&w->buf, MSG_END);
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

// ---- runs ----

// Runs one run of the grid on this rank; reports through the hooks.
void worker_run(Sweep *s, size_t run_index, const void *blob, size_t blob_len) {
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
                         .backend = c->backend.kind, .conv_algo = c->backend.conv_algo,
                         .device_cache_bytes = c->gpu_cache_mb << 20,
                         .device_cache_always = getenv("CTSWEEP_DEVICE_CACHE_ON_CPU") != NULL};
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
    ts.keep_weights = s->group_rank == 0 ? (int)c->keep_weights : KEEP_NONE;  // the leader sends them
    FeatureStats before = fcache_stats(s->fc);
    TrainState st;
    memset(&st, 0, sizeof st);
    WorkerCtx w = {.s = s, .run = run_index, .st = &st, .last_ckpt = ct_now(),
                   .n_val = folds_count(&s->ds, run->fold, SPLIT_VAL), .n_test = folds_count(&s->ds, run->fold, SPLIT_TEST)};
    TrainHooks hooks = {.on_epoch = w_on_epoch, .on_budget = w_on_budget, .epoch_reported = w_epoch_reported,
                        .should_stop = stop_requested, .ctx = &w,
                        .dp_rank = s->group_rank, .dp_size = s->group_size,
                        .allreduce_f32 = group_allreduce_f32, .allreduce_f64 = group_allreduce_f64};
    // A tail sums its gradients with its backend's allreduce: MPI over the
    // group on the CPU, NCCL on the device on GPUs (through host memory when
    // the group's ranks share a GPU and have no NCCL communicator).
    if (s->group_size > 1) hooks.dp_comm = c->backend.kind == BACKEND_CPU ? (void *)&s->group : s->nccl;
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
void worker_loop(Sweep *s) {
    Buf in = {0};
    int leader = s->group_rank == 0;
    if (leader) {
        Buf b = {0};
        end_msg_encode(&(EndMsg){.run = MSG_NO_RUN}, &b);  // an END of no run asks for work
        send_buf(&b, MSG_END);
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
        if (kind == MSG_STOP) break;
        Rd r;
        rd_init(&r, in.p, (size_t)len);
        AssignMsg m;
        if (kind != MSG_ASSIGN || assign_msg_decode(&r, &m) || m.run >= s->grid.n_runs)
            fatal("malformed ASSIGN message");
        worker_run(s, (size_t)m.run, m.state, m.state_len);
    }
    buf_free(&in);
}
