"""Calibration measures that hold at small n, and the repairs of it:

- calibration slope and intercept: logistic recalibration of the logit of
  P(positive). The slope b is that of the GLM  logit P(y = 1) = a + b lp
  (lp = logit p), fitted by maximum likelihood (IRLS, as R's
  glm(y ~ lp, family = binomial)); the intercept ("calibration in the
  large") is a' of  logit P(y = 1) = a' + offset(lp), i.e. with the slope
  fixed at 1 (Van Calster et al. 2019, J Clin Epidemiol). Perfect: a' = 0,
  b = 1. Wald 95% intervals from the observed information.
- expected calibration error (ECE) over equal-count (quantile) bins, with
  a percentile bootstrap interval (cases resampled, bins recut each time);
- temperature scaling: one T > 0 fitted on val by maximum likelihood,
  p' = sigmoid(lp / T), applied unchanged to test (Guo et al. 2017). It
  keeps the ranking and the P > 0.5 decisions, so accuracy and AUC do not
  change; only the probabilities do;
- decision-curve analysis: net benefit TP/n - FP/n * t / (1 - t) of
  treating the images with P >= t, against treating all and none (Vickers
  & Elkin 2006).

Probabilities are float32 in the files and may be exactly 0 or 1, whose
logit is infinite: they are clipped to [1e-7, 1 - 1e-7] first (EPS).
"""
import math

import numpy as np
from scipy import optimize

EPS = 1e-7


def logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z):
    z = np.asarray(z, dtype=np.float64)
    return np.where(z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z))))


# ---- logistic recalibration ----

def _irls(X, y, offset, max_iter=100, tol=1e-12):
    """Maximum-likelihood logistic regression by Newton's method (IRLS):
    (coefficients, covariance, converged). Not converged when the data are
    separated (no finite MLE) or the information matrix is singular."""
    beta = np.zeros(X.shape[1])
    for _ in range(max_iter):
        eta = offset + X @ beta
        mu = sigmoid(eta)
        w = mu * (1 - mu)
        info = X.T @ (X * w[:, None])
        grad = X.T @ (y - mu)
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return beta, None, False
        beta = beta + step
        if not np.all(np.isfinite(beta)) or np.max(np.abs(beta)) > 1e6:
            return beta, None, False
        if np.max(np.abs(step)) <= tol * (1 + np.max(np.abs(beta))):
            mu = sigmoid(offset + X @ beta)
            info = X.T @ (X * (mu * (1 - mu))[:, None])
            try:
                cov = np.linalg.inv(info)
            except np.linalg.LinAlgError:
                return beta, None, False
            return beta, cov, True
    return beta, None, False


def intercept_slope(y, p, level=0.95):
    """Calibration intercept (slope fixed at 1) and slope (two-parameter fit)
    with Wald intervals. Returns a dict: intercept, intercept_lo/hi, slope,
    slope_lo/hi, slope_model_intercept (a of a + b lp), converged, note."""
    from scipy import stats as sps
    y = np.asarray(y, dtype=np.float64)
    lp = logit(p)
    n = len(y)
    z = float(sps.norm.ppf(0.5 + level / 2))
    nan = float("nan")
    out = {"intercept": nan, "intercept_lo": nan, "intercept_hi": nan, "slope": nan, "slope_lo": nan,
           "slope_hi": nan, "slope_model_intercept": nan, "converged": False, "note": ""}
    if n < 3 or y.min() == y.max():
        out["note"] = "needs both classes"
        return out
    b2, cov2, ok2 = _irls(np.column_stack([np.ones(n), lp]), y, np.zeros(n))
    b1, cov1, ok1 = _irls(np.ones((n, 1)), y, lp)
    if ok1:
        se = math.sqrt(cov1[0, 0])
        out.update(intercept=float(b1[0]), intercept_lo=float(b1[0] - z * se), intercept_hi=float(b1[0] + z * se))
    if ok2:
        se = math.sqrt(cov2[1, 1])
        out.update(slope=float(b2[1]), slope_lo=float(b2[1] - z * se), slope_hi=float(b2[1] + z * se),
                   slope_model_intercept=float(b2[0]))
    out["converged"] = bool(ok1 and ok2)
    if not ok2:
        out["note"] = "the classes are separated by P: the slope has no finite estimate"
    return out


# ---- ECE and quantile bins ----

def n_bins_for(n):
    """Equal-count bins for n cases: about 8 cases per bin, 3 to 10 bins."""
    return int(min(10, max(3, n // 8)))


def quantile_bins(p, n_bins):
    """Bin index (0..k-1) of each case: cases sorted by P (stable) and cut
    into n_bins runs of near-equal size; tied P values stay in one bin."""
    p = np.asarray(p, dtype=np.float64)
    n = len(p)
    order = np.argsort(p, kind="mergesort")
    raw = np.empty(n, dtype=np.int64)
    raw[order] = (np.arange(n) * n_bins) // max(n, 1)
    # Ties: every case with a given P joins the bin of its first occurrence.
    sp = p[order]
    first = np.r_[0, np.flatnonzero(np.diff(sp)) + 1]
    lab = np.repeat(raw[order][first], np.diff(np.r_[first, n]))
    out = np.empty(n, dtype=np.int64)
    out[order] = lab
    _, dense = np.unique(out, return_inverse=True)
    return dense


def bin_table(y, p, n_bins):
    """Per bin: n, mean P, observed fraction positive, positives."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    b = quantile_bins(p, n_bins)
    k = int(b.max()) + 1 if len(b) else 0
    cnt = np.bincount(b, minlength=k)
    return {"n": cnt, "mean_p": np.bincount(b, weights=p, minlength=k) / np.maximum(cnt, 1),
            "rate": np.bincount(b, weights=y, minlength=k) / np.maximum(cnt, 1),
            "pos": np.bincount(b, weights=y, minlength=k)}


def ece(y, p, n_bins):
    """Sum over bins of (n_b / n) |mean P_b - fraction positive_b|."""
    t = bin_table(y, p, n_bins)
    n = t["n"].sum()
    return float(np.sum(t["n"] / n * np.abs(t["mean_p"] - t["rate"]))) if n else float("nan")


def ece_interval(y, p, n_bins, n_boot=2000, seed=0, level=0.95):
    """(ece, lo, hi): percentile bootstrap over cases (bins recut per resample)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    e = ece(y, p, n_bins)
    rng = np.random.default_rng(seed)
    n = len(y)
    bs = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, n, n)
        bs[i] = ece(y[idx], p[idx], n_bins)
    a = (1 - level) / 2
    lo, hi = np.percentile(bs, [100 * a, 100 * (1 - a)])
    return e, float(lo), float(hi)


# ---- temperature scaling ----

def nll(y, p):
    """Mean negative log-likelihood (nats per image) of P(positive)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def fit_temperature(y, p):
    """T > 0 minimising the mean NLL of sigmoid(logit(p) / T) on (y, p),
    searched over log T in [-5, 5] (Brent's bounded method)."""
    y = np.asarray(y, dtype=np.float64)
    lp = logit(p)

    def f(log_t):
        z = lp / math.exp(log_t)
        # log(1 + e^z) - y z, stable
        return float(np.mean(np.logaddexp(0.0, z) - y * z))
    r = optimize.minimize_scalar(f, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-10})
    return float(math.exp(r.x))


def apply_temperature(p, T):
    return sigmoid(logit(p) / T)


# ---- decision curves ----

def net_benefit(y, p, thresholds):
    """Net benefit of treating P >= t, of treating all, for each t."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(p, dtype=np.float64)
    n = len(y)
    t = np.asarray(thresholds, dtype=np.float64)
    w = t / (1 - t)
    treat = p[None, :] >= t[:, None]
    tp = np.sum(treat & (y[None, :] == 1), axis=1)
    fp = np.sum(treat & (y[None, :] == 0), axis=1)
    prev = y.mean() if n else float("nan")
    return tp / n - fp / n * w, prev - (1 - prev) * w
