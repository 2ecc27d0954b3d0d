"""The report's figures (matplotlib, Agg backend, PNG).

Every figure labels its axes with units, has a legend, and draws a model in
the same colour everywhere (model_colours). Accuracies are in percent, AUC
and probabilities in [0, 1], learning rates per optimizer step.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis import calibration, metrics  # noqa: E402

KNOWN = {"vgg16": "#1f77b4", "vgg19": "#d62728", "resnet34": "#2ca02c"}
SPARE = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]
SCHEDULE_STYLE = {"triangular": "-", "triangular2": ":", "exp_range": "--", "constant": "-.", "cosine": (0, (5, 1)),
                  "step": (0, (1, 3))}
DPI = 100

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
                     "axes.grid": True, "grid.alpha": 0.3})


def model_colours(models):
    """A fixed colour per model name (VGG16 blue, VGG19 red, ResNet-34 green),
    the others in order of first appearance."""
    out, spare = {}, [c for c in SPARE]
    for m in models:
        if m in KNOWN:
            out[m] = KNOWN[m]
    for m in models:
        if m not in out:
            out[m] = spare.pop(0) if spare else "#555555"
    return out


def _save(fig, path, tight=True):
    """tight: crop to the drawn extent (an extra layout pass); the per-trial
    figures, drawn by the dozen, skip it and rely on tight_layout."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _pct_axis(ax):
    ax.set_ylim(-2, 102)


def _trial_title(t):
    return f"{t.model}, batch {t.batch_size}, {t.schedule_label()}, {t.epochs} epochs"


# ---- curves ----

def trial_curves(t, colour, path):
    """Loss and accuracy per epoch (train and val) and the learning rate of every iteration."""
    ep = t.epochs_rec
    x = ep["epoch"].astype(int)
    fig, axs = plt.subplots(1, 3, figsize=(15, 3.8))
    # Fixed margins instead of tight_layout: these figures come by the dozen.
    fig.subplots_adjust(left=0.055, right=0.99, bottom=0.16, top=0.84, wspace=0.26)
    ax = axs[0]
    ax.plot(x, ep["train_loss"], "-o", color=colour, label="train (running mean over the epoch)")
    ax.plot(x, ep["val_loss"], "--s", color=colour, mfc="white", label="val (after the epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss (nats per image)")
    ax.set_title("loss")
    ax = axs[1]
    ax.plot(x, 100 * ep["train_acc"], "-o", color=colour, label="train (running over the epoch)")
    ax.plot(x, 100 * ep["val_acc"], "--s", color=colour, mfc="white", label="val (after the epoch)")
    if t.best_epoch:
        ax.axvline(t.best_epoch, color="0.4", ls=":", lw=1, label=f"best val epoch ({t.best_epoch})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    _pct_axis(ax)
    ax.set_title("accuracy")
    for a in axs[:2]:
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.legend(loc="best")
    ax = axs[2]
    ipe = max(t.iters_per_epoch, 1)
    it = np.arange(len(t.lr_trace))
    ax.plot(it, t.lr_trace, "-", color=colour, lw=1.2, marker="." if len(it) <= 80 else None,
            label=f"{t.schedule_label()} (recorded /lr_trace)")
    for e in range(1, t.epochs_done):
        ax.axvline(e * ipe - 0.5, color="0.75", lw=0.6, zorder=0)
    ax.set_xlabel(f"iteration ({ipe} per epoch; grey lines: epoch ends)")
    ax.set_ylabel("learning rate")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    ax.set_title("learning rate per iteration")
    ax.legend(loc="best")
    fig.suptitle(f"trial {t.trial_id}: {_trial_title(t)} — {t.status}, {t.epochs_done} of {t.epochs} epochs",
                 fontsize=11)
    return _save(fig, path, tight=False)


def overlay_curves(evals, colours, selected, path):
    """Every trial's curves on one set of axes per quantity, coloured by model;
    each model's selected trial thick."""
    fig, axs = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    panels = [("train_loss", "train loss (nats per image)", 1), ("val_loss", "val loss (nats per image)", 1),
              ("train_acc", "train accuracy (%)", 100), ("val_acc", "val accuracy (%)", 100)]
    sel_ids = {e.t.trial_id for e in selected}
    for ax, (field, label, scale) in zip(axs.flat, panels):
        for e in evals:
            ep = e.t.epochs_rec
            if not len(ep):
                continue
            thick = e.t.trial_id in sel_ids
            ax.plot(ep["epoch"].astype(int), scale * ep[field], "-o" if thick else "-", color=colours[e.t.model],
                    lw=2.4 if thick else 0.9, alpha=1.0 if thick else 0.45, ms=4, zorder=3 if thick else 2)
        ax.set_ylabel(label)
        if scale == 100:
            _pct_axis(ax)
    for ax in axs[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = [Line2D([], [], color=c, lw=2.4, label=m) for m, c in colours.items()]
    handles += [Line2D([], [], color="0.3", lw=0.9, alpha=0.6, label="thin: every trial"),
                Line2D([], [], color="0.3", lw=2.4, marker="o", label="thick: the model's selected trial")]
    axs[0, 0].legend(handles=handles, loc="best")
    fig.suptitle("loss and accuracy per epoch, all trials, coloured by model")
    fig.tight_layout()
    return _save(fig, path)


def lr_overlay(evals, colours, path):
    """The recorded learning-rate trace of every trial, one panel per model."""
    models = [m for m in colours if any(e.t.model == m and len(e.t.lr_trace) for e in evals)]
    if not models:
        return None
    fig, axs = plt.subplots(1, len(models), figsize=(5.2 * len(models), 3.8), sharey=True, squeeze=False)
    for ax, m in zip(axs[0], models):
        seen = set()
        for e in evals:
            t = e.t
            if t.model != m or not len(t.lr_trace):
                continue
            key = (t.schedule_label(), t.batch_size, t.base_lr, t.max_lr, t.step_iters)
            lab = f"{t.schedule_label()}, batch {t.batch_size}, {t.iters_per_epoch} it/epoch"
            ax.plot(np.arange(len(t.lr_trace)), t.lr_trace, color=colours[m],
                    ls=SCHEDULE_STYLE.get(t.clr_mode, "-"), lw=1.3, alpha=0.8, label=None if key in seen else lab)
            seen.add(key)
        ax.set_title(m, color=colours[m])
        ax.set_xlabel("iteration (optimizer step)")
        ax.legend(loc="best")
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 2))
    axs[0, 0].set_ylabel("learning rate")
    fig.suptitle("learning rate of every iteration (recorded /lr_trace), per model")
    fig.tight_layout()
    return _save(fig, path)


# ---- ROC, confusion, forest ----

def roc(selected, colours, path):
    fig, ax = plt.subplots(figsize=(6.6, 6.2))
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance (AUC 0.5)")
    # Curves of small test sets often coincide: earlier ones are drawn wider
    # so that each stays visible under the next.
    widths = np.linspace(5.0, 1.8, max(len(selected), 1))
    for e, lw in zip(selected, widths):
        if e.roc is None:
            continue
        fpr, tpr, _ = e.roc
        c = colours[e.t.model]
        lo, hi = e.auc_ci
        ax.plot(fpr, tpr, "-", color=c, lw=lw, alpha=0.9,
                label=f"{e.t.model} ({e.t.trial_id[:8]}): AUC {e.auc:.3f} [{lo:.3f}, {hi:.3f}]")
        cm = e.cm05
        ax.plot(cm[0, 1] / max(cm[0].sum(), 1), cm[1, 1] / max(cm[1].sum(), 1), "o", color=c, ms=8, mfc="white",
                mew=2)
        if e.cm_youden is not None:
            cy = e.cm_youden
            ax.plot(cy[0, 1] / max(cy[0].sum(), 1), cy[1, 1] / max(cy[1].sum(), 1), "X", color=c, ms=9)
    ax.plot([], [], "o", color="0.3", mfc="white", mew=2, label="operating point at P > 0.5")
    ax.plot([], [], "X", color="0.3", label="operating point at the Youden threshold (chosen on val)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (1 − specificity)")
    ax.set_ylabel("true-positive rate (sensitivity)")
    n = len(selected[0].y_test) if selected else 0
    ax.set_title(f"ROC on the test set ({n} images), each model's selected trial\n"
                 f"AUC with 95% stratified bootstrap interval")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def confusion(e, colour, path):
    panels = [("P > 0.5", e.cm05)]
    if e.cm_youden is not None:
        panels.append((f"Youden threshold from val: P ≥ {e.youden['threshold']:.3g}", e.cm_youden))
    fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (title, cm) in zip(axs[0], panels):
        rates = metrics.confusion_rates(cm)
        im = ax.imshow(np.nan_to_num(rates), cmap="Blues", vmin=0, vmax=1)
        names = [["true negatives", "false positives"], ["false negatives", "true positives"]]
        for i in range(2):
            for j in range(2):
                r = rates[i, j]
                ax.text(j, i, f"{cm[i, j]}\n{'-' if math.isnan(r) else f'{100 * r:.1f}%'}\n{names[i][j]}",
                        ha="center", va="center", fontsize=10, color="white" if r > 0.6 else "black")
        ax.set_xticks([0, 1], ["negative", "positive"])
        ax.set_yticks([0, 1], ["negative", "positive"])
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=10)
        ax.grid(False)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        cb.set_label("rate within the true class")
    fig.suptitle(f"{e.t.model} ({e.t.trial_id}): test confusion matrices, counts and rates", color=colour,
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def forest(evals, colours, selected, path):
    """Test AUC and accuracy with 95% bootstrap intervals for every done trial."""
    done = [e for e in evals if e.done]
    if not done:
        return None
    sel = {e.t.trial_id for e in selected}
    order = sorted(done, key=lambda e: (list(colours).index(e.t.model), -(e.auc if e.auc == e.auc else -1)))
    n = len(order)
    fig, axs = plt.subplots(1, 2, figsize=(12, 1.2 + 0.28 * n), sharey=True)
    ys = np.arange(n)[::-1]
    for y, e in zip(ys, order):
        c = colours[e.t.model]
        big = e.t.trial_id in sel
        if e.auc == e.auc:
            axs[0].errorbar(e.auc, y, xerr=[[e.auc - e.auc_ci[0]], [e.auc_ci[1] - e.auc]], fmt="o", color=c,
                            ms=7 if big else 4, mfc=c if big else "white", capsize=2)
        axs[1].errorbar(100 * e.acc, y, xerr=[[100 * (e.acc - e.acc_ci[0])], [100 * (e.acc_ci[1] - e.acc)]], fmt="o",
                        color=c, ms=7 if big else 4, mfc=c if big else "white", capsize=2)
    labels = [f"{e.t.model} b{e.t.batch_size} {e.t.clr_mode} e{e.t.epochs} ({e.t.trial_id[:6]})" for e in order]
    axs[0].set_yticks(ys, labels)
    axs[0].set_xlabel("test AUC")
    axs[0].set_xlim(-0.02, 1.02)
    axs[1].set_xlabel("test accuracy at P > 0.5 (%)")
    axs[1].set_xlim(-2, 102)
    handles = [Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colours.items()]
    handles += [Line2D([], [], color="0.3", marker="o", ls="", ms=7, label="filled: the model's selected trial"),
                Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="white", label="open: other trials")]
    axs[1].legend(handles=handles, loc="lower left", fontsize=8)
    fig.suptitle("test AUC and accuracy with 95% stratified bootstrap intervals")
    fig.tight_layout()
    return _save(fig, path)


# ---- calibration ----

def reliability(selected, colours, path):
    """One column per model's selected trial: the Hosmer-Lemeshow groups as
    mean P(positive) against the observed fraction positive (marker area
    proportional to the group's size, 95% Wilson intervals), and below it
    the distribution of the predicted probabilities."""
    k = max(len(selected), 1)
    fig, axs = plt.subplots(2, k, figsize=(4.4 * k, 6.4), squeeze=False, sharex=True,
                            gridspec_kw={"height_ratios": [3, 1.1]})
    bins = np.linspace(0, 1, 21)
    for j, e in enumerate(selected):
        ax, axh = axs[0, j], axs[1, j]
        c = colours[e.t.model]
        ax.plot([0, 1], [0, 1], "--", color="0.6", lw=1, label="perfect calibration")
        if e.hl is not None:
            h = e.hl
            ok = h["n"] > 0
            lo, hi = calibration.wilson_interval(h["obs1"][ok], h["n"][ok])
            mp, rate, n = h["mean_p"][ok], h["rate"][ok], h["n"][ok]
            ax.errorbar(mp, rate, yerr=[rate - lo, hi - rate], fmt="none", ecolor=c, alpha=0.45, capsize=2)
            ax.plot(mp, rate, "-", color=c, lw=1, alpha=0.6)
            ax.scatter(mp, rate, s=18 + 110 * n / max(n.max(), 1), color=c, zorder=3,
                       label=f"{h['n_groups']} groups ({h['n_cases']} images)")
            title = f"Brier {e.brier:.3f}; HL X² = {h['chisq']:.2f}, df {h['df']}, p = {h['p']:.3g}"
        else:
            title = f"Brier {e.brier:.3f}; HL not computable"
        ax.set_title(f"{e.t.model} ({e.t.trial_id[:8]})\n{title}", color=c, fontsize=9.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal", adjustable="box")
        ax.legend(loc="upper left", fontsize=8)
        axh.hist(e.p_test, bins=bins, color=c, alpha=0.75)
        axh.set_xlabel("predicted P(positive)")
        if j == 0:
            ax.set_ylabel("observed fraction positive")
            axh.set_ylabel("test images")
    fig.suptitle("reliability on the test set (Hosmer–Lemeshow groups; marker area ∝ images in the group)")
    fig.tight_layout()
    return _save(fig, path)


# ---- hyperparameters ----

def parallel(evals, colours, path):
    """Parallel coordinates: hyperparameters (the ones that vary, and the
    model) against best val accuracy; one line per trial with a val record."""
    ev = [e for e in evals if e.t.best_val_acc is not None]
    if not ev:
        return None
    axes = [("model", lambda t: t.model, "cat"), ("batch size", lambda t: t.batch_size, "num"),
            ("schedule", lambda t: t.clr_mode, "cat"), ("base_lr", lambda t: t.base_lr, "log"),
            ("max_lr", lambda t: t.max_lr, "log"), ("half cycle (iterations)", lambda t: t.step_iters, "num"),
            ("gamma", lambda t: t.gamma, "num"), ("epochs", lambda t: t.epochs, "num"),
            ("seed", lambda t: t.seed, "num")]
    cols = []
    for name, f, kind in axes:
        vals = [f(e.t) for e in ev]
        if name == "model" or len(set(vals)) > 1:
            cols.append((name, vals, kind))
    cols.append(("best val accuracy (%)", [100 * e.t.best_val_acc for e in ev], "num"))
    k = len(cols)
    fig, ax = plt.subplots(figsize=(max(7, 1.7 * k), 5))
    norm = []
    for name, vals, kind in cols:
        if kind == "cat":
            levels = list(dict.fromkeys(vals))
            pos = {v: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, v in enumerate(levels)}
            norm.append(([pos[v] for v in vals], [(pos[v], str(v)) for v in levels]))
            continue
        x = np.log10(vals) if kind == "log" else np.asarray(vals, dtype=float)
        lo, hi = float(np.min(x)), float(np.max(x))
        if name.startswith("best val"):
            lo, hi = min(lo, 0.0), max(hi, 100.0)
        span = hi - lo if hi > lo else 1.0
        n = [(v - lo) / span if hi > lo else 0.5 for v in x]
        uniq = sorted(set(vals))
        if len(uniq) > 6:
            uniq = list(np.linspace(min(vals), max(vals), 5)) if kind != "log" else uniq[:: max(1, len(uniq) // 5)]
        if name.startswith("best val"):
            uniq = sorted(set([0.0, 100.0] + [round(v, 1) for v in vals]))
        ticks = [(((math.log10(u) if kind == "log" else u) - lo) / span if hi > lo else 0.5,
                  f"{u:.1f}" if name.startswith("best val") else f"{u:g}") for u in uniq]
        norm.append((n, ticks))
    # Trials that share values would hide each other: each model's lines are
    # shifted by a small fixed offset, and a little seeded jitter separates
    # trials of one model.
    mlist = list(colours)
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.006, 0.006, size=(len(ev), k))
    for i, e in enumerate(ev):
        off = (mlist.index(e.t.model) - (len(mlist) - 1) / 2) * 0.018
        ys = [norm[j][0][i] + (off + jitter[i, j] if j < k - 1 else 0) for j in range(k)]
        ax.plot(range(k), ys, "-", color=colours[e.t.model], alpha=0.7, lw=1.3, marker="o", ms=3)
    for j, (name, _, _) in enumerate(cols):
        ax.axvline(j, color="0.2", lw=1)
        for y, lab in norm[j][1]:
            ax.text(j + 0.04, y, lab, fontsize=8, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xticks(range(k), [c[0] for c in cols], rotation=0)
    ax.set_yticks([])
    ax.set_xlim(-0.2, k - 0.5)
    ax.set_ylim(-0.06, 1.06)
    ax.grid(False)
    ax.set_ylabel("each axis scaled to its own range (labels on the axes)")
    handles = [Line2D([], [], color=c, lw=2, label=m) for m, c in colours.items()]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=len(handles))
    ax.set_title("hyperparameters against best val accuracy, one line per trial (lines are offset slightly "
                 "by model so that equal values stay visible)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
