/*
 * test_selection.c — the epoch selection rule (highest val AUC, ties by the
 * lower val loss, then the earlier epoch; NaN AUC last) and the trial
 * record's test figures at the selected epoch, against a direct count and
 * the Mann–Whitney AUC worked out by hand.
 *
 * usage: test_selection SCRATCH_DIR SHARED_DATA_DIR (both unused)
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "results/records.h"
#include "results/selection.h"

#include "check.h"

static EpochRecord ep(size_t e, double auc, double loss) {
    EpochRecord r = {0};
    r.epoch = e;
    r.val_auc = auc;
    r.val_loss = loss;
    return r;
}

static void test_rule(void) {
    EpochRecord a[] = {ep(1, 0.70, 0.6), ep(2, 0.80, 0.5), ep(3, 0.75, 0.4)};
    CHECK(selection_epoch(a, 3) == 2, "highest AUC: %zu", selection_epoch(a, 3));
    EpochRecord b[] = {ep(1, 0.80, 0.6), ep(2, 0.80, 0.4), ep(3, 0.80, 0.5)};
    CHECK(selection_epoch(b, 3) == 2, "AUC tie, lower loss: %zu", selection_epoch(b, 3));
    EpochRecord c[] = {ep(1, 0.70, 0.6), ep(2, 0.80, 0.4), ep(3, 0.80, 0.4)};
    CHECK(selection_epoch(c, 3) == 2, "full tie, earlier epoch: %zu", selection_epoch(c, 3));
    EpochRecord d[] = {ep(1, NAN, 0.1), ep(2, 0.50, 0.9), ep(3, NAN, 0.05)};
    CHECK(selection_epoch(d, 3) == 2, "NaN AUC ranks last: %zu", selection_epoch(d, 3));
    EpochRecord e[] = {ep(1, 0.60, NAN), ep(2, 0.60, 0.7)};
    CHECK(selection_epoch(e, 2) == 2, "NaN loss ranks last: %zu", selection_epoch(e, 2));
    CHECK(selection_epoch(a, 0) == 0, "no epochs: 0");
    // The val accuracy plays no part (the leaderboard's peak val accuracy is
    // a different figure).
    EpochRecord f[] = {ep(1, 0.70, 0.5), ep(2, 0.65, 0.5)};
    f[1].val_acc = 0.99;
    CHECK(selection_epoch(f, 2) == 1, "val accuracy ignored: %zu", selection_epoch(f, 2));
}

static void test_record(void) {
    // 3 epochs, 4 test images (labels 0, 0, 1, 1); epoch 2 is selected.
    TrialRecord r;
    trial_record_init(&r, 3, 1, 4);
    const uint8_t y[4] = {0, 0, 1, 1};
    const float tp[3][4] = {{0.9f, 0.1f, 0.2f, 0.8f}, {0.6f, 0.2f, 0.4f, 0.7f}, {0.1f, 0.2f, 0.9f, 0.8f}};
    const double auc[3] = {0.5, 0.9, 0.8};
    double lr[1] = {1e-3};
    float vp[1] = {0.5f};
    for (size_t e = 0; e < 3; e++) {
        EpochRecord er = ep(e + 1, auc[e], 0.5);
        trial_record_epoch(&r, &er, lr, 1, vp, tp[e]);
    }
    trial_record_select(&r, y);
    // Epoch 2: P > 0.5 gives 1, 0, 0, 1: 2 of 4 right. AUC: positives 0.4
    // and 0.7 against negatives 0.6 and 0.2: pairs won 1 + 2 = 3 of 4.
    CHECK(r.selected_epoch == 2, "selected epoch %zu, want 2", r.selected_epoch);
    CHECK(fabs(r.test_acc - 0.5) <= 1e-12, "test_acc %g, want 0.5", r.test_acc);
    CHECK(fabs(r.test_auc - 0.75) <= 1e-12, "test_auc %g, want 0.75", r.test_auc);
    CHECK(memcmp(r.test_prob + 4, tp[1], sizeof tp[1]) == 0, "row 2 of test_prob is epoch 2's");
    trial_record_truncate(&r, 1);
    CHECK(r.selected_epoch == 0 && r.epochs_done == 1, "truncate forgets the selection");
    trial_record_free(&r);
}

int main(void) {
    test_rule();
    test_record();
    return check_summary();
}
