"""DeLong's test, McNemar's exact test, the stratified bootstrap, Holm.

DeLong, worked example from the literature: the 109 CT images rated on a
five-point scale by one radiologist in Hanley & McNeil (1982), "The
meaning and use of the area under a receiver operating characteristic
(ROC) curve", Radiology 143:29-36, Table 1 (58 truly normal: 33, 6, 6, 11,
2 images rated 1..5; 51 truly abnormal: 3, 2, 2, 11, 33). The paper gives
the area 0.893. The same data ship with Stata as hanley.dta; the Stata
Base Reference Manual's `roctab disease rating` example, whose standard
error is DeLong, DeLong & Clarke-Pearson's (1988), prints area 0.8932,
std. err. 0.0307, asymptotic normal 95% interval [0.83295, 0.95339]. The
fast DeLong of Sun & Xu (2014) must reproduce those digits; it is also
compared, on this data and on random pairs of correlated scores with
ties, with an O(m n) implementation written here directly from DeLong et
al.'s formulas (their eqs. for the structural components V10, V01 and the
covariance matrix S = S10/m + S01/n).
"""
import math

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from analysis import stats
from analysis.evaluate import SweepEval

HM_NEG = [33, 6, 6, 11, 2]
HM_POS = [3, 2, 2, 11, 33]


def hanley_mcneil():
    neg = np.repeat(np.arange(1, 6), HM_NEG)
    pos = np.repeat(np.arange(1, 6), HM_POS)
    y = np.r_[np.zeros(len(neg), int), np.ones(len(pos), int)]
    return y, np.r_[neg, pos].astype(float)


def delong_quadratic(y, scores):
    """DeLong et al. (1988) from the definitions, O(m n) per pair of cases."""
    y = np.asarray(y)
    scores = np.atleast_2d(scores)
    k = len(scores)
    X = [s[y == 1] for s in scores]  # positives ("abnormal", X_i, i = 1..m)
    Y = [s[y == 0] for s in scores]  # negatives ("normal", Y_j, j = 1..n)
    m, n = len(X[0]), len(Y[0])
    V10 = np.zeros((k, m))
    V01 = np.zeros((k, n))
    theta = np.zeros(k)
    for r in range(k):
        psi = np.zeros((m, n))
        for i in range(m):
            for j in range(n):
                psi[i, j] = 1.0 if Y[r][j] < X[r][i] else (0.5 if Y[r][j] == X[r][i] else 0.0)
        theta[r] = psi.sum() / (m * n)
        V10[r] = psi.sum(axis=1) / n
        V01[r] = psi.sum(axis=0) / m
    S10 = np.zeros((k, k))
    S01 = np.zeros((k, k))
    for r in range(k):
        for s in range(k):
            S10[r, s] = np.sum((V10[r] - theta[r]) * (V10[s] - theta[s])) / (m - 1)
            S01[r, s] = np.sum((V01[r] - theta[r]) * (V01[s] - theta[s])) / (n - 1)
    return theta, S10 / m + S01 / n


def test_delong_hanley_mcneil_published():
    y, s = hanley_mcneil()
    auc, se = stats.delong_se(y, s)
    assert round(auc, 3) == 0.893 and round(auc, 4) == 0.8932
    assert round(se, 4) == 0.0307
    z = sps.norm.ppf(0.975)
    assert round(auc - z * se, 5) == 0.83295 and round(auc + z * se, 5) == 0.95339
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-14)
    theta, S = delong_quadratic(y, s)
    assert auc == pytest.approx(theta[0], abs=1e-14) and se ** 2 == pytest.approx(S[0, 0], rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_fast_delong_equals_quadratic_definition(seed):
    rng = np.random.default_rng(seed)
    m, n = rng.integers(5, 40, size=2)
    y = np.r_[np.ones(m, int), np.zeros(n, int)]
    rng.shuffle(y)
    base = rng.normal(size=m + n) + 1.2 * y
    s1 = base + rng.normal(scale=0.8, size=m + n)
    s2 = np.round(base + rng.normal(scale=1.2, size=m + n), 0 if seed % 2 else 1)  # ties
    s3 = rng.integers(0, 3, size=m + n).astype(float)  # heavy ties
    aucs, cov = stats.delong_cov(y, np.vstack([s1, s2, s3]))
    theta, S = delong_quadratic(y, np.vstack([s1, s2, s3]))
    assert np.allclose(aucs, theta, atol=1e-14)
    assert np.allclose(cov, S, rtol=1e-10, atol=1e-16)
    for a, b in ((s1, s2), (s2, s3)):
        t = stats.delong_test(y, a, b)
        th, SS = delong_quadratic(y, np.vstack([a, b]))
        zq = (th[0] - th[1]) / math.sqrt(SS[0, 0] + SS[1, 1] - 2 * SS[0, 1])
        assert t["z"] == pytest.approx(zq, rel=1e-10)
        assert t["p"] == pytest.approx(2 * sps.norm.sf(abs(zq)), rel=1e-9)
        assert t["auc1"] == pytest.approx(roc_auc_score(y, a), abs=1e-14)


def test_delong_identical_and_degenerate():
    y, s = hanley_mcneil()
    t = stats.delong_test(y, s, s)
    assert t["z"] == 0 and t["p"] == 1.0
    perfect = y.astype(float)
    flat = np.full(len(y), 0.5)
    t = stats.delong_test(y, perfect, flat)  # both variance estimates are 0
    assert t["diff"] == 0.5 and t["p"] == 0.0


def test_delong_null_rejection_rate():
    """Two exchangeable noisy readers of the same cases: about 5% of tests reject at 0.05."""
    rng = np.random.default_rng(11)
    rej = 0
    reps = 400
    for _ in range(reps):
        y = np.r_[np.ones(40, int), np.zeros(40, int)]
        latent = rng.normal(size=80) + y
        rej += stats.delong_test(y, latent + rng.normal(size=80), latent + rng.normal(size=80))["p"] < 0.05
    assert 0.02 <= rej / reps <= 0.09, rej / reps


def test_mcnemar_exact_by_hand():
    # b = 1, c = 6: p = 2 P(X <= 1), X ~ Bin(7, 1/2) = 2 (1 + 7) / 128 = 0.125
    c1 = [True] * 10 + [True] + [False] * 6
    c2 = [True] * 10 + [False] + [True] * 6
    r = stats.mcnemar_exact(c1, c2)
    assert (r["b"], r["c"]) == (1, 6) and r["p"] == pytest.approx(0.125, rel=1e-14)
    # b = 0, c = 10: 2 / 1024
    r = stats.mcnemar_exact([False] * 10, [True] * 10)
    assert r["p"] == pytest.approx(2 / 1024, rel=1e-14)
    # b = c = 5: 2 P(X <= 5) > 1, capped
    r = stats.mcnemar_exact([True] * 5 + [False] * 5, [False] * 5 + [True] * 5)
    assert r["p"] == 1.0
    # no discordant pairs
    assert stats.mcnemar_exact([True, False], [True, False])["p"] == 1.0
    for b, c in ((3, 9), (0, 4), (12, 20)):
        r = stats.mcnemar_exact([True] * b + [False] * c, [False] * b + [True] * c)
        assert r["p"] == pytest.approx(sps.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)


def test_holm():
    assert np.allclose(stats.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    assert np.allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])


def binormal(rng, n_pos, n_neg, delta):
    """Scores N(delta, 1) for positives and N(0, 1) for negatives: AUC = Phi(delta / sqrt 2)."""
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, rng.normal(size=n_pos + n_neg) + delta * y


def test_bootstrap_contains_known_auc():
    y, s = hanley_mcneil()
    auc_b, acc_b = stats.bootstrap(y, s, n_boot=2000, seed=1, threshold=3.5)
    lo, hi = stats.percentile_ci(auc_b)
    assert lo < 0.893 < hi
    assert lo < roc_auc_score(y, s) < hi
    # stratified: every resample keeps 51 positives and 58 negatives, so the
    # accuracy is a multiple of 1/109 and the AUC always defined
    assert np.all(np.isfinite(auc_b))
    assert np.allclose(acc_b * 109, np.round(acc_b * 109), atol=1e-9)
    # the bootstrap spread agrees with DeLong's standard error
    assert np.std(auc_b, ddof=1) == pytest.approx(stats.delong_se(y, s)[1], rel=0.15)


def test_bootstrap_coverage():
    """95% percentile intervals of a binormal AUC (true value Phi(1 / sqrt 2) =
    0.7602) over 100 simulated test sets of 50 + 50 cases cover it about 95%
    of the time."""
    true_auc = sps.norm.cdf(1 / math.sqrt(2))
    rng = np.random.default_rng(2024)
    covered = 0
    reps = 100
    for k in range(reps):
        y, s = binormal(rng, 50, 50, 1.0)
        lo, hi = stats.percentile_ci(stats.bootstrap(y, s, n_boot=2000, seed=k)[0])
        covered += lo <= true_auc <= hi
    assert 0.88 <= covered / reps <= 1.0, covered


def test_bootstrap_seeded_and_minimum():
    y, s = hanley_mcneil()
    a1, _ = stats.bootstrap(y, s, seed=5)
    a2, _ = stats.bootstrap(y, s, seed=5)
    a3, _ = stats.bootstrap(y, s, seed=6)
    assert len(a1) == 2000 and np.array_equal(a1, a2) and not np.array_equal(a1, a3)
    # chunked evaluation gives the same draws as one block
    a4, _ = stats.bootstrap(y, s, seed=5, chunk_cells=109 * 7)
    assert np.array_equal(a1, a4)
    with pytest.raises(ValueError, match="2000"):
        SweepEval(None, n_boot=1999)
