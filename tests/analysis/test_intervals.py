"""The new statistics against independent references:

- Clopper-Pearson intervals against statsmodels' proportion_confint(method='beta');
- PPV and NPV at a stated prevalence against Bayes' theorem worked by hand,
  and against the measured PPV/NPV at the test set's own prevalence;
- DeLong's AUC interval against the O(m n) implementation from DeLong et
  al.'s definitions (test_stats.delong_quadratic) and Stata's published
  interval for Hanley & McNeil's data;
- calibration intercept and slope against a statsmodels GLM (Binomial) fit;
- temperature scaling against PyTorch's LBFGS on the same likelihood;
- ECE, quantile bins and net benefit on examples worked by hand;
- Hosmer-Lemeshow's small-count warning, its held-out df and R's labels;
- the selection rule on records with ties;
- the t interval against scipy.stats.t.interval.
"""
import math

import numpy as np
import pytest
import statsmodels.api as sm
import torch
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from analysis import calibration, recalibration, selection, stats
from test_stats import delong_quadratic, hanley_mcneil


# ---- Clopper-Pearson ----

@pytest.mark.parametrize("n", [1, 2, 5, 20, 24, 118, 203, 1000])
def test_clopper_pearson_equals_statsmodels(n):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        if k < 0:
            continue
        lo, hi = stats.clopper_pearson(k, n)
        rlo, rhi = proportion_confint(k, n, alpha=0.05, method="beta")
        rlo = 0.0 if math.isnan(rlo) else rlo
        rhi = 1.0 if math.isnan(rhi) else rhi
        assert abs(lo - rlo) <= 1e-12 and abs(hi - rhi) <= 1e-12, (k, n, lo, rlo, hi, rhi)
        assert lo <= k / n <= hi
    lo, hi = stats.clopper_pearson(3, 10, level=0.9)
    rlo, rhi = proportion_confint(3, 10, alpha=0.1, method="beta")
    assert lo == pytest.approx(rlo, abs=1e-12) and hi == pytest.approx(rhi, abs=1e-12)
    assert all(math.isnan(x) for x in stats.clopper_pearson(0, 0))


def test_issue_example_never_impossible():
    # 20 test images: every bound is reachable by a count out of 20's interval
    # (a percentile bootstrap gave "95.1%"); 15 of 20 right: [50.9, 91.3].
    lo, hi = stats.clopper_pearson(15, 20)
    assert round(100 * lo, 1) == 50.9 and round(100 * hi, 1) == 91.3


def test_binary_rates_from_confusion_matrix():
    cm = np.array([[40, 10], [5, 45]])  # TN FP / FN TP
    r = stats.binary_rates(cm)
    for name, k, n in (("acc", 85, 100), ("sens", 45, 50), ("spec", 40, 50), ("ppv", 45, 55), ("npv", 40, 45)):
        lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
        assert r[name]["p"] == k / n and r[name]["k"] == k and r[name]["n"] == n
        assert r[name]["lo"] == pytest.approx(lo, abs=1e-12) and r[name]["hi"] == pytest.approx(hi, abs=1e-12)
    r = stats.binary_rates(np.array([[3, 0], [2, 0]]))  # nothing predicted positive
    assert r["ppv"] is None and r["npv"]["p"] == 3 / 5


# ---- predictive values at a prevalence ----

def test_ppv_npv_at_prevalence_by_hand():
    # sens 0.9, spec 0.8, prevalence 0.1:
    # PPV = 0.09 / (0.09 + 0.2 * 0.9) = 0.09 / 0.27 = 1/3
    # NPV = 0.8 * 0.9 / (0.72 + 0.1 * 0.1) = 0.72 / 0.73
    assert stats.ppv_at(0.9, 0.8, 0.1) == pytest.approx(1 / 3, rel=1e-14)
    assert stats.npv_at(0.9, 0.8, 0.1) == pytest.approx(0.72 / 0.73, rel=1e-14)
    cm = np.array([[40, 10], [5, 45]])
    rates = stats.binary_rates(cm)
    # At the sample's own prevalence (50%), Bayes gives back the measured values.
    a = stats.predictive_at_prevalence(rates, 0.5)
    assert a["ppv"]["p"] == pytest.approx(45 / 55, rel=1e-14) and a["npv"]["p"] == pytest.approx(40 / 45, rel=1e-14)
    a = stats.predictive_at_prevalence(rates, 0.05)
    s, sp = rates["sens"], rates["spec"]
    assert a["ppv"]["lo"] == pytest.approx(s["lo"] * 0.05 / (s["lo"] * 0.05 + (1 - sp["lo"]) * 0.95), rel=1e-14)
    assert a["ppv"]["lo"] <= a["ppv"]["p"] <= a["ppv"]["hi"]
    assert a["npv"]["lo"] <= a["npv"]["p"] <= a["npv"]["hi"]


# ---- DeLong interval ----

def test_delong_ci_published_and_quadratic():
    y, s = hanley_mcneil()
    auc, lo, hi = stats.delong_ci(y, s)
    assert round(lo, 5) == 0.83295 and round(hi, 5) == 0.95339
    rng = np.random.default_rng(5)
    for _ in range(5):
        m, n = rng.integers(6, 30, size=2)
        y = np.r_[np.ones(m, int), np.zeros(n, int)]
        p = np.round(rng.normal(size=m + n) + y, 1)
        theta, S = delong_quadratic(y, p)
        z = sps.norm.ppf(0.975)
        auc, lo, hi = stats.delong_ci(y, p)
        se = math.sqrt(S[0, 0])
        assert auc == pytest.approx(theta[0], abs=1e-14)
        assert lo == pytest.approx(max(0.0, theta[0] - z * se), abs=1e-12)
        assert hi == pytest.approx(min(1.0, theta[0] + z * se), abs=1e-12)
    assert math.isnan(stats.delong_ci([1, 1], [0.2, 0.3])[1])


# ---- calibration intercept and slope ----

def _sm_reference(y, p):
    lp = recalibration.logit(p)
    slope = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-14)
    icpt = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-14)
    return slope, icpt


@pytest.mark.parametrize("seed", range(5))
def test_intercept_slope_equal_statsmodels_glm(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 300))
    true = rng.uniform(-3, 3, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true))).astype(float)
    # over-confident, shifted predictions (slope < 1, intercept != 0), stored as float32
    p = (1 / (1 + np.exp(-(1.8 * true - 0.5)))).astype(np.float32).astype(np.float64)
    got = recalibration.intercept_slope(y, p)
    slope, icpt = _sm_reference(y, p)
    z = sps.norm.ppf(0.975)
    assert got["converged"]
    assert got["slope"] == pytest.approx(slope.params[1], rel=1e-8, abs=1e-10)
    assert got["slope_model_intercept"] == pytest.approx(slope.params[0], rel=1e-8, abs=1e-10)
    assert got["slope_lo"] == pytest.approx(slope.params[1] - z * slope.bse[1], rel=1e-7, abs=1e-9)
    assert got["intercept"] == pytest.approx(icpt.params[0], rel=1e-8, abs=1e-10)
    assert got["intercept_hi"] == pytest.approx(icpt.params[0] + z * icpt.bse[0], rel=1e-7, abs=1e-9)


def test_intercept_slope_perfect_and_separated():
    rng = np.random.default_rng(9)
    true = rng.uniform(-3, 3, 20000)
    y = (rng.random(len(true)) < 1 / (1 + np.exp(-true))).astype(float)
    got = recalibration.intercept_slope(y, 1 / (1 + np.exp(-true)))
    assert abs(got["slope"] - 1) < 0.06 and abs(got["intercept"]) < 0.05
    # P separates the classes: no finite slope, said so
    got = recalibration.intercept_slope([0, 0, 0, 1, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert not got["converged"] and math.isnan(got["slope"]) and "separated" in got["note"]


# ---- temperature scaling ----

def test_temperature_equals_torch_lbfgs():
    rng = np.random.default_rng(3)
    n = 150
    true = rng.normal(scale=1.5, size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-true))).astype(float)
    for scale in (3.0, 0.5):
        p = 1 / (1 + np.exp(-scale * true))
        T = recalibration.fit_temperature(y, p)
        lp = torch.tensor(recalibration.logit(p), dtype=torch.float64)
        yt = torch.tensor(y, dtype=torch.float64)
        log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                                line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(lp / torch.exp(log_t), yt)
            loss.backward()
            return loss
        opt.step(closure)
        T_ref = float(torch.exp(log_t))
        assert T == pytest.approx(T_ref, rel=1e-5), (scale, T, T_ref)
        q = recalibration.apply_temperature(p, T)
        assert recalibration.nll(y, q) <= recalibration.nll(y, p) + 1e-12
        # monotone: ranking and the P > 0.5 decisions are unchanged
        assert np.array_equal(np.argsort(q, kind="mergesort"), np.argsort(p, kind="mergesort"))
        assert np.array_equal(q > 0.5, p > 0.5)
    # under-confident predictions (the last, scale 0.5) are sharpened, over-confident ones softened
    assert T < 1 and recalibration.fit_temperature(y, 1 / (1 + np.exp(-3 * true))) > 1


# ---- ECE, bins, decision curves ----

def test_quantile_bins_and_ece_by_hand():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1])
    b = recalibration.quantile_bins(p, 3)
    assert list(b) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # bins: {.1,.2,.3} mean .2, rate 1/3; {.4,.6,.7} mean 17/30, rate 2/3; {.8,.9,.95} mean .88333, rate 2/3
    want = (abs(0.2 - 1 / 3) + abs(17 / 30 - 2 / 3) + abs(2.65 / 3 - 2 / 3)) / 3
    assert recalibration.ece(y, p, 3) == pytest.approx(want, rel=1e-12)
    t = recalibration.bin_table(y, p, 3)
    assert list(t["n"]) == [3, 3, 3] and list(t["pos"]) == [1, 2, 2]
    # ties stay in one bin
    b = recalibration.quantile_bins(np.array([0.5, 0.5, 0.5, 0.5, 0.9, 0.1]), 3)
    assert len(set(b[:4])) == 1
    e, lo, hi = recalibration.ece_interval(y, p, 3, n_boot=2000, seed=1)
    assert e == pytest.approx(want) and 0 <= lo <= hi <= 1


def test_net_benefit_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    nb, all_ = recalibration.net_benefit(y, p, [0.5, 0.25])
    # t = 0.5: treat 0.9, 0.6: TP 1, FP 1: 1/5 - 1/5 * 1 = 0; treat all: 2/5 - 3/5 = -0.2
    # t = 0.25: treat 0.9, 0.4, 0.6: TP 2, FP 1: 2/5 - 1/5 * 1/3 = 1/3; all: 2/5 - 3/5 / 3 = 0.2
    assert nb == pytest.approx([0.0, 1 / 3], abs=1e-15) and all_ == pytest.approx([-0.2, 0.2], abs=1e-15)


# ---- Hosmer-Lemeshow additions ----

def test_hl_small_counts_flagged_and_holdout_df():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, 20)
    y = (rng.random(20) < p).astype(int)
    hl = calibration.hosmer_lemeshow(y, p, g=10)
    assert hl["unreliable"] and "expected count below 5" in hl["warning"]
    assert hl["min_expected"] < 5
    assert hl["p_holdout"] == pytest.approx(sps.chi2.sf(hl["chisq"], 10), rel=1e-12)
    assert "warning:" in calibration.format_hl(hl)
    p = rng.uniform(0.2, 0.8, 2000)
    y = (rng.random(2000) < p).astype(int)
    hl = calibration.hosmer_lemeshow(y, p, g=10)
    assert not hl["unreliable"] and hl["warning"] == "" and "warning:" not in calibration.format_hl(hl)


def test_hl_labels_have_enough_digits_as_r():
    # R: formatC(c(0.12341, 0.12349, 0.5), digits = 3) gives "0.123" twice, so
    # cut() moves on to digits = 4: "0.1234" "0.1235" "0.5".
    assert calibration.r_break_labels([0.12341, 0.12349, 0.5]) == ["0.1234", "0.1235", "0.5"]
    assert calibration.r_break_labels([0.05, 0.225, 0.9]) == ["0.05", "0.225", "0.9"]
    p = np.r_[np.full(5, 0.3000001), np.full(5, 0.3000004), np.linspace(0.5, 0.9, 10)]
    y = np.r_[0, 1] .repeat(10)
    hl = calibration.hosmer_lemeshow(y, p, g=4)
    assert len(set(hl["labels"])) == len(hl["labels"])


# ---- selection rule ----

def _rec(auc, acc, loss):
    r = np.zeros(len(auc), dtype=[("epoch", "u8"), ("val_auc", "f8"), ("val_acc", "f8"), ("val_loss", "f8")])
    r["epoch"] = np.arange(1, len(auc) + 1)
    r["val_auc"], r["val_acc"], r["val_loss"] = auc, acc, loss
    return r


def test_selection_rules_with_ties():
    r = _rec([0.8, 0.9, 0.9, 0.9, 0.7], [0.7, 0.6, 0.8, 0.8, 0.9], [0.5, 0.45, 0.4, 0.4, 0.3])
    assert selection.select_epoch(r, "val_auc") == 3  # AUC tie 2, 3, 4; loss tie 3, 4; earlier: 3
    assert selection.select_epoch(r, "val_acc") == 5
    assert selection.select_epoch(r, "val_loss") == 5
    assert selection.select_epoch(r, "final") == 5
    r = _rec([0.8, float("nan"), 0.8], [0.7, 0.9, 0.75], [0.5, 0.1, 0.5])
    assert selection.select_epoch(r, "val_auc") == 1  # NaN ranks last; full tie: the earlier epoch
    assert selection.select_epoch(r, "val_acc") == 2
    assert selection.select_epoch(_rec([], [], []), "val_auc") is None
    with pytest.raises(ValueError, match="val_auc"):
        selection.select_epoch(r, "best")


def test_t_interval_equals_scipy():
    x = [0.81, 0.77, 0.85, 0.79, 0.90]
    m, sd, lo, hi = stats.t_interval(x)
    rlo, rhi = sps.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=sps.sem(x))
    assert m == pytest.approx(np.mean(x)) and sd == pytest.approx(np.std(x, ddof=1))
    assert lo == pytest.approx(rlo, rel=1e-12) and hi == pytest.approx(rhi, rel=1e-12)
    m, sd, lo, hi = stats.t_interval([0.8])
    assert m == 0.8 and math.isnan(sd) and math.isnan(lo)
