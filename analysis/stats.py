"""Uncertainty and comparisons: DeLong's test for two correlated AUCs and
DeLong's interval of one AUC, McNemar's exact test for two accuracies on
the same images, Clopper-Pearson intervals of proportions, predictive
values at a stated prevalence, stratified bootstrap confidence intervals,
t intervals of means, Holm's adjustment.

DeLong, DeLong & Clarke-Pearson (1988), Biometrics 44:837-845, estimate the
covariance of AUCs measured on the same cases from the structural
components V10 (one per positive: the fraction of negatives it outranks,
ties counting 1/2) and V01 (one per negative). Sun & Xu (2014), IEEE Signal
Processing Letters 21:1389-1393, compute those components from midranks in
O(n log n): V10_i = (Tz_i - Tx_i) / n for the i-th of m positives, where Tz
is its midrank among all cases and Tx among the positives; V01_j =
1 - (Tz_j - Ty_j) / m for the j-th of n negatives.
"""
import math

import numpy as np
from scipy import stats as sps


def _midranks(a):
    """Midranks (1-based, ties get the mean rank of their group) along the
    last axis, vectorised over the leading axes."""
    a = np.asarray(a, dtype=np.float64)
    n = a.shape[-1]
    if n == 0:
        return np.zeros(a.shape)
    order = np.argsort(a, axis=-1, kind="mergesort")
    s = np.take_along_axis(a, order, axis=-1)
    idx = np.broadcast_to(np.arange(n), s.shape)
    first = np.ones(s.shape, dtype=bool)
    first[..., 1:] = s[..., 1:] != s[..., :-1]
    last = np.ones(s.shape, dtype=bool)
    last[..., :-1] = first[..., 1:]
    start = np.maximum.accumulate(np.where(first, idx, 0), axis=-1)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, idx, n - 1), axis=-1), axis=-1), axis=-1)
    ranks = np.empty(s.shape)
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=-1)
    return ranks


def delong_components(y, scores):
    """scores: [k, n_cases]. Returns (aucs [k], v10 [k, m], v01 [k, n])."""
    y = np.asarray(y, dtype=np.int64)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError("DeLong needs positives and negatives")
    tx = _midranks(pos)
    ty = _midranks(neg)
    tz = _midranks(np.concatenate([pos, neg], axis=1))
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1.0) / (2.0 * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return aucs, v10, v01


def delong_cov(y, scores):
    """(aucs [k], covariance [k, k]) of the AUCs of k score vectors on the same cases."""
    aucs, v10, v01 = delong_components(y, scores)
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((len(aucs), len(aucs)))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((len(aucs), len(aucs)))
    return aucs, s10 / m + s01 / n


def delong_test(y, p1, p2):
    """Two-sided DeLong test of AUC(p1) = AUC(p2) on the same cases.
    Returns dict auc1, auc2, diff, se, z, p. A zero variance estimate with
    equal AUCs gives z = 0, p = 1; with different AUCs z = +-inf, p = 0."""
    aucs, cov = delong_cov(y, np.vstack([p1, p2]))
    diff = float(aucs[0] - aucs[1])
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    if var <= 1e-15 * max(1.0, abs(cov[0, 0]) + abs(cov[1, 1])):
        if abs(diff) < 1e-12:
            z, p = 0.0, 1.0
        else:
            z, p = math.copysign(math.inf, diff), 0.0
        se = 0.0
    else:
        se = math.sqrt(var)
        z = diff / se
        p = float(2 * sps.norm.sf(abs(z)))
    return {"auc1": float(aucs[0]), "auc2": float(aucs[1]), "diff": diff, "se": se, "z": z, "p": p}


def delong_se(y, p):
    """DeLong standard error of one AUC."""
    aucs, cov = delong_cov(y, np.atleast_2d(p))
    return float(aucs[0]), float(math.sqrt(max(cov[0, 0], 0.0)))


def delong_ci(y, p, level=0.95):
    """(auc, lo, hi): AUC +- z * DeLong SE, clipped to [0, 1] as R's pROC
    (ci.auc, method "delong") does. nan when one class is absent."""
    y = np.asarray(y, dtype=np.int64)
    if y.min(initial=1) == y.max(initial=0):
        return float("nan"), float("nan"), float("nan")
    auc, se = delong_se(y, p)
    z = float(sps.norm.ppf(0.5 + level / 2))
    return auc, max(0.0, auc - z * se), min(1.0, auc + z * se)


def clopper_pearson(k, n, level=0.95):
    """Exact (Clopper-Pearson) interval of k successes in n trials, from the
    beta quantiles: lo = Beta(a/2; k, n-k+1), hi = Beta(1-a/2; k+1, n-k),
    with lo = 0 at k = 0 and hi = 1 at k = n. (nan, nan) when n = 0."""
    k, n = int(k), int(n)
    if n <= 0:
        return float("nan"), float("nan")
    a = 1.0 - level
    lo = 0.0 if k == 0 else float(sps.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(sps.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


def proportion(k, n, level=0.95):
    """(k / n, lo, hi, k, n) with the Clopper-Pearson interval; None when n = 0."""
    if n <= 0:
        return None
    lo, hi = clopper_pearson(k, n, level)
    return {"p": k / n, "lo": lo, "hi": hi, "k": int(k), "n": int(n)}


def binary_rates(cm, level=0.95):
    """Accuracy, sensitivity, specificity, PPV and NPV of a confusion matrix
    [[TN, FP], [FN, TP]], each with its Clopper-Pearson interval (None where
    the denominator is 0)."""
    (tn, fp), (fn, tp) = (int(x) for x in cm[0]), (int(x) for x in cm[1])
    return {"acc": proportion(tp + tn, tn + fp + fn + tp, level), "sens": proportion(tp, tp + fn, level),
            "spec": proportion(tn, tn + fp, level), "ppv": proportion(tp, tp + fp, level),
            "npv": proportion(tn, tn + fn, level)}


def ppv_at(sens, spec, prev):
    """PPV = sens * prev / (sens * prev + (1 - spec) * (1 - prev))."""
    den = sens * prev + (1 - spec) * (1 - prev)
    return sens * prev / den if den > 0 else float("nan")


def npv_at(sens, spec, prev):
    """NPV = spec * (1 - prev) / (spec * (1 - prev) + (1 - sens) * prev)."""
    den = spec * (1 - prev) + (1 - sens) * prev
    return spec * (1 - prev) / den if den > 0 else float("nan")


def predictive_at_prevalence(rates, prev):
    """PPV and NPV at prevalence `prev` from sensitivity and specificity
    (Bayes' theorem). Both increase with sensitivity and with specificity,
    so evaluating the formula at the ends of their Clopper-Pearson
    intervals bounds them (conservative: both ends at once)."""
    se, sp = rates["sens"], rates["spec"]
    if se is None or sp is None:
        return None
    out = {}
    for name, f in (("ppv", ppv_at), ("npv", npv_at)):
        out[name] = {"p": f(se["p"], sp["p"], prev), "lo": f(se["lo"], sp["lo"], prev),
                     "hi": f(se["hi"], sp["hi"], prev)}
    out["prevalence"] = prev
    return out


def t_interval(x, level=0.95):
    """(mean, sd, lo, hi) of a sample with the t interval of its mean;
    sd, lo and hi are nan for fewer than two values."""
    x = np.asarray([v for v in x if v is not None and math.isfinite(v)], dtype=np.float64)
    if len(x) == 0:
        return float("nan"), float("nan"), float("nan"), float("nan")
    m = float(x.mean())
    if len(x) < 2:
        return m, float("nan"), float("nan"), float("nan")
    sd = float(x.std(ddof=1))
    h = float(sps.t.ppf(0.5 + level / 2, len(x) - 1)) * sd / math.sqrt(len(x))
    return m, sd, m - h, m + h


def mcnemar_exact(correct1, correct2):
    """McNemar's test for paired accuracies, exact binomial form: with b
    images only the first classifier gets right and c only the second, p =
    min(1, 2 P(X <= min(b, c))) for X ~ Binomial(b + c, 1/2); p = 1 when
    b + c = 0. Exact at every count, so no continuity correction is needed.
    Returns dict b, c, p."""
    c1 = np.asarray(correct1, dtype=bool)
    c2 = np.asarray(correct2, dtype=bool)
    b = int(np.sum(c1 & ~c2))
    c = int(np.sum(~c1 & c2))
    if b + c == 0:
        return {"b": b, "c": c, "p": 1.0}
    p = min(1.0, 2.0 * float(sps.binom.cdf(min(b, c), b + c, 0.5)))
    return {"b": b, "c": c, "p": p}


def holm(pvalues):
    """Holm's step-down adjusted p-values (family-wise error control)."""
    p = np.asarray(pvalues, dtype=np.float64)
    k = len(p)
    order = np.argsort(p, kind="mergesort")
    adj = np.empty(k)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p[i]))
        adj[i] = running
    return adj


def bootstrap(y, p, n_boot=2000, seed=0, threshold=0.5, chunk_cells=4_000_000):
    """Stratified bootstrap of AUC and accuracy (positive iff p > threshold):
    positives and negatives are resampled separately with replacement, so
    every resample keeps the class counts and has a defined AUC. Returns
    (auc [n_boot], acc [n_boot]); the AUC is the Mann-Whitney statistic
    (midranks), equal to the trapezoidal ROC area."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    pos, neg = p[y == 1], p[y == 0]
    m, n = len(pos), len(neg)
    # One stream per class of uniform doubles (one 64-bit draw each), so the
    # resamples do not depend on how they are split into chunks.
    gp, gn = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    aucs = np.full(n_boot, np.nan)
    accs = np.empty(n_boot)
    step = max(1, chunk_cells // max(1, m + n))
    for lo in range(0, n_boot, step):
        b = min(step, n_boot - lo)
        sp = pos[np.minimum((gp.random((b, m)) * m).astype(np.int64), m - 1)] if m else np.zeros((b, 0))
        sn = neg[np.minimum((gn.random((b, n)) * n).astype(np.int64), n - 1)] if n else np.zeros((b, 0))
        accs[lo:lo + b] = ((sp > threshold).sum(axis=1) + (sn <= threshold).sum(axis=1)) / (m + n)
        if m and n:
            r = _midranks(np.concatenate([sp, sn], axis=1))
            aucs[lo:lo + b] = (r[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    return aucs, accs


def percentile_ci(samples, level=0.95):
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return float("nan"), float("nan")
    a = (1 - level) / 2
    lo, hi = np.percentile(s, [100 * a, 100 * (1 - a)])
    return float(lo), float(hi)


def seed_for(trial_id, base=0):
    """A bootstrap seed that depends only on the trial (not on which other
    trials the sweep holds or their order)."""
    try:
        return (int(trial_id[:12], 16) + base) % (2 ** 63)
    except ValueError:
        return base
