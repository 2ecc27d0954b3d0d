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
PANEL_COLS = 4  # per-model panels wrap into rows of this many
SCHEDULE_STYLE = {"triangular": "-", "triangular2": ":", "exp_range": "--", "constant": "-.", "cosine": (0, (5, 1)),
                  "step": (0, (1, 3))}
DPI = 100

plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
                     "axes.grid": True, "grid.alpha": 0.3})


def model_colours(models):
    """A fixed colour per model name (VGG16 blue, VGG19 red, ResNet-34 green),
    the others in order of first appearance: the spare palette, then hues
    spread evenly around the colour wheel, so any number of models stay
    distinct."""
    out, spare = {}, [c for c in SPARE]
    for m in models:
        if m in KNOWN:
            out[m] = KNOWN[m]
    rest = [m for m in dict.fromkeys(models) if m not in out]
    extra = max(len(rest) - len(spare), 0)
    for i in range(extra):
        spare.append(matplotlib.colors.to_hex(matplotlib.colors.hsv_to_rgb(((i + 0.5) / extra, 0.65, 0.75))))
    for m in rest:
        out[m] = spare.pop(0)
    return out


def _panel_grid(k):
    """(rows, cols) of k per-model panels, at most PANEL_COLS a row."""
    cols = max(min(k, PANEL_COLS), 1)
    return math.ceil(max(k, 1) / cols), cols


def _save(fig, path, tight=True):
    """tight: crop to the drawn extent (an extra layout pass); the per-trial
    figures, drawn by the dozen, skip it and rely on tight_layout."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight" if tight else None)
    plt.close(fig)
    return path


def _pct_axis(ax, values, axis="y"):
    """An accuracy axis (percent) that spans the data with a margin, not 0-100."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    pad = max(2.0, 0.08 * (hi - lo))
    lo, hi = max(-1.0, lo - pad), min(101.0, hi + pad)
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def _unit_axis(ax, values, axis="x"):
    """An AUC axis that spans the data (and its intervals) within [0, 1]."""
    v = np.asarray([x for x in np.ravel(values) if np.isfinite(x)], dtype=np.float64)
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    pad = max(0.02, 0.08 * (hi - lo))
    (ax.set_xlim if axis == "x" else ax.set_ylim)(max(-0.01, lo - pad), min(1.01, hi + pad))


def _trial_title(t):
    return f"{t.model}, batch {t.batch_size}, {t.schedule_label()}, {t.epochs} epochs"


# ---- curves ----

def trial_curves(t, colour, path, selected_epoch=None, rule="val_auc"):
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
    if selected_epoch:
        ax.axvline(selected_epoch, color="0.4", ls=":", lw=1, label=f"selected epoch ({selected_epoch}, {rule})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    _pct_axis(ax, np.r_[100 * ep["train_acc"], 100 * ep["val_acc"]])
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
        if scale == 100:
            _pct_axis(ax, np.concatenate([100 * e.t.epochs_rec[field] for e in evals if len(e.t.epochs_rec)]))
        for e in evals:
            ep = e.t.epochs_rec
            if not len(ep):
                continue
            thick = e.t.trial_id in sel_ids
            ax.plot(ep["epoch"].astype(int), scale * ep[field], "-o" if thick else "-", color=colours[e.t.model],
                    lw=2.4 if thick else 0.9, alpha=1.0 if thick else 0.45, ms=4, zorder=3 if thick else 2)
        ax.set_ylabel(label)
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
    rows, cols = _panel_grid(len(models))
    fig, axs = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.8 * rows), sharey=True, squeeze=False)
    for ax in axs.flat[len(models):]:
        ax.set_visible(False)
    for ax, m in zip(axs.flat, models):
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
    for r in range(rows):
        axs[r, 0].set_ylabel("learning rate")
    fig.suptitle("learning rate of every iteration (recorded /lr_trace), per model")
    fig.tight_layout()
    return _save(fig, path)


# ---- ROC, confusion, forest ----

def roc(selected, colours, path, ci_name="DeLong"):
    fig, ax = plt.subplots(figsize=(6.6, 6.2))
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance (AUC 0.5)")
    # Curves of small test sets often coincide: earlier ones are drawn wider
    # so that each stays visible under the next.
    k = max(len(selected), 1)
    widths = np.linspace(5.0, 1.8, k)
    for e, lw in zip(selected, widths):
        if e.roc is None:
            continue
        fpr, tpr, _ = e.roc
        c = colours[e.t.model]
        lo, hi = e.auc_ci
        ax.plot(fpr, tpr, "-", color=c, lw=lw, alpha=0.9, zorder=2,
                label=f"{e.t.model} ({e.t.trial_id[:8]}): AUC {e.auc:.3f} [{lo:.3f}, {hi:.3f}]")
    # Operating points above every curve; each model's markers a size
    # smaller than the previous one's, so that markers at one spot nest
    # instead of hiding each other, and the Youden cross sits inside the
    # open 0.5 circle when the two coincide.
    sizes = np.linspace(15, 9, k)
    for i, (e, ms) in enumerate(zip(selected, sizes)):
        if e.roc is None:
            continue
        c = colours[e.t.model]
        cm = e.cm05
        ax.plot(cm[0, 1] / max(cm[0].sum(), 1), cm[1, 1] / max(cm[1].sum(), 1), "o", color=c, ms=ms, mfc="none",
                mew=2.2, zorder=10 + i)
        if e.cm_youden is not None:
            cy = e.cm_youden
            ax.plot(cy[0, 1] / max(cy[0].sum(), 1), cy[1, 1] / max(cy[1].sum(), 1), "X", color=c, ms=max(8.0, ms * 0.7),
                    mec="white", mew=0.8, zorder=20 + i)
    ax.plot([], [], "o", color="0.3", mfc="none", mew=2, ms=11, label="operating point at P > 0.5")
    ax.plot([], [], "X", color="0.3", mec="white", ms=9, label="at the Youden threshold (chosen on val)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_aspect("equal")
    ax.set_xlabel("false-positive rate (1 − specificity)")
    ax.set_ylabel("true-positive rate (sensitivity)")
    n = len(selected[0].y_test) if selected else 0
    ax.set_title(f"ROC on the test set ({n} images), each model's selected trial\n"
                 f"AUC with {ci_name} 95% interval")
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


FOREST_MAX = 40


def forest(evals, colours, selected, path, title="", ci_name="DeLong"):
    """Test AUC and accuracy with 95% intervals, one row per done trial, in
    the order of the selection rule (val only; never by test). At most
    FOREST_MAX rows: the best-ranked ones, the rest counted in the title.
    Returns (path, rows shown, rows in all) or None."""
    done = sorted([e for e in evals if e.done], key=lambda e: e.rank)
    if not done:
        return None
    total = len(done)
    order = done[:FOREST_MAX]
    sel = {e.t.trial_id for e in selected}
    n = len(order)
    fig, axs = plt.subplots(1, 2, figsize=(12, 1.9 + 0.27 * n), sharey=True)
    ys = np.arange(n)[::-1]
    for y, e in zip(ys, order):
        c = colours[e.t.model]
        big = e.t.trial_id in sel
        if e.auc == e.auc:
            axs[0].errorbar(e.auc, y, xerr=[[e.auc - e.auc_ci[0]], [e.auc_ci[1] - e.auc]], fmt="o", color=c,
                            ms=7 if big else 4, mfc=c if big else "white", capsize=2)
        axs[1].errorbar(100 * e.acc, y, xerr=[[100 * (e.acc - e.acc_ci[0])], [100 * (e.acc_ci[1] - e.acc)]], fmt="o",
                        color=c, ms=7 if big else 4, mfc=c if big else "white", capsize=2)
    labels = [f"#{e.rank} {e.t.model} b{e.t.batch_size} {e.t.clr_mode} e{e.t.epochs}"
              f"{f' f{e.t.fold}' if e.t.fold >= 0 else ''} ({e.t.trial_id[:6]})" for e in order]
    axs[0].set_yticks(ys, labels, fontsize=8)
    axs[0].set_ylim(-0.7, n - 0.3)
    axs[0].set_xlabel(f"test AUC ({ci_name} 95% interval)")
    _unit_axis(axs[0], [x for e in order if e.auc == e.auc for x in (e.auc_ci[0], e.auc_ci[1])])
    axs[1].set_xlabel("test accuracy at P > 0.5 (%, Clopper–Pearson 95% interval)")
    _pct_axis(axs[1], [100 * x for e in order for x in e.acc_ci], axis="x")
    handles = [Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colours.items()
               if any(e.t.model == m for e in order)]
    handles += [Line2D([], [], color="0.3", marker="o", ls="", ms=7, label="filled: the model's selected trial"),
                Line2D([], [], color="0.3", marker="o", ls="", ms=4, mfc="white", label="open: other trials")]
    more = f"; the {n} best-ranked of {total} shown" if total > n else ""
    fig.suptitle(f"{title or 'test AUC and accuracy'}, rows in rank order (selection on val){more}")
    # The legend goes below the axes, where it covers no data.
    fig.tight_layout(rect=(0, 0.45 / (1.9 + 0.27 * n), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=8, frameon=False)
    return _save(fig, path), n, total


# ---- calibration ----

def reliability(selected, details, colours, path):
    """One column per model's selected trial: equal-count (quantile) bins of
    P(positive), mean P against the observed fraction positive with 95%
    Wilson intervals and each bin's count written beside it; open markers:
    the same after temperature scaling (fitted on val). Below, every test
    image's P as a tick, positives above and negatives below."""
    from analysis import recalibration
    rows, cols = _panel_grid(len(selected))
    fig, axs = plt.subplots(2 * rows, cols, figsize=(4.6 * cols, 6.6 * rows), squeeze=False, sharex=True,
                            gridspec_kw={"height_ratios": [3, 0.9] * rows})
    for j in range(len(selected), rows * cols):
        axs[2 * (j // cols), j % cols].set_visible(False)
        axs[2 * (j // cols) + 1, j % cols].set_visible(False)
    for j, e in enumerate(selected):
        ax, axh = axs[2 * (j // cols), j % cols], axs[2 * (j // cols) + 1, j % cols]
        c = colours[e.t.model]
        d = details[e.t.trial_id]
        ax.plot([0, 1], [0, 1], "--", color="0.6", lw=1, label="perfect calibration")
        b = recalibration.bin_table(e.y_test, e.p_test, d["n_bins"])
        lo, hi = calibration.wilson_interval(b["pos"], b["n"])
        ax.errorbar(b["mean_p"], b["rate"], yerr=[b["rate"] - lo, hi - b["rate"]], fmt="o-", color=c, ms=6,
                    capsize=2, lw=1, label=f"{len(b['n'])} equal-count bins ({len(e.y_test)} images)")
        for x, y_, n in zip(b["mean_p"], b["rate"], b["n"]):
            ax.annotate(f"n={n}", (x, y_), textcoords="offset points", xytext=(5, -11), fontsize=7.5, color=c)
        ts = d["temperature"]
        if ts is not None:
            b2 = recalibration.bin_table(e.y_test, ts["p"], d["n_bins"])
            ax.plot(b2["mean_p"], b2["rate"], "s--", color=c, mfc="white", ms=5, lw=0.8, alpha=0.8,
                    label=f"after temperature scaling (T = {ts['T']:.3g}, fitted on val)")
        cal = e.cal
        ax.set_title(f"{e.t.model} ({e.t.trial_id[:8]}), epoch {e.eval_epoch}\nECE {d['ece']:.3f} "
                     f"[{d['ece_lo']:.3f}, {d['ece_hi']:.3f}]; slope {cal['slope']:.2f}, intercept "
                     f"{cal['intercept']:.2f}", color=c, fontsize=9.5)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal", adjustable="box")
        ax.legend(loc="upper left", fontsize=7.5)
        y = e.y_test
        rng = np.random.default_rng(0)
        jit = rng.uniform(-0.12, 0.12, len(y))
        axh.plot(e.p_test[y == 1], 1 + jit[y == 1], "|", color=c, ms=9, alpha=0.8)
        axh.plot(e.p_test[y == 0], 0 + jit[y == 0], "|", color="0.35", ms=9, alpha=0.8)
        axh.set_yticks([0, 1], ["negative", "positive"])
        axh.set_ylim(-0.5, 1.5)
        axh.set_xlabel("predicted P(positive)")
        if j % cols == 0:
            ax.set_ylabel("observed fraction positive")
    fig.suptitle("reliability on the test set: equal-count bins (count beside each point), 95% Wilson intervals")
    fig.tight_layout()
    return _save(fig, path)


def decision_curves(selected, colours, path):
    """Net benefit against threshold probability, with treat-all and treat-none."""
    from analysis import recalibration
    t = np.linspace(0.01, 0.95, 95)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    prev = None
    for e in selected:
        nb, all_ = recalibration.net_benefit(e.y_test, e.p_test, t)
        prev = e.y_test.mean()
        ax.plot(t, nb, "-", color=colours[e.t.model], lw=2, label=f"{e.t.model} ({e.t.trial_id[:8]})")
    if prev is not None:
        ax.plot(t, all_, "-", color="0.45", lw=1.2, label="treat all")
        ax.axhline(0, color="0.1", lw=1, ls="--", label="treat none")
        ax.set_ylim(-0.05 - 0.05 * prev, prev + 0.05)
    ax.set_xlabel("threshold probability t (treat when P ≥ t)")
    ax.set_ylabel("net benefit = TP/n − FP/n · t/(1 − t)")
    ax.set_title("decision curves on the test set")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return _save(fig, path)


# ---- hyperparameters ----

def effects(effects_list, colours, path):
    """One panel per varying grid axis: each value's mean val AUC (the other
    axes averaged) with its 95% interval and the number of configurations."""
    k = len(effects_list)
    if not k:
        return None
    cols = min(k, 4)
    rows = math.ceil(k / cols)
    fig, axs = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False, sharey=True)
    allv = [x for _, pts in effects_list for p in pts for x in p[1:4] if x is not None and math.isfinite(x)]
    for ax in axs.flat[k:]:
        ax.set_visible(False)
    for ax, (label, pts) in zip(axs.flat, effects_list):
        x = np.arange(len(pts))
        for i, (v, m, lo, hi, nc, nr) in enumerate(pts):
            c = colours.get(v, "#333333") if label == "model" else "#333333"
            if math.isfinite(lo):
                ax.errorbar(i, m, yerr=[[m - lo], [hi - m]], fmt="o", color=c, capsize=4, ms=7)
            else:
                ax.plot(i, m, "o", color=c, ms=7)
            ax.annotate(f"{nc} cfg\n{nr} runs", (i, m), textcoords="offset points", xytext=(8, -4), fontsize=7)
        ax.set_xticks(x, [f"{v:g}" if isinstance(v, float) else str(v) for v, *_ in pts], fontsize=8)
        ax.set_xlim(-0.5, len(pts) - 0.3)
        ax.set_title(label)
        ax.grid(axis="x", visible=False)
    for r in range(rows):
        axs[r, 0].set_ylabel("mean val AUC (95% interval)")
    if allv:
        lo, hi = min(allv), max(allv)
        pad = max(0.01, 0.1 * (hi - lo))
        axs[0, 0].set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
    fig.suptitle("effect of each hyperparameter on val AUC (each value's mean over the configurations that have "
                 "it; the other axes averaged)", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
