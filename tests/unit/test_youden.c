/*
 * test_youden.c — metrics_youden_threshold against analysis/metrics.py
 * youden_threshold, whose values (python3 -c 'from analysis.metrics import
 * youden_threshold; ...' on the same float32 scores) are written below:
 * ties of scores, ties of J (the highest threshold wins), a J tie that
 * only float rounding breaks (2/3 - 1/3 < 1 - 2/3 in double), one score for
 * all, and a class missing (NaN). `ctsweep export` writes this threshold;
 * torch_export compares it with the Python function on real trials.
 */
#include <math.h>
#include <stdint.h>

#include "train/metrics.h"
#include "check.h"

static void expect(const char *name, const float *p, const uint8_t *y, size_t n, double want) {
    double got = metrics_youden_threshold(p, y, n);
    CHECK(got == want || (isnan(got) && isnan(want)), "%s: threshold %.9g, analysis/metrics.py gives %.9g", name, got,
          want);
}

int main(void) {
    const uint8_t y1[] = {0, 1, 0, 1, 1, 0, 0, 1, 1, 0};
    const float p1[] = {0.5f, 0.5f, 0.2f, 0.8f, 0.5f, 0.8f, 0.1f, 0.9f, 0.3f, 0.3f};
    expect("tied scores", p1, y1, 10, 0.5);
    const uint8_t y2[] = {0, 0, 1, 1};
    const float p2[] = {0.1f, 0.4f, 0.35f, 0.8f};
    expect("two thresholds of equal J", p2, y2, 4, 0.800000011920929);
    const uint8_t y3[] = {1, 0, 1, 0};
    const float p3[] = {0.7f, 0.7f, 0.7f, 0.7f};
    expect("one score for all", p3, y3, 4, 0.699999988079071);
    const uint8_t y4[] = {0, 1, 0, 1, 0, 1};
    const float p4[] = {0.2f, 0.6f, 0.4f, 0.4f, 0.6f, 0.9f};
    expect("a J tie broken by rounding", p4, y4, 6, 0.4000000059604645);
    const uint8_t y5[] = {1, 1, 1};
    const float p5[] = {0.2f, 0.6f, 0.4f};
    expect("one class", p5, y5, 3, NAN);
    return check_summary();
}
