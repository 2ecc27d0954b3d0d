"""Calibration of P(positive): the Hosmer-Lemeshow test exactly as R's
ResourceSelection::hoslem.test computes it, and the groups of the
reliability diagram.

hoslem.test(x = truth, y = yhat, g) does, in R:

    qq <- unique(quantile(yhat, probs = seq(0, 1, 1/g)))       # type 7
    cutyhat <- cut(yhat, breaks = qq, include.lowest = TRUE)   # (a, b], first [a, b]
    observed <- xtabs(cbind(y0 = 1 - y, y1 = y) ~ cutyhat)
    expected <- xtabs(cbind(yhat0 = 1 - yhat, yhat1 = yhat) ~ cutyhat)
    chisq <- sum((observed - expected)^2 / expected)
    PVAL <- 1 - pchisq(chisq, g - 2)

Each step is reproduced with R's floating-point operations: seq()'s
from + (0:n) * by capped at 1, quantile type 7's (1 - h) x[lo] + h x[hi]
applied only where index > lo and x[hi] != x[lo], unique() by exact
equality, .bincode's right-closed intervals with the lowest break included.
Duplicate breaks (heavy ties) therefore merge groups, and the degrees of
freedom stay g - 2 as R reports them. A group left empty by interpolated
breaks has expected count 0, and R's chi-square is then NaN: so is ours.
"""
import math

import numpy as np
from scipy import stats as sps


def r_seq_probs(g):
    """R's seq(0, 1, 1/g)."""
    by = 1.0 / g
    n = int((1.0 - 0.0) / by + 1e-10)
    return np.minimum(np.arange(n + 1, dtype=np.float64) * by, 1.0)


def r_quantile7(x, probs):
    """R's quantile(x, probs, type = 7, names = FALSE)."""
    x = np.sort(np.asarray(x, dtype=np.float64), kind="mergesort")
    n = len(x)
    index = 1.0 + max(n - 1, 0) * np.asarray(probs, dtype=np.float64)
    lo = np.floor(index).astype(np.int64)
    hi = np.ceil(index).astype(np.int64)
    qs = x[lo - 1].copy()
    xhi = x[hi - 1]
    i = (index > lo) & (xhi != qs)
    h = (index - lo)[i]
    qs[i] = (1.0 - h) * qs[i] + h * xhi[i]
    return qs


def r_cut_codes(x, breaks):
    """0-based interval codes of R's cut(x, breaks, right = TRUE,
    include.lowest = TRUE) for sorted unique breaks; -1 outside."""
    x = np.asarray(x, dtype=np.float64)
    b = np.asarray(breaks, dtype=np.float64)
    code = np.searchsorted(b, x, side="left") - 1
    code[x == b[0]] = 0
    code[(x < b[0]) | (x > b[-1])] = -1
    return code


def r_break_labels(breaks, dig_lab=3):
    """The breaks as R's cut() prints them: formatC(breaks, digits = dig)
    (C's %g) with the smallest dig from dig.lab = 3 up to 12 that keeps
    neighbouring breaks distinct."""
    b = [float(v) for v in breaks]
    for dig in range(dig_lab, max(12, dig_lab) + 1):
        nb = [f"{v:.{dig}g}" for v in b]
        if all(nb[i] != nb[i + 1] for i in range(len(nb) - 1)):
            break
    return nb


# Hosmer & Lemeshow's rule for their chi-square approximation: every
# expected count at least 5 (Applied Logistic Regression, 3rd ed., 5.2.2).
MIN_EXPECTED = 5.0


def hosmer_lemeshow(y, yhat, g=10):
    """Hosmer-Lemeshow goodness of fit of P(positive) `yhat` against 0/1 `y`.

    Returns a dict: chisq, df (= g - 2), p, g, n_groups (after merging
    duplicate breaks), breaks, and per group: label (R's interval text),
    n, observed y0 / y1, expected yhat0 / yhat1, mean_p and observed rate;
    also p_holdout (df = g, for held-out data), min_expected and, when any
    group's expected count is below 5, unreliable = True and a warning.
    Raises ValueError where R's cut() fails (all predictions equal)."""
    if g < 3:
        raise ValueError(f"g = {g}: Hosmer-Lemeshow needs g >= 3 (df = g - 2)")
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    if y.shape != yhat.shape or y.ndim != 1 or len(y) == 0:
        raise ValueError("truth and probabilities must be 1-D, non-empty and of one length")
    qq = np.unique(r_quantile7(yhat, r_seq_probs(g)))
    if len(qq) < 2:
        raise ValueError("all predicted probabilities are equal: R's cut() has a single break and fails")
    codes = r_cut_codes(yhat, qq)
    k = len(qq) - 1
    obs1 = np.bincount(codes, weights=y, minlength=k)
    obs0 = np.bincount(codes, weights=1.0 - y, minlength=k)
    exp1 = np.bincount(codes, weights=yhat, minlength=k)
    exp0 = np.bincount(codes, weights=1.0 - yhat, minlength=k)
    counts = np.bincount(codes, minlength=k)
    observed = np.column_stack([obs0, obs1])
    expected = np.column_stack([exp0, exp1])
    with np.errstate(invalid="ignore", divide="ignore"):
        chisq = float(np.sum((observed - expected) ** 2 / expected))
    df = g - 2
    p = float(1.0 - sps.chi2.cdf(chisq, df)) if math.isfinite(chisq) else float("nan")
    nb = r_break_labels(qq)
    labels = [f"{'[' if j == 0 else '('}{nb[j]},{nb[j + 1]}]" for j in range(k)]
    # On held-out data no parameter was fitted to these cases, so the
    # reference distribution is chi-square with g degrees of freedom
    # (Hosmer & Lemeshow, external validation); R's g - 2 is the in-sample df.
    p_holdout = float(sps.chi2.sf(chisq, g)) if math.isfinite(chisq) else float("nan")
    min_exp = float(np.min(expected)) if expected.size else float("nan")
    n_small = int(np.sum(np.min(expected, axis=1) < MIN_EXPECTED))
    unreliable = n_small > 0
    warning = (f"{n_small} of the {k} groups have an expected count below {MIN_EXPECTED:g} (smallest "
               f"{min_exp:.2g}): the chi-square approximation does not hold and the p-value is not reliable"
               if unreliable else "")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(counts > 0, exp1 / np.maximum(counts, 1), np.nan)
        rate = np.where(counts > 0, obs1 / np.maximum(counts, 1), np.nan)
    return {"chisq": chisq, "df": df, "p": p, "g": g, "n_groups": k, "breaks": qq, "labels": labels,
            "p_holdout": p_holdout, "min_expected": min_exp, "unreliable": unreliable, "warning": warning,
            "n": counts, "obs0": obs0, "obs1": obs1, "exp0": exp0, "exp1": exp1, "mean_p": mean_p, "rate": rate,
            "n_cases": len(y)}


def wilson_interval(k, n, level=0.95):
    """Wilson score interval of a binomial proportion k / n."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = sps.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ph = k / n
        den = 1 + z * z / n
        mid = (ph + z * z / (2 * n)) / den
        half = z * np.sqrt(ph * (1 - ph) / n + z * z / (4 * n * n)) / den
        # At k = 0 or k = n a bound equals the proportion exactly, but mid -
        # half rounds to either side of it (-1e-17 at k = 0): clamp, so lo <=
        # k / n <= hi in [0, 1] always holds (error bars are rate - lo, hi - rate).
        lo = np.minimum(np.clip(mid - half, 0.0, 1.0), ph)
        hi = np.maximum(np.clip(mid + half, 0.0, 1.0), ph)
    return lo, hi


def format_hl(hl, title="Hosmer and Lemeshow goodness of fit (GOF) test", data=""):
    """Text as R prints the test, followed by the group table."""
    lines = [f"\t{title}", ""]
    if data:
        lines.append(f"data:  {data}")
    p = hl["p"]
    lines.append(f"X-squared = {hl['chisq']:.5g}, df = {hl['df']}, p-value = {p:.4g}")
    lines.append(f"({hl['n_groups']} groups from g = {hl['g']} quantile breaks of the predicted probability"
                 f"{', duplicate breaks merged' if hl['n_groups'] < hl['g'] else ''}; n = {hl['n_cases']})")
    lines.append(f"(held-out data, df = g = {hl['g']}: p-value = {hl['p_holdout']:.4g})")
    if hl["unreliable"]:
        lines.append(f"warning: {hl['warning']}")
    lines.append("")
    w = max(8, max(len(s) for s in hl["labels"]))
    lines.append(f"{'cutyhat':<{w}}  {'n':>4}  {'y0':>5}  {'y1':>5}  {'yhat0':>8}  {'yhat1':>8}")
    for j, lab in enumerate(hl["labels"]):
        lines.append(f"{lab:<{w}}  {hl['n'][j]:>4d}  {hl['obs0'][j]:>5g}  {hl['obs1'][j]:>5g}  "
                     f"{hl['exp0'][j]:>8.4f}  {hl['exp1'][j]:>8.4f}")
    return "\n".join(lines)
