"""Everything the leaderboard and the report say about a sweep, computed once:
per-trial test metrics with bootstrap intervals, thresholds, confusion
matrices and calibration; each model's selected trial and the comparisons
between them; checks of the recorded numbers against the probabilities.

Test probabilities are recorded at a trial's final epoch (not at its best
validation epoch), so a trial is ranked for selection by what the same
network state did on val: val accuracy at the final epoch, then val AUC,
then lower val loss, then trial id. The test set never takes part in the
selection.
"""
import math

import numpy as np

from analysis import calibration, metrics, schedules, stats

SORT_KEYS = ("val_acc", "test_acc", "test_auc")


def _nan(x):
    return float("nan") if x is None else float(x)


class TrialEval:
    """Metrics of one trial. Test quantities are None until the trial is done."""

    def __init__(self, sweep, t, n_boot=2000, g=10, seed=0):
        self.t = t
        ep = t.epochs_rec
        self.final_epoch = int(ep["epoch"][-1]) if len(ep) else 0
        self.final_val_acc = float(ep["val_acc"][-1]) if len(ep) else None
        self.final_val_auc = float(ep["val_auc"][-1]) if len(ep) else None
        self.final_val_loss = float(ep["val_loss"][-1]) if len(ep) else None
        self.checks = []
        self.done = t.done and t.file_error is None
        self.y_val = sweep.y(t.val_index) if len(t.val_index) else np.zeros(0, dtype=np.int64)
        self.p_val = t.final_val_prob
        self._check_epochs(sweep)
        self._check_lr()
        self.y_test = self.p_test = None
        self.auc = self.auc_ci = self.acc = self.acc_ci = self.brier = None
        self.hl = self.hl_error = None
        self.youden = None
        self.cm05 = self.cm_youden = None
        self.roc = None
        if not self.done:
            return
        y = sweep.y(t.test_index)
        p = t.test_prob
        self.y_test, self.p_test = y, p
        self.pred05 = metrics.predict(p, 0.5, strict=True)
        self.acc = metrics.accuracy(y, self.pred05)
        self.auc = metrics.roc_auc(y, p)
        self.brier = metrics.brier(y, p)
        self.cm05 = metrics.confusion_matrix(y, self.pred05)
        b_auc, b_acc = stats.bootstrap(y, p, n_boot=n_boot, seed=stats.seed_for(t.trial_id, seed))
        self.auc_ci = stats.percentile_ci(b_auc)
        self.acc_ci = stats.percentile_ci(b_acc)
        if y.min() != y.max():
            self.roc = metrics.roc_curve(y, p, drop_intermediate=False)
        try:
            self.hl = calibration.hosmer_lemeshow(y, p, g=g)
        except ValueError as e:
            self.hl_error = str(e)
        if self.p_val is not None and len(self.y_val) and len(self.p_val) == len(self.y_val):
            thr, j, sens, spec = metrics.youden_threshold(self.y_val, self.p_val)
            if math.isfinite(thr):
                pred = metrics.predict(p, thr, strict=False)
                self.youden = {"threshold": thr, "j_val": j, "sens_val": sens, "spec_val": spec,
                               "acc_test": metrics.accuracy(y, pred)}
                self.pred_youden = pred
                self.cm_youden = metrics.confusion_matrix(y, pred)
        self._check_test()

    # ---- checks of the recorded numbers ----

    def _add(self, name, ok, detail):
        self.checks.append((name, ok, detail))

    def _check_epochs(self, sweep):
        t = self.t
        if not len(t.epochs_rec) or not len(self.y_val):
            return
        worst_acc = worst_auc = 0.0
        if t.val_prob.ndim != 2 or t.val_prob.shape != (len(t.epochs_rec), len(self.y_val)):
            self._add("/val/prob is [epochs, n_val]", False, f"shape {t.val_prob.shape}")
            return
        for e, row in enumerate(t.epochs_rec):
            pe = t.val_prob[e]
            acc = metrics.accuracy(self.y_val, metrics.predict(pe, 0.5))
            worst_acc = max(worst_acc, abs(acc - row["val_acc"]))
            auc = metrics.roc_auc(self.y_val, pe)
            if math.isfinite(auc) and math.isfinite(row["val_auc"]):
                worst_auc = max(worst_auc, abs(auc - row["val_auc"]))
        self._add("val accuracy per epoch = P > 0.5 on /val/prob", worst_acc <= 1e-9,
                  f"largest difference {worst_acc:.3g}")
        self._add("val AUC per epoch = AUC of /val/prob", worst_auc <= 1e-9, f"largest difference {worst_auc:.3g}")

    def _check_lr(self):
        ok, worst = schedules.check_trace(self.t)
        if ok is not None:
            self._add("/lr_trace = CyclicLR rebuilt from the recorded settings", ok,
                      f"largest relative difference {worst:.3g}")

    def _check_test(self):
        t = self.t
        if t.test_acc is not None:
            self._add("test_acc = P > 0.5 on /test/prob", abs(t.test_acc - self.acc) <= 1e-9,
                      f"recorded {t.test_acc:.6f}, recomputed {self.acc:.6f}")
        if t.test_auc is not None and math.isfinite(self.auc):
            self._add("test_auc = AUC of /test/prob", abs(t.test_auc - self.auc) <= 1e-9,
                      f"recorded {t.test_auc:.6f}, recomputed {self.auc:.6f}")

    # ---- ranking ----

    def selection_key(self):
        """Larger is better; test metrics take no part."""
        return (_nan(self.final_val_acc), _nan(self.final_val_auc), -_nan(self.final_val_loss))

    def sort_value(self, by):
        if by == "val_acc":
            return self.t.best_val_acc
        if by == "test_acc":
            return self.acc
        if by == "test_auc":
            return self.auc
        raise ValueError(f"unknown sort key '{by}' (one of {', '.join(SORT_KEYS)})")


def _select(evals):
    cands = [e for e in evals if e.done]
    if not cands:
        return None

    def key(e):
        k = tuple(-x if math.isfinite(x) else math.inf for x in e.selection_key())
        return k + (e.t.trial_id,)
    return min(cands, key=key)


class SweepEval:
    def __init__(self, sweep, n_boot=2000, g=10, seed=0):
        if n_boot < 2000:
            raise ValueError(f"--bootstrap {n_boot}: use at least 2000 resamples")
        self.sweep = sweep
        self.n_boot, self.g, self.seed = n_boot, g, seed
        self.evals = [TrialEval(sweep, t, n_boot=n_boot, g=g, seed=seed) for t in sweep.trials]
        self.by_id = {e.t.trial_id: e for e in self.evals}
        self.models = sweep.models()
        self.best_by_model = {}
        for m in self.models:
            b = _select([e for e in self.evals if e.t.model == m])
            if b is not None:
                self.best_by_model[m] = b
        self.best = _select(list(self.best_by_model.values()))
        self.vs_best = []
        self.pairwise = []
        if self.best is not None:
            for m, e in self.best_by_model.items():
                self.vs_best.append(self.compare(e, self.best))
            bests = list(self.best_by_model.values())
            for i in range(len(bests)):
                for j in range(i + 1, len(bests)):
                    self.pairwise.append(self.compare(bests[i], bests[j]))
            ps = [c["delong"]["p"] for c in self.pairwise if c["delong"]]
            if ps:
                adj = iter(stats.holm(ps))
                for c in self.pairwise:
                    if c["delong"]:
                        c["delong"]["p_holm"] = float(next(adj))
            ps = [c["mcnemar"]["p"] for c in self.pairwise if c["mcnemar"]]
            if ps:
                adj = iter(stats.holm(ps))
                for c in self.pairwise:
                    if c["mcnemar"]:
                        c["mcnemar"]["p_holm"] = float(next(adj))

    @staticmethod
    def compare(a, b):
        """a against b on the same test images: DeLong for AUC, McNemar for accuracy at 0.5."""
        out = {"a": a, "b": b, "same": a is b, "delong": None, "mcnemar": None, "note": ""}
        if a is b:
            out["note"] = "reference (best overall)"
            return out
        if not np.array_equal(a.t.test_index, b.t.test_index):
            out["note"] = "different test images: not comparable"
            return out
        y = a.y_test
        if y.min() != y.max():
            out["delong"] = stats.delong_test(y, a.p_test, b.p_test)
        out["mcnemar"] = stats.mcnemar_exact(a.pred05 == y, b.pred05 == y)
        return out

    def ranked(self, by="val_acc"):
        """Every trial, best first by `by`; ties and unknowns by the selection
        key, then trial order; trials without the metric last."""
        if by not in SORT_KEYS:
            raise ValueError(f"unknown sort key '{by}' (one of {', '.join(SORT_KEYS)})")
        order = {e.t.trial_id: i for i, e in enumerate(self.evals)}

        def key(e):
            v = e.sort_value(by)
            v = -v if v is not None and math.isfinite(v) else math.inf
            sk = tuple(-x if math.isfinite(x) else math.inf for x in e.selection_key())
            return (v,) + sk + (order[e.t.trial_id],)
        return sorted(self.evals, key=key)

    def failed_checks(self):
        return [(e.t.trial_id, name, detail) for e in self.evals for name, ok, detail in e.checks if not ok]
