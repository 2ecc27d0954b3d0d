"""The leaderboard: one row per trial with its hyperparameters, status, best
epoch, val accuracy and test accuracy / AUC with 95% stratified bootstrap
intervals. The same rows feed the terminal table, the CSV file and the
report's sortable HTML table.
"""
import csv
import io
import math

COLUMNS = [
    # key, header, CSV only
    ("rank", "#", False),
    ("trial_id", "trial", False),
    ("model", "model", False),
    ("batch_size", "batch", False),
    ("clr_mode", "schedule", False),
    ("base_lr", "base_lr", False),
    ("max_lr", "max_lr", False),
    ("step_iters", "step (it)", False),
    ("gamma", "gamma", False),
    ("epochs", "epochs", False),
    ("seed", "seed", True),
    ("status", "status", False),
    ("epochs_done", "done ep", False),
    ("best_epoch", "best ep", False),
    ("best_val_acc", "best val acc", False),
    ("final_val_acc", "final val acc", False),
    ("test_acc", "test acc", False),
    ("test_acc_lo", "acc lo", True),
    ("test_acc_hi", "acc hi", True),
    ("test_auc", "test AUC", False),
    ("test_auc_lo", "AUC lo", True),
    ("test_auc_hi", "AUC hi", True),
    ("brier", "Brier", True),
    ("hl_p", "HL p", True),
    ("wall_seconds", "wall s", True),
    ("error", "error", True),
]


def _v(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


def rows(sev, by="val_acc"):
    out = []
    for rank, e in enumerate(sev.ranked(by), 1):
        t = e.t
        r = {
            "rank": rank, "trial_id": t.trial_id, "model": t.model, "batch_size": t.batch_size,
            "clr_mode": t.clr_mode, "base_lr": t.base_lr, "max_lr": t.max_lr,
            "step_iters": t.step_iters if t.iters_per_epoch or t.step_size > 0 else None,
            "step_size_epochs": t.step_size_epochs, "gamma": t.gamma, "epochs": t.epochs, "seed": t.seed,
            "status": t.status, "epochs_done": t.epochs_done, "best_epoch": t.best_epoch,
            "best_val_acc": _v(t.best_val_acc), "final_val_acc": _v(e.final_val_acc), "final_epoch": e.final_epoch,
            "test_acc": _v(e.acc), "test_acc_lo": _v(e.acc_ci[0]) if e.acc_ci else None,
            "test_acc_hi": _v(e.acc_ci[1]) if e.acc_ci else None,
            "test_auc": _v(e.auc), "test_auc_lo": _v(e.auc_ci[0]) if e.auc_ci else None,
            "test_auc_hi": _v(e.auc_ci[1]) if e.auc_ci else None,
            "brier": _v(e.brier), "hl_p": _v(e.hl["p"]) if e.hl else None,
            "wall_seconds": _v(t.wall_seconds) if t.wall_seconds else None,
            "error": t.error or (t.file_error or ""),
            "selected": any(b is e for b in sev.best_by_model.values()),
            "best_overall": sev.best is e,
        }
        out.append(r)
    return out


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


def text(sev, by="val_acc"):
    """The terminal table."""
    heads = ["#", "trial", "model", "batch", "schedule", "base_lr", "max_lr", "step(it)", "gamma", "epochs",
             "status", "best ep", "best val", "final val", "test acc [95% CI]", "test AUC [95% CI]"]
    table = []
    for r in rows(sev, by):
        mark = "*" if r["best_overall"] else ("+" if r["selected"] else " ")
        table.append([f"{r['rank']}{mark}", r["trial_id"], r["model"], str(r["batch_size"]), r["clr_mode"],
                      _g(r["base_lr"]), _g(r["max_lr"]), _g(r["step_iters"]), _g(r["gamma"]), str(r["epochs"]),
                      r["status"] if r["status"] != "running" else f"running {r['epochs_done']}/{r['epochs']}",
                      "-" if r["best_epoch"] is None else str(r["best_epoch"]), _pct(r["best_val_acc"]),
                      _pct(r["final_val_acc"]), _ci(r["test_acc"], r["test_acc_lo"], r["test_acc_hi"], True),
                      _ci(r["test_auc"], r["test_auc_lo"], r["test_auc_hi"], False)])
    w = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(heads)]
    lines = ["  ".join(h.ljust(w[i]) for i, h in enumerate(heads)).rstrip()]
    for row in table:
        lines.append("  ".join(c.ljust(w[i]) for i, c in enumerate(row)).rstrip())
    s = sev.sweep
    c = s.status_counts()
    lines.append(f"{len(s.trials)} trials: {c['done']} done, {c['running']} running, {c['pending']} pending, "
                 f"{c['failed']} failed; sweep {s.state}; sorted by {by}; * best overall, + best of its model "
                 f"(selected on val at the final epoch); CIs: {sev.n_boot} stratified bootstrap resamples")
    return "\n".join(lines) + "\n"


def csv_text(sev, by="val_acc"):
    buf = io.StringIO()
    keys = [k for k, _, _ in COLUMNS] + ["final_epoch", "step_size_epochs", "selected", "best_overall"]
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for r in rows(sev, by):
        w.writerow(["" if r[k] is None else (repr(r[k]) if isinstance(r[k], float) else r[k]) for k in keys])
    return buf.getvalue()
