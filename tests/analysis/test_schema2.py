"""Schema-2 and k-fold results, which `ctsweep run` does not write yet, from
a synthetic results folder built with h5py (synth.py: 2 models x 2
schedules x 3 folds x 2 seeds, test probabilities at every epoch, patient
groups and folds in /dataset). Every number the commands print is checked
against a computation written here from the raw arrays with numpy,
sklearn, statsmodels, scipy and the O(m n) DeLong of test_stats:

- leaderboard: each trial at its selected epoch (highest val AUC, ties
  lower val loss, then the earlier epoch; other rules with --select),
  Clopper-Pearson and DeLong intervals, the rank order;
- cv: one row per configuration over its 6 runs, means, SDs, the ensemble,
  the configuration chosen by mean val AUC;
- compare: DeLong's test and McNemar's exact test, case-insensitive
  prefixes, OUTDIR/sweep.h5;
- report: the cross-validation section, the effect view, the random
  backbone note, greyed Hosmer-Lemeshow, rendered in headless Chromium.
"""
import csv
import math
import os
import re
import shutil

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score
from statsmodels.stats.proportion import proportion_confint

import synth
from conftest import work_dir
from test_report import analysis_cmd, browser_check, make_report
from test_stats import delong_quadratic

from analysis.results import Sweep


@pytest.fixture(scope="module")
def v2():
    out = os.path.join(work_dir(), "synthetic_v2")
    shutil.rmtree(out, ignore_errors=True)
    truth = synth.build(out)
    return out, truth


def _csv(text):
    return list(csv.DictReader(text.splitlines()))


def _pick(truth, rule):
    """(trial dict, 0-based epoch) for each trial under `rule`, computed here."""
    out = {}
    for t in truth["trials"]:
        r = t["epochs_rec"]
        auc, loss = r["val_auc"], r["val_loss"]
        idx = np.arange(len(r))
        if rule == "val_auc":
            e = synth.select_val_auc(auc, loss)
        elif rule == "val_loss":
            e = int(np.lexsort((idx, loss))[0])
        else:
            e = len(r) - 1
        out[t["trial_id"]] = (t, e)
    return out


def _delong_interval(y, p):
    theta, S = delong_quadratic(y, p)
    z = sps.norm.ppf(0.975)
    se = math.sqrt(S[0, 0])
    return theta[0], max(0.0, theta[0] - z * se), min(1.0, theta[0] + z * se)


def test_reader_schema2(v2):
    out, truth = v2
    s = Sweep(os.path.join(out, "sweep.h5"))  # OUTDIR/sweep.h5 names the folder
    assert s.outdir == os.path.abspath(out) and s.schema_version == 2 and s.kfold == 3
    assert s.groups == truth["groups"] and np.array_equal(s.folds, truth["fold"])
    t = s.find_trial(truth["trials"][3]["trial_id"][:7].lower())
    assert t.trial_id == truth["trials"][3]["trial_id"] and t.fold == truth["trials"][3]["fold"]
    assert t.test_probs.shape == (4, len(truth["test_index"])) and list(t.test_epochs) == [1, 2, 3, 4]
    assert t.recorded_selected_epoch == truth["trials"][3]["selected_epoch"]
    # no group in two of train/val/test within a fold, and the test set has fold -1
    fold = truth["fold"]
    for g in set(truth["groups"]):
        rows = [i for i, x in enumerate(truth["groups"]) if x == g]
        assert len({fold[i] for i in rows}) == 1


@pytest.mark.parametrize("rule", ["val_auc", "val_loss", "final"])
def test_leaderboard_at_selected_epoch(v2, rule):
    out, truth = v2
    r = analysis_cmd("leaderboard", out, "--csv", "-", "--select", rule)
    assert r.returncode == 0, r.stderr
    rows = _csv(r.stdout)
    assert len(rows) == 24
    for c in ("selected_epoch", "test_acc", "test_acc_lo", "test_acc_hi", "test_sens", "test_sens_lo",
              "test_sens_hi", "test_spec", "test_spec_lo", "test_spec_hi", "test_auc", "test_auc_lo", "test_auc_hi"):
        assert c in rows[0], c
    pick = _pick(truth, rule)
    y = truth["labels"][truth["test_index"]]
    keys = []
    for row in rows:
        t, e = pick[row["trial_id"]]
        assert int(row["selected_epoch"]) == e + 1 and int(row["test_epoch"]) == e + 1, (rule, row["trial_id"])
        assert row["selection_rule"] == rule
        p = t["test_prob"][e]
        pred = (p > 0.5).astype(int)
        k, n = int(np.sum(pred == y)), len(y)
        assert float(row["test_acc"]) == pytest.approx(k / n, abs=1e-15)
        lo, hi = proportion_confint(k, n, alpha=0.05, method="beta")
        assert float(row["test_acc_lo"]) == pytest.approx(lo, abs=1e-12)
        assert float(row["test_acc_hi"]) == pytest.approx(hi, abs=1e-12)
        tp, pos = int(np.sum(pred[y == 1])), int(np.sum(y))
        lo, hi = proportion_confint(tp, pos, alpha=0.05, method="beta")
        assert float(row["test_sens"]) == pytest.approx(tp / pos, abs=1e-15)
        assert float(row["test_sens_lo"]) == pytest.approx(lo, abs=1e-12)
        tn, neg = int(np.sum(pred[y == 0] == 0)), int(np.sum(y == 0))
        lo, hi = proportion_confint(tn, neg, alpha=0.05, method="beta")
        assert float(row["test_spec_hi"]) == pytest.approx(hi if not math.isnan(hi) else 1.0, abs=1e-12)
        auc, lo, hi = _delong_interval(y, p)
        assert float(row["test_auc"]) == roc_auc_score(y, p) == pytest.approx(auc, abs=1e-14)
        assert float(row["test_auc_lo"]) == pytest.approx(lo, abs=1e-12)
        assert float(row["test_auc_hi"]) == pytest.approx(hi, abs=1e-12)
        rec = t["epochs_rec"]
        keys.append((-rec["val_auc"][e], rec["val_loss"][e]) if rule != "val_loss" else (rec["val_loss"][e],))
    # rows in rank order: # counts up and the rule's key never gets better further down
    assert [int(x["rank"]) for x in rows] == list(range(1, 25))
    assert keys == sorted(keys)


def test_recorded_selected_epoch_and_test_figures_check_out(v2):
    out, truth = v2
    r = analysis_cmd("leaderboard", out)
    assert r.returncode == 0 and "24 trials: 24 done" in r.stdout and "val_auc" in r.stdout, r.stdout + r.stderr
    assert "fell back" not in r.stdout and "schema-1" not in r.stdout


def test_cv_summary(v2, tmp_path):
    out, truth = v2
    path = str(tmp_path / "cv.csv")
    r = analysis_cmd("cv", out, "--csv", path)
    assert r.returncode == 0, r.stderr
    assert "3-fold cross-validation" in r.stdout and "chosen by mean val AUC" in r.stdout
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    pick = _pick(truth, "val_auc")
    y = truth["labels"][truth["test_index"]]
    best = None
    for row in rows:
        runs = [(t, e) for t, e in pick.values() if t["model"] == row["model"] and t["clr_mode"] == row["schedule"]]
        assert int(row["n_runs"]) == len(runs) == 6 and row["folds"] == "0 1 2" and row["seeds"] == "0 1"
        va = np.array([t["epochs_rec"]["val_auc"][e] for t, e in runs])
        vacc = np.array([t["epochs_rec"]["val_acc"][e] for t, e in runs])
        ta = np.array([roc_auc_score(y, t["test_prob"][e]) for t, e in runs])
        assert float(row["val_auc_mean"]) == pytest.approx(va.mean(), rel=1e-12)
        assert float(row["val_auc_sd"]) == pytest.approx(va.std(ddof=1), rel=1e-12)
        lo, hi = sps.t.interval(0.95, 5, loc=va.mean(), scale=sps.sem(va))
        assert float(row["val_auc_lo"]) == pytest.approx(lo, rel=1e-12)
        assert float(row["val_acc_mean"]) == pytest.approx(vacc.mean(), rel=1e-12)
        assert float(row["val_acc_sd"]) == pytest.approx(vacc.std(ddof=1), rel=1e-12)
        assert float(row["test_auc_mean"]) == pytest.approx(ta.mean(), rel=1e-12)
        assert float(row["test_auc_sd"]) == pytest.approx(ta.std(ddof=1), rel=1e-12)
        ens = np.mean([t["test_prob"][e] for t, e in runs], axis=0)
        auc, lo, hi = _delong_interval(y, ens)
        assert float(row["test_auc_ensemble"]) == pytest.approx(roc_auc_score(y, ens), abs=1e-14)
        assert float(row["test_auc_ensemble_lo"]) == pytest.approx(lo, abs=1e-12)
        assert float(row["test_auc_ensemble_hi"]) == pytest.approx(hi, abs=1e-12)
        if best is None or va.mean() > best[0]:
            best = (va.mean(), row["config"])
    chosen = [row["config"] for row in rows if row["chosen"] == "True"]
    assert chosen == [best[1]]
    assert f"chosen by mean val AUC: {best[1]}" in r.stdout


def test_compare_cli(v2):
    out, truth = v2
    pick = _pick(truth, "val_auc")
    ts = truth["trials"]
    a, b = ts[0], ts[6]  # vgg16 triangular fold 0 seed 0, vgg16 exp_range fold 0 seed 0
    assert a["fold"] == b["fold"] == 0 and a["model"] == b["model"]
    r = analysis_cmd("compare", os.path.join(out, "sweep.h5"), a["trial_id"][:9].lower(), b["trial_id"].lower())
    assert r.returncode == 0, r.stderr
    y = truth["labels"][truth["test_index"]]
    pa, pb = a["test_prob"][pick[a["trial_id"]][1]], b["test_prob"][pick[b["trial_id"]][1]]
    theta, S = delong_quadratic(y, np.vstack([pa, pb]))
    se = math.sqrt(S[0, 0] + S[1, 1] - 2 * S[0, 1])
    z = (theta[0] - theta[1]) / se
    m = re.search(r"AUC A = ([\d.]+), AUC B = ([\d.]+), difference = ([+-][\d.]+), SE = ([\d.]+), z = ([-\d.]+), "
                  r"p = ([\d.e+-]+)", r.stdout)
    assert m, r.stdout
    assert float(m.group(1)) == pytest.approx(theta[0], abs=5e-5) and float(m.group(2)) == pytest.approx(theta[1],
                                                                                                         abs=5e-5)
    assert float(m.group(4)) == pytest.approx(se, abs=5e-5) and float(m.group(5)) == pytest.approx(z, abs=5e-4)
    assert float(m.group(6)) == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-3)
    ca, cb = (pa > 0.5) == y, (pb > 0.5) == y
    nb, nc = int(np.sum(ca & ~cb)), int(np.sum(~ca & cb))
    m = re.search(r"only A right: (\d+), only B right: (\d+), p = ([\d.e+-]+)", r.stdout)
    assert m and (int(m.group(1)), int(m.group(2))) == (nb, nc), r.stdout
    p_ref = sps.binomtest(min(nb, nc), nb + nc, 0.5).pvalue if nb + nc else 1.0
    assert float(m.group(3)) == pytest.approx(p_ref, rel=1e-3)
    assert f"epoch {pick[a['trial_id']][1] + 1}" in r.stdout
    # val: the same fold has the same val images; another fold does not
    r = analysis_cmd("compare", out, a["trial_id"], b["trial_id"], "--split", "val")
    assert r.returncode == 0 and "val set at epoch" in r.stdout, r.stderr
    other = next(t for t in ts if t["fold"] == 1)
    r = analysis_cmd("compare", out, a["trial_id"], other["trial_id"], "--split", "val")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "different val images" in r.stderr, r.stderr
    first = [t["trial_id"][0] for t in ts]
    shared = next(c for c in first if first.count(c) > 1)
    r = analysis_cmd("compare", out, shared.lower(), b["trial_id"])
    assert r.returncode == 1 and "ambiguous" in r.stderr, r.stderr


def test_report_schema2_kfold(v2):
    out, truth = v2
    rep = os.path.join(work_dir(), "report_synthetic_v2")
    shutil.rmtree(rep, ignore_errors=True)
    index, doc, srcs = make_report(out, rep, "--prevalence", "0.2")
    assert 'id="cross-validation"' in doc and 'id="cv-chosen"' in doc and 'id="cv-table"' in doc
    with open(os.path.join(rep, "cv.csv")) as f:
        chosen = [row["config"] for row in csv.DictReader(f) if row["chosen"] == "True"]
    m = re.search(r'<p id="cv-chosen">(.*?)</p>', doc, re.S)
    assert len(chosen) == 1 and chosen[0] in m.group(1).replace("&#x27;", "'")
    # the effect view replaces parallel coordinates as the hyperparameter figure
    assert "fig/effects.png" in srcs and "fig/parallel.png" not in srcs
    for name in ("roc.png", "forest.png", "reliability.png", "decision_curves.png"):
        assert f"fig/{name}" in srcs, name
    m = re.search(r'id="random-backbone">(.*?)</div>', doc, re.S)
    assert m and "resnet34" in m.group(1) and "vgg16" not in m.group(1)
    assert 'id="schema1-note"' not in doc and "selection rule val_auc" in doc
    # 24 test images: expected counts below 5, Hosmer-Lemeshow greyed and said why
    assert doc.count('class="hl unreliable"') == 2 and "expected count below 5" in doc
    assert "PPV at prevalence 0.2" in doc and "sens·π" in doc
    assert 'id="calibration-table"' in doc and 'id="temperature-table"' in doc
    # constant hyperparameters are left out of the leaderboard and named
    head = re.search(r'id="leaderboard-table"><thead><tr>(.*?)</tr>', doc, re.S).group(1)
    assert 'data-key="batch_size"' not in head and 'data-key="fold"' in head and 'data-key="seed"' in head
    assert re.search(r"left out: [^<]*batch 16", doc)
    keys = re.findall(r'data-key="([a-z_]+)"', head)
    assert keys.index("test_auc") < keys.index("fold") and keys.index("val_auc") < keys.index("status")
    assert re.search(r"\d+ checks, 0 disagreement\(s\)", doc)
    imgs, sorted_ok = browser_check(index, "screenshot_synthetic_v2.png")
    assert sorted_ok[0] and sorted_ok[1] and sorted_ok[2] == 24, sorted_ok


def test_forest_stays_readable_for_many_trials(tmp_path):
    """108 trials (the COVID-CT grid): the figure shows the FOREST_MAX
    best-ranked rows, in rank order, and says how many there are."""
    from types import SimpleNamespace

    from analysis import figures
    rng = np.random.default_rng(0)
    evals = []
    for i in range(108):
        auc, acc = rng.uniform(0.6, 0.9), rng.uniform(0.55, 0.85)
        t = SimpleNamespace(model=("vgg16", "vgg19", "resnet34")[i % 3], batch_size=16, clr_mode="triangular",
                            epochs=10, fold=-1, trial_id=f"{i:016x}")
        evals.append(SimpleNamespace(t=t, done=True, rank=108 - i, auc=auc, auc_ci=(auc - 0.1, min(1, auc + 0.1)),
                                     acc=acc, acc_ci=(acc - 0.15, acc + 0.12)))
    colours = figures.model_colours(["vgg16", "vgg19", "resnet34"])
    path, shown, total = figures.forest(evals, colours, [evals[-1]], str(tmp_path / "forest.png"))
    assert (shown, total) == (figures.FOREST_MAX, 108)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_colours_and_panels_for_many_models(tmp_path):
    """Seven models and more: every model its own colour (the reference three
    keep theirs), and the per-model learning-rate panels wrap into rows."""
    from types import SimpleNamespace

    from analysis import figures
    models = ["vgg16", "vgg19", "resnet34", "resnet18", "resnet50", "densenet121", "densenet169"]
    many = models + [f"model{i}" for i in range(12)]
    colours = figures.model_colours(many)
    assert len(set(colours.values())) == len(many), colours
    assert colours["vgg16"] == "#1f77b4" and colours["resnet34"] == "#2ca02c"
    assert figures.model_colours(models) == {m: colours[m] for m in models}
    evals = []
    for i, m in enumerate(models):
        t = SimpleNamespace(model=m, batch_size=16, clr_mode="triangular", base_lr=1e-4, max_lr=1e-3, step_iters=4,
                            iters_per_epoch=4, lr_trace=np.linspace(1e-4, 1e-3, 8), trial_id=f"{i:016x}",
                            schedule_label=lambda: "triangular")
        evals.append(SimpleNamespace(t=t))
    path = figures.lr_overlay(evals, figures.model_colours(models), str(tmp_path / "lr.png"))
    from PIL import Image
    with Image.open(path) as im:
        w, h = im.size
    assert w < 2 * 5.2 * figures.PANEL_COLS * figures.DPI and h > 2 * 3.8 * figures.DPI * 0.8, (w, h)


def test_unfreeze_in_leaderboard_cv_and_report(tmp_path):
    """grid.unfreeze: the trials' unfrozen stages reach the reader, the
    leaderboard (terminal and CSV), the cross-validated configurations (one
    per unfreeze value) and the report's table."""
    out = str(tmp_path / "tail")
    synth.build(out, n=60, kfold=2, seeds=(0,), epochs=3, unfreeze=(0, 1))
    sw = Sweep(out)
    assert sorted({t.unfreeze for t in sw.trials}) == [0, 1]
    assert {t.cache_bytes_per_image for t in sw.trials if t.unfreeze} == {512 * 14 * 14 * 4}
    r = analysis_cmd("leaderboard", out, "--csv", str(tmp_path / "lb.csv"))
    assert r.returncode == 0, r.stderr
    assert "unfreeze" in r.stdout.splitlines()[0] or any("unfreeze" in l for l in r.stdout.splitlines()[:3]), r.stdout
    with open(tmp_path / "lb.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted({row["unfreeze"] for row in rows}) == ["0", "1"]
    ids = {t.trial_id: t.unfreeze for t in sw.trials}
    assert all(int(row["unfreeze"]) == ids[row["trial_id"]] for row in rows)
    r = analysis_cmd("cv", out, "--csv", str(tmp_path / "cv.csv"))
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "cv.csv") as f:
        cfgs = list(csv.DictReader(f))
    # 2 models x 2 unfreeze x 2 schedules, each with its 2 folds.
    assert len(cfgs) == 8 and sorted({c["unfreeze"] for c in cfgs}) == ["0", "1"], cfgs
    assert all(c["n_runs"] == "2" for c in cfgs)
    _, html, _ = make_report(out, str(tmp_path / "rep"))
    assert "unfrozen stages" in html
