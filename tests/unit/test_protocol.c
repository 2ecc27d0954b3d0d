/*
 * test_protocol.c — the master/worker messages (src/sweep/protocol.c):
 * every message decodes to what was encoded, field for field and byte for
 * byte; every shorter prefix of it, and the message with a byte left over,
 * is rejected; a count larger than the bytes that follow (one that would
 * overflow when multiplied) is rejected before anything is read.
 *
 * usage: test_protocol SCRATCH_DIR SHARED_DATA_DIR (both unused)
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sweep/protocol.h"
#include "util/buf.h"

#include "check.h"

// ---- truncation ----

// Decodes every proper prefix of b and b with one byte more: each must fail.
typedef int (*DecodeFn)(const uint8_t *p, size_t n);

static void check_rejects_truncated(const char *name, const Buf *b, DecodeFn decode) {
    size_t accepted = 0, first = SIZE_MAX;
    for (size_t n = 0; n < b->n; n++)
        if (decode(b->p, n) == 0) {
            accepted++;
            if (first == SIZE_MAX) first = n;
        }
    CHECK(accepted == 0, "%s: %zu of %zu truncated copies accepted (the first of %zu bytes)", name, accepted, b->n,
          first);
    Buf longer = {0};
    buf_put(&longer, b->p, b->n);
    buf_put(&longer, "", 1);
    CHECK(decode(longer.p, longer.n) != 0, "%s: a byte left over accepted", name);
    buf_free(&longer);
}

static int decode_epoch(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    EpochMsg m;
    int rc = epoch_msg_decode(&r, &m);
    epoch_msg_free(&m);
    return rc;
}

static int decode_budget(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    BudgetMsg m;
    int rc = budget_msg_decode(&r, &m);
    budget_msg_free(&m);
    return rc;
}

static int decode_checkpoint(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    CheckpointMsg m;
    return checkpoint_msg_decode(&r, &m);
}

static int decode_end(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    EndMsg m;
    return end_msg_decode(&r, &m);
}

static int decode_alive(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    AliveMsg m;
    return alive_msg_decode(&r, &m);
}

static int decode_assign(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    AssignMsg m;
    return assign_msg_decode(&r, &m);
}

static int decode_stop(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    StopMsg m;
    return stop_msg_decode(&r, &m);
}

// ---- round trips ----

static void test_epoch(void) {
    double lr[5] = {1e-4, 2.5e-4, 4e-4, 5.5e-4, 7e-4};
    float vp[3] = {0.125f, 0.5f, 0.875f}, tp[4] = {0.0f, 1.0f, 0.25f, 1e-7f};
    EpochMsg in = {.run = 17, .rec = {.epoch = 3, .lr = 7e-4, .train_loss = 0.69, .train_acc = 0.5, .val_loss = 0.7,
                                      .val_acc = 0.55, .val_auc = 0.61, .seconds = 1.25},
                   .n_iters = 5, .n_val = 3, .n_test = 4, .lr = lr, .val_prob = vp, .test_prob = tp, .sent_at = 12.5};
    Buf b = {0};
    epoch_msg_encode(&in, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    EpochMsg out;
    CHECK(epoch_msg_decode(&r, &out) == 0, "EPOCH: decode failed");
    CHECK(out.run == 17 && out.n_iters == 5 && out.n_val == 3 && out.n_test == 4 && out.sent_at == 12.5,
          "EPOCH: run %llu, %zu iterations, %zu val, %zu test, sent at %g", (unsigned long long)out.run, out.n_iters,
          out.n_val, out.n_test, out.sent_at);
    CHECK(memcmp(&out.rec, &in.rec, sizeof in.rec) == 0, "EPOCH: the record differs");
    CHECK(out.lr && memcmp(out.lr, lr, sizeof lr) == 0, "EPOCH: learning rates differ");
    CHECK(out.val_prob && memcmp(out.val_prob, vp, sizeof vp) == 0, "EPOCH: val probabilities differ");
    CHECK(out.test_prob && memcmp(out.test_prob, tp, sizeof tp) == 0, "EPOCH: test probabilities differ");
    CHECK((uintptr_t)out.lr % _Alignof(double) == 0 && (uintptr_t)out.val_prob % _Alignof(float) == 0 &&
              (uintptr_t)out.test_prob % _Alignof(float) == 0,
          "EPOCH: decoded arrays unaligned");
    epoch_msg_free(&out);
    check_rejects_truncated("EPOCH", &b, decode_epoch);
    // No arrays at all.
    EpochMsg empty = {.run = 0, .rec = {.epoch = 1}};
    buf_reset(&b);
    epoch_msg_encode(&empty, &b);
    rd_init(&r, b.p, b.n);
    CHECK(epoch_msg_decode(&r, &out) == 0 && out.n_iters == 0 && out.n_val == 0 && out.n_test == 0,
          "EPOCH without arrays");
    epoch_msg_free(&out);
    // A count whose byte size overflows size_t must not pass the bounds check.
    buf_reset(&b);
    buf_put_u64(&b, 1);
    buf_put(&b, &in.rec, sizeof in.rec);
    buf_put_u64(&b, (UINT64_MAX / sizeof(double)) + 2);  // times 8 wraps to 8
    buf_put(&b, lr, 8);
    buf_put_u64(&b, 0);
    buf_put_u64(&b, 0);
    buf_put_f64(&b, 0.0);
    rd_init(&r, b.p, b.n);
    CHECK(epoch_msg_decode(&r, &out) != 0, "EPOCH with an overflowing count accepted");
    epoch_msg_free(&out);
    buf_free(&b);
}

static void test_budget(void) {
    float tp[6] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    BudgetMsg in = {.run = 4, .budget = 30, .n_test = 6, .test_prob = tp};
    Buf b = {0};
    budget_msg_encode(&in, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    BudgetMsg out;
    CHECK(budget_msg_decode(&r, &out) == 0, "BUDGET: decode failed");
    CHECK(out.run == 4 && out.budget == 30 && out.n_test == 6 && memcmp(out.test_prob, tp, sizeof tp) == 0,
          "BUDGET: run %llu, budget %llu, %zu test", (unsigned long long)out.run, (unsigned long long)out.budget,
          out.n_test);
    budget_msg_free(&out);
    check_rejects_truncated("BUDGET", &b, decode_budget);
    buf_free(&b);
}

static void test_checkpoint(void) {
    uint8_t state[37];
    for (size_t i = 0; i < sizeof state; i++) state[i] = (uint8_t)(i * 7 + 3);
    CheckpointMsg in = {.run = 2, .epoch = 5, .iter = 123, .state = state, .state_len = sizeof state};
    Buf b = {0};
    checkpoint_msg_encode(&in, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    CheckpointMsg out;
    CHECK(checkpoint_msg_decode(&r, &out) == 0, "CHECKPOINT: decode failed");
    CHECK(out.run == 2 && out.epoch == 5 && out.iter == 123 && out.state_len == sizeof state &&
              memcmp(out.state, state, sizeof state) == 0,
          "CHECKPOINT: run %llu, epoch %llu, iteration %llu, %zu bytes", (unsigned long long)out.run,
          (unsigned long long)out.epoch, (unsigned long long)out.iter, out.state_len);
    check_rejects_truncated("CHECKPOINT", &b, decode_checkpoint);
    buf_free(&b);
}

static void test_end(void) {
    EndMsg in = {.run = 9, .outcome = 0, .wall = 42.5, .forwards = 1000, .hits = 250, .device_error = 1};
    snprintf(in.error, sizeof in.error, "CUDA: out of memory in trial 0123456789abcdef");
    snprintf(in.host, sizeof in.host, "node17");
    snprintf(in.device, sizeof in.device, "NVIDIA H100 GPU-1234");
    Buf b = {0};
    end_msg_encode(&in, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    EndMsg out;
    CHECK(end_msg_decode(&r, &out) == 0, "END: decode failed");
    CHECK(out.run == 9 && out.outcome == 0 && out.wall == 42.5 && out.forwards == 1000 && out.hits == 250 &&
              out.device_error == 1 && strcmp(out.error, in.error) == 0 && strcmp(out.host, "node17") == 0 &&
              strcmp(out.device, in.device) == 0,
          "END: run %llu outcome %d wall %g error '%s' host '%s' device '%s'", (unsigned long long)out.run,
          out.outcome, out.wall, out.error, out.host, out.device);
    check_rejects_truncated("END", &b, decode_end);
    // Done, interrupted: the outcome survives.
    for (int o = 1; o <= 2; o++) {
        EndMsg d = {.run = 1, .outcome = o};
        buf_reset(&b);
        end_msg_encode(&d, &b);
        rd_init(&r, b.p, b.n);
        CHECK(end_msg_decode(&r, &out) == 0 && out.outcome == o && out.error[0] == '\0', "END outcome %d", o);
    }
    // An END of no run (asking for work) is one word.
    buf_reset(&b);
    end_msg_encode(&(EndMsg){.run = MSG_NO_RUN}, &b);
    CHECK(b.n == sizeof(uint64_t), "END of no run: %zu bytes", b.n);
    rd_init(&r, b.p, b.n);
    CHECK(end_msg_decode(&r, &out) == 0 && out.run == MSG_NO_RUN, "END of no run: decode");
    check_rejects_truncated("END of no run", &b, decode_end);
    // An outcome no sender writes.
    buf_reset(&b);
    end_msg_encode(&(EndMsg){.run = 1, .outcome = 7}, &b);
    rd_init(&r, b.p, b.n);
    CHECK(end_msg_decode(&r, &out) != 0, "END with outcome 7 accepted");
    buf_free(&b);
}

static void test_alive_assign_stop(void) {
    Buf b = {0};
    alive_msg_encode(&(AliveMsg){0}, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    AliveMsg a;
    CHECK(alive_msg_decode(&r, &a) == 0 && a.zero == 0, "ALIVE: decode");
    check_rejects_truncated("ALIVE", &b, decode_alive);

    uint8_t state[11] = "checkpoint";
    buf_reset(&b);
    assign_msg_encode(&(AssignMsg){.run = 31, .state = state, .state_len = sizeof state}, &b);
    rd_init(&r, b.p, b.n);
    AssignMsg m;
    CHECK(assign_msg_decode(&r, &m) == 0 && m.run == 31 && m.state_len == sizeof state &&
              memcmp(m.state, state, sizeof state) == 0,
          "ASSIGN with a state: run %llu, %zu bytes", (unsigned long long)m.run, m.state_len);
    check_rejects_truncated("ASSIGN", &b, decode_assign);
    buf_reset(&b);
    assign_msg_encode(&(AssignMsg){.run = 0}, &b);
    rd_init(&r, b.p, b.n);
    CHECK(assign_msg_decode(&r, &m) == 0 && m.run == 0 && m.state == NULL && m.state_len == 0,
          "ASSIGN from the start: no state");
    check_rejects_truncated("ASSIGN from the start", &b, decode_assign);

    buf_reset(&b);
    stop_msg_encode(&(StopMsg){0}, &b);
    rd_init(&r, b.p, b.n);
    StopMsg s;
    CHECK(stop_msg_decode(&r, &s) == 0, "STOP: decode");
    check_rejects_truncated("STOP", &b, decode_stop);
    buf_free(&b);
}

static int decode_weights(const uint8_t *p, size_t n) {
    Rd r;
    rd_init(&r, p, n);
    WeightsMsg m;
    int rc = weights_msg_decode(&r, &m);
    kept_weights_free(&m.w);
    return rc;
}

static void test_weights(void) {
    float data[3 * 2 + 3 + 2];
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) data[i] = 0.25f * (float)i - 1.0f;
    WeightsMsg in = {.run = 6, .budget = 12};
    kept_weights_add(&in.w, "head.0.weight", 2, (const size_t[2]){3, 2});
    kept_weights_add(&in.w, "head.0.bias", 1, (const size_t[1]){3});
    kept_weights_add(&in.w, "head.standardize.mean", 1, (const size_t[1]){2});
    in.w.kind = KEEP_FINAL;
    in.w.epoch = 9;
    in.w.data = data;
    Buf b = {0};
    weights_msg_encode(&in, &b);
    Rd r;
    rd_init(&r, b.p, b.n);
    WeightsMsg out;
    CHECK(weights_msg_decode(&r, &out) == 0, "WEIGHTS: decode failed");
    CHECK(out.run == 6 && out.budget == 12 && out.w.kind == KEEP_FINAL && out.w.epoch == 9 && out.w.n_tensors == 3 &&
              out.w.n_floats == 11 && out.w.data && memcmp(out.w.data, data, sizeof data) == 0,
          "WEIGHTS: run %llu, budget %llu, kind %d, epoch %zu, %zu tensors, %zu values", (unsigned long long)out.run,
          (unsigned long long)out.budget, out.w.kind, out.w.epoch, out.w.n_tensors, out.w.n_floats);
    CHECK(out.w.n_tensors == 3 && strcmp(out.w.tensors[0].name, "head.0.weight") == 0 && out.w.tensors[0].ndim == 2 &&
              out.w.tensors[0].shape[0] == 3 && out.w.tensors[0].shape[1] == 2 && out.w.tensors[1].offset == 6 &&
              strcmp(out.w.tensors[2].name, "head.standardize.mean") == 0 && out.w.tensors[2].offset == 9,
          "WEIGHTS: the tensor table differs");
    kept_weights_free(&out.w);
    check_rejects_truncated("WEIGHTS", &b, decode_weights);
    // Data NULL: the caller appends the values, the bytes are the same.
    Buf b2 = {0};
    in.w.data = NULL;
    weights_msg_encode(&in, &b2);
    buf_put(&b2, data, sizeof data);
    CHECK(b2.n == b.n && memcmp(b2.p, b.p, b.n) == 0, "WEIGHTS: values appended by the caller differ");
    // A kind other than selected or final is refused.
    memcpy(b2.p + 2 * sizeof(uint64_t), &(uint64_t){KEEP_BOTH}, sizeof(uint64_t));
    rd_init(&r, b2.p, b2.n);
    CHECK(weights_msg_decode(&r, &out) != 0, "WEIGHTS of kind 'both' accepted");
    kept_weights_free(&out.w);
    buf_free(&b2);
    buf_free(&b);
    kept_weights_free(&(KeptWeights){.tensors = in.w.tensors});
    // VGG16's default head with its statistics (13060226 values, ~52 MB) is
    // one message of its values plus a few hundred bytes: bounded, and well
    // within one MPI message (int count).
    WeightsMsg big = {.run = 1, .budget = 2};
    const size_t dims[] = {25088, 512, 256, 128, 2};
    for (size_t l = 0; l < 4; l++) {
        char name[32];
        snprintf(name, sizeof name, "head.%zu.weight", l);
        kept_weights_add(&big.w, name, 2, (const size_t[2]){dims[l + 1], dims[l]});
        snprintf(name, sizeof name, "head.%zu.bias", l);
        kept_weights_add(&big.w, name, 1, &dims[l + 1]);
    }
    kept_weights_add(&big.w, "head.standardize.mean", 1, &dims[0]);
    kept_weights_add(&big.w, "head.standardize.inv_std", 1, &dims[0]);
    big.w.kind = KEEP_SELECTED;
    big.w.epoch = 1;
    big.w.data = calloc(big.w.n_floats, sizeof(float));
    big.w.data[big.w.n_floats - 1] = 3.5f;
    weights_msg_encode(&big, &b);
    size_t over = b.n - big.w.n_floats * sizeof(float);
    CHECK(big.w.n_floats == 13060226 && over < 512 && b.n < (size_t)INT_MAX,
          "WEIGHTS of VGG16's head: %zu values, %zu bytes beyond them", big.w.n_floats, over);
    rd_init(&r, b.p, b.n);
    CHECK(weights_msg_decode(&r, &out) == 0 && out.w.n_floats == big.w.n_floats &&
              out.w.data[out.w.n_floats - 1] == 3.5f,
          "WEIGHTS of VGG16's head: decode");
    kept_weights_free(&out.w);
    kept_weights_free(&big.w);
    buf_free(&b);
}

int main(void) {
    test_epoch();
    test_weights();
    test_budget();
    test_checkpoint();
    test_end();
    test_alive_assign_stop();
    return check_summary();
}
