"""The cross-validated summary: one row per configuration (a grid point
without `fold` and `seed`) over its runs (its k-fold and seed trials),
each evaluated at its selected epoch (analysis.selection):

- n_runs (done trials), val AUC and val accuracy: mean and SD over runs,
  95% t interval of the mean;
- test AUC: mean and SD over the runs' models, t interval; and the
  ensemble: the AUC of the runs' mean probability per test image, with
  DeLong's interval (and its accuracy at P > 0.5, Clopper-Pearson);
- the configuration chosen by mean val AUC (ties: higher mean val
  accuracy, then grid order); its test figures are the ones to report.

The per-hyperparameter effect: for each grid axis that varies (model,
batch size, schedule, ..., epochs), each value's mean val AUC over the
configurations that have it (the other axes averaged), with a 95% t
interval over all the runs that have it.
"""
import csv
import io
import math

import numpy as np

from analysis import metrics, stats

AXES = [("model", "model"), ("unfreeze", "unfrozen stages"), ("batch_size", "batch size"), ("schedule", "schedule"), ("base_lr", "base lr"),
        ("max_lr", "max lr"), ("half_cycle", "half cycle"), ("gamma", "gamma"), ("epochs", "epochs")]

CSV_KEYS = ["config", "model", "unfreeze", "batch_size", "schedule", "base_lr", "max_lr", "half_cycle", "gamma", "epochs",
            "n_runs", "folds", "seeds", "val_auc_mean", "val_auc_sd", "val_auc_lo", "val_auc_hi",
            "val_acc_mean", "val_acc_sd", "val_acc_lo", "val_acc_hi", "test_auc_mean", "test_auc_sd",
            "test_auc_lo", "test_auc_hi", "test_auc_ensemble", "test_auc_ensemble_lo", "test_auc_ensemble_hi",
            "test_acc_ensemble", "test_acc_ensemble_lo", "test_acc_ensemble_hi", "chosen"]


def _half_cycle(t):
    if t.step_size > 0:
        return f"{t.step_size:g} it"
    return f"{t.step_size_epochs:g} ep"


def config_label(t):
    sched = t.clr_mode if t.clr_mode != "exp_range" else f"exp_range γ={t.gamma:g}"
    tail = f" unfreeze {t.unfreeze}" if t.unfreeze else ""
    return (f"{t.model}{tail} b{t.batch_size} {sched} lr {t.base_lr:g}–{t.max_lr:g} half {_half_cycle(t)} "
            f"e{t.epochs}")


class Config:
    def __init__(self, key, trials):
        self.key = key
        self.trials = trials
        t = trials[0]
        self.label = config_label(t)
        self.values = {"model": t.model, "unfreeze": t.unfreeze, "batch_size": t.batch_size, "schedule": t.clr_mode,
                       "base_lr": t.base_lr, "max_lr": t.max_lr, "half_cycle": _half_cycle(t),
                       "gamma": t.gamma, "epochs": t.epochs}
        self.runs = []
        self.chosen = False

    def summarise(self, evals):
        self.runs = [evals[t.trial_id] for t in self.trials if evals[t.trial_id].done]
        r = self.runs
        self.n_runs = len(r)
        self.folds = sorted({e.t.fold for e in r})
        self.seeds = sorted({e.t.seed for e in r})
        self.val_auc = stats.t_interval([e.val_auc for e in r])
        self.val_acc = stats.t_interval([e.val_acc for e in r])
        self.test_auc = stats.t_interval([e.auc for e in r])
        self.ensemble = None
        if r and all(np.array_equal(e.t.test_index, r[0].t.test_index) for e in r):
            y = r[0].y_test
            p = np.mean([e.p_test for e in r], axis=0)
            auc, lo, hi = stats.delong_ci(y, p)
            cm = metrics.confusion_matrix(y, metrics.predict(p, 0.5))
            acc = stats.binary_rates(cm)["acc"]
            self.ensemble = {"y": y, "p": p, "auc": auc, "auc_lo": lo, "auc_hi": hi, "acc": acc["p"],
                             "acc_lo": acc["lo"], "acc_hi": acc["hi"]}
        return self

    def row(self):
        m, sd, lo, hi = self.val_auc
        am, asd, alo, ahi = self.val_acc
        tm, tsd, tlo, thi = self.test_auc
        en = self.ensemble or {}
        r = {"config": self.label, **self.values, "n_runs": self.n_runs,
             "folds": " ".join(str(f) for f in self.folds), "seeds": " ".join(str(s) for s in self.seeds),
             "val_auc_mean": m, "val_auc_sd": sd, "val_auc_lo": lo, "val_auc_hi": hi,
             "val_acc_mean": am, "val_acc_sd": asd, "val_acc_lo": alo, "val_acc_hi": ahi,
             "test_auc_mean": tm, "test_auc_sd": tsd, "test_auc_lo": tlo, "test_auc_hi": thi,
             "test_auc_ensemble": en.get("auc"), "test_auc_ensemble_lo": en.get("auc_lo"),
             "test_auc_ensemble_hi": en.get("auc_hi"), "test_acc_ensemble": en.get("acc"),
             "test_acc_ensemble_lo": en.get("acc_lo"), "test_acc_ensemble_hi": en.get("acc_hi"),
             "chosen": self.chosen}
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}


class CvSummary:
    def __init__(self, sev):
        self.sev = sev
        groups = {}
        for t in sev.sweep.trials:
            groups.setdefault(t.config_key(), []).append(t)
        self.configs = [Config(k, ts).summarise(sev.by_id) for k, ts in groups.items()]
        order = {id(c): i for i, c in enumerate(self.configs)}
        cands = [c for c in self.configs if c.n_runs and math.isfinite(c.val_auc[0])]
        self.chosen = None
        if cands:
            def key(c):
                acc = c.val_acc[0] if math.isfinite(c.val_acc[0]) else -math.inf
                return (-c.val_auc[0], -acc, order[id(c)])
            self.chosen = min(cands, key=key)
            self.chosen.chosen = True
        self.ranked = sorted(self.configs, key=lambda c: (-(c.val_auc[0]) if c.n_runs and
                                                          math.isfinite(c.val_auc[0]) else math.inf, order[id(c)]))
        self.repeated = any(c.n_runs > 1 for c in self.configs)

    def effects(self):
        """[(axis label, [(value, mean, lo, hi, n configs, n runs)])] for each
        varying axis; an axis that splits the configurations exactly as an
        earlier one does (gamma with the schedule) is left out."""
        out = []
        done = [c for c in self.configs if c.n_runs and math.isfinite(c.val_auc[0])]
        seen = set()
        for key, label in AXES:
            vals = list(dict.fromkeys(c.values[key] for c in done))
            if len(vals) < 2:
                continue
            part = tuple(vals.index(c.values[key]) for c in done)
            if part in seen:
                continue
            seen.add(part)
            try:
                vals = sorted(vals)
            except TypeError:
                pass
            pts = []
            for v in vals:
                cs = [c for c in done if c.values[key] == v]
                runs = [e.val_auc for c in cs for e in c.runs]
                # Mean over configurations (each weighs the same), interval
                # over every run that has the value.
                m = float(np.mean([c.val_auc[0] for c in cs]))
                _, _, lo, hi = stats.t_interval(runs)
                pts.append((v, m, lo, hi, len(cs), len(runs)))
            out.append((label, pts))
        return out

    def csv_text(self):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(CSV_KEYS)
        for c in self.ranked:
            r = c.row()
            w.writerow(["" if r[k] is None else (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in CSV_KEYS])
        return buf.getvalue()

    def text(self):
        def f(x, fmt="{:.3f}"):
            return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)

        def ci(m, lo, hi):
            return f(m) + ("" if lo is None or not math.isfinite(lo) else f" [{lo:.3f}, {hi:.3f}]")
        heads = ["configuration", "runs", "val AUC mean [95% CI]", "val AUC sd", "val acc mean", "val acc sd",
                 "test AUC mean [95% CI]", "test AUC sd", "ensemble AUC [DeLong 95% CI]"]
        table = []
        for c in self.ranked:
            en = c.ensemble
            table.append([("* " if c.chosen else "  ") + c.label, str(c.n_runs),
                          ci(c.val_auc[0], c.val_auc[2], c.val_auc[3]), f(c.val_auc[1]),
                          f(c.val_acc[0] * 100 if math.isfinite(c.val_acc[0]) else None, "{:.1f}%"),
                          f(c.val_acc[1] * 100 if math.isfinite(c.val_acc[1]) else None, "{:.1f}"),
                          ci(c.test_auc[0], c.test_auc[2], c.test_auc[3]), f(c.test_auc[1]),
                          ci(en["auc"], en["auc_lo"], en["auc_hi"]) if en else "-"])
        w = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(heads)]
        lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(heads)).rstrip()]
        lines += ["  ".join(x.ljust(w[i]) for i, x in enumerate(r)).rstrip() for r in table]
        s = self.sev.sweep
        k = s.kfold
        lines.append(f"{len(self.configs)} configurations (grid points without fold and seed)"
                     f"{f', {k}-fold cross-validation' if k else ', no k-fold'}; each run at its epoch by the "
                     f"{self.sev.rule_text()}; means with 95% t intervals over runs; sorted by mean val AUC")
        if self.chosen:
            c = self.chosen
            en = c.ensemble
            lines.append(f"chosen by mean val AUC: {c.label} ({c.n_runs} runs): val AUC "
                         f"{ci(c.val_auc[0], c.val_auc[2], c.val_auc[3])}; test AUC "
                         f"{ci(c.test_auc[0], c.test_auc[2], c.test_auc[3])} (mean over runs)"
                         + (f", ensemble {ci(en['auc'], en['auc_lo'], en['auc_hi'])}, ensemble accuracy "
                            f"{100 * en['acc']:.1f}% [{100 * en['acc_lo']:.1f}, {100 * en['acc_hi']:.1f}]"
                            if en else ""))
        return "\n".join(lines) + "\n"
