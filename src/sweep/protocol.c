/*
 * protocol.c — the master/worker messages, each encode beside its decode
 * (see protocol.h).
 */
#include "sweep/protocol.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

// ---- helpers ----

// A count and then that many elements of size bytes.
static void put_array(Buf *b, const void *p, size_t count, size_t size) {
    buf_put_u64(b, count);
    buf_put(b, p, count * size);
}

// A view of a count and its elements; NULL and bad when the count is more
// than the bytes that follow (checked before the count is multiplied).
static const void *rd_array(Rd *r, size_t size, size_t *count) {
    uint64_t n = rd_u64(r);
    if (r->bad || n > (r->n - r->off) / size) {
        r->bad = 1;
        *count = 0;
        return NULL;
    }
    *count = (size_t)n;
    return rd_view(r, (size_t)n * size);
}

// The end of a message: all of it read, nothing left over.
static int rd_done(const Rd *r) { return r->bad || r->off != r->n ? -1 : 0; }

// ---- EPOCH ----

void epoch_msg_encode(const EpochMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    buf_put(b, &m->rec, sizeof m->rec);
    put_array(b, m->lr, m->n_iters, sizeof *m->lr);
    put_array(b, m->val_prob, m->n_val, sizeof *m->val_prob);
    put_array(b, m->test_prob, m->n_test, sizeof *m->test_prob);
    buf_put_f64(b, m->sent_at);
}

int epoch_msg_decode(Rd *r, EpochMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    rd_get(r, &m->rec, sizeof m->rec);
    const void *lr = rd_array(r, sizeof(double), &m->n_iters);
    const void *vp = rd_array(r, sizeof(float), &m->n_val);
    const void *tp = rd_array(r, sizeof(float), &m->n_test);
    m->sent_at = rd_f64(r);
    if (rd_done(r)) return -1;
    // One block: the doubles first, so that each array is aligned. The
    // counts fit in the message, so the sum cannot overflow.
    size_t nl = m->n_iters * sizeof(double), nv = m->n_val * sizeof(float), nt = m->n_test * sizeof(float);
    uint8_t *own = ct_malloc(nl + nv + nt ? nl + nv + nt : 1);
    memcpy(own, lr, nl);
    memcpy(own + nl, vp, nv);
    memcpy(own + nl + nv, tp, nt);
    m->own = own;
    m->lr = (const double *)own;
    m->val_prob = (const float *)(own + nl);
    m->test_prob = (const float *)(own + nl + nv);
    return 0;
}

void epoch_msg_free(EpochMsg *m) {
    free(m->own);
    m->own = NULL;
    m->lr = NULL;
    m->val_prob = m->test_prob = NULL;
}

// ---- BUDGET ----

void budget_msg_encode(const BudgetMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    buf_put_u64(b, m->budget);
    put_array(b, m->test_prob, m->n_test, sizeof *m->test_prob);
}

int budget_msg_decode(Rd *r, BudgetMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    m->budget = rd_u64(r);
    const void *tp = rd_array(r, sizeof(float), &m->n_test);
    if (rd_done(r)) return -1;
    float *own = ct_malloc_array(m->n_test ? m->n_test : 1, sizeof *own);
    memcpy(own, tp, m->n_test * sizeof *own);
    m->own = own;
    m->test_prob = own;
    return 0;
}

void budget_msg_free(BudgetMsg *m) {
    free(m->own);
    m->own = NULL;
    m->test_prob = NULL;
}

// ---- WEIGHTS ----

void weights_msg_encode(const WeightsMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    buf_put_u64(b, m->budget);
    buf_put_u64(b, (uint64_t)m->w.kind);
    buf_put_u64(b, m->w.epoch);
    buf_put_u64(b, m->w.n_tensors);
    for (size_t i = 0; i < m->w.n_tensors; i++) {
        const KeptTensor *t = &m->w.tensors[i];
        buf_put_str(b, t->name);
        buf_put_u64(b, t->ndim);
        for (size_t d = 0; d < t->ndim; d++) buf_put_u64(b, t->shape[d]);
    }
    buf_put_u64(b, m->w.n_floats);
    if (m->w.data) buf_put(b, m->w.data, m->w.n_floats * sizeof(float));
}

int weights_msg_decode(Rd *r, WeightsMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    m->budget = rd_u64(r);
    uint64_t kind = rd_u64(r);
    m->w.kind = kind == KEEP_FINAL ? KEEP_FINAL : KEEP_SELECTED;
    m->w.epoch = (size_t)rd_u64(r);
    uint64_t nt = rd_u64(r);
    // Each tensor takes at least 24 bytes (name length, ndim, a dimension).
    if (r->bad || (kind != KEEP_SELECTED && kind != KEEP_FINAL) || nt > (r->n - r->off) / 24) return -1;
    for (uint64_t i = 0; i < nt && !r->bad; i++) {
        char name[sizeof m->w.tensors[0].name];
        size_t shape[KEPT_MAX_DIMS];
        uint64_t len = rd_u64(r);
        const char *p = len < sizeof name ? rd_view(r, (size_t)len) : NULL;
        if (!p || memchr(p, 0, (size_t)len)) break;
        memcpy(name, p, (size_t)len);
        name[len] = '\0';
        uint64_t nd = rd_u64(r);
        if (nd < 1 || nd > KEPT_MAX_DIMS) break;
        size_t numel = 1;
        int over = 0;
        for (uint64_t d = 0; d < nd; d++) {
            shape[d] = (size_t)rd_u64(r);
            over |= ct_mul_size(&numel, numel, shape[d]) || numel > r->n;
        }
        if (r->bad || over) break;
        kept_weights_add(&m->w, name, (size_t)nd, shape);
    }
    uint64_t nf = rd_u64(r);
    if (r->bad || m->w.n_tensors != nt || nf != m->w.n_floats || nf > (r->n - r->off) / sizeof(float)) {
        kept_weights_free(&m->w);
        return -1;
    }
    m->w.data = ct_malloc(nf ? (size_t)nf * sizeof(float) : 1);
    rd_get(r, m->w.data, (size_t)nf * sizeof(float));
    if (rd_done(r)) {
        kept_weights_free(&m->w);
        return -1;
    }
    return 0;
}

// ---- CHECKPOINT ----

void checkpoint_msg_encode(const CheckpointMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    buf_put_u64(b, m->epoch);
    buf_put_u64(b, m->iter);
    put_array(b, m->state, m->state_len, 1);
}

int checkpoint_msg_decode(Rd *r, CheckpointMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    m->epoch = rd_u64(r);
    m->iter = rd_u64(r);
    m->state = rd_array(r, 1, &m->state_len);
    return rd_done(r);
}

// ---- END ----

void end_msg_encode(const EndMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    if (m->run == MSG_NO_RUN) return;
    buf_put_u64(b, (uint64_t)m->outcome);
    buf_put_str(b, m->error);
    buf_put_f64(b, m->wall);
    buf_put_u64(b, m->forwards);
    buf_put_u64(b, m->hits);
    buf_put_str(b, m->host);
    buf_put_str(b, m->device);
    buf_put_u64(b, m->device_error != 0);
}

int end_msg_decode(Rd *r, EndMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    if (m->run == MSG_NO_RUN) return rd_done(r);
    uint64_t outcome = rd_u64(r);
    rd_str(r, m->error, sizeof m->error);
    m->wall = rd_f64(r);
    m->forwards = rd_u64(r);
    m->hits = rd_u64(r);
    rd_str(r, m->host, sizeof m->host);
    rd_str(r, m->device, sizeof m->device);
    uint64_t device_error = rd_u64(r);
    if (outcome > 2 || device_error > 1) r->bad = 1;
    m->outcome = (int)outcome;
    m->device_error = (int)device_error;
    return rd_done(r);
}

// ---- ALIVE ----

void alive_msg_encode(const AliveMsg *m, Buf *b) { buf_put_u64(b, m->zero); }

int alive_msg_decode(Rd *r, AliveMsg *m) {
    m->zero = rd_u64(r);
    return rd_done(r);
}

// ---- ASSIGN ----

void assign_msg_encode(const AssignMsg *m, Buf *b) {
    buf_put_u64(b, m->run);
    put_array(b, m->state, m->state_len, 1);
}

int assign_msg_decode(Rd *r, AssignMsg *m) {
    memset(m, 0, sizeof *m);
    m->run = rd_u64(r);
    m->state = rd_array(r, 1, &m->state_len);
    if (m->state_len == 0) m->state = NULL;  // no state: the run starts from the beginning
    return rd_done(r);
}

// ---- STOP ----

void stop_msg_encode(const StopMsg *m, Buf *b) { buf_put_u64(b, m->zero); }

int stop_msg_decode(Rd *r, StopMsg *m) {
    m->zero = rd_u64(r);
    return rd_done(r);
}
