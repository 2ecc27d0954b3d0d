"""Hosmer-Lemeshow as R's ResourceSelection::hoslem.test(x = truth, y = P, g)
computes it, on examples worked by hand (the derivations are in the
comments; every number below was obtained on paper, not by running code):

    qq <- unique(quantile(yhat, probs = seq(0, 1, 1/g)))       # type 7
    cutyhat <- cut(yhat, breaks = qq, include.lowest = TRUE)   # (a, b], first [a, b]
    observed <- xtabs(cbind(y0 = 1 - y, y1 = y) ~ cutyhat)
    expected <- xtabs(cbind(yhat0 = 1 - yhat, yhat1 = yhat) ~ cutyhat)
    chisq <- sum((observed - expected)^2 / expected);  df <- g - 2
    p <- 1 - pchisq(chisq, df)

Quantile type 7 of sorted x_1..x_n at probability p: index = 1 + (n - 1) p,
lo = floor(index), h = index - lo, q = (1 - h) x_lo + h x_(lo+1).
For even df = 2k the chi-square upper tail has the closed form
P(X > x) = exp(-x/2) * sum_{i<k} (x/2)^i / i!, which gives the p-values.
"""
import math
from fractions import Fraction as F

import numpy as np
import pytest

from analysis import calibration


def even_df_upper_tail(x, df):
    k = df // 2
    return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(k))


def test_hand_worked_g4():
    # n = 10, g = 4: probs = seq(0, 1, 0.25) = 0, .25, .5, .75, 1;
    # index = 1 + 9 p = 1, 3.25, 5.5, 7.75, 10.
    yhat = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    y = [0, 0, 1, 0, 1, 1, 0, 1, 1, 1]
    # q(0)   = x1 = 0.05
    # q(.25) = 0.75 x3 + 0.25 x4 = 0.75 * 0.2 + 0.25 * 0.3 = 0.225
    # q(.5)  = 0.5 x5 + 0.5 x6   = 0.45
    # q(.75) = 0.25 x7 + 0.75 x8 = 0.25 * 0.6 + 0.75 * 0.7 = 0.675
    # q(1)   = x10 = 0.9
    # Groups, right-closed, the first also closed on the left:
    #   [0.05, 0.225]: 0.05, 0.1, 0.2  y = 0, 0, 1   sum P = 0.35
    #   (0.225, 0.45]: 0.3, 0.4        y = 0, 1      sum P = 0.7
    #   (0.45, 0.675]: 0.5, 0.6        y = 1, 0      sum P = 1.1
    #   (0.675, 0.9]:  0.7, 0.8, 0.9   y = 1, 1, 1   sum P = 2.4
    # observed y1 = 1, 1, 1, 3; y0 = 2, 1, 1, 0
    # expected y1 = 0.35, 0.7, 1.1, 2.4; y0 = 2.65, 1.3, 0.9, 0.6
    # chi-square terms (obs - exp)^2 / exp, as fractions:
    #   (0.65)^2/0.35 = 169/140   (0.65)^2/2.65 = 169/1060
    #   (0.3)^2/0.7   = 9/70      (0.3)^2/1.3   = 9/130
    #   (0.1)^2/1.1   = 1/110     (0.1)^2/0.9   = 1/90
    #   (0.6)^2/2.4   = 3/20      (0.6)^2/0.6   = 3/5
    chisq = float(F(169, 140) + F(169, 1060) + F(9, 70) + F(9, 130) + F(1, 110) + F(1, 90) + F(3, 20) + F(3, 5))
    assert chisq == pytest.approx(2.334581037, abs=1e-9)
    # df = g - 2 = 2: p = exp(-chisq / 2)
    p = math.exp(-chisq / 2)
    hl = calibration.hosmer_lemeshow(y, yhat, g=4)
    assert np.allclose(hl["breaks"], [0.05, 0.225, 0.45, 0.675, 0.9], rtol=0, atol=1e-15)
    assert list(hl["n"]) == [3, 2, 2, 3]
    assert list(hl["obs1"]) == [1, 1, 1, 3] and list(hl["obs0"]) == [2, 1, 1, 0]
    assert np.allclose(hl["exp1"], [0.35, 0.7, 1.1, 2.4], atol=1e-14)
    assert np.allclose(hl["exp0"], [2.65, 1.3, 0.9, 0.6], atol=1e-14)
    assert hl["chisq"] == pytest.approx(chisq, rel=1e-12)
    assert hl["df"] == 2 and hl["n_groups"] == 4
    assert hl["p"] == pytest.approx(p, rel=1e-10)
    assert hl["labels"] == ["[0.05,0.225]", "(0.225,0.45]", "(0.45,0.675]", "(0.675,0.9]"]


def test_heavy_ties_merge_duplicate_breaks():
    # n = 40: P = 0.2 sixteen times, 0.5 fourteen times, 0.8 ten times.
    # g = 10: probs k/10, index = 1 + 39 p = 1, 4.9, 8.8, 12.7, 16.6, 20.5,
    # 24.4, 28.3, 32.2, 36.1, 40. Sorted, x1..x16 = 0.2, x17..x30 = 0.5,
    # x31..x40 = 0.8, so every quantile falls between equal neighbours
    # except q(.4) = 0.4 x16 + 0.6 x17 = 0.08 + 0.3 = 0.38:
    # breaks 0.2, 0.2, 0.2, 0.2, 0.38, 0.5, 0.5, 0.5, 0.8, 0.8, 0.8,
    # unique() -> 0.2, 0.38, 0.5, 0.8: three groups instead of ten.
    #   [0.2, 0.38]: the sixteen 0.2s, 4 positive:  expected 3.2 and 12.8
    #   (0.38, 0.5]: the fourteen 0.5s, 7 positive: expected 7 and 7
    #   (0.5, 0.8]:  the ten 0.8s, 9 positive:      expected 8 and 2
    # chi-square = 0.8^2/3.2 + 0.8^2/12.8 + 0 + 0 + 1^2/8 + 1^2/2
    #            = 0.2 + 0.05 + 0.125 + 0.5 = 0.875
    # df stays g - 2 = 8 as R reports it; p = exp(-0.4375) (1 + 0.4375 +
    # 0.4375^2/2 + 0.4375^3/6).
    yhat = [0.2] * 16 + [0.5] * 14 + [0.8] * 10
    y = [1] * 4 + [0] * 12 + [1] * 7 + [0] * 7 + [1] * 9 + [0] * 1
    rng = np.random.default_rng(3)
    perm = rng.permutation(40)  # order must not matter
    hl = calibration.hosmer_lemeshow(np.array(y)[perm], np.array(yhat)[perm], g=10)
    assert hl["n_groups"] == 3 and hl["df"] == 8
    assert np.allclose(hl["breaks"], [0.2, 0.38, 0.5, 0.8], atol=1e-15)
    assert list(hl["n"]) == [16, 14, 10]
    assert list(hl["obs1"]) == [4, 7, 9] and list(hl["obs0"]) == [12, 7, 1]
    assert np.allclose(hl["exp1"], [3.2, 7, 8], atol=1e-13) and np.allclose(hl["exp0"], [12.8, 7, 2], atol=1e-13)
    assert hl["chisq"] == pytest.approx(0.875, rel=1e-12)
    x = 0.4375
    assert hl["p"] == pytest.approx(math.exp(-x) * (1 + x + x * x / 2 + x ** 3 / 6), rel=1e-10)
    assert hl["p"] == pytest.approx(even_df_upper_tail(0.875, 8), rel=1e-10)


def test_ties_at_a_break_fall_in_the_lower_group():
    # n = 9, P = 0.1 x3, 0.3 x3, 0.7 x3; g = 3: index = 1 + 8 p = 1, 3.67, 6.33, 9.
    # q(1/3): x3 = 0.1, x4 = 0.3, h = 2/3 -> 0.1/3 + 0.2 = 0.2333...
    # q(2/3): x6 = 0.3, x7 = 0.7, h = 1/3 -> 0.2 + 0.7/3 = 0.4333...
    # breaks 0.1, 0.2333, 0.4333, 0.7: groups {0.1 x3}, {0.3 x3}, {0.7 x3}.
    # With y: 0.1s -> 0,0,1; 0.3s -> 0,1,1; 0.7s -> 1,1,1:
    #   expected y1 = 0.3, 0.9, 2.1; y0 = 2.7, 2.1, 0.9
    #   chi-square = 0.7^2/0.3 + 0.7^2/2.7 + 1.1^2/0.9 + 1.1^2/2.1 + 0.9^2/2.1 + 0.9^2/0.9
    #              = 49/30 + 49/270 + 121/90 + 121/210 + 27/70 + 9/10
    yhat = [0.1] * 3 + [0.3] * 3 + [0.7] * 3
    y = [0, 0, 1, 0, 1, 1, 1, 1, 1]
    chisq = float(F(49, 30) + F(49, 270) + F(121, 90) + F(121, 210) + F(27, 70) + F(9, 10))
    hl = calibration.hosmer_lemeshow(y, yhat, g=3)
    assert list(hl["n"]) == [3, 3, 3]
    assert hl["chisq"] == pytest.approx(chisq, rel=1e-12)
    # df = 1: P(X > x) = 2 (1 - Phi(sqrt x)) = erfc(sqrt(x / 2))
    assert hl["p"] == pytest.approx(math.erfc(math.sqrt(chisq / 2)), rel=1e-10)


def test_empty_group_gives_nan_as_r():
    # P = 0, 0, 1, 1 and g = 10: q(.4) = 0.8 x2 + 0.2 x3 = 0.2, q(.5) = 0.5,
    # q(.6) = 0.8: breaks 0, 0.2, 0.5, 0.8, 1 leave (0.2, 0.5] and (0.5, 0.8]
    # empty; their expected counts are 0 and R's sum is 0/0 = NaN.
    hl = calibration.hosmer_lemeshow([0, 0, 1, 1], [0.0, 0.0, 1.0, 1.0], g=10)
    assert list(hl["n"]) == [2, 0, 0, 2]
    assert math.isnan(hl["chisq"]) and math.isnan(hl["p"])


def test_all_equal_probabilities_fail_like_r():
    with pytest.raises(ValueError, match="equal"):
        calibration.hosmer_lemeshow([0, 1, 1], [0.4, 0.4, 0.4])
    with pytest.raises(ValueError, match="g >= 3"):
        calibration.hosmer_lemeshow([0, 1, 1], [0.1, 0.4, 0.5], g=2)


def test_r_seq_and_quantile_details():
    # R: seq(0, 1, 0.1)[4] is 3 * 0.1 = 0.30000000000000004, not 0.3.
    s = calibration.r_seq_probs(10)
    assert len(s) == 11 and s[3] == 3 * 0.1 and s[-1] == 1.0
    assert list(calibration.r_seq_probs(3)) == [0.0, 1 / 3, 2 / 3, 1.0]
    x = np.array([3.0, 1.0, 2.0, 10.0])
    # index = 1 + 3 p: p = 0.5 -> 2.5 -> (x2 + x3) / 2 = 2.5; p = 0.9 -> 3.7 -> 0.3 * 3 + 0.7 * 10 = 7.9
    assert np.allclose(calibration.r_quantile7(x, [0, 0.5, 0.9, 1]), [1, 2.5, 7.9, 10], atol=1e-15)
    rng = np.random.default_rng(0)
    v = rng.random(101)
    probs = calibration.r_seq_probs(10)
    assert np.allclose(calibration.r_quantile7(v, probs), np.quantile(v, probs), rtol=0, atol=1e-15)


def test_r_cut_codes_right_closed_lowest_included():
    b = np.array([0.0, 0.5, 1.0])
    assert list(calibration.r_cut_codes(np.array([0.0, 0.25, 0.5, 0.5000001, 1.0, 1.5]), b)) == [0, 0, 0, 1, 1, -1]


def test_format_like_r():
    hl = calibration.hosmer_lemeshow([0, 0, 1, 0, 1, 1, 0, 1, 1, 1],
                                     [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], g=4)
    txt = calibration.format_hl(hl, data="y, yhat")
    assert "Hosmer and Lemeshow goodness of fit (GOF) test" in txt
    assert "X-squared = 2.3346, df = 2, p-value = 0.3112" in txt


def test_wilson_interval():
    lo, hi = calibration.wilson_interval(np.array([0, 5, 10]), np.array([10, 10, 10]))
    assert lo[0] == pytest.approx(0.0, abs=1e-15) and hi[2] == pytest.approx(1.0)
    assert lo[1] == pytest.approx(0.2366, abs=1e-4) and hi[1] == pytest.approx(0.7634, abs=1e-4)
    # The bounds hold the proportion exactly, also where mid - half rounds
    # past it (k = 0 or k = n for any n): the reliability diagram's error
    # bars are rate - lo and hi - rate, which matplotlib refuses below 0.
    k = np.concatenate([np.zeros(200), np.arange(1, 201)])
    n = np.concatenate([np.arange(1, 201), np.arange(1, 201)])
    lo, hi = calibration.wilson_interval(k, n)
    p = k / n
    assert np.all(lo <= p) and np.all(p <= hi) and np.all(lo >= 0) and np.all(hi <= 1)
