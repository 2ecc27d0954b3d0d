/*
 * protocol.h — the messages between the master and its workers: one struct
 * per message, its MPI tag, and its encode and decode side by side in
 * protocol.c, so that every field is written and read back in one place.
 *
 * Worker -> master: EPOCH (a run's epoch record, its learning rates, val and
 * test probabilities), BUDGET (test probabilities when an epoch budget
 * completes), WEIGHTS (a trial's kept weights at a budget, before its
 * BUDGET), CHECKPOINT (a run's training state), END (the run finished or
 * failed; also asks for more work), ALIVE (a worker in a long backbone pass
 * is alive). Master -> worker: ASSIGN (a run and the state it starts from)
 * or STOP.
 *
 * Values are in the machine's byte order (util/buf.h): every rank of one job
 * runs the same build. Decoding returns 0, or -1 when the bytes are not one
 * whole message of that kind (too short, a count larger than what follows,
 * bytes left over); the receiver names the sender.
 */
#ifndef CTSWEEP_SWEEP_PROTOCOL_H
#define CTSWEEP_SWEEP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "results/epoch_record.h"
#include "results/kept_weights.h"
#include "util/buf.h"

typedef enum {
    MSG_EPOCH = 11,
    MSG_BUDGET = 12,
    MSG_END = 13,
    MSG_CHECKPOINT = 14,
    MSG_ALIVE = 15,
    MSG_WEIGHTS = 16,
    MSG_ASSIGN = 21,
    MSG_STOP = 22,
} MsgTag;

// An END with no run: a worker that has run nothing yet asks for work.
#define MSG_NO_RUN UINT64_MAX

// ---- EPOCH: a run's epoch ----
// Decoded arrays are copies (the message's bytes may be unaligned for them)
// in one block that epoch_msg_free releases; encoding reads the caller's.
typedef struct {
    uint64_t run;
    EpochRecord rec;
    size_t n_iters, n_val, n_test;
    const double *lr;        // (n_iters) the rate of each of the epoch's iterations
    const float *val_prob;   // (n_val)
    const float *test_prob;  // (n_test)
    double sent_at;          // master_stats_clock() when sent, for the master's queueing delay
    void *own;               // decoded: the block the arrays live in
} EpochMsg;

void epoch_msg_encode(const EpochMsg *m, Buf *b);
int epoch_msg_decode(Rd *r, EpochMsg *m);
void epoch_msg_free(EpochMsg *m);

// ---- BUDGET: an epoch budget of a run completed ----
typedef struct {
    uint64_t run;
    uint64_t budget;         // the epoch count that completed
    size_t n_test;
    const float *test_prob;  // (n_test); decoded: a copy in own
    void *own;
} BudgetMsg;

void budget_msg_encode(const BudgetMsg *m, Buf *b);
int budget_msg_decode(Rd *r, BudgetMsg *m);
void budget_msg_free(BudgetMsg *m);

// ---- WEIGHTS: the kept weights of a budget's trial (one kind) ----
// Sent before the budget's BUDGET, once per kind kept (selected, final):
// its own message, so a BUDGET stays small and a VGG head (~52 MB in
// float32) travels once. Encoding writes the tensor table and then
// w.data; with w.data NULL the caller appends the w.n_floats floats itself
// (train_keep_put), so no copy of the weights is made for the message.
// Decoded: the table and the data are the message's own copies
// (kept_weights_free releases them).
typedef struct {
    uint64_t run;
    uint64_t budget;
    KeptWeights w;
} WeightsMsg;

void weights_msg_encode(const WeightsMsg *m, Buf *b);
int weights_msg_decode(Rd *r, WeightsMsg *m);

// ---- CHECKPOINT: a run's training state (train_state_save) ----
typedef struct {
    uint64_t run;
    uint64_t epoch, iter;  // where the state stands
    const void *state;     // (state_len) bytes; decoded: a view into the message
    size_t state_len;
} CheckpointMsg;

void checkpoint_msg_encode(const CheckpointMsg *m, Buf *b);
int checkpoint_msg_decode(Rd *r, CheckpointMsg *m);

// ---- END: how a run ended; asks for the next ----
typedef struct {
    uint64_t run;      // MSG_NO_RUN: nothing ended (the rest is neither sent nor read)
    int outcome;       // 1 done, 2 interrupted, 0 failed
    char error[512];   // why it failed ("" otherwise)
    double wall;       // seconds
    uint64_t forwards, hits;  // backbone passes computed and taken from the cache
    char host[64];
    char device[64];
    int device_error;  // the failure was the device's (pool_is_device_error)
} EndMsg;

void end_msg_encode(const EndMsg *m, Buf *b);
int end_msg_decode(Rd *r, EndMsg *m);

// ---- ALIVE: a worker in a long backbone pass ----
// Says nothing but that it was sent: one word, 0.
typedef struct {
    uint64_t zero;
} AliveMsg;

void alive_msg_encode(const AliveMsg *m, Buf *b);
int alive_msg_decode(Rd *r, AliveMsg *m);

// ---- ASSIGN: a run for a worker (its group) ----
typedef struct {
    uint64_t run;
    const void *state;  // (state_len) the checkpoint it continues from; NULL, 0: from the start
    size_t state_len;   // decoded: a view into the message
} AssignMsg;

void assign_msg_encode(const AssignMsg *m, Buf *b);
int assign_msg_decode(Rd *r, AssignMsg *m);

// ---- STOP: no more work ----
typedef struct {
    uint64_t zero;
} StopMsg;

void stop_msg_encode(const StopMsg *m, Buf *b);
int stop_msg_decode(Rd *r, StopMsg *m);

#endif
