"""Command line of `python3 -m analysis`: report, leaderboard, cv, compare, hl.

Errors are one line on stderr, `analysis: error: ...`, naming the file at
fault, with exit status 1 (2 for usage errors). OUTDIR may also be given
as OUTDIR/sweep.h5; trial ids may be given by a unique prefix in any case.
"""
import argparse
import os
import sys
import time

from analysis import selection
from analysis.results import ResultsError, Sweep

SEL = "val_auc|val_acc|val_loss|final"
USAGES = {
    "report": f"python3 -m analysis report OUTDIR -o REPORTDIR [--select {SEL}] [--prevalence P] "
              f"[--auc-ci delong|bootstrap] [--bootstrap N] [-g G] [--seed S] [--ctsweep PATH] [--no-saliency]",
    "leaderboard": f"python3 -m analysis leaderboard OUTDIR [--csv FILE] [--by rank|val_auc|val_acc|test_acc|test_auc] "
                   f"[--select {SEL}] [--prevalence P] [--auc-ci delong|bootstrap]",
    "cv": f"python3 -m analysis cv OUTDIR [--csv FILE] [--select {SEL}]",
    "compare": f"python3 -m analysis compare OUTDIR A B [--split test|val] [--select {SEL}]",
    "hl": f"python3 -m analysis hl OUTDIR --trial ID [-g G] [--split test|val] [--select {SEL}]",
}
USAGE = "\n       ".join(USAGES.values())


def _select_arg(p):
    p.add_argument("--select", choices=selection.RULES, default="val_auc",
                   help="how each trial's epoch is chosen on val and trials ranked (default val_auc: highest val "
                        "AUC, ties lower val loss, then the earlier epoch)")


def _eval_args(p):
    _select_arg(p)
    p.add_argument("--prevalence", type=float, metavar="P",
                   help="also give PPV and NPV at this prevalence of positives (0 < P < 1)")
    p.add_argument("--auc-ci", choices=("delong", "bootstrap"), default="delong",
                   help="AUC interval: DeLong (default) or the stratified bootstrap")
    p.add_argument("--bootstrap", type=int, default=2000, metavar="N",
                   help="bootstrap resamples (AUC with --auc-ci bootstrap, ECE; >= 2000; default 2000)")


def _parser():
    p = argparse.ArgumentParser(prog="python3 -m analysis", usage=USAGE,
                                description="Leaderboard, statistics and an HTML report from a ctsweep results "
                                            "directory.")
    sub = p.add_subparsers(dest="cmd", metavar="{report,leaderboard,cv,compare,hl}")

    def add(name, help_):
        # An explicit prog and usage: otherwise argparse builds the
        # subcommand's prog from the whole multi-line USAGE above.
        return sub.add_parser(name, help=help_, prog=f"python3 -m analysis {name}",
                              usage=USAGES[name].replace(f"python3 -m analysis {name}", "%(prog)s", 1))
    r = add("report", "write REPORTDIR/index.html and its figures")
    r.add_argument("outdir", metavar="OUTDIR")
    r.add_argument("-o", "--output", metavar="REPORTDIR", required=True)
    _eval_args(r)
    r.add_argument("-g", type=int, default=10, help="Hosmer-Lemeshow groups (>= 3; default 10)")
    r.add_argument("--seed", type=int, default=0, help="added to every trial's bootstrap seed (default 0)")
    r.add_argument("--ctsweep", metavar="PATH", help="the ctsweep binary for the Grad-CAM overlays (default: "
                   "$CTSWEEP_BIN, the repository's build/ctsweep, or ctsweep on PATH)")
    r.add_argument("--no-saliency", action="store_true", help="galleries without Grad-CAM overlays")
    lb = add("leaderboard", "print one row per trial; optionally write CSV")
    lb.add_argument("outdir", metavar="OUTDIR")
    lb.add_argument("--csv", metavar="FILE", help="also write the rows as CSV to FILE ('-' for stdout only)")
    lb.add_argument("--by", choices=("rank", "val_auc", "val_acc", "test_acc", "test_auc"), default="rank",
                    help="sort key, best first (default rank: the selection rule; # is always that rank)")
    _eval_args(lb)
    c = add("cv", "cross-validated summary: one row per configuration over its folds and seeds")
    c.add_argument("outdir", metavar="OUTDIR")
    c.add_argument("--csv", metavar="FILE", help="also write the rows as CSV to FILE ('-' for stdout only)")
    _select_arg(c)
    cp = add("compare", "DeLong's test of the AUCs and McNemar's exact test of the accuracies of two trials")
    cp.add_argument("outdir", metavar="OUTDIR")
    cp.add_argument("a", metavar="A", help="trial id or unique prefix")
    cp.add_argument("b", metavar="B", help="trial id or unique prefix")
    cp.add_argument("--split", choices=("test", "val"), default="test", help="images compared (default test)")
    _select_arg(cp)
    h = add("hl", "Hosmer-Lemeshow test of one trial, as R's ResourceSelection::hoslem.test")
    h.add_argument("outdir", metavar="OUTDIR")
    h.add_argument("--trial", required=True, metavar="ID", help="trial id (or a unique prefix)")
    h.add_argument("-g", type=int, default=10, help="groups (>= 3; default 10)")
    h.add_argument("--split", choices=("test", "val"), default="test",
                   help="test (default) or val, at the trial's selected epoch")
    _select_arg(h)
    return p


def _write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _sev(a, sweep):
    from analysis.evaluate import SweepEval
    return SweepEval(sweep, rule=a.select, n_boot=a.bootstrap, g=getattr(a, "g", 10), seed=getattr(a, "seed", 0),
                     auc_ci=a.auc_ci, prevalence=a.prevalence)


def _cmd_report(a):
    from analysis.report import write_report
    t0 = time.time()
    sweep = Sweep(a.outdir)
    path, rep = write_report(sweep, a.output, rule=a.select, n_boot=a.bootstrap, g=a.g, seed=a.seed,
                             auc_ci=a.auc_ci, prevalence=a.prevalence, saliency=not a.no_saliency, ctsweep=a.ctsweep)
    bad = rep.sev.failed_checks()
    for w in rep.warnings[:5]:
        print(f"analysis: warning: {w}", file=sys.stderr)
    for tid, name, detail in bad[:5]:
        print(f"analysis: warning: trial {tid}: {name}: {detail}", file=sys.stderr)
    c = sweep.status_counts()
    print(f"report: {path} ({c['done']} done, {c['running']} running, {c['pending']} pending, {c['failed']} failed; "
          f"sweep {sweep.state}; {time.time() - t0:.1f} s)")
    return 0


def _cmd_leaderboard(a):
    from analysis import leaderboard
    sev = _sev(a, Sweep(a.outdir))
    if a.csv == "-":
        sys.stdout.write(leaderboard.csv_text(sev, a.by))
        return 0
    sys.stdout.write(leaderboard.text(sev, a.by))
    if a.csv:
        _write(a.csv, leaderboard.csv_text(sev, a.by))
        print(f"csv: {a.csv}")
    return 0


def _cmd_cv(a):
    from analysis.cv import CvSummary
    from analysis.evaluate import SweepEval
    s = CvSummary(SweepEval(Sweep(a.outdir), rule=a.select))
    if a.csv == "-":
        sys.stdout.write(s.csv_text())
        return 0
    sys.stdout.write(s.text())
    if a.csv:
        _write(a.csv, s.csv_text())
        print(f"csv: {a.csv}")
    return 0


def _at_selected(sweep, t, split, rule):
    """(truth, P, description) of trial t on `split` at its evaluated epoch."""
    if t.file_error:
        raise ResultsError(t.file_error)
    if not len(t.epochs_rec):
        raise ResultsError(f"trial {t.trial_id} has no epoch recorded yet")
    sel = selection.select_epoch(t.epochs_rec, rule)
    if split == "test":
        if not t.done:
            raise ResultsError(f"trial {t.trial_id} is {t.status}: it has no test probabilities yet "
                               f"(try --split val)")
        ep, fell_back = selection.test_epoch(t, rule)
        what = f"test set at epoch {ep}"
        what += (f" (selected epoch {sel} by {rule}; schema-1 results hold test probabilities at the final "
                 f"epoch only)" if fell_back else f" (selected by {rule})")
        return sweep.y(t.test_index), t.test_prob_at(ep), what, t.test_index
    return sweep.y(t.val_index), t.val_prob_at(sel), f"val set at epoch {sel} (selected by {rule})", t.val_index


def _cmd_hl(a):
    from analysis import calibration
    if a.g < 3:
        raise ValueError(f"g = {a.g}: Hosmer-Lemeshow needs g >= 3 (df = g - 2)")
    sweep = Sweep(a.outdir)
    t = sweep.find_trial(a.trial)
    y, p, what, _ = _at_selected(sweep, t, a.split, a.select)
    hl = calibration.hosmer_lemeshow(y, p, g=a.g)
    print(calibration.format_hl(hl, data=f"truth and P(positive) of trial {t.trial_id} ({t.model}), {what}, "
                                         f"n = {len(y)}"))
    if hl["unreliable"]:
        print(f"analysis: warning: trial {t.trial_id}: Hosmer-Lemeshow: {hl['warning']}", file=sys.stderr)
    return 0


def _cmd_compare(a):
    from analysis import metrics, stats
    sweep = Sweep(a.outdir)
    ta, tb = sweep.find_trial(a.a), sweep.find_trial(a.b)
    ya, pa, wa, ia = _at_selected(sweep, ta, a.split, a.select)
    yb, pb, wb, ib = _at_selected(sweep, tb, a.split, a.select)
    if len(ia) != len(ib) or not (ia == ib).all():
        raise ResultsError(f"trials {ta.trial_id} and {tb.trial_id} were evaluated on different {a.split} images "
                           f"(folds differ?): a paired comparison needs the same images")
    lines = [f"A: {ta.trial_id} ({ta.model}), {wa}", f"B: {tb.trial_id} ({tb.model}), {wb}",
             f"{len(ya)} {a.split} images, {int(ya.sum())} positive", ""]
    if ya.min() == ya.max():
        lines.append("DeLong: not computable (one class only)")
    else:
        d = stats.delong_test(ya, pa, pb)
        lines.append("DeLong's test of AUC(A) = AUC(B) (two-sided; DeLong et al. 1988)")
        lines.append(f"AUC A = {d['auc1']:.4f}, AUC B = {d['auc2']:.4f}, difference = {d['diff']:+.4f}, "
                     f"SE = {d['se']:.4f}, z = {d['z']:.3f}, p = {d['p']:.4g}")
    ca = metrics.predict(pa, 0.5) == ya
    cb = metrics.predict(pb, 0.5) == yb
    m = stats.mcnemar_exact(ca, cb)
    lines.append("")
    lines.append("McNemar's exact test of the accuracies at P > 0.5 (two-sided binomial on the discordant images)")
    lines.append(f"accuracy A = {100 * ca.mean():.1f}%, B = {100 * cb.mean():.1f}%; only A right: {m['b']}, only B "
                 f"right: {m['c']}, p = {m['p']:.4g}")
    print("\n".join(lines))
    return 0


def main(argv):
    p = _parser()
    a = p.parse_args(argv)
    if not a.cmd:
        p.print_usage(sys.stderr)
        return 2
    try:
        return {"report": _cmd_report, "leaderboard": _cmd_leaderboard, "cv": _cmd_cv, "compare": _cmd_compare,
                "hl": _cmd_hl}[a.cmd](a)
    except (ResultsError, ValueError, OSError) as e:
        print(f"analysis: error: {e}", file=sys.stderr)
        return 1
