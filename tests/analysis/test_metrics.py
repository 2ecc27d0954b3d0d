"""ROC curve, AUC, confusion matrix, Brier score and the Youden threshold
against sklearn (the reference), on random data with and without ties,
float32 probabilities as the trial files store them, and edge cases.

ROC points are compared with both of sklearn's settings of
drop_intermediate (True, its default, and False), element for element and
bit for bit; the first threshold is +inf here (sklearn >= 1.3) where
sklearn 1.2 writes thresholds[1] + 1: that one element is checked for
either form, the rest exactly. AUC must equal roc_auc_score exactly.
"""
import numpy as np
import pytest
from sklearn import metrics as skm

from analysis import metrics
from analysis.stats import _midranks


def cases():
    rng = np.random.default_rng(1234)
    out = []
    for n in (2, 3, 5, 12, 16, 40, 203, 1000):
        for ties in (False, True):
            for k in range(3):
                y = rng.integers(0, 2, n)
                y[0], y[-1] = 0, 1  # both classes
                if ties:
                    p = np.round(rng.random(n) * 4) / 4  # five distinct values
                else:
                    p = np.clip(0.3 * y + rng.normal(0.35, 0.25, n), 0, 1)
                out.append((f"n{n}-{'ties' if ties else 'cont'}-{k}", y, p.astype(np.float32).astype(np.float64)))
    y = np.array([0, 1, 0, 1, 1, 0])
    out.append(("all-equal", y, np.full(6, 0.5)))
    out.append(("perfect", y, np.array([0.1, 0.9, 0.2, 0.8, 0.7, 0.3])))
    out.append(("inverted", y, np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.7])))
    out.append(("tiny-float32", np.array([0, 1, 1, 0]), np.array([1e-30, 1e-30, 2e-30, 0.0], dtype=np.float32)
                .astype(np.float64)))
    return out


CASES = cases()


@pytest.mark.parametrize("name,y,p", CASES, ids=[c[0] for c in CASES])
def test_roc_auc_confusion_brier_equal_sklearn(name, y, p):
    assert metrics.roc_auc(y, p) == skm.roc_auc_score(y, p)
    for drop in (True, False):
        f, t, th = metrics.roc_curve(y, p, drop_intermediate=drop)
        sf, st, sth = skm.roc_curve(y, p, drop_intermediate=drop)
        assert np.array_equal(f, sf) and np.array_equal(t, st), f"drop_intermediate={drop}: points differ"
        assert np.array_equal(th[1:], sth[1:])
        assert th[0] == np.inf and (sth[0] == np.inf or sth[0] == sth[1] + 1)
    for thr, strict in ((0.5, True), (0.5, False), (0.25, False), (0.75, True)):
        pred = metrics.predict(p, thr, strict)
        assert np.array_equal(metrics.confusion_matrix(y, pred), skm.confusion_matrix(y, pred, labels=[0, 1]))
        assert metrics.accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-15)
    assert metrics.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), rel=1e-12, abs=1e-15)


def test_one_class_gives_nan_auc():
    assert np.isnan(metrics.roc_auc([1, 1, 1], [0.2, 0.4, 0.9]))
    assert np.isnan(metrics.youden_threshold([0, 0], [0.1, 0.2])[0])


def test_threshold_conventions():
    p = np.array([0.5, 0.5000001, 0.4999999])
    assert list(metrics.predict(p, 0.5, strict=True)) == [0, 1, 0]   # ctsweep's test_acc: P > 0.5
    assert list(metrics.predict(p, 0.5, strict=False)) == [1, 1, 0]  # ROC thresholds: P >= t


def test_confusion_rates():
    cm = np.array([[8, 2], [1, 9]])
    r = metrics.confusion_rates(cm)
    assert np.allclose(r, [[0.8, 0.2], [0.1, 0.9]])


@pytest.mark.parametrize("name,y,p", CASES[:24], ids=[c[0] for c in CASES[:24]])
def test_youden_matches_sklearn_roc(name, y, p):
    """The threshold maximising tpr - fpr over sklearn's full ROC (first on
    ties, +inf excluded), applied as P >= t."""
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=False)
    j = tpr[1:] - fpr[1:]
    k = int(np.argmax(j)) + 1
    t, jj, sens, spec = metrics.youden_threshold(y, p)
    assert t == thr[k] and jj == j[k - 1]
    pred = (p >= t).astype(int)
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    assert sens == pytest.approx(cm[1, 1] / cm[1].sum()) and spec == pytest.approx(cm[0, 0] / cm[0].sum())


def test_youden_threshold_from_val_applied_to_test():
    """Chosen on one set, applied unchanged to another (as the report does)."""
    yv = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    pv = np.array([0.1, 0.2, 0.35, 0.3, 0.6, 0.9, 0.55, 0.4])
    t, j, sens, spec = metrics.youden_threshold(yv, pv)
    # Val positives 0.3, 0.4, 0.6, 0.9; negatives 0.1, 0.2, 0.35, 0.55. Going
    # down the thresholds, (TP, FP) = 0.9: (1, 0), 0.6: (2, 0), 0.55: (2, 1),
    # 0.4: (3, 1), 0.35: (3, 2), 0.3: (4, 2), ...; J = TP/4 - FP/4 is largest
    # (0.5) at 0.6, 0.4 and 0.3; the highest, 0.6, is kept: sens 2/4, spec 4/4.
    assert t == 0.6 and j == pytest.approx(0.5) and sens == 0.5 and spec == 1.0
    yt = np.array([0, 1, 1, 0, 1])
    pt = np.array([0.6, 0.59, 0.95, 0.1, 0.7])
    pred = metrics.predict(pt, t, strict=False)
    assert list(pred) == [1, 0, 1, 0, 1]
    assert np.array_equal(metrics.confusion_matrix(yt, pred), skm.confusion_matrix(yt, pt >= t))


def test_midranks_equal_scipy_rankdata():
    from scipy.stats import rankdata
    rng = np.random.default_rng(7)
    for shape in ((1,), (9,), (4, 30), (3, 5, 17)):
        a = rng.integers(0, 4, size=shape).astype(float)
        assert np.array_equal(_midranks(a), rankdata(a, axis=-1))
