"""The commands end to end on results directories made by `ctsweep run` in
this test (see conftest.py): a complete sweep of a reduced demo grid, one
with a trial failed by CTSWEEP_FAULT, one killed mid-training. On each:
`ctsweep validate` passes first; `python3 -m analysis report` (the
documented command, run from the repository root with the python3 on PATH)
writes index.html whose every figure is a PNG on disk; headless Chromium
opens it, every <img> decodes (naturalWidth > 0), there is no console
error, the leaderboard sorts on click, and a full-page screenshot is saved
next to the report. The numbers in leaderboard.csv are compared with
sklearn on the probabilities read straight from the trial files.
"""
import csv
import os
import re
import shutil
import subprocess
import sys

import math

import h5py
import matplotlib.image as mpimg
import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import confusion_matrix, roc_auc_score
from statsmodels.stats.proportion import proportion_confint

from cdp import Browser
from conftest import ENV, REPO, validate
from test_stats import delong_quadratic

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def analysis_cmd(*args, python="python3", env=None, timeout=600):
    """`python3 -m analysis ...` from the repository root, as documented."""
    exe = shutil.which(python) if os.sep not in python else python
    if exe is None:
        pytest.fail(f"{python} not found on PATH")
    return subprocess.run([exe, "-m", "analysis", *args], cwd=REPO, capture_output=True, text=True,
                          env=env or ENV, timeout=timeout)


def dec(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def selected_epoch(ep):
    """The selection rule, written out here: highest val AUC (NaN last), then lower
    val loss, then the earlier epoch. 1-based; 0 when no epoch was recorded."""
    if not len(ep):
        return 0
    key = [(-(a if a == a else -math.inf), loss, i) for i, (a, loss) in enumerate(zip(ep["val_auc"], ep["val_loss"]))]
    return min(key)[2] + 1


def read_direct(out):
    """Truth and probabilities straight from the files, independent of analysis.results."""
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        labels = h["dataset/label"][...].astype(int)
        paths = [dec(p) for p in h["dataset/path"][...]]
        state = dec(h.attrs["state"])
        ids = [dec(r["trial_id"]) for r in h["trials"][...]]
    trials = {}
    for tid in ids:
        with h5py.File(os.path.join(out, "trials", tid + ".h5"), "r") as f:
            ep = f["epochs"][...]
            tp = f["test/prob"][...].astype(np.float64)
            sel = selected_epoch(ep)
            if tp.ndim == 2:  # schema 2: a row per epoch; the selected epoch's row
                tp = tp[sel - 1] if sel and len(tp) >= sel else np.zeros(0)
            trials[tid] = {"status": dec(f.attrs["status"]), "model": dec(f.attrs["model"]),
                           "error": dec(f.attrs["error"]), "epochs": ep, "selected_epoch": sel,
                           "schema_version": int(f.attrs["schema_version"]) if "schema_version" in f.attrs else 1,
                           "test_prob": tp, "test_index": f["test/index"][...],
                           "val_prob": f["val/prob"][...].astype(np.float64), "val_index": f["val/index"][...],
                           "test_acc": float(f.attrs["test_acc"]), "test_auc": float(f.attrs["test_auc"])}
    return labels, paths, state, trials


def make_report(out, rep, *extra):
    shutil.rmtree(rep, ignore_errors=True)
    r = analysis_cmd("report", out, "-o", rep, *extra)
    assert r.returncode == 0, f"report exit {r.returncode}: {r.stderr}"
    assert re.search(r"^report: .*index\.html", r.stdout, re.M), r.stdout
    index = os.path.join(rep, "index.html")
    with open(index, encoding="utf-8") as f:
        doc = f.read()
    srcs = re.findall(r'<img [^>]*src="([^"]+)"', doc)
    assert srcs, "no images in the report"
    for s in srcs:
        assert not re.match(r"^[a-z]+:", s) and not s.startswith("/"), f"not a relative path: {s}"
        with open(os.path.join(rep, s), "rb") as f:
            assert f.read(8) == PNG_MAGIC, f"{s} is not a PNG"
    assert not re.search(r'(?:href|src)="(?:https?:)?//', doc), "the report must not need the network"
    return index, doc, srcs


def browser_check(index, shot_name, sort_leaderboard=True):
    b = Browser()
    try:
        b.open(index)
        imgs = b.evaluate("Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))"
                          ".then(() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, "
                          "i.naturalWidth, i.naturalHeight]))")
        assert imgs, "the browser saw no images"
        broken = [i for i in imgs if not (i[1] and i[2] > 0 and i[3] > 0)]
        assert not broken, f"images that did not load: {broken}"
        sorted_ok = None
        if sort_leaderboard:
            sorted_ok = b.evaluate("""(() => {
                const t = document.getElementById('leaderboard-table');
                const th = t.querySelector('th[data-key="epochs_done"]');
                const col = Array.from(th.parentNode.cells).indexOf(th);
                const vals = () => Array.from(t.tBodies[0].rows).map(r => r.cells[col].getAttribute('data-v'))
                                        .filter(v => v !== '').map(parseFloat);
                th.click();
                const up = vals();
                th.click();
                const down = vals();
                const asc = up.every((v, i) => i === 0 || up[i - 1] <= v);
                const desc = down.every((v, i) => i === 0 || down[i - 1] >= v);
                return [asc, desc, up.length];
            })()""")
        # The leaderboard's header stays visible while its rows scroll: the
        # table scrolls inside its wrapper (at most 80% of the window high;
        # shrunk here so that even a short table scrolls) and the header
        # cells are sticky.
        sticky = b.evaluate("""(() => {
            const w = document.getElementById('leaderboard-wrap');
            w.style.maxHeight = '120px';
            w.scrollTop = 60;
            const th = w.querySelector('thead th');
            const r = [w.scrollTop, th.getBoundingClientRect().top - w.getBoundingClientRect().top];
            w.style.maxHeight = '';
            w.scrollTop = 0;
            return r;
        })()""")
        assert sticky[0] > 0 and abs(sticky[1]) <= 1.5, f"leaderboard header not sticky: {sticky}"
        b.drain(0.7)
        errors = b.errors()
        assert not errors, f"console errors: {errors}"
        shot = os.path.join(os.path.dirname(index), shot_name)
        b.screenshot(shot)
        with open(shot, "rb") as f:
            assert f.read(8) == PNG_MAGIC
        assert os.path.getsize(shot) > 20000, "screenshot suspiciously small"
        print(f"screenshot: {shot} ({len(imgs)} images loaded)")
        return imgs, sorted_ok
    finally:
        b.close()


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


# ---- complete sweep ----

def test_complete_report(sweeps):
    out = sweeps.complete()
    msg = validate(out)
    assert "match hdf5_schema" in msg
    labels, paths, state, trials = read_direct(out)
    assert state == "done" and len(trials) == 8 and all(t["status"] == "done" for t in trials.values())
    rep = os.path.join(sweeps.work, "report_complete")
    index, doc, srcs = make_report(out, rep)

    # every trial has its row and its curves; both models have confusion matrices
    for tid in trials:
        assert f'id="t-{tid}"' in doc and f"fig/trial_{tid}.png" in srcs
    for name in ("roc.png", "forest.png", "reliability.png", "overlay_curves.png", "lr_overlay.png", "effects.png",
                 "decision_curves.png", "confusion_vgg16.png", "confusion_resnet34.png"):
        assert f"fig/{name}" in srcs, name
    for section in ("Leaderboard", "Cross-validation", "Model comparison", "ROC curves", "Confusion matrices",
                    "Calibration", "Decision curves", "Test images and where the model looks", "Training curves",
                    "Hyperparameters", "Failed and unfinished"):
        assert section in doc, section
    # schema 2: test figures at every epoch, so no schema-1 note (tests/mpi/fixtures'
    # version-1 folder has it, see test_schema1_folder); the demo's backbones are
    # random, and the header says that
    assert all(t["schema_version"] == 2 for t in trials.values())
    assert 'id="schema1-note"' not in doc
    assert re.search(r'id="random-backbone">Random backbone: vgg16, resnet34', doc)
    assert 'id="cross-validation"' in doc and "a single train/val split (no k-fold)" in doc
    assert "Sweep finished: 8 trials done, 0 failed." in doc
    assert "p (DeLong)" in doc and "p (McNemar)" in doc and "X² =" in doc
    assert re.search(r"\d+ checks, 0 disagreement\(s\)", doc), "recorded numbers disagree with the probabilities"

    # leaderboard.csv against sklearn, statsmodels and the O(m n) DeLong on the raw probabilities
    rows = read_csv(os.path.join(rep, "leaderboard.csv"))
    assert len(rows) == 8
    for r in rows:
        t = trials[r["trial_id"]]
        y = labels[t["test_index"]]
        p = t["test_prob"]
        assert int(r["test_epoch"]) == t["selected_epoch"]  # schema 2: test at the selected epoch
        assert float(r["test_auc"]) == roc_auc_score(y, p)
        assert float(r["test_auc"]) == pytest.approx(t["test_auc"], abs=1e-12)
        theta, S = delong_quadratic(y, p)
        z = sps.norm.ppf(0.975)
        assert float(r["test_auc_lo"]) == pytest.approx(max(0, theta[0] - z * math.sqrt(S[0, 0])), abs=1e-12)
        assert float(r["test_auc_hi"]) == pytest.approx(min(1, theta[0] + z * math.sqrt(S[0, 0])), abs=1e-12)
        k = int(np.sum((p > 0.5) == y))
        acc = k / len(y)
        assert float(r["test_acc"]) == pytest.approx(acc, abs=1e-15) == pytest.approx(t["test_acc"], abs=1e-12)
        lo, hi = proportion_confint(k, len(y), alpha=0.05, method="beta")
        assert float(r["test_acc_lo"]) == pytest.approx(0 if math.isnan(lo) else lo, abs=1e-12)
        assert float(r["test_acc_hi"]) == pytest.approx(1 if math.isnan(hi) else hi, abs=1e-12)
    # rows in rank order: val AUC at each trial's selected epoch, then val loss there, then grid order
    order = {tid: i for i, tid in enumerate(trials)}
    key = {tid: (-t["epochs"]["val_auc"][t["selected_epoch"] - 1], t["epochs"]["val_loss"][t["selected_epoch"] - 1],
                 order[tid]) for tid, t in trials.items()}
    assert [r["trial_id"] for r in rows] == sorted(trials, key=lambda k: key[k])
    assert [int(r["rank"]) for r in rows] == list(range(1, 9))
    # the 2-epoch trials are the first epochs of the 3-epoch runs, and are marked so
    for r in rows:
        t = trials[r["trial_id"]]
        if len(t["epochs"]) == 2:
            other, ep = r["same_run_as"].split(" at epoch ")
            assert ep == "2" and len(trials[other]["epochs"]) == 3
            assert np.array_equal(trials[other]["val_prob"][:2], t["val_prob"])
            assert f"same run as <a href=#t-{other}>" in doc
        else:
            assert r["same_run_as"] == ""

    # each model's selected trial: the best rank among its done trials
    for model in ("vgg16", "resnet34"):
        cands = [tid for tid in trials if trials[tid]["model"] == model]
        best = min(cands, key=lambda k: key[k])
        sel = [r for r in rows if r["model"] == model and r["selected"] == "True"]
        assert len(sel) == 1 and sel[0]["trial_id"] == best, (model, sel, best)
        # its confusion matrix at 0.5, as sklearn counts it, is in the report's table
        t = trials[best]
        y = labels[t["test_index"]]
        tn, fp, fn, tp = confusion_matrix(y, (t["test_prob"] > 0.5).astype(int), labels=[0, 1]).ravel()
        assert re.search(rf"{best[:8]}</td><td class=l>P &gt; 0.5</td><td>{tn}</td><td>{fp}</td><td>{fn}</td>"
                         rf"<td>{tp}</td>", doc), (best, tn, fp, fn, tp)
        # galleries: one thumbnail per misclassified test image (up to 24), named by its file,
        # and a sample of up to 6 true positives and 6 true negatives, each beside its Grad-CAM
        # overlay from the weights the trial kept (ctsweep export + predict --saliency)
        n_err = int(fp + fn)
        section = doc.split(f"— trial {best}</h3>")[1].split("<h3>")[0]
        figs = re.findall(r'<figure class="(f[pn]|t[pn])"><div class=pair><img class=thumb src="thumbs/(\d+)\.png"'
                          r'[^>]*><img src="(cam/[^"]+\.png)"', section)
        errs = [f for f in figs if f[0] in ("fp", "fn")]
        assert len(errs) == min(fp, 24) + min(fn, 24), (len(errs), n_err)
        assert len(figs) == len(errs) + min(tp, 6) + min(tn, 6), (len(figs), tp, tn)
        for kind, row, cam in figs:
            assert os.path.basename(paths[int(row)]) in doc
            assert cam.startswith(f"cam/{best}/")
            pic = mpimg.imread(os.path.join(rep, cam))
            assert pic.shape[0] == 48 and pic.shape[1] > 48, pic.shape  # the input size, plus a colour bar
        m = re.search(r"predict's probabilities equal the recorded ones within ([0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)", section)
        assert m and float(m.group(1)) <= 1e-6, section[:600]
        with h5py.File(os.path.join(rep, "cam", best, "saliency.h5"), "r") as h:
            assert h["cam"].shape[0] == len(figs) and np.all(np.isfinite(h["cam"][...]))

    imgs, sorted_ok = browser_check(index, "screenshot_complete.png")
    assert len(imgs) == len(srcs)
    assert sorted_ok[0] and sorted_ok[1] and sorted_ok[2] == 8, sorted_ok


def test_leaderboard_cli(sweeps):
    out = sweeps.complete()
    labels, _, _, trials = read_direct(out)
    csv_path = os.path.join(sweeps.work, "leaderboard_auc.csv")
    r = analysis_cmd("leaderboard", out, "--csv", csv_path, "--by", "test_auc")
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.splitlines() if re.match(r"^\d+[*+]?\s+[0-9a-f]{16}\s", line)]
    assert len(lines) == 8 and "sorted by test_auc" in r.stdout
    rows = read_csv(csv_path)
    aucs = [roc_auc_score(labels[trials[x["trial_id"]]["test_index"]], trials[x["trial_id"]]["test_prob"])
            for x in rows]
    assert aucs == sorted(aucs, reverse=True)
    assert [float(x["test_auc"]) for x in rows] == aucs
    for x in rows:  # the table's columns: hyperparameters, selected epoch, val figures there, intervals
        assert x["model"] and x["batch_size"] == "16" and x["clr_mode"] in ("triangular", "exp_range")
        assert int(x["selected_epoch"]) >= 1 and 0 <= float(x["val_auc"]) <= 1 and float(x["final_val_acc"]) >= 0
        assert x["selection_rule"] == "val_auc" and x["auc_interval"] == "delong"
        assert float(x["test_sens_lo"]) <= float(x["test_sens"]) <= float(x["test_sens_hi"])
        assert float(x["test_spec_lo"]) <= float(x["test_spec"]) <= float(x["test_spec_hi"])
    # the terminal table leaves out what every trial shares and names it
    assert re.search(r"same for every trial: .*batch_size 16", r.stdout)
    assert "batch" not in r.stdout.splitlines()[0] and "sel ep" in r.stdout.splitlines()[0]
    # `#` stays the rank by the selection rule whatever the sort
    rank_csv = os.path.join(sweeps.work, "leaderboard_rank.csv")
    assert analysis_cmd("leaderboard", out, "--csv", rank_csv).returncode == 0
    ranks = {x["trial_id"]: x["rank"] for x in read_csv(rank_csv)}
    assert all(ranks[x["trial_id"]] == x["rank"] for x in rows)
    # OUTDIR/sweep.h5 is accepted as OUTDIR
    r = analysis_cmd("leaderboard", os.path.join(out, "sweep.h5"), "--csv", "-")
    assert r.returncode == 0 and len(list(csv.DictReader(r.stdout.splitlines()))) == 8, r.stderr
    r = analysis_cmd("leaderboard", out, "--by", "test_acc", "--csv", "-")
    assert r.returncode == 0, r.stderr
    accs = [float(x["test_acc"]) for x in csv.DictReader(r.stdout.splitlines())]
    assert accs == sorted(accs, reverse=True)


def test_hl_cli(sweeps):
    out = sweeps.complete()
    labels, _, _, trials = read_direct(out)
    tid = sorted(trials)[0]
    r = analysis_cmd("hl", out, "--trial", tid[:6].upper(), "-g", "10")  # prefixes in any case
    assert r.returncode == 0, r.stderr
    m = re.search(r"X-squared = ([\d.e+-]+|nan), df = (\d+), p-value = ([\d.e+-]+|nan)", r.stdout)
    assert m and m.group(2) == "8", r.stdout
    assert "held-out data, df = g = 10" in r.stdout
    # 16 test images in 10 groups: expected counts below 5; the same warning on stdout and stderr
    assert "warning: " in r.stdout and "expected count below 5" in r.stdout, r.stdout
    assert r.stderr.count("\n") == 1 and "expected count below 5" in r.stderr, r.stderr
    labels_printed = re.findall(r"^([\[(]\S+\])\s", r.stdout, re.M)
    assert len(set(labels_printed)) == len(labels_printed)
    # the group table's observed counts add up to the test set
    t = trials[tid]
    y = labels[t["test_index"]]
    rows = re.findall(r"^[\[(]\S+\]\s+(\d+)\s+(\S+)\s+(\S+)\s", r.stdout, re.M)
    assert sum(int(n) for n, _, _ in rows) == len(y)
    assert sum(float(y1) for _, _, y1 in rows) == y.sum()
    r = analysis_cmd("hl", out, "--trial", tid, "-g", "5", "--split", "val")
    assert r.returncode == 0 and "df = 3" in r.stdout, r.stdout + r.stderr


def test_errors_are_one_line(sweeps, tmp_path):
    r = analysis_cmd("report", str(tmp_path / "nothing"), "-o", str(tmp_path / "rep"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "sweep.h5: no such file" in r.stderr, r.stderr
    out = sweeps.complete()
    r = analysis_cmd("hl", out, "--trial", "zzzz")
    assert r.returncode == 1 and "no trial id starts with 'zzzz'" in r.stderr, r.stderr
    r = analysis_cmd("report", out, "-o", str(tmp_path / "rep"), "--bootstrap", "500")
    assert r.returncode == 1 and "at least 2000" in r.stderr, r.stderr
    r = analysis_cmd("leaderboard", out, "--by", "nonsense")
    assert r.returncode == 2
    # -g below 3 is refused by report as by hl, in one line
    for cmd in (("report", out, "-o", str(tmp_path / "rep"), "-g", "2"), ("hl", out, "--trial", "0", "-g", "2")):
        r = analysis_cmd(*cmd)
        assert r.returncode == 1 and r.stderr.count("\n") == 1 and "g >= 3" in r.stderr, (cmd, r.stderr)
    r = analysis_cmd("leaderboard", out, "--prevalence", "1.5")
    assert r.returncode == 1 and "between 0 and 1" in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["report", "leaderboard", "cv", "compare", "hl"])
def test_subcommand_help_prints_its_usage_once(cmd):
    r = analysis_cmd(cmd, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("usage:") == 1 and r.stdout.count("python3 -m analysis") == 1, r.stdout
    assert r.stdout.startswith(f"usage: python3 -m analysis {cmd} OUTDIR"), r.stdout
    others = {"report", "leaderboard", "cv", "compare", "hl"} - {cmd}
    assert not any(f"analysis {o} " in r.stdout for o in others)


def test_reexec_when_packages_are_missing(sweeps):
    """`python3 -S` cannot see Debian's dist-packages: the command re-executes
    itself with /usr/bin/python3; the re-executed process is marked so that
    it never loops, and a marked process that still lacks them says so in
    one line."""
    out = sweeps.complete()
    r = subprocess.run(["/usr/bin/python3", "-S", "-m", "analysis", "leaderboard", out], cwd=REPO,
                       capture_output=True, text=True, env=ENV, timeout=300)
    assert r.returncode == 0 and "8 trials: 8 done" in r.stdout, r.stderr
    env = dict(ENV, CTSWEEP_ANALYSIS_REEXEC="1")
    r = subprocess.run(["/usr/bin/python3", "-S", "-m", "analysis", "leaderboard", out], cwd=REPO,
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "cannot import" in r.stderr, r.stderr
    path_py = shutil.which("python3")
    if path_py and subprocess.run([path_py, "-c", "import numpy, h5py, scipy, matplotlib"],
                                  capture_output=True).returncode != 0:
        r = analysis_cmd("leaderboard", out, python=path_py)
        assert r.returncode == 0 and "8 trials: 8 done" in r.stdout, r.stderr
        print(f"{path_py} lacks the packages; re-executed with /usr/bin/python3")


# ---- a failed trial ----

def test_failed_trial_report(sweeps):
    out = sweeps.failed()
    validate(out)
    _, _, state, trials = read_direct(out)
    failed = {k: t for k, t in trials.items() if t["status"] == "failed"}
    assert list(failed) == [sweeps.victim] and "injected fault" in failed[sweeps.victim]["error"]
    assert state == "done" and sum(t["status"] == "done" for t in trials.values()) == 3
    rep = os.path.join(sweeps.work, "report_failed")
    index, doc, srcs = make_report(out, rep)
    assert "Sweep finished: 3 trials done, 1 failed." in doc
    m = re.search(r"1 failed trial\(s\).*?</table>", doc, re.S)
    assert m and sweeps.victim in m.group(0) and "injected fault (CTSWEEP_FAULT) at the end of epoch 3" in m.group(0)
    n_ep = len(failed[sweeps.victim]["epochs"])
    if n_ep:
        assert f"fig/trial_{sweeps.victim}.png" in srcs
    rows = read_csv(os.path.join(rep, "leaderboard.csv"))
    row = next(x for x in rows if x["trial_id"] == sweeps.victim)
    assert row["status"] == "failed" and row["test_auc"] == "" and "injected fault" in row["error"]
    browser_check(index, "screenshot_failed.png")


# ---- a run killed mid-training ----

def test_interrupted_report(sweeps):
    out = sweeps.interrupted()
    validate(out)
    _, _, state, trials = read_direct(out)
    assert state == "running"  # SIGKILL: the manifest never learnt it stopped
    done = [k for k, t in trials.items() if t["status"] == "done"]
    mid = [k for k, t in trials.items() if t["status"] == "running" and len(t["epochs"])]
    pending = [k for k, t in trials.items() if t["status"] in ("pending", "running") and not len(t["epochs"])]
    assert done and mid
    rep = os.path.join(sweeps.work, "report_interrupted")
    index, doc, srcs = make_report(out, rep)
    assert "reported as far as it got" in doc
    for k in mid:  # drawn as far as it got
        assert f"fig/trial_{k}.png" in srcs
        assert re.search(rf"{k} — .*? — running, {len(trials[k]['epochs'])}/\d+ epochs", doc)
    for k in pending:
        assert f"fig/trial_{k}.png" not in srcs
    m = re.search(r"(\d+) trial\(s\) not finished", doc)
    assert m and int(m.group(1)) == len(trials) - len(done)
    rows = read_csv(os.path.join(rep, "leaderboard.csv"))
    assert len(rows) == len(trials)
    assert all(r["test_auc"] == "" for r in rows if r["trial_id"] not in done)
    browser_check(index, "screenshot_interrupted.png")

    # the same files with the state a SIGUSR1 leaves: the banner says to resume
    copy = os.path.join(sweeps.work, "interrupted_signal")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(out, copy)
    with h5py.File(os.path.join(copy, "sweep.h5"), "r+") as h:
        h.attrs["state"] = "interrupted"
    _, doc, _ = make_report(copy, os.path.join(sweeps.work, "report_interrupted_signal"))
    assert "Sweep interrupted by a signal" in doc and "--resume" in doc


def test_demo_script_ends_with_the_report(repo):
    with open(os.path.join(repo, "scripts", "demo")) as f:
        text = f.read()
    assert re.search(r"-m analysis report .*\$out", text), "scripts/demo does not produce the report"
    assert subprocess.run(["bash", "-n", os.path.join(repo, "scripts", "demo")]).returncode == 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))


def test_schema1_folder(tmp_path):
    """A results folder written before test probabilities were kept per epoch
    (schema version 1, tests/mpi/fixtures/results-v1) still reports, and the report
    says that its test figures exist at the final epoch only."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "mpi", "fixtures", "results-v1")
    out = str(tmp_path / "v1")
    shutil.copytree(src, out)
    with h5py.File(os.path.join(out, "sweep.h5"), "r") as h:
        assert int(h.attrs["schema_version"]) == 1
    index, doc, srcs = make_report(out, str(tmp_path / "report"))
    assert 'id="schema1-note"' in doc and "final epoch only" in doc
    r = analysis_cmd("leaderboard", out)
    assert r.returncode == 0 and "final epoch" in r.stdout + r.stderr, r.stdout + r.stderr
