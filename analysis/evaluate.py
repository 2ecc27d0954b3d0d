"""Everything the leaderboard and the report say about a sweep, computed once:
per-trial test metrics at the selected epoch with exact and DeLong
intervals, thresholds, confusion matrices and calibration; each model's
selected trial and the comparisons between them; checks of the recorded
numbers against the probabilities.

Selection follows analysis.selection: each trial's epoch is chosen on val
(default: highest val AUC, ties lower val loss, then the earlier epoch)
and trials are ranked by the same key at that epoch; the test set never
takes part. Schema-1 results hold test probabilities at the final epoch
only: there a trial is evaluated (and ranked) at its final epoch.
"""
import math

import numpy as np

from analysis import calibration, metrics, recalibration, schedules, selection, stats

SORT_KEYS = ("rank", "val_auc", "val_acc", "test_acc", "test_auc")
AUC_CI = ("delong", "bootstrap")


def _nan(x):
    return float("nan") if x is None else float(x)


class TrialEval:
    """Metrics of one trial. Test quantities are None until the trial is done."""

    def __init__(self, sweep, t, rule="val_auc", n_boot=2000, g=10, seed=0, auc_ci="delong", prevalence=None):
        self.t = t
        self.rule = rule
        ep = t.epochs_rec
        self.final_epoch = int(ep["epoch"][-1]) if len(ep) else 0
        self.final_val_acc = float(ep["val_acc"][-1]) if len(ep) else None
        # The epoch the rule picks on val, and the one evaluated on test (the
        # same, except in schema 1 where only the final epoch has test data).
        self.selected_epoch = selection.select_epoch(ep, rule)
        self.eval_epoch, self.fell_back = selection.test_epoch(t, rule)
        self.eval_idx = (int(np.flatnonzero(ep["epoch"] == self.eval_epoch)[0])
                         if self.eval_epoch is not None else None)
        self.val_auc, self.val_acc, self.val_loss = selection.values_at(ep, self.eval_idx)
        self.rank_key = selection.rank_key(ep, self.eval_idx, rule)
        self.rank = None
        self.prefix_of = None  # (longer trial id, epoch) when this trial is an early stop of a longer run
        self.checks = []
        self.done = t.done and t.file_error is None
        self.y_val = sweep.y(t.val_index) if len(t.val_index) else np.zeros(0, dtype=np.int64)
        self.p_val = t.val_prob_at(self.eval_epoch) if self.eval_epoch is not None else None
        self._check_epochs()
        self._check_lr()
        self.y_test = self.p_test = None
        self.auc = self.auc_ci = self.acc = self.acc_ci = self.brier = None
        self.rates = self.rates_youden = self.at_prevalence = None
        self.hl = self.hl_error = None
        self.cal = None
        self.ece = None
        self.youden = None
        self.cm05 = self.cm_youden = None
        self.roc = None
        self.auc_method = auc_ci
        if not self.done:
            return
        y = sweep.y(t.test_index)
        p = t.test_prob_at(self.eval_epoch)
        if p is None:
            self.done = False
            self._add(f"/test/prob holds epoch {self.eval_epoch}", False, "no row for the evaluated epoch")
            return
        self.y_test, self.p_test = y, p
        self.pred05 = metrics.predict(p, 0.5, strict=True)
        self.cm05 = metrics.confusion_matrix(y, self.pred05)
        self.rates = stats.binary_rates(self.cm05)
        self.acc = metrics.accuracy(y, self.pred05)
        self.acc_ci = (self.rates["acc"]["lo"], self.rates["acc"]["hi"])
        self.auc = metrics.roc_auc(y, p)
        if auc_ci == "bootstrap":
            b_auc, _ = stats.bootstrap(y, p, n_boot=n_boot, seed=stats.seed_for(t.trial_id, seed))
            self.auc_ci = stats.percentile_ci(b_auc)
        else:
            _, lo, hi = stats.delong_ci(y, p)
            self.auc_ci = (lo, hi)
        self.brier = metrics.brier(y, p)
        if prevalence is not None:
            self.at_prevalence = stats.predictive_at_prevalence(self.rates, prevalence)
        if y.min() != y.max():
            self.roc = metrics.roc_curve(y, p, drop_intermediate=False)
        try:
            self.hl = calibration.hosmer_lemeshow(y, p, g=g)
        except ValueError as e:
            self.hl_error = str(e)
        self.cal = recalibration.intercept_slope(y, p)
        self.ece = recalibration.ece(y, p, recalibration.n_bins_for(len(y)))
        if self.p_val is not None and len(self.y_val) and len(self.p_val) == len(self.y_val):
            thr, j, sens, spec = metrics.youden_threshold(self.y_val, self.p_val)
            if math.isfinite(thr):
                pred = metrics.predict(p, thr, strict=False)
                self.youden = {"threshold": thr, "j_val": j, "sens_val": sens, "spec_val": spec,
                               "acc_test": metrics.accuracy(y, pred)}
                self.pred_youden = pred
                self.cm_youden = metrics.confusion_matrix(y, pred)
                self.rates_youden = stats.binary_rates(self.cm_youden)
        self._check_test()

    # ---- calibration in detail (the report's selected trials) ----

    def calibration_detail(self, n_boot=2000, seed=0):
        """ECE with its bootstrap interval, temperature scaling fitted on val at
        the evaluated epoch and applied to test, decision curves."""
        y, p = self.y_test, self.p_test
        nb = recalibration.n_bins_for(len(y))
        e, lo, hi = recalibration.ece_interval(y, p, nb, n_boot=n_boot, seed=stats.seed_for(self.t.trial_id, seed))
        out = {"n_bins": nb, "ece": e, "ece_lo": lo, "ece_hi": hi, "temperature": None}
        if self.p_val is not None and len(self.y_val) and self.y_val.min() != self.y_val.max():
            T = recalibration.fit_temperature(self.y_val, self.p_val)
            q = recalibration.apply_temperature(p, T)
            e2, lo2, hi2 = recalibration.ece_interval(y, q, nb, n_boot=n_boot,
                                                      seed=stats.seed_for(self.t.trial_id, seed))
            out["temperature"] = {
                "T": T, "p": q,
                "before": {"nll": recalibration.nll(y, p), "brier": metrics.brier(y, p), "ece": e,
                           "ece_lo": lo, "ece_hi": hi, "cal": self.cal},
                "after": {"nll": recalibration.nll(y, q), "brier": metrics.brier(y, q), "ece": e2,
                          "ece_lo": lo2, "ece_hi": hi2, "cal": recalibration.intercept_slope(y, q)}}
        return out

    # ---- checks of the recorded numbers ----

    def _add(self, name, ok, detail):
        self.checks.append((name, ok, detail))

    def _check_epochs(self):
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
        """ctsweep records test_acc / test_auc at its selected epoch (schema 2,
        rule val_auc) or at the final epoch (schema 1)."""
        t = self.t
        at = self.final_epoch
        if t.test_at_every_epoch:
            if t.test_probs.shape != (len(t.epochs_rec), len(t.test_index)):
                self._add("/test/prob is [epochs, n_test]", False, f"shape {t.test_probs.shape}")
                return
            want = selection.select_epoch(t.epochs_rec, "val_auc")
            if t.recorded_selected_epoch is not None:
                self._add("selected_epoch = the val_auc rule on /epochs", t.recorded_selected_epoch == want,
                          f"recorded {t.recorded_selected_epoch}, rule gives {want}")
                at = t.recorded_selected_epoch
        p = t.test_prob_at(at)
        if p is None:
            return
        y = self.y_test
        acc = metrics.accuracy(y, metrics.predict(p, 0.5))
        auc = metrics.roc_auc(y, p)
        if t.test_acc is not None:
            self._add(f"test_acc = P > 0.5 on /test/prob at epoch {at}", abs(t.test_acc - acc) <= 1e-9,
                      f"recorded {t.test_acc:.6f}, recomputed {acc:.6f}")
        if t.test_auc is not None and math.isfinite(auc):
            self._add(f"test_auc = AUC of /test/prob at epoch {at}", abs(t.test_auc - auc) <= 1e-9,
                      f"recorded {t.test_auc:.6f}, recomputed {auc:.6f}")

    def sort_value(self, by):
        if by == "rank":
            return None if self.rank is None else -self.rank
        if by == "val_auc":
            return self.val_auc
        if by == "val_acc":
            return self.val_acc
        if by == "test_acc":
            return self.acc
        if by == "test_auc":
            return self.auc
        raise ValueError(f"unknown sort key '{by}' (one of {', '.join(SORT_KEYS)})")


def find_prefixes(evals):
    """Trials whose records are the first epochs of a longer trial of the
    same settings (a shorter epoch budget read off the same run): val
    probabilities and learning rates equal, row for row. Sets prefix_of =
    (id of the longest such trial, epochs)."""
    groups = {}
    for e in evals:
        t = e.t
        key = tuple((k, v) for k, v in t.hyper_dict().items() if k != "epochs") + (t.fold, t.step_size_down)
        groups.setdefault(key, []).append(e)
    for members in groups.values():
        members = sorted(members, key=lambda e: -e.t.epochs)
        for i, short in enumerate(members):
            n = len(short.t.epochs_rec)
            if n == 0:
                continue
            for long in members[:i]:
                lt = long.t
                if lt.epochs <= short.t.epochs or len(lt.epochs_rec) < n:
                    continue
                same = (np.array_equal(lt.val_prob[:n], short.t.val_prob[:n])
                        and np.array_equal(lt.epochs_rec["val_loss"][:n], short.t.epochs_rec["val_loss"])
                        and len(short.t.lr_trace) <= len(lt.lr_trace)
                        and np.array_equal(lt.lr_trace[:len(short.t.lr_trace)], short.t.lr_trace))
                if same:
                    short.prefix_of = (lt.trial_id, short.t.epochs)
                    break


class SweepEval:
    def __init__(self, sweep, rule="val_auc", n_boot=2000, g=10, seed=0, auc_ci="delong", prevalence=None):
        if n_boot < 2000:
            raise ValueError(f"--bootstrap {n_boot}: use at least 2000 resamples")
        if g < 3:
            raise ValueError(f"g = {g}: Hosmer-Lemeshow needs g >= 3 (df = g - 2)")
        if rule not in selection.RULES:
            raise ValueError(f"unknown selection rule '{rule}' (one of {', '.join(selection.RULES)})")
        if auc_ci not in AUC_CI:
            raise ValueError(f"unknown AUC interval '{auc_ci}' (one of {', '.join(AUC_CI)})")
        if prevalence is not None and not 0 < prevalence < 1:
            raise ValueError(f"--prevalence {prevalence}: must lie strictly between 0 and 1")
        self.sweep = sweep
        self.rule = rule
        self.n_boot, self.g, self.seed, self.auc_ci, self.prevalence = n_boot, g, seed, auc_ci, prevalence
        self.evals = [TrialEval(sweep, t, rule=rule, n_boot=n_boot, g=g, seed=seed, auc_ci=auc_ci,
                                prevalence=prevalence) for t in sweep.trials]
        self.by_id = {e.t.trial_id: e for e in self.evals}
        order = {e.t.trial_id: i for i, e in enumerate(self.evals)}
        for rank, e in enumerate(sorted(self.evals, key=lambda e: e.rank_key + (order[e.t.trial_id],)), 1):
            e.rank = rank
        find_prefixes(self.evals)
        self.models = sweep.models()
        self.best_by_model = {}
        for m in self.models:
            b = self._select([e for e in self.evals if e.t.model == m])
            if b is not None:
                self.best_by_model[m] = b
        self.best = self._select(list(self.best_by_model.values()))
        self.fell_back = any(e.fell_back for e in self.evals)
        self.vs_best = []
        self.pairwise = []
        if self.best is not None:
            for m, e in self.best_by_model.items():
                self.vs_best.append(self.compare(e, self.best))
            bests = list(self.best_by_model.values())
            for i in range(len(bests)):
                for j in range(i + 1, len(bests)):
                    self.pairwise.append(self.compare(bests[i], bests[j]))
            for test in ("delong", "mcnemar"):
                ps = [c[test]["p"] for c in self.pairwise if c[test]]
                if ps:
                    adj = iter(stats.holm(ps))
                    for c in self.pairwise:
                        if c[test]:
                            c[test]["p_holm"] = float(next(adj))

    @staticmethod
    def _select(evals):
        cands = [e for e in evals if e.done]
        return min(cands, key=lambda e: e.rank) if cands else None

    def rule_text(self):
        return selection.describe(self.rule, self.sweep.schema_version)

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

    def ranked(self, by="rank"):
        """Every trial, best first by `by` (rank: the selection rule); ties and
        unknowns by the rank; trials without the metric last."""
        if by not in SORT_KEYS:
            raise ValueError(f"unknown sort key '{by}' (one of {', '.join(SORT_KEYS)})")

        def key(e):
            v = e.sort_value(by)
            v = -v if v is not None and math.isfinite(v) else math.inf
            return (v, e.rank)
        return sorted(self.evals, key=key)

    def failed_checks(self):
        return [(e.t.trial_id, name, detail) for e in self.evals for name, ok, detail in e.checks if not ok]
