"""The leaderboard: one row per trial with its results first (selected
epoch, val AUC and accuracy there, test accuracy, sensitivity,
specificity with Clopper-Pearson intervals, test AUC with DeLong or
bootstrap intervals), then its hyperparameters and status. `#` is the rank
by the selection rule (analysis.selection); the rows are in that order
unless another sort key is asked for. The same rows feed the terminal
table, the CSV file and the report's sortable HTML table; the terminal and
the report leave out hyperparameters that are the same for every trial and
say what they are.
"""
import csv
import io
import math

# Hyperparameter columns: key, terminal header. Left out where constant.
HYPER_COLUMNS = [
    ("unfreeze", "unfreeze"), ("fold", "fold"), ("seed", "seed"), ("batch_size", "batch"), ("clr_mode", "schedule"), ("base_lr", "base_lr"),
    ("max_lr", "max_lr"), ("step_iters", "step(it)"), ("gamma", "gamma"), ("epochs", "epochs"),
]

CSV_KEYS = [
    "rank", "trial_id", "model", "selection_rule", "selected_epoch", "test_epoch", "val_auc", "val_acc", "val_loss",
    "test_acc", "test_acc_lo", "test_acc_hi", "test_sens", "test_sens_lo", "test_sens_hi",
    "test_spec", "test_spec_lo", "test_spec_hi", "test_ppv", "test_ppv_lo", "test_ppv_hi",
    "test_npv", "test_npv_lo", "test_npv_hi", "test_auc", "test_auc_lo", "test_auc_hi", "auc_interval",
    "youden_threshold", "youden_acc", "youden_sens", "youden_spec",
    "prevalence", "ppv_at_prevalence", "ppv_at_prevalence_lo", "ppv_at_prevalence_hi",
    "npv_at_prevalence", "npv_at_prevalence_lo", "npv_at_prevalence_hi",
    "brier", "ece", "cal_intercept", "cal_slope", "hl_p", "hl_unreliable",
    "unfreeze", "fold", "seed", "batch_size", "clr_mode", "base_lr", "max_lr", "step_iters", "step_size_epochs", "gamma",
    "epochs", "status", "epochs_done", "final_epoch", "final_val_acc", "same_run_as", "wall_seconds", "error",
    "selected", "best_overall",
]


def _v(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def _rate(r, prefix, rates, name):
    q = rates.get(name) if rates else None
    r[prefix] = _v(q["p"]) if q else None
    r[prefix + "_lo"] = _v(q["lo"]) if q else None
    r[prefix + "_hi"] = _v(q["hi"]) if q else None


def rows(sev, by="rank"):
    out = []
    for e in sev.ranked(by):
        t = e.t
        r = {
            "rank": e.rank, "trial_id": t.trial_id, "model": t.model, "selection_rule": sev.rule,
            "selected_epoch": e.selected_epoch, "test_epoch": e.eval_epoch if e.done else None,
            "val_auc": _v(e.val_auc), "val_acc": _v(e.val_acc), "val_loss": _v(e.val_loss),
            "unfreeze": t.unfreeze, "fold": t.fold, "seed": t.seed, "batch_size": t.batch_size,
            "clr_mode": t.clr_mode, "base_lr": t.base_lr, "max_lr": t.max_lr,
            "step_iters": t.step_iters if t.iters_per_epoch or t.step_size > 0 else None,
            "step_size_epochs": t.step_size_epochs, "gamma": t.gamma, "epochs": t.epochs,
            "status": t.status, "epochs_done": t.epochs_done, "final_epoch": e.final_epoch,
            "final_val_acc": _v(e.final_val_acc),
            "test_auc": _v(e.auc), "test_auc_lo": _v(e.auc_ci[0]) if e.auc_ci else None,
            "test_auc_hi": _v(e.auc_ci[1]) if e.auc_ci else None, "auc_interval": sev.auc_ci if e.done else None,
            "brier": _v(e.brier), "ece": _v(e.ece),
            "cal_intercept": _v(e.cal["intercept"]) if e.cal else None,
            "cal_slope": _v(e.cal["slope"]) if e.cal else None,
            "hl_p": _v(e.hl["p"]) if e.hl else None, "hl_unreliable": e.hl["unreliable"] if e.hl else None,
            "same_run_as": f"{e.prefix_of[0]} at epoch {e.prefix_of[1]}" if e.prefix_of else "",
            "wall_seconds": _v(t.wall_seconds) if t.wall_seconds else None,
            "error": t.error or (t.file_error or ""),
            "selected": any(b is e for b in sev.best_by_model.values()),
            "best_overall": sev.best is e,
        }
        for name in ("acc", "sens", "spec", "ppv", "npv"):
            _rate(r, "test_" + name, e.rates, name)
        y = e.youden
        r["youden_threshold"] = _v(y["threshold"]) if y else None
        yr = e.rates_youden
        r["youden_acc"] = _v(yr["acc"]["p"]) if yr and yr["acc"] else None
        r["youden_sens"] = _v(yr["sens"]["p"]) if yr and yr["sens"] else None
        r["youden_spec"] = _v(yr["spec"]["p"]) if yr and yr["spec"] else None
        ap = e.at_prevalence
        r["prevalence"] = sev.prevalence
        for name in ("ppv", "npv"):
            q = ap[name] if ap else None
            r[f"{name}_at_prevalence"] = _v(q["p"]) if q else None
            r[f"{name}_at_prevalence_lo"] = _v(q["lo"]) if q else None
            r[f"{name}_at_prevalence_hi"] = _v(q["hi"]) if q else None
        out.append(r)
    return out


def varying(sev, rws=None):
    """(hyperparameter keys that differ between trials, {key: value} of the constant ones)."""
    rws = rows(sev) if rws is None else rws
    vary, const = [], {}
    for k, _ in HYPER_COLUMNS:
        vals = {r[k] for r in rws}
        if len(vals) > 1:
            vary.append(k)
        elif vals:
            const[k] = next(iter(vals))
    return vary, const


def _pct(x):
    return "-" if x is None else f"{100 * x:.1f}%"


def _ci(x, lo, hi, pct):
    if x is None:
        return "-"
    if pct:
        return f"{100 * x:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None else f"{100 * x:.1f}%"
    return f"{x:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{x:.3f}"


def _g(x):
    return "-" if x is None else f"{x:g}"


def text(sev, by="rank"):
    """The terminal table."""
    rws = rows(sev, by)
    vary, const = varying(sev, rws)
    hyper = [(k, h) for k, h in HYPER_COLUMNS if k in vary]
    heads = ["#", "trial", "model", "sel ep", "val AUC", "val acc", "test acc [95% CI]", "test AUC [95% CI]",
             "sens [95% CI]", "spec [95% CI]"] + [h for _, h in hyper] + ["status"]
    table = []
    for r in rws:
        mark = "*" if r["best_overall"] else ("+" if r["selected"] else " ")
        ep = "-" if r["selected_epoch"] is None else str(r["selected_epoch"])
        if r["test_epoch"] is not None and r["test_epoch"] != r["selected_epoch"]:
            ep += f" (test {r['test_epoch']})"
        status = r["status"] if r["status"] != "running" else f"running {r['epochs_done']}/{r['epochs']}"
        if r["same_run_as"]:
            status += f" (= {r['same_run_as'][:8]} ep {r['epochs']})"
        table.append([f"{r['rank']}{mark}", r["trial_id"], r["model"], ep,
                      "-" if r["val_auc"] is None else f"{r['val_auc']:.3f}", _pct(r["val_acc"]),
                      _ci(r["test_acc"], r["test_acc_lo"], r["test_acc_hi"], True),
                      _ci(r["test_auc"], r["test_auc_lo"], r["test_auc_hi"], False),
                      _ci(r["test_sens"], r["test_sens_lo"], r["test_sens_hi"], True),
                      _ci(r["test_spec"], r["test_spec_lo"], r["test_spec_hi"], True)]
                     + [_g(r[k]) if not isinstance(r[k], str) else r[k] for k, _ in hyper] + [status])
    w = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(heads)).rstrip()]
    for row in table:
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip())
    s = sev.sweep
    c = s.status_counts()
    auc_ci = "DeLong" if sev.auc_ci == "delong" else f"{sev.n_boot} stratified bootstrap resamples"
    lines.append(f"{len(s.trials)} trials: {c['done']} done, {c['running']} running, {c['pending']} pending, "
                 f"{c['failed']} failed; sweep {s.state}; sorted by {by}; # and * (best overall), + (best of its "
                 f"model) by the {sev.rule_text()}")
    lines.append(f"test at P > 0.5; accuracy, sensitivity, specificity: Clopper-Pearson 95% intervals; AUC: {auc_ci}"
                 + ("; same for every trial: " + ", ".join(f"{k} {_g(v) if not isinstance(v, str) else v}"
                                                          for k, v in const.items()) if const else ""))
    return "\n".join(lines) + "\n"


def csv_text(sev, by="rank"):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_KEYS)
    for r in rows(sev, by):
        w.writerow(["" if r[k] is None else (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in CSV_KEYS])
    return buf.getvalue()
