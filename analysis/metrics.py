"""Classification metrics of one set of P(positive) against 0/1 truth: ROC
curve, AUC, confusion matrix, accuracy, Brier score, Youden threshold.

The ROC curve follows sklearn.metrics.roc_curve step for step (scores
sorted descending with a stable sort, one point per distinct score, the
`drop_intermediate` rule that removes collinear points, an extra first
point at (0, 0) whose threshold is +inf), and the AUC is the trapezoidal
area under that curve as sklearn.metrics.roc_auc_score computes it, so the
numbers are the same to the last bit. Conventions for predictions:

- at a ROC threshold t (Youden), positive iff p >= t (sklearn's convention);
- at 0.5, positive iff p > 0.5, as ctsweep computes test_acc (and as an
  argmax over the two logits decides).
"""
import numpy as np


def _check(y, p):
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"truth {y.shape} and probabilities {p.shape} must be 1-D and of one length")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("truth must be 0 or 1")
    return y.astype(np.int64), p


def roc_curve(y, p, drop_intermediate=True):
    """(fpr, tpr, thresholds); thresholds[0] is +inf (the point (0, 0))."""
    y, p = _check(y, p)
    order = np.argsort(p, kind="mergesort")[::-1]
    ps = p[order]
    ys = y[order]
    distinct = np.where(np.diff(ps))[0]
    idx = np.r_[distinct, ys.size - 1]
    tps = np.cumsum(ys, dtype=np.float64)[idx]
    fps = 1 + idx - tps
    thr = ps[idx]
    if drop_intermediate and len(fps) > 2:
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps, thr = fps[keep], tps[keep], thr[keep]
    tps = np.r_[0, tps]
    fps = np.r_[0, fps]
    thr = np.r_[np.inf, thr]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr, thr


def roc_auc(y, p):
    """Area under the ROC curve; nan when one class is absent."""
    y, p = _check(y, p)
    if y.min(initial=1) == y.max(initial=0):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, p, drop_intermediate=True)
    trapz = getattr(np, "trapezoid", None) or np.trapz
    return float(trapz(tpr, fpr))


def predict(p, threshold=0.5, strict=True):
    """0/1 predictions: p > threshold (strict) or p >= threshold."""
    p = np.asarray(p, dtype=np.float64)
    return (p > threshold if strict else p >= threshold).astype(np.int64)


def confusion_matrix(y, pred):
    """[[TN, FP], [FN, TP]]: rows true class 0, 1; columns predicted 0, 1
    (sklearn.metrics.confusion_matrix with labels [0, 1])."""
    y = np.asarray(y, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    cm = np.zeros((2, 2), dtype=np.int64)
    np.add.at(cm, (y, pred), 1)
    return cm


def confusion_rates(cm):
    """Row-normalised rates: [[specificity, FPR], [FNR, sensitivity]]."""
    cm = np.asarray(cm, dtype=np.float64)
    s = cm.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, cm / s, np.nan)


def accuracy(y, pred):
    y = np.asarray(y)
    return float(np.mean(np.asarray(pred) == y)) if len(y) else float("nan")


def brier(y, p):
    """Mean squared difference between P(positive) and the 0/1 truth."""
    y, p = _check(y, p)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def youden_threshold(y, p):
    """The threshold maximising Youden's J = sensitivity + specificity - 1
    over every distinct score (drop_intermediate=False), the highest one on
    ties; positive iff p >= threshold. Returns (threshold, J, sensitivity,
    specificity); nan when one class is absent."""
    y, p = _check(y, p)
    if y.min(initial=1) == y.max(initial=0):
        return float("nan"), float("nan"), float("nan"), float("nan")
    fpr, tpr, thr = roc_curve(y, p, drop_intermediate=False)
    j = tpr[1:] - fpr[1:]
    k = int(np.argmax(j)) + 1
    return float(thr[k]), float(j[k - 1]), float(tpr[k]), float(1 - fpr[k])
